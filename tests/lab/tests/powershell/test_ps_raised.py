"""The errors a process's statements raise are kept in order, with the script line that raised them."""

from __future__ import annotations

from pathlib import Path

import pytest
from powershell_snippets import ENVIRONMENT, run

from wuacache_lab.powershell import raised
from wuacache_lab.powershell.runtime import Runtime

SCRIPT = """try {
    Join-Path -Path 'C:\\' -ChildPathX 'x'
}
catch {
    $null = $_
}
$a = 1
$a.Missing()
"""


def test_the_errors_raised_are_kept_even_when_a_catch_handles_them() -> None:
    runtime = Runtime(ENVIRONMENT)

    completed = run(SCRIPT, runtime=runtime)

    assert completed.exit_code == 1
    assert [(error.type_name, error.line) for error in runtime.raised] == [
        ("System.Management.Automation.ParameterBindingException", 2),
        ("System.Management.Automation.RuntimeException", 8),
    ]
    assert "ChildPathX" in runtime.raised[0].message


def test_an_error_keeps_the_types_of_its_inner_exceptions() -> None:
    runtime = Runtime(ENVIRONMENT)

    run("$block = [scriptblock]::Create('1 &&')", runtime=runtime)

    [error] = runtime.raised
    assert error.type_name == "System.Management.Automation.MethodInvocationException"
    assert error.inner_type_names == ("System.Management.Automation.ParseException",)


def test_the_errors_of_each_process_go_to_the_folder_the_environment_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(raised.ENVIRONMENT_VARIABLE, str(tmp_path))
    raised.from_environment.cache_clear()
    try:
        run(SCRIPT)
        run("$x = 1")
    finally:
        raised.from_environment.cache_clear()

    [errors] = raised.read(tmp_path)
    assert [error.line for error in errors] == [2, 8]
