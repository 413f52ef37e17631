"""The .NET exceptions a script sees, PowerShell's error records, and flow control.

A failure travels through the interpreter as :class:`PowerShellError`, the
Python form of the ``RuntimeException`` PowerShell throws: it holds the .NET
exception object (:class:`DotNetException`, what ``$_.Exception`` and
``catch [Type]`` see) and the :class:`ErrorRecord` (what ``$_`` is). The
exception types the scripts meet are listed in :data:`EXCEPTION_TYPES` with
their base type, so that ``-is`` and ``catch`` match base types, and the
HRESULT .NET gives each one when nobody sets another.

``return``, ``break``, ``continue`` and ``exit`` are Python exceptions too
(:class:`FlowControl` and its subclasses), which ``catch`` never sees, and
:class:`ProcessKilled` ends a process from outside: no ``catch`` and no
``finally`` runs, as when Windows terminates a process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wuacache_lab.powershell.nodes import Extent

# HRESULTs .NET gives exceptions by default. Each exception's page in
# dotnet/dotnet-api-docs (xml/<Namespace>/<Type>.xml, at the commit the contract
# tables pin, 8adb892bc4a3f45fdeaa24f716d2dbd4ba0365ab) states it in its remarks ("uses the
# HRESULT COR_E_..., which has the value ..."); a type that sets none keeps its
# base type's (InvalidDataException and WebException do, for example).
COR_E_EXCEPTION = 0x80131500
COR_E_SYSTEM = 0x80131501
COR_E_ARGUMENT = 0x80070057
E_POINTER = 0x80004003
COR_E_ARGUMENTOUTOFRANGE = 0x80131502
COR_E_UNAUTHORIZEDACCESS = 0x80070005
COR_E_INVALIDOPERATION = 0x80131509
COR_E_IO = 0x80131620
COR_E_FILENOTFOUND = 0x80070002
COR_E_DIRECTORYNOTFOUND = 0x80070003
COR_E_FORMAT = 0x80131537
COR_E_INVALIDCAST = 0x80004002
COR_E_NOTSUPPORTED = 0x80131515
COR_E_NULLREFERENCE = 0x80004003
COR_E_INDEXOUTOFRANGE = 0x80131508
COR_E_ARITHMETIC = 0x80070216
COR_E_OVERFLOW = 0x80131516
COR_E_DIVIDEBYZERO = 0x80020012
COR_E_TIMEOUT = 0x80131505
COR_E_TARGETPARAMCOUNT = 0x8002000E
COR_E_APPLICATION = 0x80131600
COR_E_TARGETINVOCATION = 0x80131604
E_FAIL = 0x80004005
DISP_E_BADPARAMCOUNT = 0x8002000E

# Full name -> (base type, default HRESULT or None to inherit the base's).
EXCEPTION_TYPES: dict[str, tuple[str | None, int | None]] = {
    "System.Exception": (None, COR_E_EXCEPTION),
    "System.SystemException": ("System.Exception", COR_E_SYSTEM),
    "System.ArgumentException": ("System.SystemException", COR_E_ARGUMENT),
    "System.ArgumentNullException": ("System.ArgumentException", E_POINTER),
    "System.ArgumentOutOfRangeException": ("System.ArgumentException", COR_E_ARGUMENTOUTOFRANGE),
    "System.UnauthorizedAccessException": ("System.SystemException", COR_E_UNAUTHORIZEDACCESS),
    "System.InvalidOperationException": ("System.SystemException", COR_E_INVALIDOPERATION),
    "System.ObjectDisposedException": ("System.InvalidOperationException", None),
    "System.NotSupportedException": ("System.SystemException", COR_E_NOTSUPPORTED),
    "System.FormatException": ("System.SystemException", COR_E_FORMAT),
    "System.InvalidCastException": ("System.SystemException", COR_E_INVALIDCAST),
    "System.NullReferenceException": ("System.SystemException", COR_E_NULLREFERENCE),
    "System.IndexOutOfRangeException": ("System.SystemException", COR_E_INDEXOUTOFRANGE),
    "System.ArithmeticException": ("System.SystemException", COR_E_ARITHMETIC),
    "System.OverflowException": ("System.ArithmeticException", COR_E_OVERFLOW),
    "System.DivideByZeroException": ("System.ArithmeticException", COR_E_DIVIDEBYZERO),
    "System.TimeoutException": ("System.SystemException", COR_E_TIMEOUT),
    "System.IO.IOException": ("System.SystemException", COR_E_IO),
    "System.IO.FileNotFoundException": ("System.IO.IOException", COR_E_FILENOTFOUND),
    "System.IO.DirectoryNotFoundException": ("System.IO.IOException", COR_E_DIRECTORYNOTFOUND),
    "System.IO.InvalidDataException": ("System.SystemException", None),
    "System.Net.WebException": ("System.InvalidOperationException", None),
    "System.Reflection.TargetParameterCountException": ("System.Exception", COR_E_TARGETPARAMCOUNT),
    "System.ApplicationException": ("System.Exception", COR_E_APPLICATION),
    "System.Reflection.TargetInvocationException": ("System.ApplicationException", COR_E_TARGETINVOCATION),
    "System.Runtime.InteropServices.ExternalException": ("System.SystemException", E_FAIL),
    "System.Runtime.InteropServices.COMException": ("System.Runtime.InteropServices.ExternalException", None),
    "System.ComponentModel.Win32Exception": ("System.Runtime.InteropServices.ExternalException", None),
    "System.ServiceProcess.TimeoutException": ("System.SystemException", None),
    "System.Management.Automation.RuntimeException": ("System.SystemException", None),
    "System.Management.Automation.ParseException": ("System.Management.Automation.RuntimeException", None),
    "System.Management.Automation.ParameterBindingException": ("System.Management.Automation.RuntimeException", None),
    "System.Management.Automation.CommandNotFoundException": ("System.Management.Automation.RuntimeException", None),
    "System.Management.Automation.ActionPreferenceStopException": (
        "System.Management.Automation.RuntimeException",
        None,
    ),
    "System.Management.Automation.ExtendedTypeSystemException": ("System.Management.Automation.RuntimeException", None),
    "System.Management.Automation.MethodException": ("System.Management.Automation.ExtendedTypeSystemException", None),
    "System.Management.Automation.MethodInvocationException": ("System.Management.Automation.MethodException", None),
    "System.Management.Automation.GetValueException": ("System.Management.Automation.ExtendedTypeSystemException", None),
    "System.Management.Automation.GetValueInvocationException": (
        "System.Management.Automation.GetValueException",
        None,
    ),
    "System.Management.Automation.SetValueException": ("System.Management.Automation.ExtendedTypeSystemException", None),
    "System.Management.Automation.SetValueInvocationException": (
        "System.Management.Automation.SetValueException",
        None,
    ),
    "System.Management.Automation.PropertyNotFoundException": (
        "System.Management.Automation.ExtendedTypeSystemException",
        None,
    ),
    "System.Management.Automation.PSInvalidCastException": ("System.InvalidCastException", None),
    "System.Management.Automation.PSArgumentException": ("System.ArgumentException", None),
    "System.Management.Automation.PSInvalidOperationException": ("System.InvalidOperationException", None),
    "System.Management.Automation.SessionStateException": ("System.Management.Automation.RuntimeException", None),
    "System.Management.Automation.ItemNotFoundException": ("System.Management.Automation.SessionStateException", None),
    "System.Management.Automation.DriveNotFoundException": ("System.Management.Automation.SessionStateException", None),
    "System.Management.Automation.ProviderInvocationException": ("System.Management.Automation.RuntimeException", None),
    "System.Management.Automation.PipelineStoppedException": ("System.Management.Automation.RuntimeException", None),
    # What a program's standard error line becomes (NativeCommandError).
    "System.Management.Automation.RemoteException": ("System.Management.Automation.RuntimeException", None),
    "System.Management.Automation.ValidationMetadataException": ("System.Management.Automation.MetadataException", None),
    "System.Management.Automation.MetadataException": ("System.Management.Automation.RuntimeException", None),
    "Microsoft.PowerShell.Commands.WriteErrorException": ("System.SystemException", None),
    # Windows PowerShell 5.1 declares it "public class ServiceCommandException : SystemException".
    "Microsoft.PowerShell.Commands.ServiceCommandException": ("System.SystemException", None),
}

# ErrorCategory values (System.Management.Automation.ErrorCategory).
NOT_SPECIFIED = "NotSpecified"
INVALID_ARGUMENT = "InvalidArgument"
INVALID_DATA = "InvalidData"
INVALID_OPERATION = "InvalidOperation"
INVALID_TYPE = "InvalidType"
OBJECT_NOT_FOUND = "ObjectNotFound"
OPERATION_STOPPED = "OperationStopped"
OPERATION_TIMEOUT = "OperationTimeout"
PARSER_ERROR = "ParserError"
PERMISSION_DENIED = "PermissionDenied"
RESOURCE_EXISTS = "ResourceExists"
RESOURCE_UNAVAILABLE = "ResourceUnavailable"
OPEN_ERROR = "OpenError"
CLOSE_ERROR = "CloseError"
READ_ERROR = "ReadError"
WRITE_ERROR = "WriteError"


def base_chain(type_name: str) -> list[str]:
    """The type and its base types, most derived first."""
    chain = []
    current: str | None = type_name
    while current is not None:
        chain.append(current)
        current = EXCEPTION_TYPES.get(current, ("System.Exception", None))[0] if current != "System.Exception" else None
    return chain


def default_hresult(type_name: str) -> int:
    for name in base_chain(type_name):
        hresult = EXCEPTION_TYPES.get(name, (None, None))[1]
        if hresult is not None:
            return hresult
    return COR_E_EXCEPTION


def signed32(value: int) -> int:
    """An HRESULT as the signed Int32 .NET reports."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


