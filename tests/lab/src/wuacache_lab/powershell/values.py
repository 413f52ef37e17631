"""PowerShell's values, as Python objects.

========================================  =====================================
.NET / PowerShell                          Python
========================================  =====================================
``$null``                                  ``None``
what a command with no output gives        :data:`AUTOMATION_NULL`
Boolean                                    ``bool``
Int32 (Int64 when it does not fit)         ``int``
Int64, UInt32, UInt64, Byte, Int16...      :class:`Int64`, :class:`UInt32`... (``int`` subclasses)
Double                                     ``float``
Decimal                                    ``decimal.Decimal``
String, Char                               ``str``, :class:`Char`
Object[] (typed arrays: ``[string[]]``)    ``list`` (:class:`TypedArray`)
Hashtable, OrderedDictionary               :class:`Hashtable`, :class:`OrderedDictionary`
PSCustomObject, PSObject                   :class:`PSObject`
DateTime, TimeSpan                         :class:`DateTime`, :class:`TimeSpan`
enum values                                :class:`EnumValue`
ScriptBlock                                :class:`ScriptBlock`
========================================  =====================================

Other .NET objects are Python objects registered with the type registry
(:mod:`wuacache_lab.powershell.dotnet`), COM objects are wrapped by
:mod:`wuacache_lab.powershell.com`.
"""

from __future__ import annotations

import datetime as _datetime
from decimal import Decimal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wuacache_lab.powershell.nodes import ScriptBlockBody


class _AutomationNull:
    """``AutomationNull.Value``: "no output", which ``@()`` and the pipeline treat as nothing, not as ``$null``."""

    _instance: _AutomationNull | None = None

    def __new__(cls) -> _AutomationNull:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "AutomationNull"

    def __bool__(self) -> bool:
        return False


AUTOMATION_NULL = _AutomationNull()


def is_null(value: object) -> bool:
    return value is None or value is AUTOMATION_NULL


