"""The parts of Windows the bridge reads and drives, besides the Update Agent.

CIM classes (``Get-CimInstance``), the registry (``Test-Path`` and
``Get-Item`` on ``HKLM:``), the process environment and the service control
manager, all derived from the host's profile and persistent state.
"""

from __future__ import annotations

import ntpath
import re
from typing import TYPE_CHECKING, Any

from wuacache_lab.windows.disk import SYSTEM_DRIVE
from wuacache_lab.windows.errors import (
    COR_E_SYSTEM,
    ERROR_SERVICE_DISABLED,
    HResultError,
)
from wuacache_lab.windows.owners import NO_DEFAULT_ADMIN_OWNER, default_owner_policy
from wuacache_lab.windows.process import LogonSession
from wuacache_lab.windows.state import HostState, from_iso

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost

# Set-Service -StartupType takes a ServiceStartMode; Win32_Service names it otherwise.
_STARTUP_TYPES = {"automatic": "Auto", "manual": "Manual", "disabled": "Disabled"}
# HKLM\SYSTEM\CurrentControlSet\Services\<name> value Start for each mode.
_SERVICE_START_VALUES = {"Auto": 2, "Manual": 3, "Disabled": 4}

CURRENT_VERSION_KEY = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion"
CBS_REBOOT_PENDING_KEY = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending"
WU_REBOOT_REQUIRED_KEY = r"SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired"
SESSION_MANAGER_KEY = r"SYSTEM\CurrentControlSet\Control\Session Manager"
WUAUSERV_KEY = r"SYSTEM\CurrentControlSet\Services\wuauserv"
# The security policy "System objects: Default owner for objects created by members of the
# Administrators group" (wuacache_lab.windows.owners) is its value NoDefaultAdminOwner.
LSA_KEY = r"SYSTEM\CurrentControlSet\Control\Lsa"
# LogonUI creates this volatile key when it is about to show the logon screen.
AUTOLOGON_CHECKED_KEY = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon\AutoLogonChecked"
# ServicingInProgress there: 0 idle, 1 changes waiting for a restart, 2 servicing at work.
CBS_INTERFACE_KEY = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\Interface"
# .NET Framework 4's key, and its twin in the registry view of 32-bit processes on 64-bit Windows
# ("Transport Layer Security (TLS) best practices with the .NET Framework", dotnet/docs,
# docs/framework/network-programming/tls.md, "Configuring security via the Windows Registry").
NET_FRAMEWORK_KEY = r"SOFTWARE\Microsoft\.NETFramework\v4.0.30319"
NET_FRAMEWORK_WOW64_KEY = r"SOFTWARE\WOW6432Node\Microsoft\.NETFramework\v4.0.30319"
# The values of the host's net_framework_tls setting (wuacache_lab.windows.faults) there.
_NET_FRAMEWORK_TLS_VALUES = {
    "system_default_tls_versions": "SystemDefaultTlsVersions",
    "sch_use_strong_crypto": "SchUseStrongCrypto",
}

# Reboot markers the host's state can hold, and what each leaves in the registry.
CBS_REBOOT_PENDING = "cbs_reboot_pending"
WU_REBOOT_REQUIRED = "wu_reboot_required"
PENDING_FILE_RENAME = "pending_file_rename"
REBOOT_MARKERS = (CBS_REBOOT_PENDING, WU_REBOOT_REQUIRED, PENDING_FILE_RENAME)

_WUAUSERV_DISPLAY_NAME = "Windows Update"
_HKLM = re.compile(r"^(?:HKLM:|HKEY_LOCAL_MACHINE|Registry::HKEY_LOCAL_MACHINE)\\?", re.IGNORECASE)
_WQL_EQUALITY = re.compile(r"""^\s*(\w+)\s*=\s*(['"])(.*)\2\s*$""")


