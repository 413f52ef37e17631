"""Windows PowerShell 5.1 language semantics, through snippets run by the lab's interpreter."""

from __future__ import annotations

from decimal import Decimal

import pytest
from powershell_snippets import failure, output, run, text
from wuacache_lab.powershell.errors import ProcessKilled
from wuacache_lab.powershell.runtime import Runtime
from wuacache_lab.powershell.values import AUTOMATION_NULL, Hashtable, Int64, OrderedDictionary

# ---------------------------------------------------------------- scopes


def test_a_variable_assigned_in_a_function_is_gone_once_it_returns() -> None:
    assert output("function F { $inner = 5 }\nF\n$inner -eq $null") == [True]
    error = failure("Set-StrictMode -Version 3.0\nfunction F { $inner = 5 }\nF\n$inner")
    assert error.record.fully_qualified_error_id == "VariableIsUndefined"
    assert error.exception.message == "The variable '$inner' cannot be retrieved because it has not been set."


def test_a_function_reads_its_callers_variables_and_assigning_makes_a_local() -> None:
    assert output("function F { $outer; $outer = 'inner'; $outer }\n$outer = 'caller'\nF\n$outer") == ["caller", "inner", "caller"]


def test_script_scope_inside_a_created_script_block_is_its_callers_script_scope() -> None:
    script = (
        "$block = [scriptblock]::Create('$script:Call = ''created''; function Set-Call { $script:Call = ''function'' }; Set-Call')\n"
        "& $block\n"
        "$Call"
    )
    assert output(script) == ["function"]


def test_strict_mode_applies_to_the_scope_that_set_it_and_its_children_only() -> None:
    script = "function Strict { Set-StrictMode -Version 3.0; $missing }\nStrict\n$missing -eq $null"
    error = failure(script)
    assert error.record.fully_qualified_error_id == "VariableIsUndefined"
    assert output("function Strict { Set-StrictMode -Version 3.0 }\nStrict\n$missing -eq $null") == [True]


# ---------------------------------------------------------------- pipelines and output


def test_one_object_from_a_command_is_a_scalar_unless_wrapped_in_an_array_subexpression() -> None:
    script = (
        "function One { [ordered]@{ update_id = 'a' } }\n"
        "$bare = One\n"
        "$wrapped = @(One)\n"
        "$bare -is [System.Collections.Specialized.OrderedDictionary]\n"
        "$wrapped -is [object[]]\n"
        "$wrapped.Count"
    )
    assert output(script) == [True, True, 1]


def test_nothing_from_a_command_is_no_element_but_null_is_one() -> None:
    script = "$none = foreach ($i in @()) { $i }\n@($none).Count\n$null_ = $null\n@($null_).Count\n@(& { $null }).Count"
    assert output(script) == [0, 1, 1]


def test_foreach_over_null_does_not_run_its_body() -> None:
    assert output("foreach ($i in $null) { 'ran' }\n'done'") == ["done"]


def test_the_unary_comma_keeps_an_array_whole_through_return() -> None:
    script = "function Pair { return ,@(1, 2) }\n$pair = Pair\n$pair.Count\n$pair[1]"
    assert output(script) == [2, 2]


def test_void_and_null_assignment_write_nothing() -> None:
    script = "$list = [System.Collections.Generic.List[object]]::new()\n[void]$list.Add(1)\n$null = $list.Count\n$list.Count"
    assert output(script) == [1]


def test_statements_write_collections_element_by_element_but_not_hashtables() -> None:
    written = output("@(1, 2)\n@{ a = 1 }\n'text'")
    assert written[:2] == [1, 2] and isinstance(written[2], Hashtable) and written[3] == "text"


# ---------------------------------------------------------------- strict mode


