"""The bridge's operations, transliterated call by call from its PowerShell.

The emulated host cannot run ``_wua_bridge.ps1``, so each operation here
makes, in the same order, the API calls the script makes, against the
simulated Windows surface and Update Agent. Windows' own rules (remote-logon
restrictions, a disabled service...) are enforced by those simulated APIs;
an :class:`HResultError` they raise becomes the protocol's error response,
naming the call that failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from wuacache_lab.windows.errors import E_INVALIDARG, HResultError, signed
from wuacache_lab.windows.process import LogonSession
from wuacache_lab.windows.system import WindowsSystem
from wuacache_lab.windows.wua import WuaClient

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost

BRIDGE_MARKER = "wuacache.wua bridge"
PROTOCOL = 1


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


Operation = Callable[[BridgeProcess, dict[str, Any]], dict[str, Any]]


def round_trip_utc(moment: datetime) -> str:
    """``.ToUniversalTime().ToString('o')``: seven fractional digits and Z."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def info(process: BridgeProcess, params: dict[str, Any]) -> dict[str, Any]:
    system = process.system
    computer_name = system.getenv("COMPUTERNAME")
    with api_call("Microsoft.Update.AgentInfo.GetInfo"):
        wua_version = process.wua.create_object("Microsoft.Update.AgentInfo").GetInfo("ProductVersionString")
    with api_call("Get-CimInstance Win32_OperatingSystem"):
        os_instance = system.cim_instances("Win32_OperatingSystem")[0]
    current_version = r"HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion"
    with api_call(f"Get-ItemProperty {current_version}"):
        ubr = system.registry_values(current_version).get("UBR")
    with api_call("Get-CimInstance Win32_Service"):
        service = system.cim_instances("Win32_Service", "Name='wuauserv'")[0]
    reboot_indicators = []
    with api_call("Test-Path"):
        if system.registry_key_exists(
            r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending"
        ):
            reboot_indicators.append("cbs_reboot_pending")
        if system.registry_key_exists(
            r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired"
        ):
            reboot_indicators.append("wu_reboot_required")
    session_manager = r"HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager"
    with api_call(f"Get-ItemProperty {session_manager}"):
        if system.registry_values(session_manager).get("PendingFileRenameOperations"):
            reboot_indicators.append("pending_file_rename")
    with api_call("Get-CimInstance Win32_LogicalDisk"):
        drive = system.cim_instances("Win32_LogicalDisk", f"DeviceID='{system.getenv('SystemDrive')}'")[0]
    return {
        "computer_name": computer_name,
        "wua_version": wua_version,
        "os": {
            "caption": os_instance["Caption"],
            "version": os_instance["Version"],
            "build_number": os_instance["BuildNumber"],
            "architecture": os_instance["OSArchitecture"],
            "product_type": os_instance["ProductType"],
            "last_boot_up_time": round_trip_utc(os_instance["LastBootUpTime"]),
            "ubr": ubr,
        },
        "wuauserv": {"start_mode": service["StartMode"], "state": service["State"]},
        "reboot_indicators": reboot_indicators,
        "system_drive": {
            "device_id": drive["DeviceID"],
            "free_bytes": drive["FreeSpace"],
            "size_bytes": drive["Size"],
        },
    }


OPERATIONS: dict[str, Operation] = {
    "info": info,
}


def handle_request(host: WindowsHost, request: dict[str, Any], logon: LogonSession) -> tuple[dict[str, Any], int]:
    """Run one bridge request; returns the response document and exit code."""
    operation = request.get("operation")
    if request.get("protocol") != PROTOCOL:
        return _refusal(
            operation, f"Unsupported bridge protocol {request.get('protocol')!r}; this bridge speaks {PROTOCOL}."
        )
    if not isinstance(operation, str) or operation not in OPERATIONS:
        return _refusal(operation, f"Unknown bridge operation {operation!r}.")
    params = request.get("params") or {}
    if not isinstance(params, dict):
        return _refusal(operation, "The request's params must be an object.")
    process = BridgeProcess(host=host, logon=logon, system=host.system(logon), wua=host.wua(logon))
    try:
        result = OPERATIONS[operation](process, params)
    except BridgeFailure as failure:
        host.log.info("bridge %s failed in %s: %s", operation, failure.call, failure.error)
        return _error(operation, failure.error.hresult, failure.error.message, failure.call), 1
    return {"protocol": PROTOCOL, "operation": operation, "result": result}, 0


def _refusal(operation: Any, message: str) -> tuple[dict[str, Any], int]:
    """The bridge rejects a request it cannot run with an ArgumentException."""
    return _error(operation, E_INVALIDARG, message, "bridge"), 1


def _error(operation: Any, hresult: int, message: str, call: str) -> dict[str, Any]:
    return {
        "protocol": PROTOCOL,
        "operation": operation,
        "error": {"hresult": signed(hresult), "message": message, "call": call},
    }
