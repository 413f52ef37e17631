"""PowerShell's operators on values (about_Operators and the pages it links).

- Arithmetic (about_Arithmetic_Operators): the left operand decides; a
  string concatenates, an array appends, a hashtable merges; numbers widen
  (Int32, Int64, Decimal, Double) and an integer result that overflows its
  type becomes a Double.
- Comparison (about_Comparison_Operators): case-insensitive unless
  ``c``-prefixed; the right operand is converted to the left one's type; an
  array on the left filters its elements instead.
- ``-match`` and ``-replace`` use .NET regular expressions
  (:mod:`wuacache_lab.powershell.regex`); ``-like`` wildcards.

``-is``, ``-isnot`` and ``-as`` need the type registry and live with the
evaluator; ``-and``/``-or`` short-circuit there too.
"""

from __future__ import annotations

import re
from decimal import Decimal

from wuacache_lab.powershell import formatting, regex
from wuacache_lab.powershell.conversions import (
    enumerate_value,
    is_enumerable,
    is_number,
    object_to_string,
    to_bool,
    to_integer,
    to_number,
    to_string,
)
from wuacache_lab.powershell.errors import DotNetException, PowerShellError, runtime_error
from wuacache_lab.powershell.values import (
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    Char,
    DateTime,
    EnumValue,
    Hashtable,
    Int64,
    OrderedDictionary,
    TimeSpan,
    base_object,
    integer_type_name,
    is_null,
    type_name_of,
)

_INTEGER_RANK = {"System.Int32": 1, "System.Int64": 2}


def _operator_error(message: str, error_id: str, inner: DotNetException | None = None) -> PowerShellError:
    return runtime_error(message, error_id, inner=inner)


# ---------------------------------------------------------------- arithmetic


def _numeric_result(value: int | float | Decimal, left: object, right: object) -> int | float | Decimal:
    """The value in the wider of the operands' types; an integer that overflows it becomes a Double."""
    if isinstance(value, (float, Decimal)):
        return value
    wide = max(_INTEGER_RANK.get(integer_type_name(operand), 2) for operand in (left, right))
    low, high = (INT32_MIN, INT32_MAX) if wide == 1 else (INT64_MIN, INT64_MAX)
    if low <= value <= high:
        return int(value) if wide == 1 else Int64(value)
    return float(value)


def _arithmetic_operands(left: object, right: object) -> tuple[int | float | Decimal, int | float | Decimal]:
    a, b = to_number(left), to_number(right)
    if isinstance(a, float) or isinstance(b, float):
        return float(a), float(b)
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return Decimal(a), Decimal(b)
    return a, b


def add(left: object, right: object) -> object:
    left, right = base_object(left), base_object(right)
    if left is None:
        return list(right) if isinstance(right, list) else right
    if isinstance(left, str) and not isinstance(left, Char):
        return left + to_string(right)
    if isinstance(left, Char) and isinstance(right, str):
        return str(left) + right
    if isinstance(left, list):
        return [*left, *enumerate_value(right)] if is_enumerable(right) else [*left, right]
    if isinstance(left, Hashtable):
        if not isinstance(right, Hashtable):
            raise _operator_error("A hash table can only be added to another hash table.", "AddHashTableToNonHashTable")
        merged = OrderedDictionary(left.items()) if isinstance(left, OrderedDictionary) else Hashtable(left.items())
        for key, value in right.items():
            if key in merged:
                raise _operator_error(
                    f"Item has already been added. Key in dictionary: '{key}'  Key being added: '{key}'",
                    "System.ArgumentException",
                    DotNetException("System.ArgumentException", "Item has already been added."),
                )
            merged[key] = value
        return merged
    if isinstance(left, DateTime):
        if isinstance(right, TimeSpan):
            return DateTime(left.ticks + right.ticks, left.kind)
        return DateTime(left.ticks + to_integer(right, "System.Int64"), left.kind)
    if isinstance(left, TimeSpan) and isinstance(right, TimeSpan):
        return TimeSpan(left.ticks + right.ticks)
    a, b = _arithmetic_operands(left, right)
    return _numeric_result(a + b, left, right)  # type: ignore[operator]


def subtract(left: object, right: object) -> object:
    left, right = base_object(left), base_object(right)
    if isinstance(left, DateTime):
        if isinstance(right, DateTime):
            return TimeSpan(left.ticks - right.ticks)
        if isinstance(right, TimeSpan):
            return DateTime(left.ticks - right.ticks, left.kind)
    if isinstance(left, TimeSpan) and isinstance(right, TimeSpan):
        return TimeSpan(left.ticks - right.ticks)
    _require_number("-", left, right)
    a, b = _arithmetic_operands(left, right)
    return _numeric_result(a - b, left, right)  # type: ignore[operator]


