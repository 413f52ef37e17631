"""The .NET type system as scripts see it: type names, members, and the Python classes behind them.

Implementing a .NET type
------------------------
A Python class implements a .NET type when decorated with
:func:`dotnet_type`. Its members are named exactly as in .NET (they start
with a capital letter; names starting with a lower-case letter or ``_`` are
Python's own and invisible to scripts):

- an instance method is a plain method, an instance property a Python
  ``property`` (with a setter when .NET has one);
- a static method is marked with :func:`static`, a static property or field
  with :func:`static_property`, a constructor with :func:`constructor`;
- a .NET exception is raised as
  :func:`~wuacache_lab.powershell.errors.dotnet_error` (or as the lab's
  ``HResultError``, which becomes the exception .NET maps that HRESULT to).

Members that need the machine (a clock, files) read it from
:func:`~wuacache_lab.powershell.runtime.current_runtime`.

For a type whose values are Python built-ins (``str`` is System.String),
``instances=(str,)`` names them, and the members receive the value as their
first argument.

Checking against Microsoft's reference
--------------------------------------
The registry is given the contract tables (members of .NET Framework 4.8
types, from dotnet/dotnet-api-docs). A member a script uses must be both in
the table of the type (or of a base type) and implemented: a member absent
from the table fails as Windows PowerShell 5.1 fails for a member that does
not exist, even when Python has it; a member in the table that the lab does
not implement is a :class:`~wuacache_lab.powershell.errors.LabLimitation`.
Types the tables do not describe (PowerShell's own) are checked against
their implementation alone.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from wuacache_lab.powershell.contracts import type_accelerator
from wuacache_lab.powershell.conversions import (
    convert_to,
    enumerate_value,
    is_enumerable,
    object_to_string,
)
from wuacache_lab.powershell.errors import (
    EXCEPTION_TYPES,
    DotNetException,
    LabLimitation,
    PowerShellError,
    exception_for_hresult,
    runtime_error,
)
from wuacache_lab.powershell.nodes import Extent, TypeName
from wuacache_lab.powershell.values import (
    AUTOMATION_NULL,
    CUSTOM_OBJECT,
    Char,
    DotNetType,
    EnumDefinition,
    EnumValue,
    Hashtable,
    PSObject,
    type_name_of,
)
from wuacache_lab.windows.errors import HResultError

# ---------------------------------------------------------------- registration


@dataclass(frozen=True)
class _Implementation:
    name: str
    members: type
    base: str | None
    interfaces: tuple[str, ...]
    instances: tuple[type, ...]
    value_type: bool


_IMPLEMENTATIONS: dict[str, _Implementation] = {}
_ENUMS: dict[str, EnumDefinition] = {}


def dotnet_type(
    name: str,
    *,
    base: str | None = None,
    interfaces: tuple[str, ...] = (),
    instances: tuple[type, ...] = (),
    value_type: bool = False,
) -> Callable[[type], type]:
    """Class decorator: the class implements the .NET type ``name`` (a generic one as ``List`1``)."""

    base_name = base or ("System.ValueType" if value_type else "System.Object")

    def register(cls: type) -> type:
        if not instances and "`" not in name:
            cls.dotnet_name = name  # type: ignore[attr-defined]
        _IMPLEMENTATIONS[name.casefold()] = _Implementation(name, cls, base_name, interfaces, instances or (cls,), value_type)
        return cls

    return register


def static(function: Callable[..., object]) -> staticmethod:  # type: ignore[type-arg]
    """A static method of the type (``[T]::Method()``)."""
    function.__ps_kind__ = "static method"  # type: ignore[attr-defined]
    return staticmethod(function)


def static_property(function: Callable[[], object] | None = None, *, setter: Callable[[object], None] | None = None):  # type: ignore[no-untyped-def]
    """A static property or field of the type (``[T]::Name``), computed when read; ``setter`` when it can be set."""

    def mark(getter: Callable[[], object]) -> staticmethod:  # type: ignore[type-arg]
        getter.__ps_kind__ = "static property"  # type: ignore[attr-defined]
        getter.__ps_setter__ = setter  # type: ignore[attr-defined]
        return staticmethod(getter)

    return mark(function) if function is not None else mark


def constructor(function: Callable[..., object]) -> staticmethod:  # type: ignore[type-arg]
    """The constructors (``[T]::new()``, ``New-Object T``): one function taking the type constructed, then the arguments.

    The type tells a generic type its arguments (``List[string]``) and a class
    implementing several types (the exceptions) which one is made.
    """
    function.__ps_kind__ = "constructor"  # type: ignore[attr-defined]
    return staticmethod(function)


def register_enum(name: str, fields: dict[str, int], *, flags: bool = False) -> EnumDefinition:
    definition = EnumDefinition(name, tuple(fields.items()), flags)
    _ENUMS[name.casefold()] = definition
    return definition


@dataclass(frozen=True)
class _Member:
    name: str
    kind: str  # "method", "property", "static method", "static property", "constructor"
    implementation: object


@lru_cache(maxsize=None)
def _members_of(cls: type) -> dict[str, _Member]:
    members: dict[str, _Member] = {}
    for klass in reversed(cls.__mro__):
        for key, value in vars(klass).items():
            if isinstance(value, staticmethod):
                kind = getattr(value.__func__, "__ps_kind__", None)
                if kind == "constructor":
                    members[".ctor"] = _Member(".ctor", kind, value.__func__)
                elif kind is not None:
                    members[key.casefold()] = _Member(key, kind, value.__func__)
                continue
            if not key[:1].isupper():
                continue
            if isinstance(value, property):
                members[key.casefold()] = _Member(key, "property", value)
            elif callable(value):
                members[key.casefold()] = _Member(key, "method", value)
    return members


# ---------------------------------------------------------------- contracts


class MemberContracts(Protocol):
    """What the contract tables say about .NET types (dotnet/dotnet-api-docs, .NET Framework 4.8)."""

    def knows_type(self, type_name: str) -> bool: ...

    def has_member(self, type_name: str, member_name: str, static: bool) -> bool: ...

    def alias_properties(self, lineage: list[str]) -> list[tuple[str, str]]: ...

    def enum_definition(self, type_name: str) -> EnumDefinition | None: ...

    def return_types(self, lineage: list[str], member_name: str) -> list[str] | None: ...

    def argument_counts(self, lineage: list[str], member_name: str, static: bool) -> ArgumentCounts | None: ...


# Types whose values are value types (a cast of $null to them fails).
_VALUE_TYPES = frozenset(
    {
        "System.Int32",
        "System.Int64",
        "System.Int16",
        "System.UInt16",
        "System.UInt32",
        "System.UInt64",
        "System.Byte",
        "System.SByte",
        "System.Boolean",
        "System.Double",
        "System.Single",
        "System.Decimal",
        "System.Char",
        "System.DateTime",
        "System.TimeSpan",
        "System.Guid",
    }
)
# Types PowerShell's conversions know without an implementation class.
_BUILT_IN = frozenset(
    {
        *_VALUE_TYPES,
        "System.Object",
        "System.String",
        "System.Array",
        "System.Void",
        "System.Type",
        "System.RuntimeType",
        "System.Enum",
        "System.ValueType",
        "System.Management.Automation.PSObject",
        "System.Management.Automation.PSCustomObject",
        "System.Management.Automation.SwitchParameter",
        "System.Collections.IDictionary",
        "System.Collections.IEnumerable",
        "System.Collections.ICollection",
        "System.Collections.IList",
    }
)


def _type_not_found(name: str, extent: Extent | None) -> PowerShellError:
    return runtime_error(f"Unable to find type [{name}].", "TypeNotFound", extent=extent)


class TypeRegistry:
    """The types of one process, resolved by name, with their members checked against the contract tables."""

    def __init__(self, contracts: MemberContracts | None = None) -> None:
        # The types of .NET's base library register themselves when their module is imported.
        import wuacache_lab.powershell.corelib  # noqa: F401

        self.contracts = contracts
        self._resolved: dict[str, DotNetType] = {}

    # ------------------------------------------------------------ types

    def resolve(self, name: str | TypeName, extent: Extent | None = None) -> DotNetType:
        """``[name]``: an accelerator, a full name, or a name without its ``System.`` prefix."""
        if isinstance(name, TypeName):
            if name.array_rank:
                if name.array_rank > 1:
                    raise LabLimitation("The lab does not implement multi-dimensional arrays.")
                return self.array_of(self.resolve(TypeName(name.name, name.generic_arguments), extent))
            if name.generic_arguments:
                definition = self.resolve(f"{name.name}`{len(name.generic_arguments)}", extent)
                arguments = tuple(self.resolve(argument, extent) for argument in name.generic_arguments)
                return DotNetType(
                    definition.name,
                    definition.base,
                    interfaces=definition.interfaces,
                    generic_arguments=arguments,
                    members=definition.members,
                    python_types=definition.python_types,
                )
            name = name.name
        key = name.casefold()
        if key in self._resolved:
            return self._resolved[key]
        full = type_accelerator(key) or name
        found = self._find(full) or (self._find(f"System.{full}") if not full.casefold().startswith("system.") else None)
        if found is None:
            raise _type_not_found(name, extent)
        self._resolved[key] = found
        return found

    def _find(self, name: str) -> DotNetType | None:
        key = name.casefold()
        if key in self._resolved:
            return self._resolved[key]
        implementation = _IMPLEMENTATIONS.get(key)
        enum = _ENUMS.get(key)
        exception = next((known for known in EXCEPTION_TYPES if known.casefold() == key), None)
        built_in = next((known for known in _BUILT_IN if known.casefold() == key), None)
        if implementation is not None:
            base = self._find(implementation.base) if implementation.base else None
            found = DotNetType(
                implementation.name,
                base,
                interfaces=implementation.interfaces,
                members=implementation.members,
                python_types=implementation.instances,
                value_type=implementation.value_type or implementation.name in _VALUE_TYPES,
            )
        elif enum is not None:
            found = DotNetType(enum.name, self._find("System.Enum"), enum=enum, members=_enum_members())
        elif exception is not None:
            base_name = EXCEPTION_TYPES[exception][0]
            found = DotNetType(exception, self._find(base_name) if base_name else self._find("System.Object"))
            found.members = _exception_members()
        elif built_in is not None:
            base = None if built_in == "System.Object" else self._find("System.ValueType" if built_in in _VALUE_TYPES else "System.Object")
            found = DotNetType(built_in, base, value_type=built_in in _VALUE_TYPES)
        elif self.contracts is not None and (described := self.contracts.enum_definition(name)) is not None:
            found = DotNetType(described.name, self._find("System.Enum"), enum=described, members=_enum_members())
        elif self.contracts is not None and self.contracts.knows_type(name):
            # Described by Microsoft's reference, not implemented by the lab: members fail as LabLimitation.
            found = DotNetType(name, self._find("System.Object"))
        else:
            return None
        self._resolved[key] = found
        return found

    def array_of(self, element: DotNetType) -> DotNetType:
        return DotNetType(f"{element.full_name}[]", self._find("System.Array"), element=element, members=self._find("System.Array").members)  # type: ignore[union-attr]

    def type_of(self, value: object) -> DotNetType:
        """``$value.GetType()``."""
        own = getattr(value, "dotnet_type", None)
        if isinstance(own, DotNetType):
            return own
        name = type_name_of(value)
        if name.endswith("[]"):
            return self.array_of(self.resolve(name[:-2]))
        found = self._find(name)
        if found is None:
            raise LabLimitation(f"The lab has no type description for {name}.")
        return found

    def is_instance(self, value: object, target: DotNetType) -> bool:
        """``value -is [target]``."""
        value = _unwrap(value)
        if value is None:
            return False
        if target.full_name == "System.Object":
            return True
        if target.full_name == "System.Management.Automation.PSObject":
            return True
        if isinstance(value, EnumValue) and target.full_name == "System.Enum":
            return True
        if target.element is not None:
            if not isinstance(value, list):
                return False
            own = self.type_of(value)
            return own.element is not None and (target.element.full_name == "System.Object" or own.element.is_a(target.element))
        if isinstance(value, DotNetException):
            return value.is_a(target.full_name)
        if isinstance(value, list) and target.full_name in ("System.Array", "System.Collections.IEnumerable", "System.Collections.IList", "System.Collections.ICollection"):
            return True
        if isinstance(value, Hashtable) and target.full_name in ("System.Collections.IDictionary", "System.Collections.IEnumerable", "System.Collections.ICollection"):
            return True
        return self.type_of(value).is_a(target)

    def convert(self, value: object, target: DotNetType, local_offset_minutes: int = 0) -> object:
        return convert_to(value, target, local_offset_minutes)

    def extended_aliases(self, value: object) -> list[tuple[str, str]]:
        """The alias properties PowerShell's extended type system gives a value's type: (name, the member it stands for)."""
        if self.contracts is None:
            return []
        lineage = self.type_of(value).lineage()
        return self.contracts.alias_properties(lineage)

    # ------------------------------------------------------------ contracts

    def _allowed(self, owner: DotNetType, member: str, static: bool) -> bool | None:
        """Whether the tables list the member for the type's lineage; None when they do not describe the type."""
        if self.contracts is None:
            return None
        own_name = "System.Array" if owner.element is not None else owner.name
        if not self.contracts.knows_type(own_name):
            return None
        return any(self.contracts.has_member(name, member, static) for name in owner.lineage())

    def _lookup(self, owner: DotNetType, name: str, static: bool) -> _Member | None:
        """The implemented member, checked against the tables."""
        members = _members_of(owner.members) if owner.members is not None else {}
        member = members.get(name.casefold())
        if member is not None and member.kind.startswith("static") != static:
            member = None
        allowed = self._allowed(owner, member.name if member else name, static)
        if allowed is False:
            return None
        if member is None and allowed:
            raise LabLimitation(f"The lab does not implement [{owner.full_name}]{'::' if static else '.'}{name}.")
        return member

    # ------------------------------------------------------------ instance members

    def get_property(self, target: object, name: str, strict: int, extent: Extent | None = None) -> object:
        """``target.name``."""
        if isinstance(target, PSObject) and target.has_note(name):
            return target.note(name)
        value = _unwrap(target)
        if name.casefold() == "psobject":
            return PSObjectView(target, self)
        if value is None:
            return self._missing_property(None, name, strict, extent)
        if isinstance(value, Hashtable) and name in value:
            return value[name]
        adapter = getattr(value, "ps_get_property", None)
        if adapter is not None:
            return adapter(name, strict, extent)
        if isinstance(value, DotNetException):
            found, extra = exception_property(value, name)
            if found:
                return extra
        owner = self.type_of(value)
        member = self._lookup(owner, name, static=False) if value is not CUSTOM_OBJECT else None
        if member is not None and member.kind == "property":
            return _call(lambda: member.implementation.fget(value), "get", member.name, 0, extent)  # type: ignore[attr-defined]
        if isinstance(value, Hashtable):
            return None
        return self._missing_property(target, name, strict, extent)

    def _missing_property(self, target: object, name: str, strict: int, extent: Extent | None) -> object:
        """Member enumeration over a collection, the intrinsic Count and Length, or ``$null``."""
        value = _unwrap(target)
        if value is not None and is_enumerable(value):
            results: list[object] = []
            for item in enumerate_value(value):
                found = self.get_property(item, name, strict, extent)
                results.extend(enumerate_value(found) if is_enumerable(found) else [found])
            if len(results) == 1:
                return results[0]
            if not results:
                if strict >= 2:
                    raise property_not_found_strict(name, extent)
                return None
            return results
        if strict >= 2:
            raise property_not_found_strict(name, extent)
        if name.casefold() in ("count", "length"):
            return 0 if value is None else 1
        return None

    def set_property(self, target: object, name: str, new_value: object, extent: Extent | None = None) -> None:
        """``target.name = new_value``."""
        if isinstance(target, PSObject) and target.has_note(name):
            target.set_note(name, new_value)
            return
        value = _unwrap(target)
        if value is None:
            raise runtime_error(
                f"The property '{name}' cannot be found on this object. Verify that the property exists and can be set.",
                "PropertyNotFound",
                extent=extent,
            )
        if isinstance(value, Hashtable):
            value[name] = new_value
            return
        adapter = getattr(value, "ps_set_property", None)
        if adapter is not None:
            adapter(name, new_value, extent)
            return
        member = self._lookup(self.type_of(value), name, static=False) if value is not CUSTOM_OBJECT else None
        if member is None or member.kind != "property":
            raise runtime_error(
                f"The property '{name}' cannot be found on this object. Verify that the property exists and can be set.",
                "PropertyNotFound",
                extent=extent,
            )
        setter = member.implementation.fset  # type: ignore[attr-defined]
        if setter is None:
            raise runtime_error(f"'{member.name}' is a ReadOnly property.", "PropertyAssignmentException", extent=extent)
        _call(lambda: setter(value, new_value), "set", member.name, 1, extent)

    def invoke_method(self, target: object, name: str, arguments: list[object], strict: int, extent: Extent | None = None) -> object:
        """``target.name(arguments)``."""
        value = _unwrap(target)
        if value is None:
            raise runtime_error("You cannot call a method on a null-valued expression.", "InvokeMethodOnNull", extent=extent)
        if name.casefold() == "gettype" and not arguments:
            return self.type_of(value)
        adapter = getattr(value, "ps_invoke_method", None)
        if adapter is not None:
            return adapter(name, arguments, extent)
        owner = self.type_of(value)
        member = self._lookup(owner, name, static=False) if value is not CUSTOM_OBJECT else None
        if member is not None and member.kind == "method":
            counts = self._argument_counts(owner, member.name, False)
            result = _invoke(member.implementation, [value], arguments, member.name, extent, counts)  # type: ignore[arg-type]
            return self._method_result(owner, member.name, result)
        if name.casefold() == "tostring" and not arguments:
            return object_to_string(target)
        if name.casefold() == "equals" and len(arguments) == 1:
            return value == _unwrap(arguments[0])
        if name.casefold() == "gethashcode" and not arguments:
            return hash(id(value)) & 0x7FFFFFFF
        if is_enumerable(value) and not isinstance(value, Hashtable):
            # Method invocation on each element (member enumeration), when they have the method.
            items = list(enumerate_value(value))
            if items and all(self._has_method(item, name) for item in items):
                results = [self.invoke_method(item, name, arguments, strict, extent) for item in items]
                return results[0] if len(results) == 1 else results
        raise _method_not_found(owner.full_name, name, extent)

    def _has_method(self, value: object, name: str) -> bool:
        value = _unwrap(value)
        if value is None:
            return False
        if getattr(value, "ps_invoke_method", None) is not None:
            return True
        members = self.type_of(value).members
        member = _members_of(members).get(name.casefold()) if members is not None else None
        return member is not None and member.kind == "method"

    # ------------------------------------------------------------ static members

    def get_static(self, owner: DotNetType, name: str, strict: int, extent: Extent | None = None) -> object:
        """``[T]::name``: an enum field, a static property or field."""
        if owner.enum is not None:
            value = owner.enum.value_of(name)
            if value is not None and self._allowed(owner, name, True) is not False:
                return EnumValue(owner.enum, value)
        member = self._lookup(owner, name, static=True)
        if member is not None and member.kind == "static property":
            return _call(member.implementation, "get", member.name, 0, extent)  # type: ignore[arg-type]
        if strict >= 2:
            raise property_not_found_strict(name, extent)
        return None

    def set_static(self, owner: DotNetType, name: str, new_value: object, extent: Extent | None = None) -> None:
        member = self._lookup(owner, name, static=True)
        setter = getattr(member.implementation, "__ps_setter__", None) if member else None
        if member is None or setter is None:
            raise runtime_error(
                f"The property '{name}' cannot be found on this object. Verify that the property exists and can be set.",
                "PropertyNotFound",
                extent=extent,
            )
        _call(lambda: setter(new_value), "set", member.name, 1, extent)

    def invoke_static(self, owner: DotNetType, name: str, arguments: list[object], extent: Extent | None = None) -> object:
        """``[T]::name(arguments)``; ``new`` constructs."""
        if name.casefold() == "new":
            return self.construct(owner, arguments, extent)
        member = self._lookup(owner, name, static=True)
        if member is None or member.kind != "static method":
            raise _method_not_found(owner.full_name, name, extent)
        counts = self._argument_counts(owner, member.name, True)
        result = _invoke(member.implementation, [], arguments, member.name, extent, counts)  # type: ignore[arg-type]
        return self._method_result(owner, member.name, result)

    def _argument_counts(self, owner: DotNetType, name: str, static: bool) -> ArgumentCounts | None:
        """How many arguments the overloads of the tables take; None when the tables do not describe the type."""
        if self.contracts is None or self._allowed(owner, name, static) is None:
            return None
        return self.contracts.argument_counts(owner.lineage(), name, static)

    def _method_result(self, owner: DotNetType, name: str, result: object) -> object:
        """A void method gives no output at all; a method returning a null reference gives ``$null``."""
        if result is not None:
            return result
        returns = self.contracts.return_types(owner.lineage(), name) if self.contracts is not None else None
        if returns is None or all(type_name == "System.Void" for type_name in returns):
            return AUTOMATION_NULL
        return None

    def construct(self, owner: DotNetType, arguments: list[object], extent: Extent | None = None) -> object:
        members = _members_of(owner.members) if owner.members is not None else {}
        creator = members.get(".ctor")
        allowed = self._allowed(owner, ".ctor", False)
        if creator is None:
            if allowed:
                raise LabLimitation(f"The lab does not implement the constructors of [{owner.full_name}].")
            raise _method_not_found(owner.full_name, "new", extent)
        counts = self._argument_counts(owner, ".ctor", False)
        return _invoke(creator.implementation, [owner], arguments, ".ctor", extent, counts)  # type: ignore[arg-type]

    # ------------------------------------------------------------ indexing

    def index(self, target: object, key: object, strict: int, extent: Extent | None = None) -> object:
        """``target[key]``: arrays (negative indexes count from the end), dictionaries, strings, ``Item``."""
        value = _unwrap(target)
        if value is None:
            raise runtime_error("Cannot index into a null array.", "NullArray", extent=extent)
        if isinstance(value, Hashtable):
            if isinstance(_unwrap(key), list):
                return [value[item] for item in _unwrap(key)]  # type: ignore[union-attr]
            return value[key]
        if isinstance(value, (list, str)):
            keys = _unwrap(key)
            if isinstance(keys, list):
                return [self.index(value, item, strict, extent) for item in keys]
            position = convert_to(keys, self.resolve("int"))
            size = len(value)
            actual = position + size if position < 0 else position
            if not 0 <= actual < size:
                if strict >= 3:
                    inner = DotNetException("System.IndexOutOfRangeException", "Index was outside the bounds of the array.")
                    raise runtime_error(
                        "Index was outside the bounds of the array.", "System.IndexOutOfRangeException", category="OperationStopped", inner=inner, extent=extent
                    )
                return None
            item = value[actual]
            return Char(item) if isinstance(value, str) else item
        adapter = getattr(value, "ps_invoke_method", None)
        if adapter is not None:
            return adapter("Item", [key], extent)
        member = self._lookup(self.type_of(value), "Item", static=False)
        if member is not None:
            if member.kind == "method":
                return _invoke(member.implementation, [value], [key], "Item", extent)
            return _call(lambda: member.implementation.fget(value)[key], "get", "Item", 1, extent)  # type: ignore[attr-defined]
        if not is_enumerable(value):
            # A scalar indexes as a one-element array.
            return self.index([value], key, strict, extent)
        raise runtime_error(f'Unable to index into an object of type "{self.type_of(value).full_name}".', "CannotIndex", extent=extent)

    def set_index(self, target: object, key: object, new_value: object, extent: Extent | None = None) -> None:
        value = _unwrap(target)
        if value is None:
            raise runtime_error("Cannot index into a null array.", "NullArray", extent=extent)
        if isinstance(value, Hashtable):
            value[key] = new_value
            return
        if isinstance(value, list):
            position = convert_to(key, self.resolve("int"))
            actual = position + len(value) if position < 0 else position
            if not 0 <= actual < len(value):
                raise runtime_error(
                    f"Array assignment failed because index '{position}' was out of range.",
                    "IndexOutOfRange",
                    extent=extent,
                    inner=DotNetException("System.IndexOutOfRangeException", "Index was outside the bounds of the array."),
                )
            value[actual] = new_value
            return
        setter = getattr(value, "set_item", None)
        if setter is not None:
            setter(key, new_value)
            return
        raise runtime_error(f'Unable to index into an object of type "{self.type_of(value).full_name}".', "CannotIndex", extent=extent)


def public_property_names(members: type) -> list[str]:
    """The instance properties a members class implements, in the order it declares them."""
    return [member.name for member in _members_of(members).values() if member.kind == "property"]


def exception_property(exception: DotNetException, name: str) -> tuple[bool, object]:
    """The properties only some exception types have: those given when it was made, and a RuntimeException's ErrorRecord."""
    wanted = name.casefold()
    for key, value in exception.properties.items():
        if key.casefold() == wanted:
            return True, value
    if wanted == "errorrecord" and exception.is_a("System.Management.Automation.RuntimeException"):
        record = exception.error_record
        return True, record.with_exception(exception) if record is not None else None
    return False, None


def _unwrap(value: object) -> object:
    if value is AUTOMATION_NULL:
        return None
    if isinstance(value, PSObject):
        return CUSTOM_OBJECT if value.is_custom else value.base
    return value


def property_not_found_strict(name: str, extent: Extent | None) -> PowerShellError:
    """Reading a property an object does not have, under Set-StrictMode -Version 2.0 or later."""
    return runtime_error(
        f"The property '{name}' cannot be found on this object. Verify that the property exists.",
        "PropertyNotFoundStrict",
        type_name="System.Management.Automation.PropertyNotFoundException",
        category="NotSpecified",
        extent=extent,
    )


def _method_not_found(type_name: str, name: str, extent: Extent | None) -> PowerShellError:
    return runtime_error(
        f"Method invocation failed because [{type_name}] does not contain a method named '{name}'.",
        "MethodNotFound",
        extent=extent,
    )


def argument_count_error(name: str, count: int, extent: Extent | None) -> PowerShellError:
    """PowerShell found no overload taking that many arguments (MethodCountCouldNotFindBest)."""
    return runtime_error(
        f'Cannot find an overload for "{name}" and the argument count: "{count}".',
        "MethodCountCouldNotFindBest",
        type_name="System.Management.Automation.MethodException",
        category="NotSpecified",
        extent=extent,
    )


@dataclass(frozen=True)
class ArgumentCounts:
    """The argument counts a member's overloads take: exactly one of ``exact``, or at least ``at_least`` (a params array)."""

    exact: frozenset[int]
    at_least: int | None = None

    def allows(self, count: int) -> bool:
        return count in self.exact or (self.at_least is not None and count >= self.at_least)


def _invoke(
    function: Callable[..., object],
    prefix: list[object],
    arguments: list[object],
    name: str,
    extent: Extent | None,
    counts: ArgumentCounts | None = None,
) -> object:
    """Call a .NET method's implementation: the argument count first (PowerShell finds no overload
    otherwise), then the call, its failure wrapped."""
    if counts is not None and not counts.allows(len(arguments)):
        raise argument_count_error(name, len(arguments), extent)
    passed = [*prefix, *(_argument(argument) for argument in arguments)]
    try:
        inspect.signature(function).bind(*passed)
    except TypeError:
        if counts is not None:
            raise LabLimitation(f"The lab does not implement the overload of {name} that takes {len(arguments)} argument(s).") from None
        raise argument_count_error(name, len(arguments), extent) from None
    return _call(lambda: function(*passed), "call", name, len(arguments), extent)


def _argument(value: object) -> object:
    """A .NET method receives the base object; a PSCustomObject stays itself."""
    if value is AUTOMATION_NULL:
        return None
    if isinstance(value, PSObject) and not value.is_custom:
        return value.base
    return value


def _call(action: Callable[[], object], how: str, name: str, count: int, extent: Extent | None) -> object:
    """Run a member; a .NET exception it throws comes back wrapped as PowerShell wraps it.

    A method's: MethodInvocationException ("Exception calling "M" with "n"
    argument(s): ..."); a property read's: GetValueInvocationException; a
    property write's: SetValueInvocationException. The thrown exception is the
    wrapper's InnerException.
    """
    try:
        return action()
    except HResultError as error:
        inner = exception_for_hresult(error.hresult, error.message)
    except PowerShellError as error:
        inner = error.exception
    if how == "call":
        message = f'Exception calling "{name}" with "{count}" argument(s): "{inner.message}"'
        type_name = "System.Management.Automation.MethodInvocationException"
        error_id = inner.short_name
    elif how == "get":
        message = f'Exception getting "{name}": "{inner.message}"'
        type_name = "System.Management.Automation.GetValueInvocationException"
        error_id = "CatchFromBaseAdapterGetValue"
    else:
        message = f'Exception setting "{name}": "{inner.message}"'
        type_name = "System.Management.Automation.SetValueInvocationException"
        error_id = "CatchFromBaseAdapterSetValue"
    raise runtime_error(message, error_id, type_name=type_name, category="NotSpecified", inner=inner, extent=extent)


# ---------------------------------------------------------------- members PowerShell adds


@dotnet_type("System.Management.Automation.PSObject")
class PSObjectView:
    """``$x.PSObject``: the object's properties as PowerShell sees them."""

    def __init__(self, target: object, registry: TypeRegistry) -> None:
        self._target = target
        self._registry = registry

    @property
    def Properties(self) -> PropertyCollection:  # noqa: N802 - .NET member name
        return PropertyCollection(list(self._properties()))

    @property
    def BaseObject(self) -> object:  # noqa: N802
        return _unwrap(self._target) if not (isinstance(self._target, PSObject) and self._target.is_custom) else self._target

    @property
    def TypeNames(self) -> list[object]:  # noqa: N802
        value = _unwrap(self._target)
        if value is CUSTOM_OBJECT:
            return ["System.Management.Automation.PSCustomObject", "System.Object"]
        return list(self._registry.type_of(value).lineage()) if value is not None else []

    def _properties(self) -> Iterable[PSPropertyInfo]:
        if isinstance(self._target, PSObject):
            for name, _ in self._target.note_items():
                yield PSPropertyInfo(self._target, name, "NoteProperty", self._registry)
        value = _unwrap(self._target)
        if value is None or value is CUSTOM_OBJECT:
            return
        owner = self._registry.type_of(value)
        if owner.members is None:
            return
        for member in _members_of(owner.members).values():
            if member.kind == "property":
                yield PSPropertyInfo(self._target, member.name, "Property", self._registry)


@dotnet_type("System.Management.Automation.PSMemberInfoCollection`1")
class PropertyCollection:
    """``.PSObject.Properties``: enumerable, and indexable by name (``$null`` when there is none)."""

    dotnet_name = "System.Management.Automation.PSMemberInfoCollection`1"

    def __init__(self, properties: list[PSPropertyInfo]) -> None:
        self._properties = properties

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._properties)

    def Item(self, name: object) -> PSPropertyInfo | None:  # noqa: N802
        wanted = str(name).casefold()
        return next((item for item in self._properties if item.Name.casefold() == wanted), None)

    def Match(self, name: object) -> list[object]:  # noqa: N802
        found = self.Item(name)
        return [found] if found is not None else []


