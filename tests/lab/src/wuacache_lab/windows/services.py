"""The service control manager as a PowerShell process reaches it.

``System.ServiceProcess.ServiceController`` with .NET Framework 4.8's
members and failures, and the cmdlets of Microsoft.PowerShell.Management
built on it (``Get-Service``, ``Set-Service``, ``Start-Service``,
``Stop-Service``), over the host's services (:class:`WindowsSystem`: its
``Win32_Service`` instances and the changes it allows).

What the scripts depend on, from the .NET reference
(dotnet/dotnet-api-docs, xml/System.ServiceProcess/ServiceController.xml):

- a controller made for a name that no service has fails only when it first
  needs the service, with an InvalidOperationException;
- ``Status`` is read once and kept until ``Refresh()`` (``WaitForStatus``
  refreshes it while it waits);
- ``Start()`` and ``Stop()`` fail with an InvalidOperationException whose
  InnerException is the Win32Exception of the service control manager
  (ERROR_SERVICE_DISABLED, ERROR_SERVICE_ALREADY_RUNNING...);
- ``WaitForStatus(status, timeout)`` throws a
  ``System.ServiceProcess.TimeoutException`` once the time is out.

The cmdlets write the errors Windows PowerShell 5.1 writes: a
ServiceCommandException holding the controller's exception, as a
non-terminating error (``-ErrorAction Stop`` makes it terminating).

The emulated services change state at once: they are never pending.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from wuacache_lab.powershell.commands import CmdletCall, cmdlet, is_switch
from wuacache_lab.powershell.conversions import convert_to, enumerate_value, to_string
from wuacache_lab.powershell.dotnet import constructor, dotnet_type
from wuacache_lab.powershell.errors import (
    CLOSE_ERROR,
    OBJECT_NOT_FOUND,
    OPEN_ERROR,
    PERMISSION_DENIED,
    DotNetException,
    LabLimitation,
    PowerShellError,
    dotnet_error,
)
from wuacache_lab.powershell.reference import ReferenceContracts
from wuacache_lab.powershell.regex import wildcard_to_regex
from wuacache_lab.powershell.values import DotNetType, EnumValue, TimeSpan
from wuacache_lab.windows.filesystem import enum_argument
from wuacache_lab.windows.runtime import host_runtime

if TYPE_CHECKING:
    from wuacache_lab.windows.system import WindowsSystem

STATUS = ReferenceContracts.enum_definition("System.ServiceProcess.ServiceControllerStatus")
START_MODE = ReferenceContracts.enum_definition("System.ServiceProcess.ServiceStartMode")
assert STATUS is not None and START_MODE is not None

# The local computer, as ServiceController names it.
LOCAL_MACHINE = "."
# Win32_Service.StartMode and State, as ServiceController names them.
_START_MODES = {"auto": "Automatic", "manual": "Manual", "disabled": "Disabled"}
_STATES = {"running": "Running", "stopped": "Stopped"}

# Win32 errors of the service control manager (winerror.h) and their system messages.
ERROR_ACCESS_DENIED = 5
ERROR_SERVICE_ALREADY_RUNNING = 1056
ERROR_SERVICE_DISABLED = 1058
ERROR_SERVICE_DOES_NOT_EXIST = 1060
ERROR_SERVICE_NOT_ACTIVE = 1062
_WIN32_MESSAGES = {
    ERROR_ACCESS_DENIED: "Access is denied",
    ERROR_SERVICE_ALREADY_RUNNING: "An instance of the service is already running",
    ERROR_SERVICE_DISABLED: (
        "The service cannot be started, either because it is disabled or because it has no enabled devices "
        "associated with it"
    ),
    ERROR_SERVICE_DOES_NOT_EXIST: "The specified service does not exist as an installed service",
    ERROR_SERVICE_NOT_ACTIVE: "The service has not been started",
}

# ServiceController's own messages (.NET Framework's System.ServiceProcess resources).
_NO_SERVICE = "Service {0} was not found on computer '{1}'."
_CANNOT_OPEN = "Cannot open {0} service on computer '{1}'."
_CANNOT_START = "Cannot start service {0} on computer '{1}'."
_CANNOT_STOP = "Cannot stop {0} service on computer '{1}'."
_TIMEOUT = "Time out has expired and the operation has not been completed."
# WaitForStatus looks at the service again this often.
POLL_SECONDS = 0.25

# The cmdlets' messages (ServiceResources of Microsoft.PowerShell.Commands.Management).
_NOT_FOUND_BY_NAME = "Cannot find any service with service name '{0}'."
_NOT_FOUND_BY_DISPLAY_NAME = "Cannot find any service with display name '{1}'."
_COULD_NOT_START = "Service '{1} ({0})' cannot be started due to the following error: {2}"
_COULD_NOT_STOP = "Service '{1} ({0})' cannot be stopped due to the following error: {2}"
_COULD_NOT_SET = "Service '{1} ({0})' cannot be configured due to the following error: {2}"
_START_FAILED = "Failed to start service '{1} ({0})'."
_STOP_FAILED = "Service '{1} ({0})' stop failed."
# How long the cmdlets wait for a status at a time, before they look whether the service still moves.
_CMDLET_WAIT = TimeSpan(2 * 10_000_000)


def win32_exception(code: int) -> DotNetException:
    """The Win32Exception .NET makes of a Win32 error: its system message, NativeErrorCode, and E_FAIL as HResult."""
    return DotNetException("System.ComponentModel.Win32Exception", _WIN32_MESSAGES[code], NativeErrorCode=code)


@dotnet_type("System.ServiceProcess.ServiceController", base="System.ComponentModel.Component")
class ServiceController:
    """One service of the local computer, by the name it was asked for."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._status: int | None = None

    @constructor
    def new(_: DotNetType, name: object = None, machine_name: object = LOCAL_MACHINE) -> ServiceController:
        if name is None:
            raise LabLimitation("The lab makes no ServiceController without a service name.")
        if to_string(machine_name).casefold() not in (LOCAL_MACHINE, "localhost"):
            raise LabLimitation("The lab controls the services of the local computer only.")
        return ServiceController(to_string(name))

    # ------------------------------------------------------------ what the service control manager knows

    @staticmethod
    def _system() -> WindowsSystem:
        return host_runtime().system

    def _instance(self, message: str = _NO_SERVICE) -> dict[str, Any]:
        """The service's Win32_Service instance; InvalidOperationException (with ERROR_SERVICE_DOES_NOT_EXIST) without one."""
        found = find_service(self._system(), self._name)
        if found is None:
            raise dotnet_error(
                "System.InvalidOperationException",
                message.format(self._name, LOCAL_MACHINE),
                inner=win32_exception(ERROR_SERVICE_DOES_NOT_EXIST),
            )
        return found

    def _open_for_change(self) -> dict[str, Any]:
        """OpenService with the right to start or stop: Administrators and SYSTEM hold it, other users do not
        ("Service Security and Access Rights", MicrosoftDocs/win32 desktop-src/Services/service-security-and-access-rights.md)."""
        instance = self._instance(_CANNOT_OPEN)
        if not host_runtime().logon.administrator:
            raise self._refused(_CANNOT_OPEN, ERROR_ACCESS_DENIED)
        return instance

    # ------------------------------------------------------------ properties

    @property
    def ServiceName(self) -> str:  # noqa: N802 - .NET member name
        return self._name

    @property
    def Name(self) -> str:  # noqa: N802 - PowerShell's alias property of ServiceName
        return self._name

    @property
    def DisplayName(self) -> str:  # noqa: N802
        return str(self._instance()["DisplayName"])

    @property
    def MachineName(self) -> str:  # noqa: N802
        return LOCAL_MACHINE

    @property
    def Status(self) -> EnumValue:  # noqa: N802
        if self._status is None:
            self._status = _status_of(self._instance())
        return EnumValue(STATUS, self._status)

    @property
    def StartType(self) -> EnumValue:  # noqa: N802
        mode = _START_MODES[str(self._instance()["StartMode"]).casefold()]
        return EnumValue(START_MODE, START_MODE.value_of(mode))  # type: ignore[arg-type]

    @property
    def CanStop(self) -> bool:  # noqa: N802
        return self.Status.value == STATUS.value_of("Running")

    @property
    def DependentServices(self) -> list[object]:  # noqa: N802
        # No emulated service depends on another.
        self._instance()
        return []

    # ------------------------------------------------------------ methods

    def Refresh(self) -> None:  # noqa: N802
        self._status = None

    def Start(self, args: object = None) -> None:  # noqa: N802
        """StartService: refused for a disabled service or one already running."""
        if args is not None:
            raise LabLimitation("The lab starts services without arguments.")
        instance = self._open_for_change()
        if _status_of(instance) == STATUS.value_of("Running"):
            raise self._refused(_CANNOT_START, ERROR_SERVICE_ALREADY_RUNNING)
        if str(instance["StartMode"]).casefold() == "disabled":
            raise self._refused(_CANNOT_START, ERROR_SERVICE_DISABLED)
        _controllable(instance)
        self._system().start_service(str(instance["Name"]))

    def Stop(self) -> None:  # noqa: N802
        """ControlService(SERVICE_CONTROL_STOP): refused for a service that is not running."""
        instance = self._open_for_change()
        if _status_of(instance) != STATUS.value_of("Running"):
            raise self._refused(_CANNOT_STOP, ERROR_SERVICE_NOT_ACTIVE)
        _controllable(instance)
        self._system().stop_service(str(instance["Name"]))

    def WaitForStatus(self, desiredStatus: object, timeout: object = None) -> None:  # noqa: N802, N803 - .NET names
        """Looks at the service every quarter of a second until it has the status; without a timeout, for ever."""
        desired = enum_argument(desiredStatus, STATUS.name)
        limit = None if timeout is None else convert_to(timeout, DotNetType("System.TimeSpan")).total_seconds  # type: ignore[union-attr]
        runtime = host_runtime()
        started = time.monotonic()
        self.Refresh()
        while self.Status.value != desired:
            if limit is not None and time.monotonic() - started > limit:
                raise dotnet_error("System.ServiceProcess.TimeoutException", _TIMEOUT)
            runtime.wait(POLL_SECONDS)
            self.Refresh()

    def Close(self) -> None:  # noqa: N802
        self._status = None

    def _refused(self, message: str, code: int) -> PowerShellError:
        return dotnet_error("System.InvalidOperationException", message.format(self._name, LOCAL_MACHINE), inner=win32_exception(code))


