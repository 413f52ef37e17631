"""A pytest plugin: how much of the bridge the test run executed in the lab.

It asks every PowerShell process of the run (the test process's and those of
the lab hosts it starts) to record the statements it starts
(:mod:`wuacache_lab.powershell.coverage`), then prints the statement
coverage of ``_wua_bridge.ps1`` at the end of the run. With
``--ps-coverage-min=N``, the run fails when the statements executed, and
those an exclusion excuses with a reason, are fewer than N percent.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from wuacache_lab.powershell import coverage

BRIDGE = Path("plugins") / "plugin_utils" / "_wua_bridge.ps1"
EXCLUSIONS = Path("tests") / "lab" / "ps-coverage-exclusions.txt"
# The most uncovered statements the summary lists.
LISTED = 40
# In each test's folder of --ps-coverage-per-test: the test's node id, and how long it took.
TEST_ID_FILE = "test.txt"
DURATION_FILE = "seconds.txt"

_FOLDER = pytest.StashKey[Path]()
_OWNED = pytest.StashKey[bool]()
_MEASURED = pytest.StashKey[coverage.Measurement]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wuacache", "the lab's PowerShell")
    group.addoption(
        "--ps-coverage-min",
        type=float,
        default=None,
        metavar="PERCENT",
        help="fail when the run executed, or excused, fewer of the bridge's statements",
    )
    group.addoption(
        "--ps-coverage-per-test",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="record the statements each test's processes start in a folder of its own under FOLDER",
    )


def pytest_configure(config: pytest.Config) -> None:
    folder = os.environ.get(coverage.ENVIRONMENT_VARIABLE)
    config.stash[_OWNED] = folder is None
    if folder is None:
        folder = tempfile.mkdtemp(prefix="ps-coverage-")
        # The lab processes the tests start inherit it.
        os.environ[coverage.ENVIRONMENT_VARIABLE] = folder
        coverage.from_environment.cache_clear()
    config.stash[_FOLDER] = Path(folder)


def pytest_runtest_setup(item: pytest.Item) -> None:
    per_test = item.config.getoption("--ps-coverage-per-test")
    if per_test is not None:
        folder = per_test / hashlib.sha256(item.nodeid.encode()).hexdigest()[:20]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / TEST_ID_FILE).write_text(item.nodeid, encoding="utf-8")
        os.environ[coverage.ENVIRONMENT_VARIABLE] = str(folder)
        coverage.from_environment.cache_clear()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    folder = os.environ.get(coverage.ENVIRONMENT_VARIABLE)
    if report.when == "call" and folder and (Path(folder) / TEST_ID_FILE).is_file():
        (Path(folder) / DURATION_FILE).write_text(f"{report.duration:.3f}", encoding="utf-8")


@dataclass(frozen=True)
class RecordedTest:
    nodeid: str
    seconds: float
    # The lines and columns of the script's statements its processes started.
    statements: frozenset[tuple[int, int]]


def runs_by_test(per_test: Path, script_name: str) -> list[RecordedTest]:
    """What ``--ps-coverage-per-test`` recorded, for the tests that ran ``script_name``, quickest first."""
    runs = []
    for folder in per_test.iterdir():
        if not (folder / TEST_ID_FILE).is_file():
            continue
        statements = coverage.executed(folder, script_name)
        if statements:
            duration = folder / DURATION_FILE
            seconds = float(duration.read_text()) if duration.is_file() else float("inf")
            runs.append(RecordedTest((folder / TEST_ID_FILE).read_text(encoding="utf-8"), seconds, frozenset(statements)))
    return sorted(runs, key=lambda run: (run.seconds, run.nodeid))


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    folder = config.getoption("--ps-coverage-per-test") or config.stash[_FOLDER]
    if not folder.is_dir() or not any(folder.rglob("*.jsonl")):
        return  # no test ran the bridge
    bridge = config.rootpath / BRIDGE
    exclusions_file = config.rootpath / EXCLUSIONS
    exclusions = coverage.read_exclusions(exclusions_file) if exclusions_file.exists() else {}
    measured = coverage.measure(folder, bridge, exclusions)
    config.stash[_MEASURED] = measured
    minimum = config.getoption("--ps-coverage-min")
    if minimum is not None and measured.percent_with_excused < minimum and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    measured = config.stash.get(_MEASURED, None)
    if measured is not None:
        writer = terminalreporter
        writer.section("PowerShell statement coverage")
        writer.write_line(
            f"{measured.file_name}: {measured.executed} of {measured.total} statements executed "
            f"({measured.percent:.1f}%), {len(measured.excused)} excused "
            f"({measured.percent_with_excused:.1f}% with them)"
        )
        for line, text in measured.missed[:LISTED]:
            writer.write_line(f"  not executed: line {line}: {text}")
        if len(measured.missed) > LISTED:
            writer.write_line(f"  ... and {len(measured.missed) - LISTED} more")
        minimum = config.getoption("--ps-coverage-min")
        if minimum is not None and measured.percent_with_excused < minimum:
            writer.write_line(
                f"FAILED: below {minimum:g}%; add tests, or list the statements with a reason in {EXCLUSIONS}", red=True
            )
    if config.stash[_OWNED]:
        shutil.rmtree(config.stash[_FOLDER], ignore_errors=True)
