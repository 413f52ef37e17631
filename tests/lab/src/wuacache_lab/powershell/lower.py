"""From PowerShell source to :mod:`~wuacache_lab.powershell.nodes`.

The text is parsed with tree-sitter's PowerShell grammar, whose concrete tree
wraps every expression in one node per precedence level
(``logical_expression`` > ``bitwise_expression`` > ... > ``unary_expression``);
lowering collapses those, keeps operators and operands, and turns string and
number tokens into values.

Only what the interpreter runs is lowered. Anything else is refused with
:class:`~wuacache_lab.powershell.errors.UnsupportedSyntax` naming the file,
line and column, before any statement runs (as PowerShell refuses a script
that does not parse): what Windows PowerShell 5.1 does not have (``&&``,
``||``, ``??``, ``?.``, the ternary operator, ``clean`` blocks...), and what
the lab does not run (classes, ``switch``, ``trap``, redirections,
``begin``/``process``/``end`` blocks, workflows...).

The grammar has habits worth knowing when writing scripts for the lab (see
``docs/bridge-protocol.md``): a function's ``param`` block must start on its
own line after the opening brace; command arguments are separated by spaces
(``$dir\\file`` is one argument to PowerShell but two here, and is refused).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

import tree_sitter
import tree_sitter_powershell

from wuacache_lab.powershell import nodes as n
from wuacache_lab.powershell.errors import UnsupportedSyntax
from wuacache_lab.powershell.values import INT32_MAX, INT64_MAX, INT64_MIN, Int64

_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))

# The grammar's precedence levels: a node of these types with one child is that child.
_PRECEDENCE_WRAPPERS = frozenset(
    {
        "logical_expression",
        "bitwise_expression",
        "comparison_expression",
        "additive_expression",
        "multiplicative_expression",
        "format_expression",
        "range_expression",
        "array_literal_expression",
        "unary_expression",
        "argument_expression",
        "logical_argument_expression",
        "bitwise_argument_expression",
        "comparison_argument_expression",
        "additive_argument_expression",
        "multiplicative_argument_expression",
        "format_argument_expression",
        "range_argument_expression",
        "left_assignment_expression",
        "expression_with_unary_operator",
        "integer_literal",
        "string_literal",
        "command_name_expr",
        "while_condition",
        "for_initializer",
        "for_condition",
        "for_iterator",
    }
)

# Every node type the lowering reads. A grammar release that renames one of
# them (some carry typos, such as "assignement_operator" and
# "invokation_expression") must fail the snapshot test, not the scripts.
HANDLED_NODE_TYPES = _PRECEDENCE_WRAPPERS | frozenset(
    {
        "program",
        "statement_list",
        "statement_block",
        "empty_statement",
        "comment",
        "label",
        "pipeline",
        "pipeline_chain",
        "pipeline_chain_tail",
        "assignment_expression",
        "assignement_operator",
        "command",
        "command_name",
        "command_elements",
        "command_argument_sep",
        "command_parameter",
        "command_invokation_operator",
        "generic_token",
        "path_command_name",
        "path_command_name_token",
        "if_statement",
        "elseif_clauses",
        "elseif_clause",
        "else_clause",
        "foreach_statement",
        "for_statement",
        "while_statement",
        "do_statement",
        "try_statement",
        "catch_clauses",
        "catch_clause",
        "catch_type_list",
        "finally_clause",
        "flow_control_statement",
        "label_expression",
        "function_statement",
        "function_name",
        "function_parameter_declaration",
        "script_block",
        "script_block_body",
        "script_block_expression",
        "param_block",
        "parameter_list",
        "script_parameter",
        "script_parameter_default",
        "attribute_list",
        "attribute",
        "attribute_name",
        "attribute_arguments",
        "attribute_argument",
        "comparison_operator",
        "format_operator",
        "cast_expression",
        "pre_increment_expression",
        "pre_decrement_expression",
        "post_increment_expression",
        "post_decrement_expression",
        "member_access",
        "member_name",
        "invokation_expression",
        "element_access",
        "argument_list",
        "argument_expression_list",
        "parenthesized_expression",
        "sub_expression",
        "array_expression",
        "hash_literal_expression",
        "hash_literal_body",
        "hash_entry",
        "key_expression",
        "type_literal",
        "type_spec",
        "type_name",
        "type_identifier",
        "array_type_name",
        "generic_type_name",
        "generic_type_arguments",
        "dimension",
        "variable",
        "braced_variable",
        "simple_name",
        "decimal_integer_literal",
        "hexadecimal_integer_literal",
        "real_literal",
        "expandable_string_literal",
        "expandable_here_string_literal",
        "verbatim_string_characters",
        "verbatim_here_string_characters",
    }
)

# What the lab refuses although Windows PowerShell 5.1 runs it, by node type.
_NOT_RUN = {
    "class_statement": "class definitions",
    "enum_statement": "enum definitions",
    "switch_statement": "switch statements",
    "trap_statement": "trap statements",
    "data_statement": "data sections",
    "inlinescript_statement": "workflows",
    "parallel_statement": "workflows",
    "sequence_statement": "workflows",
    "named_block_list": "begin, process and end blocks",
    "redirection": "redirections",
    "redirections": "redirections",
    "stop_parsing": "the stop-parsing token --%",
    "verbatim_command_argument": "the stop-parsing token --%",
    "invokation_foreach_expression": ".foreach script blocks",
}

_BINARY_TOKENS = frozenset(
    {"-and", "-or", "-xor", "-band", "-bor", "-bxor", "+", "-", "*", "/", "%", ".."}
)
_UNARY_TOKENS = frozenset({"-not", "!", "-bnot", "+", "-", "-split", "-join", ","})
_ASSIGNMENT_OPERATORS = frozenset({"=", "+=", "-=", "*=", "/=", "%="})
_SCOPE_QUALIFIERS = frozenset({"global", "local", "private", "script", "using", "workflow"})
_MULTIPLIERS = {"kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4, "pb": 1024**5}

# Backtick escapes of Windows PowerShell 5.1 (about_Special_Characters); `e and `u{} came with PowerShell 6.
_ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


@lru_cache(maxsize=64)
def parse(text: str, name: str = "") -> n.ScriptBlockBody:
    """Parse and lower a whole script; ``name`` is the file name errors give (empty for ``line:``).

    The tree is immutable, so a script sent again (the bridge comes with every
    request) is lowered once.
    """
    source = n.SourceFile(name, text)
    encoded = text.encode("utf-8")
    tree = _PARSER.parse(encoded)
    return _Lowering(source, encoded).program(tree.root_node)


class _Lowering:
    def __init__(self, source: n.SourceFile, encoded: bytes) -> None:
        self.source = source
        self.encoded = encoded
        self.line_starts = [0] + [match.end() for match in re.finditer(b"\n", encoded)]

    # ------------------------------------------------------------ helpers

    def extent(self, node: tree_sitter.Node) -> n.Extent:
        (line, column), (end_line, end_column) = node.start_point, node.end_point
        return n.Extent(self.source, line + 1, self._column(line, column), end_line + 1, self._column(end_line, end_column))

    def _column(self, row: int, byte_column: int) -> int:
        start = self.line_starts[row]
        return len(self.encoded[start : start + byte_column].decode("utf-8", errors="replace")) + 1

    def text(self, node: tree_sitter.Node) -> str:
        return self.encoded[node.start_byte : node.end_byte].decode("utf-8")

    def refuse(self, node: tree_sitter.Node, message: str, error_id: str = "UnexpectedToken") -> UnsupportedSyntax:
        return UnsupportedSyntax(self.extent(node), message, error_id)

    def children(self, node: tree_sitter.Node) -> list[tree_sitter.Node]:
        """The children that carry meaning: no comments, no empty statements."""
        return [child for child in node.children if child.type not in ("comment", "empty_statement")]

    def named(self, node: tree_sitter.Node) -> list[tree_sitter.Node]:
        return [child for child in self.children(node) if child.is_named]

    def check(self, node: tree_sitter.Node) -> None:
        """Refuse syntax errors and what the lab does not run, anywhere below ``node``."""
        pending = [node]
        while pending:
            current = pending.pop()
            if current.is_error or current.is_missing:
                raise self._syntax_error(current)
            if current.type in _NOT_RUN:
                raise self.refuse(current, f"The lab's PowerShell does not run {_NOT_RUN[current.type]}.", "NotSupported")
            if current.type == "pipeline_chain_tail":
                token = self.text(current)
                raise self.refuse(
                    current, f"The token '{token}' is not a valid statement separator in this version.", "InvalidEndOfLine"
                )
            pending.extend(reversed(current.children))

    def _syntax_error(self, node: tree_sitter.Node) -> UnsupportedSyntax:
        if node.is_missing:
            return self.refuse(node, f"Missing '{node.type}'.", "MissingToken")
        text = self.text(node).strip()
        for token in ("??=", "??", "?.", "?[", "&&", "||"):
            if token in text:
                if token in ("&&", "||"):
                    return self.refuse(
                        node, f"The token '{token}' is not a valid statement separator in this version.", "InvalidEndOfLine"
                    )
                return self.refuse(node, f"Unexpected token '{token}' in expression or statement.")
        if text.startswith("?") or re.search(r"\s\?\s", text):
            return self.refuse(node, "Unexpected token '?' in expression or statement.")
        first = text.split()[0] if text.split() else text
        return self.refuse(node, f"Unexpected token '{first[:40]}' in expression or statement.")

    # ------------------------------------------------------------ script blocks

    def program(self, root: tree_sitter.Node) -> n.ScriptBlockBody:
        self.check(root)
        param_block = None
        statements: tuple[n.Statement, ...] = ()
        for child in self.named(root):
            if child.type == "param_block":
                param_block = self.param_block(child)
            elif child.type == "statement_list":
                statements = self.statement_list(child)
        return n.ScriptBlockBody(self.extent(root), param_block, statements)

    def script_block(self, node: tree_sitter.Node | None, extent_node: tree_sitter.Node, param_block: n.ParamBlock | None = None) -> n.ScriptBlockBody:
        statements: tuple[n.Statement, ...] = ()
        if node is not None:
            for child in self.named(node):
                if child.type == "param_block":
                    param_block = self.param_block(child)
                elif child.type == "script_block_body":
                    body = self.named(child)[0]
                    statements = self.statement_list(body)
        return n.ScriptBlockBody(self.extent(extent_node), param_block, statements)

    def param_block(self, node: tree_sitter.Node) -> n.ParamBlock:
        attributes: tuple[n.AttributeNode, ...] = ()
        parameters: tuple[n.ParameterNode, ...] = ()
        for child in self.named(node):
            if child.type == "attribute_list":
                attributes, constraints = self.attribute_list(child)
                if constraints:
                    raise self.refuse(child, "A type constraint is not valid before param.")
            elif child.type == "parameter_list":
                parameters = self.parameter_list(child)
        return n.ParamBlock(self.extent(node), attributes, parameters)

    def parameter_list(self, node: tree_sitter.Node) -> tuple[n.ParameterNode, ...]:
        return tuple(self.parameter(child) for child in self.named(node) if child.type == "script_parameter")

    def parameter(self, node: tree_sitter.Node) -> n.ParameterNode:
        attributes: tuple[n.AttributeNode, ...] = ()
        constraints: tuple[n.TypeName, ...] = ()
        default = None
        name = ""
        for child in self.named(node):
            if child.type == "attribute_list":
                attributes, constraints = self.attribute_list(child)
            elif child.type == "variable":
                path = self.variable_path(child)
                if path.qualifier is not None:
                    raise self.refuse(child, f"Parameter '{path}' cannot be declared with a scope.")
                name = path.name
            elif child.type == "script_parameter_default":
                default = self.expression(self.named(child)[0])
        return n.ParameterNode(self.extent(node), name, attributes, constraints, default)

    def attribute_list(self, node: tree_sitter.Node) -> tuple[tuple[n.AttributeNode, ...], tuple[n.TypeName, ...]]:
        attributes: list[n.AttributeNode] = []
        constraints: list[n.TypeName] = []
        for child in self.named(node):
            parts = self.named(child)
            if parts and parts[0].type == "type_literal":
                constraints.append(self.type_literal(parts[0]))
                continue
            type_name = self.type_spec(self.named(parts[0])[0])
            positional: list[n.Expression] = []
            named: list[tuple[str, n.Expression | None]] = []
            for arguments in parts[1:]:
                for argument in self.named(arguments):
                    inner = self.named(argument)
                    if inner[0].type == "simple_name":
                        # Name = value, or a bare Name that means $true.
                        named.append((self.text(inner[0]), self.expression(inner[1]) if len(inner) > 1 else None))
                    else:
                        positional.append(self.expression(inner[0]))
            attributes.append(n.AttributeNode(self.extent(child), type_name, tuple(positional), tuple(named)))
        return tuple(attributes), tuple(constraints)

    # ------------------------------------------------------------ statements

    def statement_list(self, node: tree_sitter.Node) -> tuple[n.Statement, ...]:
        statements: list[n.Statement] = []
        label = None
        for child in self.children(node):
            if child.type == "label":
                label = self.text(child)[1:]
                continue
            statements.append(self.statement(child, label))
            label = None
        return tuple(statements)

    def block(self, node: tree_sitter.Node) -> tuple[n.Statement, ...]:
        """A ``{ }`` statement block."""
        lists = [child for child in self.named(node) if child.type == "statement_list"]
        return self.statement_list(lists[0]) if lists else ()

    def statement(self, node: tree_sitter.Node, label: str | None = None) -> n.Statement:
        kind = node.type
        if kind == "pipeline":
            return self.pipeline(node)
        if kind == "if_statement":
            return self.if_statement(node)
        if kind == "foreach_statement":
            return self.foreach_statement(node, label)
        if kind == "for_statement":
            return self.for_statement(node, label)
        if kind == "while_statement":
            parts = self.named(node)
            return n.While(self.extent(node), self.statement(self._unwrap(parts[0])), self.block(parts[1]), label)
        if kind == "do_statement":
            parts = self.named(node)
            until = any(child.type == "until" for child in node.children)
            return n.DoLoop(self.extent(node), self.block(parts[0]), self.statement(self._unwrap(parts[1])), until, label)
        if kind == "try_statement":
            return self.try_statement(node)
        if kind == "flow_control_statement":
            return self.flow_control(node)
        if kind == "function_statement":
            return self.function(node)
        raise self.refuse(node, f"The lab's PowerShell does not run this statement ({kind}).", "NotSupported")

    def pipeline(self, node: tree_sitter.Node) -> n.Statement:
        parts = self.named(node)
        if parts[0].type == "assignment_expression":
            return self.assignment(parts[0])
        chain = parts[0]
        elements: list[n.Command | n.Expression] = []
        for child in self.named(chain):
            elements.append(self.command(child) if child.type == "command" else self.expression(child))
        return n.Pipeline(self.extent(node), tuple(elements))

    def assignment(self, node: tree_sitter.Node) -> n.Assignment:
        target_node, operator_node, value_node = self.named(node)
        operator = self.text(operator_node)
        if operator not in _ASSIGNMENT_OPERATORS:
            raise self.refuse(operator_node, f"Unexpected token '{operator}' in expression or statement.")
        target = self.expression(target_node)
        if not isinstance(target, (n.Variable, n.MemberAccess, n.Index, n.Cast)):
            raise self.refuse(target_node, "The assignment expression is not valid. The input to an assignment operator must be an object that is able to accept assignments, such as a variable or a property.", "InvalidLeftHandSide")
        return n.Assignment(self.extent(node), target, operator, self.statement(value_node))

    def if_statement(self, node: tree_sitter.Node) -> n.If:
        clauses: list[n.IfClause] = []
        else_body = None
        condition = None
        for child in self.named(node):
            if child.type == "pipeline":
                condition = self.statement(child)
            elif child.type == "statement_block":
                assert condition is not None
                clauses.append(n.IfClause(condition, self.block(child)))
            elif child.type == "elseif_clauses":
                for clause in self.named(child):
                    clause_condition, body = self.named(clause)
                    clauses.append(n.IfClause(self.statement(clause_condition), self.block(body)))
            elif child.type == "else_clause":
                else_body = self.block(self.named(child)[0])
        return n.If(self.extent(node), tuple(clauses), else_body)

    def foreach_statement(self, node: tree_sitter.Node, label: str | None) -> n.ForEach:
        parts = self.named(node)
        if parts[0].type == "foreach_parameter":
            raise self.refuse(parts[0], "The foreach -parallel parameter is only allowed in workflows.", "NotSupported")
        variable = self.expression(parts[0])
        assert isinstance(variable, n.Variable)
        return n.ForEach(self.extent(node), variable, self.statement(parts[1]), self.block(parts[2]), label)

    def for_statement(self, node: tree_sitter.Node, label: str | None) -> n.For:
        fields = {}
        for name in ("for_initializer", "for_condition", "for_iterator"):
            part = node.child_by_field_name(name)
            fields[name] = self.statement(self._unwrap(part)) if part is not None else None
        body = [child for child in self.named(node) if child.type == "statement_block"][0]
        return n.For(
            self.extent(node), fields["for_initializer"], fields["for_condition"], fields["for_iterator"], self.block(body), label
        )

    def try_statement(self, node: tree_sitter.Node) -> n.Try:
        body: tuple[n.Statement, ...] = ()
        catches: list[n.CatchClause] = []
        finally_body = None
        for child in self.named(node):
            if child.type == "statement_block":
                body = self.block(child)
            elif child.type == "catch_clauses":
                for clause in self.named(child):
                    types: tuple[n.TypeName, ...] = ()
                    clause_body: tuple[n.Statement, ...] = ()
                    for part in self.named(clause):
                        if part.type == "catch_type_list":
                            types = tuple(self.type_literal(literal) for literal in self.named(part))
                        else:
                            clause_body = self.block(part)
                    catches.append(n.CatchClause(self.extent(clause), types, clause_body))
            elif child.type == "finally_clause":
                finally_body = self.block(self.named(child)[0])
        return n.Try(self.extent(node), body, tuple(catches), finally_body)

    def flow_control(self, node: tree_sitter.Node) -> n.FlowControl:
        keyword = node.children[0].type
        parts = self.named(node)
        if keyword in ("break", "continue"):
            label = None
            if parts:
                label_node = parts[0]
                if self.named(label_node) and self.named(label_node)[0].type == "label":
                    label = self.text(self.named(label_node)[0])[1:]
                else:
                    label = self.text(label_node)
                    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", label):
                        raise self.refuse(label_node, f"The lab's PowerShell does not run a computed {keyword} label.", "NotSupported")
            return n.FlowControl(self.extent(node), keyword, label=label)
        value = self.statement(parts[0]) if parts else None
        return n.FlowControl(self.extent(node), keyword, value)

    def function(self, node: tree_sitter.Node) -> n.FunctionDefinition:
        if node.children[0].type != "function":
            raise self.refuse(node, f"The lab's PowerShell does not run {node.children[0].type} definitions.", "NotSupported")
        name = ""
        param_block = None
        body_node = None
        for child in self.named(node):
            if child.type == "function_name":
                name = self.text(child)
            elif child.type == "function_parameter_declaration":
                parameters = self.parameter_list(self.named(child)[0]) if self.named(child) else ()
                param_block = n.ParamBlock(self.extent(child), (), parameters)
            elif child.type == "script_block":
                body_node = child
        return n.FunctionDefinition(self.extent(node), name, self.script_block(body_node, node, param_block))

    # ------------------------------------------------------------ commands

    def command(self, node: tree_sitter.Node) -> n.Command | n.Expression:
        parts = self.named(node)
        call_operator = parts[0].type == "command_invokation_operator"
        if call_operator:
            if self.text(parts[0]) == ".":
                raise self.refuse(parts[0], "The lab's PowerShell does not run dot-sourcing.", "NotSupported")
            parts = parts[1:]
        name_node = parts[0]
        if not call_operator and re.match(r"[0-9]|\.[0-9]", self.text(name_node)):
            return self.numeric_command(node, name_node, parts)
        name: str | n.Expression
        if call_operator:
            name = self.command_name_expression(name_node)
        else:
            name = self.text(name_node)
        elements = self.command_elements(parts[1]) if len(parts) > 1 else ()
        if isinstance(name, str) and name.lower() == "clean":
            if len(elements) == 1 and isinstance(elements[0], n.ScriptBlockExpression):
                raise self.refuse(node, "clean blocks came with PowerShell 7.3; Windows PowerShell 5.1 has none.", "NotSupported")
        method_syntax = (
            len(elements) == 1
            and isinstance(elements[0], n.Parenthesized)
            and isinstance(elements[0].pipeline, n.Pipeline)
            and len(elements[0].pipeline.elements) == 1
            and isinstance(elements[0].pipeline.elements[0], n.ArrayLiteral)
            and self.children(parts[1])[0].start_byte == name_node.end_byte
            and self.children(parts[1])[0].type == "parenthesized_expression"
        )
        return n.Command(self.extent(node), name, elements, call_operator, method_syntax)

    def numeric_command(self, node: tree_sitter.Node, name_node: tree_sitter.Node, parts: list[tree_sitter.Node]) -> n.Expression:  # type: ignore[return]
        """What the grammar reads as a command but PowerShell as a number: ``5kb``, ``1..3``."""
        text = self.text(name_node)
        extent = self.extent(name_node)
        if len(parts) == 1 or not self.command_elements(parts[1]):
            number = _number(text)
            if number is not None:
                return n.Constant(extent, number)
            bounds = text.split("..")
            if len(bounds) == 2 and all(_number(bound) is not None for bound in bounds):
                return n.BinaryOperation(extent, "..", n.Constant(extent, _number(bounds[0])), n.Constant(extent, _number(bounds[1])))
        raise self.refuse(node, f"The lab's PowerShell cannot read '{text}': put spaces around the operator.", "NotSupported")

    def command_name_expression(self, node: tree_sitter.Node) -> n.Expression:
        node = self._unwrap(node)
        if node.type == "path_command_name":
            parts = self.named(node)
            if len(parts) == 1 and parts[0].type == "variable":
                return self.expression(parts[0])
            return self.bare_word(node)
        if node.type == "command_name":
            return n.Constant(self.extent(node), self.text(node))
        return self.expression(node)

    def command_elements(self, node: tree_sitter.Node) -> tuple[n.CommandParameter | n.Expression, ...]:
        elements: list[n.CommandParameter | n.Expression] = []
        colon = False
        previous_end = -1
        for child in self.children(node):
            if child.type == "command_argument_sep":
                colon = colon or self.text(child) == ":"
                continue
            if child.type == "command_parameter":
                text = self.text(child)
                if text == "--":
                    raise self.refuse(child, "The lab's PowerShell does not run the end-of-parameters token --.", "NotSupported")
                elements.append(n.CommandParameter(self.extent(child), text[1:]))
                previous_end = child.end_byte
                colon = False
                continue
            if child.type == "argument_list":
                raise self.refuse(child, "The lab's PowerShell does not run an argument followed by a parenthesized list.", "NotSupported")
            if child.start_byte == previous_end and not colon:
                raise self.refuse(child, "The lab's PowerShell does not run an argument made of adjacent parts; quote it.", "NotSupported")
            argument = self.bare_word(child) if child.type == "generic_token" else self.expression(child)
            last = elements[-1] if elements else None
            if colon and isinstance(last, n.CommandParameter) and last.argument is None:
                elements[-1] = n.CommandParameter(last.extent, last.name, argument)
            else:
                elements.append(argument)
            colon = False
            previous_end = child.end_byte
        return tuple(elements)

    def bare_word(self, node: tree_sitter.Node) -> n.Expression:
        """An unquoted command argument: a number when it reads as one, else a string expanding ``$name``."""
        text = self.text(node)
        number = _number(text)
        if number is not None:
            return n.Constant(self.extent(node), number)
        if "$" not in text and "`" not in text:
            return n.Constant(self.extent(node), text)
        return n.ExpandableString(self.extent(node), tuple(self._expand(text, node)))

    # ------------------------------------------------------------ expressions

    def _unwrap(self, node: tree_sitter.Node) -> tree_sitter.Node:
        while node.type in _PRECEDENCE_WRAPPERS and len(self.children(node)) == 1:
            node = self.children(node)[0]
        return node

    def expression(self, node: tree_sitter.Node) -> n.Expression:
        node = self._unwrap(node)
        kind = node.type
        extent = self.extent(node)
        parts = self.children(node)
        if kind in _PRECEDENCE_WRAPPERS:
            return self.operation(node, parts)
        if kind == "variable":
            path = self.variable_path(node)
            return n.Variable(extent, path, self.text(node).startswith("@"))
        if kind in ("decimal_integer_literal", "hexadecimal_integer_literal", "real_literal"):
            value = _number(self.text(node))
            if value is None:
                raise self.refuse(node, f"The numeric constant {self.text(node)} is not valid.", "BadNumericConstant")
            return n.Constant(extent, value)
        if kind == "verbatim_string_characters":
            return n.Constant(extent, self.text(node)[1:-1].replace("''", "'"))
        if kind == "verbatim_here_string_characters":
            return n.Constant(extent, _here_string_body(self.text(node)))
        if kind in ("expandable_string_literal", "expandable_here_string_literal"):
            return self.expandable_string(node)
        if kind == "type_literal":
            return n.TypeLiteral(extent, self.type_literal(node))
        if kind == "cast_expression":
            type_literal, operand = self.named(node)
            return n.Cast(extent, self.type_literal(type_literal), self.expression(operand))
        if kind in ("pre_increment_expression", "pre_decrement_expression"):
            return n.IncrementDecrement(extent, parts[0].type, self.expression(parts[1]), True)
        if kind in ("post_increment_expression", "post_decrement_expression"):
            return n.IncrementDecrement(extent, parts[1].type, self.expression(parts[0]), False)
        if kind == "parenthesized_expression":
            return n.Parenthesized(extent, self.statement(self.named(node)[0]))
        if kind == "sub_expression":
            return n.Subexpression(extent, self._inner_statements(node))
        if kind == "array_expression":
            return n.ArraySubexpression(extent, self._inner_statements(node))
        if kind == "hash_literal_expression":
            return self.hash_literal(node)
        if kind == "script_block_expression":
            param_block = None
            body = None
            for child in self.named(node):
                if child.type == "param_block":
                    param_block = self.param_block(child)
                elif child.type == "script_block":
                    body = child
            return n.ScriptBlockExpression(extent, self.script_block(body, node, param_block))
        if kind == "member_access":
            target, operator, member = parts
            return n.MemberAccess(extent, self.expression(target), self.member_name(member), operator.type == "::")
        if kind == "invokation_expression":
            target, operator, member, arguments = parts
            return n.InvokeMember(
                extent, self.expression(target), self.member_name(member), self.arguments(arguments), operator.type == "::"
            )
        if kind == "element_access":
            target, _, index, _ = parts
            return n.Index(extent, self.expression(target), self.expression(index))
        if kind == "simple_name":
            return n.Constant(extent, self.text(node))
        raise self.refuse(node, f"The lab's PowerShell does not run this expression ({kind}).", "NotSupported")

    def operation(self, node: tree_sitter.Node, parts: list[tree_sitter.Node]) -> n.Expression:
        extent = self.extent(node)
        if node.type == "array_literal_expression":
            return n.ArrayLiteral(extent, tuple(self.expression(part) for part in parts if part.type != ","))
        if node.type == "expression_with_unary_operator":
            operator = parts[0].type
            if operator not in _UNARY_TOKENS:
                raise self.refuse(parts[0], f"Unexpected token '{operator}' in expression or statement.")
            operand = self.expression(parts[1])
            if operator == ",":
                return n.ArrayLiteral(extent, (operand,))
            return n.UnaryOperation(extent, operator, operand)
        left, operator_node, right = parts
        operator = self.text(operator_node).lower() if operator_node.is_named else operator_node.type
        if operator not in _BINARY_TOKENS and not operator_node.is_named:
            raise self.refuse(operator_node, f"Unexpected token '{operator}' in expression or statement.")
        return n.BinaryOperation(extent, operator, self.expression(left), self.expression(right))

    def _inner_statements(self, node: tree_sitter.Node) -> tuple[n.Statement, ...]:
        lists = [child for child in self.named(node) if child.type == "statement_list"]
        return self.statement_list(lists[0]) if lists else ()

    def member_name(self, node: tree_sitter.Node) -> n.Expression:
        inner = self.named(node)[0]
        if inner.type == "simple_name":
            return n.Constant(self.extent(inner), self.text(inner))
        return self.expression(inner)

    def arguments(self, node: tree_sitter.Node) -> tuple[n.Expression, ...]:
        lists = self.named(node)
        if not lists:
            return ()
        return tuple(self.expression(argument) for argument in self.named(lists[0]))

    def hash_literal(self, node: tree_sitter.Node) -> n.HashLiteral:
        entries: list[n.HashEntry] = []
        for body in self.named(node):
            for entry in self.named(body):
                key_node, value_node = self.named(entry)[:2]
                key_inner = self.named(key_node)[0]
                if key_inner.type == "simple_name":
                    key: n.Expression = n.Constant(self.extent(key_inner), self.text(key_inner))
                else:
                    key = self.expression(key_inner)
                entries.append(n.HashEntry(key, self.statement(value_node)))
        return n.HashLiteral(self.extent(node), tuple(entries))

    # ------------------------------------------------------------ types and variables

    def type_literal(self, node: tree_sitter.Node) -> n.TypeName:
        return self.type_spec(self.named(node)[0])

    def type_spec(self, node: tree_sitter.Node) -> n.TypeName:
        parts = self.named(node)
        first = parts[0]
        if first.type == "type_name":
            if len(parts) == 1:
                return n.TypeName(self.text(first))
        if first.type == "array_type_name":
            base = self.text(self.named(first)[0])
            rank = 1 + (len(self.text(parts[1])) if len(parts) > 1 else 0)
            return n.TypeName(base, (), rank)
        if first.type == "generic_type_name":
            base = self.text(self.named(first)[0])
            arguments = tuple(self.type_spec(spec) for spec in self.named(parts[1]))
            return n.TypeName(base, arguments)
        raise self.refuse(node, f"The lab's PowerShell does not read this type name ({self.text(node)}).", "NotSupported")

    def variable_path(self, node: tree_sitter.Node) -> n.VariablePath:
        text = self.text(node)
        if text.startswith("${"):
            body = text[2:-1]
        else:
            body = text[1:]
        if ":" in body:
            qualifier, name = body.split(":", 1)
            return n.VariablePath(qualifier.lower(), name)
        return n.VariablePath(None, body)

    # ------------------------------------------------------------ strings

    def expandable_string(self, node: tree_sitter.Node) -> n.Expression:
        """A double-quoted string: text between the quotes, with the variables and subexpressions the grammar found."""
        here = node.type == "expandable_here_string_literal"
        extent = self.extent(node)
        raw_start, raw_end = node.start_byte, node.end_byte
        if here:
            first_break = self.encoded.index(b"\n", raw_start) + 1
            last_break = self.encoded.rindex(b"\n", raw_start, raw_end)
            content_start, content_end = first_break, last_break - (1 if self.encoded[last_break - 1 : last_break] == b"\r" else 0)
        else:
            content_start, content_end = raw_start + 1, raw_end - 1
        parts: list[str | n.Expression] = []
        position = content_start
        for child in self.named(node):
            if child.start_byte < content_start or child.end_byte > content_end:
                continue
            parts.append(self._literal_text(self.encoded[position : child.start_byte].decode("utf-8"), here))
            parts.append(self.expression(child) if child.type != "sub_expression" else n.Subexpression(self.extent(child), self._inner_statements(child)))
            position = child.end_byte
        parts.append(self._literal_text(self.encoded[position:content_end].decode("utf-8"), here))
        cleaned = tuple(part for part in parts if part != "")
        if all(isinstance(part, str) for part in cleaned):
            return n.Constant(extent, "".join(cleaned))  # type: ignore[arg-type]
        return n.ExpandableString(extent, cleaned)

    @staticmethod
    def _literal_text(text: str, here: bool) -> str:
        """Backtick escapes and, in a one-line string, ``""`` for one quote (about_Quoting_Rules)."""
        result: list[str] = []
        index = 0
        while index < len(text):
            character = text[index]
            if character == "`" and index + 1 < len(text):
                escaped = text[index + 1]
                result.append(_ESCAPES.get(escaped, escaped))
                index += 2
                continue
            if character == '"' and not here and text[index + 1 : index + 2] == '"':
                result.append('"')
                index += 2
                continue
            result.append(character)
            index += 1
        return "".join(result)

    def _expand(self, text: str, node: tree_sitter.Node) -> list[str | n.Expression]:
        """Variables in a bare word (``a$b``): the grammar leaves them to us."""
        parts: list[str | n.Expression] = []
        extent = self.extent(node)
        pattern = re.compile(r"\$(?:\{([^}]+)\}|((?:[A-Za-z]+:)?[A-Za-z0-9_?]+))")
        position = 0
        for match in pattern.finditer(text):
            parts.append(self._literal_text(text[position : match.start()], True))
            body = match.group(1) or match.group(2)
            qualifier, _, name = body.rpartition(":") if ":" in body else ("", "", body)
            parts.append(n.Variable(extent, n.VariablePath(qualifier.lower() or None, name)))
            position = match.end()
        parts.append(self._literal_text(text[position:], True))
        return [part for part in parts if part != ""]


def _here_string_body(text: str) -> str:
    """The lines between ``@'`` and ``'@``, without the line breaks next to them."""
    body = text.split("\n", 1)[1]
    body = body[: body.rindex("\n")]
    return body.removesuffix("\r")


def _number(text: str) -> object | None:
    """A numeric literal's value and type, as about_Numeric_Literals (5.1) gives them; None if it is not one."""
    match = re.fullmatch(r"(0x[0-9a-f]+|[0-9]+(?:\.[0-9]*)?(?:e[+-]?[0-9]+)?|\.[0-9]+(?:e[+-]?[0-9]+)?)(l|d)?(kb|mb|gb|tb|pb)?", text, re.IGNORECASE)
    if not match:
        return None
    digits, suffix, multiplier_text = match.group(1).lower(), (match.group(2) or "").lower(), (match.group(3) or "").lower()
    multiplier = _MULTIPLIERS.get(multiplier_text, 1)
    if digits.startswith("0x"):
        value = int(digits, 16)
        # A hex literal of up to 32 bits is an Int32, its top bit the sign (0xFFFFFFFF is -1).
        if value <= 0xFFFFFFFF and suffix != "l":
            value = value - (1 << 32) if value & 0x80000000 else value
            return _integer(value * multiplier)
        if value <= 0xFFFFFFFFFFFFFFFF:
            value = value - (1 << 64) if value & (1 << 63) else value
            return Int64(value * multiplier) if INT64_MIN <= value * multiplier <= INT64_MAX else float(value * multiplier)
        return None
    is_real = "." in digits or "e" in digits
    if suffix == "d":
        try:
            return Decimal(digits) * multiplier
        except InvalidOperation:
            return None
    if is_real:
        if suffix == "l":
            return Int64(int(float(digits) * multiplier))
        return float(digits) * multiplier
    value = int(digits) * multiplier
    if suffix == "l":
        return Int64(value) if value <= INT64_MAX else None
    return _integer(value)


def _integer(value: int) -> object:
    """Int32 when it fits, then Int64, Decimal, Double."""
    if value <= INT32_MAX:
        return value
    if value <= INT64_MAX:
        return Int64(value)
    if value < 2**96:
        return Decimal(value)
    return float(value)
