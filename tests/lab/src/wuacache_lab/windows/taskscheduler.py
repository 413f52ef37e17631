"""The Task Scheduler of an emulated host, shaped like its 2.0 COM API.

``Schedule.Service`` is how a process reaches it (``ITaskService``,
``ITaskFolder``, ``ITaskDefinition``, ``IRegisteredTask``, ``IRunningTask``),
with the SDK's names so callers read like the PowerShell they stand for. Only
what a transient, on-demand task running as local SYSTEM needs is modelled:
task folders, exec actions, the SYSTEM principal. Creating folders, and
registering, running and deleting tasks, needs an administrator. A task's
process runs in the background through the host's command interpreter with no
console (empty standard input, output discarded); its exit code becomes
``LastTaskResult``, unless ``Stop`` or a restart of the host kills it first.

Tasks only run on demand (``IRegisteredTask::Run``), and Microsoft documents
that a task started on demand is not stopped when it runs past its
``ExecutionTimeLimit`` (the note of ITaskSettings::ExecutionTimeLimit,
MicrosoftDocs/sdk-api sdk-api-src/content/taskschd/nf-taskschd-itasksettings-get_executiontimelimit.md):
the lab keeps the setting and stops nothing at it.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from wuacache_lab.windows.com import ComCollection
from wuacache_lab.windows.errors import (
    E_ACCESSDENIED,
    E_INVALIDARG,
    ERROR_ALREADY_EXISTS,
    ERROR_FILE_NOT_FOUND,
    ERROR_ONLY_IF_CONNECTED,
    SCHED_E_MISSINGNODE,
    SCHED_E_TASK_DISABLED,
    SCHED_S_TASK_HAS_NOT_RUN,
    SCHED_S_TASK_TERMINATED,
    COMError,
)
from wuacache_lab.windows.process import DEFAULT_WORKING_DIRECTORY, LogonSession
from wuacache_lab.windows.state import ScheduledTask, T, TaskExecAction, from_iso, to_iso, utc_now

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost

# TASK_LOGON_TYPE
TASK_LOGON_NONE = 0
TASK_LOGON_SERVICE_ACCOUNT = 5
# TASK_RUNLEVEL_TYPE
TASK_RUNLEVEL_LUA = 0
TASK_RUNLEVEL_HIGHEST = 1
# TASK_ACTION_TYPE
TASK_ACTION_EXEC = 0
# TASK_CREATION
TASK_CREATE = 0x2
TASK_UPDATE = 0x4
TASK_CREATE_OR_UPDATE = TASK_CREATE | TASK_UPDATE
TASK_DISABLE = 0x8
# TASK_ENUM_FLAGS
TASK_ENUM_HIDDEN = 0x1
# TASK_STATE
TASK_STATE_DISABLED = 1
TASK_STATE_READY = 3
TASK_STATE_RUNNING = 4
# TASK_INSTANCES_POLICY
TASK_INSTANCES_IGNORE_NEW = 2

ROOT_FOLDER = "\\"
# The names Windows accepts for the local SYSTEM account.
SYSTEM_ACCOUNT_NAMES = frozenset(name.casefold() for name in ("SYSTEM", "S-1-5-18", "NT AUTHORITY\\SYSTEM"))
# IRegisteredTask.LastRunTime of a task that never ran: the zero OLE date.
NEVER = datetime(1899, 12, 30, tzinfo=UTC)

# Who the processes of SYSTEM tasks run as.
_SYSTEM_LOGON = LogonSession(user="SYSTEM", logon_type="service")


@dataclass
class TaskSettings:
    """``ITaskSettings``, with Windows' defaults; every value set is kept."""

    __com_interface__ = "ITaskSettings"

    Enabled: bool = True
    Hidden: bool = False
    AllowDemandStart: bool = True
    ExecutionTimeLimit: str = "PT72H"
    DisallowStartIfOnBatteries: bool = True
    StopIfGoingOnBatteries: bool = True
    StartWhenAvailable: bool = False
    MultipleInstances: int = TASK_INSTANCES_IGNORE_NEW
    Priority: int = 7


@dataclass
class Principal:
    """``IPrincipal``."""

    __com_interface__ = "IPrincipal"

    UserId: str = ""
    LogonType: int = TASK_LOGON_NONE
    RunLevel: int = TASK_RUNLEVEL_LUA


@dataclass
class ExecAction:
    """``IExecAction``."""

    __com_interface__ = "IExecAction"

    Path: str = ""
    Arguments: str = ""
    WorkingDirectory: str = ""

    @property
    def Type(self) -> int:
        return TASK_ACTION_EXEC


