"""The security descriptors scripts read and write: System.Security.AccessControl, Get-Acl and Set-Acl.

``System.Security.AccessControl``'s ObjectSecurity family holds a descriptor
as scripts use it: ``SetSecurityDescriptorSddlForm``,
``GetSecurityDescriptorSddlForm`` and the ``Sddl`` and ``Path`` properties
PowerShell's types.ps1xml adds (the Get-Acl page of the 5.1 reference), over
the lab's :class:`~wuacache_lab.windows.disk.SecurityDescriptor`. ``Get-Acl``
and ``Set-Acl`` read and write the descriptors of the host's files and
folders; an owner the process may not assign fails
(:func:`~wuacache_lab.windows.owners.may_own`): .NET's
NativeObjectSecurity.Persist reports ERROR_INVALID_OWNER as an InvalidOperationException.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from wuacache_lab.powershell.commands import CmdletCall, cmdlet, is_switch
from wuacache_lab.powershell.conversions import to_string
from wuacache_lab.powershell.dotnet import constructor, dotnet_type
from wuacache_lab.powershell.errors import (
    OBJECT_NOT_FOUND,
    DotNetException,
    LabLimitation,
)
from wuacache_lab.powershell.values import base_object
from wuacache_lab.windows.disk import SecurityDescriptor
from wuacache_lab.windows.errors import HResultError
from wuacache_lab.windows.owners import may_own
from wuacache_lab.windows.providers import FILESYSTEM, ProviderPath, cmdlet_paths
from wuacache_lab.windows.runtime import host_runtime


# ---------------------------------------------------------------- System.Security.AccessControl


@dotnet_type("System.Security.AccessControl.ObjectSecurity")
class ObjectSecurity:
    """A security descriptor, empty until a script or ``Get-Acl`` gives it one."""

    def __init__(self, descriptor: SecurityDescriptor | None = None, path: ProviderPath | None = None) -> None:
        self.descriptor = descriptor
        self.path = path

    def SetSecurityDescriptorSddlForm(self, sddlForm: object, includeSections: object = None) -> None:  # noqa: N802, N803 - .NET names
        if includeSections is not None:
            raise LabLimitation("The lab sets whole security descriptors only: SetSecurityDescriptorSddlForm(sddl).")
        text = to_string(sddlForm)
        try:
            self.descriptor = SecurityDescriptor.from_sddl(text)
        except NotImplementedError as error:
            raise LabLimitation(str(error)) from None

    def GetSecurityDescriptorSddlForm(self, includeSections: object) -> str:  # noqa: N802, N803
        return self.descriptor.sddl if self.descriptor is not None else ""

    @property
    def Sddl(self) -> str:  # noqa: N802 - the CodeProperty of PowerShell's types.ps1xml
        return self.GetSecurityDescriptorSddlForm("All")

    @property
    def Path(self) -> str | None:  # noqa: N802 - the CodeProperty of PowerShell's types.ps1xml
        return self.path.ps_path if self.path is not None else None


@dotnet_type("System.Security.AccessControl.CommonObjectSecurity", base="System.Security.AccessControl.ObjectSecurity")
class CommonObjectSecurity(ObjectSecurity):
    pass


@dotnet_type("System.Security.AccessControl.NativeObjectSecurity", base="System.Security.AccessControl.CommonObjectSecurity")
class NativeObjectSecurity(CommonObjectSecurity):
    pass


@dotnet_type("System.Security.AccessControl.FileSystemSecurity", base="System.Security.AccessControl.NativeObjectSecurity")
class FileSystemSecurity(NativeObjectSecurity):
    pass


@dotnet_type("System.Security.AccessControl.DirectorySecurity", base="System.Security.AccessControl.FileSystemSecurity")
class DirectorySecurity(FileSystemSecurity):
    @constructor
    def new(own_type: object, *arguments: object) -> DirectorySecurity:
        if arguments:
            raise LabLimitation("The lab constructs an empty DirectorySecurity only: New-Object DirectorySecurity.")
        return DirectorySecurity()


@dotnet_type("System.Security.AccessControl.FileSecurity", base="System.Security.AccessControl.FileSystemSecurity")
class FileSecurity(FileSystemSecurity):
    @constructor
    def new(own_type: object, *arguments: object) -> FileSecurity:
        if arguments:
            raise LabLimitation("The lab constructs an empty FileSecurity only: New-Object FileSecurity.")
        return FileSecurity()


def descriptor_of(security: object, method: str) -> SecurityDescriptor:
    """The descriptor a script hands to a .NET method or Set-Acl."""
    security = base_object(security)
    if not isinstance(security, ObjectSecurity):
        raise LabLimitation(f"The lab's {method} takes an ObjectSecurity.")
    if security.descriptor is None:
        raise LabLimitation(f"The lab's {method} takes a security descriptor with an owner and a DACL.")
    return security.descriptor


# ---------------------------------------------------------------- Microsoft.PowerShell.Security


def _file_system_paths(call: CmdletCall, parameters: dict[str, object]) -> Iterator[ProviderPath]:
    for location in cmdlet_paths(call, parameters):
        if location is None:
            continue
        if location.provider != FILESYSTEM:
            raise LabLimitation(f"The lab reads and writes the security of files and folders only, not of {location.ps_path}.")
        yield location


def _path_not_found(call: CmdletCall, location: ProviderPath) -> None:
    call.write_error(
        DotNetException("System.Management.Automation.ItemNotFoundException", f"Cannot find path '{location.path}' because it does not exist."),
        "PathNotFound",
        OBJECT_NOT_FOUND,
        location.path,
    )


@cmdlet("Get-Acl")
def get_acl(call: CmdletCall) -> Iterable[object]:
    """The security descriptor of a file (FileSecurity) or a folder (DirectorySecurity)."""
    runtime = host_runtime()
    for parameters in call.records:
        if call.parameter_set == "ByInputObject":
            raise LabLimitation("The lab's Get-Acl takes -Path or -LiteralPath.")
        for location in _file_system_paths(call, parameters):
            disk = runtime.host.disk
            try:
                descriptor = disk.security(location.path)
            except HResultError:
                _path_not_found(call, location)
                continue
            kind = DirectorySecurity if disk.is_folder(location.path) else FileSecurity
            yield kind(descriptor, location)


@cmdlet("Set-Acl")
def set_acl(call: CmdletCall) -> Iterable[object]:
    """Write a descriptor's owner and DACL to a file or folder; an owner the process may not assign fails."""
    runtime = host_runtime()
    for parameters in call.records:
        if call.parameter_set == "ByInputObject":
            raise LabLimitation("The lab's Set-Acl takes -Path or -LiteralPath.")
        descriptor = descriptor_of(parameters["AclObject"], "Set-Acl")
        for location in _file_system_paths(call, parameters):
            try:
                runtime.host.disk.security(location.path)
            except HResultError:
                _path_not_found(call, location)
                continue
            if not may_own(runtime.logon, descriptor.owner):
                call.write_error(
                    DotNetException("System.InvalidOperationException", "The security identifier is not allowed to be the owner of this object."),
                    "System.InvalidOperationException",
                    "InvalidOperation",
                    location.path,
                )
                continue
            runtime.host.disk.set_security(location.path, descriptor)
            if is_switch(parameters, "PassThru"):
                yield DirectorySecurity(descriptor, location) if runtime.host.disk.is_folder(location.path) else FileSecurity(descriptor, location)
