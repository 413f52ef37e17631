"""The .NET Framework types that touch no machine state, as the scripts use them.

Strings, characters and numbers; DateTime and TimeSpan (the clock comes from
the runtime); Uri; regular expressions; List`1 and Stack`1; Hashtable and
OrderedDictionary; arrays; exceptions and PowerShell's ErrorRecord;
ScriptBlock; enums. Members are named and behave as in .NET Framework 4.8
(the dotnet/dotnet-api-docs page of each member); which of them exist is
checked against the contract tables by the type registry.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

from wuacache_lab.powershell import formatting, regex
from wuacache_lab.powershell.conversions import (
    enumerate_value,
    local_to_utc_ticks,
    object_to_string,
    to_integer,
    to_string,
)
from wuacache_lab.powershell.dotnet import constructor, dotnet_type, register_enum, static, static_property
from wuacache_lab.powershell.errors import DotNetException, ErrorRecord, dotnet_error
from wuacache_lab.powershell.operators import values_equal
from wuacache_lab.powershell.reference import ReferenceContracts
from wuacache_lab.powershell.runtime import current_runtime, invoke_delegate
from wuacache_lab.powershell.values import (
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    TICKS_PER_MILLISECOND,
    TICKS_PER_SECOND,
    Char,
    DateTime,
    DateTimeKind,
    DotNetType,
    EnumValue,
    Hashtable,
    Int64,
    OrderedDictionary,
    Byte,
    Int16,
    SByte,
    ScriptBlock,
    TimeSpan,
    TypedArray,
    UInt16,
    UInt32,
    UInt64,
)

DAY_OF_WEEK = register_enum(
    "System.DayOfWeek",
    {"Sunday": 0, "Monday": 1, "Tuesday": 2, "Wednesday": 3, "Thursday": 4, "Friday": 5, "Saturday": 6},
)
STRING_SPLIT_OPTIONS = register_enum("System.StringSplitOptions", {"None": 0, "RemoveEmptyEntries": 1})
STRING_COMPARISON = register_enum(
    "System.StringComparison",
    {
        "CurrentCulture": 0,
        "CurrentCultureIgnoreCase": 1,
        "InvariantCulture": 2,
        "InvariantCultureIgnoreCase": 3,
        "Ordinal": 4,
        "OrdinalIgnoreCase": 5,
    },
)
REGEX_OPTIONS = register_enum(
    "System.Text.RegularExpressions.RegexOptions",
    {
        "None": 0,
        "IgnoreCase": regex.IGNORE_CASE,
        "Multiline": regex.MULTILINE,
        "ExplicitCapture": regex.EXPLICIT_CAPTURE,
        "Compiled": 8,
        "Singleline": regex.SINGLELINE,
        "IgnorePatternWhitespace": regex.IGNORE_PATTERN_WHITESPACE,
        "RightToLeft": 64,
        "ECMAScript": 256,
        "CultureInvariant": regex.CULTURE_INVARIANT,
    },
    flags=True,
)


def _offset() -> int:
    return current_runtime().utc_offset_minutes


def _ignore_case(comparison: object) -> bool:
    value = comparison.value if isinstance(comparison, EnumValue) else to_integer(comparison)
    return value in (1, 3, 5)


def _argument_out_of_range(message: str, parameter: str) -> Exception:
    return dotnet_error("System.ArgumentOutOfRangeException", f"{message}\r\nParameter name: {parameter}", ParamName=parameter)


# ---------------------------------------------------------------- System.Object and System.String


@dotnet_type("System.String", instances=(str,))
class StringMembers:
    """System.String. Ordinal and culture comparisons are the same for the lab's (ASCII) data."""

    @static_property
    def Empty() -> str:  # noqa: N802 - .NET member name
        return ""

    @static
    def IsNullOrEmpty(value: object) -> bool:  # noqa: N802
        return value is None or value == ""

    @static
    def IsNullOrWhiteSpace(value: object) -> bool:  # noqa: N802
        return value is None or str(value).strip() == ""

    @static
    def Join(separator: object, *values: object) -> str:  # noqa: N802
        items = list(enumerate_value(values[0])) if len(values) == 1 else list(values)
        return to_string(separator).join(object_to_string(item) for item in items)

    @static
    def Format(template: object, *arguments: object) -> str:  # noqa: N802
        from wuacache_lab.powershell.operators import format_operator

        items = list(enumerate_value(arguments[0])) if len(arguments) == 1 and isinstance(arguments[0], list) else list(arguments)
        return format_operator(template, items, format_value)

    @static
    def Concat(*values: object) -> str:  # noqa: N802
        return "".join(object_to_string(value) for value in values)

    @property
    def Length(self: str) -> int:  # noqa: N802
        return len(self)

    def ToLower(self: str) -> str:  # noqa: N802
        return self.lower()

    def ToUpper(self: str) -> str:  # noqa: N802
        return self.upper()

    def ToLowerInvariant(self: str) -> str:  # noqa: N802
        return self.lower()

    def ToUpperInvariant(self: str) -> str:  # noqa: N802
        return self.upper()

    def Trim(self: str, *characters: object) -> str:  # noqa: N802
        return self.strip(_characters(characters))

    def TrimStart(self: str, *characters: object) -> str:  # noqa: N802
        return self.lstrip(_characters(characters))

    def TrimEnd(self: str, *characters: object) -> str:  # noqa: N802
        return self.rstrip(_characters(characters))

    def Contains(self: str, value: object) -> bool:  # noqa: N802
        return to_string(value) in self

    def StartsWith(self: str, value: object, comparison: object = 0) -> bool:  # noqa: N802
        text = to_string(value)
        return self.casefold().startswith(text.casefold()) if _ignore_case(comparison) else self.startswith(text)

    def EndsWith(self: str, value: object, comparison: object = 0) -> bool:  # noqa: N802
        text = to_string(value)
        return self.casefold().endswith(text.casefold()) if _ignore_case(comparison) else self.endswith(text)

    def Equals(self: str, value: object, comparison: object = 4) -> bool:  # noqa: N802
        if not isinstance(value, str):
            return False
        return self.casefold() == value.casefold() if _ignore_case(comparison) else self == value

    def IndexOf(self: str, value: object, start: object = 0) -> int:  # noqa: N802
        return self.find(to_string(value), to_integer(start))

    def LastIndexOf(self: str, value: object) -> int:  # noqa: N802
        return self.rfind(to_string(value))

    def Substring(self: str, start: object, length: object = None) -> str:  # noqa: N802
        begin = to_integer(start)
        if not 0 <= begin <= len(self):
            raise _argument_out_of_range("startIndex cannot be larger than length of string.", "startIndex")
        if length is None:
            return self[begin:]
        count = to_integer(length)
        if count < 0 or begin + count > len(self):
            raise _argument_out_of_range("Index and length must refer to a location within the string.", "length")
        return self[begin : begin + count]

    def Replace(self: str, old: object, new: object) -> str:  # noqa: N802
        return self.replace(to_string(old), to_string(new))

    def Insert(self: str, index: object, value: object) -> str:  # noqa: N802
        position = to_integer(index)
        return self[:position] + to_string(value) + self[position:]

    def Remove(self: str, start: object, count: object = None) -> str:  # noqa: N802
        begin = to_integer(start)
        return self[:begin] if count is None else self[:begin] + self[begin + to_integer(count) :]

    def PadLeft(self: str, width: object, character: object = " ") -> str:  # noqa: N802
        return self.rjust(to_integer(width), str(character))

    def PadRight(self: str, width: object, character: object = " ") -> str:  # noqa: N802
        return self.ljust(to_integer(width), str(character))

    def Split(self: str, separators: object = None, options: object = 0) -> list[object]:  # noqa: N802
        if isinstance(options, (int, EnumValue)) and not isinstance(options, bool):
            remove_empty = (options.value if isinstance(options, EnumValue) else int(options)) == 1
        else:
            remove_empty = False
        items = [separators] if isinstance(separators, str) else list(separators or [])  # type: ignore[arg-type]
        if not items:
            parts = re.split(r"\s", self)
        elif all(isinstance(item, str) and len(item) == 1 for item in items) and not isinstance(separators, list):
            parts = re.split("|".join(re.escape(item) for item in separators), self)  # type: ignore[union-attr]
        else:
            parts = re.split("|".join(re.escape(to_string(item)) for item in items), self)
        return [part for part in parts if part or not remove_empty]

    def ToCharArray(self: str) -> list[object]:  # noqa: N802
        return [Char(character) for character in self]

    def ToString(self: str, *_: object) -> str:  # noqa: N802
        return str(self)

    def CompareTo(self: str, other: object) -> int:  # noqa: N802
        a, b = self.casefold(), to_string(other).casefold()
        return (a > b) - (a < b)

    def GetHashCode(self: str) -> int:  # noqa: N802
        return hash(self) & 0x7FFFFFFF


