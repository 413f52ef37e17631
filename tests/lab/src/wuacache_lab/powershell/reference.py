"""The contract tables, as the interpreter asks them.

:mod:`wuacache_lab.powershell.contracts` holds what Microsoft's reference
says exists: cmdlets and their parameters, .NET Framework 4.8 and
PowerShell types and their members, COM interfaces, CIM classes, and the
members PowerShell's extended type system adds. This class answers the
questions the type registry (:mod:`.dotnet`), the COM adapter (:mod:`.com`)
and the binder (:mod:`.bind`) ask, so that each of them depends on a small
protocol rather than on the tables' layout.
"""

from __future__ import annotations

from functools import cache

from wuacache_lab.powershell import contracts
from wuacache_lab.powershell.contracts import CmdletContract, ComMember, DotnetMember
from wuacache_lab.powershell.dotnet import ArgumentCounts
from wuacache_lab.powershell.values import EnumDefinition

class ReferenceContracts:
    """Microsoft's reference, through the contract tables."""

    # ------------------------------------------------------------ .NET

    def knows_type(self, type_name: str) -> bool:
        return contracts.dotnet_type(type_name) is not None

    def has_member(self, type_name: str, member_name: str, static: bool) -> bool:
        """A member of the type, of its base types or interfaces, or one PowerShell adds to it."""
        if self._declared(type_name, member_name, static, set()):
            return True
        return any(
            member.name.lower() == member_name.lower() and member.static == static
            for member in contracts.extended_members(type_name)
        )

    def _declared(self, type_name: str, member_name: str, static: bool, seen: set[str]) -> bool:
        if type_name.lower() in seen:
            return False
        seen.add(type_name.lower())
        member = contracts.dotnet_member(type_name, member_name)
        if member is not None and any(overload.static == static for overload in member.overloads):
            return True
        described = contracts.dotnet_type(type_name)
        while described is not None:
            if any(self._declared(interface, member_name, static, seen) for interface in described.interfaces):
                return True
            described = contracts.dotnet_type(described.base) if described.base else None
        return False

    def alias_properties(self, lineage: list[str]) -> list[tuple[str, str]]:
        """The AliasProperty members the extended type system adds to a type's lineage: (name, member it stands for)."""
        aliases = [
            (member.name, member.alias_of)
            for type_name in lineage
            for member in contracts.extended_members(type_name)
            if member.kind == "AliasProperty" and member.alias_of
        ]
        return aliases  # type: ignore[return-value]

    def return_types(self, lineage: list[str], member_name: str) -> list[str] | None:
        """What a method's overloads return, for the first type of the lineage that has it; None when no table has it."""
        for type_name in lineage:
            member = self._documented_member(type_name, member_name)
            if member is not None and member.kind == "method":
                return [overload.type or "System.Void" for overload in member.overloads]
        return None

    @staticmethod
    def _documented_member(type_name: str, member_name: str) -> DotnetMember | None:
        """A member with its signatures: PowerShell's own types list their members' names only."""
        described = contracts.dotnet_type(type_name)
        if described is None or not described.documented:
            return None
        return contracts.dotnet_member(type_name, member_name)

    def argument_counts(self, lineage: list[str], member_name: str, static: bool) -> ArgumentCounts | None:
        """How many arguments a method's or constructor's overloads take.

        A method's overloads are those of every type of the lineage: .NET hides a base method by its
        signature only, so an override (UTF8Encoding.GetBytes(Char[], ...)) leaves the base's other
        overloads (Encoding.GetBytes(String)) callable. A constructor is the first type's own.
        """
        overloads = []
        for type_name in lineage:
            member = self._documented_member(type_name, member_name)
            if member is None or member.kind not in ("method", "constructor"):
                continue
            overloads += [overload for overload in member.overloads if overload.static == static]
            if overloads and member.kind == "constructor":
                break
        if not overloads:
            return None
        exact = frozenset(len(overload.parameters) for overload in overloads)
        variadic = [len(overload.parameters) - 1 for overload in overloads if overload.params_array]
        return ArgumentCounts(exact, min(variadic) if variadic else None)

    @staticmethod
    @cache
    def enum_definition(type_name: str) -> EnumDefinition | None:
        """An enum of the tables, with its fields' values (``[Flags]`` when the table says so)."""
        described = contracts.dotnet_type(type_name)
        if described is None or described.kind != "enum":
            return None
        fields = tuple(
            (member.name, int(member.overloads[0].value))  # type: ignore[arg-type]
            for member in described.members.values()
            if member.kind == "field" and member.overloads and member.overloads[0].value is not None
        )
        return EnumDefinition(described.full_name, fields, getattr(described, "flags", False))

    # ------------------------------------------------------------ COM

    def knows_interface(self, interface: str) -> bool:
        return contracts.com_interface(interface) is not None

    def com_member(self, interface: str, name: str) -> ComMember | None:
        return contracts.com_member(interface, name)

    def com_interface_of(self, prog_id: str) -> str | None:
        """The interface ``New-Object -ComObject <prog_id>`` gives a script."""
        described = contracts.com_object(prog_id)
        return described.interface if described is not None else None

    # ------------------------------------------------------------ cmdlets

    def cmdlet(self, name: str) -> CmdletContract | None:
        return contracts.cmdlet(name)
