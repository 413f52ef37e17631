"""Search criteria of ``IUpdateSearcher.Search``, parsed and checked as WUA does.

The syntax is a restricted SQL WHERE clause: comparisons joined by ``and``,
with ``or`` only at the top level (``(a and b) or c`` is valid,
``a and (b or c)`` is not). ``!=`` is allowed on ``Type`` and ``UpdateID``,
``contains`` only on ``CategoryIDs``, and ``RevisionNumber`` only next to
``UpdateID=``. Anything else fails with WU_E_INVALID_CRITERIA.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wuacache_lab.windows.errors import WU_E_INVALID_CRITERIA, COMError

DEFAULT_CRITERIA = "IsInstalled=0 and IsHidden=0"

_BOOLEANS = {"isinstalled", "ishidden", "ispresent", "rebootrequired"}
_STRINGS = {"type", "updateid", "deploymentaction"}
_INTEGERS = {"revisionnumber"}
_CATEGORIES = "categoryids"
_VALID_NAMES = _BOOLEANS | _STRINGS | _INTEGERS | {_CATEGORIES}
# Valid in WUA, but about properties the emulated catalog does not carry.
_UNMODELLED_NAMES = {"isassigned", "browseonly", "autoselectonwebsites"}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<number>-?\d+)
      | (?P<operator>!=|=)
      | (?P<paren>[()])
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Comparison:
    name: str  # lower case
    operator: str  # "=", "!=" or "contains"
    value: int | str


# Conjunctions joined by "or".
Criteria = tuple[tuple[Comparison, ...], ...]


def parse_criteria(text: str) -> Criteria:
    if not text.strip():
        text = DEFAULT_CRITERIA
    parser = _Parser(_tokenize(text))
    criteria = parser.criteria()
    for conjunction in criteria:
        _check_conjunction(conjunction)
    return criteria


def matches(criteria: Criteria, update: Mapping[str, Any]) -> bool:
    """Whether an update, given as criterion name (lower case) -> value,
    meets the criteria."""
    return any(all(_compare(comparison, update) for comparison in conjunction) for conjunction in criteria)


def _invalid(reason: str) -> COMError:
    return COMError(WU_E_INVALID_CRITERIA, f"Invalid search criteria: {reason}")


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise _invalid(f"unexpected text at {text[position:]!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self._tokens = tokens
        self._position = 0

    def criteria(self) -> Criteria:
        conjunctions = [self._conjunction()]
        while self._keyword("or"):
            conjunctions.append(self._conjunction())
        if self._position != len(self._tokens):
            raise _invalid(f"unexpected {self._tokens[self._position][1]!r}")
        return tuple(conjunctions)

    def _conjunction(self) -> tuple[Comparison, ...]:
        comparisons = list(self._factor())
        while self._keyword("and"):
            comparisons.extend(self._factor())
        return tuple(comparisons)

    def _factor(self) -> tuple[Comparison, ...]:
        if self._peek() == ("paren", "("):
            self._position += 1
            # Only conjunctions may be parenthesised: "or" is top-level only.
            comparisons = self._conjunction()
            if self._next() != ("paren", ")"):
                raise _invalid("'or' is only allowed at the top level, and parentheses must balance")
            return comparisons
        return (self._comparison(),)

    def _comparison(self) -> Comparison:
        kind, name = self._next()
        if kind != "word":
            raise _invalid(f"expected a property name, not {name!r}")
        kind, operator = self._next()
        if kind == "word" and operator.lower() == "contains":
            operator = "contains"
        elif kind != "operator":
            raise _invalid(f"expected an operator after {name}")
        kind, literal = self._next()
        if kind == "string":
            value: int | str = literal[1:-1].replace("''", "'")
        elif kind == "number":
            value = int(literal)
        else:
            raise _invalid(f"expected a value after {name}{operator}")
        return Comparison(name.lower(), operator, value)

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token[0] == "word" and token[1].lower() == word:
            self._position += 1
            return True
        return False

    def _peek(self) -> tuple[str, str] | None:
        return self._tokens[self._position] if self._position < len(self._tokens) else None

    def _next(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise _invalid("unexpected end")
        self._position += 1
        return token


def _check_conjunction(conjunction: tuple[Comparison, ...]) -> None:
    for comparison in conjunction:
        name, operator, value = comparison.name, comparison.operator, comparison.value
        if name in _UNMODELLED_NAMES:
            raise NotImplementedError(f"the emulated WUA does not model the {name} criterion")
        if name not in _VALID_NAMES:
            raise _invalid(f"unknown property {name}")
        if (operator == "contains") != (name == _CATEGORIES):
            raise _invalid("'contains' goes with CategoryIDs, and CategoryIDs only with 'contains'")
        if operator == "!=" and name not in ("type", "updateid"):
            raise _invalid(f"'!=' is not allowed on {name}")
        expects_integer = name in _BOOLEANS or name in _INTEGERS
        if expects_integer != isinstance(value, int):
            raise _invalid(f"wrong kind of value for {name}")
        if name in _BOOLEANS and value not in (0, 1):
            raise _invalid(f"{name} takes 0 or 1")
    if any(c.name == "revisionnumber" for c in conjunction) and not any(
        c.name == "updateid" and c.operator == "=" for c in conjunction
    ):
        raise _invalid("RevisionNumber needs UpdateID= in the same conjunction")


def _compare(comparison: Comparison, update: Mapping[str, Any]) -> bool:
    actual = update[comparison.name]
    if comparison.operator == "contains":
        return str(comparison.value).lower() in {category.lower() for category in actual}
    if comparison.name in _BOOLEANS:
        equal = bool(actual) == bool(comparison.value)
    elif isinstance(comparison.value, str):
        equal = str(actual).casefold() == comparison.value.casefold()
    else:
        equal = actual == comparison.value
    return equal if comparison.operator == "=" else not equal
