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
import ntpath
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from wuacache_lab.windows import dism, downloads
from wuacache_lab.windows.disk import FolderSecurity, HostDisk
from wuacache_lab.windows.errors import (
    COR_E_SYSTEM,
    E_ACCESSDENIED,
    E_INVALIDARG,
    ERROR_ALREADY_EXISTS,
    ERROR_FILE_NOT_FOUND,
    HResultError,
    signed,
)
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
from wuacache_lab.windows.wua import SearchResult, ServerSelection, Update, UpdateService, UpdateSession, WuaClient

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost

BRIDGE_MARKER = "wuacache.wua bridge"
# The task bootstrap's marker; the bridge marker is a prefix of it.
TASK_MARKER = "wuacache.wua bridge task"
PROTOCOL = 1
# The "call" of a failure before any API call is made.
REQUEST_CALL = "bridge request"

# The host's folder under $env:ProgramData, and what it holds.
ROOT_FOLDER_NAME = "wuacache"
CATALOG_FILE = "wsusscn2.cab"
# Where a transfer writes until the file is complete and has its digest.
PARTIAL_SUFFIX = ".part"
STAGING_FOLDER = "staging"
PACKAGES_FOLDER = "packages"
OS_UPGRADE_LOGS_FOLDER = "logs\\os_upgrade"
# The root's security descriptor, and the only owners a root may have, as SDDL names them.
PRIVATE_FOLDER_SDDL = "O:BAD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
PRIVATE_FOLDER_OWNERS = ("SY", "BA")
# The owner part of an SDDL string: an alias or a SID string.
SDDL_OWNER = re.compile(r"\AO:([A-Z]{2}|S-1(?:-[0-9]+)+).*\Z")

# Elevated runs: a folder per run under the root, a task per run.
RUN_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")
RUNS_FOLDER = "runs"
TASK_PREFIX = "wuacache-"
ENVELOPE_FILE = "envelope.json"
RESPONSE_FILE = "response.json"
PROGRESS_FILE = "progress.json"

# The Windows Update Agent session and scan package service of an operation.
CLIENT_APPLICATION_ID = "wuacache"
ENGLISH = 1033
CATALOG_SERVICE_NAME = "wuacache offline catalog"
VOLATILE_SERVICE = 0

# wusa.exe takes the KB on its command line.
KB_NUMBER = re.compile(r"[0-9]{1,10}")
# A package's name becomes a path under the root.
# A file staged for CopyToCache: a plain name, never a path.
STAGED_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
# How long task_collect waits for a stopped task's instance to end.
STOP_TIMEOUT = 60.0
PACKAGE_NAME = re.compile(r"[A-Za-z0-9._-]+\.(?:msu|cab)")
PACKAGE_KINDS = ("msu", "cab")


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
    # Beside the response of an elevated run; None outside a task.
    progress_path: str | None = None
    # $script:CleanupError: the first clean-up that failed, the error of an operation that succeeded.
    cleanup_failures: list[BridgeFailure] = field(default_factory=list)


def cleanup_call(process: BridgeProcess, call: str, cleanup: Callable[[], object]) -> None:
    """The call of a finally block, which catches its own failure (Add-CleanupError):
    a failed operation keeps its own error, and a successful one fails with the first
    clean-up that failed."""
    try:
        with api_call(call):
            cleanup()
    except BridgeFailure as failure:
        process.cleanup_failures.append(failure)


# An operation takes the bridge process and the request's params as keywords.
Operation = Callable[..., dict[str, Any]]


