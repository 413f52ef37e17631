"""LanguagePrimitives: truth, strings, numbers, enumeration and conversions.

These are the rules PowerShell applies everywhere a value changes type: in
``if`` conditions, in string expansion, for casts (``[int]'12'``), for typed
parameters and variables, and before operators. They follow Windows
PowerShell 5.1 (about_Type_Conversion is not in the 5.1 reference; the rules
are those of about_Booleans, about_Numeric_Literals and about_Arrays, with
the messages of System.Management.Automation's resources).
"""

from __future__ import annotations

import datetime as _datetime
import re
from collections.abc import Iterator
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from wuacache_lab.powershell import formatting
from wuacache_lab.powershell.errors import DotNetException, ErrorRecord, PowerShellError, runtime_error
from wuacache_lab.powershell.values import (
    AUTOMATION_NULL,
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    UNIX_EPOCH_TICKS,
    Byte,
    Char,
    DateTime,
    DateTimeKind,
    DotNetType,
    EnumValue,
    Hashtable,
    Int16,
    Int64,
    OrderedDictionary,
    PSObject,
    SByte,
    ScriptBlock,
    TimeSpan,
    TypedArray,
    UInt16,
    UInt32,
    UInt64,
    base_object,
    is_null,
    type_name_of,
)

_INTEGER_TYPES: dict[str, type[int]] = {
    "System.Int32": int,
    "System.Int64": Int64,
    "System.UInt64": UInt64,
    "System.UInt32": UInt32,
    "System.Int16": Int16,
    "System.UInt16": UInt16,
    "System.Byte": Byte,
    "System.SByte": SByte,
}
_INTEGER_LIMITS = {
    "System.Int32": (INT32_MIN, INT32_MAX),
    "System.Int64": (INT64_MIN, INT64_MAX),
    "System.UInt64": (0, 2**64 - 1),
    "System.UInt32": (0, 2**32 - 1),
    "System.Int16": (-(2**15), 2**15 - 1),
    "System.UInt16": (0, 2**16 - 1),
    "System.Byte": (0, 255),
    "System.SByte": (-128, 127),
}
NUMERIC_TYPES = frozenset({*_INTEGER_TYPES, "System.Double", "System.Single", "System.Decimal"})


def is_number(value: object) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


# ---------------------------------------------------------------- enumeration


def is_enumerable(value: object) -> bool:
    """LanguagePrimitives.GetEnumerable: arrays and collections, but not strings nor dictionaries."""
    value = base_object(value)
    if isinstance(value, (str, Hashtable, PSObject, DotNetException, ErrorRecord, DotNetType, bytes)):
        return False
    # A COM object is enumerable when its interface has _NewEnum.
    declared = getattr(value, "ps_enumerable", None)
    if declared is not None:
        return bool(declared)
    return isinstance(value, list) or hasattr(value, "__iter__")


def enumerate_value(value: object) -> Iterator[object]:
    """What the pipeline and ``foreach`` see of a value: its elements, or the value itself."""
    if is_enumerable(value):
        yield from base_object(value)  # type: ignore[misc]
    else:
        yield value


# ---------------------------------------------------------------- truth


def to_bool(value: object) -> bool:
    """about_Booleans: empty strings, zero, ``$null`` and empty arrays are false; one element is judged alone."""
    value = base_object(value)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, Char):
        return value != "\0"
    if isinstance(value, str):
        return value != ""
    if is_number(value):
        return value != 0
    if isinstance(value, EnumValue):
        return value.value != 0
    if isinstance(value, SwitchParameter):
        return value.is_present
    if isinstance(value, list):
        if not value:
            return False
        return to_bool(value[0]) if len(value) == 1 else True
    if is_enumerable(value) and not isinstance(value, Hashtable):
        items = list(value)  # type: ignore[call-overload]
        if not items:
            return False
        return to_bool(items[0]) if len(items) == 1 else True
    return True


class SwitchParameter:
    """System.Management.Automation.SwitchParameter: ``[switch]`` parameters."""

    dotnet_name = "System.Management.Automation.SwitchParameter"

    def __init__(self, is_present: bool) -> None:
        self.is_present = is_present

    @property
    def IsPresent(self) -> bool:  # noqa: N802 - .NET member name
        return self.is_present

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SwitchParameter) and other.is_present == self.is_present

    def __hash__(self) -> int:
        return hash(self.is_present)


# ---------------------------------------------------------------- strings

OUTPUT_FIELD_SEPARATOR = " "


