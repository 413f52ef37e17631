"""Elevated bridge operations on an emulated host, driven as
docs/bridge-protocol.md describes: a network logon starts a SYSTEM task with
``task_start``, polls it with ``task_poll`` and collects its response with
``task_collect``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from bridge_client import (
    DISABLED_AND_STOPPED,
    NETWORK,
    RUNS,
    RUNS_TASK_FOLDER,
    STANDARD_USER,
    bridge_request,
    call,
    collect,
    poll_until_ended,
    powershell_arguments,
    run_exists,
    script,
    start,
    task_path,
)
from wuacache_lab.windows import host as host_module
from wuacache_lab.windows import wua
from wuacache_lab.windows.faults import set_host_fault
from wuacache_lab.windows.host import WindowsHost
from wuacache_lab.windows.process import LogonSession, ProcessResult

TASK_STATE_READY = 3
SCHED_S_TASK_TERMINATED = 0x41306
E_ACCESSDENIED = -2147024891
ERROR_FILE_NOT_FOUND = -2147024894
E_INVALIDARG = -2147024809
ERROR_INVALID_OWNER = 0x8007051B - (1 << 32)


def new_host(tmp_path: Path) -> WindowsHost:
    return WindowsHost("win10-01", tmp_path, profile="win10-22h2", trusted_ca=tmp_path / "ca.pem")


def test_reboot_required_is_refused_to_a_network_logon(tmp_path: Path) -> None:
    exit_code, response = call(new_host(tmp_path), "reboot_required", wuauserv_after=DISABLED_AND_STOPPED)

    assert exit_code == 1
    assert response["error"]["hresult"] == E_ACCESSDENIED
    assert response["error"]["call"] == "Microsoft.Update.SystemInfo.RebootRequired"


def test_an_elevated_run_answers_what_the_network_logon_may_not_read(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    answers = []
    for name in ("first", "second"):
        exit_code, started = start(host, name, bridge_request("reboot_required", wuauserv_after=DISABLED_AND_STOPPED))
        assert exit_code == 0, started
        assert (started["result"]["task"], started["result"]["folder"]) == (task_path(name), f"{RUNS}\\{name}")

        poll = poll_until_ended(host, name)

        # reboot_required is no long operation: it writes no progress.
        assert poll == {"state": TASK_STATE_READY, "last_task_result": 0, "response_ready": True, "progress": None, "collected": None}
        assert not host.disk.exists(f"{RUNS}\\{name}\\response.json.tmp")
        answers.append(json.loads(collect(host, name)))
        assert not run_exists(host, name)
        # An install that waits for a restart leaves Windows Update's marker.
        host.set_reboot_marker("wu_reboot_required")

    assert answers == [
        {"protocol": 1, "operation": "reboot_required", "result": {"reboot_required": reboot_required}}
        for reboot_required in (False, True)
    ]


def test_task_start_registers_the_documented_system_task(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    request = bridge_request("r\u00e9ticulate")

    start(host, "run-1", request, time_limit=7800)

    folder = f"{RUNS}\\run-1"
    envelope = b"".join(host.disk.read(f"{folder}\\envelope.json"))
    assert envelope.isascii() and b"\\u00e9" in envelope
    assert json.loads(envelope) == {"bridge": script("_wua_bridge.ps1"), "request": request}
    task = host.state.scheduled_tasks[task_path("run-1")]
    assert (task.user_id, task.logon_type, task.run_level) == ("SYSTEM", 5, 1)
    assert [(action.path, action.arguments, action.working_directory) for action in task.actions] == [
        (
            "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
            powershell_arguments(script("_wua_task.ps1")),
            folder,
        )
    ]
    settings = task.settings
    # The controller's time budget, as an ISO 8601 duration.
    assert (settings["ExecutionTimeLimit"], settings["Priority"]) == ("PT7800S", 4)
    assert settings["DisallowStartIfOnBatteries"] is False and settings["StopIfGoingOnBatteries"] is False
    poll_until_ended(host, "run-1")
    collect(host, "run-1")


def test_a_request_the_bridge_cannot_serve_is_collected_as_its_error(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    start(host, "unknown", bridge_request("r\u00e9ticulate"))

    poll = poll_until_ended(host, "unknown")
    text = collect(host, "unknown")

    assert poll == {"state": TASK_STATE_READY, "last_task_result": 1, "response_ready": True, "progress": None, "collected": None}
    assert text.isascii()
    response = json.loads(text)
    assert (response["operation"], response["error"]["hresult"]) == ("r\u00e9ticulate", E_INVALIDARG)
    assert response["error"]["call"] == "bridge request"
    assert not run_exists(host, "unknown")


def test_polling_a_run_that_does_not_exist_fails_with_its_hresult(tmp_path: Path) -> None:
    exit_code, response = call(new_host(tmp_path), "task_poll", name="nothing")

    assert exit_code == 1
    assert (response["error"]["hresult"], response["error"]["call"]) == (ERROR_FILE_NOT_FOUND, "ITaskFolder.GetTask")


def test_collecting_a_run_that_left_nothing_behind_is_not_an_error(tmp_path: Path) -> None:
    assert collect(new_host(tmp_path), "nothing") is None


@pytest.mark.parametrize("name", ["..\\..\\Windows", "a b", "run\n", "x" * 65, "", None])
def test_run_names_are_validated_before_anything_is_created(tmp_path: Path, name: str | None) -> None:
    host = new_host(tmp_path)

    exit_code, response = start(host, name, bridge_request("reboot_required", wuauserv_after=DISABLED_AND_STOPPED))

    assert exit_code == 1
    assert (response["error"]["hresult"], response["error"]["call"]) == (E_INVALIDARG, "bridge request")
    assert host.state.scheduled_tasks == {}
    assert not host.disk.path(RUNS).exists()


def test_a_standard_user_cannot_secure_the_root_and_registers_nothing(tmp_path: Path) -> None:
    host = new_host(tmp_path)

    exit_code, response = start(host, "denied", bridge_request("reboot_required", wuauserv_after=DISABLED_AND_STOPPED), STANDARD_USER)

    assert exit_code == 1
    # Only an elevated token may make Administrators the owner: CreateDirectory fails with ERROR_INVALID_OWNER.
    assert response["error"]["hresult"] == ERROR_INVALID_OWNER
    assert response["error"]["call"] == "Initialize-PrivateFolder"
    assert host.state.scheduled_tasks == {}
    assert not host.disk.path(RUNS).exists()


def test_a_task_bootstrap_without_an_envelope_fails_like_powershell(tmp_path: Path) -> None:
    result = new_host(tmp_path).execute("PowerShell " + powershell_arguments(script("_wua_task.ps1")), b"", NETWORK)

    assert (result.exit_code, result.stdout) == (1, b"")
    assert b"Get-Content" in result.stderr and b"envelope.json" in result.stderr


@dataclass
class HeldTasks:
    """Holds every ``reboot_required`` run until ``release`` is set, and sees
    when each process the host starts has ended."""

    release: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)
    ended: list[threading.Event] = field(default_factory=list)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldTasks]:
    """Holds the Update Agent's answer to ``ISystemInformation.RebootRequired``, which a
    ``reboot_required`` run reads, until ``release`` is set."""
    tasks = HeldTasks()
    reboot_required = wua.SystemInformation.RebootRequired
    run_command_line = host_module.run_command_line

    def held_reboot_required(system_information: wua.SystemInformation) -> bool:
        tasks.started.set()
        tasks.release.wait(timeout=10)
        return reboot_required.fget(system_information)

    def watched(host: WindowsHost, command_line: str, stdin: bytes, logon: LogonSession, cwd: str) -> ProcessResult:
        ended = threading.Event()
        tasks.ended.append(ended)
        try:
            return run_command_line(host, command_line, stdin, logon, cwd)
        finally:
            ended.set()

    monkeypatch.setattr(wua.SystemInformation, "RebootRequired", property(held_reboot_required))
    monkeypatch.setattr(host_module, "run_command_line", watched)
    yield tasks
    tasks.release.set()
    for ended in tasks.ended:
        ended.wait(timeout=10)


def test_a_restart_ends_the_run_without_a_response(tmp_path: Path, held: HeldTasks) -> None:
    host = new_host(tmp_path)
    set_host_fault(tmp_path, host.name, "reboot_seconds", seconds=0)
    start(host, "restarted", bridge_request("reboot_required", wuauserv_after=DISABLED_AND_STOPPED))
    assert held.started.wait(timeout=10)

    host.reboot(0)
    held.release.set()
    for ended in held.ended:
        assert ended.wait(timeout=10)

    poll = poll_until_ended(host, "restarted")
    assert poll == {
        "state": TASK_STATE_READY,
        "last_task_result": SCHED_S_TASK_TERMINATED,
        "response_ready": False,
        "progress": None,
        "collected": None,
    }
    assert collect(host, "restarted") is None
    assert not run_exists(host, "restarted")


def test_a_run_given_up_on_is_collected_all_the_same(tmp_path: Path, held: HeldTasks) -> None:
    host = new_host(tmp_path)
    start(host, "abandoned", bridge_request("reboot_required", wuauserv_after=DISABLED_AND_STOPPED))
    assert held.started.wait(timeout=10)

    assert collect(host, "abandoned") is None

    assert not run_exists(host, "abandoned")
    held.release.set()
    for ended in held.ended:
        assert ended.wait(timeout=10)
    # The stopped process wrote nothing back.
    assert not run_exists(host, "abandoned")


def test_a_stopped_run_writes_no_response(tmp_path: Path, held: HeldTasks) -> None:
    host = new_host(tmp_path)
    start(host, "stopped", bridge_request("reboot_required", wuauserv_after=DISABLED_AND_STOPPED))
    assert held.started.wait(timeout=10)
    service = host.wua(NETWORK).create_object("Schedule.Service")
    service.Connect()

    service.GetFolder(RUNS_TASK_FOLDER).GetTask("stopped").Stop(0)
    held.release.set()
    for ended in held.ended:
        assert ended.wait(timeout=10)

    poll = poll_until_ended(host, "stopped")
    assert poll == {
        "state": TASK_STATE_READY,
        "last_task_result": SCHED_S_TASK_TERMINATED,
        "response_ready": False,
        "progress": None,
        "collected": None,
    }
    assert collect(host, "stopped") is None
