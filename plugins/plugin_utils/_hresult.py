# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Names and descriptions of the HRESULTs a Windows host can report.

Windows has no call that turns a Windows Update Agent HRESULT into text, so the
controller keeps this table. Names and descriptions follow Microsoft's
"Windows Update error codes by component" (wuerror.h), winerror.h and the
.NET exception HRESULTs that PowerShell surfaces.
"""

# FOR INTERNAL COLLECTION USE ONLY: may change in any release.

from __future__ import annotations

from typing import NamedTuple


class HResultInfo(NamedTuple):
    """An HRESULT as the controller reports it.

    ``code`` is the unsigned hexadecimal form Microsoft documents (``0x80070005``);
    ``name`` and ``description`` are None for a code this table does not know.
    """

    code: str
    name: str | None
    description: str | None


_HRESULTS: dict[int, tuple[str, str]] = {
    # Windows Update Agent success codes
    0x00240001: ("WU_S_SERVICE_STOP", "Windows Update Agent was stopped successfully"),
    0x00240002: ("WU_S_SELFUPDATE", "Windows Update Agent updated itself"),
    0x00240003: ("WU_S_UPDATE_ERROR", "Operation completed successfully but there were errors applying the updates"),
    0x00240005: ("WU_S_REBOOT_REQUIRED", "The system must be restarted to complete installation of the update"),
    0x00240006: ("WU_S_ALREADY_INSTALLED", "The update to be installed is already installed on the system"),
    0x00240007: ("WU_S_ALREADY_UNINSTALLED", "The update to be removed is not installed on the system"),
    0x00240008: ("WU_S_ALREADY_DOWNLOADED", "The update to be downloaded has already been downloaded"),
    # Windows Update Agent errors
    0x80240001: ("WU_E_NO_SERVICE", "Windows Update Agent was unable to provide the service"),
    0x80240003: ("WU_E_UNKNOWN_ID", "An ID cannot be found"),
    0x80240004: ("WU_E_NOT_INITIALIZED", "The object could not be initialized"),
    0x80240007: ("WU_E_INVALIDINDEX", "The index to a collection was invalid"),
    0x80240008: ("WU_E_ITEMNOTFOUND", "The key for the item queried could not be found"),
    0x80240009: ("WU_E_OPERATIONINPROGRESS", "Another conflicting operation was in progress"),
    0x8024000A: ("WU_E_COULDNOTCANCEL", "Cancellation of the operation was not allowed"),
    0x8024000B: ("WU_E_CALL_CANCELLED", "Operation was cancelled"),
    0x8024000C: ("WU_E_NOOP", "No operation was required"),
    0x8024000D: ("WU_E_XML_MISSINGDATA", "Windows Update Agent could not find required information in the update's XML data"),
    0x8024000E: ("WU_E_XML_INVALID", "Windows Update Agent found invalid information in the update's XML data"),
    0x80240016: ("WU_E_INSTALL_NOT_ALLOWED",
                 "Operation tried to install while another installation was in progress or the system was pending a mandatory restart"),
    0x80240017: ("WU_E_NOT_APPLICABLE", "Operation was not performed because there are no applicable updates"),
    0x80240018: ("WU_E_NO_USERTOKEN", "Operation failed because a required user token is missing"),
    0x80240019: ("WU_E_EXCLUSIVE_INSTALL_CONFLICT", "An exclusive update cannot be installed with other updates at the same time"),
    0x8024001B: ("WU_E_SELFUPDATE_IN_PROGRESS", "The operation could not be performed because the Windows Update Agent is self-updating"),
    0x8024001D: ("WU_E_INVALID_UPDATE", "An update contains invalid metadata"),
    0x8024001E: ("WU_E_SERVICE_STOP", "Operation did not complete because the service or system was being shut down"),
    0x8024001F: ("WU_E_NO_CONNECTION", "Operation did not complete because the network connection was unavailable"),
    0x80240020: ("WU_E_NO_INTERACTIVE_USER", "Operation did not complete because there is no logged-on interactive user"),
    0x80240021: ("WU_E_TIME_OUT", "Operation did not complete because it timed out"),
    0x80240022: ("WU_E_ALL_UPDATES_FAILED", "Operation failed for all the updates"),
    0x80240023: ("WU_E_EULAS_DECLINED", "The license terms for all updates were declined"),
    0x80240024: ("WU_E_NO_UPDATE", "There are no updates"),
    0x80240025: ("WU_E_USER_ACCESS_DISABLED", "Group Policy settings prevented access to Windows Update"),
    0x80240026: ("WU_E_INVALID_UPDATE_TYPE", "The type of update is invalid"),
    0x8024002A: ("WU_E_MISSING_HANDLER", "A component required to detect applicable updates was missing"),
    0x8024002C: ("WU_E_BIN_SOURCE_ABSENT", "A delta-compressed update could not be installed because it required the source"),
    0x8024002D: ("WU_E_SOURCE_ABSENT", "A full-file update could not be installed because it required the source"),
    0x8024002E: ("WU_E_WU_DISABLED", "Access to an unmanaged server is not allowed"),
    0x8024002F: ("WU_E_CALL_CANCELLED_BY_POLICY", "Operation did not complete because the DisableWindowsUpdateAccess policy was set"),
    0x80240031: ("WU_E_INVALID_FILE", "The file is in the wrong format"),
    0x80240032: ("WU_E_INVALID_CRITERIA", "The search criteria string was invalid"),
    0x80240034: ("WU_E_DOWNLOAD_FAILED", "Update failed to download"),
    0x80240035: ("WU_E_UPDATE_NOT_PROCESSED", "The update was not processed"),
    0x80240036: ("WU_E_INVALID_OPERATION", "The object's current state did not allow the operation"),
    0x80240037: ("WU_E_NOT_SUPPORTED", "The functionality for the operation is not supported"),
    0x80240040: ("WU_E_NO_SERVER_CORE_SUPPORT", "WUA API method does not run on Server Core installation"),
    0x80240041: ("WU_E_SYSPREP_IN_PROGRESS", "Service is not available while sysprep is running"),
    0x80240042: ("WU_E_UNKNOWN_SERVICE", "The update service is no longer registered with AU"),
    0x80240438: ("WU_E_PT_ENDPOINT_UNREACHABLE", "There is no route or network connectivity to the endpoint"),
    0x80240FFF: ("WU_E_UNEXPECTED", "An operation failed due to reasons not covered by another error code"),
    0x80242006: ("WU_E_UH_INVALIDMETADATA", "A handler operation could not be completed because the update contains invalid metadata"),
    0x80242007: ("WU_E_UH_INSTALLERHUNG", "An operation could not be completed because the installer exceeded the time limit"),
    0x80242008: ("WU_E_UH_OPERATIONCANCELLED", "An operation being done by the update handler was cancelled"),
    0x8024200A: ("WU_E_UH_CANREQUIREINPUT",
                 "A request to the handler to install an update could not be completed because the update requires user input"),
    0x8024200B: ("WU_E_UH_INSTALLERFAILURE", "The installer failed to install (uninstall) one or more updates"),
    0x8024200D: ("WU_E_UH_NEEDANOTHERDOWNLOAD", "The update handler did not install the update because it needs to be downloaded again"),
    0x80242014: ("WU_E_UH_POSTREBOOTSTILLPENDING", "The post-reboot operation for the update is still in progress"),
    0x80242015: ("WU_E_UH_POSTREBOOTRESULTUNKNOWN", "The result of the post-reboot operation for the update could not be determined"),
    0x80242017: ("WU_E_UH_NEW_SERVICING_STACK_REQUIRED",
                 "The OS servicing stack must be updated before this update is downloaded or installed"),
    0x80242FFF: ("WU_E_UH_UNEXPECTED", "An update handler error not covered by another WU_E_UH_* code"),
    0x80244017: ("WU_E_PT_HTTP_STATUS_DENIED", "Same as HTTP status 401 - the requested resource requires user authentication"),
    0x80244018: ("WU_E_PT_HTTP_STATUS_FORBIDDEN", "Same as HTTP status 403 - server understood the request, but declined to fulfill it"),
    0x80244019: ("WU_E_PT_HTTP_STATUS_NOT_FOUND", "Same as HTTP status 404 - the server cannot find the requested URI"),
    0x8024401B: ("WU_E_PT_HTTP_STATUS_PROXY_AUTH_REQ", "Same as HTTP status 407 - proxy authentication is required"),
    0x8024401F: ("WU_E_PT_HTTP_STATUS_SERVER_ERROR", "Same as HTTP status 500 - an error internal to the server prevented fulfilling the request"),
    0x80244022: ("WU_E_PT_HTTP_STATUS_SERVICE_UNAVAIL", "Same as HTTP status 503 - the service is temporarily overloaded"),
    0x8024402C: ("WU_E_PT_WINHTTP_NAME_NOT_RESOLVED", "The proxy server or target server name cannot be resolved"),
    0x80246001: ("WU_E_DM_URLNOTAVAILABLE", "A download manager operation could not be completed because the requested file does not have a URL"),
    0x80246002: ("WU_E_DM_INCORRECTFILEHASH",
                 "A download manager operation could not be completed because the file digest was not recognized"),
    0x80246005: ("WU_E_DM_NONETWORK", "A download manager operation could not be completed because the network connection was unavailable"),
    0x80246007: ("WU_E_DM_NOTDOWNLOADED", "The update has not been downloaded"),
    0x80246008: ("WU_E_DM_FAILTOCONNECTTOBITS",
                 "A download manager operation failed because the download manager was unable to connect to BITS"),
    0x80246FFF: ("WU_E_DM_UNEXPECTED", "A download manager error not covered by another WU_E_DM_* code"),
    0x80247001: ("WU_E_OL_INVALID_SCANFILE", "An operation could not be completed because the scan package was invalid"),
    0x80247002: ("WU_E_OL_NEWCLIENT_REQUIRED",
                 "An operation could not be completed because the scan package requires a greater version of the Windows Update Agent"),
    0x80247FFF: ("WU_E_OL_UNEXPECTED", "Search using the scan package failed"),
    0x8024A000: ("WU_E_AU_NOSERVICE", "Automatic Updates was unable to service incoming requests"),
    # COM and Win32 errors (HRESULT_FROM_WIN32 for the 0x8007xxxx ones)
    0x80004001: ("E_NOTIMPL", "Not implemented"),
    0x80004002: ("E_NOINTERFACE", "No such interface supported"),
    0x80004003: ("E_POINTER", "Invalid pointer"),
    0x80004004: ("E_ABORT", "Operation aborted"),
    0x80004005: ("E_FAIL", "Unspecified failure"),
    0x8000FFFF: ("E_UNEXPECTED", "Catastrophic failure"),
    0x80010108: ("RPC_E_DISCONNECTED", "The object invoked has disconnected from its clients"),
    0x80040154: ("REGDB_E_CLASSNOTREG", "Class not registered"),
    0x80080005: ("CO_E_SERVER_EXEC_FAILURE", "Server execution failed"),
    0x80070002: ("ERROR_FILE_NOT_FOUND", "The system cannot find the file specified"),
    0x80070003: ("ERROR_PATH_NOT_FOUND", "The system cannot find the path specified"),
    0x80070005: ("E_ACCESSDENIED", "Access is denied (WUA refuses some calls from a remote logon such as WinRM)"),
    0x80070008: ("ERROR_NOT_ENOUGH_MEMORY", "Not enough memory resources are available to process this command"),
    0x8007000E: ("E_OUTOFMEMORY", "Not enough memory resources are available to complete this operation"),
    0x80070020: ("ERROR_SHARING_VIOLATION", "The process cannot access the file because it is being used by another process"),
    0x80070057: ("E_INVALIDARG", "One or more arguments are invalid"),
    0x80070070: ("ERROR_DISK_FULL", "There is not enough space on the disk"),
    0x8007007B: ("ERROR_INVALID_NAME", "The filename, directory name, or volume label syntax is incorrect"),
    0x800700AA: ("ERROR_BUSY", "The requested resource is in use (another wuacache run holds the host)"),
    0x800700B7: ("ERROR_ALREADY_EXISTS", "Cannot create a file when that file already exists"),
    0x80070422: ("ERROR_SERVICE_DISABLED",
                 "The service cannot be started, either because it is disabled or because it has no enabled devices associated with it"),
    0x8007045B: ("ERROR_SHUTDOWN_IN_PROGRESS", "A system shutdown is in progress"),
    0x800704C7: ("ERROR_CANCELLED", "The operation was canceled by the user"),
    0x800705B4: ("ERROR_TIMEOUT", "This operation returned because the timeout period expired"),
    0x80070643: ("ERROR_INSTALL_FAILURE", "Fatal error during installation"),
    0x80070652: ("ERROR_INSTALL_ALREADY_RUNNING", "Another installation is already in progress"),
    0x800706BA: ("RPC_S_SERVER_UNAVAILABLE", "The RPC server is unavailable"),
    0x800706BE: ("RPC_S_CALL_FAILED", "The remote procedure call failed"),
    0x80070BC2: ("ERROR_SUCCESS_REBOOT_REQUIRED",
                 "The requested operation is successful. Changes will not be effective until the system is rebooted"),
    0x80070BC9: ("ERROR_FAIL_REBOOT_REQUIRED",
                 "The requested operation failed. A system reboot is required to roll back changes made"),
    # Component Based Servicing, as DISM and wusa.exe report its errors
    0x800F0805: ("CBS_E_INVALID_PACKAGE", "The package is not a valid Windows package, or servicing does not know it"),
    0x800F081E: ("CBS_E_NOT_APPLICABLE", "The package is not applicable to this computer"),
    0x800F0825: ("CBS_E_CANNOT_UNINSTALL", "The package cannot be uninstalled"),
    # Authenticode (WinVerifyTrust), as reported for a scan package that is not properly signed
    0x800B0004: ("TRUST_E_SUBJECT_NOT_TRUSTED", "The subject is not trusted for the specified action"),
    0x800B0100: ("TRUST_E_NOSIGNATURE", "No signature was present in the subject"),
    0x800B0101: ("CERT_E_EXPIRED", "A required certificate is not within its validity period"),
    0x800B0109: ("CERT_E_UNTRUSTEDROOT", "A certificate chain processed, but terminated in a root certificate which is not trusted"),
    0x80096010: ("TRUST_E_BAD_DIGEST", "The digital signature of the object did not verify"),
    # Task Scheduler, as IRegisteredTask.LastTaskResult or the errors of its API
    0x00041300: ("SCHED_S_TASK_READY", "The task is ready to run at its next scheduled time"),
    0x00041301: ("SCHED_S_TASK_RUNNING", "The task is currently running"),
    0x00041303: ("SCHED_S_TASK_HAS_NOT_RUN", "The task has not yet run"),
    0x00041306: ("SCHED_S_TASK_TERMINATED", "The last run of the task was terminated by the user"),
    0x80041315: ("SCHED_E_SERVICE_NOT_RUNNING", "The Task Scheduler service is not running"),
    0x80041326: ("SCHED_E_TASK_DISABLED", "The task is disabled"),
    # WMI, as reported by the CIM cmdlets
    0x80041001: ("WBEM_E_FAILED", "Call failed"),
    0x80041002: ("WBEM_E_NOT_FOUND", "Object cannot be found"),
    0x80041003: ("WBEM_E_ACCESS_DENIED", "Current user does not have permission to perform the action"),
    0x80041010: ("WBEM_E_INVALID_CLASS", "Specified class is not valid"),
    0x80041017: ("WBEM_E_INVALID_QUERY", "Query was not syntactically valid"),
    # .NET exceptions, which PowerShell reports with these HRESULTs
    0x80131500: ("COR_E_EXCEPTION", "A .NET exception without a more specific HRESULT; see the message"),
    0x80131501: ("COR_E_SYSTEM", "A PowerShell runtime error; see the message"),
    0x80131505: ("COR_E_TIMEOUT", "The operation has timed out"),
    0x80131509: ("COR_E_INVALIDOPERATION", "Operation is not valid due to the current state of the object"),
    0x80131515: ("COR_E_NOTSUPPORTED", "Specified method is not supported"),
    0x80131620: ("COR_E_IO", "I/O error occurred"),
}


def describe(hresult: int) -> HResultInfo:
    """Describe an HRESULT given as the signed 32-bit value .NET reports or its unsigned form."""
    code = hresult & 0xFFFFFFFF
    name, description = _HRESULTS.get(code, (None, None))
    return HResultInfo(f"0x{code:08X}", name, description)
