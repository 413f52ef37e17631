"""Which statements of the shipped scripts the lab's hosts executed.

When the environment variable ``WUACACHE_PS_COVERAGE`` names a folder, every
PowerShell process the interpreter runs (in the test process or in a lab's
host processes, which inherit the variable) records the statements it
starts, by script file name, line and column, and appends them to a file of
its OS process in that folder when it ends. :func:`measure` then compares
them with every statement of a script: the lab proves only the statements
it runs.

A statement is one of a statement list: a script's, a function's, a branch's,
a loop's, a ``try``'s, ``catch``'s or ``finally``'s, a subexpression's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from wuacache_lab.powershell import nodes as n

ENVIRONMENT_VARIABLE = "WUACACHE_PS_COVERAGE"

# A statement: the script's file name, and the line and column where it starts.
Site = tuple[str, int, int]


class StatementCoverage:
    """The statements started in this OS process since the last flush."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._started: set[Site] = set()

    def started(self, extent: n.Extent) -> None:
        if extent.file_name:
            self._started.add((extent.file_name, extent.line, extent.column))

    def flush(self) -> None:
        """Append what was recorded to this OS process's file, and start afresh."""
        with self._lock:
            sites, self._started = self._started, set()
            if not sites:
                return
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.folder / f"{os.getpid()}.jsonl", "a", encoding="utf-8") as records:
                records.write(json.dumps(sorted(sites)) + "\n")


@cache
def from_environment() -> StatementCoverage | None:
    """The recorder of this OS process, when the environment asks for one."""
    folder = os.environ.get(ENVIRONMENT_VARIABLE)
    return StatementCoverage(Path(folder)) if folder else None


def statements(body: n.ScriptBlockBody) -> dict[tuple[int, int], n.Statement]:
    """Every statement of a script, by its line and column."""
    found: dict[tuple[int, int], n.Statement] = {}
    for node in n.walk(body):
        for field in dataclasses.fields(node) if dataclasses.is_dataclass(node) and not isinstance(node, type) else ():
            value = getattr(node, field.name)
            if field.name in _STATEMENT_LISTS and isinstance(value, tuple):
                for statement in value:
                    found[(statement.extent.line, statement.extent.column)] = statement
    return found


# The fields of the syntax tree that hold statement lists.
_STATEMENT_LISTS = frozenset({"statements", "body", "else_body", "finally_body"})


def executed(folder: Path, file_name: str) -> set[tuple[int, int]]:
    """The lines and columns of ``file_name``'s statements that any process recorded in ``folder`` or below."""
    sites: set[tuple[int, int]] = set()
    for records in folder.rglob("*.jsonl"):
        for line in records.read_text(encoding="utf-8").splitlines():
            sites.update((row[1], row[2]) for row in json.loads(line) if row[0] == file_name)
    return sites


@dataclass(frozen=True)
class Measurement:
    file_name: str
    total: int
    executed: int
    # The statements no process started and no exclusion names: (line, first line of their text).
    missed: tuple[tuple[int, str], ...]
    # The statements no process started that an exclusion names, with its reason.
    excused: tuple[tuple[int, str, str], ...]

    @property
    def percent(self) -> float:
        return 100.0 * self.executed / self.total if self.total else 100.0

    @property
    def percent_with_excused(self) -> float:
        return 100.0 * (self.executed + len(self.excused)) / self.total if self.total else 100.0


def measure(folder: Path, script: Path, exclusions: dict[str, str]) -> Measurement:
    """The coverage of ``script`` by what was recorded in ``folder``.

    ``exclusions`` gives, for the first line of a statement's text (stripped),
    why no test runs it; the text, not the line number, names it, so that an
    edit above it does not move the exclusion.
    """
    from wuacache_lab.powershell.lower import parse

    body = parse(script.read_text(encoding="utf-8-sig"), script.name)
    seen = executed(folder, script.name)
    missed, excused = [], []
    all_statements = statements(body)
    for (line, column), statement in sorted(all_statements.items()):
        if (line, column) in seen:
            continue
        text = statement.extent.text.splitlines()[0].strip()
        if text in exclusions:
            excused.append((line, text, exclusions[text]))
        else:
            missed.append((line, text))
    covered = sum(1 for site in all_statements if site in seen)
    return Measurement(script.name, len(all_statements), covered, tuple(missed), tuple(excused))


def read_exclusions(path: Path) -> dict[str, str]:
    """``<statement's first line> # <reason>`` lines; blank lines and lines starting with ``#`` are comments."""
    exclusions = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        text, separator, reason = raw.rpartition("  # ")
        if not separator or not reason.strip():
            raise ValueError(f"{path}: an exclusion needs a reason after '  # ': {raw!r}")
        exclusions[text.strip()] = reason.strip()
    return exclusions