class _TaskSchedulerCollection(ComCollection[T]):
    """Task Scheduler collections are 1-based (ActionCollection.Item, win32
    desktop-src/TaskSchd/actioncollection-item.md). The reference gives no error for
    an index outside one: the lab fails it with E_INVALIDARG."""

    _index_base = 1
    _invalid_index = E_INVALIDARG


class ActionCollection(_TaskSchedulerCollection[ExecAction]):
    """``IActionCollection``."""

    __com_interface__ = "IActionCollection"

    def Create(self, type: int) -> ExecAction:
        if type != TASK_ACTION_EXEC:
            raise NotImplementedError(f"the emulated Task Scheduler only runs exec actions, not type {type}")
        action = ExecAction()
        self._items.append(action)
        return action


@dataclass
class TaskDefinition:
    """``ITaskDefinition``."""

    __com_interface__ = "ITaskDefinition"

    Principal: Principal = field(default_factory=Principal)
    Settings: TaskSettings = field(default_factory=TaskSettings)
    Actions: ActionCollection = field(default_factory=ActionCollection)


class TaskScheduler:
    """The Task Scheduler service of one host: registered tasks live in the
    host's state, running instances only in memory."""

    def __init__(self, host: WindowsHost) -> None:
        self.host = host
        self._lock = threading.Lock()
        self._running: dict[str, _Instance] = {}  # by case-folded task path
        self._process_ids = itertools.count(4100, 4)
        # The instance whose process the current thread runs, if any.
        self._current = threading.local()

    def service(self, logon: LogonSession) -> TaskService:
        return TaskService(self, logon)

    def folder(self, path: str) -> str | None:
        """The folder at ``path`` as it was created (the root always exists), or None."""
        if path == ROOT_FOLDER:
            return ROOT_FOLDER
        folders = self.host.store.peek(lambda state: tuple(state.task_folders))
        return next((folder for folder in folders if folder.casefold() == path.casefold()), None)

    def task(self, path: str) -> ScheduledTask:
        """A copy of the registered task at ``path``."""
        self._end_instances_of_a_past_boot()
        task = self.host.store.read().scheduled_tasks.get(_key(path))
        if task is None:
            raise COMError(ERROR_FILE_NOT_FOUND)
        return task

    def is_running(self, path: str) -> bool:
        self._end_instances_of_a_past_boot()
        with self._lock:
            return _key(path) in self._running

    def start(self, task: ScheduledTask) -> _Instance:
        self._end_instances_of_a_past_boot()
        if not task.enabled:
            raise COMError(SCHED_E_TASK_DISABLED)
        action = task.actions[0]
        with self._lock:
            if _key(task.path) in self._running:
                raise NotImplementedError("the emulated Task Scheduler runs one instance of a task at a time")
            instance = _Instance(
                task_path=task.path,
                guid=f"{{{str(uuid.uuid4()).upper()}}}",
                engine_pid=next(self._process_ids),
                boot=self.host.store.peek(lambda state: state.last_boot_up_time),
            )
            self._running[_key(task.path)] = instance
        with self.host.store.update() as state:
            state.scheduled_tasks[_key(task.path)].last_run_time = to_iso(utc_now())
        command_line = " ".join(part for part in (action.path, action.arguments) if part)
        working_directory = action.working_directory or DEFAULT_WORKING_DIRECTORY
        threading.Thread(
            target=self._run,
            args=(instance, command_line, working_directory),
            name=f"{self.host.name} task {task.path}",
            daemon=True,
        ).start()
        self.host.log.info("task %s started: %s", task.path, command_line)
        return instance

    def _run(self, instance: _Instance, command_line: str, working_directory: str) -> None:
        # Tasks have no console: nothing on standard input, output goes nowhere.
        self._current.instance = instance
        result = self.host.run_process(command_line, b"", _SYSTEM_LOGON, working_directory)
        self._end_instances_of_a_past_boot()
        with self._lock:
            if self._running.get(_key(instance.task_path)) is not instance:
                return  # ended by a restart, or its task was deleted
            del self._running[_key(instance.task_path)]
            self._record_result(instance.task_path, result.exit_code)
        self.host.log.info("task %s ended with exit code %d", instance.task_path, result.exit_code)

    def _end_instances_of_a_past_boot(self) -> None:
        """A restart kills every process, so the instances that ran before it
        end as terminated, whatever their process does afterwards."""
        running_boot = self.host.running_boot()
        with self._lock:
            for key, instance in list(self._running.items()):
                if instance.boot != running_boot:
                    del self._running[key]
                    instance.killed.set()
                    self._record_result(instance.task_path, SCHED_S_TASK_TERMINATED)
                    self.host.log.info("task %s terminated by the restart", instance.task_path)

    def _record_result(self, path: str, result: int) -> None:
        with self.host.store.update() as state:
            task = state.scheduled_tasks.get(_key(path))
            if task is not None:
                task.last_task_result = result

    def stop(self, path: str) -> None:
        """The running instance, if any, ends as terminated; its process is
        left to finish unrecorded."""
        self._end_instances_of_a_past_boot()
        with self._lock:
            instance = self._running.pop(_key(path), None)
            if instance is not None:
                instance.killed.set()
                self._record_result(instance.task_path, SCHED_S_TASK_TERMINATED)
        if instance is not None:
            self.host.log.info("task %s stopped", path)

    def process_killed(self) -> bool:
        """Whether the calling thread runs the process of a task instance that
        has been killed since: a dead process can do nothing more."""
        self._end_instances_of_a_past_boot()
        instance = getattr(self._current, "instance", None)
        return instance is not None and instance.killed.is_set()

    def forget(self, path: str) -> None:
        """A deleted task's running instance is left to finish unrecorded."""
        with self._lock:
            self._running.pop(_key(path), None)