def _characters(characters: tuple[object, ...]) -> str | None:
    if not characters:
        return None
    items = list(enumerate_value(characters[0])) if len(characters) == 1 else list(characters)
    return "".join(str(item) for item in items)


# ---------------------------------------------------------------- System.Text.Encoding


@dotnet_type("System.Text.Encoding")
class EncodingMembers:
    """System.Text.Encoding: the UTF-8 encoding only."""

    @static_property
    def UTF8() -> UTF8Encoding:  # noqa: N802
        return UTF8Encoding()


@dotnet_type("System.Text.UTF8Encoding", base="System.Text.Encoding")
class UTF8Encoding:
    """What Encoding.UTF8 returns."""

    def GetBytes(self, s: object) -> TypedArray:  # noqa: N802
        if s is None:
            raise dotnet_error("System.ArgumentNullException", "String reference not set to an instance of a String.\r\nParameter name: s", ParamName="s")
        return TypedArray("System.Byte", (Byte(value) for value in to_string(s).encode("utf-8")))


@dotnet_type("System.Char", instances=(Char,), value_type=True)
class CharMembers:
    def ToString(self: Char) -> str:  # noqa: N802
        return str(self)

    @static
    def IsDigit(value: object) -> bool:  # noqa: N802
        return str(value).isdigit()

    @static
    def IsLetter(value: object) -> bool:  # noqa: N802
        return str(value).isalpha()

    @static
    def IsWhiteSpace(value: object) -> bool:  # noqa: N802
        return str(value).isspace()


@dotnet_type("System.Boolean", instances=(bool,), value_type=True)
class BooleanMembers:
    def ToString(self: bool) -> str:  # noqa: N802
        return "True" if self else "False"

    def CompareTo(self: bool, other: object) -> int:  # noqa: N802
        return int(self) - int(bool(other))


