"""Statements and expressions, run with Windows PowerShell 5.1's semantics.

Output (about_Pipelines): every statement writes its values to the output of
the script block it is in; an expression's collection is written element by
element (a hashtable or a string is one object), ``$null`` is written, a
command with no output writes nothing. Where a pipeline is used as a value
(``$x = ...``, ``( )``, ``$( )``), a pure expression keeps its value as is,
and the output of commands and statements is collected: nothing is
:data:`~wuacache_lab.powershell.values.AUTOMATION_NULL` (which ``@()`` and
the pipeline see as nothing, not as ``$null``), one object is itself, more
are an object[]. ``@( )`` is always an array.

Errors (about_Try_Catch_Finally, about_Throw, about_Preference_Variables):
a ``catch [Type]`` matches the exception thrown, its InnerException, or for
``-ErrorAction Stop`` the error the command wrote, as PowerShell's
ExceptionHandlingOps.FindMatchingHandler does; ``$_`` is the error record
with the exception that matched. A ``finally`` block runs on the way out,
except when the process is ended from outside.

Pipelines run stage by stage: each command receives all the objects of the
previous one. Every statement, and every loop iteration, first checks
whether the process was ended (``Runtime.check_alive``).
"""

from __future__ import annotations

from collections.abc import Iterator

from wuacache_lab.powershell import commands, coverage, operators
from wuacache_lab.powershell import nodes as n
from wuacache_lab.powershell.bind import (
    ALL_SETS,
    Argument,
    Binder,
    Binding,
    NamedArgument,
    ParameterSpec,
    PositionalArgument,
    SetMembership,
    Signature,
    cmdlet_signature,
    common_parameter_specs,
    splat,
)
from wuacache_lab.powershell.commands import CmdletCall, command_not_found
from wuacache_lab.powershell.contracts import CmdletContract
from wuacache_lab.powershell.conversions import SwitchParameter, enumerate_value, is_enumerable, to_bool, to_string
from wuacache_lab.powershell.corelib import format_value
from wuacache_lab.powershell.dotnet import TypeRegistry, dotnet_type
from wuacache_lab.powershell.errors import (
    OPERATION_STOPPED,
    PARENT,
    BreakSignal,
    ContinueSignal,
    DotNetException,
    ErrorRecord,
    ExitSignal,
    InvocationInfo,
    LabLimitation,
    PowerShellError,
    ProcessKilled,
    ReturnSignal,
    runtime_error,
)
from wuacache_lab.powershell.reference import ReferenceContracts
from wuacache_lab.powershell.raised import RaisedError
from wuacache_lab.powershell.runtime import Runtime, StandardInput, running
from wuacache_lab.powershell.scopes import SessionState
from wuacache_lab.powershell.values import (
    AUTOMATION_NULL,
    DotNetType,
    Hashtable,
    OrderedDictionary,
    PSObject,
    ScriptBlock,
    base_object,
)

_COMPARISON_TYPES = ("-is", "-isnot", "-as")
_UNSUPPORTED_COMMON = ("ErrorVariable", "WarningVariable", "InformationVariable", "OutVariable", "OutBuffer", "PipelineVariable")


@dotnet_type("System.Management.Automation.FunctionInfo")
class FunctionInfo:
    """A function defined by a script: its name and body."""

    def __init__(self, name: str, block: ScriptBlock) -> None:
        self.name = name
        self.block = block

    @property
    def Name(self) -> str:  # noqa: N802 - .NET member name
        return self.name

    @property
    def ScriptBlock(self) -> ScriptBlock:  # noqa: N802
        return self.block


@dotnet_type("System.Collections.ArrayList+ArrayListEnumeratorSimple")
class InputEnumerator:
    """``$input``: the objects given to a script block, which can be enumerated once."""

    def __init__(self, items: list[object]) -> None:
        self._items = items

    def __iter__(self) -> Iterator[object]:
        items, self._items = self._items, []
        return iter(items)


class StandardInputLines(InputEnumerator):
    """``$input`` of a script run by ``powershell.exe``: the lines of its standard input nobody has read yet."""

    def __init__(self, stdin: StandardInput) -> None:
        super().__init__([])
        self._stdin = stdin

    def __iter__(self) -> Iterator[object]:
        return iter(self._stdin.read().decode("utf-8-sig", errors="replace").splitlines())


