""".NET formatting: numbers, dates and composite format strings (``-f``).

PowerShell converts numbers to strings with the invariant culture (``"$x"``,
``[string]$x``) and formats with ``String.Format`` for ``-f``. The rules here
are .NET Framework 4.8's: ``Double.ToString()`` gives 15 significant digits
("G"), the round-trip format "R" tries 15 and falls back to 17, and standard
and custom format strings follow "Standard numeric format strings",
"Standard date and time format strings" and "Custom date and time format
strings" (MicrosoftDocs/dotnet-docs docs/standard/base-types/). The current
culture of the lab's hosts is en-US.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from wuacache_lab.powershell.values import (
    TICKS_PER_SECOND,
    Char,
    DateTime,
    DateTimeKind,
    EnumValue,
    SizedInteger,
    TimeSpan,
    integer_type_name,
)

_INTEGER_WIDTHS = {
    "System.Byte": 8,
    "System.SByte": 8,
    "System.Int16": 16,
    "System.UInt16": 16,
    "System.Int32": 32,
    "System.UInt32": 32,
    "System.Int64": 64,
    "System.UInt64": 64,
}
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class FormatError(ValueError):
    """A format string .NET would reject (FormatException), or one the lab does not implement."""


# ---------------------------------------------------------------- doubles


def format_double(value: float, precision: int = 15) -> str:
    """``Double.ToString("G<precision>")``: fixed notation unless the exponent is below -5 or reaches the precision."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    mantissa, exponent_text = f"{value:.{precision - 1}e}".split("e")
    exponent = int(exponent_text)
    digits = mantissa.replace("-", "").replace(".", "").rstrip("0") or "0"
    sign = "-" if value < 0 else ""
    if exponent >= precision or exponent < -5:
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{body}E{'+' if exponent >= 0 else '-'}{abs(exponent):02d}"
    if exponent >= 0:
        whole, fraction = digits[: exponent + 1], digits[exponent + 1 :]
        whole = whole.ljust(exponent + 1, "0")
        return sign + whole + ("." + fraction if fraction else "")
    return sign + "0." + "0" * (-exponent - 1) + digits


def format_double_roundtrip(value: float) -> str:
    """``Double.ToString("R")`` of .NET Framework: 15 digits when they read back as the same value, else 17."""
    text = format_double(value, 15)
    if text in ("NaN", "Infinity", "-Infinity") or float(text.replace("E", "e")) == value:
        return text
    return format_double(value, 17)


def format_decimal(value: Decimal) -> str:
    """``Decimal.ToString()``: no exponent, trailing zeros kept as the value has them."""
    text = format(value, "f")
    return text