# ---------------------------------------------------------------- numbers


def format_value(value: object, spec: str) -> str:
    """One argument of a composite format (``-f``, String.Format) or of ``ToString(format)``."""
    if isinstance(value, DateTime):
        return formatting.format_datetime(value, spec, _offset())
    if isinstance(value, TimeSpan):
        return formatting.format_timespan(value)
    if isinstance(value, EnumValue) and not spec:
        return str(value)
    if spec and formatting.is_formattable_number(value):
        return formatting.format_number(value, spec)
    if isinstance(value, list):
        # String.Format calls ToString(), which an array does not override.
        return "System.Object[]"
    return object_to_string(value, _offset())


class _NumberMembers:
    def ToString(self: object, format_string: object = None, provider: object = None) -> str:  # noqa: N802
        return formatting.format_number(self, to_string(format_string)) if format_string else object_to_string(self)

    def CompareTo(self: object, other: object) -> int:  # noqa: N802
        from wuacache_lab.powershell.operators import compare

        return compare(self, other)

    def Equals(self: object, other: object) -> bool:  # noqa: N802
        return values_equal(self, other)


def _number_type(name: str, instances: tuple[type, ...], minimum: object, maximum: object) -> type:
    members = type(
        f"{name.rsplit('.', 1)[-1]}Members",
        (_NumberMembers,),
        {
            "MaxValue": static_property(lambda: maximum),
            "MinValue": static_property(lambda: minimum),
            "Parse": static(lambda text, *_: _parse(text, name)),
        },
    )
    return dotnet_type(name, instances=instances, value_type=True)(members)


def _parse(text: object, type_name: str) -> object:
    from wuacache_lab.powershell.conversions import convert_to
    from wuacache_lab.powershell.values import DotNetType as _Type

    return convert_to(text, _Type(type_name, value_type=True))


Int32Members = _number_type("System.Int32", (int,), INT32_MIN, INT32_MAX)
Int64Members = _number_type("System.Int64", (Int64,), Int64(INT64_MIN), Int64(INT64_MAX))
UInt32Members = _number_type("System.UInt32", (UInt32,), UInt32(0), UInt32(2**32 - 1))
UInt64Members = _number_type("System.UInt64", (UInt64,), UInt64(0), UInt64(2**64 - 1))
DoubleMembers = _number_type("System.Double", (float,), -1.7976931348623157e308, 1.7976931348623157e308)
DecimalMembers = _number_type(
    "System.Decimal", (Decimal,), Decimal("-79228162514264337593543950335"), Decimal("79228162514264337593543950335")
)
Int16Members = _number_type("System.Int16", (Int16,), Int16(-(2**15)), Int16(2**15 - 1))
UInt16Members = _number_type("System.UInt16", (UInt16,), UInt16(0), UInt16(2**16 - 1))
ByteMembers = _number_type("System.Byte", (Byte,), Byte(0), Byte(255))
SByteMembers = _number_type("System.SByte", (SByte,), SByte(-128), SByte(127))


# ---------------------------------------------------------------- dates and times