class DotNetException:
    """A .NET exception object: ``$_.Exception`` and its ``InnerException`` chain.

    Extra properties some types have (``FileName``, ``NativeErrorCode``,
    ``ParamName``, ``Response``...) are given as keyword arguments and read as
    members like the others.
    """

    def __init__(
        self,
        type_name: str,
        message: str | None = None,
        *,
        hresult: int | None = None,
        inner: DotNetException | None = None,
        **properties: object,
    ) -> None:
        self.type_name = type_name
        self.message = message if message is not None else f"Exception of type '{type_name}' was thrown."
        self.hresult = signed32(default_hresult(type_name) if hresult is None else hresult)
        self.inner = inner
        self.properties = properties
        # The record PowerShell's own exceptions carry (RuntimeException.ErrorRecord).
        self.error_record: ErrorRecord | None = None

    def is_a(self, type_name: str) -> bool:
        wanted = type_name.casefold()
        return any(name.casefold() == wanted for name in base_chain(self.type_name))

    @property
    def short_name(self) -> str:
        return self.type_name.rsplit(".", 1)[-1]

    def __repr__(self) -> str:
        return f"<{self.type_name}: {self.message}>"


class ParentContainsErrorRecord:
    """Marks a record made by the exception that carries it: ``$_.Exception`` is then that exception."""