@dotnet_type("System.Management.Automation.PSPropertyInfo")
class PSPropertyInfo:
    def __init__(self, owner: object, name: str, member_type: str, registry: TypeRegistry) -> None:
        self._owner = owner
        self._name = name
        self._member_type = member_type
        self._registry = registry

    @property
    def Name(self) -> str:  # noqa: N802
        return self._name

    @property
    def MemberType(self) -> str:  # noqa: N802
        return self._member_type

    @property
    def Value(self) -> object:  # noqa: N802
        return self._registry.get_property(self._owner, self._name, 0)

    @Value.setter
    def Value(self, value: object) -> None:  # noqa: N802
        self._registry.set_property(self._owner, self._name, value)

    @property
    def TypeNameOfValue(self) -> str:  # noqa: N802
        value = self.Value
        return "System.Object" if value is None else type_name_of(value)

    @property
    def IsGettable(self) -> bool:  # noqa: N802
        return True

    @property
    def IsSettable(self) -> bool:  # noqa: N802
        return True

    @property
    def IsInstance(self) -> bool:  # noqa: N802
        return self._member_type == "NoteProperty"


@lru_cache(maxsize=1)
def _exception_members() -> type:
    from wuacache_lab.powershell.corelib import ExceptionMembers

    return ExceptionMembers


@lru_cache(maxsize=1)
def _enum_members() -> type:
    from wuacache_lab.powershell.corelib import EnumMembers

    return EnumMembers

