"""The command table: cmdlets, implemented in Python, that the contract tables describe.

Registering a cmdlet
--------------------
::

    @cmdlet("Get-Item")
    def get_item(call: CmdletCall) -> Iterable[object]:
        for parameters in call.records:          # one per pipeline input object, or one
            path = parameters["LiteralPath"]      # bound by canonical name, converted
            ...
            yield item                            # written to the pipeline as one object

Only a cmdlet the contract tables describe can be registered (its
parameters, sets, positions and aliases come from there), so no Python
stand-in can take the place of a function of a script. The implementation
receives a :class:`CmdletCall`: the bound parameters (``call.records``), the
parameter set, the runtime of the process, and ``call.write_error()`` for a
non-terminating error, which ``-ErrorAction`` and ``$ErrorActionPreference``
turn into nothing, an error on standard error, or a terminating error.
A terminating error is raised (:func:`~wuacache_lab.powershell.errors.dotnet_error`
or :meth:`CmdletCall.terminating`).

This module implements the cmdlets that touch no Windows state; the emulated
Windows registers the others (files, registry, services, CIM, processes).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from wuacache_lab.powershell import jsonconvert
from wuacache_lab.powershell.bind import Binding
from wuacache_lab.powershell.com import ComObject
from wuacache_lab.powershell.contracts import cmdlet as cmdlet_contract
from wuacache_lab.powershell.conversions import SwitchParameter, enumerate_value, to_string
from wuacache_lab.powershell.errors import (
    INVALID_ARGUMENT,
    INVALID_TYPE,
    NOT_SPECIFIED,
    DotNetException,
    ErrorRecord,
    InvocationInfo,
    LabLimitation,
    PowerShellError,
)
from wuacache_lab.powershell.nodes import Extent
from wuacache_lab.powershell.dotnet import dotnet_type, public_property_names, register_enum
from wuacache_lab.powershell.values import DateTime, EnumValue, Hashtable, PSObject, base_object, is_null

if TYPE_CHECKING:
    from wuacache_lab.powershell.dotnet import TypeRegistry
    from wuacache_lab.powershell.reference import ReferenceContracts
    from wuacache_lab.powershell.runtime import Runtime


class CommandContext(Protocol):
    """What a cmdlet may ask of the process running it."""

    runtime: Runtime
    types: TypeRegistry
    contracts: ReferenceContracts

    def error_action(self, binding: Binding) -> str: ...

    def report_error(self, record: ErrorRecord, exception: DotNetException) -> None:
        """A non-terminating error that is to be shown (ErrorAction Continue)."""

    def set_strict_mode(self, version: int) -> None: ...


@dataclass
class CmdletCall:
    """One invocation of a cmdlet."""

    name: str
    binding: Binding
    records: Iterator[dict[str, object]]
    context: CommandContext
    extent: Extent | None
    had_error: bool = field(default=False)

    @property
    def runtime(self) -> Runtime:
        return self.context.runtime

    @property
    def parameter_set(self) -> str:
        return self.binding.parameter_set

    @property
    def error_source(self) -> str:
        return self.binding.signature.error_source

    def record(self, exception: DotNetException, error_id: str, category: str, target: object = None) -> ErrorRecord:
        return ErrorRecord(exception, f"{error_id},{self.error_source}", category, target, InvocationInfo(self.name, self.extent))

    def terminating(self, exception: DotNetException, error_id: str, category: str = NOT_SPECIFIED, target: object = None) -> PowerShellError:
        """ThrowTerminatingError: the error to raise."""
        return PowerShellError(exception, self.record(exception, error_id, category, target))

    def write_error(self, exception: DotNetException, error_id: str, category: str = NOT_SPECIFIED, target: object = None) -> None:
        """WriteError: a non-terminating error, as the ErrorAction in force makes it (about_CommonParameters)."""
        self.had_error = True
        record = self.record(exception, error_id, category, target)
        action = self.context.error_action(self.binding)
        if action == "Stop":
            preference = "ErrorActionPreference"
            stop = DotNetException(
                "System.Management.Automation.ActionPreferenceStopException",
                f'The running command stopped because the preference variable "{preference}" or common parameter is set to Stop: {exception.message}',
            )
            raise PowerShellError(stop, record)
        if action in ("Continue", "Inquire"):
            self.context.report_error(record, exception)
        elif action == "SilentlyContinue":
            self.context.report_error(record, None)  # type: ignore[arg-type]


CmdletImplementation = Callable[[CmdletCall], Iterable[object]]

@dataclass(frozen=True)
class ParameterRules:
    """What the tables do not say of a cmdlet's parameters, from its reference page.

    ``unconverted``: an argument transformation attribute reads the argument
    itself (Set-StrictMode -Version 'Latest'); ``allow_null``: a mandatory
    parameter that takes ``$null`` (ConvertTo-Json: "its value can be null").
    """

    unconverted: frozenset[str] = frozenset()
    allow_null: frozenset[str] = frozenset()


_CMDLETS: dict[str, CmdletImplementation] = {}
RULES: dict[str, ParameterRules] = {}


def cmdlet(name: str, *, unconverted: tuple[str, ...] = (), allow_null: tuple[str, ...] = ()) -> Callable[[CmdletImplementation], CmdletImplementation]:
    """Register the implementation of a cmdlet the contract tables describe."""
    contract = cmdlet_contract(name)
    if contract is None or contract.name.casefold() != name.casefold():
        raise ValueError(f"{name} is no cmdlet of Windows PowerShell 5.1's reference; the lab cannot register it")

    def register(implementation: CmdletImplementation) -> CmdletImplementation:
        _CMDLETS[contract.name.casefold()] = implementation
        RULES[contract.name.casefold()] = ParameterRules(frozenset(unconverted), frozenset(allow_null))
        return implementation

    return register


def implementation(name: str) -> CmdletImplementation:
    """The registered implementation of a cmdlet of the tables; the lab's limitation when there is none."""
    found = _CMDLETS.get(name.casefold())
    if found is None:
        raise LabLimitation(f"The lab does not implement the cmdlet {name}.")
    return found


