"""The Task Scheduler 2.0 COM API of an emulated host: how a WinRM logon gets
work done as local SYSTEM."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from wuacache_lab.windows import host as host_module
from wuacache_lab.windows.errors import COMError
from wuacache_lab.windows.faults import set_host_fault
from wuacache_lab.windows.host import WindowsHost
from wuacache_lab.windows.process import LogonSession, ProcessResult
from wuacache_lab.windows.taskscheduler import (
    NEVER,
    TASK_ACTION_EXEC,
    TASK_CREATE,
    TASK_CREATE_OR_UPDATE,
    TASK_DISABLE,
    TASK_LOGON_SERVICE_ACCOUNT,
    TASK_RUNLEVEL_HIGHEST,
    TASK_STATE_DISABLED,
    TASK_STATE_READY,
    TASK_STATE_RUNNING,
    RegisteredTask,
    TaskService,
)

NETWORK = LogonSession(user="Administrator", logon_type="network")
STANDARD_USER = LogonSession(user="alice", logon_type="network", administrator=False)
TASK = "wuacache-wua"
SCHED_S_TASK_HAS_NOT_RUN = 0x41303
SCHED_S_TASK_TERMINATED = 0x41306


@dataclass
class Launch:
    command_line: str
    stdin: bytes
    logon: LogonSession
    working_directory: str
    finished: threading.Event = field(default_factory=threading.Event)


@dataclass
class Interpreter:
    """Sees every process the host starts; holds each until ``release`` is set."""

    launches: list[Launch] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def interpreter(monkeypatch: pytest.MonkeyPatch) -> Iterator[Interpreter]:
    seen = Interpreter()
    seen.release.set()
    run_command_line = host_module.run_command_line

    def watched(host: WindowsHost, command_line: str, stdin: bytes, logon: LogonSession, cwd: str) -> ProcessResult:
        launch = Launch(command_line, stdin, logon, cwd)
        seen.launches.append(launch)
        seen.release.wait(timeout=10)
        try:
            return run_command_line(host, command_line, stdin, logon, cwd)
        finally:
            launch.finished.set()

    monkeypatch.setattr(host_module, "run_command_line", watched)
    yield seen
    seen.release.set()
    for launch in seen.launches:
        launch.finished.wait(timeout=10)


def new_host(tmp_path: Path) -> WindowsHost:
    return WindowsHost("win10-01", tmp_path, profile="win10-22h2", trusted_ca=tmp_path / "ca.pem")


def connect(host: WindowsHost, logon: LogonSession = NETWORK) -> TaskService:
    service = host.wua(logon).create_object("Schedule.Service")
    service.Connect()
    return service


def register(
    service: TaskService,
    path: str,
    arguments: str = "",
    working_directory: str = "",
    flags: int = TASK_CREATE_OR_UPDATE,
    folder: str = "\\",
) -> RegisteredTask:
    """A task as ansible.windows' win_updates makes one: SYSTEM, highest run level."""
    definition = service.NewTask(0)
    definition.Principal.UserId = "SYSTEM"
    definition.Principal.LogonType = TASK_LOGON_SERVICE_ACCOUNT
    definition.Principal.RunLevel = TASK_RUNLEVEL_HIGHEST
    definition.Settings.ExecutionTimeLimit = "PT2H"
    definition.Settings.DisallowStartIfOnBatteries = False
    action = definition.Actions.Create(TASK_ACTION_EXEC)
    action.Path, action.Arguments, action.WorkingDirectory = path, arguments, working_directory
    return service.GetFolder(folder).RegisterTaskDefinition(TASK, definition, flags, None, None, None)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.02)


def test_a_network_administrator_registers_lists_and_deletes_a_system_task(tmp_path: Path) -> None:
    service = connect(new_host(tmp_path))
    folder = service.GetFolder("\\")

    register(service, "powershell.exe", "-NoProfile -File run.ps1", r"C:\ProgramData\wuacache")

    task = folder.GetTask("\\" + TASK.upper())
    assert (task.Name, task.Path, task.Enabled, task.State) == (TASK, "\\" + TASK, True, TASK_STATE_READY)
    assert (task.LastTaskResult, task.LastRunTime) == (SCHED_S_TASK_HAS_NOT_RUN, NEVER)
    definition = task.Definition
    assert (definition.Principal.UserId, definition.Principal.LogonType, definition.Principal.RunLevel) == (
        "SYSTEM",
        TASK_LOGON_SERVICE_ACCOUNT,
        TASK_RUNLEVEL_HIGHEST,
    )
    assert (definition.Settings.ExecutionTimeLimit, definition.Settings.DisallowStartIfOnBatteries) == ("PT2H", False)
    action = definition.Actions.Item(1)
    assert (action.Path, action.Arguments, action.WorkingDirectory) == (
        "powershell.exe",
        "-NoProfile -File run.ps1",
        r"C:\ProgramData\wuacache",
    )
    tasks = folder.GetTasks(0)
    assert (tasks.Count, tasks.Item(1).Path) == (1, "\\" + TASK)

    folder.DeleteTask(TASK, 0)

    assert folder.GetTasks(0).Count == 0
    with pytest.raises(COMError) as error:
        folder.GetTask(TASK)
    assert error.value.hresult == 0x80070002