def round_trip_utc(moment: datetime) -> str:
    """``.ToUniversalTime().ToString('o')``: seven fractional digits and Z."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def info(process: BridgeProcess, downloads: bool = False) -> dict[str, Any]:
    """Get-HostInfo: who the host is and what state it is in; nothing a
    network logon may not read. With ``downloads``, also what the root holds
    of downloads."""
    system = process.system
    with api_call("Get-Item wuapi.dll"):
        # The Update Agent's version, read without calling it: wuapi.dll's file version.
        wuapi = system.file_version_info(f"{system.getenv('SystemRoot')}\\System32\\wuapi.dll")
        wua_version = "{0}.{1}.{2}.{3}".format(
            wuapi["FileMajorPart"], wuapi["FileMinorPart"], wuapi["FileBuildPart"], wuapi["FilePrivatePart"]
        )
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
    with api_call("Registry startup markers"):
        logon_ui_ready = system.registry_key_exists(
            r"HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon\AutoLogonChecked"
        )
        servicing_in_progress = system.registry_values(
            r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\Interface"
        ).get("ServicingInProgress")
    with api_call("Get-CimInstance Win32_LogicalDisk"):
        drive = system.cim_instances("Win32_LogicalDisk", f"DeviceID='{system.getenv('SystemDrive')}'")[0]
    download_state = _download_state(process) if downloads else None
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
        "startup": {"logon_ui_ready": logon_ui_ready, "servicing_in_progress": servicing_in_progress},
        "system_drive": {
            "device_id": drive["DeviceID"],
            "free_bytes": drive["FreeSpace"],
            "size_bytes": drive["Size"],
        },
        "downloads": download_state,
    }


def _download_state(process: BridgeProcess) -> dict[str, Any]:
    """Get-DownloadState: the catalog and its digest, and the partial files
    transfers left, by the name of the file each becomes."""
    disk = process.host.disk
    path = _catalog_path(process)
    catalog: dict[str, Any] = {"path": path, "size": None, "sha256": None, "part_size": None}
    with api_call(f"Get-FileHash {CATALOG_FILE}"):
        if disk.exists(path):
            catalog["size"] = disk.size(path)
            catalog["sha256"] = downloads.file_hash(process.host, path, "sha256")
    with api_call("Get-ChildItem partial downloads"):
        if disk.exists(f"{path}{PARTIAL_SUFFIX}"):
            catalog["part_size"] = disk.size(f"{path}{PARTIAL_SUFFIX}")
        staging = f"{_root(process)}\\{STAGING_FOLDER}"
        staged_part_sizes = {
            item.name[: -len(PARTIAL_SUFFIX)]: item.stat().st_size
            for item in (sorted(disk.path(staging).iterdir()) if disk.is_folder(staging) else [])
            if item.is_file() and item.name.casefold().endswith(PARTIAL_SUFFIX)
        }
    return {"catalog": catalog, "staged_part_sizes": staged_part_sizes}


def initialize_private_folder(process: BridgeProcess) -> None:
    """Initialize-PrivateFolder: a new root is created with its own ACL; an
    existing one, and every folder in it, must belong to SYSTEM or
    Administrators, or it is refused before anything is written. (Files and
    links carry no owner in the emulated disk: only folders are checked.)"""
    root = _root(process)
    system = process.system
    with api_call("Initialize-PrivateFolder"):
        acl = FolderSecurity.from_sddl(PRIVATE_FOLDER_SDDL)
        if not process.host.disk.is_folder(root):
            # Directory.CreateDirectory(path, acl): created with its ACL at once.
            system.new_directory(root)
            system.set_acl(root, acl)
            return
        for folder in (root, *process.host.disk.folders_under(root)):
            owner = SDDL_OWNER.sub(r"\1", system.get_acl(folder).sddl)
            if owner not in PRIVATE_FOLDER_OWNERS:
                raise HResultError(E_ACCESSDENIED, f"{folder} belongs to {owner}, not to SYSTEM or Administrators.")
        system.set_acl(root, acl)


def task_start(process: BridgeProcess, name: str, envelope: dict[str, Any], task_arguments: str) -> dict[str, Any]:
    """Start-ElevatedRun: the run's folder with its envelope, then a SYSTEM
    task running the task bootstrap in that folder."""
    name, folder = _run(process, name)
    initialize_private_folder(process)
    with api_call("New-Item run folder"):
        # New-Item without -Force: a folder that exists was not made by this run.
        if process.host.disk.exists(folder) or process.host.disk.is_folder(folder):
            raise HResultError(ERROR_ALREADY_EXISTS, f"An item with the specified name {folder} already exists.")
        process.system.new_directory(folder)
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
        action.Path = f"{process.system.getenv('SystemRoot')}\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
        action.Arguments = task_arguments
        action.WorkingDirectory = folder
        definition.Settings.ExecutionTimeLimit = "PT4H"
        definition.Settings.Priority = 4
        definition.Settings.DisallowStartIfOnBatteries = False
        definition.Settings.StopIfGoingOnBatteries = False
    with api_call("ITaskFolder.RegisterTaskDefinition"):
        task = root.RegisterTaskDefinition(
            TASK_PREFIX + name, definition, TASK_CREATE_OR_UPDATE, None, None, TASK_LOGON_SERVICE_ACCOUNT
        )
    with api_call("IRegisteredTask.Run"):
        task.Run(None)
    return {"task": task.Path, "folder": folder}


def set_file_text(disk: HostDisk, path: str, text: bytes) -> None:
    """Set-FileText: the file written next to its place, then renamed over it."""
    disk.write(f"{path}.tmp", [text])
    disk.move(f"{path}.tmp", path)


def _file_text(disk: HostDisk, path: str) -> str | None:
    """Get-Content -Raw of a file the run may have written; None when it has not."""
    return b"".join(disk.read(path)).decode("utf-8-sig") if disk.exists(path) else None


def write_run_progress(process: BridgeProcess, step: str, done: int, total: int, item: str | None = None) -> None:
    """Write-RunProgress: where the operation stands, for task_poll; a failure
    to write it is ignored, progress being advisory."""
    if process.progress_path is None:
        return
    text = json.dumps({"step": step, "done": done, "total": total, "item": item}, separators=(",", ":"))
    try:
        set_file_text(process.host.disk, process.progress_path, text.encode("ascii"))
    except HResultError:
        pass


def task_poll(process: BridgeProcess, name: str) -> dict[str, Any]:
    """Get-ElevatedRun: the task's state, whether its response is written, and
    the progress the run wrote, if any."""
    name, folder = _run(process, name)
    root = _task_root_folder(process)
    with api_call("ITaskFolder.GetTask"):
        task = root.GetTask(TASK_PREFIX + name)
        state = task.State
        last_task_result = task.LastTaskResult
    with api_call("Test-Path response.json"):
        response_ready = process.host.disk.exists(f"{folder}\\{RESPONSE_FILE}")
    with api_call("Get-Content progress.json"):
        progress_text = _file_text(process.host.disk, f"{folder}\\{PROGRESS_FILE}")
        progress = json.loads(progress_text) if progress_text else None
    return {
        "state": state,
        "last_task_result": last_task_result,
        "response_ready": response_ready,
        "progress": progress,
    }


def task_collect(process: BridgeProcess, name: str) -> dict[str, Any]:
    """Complete-ElevatedRun: the response, if any, then no task and no folder."""
    name, folder = _run(process, name)
    disk = process.host.disk
    with api_call("Get-Content response.json"):
        response = _file_text(disk, f"{folder}\\{RESPONSE_FILE}")
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
                # Stop returns before the instance has ended.
                deadline = time.monotonic() + STOP_TIMEOUT
                while task.State == TASK_STATE_RUNNING and time.monotonic() < deadline:
                    time.sleep(0.5)
        with api_call("ITaskFolder.DeleteTask"):
            root.DeleteTask(TASK_PREFIX + name, 0)
    with api_call("Remove-Item run folder"):
        disk.remove_tree(folder)
    return {"response": response}


def reboot_required(process: BridgeProcess) -> dict[str, Any]:
    """Get-RebootRequired: ISystemInformation, which needs a local logon."""
    return {"reboot_required": _system_reboot_required(process)}


def ensure_cab(process: BridgeProcess, url: str, sha256: str, offset: int) -> dict[str, Any]:
    """Sync-Catalog: the server's catalog in the root, with the SHA-256 the server publishes."""
    initialize_private_folder(process)
    return _save_http_file(process, url, _catalog_path(process), offset, "SHA256", sha256)


