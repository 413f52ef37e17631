"""Variables, functions and strict mode, in scopes along the call stack.

PowerShell's scopes are dynamic (about_Scopes): a function or a script block
invoked with ``&`` runs in a new scope whose parent is the scope of its
caller. Reading a variable walks up the parents (a ``private`` variable is
seen only in its own scope); assigning one creates it in the current scope,
so a variable assigned inside a function is gone once the function returns.

``$script:`` names the nearest *script scope*: a scope made for a script
file. A script block made with ``[scriptblock]::Create()`` is not a script
file, so invoking it with ``&`` makes an ordinary child scope, and
``$script:`` inside it (and in the functions it defines and calls) is the
script scope of its caller: for ``powershell.exe -EncodedCommand`` that is the
global scope, where the command itself runs. (about_Scopes, "Script scope";
PowerShell's ScriptCommandProcessor marks only ExternalScriptInfo and ScriptInfo
commands as coming from a script file.)

``Set-StrictMode`` applies to the scope that set it and to its children
(Set-StrictMode, "The strict mode ... is effective only in the scope where
it's set and in its child scopes"): the version in force is the nearest one
set up the chain.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field

from wuacache_lab.powershell.errors import runtime_error
from wuacache_lab.powershell.nodes import Extent, VariablePath
from wuacache_lab.powershell.values import AUTOMATION_NULL, DotNetType

# Variables every session starts with, in the global scope (about_Preference_Variables, 5.1 defaults).
PREFERENCE_DEFAULTS = {
    "ErrorActionPreference": "Continue",
    "ProgressPreference": "Continue",
    "WarningPreference": "Continue",
    "VerbosePreference": "SilentlyContinue",
    "DebugPreference": "SilentlyContinue",
    "InformationPreference": "SilentlyContinue",
    "ConfirmPreference": "High",
    "WhatIfPreference": False,
}
# Names that cannot be assigned: $true, $false and $null (assigning $null discards the value).
_CONSTANTS = {"true": True, "false": False, "null": None}


@dataclass
class PSVariable:
    name: str
    value: object
    type_constraint: DotNetType | None = None
    private: bool = False


@dataclass
class Scope:
    parent: Scope | None
    is_script_scope: bool = False
    variables: dict[str, PSVariable] = field(default_factory=dict)
    functions: dict[str, object] = field(default_factory=dict)
    strict_mode: int | None = None

    def chain(self):  # type: ignore[no-untyped-def]
        scope: Scope | None = self
        while scope is not None:
            yield scope
            scope = scope.parent


class SessionState:
    """The scopes of one process, and where the script is in them.

    ``convert`` converts a value to a variable's type constraint;
    ``environment`` is the process's environment block (``$env:``).
    """

    def __init__(
        self,
        environment: MutableMapping[str, str],
        convert: Callable[[object, DotNetType], object],
    ) -> None:
        self.global_scope = Scope(None, is_script_scope=True)
        self.current = self.global_scope
        self.environment = environment
        self.convert = convert
        for name, value in PREFERENCE_DEFAULTS.items():
            self.global_scope.variables[name.casefold()] = PSVariable(name, value)

    # ------------------------------------------------------------ scopes

    def push(self, *, script_scope: bool = False) -> Scope:
        self.current = Scope(self.current, is_script_scope=script_scope)
        return self.current

    def pop(self, scope: Scope) -> None:
        assert self.current is scope, "scopes must be left in the order they were entered"
        assert scope.parent is not None
        self.current = scope.parent

    @property
    def script_scope(self) -> Scope:
        return next(scope for scope in self.current.chain() if scope.is_script_scope)

    @property
    def strict_mode(self) -> int:
        """The strict mode version in force here (0: off)."""
        return next((scope.strict_mode for scope in self.current.chain() if scope.strict_mode is not None), 0)

    def set_strict_mode(self, version: int) -> None:
        self.current.strict_mode = version

    def _scope_for(self, qualifier: str | None) -> Scope | None:
        if qualifier in ("local", "private"):
            return self.current
        if qualifier == "script":
            return self.script_scope
        if qualifier == "global":
            return self.global_scope
        return None

    # ------------------------------------------------------------ variables

    def find(self, path: VariablePath) -> PSVariable | None:
        """The variable a read of ``path`` sees, or None."""
        name = path.name.casefold()
        own = self._scope_for(path.qualifier)
        if own is not None:
            return own.variables.get(name)
        for scope in self.current.chain():
            variable = scope.variables.get(name)
            if variable is not None and (not variable.private or scope is self.current):
                return variable
        return None

    def read(self, path: VariablePath, extent: Extent | None = None) -> object:
        """``$name``: its value; unset is ``$null``, or an error under strict mode 1.0 and later."""
        qualifier = path.qualifier
        if qualifier == "env":
            return self._environment_value(path.name)
        if qualifier == "function":
            # The function: drive gives a function's script block.
            function = self.find_function(path.name)
            return getattr(function, "block", None)
        if qualifier is None and path.name.casefold() in _CONSTANTS:
            return _CONSTANTS[path.name.casefold()]
        if qualifier not in (None, "global", "local", "private", "script", "variable"):
            raise runtime_error(
                f"Cannot find drive. A drive with the name '{qualifier}' does not exist.",
                "DriveNotFound",
                type_name="System.Management.Automation.DriveNotFoundException",
                category="ObjectNotFound",
                extent=extent,
            )
        if qualifier == "variable":
            path = VariablePath(None, path.name)
        variable = self.find(path)
        if variable is not None:
            return variable.value
        if self.strict_mode >= 1:
            raise runtime_error(
                f"The variable '${path.name}' cannot be retrieved because it has not been set.",
                "VariableIsUndefined",
                target_object=path.name,
                extent=extent,
            )
        return None

    def is_set(self, path: VariablePath) -> bool:
        if path.qualifier == "env":
            return self._environment_value(path.name) is not None
        return path.name.casefold() in _CONSTANTS or self.find(path) is not None

    def assign(self, path: VariablePath, value: object, type_constraint: DotNetType | None = None) -> None:
        """``$name = value``: in the current scope unless qualified; a type-constrained variable converts."""
        if path.qualifier == "env":
            self._set_environment(path.name, value)
            return
        if path.qualifier not in (None, "global", "local", "private", "script", "variable"):
            raise runtime_error(
                f"Cannot find drive. A drive with the name '{path.qualifier}' does not exist.",
                "DriveNotFound",
                type_name="System.Management.Automation.DriveNotFoundException",
                category="ObjectNotFound",
            )
        name = path.name.casefold()
        if name in _CONSTANTS and path.qualifier in (None, "global", "local", "script"):
            if name == "null":
                return
            raise runtime_error(
                f"Cannot overwrite variable {path.name} because it is read-only or constant.",
                "VariableNotWritable",
                type_name="System.Management.Automation.SessionStateUnauthorizedAccessException",
                category="WriteError",
                target_object=path.name,
            )
        scope = self._scope_for(path.qualifier) or self.current
        variable = scope.variables.get(name)
        constraint = type_constraint or (variable.type_constraint if variable else None)
        if constraint is not None:
            value = self.convert(value, constraint)
        if variable is None:
            scope.variables[name] = PSVariable(path.name, value, constraint, path.qualifier == "private")
        else:
            variable.value = value
            variable.type_constraint = constraint

    def set_local(self, name: str, value: object, type_constraint: DotNetType | None = None) -> None:
        """A variable of the current scope, as parameters and automatic variables are made."""
        self.current.variables[name.casefold()] = PSVariable(name, value, type_constraint)

    def _environment_value(self, name: str) -> str | None:
        wanted = name.casefold()
        return next((value for key, value in self.environment.items() if key.casefold() == wanted), None)

    def _set_environment(self, name: str, value: object) -> None:
        wanted = name.casefold()
        for key in [key for key in self.environment if key.casefold() == wanted]:
            del self.environment[key]
        if value is not None and value is not AUTOMATION_NULL and value != "":
            self.environment[name] = str(value)

    # ------------------------------------------------------------ functions

    def define_function(self, name: str, function: object) -> None:
        qualifier, _, bare = name.rpartition(":")
        scope = self._scope_for(qualifier.lower() or None) or self.current
        scope.functions[bare.casefold()] = function

    def find_function(self, name: str) -> object | None:
        wanted = name.casefold()
        for scope in self.current.chain():
            if wanted in scope.functions:
                return scope.functions[wanted]
        return None
