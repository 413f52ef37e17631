"""The item cmdlets of Microsoft.PowerShell.Management on an emulated host.

``Test-Path``, ``Get-Item``, ``Get-ChildItem``, ``New-Item``, ``Remove-Item``,
``Move-Item`` and ``Get-Content`` resolve their paths to a provider
(:mod:`wuacache_lab.windows.providers`) and do what the 5.1 reference pages
and the providers' about pages say, for the parameter sets the scripts use:
the FileSystem provider (:class:`~wuacache_lab.windows.filesystem.FileSystemProvider`)
for everything, the Registry provider (:class:`~wuacache_lab.windows.registry.RegistryProvider`)
for ``Test-Path`` and ``Get-Item``.

A path that does not exist is a non-terminating error, as PowerShell's
providers write it: an ItemNotFoundException "Cannot find path 'X' because it
does not exist." (FullyQualifiedErrorId ``PathNotFound,<cmdlet class>``,
category ObjectNotFound), which ``-ErrorAction`` and ``$ErrorActionPreference``
turn into nothing or into a terminating error. ``New-Item`` on a folder that
exists, without ``-Force``, writes an IOException "An item with the specified
name X already exists." (``DirectoryExist``, category ResourceExists), as
PowerShell's FileSystemProvider.CreateDirectory does
(PowerShell/PowerShell, src/System.Management.Automation/namespaces/FileSystemProvider.cs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from wuacache_lab.powershell.commands import CmdletCall, cmdlet, is_switch
from wuacache_lab.powershell.conversions import enumerate_value, to_string
from wuacache_lab.powershell.dotnet import register_enum
from wuacache_lab.powershell.errors import (
    OBJECT_NOT_FOUND,
    PERMISSION_DENIED,
    RESOURCE_EXISTS,
    WRITE_ERROR,
    DotNetException,
    LabLimitation,
    PowerShellError,
)
from wuacache_lab.windows.errors import HResultError
from wuacache_lab.windows.filesystem import FileSystemProvider, filter_matches, io_error
from wuacache_lab.windows.providers import (
    FILESYSTEM,
    HKLM_ROOT,
    REGISTRY,
    ProviderPath,
    cmdlet_paths,
    refuse_other_providers_parameters,
    resolve,
)
from wuacache_lab.windows.registry import RegistryProvider
from wuacache_lab.windows.runtime import HostRuntime, host_runtime

# Test-Path -PathType (the Test-Path page of the 5.1 reference: Any, Container, Leaf).
register_enum("Microsoft.PowerShell.Commands.TestPathType", {"Any": 0, "Container": 1, "Leaf": 2})


def _refuse(call: CmdletCall, parameters: dict[str, object], *names: str) -> None:
    """Parameters of the cmdlet the lab does not implement."""
    for name in names:
        if name in parameters:
            raise LabLimitation(f"The lab does not implement {call.name} -{name}.")


def _shown(location: ProviderPath) -> str:
    """The path as errors show it: through its drive."""
    if location.provider == REGISTRY:
        return "HKLM:" + location.path[len(HKLM_ROOT) :]
    return location.path


def _not_found(call: CmdletCall, location: ProviderPath) -> None:
    shown = _shown(location)
    call.write_error(
        DotNetException("System.Management.Automation.ItemNotFoundException", f"Cannot find path '{shown}' because it does not exist."),
        "PathNotFound",
        OBJECT_NOT_FOUND,
        shown,
    )


def _file_system_only(call: CmdletCall, location: ProviderPath) -> None:
    if location.provider != FILESYSTEM:
        raise LabLimitation(f"The lab's {call.name} works on the FileSystem provider only, not on {location.ps_path}.")


def _existing_files(
    call: CmdletCall, parameters: dict[str, object], runtime: HostRuntime
) -> Iterator[tuple[ProviderPath, FileSystemProvider]]:
    """The file system items a cmdlet's paths name that exist; each missing one is a PathNotFound error."""
    for location in cmdlet_paths(call, parameters):
        if location is None:
            continue
        _file_system_only(call, location)
        provider = FileSystemProvider(runtime)
        if provider.item(location) is None:
            _not_found(call, location)
            continue
        yield location, provider


def _provider(runtime: HostRuntime, location: ProviderPath) -> FileSystemProvider | RegistryProvider:
    return FileSystemProvider(runtime) if location.provider == FILESYSTEM else RegistryProvider(runtime.system)


@cmdlet("Test-Path")
def test_path(call: CmdletCall) -> Iterable[object]:
    """True when an item is there (of the ``-PathType`` asked); a drive that does not exist is False, not an error."""
    runtime = host_runtime()
    for parameters in call.records:
        _refuse(call, parameters, "Filter", "Include", "Exclude", "IsValid", "NewerThan", "OlderThan", "Credential")
        path_type = to_string(parameters.get("PathType", "Any"))
        literal = "LiteralPath" in parameters
        for text in enumerate_value(parameters["LiteralPath" if literal else "Path"]):
            try:
                location = resolve(to_string(text), runtime.working_directory, literal=literal)
            except PowerShellError:
                yield False
                continue
            yield _provider(runtime, location).exists(location, path_type)


@cmdlet("Get-Item")
def get_item(call: CmdletCall) -> Iterable[object]:
    """A FileInfo or DirectoryInfo, or a RegistryKey, with the provider's notes."""
    runtime = host_runtime()
    for parameters in call.records:
        _refuse(call, parameters, "Filter", "Include", "Exclude", "Stream", "Credential", "CodeSigningCert")
        for location in cmdlet_paths(call, parameters):
            if location is None:
                continue
            refuse_other_providers_parameters(call, parameters, location.provider)
            item = _provider(runtime, location).item(location)
            if item is None:
                _not_found(call, location)
            else:
                yield item