def to_string(value: object, local_offset_minutes: int = 0) -> str:
    """PowerShell's string conversion (invariant culture): ``"$x"``, ``[string]$x``, typed ``[string]`` parameters."""
    value = base_object(value)
    if value is None:
        return ""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (bool, int, float, Decimal)):
        return formatting.number_to_string(value)
    if is_enumerable(value):
        return OUTPUT_FIELD_SEPARATOR.join(to_string(item, local_offset_minutes) for item in value)  # type: ignore[union-attr]
    return object_to_string(value, local_offset_minutes)


def object_to_string(value: object, local_offset_minutes: int = 0) -> str:
    """``ToString()`` of one object, as PowerShell shows objects nested in others."""
    value = base_object(value)
    if value is None:
        return ""
    if isinstance(value, PSObject):
        return "@{" + "; ".join(f"{name}={object_to_string(item)}" for name, item in value.note_items()) + "}"
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (bool, int, float, Decimal)):
        return formatting.number_to_string(value)
    if isinstance(value, DateTime):
        # The invariant culture's general format.
        return formatting.format_datetime(value, "MM/dd/yyyy HH:mm:ss", local_offset_minutes)
    if isinstance(value, TimeSpan):
        return formatting.format_timespan(value)
    if isinstance(value, EnumValue):
        return str(value)
    if isinstance(value, ScriptBlock):
        return value.text
    if isinstance(value, DotNetType):
        return value.full_name
    if isinstance(value, SwitchParameter):
        return "True" if value.is_present else "False"
    if isinstance(value, DotNetException):
        return f"{value.type_name}: {value.message}"
    if isinstance(value, ErrorRecord):
        return value.error_details or (value.exception.message if isinstance(value.exception, DotNetException) else "")
    to_string_member = getattr(value, "ToString", None)
    if callable(to_string_member):
        return str(to_string_member())
    return type_name_of(value)


# ---------------------------------------------------------------- numbers


def parse_number(text: str) -> int | float | Decimal:
    """A string read as PowerShell reads numbers: Int32, Int64, Decimal or Double; ``0x`` hex allowed."""
    stripped = text.strip()
    if stripped == "":
        return 0
    hex_match = re.fullmatch(r"([+-]?)0x([0-9a-fA-F]+)", stripped)
    if hex_match:
        value = int(hex_match.group(2), 16)
        if value <= 0xFFFFFFFF:
            value = value - (1 << 32) if value & 0x80000000 else value
        elif value <= 0xFFFFFFFFFFFFFFFF:
            value = Int64(value - (1 << 64) if value & (1 << 63) else value)
        else:
            raise ValueError(text)
        return -value if hex_match.group(1) == "-" else value
    if re.fullmatch(r"[+-]?\d+", stripped):
        value = int(stripped)
        if INT32_MIN <= value <= INT32_MAX:
            return value
        if INT64_MIN <= value <= INT64_MAX:
            return Int64(value)
        return Decimal(value)
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", stripped):
        return float(stripped)
    raise ValueError(text)


def to_number(value: object) -> int | float | Decimal:
    """An operand of arithmetic: numbers as they are, ``$null`` 0, booleans 0 or 1, strings parsed."""
    value = base_object(value)
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if is_number(value):
        return value  # type: ignore[return-value]
    if isinstance(value, Char):
        return ord(value)
    if isinstance(value, EnumValue):
        return value.value
    if isinstance(value, str):
        try:
            return parse_number(value)
        except ValueError:
            raise _cast_error(value, "System.Double", "Input string was not in a correct format.", "InvalidCastFromStringToDoubleOrSingle") from None
    raise _cast_error_plain(value, "System.Double")


