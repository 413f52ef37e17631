# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The lab catches changed copies of the bridge, as Windows PowerShell would fail them, and runs valid variants.

Each mutant runs the lab tests that execute its line (mutants.py, runner.py).
A bad change must make one of them fail; a known bad change must also raise,
on its line, the error PowerShell raises for it; a valid variant must pass
them all. A systematic mutant on a line no lab test runs is skipped, and the
coverage report lists that line.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from mutants import BRIDGE, PARSE_EXCEPTION, SAMPLE_SIZE, Mutant, hand_written, sample, systematic
from runner import Outcome, covering_tests, record_baseline, run_mutant, statement_line

from wuacache_lab.coverage_report import RecordedTest, runs_by_test

# Subprocesses at a time: the mutants' tests keep a core busy each.
WORKERS = max(1, min(4, os.cpu_count() or 1))


def selected(config: pytest.Config) -> list[Mutant]:
    """The mutants of this run: every hand-written one, and the sample (or all) of the systematic ones."""
    text = BRIDGE.read_text(encoding="utf-8")
    every = systematic(text)
    chosen = every if config.getoption("--all-mutants", default=False) else sample(every, SAMPLE_SIZE)
    return [*hand_written(text), *chosen]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "mutant" not in metafunc.fixturenames:
        return
    kinds = {
        "test_a_systematic_mutant_is_caught": ("parameter", "member"),
        "test_a_known_bad_change_fails_as_powershell_would": ("known", "semantic"),
        "test_a_valid_variant_still_works": ("valid",),
    }[metafunc.function.__name__]
    mutants = [mutant for mutant in selected(metafunc.config) if mutant.kind in kinds]
    metafunc.parametrize("mutant", mutants, ids=[mutant.id for mutant in mutants])


@pytest.fixture(scope="session")
def test_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[RecordedTest]:
    """What each lab test runs of the bridge: from this run's own record when it has one, else from a run of its own."""
    per_test: Path | None = request.config.getoption("--ps-coverage-per-test")
    runs = runs_by_test(per_test, BRIDGE.name) if per_test is not None and per_test.is_dir() else []
    runs = [run for run in runs if run.nodeid.startswith("tests/lab/tests/")]
    if not runs:
        per_test = tmp_path_factory.mktemp("baseline")
        record_baseline(per_test)
        runs = runs_by_test(per_test, BRIDGE.name)
    assert runs, "no lab test ran the bridge"
    return runs


@dataclass(frozen=True)
class Reached:
    outcome: Outcome
    # Where the statement holding the change starts: where its errors are recorded.
    statement_line: int


@pytest.fixture(scope="session")
def outcomes(request: pytest.FixtureRequest, test_runs: list[RecordedTest]) -> dict[str, Reached | None]:
    """Every selected mutant run at once, a few at a time; None for one no lab test reaches."""
    text = BRIDGE.read_text(encoding="utf-8")

    def outcome(mutant: Mutant) -> tuple[str, Reached | None]:
        line = statement_line(text, mutant.line, mutant.column)
        tests = covering_tests(test_runs, line)
        return mutant.id, Reached(run_mutant(mutant, tests), line) if tests else None

    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(pool.map(outcome, selected(request.config)))


def reached(outcomes: dict[str, Reached | None], mutant: Mutant) -> Reached:
    found = outcomes[mutant.id]
    assert found is not None, f"no lab test runs line {mutant.line} of the bridge"
    return found


def test_a_systematic_mutant_is_caught(mutant: Mutant, outcomes: dict[str, Reached | None]) -> None:
    if outcomes[mutant.id] is None:
        pytest.skip(f"no lab test runs line {mutant.line} of the bridge")
    found = reached(outcomes, mutant)

    assert found.outcome.caught, f"{mutant.description} (line {mutant.line}) passed {found.outcome.tests}"
    raised = found.outcome.raised_on(found.statement_line)
    # A misspelt member of a hashtable reads as $null: then only the answer is wrong, and a test saw it.
    if mutant.expected and raised is not None:
        assert raised.type_name in mutant.expected, raised


def test_a_known_bad_change_fails_as_powershell_would(mutant: Mutant, outcomes: dict[str, Reached | None]) -> None:
    found = reached(outcomes, mutant)

    assert found.outcome.caught, f"{mutant.description} (line {mutant.line}) passed {found.outcome.tests}"
    if mutant.expected == (PARSE_EXCEPTION,):
        # The script does not parse: [scriptblock]::Create fails in the bootstrap, before any of its statements.
        assert any(PARSE_EXCEPTION in (error.type_name, *error.inner_type_names) for error in found.outcome.errors), (
            found.outcome.errors
        )
    elif mutant.symptom is not None:
        assert any(
            error.type_name in mutant.expected and mutant.symptom in error.message for error in found.outcome.errors
        ), found.outcome.errors
    elif mutant.expected:
        raised = found.outcome.raised_on(found.statement_line)
        assert raised is not None and raised.type_name in mutant.expected, (raised, found.outcome.output)


def test_a_valid_variant_still_works(mutant: Mutant, outcomes: dict[str, Reached | None]) -> None:
    found = reached(outcomes, mutant)

    assert not found.outcome.caught, found.outcome.output
    assert found.outcome.tests