def find_service(system: WindowsSystem, name: str) -> dict[str, Any] | None:
    """The Win32_Service instance of the service named ``name`` (its name, case-insensitively)."""
    wanted = name.casefold()
    return next((instance for instance in system.cim_instances("Win32_Service") if str(instance["Name"]).casefold() == wanted), None)


def _status_of(instance: dict[str, Any]) -> int:
    state = _STATES.get(str(instance["State"]).casefold())
    if state is None:
        raise LabLimitation(f"The lab's services are running or stopped, not {instance['State']}.")
    return STATUS.value_of(state)  # type: ignore[return-value,union-attr]


def _controllable(instance: dict[str, Any]) -> None:
    if str(instance["Name"]).casefold() != "wuauserv":
        raise LabLimitation(f"The lab's service control manager changes wuauserv only, not {instance['Name']}.")


# ---------------------------------------------------------------- the cmdlets


def _service_error(call: CmdletCall, service: ServiceController, inner: DotNetException | None, error_id: str, message: str, category: str) -> None:
    """ServiceBaseCommand.WriteNonTerminatingError for a service: a ServiceCommandException holding what failed."""
    _write_service_error(call, service.ServiceName, _display_name(service), service, inner, error_id, message, category)


def _write_service_error(
    call: CmdletCall, name: str, display: str, target: object, inner: DotNetException | None, error_id: str, message: str, category: str
) -> None:
    """The message is formatted with the service's name, its display name and the inner exception's message."""
    text = message.format(name, display, inner.message if inner is not None else "")
    exception = DotNetException("Microsoft.PowerShell.Commands.ServiceCommandException", text, inner=inner, ServiceName=name)
    call.write_error(exception, error_id, category, target)


