"""Parameter binding, for script functions and for cmdlets (about_Parameters, about_Functions_Advanced_Parameters).

A command's parameters are described by a :class:`Signature`: a function's
comes from its ``param`` block, a cmdlet's from the contract tables. Binding
follows PowerShell's rules:

- a name binds case-insensitively to a parameter or one of its aliases, or
  to the only parameter it is a prefix of (two or more: ``ambiguous``);
  ``-Name:value`` joins the value to the name, a switch takes none;
- the remaining arguments bind by position, in the parameter set being
  chosen; a simple function (no ``[CmdletBinding()]`` and no
  ``[Parameter()]``) gives the rest to ``$args`` instead of failing;
- the parameter set is the one holding every parameter bound, the default
  set when several do;
- a mandatory parameter missing fails as under ``-NonInteractive``; a
  mandatory one given ``$null``, an empty string or an empty collection
  fails unless ``[AllowNull()]``, ``[AllowEmptyString()]`` or
  ``[AllowEmptyCollection()]`` allows it;
- each value is converted to the parameter's type.

Advanced functions and cmdlets take the common parameters (``-ErrorAction``
and its alias ``-EA``...), described by the contract tables too.

Every failure is a ParameterBindingException whose FullyQualifiedErrorId is
``<ErrorId>,<command>``, as PowerShell reports it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from wuacache_lab.powershell.contracts import CmdletContract, ParameterContract, common_parameters
from wuacache_lab.powershell.conversions import SwitchParameter, enumerate_value, is_enumerable, object_to_string
from wuacache_lab.powershell.errors import DotNetException, PowerShellError, runtime_error
from wuacache_lab.powershell.nodes import Extent
from wuacache_lab.powershell.values import AUTOMATION_NULL, Hashtable, PSObject, base_object, is_null

ALL_SETS = "__AllParameterSets"


@dataclass(frozen=True)
class SetMembership:
    """How a parameter binds in one parameter set."""

    position: int | None = None
    mandatory: bool = False
    from_pipeline: bool = False
    from_remaining_arguments: bool = False


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter: its canonical name, type (a .NET name, None for any), aliases and sets.

    A common parameter belongs to every set (``sets`` empty). ``default`` is
    the default value's expression, which the evaluator computes.
    """

    name: str
    type_name: str | None = None
    aliases: tuple[str, ...] = ()
    sets: Mapping[str, SetMembership] = field(default_factory=lambda: {ALL_SETS: SetMembership()})
    switch: bool = False
    allow_null: bool = False
    allow_empty_string: bool = False
    allow_empty_collection: bool = False
    accepted_values: tuple[str, ...] = ()
    default: object = None

    def in_set(self, set_name: str) -> SetMembership | None:
        if not self.sets:
            return SetMembership()
        return self.sets.get(set_name) or self.sets.get(ALL_SETS)

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class Signature:
    """What binding needs to know of a command."""

    command_name: str
    # The command as FullyQualifiedErrorIds name it: the function, or the cmdlet's class.
    error_source: str
    parameters: tuple[ParameterSpec, ...]
    default_set: str | None = None
    advanced: bool = True

    def set_names(self) -> list[str]:
        names: list[str] = []
        for parameter in self.parameters:
            for name in parameter.sets:
                if name != ALL_SETS and name not in names:
                    names.append(name)
        return names or [ALL_SETS]


def cmdlet_class(name: str, module: str) -> str:
    """The .NET class implementing a cmdlet, as errors name it: ``Microsoft.PowerShell.Commands.GetItemCommand``."""
    verb, _, noun = name.partition("-")
    namespace = {
        "dism": "Microsoft.Dism.Commands",
        "cimcmdlets": "Microsoft.Management.Infrastructure.CimCmdlets",
    }.get(module.casefold(), "Microsoft.PowerShell.Commands")
    return f"{namespace}.{verb}{noun}Command"


def _spec_from_contract(parameter: ParameterContract) -> ParameterSpec:
    # A provider's dynamic parameter exists only for that provider's paths (WSMan's mandatory
    # -ConnectionURI of New-Item among them): the cmdlet checks it against the path it is given.
    sets = {
        name: SetMembership(binding.position, binding.mandatory and not parameter.provider, "ByValue" in binding.pipeline)
        for name, binding in parameter.sets.items()
    }
    return ParameterSpec(
        parameter.name,
        parameter.type,
        parameter.aliases,
        sets,
        parameter.switch,
        accepted_values=parameter.accepted_values,
    )


