"""The bridge's operations, transliterated call by call from its PowerShell.

The emulated host cannot run ``_wua_bridge.ps1``, so each operation here
makes, in the same order, the API calls the script makes, against the
simulated Windows surface and Update Agent. Windows' own rules (remote-logon
restrictions, a disabled service...) are enforced by those simulated APIs;
an :class:`HResultError` they raise becomes the protocol's error response,
naming the call that failed.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from wuacache_lab.windows.errors import COR_E_SYSTEM, E_INVALIDARG, ERROR_FILE_NOT_FOUND, HResultError, signed
from wuacache_lab.windows.process import DEFAULT_WORKING_DIRECTORY, LogonSession
from wuacache_lab.windows.system import WindowsSystem
from wuacache_lab.windows.taskscheduler import (
    ROOT_FOLDER,
    TASK_ACTION_EXEC,
    TASK_CREATE_OR_UPDATE,
    TASK_LOGON_SERVICE_ACCOUNT,
    TASK_RUNLEVEL_HIGHEST,
    TASK_STATE_RUNNING,
    TaskFolder,
)
from wuacache_lab.windows.wua import WuaClient

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost

BRIDGE_MARKER = "wuacache.wua bridge"
# The task bootstrap's marker; the bridge marker is a prefix of it.
TASK_MARKER = "wuacache.wua bridge task"
PROTOCOL = 1
# The "call" of a failure before any API call is made.
REQUEST_CALL = "bridge request"

# Elevated runs: a folder per run under $env:ProgramData, a task per run.
RUN_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")
RUNS_FOLDER = "wuacache\\runs"
TASK_PREFIX = "wuacache-"
ENVELOPE_FILE = "envelope.json"
RESPONSE_FILE = "response.json"


class BridgeFailure(Exception):
    """An API call of an operation failed; reported with the call's name."""

    def __init__(self, call: str, error: HResultError) -> None:
        super().__init__(f"{call}: {error}")
        self.call = call
        self.error = error


@contextmanager
def api_call(call: str) -> Iterator[None]:
    try:
        yield
    except HResultError as error:
        raise BridgeFailure(call, error) from error


@dataclass(frozen=True)
class BridgeProcess:
    """What one run of the bridge script can reach."""

    host: WindowsHost
    logon: LogonSession
    system: WindowsSystem
    wua: WuaClient
    # Relative paths of the script resolve against it.
    working_directory: str = DEFAULT_WORKING_DIRECTORY


# An operation takes the bridge process and the request's params as keywords.
Operation = Callable[..., dict[str, Any]]