def _display_name(service: ServiceController) -> str:
    try:
        return service.DisplayName
    except PowerShellError:
        return ""


def _unsupported(parameters: dict[str, object], *names: str) -> None:
    for name in names:
        if name in parameters:
            raise LabLimitation(f"The lab's service cmdlets do not implement -{name}.")


def _matching_services(call: CmdletCall, parameters: dict[str, object]) -> list[ServiceController]:
    """MultipleServiceCommandBase.MatchingServices: by name, display name or input object, sorted by name;
    each name without wildcards that finds nothing is a non-terminating error."""
    _unsupported(parameters, "ComputerName", "Include", "Exclude")
    system = host_runtime().system
    services = system.cim_instances("Win32_Service")
    matching: list[ServiceController] = []
    if call.parameter_set == "InputObject":
        for given in enumerate_value(parameters["InputObject"]):
            assert isinstance(given, ServiceController)
            given.Refresh()
            matching.append(given)
    elif call.parameter_set == "DisplayName":
        for pattern in (to_string(item) for item in enumerate_value(parameters["DisplayName"])):
            found = [ServiceController(str(instance["Name"])) for instance in services if _like(pattern, str(instance["DisplayName"]))]
            if not found and not _has_wildcards(pattern):
                _write_service_error(call, "", pattern, pattern, None, "NoServiceFoundForGivenDisplayName", _NOT_FOUND_BY_DISPLAY_NAME, OBJECT_NOT_FOUND)
            matching.extend(found)
    elif "Name" not in parameters:
        matching.extend(ServiceController(str(instance["Name"])) for instance in services)
    else:
        for pattern in (to_string(item) for item in enumerate_value(parameters["Name"])):
            if _has_wildcards(pattern):
                found = [ServiceController(str(instance["Name"])) for instance in services if _like(pattern, str(instance["Name"]))]
            else:
                # A controller made for the name as given: its ServiceName keeps the caller's case.
                found = [ServiceController(pattern)] if find_service(system, pattern) is not None else []
                if not found:
                    _write_service_error(call, pattern, "", pattern, None, "NoServiceFoundForGivenName", _NOT_FOUND_BY_NAME, OBJECT_NOT_FOUND)
            matching.extend(service for service in found if all(service.ServiceName.casefold() != known.ServiceName.casefold() for known in matching))
    return sorted(matching, key=lambda service: service.ServiceName.casefold())