PARENT = ParentContainsErrorRecord()


@dataclass
class InvocationInfo:
    """``$_.InvocationInfo``: the command and the place of the failure."""

    command_name: str | None
    extent: Extent | None

    @property
    def script_line_number(self) -> int:
        return self.extent.line if self.extent else 0

    @property
    def offset_in_line(self) -> int:
        return self.extent.column if self.extent else 0

    @property
    def script_name(self) -> str:
        return self.extent.file_name if self.extent else ""

    @property
    def line(self) -> str:
        return self.extent.file.line(self.extent.line) if self.extent else ""

    @property
    def position_message(self) -> str:
        """``At line:3 char:5`` (or ``At <file>:3 char:5``), the line, and a tilde under the failing part."""
        if self.extent is None:
            return ""
        extent = self.extent
        where = f"{extent.file_name}:{extent.line}" if extent.file_name else f"line:{extent.line}"
        source = extent.file.line(extent.line)
        width = (extent.end_column - extent.column) if extent.end_line == extent.line else len(source) - extent.column + 1
        return f"At {where} char:{extent.column}\n+ {source}\n+ {' ' * (extent.column - 1)}{'~' * max(width, 1)}"


@dataclass
class ErrorRecord:
    """``System.Management.Automation.ErrorRecord``: what ``$_`` is in a ``catch`` block."""

    dotnet_name = "System.Management.Automation.ErrorRecord"

    exception: DotNetException | ParentContainsErrorRecord
    fully_qualified_error_id: str
    category: str = NOT_SPECIFIED
    target_object: object = None
    invocation: InvocationInfo | None = None
    # CategoryInfo.TargetName when it is not TargetObject.ToString().
    target_name: str | None = None
    error_details: str | None = None

    def with_exception(self, exception: DotNetException) -> ErrorRecord:
        """The record as a ``catch`` hands it over: ``new ErrorRecord(record, caught exception)``."""
        copy = ErrorRecord(**{name: getattr(self, name) for name in self.__dataclass_fields__})
        if isinstance(self.exception, ParentContainsErrorRecord):
            copy.exception = exception
        return copy

    def resolved_exception(self, carrier: DotNetException) -> DotNetException:
        return carrier if isinstance(self.exception, ParentContainsErrorRecord) else self.exception

    def activity(self) -> str:
        return self.invocation.command_name or "" if self.invocation else ""

    def category_message(self, carrier: DotNetException, target_name: str, target_type: str) -> str:
        """``CategoryInfo.ToString()``: ``<Category>: (<TargetName>:<TargetType>) [<Activity>], <Reason>``."""
        reason = self.resolved_exception(carrier).short_name
        return f"{self.category}: ({target_name}:{target_type}) [{self.activity()}], {reason}"


