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
running Windows and whether it is ``Applicable``. ``Get-WindowsPackage
-Online`` lists the packages of the running Windows (``BasicPackageObject``:
``PackageName``, ``PackageState``), and ``-PackageName <name>`` gives one of
them in detail, with the ``Description`` and ``SupportInformation`` of its
manifest. ``Remove-WindowsPackage -Online -PackageName <name> -NoRestart``
removes one, at once or at the next restart (``RestartNeeded`` of the
``ImageObject`` it answers), and refuses a permanent one. The members of these
objects are those of the DISM API's ``DismPackage`` and ``DismPackageInfo``
structures (learn.microsoft.com
windows-hardware/manufacture/desktop/dism/dismpackage-structure and
dismpackageinfo-structure); Microsoft's PowerShell reference names the output
types only. Like dism.exe, the cmdlets serve elevated administrators only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from wuacache_lab.powershell.commands import CmdletCall, cmdlet, is_switch
from wuacache_lab.powershell.conversions import to_string
from wuacache_lab.powershell.dotnet import dotnet_type, register_enum
from wuacache_lab.powershell.errors import NOT_SPECIFIED, DotNetException, ErrorRecord, InvocationInfo, LabLimitation, PowerShellError
from wuacache_lab.powershell.values import EnumValue
from wuacache_lab.windows import cbs
from wuacache_lab.windows.errors import ERROR_ELEVATION_REQUIRED, HResultError, default_message, signed
from wuacache_lab.windows.process import LogonSession, ProcessResult
from wuacache_lab.windows.runtime import host_runtime
from wuacache_lab.windows.state import (
    OPERATION_INSTALLATION,
    OPERATION_UNINSTALLATION,
    HostState,
    PackageManifest,
    to_iso,
    utc_now,
)

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


def online_packages(state: HostState) -> list[str]:
    """The packages of the running Windows: installed, or waiting for a restart to be."""
    pending = [change.package for change in state.pending_changes if change.package and change.operation == OPERATION_INSTALLATION]
    return list(dict.fromkeys([*state.packages, *pending]))


def _state_value(state: str) -> EnumValue:
    return EnumValue(PACKAGE_FEATURE_STATE, PACKAGE_FEATURE_STATE.value_of(state))  # type: ignore[arg-type]


@dotnet_type("Microsoft.Dism.Commands.BasicPackageObject")
class BasicPackageObject:
    """What ``Get-WindowsPackage -Online`` lists of each package (``DismPackage``)."""

    def __init__(self, identity: str, state: str) -> None:
        self._identity = identity
        self._state = state

    @property
    def PackageName(self) -> str:  # noqa: N802 - the DISM module's member name
        return self._identity

    @property
    def PackageState(self) -> EnumValue:  # noqa: N802
        return _state_value(self._state)


@dotnet_type("Microsoft.Dism.Commands.AdvancedPackageObject", base="Microsoft.Dism.Commands.BasicPackageObject")
class AdvancedPackageObject(BasicPackageObject):
    """What ``Get-WindowsPackage -PackagePath`` or ``-PackageName`` gives of a package (``DismPackageInfo``)."""

    def __init__(self, identity: str, state: str, *, applicable: bool, restart: bool, manifest: PackageManifest | None) -> None:
        super().__init__(identity, state)
        self._applicable = applicable
        self._restart = restart
        self._manifest = manifest or PackageManifest(identity)

    @property
    def Applicable(self) -> bool:  # noqa: N802
        return self._applicable

    @property
    def RestartRequired(self) -> str:  # noqa: N802
        return "Required" if self._restart else "Possible"

    @property
    def Description(self) -> str:  # noqa: N802
        return self._manifest.description

    @property
    def SupportInformation(self) -> str:  # noqa: N802
        return self._manifest.support_information


@dotnet_type("Microsoft.Dism.Commands.ImageObject")
class ImageObject:
    """What ``Remove-WindowsPackage -Online`` answers: the running Windows, and whether a restart completes the change."""

    def __init__(self, restart_needed: bool) -> None:
        self._restart_needed = restart_needed

    @property
    def Online(self) -> bool:  # noqa: N802
        return True

    @property
    def RestartNeeded(self) -> bool:  # noqa: N802
        return self._restart_needed


