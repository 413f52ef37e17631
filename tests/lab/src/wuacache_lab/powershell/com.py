"""COM objects, as Windows PowerShell 5.1 reaches them through IDispatch.

A COM class of the emulated Windows is a Python object whose members are
named as in the SDK (``Search``, ``Updates``, ``RebootRequired``...) and
whose class names its default interface::

    class UpdateSearcher:
        __com_interface__ = "IUpdateSearcher"

``New-Object -ComObject`` gets it from the runtime and wraps it in
:class:`ComObject`, which is what scripts hold. Every member is checked
against the interface's contract table (sdk-api ``wuapi`` and ``taskschd``,
with base interfaces), and calls fail as PowerShell 5.1's COM adapter makes
them fail:

- a member the interface does not have: ``Method invocation failed because
  [System.__ComObject] does not contain a method named 'X'.``, or for a
  property ``$null`` (PropertyNotFoundException under strict mode 2.0+);
- a call with a number of arguments no signature takes (counting ``[in,
  optional]`` ones): ``MethodException`` "Cannot find an overload for "X" and
  the argument count: "n"." (PowerShell's COM adapter matches the arguments
  against the type information, Adapter.GetBestMethodAndArguments, before it
  calls IDispatch::Invoke, so DISP_E_BADPARAMCOUNT never comes back);
- a failing method (the model raises the lab's ``HResultError``):
  ``MethodInvocationException`` (FullyQualifiedErrorId
  ComMethodTargetInvocation) whose InnerException is the
  ``TargetInvocationException`` of the late-bound call, itself wrapping the
  exception .NET makes of the HRESULT (Marshal.GetExceptionForHR: a
  COMException, or UnauthorizedAccessException for E_ACCESSDENIED...);
- a failing property read or write: ``GetValueInvocationException`` /
  ``SetValueInvocationException`` wrapping that exception directly.

Values cross as PowerShell sees them: a COM DATE is a DateTime of kind
Unspecified, a VARIANT_BOOL a Boolean, an interface pointer another
:class:`ComObject`; a collection is enumerated through ``_NewEnum`` by
``foreach`` and the pipeline.
"""

from __future__ import annotations

import datetime as _datetime
import inspect
from collections.abc import Iterator
from decimal import Decimal
from typing import Protocol

from wuacache_lab.powershell.contracts import ComMember
from wuacache_lab.powershell.dotnet import argument_count_error, property_not_found_strict
from wuacache_lab.powershell.errors import (
    DotNetException,
    LabLimitation,
    PowerShellError,
    exception_for_hresult,
    runtime_error,
)
from wuacache_lab.powershell.nodes import Extent
from wuacache_lab.powershell.values import AUTOMATION_NULL, Char, DateTime, EnumValue, PSObject
from wuacache_lab.windows.errors import HResultError


class ComContracts(Protocol):
    """What the contract tables say about COM interfaces (sdk-api), as :class:`.reference.ReferenceContracts` answers."""

    def knows_interface(self, interface: str) -> bool: ...

    def com_member(self, interface: str, name: str) -> ComMember | None:
        """The member of the interface or of one of its base interfaces, by case-insensitive name."""