@dataclass(frozen=True)
class _Instance:
    task_path: str
    guid: str
    engine_pid: int
    boot: str  # LastBootUpTime of the boot it started in
    # Set when a restart or IRegisteredTask.Stop ends the instance, which
    # kills its process; deleting the task does not.
    killed: threading.Event = field(default_factory=threading.Event)


class TaskService:
    """``Schedule.Service`` (``ITaskService``) as created by a process running as ``logon``."""

    __com_interface__ = "ITaskService"

    def __init__(self, scheduler: TaskScheduler, logon: LogonSession) -> None:
        self._scheduler = scheduler
        self._logon = logon
        self._connected = False

    @property
    def Connected(self) -> bool:
        return self._connected

    @property
    def TargetServer(self) -> str:
        return self._scheduler.host.computer_name if self._connected else ""

    @property
    def ConnectedUser(self) -> str:
        return self._logon.user if self._connected else ""

    def Connect(
        self,
        serverName: str | None = None,
        user: str | None = None,
        domain: str | None = None,
        password: str | None = None,
    ) -> None:
        """Only the local machine, as the caller."""
        computer_name = self._scheduler.host.computer_name
        if (serverName and serverName.casefold() != computer_name.casefold()) or user or domain or password:
            raise NotImplementedError("the emulated Task Scheduler only accepts local connections as the caller")
        self._connected = True

    def GetFolder(self, path: str) -> TaskFolder:
        if not self.Connected:
            raise COMError(ERROR_ONLY_IF_CONNECTED)
        return TaskFolder(self._scheduler, self._logon, ROOT_FOLDER).GetFolder(path)

    def NewTask(self, flags: int) -> TaskDefinition:
        if not self.Connected:
            raise COMError(ERROR_ONLY_IF_CONNECTED)
        return TaskDefinition()