@pytest.mark.parametrize(
    ("script", "error_id"),
    [
        ("Set-StrictMode -Version 3.0\n$unset", "VariableIsUndefined"),
        ("Set-StrictMode -Version 3.0\n$o = [pscustomobject]@{ a = 1 }\n$o.b", "PropertyNotFoundStrict"),
        ("Set-StrictMode -Version 3.0\n$a = @(1, 2)\n$a[2]", "System.IndexOutOfRangeException"),
        ("Set-StrictMode -Version 3.0\nfunction F($a, $b) { $a }\nF(1, 2)", "StrictModeFunctionCallWithParens"),
        ("Set-StrictMode -Version 3.0\n(5).Count", "PropertyNotFoundStrict"),
    ],
)
def test_strict_mode_3_refuses(script: str, error_id: str) -> None:
    assert failure(script).record.fully_qualified_error_id == error_id


def test_without_strict_mode_the_same_reads_give_null_and_counts() -> None:
    script = "$o = [pscustomobject]@{ a = 1 }\n$o.b -eq $null\n$a = @(1, 2)\n$a[2] -eq $null\n(5).Count\n$nothing.Count\nfunction F($a, $b) { \"$a|$b\" }\nF(1, 2)"
    assert output(script) == [True, True, 1, 0, "1 2|"]


def test_strict_mode_2_allows_an_index_out_of_range() -> None:
    assert output("Set-StrictMode -Version 2.0\n$a = @(1)\n$a[3] -eq $null") == [True]


def test_a_method_call_on_null_fails_in_any_mode() -> None:
    error = failure("$missing.Trim()")
    assert error.record.fully_qualified_error_id == "InvokeMethodOnNull"
    assert error.exception.message == "You cannot call a method on a null-valued expression."


# ---------------------------------------------------------------- errors


def test_a_typed_catch_matches_the_exception_and_its_base_types() -> None:
    script = "try { throw [System.IO.FileNotFoundException]::new('gone', 'a.txt') } catch [System.IO.IOException] { $_.Exception.GetType().FullName; $_.Exception.FileName }"
    assert output(script) == ["System.IO.FileNotFoundException", "a.txt"]


def test_a_changed_catch_type_no_longer_catches() -> None:
    error = failure("try { throw [System.ArgumentException]::new('bad') } catch [System.IO.IOException] { 'caught' }")
    assert error.exception.type_name == "System.ArgumentException"
    assert error.record.fully_qualified_error_id == "bad"


def test_a_net_failure_is_a_method_invocation_exception_whose_inner_exception_a_catch_can_name() -> None:
    script = (
        "$list = [System.Collections.Generic.List[object]]::new()\n"
        "try { $list.RemoveAt(3) } catch { $_.Exception.GetType().Name; $_.Exception.InnerException.GetType().Name; $_.Exception.Message }\n"
        "try { $list.RemoveAt(3) } catch [System.ArgumentOutOfRangeException] { $_.Exception.GetType().Name }\n"
    )
    written = output(script)
    assert written[:2] == ["MethodInvocationException", "ArgumentOutOfRangeException"]
    assert str(written[2]).startswith('Exception calling "RemoveAt" with "1" argument(s): "Index was out of range.')
    assert written[3] == "ArgumentOutOfRangeException"


def test_error_action_stop_makes_a_written_error_terminating_with_its_own_exception_in_dollar_underscore() -> None:
    script = (
        "try { Write-Error 'no such item' -ErrorAction Stop; 'not reached' } catch { $_.Exception.GetType().Name; $_.Exception.Message }\n"
        "$ErrorActionPreference = 'Stop'\n"
        "try { Write-Error 'again' } catch [Microsoft.PowerShell.Commands.WriteErrorException] { 'typed: ' + $_.Exception.Message }"
    )
    assert output(script) == ["WriteErrorException", "no such item", "typed: again"]


def test_a_non_terminating_error_is_written_and_the_script_goes_on() -> None:
    completed = run("Write-Error 'first'\n'second'")
    assert text(completed) == "second\r\n"
    assert completed.stderr.decode().startswith("Write-Error : first\r\nAt line:1 char:1\r\n")
    assert "    + FullyQualifiedErrorId : Microsoft.PowerShell.Commands.WriteErrorException" in completed.stderr.decode()