def scan(process: BridgeProcess, criteria: str, wuauserv_after: dict[str, Any]) -> dict[str, Any]:
    """Search-Update: the catalog's search result, the history and whether
    a restart is pending."""
    with _windows_update_service(process, wuauserv_after):
        session = _new_update_session(process)
        with _catalog_search(process, session, criteria) as (service, search_result):
            with api_call("IUpdate"):
                updates = [_update_record(update) for update in search_result.Updates]
            history = read_history(session)
            required = _system_reboot_required(process)
            return {
                "cab": {"path": _catalog_path(process), "service_id": service.ServiceID},
                "result_code": search_result.ResultCode,
                "updates": updates,
                "history": history,
                "reboot_required": required,
            }


def download(
    process: BridgeProcess, criteria: str, files: dict[str, Any], wuauserv_after: dict[str, Any]
) -> dict[str, Any]:
    """Save-Update: each named child's files fetched into the staging folder
    and handed to CopyToCache; one update's failure leaves the others alone."""
    initialize_private_folder(process)
    staging = f"{_root(process)}\\{STAGING_FOLDER}"
    with api_call("New-Item staging folder"):
        process.system.new_directory(staging)
    with _windows_update_service(process, wuauserv_after):
        session = _new_update_session(process)
        with _catalog_search(process, session, criteria) as (_, search_result):
            files_total = sum(len(value) if isinstance(value, list) else 1 for value in files.values())
            files_done = 0
            updates = []
            for update in search_result.Updates:
                saved_files: list[dict[str, Any]] = []
                error = None
                try:
                    for child in update.BundledUpdates:
                        child_files = _property(files, child.Identity.UpdateID.lower())
                        if child_files is None:
                            continue
                        paths = process.wua.create_object("Microsoft.Update.StringColl")
                        for file in child_files if isinstance(child_files, list) else [child_files]:
                            # The name becomes a path in the staging folder.
                            with api_call("staged file name"):
                                if not STAGED_NAME.fullmatch(str(file["name"])):
                                    raise HResultError(E_INVALIDARG, f"The file name '{file['name']}' is not a plain file name.")
                            staged = f"{staging}\\{file['name']}"
                            write_run_progress(process, "download", files_done, files_total, file["name"])
                            saved = _save_http_file(process, file["url"], staged, file["offset"], "SHA1", file["sha1"])
                            files_done += 1
                            saved_files.append({"name": file["name"], **saved})
                            paths.Add(staged)
                        with api_call("IUpdate.CopyToCache"):
                            child.CopyToCache(paths)
                        with api_call("Remove-Item staged files"):
                            for staged in paths:
                                process.host.disk.remove(staged)
                except BridgeFailure as failure:
                    error = _error_object(failure)
                with api_call("IUpdate.IsDownloaded"):
                    is_downloaded = update.IsDownloaded
                updates.append(
                    {
                        "update_id": update.Identity.UpdateID,
                        "is_downloaded": is_downloaded,
                        "files": saved_files,
                        "error": error,
                    }
                )
            return {"updates": updates}