def round_trip_utc(moment: datetime) -> str:
    """``.ToUniversalTime().ToString('o')``: seven fractional digits and Z."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def info(process: BridgeProcess) -> dict[str, Any]:
    """Get-HostInfo: who the host is and what state it is in; nothing a
    network logon may not read."""
    system = process.system
    with api_call("Microsoft.Update.AgentInfo.GetInfo"):
        wua_version = process.wua.create_object("Microsoft.Update.AgentInfo").GetInfo("ProductVersionString")
    with api_call("Get-CimInstance Win32_OperatingSystem"):
        os_instance = system.cim_instances("Win32_OperatingSystem")[0]
    with api_call(r"Registry HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"):
        ubr = system.registry_values(r"HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion").get("UBR")
    with api_call("Get-CimInstance Win32_Service"):
        service = system.cim_instances("Win32_Service", "Name='wuauserv'")[0]
    reboot_indicators = []
    with api_call("Registry reboot markers"):
        if system.registry_key_exists(
            r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending"
        ):
            reboot_indicators.append("cbs_reboot_pending")
        if system.registry_key_exists(
            r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired"
        ):
            reboot_indicators.append("wu_reboot_required")
        session_manager = system.registry_values(r"HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager")
        if session_manager.get("PendingFileRenameOperations") is not None:
            reboot_indicators.append("pending_file_rename")
    with api_call("Get-CimInstance Win32_LogicalDisk"):
        drive = system.cim_instances("Win32_LogicalDisk", f"DeviceID='{system.getenv('SystemDrive')}'")[0]
    return {
        "computer_name": system.getenv("COMPUTERNAME"),
        "wua_version": wua_version,
        "os": {
            "caption": os_instance["Caption"],
            "version": os_instance["Version"],
            "build_number": os_instance["BuildNumber"],
            "ubr": ubr,
            "architecture": os_instance["OSArchitecture"],
            "product_type": os_instance["ProductType"],
            "last_boot_up_time": round_trip_utc(os_instance["LastBootUpTime"]),
        },
        "wuauserv": {"start_mode": service["StartMode"], "state": service["State"]},
        "reboot_indicators": reboot_indicators,
        "system_drive": {
            "device_id": drive["DeviceID"],
            "free_bytes": drive["FreeSpace"],
            "size_bytes": drive["Size"],
        },
    }


def task_start(process: BridgeProcess, name: str, envelope: dict[str, Any], task_arguments: str) -> dict[str, Any]:
    """Start-ElevatedRun: the run's folder with its envelope, then a SYSTEM
    task running the task bootstrap in that folder."""
    name, folder = _run(process, name)
    with api_call("New-Item run folder"):
        process.host.disk.make_dirs(folder)
        # ConvertTo-Json -Compress, non-ASCII escaped.
        document = json.dumps(envelope, separators=(",", ":")).encode("ascii")
        process.host.disk.write(f"{folder}\\{ENVELOPE_FILE}", [document])
    with api_call("Schedule.Service.Connect"):
        service = process.wua.create_object("Schedule.Service")
        service.Connect()
    with api_call("ITaskService.GetFolder"):
        root = service.GetFolder(ROOT_FOLDER)
    with api_call("ITaskService.NewTask"):
        definition = service.NewTask(0)
        definition.Principal.UserId = "SYSTEM"
        definition.Principal.LogonType = TASK_LOGON_SERVICE_ACCOUNT
        definition.Principal.RunLevel = TASK_RUNLEVEL_HIGHEST
        action = definition.Actions.Create(TASK_ACTION_EXEC)
        action.Path = "PowerShell.exe"
        action.Arguments = task_arguments
        action.WorkingDirectory = folder
        definition.Settings.ExecutionTimeLimit = "PT4H"
        definition.Settings.DisallowStartIfOnBatteries = False
        definition.Settings.StopIfGoingOnBatteries = False
    with api_call("ITaskFolder.RegisterTaskDefinition"):
        task = root.RegisterTaskDefinition(
            TASK_PREFIX + name, definition, TASK_CREATE_OR_UPDATE, None, None, TASK_LOGON_SERVICE_ACCOUNT
        )
    with api_call("IRegisteredTask.Run"):
        task.Run(None)
    return {"task": task.Path, "folder": folder}


def task_poll(process: BridgeProcess, name: str) -> dict[str, Any]:
    """Get-ElevatedRun: the task's state and whether its response is written."""
    name, folder = _run(process, name)
    root = _task_root_folder(process)
    with api_call("ITaskFolder.GetTask"):
        task = root.GetTask(TASK_PREFIX + name)
        state = task.State
        last_task_result = task.LastTaskResult
    with api_call("Test-Path response.json"):
        response_ready = process.host.disk.exists(f"{folder}\\{RESPONSE_FILE}")
    return {"state": state, "last_task_result": last_task_result, "response_ready": response_ready}


def task_collect(process: BridgeProcess, name: str) -> dict[str, Any]:
    """Complete-ElevatedRun: the response, if any, then no task and no folder."""
    name, folder = _run(process, name)
    response_path = f"{folder}\\{RESPONSE_FILE}"
    disk = process.host.disk
    with api_call("Get-Content response.json"):
        response = b"".join(disk.read(response_path)).decode("utf-8-sig") if disk.exists(response_path) else None
    root = _task_root_folder(process)
    with api_call("ITaskFolder.GetTask"):
        try:
            task = root.GetTask(TASK_PREFIX + name)
        except HResultError as error:
            if error.hresult != ERROR_FILE_NOT_FOUND:
                raise
            task = None
    if task is not None:
        # A deleted task's running instance would keep the folder, its
        # working directory, from being removed.
        with api_call("IRegisteredTask.Stop"):
            if task.State == TASK_STATE_RUNNING:
                task.Stop(0)
        with api_call("ITaskFolder.DeleteTask"):
            root.DeleteTask(TASK_PREFIX + name, 0)
    with api_call("Remove-Item run folder"):
        disk.remove_tree(folder)
    return {"response": response}