@dotnet_type("System.DateTime", instances=(DateTime,), value_type=True)
class DateTimeMembers:
    """System.DateTime. Local time is the host's, a fixed offset from UTC (the runtime's)."""

    @static_property
    def Now() -> DateTime:  # noqa: N802
        return DateTime(DateTime.from_python(current_runtime().utc_now()).ticks + _offset() * 60 * TICKS_PER_SECOND, DateTimeKind.Local)

    @static_property
    def UtcNow() -> DateTime:  # noqa: N802
        return DateTime.from_python(current_runtime().utc_now())

    @static_property
    def Today() -> DateTime:  # noqa: N802
        now = DateTimeMembers.Now
        day = 86400 * TICKS_PER_SECOND
        return DateTime(now.ticks - now.ticks % day, DateTimeKind.Local)

    @static_property
    def MinValue() -> DateTime:  # noqa: N802
        return DateTime(0)

    @static
    def SpecifyKind(value: DateTime, kind: object) -> DateTime:  # noqa: N802
        """The kind as PowerShell converts a method's argument to DateTimeKind: a value, a name ('Utc') or a number."""
        from wuacache_lab.powershell.conversions import convert_to

        kinds = ReferenceContracts.enum_definition("System.DateTimeKind")
        assert kinds is not None
        converted = convert_to(kind, DotNetType(kinds.name, enum=kinds))
        assert isinstance(converted, EnumValue)
        return DateTime(value.ticks, converted.value)

    @static
    def Parse(text: object, *_: object) -> DateTime:  # noqa: N802
        from wuacache_lab.powershell.conversions import convert_to

        return convert_to(text, DotNetType("System.DateTime", value_type=True), _offset())  # type: ignore[return-value]

    @property
    def Kind(self: DateTime) -> EnumValue:  # noqa: N802
        kinds = ReferenceContracts.enum_definition("System.DateTimeKind")
        assert kinds is not None
        return EnumValue(kinds, self.kind)

    @property
    def Ticks(self: DateTime) -> Int64:  # noqa: N802
        return Int64(self.ticks)

    @property
    def Year(self: DateTime) -> int:  # noqa: N802
        return self.to_python().year

    @property
    def Month(self: DateTime) -> int:  # noqa: N802
        return self.to_python().month

    @property
    def Day(self: DateTime) -> int:  # noqa: N802
        return self.to_python().day

    @property
    def Hour(self: DateTime) -> int:  # noqa: N802
        return self.to_python().hour

    @property
    def Minute(self: DateTime) -> int:  # noqa: N802
        return self.to_python().minute

    @property
    def Second(self: DateTime) -> int:  # noqa: N802
        return self.to_python().second

    @property
    def Millisecond(self: DateTime) -> int:  # noqa: N802
        return (self.ticks // TICKS_PER_MILLISECOND) % 1000

    @property
    def DayOfWeek(self: DateTime) -> EnumValue:  # noqa: N802
        return EnumValue(DAY_OF_WEEK, (self.to_python().weekday() + 1) % 7)

    @property
    def Date(self: DateTime) -> DateTime:  # noqa: N802
        return DateTime(self.ticks - self.ticks % (86400 * TICKS_PER_SECOND), self.kind)

    def _add(self: DateTime, ticks: float) -> DateTime:
        return DateTime(self.ticks + int(round(ticks)), self.kind)

    def AddTicks(self: DateTime, ticks: object) -> DateTime:  # noqa: N802
        return DateTime(self.ticks + to_integer(ticks, "System.Int64"), self.kind)

    def AddMilliseconds(self: DateTime, value: object) -> DateTime:  # noqa: N802
        return DateTimeMembers._add(self, float(value) * TICKS_PER_MILLISECOND)  # type: ignore[arg-type]

    def AddSeconds(self: DateTime, value: object) -> DateTime:  # noqa: N802
        return DateTimeMembers._add(self, float(value) * TICKS_PER_SECOND)  # type: ignore[arg-type]

    def AddMinutes(self: DateTime, value: object) -> DateTime:  # noqa: N802
        return DateTimeMembers._add(self, float(value) * 60 * TICKS_PER_SECOND)  # type: ignore[arg-type]

    def AddHours(self: DateTime, value: object) -> DateTime:  # noqa: N802
        return DateTimeMembers._add(self, float(value) * 3600 * TICKS_PER_SECOND)  # type: ignore[arg-type]

    def AddDays(self: DateTime, value: object) -> DateTime:  # noqa: N802
        return DateTimeMembers._add(self, float(value) * 86400 * TICKS_PER_SECOND)  # type: ignore[arg-type]

    def Add(self: DateTime, span: TimeSpan) -> DateTime:  # noqa: N802
        return DateTime(self.ticks + span.ticks, self.kind)

    def Subtract(self: DateTime, other: object) -> object:  # noqa: N802
        if isinstance(other, DateTime):
            return TimeSpan(self.ticks - other.ticks)
        assert isinstance(other, TimeSpan)
        return DateTime(self.ticks - other.ticks, self.kind)

    def ToUniversalTime(self: DateTime) -> DateTime:  # noqa: N802
        """An Unspecified date is taken as local time, as .NET does."""
        return DateTime(local_to_utc_ticks(self, _offset()), DateTimeKind.Utc)

    def ToLocalTime(self: DateTime) -> DateTime:  # noqa: N802
        """An Unspecified date is taken as UTC, as .NET does."""
        if self.kind == DateTimeKind.Local:
            return self
        return DateTime(self.ticks + _offset() * 60 * TICKS_PER_SECOND, DateTimeKind.Local)

    def ToString(self: DateTime, format_string: object = None, provider: object = None) -> str:  # noqa: N802
        return formatting.format_datetime(self, to_string(format_string) if format_string else "", _offset())

    def CompareTo(self: DateTime, other: DateTime) -> int:  # noqa: N802
        return (self.ticks > other.ticks) - (self.ticks < other.ticks)

    def Equals(self: DateTime, other: object) -> bool:  # noqa: N802
        return isinstance(other, DateTime) and other.ticks == self.ticks


@dotnet_type("System.TimeSpan", instances=(TimeSpan,), value_type=True)
class TimeSpanMembers:
    @static_property
    def Zero() -> TimeSpan:  # noqa: N802
        return TimeSpan(0)

    @static
    def FromMilliseconds(value: object) -> TimeSpan:  # noqa: N802
        return TimeSpan(int(round(float(value) * TICKS_PER_MILLISECOND)))  # type: ignore[arg-type]

    @static
    def FromSeconds(value: object) -> TimeSpan:  # noqa: N802
        return TimeSpan(int(round(float(value) * TICKS_PER_SECOND)))  # type: ignore[arg-type]

    @static
    def FromMinutes(value: object) -> TimeSpan:  # noqa: N802
        return TimeSpan(int(round(float(value) * 60 * TICKS_PER_SECOND)))  # type: ignore[arg-type]

    @static
    def FromHours(value: object) -> TimeSpan:  # noqa: N802
        return TimeSpan(int(round(float(value) * 3600 * TICKS_PER_SECOND)))  # type: ignore[arg-type]

    @static
    def FromDays(value: object) -> TimeSpan:  # noqa: N802
        return TimeSpan(int(round(float(value) * 86400 * TICKS_PER_SECOND)))  # type: ignore[arg-type]

    @constructor
    def new(_: DotNetType, *parts: object) -> TimeSpan:
        numbers = [to_integer(part, "System.Int64") for part in parts]
        if len(numbers) == 1:
            return TimeSpan(numbers[0])
        days = numbers[0] if len(numbers) >= 4 else 0
        hours, minutes, seconds = numbers[-3:] if len(numbers) <= 4 else numbers[1:4]
        milliseconds = numbers[4] if len(numbers) == 5 else 0
        return TimeSpan((((days * 24 + hours) * 60 + minutes) * 60 + seconds) * TICKS_PER_SECOND + milliseconds * TICKS_PER_MILLISECOND)

    @property
    def Ticks(self: TimeSpan) -> Int64:  # noqa: N802
        return Int64(self.ticks)

    @property
    def TotalMilliseconds(self: TimeSpan) -> float:  # noqa: N802
        return self.ticks / TICKS_PER_MILLISECOND

    @property
    def TotalSeconds(self: TimeSpan) -> float:  # noqa: N802
        return self.ticks / TICKS_PER_SECOND

    @property
    def TotalMinutes(self: TimeSpan) -> float:  # noqa: N802
        return self.ticks / (60 * TICKS_PER_SECOND)

    @property
    def TotalHours(self: TimeSpan) -> float:  # noqa: N802
        return self.ticks / (3600 * TICKS_PER_SECOND)

    @property
    def Seconds(self: TimeSpan) -> int:  # noqa: N802
        return int(self.ticks / TICKS_PER_SECOND) % 60

    @property
    def Minutes(self: TimeSpan) -> int:  # noqa: N802
        return int(self.ticks / (60 * TICKS_PER_SECOND)) % 60

    def ToString(self: TimeSpan) -> str:  # noqa: N802
        return formatting.format_timespan(self)


# ---------------------------------------------------------------- Uri


@dotnet_type("System.Uri")
class Uri:
    """System.Uri, for absolute http(s) and file URIs."""

    def __init__(self, text: str) -> None:
        match = re.fullmatch(r"([A-Za-z][A-Za-z0-9+.-]*):(//([^/?#]*))?([^?#]*)(\?[^#]*)?(#.*)?", text)
        if match is None:
            raise dotnet_error("System.UriFormatException", "Invalid URI: The format of the URI could not be determined.")
        self._text = text
        self._scheme = match.group(1).lower()
        self._authority = match.group(3) or ""
        self._path = match.group(4) or "/"
        self._query = match.group(5) or ""

    @classmethod
    def convert_from(cls, value: object) -> Uri:
        return cls(to_string(value))

    @constructor
    def new(_: DotNetType, text: object) -> Uri:
        return Uri(to_string(text))

    @property
    def Scheme(self) -> str:  # noqa: N802
        return self._scheme

    @property
    def Host(self) -> str:  # noqa: N802
        return self._authority.rsplit("@", 1)[-1].split(":")[0].lower()

    @property
    def AbsolutePath(self) -> str:  # noqa: N802
        return self._path

    @property
    def Query(self) -> str:  # noqa: N802
        return self._query

    @property
    def AbsoluteUri(self) -> str:  # noqa: N802
        return self._text

    def ToString(self) -> str:  # noqa: N802
        return self._text


# ---------------------------------------------------------------- regular expressions


def _options(value: object) -> int:
    return value.value if isinstance(value, EnumValue) else to_integer(value)


@dotnet_type("System.Text.RegularExpressions.Regex")
class Regex:
    """System.Text.RegularExpressions.Regex (case-sensitive unless RegexOptions.IgnoreCase)."""

    def __init__(self, pattern: str, options: int = 0) -> None:
        self._pattern = pattern
        self._compiled = _compile(pattern, options)

    @classmethod
    def convert_from(cls, value: object) -> Regex:
        return cls(to_string(value))

    @constructor
    def new(_: DotNetType, pattern: object, options: object = 0) -> Regex:
        return Regex(to_string(pattern), _options(options))

    @static
    def Replace(text: object, pattern: object, replacement: object, options: object = 0) -> str:  # noqa: N802
        return _replace(_compile(to_string(pattern), _options(options)), to_string(text), replacement)

    @static
    def Match(text: object, pattern: object, options: object = 0) -> RegexMatch:  # noqa: N802
        return RegexMatch(_compile(to_string(pattern), _options(options)).search(to_string(text)))

    @static
    def IsMatch(text: object, pattern: object, options: object = 0) -> bool:  # noqa: N802
        return _compile(to_string(pattern), _options(options)).search(to_string(text)) is not None

    @static
    def Escape(text: object) -> str:  # noqa: N802
        return re.sub(r"([\\*+?|{\[()^$.#\s])", lambda match: "\\" + {"\t": "t", "\n": "n", "\r": "r", "\f": "f", " ": " "}.get(match.group(1), match.group(1)), to_string(text))

    def ToString(self) -> str:  # noqa: N802
        return self._pattern


def _compile(pattern: str, options: int) -> re.Pattern[str]:
    try:
        return regex.compile_regex(pattern, options)
    except regex.RegexTranslationError as error:
        raise dotnet_error("System.ArgumentException", str(error)) from None


def _replace(compiled: re.Pattern[str], text: str, replacement: object) -> str:
    if isinstance(replacement, ScriptBlock):
        # A script block given for a MatchEvaluator: its output, as a string, replaces each match.
        return compiled.sub(lambda match: to_string(invoke_delegate(replacement, [RegexMatch(match)])), text)
    return compiled.sub(lambda match: regex.expand_replacement(match, to_string(replacement)), text)


@dotnet_type("System.Text.RegularExpressions.Match")
class RegexMatch:
    def __init__(self, match: re.Match[str] | None) -> None:
        self._match = match

    @property
    def Success(self) -> bool:  # noqa: N802
        return self._match is not None

    @property
    def Value(self) -> str:  # noqa: N802
        return self._match.group(0) if self._match else ""

    @property
    def Index(self) -> int:  # noqa: N802
        return self._match.start() if self._match else 0

    @property
    def Length(self) -> int:  # noqa: N802
        return len(self.Value)

    @property
    def Groups(self) -> GroupCollection:  # noqa: N802
        return GroupCollection(self._match)

    def ToString(self) -> str:  # noqa: N802
        return self.Value


@dotnet_type("System.Text.RegularExpressions.GroupCollection")
class GroupCollection:
    def __init__(self, match: re.Match[str] | None) -> None:
        self._match = match

    @property
    def Count(self) -> int:  # noqa: N802
        return (self._match.re.groups + 1) if self._match else 1

    def Item(self, key: object) -> RegexGroup:  # noqa: N802
        if self._match is None:
            return RegexGroup(None)
        try:
            return RegexGroup(self._match.group(key if isinstance(key, str) else to_integer(key)))
        except (IndexError, re.error):
            return RegexGroup(None)

    def __iter__(self) -> Iterator[RegexGroup]:
        return iter([self.Item(number) for number in range(self.Count)])


@dotnet_type("System.Text.RegularExpressions.Group")
class RegexGroup:
    def __init__(self, value: str | None) -> None:
        self._value = value

    @property
    def Success(self) -> bool:  # noqa: N802
        return self._value is not None

    @property
    def Value(self) -> str:  # noqa: N802
        return self._value or ""

    def ToString(self) -> str:  # noqa: N802
        return self.Value


# ---------------------------------------------------------------- collections


@dotnet_type("System.Array", interfaces=("System.Collections.IList", "System.Collections.ICollection", "System.Collections.IEnumerable"), instances=(list,))
class ArrayMembers:
    """System.Array; ``Count`` is the alias PowerShell's types.ps1xml adds for ``Length``."""

    @property
    def Length(self: list) -> int:  # noqa: N802
        return len(self)

    @property
    def Count(self: list) -> int:  # noqa: N802
        return len(self)

    @property
    def LongLength(self: list) -> Int64:  # noqa: N802
        return Int64(len(self))

    @property
    def Rank(self: list) -> int:  # noqa: N802
        return 1

    def Contains(self: list, value: object) -> bool:  # noqa: N802
        return any(values_equal(item, value, ignore_case=False) for item in self)

    def IndexOf(self: list, value: object) -> int:  # noqa: N802
        return next((index for index, item in enumerate(self) if values_equal(item, value, ignore_case=False)), -1)

    def Clone(self: list) -> list:  # noqa: N802
        return type(self)(self.element_type, self) if hasattr(self, "element_type") else list(self)  # type: ignore[call-arg]

    def GetValue(self: list, index: object) -> object:  # noqa: N802
        return self[to_integer(index)]


class _GenericCollection:
    """What List`1 and Stack`1 share: their element type and .NET type name."""

    def __init__(self, own_type: DotNetType) -> None:
        self.dotnet_type = own_type
        self.dotnet_name = own_type.full_name
        self._items: list[object] = []

    @property
    def Count(self) -> int:  # noqa: N802
        return len(self._items)

    def Clear(self) -> None:  # noqa: N802
        self._items.clear()

    def Contains(self, value: object) -> bool:  # noqa: N802
        return any(values_equal(item, value, ignore_case=False) for item in self._items)

    def _element(self, value: object) -> object:
        element = self.dotnet_type.generic_arguments[0]
        if element.full_name == "System.Object":
            return value
        from wuacache_lab.powershell.conversions import convert_to

        return convert_to(value, element, _offset())


@dotnet_type("System.Collections.Generic.List`1", interfaces=("System.Collections.IList", "System.Collections.IEnumerable"))
class GenericList(_GenericCollection):
    @constructor
    def new(own_type: DotNetType, capacity: object = None) -> GenericList:
        made = GenericList(own_type)
        if capacity is not None and not isinstance(capacity, int):
            made._items.extend(made._element(item) for item in enumerate_value(capacity))
        return made

    def __iter__(self) -> Iterator[object]:
        return iter(list(self._items))

    def Add(self, value: object) -> None:  # noqa: N802
        self._items.append(self._element(value))

    def AddRange(self, values: object) -> None:  # noqa: N802
        self._items.extend(self._element(value) for value in enumerate_value(values))

    def Insert(self, index: object, value: object) -> None:  # noqa: N802
        position = to_integer(index)
        if not 0 <= position <= len(self._items):
            raise _argument_out_of_range("Index must be within the bounds of the List.", "index")
        self._items.insert(position, self._element(value))

    def Remove(self, value: object) -> bool:  # noqa: N802
        for index, item in enumerate(self._items):
            if values_equal(item, value, ignore_case=False):
                del self._items[index]
                return True
        return False

    def RemoveAt(self, index: object) -> None:  # noqa: N802
        position = to_integer(index)
        if not 0 <= position < len(self._items):
            raise _argument_out_of_range("Index was out of range. Must be non-negative and less than the size of the collection.", "index")
        del self._items[position]

    def IndexOf(self, value: object) -> int:  # noqa: N802
        return next((index for index, item in enumerate(self._items) if values_equal(item, value, ignore_case=False)), -1)

    def ToArray(self) -> list[object]:  # noqa: N802
        return list(self._items)

    def Item(self, index: object) -> object:  # noqa: N802
        position = to_integer(index)
        if not 0 <= position < len(self._items):
            raise _argument_out_of_range("Index was out of range. Must be non-negative and less than the size of the collection.", "index")
        return self._items[position]

    def set_item(self, index: object, value: object) -> None:
        self._items[to_integer(index)] = self._element(value)


@dotnet_type("System.Collections.Generic.Stack`1", interfaces=("System.Collections.IEnumerable",))
class GenericStack(_GenericCollection):
    @constructor
    def new(own_type: DotNetType) -> GenericStack:
        return GenericStack(own_type)

    def __iter__(self) -> Iterator[object]:
        return iter(list(reversed(self._items)))

    def Push(self, value: object) -> None:  # noqa: N802
        self._items.append(self._element(value))

    def Pop(self) -> object:  # noqa: N802
        if not self._items:
            raise dotnet_error("System.InvalidOperationException", "Stack empty.")
        return self._items.pop()

    def Peek(self) -> object:  # noqa: N802
        if not self._items:
            raise dotnet_error("System.InvalidOperationException", "Stack empty.")
        return self._items[-1]

    def ToArray(self) -> list[object]:  # noqa: N802
        return list(reversed(self._items))


def _duplicate_key(key: object) -> Exception:
    return dotnet_error("System.ArgumentException", f"Item has already been added. Key in dictionary: '{key}'  Key being added: '{key}'")


@dotnet_type("System.Collections.Hashtable", interfaces=("System.Collections.IDictionary", "System.Collections.ICollection", "System.Collections.IEnumerable"), instances=(Hashtable,))
class HashtableMembers:
    @constructor
    def new(_: DotNetType) -> Hashtable:
        return Hashtable()

    @property
    def Count(self: Hashtable) -> int:  # noqa: N802
        return len(self)

    @property
    def Keys(self: Hashtable) -> list[object]:  # noqa: N802
        return self.keys()

    @property
    def Values(self: Hashtable) -> list[object]:  # noqa: N802
        return self.values()

    @property
    def IsReadOnly(self: Hashtable) -> bool:  # noqa: N802
        return False

    @property
    def IsFixedSize(self: Hashtable) -> bool:  # noqa: N802
        return False

    @property
    def IsSynchronized(self: Hashtable) -> bool:  # noqa: N802
        return False

    def ContainsKey(self: Hashtable, key: object) -> bool:  # noqa: N802
        return key in self

    def Contains(self: Hashtable, key: object) -> bool:  # noqa: N802
        return key in self

    def ContainsValue(self: Hashtable, value: object) -> bool:  # noqa: N802
        return any(values_equal(item, value, ignore_case=False) for item in self.values())

    def Add(self: Hashtable, key: object, value: object) -> None:  # noqa: N802
        if not self.add(key, value):
            raise _duplicate_key(key)

    def Remove(self: Hashtable, key: object) -> None:  # noqa: N802
        del self[key]

    def Clear(self: Hashtable) -> None:  # noqa: N802
        for key in self.keys():
            del self[key]

    def Clone(self: Hashtable) -> Hashtable:  # noqa: N802
        return type(self)(self.items())

    def Item(self: Hashtable, key: object) -> object:  # noqa: N802
        return self[key]


@dotnet_type("System.Collections.Specialized.OrderedDictionary", interfaces=("System.Collections.IDictionary", "System.Collections.ICollection", "System.Collections.IEnumerable"), instances=(OrderedDictionary,))
class OrderedDictionaryMembers(HashtableMembers):
    @constructor
    def new(_: DotNetType) -> OrderedDictionary:
        return OrderedDictionary()

    def Insert(self: OrderedDictionary, index: object, key: object, value: object) -> None:  # noqa: N802
        position = to_integer(index)
        if not 0 <= position <= len(self):
            raise _argument_out_of_range("Index was out of range. Must be non-negative and less than or equal to the size of the collection.", "index")
        if not self.insert(position, key, value):
            raise _duplicate_key(key)

    def RemoveAt(self: OrderedDictionary, index: object) -> None:  # noqa: N802
        del self[self.keys()[to_integer(index)]]


# ---------------------------------------------------------------- exceptions and error records


class ExceptionMembers:
    """Every System.Exception type; the type constructed picks the .NET type (``[System.ArgumentException]::new('x')``)."""

    @constructor
    def new(own_type: DotNetType, message: object = None, second: object = None) -> DotNetException:
        text = None if message is None else to_string(message)
        name = own_type.full_name
        if isinstance(second, DotNetException):
            return DotNetException(name, text, inner=second)
        if second is None:
            return DotNetException(name, text)
        if name == "System.IO.FileNotFoundException":
            return DotNetException(name, text, FileName=to_string(second))
        if name in ("System.ArgumentException", "System.ArgumentOutOfRangeException", "System.ArgumentNullException"):
            return DotNetException(name, f"{text}\r\nParameter name: {to_string(second)}", ParamName=to_string(second))
        if name in ("System.IO.IOException", "System.Runtime.InteropServices.COMException"):
            return DotNetException(name, text, hresult=to_integer(second), ErrorCode=to_integer(second))
        raise dotnet_error("System.NotSupportedException", f"The lab does not implement this constructor of [{name}].")

    @property
    def Message(self: DotNetException) -> str:  # noqa: N802
        return self.message

    @property
    def HResult(self: DotNetException) -> int:  # noqa: N802
        return self.hresult

    @property
    def InnerException(self: DotNetException) -> DotNetException | None:  # noqa: N802
        return self.inner

    @property
    def Source(self: DotNetException) -> str | None:  # noqa: N802
        return None

    @property
    def StackTrace(self: DotNetException) -> str | None:  # noqa: N802
        return None

    @property
    def Data(self: DotNetException) -> Hashtable:  # noqa: N802
        return Hashtable()

    def GetBaseException(self: DotNetException) -> DotNetException:  # noqa: N802
        current = self
        while current.inner is not None:
            current = current.inner
        return current

    def ToString(self: DotNetException) -> str:  # noqa: N802
        text = f"{self.type_name}: {self.message}"
        if self.inner is not None:
            text += f" ---> {ExceptionMembers.ToString(self.inner)}"
        return text


@dotnet_type("System.Management.Automation.ErrorRecord", instances=(ErrorRecord,))
class ErrorRecordMembers:
    """``$_`` in a ``catch`` block."""

    @property
    def Exception(self: ErrorRecord) -> object:  # noqa: N802
        return self.exception

    @property
    def FullyQualifiedErrorId(self: ErrorRecord) -> str:  # noqa: N802
        return self.fully_qualified_error_id

    @property
    def TargetObject(self: ErrorRecord) -> object:  # noqa: N802
        return self.target_object

    @property
    def CategoryInfo(self: ErrorRecord) -> ErrorCategoryInfo:  # noqa: N802
        return ErrorCategoryInfo(self)

    @property
    def InvocationInfo(self: ErrorRecord) -> InvocationInfoView | None:  # noqa: N802
        return InvocationInfoView(self) if self.invocation is not None else None

    @property
    def ErrorDetails(self: ErrorRecord) -> object:  # noqa: N802
        return self.error_details

    @property
    def ScriptStackTrace(self: ErrorRecord) -> str:  # noqa: N802
        return ""

    def ToString(self: ErrorRecord) -> str:  # noqa: N802
        return object_to_string(self)


@dotnet_type("System.Management.Automation.ErrorCategoryInfo")
class ErrorCategoryInfo:
    def __init__(self, record: ErrorRecord) -> None:
        self._record = record

    @property
    def Category(self) -> str:  # noqa: N802
        return self._record.category

    @property
    def Reason(self) -> str:  # noqa: N802
        exception = self._record.exception
        return exception.short_name if isinstance(exception, DotNetException) else ""

    @property
    def Activity(self) -> str:  # noqa: N802
        return self._record.activity()

    @property
    def TargetName(self) -> str:  # noqa: N802
        if self._record.target_name is not None:
            return self._record.target_name
        return object_to_string(self._record.target_object) if self._record.target_object is not None else ""


@dotnet_type("System.Management.Automation.InvocationInfo")
class InvocationInfoView:
    def __init__(self, record: ErrorRecord) -> None:
        assert record.invocation is not None
        self._info = record.invocation

    @property
    def ScriptLineNumber(self) -> int:  # noqa: N802
        return self._info.script_line_number

    @property
    def OffsetInLine(self) -> int:  # noqa: N802
        return self._info.offset_in_line

    @property
    def ScriptName(self) -> str:  # noqa: N802
        return self._info.script_name

    @property
    def Line(self) -> str:  # noqa: N802
        return self._info.line

    @property
    def PositionMessage(self) -> str:  # noqa: N802
        return self._info.position_message

    @property
    def InvocationName(self) -> str:  # noqa: N802
        return self._info.command_name or ""


# ---------------------------------------------------------------- script blocks, types, enums


@dotnet_type("System.Management.Automation.ScriptBlock", instances=(ScriptBlock,))
class ScriptBlockMembers:
    @static
    def Create(text: object) -> ScriptBlock:  # noqa: N802
        """Parse text into a script block; a parse error is a ParseException, as in PowerShell."""
        from wuacache_lab.powershell.lower import parse

        source = to_string(text)
        return ScriptBlock(parse(source, current_runtime().script_name(source)), source)

    def ToString(self: ScriptBlock) -> str:  # noqa: N802
        return self.text


@dotnet_type("System.RuntimeType", base="System.Type", instances=(DotNetType,))
class TypeMembers:
    @property
    def FullName(self: DotNetType) -> str:  # noqa: N802
        return self.full_name

    @property
    def Name(self: DotNetType) -> str:  # noqa: N802
        return self.short_name

    @property
    def IsEnum(self: DotNetType) -> bool:  # noqa: N802
        return self.enum is not None

    @property
    def IsArray(self: DotNetType) -> bool:  # noqa: N802
        return self.element is not None

    @property
    def IsValueType(self: DotNetType) -> bool:  # noqa: N802
        return self.value_type

    def ToString(self: DotNetType) -> str:  # noqa: N802
        return self.full_name


class EnumMembers:
    """Every enum: its value as a name or a number."""

    def ToString(self: EnumValue, *_: object) -> str:  # noqa: N802
        return str(self)

    def HasFlag(self: EnumValue, flag: EnumValue) -> bool:  # noqa: N802
        return self.value & flag.value == flag.value
