# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Changed copies of the bridge, each of which the lab must catch (or keep working).

A mutant is one edit of ``_wua_bridge.ps1``'s text at one place of its syntax
tree, with what PowerShell would make of it:

- the systematic ones: every parameter given by name to a command is renamed
  to one no command has (PowerShell fails to bind it: ParameterBindingException),
  and every member read or called on an object is misspelt (strict mode fails
  the read: PropertyNotFoundException; a call fails with MethodNotFound);
- hand-written ones for the mistakes that usually bite (see :data:`KNOWN`):
  a wrong argument count to a COM method, an unset variable, PowerShell 7
  syntax, a result deeper than ``ConvertTo-Json``'s default depth, a missing
  ``@()``, a variable assigned in a function and read outside it, a changed
  ``catch`` type;
- valid variants, which must still work: a parameter prefix, a lower-case
  cmdlet name, ``-EA Stop`` and ``-ErrorAction:Stop``, a positional parameter.

``expected`` names the .NET exception types PowerShell raises for the
mutant; ``None`` means that the script runs but its answer is wrong, which
the controller's or the test's checks must notice.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from wuacache_lab.powershell import nodes as n
from wuacache_lab.powershell.lower import parse

BRIDGE = Path(__file__).resolve().parents[2] / "plugins" / "plugin_utils" / "_wua_bridge.ps1"
# Appended to a name, it makes one that no cmdlet, parameter or member has.
MISSPELLING = "Zq"
# About this many systematic mutants run in `make test`; `make mutants` runs them all.
SAMPLE_SIZE = 60

PARAMETER_BINDING = "System.Management.Automation.ParameterBindingException"
PROPERTY_NOT_FOUND = "System.Management.Automation.PropertyNotFoundException"
RUNTIME_EXCEPTION = "System.Management.Automation.RuntimeException"
METHOD_EXCEPTION = "System.Management.Automation.MethodException"
PARSE_EXCEPTION = "System.Management.Automation.ParseException"