def _has_wildcards(pattern: str) -> bool:
    return re.search(r"(?<!`)[*?\[]", pattern) is not None


def _like(pattern: str, text: str) -> bool:
    return re.match(wildcard_to_regex(pattern), text, re.IGNORECASE) is not None


def _wait_for(call: CmdletCall, service: ServiceController, target: str, pending: str, error_id: str, message: str) -> bool:
    """ServiceOperationBaseCommand.DoWaitForStatus: two seconds at a time, for as long as the service is on its way."""
    while True:
        try:
            service.WaitForStatus(target, _CMDLET_WAIT)
            return True
        except PowerShellError as error:
            if not error.exception.is_a("System.ServiceProcess.TimeoutException"):
                raise
        if str(service.Status) not in (pending, target):
            _service_error(call, service, None, error_id, message, OPEN_ERROR)
            return False


@cmdlet("Get-Service")
def get_service(call: CmdletCall) -> Iterable[object]:
    for parameters in call.records:
        _unsupported(parameters, "DependentServices", "RequiredServices")
        yield from _matching_services(call, parameters)


@cmdlet("Start-Service")
def start_service(call: CmdletCall) -> Iterable[object]:
    for parameters in call.records:
        for service in _matching_services(call, parameters):
            if _start(call, service) and is_switch(parameters, "PassThru"):
                yield service


