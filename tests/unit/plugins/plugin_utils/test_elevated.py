# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Elevated runs: the controller drives a scheduled task through the bridge, against recorded host answers."""

from __future__ import annotations

import base64
import json
import pathlib
import re
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock

import pytest

from ansible_collections.wuacache.wua.plugins.plugin_utils import _bridge
from ansible_collections.wuacache.wua.plugins.plugin_utils._bridge import BridgeError, bridge_command, run_elevated, task_arguments

from ..conftest import FakeClock

PLUGIN_UTILS = pathlib.Path(__file__).resolve().parents[4] / "plugins" / "plugin_utils"
TASK_ARGUMENTS = "-NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand "
# cmd.exe rejects command lines longer than this many characters.
CMD_EXE_LIMIT = 8191

# IRegisteredTask.State and LastTaskResult while the task runs, and once it ended.
RUNNING = {"state": 4, "last_task_result": 0x00041301}
QUEUED = {"state": 2, "last_task_result": 0x00041303}
ENDED = {"state": 3, "last_task_result": 0}
# Ready and never run: Run() has returned, the instance has not started yet.
NOT_STARTED_YET = {"state": 3, "last_task_result": 0x00041303}
ENDED_WITH_ERROR = {"state": 3, "last_task_result": 1}

REBOOT_REQUIRED = '{"protocol":1,"operation":"reboot_required","result":{"reboot_required":true}}'
SEARCH_FAILED = (
    '{"protocol":1,"operation":"reboot_required","error":{"hresult":-2145124330,'
    '"message":"Exception from HRESULT: 0x80240016","call":"Microsoft.Update.SystemInfo.RebootRequired"}}'
)
ACCESS_DENIED_AT_REGISTRATION = (
    '{"protocol":1,"operation":"task_start","error":{"hresult":-2147024891,'
    '"message":"Access is denied. (Exception from HRESULT: 0x80070005 (E_ACCESSDENIED))",'
    '"call":"ITaskFolder.RegisterTaskDefinition"}}'
)
NO_SUCH_TASK = (
    '{"protocol":1,"operation":"task_poll","error":{"hresult":-2147024894,'
    '"message":"The system cannot find the file specified. (Exception from HRESULT: 0x80070002)",'
    '"call":"ITaskFolder.GetTask"}}'
)
BUSY = (
    '{"protocol":1,"operation":"task_start","error":{"hresult":-2147024726,'
    '"message":"Another run holds this host: \'run-0\', since 2024-05-14T06:12:31.5000000Z, until 2024-05-14T08:22:31.5000000Z at the latest.",'
    '"call":"host.lock"}}'
)
FOLDER_IN_USE = {
    "hresult": -2147024864,
    "message": "The process cannot access the file 'C:\\ProgramData\\wuacache\\runs\\run-1\\envelope.json' because it is being used by another process.",
    "call": "Remove-Item run folder",
}
RPC_UNAVAILABLE_AT_COLLECT = (
    '{"protocol":1,"operation":"task_collect","error":{"hresult":-2147023174,'
    '"message":"The RPC server is unavailable. (Exception from HRESULT: 0x800706BA)",'
    '"call":"Schedule.Service.Connect"}}'
)


def answer(operation: str, result: dict[str, Any]) -> tuple[int, str]:
    return 0, json.dumps({"protocol": 1, "operation": operation, "result": result})


def run_status(
    status: dict[str, int], response_ready: bool, progress: dict[str, Any] | None = None, collected: str | None | bool = False
) -> dict[str, Any]:
    """What task_start and task_poll answer of a run; ``collected``, the response of a run they collected, if they did."""
    done = None if collected is False else {"response": collected, "cleanup_error": None}
    return dict(status, response_ready=response_ready, progress=progress, collected=done)


def started(name: str, status: dict[str, Any] | None = None) -> tuple[int, str]:
    """task_start's answer: by default, a run whose task is still running when the wait ends."""
    folder = f"C:\\ProgramData\\wuacache\\runs\\{name}"
    return answer("task_start", {"task": f"\\wuacache\\runs\\{name}", "folder": folder, "status": status or run_status(RUNNING, False)})