@dataclass(frozen=True)
class Edit:
    """Replace the text from ``start`` to ``end`` (offsets into the script) with ``text``."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Mutant:
    id: str
    kind: str  # "parameter", "member", "known", "semantic" or "valid"
    line: int
    column: int
    description: str
    edit: Edit
    # The exception types PowerShell raises for it; None when only the answer is wrong,
    # and empty for a valid variant, which must work.
    expected: tuple[str, ...] | None
    # For a change that fails another statement than its own: what that error's message says.
    symptom: str | None = None

    def apply(self, text: str) -> str:
        return text[: self.edit.start] + self.edit.text + text[self.edit.end :]


class _Offsets:
    """Offsets of 1-based lines and columns in a text."""

    def __init__(self, text: str) -> None:
        self.starts = [0]
        for match in re.finditer("\n", text):
            self.starts.append(match.end())

    def of(self, line: int, column: int) -> int:
        return self.starts[line - 1] + column - 1

    def span(self, extent: n.Extent) -> tuple[int, int]:
        return self.of(extent.line, extent.column), self.of(extent.end_line, extent.end_column)


def systematic(text: str, name: str = BRIDGE.name) -> list[Mutant]:
    """One mutant per parameter site and one per member site, in source order."""
    offsets = _Offsets(text)
    tree = parse(text, name)
    assigned = {id(node.target) for node in n.walk(tree) if isinstance(node, n.Assignment)}
    mutants = []
    for node in n.walk(tree):
        if isinstance(node, n.CommandParameter):
            start = offsets.span(node.extent)[0]
            end = start + 1 + len(node.name)  # "-Name", before any ":argument"
            mutants.append(
                Mutant(
                    id=f"parameter-{node.extent.line}-{node.extent.column}",
                    kind="parameter",
                    line=node.extent.line,
                    column=node.extent.column,
                    description=f"-{node.name} renamed -{node.name}{MISSPELLING}",
                    edit=Edit(start, end, f"-{node.name}{MISSPELLING}"),
                    expected=(PARAMETER_BINDING,),
                )
            )
        elif isinstance(node, (n.MemberAccess, n.InvokeMember)) and not node.static and _named(node.member):
            start, end = offsets.span(node.member.extent)
            member = str(node.member.value)
            if isinstance(node, n.InvokeMember):
                expected = (RUNTIME_EXCEPTION,)  # MethodNotFound
            elif id(node) in assigned:
                expected = None  # setting a missing key of a hashtable adds it
            else:
                # A missing key of a hashtable reads as $null, which the next call on it fails with.
                expected = (PROPERTY_NOT_FOUND, RUNTIME_EXCEPTION)
            mutants.append(
                Mutant(
                    id=f"member-{node.member.extent.line}-{node.member.extent.column}",
                    kind="member",
                    line=node.member.extent.line,
                    column=node.member.extent.column,
                    description=f".{member} misspelt .{member}{MISSPELLING}",
                    edit=Edit(start, end, member + MISSPELLING),
                    expected=expected,
                )
            )
    return mutants


def sample(mutants: list[Mutant], size: int, seed: int = 8) -> list[Mutant]:
    """A deterministic sample, the same for the same bridge, spread over the kinds."""
    chosen = random.Random(seed).sample(mutants, min(size, len(mutants)))
    return sorted(chosen, key=lambda mutant: (mutant.line, mutant.id))


def _named(member: n.Expression) -> bool:
    return isinstance(member, n.Constant) and isinstance(member.value, str)


def find(text: str, pattern: str, *, occurrence: int = 1) -> tuple[int, int]:
    """The offsets of the ``occurrence``-th match of a regular expression, which must exist."""
    matches = list(re.finditer(pattern, text, re.MULTILINE))
    if len(matches) < occurrence:
        raise LookupError(f"the bridge no longer has {pattern!r}: update the mutant")
    match = matches[occurrence - 1]
    return match.start(), match.end()


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def by_pattern(
    text: str,
    mutant_id: str,
    kind: str,
    description: str,
    pattern: str,
    replacement: str,
    expected: tuple[str, ...] | None,
    occurrence: int = 1,
    symptom: str | None = None,
) -> Mutant:
    """A hand-written mutant: the ``occurrence``-th match of ``pattern`` replaced (``\\1``... allowed)."""
    start, end = find(text, pattern, occurrence=occurrence)
    new_text = re.compile(pattern, re.MULTILINE).sub(replacement, text[start:end], count=1)
    line = line_of(text, start)
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return Mutant(mutant_id, kind, line, column, description, Edit(start, end, new_text), expected, symptom)


def hand_written(text: str) -> Iterator[Mutant]:
    """The known bad changes, the semantic mutants and the valid variants of the issue that asked for them."""
    yield by_pattern(
        text, "unknown-parameter", "known", "Get-FileHash given a parameter it does not have",
        r"Get-FileHash -LiteralPath", "Get-FileHash -Recurse -LiteralPath", (PARAMETER_BINDING,),
    )
    yield by_pattern(
        text, "com-property", "known", "IUpdate.Title misspelt",
        r"(\$Update)\.Title\b", r"\1.Titel", (PROPERTY_NOT_FOUND,),
    )
    yield by_pattern(
        text, "com-method", "known", "IUpdateSession.CreateUpdateSearcher misspelt",
        r"\.CreateUpdateSearcher\(\)", ".CreateUpdateSeacher()", (RUNTIME_EXCEPTION,),
    )
    yield by_pattern(
        text, "com-argument-count", "known", "IUpdateSession.CreateUpdateSearcher given an argument it does not take",
        # PowerShell's COM adapter checks the count against the type information before calling
        # (ComMethod.InvokeMethod, Adapter.GetBestMethodAndArguments): "Cannot find an overload".
        r"\.CreateUpdateSearcher\(\)", ".CreateUpdateSearcher(1)", (METHOD_EXCEPTION,),
    )
    yield by_pattern(
        text, "unset-variable", "known", "a variable read before any assignment, under Set-StrictMode -Version 3.0",
        r"\$CatalogPath\b(?! =)", "$CatalogFile", (RUNTIME_EXCEPTION,),
    )
    yield by_pattern(
        text, "pipeline-chain", "known", "PowerShell 7's && between two statements",
        r"^(\s*)\$script:BridgeCall = 'Initialize-PrivateFolder'$", r"\1$script:BridgeCall = 'Initialize-PrivateFolder' && $null",
        (PARSE_EXCEPTION,),
    )
    yield by_pattern(
        text, "json-depth", "known", "ConvertTo-Json without -Depth, whose default is 2",
        r"ConvertTo-Json -InputObject \$InputObject -Depth \d+", "ConvertTo-Json -InputObject $InputObject", None,
    )
    yield by_pattern(
        text, "no-array-subexpression", "semantic", "download's updates not wrapped in @(): one update is no array",
        r"updates = @\(\$updates\)", "updates = $updates", None, occurrence=2,
    )
    yield by_pattern(
        text, "variable-of-another-function", "semantic",
        "the session New-UpdateSession makes is not assigned where it is read: its local $session is unset there",
        r"\$session = New-UpdateSession", "$null = New-UpdateSession", (RUNTIME_EXCEPTION,),
        symptom="The variable '$session' cannot be retrieved because it has not been set.",
    )
    yield by_pattern(
        text, "catch-type", "semantic", "catch [MethodInvocationException] changed to another type",
        r"catch \[System\.Management\.Automation\.MethodInvocationException\]", "catch [System.ArgumentException]", None,
    )
    yield by_pattern(
        text, "valid-prefix", "valid", "-LiteralPath shortened to -LiteralP",
        r"Test-Path -LiteralPath", "Test-Path -LiteralP", (),
    )
    yield by_pattern(
        text, "valid-lower-case", "valid", "Join-Path written join-path",
        r"Join-Path -Path", "join-path -Path", (),
    )
    yield by_pattern(
        text, "valid-ea", "valid", "-ErrorAction SilentlyContinue written -EA SilentlyContinue",
        r"-ErrorAction SilentlyContinue", "-EA SilentlyContinue", (),
    )
    yield by_pattern(
        text, "valid-colon", "valid", "-ErrorAction SilentlyContinue written -ErrorAction:SilentlyContinue",
        r"-ErrorAction SilentlyContinue", "-ErrorAction:SilentlyContinue", (),
    )
    yield by_pattern(
        text, "valid-positional", "valid", "Join-Path's -Path and -ChildPath given by position",
        r"Join-Path -Path (\$\w+) -ChildPath ('[^']*')", r"Join-Path \1 \2", (),
    )