class Interpreter:
    """One PowerShell session: its scopes, its types, its commands, run on a runtime.

    ``report_error(record, exception)`` receives the non-terminating errors
    that ``-ErrorAction Continue`` shows (exception None when silenced); the
    process writes them on standard error.
    """

    def __init__(self, runtime: Runtime, contracts: ReferenceContracts | None = None, report_error=None) -> None:  # type: ignore[no-untyped-def]
        self.runtime = runtime
        self.contracts = contracts if contracts is not None else ReferenceContracts()
        self.types = TypeRegistry(self.contracts)
        self.state = SessionState(runtime.environment, self._convert_for_variable)
        self.last_status = True
        self.errors: list[object] = []
        self.stdin = StandardInput()
        self._report = report_error
        self._handling: list[PowerShellError] = []
        self._signatures: dict[int, Signature] = {}
        self._coverage = coverage.from_environment()
        self.state.set_local("Error", self.errors)
        for name in ("PSScriptRoot", "PSCommandPath"):
            self.state.set_local(name, "")

    # ------------------------------------------------------------ entry points

    def run(self, body: n.ScriptBlockBody, out: list[object], stdin: StandardInput | None = None) -> None:
        """Run a script in the global scope, as ``powershell.exe -Command`` does, writing its output to ``out``."""
        with running(self.runtime, self.invoke_delegate):
            if stdin is not None:
                self.stdin = stdin
            self.state.set_local("input", StandardInputLines(self.stdin))
            self._execute(body.statements, out)

    def invoke_delegate(self, block: object, arguments: list[object]) -> object:
        """A script block called by .NET as a delegate: its arguments positional, its output its return value."""
        assert isinstance(block, ScriptBlock)
        output: list[object] = []
        self._invoke_block(block, [PositionalArgument(argument, None) for argument in arguments], None, None, None, output)
        return _collect(output)

    # ------------------------------------------------------------ the command context cmdlets see

    def error_action(self, binding: Binding) -> str:
        chosen = binding.values.get("ErrorAction")
        if chosen is None:
            chosen = self.state.read(n.VariablePath(None, "ErrorActionPreference"))
        return to_string(chosen)

    def report_error(self, record: ErrorRecord, exception: DotNetException | None) -> None:
        self.errors.insert(0, record)
        if exception is not None and self._report is not None:
            self._report(record, exception)

    def set_strict_mode(self, version: int) -> None:
        # Set-StrictMode runs in its own command scope; it applies to the scope that called it.
        self.state.set_strict_mode(version)

    # ------------------------------------------------------------ statements

    def _execute(self, statements: tuple[n.Statement, ...], out: list[object]) -> None:
        for statement in statements:
            self.runtime.check_alive()
            if self._coverage is not None:
                self._coverage.started(statement.extent)
            try:
                self._statement(statement, out)
            except PowerShellError as error:
                if error.record.invocation is None:
                    error.record.invocation = InvocationInfo(None, statement.extent)
                if error.raised_by is None:
                    error.raised_by = statement.extent
                    inner, inner_types = error.exception.inner, []
                    while inner is not None:
                        inner_types.append(inner.type_name)
                        inner = inner.inner
                    self.runtime.raised.append(
                        RaisedError(
                            error.exception.type_name,
                            error.exception.message,
                            statement.extent.file_name,
                            statement.extent.line,
                            tuple(inner_types),
                        )
                    )
                raise
            except LabLimitation as limitation:
                if limitation.extent is None:
                    limitation.extent = statement.extent
                raise

    def _statement(self, node: n.Statement, out: list[object]) -> None:
        if isinstance(node, n.Pipeline):
            self._pipeline_statement(node, out)
        elif isinstance(node, n.Assignment):
            self._assign(node)
        elif isinstance(node, n.If):
            self._if(node, out)
        elif isinstance(node, n.ForEach):
            self._foreach(node, out)
        elif isinstance(node, n.For):
            self._for(node, out)
        elif isinstance(node, n.While):
            self._while(node, out)
        elif isinstance(node, n.DoLoop):
            self._do(node, out)
        elif isinstance(node, n.Try):
            self._try(node, out)
        elif isinstance(node, n.FlowControl):
            self._flow(node, out)
        elif isinstance(node, n.FunctionDefinition):
            block = ScriptBlock(node.body, node.extent.text)
            self.state.define_function(node.name, FunctionInfo(node.name.rpartition(":")[2], block))
        else:
            raise LabLimitation(f"The lab's PowerShell does not run {type(node).__name__} statements.")

    def _pipeline_statement(self, node: n.Pipeline, out: list[object]) -> None:
        # $? tells whether the last statement succeeded; a command writing an error makes it false.
        if len(node.elements) == 1 and not isinstance(node.elements[0], n.Command):
            expression = node.elements[0]
            # Read by this very statement ("$?"), it is still the status of the one before.
            value = self.evaluate(expression)
            self.last_status = True
            if not isinstance(expression, n.IncrementDecrement):
                _write(value, out)
            return
        self.last_status = True
        self._run_pipeline(node, out)

    def statement_value(self, node: n.Statement) -> object:
        """A statement used as a value: a pure expression as it is, anything else its collected output."""
        if isinstance(node, n.Pipeline) and len(node.elements) == 1 and not isinstance(node.elements[0], n.Command):
            return self.evaluate(node.elements[0])
        if isinstance(node, n.Assignment):
            return self._assign(node)
        out: list[object] = []
        self._statement(node, out)
        return _collect(out)

    def _if(self, node: n.If, out: list[object]) -> None:
        for clause in node.clauses:
            if to_bool(self.statement_value(clause.condition)):
                self._execute(clause.body, out)
                return
        if node.else_body is not None:
            self._execute(node.else_body, out)

    def _loop_body(self, body: tuple[n.Statement, ...], label: str | None, out: list[object]) -> bool:
        """Run one iteration; False when the loop is to stop (``break``)."""
        try:
            self._execute(body, out)
        except BreakSignal as signal:
            if signal.label is None or (label is not None and signal.label.casefold() == label.casefold()):
                return False
            raise
        except ContinueSignal as signal:
            if signal.label is not None and (label is None or signal.label.casefold() != label.casefold()):
                raise
        return True

    def _foreach(self, node: n.ForEach, out: list[object]) -> None:
        collection = self.statement_value(node.iterable)
        # Since PowerShell 3.0 a foreach over $null does not run its body.
        if collection is AUTOMATION_NULL or collection is None:
            return
        for item in list(enumerate_value(collection)):
            self.runtime.check_alive()
            self.state.assign(node.variable.path, item)
            if not self._loop_body(node.body, node.label, out):
                return

    def _for(self, node: n.For, out: list[object]) -> None:
        if node.initializer is not None:
            self._statement(node.initializer, out)
        while node.condition is None or to_bool(self.statement_value(node.condition)):
            self.runtime.check_alive()
            if not self._loop_body(node.body, node.label, out):
                return
            if node.iterator is not None:
                self._statement(node.iterator, out)

    def _while(self, node: n.While, out: list[object]) -> None:
        while to_bool(self.statement_value(node.condition)):
            self.runtime.check_alive()
            if not self._loop_body(node.body, node.label, out):
                return

    def _do(self, node: n.DoLoop, out: list[object]) -> None:
        while True:
            self.runtime.check_alive()
            if not self._loop_body(node.body, node.label, out):
                return
            holds = to_bool(self.statement_value(node.condition))
            if holds == node.until:
                return

    def _flow(self, node: n.FlowControl, out: list[object]) -> None:
        keyword = node.keyword
        if keyword == "return":
            if node.value is not None:
                _write(self.statement_value(node.value), out)
            raise ReturnSignal()
        if keyword == "break":
            raise BreakSignal(node.label)
        if keyword == "continue":
            raise ContinueSignal(node.label)
        if keyword == "exit":
            code = 0
            if node.value is not None:
                value = base_object(self.statement_value(node.value))
                code = self.types.convert(value, self.types.resolve("int")) if value is not None else 0  # type: ignore[assignment]
            raise ExitSignal(code)
        self._throw(node)

    def _throw(self, node: n.FlowControl) -> None:
        if node.value is None:
            if self._handling:
                raise self._handling[-1]
            raise runtime_error("ScriptHalted", "ScriptHalted", category=OPERATION_STOPPED, extent=node.extent)
        value = base_object(self.statement_value(node.value))
        if isinstance(value, DotNetException):
            raise PowerShellError(value, ErrorRecord(value, value.message, OPERATION_STOPPED, None, InvocationInfo(None, node.extent)))
        if isinstance(value, ErrorRecord):
            raise PowerShellError(value.exception if isinstance(value.exception, DotNetException) else DotNetException("System.Management.Automation.RuntimeException"), value)
        message = to_string(value)
        exception = DotNetException("System.Management.Automation.RuntimeException", message, WasThrownFromThrowStatement=True)
        raise PowerShellError(exception, ErrorRecord(PARENT, message, OPERATION_STOPPED, value, InvocationInfo(None, node.extent)))

    # ------------------------------------------------------------ try, catch, finally

    def _try(self, node: n.Try, out: list[object]) -> None:
        try:
            try:
                self._execute(node.body, out)
            except PowerShellError as error:
                handled = self._catch(node, error, out)
                if not handled:
                    raise
        except ProcessKilled:
            # A process ended from outside runs nothing more, finally blocks included.
            raise
        except BaseException:
            if node.finally_body is not None:
                self._execute(node.finally_body, out)
            raise
        if node.finally_body is not None:
            self._execute(node.finally_body, out)

    def _catch(self, node: n.Try, error: PowerShellError, out: list[object]) -> bool:
        if not node.catches:
            return False
        handlers: list[tuple[int, DotNetType | None]] = []
        for index, clause in enumerate(node.catches):
            if not clause.types:
                handlers.append((index, None))
            for type_name in clause.types:
                handlers.append((index, self.types.resolve(type_name, clause.extent)))
        chosen = _find_handler(handlers, error)
        if chosen is None:
            return False
        clause_index, exception = chosen
        if len(node.catches) == 1 and not node.catches[0].types:
            # A lone catch-all hands over the record with the exception thrown (Compiler: new ErrorRecord(rte.ErrorRecord, rte)).
            record = error.record.with_exception(error.exception)
        else:
            record = error.record.with_exception(exception)
        scope = self.state.current
        saved = {name: scope.variables.get(name) for name in ("_", "psitem")}
        self.state.set_local("_", record)
        self.state.set_local("PSItem", record)
        self._handling.append(error)
        try:
            self._execute(node.catches[clause_index].body, out)
        finally:
            self._handling.pop()
            for name, variable in saved.items():
                if variable is None:
                    scope.variables.pop(name, None)
                else:
                    scope.variables[name] = variable
        return True

    # ------------------------------------------------------------ assignment

    def _assign(self, node: n.Assignment) -> object:
        value = self.statement_value(node.value)
        if node.operator != "=":
            current = self.evaluate(node.target)
            operation = {"+=": operators.add, "-=": operators.subtract, "*=": operators.multiply, "/=": operators.divide, "%=": operators.remainder}
            value = operation[node.operator](current, value)
        self._store(node.target, value)
        return value

    def _store(self, target: n.Expression, value: object) -> None:
        if isinstance(target, n.Variable):
            self.state.assign(target.path, value)
        elif isinstance(target, n.Cast) and isinstance(target.operand, n.Variable):
            constraint = self.types.resolve(target.type_name, target.extent)
            self.state.assign(target.operand.path, value, constraint)
        elif isinstance(target, n.MemberAccess):
            name = to_string(self.evaluate(target.member))
            owner = self.evaluate(target.target)
            if target.static:
                self.types.set_static(_as_type(owner, target.extent), name, _plain(value), target.extent)
            else:
                self.types.set_property(owner, name, _plain(value), target.extent)
        elif isinstance(target, n.Index):
            self.types.set_index(self.evaluate(target.target), base_object(self.evaluate(target.index)), _plain(value), target.extent)
        else:
            raise runtime_error("The assignment expression is not valid.", "InvalidLeftHandSide", extent=target.extent)

    # ------------------------------------------------------------ expressions

    def evaluate(self, node: n.Expression) -> object:  # noqa: C901 - one dispatch over the node types
        strict = self.state.strict_mode
        if isinstance(node, n.Constant):
            return node.value
        if isinstance(node, n.Variable):
            return self._variable(node)
        if isinstance(node, n.ExpandableString):
            offset = self.runtime.utc_offset_minutes
            return "".join(part if isinstance(part, str) else to_string(self.evaluate(part), offset) for part in node.parts)
        if isinstance(node, n.MemberAccess):
            name = to_string(self.evaluate(node.member))
            target = self.evaluate(node.target)
            if node.static:
                return self.types.get_static(_as_type(target, node.extent), name, strict, node.extent)
            return self.types.get_property(target, name, strict, node.extent)
        if isinstance(node, n.InvokeMember):
            name = to_string(self.evaluate(node.member))
            target = self.evaluate(node.target)
            arguments = [_plain(self.evaluate(argument)) for argument in node.arguments]
            if node.static:
                return self.types.invoke_static(_as_type(target, node.extent), name, arguments, node.extent)
            result = self.types.invoke_method(target, name, arguments, strict, node.extent)
            return result
        if isinstance(node, n.Index):
            return self.types.index(self.evaluate(node.target), base_object(self.evaluate(node.index)), strict, node.extent)
        if isinstance(node, n.BinaryOperation):
            return self._binary(node)
        if isinstance(node, n.UnaryOperation):
            return self._unary(node)
        if isinstance(node, n.ArrayLiteral):
            return [_plain(self.evaluate(element)) for element in node.elements]
        if isinstance(node, n.ArraySubexpression):
            out: list[object] = []
            self._execute(node.statements, out)
            return out
        if isinstance(node, n.Subexpression):
            out = []
            self._execute(node.statements, out)
            return _collect(out)
        if isinstance(node, n.Parenthesized):
            return self.statement_value(node.pipeline)
        if isinstance(node, n.HashLiteral):
            return self._hash_literal(node, Hashtable())
        if isinstance(node, n.ScriptBlockExpression):
            return ScriptBlock(node.body, node.extent.text[1:-1])
        if isinstance(node, n.TypeLiteral):
            return self.types.resolve(node.type_name, node.extent)
        if isinstance(node, n.Cast):
            return self._cast(node)
        if isinstance(node, n.IncrementDecrement):
            return self._increment(node)
        raise LabLimitation(f"The lab's PowerShell does not evaluate {type(node).__name__}.")

    def _variable(self, node: n.Variable) -> object:
        if node.path.qualifier is None and node.path.name == "?":
            return self.last_status
        if node.splatted:
            raise runtime_error(
                "Splatted variables like '@" + node.path.name + "' cannot be part of a comma-separated list of arguments.",
                "SplattingNotPermitted",
                extent=node.extent,
            )
        return self.state.read(node.path, node.extent)

    def _hash_literal(self, node: n.HashLiteral, table: Hashtable) -> Hashtable:
        for entry in node.entries:
            key = base_object(self.evaluate(entry.key))
            if key in table:
                raise runtime_error(f"Duplicate keys '{to_string(key)}' are not allowed in hash literals.", "DuplicateKeyInHashLiteral", extent=node.extent)
            table[key] = _plain(self.statement_value(entry.value))
        return table

    def _cast(self, node: n.Cast) -> object:
        name = node.type_name.name.casefold()
        if not node.type_name.generic_arguments and not node.type_name.array_rank:
            if name == "ordered":
                if not isinstance(node.operand, n.HashLiteral):
                    raise runtime_error("The ordered attribute can be specified only on a hash literal node.", "OrderedAttributeOnlyOnHashLiteralNode", extent=node.extent)
                return self._hash_literal(node.operand, OrderedDictionary())
            if name == "pscustomobject" and isinstance(node.operand, n.HashLiteral):
                # [pscustomobject] before a hash literal keeps the order of its keys.
                return PSObject.custom(self._hash_literal(node.operand, OrderedDictionary()).items())
            if name == "void":
                self.evaluate(node.operand)
                return AUTOMATION_NULL
        target = self.types.resolve(node.type_name, node.extent)
        value = self.evaluate(node.operand)
        if target.full_name == "System.Type" and isinstance(base_object(value), str):
            return self.types.resolve(to_string(value), node.extent)
        if target.full_name == "System.Management.Automation.PSObject" and name == "pscustomobject":
            return value if isinstance(value, PSObject) else PSObject(base_object(value))
        return self.types.convert(value, target, self.runtime.utc_offset_minutes)

    def _increment(self, node: n.IncrementDecrement) -> object:
        before = self.evaluate(node.operand)
        after = operators.add(before, 1) if node.operator == "++" else operators.subtract(before, 1)
        self._store(node.operand, after)
        return after if node.prefix else before

    def _binary(self, node: n.BinaryOperation) -> object:
        operator = node.operator
        if operator == "-and":
            return to_bool(self.evaluate(node.left)) and to_bool(self.evaluate(node.right))
        if operator == "-or":
            return to_bool(self.evaluate(node.left)) or to_bool(self.evaluate(node.right))
        left = self.evaluate(node.left)
        right = self.evaluate(node.right)
        if operator == "-xor":
            return operators.logical_xor(left, right)
        if operator in _COMPARISON_TYPES:
            return self._type_operator(operator, left, right, node.extent)
        if operator == "+":
            return operators.add(left, right)
        if operator == "-":
            return operators.subtract(left, right)
        if operator == "*":
            return operators.multiply(left, right)
        if operator == "/":
            return operators.divide(left, right)
        if operator == "%":
            return operators.remainder(left, right)
        if operator in ("-band", "-bor", "-bxor"):
            return operators.bitwise(operator, left, right)
        if operator in ("-shl", "-shr"):
            return operators.shift(operator, left, right)
        if operator == "..":
            return operators.value_range(left, right)
        if operator == "-f":
            return operators.format_operator(left, right, format_value)
        if operator == "-join":
            return operators.join(left, right)
        if operators.is_comparison(operator):
            result, matches = operators.comparison(operator, left, right)
            if matches is not None:
                self.state.set_local("Matches", matches)
            return result
        raise LabLimitation(f"The lab's PowerShell does not implement the operator {operator}.")

    def _type_operator(self, operator: str, left: object, right: object, extent: n.Extent) -> object:
        target = _as_type(right, extent) if not isinstance(base_object(right), str) else self.types.resolve(to_string(right), extent)
        if operator == "-as":
            try:
                return self.types.convert(left, target, self.runtime.utc_offset_minutes)
            except PowerShellError:
                return None
        found = self.types.is_instance(left, target)
        return found if operator == "-is" else not found

    def _unary(self, node: n.UnaryOperation) -> object:
        operand = self.evaluate(node.operand)
        operator = node.operator
        if operator in ("-not", "!"):
            return not to_bool(operand)
        if operator == "-bnot":
            return operators.bitwise_not(operand)
        if operator == "-":
            return operators.negate(operand)
        if operator == "+":
            return operators.add(0, operand)
        if operator == "-split":
            return operators.unary_split(operand)
        if operator == "-join":
            return operators.join(operand, "")
        raise LabLimitation(f"The lab's PowerShell does not implement the operator {operator}.")

    # ------------------------------------------------------------ pipelines and commands

    def _run_pipeline(self, node: n.Pipeline, out: list[object]) -> None:
        """Each stage gets the objects of the one before; the last writes to ``out`` as it goes."""
        stages = node.elements
        first = stages[0]
        objects: list[object] | None = None
        if isinstance(first, n.Command):
            objects = [] if len(stages) > 1 else out
            self._command(first, None, objects)
        else:
            value = self.evaluate(first)
            objects = [] if value is AUTOMATION_NULL else list(enumerate_value(value))
        for index, element in enumerate(stages[1:], start=2):
            assert isinstance(element, n.Command)
            target: list[object] = out if index == len(stages) else []
            self._command(element, objects, target)
            objects = target

    def _arguments(self, node: n.Command) -> list[Argument]:
        arguments: list[Argument] = []
        for element in node.elements:
            if isinstance(element, n.CommandParameter):
                if element.argument is not None:
                    arguments.append(NamedArgument(element.name, element.extent, self.evaluate(element.argument), True))
                else:
                    arguments.append(NamedArgument(element.name, element.extent))
            elif isinstance(element, n.Variable) and element.splatted:
                arguments.extend(splat(self.state.read(element.path, element.extent), element.extent))
            else:
                arguments.append(PositionalArgument(self.evaluate(element), element.extent))
        return arguments

    def _command(self, node: n.Command, input_objects: list[object] | None, out: list[object]) -> None:
        arguments = self._arguments(node)
        if node.method_syntax and self.state.strict_mode >= 2:
            raise runtime_error(
                "The function or command was called as if it were a method. Parameters should be separated by spaces. "
                "For information about parameters, see the about_Parameters Help topic.",
                "StrictModeFunctionCallWithParens",
                extent=node.extent,
            )
        self.last_status = True
        try:
            if node.call_operator:
                target = base_object(self.evaluate(node.name))  # type: ignore[arg-type]
                if isinstance(target, ScriptBlock):
                    return self._invoke_block(target, arguments, input_objects, node.extent, None, out)
                if isinstance(target, FunctionInfo):
                    return self._invoke_block(target.block, arguments, input_objects, node.extent, target.name, out)
                if not isinstance(target, str):
                    raise runtime_error(
                        "The expression after '&' in a pipeline element produced an object that was not valid. "
                        "It must result in a command name, a script block, or a CommandInfo object.",
                        "BadExpression",
                        extent=node.extent,
                    )
                name = target
            else:
                name = node.name  # type: ignore[assignment]
            function = self.state.find_function(name)
            if isinstance(function, FunctionInfo):
                return self._invoke_block(function.block, arguments, input_objects, node.extent, function.name, out)
            contract = self.contracts.cmdlet(name)
            if contract is not None:
                return self._invoke_cmdlet(contract, name, arguments, input_objects, node.extent, out)
            if self._run_program(name, arguments, input_objects, node.extent, out):
                return None
            raise command_not_found(name, node.extent)
        except PowerShellError:
            self.last_status = False
            raise

    def _run_program(
        self, name: str, arguments: list[Argument], input_objects: list[object] | None, extent: n.Extent, out: list[object]
    ) -> bool:
        """A program of the machine (about_Automatic_Variables, ``$LASTEXITCODE``): each line of its output
        is a string on the pipeline, its exit code ``$LASTEXITCODE``, and ``$?`` says whether that is 0.
        Without pipeline input it inherits the process's standard input (:class:`StandardInput`).

        PowerShell's standard error is redirected in every process of the lab, and then Windows
        PowerShell 5.1 makes each line the program writes there an error record (NativeCommandError).
        False when the machine has no such program.
        """
        stdin = self.stdin if input_objects is None else StandardInput()
        completed = self.runtime.run_program(name, _program_arguments(arguments), stdin)
        if completed is None:
            return False
        out.extend(completed.stdout.splitlines())
        for line in completed.stderr.splitlines():
            exception = DotNetException("System.Management.Automation.RemoteException", line)
            self.report_error(ErrorRecord(exception, "NativeCommandError", "NotSpecified", line, InvocationInfo(name, extent)), exception)
        self.state.assign(n.VariablePath("global", "LASTEXITCODE"), completed.exit_code)
        self.last_status = completed.exit_code == 0
        return True

    def _invoke_cmdlet(
        self,
        contract: CmdletContract,
        name: str,
        arguments: list[Argument],
        input_objects: list[object] | None,
        extent: n.Extent,
        out: list[object],
    ) -> None:
        implementation = commands.implementation(contract.name)
        signature = self._signatures.get(id(contract))
        if signature is None:
            rules = commands.RULES.get(contract.name.casefold(), commands.ParameterRules())
            signature = self._signatures[id(contract)] = cmdlet_signature(contract, rules.unconverted, rules.allow_null)
        binder = Binder(signature, self._convert_parameter, function=False)
        binding = binder.bind(arguments, expects_input=input_objects is not None)
        for common in _UNSUPPORTED_COMMON:
            if common in binding.values:
                raise LabLimitation(f"The lab does not implement the common parameter -{common}.")
        records = iter([binding.values]) if input_objects is None else (binder.bind_input(binding, item) for item in input_objects)
        call = CmdletCall(name, binding, records, self, extent)
        try:
            out.extend(implementation(call))
        except PowerShellError as error:
            if error.record.invocation is None:
                error.record.invocation = InvocationInfo(name, extent)
            raise
        self.last_status = not call.had_error

    def _convert_parameter(self, value: object, type_name: str) -> object:
        target = self._parameter_type(type_name)
        if target is None:
            return value
        return self.types.convert(value, target, self.runtime.utc_offset_minutes)

    def _parameter_type(self, type_name: str) -> DotNetType | None:
        """A parameter's type as the tables name it (``System.String[]``, ``ActionPreference``); None if the lab has no such type."""
        for candidate in (type_name, f"System.Management.Automation.{type_name}"):
            try:
                return self.types.resolve(_type_name(candidate))
            except PowerShellError:
                continue
        return None

    # ------------------------------------------------------------ functions and script blocks

    def _invoke_block(
        self,
        block: ScriptBlock,
        arguments: list[Argument],
        input_objects: list[object] | None,
        extent: n.Extent | None,
        name: str | None,
        out: list[object],
    ) -> None:
        """A function or script block, in a new scope that is a child of the caller's (about_Scopes), writing to ``out``."""
        signature = self._function_signature(block.body, name or "<ScriptBlock>")
        if input_objects and any(membership.from_pipeline for parameter in signature.parameters for membership in parameter.sets.values()):
            raise LabLimitation("The lab's PowerShell does not bind pipeline input to a function's parameters; it reads $input.")
        binder = Binder(signature, self._convert_parameter, function=True)
        binding = binder.bind(arguments)
        scope = self.state.push()
        try:
            bound = Hashtable()
            for parameter in signature.parameters:
                if not parameter.sets:
                    continue
                constraint = self._parameter_type(parameter.type_name) if parameter.type_name else None
                if parameter.name in binding.values:
                    value = binding.values[parameter.name]
                    bound[parameter.name] = value
                elif parameter.switch:
                    value = SwitchParameter(False)
                elif parameter.default is not None:
                    value = self.evaluate(parameter.default)  # type: ignore[arg-type]
                else:
                    value = None
                self.state.set_local(parameter.name, self.types.convert(value, constraint) if constraint is not None else value, constraint)
            if "ErrorAction" in binding.values:
                self.state.set_local("ErrorActionPreference", to_string(binding.values["ErrorAction"]))
            self.state.set_local("args", list(binding.remaining))
            self.state.set_local("input", InputEnumerator(list(input_objects or [])))
            self.state.set_local("PSBoundParameters", bound)
            try:
                self._execute(block.body.statements, out)
            except ReturnSignal:
                pass
        finally:
            self.state.pop(scope)

    def _function_signature(self, body: n.ScriptBlockBody, name: str) -> Signature:
        cached = self._signatures.get(id(body))
        if cached is not None:
            return cached
        param_block = body.param_block
        parameters = param_block.parameters if param_block is not None else ()
        block_attributes = {str(attribute.type_name).casefold(): attribute for attribute in param_block.attributes} if param_block else {}
        for attribute_name in block_attributes:
            if attribute_name not in ("cmdletbinding", "outputtype"):
                raise LabLimitation(f"The lab's PowerShell does not implement the [{attribute_name}] attribute on param blocks.")
        advanced = "cmdletbinding" in block_attributes or any(
            str(attribute.type_name).casefold() == "parameter" for parameter in parameters for attribute in parameter.attributes
        )
        explicit_positions = any(
            option.casefold() == "position"
            for parameter in parameters
            for attribute in parameter.attributes
            if str(attribute.type_name).casefold() == "parameter"
            for option, _ in attribute.named
        )
        specs: list[ParameterSpec] = []
        next_position = 0
        for parameter in parameters:
            spec, positional = self._parameter_spec(parameter, explicit_positions, next_position)
            next_position += positional
            specs.append(spec)
        default_set = None
        binding_attribute = block_attributes.get("cmdletbinding")
        if binding_attribute is not None:
            for option, value in binding_attribute.named:
                if option.casefold() == "defaultparametersetname" and value is not None:
                    default_set = to_string(self.evaluate(value))
        if advanced:
            specs.extend(common_parameter_specs())
        signature = Signature(name, name, tuple(specs), default_set, advanced)
        self._signatures[id(body)] = signature
        return signature

    def _parameter_spec(self, parameter: n.ParameterNode, explicit_positions: bool, next_position: int) -> tuple[ParameterSpec, int]:
        """A param block's parameter; the second value is 1 when it took the next implicit position."""
        type_name = None
        if parameter.type_constraints:
            type_name = self.types.resolve(parameter.type_constraints[-1], parameter.extent).full_name
        switch = type_name == "System.Management.Automation.SwitchParameter"
        aliases: list[str] = []
        mandatory = from_pipeline = from_remaining = False
        position: int | None = None
        set_name = ALL_SETS
        allow = {"allownull": False, "allowemptystring": False, "allowemptycollection": False}
        for attribute in parameter.attributes:
            kind = str(attribute.type_name).casefold()
            if kind == "parameter":
                for option, value in attribute.named:
                    setting = True if value is None else self.evaluate(value)
                    key = option.casefold()
                    if key == "mandatory":
                        mandatory = to_bool(setting)
                    elif key == "position":
                        position = int(setting)  # type: ignore[call-overload]
                    elif key == "valuefrompipeline":
                        from_pipeline = to_bool(setting)
                    elif key == "valuefromremainingarguments":
                        from_remaining = to_bool(setting)
                    elif key == "parametersetname":
                        set_name = to_string(setting)
                    elif key not in ("helpmessage", "dontshow"):
                        raise LabLimitation(f"The lab's PowerShell does not implement [Parameter({option})].")
            elif kind == "alias":
                aliases.extend(to_string(item) for argument in attribute.positional for item in enumerate_value(self.evaluate(argument)))
            elif kind in allow:
                allow[kind] = True
            else:
                raise LabLimitation(f"The lab's PowerShell does not implement the [{attribute.type_name}] attribute.")
        implicit = 0
        if position is None and not explicit_positions and not switch and not from_remaining:
            position, implicit = next_position, 1
        membership = SetMembership(position, mandatory, from_pipeline, from_remaining)
        spec = ParameterSpec(
            parameter.name,
            type_name,
            tuple(aliases),
            {set_name: membership},
            switch,
            allow["allownull"],
            allow["allowemptystring"],
            allow["allowemptycollection"],
            default=parameter.default,
        )
        return spec, implicit

    # ------------------------------------------------------------ conversions

    def _convert_for_variable(self, value: object, target: DotNetType) -> object:
        return self.types.convert(value, target, self.runtime.utc_offset_minutes)