def _start(call: CmdletCall, service: ServiceController) -> bool:
    """DoStartService: a service already running is no error."""
    try:
        service.Start()
    except PowerShellError as error:
        native = error.exception.inner.properties.get("NativeErrorCode") if error.exception.inner is not None else None
        if native != ERROR_SERVICE_ALREADY_RUNNING:
            _service_error(call, service, error.exception, "CouldNotStartService", _COULD_NOT_START, OPEN_ERROR)
            return False
    return _wait_for(call, service, "Running", "StartPending", "StartServiceFailed", _START_FAILED)


@cmdlet("Stop-Service")
def stop_service(call: CmdletCall) -> Iterable[object]:
    """DoStopService: a service that is not running is no error; ``-NoWait`` returns before it has stopped."""
    for parameters in call.records:
        for service in _matching_services(call, parameters):
            try:
                service.Stop()
            except PowerShellError as error:
                native = error.exception.inner.properties.get("NativeErrorCode") if error.exception.inner is not None else None
                if native != ERROR_SERVICE_NOT_ACTIVE:
                    _service_error(call, service, error.exception, "CouldNotStopService", _COULD_NOT_STOP, CLOSE_ERROR)
                    continue
            if not is_switch(parameters, "NoWait") and not _wait_for(call, service, "Stopped", "StopPending", "StopServiceFailed", _STOP_FAILED):
                continue
            if is_switch(parameters, "PassThru") and str(service.Status) in ("Stopped", "StopPending"):
                yield service


@cmdlet("Set-Service")
def set_service(call: CmdletCall) -> Iterable[object]:
    """``-StartupType`` (ChangeServiceConfig) and ``-Status``, for a service by name or as input object."""
    for parameters in call.records:
        _unsupported(parameters, "ComputerName", "DisplayName", "Description")
        service = parameters["InputObject"] if call.parameter_set == "InputObject" else ServiceController(to_string(parameters["Name"]))
        assert isinstance(service, ServiceController)
        try:
            # A controller is made for any name: reading its display name tells whether the service exists.
            service.DisplayName
        except PowerShellError as error:
            call.write_error(error.exception, "InvalidOperationException", OBJECT_NOT_FOUND, LOCAL_MACHINE)
            continue
        if not host_runtime().logon.administrator:
            _service_error(call, service, win32_exception(ERROR_ACCESS_DENIED), "CouldNotSetService", _COULD_NOT_SET, PERMISSION_DENIED)
            continue
        if "StartupType" in parameters:
            mode = parameters["StartupType"]
            assert isinstance(mode, EnumValue)
            if str(mode) not in ("Automatic", "Manual", "Disabled"):
                raise LabLimitation(f"The lab's services start Automatic, Manual or Disabled, not {mode}.")
            _controllable(service._instance())
            host_runtime().system.set_service_start_mode(service.ServiceName, str(mode))
        status = parameters.get("Status")
        if status is not None:
            _set_status(call, service, to_string(status))
        if is_switch(parameters, "PassThru"):
            yield service


def _set_status(call: CmdletCall, service: ServiceController, status: str) -> None:
    """``-Status``: start or stop the service when it is not in that state already."""
    service.Refresh()
    current = str(service.Status)
    if status.casefold() == "running" and current != "Running":
        _start(call, service)
    elif status.casefold() == "stopped" and current != "Stopped":
        try:
            service.Stop()
        except PowerShellError as error:
            _service_error(call, service, error.exception, "CouldNotStopService", _COULD_NOT_STOP, CLOSE_ERROR)
            return
        _wait_for(call, service, "Stopped", "StopPending", "StopServiceFailed", _STOP_FAILED)
    elif status.casefold() == "paused":
        raise LabLimitation("The lab's services cannot be paused.")