@cmdlet("Get-ChildItem")
def get_child_item(call: CmdletCall) -> Iterable[object]:
    """What a folder holds (folders, then files, by name), at any depth with ``-Recurse``; a file is its own child."""
    runtime = host_runtime()
    for parameters in call.records:
        _refuse(call, parameters, "Include", "Exclude", "Name", "Depth", "Attributes", "Hidden", "ReadOnly", "System", "Credential")
        pattern = to_string(parameters["Filter"]) if parameters.get("Filter") is not None else None
        for location in cmdlet_paths(call, parameters, default=runtime.working_directory):
            if location is None:
                continue
            _file_system_only(call, location)
            provider = FileSystemProvider(runtime)
            item = provider.item(location)
            if item is None:
                _not_found(call, location)
                continue
            if not runtime.host.disk.is_folder(location.path):
                if pattern is None or filter_matches(pattern, location.name):
                    yield item
                continue
            yield from provider.children(
                location,
                pattern=pattern,
                recurse=is_switch(parameters, "Recurse"),
                files=is_switch(parameters, "File"),
                folders=is_switch(parameters, "Directory"),
            )


@cmdlet("New-Item")
def new_item(call: CmdletCall) -> Iterable[object]:
    """``-ItemType Directory``: the folder and its missing parents; one that exists is an error without ``-Force``."""
    runtime = host_runtime()
    for parameters in call.records:
        _refuse(call, parameters, "Value", "Credential")
        item_type = to_string(parameters.get("ItemType", "")).casefold()
        if item_type not in ("directory", "container"):
            raise LabLimitation("The lab's New-Item creates folders only: -ItemType Directory.")
        given = parameters.get("Path")
        if call.parameter_set == "nameSet":
            parents = list(enumerate_value(given)) if given is not None else [runtime.working_directory]
            given = [to_string(parent).rstrip("\\") + "\\" + to_string(parameters["Name"]) for parent in parents]
        for text in enumerate_value(given):
            location = resolve(to_string(text), runtime.working_directory, literal=True)
            _file_system_only(call, location)
            provider = FileSystemProvider(runtime)
            existing = provider.item(location)
            if existing is not None and not is_switch(parameters, "Force"):
                call.write_error(
                    DotNetException("System.IO.IOException", f"An item with the specified name {location.path} already exists."),
                    "DirectoryExist",
                    RESOURCE_EXISTS,
                    location.path,
                )
                continue
            try:
                yield provider.new_directory(location)
            except HResultError as error:
                call.write_error(io_error(error, location.path).exception, "CreateDirectoryIOError", WRITE_ERROR, location.path)


@cmdlet("Remove-Item")
def remove_item(call: CmdletCall) -> Iterable[object]:
    """A file, or a folder with everything in it (``-Recurse``)."""
    runtime = host_runtime()
    for parameters in call.records:
        _refuse(call, parameters, "Filter", "Include", "Exclude", "Stream", "Credential")
        for location, provider in _existing_files(call, parameters, runtime):
            try:
                provider.remove(location, is_switch(parameters, "Recurse"))
            except HResultError as error:
                call.write_error(io_error(error, location.path).exception, "RemoveItemIOError", WRITE_ERROR, location.path)
    return ()


@cmdlet("Move-Item")
def move_item(call: CmdletCall) -> Iterable[object]:
    """Rename or move a file or folder; an existing destination file is replaced only with ``-Force``."""
    runtime = host_runtime()
    for parameters in call.records:
        _refuse(call, parameters, "Filter", "Include", "Exclude", "Credential")
        destination = resolve(to_string(parameters.get("Destination", runtime.working_directory)), runtime.working_directory, literal=True)
        _file_system_only(call, destination)
        for location, provider in _existing_files(call, parameters, runtime):
            try:
                moved = provider.move(location, destination, is_switch(parameters, "Force"))
            except HResultError as error:
                call.write_error(io_error(error, location.path).exception, "MoveFileInfoItemIOError", WRITE_ERROR, location.path)
                continue
            if is_switch(parameters, "PassThru"):
                yield provider.item(moved)


@cmdlet("Get-Content")
def get_content(call: CmdletCall) -> Iterable[object]:
    """A file's text: one string with ``-Raw`` (nothing for an empty file), otherwise one string per line."""
    runtime = host_runtime()
    for parameters in call.records:
        _refuse(call, parameters, "Filter", "Include", "Exclude", "Stream", "Credential", "ReadCount", "TotalCount", "Tail", "Delimiter", "Wait")
        encoding = to_string(parameters["Encoding"]) if "Encoding" in parameters else None
        for location in cmdlet_paths(call, parameters):
            if location is None:
                continue
            refuse_other_providers_parameters(call, parameters, location.provider)
            _file_system_only(call, location)
            provider = FileSystemProvider(runtime)
            if provider.item(location) is None:
                _not_found(call, location)
                continue
            if runtime.host.disk.is_folder(location.path):
                call.write_error(
                    DotNetException("System.UnauthorizedAccessException", f"Access to the path '{location.path}' is denied."),
                    "GetContentReaderUnauthorizedAccessError",
                    PERMISSION_DENIED,
                    location.path,
                )
                continue
            text = provider.content(location, encoding)
            if is_switch(parameters, "Raw"):
                if text:
                    yield text
            else:
                # StreamReader.ReadLine: a line ends at CR, LF or CR LF; the last one needs no end.
                lines = re.split(r"\r\n|\r|\n", text)
                yield from lines[:-1] if lines[-1] == "" else lines
