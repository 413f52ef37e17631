"""``dism.exe``, as far as adding a servicing package to the running Windows goes.

``dism /Online /Add-Package /PackagePath:<path.cab> /Quiet /NoRestart``
installs the servicing package of a cabinet (:mod:`wuacache_lab.windows.cbs`)
through the servicing stack itself, without the Windows Update service. It
needs an elevated administrator (exit code 740 otherwise), exits with
0x800F081E (CBS_E_NOT_APPLICABLE) when the package does not apply to the
host, 3010 when the install completes at the next restart (and without
``/NoRestart`` the restart follows at once), 0 otherwise. A package already
installed is applied again, which changes nothing and exits with 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wuacache_lab.windows import cbs
from wuacache_lab.windows.errors import HResultError, signed
from wuacache_lab.windows.process import LogonSession, ProcessResult

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost

ERROR_SUCCESS_REBOOT_REQUIRED = 3010
# ERROR_ELEVATION_REQUIRED: "Elevated permissions are required to run DISM."
ERROR_ELEVATION_REQUIRED = 740
CBS_E_NOT_APPLICABLE = 0x800F081E
PACKAGE_PATH = "/packagepath:"


def run_dism(host: WindowsHost, arguments: list[str], logon: LogonSession) -> ProcessResult:
    switches = [argument.casefold() for argument in arguments]
    paths = [argument[len(PACKAGE_PATH) :] for argument in arguments if argument.casefold().startswith(PACKAGE_PATH)]
    if "/online" not in switches or "/add-package" not in switches or len(paths) != 1:
        raise NotImplementedError("the emulated dism.exe only adds one package to the running Windows")
    if not logon.administrator:
        return ProcessResult(b"", b"", ERROR_ELEVATION_REQUIRED)
    try:
        package = cbs.read_package(b"".join(host.disk.read(paths[0])))
    except HResultError as error:
        return ProcessResult(b"", b"", signed(error.hresult))
    if not package.applies_to(host.profile):
        host.log.info("dism: %s does not apply to this host", package.identity)
        return ProcessResult(b"", b"", signed(CBS_E_NOT_APPLICABLE))
    if host.store.peek(lambda state: package.identity in state.packages):
        host.log.info("dism: %s is already installed", package.identity)
        return ProcessResult(b"", b"", 0)
    if not cbs.install_package(host, package):
        return ProcessResult(b"", b"", 0)
    if "/norestart" not in switches:
        host.restart_for_installer()
    return ProcessResult(b"", b"", ERROR_SUCCESS_REBOOT_REQUIRED)
