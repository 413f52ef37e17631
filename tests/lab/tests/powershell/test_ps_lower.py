"""Lowering PowerShell source to the interpreter's syntax tree."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import tree_sitter
import tree_sitter_powershell
from wuacache_lab.powershell import nodes as n
from wuacache_lab.powershell.errors import UnsupportedSyntax
from wuacache_lab.powershell.lower import HANDLED_NODE_TYPES, parse
from wuacache_lab.powershell.values import Int64

PLUGIN_UTILS = Path(__file__).resolve().parents[4] / "plugins" / "plugin_utils"


def test_every_node_type_the_lowering_reads_exists_in_the_installed_grammar() -> None:
    language = tree_sitter.Language(tree_sitter_powershell.language())
    kinds = {language.node_kind_for_id(kind) for kind in range(language.node_kind_count)}
    assert HANDLED_NODE_TYPES - kinds == set()


@pytest.mark.parametrize("script", ["_wua_bridge.ps1", "_wua_bootstrap.ps1", "_wua_task.ps1"])
def test_the_shipped_scripts_lower_without_refusal(script: str) -> None:
    body = parse((PLUGIN_UTILS / script).read_text(encoding="utf-8"), script)
    assert body.statements


def only_expression(text: str) -> n.Expression:
    statement = parse(text).statements[0]
    assert isinstance(statement, n.Pipeline) and len(statement.elements) == 1
    element = statement.elements[0]
    assert not isinstance(element, n.Command)
    return element


def test_precedence_levels_collapse_to_operations() -> None:
    expression = only_expression("1 + 2 * 3 -eq 7 -and $true")
    assert isinstance(expression, n.BinaryOperation) and expression.operator == "-and"
    comparison = expression.left
    assert isinstance(comparison, n.BinaryOperation) and comparison.operator == "-eq"
    addition = comparison.left
    assert isinstance(addition, n.BinaryOperation) and addition.operator == "+"
    assert isinstance(addition.right, n.BinaryOperation) and addition.right.operator == "*"


@pytest.mark.parametrize(
    ("literal", "value", "kind"),
    [
        ("42", 42, int),
        ("0x80070000", -2147024896, int),
        ("0xFFFF", 65535, int),
        ("2147483648", 2147483648, Int64),
        ("1kb", 1024, int),
        ("10l", 10, Int64),
        ("1.5", 1.5, float),
        ("1e2", 100.0, float),
        ("10d", Decimal(10), Decimal),
    ],
)
def test_numeric_literals_have_their_51_types(literal: str, value: object, kind: type) -> None:
    constant = only_expression(literal)
    assert isinstance(constant, n.Constant)
    assert constant.value == value and type(constant.value) is kind


def test_strings_escape_and_expand() -> None:
    assert only_expression("'it''s `n'") == n.Constant(only_expression("'it''s `n'").extent, "it's `n")
    escaped = only_expression('"a`tb""c`$d"')
    assert isinstance(escaped, n.Constant) and escaped.value == 'a\tb"c$d'
    expanded = only_expression('"$Path.tmp $($x.y) ${b}c $env:X"')
    assert isinstance(expanded, n.ExpandableString)
    kinds = [type(part).__name__ if not isinstance(part, str) else part for part in expanded.parts]
    assert kinds == ["Variable", ".tmp ", "Subexpression", " ", "Variable", "c ", "Variable"]
    env = expanded.parts[-1]
    assert isinstance(env, n.Variable) and env.path == n.VariablePath("env", "X")


def test_here_strings_drop_the_line_breaks_next_to_their_quotes() -> None:
    verbatim = only_expression("@'\r\nline $x\r\n'@")
    assert isinstance(verbatim, n.Constant) and verbatim.value == "line $x"
    expandable = only_expression('@"\nsay "$x"\n"@')
    assert isinstance(expandable, n.ExpandableString) and expandable.parts[0] == 'say "'


def command(text: str) -> n.Command:
    statement = parse(text).statements[0]
    assert isinstance(statement, n.Pipeline)
    element = statement.elements[0]
    assert isinstance(element, n.Command)
    return element


def test_a_colon_joins_an_argument_to_its_parameter() -> None:
    elements = command("Get-Item -EA Stop -ErrorAction:Stop -Force:$false x").elements
    assert [type(element).__name__ for element in elements] == [
        "CommandParameter",
        "Constant",
        "CommandParameter",
        "CommandParameter",
        "Constant",
    ]
    error_action = elements[2]
    assert isinstance(error_action, n.CommandParameter) and error_action.name == "ErrorAction"
    assert isinstance(error_action.argument, n.Constant) and error_action.argument.value == "Stop"
    force = elements[3]
    assert isinstance(force, n.CommandParameter) and isinstance(force.argument, n.Variable)


def test_bare_words_are_numbers_or_strings_that_expand_variables() -> None:
    elements = command("Start-Sleep 5 a$b Microsoft.Update.Session").elements
    assert isinstance(elements[0], n.Constant) and elements[0].value == 5
    assert isinstance(elements[1], n.ExpandableString)
    assert isinstance(elements[2], n.Constant) and elements[2].value == "Microsoft.Update.Session"


@pytest.mark.parametrize(("text", "method_syntax"), [("f(1, 2)", True), ("f (1, 2)", False), ("f(1)", False)])
def test_calls_written_like_methods_are_marked_for_strict_mode(text: str, method_syntax: bool) -> None:
    assert command(text).method_syntax is method_syntax


def test_a_function_param_block_keeps_attributes_constraints_and_defaults() -> None:
    definition = parse(
        "function F {\n"
        "    param(\n"
        "        [Parameter(Mandatory = $true)] [AllowEmptyString()] [string]$Name,\n"
        "        [Parameter(Mandatory)] [Alias('wuauserv_after')] $After = 3\n"
        "    )\n"
        "}"
    ).statements[0]
    assert isinstance(definition, n.FunctionDefinition) and definition.name == "F"
    assert definition.body.param_block is not None
    name, after = definition.body.param_block.parameters
    assert [str(attribute.type_name) for attribute in name.attributes] == ["Parameter", "AllowEmptyString"]
    assert name.attributes[0].named[0][0] == "Mandatory" and name.type_constraints == (n.TypeName("string"),)
    assert after.attributes[0].named == (("Mandatory", None),)
    assert isinstance(after.default, n.Constant) and after.default.value == 3


def test_generic_and_array_type_names() -> None:
    literal = only_expression("[System.Collections.Generic.Stack[object]]")
    assert isinstance(literal, n.TypeLiteral)
    assert literal.type_name == n.TypeName("System.Collections.Generic.Stack", (n.TypeName("object"),))
    array = only_expression("[string[]]")
    assert isinstance(array, n.TypeLiteral) and array.type_name == n.TypeName("string", (), 1)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("$a = 1\nGet-A && Get-B", 2, "The token '&&' is not a valid statement separator in this version."),
        ("Get-A || Get-B", 1, "The token '||' is not a valid statement separator in this version."),
        ("$x = 1\n\n$a ?? $b", 3, "Unexpected token '??'"),
        ("$a ??= 1", 1, "Unexpected token '??'"),
        ("$x?.Name", 1, "Unexpected token '?'"),
        ("$z = $a ? 1 : 2", 1, "Unexpected token '?'"),
        ("function F {\n    clean { 1 }\n}", 2, "clean blocks"),
        ("class A {\n}", 1, "class definitions"),
        ("switch ($x) { 1 { 'a' } }", 1, "switch statements"),
        ("Get-A 2>&1", 1, "redirections"),
    ],
)
def test_what_51_or_the_lab_does_not_run_is_refused_naming_file_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(UnsupportedSyntax) as refused:
        parse(text, "bridge.ps1")
    assert refused.value.extent.file_name == "bridge.ps1" and refused.value.extent.line == line
    assert message in refused.value.reason
    assert refused.value.exception.type_name == "System.Management.Automation.ParseException"
    assert refused.value.exception.message.startswith(f"At bridge.ps1:{line} char:")