def _servicing_error(call: CmdletCall, error: HResultError) -> PowerShellError:
    """A failure of the servicing stack: a terminating COMException with its HRESULT, whose
    FullyQualifiedErrorId is the cmdlet's class alone, as the DISM module reports its errors."""
    exception = DotNetException("System.Runtime.InteropServices.COMException", error.message or default_message(error.hresult), hresult=error.hresult)
    record = ErrorRecord(exception, call.error_source, NOT_SPECIFIED, None, InvocationInfo(call.name, call.extent))
    return PowerShellError(exception, record)


def _require_elevation() -> None:
    if not host_runtime().logon.administrator:
        raise HResultError(ERROR_ELEVATION_REQUIRED, "The requested operation requires elevation.")


@cmdlet("Get-WindowsPackage")
def get_windows_package(call: CmdletCall) -> Iterable[object]:
    """``-Online``: the packages of the running Windows; ``-PackagePath <cab>``: the package of a
    cabinet and its state; ``-PackageName <name>``: one package of the running Windows in detail."""
    host = host_runtime().host
    for parameters in call.records:
        if call.parameter_set != "Online" or ("PackagePath" in parameters and "PackageName" in parameters):
            raise LabLimitation("The lab's Get-WindowsPackage reads the running Windows (-Online), by -PackagePath or -PackageName.")
        try:
            _require_elevation()
            if "PackagePath" in parameters:
                package = cbs.read_package(b"".join(host.disk.read(to_string(parameters["PackagePath"]))))
                state = host.store.peek(lambda current: package_state(current, package.identity))
                yield AdvancedPackageObject(
                    package.identity, state, applicable=package.applies_to(host.profile), restart=package.restart, manifest=None
                )
            elif "PackageName" in parameters:
                yield _package_details(host, to_string(parameters["PackageName"]))
            else:
                listed = host.store.peek(lambda current: [(name, package_state(current, name)) for name in online_packages(current)])
                yield from (BasicPackageObject(name, state) for name, state in listed)
        except HResultError as error:
            raise _servicing_error(call, error) from None


def _package_details(host: WindowsHost, name: str) -> AdvancedPackageObject:
    state = host.store.read()
    identity = next((known for known in online_packages(state) if known.casefold() == name.casefold()), None)
    if identity is None:
        raise HResultError(cbs.CBS_E_INVALID_PACKAGE, "The specified package is not valid Windows package.")
    installed = state.packages.get(identity)
    pending = next(change for change in state.pending_changes if change.package == identity) if installed is None else None
    reboot_behavior = installed.reboot_behavior if installed is not None else pending.reboot_behavior  # type: ignore[union-attr]
    return AdvancedPackageObject(
        identity,
        package_state(state, identity),
        applicable=True,
        restart=reboot_behavior == "AlwaysRequiresReboot",
        manifest=state.package_manifests.get(identity),
    )


@cmdlet("Remove-WindowsPackage")
def remove_windows_package(call: CmdletCall) -> Iterable[object]:
    """``-Online -PackageName <name> -NoRestart``: remove an installed package of the running Windows."""
    host = host_runtime().host
    for parameters in call.records:
        if call.parameter_set != "Online" or "PackageName" not in parameters or "PackagePath" in parameters:
            raise LabLimitation("The lab's Remove-WindowsPackage removes a package of the running Windows by name (-Online -PackageName).")
        if not is_switch(parameters, "NoRestart"):
            raise LabLimitation("The lab's Remove-WindowsPackage runs with -NoRestart only: without it, DISM asks whether to restart.")
        name = to_string(parameters["PackageName"])
        try:
            _require_elevation()
            with host.store.update() as state:
                package = next((known for identity, known in state.packages.items() if identity.casefold() == name.casefold()), None)
                if package is None or package_state(state, package.identity) != INSTALLED:
                    raise HResultError(cbs.CBS_E_INVALID_PACKAGE, "The specified package is not valid Windows package.")
                manifest = state.package_manifests.get(package.identity)
                if manifest is not None and manifest.permanent:
                    raise HResultError(cbs.CBS_E_CANNOT_UNINSTALL, "The package cannot be uninstalled.")
                restart_needed = cbs.uninstall_package(state, package, to_iso(utc_now()))
        except HResultError as error:
            raise _servicing_error(call, error) from None
        host.log.info("dism removed %s%s", package.identity, ", restart required" if restart_needed else "")
        yield ImageObject(restart_needed)
