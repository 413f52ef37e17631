"""``wusa.exe``, the Windows Update Standalone Installer.

``wusa <path.msu> /quiet [/norestart]`` installs the servicing package an
.msu carries. An .msu is a cabinet of ``<name>.cab`` (the servicing package,
:mod:`wuacache_lab.windows.cbs`), ``WSUSSCAN.cab``, ``<name>.xml`` and
``<name>-pkgProperties.txt`` (UTF-16 ``Key="value"`` lines); wusa reads the
KB from the properties' ``KB Article Number``. It exits with
0x00240006 (WU_S_ALREADY_INSTALLED) when that KB is installed, 0x80240017
(WU_E_NOT_APPLICABLE) when the package does not apply to the host, 3010 when
the install completes at the next restart (and without ``/norestart`` the
restart follows at once), 0 otherwise.

The .msu of a combined package also holds ``SSU-<version>-<arch>.cab``, the
servicing stack update, which installs first and for good.

``wusa /uninstall /kb:<number> /quiet [/norestart]`` finds the installed
update or package of that KB and removes it as servicing does: at once, or at
the next restart for one whose install needed one (exit code 3010). It
records the uninstallation of an update in the Windows Update history. It
cannot remove a permanent package, nor the package of a combined package
(:mod:`wuacache_lab.windows.cbs`): Microsoft documents only that it "will not
work", and no exit code; the emulated wusa exits with servicing's error for a
package that cannot be removed, CBS_E_CANNOT_UNINSTALL (0x800F0825), and
removes nothing.

Like the Update Agent, wusa refuses network logons (KB2773898), and fails
with 0x80070422 while the Windows Update service is disabled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wuacache_lab.windows import cbs
from wuacache_lab.windows.errors import E_ACCESSDENIED, ERROR_SERVICE_DISABLED, HResultError, WU_E_NOT_APPLICABLE, signed
from wuacache_lab.windows.process import LogonSession, ProcessResult
from wuacache_lab.windows.state import (
    OPERATION_UNINSTALLATION,
    HistoryEntry,
    InstalledUpdate,
    PendingChange,
    to_iso,
    utc_now,
)
from wuacache_lab.windows.wua import OperationResultCode, commit_change

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost

ERROR_SUCCESS_REBOOT_REQUIRED = 3010
# WU_S_ALREADY_INSTALLED: the KB of the package is installed.
WU_S_ALREADY_INSTALLED = 0x00240006
# WU_S_ALREADY_UNINSTALLED: no installed update has that KB.
WU_S_ALREADY_UNINSTALLED = 0x00240007
# What the history says of the changes wusa makes.
CLIENT_APPLICATION_ID = "wusa"
PROPERTIES_SUFFIX = "-pkgProperties.txt"
# The servicing stack update of a combined package, as Microsoft names it in the .msu.
SERVICING_STACK_PREFIX = "SSU-"


def run_wusa(host: WindowsHost, arguments: list[str], logon: LogonSession) -> ProcessResult:
    """wusa.exe has no console output: its result is its exit code."""
    switches = {argument.casefold() for argument in arguments if argument.startswith("/")}
    packages = [argument for argument in arguments if not argument.startswith("/")]
    kbs = [argument[len("/kb:") :] for argument in switches if argument.startswith("/kb:")]
    uninstall = "/uninstall" in switches and not packages and len(kbs) == 1 and kbs[0].isdigit()
    install = "/uninstall" not in switches and not kbs and len(packages) == 1
    if "/quiet" not in switches or not (install or uninstall):
        raise NotImplementedError("the emulated wusa.exe only installs one .msu or removes the update of one KB, quietly")
    if logon.logon_type == "network" or not logon.administrator:
        return ProcessResult(b"", b"", signed(E_ACCESSDENIED))
    if host.store.peek(lambda state: state.wuauserv_start_mode) == "Disabled":
        # It needs the Windows Update service, which cannot start.
        return ProcessResult(b"", b"", signed(ERROR_SERVICE_DISABLED))
    try:
        exit_code = install_msu(host, packages[0]) if install else uninstall_kb(host, kbs[0])
    except HResultError as error:
        return ProcessResult(b"", b"", signed(error.hresult))
    if exit_code == ERROR_SUCCESS_REBOOT_REQUIRED and "/norestart" not in switches:
        host.restart_for_installer()
    return ProcessResult(b"", b"", exit_code)


def install_msu(host: WindowsHost, path: str) -> int:
    """Install the package of the .msu at ``path``; returns wusa's exit code."""
    msu = cbs.open_cabinet(b"".join(host.disk.read(path)))
    properties_name = next((name for name in msu if name.endswith(PROPERTIES_SUFFIX)), None)
    if properties_name is None:
        raise HResultError(cbs.ERROR_FILE_CORRUPT, f"{path} holds no package properties.")
    name = properties_name.removesuffix(PROPERTIES_SUFFIX)
    kb = read_properties(cbs.member(msu, properties_name)).get("KB Article Number", "")
    package = cbs.read_package(cbs.member(msu, f"{name}.cab"))
    servicing_stacks = [
        cbs.read_package(file.buf)
        for member_name, file in msu.items()
        if member_name.upper().startswith(SERVICING_STACK_PREFIX) and member_name.casefold().endswith(".cab")
    ]
    if host.store.peek(lambda state: state.holder_of_kb(kb) is not None):
        host.log.info("wusa: KB%s is already installed", kb)
        return WU_S_ALREADY_INSTALLED
    if not all(each.applies_to(host.profile) for each in (package, *servicing_stacks)):
        host.log.info("wusa: %s does not apply to this host", package.identity)
        return signed(WU_E_NOT_APPLICABLE)
    installed = host.store.peek(lambda state: frozenset(state.packages))
    for servicing_stack in servicing_stacks:
        if servicing_stack.identity not in installed:
            cbs.install_package(host, servicing_stack)
    servicing_stack_identity = servicing_stacks[0].identity if servicing_stacks else None
    return ERROR_SUCCESS_REBOOT_REQUIRED if cbs.install_package(host, package, servicing_stack=servicing_stack_identity) else 0