def install(process: BridgeProcess, criteria: str, wuauserv_after: dict[str, Any]) -> dict[str, Any]:
    """Install-Update: the updates found, installed together unless a
    restart must come first."""
    with _windows_update_service(process, wuauserv_after):
        session = _new_update_session(process)
        with _catalog_search(process, session, criteria) as (_, search_result):
            updates = process.wua.create_object("Microsoft.Update.UpdateColl")
            for update in search_result.Updates:
                if not update.EulaAccepted:
                    with api_call("IUpdate.AcceptEula"):
                        update.AcceptEula()
                updates.Add(update)
            with api_call("CreateUpdateInstaller"):
                installer = session.CreateUpdateInstaller()
                # Nobody can answer a prompt for source media in a SYSTEM task.
                installer.AllowSourcePrompts = False
            with api_call("IUpdateInstaller.RebootRequiredBeforeInstallation"):
                reboot_first = installer.RebootRequiredBeforeInstallation
            if reboot_first:
                return {
                    "reboot_required_before_installation": True,
                    "result_code": None,
                    "hresult": None,
                    "reboot_required": None,
                    "updates": [],
                }
            write_run_progress(process, "install", 0, updates.Count)
            with api_call("IUpdateInstaller.Install"):
                installer.Updates = updates
                installation = installer.Install()
            results = []
            for index in range(updates.Count):
                update = updates.Item(index)
                update_result = installation.GetUpdateResult(index)
                results.append(
                    {
                        "update_id": update.Identity.UpdateID,
                        "title": update.Title,
                        "result_code": update_result.ResultCode,
                        "hresult": update_result.HResult,
                        "reboot_required": update_result.RebootRequired,
                    }
                )
            return {
                "reboot_required_before_installation": False,
                "result_code": installation.ResultCode,
                "hresult": installation.HResult,
                "reboot_required": installation.RebootRequired,
                "updates": results,
            }


