"""Faults the upstream injects into its answers, kept in ``faults.json``.

The table lives in the state directory so that tests and the ``lab`` CLI, in
other processes, can change it while the server runs. Every change replaces
the file atomically under an exclusive lock, which also serialises the
server's own decrements of counted faults.

A fault key is a URL path (``/c/msdownload/...``), optionally qualified by its
host (``download.windowsupdate.com/c/msdownload/...``); a host-qualified key
wins over a bare path. The table maps keys to fault specifications::

    {"download.windowsupdate.com/c/x.cab": {"kind": "truncate", "count": 1}}
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

FAULTS_FILE = "faults.json"
_LOCK_FILE = "faults.lock"

FAULT_KINDS = frozenset({"truncate", "corrupt", "status", "slow", "reset"})
# These alter the body of a file, so only a response that carries one can use
# them up: a HEAD before the GET must not consume a fault meant for the GET.
BODY_FAULT_KINDS = frozenset({"truncate", "corrupt", "slow"})


@dataclass(frozen=True)
class Fault:
    """One fault specification.

    ``count`` is how many more matching requests it applies to (``None``:
    all of them). ``status`` is the answer of a ``status`` fault; ``delay``
    (seconds before the body) and ``rate`` (bytes per second) shape a
    ``slow`` one.
    """

    kind: str
    count: int | None = None
    status: int | None = None
    delay: float | None = None
    rate: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}"
            )
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1, or None for every request")
        if (self.status is not None) != (self.kind == "status"):
            raise ValueError("status is required by, and only valid for, a 'status' fault")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError("a 'status' fault answers an error status (400-599)")
        if self.kind == "slow":
            if self.delay is None and self.rate is None:
                raise ValueError("a 'slow' fault needs a delay, a rate or both")
            if (self.delay is not None and self.delay < 0) or (
                self.rate is not None and self.rate < 1
            ):
                raise ValueError("delay must be >= 0 seconds and rate >= 1 byte/s")
        elif self.delay is not None or self.rate is not None:
            raise ValueError("delay and rate are only valid for a 'slow' fault")

    @property
    def affects_body(self) -> bool:
        return self.kind in BODY_FAULT_KINDS

    def to_json(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if value is not None}


def fault_key(url_or_path: str) -> str:
    """Normalise a URL, ``host/path`` or ``/path`` to a fault key.

    The query is dropped and the path percent-decoded, as the server decodes
    request paths before matching them.
    """
    if "://" not in url_or_path and not url_or_path.startswith("/"):
        url_or_path = "//" + url_or_path
    parts = urlsplit(url_or_path)
    path = unquote(parts.path or "/")
    return f"{parts.hostname}{path}" if parts.hostname else path


def set_fault(
    state_dir: Path,
    url_or_path: str,
    kind: str,
    *,
    count: int | None = None,
    status: int | None = None,
    delay: float | None = None,
    rate: int | None = None,
) -> None:
    """Inject ``kind`` into the answers for ``url_or_path``, replacing any
    fault already set on that key."""
    fault = Fault(kind, count=count, status=status, delay=delay, rate=rate)
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(state_dir):
        table = _read_table(state_dir)
        table[fault_key(url_or_path)] = fault
        _write_table(state_dir, table)


def clear_faults(state_dir: Path) -> None:
    """Remove every fault: the server answers normally again."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(state_dir):
        _write_table(state_dir, {})


def read_faults(state_dir: Path) -> dict[str, Fault]:
    """The faults currently set, with their remaining counts."""
    return _read_table(Path(state_dir))


class FaultTable:
    """The server's view of ``faults.json``, re-read whenever the file changes."""

    def __init__(self, state_dir: Path) -> None:
        self._state_dir = state_dir
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._table: dict[str, Fault] = {}

    def take(self, host: str, path: str, *, sends_body: bool) -> Fault | None:
        """The fault to apply to a request for ``host`` and ``path``, if any,
        using up one application of a counted fault."""
        if _match(self._current(), host, path, sends_body) is None:
            return None  # the common case needs no lock on the file
        with _exclusive_lock(self._state_dir):
            # Another request or process may have used up the fault meanwhile.
            table = _read_table(self._state_dir)
            found = _match(table, host, path, sends_body)
            if found is None:
                return None
            key, fault = found
            if fault.count is not None:
                if fault.count > 1:
                    table[key] = replace(fault, count=fault.count - 1)
                else:
                    del table[key]
                _write_table(self._state_dir, table)
            return fault

    def _current(self) -> dict[str, Fault]:
        try:
            stat = (self._state_dir / FAULTS_FILE).stat()
            # Writers replace the file, so the inode changes even when the
            # mtime does not tick between two writes.
            signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            signature = None
        with self._lock:
            if signature != self._signature:
                self._table = _read_table(self._state_dir)
                self._signature = signature
            return self._table


def _match(
    table: dict[str, Fault], host: str, path: str, sends_body: bool
) -> tuple[str, Fault] | None:
    for key in (f"{host}{path}", path):
        fault = table.get(key)
        if fault is not None:
            if fault.affects_body and not sends_body:
                return None
            return key, fault
    return None


@contextmanager
def _exclusive_lock(state_dir: Path) -> Iterator[None]:
    # Each call opens its own file description, so flock() excludes other
    # threads of this process as well as other processes.
    with open(state_dir / _LOCK_FILE, "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        yield


def _read_table(state_dir: Path) -> dict[str, Fault]:
    try:
        raw = json.loads((state_dir / FAULTS_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return {key: Fault(**spec) for key, spec in raw.items()}


def _write_table(state_dir: Path, table: dict[str, Fault]) -> None:
    document = {key: fault.to_json() for key, fault in table.items()}
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=state_dir, prefix=".faults.", suffix=".tmp", delete=False
    ) as tmp:
        json.dump(document, tmp, indent=2, sort_keys=True)
    os.replace(tmp.name, state_dir / FAULTS_FILE)
