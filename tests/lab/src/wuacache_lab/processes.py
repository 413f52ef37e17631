"""Background processes of a lab: started detached, tracked by pid files, stopped for sure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


class LabProcessError(RuntimeError):
    pass


def start(name: str, module: str, args: list[str], run_dir: Path, log_dir: Path, timeout: float = 60.0) -> int:
    """Start ``python -m module args`` in its own session and wait until it
    writes its ready file (it is given ``--ready-file``). Returns its pid."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    ready_file = run_dir / f"{name}.ready"
    ready_file.unlink(missing_ok=True)
    with open(log_dir / f"{name}.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args, "--ready-file", str(ready_file)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (run_dir / f"{name}.pid").write_text(f"{process.pid}\n")
    deadline = time.monotonic() + timeout
    while not ready_file.exists():
        if process.poll() is not None:
            raise LabProcessError(f"{name} exited with status {process.returncode}; see {log_dir / (name + '.log')}")
        if time.monotonic() > deadline:
            stop(name, run_dir)
            raise LabProcessError(f"{name} was not ready after {timeout:.0f} s; see {log_dir / (name + '.log')}")
        time.sleep(0.05)
    return process.pid


def running(name: str, run_dir: Path) -> int | None:
    """The pid of a lab process that is still alive, else None."""
    try:
        pid = int((run_dir / f"{name}.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def stop(name: str, run_dir: Path, timeout: float = 10.0) -> bool:
    """Stop a lab process and everything in its session; True if one was running."""
    pid = running(name, run_dir)
    (run_dir / f"{name}.ready").unlink(missing_ok=True)
    if pid is None:
        (run_dir / f"{name}.pid").unlink(missing_ok=True)
        return False
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _group_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if _group_alive(pid):
        _signal_group(pid, signal.SIGKILL)
    _reap(pid)
    (run_dir / f"{name}.pid").unlink(missing_ok=True)
    return True


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _reap(pid: int) -> None:
    # Only our own children can be reaped; a process started by an earlier
    # `lab up` is reaped by init.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