def uninstall(process: BridgeProcess, kb: str, wuauserv_after: dict[str, Any]) -> dict[str, Any]:
    """Uninstall-Update: wusa.exe removes the update of a KB, through the
    Windows Update service; its exit code says how it went."""
    kb = "" if kb is None else str(kb)
    if not KB_NUMBER.fullmatch(kb):
        raise _refusal(E_INVALIDARG, f"The KB '{kb}' must be 1 to 10 digits.")
    with _windows_update_service(process, wuauserv_after), api_call("wusa.exe"):
        # Start-Process -Wait -PassThru: the process, once it has ended.
        wusa = process.host.run_process(
            f"wusa.exe /uninstall /kb:{kb} /quiet /norestart", b"", process.logon, _system_root(process)
        )
    return {"exit_code": wusa.exit_code}


def history(process: BridgeProcess, wuauserv_after: dict[str, Any]) -> dict[str, Any]:
    """Get-UpdateHistory: every history entry, most recent first."""
    with _windows_update_service(process, wuauserv_after):
        return {"history": read_history(_new_update_session(process))}


def install_package(
    process: BridgeProcess,
    url: str,
    name: str,
    sha256: str,
    kind: str,
    installed_states: list[str],
    wuauserv_after: dict[str, Any],
) -> dict[str, Any]:
    """Install-Package: the server's package fetched into the packages folder,
    installed by wusa.exe or DISM (unless its cabinet's package is in one of
    ``installed_states``), and deleted whatever happened."""
    name = "" if name is None else str(name)
    kind = "" if kind is None else str(kind)
    if not PACKAGE_NAME.fullmatch(name):
        raise _refusal(E_INVALIDARG, f"The package name '{name}' must be a plain .msu or .cab file name.")
    if kind not in PACKAGE_KINDS:
        raise _refusal(E_INVALIDARG, f"The package kind '{kind}' must be msu or cab.")
    initialize_private_folder(process)
    folder = f"{_root(process)}\\{PACKAGES_FOLDER}"
    with api_call("New-Item packages folder"):
        process.system.new_directory(folder)
    path = f"{folder}\\{name}"

    def remove_package() -> None:
        process.host.disk.remove(path)
        process.host.disk.remove(f"{path}{PARTIAL_SUFFIX}")

    exit_code = package_state = None
    with _windows_update_service(process, wuauserv_after, ("Remove-Item package", remove_package)):
        # The package and its part are deleted after every install: it never resumes.
        saved = _save_http_file(process, url, path, 0, "SHA256", sha256)
        # Start-Process -Wait -PassThru, the path quoted by the bridge.
        if kind == "msu":
            with api_call("wusa.exe"):
                exit_code = process.host.run_process(
                    f'wusa.exe "{path}" /quiet /norestart', b"", process.logon, _system_root(process)
                ).exit_code
        else:
            with api_call("Get-WindowsPackage"):
                package_state = str(dism.get_windows_package(process.host, path, process.logon)["PackageState"])
            if package_state not in installed_states:
                with api_call("dism.exe"):
                    exit_code = process.host.run_process(
                        f'dism.exe /Online /Add-Package "/PackagePath:{path}" /Quiet /NoRestart',
                        b"",
                        process.logon,
                        _system_root(process),
                    ).exit_code
    return {"exit_code": exit_code, "package_state": package_state, "download": saved}


def os_upgrade(process: BridgeProcess, setup_path: str, arguments: list[str]) -> dict[str, Any]:
    """Start-OsUpgrade: setup.exe run with the controller's switches and the
    host's logs folder."""
    setup_path = "" if setup_path is None else str(setup_path)
    with api_call("Test-Path setup_path"):
        if not _is_file(process, setup_path):
            raise HResultError(ERROR_FILE_NOT_FOUND, f"Could not find file '{setup_path}'.")
    initialize_private_folder(process)
    logs = f"{_root(process)}\\{OS_UPGRADE_LOGS_FOLDER}"
    with api_call("New-Item logs folder"):
        process.system.new_directory(logs)
    with api_call("setup.exe"):
        # Start-Process joins -ArgumentList with spaces, without quoting.
        setup = process.host.run_process(
            " ".join([f'"{setup_path}"', *map(str, arguments), "/copylogs", f'"{logs}"']),
            b"",
            process.logon,
            _system_root(process),
        )
    return {"exit_code": setup.exit_code, "logs": logs}


