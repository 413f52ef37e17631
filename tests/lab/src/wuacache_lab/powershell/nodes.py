"""The lowered syntax tree of a PowerShell script.

:mod:`wuacache_lab.powershell.lower` builds it from tree-sitter's concrete
tree, keeping only what the language means: one node per statement or
expression, with its place in the source (:class:`Extent`) for error
messages. Nodes are immutable; the evaluator never changes them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Union


@dataclass(frozen=True)
class SourceFile:
    """A script as it arrived: its name for messages and its lines."""

    name: str
    text: str

    @cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def line(self, number: int) -> str:
        return self.lines[number - 1] if 0 < number <= len(self.lines) else ""


@dataclass(frozen=True)
class Extent:
    """Where a node is: 1-based lines and columns, as PowerShell reports them."""

    file: SourceFile
    line: int
    column: int
    end_line: int
    end_column: int

    @property
    def file_name(self) -> str:
        return self.file.name

    @property
    def text(self) -> str:
        lines = self.file.lines[self.line - 1 : self.end_line]
        if not lines:
            return ""
        if len(lines) == 1:
            return lines[0][self.column - 1 : self.end_column - 1]
        return "\n".join([lines[0][self.column - 1 :], *lines[1:-1], lines[-1][: self.end_column - 1]])


# ---------------------------------------------------------------- types


@dataclass(frozen=True)
class TypeName:
    """A type as written between brackets: ``[string[]]``, ``[System.Collections.Generic.List[object]]``."""

    name: str
    generic_arguments: tuple[TypeName, ...] = ()
    array_rank: int = 0

    def __str__(self) -> str:
        text = self.name
        if self.generic_arguments:
            text += "[" + ",".join(str(argument) for argument in self.generic_arguments) + "]"
        if self.array_rank:
            text += "[" + "," * (self.array_rank - 1) + "]"
        return text


# ---------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Constant:
    """A number or a single-quoted string, its value already computed."""

    extent: Extent
    value: object


@dataclass(frozen=True)
class ExpandableString:
    """A double-quoted string (or a bare word holding ``$``): literal text and expressions in order."""

    extent: Extent
    parts: tuple[Union[str, Expression], ...]


@dataclass(frozen=True)
class VariablePath:
    """``$name``, ``$script:name``, ``$env:NAME``, ``${function:Get-Item}``: qualifier (lower case) and name."""

    qualifier: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.qualifier}:{self.name}" if self.qualifier else self.name


@dataclass(frozen=True)
class Variable:
    extent: Extent
    path: VariablePath
    splatted: bool = False


@dataclass(frozen=True)
class TypeLiteral:
    extent: Extent
    type_name: TypeName


@dataclass(frozen=True)
class ArrayLiteral:
    """``a, b, c`` and the unary comma ``,a``: always a new object[]."""

    extent: Extent
    elements: tuple[Expression, ...]


@dataclass(frozen=True)
class ArraySubexpression:
    """``@( statements )``: their output, always as an array."""

    extent: Extent
    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class Subexpression:
    """``$( statements )``: their output, unrolled."""

    extent: Extent
    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class Parenthesized:
    """``( pipeline )``: an expression keeps its value, commands give their output."""

    extent: Extent
    pipeline: Statement


@dataclass(frozen=True)
class HashEntry:
    key: Expression
    value: Statement


@dataclass(frozen=True)
class HashLiteral:
    extent: Extent
    entries: tuple[HashEntry, ...]


@dataclass(frozen=True)
class ScriptBlockExpression:
    extent: Extent
    body: ScriptBlockBody


@dataclass(frozen=True)
class Cast:
    """``[type] operand``; ``[ordered]`` before a hash literal and ``[void]`` are casts too."""

    extent: Extent
    type_name: TypeName
    operand: Expression


@dataclass(frozen=True)
class BinaryOperation:
    """``left <operator> right``; the operator in lower case, as written (``-eq``, ``-ceq``, ``+``, ``..``, ``-f``)."""

    extent: Extent
    operator: str
    left: Expression
    right: Expression


@dataclass(frozen=True)
class UnaryOperation:
    """``-not``, ``!``, ``-bnot``, ``+``, ``-``, ``-split``, ``-join`` before their operand."""

    extent: Extent
    operator: str
    operand: Expression


@dataclass(frozen=True)
class IncrementDecrement:
    """``++``/``--`` before (prefix) or after their operand."""

    extent: Extent
    operator: str
    operand: Expression
    prefix: bool


@dataclass(frozen=True)
class MemberAccess:
    """``target.member`` or ``[type]::member``; the member name is an expression (usually a constant)."""

    extent: Extent
    target: Expression
    member: Expression
    static: bool


@dataclass(frozen=True)
class InvokeMember:
    """``target.Method(arguments)`` or ``[type]::Method(arguments)``."""

    extent: Extent
    target: Expression
    member: Expression
    arguments: tuple[Expression, ...]
    static: bool


@dataclass(frozen=True)
class Index:
    """``target[index]``."""

    extent: Extent
    target: Expression
    index: Expression


Expression = Union[
    Constant,
    ExpandableString,
    Variable,
    TypeLiteral,
    ArrayLiteral,
    ArraySubexpression,
    Subexpression,
    Parenthesized,
    HashLiteral,
    ScriptBlockExpression,
    Cast,
    BinaryOperation,
    UnaryOperation,
    IncrementDecrement,
    MemberAccess,
    InvokeMember,
    Index,
]


# ---------------------------------------------------------------- commands


@dataclass(frozen=True)
class CommandParameter:
    """``-Name``, or ``-Name:argument`` when the argument is joined to it by a colon."""

    extent: Extent
    name: str
    argument: Expression | None = None


@dataclass(frozen=True)
class Command:
    """A command invocation: a name (a bare word) or, after ``&``, an expression giving the command.

    ``method_syntax`` says that it reads ``f(a, b)``: one parenthesized array
    right after the name, which strict mode 2.0 and later refuses at run time.
    """

    extent: Extent
    name: str | Expression
    elements: tuple[Union[CommandParameter, Expression], ...]
    call_operator: bool = False
    method_syntax: bool = False


@dataclass(frozen=True)
class Pipeline:
    """``first | command | command``: the first element may be an expression, the others are commands."""

    extent: Extent
    elements: tuple[Union[Command, Expression], ...]


# ---------------------------------------------------------------- statements


@dataclass(frozen=True)
class Assignment:
    """``target <operator> value``: ``=``, ``+=``, ``-=``, ``*=``, ``/=``, ``%=``; the value is a statement."""

    extent: Extent
    target: Expression
    operator: str
    value: Statement


@dataclass(frozen=True)
class IfClause:
    condition: Statement
    body: tuple[Statement, ...]


@dataclass(frozen=True)
class If:
    extent: Extent
    clauses: tuple[IfClause, ...]
    else_body: tuple[Statement, ...] | None


@dataclass(frozen=True)
class ForEach:
    extent: Extent
    variable: Variable
    iterable: Statement
    body: tuple[Statement, ...]
    label: str | None = None


@dataclass(frozen=True)
class For:
    extent: Extent
    initializer: Statement | None
    condition: Statement | None
    iterator: Statement | None
    body: tuple[Statement, ...]
    label: str | None = None


@dataclass(frozen=True)
class While:
    extent: Extent
    condition: Statement
    body: tuple[Statement, ...]
    label: str | None = None


@dataclass(frozen=True)
class DoLoop:
    """``do { } while ( )`` (``until`` false) or ``do { } until ( )``."""

    extent: Extent
    body: tuple[Statement, ...]
    condition: Statement
    until: bool
    label: str | None = None


@dataclass(frozen=True)
class CatchClause:
    extent: Extent
    types: tuple[TypeName, ...]
    body: tuple[Statement, ...]


@dataclass(frozen=True)
class Try:
    extent: Extent
    body: tuple[Statement, ...]
    catches: tuple[CatchClause, ...]
    finally_body: tuple[Statement, ...] | None


@dataclass(frozen=True)
class FlowControl:
    """``return``, ``throw``, ``exit`` (with an optional pipeline), ``break`` and ``continue`` (with an optional label)."""

    extent: Extent
    keyword: str
    value: Statement | None = None
    label: str | None = None


@dataclass(frozen=True)
class FunctionDefinition:
    extent: Extent
    name: str
    body: ScriptBlockBody


Statement = Union[Pipeline, Assignment, If, ForEach, For, While, DoLoop, Try, FlowControl, FunctionDefinition]


# ---------------------------------------------------------------- script blocks


@dataclass(frozen=True)
class AttributeNode:
    """``[Name(positional, Named = value, Flag)]``: a flag named without a value is ``$true``."""

    extent: Extent
    type_name: TypeName
    positional: tuple[Expression, ...]
    named: tuple[tuple[str, Expression | None], ...]


@dataclass(frozen=True)
class ParameterNode:
    """One parameter of a ``param`` block: its attributes, type constraints in order, and default."""

    extent: Extent
    name: str
    attributes: tuple[AttributeNode, ...]
    type_constraints: tuple[TypeName, ...]
    default: Expression | None


@dataclass(frozen=True)
class ParamBlock:
    extent: Extent
    attributes: tuple[AttributeNode, ...]
    parameters: tuple[ParameterNode, ...]


@dataclass(frozen=True)
class ScriptBlockBody:
    """A script, a function's body or a ``{ }`` literal: its parameters and statements."""

    extent: Extent
    param_block: ParamBlock | None
    statements: tuple[Statement, ...]


def walk(node: object) -> Iterator[object]:
    """Every node of the tree below ``node`` (``node`` included), depth first, in source order."""
    yield node
    if isinstance(node, tuple):
        for item in node:
            yield from walk(item)
    elif dataclasses.is_dataclass(node) and not isinstance(node, (Extent, SourceFile, TypeName, type)):
        for field in dataclasses.fields(node):
            yield from walk(getattr(node, field.name))