def multiply(left: object, right: object) -> object:
    left, right = base_object(left), base_object(right)
    if isinstance(left, str):
        return left * to_integer(right)
    if isinstance(left, list):
        return left * to_integer(right)
    _require_number("*", left, right)
    a, b = _arithmetic_operands(left, right)
    return _numeric_result(a * b, left, right)  # type: ignore[operator]


def divide(left: object, right: object) -> object:
    left, right = base_object(left), base_object(right)
    _require_number("/", left, right)
    a, b = _arithmetic_operands(left, right)
    if b == 0 and not isinstance(b, float):
        inner = DotNetException("System.DivideByZeroException", "Attempted to divide by zero.")
        raise runtime_error("Attempted to divide by zero.", "RuntimeException", category="NotSpecified", inner=inner)
    if isinstance(a, int) and isinstance(b, int):
        if a % b == 0:
            return _numeric_result(a // b, left, right)
        return a / b
    if isinstance(a, float) and b == 0:
        return float("nan") if a == 0 else float("inf") * (1 if a > 0 else -1)
    return a / b  # type: ignore[operator]


def remainder(left: object, right: object) -> object:
    left, right = base_object(left), base_object(right)
    _require_number("%", left, right)
    a, b = _arithmetic_operands(left, right)
    if b == 0 and not isinstance(b, float):
        inner = DotNetException("System.DivideByZeroException", "Attempted to divide by zero.")
        raise runtime_error("Attempted to divide by zero.", "RuntimeException", category="NotSpecified", inner=inner)
    # C#'s remainder takes the sign of the dividend.
    result = abs(a) % abs(b)  # type: ignore[operator]
    return _numeric_result(-result if a < 0 else result, left, right)  # type: ignore[operator]


def negate(operand: object) -> object:
    operand = base_object(operand)
    number = to_number(operand)
    return _numeric_result(-number, operand, 0)


def _require_number(operator: str, left: object, right: object) -> None:
    for operand in (left, right):
        if operand is None or isinstance(operand, (bool, str, Char, EnumValue)) or is_number(operand):
            continue
        raise _operator_error(
            f"Method invocation failed because [{type_name_of(operand)}] does not contain a method named 'op_{_OP_NAMES[operator]}'.",
            "MethodNotFound",
        )


_OP_NAMES = {"-": "Subtraction", "*": "Multiply", "/": "Division", "%": "Modulus"}


# ---------------------------------------------------------------- bitwise


def bitwise(operator: str, left: object, right: object) -> object:
    left, right = base_object(left), base_object(right)
    if isinstance(left, EnumValue):
        # The right operand converted to the enum: a value, a field's name ('Tls12') or a number.
        named = _enum_number(left, right) if isinstance(right, str) else None
        other = right.value if isinstance(right, EnumValue) else named if named is not None else to_integer(right, "System.Int64")
        value = {"-band": left.value & other, "-bor": left.value | other, "-bxor": left.value ^ other}[operator]
        return EnumValue(left.enum, value)
    a = _bitwise_operand(left)
    b = _bitwise_operand(right)
    value = {"-band": a & b, "-bor": a | b, "-bxor": a ^ b}[operator]
    wide = "System.Int64" if "System.Int64" in (integer_type_name(a), integer_type_name(b)) else "System.Int32"
    return Int64(value) if wide == "System.Int64" else value


def _bitwise_operand(value: object) -> int:
    if isinstance(value, EnumValue):
        return value.value
    if isinstance(value, float):
        return to_integer(value, "System.Int64")
    number = to_number(value)
    if isinstance(number, (float, Decimal)):
        return to_integer(number, "System.Int64")
    return number


def bitwise_not(operand: object) -> object:
    value = _bitwise_operand(base_object(operand))
    return ~value if integer_type_name(value) == "System.Int32" else Int64(~value)


def shift(operator: str, left: object, right: object) -> object:
    value = _bitwise_operand(base_object(left))
    count = to_integer(right)
    width = 64 if integer_type_name(value) == "System.Int64" else 32
    count &= width - 1
    if operator == "-shl":
        result = (value << count) & ((1 << width) - 1)
        result = result - (1 << width) if result & (1 << (width - 1)) else result
    else:
        result = value >> count
    return Int64(result) if width == 64 else result


# ---------------------------------------------------------------- comparison


def _case_insensitive(operator: str) -> tuple[str, bool]:
    """``-ceq`` -> (``eq``, False); ``-ieq`` and ``-eq`` -> (``eq``, True)."""
    name = operator[1:]
    if name.startswith("c") and name[1:] in _COMPARISONS:
        return name[1:], False
    if name.startswith("i") and name[1:] in _COMPARISONS:
        return name[1:], True
    return name, True


_COMPARISONS = frozenset(
    {"eq", "ne", "gt", "ge", "lt", "le", "like", "notlike", "match", "notmatch", "contains", "notcontains", "in", "notin", "replace", "split"}
)


def is_comparison(operator: str) -> bool:
    name, _ = _case_insensitive(operator)
    return name in _COMPARISONS


def values_equal(left: object, right: object, ignore_case: bool = True) -> bool:
    """LanguagePrimitives.Equals: the right operand converted to the left one's type."""
    left, right = base_object(left), base_object(right)
    if left is None:
        return right is None
    if right is None:
        return False
    if isinstance(left, str):
        right_text = to_string(right) if not isinstance(right, str) else right
        return left.casefold() == right_text.casefold() if ignore_case else left == right_text
    if isinstance(left, bool):
        return left == to_bool(right)
    if is_number(left) or isinstance(left, EnumValue):
        left_number = left.value if isinstance(left, EnumValue) else left
        if isinstance(right, EnumValue):
            return left_number == right.value
        if isinstance(left, EnumValue) and isinstance(right, str):
            # The right operand converted to the enum: a field's name ("Running").
            return _enum_number(left, right) == left_number
        try:
            right_number = to_number(right)
        except PowerShellError:
            return False
        return left_number == right_number
    if isinstance(left, DateTime) and isinstance(right, DateTime):
        return left.ticks == right.ticks
    return left is right or left == right



def _enum_number(left: EnumValue, text: str) -> int | None:
    """A string as the value of the left operand's enum: a field's name, names joined by commas for
    a [Flags] enum, or a number; None when it is none of them."""
    names = text.split(",") if left.enum.flags else [text]
    values = [left.enum.value_of(name) for name in names]
    if all(value is not None for value in values):
        total = 0
        for value in values:
            total |= value  # type: ignore[operator]
        return total
    try:
        return int(text.strip())
    except ValueError:
        return None

def compare(left: object, right: object, ignore_case: bool = True) -> int:
    """LanguagePrimitives.Compare: negative, zero or positive."""
    left, right = base_object(left), base_object(right)
    if left is None:
        return 0 if right is None else -1
    if right is None:
        return 1
    try:
        if isinstance(left, str):
            a, b = left, to_string(right)
            if ignore_case:
                a, b = a.casefold(), b.casefold()
            return (a > b) - (a < b)
        if isinstance(left, (DateTime, TimeSpan)):
            if type(right) is not type(left):
                raise TypeError
            return (left.ticks > right.ticks) - (left.ticks < right.ticks)  # type: ignore[attr-defined]
        a_number = left.value if isinstance(left, EnumValue) else to_number(left)
        if isinstance(left, EnumValue) and isinstance(right, str):
            b_number = _enum_number(left, right)
            if b_number is None:
                raise TypeError
        else:
            b_number = right.value if isinstance(right, EnumValue) else to_number(right)
        return (a_number > b_number) - (a_number < b_number)  # type: ignore[operator]
    except (PowerShellError, TypeError):
        message = f'Could not compare "{object_to_string(left)}" to "{object_to_string(right)}".'
        raise _operator_error(message, "ComparisonFailure") from None


def comparison(operator: str, left: object, right: object) -> tuple[object, Hashtable | None]:
    """A comparison operator; the second value is ``$Matches`` when ``-match``/``-notmatch`` set it."""
    name, ignore_case = _case_insensitive(operator)
    left_plain = base_object(left)
    if name in ("contains", "notcontains"):
        items = list(enumerate_value(left_plain)) if not is_null(left_plain) else [None]
        found = any(values_equal(item, right, ignore_case) for item in items)
        return (found if name == "contains" else not found), None
    if name in ("in", "notin"):
        items = list(enumerate_value(base_object(right))) if not is_null(right) else [None]
        found = any(values_equal(item, left, ignore_case) for item in items)
        return (found if name == "in" else not found), None
    if name == "replace":
        return replace(left, right, ignore_case), None
    if name == "split":
        return split(left, right, ignore_case), None
    if isinstance(left_plain, list) or (is_enumerable(left_plain) and not isinstance(left_plain, str)):
        # An array on the left: the elements for which the comparison holds.
        kept = [item for item in enumerate_value(left_plain) if to_bool(_scalar_comparison(name, item, right, ignore_case)[0])]
        return kept, None
    return _scalar_comparison(name, left, right, ignore_case)


def _scalar_comparison(name: str, left: object, right: object, ignore_case: bool) -> tuple[object, Hashtable | None]:
    if name == "eq":
        return values_equal(left, right, ignore_case), None
    if name == "ne":
        return not values_equal(left, right, ignore_case), None
    if name in ("gt", "ge", "lt", "le"):
        order = compare(left, right, ignore_case)
        return {"gt": order > 0, "ge": order >= 0, "lt": order < 0, "le": order <= 0}[name], None
    if name in ("like", "notlike"):
        flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
        matched = re.match(regex.wildcard_to_regex(to_string(right)), to_string(left), flags) is not None
        return (matched if name == "like" else not matched), None
    if name in ("match", "notmatch"):
        pattern = compile_pattern(to_string(right), ignore_case)
        found = pattern.search(to_string(left))
        matches = matches_table(found) if found else None
        return ((found is not None) if name == "match" else (found is None)), matches
    raise _operator_error(f"Unexpected operator '-{name}'.", "UnexpectedToken")


def compile_pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    try:
        return regex.compile_regex(pattern, regex.IGNORE_CASE if ignore_case else 0)
    except regex.RegexTranslationError as error:
        message = f"The regular expression pattern {pattern} is not valid."
        inner = DotNetException("System.ArgumentException", str(error))
        raise runtime_error(message, "InvalidRegularExpression", category="InvalidOperation", inner=inner) from None


def matches_table(match: re.Match[str]) -> Hashtable:
    """``$Matches``: group 0 and each group that took part, by number and by name."""
    table = Hashtable()
    names = {number: name for name, number in match.re.groupindex.items()}
    for number in range(match.re.groups, -1, -1):
        value = match.group(number)
        if value is None:
            continue
        table[names.get(number, number)] = value
    return table


def replace(left: object, right: object, ignore_case: bool) -> object:
    operands = list(enumerate_value(base_object(right))) if isinstance(base_object(right), list) else [right]
    if len(operands) > 2:
        raise _operator_error(
            "The -replace operator allows only two elements to follow it, not 3.", "BadReplaceArgument"
        )
    pattern = compile_pattern(to_string(operands[0]), ignore_case)
    replacement = to_string(operands[1]) if len(operands) == 2 else ""

    def one(value: object) -> str:
        return pattern.sub(lambda match: regex.expand_replacement(match, replacement), to_string(value))

    left_plain = base_object(left)
    if isinstance(left_plain, list):
        return [one(item) for item in left_plain]
    return one(left_plain)


def split(left: object, right: object, ignore_case: bool) -> list[object]:
    operands = list(enumerate_value(base_object(right))) if isinstance(base_object(right), list) else [right]
    pattern = compile_pattern(to_string(operands[0]), ignore_case)
    limit = to_integer(operands[1]) if len(operands) > 1 else 0
    result: list[object] = []
    for item in enumerate_value(base_object(left)):
        result.extend(pattern.split(to_string(item), maxsplit=max(limit - 1, 0)) if limit != 1 else [to_string(item)])
    return result


def unary_split(operand: object) -> list[object]:
    """``-split "a b"``: on runs of whitespace, without empty strings."""
    return [part for item in enumerate_value(base_object(operand)) for part in to_string(item).split()]


def join(left: object, right: object) -> str:
    separator = to_string(right)
    return separator.join(to_string(item) for item in enumerate_value(base_object(left)))


def format_operator(template: object, arguments: object, format_one) -> str:  # type: ignore[no-untyped-def]
    """``-f``: the right operand's elements are the arguments."""
    items = list(enumerate_value(base_object(arguments))) if isinstance(base_object(arguments), list) else [arguments]
    try:
        return formatting.format_composite(to_string(template), items, format_one)
    except formatting.FormatError as error:
        message = f'Error formatting a string: {error}.'
        inner = DotNetException("System.FormatException", str(error))
        raise runtime_error(message, "FormatError", category="InvalidOperation", inner=inner) from None


def value_range(start: object, end: object) -> list[object]:
    first, last = to_integer(start), to_integer(end)
    step = 1 if last >= first else -1
    return list(range(first, last + step, step))


def logical_xor(left: object, right: object) -> bool:
    return to_bool(left) != to_bool(right)