class ComObject:
    """``System.__ComObject``: a Python COM model seen through IDispatch."""

    dotnet_name = "System.__ComObject"

    def __init__(self, target: object, contracts: ComContracts | None = None, interface: str | None = None) -> None:
        self.target = target
        self.contracts = contracts
        # IDispatch gives the type information of the object itself (its most derived
        # interface), whatever interface the call that returned it declares.
        self.interface = getattr(type(target), "__com_interface__", None) or interface

    def __repr__(self) -> str:
        return f"ComObject({self.interface or type(self.target).__name__})"

    def __eq__(self, other: object) -> bool:
        # Two wrappers of one COM object are the same object to a script, as one RCW is.
        return isinstance(other, ComObject) and other.target is self.target

    def __hash__(self) -> int:
        return id(self.target)

    # ------------------------------------------------------------ members

    def _contract(self, name: str) -> ComMember | None | bool:
        """The member's contract; False when the tables describe the interface without it; None when they do not describe it."""
        if self.contracts is None or self.interface is None or not self.contracts.knows_interface(self.interface):
            return None
        return self.contracts.com_member(self.interface, name) or False

    def _attribute(self, name: str) -> str | None:
        """The model's attribute for a member: SDK names start with a capital letter."""
        wanted = name.casefold()
        return next((key for key in dir(self.target) if key[:1].isupper() and key.casefold() == wanted), None)

    def _is_method(self, attribute: str) -> bool:
        return callable(inspect.getattr_static(self.target, attribute))

    @staticmethod
    def _takes_arguments(contract: ComMember | None | bool, is_method: bool) -> bool:
        """A method, or an indexed property (``Item(i)``), which scripts call like a method."""
        if contract:
            return contract.kind == "method" or bool(contract.parameters)  # type: ignore[union-attr]
        return is_method

    def ps_get_property(self, name: str, strict: int, extent: Extent | None) -> object:
        contract = self._contract(name)
        attribute = self._attribute(name)
        if contract is False or attribute is None or self._takes_arguments(contract, self._is_method(attribute)):
            if contract and attribute is None:
                raise LabLimitation(f"The lab's {self.interface} does not implement {name}.")
            if strict >= 2:
                raise property_not_found_strict(name, extent)
            return None
        try:
            value = getattr(self.target, attribute)
        except HResultError as error:
            inner = exception_for_hresult(error.hresult, error.message)
            raise runtime_error(
                f'Exception getting "{attribute}": "{inner.message}"',
                "CatchFromBaseAdapterGetValueTI",
                type_name="System.Management.Automation.GetValueInvocationException",
                category="NotSpecified",
                inner=inner,
                extent=extent,
            ) from None
        return self._to_powershell(value, contract.type if contract else None)

    def ps_set_property(self, name: str, value: object, extent: Extent | None) -> None:
        contract = self._contract(name)
        attribute = self._attribute(name)
        if contract is False or attribute is None or self._is_method(attribute) or (contract and not contract.settable):  # type: ignore[union-attr]
            if contract and attribute is None:
                raise LabLimitation(f"The lab's {self.interface} does not implement {name}.")
            raise runtime_error(
                f"The property '{name}' cannot be found on this object. Verify that the property exists and can be set.",
                "PropertyNotFound",
                extent=extent,
            )
        try:
            setattr(self.target, attribute, _to_com(value))
        except HResultError as error:
            inner = exception_for_hresult(error.hresult, error.message)
            raise runtime_error(
                f'Exception setting "{attribute}": "{inner.message}"',
                "CatchFromBaseAdapterSetValueTI",
                type_name="System.Management.Automation.SetValueInvocationException",
                category="NotSpecified",
                inner=inner,
                extent=extent,
            ) from None

    def ps_invoke_method(self, name: str, arguments: list[object], extent: Extent | None) -> object:
        contract = self._contract(name)
        attribute = self._attribute(name)
        if contract is False or attribute is None or not self._takes_arguments(contract, self._is_method(attribute)):
            if contract and attribute is None:
                raise LabLimitation(f"The lab's {self.interface} does not implement {name}().")
            raise runtime_error(
                f"Method invocation failed because [System.__ComObject] does not contain a method named '{name}'.",
                "MethodNotFound",
                extent=extent,
            )
        method = getattr(self.target, attribute)
        passed = [_to_com(argument) for argument in arguments]
        if contract:
            if not contract.min_arguments <= len(passed) <= contract.max_arguments:  # type: ignore[union-attr]
                raise argument_count_error(attribute, len(passed), extent)
        else:
            try:
                inspect.signature(method).bind(*passed)
            except TypeError:
                raise argument_count_error(attribute, len(passed), extent) from None
        try:
            result = method(*passed)
        except HResultError as error:
            cause = exception_for_hresult(error.hresult, error.message)
        except PowerShellError as error:
            cause = error.exception
        else:
            if result is None and (not contract or contract.type is None):  # type: ignore[union-attr]
                # A method without [out, retval] writes nothing.
                return AUTOMATION_NULL
            return self._to_powershell(result, contract.type if contract else None)  # type: ignore[union-attr]
        invocation = DotNetException(
            "System.Reflection.TargetInvocationException", "Exception has been thrown by the target of an invocation.", inner=cause
        )
        raise runtime_error(
            f'Exception calling "{attribute}" with "{len(arguments)}" argument(s): "{cause.message}"',
            "ComMethodTargetInvocation",
            type_name="System.Management.Automation.MethodInvocationException",
            category="NotSpecified",
            inner=invocation,
            extent=extent,
        )

    # ------------------------------------------------------------ enumeration

    @property
    def ps_enumerable(self) -> bool:
        """A collection: its interface has _NewEnum (a Python iterable here)."""
        return hasattr(self.target, "__iter__") and not isinstance(self.target, (str, bytes))

    def __iter__(self) -> Iterator[object]:
        element = self._contract("Item")
        declared = element.type if element else None  # type: ignore[union-attr]
        for item in self.target:  # type: ignore[attr-defined]
            yield self._to_powershell(item, declared)

    # ------------------------------------------------------------ values

    def _to_powershell(self, value: object, declared: str | None = None) -> object:
        """A value the model returns, as PowerShell receives it; ``declared`` is the contract's type (``IUpdate*``)."""
        if value is None or isinstance(value, (bool, str, int, float, Decimal)):
            return value
        if isinstance(value, _datetime.datetime):
            # A COM DATE has no time zone: .NET gives a DateTime of kind Unspecified.
            return DateTime.from_python(value.replace(tzinfo=None) if value.tzinfo is None else value.astimezone(_datetime.timezone.utc).replace(tzinfo=None))
        if isinstance(value, ComObject):
            return value
        interface = declared[:-1] if declared and declared.endswith("*") and declared not in ("IDispatch*", "IUnknown*") else None
        if interface is None and isinstance(value, (list, tuple)) and not hasattr(value, "Count") and not hasattr(type(value), "__com_interface__"):
            # A SAFEARRAY comes as an array.
            return [self._to_powershell(item) for item in value]
        return ComObject(value, self.contracts, interface)


def _to_com(value: object) -> object:
    """An argument as the COM model receives it."""
    if value is AUTOMATION_NULL:
        return None
    if isinstance(value, PSObject) and not value.is_custom:
        value = value.base
    if isinstance(value, ComObject):
        return value.target
    if isinstance(value, DateTime):
        return value.to_python()
    if isinstance(value, EnumValue):
        return value.value
    if isinstance(value, Char):
        return str(value)
    if isinstance(value, list):
        return [_to_com(item) for item in value]
    return value