def number_to_string(value: object) -> str:
    """A number as PowerShell writes it in strings (invariant culture)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, Decimal):
        return format_decimal(value)
    raise TypeError(value)


# ---------------------------------------------------------------- standard numeric formats


def format_number(value: object, spec: str) -> str:
    """A number with a standard numeric format string (``x4``, ``D5``, ``N0``, ``F2``, ``G``, ``E``, ``P``, ``R``)."""
    if not spec:
        return number_to_string(value)
    match = re.fullmatch(r"([A-Za-z])(\d{0,2})", spec)
    if not match:
        raise FormatError(f"The lab does not implement the custom numeric format string '{spec}'.")
    letter, digits = match.group(1), match.group(2)
    precision = int(digits) if digits else None
    kind = letter.upper()
    if isinstance(value, EnumValue):
        value = value.value
    if kind == "X":
        if not isinstance(value, int) or isinstance(value, bool):
            raise FormatError("Format specifier was invalid.")
        width = _INTEGER_WIDTHS[integer_type_name(value)]
        text = format(int(value) & ((1 << width) - 1), "x" if letter == "x" else "X")
        return text.rjust(precision or 0, "0")
    if kind == "D":
        if not isinstance(value, int) or isinstance(value, bool):
            raise FormatError("Format specifier was invalid.")
        digits_text = str(abs(int(value))).rjust(precision or 0, "0")
        return ("-" if value < 0 else "") + digits_text
    number = float(value) if not isinstance(value, (int, Decimal)) else value
    if kind in ("N", "F", "P"):
        places = 2 if precision is None else precision
        scaled = Decimal(str(number)) * (100 if kind == "P" else 1)
        rounded = scaled.quantize(Decimal(1).scaleb(-places), rounding="ROUND_HALF_UP") if places else scaled.quantize(
            Decimal(1), rounding="ROUND_HALF_UP"
        )
        text = format(rounded, ",f" if kind in ("N", "P") else "f")
        return text + (" %" if kind == "P" else "")
    if kind == "G":
        if isinstance(number, float):
            return format_double(number, precision or 15)
        return str(number)
    if kind == "R":
        return format_double_roundtrip(float(number))
    if kind == "E":
        places = 6 if precision is None else precision
        mantissa, exponent = f"{float(number):.{places}e}".split("e")
        return f"{mantissa}{letter}{exponent[0]}{abs(int(exponent)):03d}"
    raise FormatError(f"The lab does not implement the numeric format '{spec}'.")


# ---------------------------------------------------------------- dates


def utc_offset_text(offset_minutes: int, colon: bool = True) -> str:
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}" if colon else f"{sign}{hours:02d}"


def format_datetime(value: DateTime, spec: str, local_offset_minutes: int) -> str:
    """``DateTime.ToString(format)`` with en-US as current culture.

    ``local_offset_minutes`` is the host's offset from UTC, written for the
    ``K`` and ``z`` specifiers of a Local date.
    """
    standard = {
        "o": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
        "O": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
        "r": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
        "R": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
        "s": "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
        "u": "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
        "d": "M/d/yyyy",
        "D": "dddd, MMMM d, yyyy",
        "t": "h:mm tt",
        "T": "h:mm:ss tt",
        "f": "dddd, MMMM d, yyyy h:mm tt",
        "F": "dddd, MMMM d, yyyy h:mm:ss tt",
        "g": "M/d/yyyy h:mm tt",
        "G": "M/d/yyyy h:mm:ss tt",
        "": "M/d/yyyy h:mm:ss tt",
    }
    pattern = standard.get(spec, spec)
    if len(spec) == 1 and spec not in standard:
        raise FormatError("Input string was not in a correct format.")
    moment = value.to_python()
    fraction = value.ticks % TICKS_PER_SECOND
    output: list[str] = []
    index = 0
    while index < len(pattern):
        character = pattern[index]
        if character in "'\"":
            end = pattern.index(character, index + 1)
            output.append(pattern[index + 1 : end])
            index = end + 1
            continue
        if character == "\\" and index + 1 < len(pattern):
            output.append(pattern[index + 1])
            index += 2
            continue
        run = len(pattern[index:]) - len(pattern[index:].lstrip(character))
        token = pattern[index : index + run]
        index += run
        if character == "y":
            output.append(str(moment.year % 100).rjust(2, "0") if run <= 2 else str(moment.year).rjust(run, "0"))
        elif character == "M":
            output.append(
                str(moment.month).rjust(run, "0") if run <= 2 else (_MONTHS[moment.month - 1][:3] if run == 3 else _MONTHS[moment.month - 1])
            )
        elif character == "d":
            output.append(
                str(moment.day).rjust(run, "0") if run <= 2 else (_DAYS[moment.weekday()][:3] if run == 3 else _DAYS[moment.weekday()])
            )
        elif character == "H":
            output.append(str(moment.hour).rjust(run, "0"))
        elif character == "h":
            output.append(str(moment.hour % 12 or 12).rjust(run, "0"))
        elif character == "m":
            output.append(str(moment.minute).rjust(run, "0"))
        elif character == "s":
            output.append(str(moment.second).rjust(run, "0"))
        elif character in "fF":
            digits = str(fraction).rjust(7, "0")[:run]
            output.append(digits if character == "f" else digits.rstrip("0"))
        elif character == "t":
            output.append(("AM" if moment.hour < 12 else "PM")[:run])
        elif character == "K":
            output.append(
                "Z" if value.kind == DateTimeKind.Utc else utc_offset_text(local_offset_minutes) if value.kind == DateTimeKind.Local else ""
            )
        elif character == "z":
            offset = 0 if value.kind == DateTimeKind.Utc else local_offset_minutes
            output.append(utc_offset_text(offset, colon=run >= 3) if run != 1 else f"{'+' if offset >= 0 else '-'}{abs(offset) // 60}")
        elif character in ":/":
            output.append(character)
        else:
            output.append(token)
    return "".join(output)


def format_timespan(value: TimeSpan) -> str:
    """``TimeSpan.ToString()``: ``[-][d.]hh:mm:ss[.fffffff]``."""
    ticks = abs(value.ticks)
    days, rest = divmod(ticks, 86400 * TICKS_PER_SECOND)
    hours, rest = divmod(rest, 3600 * TICKS_PER_SECOND)
    minutes, rest = divmod(rest, 60 * TICKS_PER_SECOND)
    seconds, fraction = divmod(rest, TICKS_PER_SECOND)
    text = f"{'-' if value.ticks < 0 else ''}{f'{days}.' if days else ''}{hours:02d}:{minutes:02d}:{seconds:02d}"
    return text + (f".{fraction:07d}" if fraction else "")


# ---------------------------------------------------------------- composite formatting


def format_composite(template: str, arguments: list[object], format_one) -> str:  # type: ignore[no-untyped-def]
    """``String.Format(template, arguments)``: ``{index[,alignment][:format]}``, ``{{`` and ``}}``.

    ``format_one(value, spec)`` formats one argument; it raises FormatError for a spec it cannot apply.
    """
    output: list[str] = []
    index = 0
    while index < len(template):
        character = template[index]
        if character == "{":
            if template[index + 1 : index + 2] == "{":
                output.append("{")
                index += 2
                continue
            end = template.find("}", index)
            match = re.fullmatch(r"\s*(\d+)\s*(?:,\s*(-?\d+)\s*)?(?::(.*))?", template[index + 1 : end]) if end > 0 else None
            if match is None:
                raise FormatError("Input string was not in a correct format.")
            position = int(match.group(1))
            if position >= len(arguments):
                raise FormatError("Index (zero based) must be greater than or equal to zero and less than the size of the argument list.")
            text = format_one(arguments[position], match.group(3) or "")
            alignment = int(match.group(2) or 0)
            output.append(text.rjust(alignment) if alignment > 0 else text.ljust(-alignment))
            index = end + 1
            continue
        if character == "}":
            if template[index + 1 : index + 2] != "}":
                raise FormatError("Input string was not in a correct format.")
            output.append("}")
            index += 2
            continue
        output.append(character)
        index += 1
    return "".join(output)


def is_formattable_number(value: object) -> bool:
    return isinstance(value, (int, float, Decimal, SizedInteger, EnumValue)) and not isinstance(value, (bool, Char))
