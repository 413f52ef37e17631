"""A pytest plugin: how much of the bridge the test run executed in the lab.

It asks every PowerShell process of the run (the test process's and those of
the lab hosts it starts) to record the statements it starts
(:mod:`wuacache_lab.powershell.coverage`), then prints the statement
coverage of ``_wua_bridge.ps1`` at the end of the run. With
``--ps-coverage-min=N``, the run fails when the statements executed, and
those an exclusion excuses with a reason, are fewer than N percent.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from wuacache_lab.powershell import coverage

BRIDGE = Path("plugins") / "plugin_utils" / "_wua_bridge.ps1"
EXCLUSIONS = Path("tests") / "lab" / "ps-coverage-exclusions.txt"
# The most uncovered statements the summary lists.
LISTED = 40

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


def pytest_configure(config: pytest.Config) -> None:
    folder = os.environ.get(coverage.ENVIRONMENT_VARIABLE)
    config.stash[_OWNED] = folder is None
    if folder is None:
        folder = tempfile.mkdtemp(prefix="ps-coverage-")
        # The lab processes the tests start inherit it.
        os.environ[coverage.ENVIRONMENT_VARIABLE] = folder
        coverage.from_environment.cache_clear()
    config.stash[_FOLDER] = Path(folder)


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    folder = config.stash[_FOLDER]
    if not any(folder.glob("*.jsonl")):
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
