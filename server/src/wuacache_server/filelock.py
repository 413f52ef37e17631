"""An exclusive, non-blocking lock on a file, between processes and threads.

A cab sync, a cleanup or a fetch service that finds another one running
gives up at once rather than waiting: the other is doing the work.
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO


def try_lock(path: Path) -> IO[str] | None:
    """Hold an exclusive lock on ``path`` until the returned file is closed; None if another holder has it.

    Each open() is its own file description, so flock() also excludes another
    holder in a different thread of this process.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(path, "a")  # noqa: SIM115 - the caller holds it as long as the lock
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock
