""".NET regular expressions, run by Python's ``re``.

The two dialects agree on most syntax; the differences the scripts can meet
are translated (about_Regular_Expressions; ".NET regular expression
language", MicrosoftDocs/dotnet-docs docs/standard/base-types/):

- ``\\z`` (end of input only) is Python's ``\\Z``; .NET's ``\\Z`` (end, or
  before a final line feed) becomes ``(?=\\n?\\Z)``. ``$`` means the same in
  both: the end, or before a final line feed;
- named groups ``(?<name>...)``, ``(?'name'...)`` and ``\\k<name>`` take
  Python's ``(?P<name>...)`` and ``(?P=name)``;
- replacement patterns (``$1``, ``${name}``, ``$$``, ``$&``, ``$_``) are
  expanded here, not by ``re``.

What Python cannot express (``\\p{...}`` classes, variable-length
look-behind) is refused as a lab limitation, not mistranslated.
"""

from __future__ import annotations

import re
from functools import lru_cache

IGNORE_CASE = 1
MULTILINE = 2
EXPLICIT_CAPTURE = 4
SINGLELINE = 16
IGNORE_PATTERN_WHITESPACE = 32
CULTURE_INVARIANT = 512


class RegexTranslationError(ValueError):
    """A pattern .NET would reject, or one the lab cannot run."""


@lru_cache(maxsize=512)
def compile_regex(pattern: str, options: int = 0) -> re.Pattern[str]:
    flags = 0
    if options & IGNORE_CASE:
        flags |= re.IGNORECASE
    if options & MULTILINE:
        flags |= re.MULTILINE
    if options & SINGLELINE:
        flags |= re.DOTALL
    if options & IGNORE_PATTERN_WHITESPACE:
        flags |= re.VERBOSE
    if options & EXPLICIT_CAPTURE:
        raise RegexTranslationError("The lab does not implement RegexOptions.ExplicitCapture.")
    try:
        return re.compile(translate(pattern), flags)
    except re.error as error:
        raise RegexTranslationError(f"parsing \"{pattern}\" - {error}") from None


def translate(pattern: str) -> str:
    output: list[str] = []
    index = 0
    in_class = False
    while index < len(pattern):
        character = pattern[index]
        if character == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            if escaped in "pP":
                raise RegexTranslationError("The lab does not implement Unicode category classes (\\p{...}).")
            if not in_class and escaped == "z":
                output.append(r"\Z")
            elif not in_class and escaped == "Z":
                output.append(r"(?=\n?\Z)")
            elif not in_class and escaped == "k" and pattern[index + 2 : index + 3] in ("<", "'"):
                closing = ">" if pattern[index + 2] == "<" else "'"
                end = pattern.index(closing, index + 3)
                output.append(f"(?P={pattern[index + 3 : end]})")
                index = end + 1
                continue
            else:
                output.append(pattern[index : index + 2])
            index += 2
            continue
        if in_class:
            if character == "]":
                in_class = False
            output.append(character)
            index += 1
            continue
        if character == "[":
            in_class = True
            output.append(character)
            # A ] right after [ or [^ is a literal.
            if pattern[index + 1 : index + 2] == "^":
                output.append("^")
                index += 1
            if pattern[index + 1 : index + 2] == "]":
                output.append(r"\]")
                index += 1
            index += 1
            continue
        if character == "(" and pattern[index + 1 : index + 2] == "?":
            named = re.match(r"\(\?(?:<([A-Za-z_][A-Za-z0-9_]*)>|'([A-Za-z_][A-Za-z0-9_]*)')", pattern[index:])
            if named:
                output.append(f"(?P<{named.group(1) or named.group(2)}>")
                index += named.end()
                continue
        output.append(character)
        index += 1
    return "".join(output)


def expand_replacement(match: re.Match[str], replacement: str) -> str:
    """A .NET replacement pattern for one match ("Substitutions in Regular Expressions")."""
    output: list[str] = []
    index = 0
    while index < len(replacement):
        character = replacement[index]
        if character != "$" or index + 1 == len(replacement):
            output.append(character)
            index += 1
            continue
        following = replacement[index + 1]
        if following == "$":
            output.append("$")
            index += 2
        elif following == "&":
            output.append(match.group(0))
            index += 2
        elif following == "`":
            output.append(match.string[: match.start()])
            index += 2
        elif following == "'":
            output.append(match.string[match.end() :])
            index += 2
        elif following == "_":
            output.append(match.string)
            index += 2
        elif following == "+":
            output.append(match.group(match.re.groups) or "" if match.re.groups else "")
            index += 2
        elif following == "{":
            end = replacement.find("}", index)
            name = replacement[index + 2 : end] if end > 0 else ""
            group = _group(match, name)
            if end < 0 or group is _MISSING:
                output.append(character)
                index += 1
            else:
                output.append(group or "")
                index = end + 1
        elif following.isdigit():
            digits = re.match(r"\d+", replacement[index + 1 :]).group(0)  # type: ignore[union-attr]
            # The longest number that names a group, as .NET reads $10 with fewer than ten groups.
            while digits and int(digits) > match.re.groups:
                digits = digits[:-1]
            if not digits:
                output.append(character)
                index += 1
            else:
                output.append(match.group(int(digits)) or "")
                index += 1 + len(digits)
        else:
            output.append(character)
            index += 1
    return "".join(output)


_MISSING = object()


def _group(match: re.Match[str], name: str) -> object:
    if name.isdigit():
        return match.group(int(name)) if int(name) <= match.re.groups else _MISSING
    return match.group(name) if name in match.re.groupindex else _MISSING


def wildcard_to_regex(pattern: str) -> str:
    """A ``-like`` wildcard (``*``, ``?``, ``[a-z]``, backtick escapes) as an anchored regular expression."""
    output: list[str] = ["\\A"]
    index = 0
    while index < len(pattern):
        character = pattern[index]
        if character == "`" and index + 1 < len(pattern):
            output.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        if character == "*":
            output.append(".*")
        elif character == "?":
            output.append(".")
        elif character == "[":
            end = pattern.find("]", index + 1)
            if end < 0:
                output.append(re.escape(character))
            else:
                output.append("[" + pattern[index + 1 : end].replace("\\", "\\\\") + "]")
                index = end
        else:
            output.append(re.escape(character))
        index += 1
    output.append("\\Z")
    return "".join(output)
