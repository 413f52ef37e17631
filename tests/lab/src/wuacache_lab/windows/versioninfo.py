"""The version resource of a file of an emulated host: ``System.Diagnostics.FileVersionInfo``.

``[System.Diagnostics.FileVersionInfo]::GetVersionInfo(path)`` reads it, and
so does the ``VersionInfo`` property PowerShell adds to the FileInfo objects
of ``Get-Item`` (about_Properties, the FileSystem provider's items). The
four ``File*Part`` numbers of ``wuapi.dll`` are the Update Agent's version
(the host's profile): ``IWindowsUpdateAgentInfo::GetInfo`` documents its
``ProductVersionString`` as that file's version (MicrosoftDocs/sdk-api,
sdk-api-src/content/wuapi/nf-wuapi-iwindowsupdateagentinfo-getinfo.md). The
lab models no other version resource.
"""

from __future__ import annotations

from wuacache_lab.powershell.conversions import to_string
from wuacache_lab.powershell.dotnet import dotnet_type, static
from wuacache_lab.powershell.errors import LabLimitation, dotnet_error
from wuacache_lab.windows.errors import HResultError
from wuacache_lab.windows.runtime import host_runtime


@dotnet_type("System.Diagnostics.FileVersionInfo")
class FileVersionInfo:
    """The file version of one file: major, minor, build and private (update) parts."""

    def __init__(self, file_name: str, parts: dict[str, int]) -> None:
        self._file_name = file_name
        self._parts = parts

    @static
    def GetVersionInfo(fileName: object) -> FileVersionInfo:  # noqa: N802, N803 - .NET names
        """The file must exist (FileNotFoundException, its path as message, otherwise)."""
        path = to_string(fileName)
        runtime = host_runtime()
        try:
            exists = runtime.host.disk.exists(path)
        except HResultError:
            exists = False
        if not exists:
            raise dotnet_error("System.IO.FileNotFoundException", path, FileName=path)
        try:
            return FileVersionInfo(path, runtime.system.file_version_info(path))
        except NotImplementedError as error:
            raise LabLimitation(f"The emulated host has no version resource for {path}: {error}") from None

    @property
    def FileName(self) -> str:  # noqa: N802 - .NET member name
        return self._file_name

    @property
    def FileMajorPart(self) -> int:  # noqa: N802
        return self._parts["FileMajorPart"]

    @property
    def FileMinorPart(self) -> int:  # noqa: N802
        return self._parts["FileMinorPart"]

    @property
    def FileBuildPart(self) -> int:  # noqa: N802
        return self._parts["FileBuildPart"]

    @property
    def FilePrivatePart(self) -> int:  # noqa: N802
        return self._parts["FilePrivatePart"]
