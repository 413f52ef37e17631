"""``ConvertTo-Json`` and ``ConvertFrom-Json`` as Windows PowerShell 5.1 does them.

5.1 prepares the object graph itself, then serializes it with .NET's
JavaScriptSerializer (ConvertTo-Json and ConvertFrom-Json pages of the 5.1
reference):

- objects nested deeper than ``-Depth`` (2 by default) are replaced by
  their string conversion: a Hashtable becomes "System.Collections.Hashtable",
  an array its elements joined with spaces, a PSCustomObject "@{a=1; b=2}";
- a value wrapped in a PSObject (what a cmdlet receives from the pipeline,
  what a cmdlet outputs with note properties) also gets the properties
  PowerShell added to it: an array piped as one object becomes
  ``{"value": [...], "Count": n}``, the output of Get-Date gains
  ``DisplayHint``;
- DateTime is written ``"\\/Date(<ms since 1970, UTC>)\\/"``, enums as
  numbers, doubles in the round-trip format, and strings escaped as
  JavaScriptSerializer escapes them (``<``, ``>``, ``&`` and ``'`` as
  ``\\u003c``, ``\\u003e``, ``\\u0026``, ``\\u0027``; other non-ASCII
  characters are not escaped);
- without ``-Compress`` the text is laid out by 5.1's own indenting, which
  aligns nested values under their key.

ConvertFrom-Json gives PSCustomObjects (properties in document order),
Int32, Int64, Decimal or Double numbers, object[] arrays, and a DateTime for
a ``"\\/Date(...)\\/"`` string; a top-level array is written to the
pipeline as one object, not enumerated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Protocol

from wuacache_lab.powershell import formatting
from wuacache_lab.powershell.conversions import is_enumerable, local_to_utc_ticks, to_string
from wuacache_lab.powershell.errors import PowerShellError, dotnet_error
from wuacache_lab.powershell.values import (
    AUTOMATION_NULL,
    CUSTOM_OBJECT,
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    UNIX_EPOCH_TICKS,
    DateTime,
    DateTimeKind,
    EnumValue,
    Hashtable,
    Int64,
    PSObject,
)

DEFAULT_DEPTH = 2


class ObjectInspector(Protocol):
    """What ConvertTo-Json needs to know of objects beyond PowerShell's own values."""

    def public_properties(self, value: object) -> list[tuple[str, object]]:
        """The public properties .NET reflection gives of an object."""

    def extended_properties(self, wrapper: PSObject) -> list[tuple[str, object]]:
        """The properties PowerShell added to a wrapped value: its note properties, then its type's extended ones."""


# ---------------------------------------------------------------- ConvertTo-Json


def convert_to_json(
    value: object,
    inspector: ObjectInspector,
    *,
    depth: int = DEFAULT_DEPTH,
    compress: bool = False,
    local_offset_minutes: int = 0,
) -> str:
    prepared = _Preparer(inspector, depth, local_offset_minutes).process(value, 0)
    text = _serialize(prepared, local_offset_minutes)
    return text if compress else pretty(text)


