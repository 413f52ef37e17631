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

from wuacache_lab.coverage_report import TestRun
from wuacache_lab.powershell import raised

REPOSITORY = Path(__file__).resolve().parents[2]
SCRIPTS = REPOSITORY / "plugins" / "plugin_utils"
# The tests that run the bridge in the test process: the lab's.
LAB_TESTS = REPOSITORY / "tests" / "lab" / "tests"
# At most this many of the tests that run a line are given a mutant.
TESTS_PER_MUTANT = 12


@dataclass(frozen=True)
class Outcome:
    # Whether a test failed with the mutant.
    caught: bool
    # The .NET type of the first error the mutated line raised in a lab process, if any.
    first_error: str | None
    # The .NET types of every error the lab's processes raised.
    error_types: frozenset[str]
    tests: tuple[str, ...]
    output: str


def tests_running(runs: Sequence[TestRun], line: int) -> list[str]:
    """The quickest tests whose processes ran a statement of ``line``."""
    return [run.nodeid for run in runs if any(statement_line == line for statement_line, _ in run.statements)]


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
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
            cwd=REPOSITORY,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        every = [error for process in raised.read(errors) for error in process] if errors.is_dir() else []
        on_line = [error for error in every if error.file_name == BRIDGE.name and error.line == mutant.line]
        return Outcome(
            caught=completed.returncode != 0,
            first_error=on_line[0].type_name if on_line else None,
            error_types=frozenset(error.type_name for error in every),
            tests=tuple(tests),
            output=completed.stdout[-3000:],
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