def cmdlet_signature(contract: CmdletContract, unconverted: frozenset[str] = frozenset(), allow_null: frozenset[str] = frozenset()) -> Signature:
    """A cmdlet's signature from the tables; ``unconverted`` parameters keep their arguments as given
    (the cmdlet's argument transformation attribute reads them itself), ``allow_null`` ones take ``$null``."""
    parameters = []
    for parameter in contract.all_parameters():
        spec = _spec_from_contract(parameter)
        if spec.name in unconverted:
            spec = replace(spec, type_name=None)
        if spec.name in allow_null:
            spec = replace(spec, allow_null=True, allow_empty_string=True, allow_empty_collection=True)
        parameters.append(spec)
    return Signature(contract.name, cmdlet_class(contract.name, contract.module), tuple(parameters), contract.default_parameter_set)


def common_parameter_specs() -> tuple[ParameterSpec, ...]:
    """The common parameters an advanced function takes (about_CommonParameters)."""
    return tuple(_spec_from_contract(parameter) for parameter in common_parameters().values())


# ---------------------------------------------------------------- arguments


@dataclass
class NamedArgument:
    """``-Name`` as written (``value`` given when joined by a colon or splatted from a hashtable)."""

    name: str
    extent: Extent | None
    value: object = None
    has_value: bool = False


@dataclass
class PositionalArgument:
    value: object
    extent: Extent | None


Argument = NamedArgument | PositionalArgument


@dataclass
class Binding:
    """The outcome: values by canonical parameter name, the parameter set, and the leftovers for ``$args``."""

    signature: Signature
    values: dict[str, object]
    parameter_set: str
    remaining: list[object]
    # Parameters the pipeline may still fill, when input is coming.
    pipeline_parameters: tuple[ParameterSpec, ...] = ()

    def unbound(self) -> list[ParameterSpec]:
        return [parameter for parameter in self.signature.parameters if parameter.name not in self.values and parameter.sets]


Converter = Callable[[object, str], object]


