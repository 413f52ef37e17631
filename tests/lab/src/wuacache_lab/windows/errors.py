"""HRESULTs the emulated host reports, and the exception that carries them.

Windows surfaces every failure the bridge can see as an HRESULT
(``$_.Exception.HResult`` in PowerShell), whether it comes from a COM call
into the Windows Update Agent or from a .NET file or web operation. The
simulated APIs raise :class:`HResultError` so the bridge can report the same
numbers a real host would.
"""

from __future__ import annotations

# Win32 errors wrapped as HRESULTs (FACILITY_WIN32).
E_ACCESSDENIED = 0x80070005
E_INVALIDARG = 0x80070057
ERROR_FILE_NOT_FOUND = 0x80070002
ERROR_PATH_NOT_FOUND = 0x80070003
ERROR_SHARING_VIOLATION = 0x80070020
ERROR_DISK_FULL = 0x80070070
ERROR_INVALID_NAME = 0x8007007B
ERROR_ALREADY_EXISTS = 0x800700B7
ERROR_SERVICE_DISABLED = 0x80070422
ERROR_ELEVATION_REQUIRED = 0x800702E4
ERROR_SHUTDOWN_IS_SCHEDULED = 0x800704A6
ERROR_NO_SHUTDOWN_IN_PROGRESS = 0x8007045C
ERROR_ONLY_IF_CONNECTED = 0x800704E3

# COM itself.
REGDB_E_CLASSNOTREG = 0x80040154

# .NET exceptions: SystemException (PowerShell's RuntimeException and its
# kin) and InvalidOperationException (base of WebException).
COR_E_SYSTEM = 0x80131501
COR_E_INVALIDOPERATION = 0x80131509

# Windows Update Agent (wuerror.h).
WU_E_INVALIDINDEX = 0x80240007
WU_E_INSTALL_NOT_ALLOWED = 0x80240016
WU_E_NOT_APPLICABLE = 0x80240017
WU_E_ALL_UPDATES_FAILED = 0x80240022
WU_E_EULAS_DECLINED = 0x80240023
WU_E_NO_UPDATE = 0x80240024
WU_E_INVALID_CRITERIA = 0x80240032
WU_E_UH_NEEDANOTHERDOWNLOAD = 0x8024200D
WU_E_PT_WINHTTP_NAME_NOT_RESOLVED = 0x8024402C
WU_E_DM_NOTDOWNLOADED = 0x80246007
WU_E_OL_INVALID_SCANFILE = 0x80247001
WU_E_DS_UNKNOWNSERVICE = 0x80248014

# Task Scheduler (winerror.h): SCHED_S_ codes are LastTaskResult values.
SCHED_S_TASK_HAS_NOT_RUN = 0x00041303
SCHED_S_TASK_TERMINATED = 0x00041306
SCHED_E_MISSINGNODE = 0x80041319
SCHED_E_TASK_DISABLED = 0x80041326

_MESSAGES = {
    E_ACCESSDENIED: "Access is denied.",
    E_INVALIDARG: "The parameter is incorrect.",
    ERROR_FILE_NOT_FOUND: "The system cannot find the file specified.",
    ERROR_PATH_NOT_FOUND: "The system cannot find the path specified.",
    ERROR_DISK_FULL: "There is not enough space on the disk.",
    ERROR_INVALID_NAME: "The filename, directory name, or volume label syntax is incorrect.",
    ERROR_ALREADY_EXISTS: "Cannot create a file when that file already exists.",
    ERROR_SHUTDOWN_IS_SCHEDULED: "A system shutdown has already been scheduled.",
    ERROR_NO_SHUTDOWN_IN_PROGRESS: "Unable to abort the system shutdown because no shutdown was in progress.",
    ERROR_ONLY_IF_CONNECTED: "This operation is supported only when you are connected to the server.",
    SCHED_E_MISSINGNODE: "The task XML is missing a required element or attribute.",
    SCHED_E_TASK_DISABLED: "The task is disabled.",
    REGDB_E_CLASSNOTREG: "Class not registered",
    ERROR_SERVICE_DISABLED: (
        "The service cannot be started, either because it is disabled or because it has no enabled "
        "devices associated with it."
    ),
}


def default_message(hresult: int) -> str:
    """The text Windows gives an HRESULT; WUA codes have none of their own."""
    return _MESSAGES.get(hresult, f"Exception from HRESULT: 0x{hresult:08X}")


def signed(hresult: int) -> int:
    """An HRESULT as the signed 32-bit integer .NET reports."""
    return hresult - (1 << 32) if hresult & 0x80000000 else hresult


class HResultError(Exception):
    """A failed Windows API call, with the HRESULT the caller would see."""

    def __init__(self, hresult: int, message: str | None = None) -> None:
        self.hresult = hresult
        self.message = message or default_message(hresult)
        super().__init__(f"0x{hresult:08X}: {self.message}")


class COMError(HResultError):
    """A failed call into a COM object (the Windows Update Agent API)."""