def test_silently_continue_hides_the_error_but_records_it() -> None:
    completed = run("Write-Error 'hidden' -EA SilentlyContinue\n$Error.Count\n$Error[0].Exception.Message")
    assert text(completed) == "1\r\nhidden\r\n" and completed.stderr == b""


def test_throw_with_a_string_and_rethrow_in_catch() -> None:
    error = failure("try { throw 'first' } catch { throw }")
    assert error.exception.type_name == "System.Management.Automation.RuntimeException"
    assert error.exception.message == "first" and error.record.fully_qualified_error_id == "first"


def test_finally_runs_after_a_failure_and_after_return() -> None:
    script = "function F { try { return 'body' } finally { 'finally' } }\nF\ntry { try { throw 'x' } finally { 'cleanup' } } catch { 'caught' }"
    assert output(script) == ["body", "finally", "cleanup", "caught"]


def test_a_process_ended_from_outside_stops_at_the_next_statement_and_runs_no_finally() -> None:
    class Ending(Runtime):
        def __init__(self) -> None:
            super().__init__({})
            self.statements = 0

        def check_alive(self) -> None:
            self.statements += 1
            if self.statements > 3:
                self.end()
            super().check_alive()

    written: list[object] = []
    from wuacache_lab.powershell.evaluate import Interpreter
    from wuacache_lab.powershell.lower import parse

    with pytest.raises(ProcessKilled):
        Interpreter(Ending()).run(parse("try { 'one'; 'two'; 'three'; 'four' } finally { 'finally' }"), written)
    assert written == ["one", "two"]


def test_start_sleep_is_interrupted_when_the_process_is_ended() -> None:
    import threading
    import time

    runtime = Runtime({})
    threading.Timer(0.05, runtime.end).start()
    started = time.monotonic()
    with pytest.raises(ProcessKilled):
        output("Start-Sleep -Seconds 30\n'not reached'", runtime)
    assert time.monotonic() - started < 5


# ---------------------------------------------------------------- values and operators


def test_string_expansion_and_escapes() -> None:
    script = "$name = 'wuauserv'\n$o = @{ n = 3 }\n\"$name.exe $($o.n) ${name}x `$name `\"q`\" \"\"q\"\" $env:COMPUTERNAME\""
    assert output(script) == ['wuauserv.exe 3 wuauservx $name "q" "q" WIN10-01']


def test_the_format_operator_uses_net_composite_formatting() -> None:
    assert output("'{0:x4}|{1,-4}|{1,4}|{2:N0}|{3}|{{x}}' -f 255, 'ab', 1234567, $null") == ["00ff|ab  |  ab|1,234,567||{x}"]


def test_comparisons_are_case_insensitive_unless_c_prefixed_and_filter_arrays() -> None:
    script = "'ABC' -eq 'abc'\n'ABC' -ceq 'abc'\n'ABC' -ieq 'abc'\n(@(1, 2, 3, 2) -eq 2).Count\n'Stop' -in 'stop', 'continue'\n'x' -notin 'a'\n1 -eq '1.0'"
    assert output(script) == [True, False, True, 2, True, True, True]


def test_regular_expressions_are_dotnet_ones() -> None:
    script = (
        "\"ab`n\" -match 'b$'\n"
        "\"ab`n\" -match 'b\\z'\n"
        "\"ab`n\" -match 'b\\Z'\n"
        "'AB' -cmatch '^ab$'\n"
        "'kb5034441' -match '(?<kb>\\d+)'\n"
        "$Matches.kb\n"
        "'a1b22' -replace '(\\d+)', '<$1>'"
    )
    assert output(script) == [True, False, True, False, True, "5034441", "a<1>b<22>"]


def test_numbers_have_their_51_types_and_widen() -> None:
    script = (
        "0x80070005\n"
        "([int]::MaxValue + 1).GetType().Name\n"
        "(5 + 5l).GetType().Name\n"
        "7 / 2\n"
        "(6 / 3).GetType().Name\n"
        "[int]2.5\n"
        "[int]3.5\n"
        "0x80070000 -bor (5 -band 0xFFFF)"
    )
    assert output(script) == [-2147024891, "Double", "Int64", 3.5, "Int32", 2, 4, -2147024891]