def clean_staging(process: BridgeProcess) -> dict[str, Any]:
    """Clear-Staging: everything under the staging and packages folders, the
    folders themselves kept."""
    disk = process.host.disk
    removed_files = removed_bytes = 0
    with api_call("Remove-Item staging"):
        for name in (STAGING_FOLDER, PACKAGES_FOLDER):
            folder = f"{_root(process)}\\{name}"
            if not disk.is_folder(folder):
                continue
            for item in disk.path(folder).iterdir():
                files = [item] if item.is_file() else [path for path in item.rglob("*") if path.is_file()]
                removed_files += len(files)
                removed_bytes += sum(path.stat().st_size for path in files)
                if item.is_dir():
                    disk.remove_tree(f"{folder}\\{item.name}")
                else:
                    disk.remove(f"{folder}\\{item.name}")
    return {"removed_files": removed_files, "removed_bytes": removed_bytes}


def _is_file(process: BridgeProcess, path: str) -> bool:
    """``Test-Path -LiteralPath <path> -PathType Leaf``: false, not an error,
    for what the host cannot reach."""
    try:
        return process.host.disk.exists(path)
    except HResultError:
        return False


def _root(process: BridgeProcess) -> str:
    return f"{process.system.getenv('ProgramData')}\\{ROOT_FOLDER_NAME}"


def _catalog_path(process: BridgeProcess) -> str:
    return f"{_root(process)}\\{CATALOG_FILE}"


def _run(process: BridgeProcess, name: Any) -> tuple[str, str]:
    """The run's name, bound as a ``[string]`` ($null is empty), and its
    folder, once the name is known to be safe in a path and a task name."""
    name = "" if name is None else str(name)
    if not RUN_NAME.fullmatch(name):
        raise _refusal(E_INVALIDARG, f"The run name '{name}' must be 1 to 64 letters, digits or dashes.")
    return name, f"{_root(process)}\\{RUNS_FOLDER}\\{name}"


def _system_reboot_required(process: BridgeProcess) -> bool:
    """Get-SystemRebootRequired."""
    with api_call("Microsoft.Update.SystemInfo.RebootRequired"):
        return process.wua.create_object("Microsoft.Update.SystemInfo").RebootRequired


@contextmanager
def _windows_update_service(
    process: BridgeProcess, wuauserv_after: dict[str, Any], *cleanups: tuple[str, Callable[[], object]]
) -> Iterator[None]:
    """Start-WindowsUpdateService in a try whose finally makes ``cleanups``
    (their calls and what they do), then Restore-WindowsUpdateService:
    wuauserv started for the operation, then left as the controller asked,
    whatever happened. (The bridge starts it through its ServiceController and
    stops it with -NoWait, then waits for the state within a time limit; the
    emulated service has no pending states, so it is there at once.)"""
    system = process.system

    def restore() -> None:
        system.set_service_start_mode("wuauserv", _member(wuauserv_after, "start_mode"))
        if not _member(wuauserv_after, "running"):
            system.stop_service("wuauserv")

    try:
        with api_call("Start wuauserv"):
            system.set_service_start_mode("wuauserv", "Manual")
            system.start_service("wuauserv")
        yield
    finally:
        for call, cleanup in cleanups:
            cleanup_call(process, call, cleanup)
        cleanup_call(process, "Restore wuauserv", restore)


def _new_update_session(process: BridgeProcess) -> UpdateSession:
    """New-UpdateSession: in the collection's name, with English titles."""
    with api_call("Microsoft.Update.Session"):
        session = process.wua.create_object("Microsoft.Update.Session")
        session.ClientApplicationID = CLIENT_APPLICATION_ID
        session.UserLocale = ENGLISH
    return session


