"""PowerShell's providers on an emulated host: which one a path names, and what their items carry.

A path a cmdlet is given names an item of a provider (about_Providers): a
drive-qualified path (``C:\\ProgramData``, ``HKLM:\\SOFTWARE``), a
provider-qualified one (``Microsoft.PowerShell.Core\\FileSystem::C:\\...``,
``Registry::HKEY_LOCAL_MACHINE\\...``), or a path relative to the current
location, which is the process's working directory on drive C:. The lab
has the FileSystem provider's drive C: and the Registry provider's drive
HKLM:.

Every item a provider writes to the pipeline is wrapped with the note
properties about_Properties and about_Registry_Provider show: ``PSPath``,
``PSParentPath``, ``PSChildName``, ``PSDrive``, ``PSProvider`` and
``PSIsContainer``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from collections.abc import Iterator
from typing import TYPE_CHECKING

from wuacache_lab.powershell.contracts import cmdlet as cmdlet_contract
from wuacache_lab.powershell.conversions import enumerate_value, to_string
from wuacache_lab.powershell.dotnet import dotnet_type
from wuacache_lab.powershell.errors import OBJECT_NOT_FOUND, DotNetException, LabLimitation, PowerShellError, runtime_error
from wuacache_lab.powershell.values import PSObject

if TYPE_CHECKING:
    from wuacache_lab.powershell.commands import CmdletCall

FILESYSTEM = "FileSystem"
REGISTRY = "Registry"
HKLM_ROOT = "HKEY_LOCAL_MACHINE"

_QUALIFIED = re.compile(r"^(?:Microsoft\.PowerShell\.Core\\)?(?P<provider>[A-Za-z]+)::(?P<path>.*)$", re.DOTALL)
_DRIVE = re.compile(r"^(?P<drive>[A-Za-z][A-Za-z0-9_]*):(?P<rest>.*)$", re.DOTALL)
_WILDCARDS = re.compile(r"[*?\[\]]")
# The drives of Windows PowerShell 5.1 the lab does not have (about_Providers).
_OTHER_DRIVES = frozenset({"hkcu", "env", "function", "variable", "alias", "cert", "wsman"})


@dotnet_type("System.Management.Automation.ProviderInfo")
class ProviderInfo:
    """A provider, as ``PSProvider`` holds it."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def Name(self) -> str:  # noqa: N802 - .NET member name
        return self._name

    def ToString(self) -> str:  # noqa: N802
        return f"Microsoft.PowerShell.Core\\{self._name}"


@dotnet_type("System.Management.Automation.PSDriveInfo")
class PSDriveInfo:
    """A drive, as ``PSDrive`` holds it."""

    def __init__(self, name: str, provider: ProviderInfo, root: str) -> None:
        self._name = name
        self._provider = provider
        self._root = root

    @property
    def Name(self) -> str:  # noqa: N802
        return self._name

    @property
    def Provider(self) -> ProviderInfo:  # noqa: N802
        return self._provider

    @property
    def Root(self) -> str:  # noqa: N802
        return self._root

    def ToString(self) -> str:  # noqa: N802
        return self._name


_PROVIDERS = {FILESYSTEM: ProviderInfo(FILESYSTEM), REGISTRY: ProviderInfo(REGISTRY)}
_DRIVES = {
    "c": PSDriveInfo("C", _PROVIDERS[FILESYSTEM], "C:\\"),
    "hklm": PSDriveInfo("HKLM", _PROVIDERS[REGISTRY], HKLM_ROOT),
}


@dataclass(frozen=True)
class ProviderPath:
    """An item's path as its provider knows it: ``C:\\ProgramData\\x``, or ``HKEY_LOCAL_MACHINE\\SOFTWARE\\x``."""

    provider: str
    path: str

    @property
    def ps_path(self) -> str:
        return f"Microsoft.PowerShell.Core\\{self.provider}::{self.path}"

    @property
    def parent(self) -> str:
        """The provider path of the parent container; empty for a root."""
        if self.provider == FILESYSTEM and re.fullmatch(r"[A-Za-z]:\\", self.path):
            return ""
        head, separator, _ = self.path.rstrip("\\").rpartition("\\")
        if not separator:
            return ""
        return head + "\\" if head.endswith(":") else head

    @property
    def name(self) -> str:
        return self.path.rstrip("\\").rpartition("\\")[2] or self.path

    def child(self, name: str) -> ProviderPath:
        return ProviderPath(self.provider, self.path.rstrip("\\") + "\\" + name)