def command_not_found(name: str, extent: Extent | None) -> PowerShellError:
    exception = DotNetException(
        "System.Management.Automation.CommandNotFoundException",
        f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable program. "
        "Check the spelling of the name, or if a path was included, verify that the path is correct and try again.",
    )
    record = ErrorRecord(exception, "CommandNotFoundException", "ObjectNotFound", name, InvocationInfo(None, extent))
    return PowerShellError(exception, record)


# ---------------------------------------------------------------- Microsoft.PowerShell.Core


@cmdlet("Set-StrictMode", unconverted=("Version",))
def set_strict_mode(call: CmdletCall) -> Iterable[object]:
    """``-Version 1.0|2.0|3.0|Latest`` or ``-Off``; Latest is 3.0 in Windows PowerShell 5.1."""
    for parameters in call.records:
        if call.parameter_set == "Off":
            call.context.set_strict_mode(0)
            continue
        requested = to_string(parameters["Version"]).strip()
        version = 3 if requested.casefold() == "latest" else _major_version(requested)
        if version not in (1, 2, 3):
            raise call.terminating(
                DotNetException(
                    "System.Management.Automation.PSArgumentOutOfRangeException",
                    f"The value {requested} is not valid for the Version parameter. The valid values are 1.0, 2.0, 3.0 and Latest.",
                ),
                "ArgumentOutOfRange",
                INVALID_ARGUMENT,
            )
        call.context.set_strict_mode(version)
    return ()


def _major_version(text: str) -> int:
    match = re.fullmatch(r"(\d+)(?:\.\d+){0,3}", text)
    return int(match.group(1)) if match else -1


# ---------------------------------------------------------------- Microsoft.PowerShell.Utility


def is_switch(parameters: dict[str, object], name: str) -> bool:
    """Whether a switch parameter was given (and not as ``-Name:$false``)."""
    value = parameters.get(name)
    return isinstance(value, SwitchParameter) and value.is_present


@cmdlet("Write-Output", allow_null=("InputObject",))
def write_output(call: CmdletCall) -> Iterable[object]:
    for parameters in call.records:
        value = parameters.get("InputObject")
        if is_switch(parameters, "NoEnumerate"):
            yield value
        else:
            yield from enumerate_value(value) if value is not None else [None]


