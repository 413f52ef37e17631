"""``dism.exe``, as far as adding a servicing package to the running Windows goes.

``dism /Online /Add-Package /PackagePath:<path.cab> /Quiet /NoRestart``
installs the servicing package of a cabinet (:mod:`wuacache_lab.windows.cbs`)
through the servicing stack itself, without the Windows Update service. It
needs an elevated administrator (exit code 740 otherwise), exits with
0x800F081E (CBS_E_NOT_APPLICABLE) when the package does not apply to the
host, 3010 when the install completes at the next restart (and without
``/NoRestart`` the restart follows at once), 0 otherwise. A package already
installed is applied again, which changes nothing and exits with 0; one whose
install waits for a restart exits with 3010 again, still waiting.

``Get-WindowsPackage -Online -PackagePath <path.cab>`` (the DISM PowerShell
module, :func:`get_windows_package`) gives the cabinet's package as an
``AdvancedPackageObject``: its ``PackageName``, its ``PackageState`` on the
running Windows and whether it is ``Applicable``. Like dism.exe, it serves
elevated administrators only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from wuacache_lab.powershell.commands import CmdletCall, cmdlet
from wuacache_lab.powershell.conversions import to_string
from wuacache_lab.powershell.dotnet import dotnet_type, register_enum
from wuacache_lab.powershell.errors import NOT_SPECIFIED, DotNetException, ErrorRecord, InvocationInfo, LabLimitation, PowerShellError
from wuacache_lab.powershell.values import EnumValue
from wuacache_lab.windows import cbs
from wuacache_lab.windows.errors import ERROR_ELEVATION_REQUIRED, HResultError, default_message, signed
from wuacache_lab.windows.process import LogonSession, ProcessResult
from wuacache_lab.windows.runtime import host_runtime
from wuacache_lab.windows.state import OPERATION_INSTALLATION, OPERATION_UNINSTALLATION, HostState

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost

ERROR_SUCCESS_REBOOT_REQUIRED = 3010
# dism.exe exits with the Win32 code of ERROR_ELEVATION_REQUIRED: "Elevated
# permissions are required to run DISM."
EXIT_ELEVATION_REQUIRED = 740
CBS_E_NOT_APPLICABLE = 0x800F081E
PACKAGE_PATH = "/packagepath:"

# The states of a package (the DISM API's DismPackageFeatureState enumeration, learn.microsoft.com
# windows-hardware/manufacture/desktop/dism/dismpackagefeaturestate-enumeration), as the DISM module names them.
PACKAGE_FEATURE_STATE = register_enum(
    "Microsoft.Dism.Commands.PackageFeatureState",
    {
        "NotPresent": 0,
        "UninstallPending": 1,
        "Staged": 2,
        "Removed": 3,
        "Installed": 4,
        "InstallPending": 5,
        "Superseded": 6,
        "PartiallyInstalled": 7,
    },
)
# Those the emulated servicing stack can be in.
NOT_PRESENT = "NotPresent"
INSTALLED = "Installed"
INSTALL_PENDING = "InstallPending"
UNINSTALL_PENDING = "UninstallPending"


def run_dism(host: WindowsHost, arguments: list[str], logon: LogonSession) -> ProcessResult:
    switches = [argument.casefold() for argument in arguments]
    paths = [argument[len(PACKAGE_PATH) :] for argument in arguments if argument.casefold().startswith(PACKAGE_PATH)]
    if "/online" not in switches or "/add-package" not in switches or len(paths) != 1:
        raise NotImplementedError("the emulated dism.exe only adds one package to the running Windows")
    if not logon.administrator:
        return ProcessResult(b"", b"", EXIT_ELEVATION_REQUIRED)
    try:
        package = cbs.read_package(b"".join(host.disk.read(paths[0])))
    except HResultError as error:
        return ProcessResult(b"", b"", signed(error.hresult))
    if not package.applies_to(host.profile):
        host.log.info("dism: %s does not apply to this host", package.identity)
        return ProcessResult(b"", b"", signed(CBS_E_NOT_APPLICABLE))
    state = host.store.peek(lambda state: package_state(state, package.identity))
    if state == INSTALLED:
        host.log.info("dism: %s is already installed", package.identity)
        return ProcessResult(b"", b"", 0)
    if state == INSTALL_PENDING:
        host.log.info("dism: %s is installed at the next restart", package.identity)
        return ProcessResult(b"", b"", ERROR_SUCCESS_REBOOT_REQUIRED)
    if not cbs.install_package(host, package):
        return ProcessResult(b"", b"", 0)
    if "/norestart" not in switches:
        host.restart_for_installer()
    return ProcessResult(b"", b"", ERROR_SUCCESS_REBOOT_REQUIRED)


def package_state(state: HostState, identity: str) -> str:
    """The ``PackageState`` of the servicing package ``identity`` on the host."""
    changes = {change.operation for change in state.pending_changes if change.package == identity}
    if identity in state.packages:
        return UNINSTALL_PENDING if OPERATION_UNINSTALLATION in changes else INSTALLED
    return INSTALL_PENDING if OPERATION_INSTALLATION in changes else NOT_PRESENT


@dotnet_type("Microsoft.Dism.Commands.AdvancedPackageObject")
class AdvancedPackageObject:
    """What ``Get-WindowsPackage -PackagePath`` gives of a package."""

    def __init__(self, package: cbs.ServicingPackage, state: str, applicable: bool) -> None:
        self._package = package
        self._state = state
        self._applicable = applicable

    @property
    def PackageName(self) -> str:  # noqa: N802 - the DISM module's member name
        return self._package.identity

    @property
    def PackageState(self) -> EnumValue:  # noqa: N802
        return EnumValue(PACKAGE_FEATURE_STATE, PACKAGE_FEATURE_STATE.value_of(self._state))  # type: ignore[arg-type]

    @property
    def Applicable(self) -> bool:  # noqa: N802
        return self._applicable

    @property
    def RestartRequired(self) -> str:  # noqa: N802
        return "Required" if self._package.restart else "Possible"


@cmdlet("Get-WindowsPackage")
def get_windows_package(call: CmdletCall) -> Iterable[object]:
    """``-Online -PackagePath <cab>``: the package of a cabinet and its state on the running Windows.

    A failure of the servicing stack is a terminating COMException with its
    HRESULT, whose FullyQualifiedErrorId is the cmdlet's class alone, as the
    DISM module reports its errors.
    """
    runtime = host_runtime()
    host = runtime.host
    for parameters in call.records:
        if call.parameter_set != "Online" or "PackagePath" not in parameters:
            raise LabLimitation("The lab's Get-WindowsPackage reads one package of the running Windows (-Online -PackagePath).")
        path = to_string(parameters["PackagePath"])
        try:
            if not runtime.logon.administrator:
                raise HResultError(ERROR_ELEVATION_REQUIRED, "The requested operation requires elevation.")
            package = cbs.read_package(b"".join(host.disk.read(path)))
        except HResultError as error:
            exception = DotNetException("System.Runtime.InteropServices.COMException", error.message or default_message(error.hresult), hresult=error.hresult)
            record = ErrorRecord(exception, call.error_source, NOT_SPECIFIED, None, InvocationInfo(call.name, call.extent))
            raise PowerShellError(exception, record) from None
        state = host.store.peek(lambda current: package_state(current, package.identity))
        yield AdvancedPackageObject(package, state, package.applies_to(host.profile))
