"""``wusa.exe``, the Windows Update Standalone Installer, as far as removing
an update goes.

``wusa /uninstall /kb:<number> /quiet [/norestart]`` finds the installed
update of that KB and removes it as servicing does: at once, or at the next
restart for an update whose install needed one (exit code 3010, and without
``/norestart`` the restart follows at once). It records the uninstallation
in the Windows Update history. Like the Update Agent, it refuses network
logons (KB2773898), and fails with 0x80070422 while the Windows Update
service is disabled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wuacache_lab.windows.errors import E_ACCESSDENIED, ERROR_SERVICE_DISABLED, HResultError, signed
from wuacache_lab.windows.process import LogonSession, ProcessResult
from wuacache_lab.windows.state import OPERATION_UNINSTALLATION, HistoryEntry, PendingChange, to_iso, utc_now
from wuacache_lab.windows.wua import OperationResultCode, commit_change

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost

ERROR_SUCCESS_REBOOT_REQUIRED = 3010
# WU_S_ALREADY_UNINSTALLED: no installed update has that KB.
WU_S_ALREADY_UNINSTALLED = 0x00240007
# What the history says of the changes wusa makes.
CLIENT_APPLICATION_ID = "wusa"


def run_wusa(host: WindowsHost, arguments: list[str], logon: LogonSession) -> ProcessResult:
    """wusa.exe has no console output: its result is its exit code."""
    switches = {argument.casefold() for argument in arguments}
    kbs = [argument[len("/kb:") :] for argument in switches if argument.startswith("/kb:")]
    if "/uninstall" not in switches or "/quiet" not in switches or len(kbs) != 1 or not kbs[0].isdigit():
        raise NotImplementedError("the emulated wusa.exe only removes the update of one KB, quietly")
    if logon.logon_type == "network" or not logon.administrator:
        return ProcessResult(b"", b"", signed(E_ACCESSDENIED))
    if host.store.peek(lambda state: state.wuauserv_start_mode) == "Disabled":
        # It needs the Windows Update service, which cannot start.
        return ProcessResult(b"", b"", signed(ERROR_SERVICE_DISABLED))
    exit_code = uninstall_kb(host, kbs[0])
    if exit_code == ERROR_SUCCESS_REBOOT_REQUIRED and "/norestart" not in switches:
        try:
            host.reboot()
        except HResultError:
            pass  # a restart is already on its way
    return ProcessResult(b"", b"", exit_code)


def uninstall_kb(host: WindowsHost, kb: str) -> int:
    """Remove the installed update of ``kb``; returns wusa's exit code."""
    now = to_iso(utc_now())
    with host.store.update() as state:
        leaving = {change.update_id for change in state.pending_changes if change.operation == OPERATION_UNINSTALLATION}
        installed = next(
            (
                update
                for update in state.installed.values()
                if kb in update.kb_article_ids and update.update_id not in leaving
            ),
            None,
        )
        if installed is None:
            host.log.info("wusa: no installed update has KB%s", kb)
            return WU_S_ALREADY_UNINSTALLED
        reboot = installed.reboot_behavior == "AlwaysRequiresReboot"
        change = PendingChange(
            OPERATION_UNINSTALLATION,
            installed.update_id,
            installed.revision_number,
            installed.title,
            installed.kb_article_ids,
            installed.reboot_behavior,
        )
        commit_change(state, change, reboot=reboot, when=now)
        state.history.append(
            HistoryEntry(
                operation=OPERATION_UNINSTALLATION,
                result_code=OperationResultCode.Succeeded,
                hresult=0,
                date=now,
                update_id=installed.update_id,
                revision_number=installed.revision_number,
                title=installed.title,
                client_application_id=CLIENT_APPLICATION_ID,
            )
        )
    host.log.info("wusa removed KB%s (%s)%s", kb, installed.update_id, ", restart required" if reboot else "")
    return ERROR_SUCCESS_REBOOT_REQUIRED if reboot else 0