def read_properties(data: bytes) -> dict[str, str]:
    """The ``Key="value"`` lines of a ``-pkgProperties.txt``."""
    properties = {}
    for line in data.decode("utf-16").splitlines():
        key, separator, value = line.partition("=")
        if separator:
            properties[key.strip()] = value.strip().strip('"')
    return properties


def uninstall_kb(host: WindowsHost, kb: str) -> int:
    """Remove the installed update or package of ``kb``; returns wusa's exit code."""
    now = to_iso(utc_now())
    with host.store.update() as state:
        holder = state.holder_of_kb(kb)
        if holder is None:
            host.log.info("wusa: nothing installed has KB%s", kb)
            return WU_S_ALREADY_UNINSTALLED
        if isinstance(holder, InstalledUpdate):
            change = PendingChange(
                OPERATION_UNINSTALLATION,
                holder.update_id,
                holder.revision_number,
                holder.title,
                holder.kb_article_ids,
                holder.reboot_behavior,
            )
            state.history.append(
                HistoryEntry(
                    operation=OPERATION_UNINSTALLATION,
                    result_code=OperationResultCode.Succeeded,
                    hresult=0,
                    date=now,
                    update_id=holder.update_id,
                    revision_number=holder.revision_number,
                    title=holder.title,
                    client_application_id=CLIENT_APPLICATION_ID,
                )
            )
            reboot = change.reboot_behavior == "AlwaysRequiresReboot"
            commit_change(state, change, reboot=reboot, when=now)
        elif not cbs.removable(state, holder):
            host.log.info("wusa: %s of KB%s cannot be uninstalled", holder.identity, kb)
            return signed(cbs.CBS_E_CANNOT_UNINSTALL)
        else:
            # A package wusa or DISM installed: no update of the history is its.
            reboot = cbs.uninstall_package(state, holder, now)
    host.log.info("wusa removed KB%s%s", kb, ", restart required" if reboot else "")
    return ERROR_SUCCESS_REBOOT_REQUIRED if reboot else 0