class TaskFolder:
    """``ITaskFolder``: the root folder (``\\``) or a folder under it (``\\wuacache\\runs``)."""

    __com_interface__ = "ITaskFolder"

    def __init__(self, scheduler: TaskScheduler, logon: LogonSession, path: str) -> None:
        self._scheduler = scheduler
        self._logon = logon
        self._path = path

    @property
    def Name(self) -> str:
        return ROOT_FOLDER if self._path == ROOT_FOLDER else self._path.rsplit("\\", 1)[-1]

    @property
    def Path(self) -> str:
        return self._path

    def GetFolder(self, path: str) -> TaskFolder:
        """Microsoft does not document the error for a folder that does not exist: Windows answers
        ERROR_FILE_NOT_FOUND, as users of the API report (dahall/TaskScheduler issue 427)."""
        folder_path = _folder_path(self._path, path)
        existing = self._scheduler.folder(folder_path)
        if existing is None:
            raise COMError(ERROR_FILE_NOT_FOUND)
        return TaskFolder(self._scheduler, self._logon, existing)

    def CreateFolder(self, subFolderName: str, sddl: Any = None) -> TaskFolder:
        """The folder and those of its path that do not exist (ITaskFolder::CreateFolder,
        MicrosoftDocs/sdk-api sdk-api-src/content/taskschd/nf-taskschd-itaskfolder-createfolder.md):
        0x800700B7 when it exists already."""
        _require_administrator(self._logon)
        if sddl is not None:
            raise NotImplementedError("the emulated Task Scheduler gives folders the default security descriptor")
        folder_path = _folder_path(self._path, subFolderName)
        if folder_path == ROOT_FOLDER:
            raise NotImplementedError("the emulated Task Scheduler does not create the root folder")
        host = self._scheduler.host
        with host.store.update() as state:
            known = {folder.casefold() for folder in state.task_folders}
            if folder_path.casefold() in known:
                raise COMError(ERROR_ALREADY_EXISTS)
            names = folder_path.split("\\")[1:]
            for depth in range(1, len(names) + 1):
                ancestor = "\\" + "\\".join(names[:depth])
                if ancestor.casefold() not in known:
                    state.task_folders.append(ancestor)
                    known.add(ancestor.casefold())
        host.log.info("task folder %s created by %s", folder_path, self._logon.user)
        return self.GetFolder(folder_path)

    def RegisterTaskDefinition(
        self,
        path: str,
        pDefinition: TaskDefinition,
        flags: int,
        userId: str | None,
        password: str | None,
        logonType: int | None,
        sddl: str | None = None,
    ) -> RegisteredTask:
        """``userId`` and ``logonType``, when given, take priority over the
        definition's principal; a SYSTEM principal needs no password."""
        _require_administrator(self._logon)
        if flags & ~(TASK_CREATE_OR_UPDATE | TASK_DISABLE) or not flags & TASK_CREATE_OR_UPDATE:
            raise NotImplementedError(f"the emulated Task Scheduler does not model registration flags 0x{flags:X}")
        if sddl:
            raise NotImplementedError("the emulated Task Scheduler keeps the default security descriptor")
        user_id = userId or pDefinition.Principal.UserId
        logon_type = pDefinition.Principal.LogonType if logonType is None else logonType
        if user_id.casefold() not in SYSTEM_ACCOUNT_NAMES or logon_type != TASK_LOGON_SERVICE_ACCOUNT:
            raise NotImplementedError("the emulated Task Scheduler only runs tasks as SYSTEM (a service account logon)")
        if not pDefinition.Actions:
            raise COMError(SCHED_E_MISSINGNODE)
        task_path = _task_path(self._path, path)
        host = self._scheduler.host
        with host.store.update() as state:
            existing = state.scheduled_tasks.get(_key(task_path))
            if existing is not None and not flags & TASK_UPDATE:
                raise COMError(ERROR_ALREADY_EXISTS)
            if existing is None and not flags & TASK_CREATE:
                raise COMError(ERROR_FILE_NOT_FOUND)
            state.scheduled_tasks[_key(task_path)] = ScheduledTask(
                path=existing.path if existing else task_path,
                user_id=user_id,
                logon_type=logon_type,
                run_level=pDefinition.Principal.RunLevel,
                actions=[
                    TaskExecAction(action.Path, action.Arguments, action.WorkingDirectory)
                    for action in pDefinition.Actions
                ],
                settings=asdict(pDefinition.Settings),
                enabled=pDefinition.Settings.Enabled and not flags & TASK_DISABLE,
                last_task_result=existing.last_task_result if existing else SCHED_S_TASK_HAS_NOT_RUN,
                last_run_time=existing.last_run_time if existing else None,
            )
        host.log.info("task %s registered by %s", task_path, self._logon.user)
        return RegisteredTask(self._scheduler, self._logon, self._scheduler.task(task_path).path)

    def GetTask(self, path: str) -> RegisteredTask:
        return RegisteredTask(self._scheduler, self._logon, self._scheduler.task(_task_path(self._path, path)).path)

    def GetTasks(self, flags: int) -> RegisteredTaskCollection:
        """The tasks of this folder, not those of its subfolders."""
        tasks = self._scheduler.host.store.read().scheduled_tasks.values()
        return RegisteredTaskCollection(
            RegisteredTask(self._scheduler, self._logon, task.path)
            for task in sorted(tasks, key=lambda task: task.path.casefold())
            if _parent(task.path).casefold() == self._path.casefold() and (flags & TASK_ENUM_HIDDEN or not task.settings["Hidden"])
        )

    def DeleteTask(self, name: str, flags: int) -> None:
        _require_administrator(self._logon)
        task_path = _task_path(self._path, name)
        with self._scheduler.host.store.update() as state:
            if state.scheduled_tasks.pop(_key(task_path), None) is None:
                raise COMError(ERROR_FILE_NOT_FOUND)
        self._scheduler.forget(task_path)
        self._scheduler.host.log.info("task %s deleted", task_path)


