"""The registry of an emulated host as PowerShell's Registry provider and Microsoft.Win32.RegistryKey show it.

The keys and values are the host's (:class:`~wuacache_lab.windows.system.WindowsSystem`:
HKEY_LOCAL_MACHINE only). ``Get-Item HKLM:\\...`` gives a ``RegistryKey``
(about_Registry_Provider) whose ``GetValue(name)`` reads a value as .NET types
it: a REG_DWORD an Int32, a REG_MULTI_SZ a string[], a REG_SZ a string, and
null for a value that does not exist (RegistryKey.GetValue, dotnet/dotnet-api-docs
xml/Microsoft.Win32/RegistryKey.xml).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wuacache_lab.powershell.conversions import to_string
from wuacache_lab.powershell.dotnet import dotnet_type
from wuacache_lab.powershell.values import PSObject, TypedArray
from wuacache_lab.windows.providers import ProviderPath, with_notes

if TYPE_CHECKING:
    from wuacache_lab.windows.system import WindowsSystem


@dotnet_type("Microsoft.Win32.RegistryKey", base="System.MarshalByRefObject", interfaces=("System.IDisposable",))
class RegistryKey:
    """An open key: its values are read when asked for, as .NET reads them."""

    def __init__(self, system: WindowsSystem, name: str) -> None:
        self._system = system
        self._name = name

    @property
    def Name(self) -> str:  # noqa: N802 - .NET member name
        return self._name

    @property
    def ValueCount(self) -> int:  # noqa: N802
        return len(self._system.registry_values(self._name))

    def GetValueNames(self) -> TypedArray:  # noqa: N802
        return TypedArray("System.String", self._system.registry_values(self._name))

    def GetValue(self, name: object, defaultValue: object = None) -> object:  # noqa: N802, N803 - .NET names
        wanted = to_string(name).casefold()
        values = self._system.registry_values(self._name)
        found = next((value for key, value in values.items() if key.casefold() == wanted), None)
        if found is None:
            return defaultValue
        if isinstance(found, list):
            return TypedArray("System.String", found)
        return found

    def Close(self) -> None:  # noqa: N802
        pass

    def Dispose(self) -> None:  # noqa: N802
        pass

    def ToString(self) -> str:  # noqa: N802
        return self._name


class RegistryProvider:
    """What the item cmdlets do with paths of the HKLM: drive for one process."""

    def __init__(self, system: WindowsSystem) -> None:
        self.system = system

    def exists(self, location: ProviderPath, path_type: str) -> bool:
        """Test-Path: a key is a container; values are not items."""
        return path_type != "Leaf" and self.system.registry_key_exists(location.path)

    def item(self, location: ProviderPath) -> PSObject | None:
        if not self.system.registry_key_exists(location.path):
            return None
        return with_notes(RegistryKey(self.system, location.path), location, True)
