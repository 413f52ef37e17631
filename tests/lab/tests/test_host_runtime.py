"""A PowerShell process of an emulated host: ended from outside where Windows ends it, and what it
leaves in the host's log."""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bridge_client import NETWORK, powershell_arguments, script
from host_snippets import new_host, run_system_task
from wuacache_lab.windows import host as host_module
from wuacache_lab.windows.faults import set_host_fault
from wuacache_lab.windows.host import WindowsHost
from wuacache_lab.windows.process import LogonSession, ProcessResult
from wuacache_lab.windows.taskscheduler import RegisteredTask

BEFORE = "C:\\ProgramData\\before.txt"
AFTER = "C:\\ProgramData\\after.txt"
SLEEPS = f"""[System.IO.File]::WriteAllText('{BEFORE}', 'asleep')
Start-Sleep -Seconds 30
[System.IO.File]::WriteAllText('{AFTER}', 'the sleep ended')"""
# Long enough for a process that is not ended to be seen running on; a kill point is a tenth of a second.
ENDED_WITHIN = 2.0


@pytest.fixture
def host(tmp_path: Path) -> WindowsHost:
    return new_host(tmp_path)


@pytest.fixture
def processes_ended(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[threading.Event]]:
    """One event per process the host runs, set when the process has ended."""
    ended: list[threading.Event] = []
    run_command_line = host_module.run_command_line

    def watched(host: WindowsHost, command_line: str, stdin: bytes, logon: LogonSession, cwd: str) -> ProcessResult:
        event = threading.Event()
        ended.append(event)
        try:
            return run_command_line(host, command_line, stdin, logon, cwd)
        finally:
            event.set()

    monkeypatch.setattr(host_module, "run_command_line", watched)
    yield ended
    for event in ended:
        event.wait(timeout=40)


def start_task(host: WindowsHost, text: str) -> RegisteredTask:
    """A SYSTEM task running ``text`` in powershell.exe, started and seen asleep."""
    task = run_system_task(host, "sleeps", text)
    deadline = time.monotonic() + 5
    while not host.disk.exists(BEFORE):
        assert time.monotonic() < deadline, "the task's script did not start"
        time.sleep(0.02)
    return task


def test_a_stopped_task_ends_its_script_in_start_sleep(host: WindowsHost, processes_ended: list[threading.Event]) -> None:
    task = start_task(host, SLEEPS)

    task.Stop(0)

    assert processes_ended[0].wait(timeout=ENDED_WITHIN), "the process slept on"
    assert not host.disk.exists(AFTER)


def test_a_restart_ends_a_script_in_start_sleep(host: WindowsHost, tmp_path: Path, processes_ended: list[threading.Event]) -> None:
    set_host_fault(tmp_path / "hosts", host.name, "reboot_seconds", seconds=30)
    start_task(host, SLEEPS)

    host.reboot(0)

    assert processes_ended[0].wait(timeout=ENDED_WITHIN), "the process outlived the restart"
    assert not host.disk.exists(AFTER)


def test_an_error_nothing_caught_names_the_shipped_script_and_its_line(host: WindowsHost, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wuacache_lab.windows")

    result = host.execute("PowerShell " + powershell_arguments(script("_wua_bootstrap.ps1")), b"{not json", NETWORK)

    assert result.exit_code == 1
    assert b"At _wua_bootstrap.ps1:4 char:" in result.stderr
    assert "At _wua_bootstrap.ps1:4 char:" in caplog.text


def test_what_the_lab_does_not_implement_is_logged_with_its_line(host: WindowsHost, caplog: pytest.LogCaptureFixture) -> None:
    encoded = base64.b64encode("$x = 1\nGet-Date -UFormat '%Y'".encode("utf-16-le")).decode("ascii")

    result = host.execute(f"powershell -EncodedCommand {encoded}", b"", NETWORK)

    assert result.exit_code == 1
    assert "does not implement Get-Date -UFormat" in caplog.text
    assert "line 2" in caplog.text