def test_unknown_tasks_are_not_found(tmp_path: Path) -> None:
    folder = connect(new_host(tmp_path)).GetFolder("\\")

    for call in (lambda: folder.GetTask("missing"), lambda: folder.DeleteTask("missing", 0)):
        with pytest.raises(COMError) as error:
            call()
        assert error.value.hresult == 0x80070002


def test_create_only_refuses_an_existing_task(tmp_path: Path) -> None:
    service = connect(new_host(tmp_path))
    register(service, "hostname")

    with pytest.raises(COMError) as error:
        register(service, "hostname", flags=TASK_CREATE)

    assert error.value.hresult == 0x800700B7


def test_a_folder_that_does_not_exist_is_not_found(tmp_path: Path) -> None:
    service = connect(new_host(tmp_path))

    for call in (lambda: service.GetFolder("\\wuacache"), lambda: service.GetFolder("\\").GetFolder("wuacache")):
        with pytest.raises(COMError) as error:
            call()
        assert error.value.hresult == 0x80070002


def test_create_folder_creates_the_whole_path_once(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    root = connect(host).GetFolder("\\")

    runs = root.CreateFolder("wuacache\\runs")

    assert (runs.Name, runs.Path) == ("runs", "\\wuacache\\runs")
    parent = connect(host).GetFolder("\\WUACACHE")
    assert (parent.Name, parent.Path) == ("wuacache", "\\wuacache")
    assert parent.GetFolder("runs").Path == "\\wuacache\\runs"
    assert parent.CreateFolder("schedules").Path == "\\wuacache\\schedules"
    for again in (lambda: root.CreateFolder("\\wuacache\\runs"), lambda: parent.CreateFolder("runs")):
        with pytest.raises(COMError) as error:
            again()
        assert error.value.hresult == 0x800700B7
    # Folders are kept with the tasks, across restarts of the emulator.
    assert connect(new_host(tmp_path)).GetFolder("\\wuacache\\runs").Path == "\\wuacache\\runs"


def test_a_folder_holds_its_own_tasks(tmp_path: Path) -> None:
    service = connect(new_host(tmp_path))
    service.GetFolder("\\").CreateFolder("\\wuacache\\runs")
    register(service, "hostname")

    task = register(service, "hostname", folder="\\wuacache\\runs")

    runs = service.GetFolder("\\wuacache\\runs")
    assert (task.Name, task.Path) == (TASK, "\\wuacache\\runs\\" + TASK)
    assert [listed.Path for listed in runs.GetTasks(0)] == ["\\wuacache\\runs\\" + TASK]
    assert [listed.Path for listed in service.GetFolder("\\").GetTasks(0)] == ["\\" + TASK]
    assert service.GetFolder("\\wuacache").GetTasks(0).Count == 0
    runs.DeleteTask(TASK, 0)
    assert runs.GetTasks(0).Count == 0
    assert service.GetFolder("\\").GetTask(TASK).Path == "\\" + TASK


def test_the_service_must_be_connected_first(tmp_path: Path) -> None:
    service = new_host(tmp_path).wua(NETWORK).create_object("Schedule.Service")

    with pytest.raises(COMError) as error:
        service.GetFolder("\\")

    assert error.value.hresult == 0x800704E3


def test_non_administrators_may_not_register_run_or_delete_tasks_or_create_folders(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    register(connect(host), "hostname")
    standard_user = connect(host, STANDARD_USER)
    folder = standard_user.GetFolder("\\")

    for call in (
        lambda: register(standard_user, "hostname"),
        lambda: folder.GetTask(TASK).Run(None),
        lambda: folder.DeleteTask(TASK, 0),
        lambda: folder.CreateFolder("wuacache"),
    ):
        with pytest.raises(COMError) as error:
            call()
        assert error.value.hresult == 0x80070005
    assert connect(host).GetFolder("\\").GetTask(TASK).LastTaskResult == SCHED_S_TASK_HAS_NOT_RUN


def test_a_running_task_is_running_until_its_process_exits(tmp_path: Path, interpreter: Interpreter) -> None:
    task = register(connect(new_host(tmp_path)), "hostname.exe", "", r"C:\ProgramData\wuacache")
    interpreter.release.clear()

    running = task.Run(None)

    assert running.State == TASK_STATE_RUNNING
    assert running.InstanceGuid.startswith("{") and running.EnginePID > 0
    assert task.State == TASK_STATE_RUNNING
    assert task.LastRunTime > NEVER
    interpreter.release.set()
    wait_for(lambda: task.State == TASK_STATE_READY)
    assert task.LastTaskResult == 0


def test_a_task_process_runs_as_system_in_its_working_directory_without_a_console(
    tmp_path: Path, interpreter: Interpreter
) -> None:
    host = new_host(tmp_path)
    task = register(connect(host), "hostname.exe", "", r"C:\ProgramData\wuacache")

    task.Run(None)

    wait_for(lambda: task.State == TASK_STATE_READY)
    (launch,) = interpreter.launches
    assert (launch.command_line, launch.stdin, launch.working_directory) == (
        "hostname.exe",
        b"",
        r"C:\ProgramData\wuacache",
    )
    assert launch.logon == LogonSession(user="SYSTEM", logon_type="service")


def test_an_action_without_a_working_directory_starts_in_system32(tmp_path: Path, interpreter: Interpreter) -> None:
    task = register(connect(new_host(tmp_path)), "hostname")

    task.Run(None)

    wait_for(lambda: task.State == TASK_STATE_READY)
    assert interpreter.launches[0].working_directory == r"C:\Windows\System32"


def test_a_system_task_can_make_the_wua_calls_its_network_creator_cannot(
    tmp_path: Path, interpreter: Interpreter
) -> None:
    host = new_host(tmp_path)
    task = register(connect(host), "hostname")
    task.Run(None)
    wait_for(lambda: task.State == TASK_STATE_READY)
    task_logon = interpreter.launches[0].logon

    with pytest.raises(COMError) as error:
        host.wua(NETWORK).create_object("Microsoft.Update.Session").CreateUpdateInstaller()
    installer = host.wua(task_logon).create_object("Microsoft.Update.Session").CreateUpdateInstaller()

    assert error.value.hresult == 0x80070005
    assert installer.IsBusy is False


def test_a_command_the_host_refuses_ends_the_task_with_its_exit_code(tmp_path: Path, interpreter: Interpreter) -> None:
    task = register(connect(new_host(tmp_path)), "cmd.exe", r"/c dir C:\Windows")

    task.Run(None)

    wait_for(lambda: task.State == TASK_STATE_READY)
    assert task.LastTaskResult == 1


def test_a_disabled_task_does_not_run(tmp_path: Path, interpreter: Interpreter) -> None:
    task = register(connect(new_host(tmp_path)), "hostname", flags=TASK_CREATE_OR_UPDATE | TASK_DISABLE)

    with pytest.raises(COMError) as error:
        task.Run(None)

    assert error.value.hresult == 0x80041326
    assert (task.State, task.Enabled) == (TASK_STATE_DISABLED, False)
    assert interpreter.launches == []


def test_registered_tasks_survive_a_restart_of_the_emulator(tmp_path: Path, interpreter: Interpreter) -> None:
    task = register(connect(new_host(tmp_path)), "hostname")
    task.Run(None)
    wait_for(lambda: task.State == TASK_STATE_READY)

    again = connect(new_host(tmp_path)).GetFolder("\\").GetTask(TASK)

    assert (again.LastTaskResult, again.LastRunTime) == (0, task.LastRunTime)
    assert again.LastRunTime > NEVER
    assert again.Definition.Actions.Item(1).Path == "hostname"


def test_a_restart_terminates_a_running_instance_and_keeps_the_task(tmp_path: Path, interpreter: Interpreter) -> None:
    host = new_host(tmp_path)
    set_host_fault(tmp_path, host.name, "reboot_seconds", seconds=0.2)
    task = register(connect(host), "hostname")
    interpreter.release.clear()
    task.Run(None)

    host.reboot(0)

    assert (task.State, task.LastTaskResult) == (TASK_STATE_READY, SCHED_S_TASK_TERMINATED)
    interpreter.release.set()
    interpreter.launches[0].finished.wait(timeout=10)
    wait_for(host.is_reachable)
    after_restart = connect(host).GetFolder("\\").GetTask(TASK)
    assert (after_restart.State, after_restart.LastTaskResult) == (TASK_STATE_READY, SCHED_S_TASK_TERMINATED)


def test_winrm_commands_start_in_the_user_profile(
    tmp_path: Path, interpreter: Interpreter
) -> None:
    host = new_host(tmp_path)
    host.execute("hostname", b"", NETWORK)
    assert (interpreter.launches[0].logon, interpreter.launches[0].working_directory) == (
        NETWORK,
        "C:\\Users\\Administrator",
    )