@contextmanager
def _catalog_search(
    process: BridgeProcess, session: UpdateSession, criteria: str
) -> Iterator[tuple[UpdateService, SearchResult]]:
    """Add-CatalogService and Search-Catalog, and Remove-CatalogService in
    the operation's finally, before Restore-WindowsUpdateService: the root's
    cab registered as a volatile scan package service, searched, and removed
    whatever happens once it was added."""
    with api_call("AddScanPackageService"):
        service_manager = process.wua.create_object("Microsoft.Update.ServiceManager")
        service = service_manager.AddScanPackageService(CATALOG_SERVICE_NAME, _catalog_path(process), VOLATILE_SERVICE)
    try:
        write_run_progress(process, "search", 0, 1)
        with api_call("IUpdateSearcher.Search"):
            searcher = session.CreateUpdateSearcher()
            searcher.ServerSelection = ServerSelection.Others
            searcher.ServiceID = service.ServiceID
            search_result = searcher.Search(criteria)
        yield service, search_result
    finally:
        cleanup_call(
            process, "IUpdateServiceManager.RemoveService", lambda: service_manager.RemoveService(service.ServiceID)
        )


def _download_urls(update: Update) -> list[str]:
    return [content.DownloadUrl for content in update.DownloadContents]


def _update_record(update: Update) -> dict[str, Any]:
    """ConvertTo-UpdateRecord."""
    return {
        "update_id": update.Identity.UpdateID,
        "revision_number": update.Identity.RevisionNumber,
        "title": update.Title,
        "kb_article_ids": list(update.KBArticleIDs),
        "msrc_severity": update.MsrcSeverity,
        "categories": [
            {"id": category.CategoryID, "name": category.Name, "type": category.Type} for category in update.Categories
        ],
        "last_deployment_change_time": round_trip_utc(update.LastDeploymentChangeTime),
        "is_installed": update.IsInstalled,
        "is_hidden": update.IsHidden,
        "is_downloaded": update.IsDownloaded,
        "is_mandatory": update.IsMandatory,
        "eula_accepted": update.EulaAccepted,
        "reboot_required": update.RebootRequired,
        "reboot_behavior": update.InstallationBehavior.RebootBehavior,
        "max_download_size": update.MaxDownloadSize,
        "superseded_update_ids": list(update.SupersededUpdateIDs),
        "download_urls": _download_urls(update),
        "bundled": [
            {
                "update_id": child.Identity.UpdateID,
                "revision_number": child.Identity.RevisionNumber,
                "title": child.Title,
                "download_urls": _download_urls(child),
            }
            for child in update.BundledUpdates
        ],
    }


def read_history(session: UpdateSession) -> list[dict[str, Any]]:
    """Read-UpdateHistory: every entry, most recent first."""
    with api_call("IUpdateSearcher.QueryHistory"):
        searcher = session.CreateUpdateSearcher()
        count = searcher.GetTotalHistoryCount()
        entries = searcher.QueryHistory(0, count) if count > 0 else []
        return [
            {
                "operation": entry.Operation,
                "result_code": entry.ResultCode,
                "hresult": entry.HResult,
                "date": round_trip_utc(entry.Date),
                "update_id": entry.UpdateIdentity.UpdateID,
                "revision_number": entry.UpdateIdentity.RevisionNumber,
                "title": entry.Title,
            }
            for entry in entries
        ]


def _save_http_file(
    process: BridgeProcess, url: str, path: str, offset: int, algorithm: str, expected: str
) -> dict[str, Any]:
    """Save-HttpFile, reported under the file's name: http and https URLs
    only, a GET from ``offset`` into the partial file, which replaces the file
    once it has the digest given (``Get-FileHash -Algorithm <algorithm>``)
    and is deleted otherwise."""
    disk = process.host.disk
    partial = f"{path}{PARTIAL_SUFFIX}"
    with api_call(f"Save-HttpFile {ntpath.basename(path)}"):
        if urlsplit(str(url)).scheme.lower() not in ("http", "https"):
            raise HResultError(E_INVALIDARG, f"The URL '{url}' is not an http or https URL.")
        transfer = downloads.get(process.host, url, partial, offset=offset)
        # Get-FileHash's hex is upper case; -ne compares without case.
        if downloads.file_hash(process.host, partial, algorithm.lower()) != str(expected).lower():
            disk.remove(partial)
            # InvalidDataException, whose HRESULT is SystemException's.
            raise HResultError(
                COR_E_SYSTEM, f"The file downloaded from {url} does not have the expected {algorithm} {expected}."
            )
        disk.move(partial, path)
        size = disk.size(path)
    status = "resumed" if transfer.resumed else "downloaded"
    return {"status": status, "size": size, "transferred": transfer.transferred}