def test_casts_and_typed_variables() -> None:
    script = (
        "[string]$null -eq ''\n"
        "[int]'12' + 1\n"
        "[bool]'false'\n"
        "[string[]]$list = 'a'\n"
        "$list.GetType().FullName\n"
        "[int]$n = '7'\n"
        "$n = '8'\n"
        "$n.GetType().Name\n"
        "([System.IO.FileAttributes]::ReadOnly -bor [System.IO.FileAttributes]::Hidden) -band [System.IO.FileAttributes]::Hidden\n"
        "[System.IO.FileAttributes]'Hidden'"
    )
    written = output(script)
    assert written[:5] == [True, 13, True, "System.String[]", "Int32"]
    assert [str(value) for value in written[5:]] == ["Hidden", "Hidden"]


def test_hashtables_are_case_insensitive_and_ordered_ones_keep_their_order() -> None:
    script = "$h = @{ Name = 1 }\n$h['NAME']\n$h.name\n$o = [ordered]@{ b = 2; a = 1 }\n$o.Insert(0, 'c', 3)\n$o.Keys -join ','"
    assert output(script) == [1, 1, "c,b,a"]


def test_splatting_a_hashtable_and_an_array() -> None:
    script = "function F {\n    param($Name, $Count)\n    \"$Name=$Count\"\n}\n$named = @{ Count = 2; Name = 'x' }\nF @named\n$positional = 'y', 3\nF @positional"
    assert output(script) == ["x=2", "y=3"]


def test_increment_and_loops() -> None:
    script = (
        "$total = 0\n"
        "for ($i = 0; $i -lt 4; $i++) { if ($i -eq 2) { continue }; $total += $i }\n"
        "$total\n"
        "$n = 0\n"
        "while ($true) { $n++; if ($n -ge 3) { break } }\n"
        "$n\n"
        "do { $n-- } until ($n -le 0)\n"
        "$n"
    )
    assert output(script) == [4, 3, 0]


def test_dates_keep_their_kind() -> None:
    script = (
        "$d = [datetime]::SpecifyKind([datetime]'2024-01-09T10:00:00', [System.DateTimeKind]::Utc)\n"
        "$d.ToString('o')\n"
        "$d.Kind\n"
        "$d.AddSeconds(90).ToString('R')\n"
        "[timespan]::FromMinutes(2).TotalSeconds"
    )
    written = output(script)
    assert written[0] == "2024-01-09T10:00:00.0000000Z" and str(written[1]) == "Utc"
    assert written[2] == "Tue, 09 Jan 2024 10:01:30 GMT" and written[3] == 120


def test_literals_are_typed_values() -> None:
    assert output("10d\n2147483648\n1.5") == [Decimal(10), Int64(2147483648), 1.5]


def test_ordered_is_only_for_hash_literals() -> None:
    assert isinstance(output("[ordered]@{ a = 1 }")[0], OrderedDictionary)
    assert failure("$h = @{}\n[ordered]$h").record.fully_qualified_error_id == "OrderedAttributeOnlyOnHashLiteralNode"


def test_automation_null_is_what_an_empty_subexpression_gives() -> None:
    from wuacache_lab.powershell.evaluate import Interpreter
    from wuacache_lab.powershell.lower import parse

    interpreter = Interpreter(Runtime({}))
    interpreter.run(parse("$none = $(foreach ($i in @()) { $i })"), [])
    assert interpreter.state.global_scope.variables["none"].value is AUTOMATION_NULL


def test_the_function_drive_gives_a_script_block_to_invoke() -> None:
    script = "function Get-Answer {\n    param($Add)\n    42 + $Add\n}\n$operations = @{ answer = ${function:Get-Answer} }\n$operations['answer'] -is [scriptblock]\n$parameters = @{ Add = 1 }\n& $operations['answer'] @parameters"
    assert output(script) == [True, 43]