class _Preparer:
    def __init__(self, inspector: ObjectInspector, max_depth: int, local_offset_minutes: int) -> None:
        self.inspector = inspector
        self.max_depth = max_depth
        self.offset = local_offset_minutes

    def process(self, value: object, depth: int) -> object:
        wrapper = value if isinstance(value, PSObject) else None
        base = wrapper.base if wrapper is not None else value
        pure = False
        if base is None or base is AUTOMATION_NULL:
            result: object = None
        elif isinstance(base, (str, bool, DateTime, float, Decimal)) or (isinstance(base, int) and not isinstance(base, bool)):
            result = base
        elif isinstance(base, EnumValue):
            # Enums based on Int64 or UInt64 are written as their names: JavaScript cannot hold them.
            result = str(base) if base.enum.underlying in ("System.Int64", "System.UInt64") else base.value
        elif depth > self.max_depth:
            if wrapper is not None and wrapper.is_custom:
                result, pure = to_string(wrapper), True
            else:
                result = to_string(base, self.offset)
        elif isinstance(base, Hashtable):
            result = self._dictionary(base, depth)
        elif base is not CUSTOM_OBJECT and is_enumerable(base):
            result = [self.process(item, depth + 1) for item in base]  # type: ignore[union-attr]
        else:
            properties = [] if base is CUSTOM_OBJECT else self.inspector.public_properties(base)
            result = {name: self.process(item, depth + 1) for name, item in properties}
        if wrapper is None or pure:
            return result
        return self._with_added_properties(wrapper, result, depth)

    def _dictionary(self, table: Hashtable, depth: int) -> dict[str, object]:
        prepared: dict[str, object] = {}
        for key, item in table.items():
            if not isinstance(key, str):
                raise dotnet_error(
                    "System.InvalidOperationException",
                    f"The type '{table.dotnet_name}' is not supported for serialization or deserialization of a dictionary. "
                    "Keys must be strings.",
                )
            prepared[key] = self.process(item, depth + 1)
        return prepared

    def _with_added_properties(self, wrapper: PSObject, result: object, depth: int) -> object:
        was_dictionary = isinstance(result, dict)
        table = result if isinstance(result, dict) else {"value": result}
        for name, item in self.inspector.extended_properties(wrapper):
            if name not in table:
                table[name] = self.process(item, depth + 1)
        if not was_dictionary and len(table) == 1:
            return result
        return table


def _serialize(value: object, local_offset_minutes: int) -> str:
    """JavaScriptSerializer.Serialize of the prepared graph."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return formatting.format_double_roundtrip(value)
    if isinstance(value, Decimal):
        return formatting.format_decimal(value)
    if isinstance(value, DateTime):
        milliseconds = (local_to_utc_ticks(value, local_offset_minutes) - UNIX_EPOCH_TICKS) // 10_000
        return f'"\\/Date({milliseconds})\\/"'
    if isinstance(value, dict):
        return "{" + ",".join(f"{quote(key)}:{_serialize(item, local_offset_minutes)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_serialize(item, local_offset_minutes) for item in value) + "]"
    raise TypeError(f"cannot serialize {value!r}")


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def quote(text: str) -> str:
    """HttpUtility.JavaScriptStringEncode, in quotes: control characters, ``<``, ``>``, ``&`` and ``'`` as ``\\uXXXX``."""
    out = []
    for character in text:
        if character in _ESCAPES:
            out.append(_ESCAPES[character])
        elif ord(character) < 0x20 or character in "<>&'\u0085\u2028\u2029":
            out.append(f"\\u{ord(character):04x}")
        else:
            out.append(character)
    return '"' + "".join(out) + '"'


def pretty(text: str) -> str:
    """Windows PowerShell 5.1's layout of ConvertTo-Json output: four spaces a level, values aligned under their key."""
    if not text.startswith(("{", "[")):
        return text
    out: list[str] = [text[0]]
    if text[0] == "{":
        _pretty_dictionary(text, 1, out, "", 0)
    else:
        _pretty_list(text, 1, out, "", 0)
    return "".join(out)


def _quoted_end(text: str, index: int, out: list[str]) -> int:
    """Copy a string's characters after its opening quote; the index of its closing quote."""
    while index < len(text):
        character = text[index]
        out.append(character)
        if character == "\\":
            out.append(text[index + 1])
            index += 2
            continue
        if character == '"':
            return index
        index += 1
    return index


