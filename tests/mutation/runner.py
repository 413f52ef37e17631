# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Runs the lab's own tests against a changed copy of the bridge.

The tests that run a mutant's line are known from a run with
``--ps-coverage-per-test`` (the quickest first). A mutant runs them, in a
pytest of its own, with the changed scripts (``WUACACHE_LAB_SCRIPTS``) and
the errors the lab's processes raise recorded (``WUACACHE_PS_ERRORS``): it is
caught when a test fails, and the first error raised on its line tells what
PowerShell made of it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mutants import BRIDGE, Mutant

from wuacache_lab.coverage_report import RecordedTest
from wuacache_lab.powershell import coverage, raised
from wuacache_lab.powershell.lower import parse
from wuacache_lab.powershell.raised import RaisedError

REPOSITORY = Path(__file__).resolve().parents[2]
SCRIPTS = REPOSITORY / "plugins" / "plugin_utils"
# The tests that run the bridge in the test process: the lab's.
LAB_TESTS = REPOSITORY / "tests" / "lab" / "tests"
# At most this many of the tests that run a line are given a mutant.
TESTS_PER_MUTANT = 24


@dataclass(frozen=True)
class Outcome:
    # Whether a test failed with the mutant.
    caught: bool
    # The errors the scripts' statements raised in the lab's processes, in order.
    errors: tuple[RaisedError, ...]
    tests: tuple[str, ...]
    output: str

    def raised_on(self, line: int) -> RaisedError | None:
        """The first error the bridge's statement starting at ``line`` raised."""
        return next((error for error in self.errors if error.file_name == BRIDGE.name and error.line == line), None)


def statement_line(text: str, line: int, column: int) -> int:
    """The line where the innermost statement holding a place of the bridge starts: what coverage records."""
    holding = [
        statement.extent
        for statement in coverage.statements(parse(text, BRIDGE.name)).values()
        if (statement.extent.line, statement.extent.column) <= (line, column) <= (statement.extent.end_line, statement.extent.end_column)
    ]
    return max(holding, key=lambda extent: (extent.line, extent.column)).line


def covering_tests(runs: Sequence[RecordedTest], line: int) -> list[str]:
    """Up to :data:`TESTS_PER_MUTANT` lab tests that run the statement at ``line``, each chosen for running
    the most statements the tests before it do not, the quicker on a tie: a change may show only where
    the script goes on far past it, as a result too deep for ``ConvertTo-Json`` does.

    A test that runs the scripts of an earlier commit (a regression test's "before" case) cannot see a change.
    """
    candidates = [run for run in runs if "[before-" not in run.nodeid and any(start_line == line for start_line, _column in run.statements)]
    chosen: list[RecordedTest] = []
    seen: set[tuple[int, int]] = set()
    while candidates and len(chosen) < TESTS_PER_MUTANT:
        # Once no test adds a statement, the quickest of the others: they may check what the first did not.
        best = max(candidates, key=lambda run: (len(run.statements - seen), -run.seconds))
        chosen.append(best)
        seen |= best.statements
        candidates.remove(best)
    return [run.nodeid for run in chosen]


def record_baseline(per_test: Path) -> None:
    """Run the lab's tests once with the shipped scripts, recording what each test runs."""
    subprocess.run(
        [
            sys.executable, "-m", "pytest", str(LAB_TESTS), "-q", "-p", "no:cacheprovider",
            f"--ignore={LAB_TESTS / 'powershell'}", f"--ps-coverage-per-test={per_test}",
        ],
        cwd=REPOSITORY,
        capture_output=True,
        check=False,
    )


def run_mutant(mutant: Mutant, tests: Sequence[str]) -> Outcome:
    """The mutant's tests, with the bridge changed, stopping at the first failure."""
    work = Path(tempfile.mkdtemp(prefix=f"mutant-{mutant.id}-"))
    try:
        scripts = work / "scripts"
        shutil.copytree(SCRIPTS, scripts, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
        (scripts / BRIDGE.name).write_text(mutant.apply(BRIDGE.read_text(encoding="utf-8")), encoding="utf-8")
        errors = work / "errors"
        environment = dict(os.environ, WUACACHE_LAB_SCRIPTS=str(scripts), **{raised.ENVIRONMENT_VARIABLE: str(errors)})
        environment.pop("WUACACHE_PS_COVERAGE", None)
        completed = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:wuacache_lab.coverage_report", *tests],
            cwd=REPOSITORY,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        every = [error for process in raised.read(errors) for error in process] if errors.is_dir() else []
        return Outcome(
            caught=completed.returncode != 0,
            errors=tuple(every),
            tests=tuple(tests),
            output=completed.stdout[-3000:],
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
