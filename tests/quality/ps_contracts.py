# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Contract gate for the repository's PowerShell scripts.

Without running anything, checks that each script names only what Windows
PowerShell 5.1 documents, as recorded in the lab's contract tables
(``wuacache_lab.powershell.contracts``, extracted from Microsoft's reference):

- every command is a function of the script itself or a documented cmdlet, and
  every parameter given to it by name resolves to exactly one of its
  parameters (a full name, an alias or an unambiguous prefix);
- every type literal, cast, ``catch`` type, parameter type and attribute is a
  .NET Framework 4.8 type (or one of PowerShell's own), through PowerShell's
  type accelerators;
- every static member (``[Type]::Member``) exists and is static;
- ``New-Object -TypeName`` and ``New-Object -ComObject`` name a known type or
  ProgID.

Members of objects known only at run time (COM and .NET instances) are left
to the lab's interpreter, which refuses an unknown one when the script runs.
The script must also be in the subset the interpreter runs: anything it would
refuse is reported here too.

Usage: ``python tests/quality/ps_contracts.py [path ...]`` (default: the whole
repository). Exits with 1 when any script has a problem.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys
from collections.abc import Iterator

import ps_syntax
from wuacache_lab.powershell import contracts
from wuacache_lab.powershell import nodes as n
from wuacache_lab.powershell.errors import UnsupportedSyntax
from wuacache_lab.powershell.lower import parse

# ``[ordered]`` is syntax for a hash literal, not a type.
_ORDERED = "ordered"
# PowerShell looks a type name up as written, then with "System." in front.
_IMPLICIT_NAMESPACE = "System."


# One name a script uses that Windows PowerShell 5.1 does not document, where it stands.
ContractProblem = ps_syntax.SyntaxProblem


def check_script(path: pathlib.Path) -> list[ContractProblem]:
    """Return the problems of one script, in source order."""
    text = path.read_text(encoding="utf-8-sig")
    try:
        body = parse(text, str(path))
    except UnsupportedSyntax as error:
        return [ContractProblem(path, error.extent.line, error.extent.column, error.reason)]
    checker = _Checker(path, body)
    return sorted(checker.problems(), key=lambda problem: (problem.line, problem.column))


def resolve_type(type_name: n.TypeName) -> str | None:
    """The full name of the .NET type a type literal names, if the tables hold it."""
    arguments = [resolve_type(argument) for argument in type_name.generic_arguments]
    if None in arguments:
        return None
    name = contracts.type_accelerator(type_name.name) or type_name.name
    if arguments:
        name = f"{name}`{len(arguments)}"
    for candidate in (name, _IMPLICIT_NAMESPACE + name):
        found = contracts.dotnet_type(candidate)
        if found is not None:
            return found.full_name
    return None


def _attribute_type(type_name: n.TypeName) -> str | None:
    """An attribute may be named without its ``Attribute`` suffix, as ``[Parameter()]`` is."""
    return resolve_type(type_name) or resolve_type(dataclasses.replace(type_name, name=type_name.name + "Attribute"))


class _Checker:
    def __init__(self, path: pathlib.Path, body: n.ScriptBlockBody) -> None:
        self.path = path
        self.body = body
        self.functions = {
            node.name.lower(): node for node in n.walk(body) if isinstance(node, n.FunctionDefinition)
        }

    def problems(self) -> Iterator[ContractProblem]:
        for node in n.walk(self.body):
            if isinstance(node, n.Command):
                yield from self._command(node)
            elif isinstance(node, (n.TypeLiteral, n.Cast)):
                yield from self._type(node.type_name, node.extent)
            elif isinstance(node, n.CatchClause):
                for type_name in node.types:
                    yield from self._type(type_name, node.extent)
            elif isinstance(node, n.ParameterNode):
                for type_name in node.type_constraints:
                    yield from self._type(type_name, node.extent)
            elif isinstance(node, n.AttributeNode):
                if _attribute_type(node.type_name) is None:
                    yield self._problem(node.extent, f"the attribute [{node.type_name}] is not in the contract tables")
            if isinstance(node, (n.MemberAccess, n.InvokeMember)) and node.static:
                yield from self._static_member(node)

    def _command(self, command: n.Command) -> Iterator[ContractProblem]:
        if not isinstance(command.name, str):
            return  # "& <expression>": known only at run time
        function = self.functions.get(command.name.lower())
        if function is not None:
            yield from self._function_parameters(command, function)
            return
        cmdlet = contracts.cmdlet(command.name)
        if cmdlet is None:
            yield self._problem(command.extent, f"the command '{command.name}' is not in the contract tables")
            return
        for element in command.elements:
            if not isinstance(element, n.CommandParameter):
                continue
            matches = cmdlet.find_parameters(element.name)
            if not matches:
                yield self._problem(element.extent, f"{cmdlet.name} has no parameter '-{element.name}'")
            elif len(matches) > 1:
                names = ", ".join(sorted(match.name for match in matches))
                yield self._problem(element.extent, f"'-{element.name}' is ambiguous for {cmdlet.name}: {names}")
        if cmdlet.name.lower() == "new-object":
            yield from self._new_object(command, cmdlet)

    def _function_parameters(self, command: n.Command, function: n.FunctionDefinition) -> Iterator[ContractProblem]:
        param_block = function.body.param_block
        names: dict[str, str] = {}
        for parameter in () if param_block is None else param_block.parameters:
            names[parameter.name.lower()] = parameter.name
            for attribute in parameter.attributes:
                if attribute.type_name.name.lower() == "alias":
                    for alias in attribute.positional:
                        if isinstance(alias, n.Constant):
                            names[str(alias.value).lower()] = parameter.name
        if param_block is not None and _is_advanced(param_block):
            for common in contracts.common_parameters().values():
                for name in (common.name, *common.aliases):
                    names[name.lower()] = common.name
        for element in command.elements:
            if not isinstance(element, n.CommandParameter):
                continue
            wanted = element.name.lower()
            if wanted in names:
                continue
            matches = {target for name, target in names.items() if name.startswith(wanted)}
            if len(matches) != 1:
                reason = "no parameter" if not matches else "an ambiguous parameter"
                yield self._problem(element.extent, f"the function {function.name} has {reason} '-{element.name}'")

    def _new_object(self, command: n.Command, cmdlet: contracts.CmdletContract) -> Iterator[ContractProblem]:
        arguments = list(command.elements)
        for position, element in enumerate(arguments):
            if not isinstance(element, n.CommandParameter):
                continue
            [parameter] = cmdlet.find_parameters(element.name) or [None]
            value = element.argument
            if value is None and position + 1 < len(arguments):
                value = arguments[position + 1]
            if parameter is None or not isinstance(value, n.Constant) or not isinstance(value.value, str):
                continue
            if parameter.name == "TypeName" and resolve_type(n.TypeName(value.value)) is None:
                yield self._problem(value.extent, f"the type '{value.value}' is not in the contract tables")
            if parameter.name == "ComObject" and contracts.com_object(value.value) is None:
                yield self._problem(value.extent, f"the ProgID '{value.value}' is not in the contract tables")

    def _type(self, type_name: n.TypeName, extent: n.Extent) -> Iterator[ContractProblem]:
        if type_name.name.lower() == _ORDERED and not type_name.generic_arguments:
            return
        if resolve_type(type_name) is None:
            yield self._problem(extent, f"the type [{type_name}] is not in the contract tables")

    def _static_member(self, node: n.MemberAccess | n.InvokeMember) -> Iterator[ContractProblem]:
        if not isinstance(node.target, n.TypeLiteral) or not isinstance(node.member, n.Constant):
            return
        type_name = resolve_type(node.target.type_name)
        if type_name is None:
            return  # reported as a type
        member_name = str(node.member.value)
        if member_name.lower() == "new":
            member_name = ".ctor"  # PowerShell's ::new is the type's constructors
            if contracts.dotnet_member(type_name, member_name) is None:
                yield self._problem(node.extent, f"[{type_name}] has no public constructor")
            return
        member = contracts.dotnet_member(type_name, member_name)
        if member is None or not any(overload.static for overload in member.overloads):
            yield self._problem(node.extent, f"[{type_name}] has no static member '{member_name}'")
        elif isinstance(node, n.InvokeMember) and member.kind != "method":
            yield self._problem(node.extent, f"[{type_name}]::{member.name} is a {member.kind}, not a method")

    def _problem(self, extent: n.Extent, problem: str) -> ContractProblem:
        return ContractProblem(self.path, extent.line, extent.column, problem)


def _is_advanced(param_block: n.ParamBlock) -> bool:
    """A function with [CmdletBinding()] or a [Parameter()] attribute takes the common parameters."""
    attributes = [*param_block.attributes, *(a for p in param_block.parameters for a in p.attributes)]
    return any(attribute.type_name.name.lower() in ("cmdletbinding", "parameter") for attribute in attributes)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    paths = [pathlib.Path(arg) for arg in args] or [ps_syntax.REPO_ROOT]
    problems = [problem for script in ps_syntax.find_scripts(paths) for problem in check_script(script)]
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