def _pretty_list(text: str, index: int, out: list[str], pad: str, spaces: int) -> int:
    out.append("\r\n")
    inner = pad + " " * spaces + " " * 4
    at_start = True
    while index < len(text):
        character = text[index]
        if character in "{[":
            out.append(inner + character)
            index = (_pretty_dictionary if character == "{" else _pretty_list)(text, index + 1, out, inner, 0)
            at_start = False
        elif character == "]":
            out.append("\r\n" + pad + " " * spaces + character)
            return index
        elif character == '"':
            if at_start:
                out.append(inner)
            out.append(character)
            index = _quoted_end(text, index + 1, out)
            at_start = False
        elif character == ",":
            out.append(",\r\n")
            at_start = True
        else:
            if at_start:
                out.append(inner)
            out.append(character)
            at_start = False
        index += 1
    return index


def _pretty_dictionary(text: str, index: int, out: list[str], pad: str, spaces: int) -> int:
    out.append("\r\n")
    inner = pad + " " * spaces + " " * 4
    before_key = True
    key_length = 0
    value_spaces = 0
    while index < len(text):
        character = text[index]
        if character in "{[":
            out.append(character)
            index = (_pretty_dictionary if character == "{" else _pretty_list)(text, index + 1, out, inner, value_spaces)
        elif character == "}":
            out.append("\r\n" + pad + " " * spaces + character)
            return index
        elif character == '"':
            if before_key:
                out.append(inner)
            out.append(character)
            end = _quoted_end(text, index + 1, out)
            if before_key:
                key_length = end - index + 1
            index = end
            before_key = False
        elif character == ":":
            out.append(":  ")
            value_spaces = key_length + 3
        elif character == ",":
            out.append(",\r\n")
            before_key = True
        else:
            out.append(character)
        index += 1
    return index


# ---------------------------------------------------------------- ConvertFrom-Json


_NUMBER = re.compile(r"-?[0-9.eE+-]+")
_DATE = re.compile(r'"\\/Date\((-?\d+)(?:[+-]\d{4})?\)\\/"')
_RECURSION_LIMIT = 1020