@cmdlet("Write-Error")
def write_error(call: CmdletCall) -> Iterable[object]:
    """A non-terminating error: a WriteErrorException with the message, or the exception or record given."""
    for parameters in call.records:
        if call.parameter_set == "ErrorRecord":
            record = parameters["ErrorRecord"]
            assert isinstance(record, ErrorRecord)
            exception = record.exception if isinstance(record.exception, DotNetException) else DotNetException("System.Management.Automation.RuntimeException")
            call.write_error(exception, record.fully_qualified_error_id.split(",")[0], record.category, record.target_object)
            continue
        if call.parameter_set == "WithException":
            exception = parameters["Exception"]
            assert isinstance(exception, DotNetException)
        else:
            exception = DotNetException("Microsoft.PowerShell.Commands.WriteErrorException", to_string(parameters["Message"]))
        category = to_string(parameters.get("Category") or NOT_SPECIFIED)
        error_id = to_string(parameters.get("ErrorId") or exception.type_name)
        call.write_error(exception, error_id, category, parameters.get("TargetObject"))
    return ()


@cmdlet("Out-Null")
def out_null(call: CmdletCall) -> Iterable[object]:
    for _ in call.records:
        pass
    return ()


class _Inspector:
    """Properties of objects, for ConvertTo-Json."""

    def __init__(self, context: CommandContext) -> None:
        self.context = context

    def public_properties(self, value: object) -> list[tuple[str, object]]:
        if isinstance(value, ComObject):
            raise LabLimitation("The lab does not serialize COM objects to JSON.")
        registry = self.context.types
        members = registry.type_of(value).members
        if members is None:
            raise LabLimitation(f"The lab cannot list the properties of {registry.type_of(value).full_name}.")
        return [(name, registry.get_property(value, name, 0)) for name in public_property_names(members)]

    def extended_properties(self, wrapper: PSObject) -> list[tuple[str, object]]:
        properties = list(wrapper.note_items())
        if wrapper.is_custom:
            return properties
        registry = self.context.types
        for name, target in registry.extended_aliases(wrapper.base):
            properties.append((name, registry.get_property(wrapper.base, target, 0)))
        return properties


@cmdlet("ConvertTo-Json", allow_null=("InputObject",))
def convert_to_json(call: CmdletCall) -> Iterable[object]:
    """All input objects are collected, and written as one document (an array when there are several)."""
    collected: list[object] = []
    options: dict[str, object] = {}
    for parameters in call.records:
        options = parameters
        collected.append(parameters.get("InputObject"))
    if not collected:
        return
    value = collected[0] if len(collected) == 1 else collected
    # The reference: "When the input object is $null, ConvertTo-Json does not generate any output."
    if len(collected) == 1 and is_null(base_object(value)):
        return
    depth = options.get("Depth", jsonconvert.DEFAULT_DEPTH)
    yield jsonconvert.convert_to_json(
        value,
        _Inspector(call.context),
        depth=depth if isinstance(depth, int) else jsonconvert.DEFAULT_DEPTH,
        compress=is_switch(options, "Compress"),
        local_offset_minutes=call.runtime.utc_offset_minutes,
    )


@cmdlet("ConvertFrom-Json")
def convert_from_json(call: CmdletCall) -> Iterable[object]:
    """Input pieces are read whole; a top-level array is written as one object (WriteObject without enumerating)."""
    pieces = [to_string(parameters["InputObject"]) for parameters in call.records]
    try:
        results = jsonconvert.joined_input(pieces, jsonconvert.convert_from_json)
    except PowerShellError as error:
        raise call.terminating(error.exception, error.exception.type_name) from None
    yield from results


# Get-Date's -DisplayHint values (the 5.1 reference's Get-Date page).
DISPLAY_HINT = register_enum("Microsoft.PowerShell.Commands.DisplayHintType", {"Date": 0, "Time": 1, "DateTime": 2})


@cmdlet("Get-Date")
def get_date(call: CmdletCall) -> Iterable[object]:
    """The local time, with the DisplayHint note property Get-Date attaches; ``-Format`` gives a string."""
    from wuacache_lab.powershell.corelib import DateTimeMembers, format_value

    for parameters in call.records:
        if "UFormat" in parameters:
            raise LabLimitation("The lab does not implement Get-Date -UFormat.")
        date = parameters.get("Date")
        moment = date if isinstance(date, DateTime) else DateTimeMembers.Now()
        for unit in ("Year", "Month", "Day", "Hour", "Minute", "Second", "Millisecond"):
            if unit in parameters:
                raise LabLimitation(f"The lab does not implement Get-Date -{unit}.")
        if "Format" in parameters:
            yield format_value(moment, to_string(parameters["Format"]))
            continue
        hint = DISPLAY_HINT.value_of(to_string(parameters.get("DisplayHint", "DateTime")))
        yield PSObject(moment, [("DisplayHint", EnumValue(DISPLAY_HINT, hint if hint is not None else 2))])


