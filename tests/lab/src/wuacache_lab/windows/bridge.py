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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from wuacache_lab.windows.errors import COR_E_SYSTEM, E_INVALIDARG, HResultError, signed
from wuacache_lab.windows.process import DEFAULT_WORKING_DIRECTORY, LogonSession
from wuacache_lab.windows.system import WindowsSystem
from wuacache_lab.windows.wua import WuaClient

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost

BRIDGE_MARKER = "wuacache.wua bridge"
PROTOCOL = 1
# The "call" of a failure before any API call is made.
REQUEST_CALL = "bridge request"


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


OPERATIONS: dict[str, Operation] = {
    "info": info,
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
