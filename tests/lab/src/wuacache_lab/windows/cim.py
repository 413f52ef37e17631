"""``Get-CimInstance`` on an emulated host, and the CimInstance objects it writes.

The classes and their properties are those of the contract tables (the
CIMWin32 provider's pages of MicrosoftDocs/win32, with inherited
properties); the values are the host's (:meth:`~wuacache_lab.windows.system.WindowsSystem.cim_instances`).
PowerShell's CIM adapter shows a CIM property as a property of the object,
typed as the Microsoft.Management.Infrastructure API gives it: ``uint32`` a
UInt32, ``uint64`` a UInt64, ``datetime`` a local DateTime, ``string`` a
String (about_CimSession; CimType, dotnet/dotnet-api-docs). A property the
class does not have is missing as any other member is (``$null``, or a
PropertyNotFoundException under strict mode).
"""

from __future__ import annotations

import datetime as _datetime
from collections.abc import Iterable

from wuacache_lab.powershell import contracts
from wuacache_lab.powershell.commands import CmdletCall, cmdlet
from wuacache_lab.powershell.conversions import to_string
from wuacache_lab.powershell.dotnet import dotnet_type, property_not_found_strict
from wuacache_lab.powershell.errors import LabLimitation
from wuacache_lab.powershell.nodes import Extent
from wuacache_lab.powershell.values import (
    TICKS_PER_SECOND,
    Byte,
    DateTime,
    DateTimeKind,
    Int16,
    Int64,
    TypedArray,
    UInt16,
    UInt32,
    UInt64,
)
from wuacache_lab.windows.runtime import host_runtime

# CIM types and the .NET types the CIM adapter gives their values.
_INTEGERS = {"uint16": UInt16, "uint32": UInt32, "uint64": UInt64, "sint16": Int16, "sint32": int, "sint64": Int64, "uint8": Byte}


@dotnet_type("Microsoft.Management.Infrastructure.CimInstance")
class CimInstance:
    """An instance of a CIM class, its properties adapted as PowerShell's CIM adapter shows them."""

    def __init__(self, class_name: str, values: dict[str, object], utc_offset_minutes: int) -> None:
        described = contracts.cim_class(class_name)
        assert described is not None
        self._class = described
        self._values = values
        self._offset = utc_offset_minutes

    def ps_get_property(self, name: str, strict: int, extent: Extent | None) -> object:
        # The table keys a class's properties by their lower-case names.
        prop = self._class.properties.get(name.lower())
        if prop is None:
            if strict >= 2:
                raise property_not_found_strict(name, extent)
            return None
        found = next((value for key, value in self._values.items() if key.casefold() == prop.name.casefold()), _MISSING)
        if found is _MISSING:
            raise LabLimitation(f"The lab's {self._class.name} has no value for {prop.name}.")
        return self._typed(found, prop.cim_type, prop.array)

    def ps_set_property(self, name: str, value: object, extent: Extent | None) -> None:
        raise LabLimitation("The lab's CIM instances are read-only.")

    def ps_invoke_method(self, name: str, arguments: list[object], extent: Extent | None) -> object:
        if name.casefold() == "tostring" and not arguments:
            return self.ToString()
        raise LabLimitation(f"The lab does not call {name}() on CIM instances.")

    def _typed(self, value: object, cim_type: str, array: bool) -> object:
        if value is None:
            return None
        if array:
            return TypedArray("System.Object", [self._typed(item, cim_type, False) for item in value])  # type: ignore[union-attr]
        if cim_type in _INTEGERS:
            return _INTEGERS[cim_type](value)  # type: ignore[call-overload]
        if cim_type == "datetime":
            assert isinstance(value, _datetime.datetime)
            utc = DateTime.from_python(value)
            return DateTime(utc.ticks + self._offset * 60 * TICKS_PER_SECOND, DateTimeKind.Local)
        if cim_type == "boolean":
            return bool(value)
        if cim_type == "string":
            return str(value)
        raise LabLimitation(f"The lab does not adapt CIM values of type {cim_type}.")

    def ToString(self) -> str:  # noqa: N802
        return f"{self._class.name}"


_MISSING = object()


@cmdlet("Get-CimInstance")
def get_cim_instance(call: CmdletCall) -> Iterable[object]:
    """``-ClassName`` with an optional ``-Filter`` (one ``Property='value'`` equality), on the local computer."""
    runtime = host_runtime()
    for parameters in call.records:
        if call.parameter_set != "ClassNameComputerSet" or parameters.get("ComputerName"):
            raise LabLimitation("The lab's Get-CimInstance takes -ClassName [-Filter] on the local computer.")
        namespace = to_string(parameters.get("Namespace", "root/cimv2")).replace("\\", "/").casefold()
        class_name = to_string(parameters["ClassName"])
        if namespace != "root/cimv2" or contracts.cim_class(class_name) is None:
            raise LabLimitation(f"The lab has no CIM class {namespace}:{class_name}.")
        wql_filter = parameters.get("Filter")
        try:
            instances = runtime.system.cim_instances(class_name, to_string(wql_filter) if wql_filter is not None else None)
        except NotImplementedError as error:
            raise LabLimitation(str(error)) from None
        for values in instances:
            yield CimInstance(class_name, values, runtime.utc_offset_minutes)