@cmdlet("Start-Sleep")
def start_sleep(call: CmdletCall) -> Iterable[object]:
    for parameters in call.records:
        seconds = parameters.get("Seconds")
        milliseconds = parameters.get("Milliseconds")
        call.runtime.wait(seconds if isinstance(seconds, int) else (milliseconds or 0) / 1000)  # type: ignore[operator]
    return ()


@cmdlet("New-Object")
def new_object(call: CmdletCall) -> Iterable[object]:
    """``-TypeName`` through the type registry, ``-ComObject`` through the runtime's COM classes."""
    for parameters in call.records:
        if call.parameter_set == "Com":
            prog_id = to_string(parameters["ComObject"])
            try:
                target = call.runtime.create_com_object(prog_id)
            except PowerShellError as error:
                raise call.terminating(error.exception, "NoCOMClassIdentified", "ResourceUnavailable") from None
            created: object = ComObject(target, call.context.contracts, call.context.contracts.com_interface_of(prog_id))
        else:
            name = to_string(parameters["TypeName"])
            try:
                own_type = call.context.types.resolve(name)
            except PowerShellError:
                raise call.terminating(
                    DotNetException(
                        "System.Management.Automation.PSArgumentException",
                        f"Cannot find type [{name}]: verify that the assembly containing this type is loaded.",
                    ),
                    "TypeNotFound",
                    INVALID_TYPE,
                ) from None
            arguments = list(enumerate_value(parameters["ArgumentList"])) if "ArgumentList" in parameters else []
            try:
                created = call.context.types.construct(own_type, arguments, call.extent)
            except PowerShellError as error:
                raise call.terminating(error.exception, "ConstructorInvokedThrowException", "InvalidOperation") from None
        properties = parameters.get("Property")
        if isinstance(base_object(properties), Hashtable):
            for key, value in base_object(properties).items():  # type: ignore[union-attr]
                call.context.types.set_property(created, to_string(key), value, call.extent)
        yield created


# ---------------------------------------------------------------- Microsoft.PowerShell.Management (paths as strings)


def _separated(path: str) -> str:
    return path.replace("/", "\\")


@cmdlet("Join-Path")
def join_path(call: CmdletCall) -> Iterable[object]:
    """The FileSystem provider's joining, without resolving: one separator between the parts."""
    for parameters in call.records:
        if is_switch(parameters, "Resolve"):
            raise LabLimitation("The lab does not implement Join-Path -Resolve.")
        child = _separated(to_string(parameters["ChildPath"]))
        for path in enumerate_value(parameters["Path"]):
            parent = _separated(to_string(path))
            if not child:
                yield parent
            elif not parent:
                yield child
            else:
                yield parent.rstrip("\\") + "\\" + child.lstrip("\\")


@cmdlet("Split-Path")
def split_path(call: CmdletCall) -> Iterable[object]:
    """``-Parent`` (the default) and ``-Leaf`` of a FileSystem path, as strings, without resolving it."""
    if call.parameter_set not in ("ParentSet", "LeafSet"):
        raise LabLimitation(f"The lab implements Split-Path -Parent and -Leaf only, not the {call.parameter_set} parameter set.")
    for parameters in call.records:
        for path in enumerate_value(parameters["Path"]):
            text = _separated(to_string(path))
            if re.fullmatch(r"[A-Za-z]:\\?", text):
                # A drive's root has no parent, and is its own leaf.
                yield text if call.parameter_set == "LeafSet" else ""
                continue
            head, _, leaf = text.rstrip("\\").rpartition("\\")
            if call.parameter_set == "LeafSet":
                yield leaf
            else:
                yield head + "\\" if head.endswith(":") else head


@dotnet_type("System.Management.Automation.PathInfo")
class PathInfo:
    """System.Management.Automation.PathInfo: what Get-Location returns."""

    def __init__(self, path: str) -> None:
        self._path = path

    @property
    def Path(self) -> str:  # noqa: N802 - .NET member name
        return self._path

    @property
    def ProviderPath(self) -> str:  # noqa: N802
        return self._path

    def ToString(self) -> str:  # noqa: N802
        return self._path


@cmdlet("Get-Location")
def get_location(call: CmdletCall) -> Iterable[object]:
    """The process's working directory (the FileSystem location it started in)."""
    if call.parameter_set != "Location":
        raise LabLimitation("The lab does not implement Get-Location -Stack.")
    for _ in call.records:
        yield PathInfo(call.runtime.working_directory)