class RegisteredTaskCollection(_TaskSchedulerCollection["RegisteredTask"]):
    """``IRegisteredTaskCollection``."""

    __com_interface__ = "IRegisteredTaskCollection"


class RegisteredTask:
    """``IRegisteredTask``: every property is read from the service when asked."""

    __com_interface__ = "IRegisteredTask"

    def __init__(self, scheduler: TaskScheduler, logon: LogonSession, path: str) -> None:
        self._scheduler = scheduler
        self._logon = logon
        self._path = path

    @property
    def Path(self) -> str:
        return self._path

    @property
    def Name(self) -> str:
        return self._path.rsplit("\\", 1)[-1]

    def _task(self) -> ScheduledTask:
        return self._scheduler.task(self._path)

    @property
    def State(self) -> int:
        if self._scheduler.is_running(self.Path):
            return TASK_STATE_RUNNING
        return TASK_STATE_READY if self._task().enabled else TASK_STATE_DISABLED

    @property
    def Enabled(self) -> bool:
        return self._task().enabled

    @Enabled.setter
    def Enabled(self, enabled: bool) -> None:
        _require_administrator(self._logon)
        with self._scheduler.host.store.update() as state:
            task = state.scheduled_tasks.get(_key(self.Path))
            if task is None:
                raise COMError(ERROR_FILE_NOT_FOUND)
            task.enabled = bool(enabled)

    @property
    def LastRunTime(self) -> datetime:
        last_run_time = self._task().last_run_time
        return NEVER if last_run_time is None else from_iso(last_run_time)

    @property
    def LastTaskResult(self) -> int:
        return self._task().last_task_result

    @property
    def Definition(self) -> TaskDefinition:
        task = self._task()
        return TaskDefinition(
            Principal=Principal(task.user_id, task.logon_type, task.run_level),
            Settings=TaskSettings(**task.settings),
            Actions=ActionCollection(
                ExecAction(action.path, action.arguments, action.working_directory) for action in task.actions
            ),
        )

    def Run(self, params: Any) -> RunningTask:
        _require_administrator(self._logon)
        if params:
            raise NotImplementedError("the emulated Task Scheduler does not substitute $(Arg) parameters")
        instance = self._scheduler.start(self._task())
        return RunningTask(
            Name=self.Name,
            Path=self.Path,
            InstanceGuid=instance.guid,
            EnginePID=instance.engine_pid,
            State=TASK_STATE_RUNNING,
        )

    def Stop(self, flags: int) -> None:
        _require_administrator(self._logon)
        self._scheduler.stop(self.Path)


@dataclass(frozen=True)
class RunningTask:
    """``IRunningTask``, as of when the instance started (COM caches it until Refresh)."""

    __com_interface__ = "IRunningTask"

    Name: str
    Path: str
    InstanceGuid: str
    EnginePID: int
    State: int


def _require_administrator(logon: LogonSession) -> None:
    if not logon.administrator:
        raise COMError(E_ACCESSDENIED)


def _folder_path(base: str, path: str) -> str:
    """A folder's path from the root: ``path`` starts at the root with a backslash, or at ``base``.
    Microsoft's pages forbid a final backslash, ``.`` and ``..``, without saying what Windows answers."""
    names = path.split("\\")
    absolute = path.startswith("\\")
    if absolute:
        names = names[1:]
        if names == [""]:
            return ROOT_FOLDER
    if any(name in ("", ".", "..") for name in names):
        raise NotImplementedError(f"the emulated Task Scheduler does not resolve the folder path {path!r}")
    start = ROOT_FOLDER if absolute else base
    return start.rstrip("\\") + "\\" + "\\".join(names)


def _task_path(folder: str, name: str) -> str:
    """A task of a folder is named by its name; one of the root folder also by ``\\name``."""
    if folder == ROOT_FOLDER:
        name = name.removeprefix(ROOT_FOLDER)
    if not name or "\\" in name:
        raise NotImplementedError(f"the emulated Task Scheduler names the tasks of {folder} by their name alone, not {name!r}")
    return folder.rstrip("\\") + "\\" + name


def _parent(task_path: str) -> str:
    return task_path.rsplit("\\", 1)[0] or ROOT_FOLDER


def _key(path: str) -> str:
    """Task names are case-insensitive."""
    return path.casefold()