def polled(status: dict[str, int], response_ready: bool, progress: dict[str, Any] | None = None, collected: str | None | bool = False) -> tuple[int, str]:
    return answer("task_poll", run_status(status, response_ready, progress, collected))


def collected(response: str | None, cleanup_error: dict[str, Any] | None = None) -> tuple[int, str]:
    return answer("task_collect", {"response": response, "cleanup_error": cleanup_error})


class RecordedHost:
    """Stands in for an action plugin: answers each bridge operation from its recorded answers, in order.

    With the fake clock, a task_start or task_poll answered with a run that goes on took the whole wait it asked for.
    """

    # A patching action keeps the task's warnings for its result; others have none.
    task_warnings: list[str] | None = None

    def __init__(self, answers: dict[str, list[tuple[int, str]]]) -> None:
        self.answers = answers
        self.requests: list[dict[str, Any]] = []
        self._play_context = SimpleNamespace(remote_addr="ws2022-01.example.com")

    def _low_level_execute_command(self, cmd: str, sudoable: bool = True, in_data: bytes | None = None) -> dict[str, Any]:
        assert cmd == bridge_command()
        assert sudoable is False
        assert in_data is not None
        request = json.loads(in_data)["request"]
        self.requests.append(request)
        rc, stdout = self.answers[request["operation"]].pop(0)
        status = json.loads(stdout).get("result", {})
        status = status.get("status", status)
        goes_on = status.get("state") in (2, 4) or status.get("last_task_result") == NOT_STARTED_YET["last_task_result"]
        if isinstance(_bridge.time, FakeClock) and goes_on and not status.get("progress"):
            _bridge.time.now += request["params"]["wait_seconds"]
        return {"rc": rc, "stdout": stdout, "stderr": ""}

    @property
    def operations(self) -> list[str]:
        return [request["operation"] for request in self.requests]


