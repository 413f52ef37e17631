"""The coverage plugin fails a run that executed too little of the bridge, and says what it missed."""

from __future__ import annotations

import pytest

from wuacache_lab.coverage_report import runs_by_test

pytest_plugins = ["pytester"]

BRIDGE = """param($Kind)
if ($Kind -eq 'many') {
    'many'
}
else {
    'one'
}
"""

TEST = '''
from pathlib import Path

from wuacache_lab.powershell.process import PowerShellProcess
from wuacache_lab.powershell.runtime import Runtime

BRIDGE = Path(__file__).parent / "plugins" / "plugin_utils" / "_wua_bridge.ps1"


class Host(Runtime):
    def script_name(self, text):
        return "_wua_bridge.ps1" if text == BRIDGE.read_text() else ""


def run_bridge(kind):
    process = PowerShellProcess(Host({}))
    return process.run_script(f"& ([scriptblock]::Create((@($input) -join \\"`n\\") + \\"`n\\")) {kind}", BRIDGE.read_text().splitlines())


def test_runs_the_bridge():
    assert run_bridge("many").stdout == b"many\\r\\n"
'''


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # The run under test records into a folder of its own.
    monkeypatch.delenv("WUACACHE_PS_COVERAGE", raising=False)
    bridge = pytester.path / "plugins" / "plugin_utils" / "_wua_bridge.ps1"
    bridge.parent.mkdir(parents=True)
    bridge.write_text(BRIDGE, encoding="utf-8")
    pytester.makepyfile(test_bridge=TEST)
    return pytester


def test_a_run_below_the_minimum_fails_and_lists_what_it_missed(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-p", "wuacache_lab.coverage_report", "--ps-coverage-min=90")

    result.stdout.fnmatch_lines(
        [
            "*_wua_bridge.ps1: 2 of 3 statements executed (66.7%), 0 excused (66.7% with them)",
            "*not executed: line 6: 'one'",
            "*FAILED: below 90%*",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_an_excused_statement_counts_toward_the_minimum(project: pytest.Pytester) -> None:
    exclusions = project.path / "tests" / "lab" / "ps-coverage-exclusions.txt"
    exclusions.parent.mkdir(parents=True)
    exclusions.write_text("'one'  # no test asks for one\n", encoding="utf-8")

    result = project.runpytest_subprocess("-p", "wuacache_lab.coverage_report", "--ps-coverage-min=90")

    result.stdout.fnmatch_lines(["*_wua_bridge.ps1: 2 of 3 statements executed (66.7%), 1 excused (100.0% with them)"])
    assert result.ret == pytest.ExitCode.OK


def test_each_test_can_record_what_its_processes_ran(project: pytest.Pytester) -> None:
    project.makepyfile(test_other="from test_bridge import run_bridge\n\n\ndef test_one():\n    run_bridge('one')\n")
    per_test = project.path / "per-test"

    result = project.runpytest_subprocess(
        "-p", "wuacache_lab.coverage_report", f"--ps-coverage-per-test={per_test}", "--ps-coverage-min=90"
    )

    # The whole run's coverage adds up the tests'.
    result.stdout.fnmatch_lines(["*_wua_bridge.ps1: 3 of 3 statements executed (100.0%)*"])
    assert result.ret == pytest.ExitCode.OK
    runs = {run.nodeid: run.statements for run in runs_by_test(per_test, "_wua_bridge.ps1")}
    assert runs == {
        "test_bridge.py::test_runs_the_bridge": {(2, 1), (3, 5)},
        "test_other.py::test_one": {(2, 1), (6, 5)},
    }