def _round_half_even(value: float | Decimal) -> int:
    return int(Decimal(str(value) if isinstance(value, float) else value).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def to_integer(value: object, type_name: str = "System.Int32") -> int:
    """Convert.ToInt32 and kin: doubles round half to even; out of range is an OverflowException."""
    number = to_number(value)
    if isinstance(number, (float, Decimal)):
        if isinstance(number, float) and (number != number or number in (float("inf"), float("-inf"))):
            raise _cast_error(value, type_name, f"Value was either too large or too small for an {type_name[7:]}.")
        number = _round_half_even(number)
    low, high = _INTEGER_LIMITS[type_name]
    if not low <= number <= high:
        raise _cast_error(value, type_name, f"Value was either too large or too small for an {type_name[7:]}.")
    kind = _INTEGER_TYPES[type_name]
    return kind(number) if kind is not int else int(number)


# ---------------------------------------------------------------- conversion


def _cast_error(value: object, type_name: str, reason: str, error_id: str = "InvalidCastWithInnerException") -> PowerShellError:
    text = to_string(value)
    inner = DotNetException("System.Management.Automation.PSInvalidCastException", f'Cannot convert value "{text}" to type "{type_name}". Error: "{reason}"')
    return runtime_error(inner.message, error_id, category="InvalidArgument", inner=inner)


def _cast_error_plain(value: object, type_name: str) -> PowerShellError:
    value = base_object(value)
    if value is None:
        message = f'Cannot convert null to type "{type_name}".'
        error_id = "InvalidCastFromNull"
    else:
        message = f'Cannot convert the "{object_to_string(value)}" value of type "{type_name_of(value)}" to type "{type_name}".'
        error_id = "ConvertToFinalInvalidCastException"
    inner = DotNetException("System.Management.Automation.PSInvalidCastException", message)
    return runtime_error(message, error_id, category="InvalidArgument", inner=inner)


def convert_to(value: object, target: DotNetType, local_offset_minutes: int = 0) -> object:
    """``[target]value``: LanguagePrimitives.ConvertTo for the types the scripts use.

    A Python class implementing a .NET type may define ``convert_from(value)``
    (a classmethod) for the conversions PowerShell makes through a
    constructor or a ``Parse`` method (``[uri]'http://...'``).
    """
    name = target.full_name
    if value is AUTOMATION_NULL:
        value = None
    if name in ("System.Object",):
        return value
    if name == "System.Management.Automation.PSObject":
        return value if value is None or isinstance(value, PSObject) else PSObject(value)
    plain = base_object(value)
    if target.element is not None:
        return _convert_array(value, target, local_offset_minutes)
    if name == "System.String":
        return to_string(plain, local_offset_minutes)
    if name == "System.Boolean":
        return to_bool(plain)
    if name == "System.Management.Automation.SwitchParameter":
        return SwitchParameter(to_bool(plain))
    if name == "System.Char":
        return _to_char(plain)
    if name in _INTEGER_TYPES:
        if isinstance(plain, str) and not isinstance(plain, Char):
            try:
                return to_integer(parse_number(plain) if plain.strip() else 0, name)
            except ValueError:
                raise _cast_error(plain, name, "Input string was not in a correct format.", "InvalidCastFromStringToInteger") from None
        if plain is None or isinstance(plain, (bool, int, float, Decimal, Char, EnumValue)):
            return to_integer(plain, name)
        raise _cast_error_plain(plain, name)
    if name in ("System.Double", "System.Single"):
        if plain is None or isinstance(plain, (bool, int, float, Decimal, Char, str, EnumValue)):
            return float(to_number(plain))
        raise _cast_error_plain(plain, name)
    if name == "System.Decimal":
        if plain is None or isinstance(plain, (bool, int, float, Decimal, str)):
            number = to_number(plain)
            try:
                return Decimal(str(number)) if isinstance(number, float) else Decimal(number)
            except InvalidOperation:
                raise _cast_error_plain(plain, name) from None
        raise _cast_error_plain(plain, name)
    if name == "System.DateTime":
        return _to_datetime(plain, local_offset_minutes)
    if name == "System.TimeSpan":
        if isinstance(plain, TimeSpan):
            return plain
        if isinstance(plain, int) and not isinstance(plain, bool):
            return TimeSpan(int(plain))
        raise _cast_error_plain(plain, name)
    if target.enum is not None:
        return _to_enum(plain, target)
    if name == "System.Management.Automation.PSCustomObject":
        if isinstance(plain, Hashtable):
            return PSObject.custom(plain.items())
        return value if isinstance(value, PSObject) else PSObject(value)
    if name == "System.Collections.Hashtable":
        if isinstance(plain, Hashtable):
            return plain if type(plain) is Hashtable else Hashtable(plain.items())
        raise _cast_error_plain(plain, name)
    if name == "System.Management.Automation.ScriptBlock":
        if isinstance(plain, ScriptBlock):
            return plain
        raise _cast_error_plain(plain, name)
    if plain is None:
        if target.value_type:
            raise _cast_error_plain(None, name)
        return None
    if _is_instance(plain, target):
        return plain
    converter = getattr(target.members, "convert_from", None)
    if converter is not None:
        try:
            return converter(plain)
        except PowerShellError as error:
            raise _cast_error(plain, name, error.exception.message) from None
    raise _cast_error_plain(plain, name)


def _is_instance(value: object, target: DotNetType) -> bool:
    if target.python_types and isinstance(value, target.python_types):
        return True
    wanted = target.full_name.casefold()
    if isinstance(value, DotNetException):
        return value.is_a(target.full_name)
    if isinstance(value, (list, TypedArray)):
        return wanted in ("system.array", "system.collections.ienumerable", "system.collections.ilist", "system.collections.icollection")
    if isinstance(value, Hashtable):
        names = {"system.collections.idictionary", "system.collections.ienumerable", "system.collections.icollection"}
        return wanted in names or (wanted == "system.collections.hashtable" and not isinstance(value, OrderedDictionary))
    own_type = getattr(value, "dotnet_type", None)
    return isinstance(own_type, DotNetType) and own_type.is_a(target)


def _convert_array(value: object, target: DotNetType, local_offset_minutes: int) -> object:
    assert target.element is not None
    if is_null(value):
        return None
    items = list(enumerate_value(value))
    converted = [convert_to(item, target.element, local_offset_minutes) for item in items]
    if target.element.full_name == "System.Object":
        return converted
    return TypedArray(target.element.full_name, converted)


def _to_char(value: object) -> Char:
    if isinstance(value, Char):
        return value
    if isinstance(value, str) and len(value) == 1:
        return Char(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFFFF:
        return Char(int(value))
    if isinstance(value, str):
        raise _cast_error(value, "System.Char", "String must be exactly one character long.")
    raise _cast_error_plain(value, "System.Char")


_DATE_FORMATS = (
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%a, %d %b %Y %H:%M:%S GMT",
)


def _to_datetime(value: object, local_offset_minutes: int) -> DateTime:
    """DateTime.Parse with the invariant culture: an offset or ``Z`` gives a Local time, as .NET does."""
    if isinstance(value, DateTime):
        return value
    if not isinstance(value, str):
        raise _cast_error_plain(value, "System.DateTime")
    text = value.strip()
    match = re.fullmatch(r"(.*?)(\.\d+)?(Z|[+-]\d\d:\d\d)?", text)
    assert match is not None
    body, fraction, zone = match.group(1), match.group(2) or "", match.group(3)
    for pattern in _DATE_FORMATS:
        try:
            parsed = _datetime.datetime.strptime(body + (fraction[:7] if "%f" in pattern else ""), pattern)
        except ValueError:
            continue
        moment = DateTime.from_python(parsed)
        if fraction and "%f" in pattern:
            moment = DateTime(moment.ticks - parsed.microsecond * 10 + int(fraction[1:8].ljust(7, "0")))
        if zone is None:
            return moment
        offset = 0 if zone == "Z" else (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 60 + int(zone[4:6]))
        utc_ticks = moment.ticks - offset * 60 * 10_000_000
        return DateTime(utc_ticks + local_offset_minutes * 60 * 10_000_000, DateTimeKind.Local)
    raise _cast_error(value, "System.DateTime", f"String '{value}' was not recognized as a valid DateTime.")


def _to_enum(value: object, target: DotNetType) -> EnumValue:
    enum = target.enum
    assert enum is not None
    names = ", ".join(name for name, _ in enum.fields)
    if isinstance(value, EnumValue) and value.enum.name == enum.name:
        return value
    if isinstance(value, str):
        total = 0
        parts = value.split(",")
        if len(parts) > 1 and not enum.flags:
            raise _enum_error(value, enum.name, f'Cannot convert value "{value}" to type "{enum.name}" because no commas are allowed for this enumeration.')
        for part in parts:
            found = enum.value_of(part)
            if found is None:
                if part.strip().lstrip("-").isdigit():
                    found = int(part)
                else:
                    raise _enum_error(
                        value,
                        enum.name,
                        f'Cannot convert value "{part.strip()}" to type "{enum.name}" due to enumeration values that are not valid. '
                        f'Specify one of the following enumeration values and try again. The possible enumeration values are "{names}".',
                    )
            total |= found
        return EnumValue(enum, total)
    if isinstance(value, int) and not isinstance(value, bool):
        number = int(value)
        defined = {field_value for _, field_value in enum.fields}
        if not enum.flags and number not in defined:
            raise _enum_error(
                value,
                enum.name,
                f'Cannot convert value "{number}" to type "{enum.name}" due to enumeration values that are not valid. '
                f'Specify one of the following enumeration values and try again. The possible enumeration values are "{names}".',
            )
        return EnumValue(enum, number)
    if isinstance(value, EnumValue):
        return _to_enum(value.value, target)
    raise _cast_error_plain(value, enum.name)


def _enum_error(value: object, type_name: str, message: str) -> PowerShellError:
    inner = DotNetException("System.Management.Automation.PSInvalidCastException", message)
    return runtime_error(message, "InvalidCastEnumStringNotFound", category="InvalidArgument", inner=inner)


def ticks_to_unix_milliseconds(ticks: int) -> int:
    return (ticks - UNIX_EPOCH_TICKS) // 10_000


def local_to_utc_ticks(value: DateTime, local_offset_minutes: int) -> int:
    """The UTC ticks of a date: Unspecified and Local dates are taken as local time, as ToUniversalTime does."""
    if value.kind == DateTimeKind.Utc:
        return value.ticks
    return value.ticks - local_offset_minutes * 60 * 10_000_000

