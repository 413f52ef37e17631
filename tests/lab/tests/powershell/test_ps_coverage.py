"""Statement coverage: what a process starts is recorded per script, and measured against every statement."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from powershell_snippets import ENVIRONMENT, run

from wuacache_lab.powershell import coverage
from wuacache_lab.powershell.runtime import Runtime

SCRIPT = """function Get-Kind {
    param($Value)
    if ($Value -gt 1) {
        'many'
    }
    else {
        'one'
    }
}
Get-Kind -Value 2
"""
# Reads a script on standard input and runs it, as the collection's bootstrap does.
BOOTSTRAP = "& ([scriptblock]::Create((@($input) -join \"`n\")))"


class NamingRuntime(Runtime):
    """A machine that knows the script it is given by name, as the lab's hosts know the shipped ones."""

    def script_name(self, text: str) -> str:
        return "sample.ps1" if text.strip() == SCRIPT.strip() else ""


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "coverage"
    monkeypatch.setenv(coverage.ENVIRONMENT_VARIABLE, str(folder))
    coverage.from_environment.cache_clear()
    yield folder
    coverage.from_environment.cache_clear()


def test_the_statements_a_process_starts_are_measured_against_every_statement(data: Path, tmp_path: Path) -> None:
    script = tmp_path / "sample.ps1"
    script.write_text(SCRIPT, encoding="utf-8")

    completed = run(BOOTSTRAP, SCRIPT.splitlines(), NamingRuntime(ENVIRONMENT))
    measured = coverage.measure(data, script, {})

    assert completed.stdout == b"many\r\n"
    # The function's definition, its if, 'many', 'one' and the call.
    assert (measured.total, measured.executed) == (5, 4)
    assert measured.missed == ((7, "'one'"),)
    assert measured.percent == 80.0


def test_an_exclusion_names_a_statement_by_its_text_with_a_reason(data: Path, tmp_path: Path) -> None:
    script = tmp_path / "sample.ps1"
    script.write_text(SCRIPT, encoding="utf-8")
    exclusions = tmp_path / "exclusions.txt"
    exclusions.write_text("# statements no test runs\n'one'  # no test passes 1\n", encoding="utf-8")

    run(BOOTSTRAP, SCRIPT.splitlines(), NamingRuntime(ENVIRONMENT))
    measured = coverage.measure(data, script, coverage.read_exclusions(exclusions))

    assert measured.missed == ()
    assert measured.excused == ((7, "'one'", "no test passes 1"),)
    assert measured.percent_with_excused == 100.0


def test_an_exclusion_without_a_reason_is_refused(tmp_path: Path) -> None:
    exclusions = tmp_path / "exclusions.txt"
    exclusions.write_text("'one'\n", encoding="utf-8")

    with pytest.raises(ValueError, match="needs a reason"):
        coverage.read_exclusions(exclusions)


def test_nothing_is_recorded_without_the_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(coverage.ENVIRONMENT_VARIABLE, raising=False)
    coverage.from_environment.cache_clear()

    run(BOOTSTRAP, SCRIPT.splitlines(), NamingRuntime(ENVIRONMENT))

    assert coverage.from_environment() is None
    assert list(tmp_path.iterdir()) == []