class Binder:
    """Binds the arguments of one invocation.

    ``convert(value, type_name)`` converts a value to a parameter's type; it
    raises PowerShellError when it cannot.
    """

    def __init__(self, signature: Signature, convert: Converter, *, function: bool) -> None:
        self.signature = signature
        self.convert = convert
        self.function = function

    def _error(self, message: str, error_id: str, extent: Extent | None, parameter: str | None = None, inner: DotNetException | None = None) -> PowerShellError:
        error = runtime_error(
            message,
            f"{error_id},{self.signature.error_source}",
            type_name="System.Management.Automation.ParameterBindingException",
            category="InvalidArgument",
            extent=extent,
            command_name=self.signature.command_name,
            inner=inner,
        )
        if parameter is not None:
            error.exception.properties["ParameterName"] = parameter
        return error

    # ------------------------------------------------------------ names

    def resolve(self, written: str, extent: Extent | None) -> ParameterSpec | None:
        """The parameter ``-written`` names; None for a simple function's unknown name."""
        wanted = written.casefold()
        exact = [parameter for parameter in self.signature.parameters if wanted in (name.casefold() for name in parameter.names)]
        if exact:
            return exact[0]
        matches = [
            parameter
            for parameter in self.signature.parameters
            if any(name.casefold().startswith(wanted) for name in parameter.names)
        ]
        if len(matches) > 1:
            listed = "".join(f" -{parameter.name}" for parameter in matches)
            raise self._error(
                f"Parameter cannot be processed because the parameter name '{written}' is ambiguous. Possible matches include:{listed}.",
                "AmbiguousParameter",
                extent,
                written,
            )
        if matches:
            return matches[0]
        if not self.signature.advanced:
            return None
        raise self._error(f"A parameter cannot be found that matches parameter name '{written}'.", "NamedParameterNotFound", extent, written)

    # ------------------------------------------------------------ binding

    def bind(self, arguments: list[Argument], *, expects_input: bool = False) -> Binding:
        values: dict[str, object] = {}
        extents: dict[str, Extent | None] = {}
        positional: list[tuple[int, PositionalArgument]] = []
        # What a simple function passes on to $args, with the place each had.
        remaining: list[tuple[int, object]] = []
        index = 0
        while index < len(arguments):
            argument = arguments[index]
            index += 1
            if isinstance(argument, PositionalArgument):
                positional.append((index, argument))
                continue
            parameter = self.resolve(argument.name, argument.extent)
            if parameter is None:
                remaining.append((index, f"-{argument.name}"))
                if argument.has_value:
                    remaining.append((index, argument.value))
                continue
            if parameter.name in values:
                raise self._error(
                    f"Cannot bind parameter because parameter '{parameter.name}' is specified more than once. "
                    "To provide multiple values to parameters that can accept multiple values, use the array syntax. "
                    "For example, \"-parameter value1,value2,value3\".",
                    "ParameterAlreadyBound",
                    argument.extent,
                    parameter.name,
                )
            if argument.has_value:
                value = argument.value
            elif parameter.switch:
                value = SwitchParameter(True)
            elif index < len(arguments) and isinstance(arguments[index], PositionalArgument):
                value = arguments[index].value  # type: ignore[union-attr]
                index += 1
            else:
                raise self._error(
                    f"Missing an argument for parameter '{parameter.name}'. Specify a parameter of type '{parameter.type_name or 'System.Object'}' and try again.",
                    "MissingArgument",
                    argument.extent,
                    parameter.name,
                )
            values[parameter.name] = value
            extents[parameter.name] = argument.extent

        candidates = self._candidate_sets(values)
        if not candidates:
            raise self._error(
                "Parameter set cannot be resolved using the specified named parameters. One or more parameters issued "
                "cannot be used together or an insufficient number of parameters were provided.",
                "AmbiguousParameterSet",
                None,
            )
        remaining.extend(self._bind_positional(positional, values, extents, candidates))
        remaining.sort(key=lambda item: item[0])
        candidates = self._candidate_sets(values)
        parameter_set = self._choose_set(candidates, values, expects_input)
        for name, value in list(values.items()):
            parameter = self._parameter(name)
            values[name] = self._coerce(parameter, value, extents.get(name))
        pipeline = tuple(
            parameter
            for parameter in self.signature.parameters
            if parameter.name not in values and (membership := parameter.in_set(parameter_set)) and membership.from_pipeline
        )
        binding = Binding(self.signature, values, parameter_set, [value for _, value in remaining], pipeline if expects_input else ())
        self._check_mandatory(binding, expects_input)
        return binding

    def _parameter(self, name: str) -> ParameterSpec:
        return next(parameter for parameter in self.signature.parameters if parameter.name == name)

    def _candidate_sets(self, values: Mapping[str, object]) -> list[str]:
        sets = self.signature.set_names()
        bound = [self._parameter(name) for name in values]
        return [name for name in sets if all(parameter.in_set(name) is not None for parameter in bound)]

    def _bind_positional(
        self,
        positional: list[tuple[int, PositionalArgument]],
        values: dict[str, object],
        extents: dict[str, Extent | None],
        candidates: list[str],
    ) -> list[tuple[int, object]]:
        """Arguments without a name go to the positional parameters, lowest position first."""
        preferred = [self.signature.default_set] if self.signature.default_set in candidates else []
        order: list[ParameterSpec] = []
        for set_name in [*preferred, *candidates]:
            ranked = sorted(
                (
                    (membership.position, parameter)
                    for parameter in self.signature.parameters
                    if (membership := parameter.in_set(set_name)) is not None and membership.position is not None
                ),
                key=lambda item: item[0],
            )
            for _, parameter in ranked:
                if parameter not in order:
                    order.append(parameter)
        collector = next(
            (
                parameter
                for parameter in self.signature.parameters
                if any(membership.from_remaining_arguments for membership in parameter.sets.values())
            ),
            None,
        )
        leftovers: list[tuple[int, object]] = []
        for place, argument in positional:
            target = next((parameter for parameter in order if parameter.name not in values), None)
            if target is None and collector is not None:
                collected = values.setdefault(collector.name, [])
                assert isinstance(collected, list)
                collected.append(argument.value)
                continue
            if target is None:
                if not self.signature.advanced:
                    leftovers.append((place, argument.value))
                    continue
                raise self._error(
                    f"A positional parameter cannot be found that accepts argument '{object_to_string(argument.value)}'.",
                    "PositionalParameterNotFound",
                    argument.extent,
                )
            values[target.name] = argument.value
            extents[target.name] = argument.extent
        return leftovers

    def _choose_set(self, candidates: list[str], values: Mapping[str, object], expects_input: bool) -> str:
        if len(candidates) == 1:
            return candidates[0]
        if self.signature.default_set in candidates:
            return self.signature.default_set  # type: ignore[return-value]
        satisfied = [name for name in candidates if not self._missing(name, values, expects_input)]
        if len(satisfied) == 1:
            return satisfied[0]
        raise self._error(
            "Parameter set cannot be resolved using the specified named parameters. One or more parameters issued "
            "cannot be used together or an insufficient number of parameters were provided.",
            "AmbiguousParameterSet",
            None,
        )

    def _missing(self, set_name: str, values: Mapping[str, object], expects_input: bool) -> list[str]:
        missing = []
        for parameter in self.signature.parameters:
            membership = parameter.in_set(set_name) if parameter.sets else None
            if membership is None or not membership.mandatory or parameter.name in values:
                continue
            if expects_input and membership.from_pipeline:
                continue
            missing.append(parameter.name)
        return missing

    def _check_mandatory(self, binding: Binding, expects_input: bool) -> None:
        missing = self._missing(binding.parameter_set, binding.values, expects_input)
        if missing:
            # Under -NonInteractive PowerShell does not prompt for them (about_Functions_Advanced_Parameters).
            raise self._error(
                f"Cannot process command because of one or more missing mandatory parameters: {' '.join(missing)}.",
                "MissingMandatoryParameter",
                None,
            )

    # ------------------------------------------------------------ values

    def _coerce(self, parameter: ParameterSpec, value: object, extent: Extent | None) -> object:
        """The value converted to the parameter's type, then the checks of a mandatory parameter."""
        if value is AUTOMATION_NULL:
            value = None
        membership = [membership for membership in parameter.sets.values() if membership.mandatory]
        converted = value
        if parameter.switch:
            plain = base_object(value)
            if isinstance(plain, SwitchParameter):
                converted = plain
            elif isinstance(plain, bool):
                converted = SwitchParameter(plain)
            else:
                converted = SwitchParameter(bool(plain))
        elif parameter.type_name is not None:
            plain = base_object(value)
            if parameter.type_name in ("System.Boolean", "bool") and not (plain is None or isinstance(plain, (bool, int, float, SwitchParameter))):
                raise self._conversion_error(
                    parameter,
                    value,
                    f'Cannot convert value "{object_to_string(plain)}" to type "System.Boolean". Boolean parameters accept only Boolean values and numbers, such as $True, $False, 1 or 0.',
                    extent,
                )
            try:
                converted = self.convert(value, parameter.type_name)
            except PowerShellError as error:
                raise self._conversion_error(parameter, value, error.exception.message, extent, error.exception.inner or error.exception) from None
        if membership:
            self._check_null_or_empty(parameter, converted, extent)
        return converted

    def _conversion_error(self, parameter: ParameterSpec, value: object, reason: str, extent: Extent | None, inner: DotNetException | None = None) -> PowerShellError:
        if self.function:
            # A type constraint on a function's parameter is an argument transformation.
            return self._error(
                f"Cannot process argument transformation on parameter '{parameter.name}'. {reason}",
                "ParameterArgumentTransformationError",
                extent,
                parameter.name,
                inner,
            )
        return self._error(f"Cannot bind parameter '{parameter.name}'. {reason}", "CannotConvertArgumentNoMessage", extent, parameter.name, inner)

    def _check_null_or_empty(self, parameter: ParameterSpec, value: object, extent: Extent | None) -> None:
        plain = base_object(value)
        if is_null(plain) and not parameter.allow_null:
            if parameter.type_name in ("System.String", "string") and not parameter.allow_empty_string:
                raise self._error(
                    f"Cannot bind argument to parameter '{parameter.name}' because it is an empty string.",
                    "ParameterArgumentValidationErrorEmptyStringNotAllowed",
                    extent,
                    parameter.name,
                )
            if parameter.type_name not in ("System.String", "string"):
                raise self._error(
                    f"Cannot bind argument to parameter '{parameter.name}' because it is null.",
                    "ParameterArgumentValidationErrorNullNotAllowed",
                    extent,
                    parameter.name,
                )
        if isinstance(plain, str) and plain == "" and not parameter.allow_empty_string and not parameter.allow_null:
            raise self._error(
                f"Cannot bind argument to parameter '{parameter.name}' because it is an empty string.",
                "ParameterArgumentValidationErrorEmptyStringNotAllowed",
                extent,
                parameter.name,
            )
        if isinstance(plain, list) and not plain and not parameter.allow_empty_collection:
            raise self._error(
                f"Cannot bind argument to parameter '{parameter.name}' because it is an empty array.",
                "ParameterArgumentValidationErrorEmptyArrayNotAllowed",
                extent,
                parameter.name,
            )

    # ------------------------------------------------------------ pipeline input

    def bind_input(self, binding: Binding, input_object: object) -> dict[str, object]:
        """The parameter values for one pipeline input object (ByValue): the first parameter whose type takes it."""
        wrapped = input_object if isinstance(input_object, PSObject) or input_object is None else PSObject(input_object)
        for parameter in binding.pipeline_parameters:
            try:
                value = self._coerce(parameter, wrapped, None)
            except PowerShellError:
                continue
            return {**binding.values, parameter.name: value}
        raise self._error(
            "The input object cannot be bound to any parameters for the command either because the command does not "
            "take pipeline input or the input and its properties do not match any of the parameters that take pipeline input.",
            "InputObjectNotBound",
            None,
        )


def splat(value: object, extent: Extent | None) -> list[Argument]:
    """``@name``: a hashtable gives named arguments, anything else positional ones (about_Splatting)."""
    plain = base_object(value)
    if isinstance(plain, Hashtable):
        return [NamedArgument(str(key), extent, item, True) for key, item in plain.items()]
    if is_null(plain):
        return []
    items = list(enumerate_value(plain)) if is_enumerable(plain) else [plain]
    return [PositionalArgument(item, extent) for item in items]