# ---------------------------------------------------------------- numbers

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class SizedInteger(int):
    """An integer of a .NET type other than Int32, which arithmetic and JSON must tell apart."""

    dotnet_name = "System.Int64"
    minimum = INT64_MIN
    maximum = INT64_MAX

    def __new__(cls, value: int = 0) -> SizedInteger:
        value = int(value)
        if not cls.minimum <= value <= cls.maximum:
            raise OverflowError(f"{value} does not fit {cls.dotnet_name}")
        return super().__new__(cls, value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({int(self)})"


def _sized(name: str, minimum: int, maximum: int) -> type[SizedInteger]:
    return type(name, (SizedInteger,), {"dotnet_name": f"System.{name}", "minimum": minimum, "maximum": maximum})


Int64 = _sized("Int64", INT64_MIN, INT64_MAX)
UInt64 = _sized("UInt64", 0, 2**64 - 1)
UInt32 = _sized("UInt32", 0, 2**32 - 1)
Int16 = _sized("Int16", -(2**15), 2**15 - 1)
UInt16 = _sized("UInt16", 0, 2**16 - 1)
Byte = _sized("Byte", 0, 255)
SByte = _sized("SByte", -128, 127)


def integer_type_name(value: int) -> str:
    """The .NET type of an integer: a plain ``int`` is an Int32 when it fits, otherwise the next type up."""
    if isinstance(value, SizedInteger):
        return value.dotnet_name
    if INT32_MIN <= value <= INT32_MAX:
        return "System.Int32"
    if INT64_MIN <= value <= INT64_MAX:
        return "System.Int64"
    return "System.UInt64"


class Char(str):
    """A System.Char: one UTF-16 code unit."""

    def __new__(cls, value: str | int) -> Char:
        text = chr(value) if isinstance(value, int) else value
        if len(text) != 1:
            raise ValueError("a Char holds exactly one character")
        return super().__new__(cls, text)


# ---------------------------------------------------------------- dates


class DateTimeKind:
    """System.DateTimeKind."""

    Unspecified = 0
    Utc = 1
    Local = 2
    NAMES = ("Unspecified", "Utc", "Local")


TICKS_PER_SECOND = 10_000_000
TICKS_PER_MILLISECOND = 10_000
_EPOCH = _datetime.datetime(1, 1, 1)
UNIX_EPOCH_TICKS = 621_355_968_000_000_000


class DateTime:
    """System.DateTime: 100-nanosecond ticks since 0001-01-01 and a kind.

    Converting between kinds needs the host's time zone, given as a fixed
    offset from UTC by the runtime (``utc_offset``).
    """

    __slots__ = ("ticks", "kind")

    def __init__(self, ticks: int, kind: int = DateTimeKind.Unspecified) -> None:
        self.ticks = ticks
        self.kind = kind

    @classmethod
    def from_python(cls, value: _datetime.datetime, kind: int | None = None) -> DateTime:
        """A Python datetime; an aware one is converted to UTC and is of kind Utc."""
        if value.tzinfo is not None:
            value = value.astimezone(_datetime.timezone.utc).replace(tzinfo=None)
            kind = DateTimeKind.Utc if kind is None else kind
        delta = value - _EPOCH
        ticks = (delta.days * 86400 + delta.seconds) * TICKS_PER_SECOND + delta.microseconds * 10
        return cls(ticks, DateTimeKind.Unspecified if kind is None else kind)

    def to_python(self) -> _datetime.datetime:
        """A naive Python datetime (microsecond precision)."""
        return _EPOCH + _datetime.timedelta(microseconds=self.ticks // 10)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DateTime) and other.ticks == self.ticks

    def __hash__(self) -> int:
        return hash(self.ticks)

    def __lt__(self, other: DateTime) -> bool:
        return self.ticks < other.ticks

    def __repr__(self) -> str:
        return f"DateTime({self.to_python().isoformat()}, {DateTimeKind.NAMES[self.kind]})"


class TimeSpan:
    """System.TimeSpan: a signed number of ticks."""

    __slots__ = ("ticks",)

    def __init__(self, ticks: int) -> None:
        self.ticks = ticks

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TimeSpan) and other.ticks == self.ticks

    def __hash__(self) -> int:
        return hash(self.ticks)

    def __lt__(self, other: TimeSpan) -> bool:
        return self.ticks < other.ticks

    @property
    def total_seconds(self) -> float:
        return self.ticks / TICKS_PER_SECOND

    def __repr__(self) -> str:
        return f"TimeSpan({self.ticks})"


# ---------------------------------------------------------------- enums


@dataclass(frozen=True)
class EnumDefinition:
    """A .NET enum type: its full name, its fields and whether it is a ``[Flags]`` enum."""

    name: str
    fields: tuple[tuple[str, int], ...]
    flags: bool = False
    underlying: str = "System.Int32"

    def value_of(self, field_name: str) -> int | None:
        wanted = field_name.strip().casefold()
        return next((value for name, value in self.fields if name.casefold() == wanted), None)

    def format(self, value: int) -> str:
        """``Enum.ToString()``: the field's name, flags joined by ``, ``, or the number."""
        exact = next((name for name, field_value in self.fields if field_value == value), None)
        if exact is not None:
            return exact
        if self.flags and value:
            names, rest = [], value
            for name, field_value in sorted(self.fields, key=lambda item: -item[1]):
                if field_value and field_value & rest == field_value:
                    names.append(name)
                    rest &= ~field_value
            if not rest:
                return ", ".join(reversed(names))
        return str(value)


@dataclass(frozen=True)
class EnumValue:
    enum: EnumDefinition
    value: int

    def __str__(self) -> str:
        return self.enum.format(self.value)


# ---------------------------------------------------------------- collections


def _key(key: object) -> object:
    """Hashtable keys compare strings case-insensitively and keep .NET types apart (1 is not $true)."""
    if isinstance(key, str):
        return ("s", key.casefold())
    if isinstance(key, bool):
        return ("b", key)
    if isinstance(key, PSObject):
        return _key(key.base)
    return (type(key).__name__, key)


class Hashtable:
    """System.Collections.Hashtable as ``@{}`` makes it: keys compared case-insensitively.

    .NET enumerates a Hashtable in the order of its hash buckets; the lab keeps
    insertion order, which a script cannot rely on either way.
    """

    dotnet_name = "System.Collections.Hashtable"

    def __init__(self, items: object = ()) -> None:
        self._entries: dict[object, tuple[object, object]] = {}
        for key, value in items.items() if isinstance(items, dict) else items:  # type: ignore[attr-defined]
            self[key] = value

    def __getitem__(self, key: object) -> object:
        entry = self._entries.get(_key(key))
        return None if entry is None else entry[1]

    def __setitem__(self, key: object, value: object) -> None:
        normalized = _key(key)
        entry = self._entries.get(normalized)
        self._entries[normalized] = (entry[0] if entry else key, value)

    def __delitem__(self, key: object) -> None:
        self._entries.pop(_key(key), None)

    def __contains__(self, key: object) -> bool:
        return _key(key) in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[object]:
        return [key for key, _ in self._entries.values()]

    def values(self) -> list[object]:
        return [value for _, value in self._entries.values()]

    def items(self) -> list[tuple[object, object]]:
        return list(self._entries.values())

    def add(self, key: object, value: object) -> bool:
        """``Add``: False when the key is there already."""
        if key in self:
            return False
        self[key] = value
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.items()!r})"