def _system_root(process: BridgeProcess) -> str:
    """Where Invoke-Process starts programs: not in the run's folder, which they would keep in use."""
    return process.system.getenv("SystemRoot")


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
    "ensure_cab": ensure_cab,
    "scan": scan,
    "download": download,
    "install": install,
    "uninstall": uninstall,
    "history": history,
    "install_package": install_package,
    "os_upgrade": os_upgrade,
    "clean_staging": clean_staging,
}


def handle_request(
    host: WindowsHost,
    request: dict[str, Any],
    logon: LogonSession,
    working_directory: str = DEFAULT_WORKING_DIRECTORY,
    response_path: str | None = None,
) -> tuple[dict[str, Any], int]:
    """Run one bridge request; returns the response document and exit code.

    Like the script, it reads ``operation`` first (a missing member fails
    under ``Set-StrictMode``), refuses another protocol or an unknown
    operation with an ArgumentException, and binds ``params`` to the
    operation's parameters.
    """
    response: dict[str, Any] = {"protocol": PROTOCOL, "operation": None}
    try:
        with api_call(REQUEST_CALL):
            requested = _member(request, "operation")
            operation = response["operation"] = "" if requested is None else str(requested)
            protocol = _member(request, "protocol")
        if protocol != PROTOCOL:
            raise _refusal(E_INVALIDARG, f"This bridge speaks protocol {PROTOCOL}, not {protocol}.")
        if operation not in OPERATIONS:
            raise _refusal(E_INVALIDARG, f"Unknown bridge operation '{operation}'.")
        with api_call(REQUEST_CALL):
            params = _member(request, "params")
        if not isinstance(params, dict):
            raise _refusal(COR_E_SYSTEM, "The request's params must be an object.")
        accepted = inspect.signature(OPERATIONS[operation]).parameters
        for name in params:
            if name not in accepted or name == "process":
                raise _refusal(COR_E_SYSTEM, f"A parameter cannot be found that matches parameter name '{name}'.")
        missing = [
            name
            for name, parameter in list(accepted.items())[1:]
            if parameter.default is inspect.Parameter.empty and name not in params
        ]
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
            # Write-RunProgress writes beside the response of an elevated run.
            progress_path=None if response_path is None else ntpath.join(ntpath.dirname(response_path), PROGRESS_FILE),
        )
        result = OPERATIONS[operation](process, **params)
        if process.cleanup_failures:
            # The operation succeeded: the first clean-up that failed is the error.
            raise process.cleanup_failures[0]
        response["result"] = result
    except BridgeFailure as failure:
        host.log.info("bridge %s failed in %s: %s", response["operation"], failure.call, failure.error)
        response["error"] = _error_object(failure)
        return response, 1
    return response, 0


def _error_object(failure: BridgeFailure) -> dict[str, Any]:
    """ConvertTo-BridgeError."""
    return {"hresult": signed(failure.error.hresult), "message": failure.error.message, "call": failure.call}


def _member(document: Any, name: str) -> Any:
    """``$object.<name>`` under ``Set-StrictMode -Version 3.0``."""
    if not isinstance(document, dict) or name not in document:
        raise HResultError(COR_E_SYSTEM, f"The property '{name}' cannot be found on this object.")
    return document[name]


def _property(document: dict[str, Any], name: str) -> Any:
    """``$object.PSObject.Properties[<name>].Value``: names are
    case-insensitive, and a missing one is $null."""
    return next((value for key, value in document.items() if key.casefold() == name.casefold()), None)


def _refusal(hresult: int, message: str) -> BridgeFailure:
    """A request the script fails before making any API call."""
    return BridgeFailure(REQUEST_CALL, HResultError(hresult, message))