class WindowsSystem:
    """What a process running as ``logon`` sees of the host."""

    def __init__(self, host: WindowsHost, logon: LogonSession) -> None:
        self._host = host
        self._logon = logon

    # Environment

    @property
    def environment(self) -> dict[str, str]:
        profile = self._host.profile
        return {
            "COMPUTERNAME": self._host.computer_name,
            "OS": "Windows_NT",
            "PROCESSOR_ARCHITECTURE": profile.environment_architecture,
            "ProgramData": f"{SYSTEM_DRIVE}\\ProgramData",
            "SystemDrive": SYSTEM_DRIVE,
            "SystemRoot": f"{SYSTEM_DRIVE}\\Windows",
            "USERNAME": self._logon.user,
            "windir": f"{SYSTEM_DRIVE}\\Windows",
        }

    def getenv(self, name: str) -> str | None:
        """``$env:<name>``: environment names are case-insensitive."""
        for key, value in self.environment.items():
            if key.casefold() == name.casefold():
                return value
        return None

    # CIM

    def cim_instances(self, class_name: str, wql_filter: str | None = None) -> list[dict[str, Any]]:
        """``Get-CimInstance <class_name> [-Filter <wql_filter>]``; the filter
        may be one ``Property='value'`` equality."""
        classes = {
            "win32_operatingsystem": self._operating_systems,
            "win32_service": self._services,
            "win32_logicaldisk": self._logical_disks,
        }
        try:
            instances = classes[class_name.casefold()]()
        except KeyError:
            raise NotImplementedError(f"the emulated host has no CIM class {class_name}") from None
        if wql_filter is None:
            return instances
        match = _WQL_EQUALITY.match(wql_filter)
        if match is None:
            raise NotImplementedError(
                f"the emulated host only understands Property='value' filters, not {wql_filter!r}"
            )
        name, _, value = match.groups()
        return [
            instance
            for instance in instances
            if any(
                key.casefold() == name.casefold() and str(item).casefold() == value.casefold()
                for key, item in instance.items()
            )
        ]

    def _operating_systems(self) -> list[dict[str, Any]]:
        profile = self._host.profile
        state = self._host.store.read()
        return [
            {
                "Caption": profile.caption,
                "Version": profile.version,
                "BuildNumber": str(profile.build),
                "OSArchitecture": profile.os_architecture,
                "ProductType": profile.product_type,
                "LastBootUpTime": from_iso(state.last_boot_up_time),
                "CSName": self._host.computer_name,
                "OSLanguage": profile.os_language,
                "MUILanguages": list(profile.display_languages),
                "SystemDrive": SYSTEM_DRIVE,
            }
        ]

    def _services(self) -> list[dict[str, Any]]:
        state = self._host.store.read()
        return [
            {
                "Name": "wuauserv",
                "DisplayName": _WUAUSERV_DISPLAY_NAME,
                "StartMode": state.wuauserv_start_mode,
                "State": state.wuauserv_state,
                "Started": state.wuauserv_state == "Running",
            },
            {
                "Name": "WinRM",
                "DisplayName": "Windows Remote Management (WS-Management)",
                "StartMode": "Auto",
                "State": "Running",
                "Started": True,
            },
        ]

    def _logical_disks(self) -> list[dict[str, Any]]:
        disk = self._host.disk
        return [
            {
                "DeviceID": SYSTEM_DRIVE,
                "DriveType": 3,  # local disk
                "FileSystem": "NTFS",
                "FreeSpace": disk.free_bytes(),
                "Size": disk.size_bytes,
            }
        ]

    # Version resources of the system's binaries

    def file_version_info(self, path: str) -> dict[str, int]:
        """``(Get-Item <path>).VersionInfo``, the numbers of its file version.
        wuapi.dll's is the Update Agent's version, which
        ``IWindowsUpdateAgentInfo::GetInfo('ProductVersionString')`` answers
        too (MicrosoftDocs/sdk-api,
        sdk-api-src/content/wuapi/nf-wuapi-iwindowsupdateagentinfo-getinfo.md)."""
        if ntpath.normcase(path) != ntpath.normcase(f"{self.getenv('SystemRoot')}\\System32\\wuapi.dll"):
            raise NotImplementedError(f"the emulated host has no version resource for {path}")
        major, minor, build, private = (int(part) for part in self._host.profile.wua_version.split("."))
        return {"FileMajorPart": major, "FileMinorPart": minor, "FileBuildPart": build, "FilePrivatePart": private}

    # Registry (HKLM only)

    def registry_key_exists(self, key: str) -> bool:
        """``Test-Path <key>``: a key exists when it or one of its subkeys does."""
        wanted = _hklm_relative(key).casefold()
        return any(
            known.casefold() == wanted or known.casefold().startswith(wanted + "\\")
            for known in self._registry(self._host.store.read())
        )

    def registry_values(self, key: str) -> dict[str, Any]:
        """The values of ``key`` (``Get-ItemProperty``); empty if it has none."""
        wanted = _hklm_relative(key).casefold()
        for known, values in self._registry(self._host.store.read()).items():
            if known.casefold() == wanted:
                return dict(values)
        return {}

    def _registry(self, state: HostState) -> dict[str, dict[str, Any]]:
        profile = self._host.profile
        workstation = profile.product_type == 1
        keys: dict[str, dict[str, Any]] = {
            CURRENT_VERSION_KEY: {
                # Windows 11 still says "Windows 10" here; only WMI's Caption is right.
                "ProductName": "Windows 10 Pro" if workstation else profile.caption.removeprefix("Microsoft "),
                "EditionID": profile.edition_id,
                "InstallationType": "Client" if workstation else "Server",
                "CurrentBuild": str(profile.build),
                "CurrentBuildNumber": str(profile.build),
                "CurrentMajorVersionNumber": profile.major_version,
                "CurrentMinorVersionNumber": profile.minor_version,
                "UBR": profile.ubr,
            },
            SESSION_MANAGER_KEY: {},
            WUAUSERV_KEY: {
                "DisplayName": _WUAUSERV_DISPLAY_NAME,
                "Start": _SERVICE_START_VALUES[state.wuauserv_start_mode],
            },
            LSA_KEY: {"NoDefaultAdminOwner": NO_DEFAULT_ADMIN_OWNER[default_owner_policy(self._host)]},
            CBS_INTERFACE_KEY: {
                "ServicingInProgress": 2 if state.startup_until is not None else 1 if state.pending_changes else 0
            },
        }
        keys.update(self._net_framework_keys())
        if state.startup_until is None:
            keys[AUTOLOGON_CHECKED_KEY] = {}
        if CBS_REBOOT_PENDING in state.reboot_markers:
            keys[CBS_REBOOT_PENDING_KEY] = {}
        if WU_REBOOT_REQUIRED in state.reboot_markers:
            keys[WU_REBOOT_REQUIRED_KEY] = {}
        if PENDING_FILE_RENAME in state.reboot_markers:
            keys[SESSION_MANAGER_KEY]["PendingFileRenameOperations"] = [
                "\\??\\C:\\Windows\\WinSxS\\Temp\\PendingRenames\\pending.dll",
                "",
            ]
        return keys

    def _net_framework_keys(self) -> dict[str, dict[str, Any]]:
        """.NET Framework 4's keys, holding the TLS values of the host's ``net_framework_tls`` setting
        (none by default): only 64-bit Windows has the 32-bit view, WOW6432Node."""
        setting = self._host.faults.net_framework_tls()
        values = {name: setting[option] for option, name in _NET_FRAMEWORK_TLS_VALUES.items() if option in setting}
        view = setting.get("view", "both")
        keys = {NET_FRAMEWORK_KEY: values if view in ("both", "native") else {}}
        if self._host.profile.architecture != "x86":
            keys[NET_FRAMEWORK_WOW64_KEY] = values if view in ("both", "wow6432node") else {}
        return keys

    # Service control manager (wuauserv is the only service that can change)

    def set_service_start_mode(self, name: str, startup_type: str) -> None:
        """``Set-Service -StartupType`` (``Automatic``, ``Manual`` or
        ``Disabled``); does not stop a running service."""
        _check_wuauserv(name)
        start_mode = _STARTUP_TYPES.get(str(startup_type).casefold())
        if start_mode is None:
            raise HResultError(
                COR_E_SYSTEM,
                f"Cannot bind parameter 'StartupType'. Cannot convert value \"{startup_type}\" to type "
                '"System.ServiceProcess.ServiceStartMode".',
            )
        with self._host.store.update() as state:
            state.wuauserv_start_mode = start_mode

    def start_service(self, name: str) -> None:
        """``Start-Service``: refused while the service is disabled."""
        _check_wuauserv(name)
        with self._host.store.update() as state:
            if state.wuauserv_start_mode == "Disabled":
                raise HResultError(ERROR_SERVICE_DISABLED)
            state.wuauserv_state = "Running"

    def stop_service(self, name: str) -> None:
        _check_wuauserv(name)
        with self._host.store.update() as state:
            state.wuauserv_state = "Stopped"


def _check_wuauserv(name: str) -> None:
    if name.casefold() != "wuauserv":
        raise NotImplementedError(f"the emulated host only controls wuauserv, not {name}")


def _hklm_relative(key: str) -> str:
    match = _HKLM.match(key)
    if match is None:
        raise NotImplementedError(f"the emulated registry only holds HKEY_LOCAL_MACHINE, not {key}")
    return key[match.end() :].rstrip("\\")