def reboot_required(process: BridgeProcess) -> dict[str, Any]:
    """Get-RebootRequired: ISystemInformation, which needs a local logon."""
    with api_call("Microsoft.Update.SystemInfo.RebootRequired"):
        required = process.wua.create_object("Microsoft.Update.SystemInfo").RebootRequired
    return {"reboot_required": required}


def _run(process: BridgeProcess, name: Any) -> tuple[str, str]:
    """The run's name, bound as a ``[string]`` ($null is empty), and its
    folder, once the name is known to be safe in a path and a task name."""
    name = "" if name is None else str(name)
    if not RUN_NAME.fullmatch(name):
        raise _refusal(E_INVALIDARG, f"The run name '{name}' must be 1 to 64 letters, digits or dashes.")
    return name, f"{process.system.getenv('ProgramData')}\\{RUNS_FOLDER}\\{name}"


def _task_root_folder(process: BridgeProcess) -> TaskFolder:
    with api_call("Schedule.Service.Connect"):
        service = process.wua.create_object("Schedule.Service")
        service.Connect()
    with api_call("ITaskService.GetFolder"):
        return service.GetFolder(ROOT_FOLDER)


OPERATIONS: dict[str, Operation] = {
    "info": info,
    "task_start": task_start,
    "task_poll": task_poll,
    "task_collect": task_collect,
    "reboot_required": reboot_required,
}


def handle_request(
    host: WindowsHost,
    request: dict[str, Any],
    logon: LogonSession,
    working_directory: str = DEFAULT_WORKING_DIRECTORY,
) -> tuple[dict[str, Any], int]:
    """Run one bridge request; returns the response document and exit code.

    Like the script, it reads ``operation`` first (a missing member fails
    under ``Set-StrictMode``), refuses another protocol or an unknown
    operation with an ArgumentException, and binds ``params`` to the
    operation's parameters.
    """
    response: dict[str, Any] = {"protocol": PROTOCOL, "operation": None}
    try:
        requested = _member(request, "operation")
        operation = response["operation"] = "" if requested is None else str(requested)
        protocol = _member(request, "protocol")
        if protocol != PROTOCOL:
            raise _refusal(E_INVALIDARG, f"This bridge speaks protocol {PROTOCOL}, not {protocol}.")
        if operation not in OPERATIONS:
            raise _refusal(E_INVALIDARG, f"Unknown bridge operation '{operation}'.")
        params = _member(request, "params")
        if not isinstance(params, dict):
            raise _refusal(COR_E_SYSTEM, "The request's params must be an object.")
        accepted = inspect.signature(OPERATIONS[operation]).parameters
        for name in params:
            if name not in accepted or name == "process":
                raise _refusal(COR_E_SYSTEM, f"A parameter cannot be found that matches parameter name '{name}'.")
        missing = [name for name in list(accepted)[1:] if name not in params]
        if missing:
            # Mandatory parameters cannot be prompted for under -NonInteractive.
            raise _refusal(
                COR_E_SYSTEM,
                f"Cannot process command because of one or more missing mandatory parameters: {' '.join(missing)}.",
            )
        process = BridgeProcess(
            host=host,
            logon=logon,
            system=host.system(logon),
            wua=host.wua(logon),
            working_directory=working_directory,
        )
        response["result"] = OPERATIONS[operation](process, **params)
    except BridgeFailure as failure:
        host.log.info("bridge %s failed in %s: %s", response["operation"], failure.call, failure.error)
        error = failure.error
        response["error"] = {"hresult": signed(error.hresult), "message": error.message, "call": failure.call}
        return response, 1
    return response, 0


def _member(request: dict[str, Any], name: str) -> Any:
    """``$Request.<name>`` under ``Set-StrictMode -Version 3.0``."""
    if name not in request:
        raise _refusal(COR_E_SYSTEM, f"The property '{name}' cannot be found on this object.")
    return request[name]


def _refusal(hresult: int, message: str) -> BridgeFailure:
    """A request the script fails before making any API call."""
    return BridgeFailure(REQUEST_CALL, HResultError(hresult, message))
