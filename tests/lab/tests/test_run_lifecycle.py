"""An elevated run's life on a host, from ``task_start`` to ``task_collect``,
and what happens when it dies on the way: the Windows Update service it
started, the host it holds against other runs, its task's time limit, and
what it leaves behind (docs/bridge-protocol.md, "Elevated operations").

The fixes of the lifecycle's defects run twice (shipped_scripts.py): with
today's scripts, and with those from before the fixes, where they must fail.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from bridge_client import (
    CAB_URL,
    DISABLED_AND_STOPPED,
    HOST_LOCK,
    NETWORK,
    RUNS,
    RUNS_TASK_FOLDER,
    WUAUSERV_RECORD,
    bridge_request,
    call,
    collect,
    elevated,
    poll_until_ended,
    run_exists,
    start,
    task_path,
)
from shipped_scripts import before_and_after

from wuacache_lab.powershell.runtime import Runtime
from wuacache_lab.windows import host as host_module
from wuacache_lab.windows import wua
from wuacache_lab.windows.faults import set_host_fault
from wuacache_lab.windows.host import WindowsHost
from wuacache_lab.windows.process import LogonSession, ProcessResult

# The main commit the fixes of this file start from.
BEFORE_THE_FIXES = "711075a1b30a1e7f4bf47480d34edb8cc1cd808b"
ERROR_BUSY = -2147024726
ERROR_SHARING_VIOLATION = -2147024864
SCHED_S_TASK_TERMINATED = 0x41306
DISABLED_AND_STOPPED = {"start_mode": "Disabled", "running": False}
AUTOMATIC_AND_RUNNING = {"start_mode": "Automatic", "running": True}


def new_host(tmp_path: Path) -> WindowsHost:
    return WindowsHost("win10-01", tmp_path, profile="win10-22h2", trusted_ca=tmp_path / "ca.pem")


def service_state(host: WindowsHost) -> tuple[str, str]:
    state = host.state
    return state.wuauserv_start_mode, state.wuauserv_state


def info(host: WindowsHost) -> dict:
    exit_code, response = call(host, "info")
    assert exit_code == 0, response
    return response["result"]


@dataclass
class Held:
    """Holds the Update Agent's ``GetTotalHistoryCount``, which a ``history`` run calls once it has
    started the Windows Update service, until ``release`` is set; sees when each process ends."""

    release: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)
    ended: list[threading.Event] = field(default_factory=list)

    def wait_for_the_processes(self) -> None:
        self.release.set()
        for ended in self.ended:
            assert ended.wait(timeout=10)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[Held]:
    hold = Held()
    count = wua.UpdateSearcher.GetTotalHistoryCount
    run_command_line = host_module.run_command_line

    def held_count(searcher: wua.UpdateSearcher) -> int:
        hold.started.set()
        hold.release.wait(timeout=10)
        return count(searcher)

    def watched(host: WindowsHost, command_line: str, stdin: bytes, logon: LogonSession, cwd: str) -> ProcessResult:
        ended = threading.Event()
        hold.ended.append(ended)
        try:
            return run_command_line(host, command_line, stdin, logon, cwd)
        finally:
            ended.set()

    monkeypatch.setattr(wua.UpdateSearcher, "GetTotalHistoryCount", held_count)
    monkeypatch.setattr(host_module, "run_command_line", watched)
    yield hold
    hold.wait_for_the_processes()


@dataclass
class Clock:
    """How far the hosts' clock is ahead of the lab machine's, as their processes read it."""

    ahead: timedelta = timedelta()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()
    utc_now = Runtime.utc_now
    monkeypatch.setattr(Runtime, "utc_now", lambda runtime: utc_now(runtime) + moved.ahead)
    return moved


def start_history(host: WindowsHost, name: str, held: Held, time_limit: int | None = None) -> None:
    """A ``history`` run, held once it has started the Windows Update service."""
    exit_code, started = start(host, name, bridge_request("history", wuauserv_after=AUTOMATIC_AND_RUNNING), time_limit=time_limit)
    assert exit_code == 0, started
    assert held.started.wait(timeout=10)
    held.started.clear()


# ------------------------------------------------------------ the Windows Update service of a run that died


@before_and_after(BEFORE_THE_FIXES, "a run whose process was ended left the Windows Update service started, and nothing recorded how it was")
@pytest.mark.parametrize("ended_by", ["controller", "restart"])
def test_a_run_ended_before_it_restores_the_service_leaves_it_as_it_was(
    shipped_scripts: object, tmp_path: Path, held: Held, ended_by: str
) -> None:
    host = new_host(tmp_path)
    set_host_fault(tmp_path, host.name, "reboot_seconds", seconds=0)
    host.system().set_service_start_mode("wuauserv", "Disabled")
    start_history(host, "ended", held)
    assert service_state(host) == ("Manual", "Running")
    # What a controller that keeps the service unchanged reads while the run holds it.
    recorded_during_the_run = info(host)["wuauserv"].get("recorded")

    # A restart ends the task's process; so does the collect of a controller that gives up on the run,
    # which stops its task. Neither lets the process run its finally.
    if ended_by == "restart":
        host.reboot(0)
        held.wait_for_the_processes()
        assert poll_until_ended(host, "ended")["last_task_result"] == SCHED_S_TASK_TERMINATED
    assert collect(host, "ended") is None
    held.wait_for_the_processes()

    assert service_state(host) == ("Disabled", "Stopped")
    assert recorded_during_the_run == DISABLED_AND_STOPPED
    assert info(host)["wuauserv"]["recorded"] is None
    assert not run_exists(host, "ended")


def plant_record(host: WindowsHost, recorded: dict) -> None:
    """The state of the service before a run that died without restoring it."""
    host.disk.make_dirs("C:\\ProgramData\\wuacache")
    host.disk.write(WUAUSERV_RECORD, [json.dumps(recorded).encode()])


def test_a_run_puts_the_service_back_as_recorded_before_a_run_that_died(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    plant_record(host, DISABLED_AND_STOPPED)
    host.system().start_service("wuauserv")

    exit_code, started = start(host, "next", bridge_request("history", wuauserv_after=DISABLED_AND_STOPPED))

    assert exit_code == 0, started
    assert service_state(host) == ("Disabled", "Stopped")
    assert not host.disk.exists(WUAUSERV_RECORD)
    poll_until_ended(host, "next")
    collect(host, "next")


def test_an_operation_keeps_the_state_a_run_that_died_recorded(tmp_path: Path, held: Held) -> None:
    host = new_host(tmp_path)
    plant_record(host, AUTOMATIC_AND_RUNNING)
    host.system().set_service_start_mode("wuauserv", "Disabled")
    answers: list[tuple[int, dict]] = []
    # The operation run on its own, as nothing but a run's task_start restores a record first.
    operation = threading.Thread(target=lambda: answers.append(call(host, "history", wuauserv_after=DISABLED_AND_STOPPED)))
    operation.start()
    assert held.started.wait(timeout=10)

    recorded = json.loads(b"".join(host.disk.read(WUAUSERV_RECORD)))

    held.release.set()
    operation.join(timeout=10)
    assert recorded == AUTOMATIC_AND_RUNNING
    assert service_state(host) == ("Disabled", "Stopped")
    assert not host.disk.exists(WUAUSERV_RECORD)


# ------------------------------------------------------------ one run at a time


@before_and_after(BEFORE_THE_FIXES, "two runs could start on one host at once")
def test_a_run_holds_the_host_until_it_is_collected(shipped_scripts: object, tmp_path: Path, held: Held) -> None:
    host = new_host(tmp_path)
    start_history(host, "first", held)

    exit_code, refused = start(host, "second", bridge_request("history", wuauserv_after=DISABLED_AND_STOPPED))

    assert exit_code == 1, refused
    holder = json.loads(b"".join(host.disk.read(HOST_LOCK)))
    assert holder["name"] == "first"
    assert refused["error"] == {
        "hresult": ERROR_BUSY,
        "message": f"Another run holds this host: 'first', since {holder['started']}, until {holder['expires']} at the latest.",
        "call": "host.lock",
    }
    # The run uses the catalog and the staging folder: nobody changes them meanwhile.
    for operation, params in (("ensure_cab", {"url": CAB_URL, "sha256": "0" * 64, "offset": 0}), ("clean_staging", {})):
        exit_code, answer = call(host, operation, **params)
        assert (exit_code, answer["error"]["hresult"], answer["error"]["call"]) == (1, ERROR_BUSY, "host.lock")
    # Collecting the refused run leaves the first alone.
    assert collect(host, "second") is None
    assert task_path("first").casefold() in host.state.scheduled_tasks
    held.release.set()
    poll_until_ended(host, "first")
    assert json.loads(collect(host, "first"))["result"] == {"history": []}
    assert elevated(host, "history", wuauserv_after=DISABLED_AND_STOPPED) == {"history": []}


def test_a_run_takes_the_host_over_from_a_run_whose_time_is_up(tmp_path: Path, held: Held, clock: Clock) -> None:
    host = new_host(tmp_path)
    host.system().set_service_start_mode("wuauserv", "Disabled")
    start_history(host, "stuck", held, time_limit=600)
    clock.ahead = timedelta(seconds=601)

    exit_code, started = start(host, "next", bridge_request("history", wuauserv_after=DISABLED_AND_STOPPED))

    assert exit_code == 0, started
    # Its task stopped and deleted, its folder removed, the service back as it was before it.
    assert not run_exists(host, "stuck")
    assert service_state(host) == ("Disabled", "Stopped")
    assert json.loads(b"".join(host.disk.read(HOST_LOCK)))["name"] == "next"
    held.wait_for_the_processes()
    poll_until_ended(host, "next")
    collect(host, "next")
    # The stopped process ran no finally.
    assert service_state(host) == ("Disabled", "Stopped")
    assert not host.disk.exists(HOST_LOCK)


def test_a_run_takes_the_host_over_from_a_holder_whose_task_is_gone(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    start(host, "gone", bridge_request("history", wuauserv_after=DISABLED_AND_STOPPED))
    poll_until_ended(host, "gone")
    # Deleted by hand, or by a collect cut short: nothing else will release the lock.
    service = host.wua(NETWORK).create_object("Schedule.Service")
    service.Connect()
    service.GetFolder(RUNS_TASK_FOLDER).DeleteTask("gone", 0)

    exit_code, started = start(host, "next", bridge_request("history", wuauserv_after=DISABLED_AND_STOPPED))

    assert exit_code == 0, started
    assert not run_exists(host, "gone")
    poll_until_ended(host, "next")
    collect(host, "next")


def test_a_lock_that_cannot_be_put_in_place_fails_the_start(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    # Scanned right after the run wrote it, before it could be renamed into place.
    candidate = f"{RUNS}\\scanned\\host.lock"
    set_host_fault(tmp_path, host.name, "file_in_use", paths=[candidate])

    exit_code, refused = start(host, "scanned", bridge_request("history", wuauserv_after=DISABLED_AND_STOPPED))

    assert exit_code == 1, refused
    assert (refused["error"]["hresult"], refused["error"]["call"]) == (ERROR_SHARING_VIOLATION, "host.lock")
    assert not host.disk.exists(HOST_LOCK)


def test_a_lock_that_cannot_be_released_goes_to_the_next_run(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    start(host, "first", bridge_request("history", wuauserv_after=DISABLED_AND_STOPPED))
    poll_until_ended(host, "first")
    set_host_fault(tmp_path, host.name, "file_in_use", paths=[HOST_LOCK])

    exit_code, collected = call(host, "task_collect", name="first")

    assert exit_code == 0, collected
    assert (collected["result"]["cleanup_error"]["hresult"], collected["result"]["cleanup_error"]["call"]) == (ERROR_SHARING_VIOLATION, "host.lock")
    assert not run_exists(host, "first")
    set_host_fault(tmp_path, host.name, "file_in_use", paths=[])
    # The holder's task is gone: the next run takes the lock over.
    assert elevated(host, "history", wuauserv_after=DISABLED_AND_STOPPED) == {"history": []}
    assert not host.disk.exists(HOST_LOCK)


# ------------------------------------------------------------ the task's time limit


@before_and_after(BEFORE_THE_FIXES, "the task's ExecutionTimeLimit was four hours, whatever the controller's time budget")
def test_a_run_has_the_time_limit_the_controller_gives(shipped_scripts: object, tmp_path: Path) -> None:
    host = new_host(tmp_path)

    exit_code, started = start(host, "limited", bridge_request("history", wuauserv_after=DISABLED_AND_STOPPED), time_limit=900)

    assert exit_code == 0, started
    task = host.state.scheduled_tasks[started["result"]["task"].casefold()]
    assert task.settings["ExecutionTimeLimit"] == "PT900S"
    holder = json.loads(b"".join(host.disk.read(HOST_LOCK)))
    assert datetime.fromisoformat(holder["expires"]) - datetime.fromisoformat(holder["started"]) == timedelta(seconds=900)
    poll_until_ended(host, "limited")
    collect(host, "limited")


# ------------------------------------------------------------ what a run leaves behind


@before_and_after(BEFORE_THE_FIXES, "a collect that could not remove the run's folder answered an error in place of the run's response")
def test_a_clean_up_that_fails_comes_with_the_response(shipped_scripts: object, tmp_path: Path) -> None:
    host = new_host(tmp_path)
    start(host, "kept", bridge_request("history", wuauserv_after=DISABLED_AND_STOPPED))
    poll_until_ended(host, "kept")
    in_use = f"{RUNS}\\kept\\envelope.json"
    set_host_fault(tmp_path, host.name, "file_in_use", paths=[in_use])

    exit_code, collected = call(host, "task_collect", name="kept")

    assert exit_code == 0, collected
    assert json.loads(collected["result"]["response"])["result"] == {"history": []}
    assert collected["result"]["cleanup_error"] == {
        "hresult": ERROR_SHARING_VIOLATION,
        "message": f"The process cannot access the file '{in_use}' because it is being used by another process.",
        "call": "Remove-Item run folder",
    }
    # Only the file in use stays; the task is gone, and the next run may start.
    assert host.disk.children(f"{RUNS}\\kept") == ["envelope.json"]
    assert task_path("kept").casefold() not in host.state.scheduled_tasks
    assert elevated(host, "history", wuauserv_after=DISABLED_AND_STOPPED) == {"history": []}


@before_and_after(BEFORE_THE_FIXES, "a run whose controller died left its task and folder on the host for good")
def test_what_a_run_whose_controller_died_left_goes_once_its_time_is_up(shipped_scripts: object, tmp_path: Path, clock: Clock) -> None:
    host = new_host(tmp_path)
    start(host, "dead", bridge_request("history", wuauserv_after=DISABLED_AND_STOPPED))
    poll_until_ended(host, "dead")
    # Nothing collects it; then its time is up.
    clock.ahead = timedelta(hours=2)

    exit_code, started = start(host, "next", bridge_request("history", wuauserv_after=DISABLED_AND_STOPPED))

    assert exit_code == 0, started
    assert not run_exists(host, "dead")
    assert started["result"]["task"] == task_path("next")
    poll_until_ended(host, "next")
    collect(host, "next")


def test_runs_sweep_what_runs_left_once_their_time_is_up(tmp_path: Path, clock: Clock) -> None:
    host = new_host(tmp_path)
    # Two runs whose collect could not remove their folder, with 10 minutes and 2 hours.
    in_use = [f"{RUNS}\\short\\envelope.json", f"{RUNS}\\long\\envelope.json"]
    set_host_fault(tmp_path, host.name, "file_in_use", paths=in_use)
    for name, time_limit in (("short", 600), ("long", 7200)):
        start(host, name, bridge_request("history", wuauserv_after=DISABLED_AND_STOPPED), time_limit=time_limit)
        poll_until_ended(host, name)
        assert call(host, "task_collect", name=name)[1]["result"]["cleanup_error"]["hresult"] == ERROR_SHARING_VIOLATION
    # A task left in the runs' folder without its run's folder, and a folder that is not a run's.
    service = host.wua(NETWORK).create_object("Schedule.Service")
    service.Connect()
    definition = service.NewTask(0)
    definition.Actions.Create(0).Path = "hostname.exe"
    service.GetFolder(RUNS_TASK_FOLDER).RegisterTaskDefinition("orphan", definition, 6, "SYSTEM", None, 5)
    host.disk.make_dirs(f"{RUNS}\\not-a-run")
    clock.ahead = timedelta(seconds=601)

    # A leftover that cannot be removed yet stays for a later run, which starts all the same.
    assert elevated(host, "history", wuauserv_after=DISABLED_AND_STOPPED) == {"history": []}
    assert (run_exists(host, "short"), run_exists(host, "orphan")) == (True, False)
    set_host_fault(tmp_path, host.name, "file_in_use", paths=[])
    assert elevated(host, "history", wuauserv_after=DISABLED_AND_STOPPED) == {"history": []}

    # The run with 2 hours is not over yet; the folder without a record is not a run's.
    assert host.disk.children(RUNS) == ["long", "long.json", "not-a-run"]