def resolve(text: str, working_directory: str, *, literal: bool = True) -> ProviderPath:
    """The provider path a cmdlet's ``-LiteralPath`` (or ``-Path``, ``literal`` False) names.

    A drive the lab does not have fails as PowerShell fails, with a
    DriveNotFoundException; wildcards in ``-Path`` are a limitation of the lab.
    """
    if not literal and _WILDCARDS.search(text):
        raise LabLimitation(f"The lab does not expand wildcards in -Path ({text}); the scripts give -LiteralPath.")
    qualified = _QUALIFIED.match(text)
    if qualified is not None:
        provider = qualified["provider"].casefold()
        if provider == FILESYSTEM.casefold():
            return ProviderPath(FILESYSTEM, normalized_path(qualified["path"]))
        if provider == REGISTRY.casefold():
            return _registry_path(qualified["path"])
        raise LabLimitation(f"The lab has no {qualified['provider']} provider.")
    if text.startswith(("\\\\", "//")):
        return ProviderPath(FILESYSTEM, normalized_path(text))
    if text.startswith(("\\", "/")):
        # The root of the current location's drive.
        return ProviderPath(FILESYSTEM, normalized_path(working_directory[:2] + text))
    drive = _DRIVE.match(text)
    if drive is None:
        # Relative to the current location, the process's working directory.
        return ProviderPath(FILESYSTEM, normalized_path(working_directory.rstrip("\\") + "\\" + text))
    name = drive["drive"].casefold()
    if name == "c":
        rest = drive["rest"]
        if rest and rest[0] not in "\\/":
            # C:x is relative to the current location on drive C:.
            rest = working_directory[2:].rstrip("\\") + "\\" + rest
        return ProviderPath(FILESYSTEM, normalized_path("C:\\" + rest.lstrip("\\/")))
    if name == "hklm":
        return _registry_path(HKLM_ROOT + "\\" + drive["rest"].lstrip("\\/"))
    if name in _OTHER_DRIVES:
        raise LabLimitation(f"The lab has no {drive['drive']}: drive.")
    raise drive_not_found(drive["drive"])


def cmdlet_paths(call: CmdletCall, parameters: dict[str, object], *, default: str | None = None) -> Iterator[ProviderPath | None]:
    """The provider path of each path a cmdlet is given (``-LiteralPath``, or ``-Path`` without
    wildcards); None, after a non-terminating error, for a drive that does not exist."""
    literal = "LiteralPath" in parameters
    given = parameters.get("LiteralPath" if literal else "Path", default)
    for text in enumerate_value(given):
        path = to_string(text)
        try:
            yield resolve(path, call.runtime.working_directory, literal=literal)
        except PowerShellError as error:
            call.write_error(error.exception, "DriveNotFound", OBJECT_NOT_FOUND, path)
            yield None


def drive_not_found(name: str) -> PowerShellError:
    return runtime_error(
        f"Cannot find drive. A drive with the name '{name}' does not exist.",
        "DriveNotFound",
        type_name="System.Management.Automation.DriveNotFoundException",
        category="ObjectNotFound",
        target_object=name,
    )


def _registry_path(text: str) -> ProviderPath:
    root, _, rest = text.replace("/", "\\").partition("\\")
    if root.casefold() not in ("hkey_local_machine", "hklm"):
        raise LabLimitation(f"The lab's registry holds HKEY_LOCAL_MACHINE only, not {root}.")
    parts = [part for part in rest.split("\\") if part]
    return ProviderPath(REGISTRY, "\\".join([HKLM_ROOT, *parts]))


def normalized_path(path: str) -> str:
    """``C:\\a\\.\\b\\..\\c\\`` as ``C:\\a\\c``: separators unified, dots resolved, no trailing separator but the root's."""
    path = path.replace("/", "\\")
    if path.startswith("\\\\"):
        return path.rstrip("\\")
    drive, _, rest = path.partition("\\")
    parts: list[str] = []
    for part in rest.split("\\"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "\\".join([drive.upper(), *parts]) if parts else drive.upper() + "\\"


def with_notes(item: object, location: ProviderPath, container: bool) -> PSObject:
    """The item as its provider writes it to the pipeline, with the provider's note properties."""
    drive = _DRIVES["c" if location.provider == FILESYSTEM else "hklm"]
    parent = location.parent
    return PSObject(
        item,
        [
            ("PSPath", location.ps_path),
            ("PSParentPath", f"Microsoft.PowerShell.Core\\{location.provider}::{parent}" if parent else ""),
            ("PSChildName", location.name),
            ("PSDrive", drive),
            ("PSProvider", _PROVIDERS[location.provider]),
            ("PSIsContainer", container),
        ],
    )


def refuse_other_providers_parameters(call: CmdletCall, parameters: dict[str, object], provider: str) -> None:
    """A provider's dynamic parameters exist only for its paths: with another provider's path they are unknown.

    PowerShell adds ``-Raw``, ``-Encoding``, ``-File``... to a cmdlet only
    when its path is the FileSystem provider's (about_FileSystem_Provider,
    "Dynamic parameters"), so with a registry path binding fails.
    """
    contract = cmdlet_contract(call.name)
    assert contract is not None
    for parameter in contract.all_parameters():
        if parameter.provider and parameter.provider != provider and parameter.name in parameters:
            exception = DotNetException(
                "System.Management.Automation.ParameterBindingException",
                f"A parameter cannot be found that matches parameter name '{parameter.name}'.",
                ParameterName=parameter.name,
            )
            raise call.terminating(exception, "NamedParameterNotFound", "InvalidArgument")