class OrderedDictionary(Hashtable):
    """System.Collections.Specialized.OrderedDictionary, as ``[ordered]@{}`` makes it."""

    dotnet_name = "System.Collections.Specialized.OrderedDictionary"

    def insert(self, index: int, key: object, value: object) -> bool:
        """``Insert(index, key, value)``: False when the key is there already."""
        if key in self:
            return False
        entries = list(self._entries.items())
        entries.insert(index, (_key(key), (key, value)))
        self._entries = dict(entries)
        return True


class TypedArray(list):
    """An array of a given element type (``[string[]]``), as opposed to object[]."""

    def __init__(self, element_type: str, items: object = ()) -> None:
        super().__init__(items)  # type: ignore[arg-type]
        self.element_type = element_type


# ---------------------------------------------------------------- PSObject


class PSCustomObjectBase:
    """The base of a PSCustomObject: nothing but its note properties."""

    dotnet_name = "System.Management.Automation.PSCustomObject"

    def __repr__(self) -> str:
        return "PSCustomObject"


CUSTOM_OBJECT = PSCustomObjectBase()


class PSObject:
    """A value wrapped by PowerShell, with note properties of its own.

    A PSCustomObject (``[pscustomobject]@{}``, ``ConvertFrom-Json``) is a
    PSObject whose base is :data:`CUSTOM_OBJECT`. Other values are wrapped when
    they pass through a pipeline into a cmdlet, and when a cmdlet attaches
    note properties to its output (``PSPath`` on provider items...).
    """

    def __init__(self, base: object, properties: object = ()) -> None:
        self.base = base.base if isinstance(base, PSObject) else base
        self.notes: dict[str, tuple[str, object]] = {}
        if isinstance(base, PSObject):
            self.notes.update(base.notes)
        for name, value in properties.items() if isinstance(properties, dict) else properties:  # type: ignore[attr-defined]
            self.set_note(name, value)

    @classmethod
    def custom(cls, properties: object = ()) -> PSObject:
        return cls(CUSTOM_OBJECT, properties)

    @property
    def is_custom(self) -> bool:
        return self.base is CUSTOM_OBJECT

    def set_note(self, name: str, value: object) -> None:
        self.notes[name.casefold()] = (name, value)

    def has_note(self, name: str) -> bool:
        return name.casefold() in self.notes

    def note(self, name: str) -> object:
        return self.notes[name.casefold()][1]

    def note_items(self) -> Iterator[tuple[str, object]]:
        yield from self.notes.values()

    def __repr__(self) -> str:
        return f"PSObject({self.base!r}, {list(self.note_items())!r})"