def _program_arguments(arguments: list[Argument]) -> list[str]:
    """The words PowerShell passes a program: each argument as a string, an array's elements one by one,
    ``$null`` as nothing, a parameter as written (``-name``, ``-name:value``)."""
    words: list[str] = []
    for argument in arguments:
        if isinstance(argument, NamedArgument):
            words.append(f"-{argument.name}:{to_string(argument.value)}" if argument.has_value else f"-{argument.name}")
            continue
        value = base_object(argument.value)
        items = enumerate_value(value) if is_enumerable(value) else [value]
        words.extend(to_string(item) for item in items if item is not None and item is not AUTOMATION_NULL)
    return words


def _type_name(text: str) -> n.TypeName | str:
    """A type name as the tables write it, ``System.String[]``, as the registry reads it."""
    if text.endswith("[]"):
        return n.TypeName(text[:-2], (), 1)
    return text


def _find_handler(handlers: list[tuple[int, DotNetType | None]], error: PowerShellError) -> tuple[int, DotNetException] | None:
    """ExceptionHandlingOps.FindMatchingHandler: the inner exception first, then the one thrown, then a stopped command's error.

    The most specific handler wins: a handler's rank counts the other
    handlers' types that derive from its own type.
    """
    ranks = [0] * len(handlers)
    for i, (_, first) in enumerate(handlers):
        for j in range(i + 1, len(handlers)):
            second = handlers[j][1]
            if second is None or (first is not None and first.full_name != second.full_name and first.is_a(second)):
                ranks[j] += 1
    best: list[object] = [None, len(handlers) + 1, None]

    def consider(exception: DotNetException) -> None:
        handler = next((i for i, (_, kind) in enumerate(handlers) if kind is not None and kind.full_name.casefold() == exception.type_name.casefold()), None)
        if handler is None:
            handler = next((i for i, (_, kind) in enumerate(handlers) if kind is not None and exception.is_a(kind.full_name)), None)
        if handler is None:
            handler = next((i for i, (_, kind) in enumerate(handlers) if kind is None), None)
        if handler is None:
            return
        current = best[0]
        if ranks[handler] < best[1] or (ranks[handler] == best[1] and current is not None and handlers[current][1] is None):  # type: ignore[index]
            best[0], best[1], best[2] = handler, ranks[handler], exception

    thrown = error.exception
    if thrown.inner is not None:
        consider(thrown.inner)
    if best[1] > 0:  # type: ignore[operator]
        consider(thrown)
    if best[1] > 0 and thrown.is_a("System.Management.Automation.ActionPreferenceStopException"):  # type: ignore[operator]
        written = error.record.exception
        if isinstance(written, DotNetException):
            consider(written)
    if best[0] is None:
        return None
    return handlers[best[0]][0], best[2]  # type: ignore[index, return-value]


def _write(value: object, out: list[object]) -> None:
    """An expression statement's value, written to the output: collections element by element."""
    if value is AUTOMATION_NULL:
        return
    if is_enumerable(value):
        out.extend(enumerate_value(value))
    else:
        out.append(value)


def _collect(out: list[object]) -> object:
    """Output used as a value: nothing, the one object, or an object[]."""
    if not out:
        return AUTOMATION_NULL
    if len(out) == 1:
        return out[0]
    return list(out)


def _plain(value: object) -> object:
    """A value stored in a structure: no output is $null there."""
    return None if value is AUTOMATION_NULL else value


def _as_type(value: object, extent: n.Extent) -> DotNetType:
    plain = base_object(value)
    if not isinstance(plain, DotNetType):
        raise runtime_error("Unable to find type.", "TypeNotFound", extent=extent)
    return plain