def test_the_progress_a_run_writes_is_shown_once_per_change(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    shown = MagicMock()
    monkeypatch.setattr(_bridge.display, "display", shown)
    search = {"sequence": 1, "step": "search", "done": 0, "total": 1, "item": None}
    first = {"sequence": 2, "step": "download", "done": 0, "total": 2, "item": "windows10.0-kb5034129-x64.cab"}
    second = {"sequence": 3, "step": "download", "done": 1, "total": 2, "item": "ssu-20348.2200-x64.psf"}
    install = {"sequence": 4, "step": "install", "done": 0, "total": 3, "item": None}
    host = RecordedHost({
        "task_start": [started("run-1")],
        "task_poll": [
            polled(RUNNING, False),
            polled(RUNNING, False, search),
            polled(RUNNING, False, first),
            polled(RUNNING, False, first),
            polled(RUNNING, False, second),
            polled(RUNNING, False, install),
            polled(ENDED, True, install, collected=REBOOT_REQUIRED),
        ],
    })

    assert run_elevated(host, "reboot_required", name="run-1") == {"reboot_required": True}
    # Each poll waits on the host for more than what was shown.
    assert [request["params"]["progress_sequence"] for request in host.requests[1:]] == [0, 0, 1, 2, 2, 3, 4]
    assert [call.args[0] for call in shown.call_args_list] == [
        "<ws2022-01.example.com> searching the catalog",
        "<ws2022-01.example.com> downloading file 1 of 2: windows10.0-kb5034129-x64.cab",
        "<ws2022-01.example.com> downloading file 2 of 2: ssu-20348.2200-x64.psf",
        "<ws2022-01.example.com> installing 3 updates",
    ]


def test_a_run_that_ends_within_task_starts_wait_takes_one_command(clock: FakeClock) -> None:
    host = RecordedHost({"task_start": [started("run-1", run_status(ENDED, True, collected=REBOOT_REQUIRED))]})

    assert run_elevated(host, "reboot_required", name="run-1") == {"reboot_required": True}

    assert host.operations == ["task_start"]
    assert clock.sleeps == []


def test_success_after_two_long_polls_the_last_of_which_collects(clock: FakeClock) -> None:
    host = RecordedHost({
        "task_start": [started("run-1")],
        "task_poll": [polled(RUNNING, False), polled(ENDED, True, collected=REBOOT_REQUIRED)],
    })

    assert run_elevated(host, "reboot_required", name="run-1", timeout=1000) == {"reboot_required": True}

    assert host.operations == ["task_start", "task_poll", "task_poll"]
    # The host waits (60 s in task_start, then 300 s a poll), the controller never sleeps.
    waiting = {"name": "run-1", "progress_sequence": 0, "interval_milliseconds": 1000, "collect": True}
    assert [request["params"] for request in host.requests[1:]] == [dict(waiting, wait_seconds=300), dict(waiting, wait_seconds=300)]
    assert clock.sleeps == []


def test_a_run_ended_but_not_collected_is_collected_apart(clock: FakeClock) -> None:
    # A task still reading as never run after the grace is taken as ended, which the host does not collect.
    host = RecordedHost({
        "task_start": [started("run-1")],
        "task_poll": [polled(ENDED, True)],
        "task_collect": [collected(REBOOT_REQUIRED)],
    })

    assert run_elevated(host, "reboot_required", name="run-1") == {"reboot_required": True}
    assert host.operations == ["task_start", "task_poll", "task_collect"]
    assert clock.sleeps == []


@pytest.mark.usefixtures("clock")
def test_task_start_carries_the_bridge_the_request_and_the_task_bootstrap() -> None:
    host = RecordedHost({
        "task_start": [started("run-1")],
        "task_poll": [polled(ENDED, True)],
        "task_collect": [collected('{"protocol":1,"operation":"info","result":{}}')],
    })

    run_elevated(host, "info", {"kb": [5037782]}, name="run-1")

    # The task runs the bridge that runs task_start, which the host keeps.
    params = host.requests[0]["params"]
    assert params == {
        "name": "run-1",
        "envelope": {"request": {"protocol": 1, "operation": "info", "params": {"kb": [5037782]}}},
        "task_arguments": task_arguments(),
        # The task's ExecutionTimeLimit: the time budget and ten minutes.
        "time_limit": 4200,
        "wait_seconds": 60,
        "interval_milliseconds": 1000,
        "collect": True,
    }
    bootstrap = base64.b64decode(params["task_arguments"].removeprefix(TASK_ARGUMENTS)).decode("utf-16-le")
    assert bootstrap == (PLUGIN_UTILS / "_wua_task.ps1").read_text(encoding="utf-8")


@pytest.mark.usefixtures("clock")
def test_runs_get_distinct_valid_names_by_default() -> None:
    def name_of_a_run() -> str:
        host = RecordedHost({
            "task_start": [started("x")],
            "task_poll": [polled(ENDED, True)],
            "task_collect": [collected(REBOOT_REQUIRED)],
        })
        run_elevated(host, "reboot_required")
        return host.requests[0]["params"]["name"]

    first, second = name_of_a_run(), name_of_a_run()

    assert first != second
    assert re.fullmatch(r"run-[0-9a-f]{32}", first)
    assert re.fullmatch(r"run-[0-9a-f]{32}", second)


def test_a_response_written_by_a_running_task_waits_for_its_end(clock: FakeClock) -> None:
    host = RecordedHost({
        "task_start": [started("run-1")],
        "task_poll": [polled(QUEUED, False), polled(RUNNING, True), polled(ENDED, True)],
        "task_collect": [collected(REBOOT_REQUIRED)],
    })

    assert run_elevated(host, "reboot_required", name="run-1", poll_interval=5) == {"reboot_required": True}

    # The host looks every 5 seconds.
    assert {request["params"]["interval_milliseconds"] for request in host.requests[:-1]} == {5000}
    assert clock.sleeps == []


@pytest.mark.usefixtures("clock")
def test_error_in_the_task_is_reported_as_the_bridge_reports_it() -> None:
    host = RecordedHost({
        "task_start": [started("run-1")],
        "task_poll": [polled(ENDED_WITH_ERROR, True)],
        "task_collect": [collected(SEARCH_FAILED)],
    })

    with pytest.raises(BridgeError) as raised:
        run_elevated(host, "reboot_required", name="run-1")

    error = raised.value
    assert error.hresult is not None
    assert (error.hresult.name, error.call, error.rc) == ("WU_E_INSTALL_NOT_ALLOWED", "Microsoft.Update.SystemInfo.RebootRequired", 1)


@pytest.mark.usefixtures("clock")
def test_result_with_a_failing_exit_code_is_refused() -> None:
    host = RecordedHost({
        "task_start": [started("run-1")],
        "task_poll": [polled(ENDED_WITH_ERROR, True)],
        "task_collect": [collected(REBOOT_REQUIRED)],
    })

    with pytest.raises(BridgeError, match="exited with an error"):
        run_elevated(host, "reboot_required", name="run-1")


@pytest.mark.parametrize(
    ("last_task_result", "reported"),
    [
        pytest.param(1, "0x00000001: ", id="powershell-failed"),
        pytest.param(0x00041306, "0x00041306 SCHED_S_TASK_TERMINATED: ", id="terminated"),
    ],
)
@pytest.mark.usefixtures("clock")
def test_task_ended_without_response_names_its_last_result_and_is_collected(last_task_result: int, reported: str) -> None:
    host = RecordedHost({
        "task_start": [started("run-1")],
        "task_poll": [polled(RUNNING, False), polled({"state": 3, "last_task_result": last_task_result}, False)],
        "task_collect": [collected(None)],
    })

    with pytest.raises(BridgeError) as raised:
        run_elevated(host, "reboot_required", name="run-1")

    message = str(raised.value)
    assert message.startswith(reported)
    assert "ended without writing a response" in message
    assert "\\wuacache\\runs\\run-1" in message
    assert host.operations[-1] == "task_collect"


def test_a_task_that_never_starts_fails_after_a_minute(clock: FakeClock) -> None:
    host = RecordedHost({
        "task_start": [started("run-1", run_status(NOT_STARTED_YET, False))],
        "task_collect": [collected(None)],
    })
    start = clock.now

    with pytest.raises(BridgeError) as raised:
        run_elevated(host, "reboot_required", name="run-1")

    assert str(raised.value).startswith("0x00041303 SCHED_S_TASK_HAS_NOT_RUN: ")
    # task_start waited the minute on the host.
    assert (host.requests[0]["params"]["wait_seconds"], clock.now - start) == (60, 60)
    assert host.operations == ["task_start", "task_collect"]


def test_timeout_gives_up_and_still_collects(clock: FakeClock) -> None:
    host = RecordedHost({
        "task_start": [started("run-1")],
        "task_poll": [polled(RUNNING, False)] * 10,
        "task_collect": [collected(None)],
    })

    with pytest.raises(BridgeError, match="did not end within 100 seconds in the elevated run run-1"):
        run_elevated(host, "reboot_required", name="run-1", timeout=100, poll_interval=4)

    # task_start waits 60 seconds, the poll the 40 that remain.
    assert host.operations == ["task_start", "task_poll", "task_collect"]
    assert [request["params"]["wait_seconds"] for request in host.requests[:2]] == [60, 40]


@pytest.mark.parametrize(
    ("answers", "hresult_name"),
    [
        pytest.param({"task_start": [(1, ACCESS_DENIED_AT_REGISTRATION)]}, "E_ACCESSDENIED", id="start-refused"),
        pytest.param({"task_start": [started("run-1")], "task_poll": [(1, NO_SUCH_TASK)]}, "ERROR_FILE_NOT_FOUND", id="task-gone"),
    ],
)
def test_failure_before_the_end_is_reported_and_the_run_collected(
    answers: dict[str, list[tuple[int, str]]], hresult_name: str
) -> None:
    # A refused registration may leave the run's folder behind: collecting removes it.
    host = RecordedHost(dict(answers, task_collect=[collected(None)]))

    with pytest.raises(BridgeError) as raised:
        run_elevated(host, "reboot_required", name="run-1")

    assert raised.value.hresult is not None
    assert raised.value.hresult.name == hresult_name
    assert host.operations[-1] == "task_collect"


@pytest.mark.usefixtures("clock")
def test_collect_failure_after_a_failure_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(_bridge.display, "warning", warnings.append)
    host = RecordedHost({
        "task_start": [started("run-1")],
        "task_poll": [polled(RUNNING, False)] * 2,
        "task_collect": [(1, RPC_UNAVAILABLE_AT_COLLECT)],
    })

    with pytest.raises(BridgeError, match="did not end within 1 seconds"):
        run_elevated(host, "reboot_required", name="run-1", timeout=1, poll_interval=2)

    [warning] = warnings
    assert "run-1" in warning
    assert "0x800706BA RPC_S_SERVER_UNAVAILABLE" in warning


@pytest.mark.parametrize(("timeout", "time_limit"), [(7200, 7800), (0.5, 601), (-5, 600)])
@pytest.mark.usefixtures("clock")
def test_the_tasks_time_limit_is_the_time_budget_and_ten_minutes(timeout: float, time_limit: int) -> None:
    host = RecordedHost({"task_start": [started("run-1", run_status(ENDED, True, collected=REBOOT_REQUIRED))]})

    run_elevated(host, "reboot_required", name="run-1", timeout=timeout)

    assert host.requests[0]["params"]["time_limit"] == time_limit


@pytest.mark.usefixtures("clock")
def test_a_host_busy_with_another_run_fails_at_once_and_is_not_tried_again() -> None:
    host = RecordedHost({"task_start": [(1, BUSY)], "task_collect": [collected(None)]})

    with pytest.raises(BridgeError) as raised:
        run_elevated(host, "reboot_required", name="run-1")

    assert raised.value.host_busy
    assert str(raised.value).startswith("0x800700AA ERROR_BUSY: Another run holds this host: 'run-0', since ")
    # Its own start is collected; the run holding the host is not touched.
    assert host.operations == ["task_start", "task_collect"]
    assert host.requests[1]["params"] == {"name": "run-1"}


@pytest.mark.parametrize("keeps_warnings", [True, False], ids=["in-the-result", "shown"])
@pytest.mark.usefixtures("clock")
def test_a_clean_up_that_failed_after_the_run_is_a_warning(keeps_warnings: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr(_bridge.display, "warning", shown.append)
    host = RecordedHost({
        "task_start": [started("run-1")],
        "task_poll": [polled(ENDED, True)],
        "task_collect": [collected(REBOOT_REQUIRED, FOLDER_IN_USE)],
    })
    if keeps_warnings:
        host.task_warnings = []

    assert run_elevated(host, "reboot_required", name="run-1") == {"reboot_required": True}

    [warning] = host.task_warnings if keeps_warnings else shown
    assert warning == (
        "The elevated run run-1 left its scheduled task or folder on the host: 0x80070020 ERROR_SHARING_VIOLATION: "
        f"{FOLDER_IN_USE['message']} (bridge operation 'task_collect', call Remove-Item run folder)"
    )
    assert shown == ([] if keeps_warnings else [warning])


@pytest.mark.usefixtures("clock")
def test_collect_failure_after_success_fails_the_run() -> None:
    host = RecordedHost({
        "task_start": [started("run-1")],
        "task_poll": [polled(ENDED, True)],
        "task_collect": [(1, RPC_UNAVAILABLE_AT_COLLECT)],
    })

    with pytest.raises(BridgeError) as raised:
        run_elevated(host, "reboot_required", name="run-1")

    assert raised.value.operation == "task_collect"


@pytest.mark.parametrize("name", ["", "run 1", "run_1", "..\\run", "run-1\n", "r" * 65, "ex\u00e9cution"])
def test_unsafe_names_are_refused_before_anything_is_sent(name: str) -> None:
    host = RecordedHost({})

    with pytest.raises(ValueError, match="1 to 64 letters, digits or dashes"):
        run_elevated(host, "reboot_required", name=name)

    assert host.requests == []


def test_task_bootstrap_carries_the_marker_and_stays_far_below_the_command_line_limit() -> None:
    arguments = task_arguments()
    bootstrap = base64.b64decode(arguments.removeprefix(TASK_ARGUMENTS)).decode("utf-16-le")

    assert arguments.startswith(TASK_ARGUMENTS)
    assert "wuacache.wua bridge task" in bootstrap.splitlines()[0]
    assert len(f"PowerShell.exe {arguments}") < CMD_EXE_LIMIT // 4
