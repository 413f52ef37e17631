"""The terminating errors a process's scripts raised, in order.

A mutation test changes one place of a shipped script and expects the error
Windows PowerShell would raise there. Each process keeps the errors its
statements raised on its runtime (``Runtime.raised``): the .NET type of the
exception, its message, and the script file and line of the statement. When
the environment variable ``WUACACHE_PS_ERRORS`` names a folder, a process
also appends them to a file of its OS process there when it ends, so that
the processes of a test run in another OS process can be examined too.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

ENVIRONMENT_VARIABLE = "WUACACHE_PS_ERRORS"


@dataclass(frozen=True)
class RaisedError:
    type_name: str
    message: str
    file_name: str
    line: int
    # The types of its InnerException chain, outermost first (a MethodInvocationException's cause).
    inner_type_names: tuple[str, ...] = ()


class ErrorLog:
    """Appends each process's raised errors, as one JSON line, to a file of this OS process."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()

    def write(self, errors: list[RaisedError]) -> None:
        if not errors:
            return
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.folder / f"{os.getpid()}.jsonl", "a", encoding="utf-8") as log:
                log.write(json.dumps([asdict(error) for error in errors]) + "\n")


@cache
def from_environment() -> ErrorLog | None:
    folder = os.environ.get(ENVIRONMENT_VARIABLE)
    return ErrorLog(Path(folder)) if folder else None


def read(folder: Path) -> list[list[RaisedError]]:
    """What every process that wrote to ``folder`` raised, one list per process."""
    processes = []
    for log in sorted(folder.glob("*.jsonl")):
        for line in log.read_text(encoding="utf-8").splitlines():
            processes.append(
                [RaisedError(**{**row, "inner_type_names": tuple(row["inner_type_names"])}) for row in json.loads(line)]
            )
    return processes