class _Reader:
    """JavaScriptSerializer.DeserializeObject: objects, arrays, strings, numbers, true, false, null."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.index = 0

    def fail(self, message: str) -> Exception:
        return dotnet_error("System.ArgumentException", message)

    def skip(self) -> None:
        while self.index < len(self.text) and self.text[self.index].isspace():
            self.index += 1

    def value(self, depth: int) -> object:
        if depth > _RECURSION_LIMIT:
            raise self.fail("RecursionLimit exceeded.")
        self.skip()
        if self.index >= len(self.text):
            return None
        character = self.text[self.index]
        if character == "{":
            return self.dictionary(depth)
        if character == "[":
            return self.array(depth)
        if character in "\"'":
            date = _DATE.match(self.text, self.index)
            text = self.string()
            if date is not None:
                return DateTime(UNIX_EPOCH_TICKS + int(date.group(1)) * 10_000, DateTimeKind.Utc)
            return text
        return self.primitive()

    def dictionary(self, depth: int) -> dict[str, object]:
        self.index += 1
        members: dict[str, object] = {}
        self.skip()
        if self.text[self.index : self.index + 1] == "}":
            self.index += 1
            return members
        while True:
            self.skip()
            if self.text[self.index : self.index + 1] in ('"', "'"):
                name = self.string()
            else:
                match = re.compile(r"[A-Za-z0-9_$]+").match(self.text, self.index)
                if match is None:
                    raise self.fail(f"Invalid object passed in, member name expected. ({self.index}): {self.text}")
                name = match.group(0)
                self.index = match.end()
            self.skip()
            if self.text[self.index : self.index + 1] != ":":
                raise self.fail(f"Invalid object passed in, ':' or '}}' expected. ({self.index}): {self.text}")
            self.index += 1
            members[name] = self.value(depth + 1)
            self.skip()
            following = self.text[self.index : self.index + 1]
            self.index += 1
            if following == "}":
                return members
            if following != ",":
                raise self.fail(f"Invalid object passed in, ':' or '}}' expected. ({self.index - 1}): {self.text}")

    def array(self, depth: int) -> list[object]:
        self.index += 1
        items: list[object] = []
        self.skip()
        if self.text[self.index : self.index + 1] == "]":
            self.index += 1
            return items
        while True:
            items.append(self.value(depth + 1))
            self.skip()
            following = self.text[self.index : self.index + 1]
            self.index += 1
            if following == "]":
                return items
            if following != ",":
                raise self.fail(f"Invalid array passed in, ']' expected. ({self.index - 1}): {self.text}")

    def string(self) -> str:
        quote_character = self.text[self.index]
        self.index += 1
        out = []
        while self.index < len(self.text):
            character = self.text[self.index]
            if character == "\\":
                escaped = self.text[self.index + 1 : self.index + 2]
                if escaped == "u":
                    out.append(chr(int(self.text[self.index + 2 : self.index + 6], 16)))
                    self.index += 6
                    continue
                out.append({"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}.get(escaped, escaped))
                self.index += 2
                continue
            if character == quote_character:
                self.index += 1
                return "".join(out)
            # The characters up to the next escape or quote, at once: a request carries the whole bridge.
            plain = _PLAIN_RUN[quote_character].match(self.text, self.index)
            out.append(plain.group(0))  # type: ignore[union-attr]
            self.index = plain.end()  # type: ignore[union-attr]
        raise self.fail(f"Unterminated string passed in. ({self.index}): {self.text}")

    def primitive(self) -> object:
        match = re.compile(r"[^\s,\]}:]+").match(self.text, self.index)
        token = match.group(0) if match else self.text[self.index]
        self.index += len(token)
        if token == "true":
            return True
        if token == "false":
            return False
        if token == "null":
            return None
        if _NUMBER.fullmatch(token):
            number = _number(token)
            if number is not None:
                return number
        raise self.fail(f"Invalid JSON primitive: {token}.")


_PLAIN_RUN = {quote: re.compile(f"[^\\\\{quote}]+") for quote in ("\"", "'")}


def _number(token: str) -> object:
    """Int32, then Int64, then Decimal (no exponent), then Double, as JavaScriptSerializer tries them."""
    if re.fullmatch(r"-?\d+", token):
        value = int(token)
        if INT32_MIN <= value <= INT32_MAX:
            return value
        if INT64_MIN <= value <= INT64_MAX:
            return Int64(value)
    if "e" not in token.lower():
        try:
            return Decimal(token)
        except InvalidOperation:
            pass
    try:
        return float(token)
    except ValueError:
        return None


def convert_from_json(text: str) -> object:
    """One JSON document; objects become PSCustomObjects."""
    reader = _Reader(text)
    value = reader.value(0)
    reader.skip()
    if reader.index < len(text):
        raise reader.fail(f"Invalid JSON primitive: {text[reader.index:].split()[0]}.")
    return _to_powershell(value)


def _to_powershell(value: object) -> object:
    if isinstance(value, dict):
        seen: dict[str, str] = {}
        for key in value:
            if key.casefold() in seen:
                raise dotnet_error(
                    "System.InvalidOperationException",
                    f"Cannot convert the JSON string because a dictionary that was converted from the string contains "
                    f"the duplicated keys '{seen[key.casefold()]}' and '{key}'.",
                )
            seen[key.casefold()] = key
        return PSObject.custom((key, _to_powershell(item)) for key, item in value.items())
    if isinstance(value, list):
        return [_to_powershell(item) for item in value]
    return value


def joined_input(pieces: Iterable[str], parse: Callable[[str], object]) -> list[object]:
    """ConvertFrom-Json's input: each piece when the first one is a whole document, else all pieces joined by new lines."""
    items = list(pieces)
    if len(items) <= 1:
        return [parse(item) for item in items]
    try:
        first = parse(items[0])
    except PowerShellError as error:
        # The first piece is no whole document: the pieces are one, across lines.
        if not error.exception.is_a("System.ArgumentException"):
            raise
        return [parse("\r\n".join(items))]
    return [first, *(parse(item) for item in items[1:])]