def base_object(value: object) -> object:
    """The value under its PSObject wrapper; AutomationNull is ``$null`` once used as a value."""
    if isinstance(value, PSObject) and not value.is_custom:
        return value.base
    if value is AUTOMATION_NULL:
        return None
    return value


# ---------------------------------------------------------------- script blocks


class ScriptBlock:
    """System.Management.Automation.ScriptBlock: a body to run, and its text."""

    def __init__(self, body: ScriptBlockBody, text: str) -> None:
        self.body = body
        self.text = text

    def __repr__(self) -> str:
        return f"ScriptBlock({self.text[:40]!r})"


# ---------------------------------------------------------------- types


class DotNetType:
    """A .NET type as a script sees it (``[string]``, ``$x.GetType()``).

    ``members`` is the Python class that implements the type's members (see
    :mod:`wuacache_lab.powershell.dotnet`); ``python_types`` the Python classes
    whose instances are values of this type.
    """

    def __init__(
        self,
        name: str,
        base: DotNetType | None = None,
        *,
        interfaces: tuple[str, ...] = (),
        enum: EnumDefinition | None = None,
        element: DotNetType | None = None,
        generic_arguments: tuple[DotNetType, ...] = (),
        members: type | None = None,
        python_types: tuple[type, ...] = (),
        value_type: bool = False,
    ) -> None:
        self.name = name
        self.base = base
        self.interfaces = interfaces
        self.enum = enum
        self.element = element
        self.generic_arguments = generic_arguments
        self.members = members
        self.python_types = python_types
        self.value_type = value_type or enum is not None

    @property
    def full_name(self) -> str:
        """``Type.ToString()``: ``System.String[]``, ``System.Collections.Generic.List`1[System.Object]``."""
        if self.element is not None:
            return f"{self.element.full_name}[]"
        if self.generic_arguments:
            return f"{self.name}[{','.join(argument.full_name for argument in self.generic_arguments)}]"
        return self.name

    @property
    def short_name(self) -> str:
        return self.full_name.rsplit(".", 1)[-1] if self.element is None else f"{self.element.short_name}[]"

    def lineage(self) -> list[str]:
        """Its name, its base types' and its interfaces', for ``-is`` and ``catch``."""
        names: list[str] = []
        current: DotNetType | None = self
        while current is not None:
            names.append(current.full_name)
            if current.generic_arguments:
                names.append(current.name)
            names.extend(current.interfaces)
            current = current.base
        return names

    def is_a(self, other: DotNetType) -> bool:
        wanted = other.full_name.casefold()
        return any(name.casefold() == wanted for name in self.lineage())

    def __repr__(self) -> str:
        return f"[{self.full_name}]"


def type_name_of(value: object) -> str:
    """The full name of a value's .NET type (``$x.GetType().FullName``)."""
    if value is None or value is AUTOMATION_NULL:
        raise ValueError("$null has no type")
    if isinstance(value, PSObject):
        return "System.Management.Automation.PSCustomObject" if value.is_custom else type_name_of(value.base)
    if isinstance(value, bool):
        return "System.Boolean"
    if isinstance(value, int):
        return integer_type_name(value)
    if isinstance(value, float):
        return "System.Double"
    if isinstance(value, Decimal):
        return "System.Decimal"
    if isinstance(value, Char):
        return "System.Char"
    if isinstance(value, str):
        return "System.String"
    if isinstance(value, TypedArray):
        return f"{value.element_type}[]"
    if isinstance(value, list):
        return "System.Object[]"
    if isinstance(value, EnumValue):
        return value.enum.name
    if isinstance(value, DateTime):
        return "System.DateTime"
    if isinstance(value, TimeSpan):
        return "System.TimeSpan"
    if isinstance(value, ScriptBlock):
        return "System.Management.Automation.ScriptBlock"
    if isinstance(value, DotNetType):
        return "System.RuntimeType"
    name = getattr(value, "dotnet_name", None) or getattr(value, "type_name", None)
    if isinstance(name, str):
        return name
    raise TypeError(f"{type(value).__name__} is not a value of the lab's PowerShell")
