"""Parameter binding: cmdlets from the contract tables, functions from their param blocks."""

from __future__ import annotations

import pytest
from powershell_snippets import failure, output
from wuacache_lab.powershell.bind import ALL_SETS, Binder, NamedArgument, ParameterSpec, PositionalArgument, SetMembership, Signature
from wuacache_lab.powershell.errors import LabLimitation, PowerShellError

# ---------------------------------------------------------------- cmdlets, from the tables


@pytest.mark.parametrize(
    "script",
    [
        "Join-Path -Path 'C:\\a' -ChildPath 'b'",
        "Join-Path -Pa 'C:\\a' -Ch 'b'",
        "join-path 'C:\\a' 'b'",
        "JOIN-PATH -PSPath 'C:\\a' -ChildPath:'b'",
        "Join-Path 'C:\\a' -ChildPath b -EA Stop",
        "Join-Path 'C:\\a' -ChildPath b -ErrorAction:Stop",
    ],
)
def test_valid_ways_to_call_a_cmdlet_bind_alike(script: str) -> None:
    assert output(script) == ["C:\\a\\b"]


def test_an_unknown_parameter_is_a_parameter_binding_exception() -> None:
    error = failure("Join-Path -Path a -ChildPath b -NoWait")
    assert error.exception.type_name == "System.Management.Automation.ParameterBindingException"
    assert error.exception.message == "A parameter cannot be found that matches parameter name 'NoWait'."
    assert error.record.fully_qualified_error_id == "NamedParameterNotFound,Microsoft.PowerShell.Commands.JoinPathCommand"
    assert error.record.invocation is not None and error.record.invocation.command_name == "Join-Path"


def test_an_ambiguous_prefix_names_its_candidates() -> None:
    error = failure("Get-Date -M 5")
    assert error.exception.message.startswith("Parameter cannot be processed because the parameter name 'M' is ambiguous. Possible matches include:")
    assert "-Month" in error.exception.message and "-Minute" in error.exception.message


def test_a_missing_mandatory_parameter_fails_as_under_non_interactive() -> None:
    error = failure("Join-Path -Path 'C:\\a'")
    assert error.exception.message == "Cannot process command because of one or more missing mandatory parameters: ChildPath."
    assert error.record.fully_qualified_error_id == "MissingMandatoryParameter,Microsoft.PowerShell.Commands.JoinPathCommand"


def test_an_argument_that_does_not_convert_fails_binding() -> None:
    error = failure("Start-Sleep -Seconds soon")
    assert error.exception.message.startswith("Cannot bind parameter 'Seconds'. Cannot convert value \"soon\" to type \"System.Int32\".")


def test_a_parameter_set_is_chosen_from_the_parameters_given() -> None:
    assert output("Split-Path 'C:\\a\\b'\nSplit-Path 'C:\\a\\b' -Leaf\nSplit-Path 'C:\\a'") == ["C:\\a", "b", "C:\\"]


def test_a_cmdlet_of_the_tables_that_the_lab_does_not_implement_is_a_lab_limitation() -> None:
    with pytest.raises(LabLimitation, match="Sort-Object"):
        output("@(2, 1) | Sort-Object")


def test_an_unknown_command_is_not_recognized() -> None:
    error = failure("Get-Nothing -Name x")
    assert error.exception.type_name == "System.Management.Automation.CommandNotFoundException"
    assert error.exception.message.startswith("The term 'Get-Nothing' is not recognized as the name of a cmdlet, function, script file, or operable program.")


def test_pipeline_input_binds_by_value() -> None:
    assert output("'C:\\a', 'C:\\b' | Join-Path -ChildPath c") == ["C:\\a\\c", "C:\\b\\c"]


# ---------------------------------------------------------------- functions


FUNCTION = (
    "function Save-Thing {\n"
    "    param(\n"
    "        [Parameter(Mandatory = $true)] [string]$Name,\n"
    "        [Parameter(Mandatory)] [AllowEmptyString()] [string]$Kind,\n"
    "        [Alias('after')] [int]$Count = 3,\n"
    "        [switch]$Force\n"
    "    )\n"
    "    \"$Name|$Kind|$Count|$Force\"\n"
    "}\n"
)


def test_an_advanced_function_binds_names_prefixes_aliases_and_positions() -> None:
    script = FUNCTION + "Save-Thing -Name a -Kind b\nSave-Thing x '' -after 5 -Force\nsave-thing -na n -ki k -Force:$false"
    assert output(script) == ["a|b|3|False", "x||5|True", "n|k|3|False"]


def test_an_advanced_function_refuses_an_unknown_parameter_with_its_name() -> None:
    error = failure(FUNCTION + "Save-Thing -Name a -Kind b -Bogus 1")
    assert error.record.fully_qualified_error_id == "NamedParameterNotFound,Save-Thing"


def test_a_mandatory_string_refuses_an_empty_string_unless_allowed() -> None:
    error = failure(FUNCTION + "Save-Thing -Name '' -Kind b")
    assert error.exception.message == "Cannot bind argument to parameter 'Name' because it is an empty string."
    assert output(FUNCTION + "Save-Thing -Name a -Kind $null") == ["a||3|False"]


def test_a_type_constraint_that_does_not_convert_is_an_argument_transformation_error() -> None:
    error = failure(FUNCTION + "Save-Thing -Name a -Kind b -Count many")
    assert error.record.fully_qualified_error_id == "ParameterArgumentTransformationError,Save-Thing"
    assert error.exception.message.startswith("Cannot process argument transformation on parameter 'Count'.")


def test_an_advanced_function_takes_error_action_as_its_error_preference() -> None:
    script = "function Quiet {\n    [CmdletBinding()]\n    param()\n    Write-Error 'hidden'\n    'done'\n}\nQuiet -ErrorAction SilentlyContinue"
    assert output(script) == ["done"]


def test_a_simple_function_gives_what_it_does_not_bind_to_args() -> None:
    script = "function Loose($First) { $First; $args.Count; $args[1] }\nLoose 1 2 -Other 3"
    assert output(script) == [1, 3, "-Other"]


def test_a_mandatory_parameter_missing_in_a_function() -> None:
    error = failure(FUNCTION + "Save-Thing -Kind b")
    assert error.exception.message == "Cannot process command because of one or more missing mandatory parameters: Name."


# ---------------------------------------------------------------- the binder alone


def test_the_default_parameter_set_wins_when_several_hold_the_parameters_given() -> None:
    signature = Signature(
        "Test-Sets",
        "Test-Sets",
        (
            ParameterSpec("Path", "System.String", sets={"ByPath": SetMembership(0, True), "ByLiteral": SetMembership(None, False)}),
            ParameterSpec("Literal", "System.String", sets={"ByLiteral": SetMembership(None, True)}),
            ParameterSpec("Verbose", None, sets={ALL_SETS: SetMembership()}, switch=True),
        ),
        default_set="ByPath",
    )
    binder = Binder(signature, lambda value, type_name: value, function=False)
    assert binder.bind([PositionalArgument("p", None)]).parameter_set == "ByPath"
    assert binder.bind([NamedArgument("Literal", None, "l", True)]).parameter_set == "ByLiteral"
    with pytest.raises(PowerShellError, match="positional parameter cannot be found"):
        binder.bind([PositionalArgument("p", None), PositionalArgument("q", None)])