class PowerShellError(Exception):
    """A terminating error in flight: the exception thrown and its error record."""

    def __init__(self, exception: DotNetException, record: ErrorRecord | None = None) -> None:
        self.exception = exception
        if record is None:
            record = exception.error_record or ErrorRecord(PARENT, exception.short_name)
        exception.error_record = record
        self.record = record
        # The innermost statement it left: where the script raised it.
        self.raised_by: Extent | None = None
        super().__init__(f"{exception.type_name}: {exception.message}")

    @property
    def reported_exception(self) -> DotNetException:
        """``$_.Exception`` for a plain ``catch``: the record's exception, else the one thrown."""
        return self.record.resolved_exception(self.exception)


def dotnet_error(type_name: str, message: str | None = None, **properties: object) -> PowerShellError:
    """A .NET exception as the Windows side or a built-in type throws it.

    ``hresult`` and ``inner`` are accepted as in :class:`DotNetException`.
    """
    exception = DotNetException(type_name, message, **properties)  # type: ignore[arg-type]
    return PowerShellError(exception, ErrorRecord(exception, exception.short_name))


def runtime_error(
    message: str,
    error_id: str,
    *,
    type_name: str = "System.Management.Automation.RuntimeException",
    category: str = INVALID_OPERATION,
    inner: DotNetException | None = None,
    target_object: object = None,
    extent: Extent | None = None,
    command_name: str | None = None,
) -> PowerShellError:
    """An error of PowerShell itself (strict mode, binding, a missing member...): its record holds the exception."""
    exception = DotNetException(type_name, message, inner=inner)
    record = ErrorRecord(
        PARENT, error_id, category, target_object, InvocationInfo(command_name, extent) if extent else None
    )
    return PowerShellError(exception, record)


# .NET's Marshal.GetExceptionForHR turns these HRESULTs into these exceptions, and
# any other into a COMException ("How to: Map HRESULTs and Exceptions",
# MicrosoftDocs/docs-desktop framework/interop/how-to-map-hresults-and-exceptions.md).
_EXCEPTIONS_FOR_HRESULTS = {
    COR_E_UNAUTHORIZEDACCESS: "System.UnauthorizedAccessException",
    COR_E_FILENOTFOUND: "System.IO.FileNotFoundException",
    COR_E_DIRECTORYNOTFOUND: "System.IO.DirectoryNotFoundException",
    COR_E_ARGUMENT: "System.ArgumentException",
    COR_E_IO: "System.IO.IOException",
    COR_E_INVALIDOPERATION: "System.InvalidOperationException",
    COR_E_NOTSUPPORTED: "System.NotSupportedException",
}


def exception_for_hresult(hresult: int, message: str) -> DotNetException:
    type_name = _EXCEPTIONS_FOR_HRESULTS.get(hresult & 0xFFFFFFFF, "System.Runtime.InteropServices.COMException")
    return DotNetException(type_name, message, hresult=hresult)


class UnsupportedSyntax(PowerShellError):
    """A script the interpreter refuses before running any of it, as PowerShell refuses one that does not parse.

    It carries a ``ParseException`` whose message names the file (or
    ``line:`` for a script block made from text), the line and the column,
    as PowerShell's parse errors do.
    """

    def __init__(self, extent: Extent, message: str, error_id: str = "UnexpectedToken") -> None:
        self.extent = extent
        self.reason = message
        position = InvocationInfo(None, extent).position_message
        exception = DotNetException("System.Management.Automation.ParseException", f"{position}\n{message}")
        super().__init__(exception, ErrorRecord(PARENT, error_id, PARSER_ERROR, invocation=InvocationInfo(None, extent)))


class LabLimitation(Exception):
    """Something Windows has that the lab does not implement: not a script bug, and no script can catch it.

    The interpreter gives it the place of the statement that met it.
    """

    extent: Extent | None = None

    def __str__(self) -> str:
        where = ""
        if self.extent is not None:
            name = self.extent.file_name
            where = f" ({name}:{self.extent.line})" if name else f" (line {self.extent.line})"
        return f"{super().__str__()}{where}"


# ---------------------------------------------------------------- flow control


class FlowControl(Exception):
    """``return``, ``break``, ``continue`` and ``exit``: never caught by ``catch``."""


class ReturnSignal(FlowControl):
    pass


class BreakSignal(FlowControl):
    def __init__(self, label: str | None) -> None:
        super().__init__(label)
        self.label = label


class ContinueSignal(FlowControl):
    def __init__(self, label: str | None) -> None:
        super().__init__(label)
        self.label = label


class ExitSignal(FlowControl):
    """``exit n``: ends the process (a script block run with ``&`` is not a script file, so it does not stop there)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class ProcessKilled(BaseException):
    """The process was ended from outside (a stopped task, an execution limit, a restart).

    A ``BaseException``: nothing in the script (no ``catch``, no ``finally``)
    and nothing in the interpreter that catches ``Exception`` runs on.
    """
