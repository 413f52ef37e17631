"""Drive C: of an emulated host as .NET's System.IO and PowerShell's FileSystem provider see it.

The .NET types (``File``, ``Directory``, ``FileInfo``, ``DirectoryInfo``,
``FileStream``) have the members of .NET Framework 4.8 that the scripts use,
over the host's :class:`~wuacache_lab.windows.disk.HostDisk`; a failure is
the exception .NET's ``__Error.WinIOError`` makes of the Win32 error
(dotnet/referencesource, mscorlib/system/io/__error.cs): FileNotFoundException
"Could not find file 'X'.", DirectoryNotFoundException "Could not find a part
of the path 'X'.", UnauthorizedAccessException "Access to the path 'X' is
denied.", an IOException with the error's HRESULT otherwise. What a process
creates belongs to its default owner (:mod:`wuacache_lab.windows.security`).

The provider's side (what ``Get-Item``, ``Get-ChildItem``, ``New-Item``,
``Remove-Item``, ``Move-Item`` and ``Get-Content`` do with a path of drive C:)
is :class:`FileSystemProvider`; :mod:`wuacache_lab.windows.items` is the
cmdlets. ``Get-FileHash`` is here too: in Windows PowerShell 5.1 it is a
function of the Microsoft.PowerShell.Utility module over the file's bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from wuacache_lab.powershell.commands import CmdletCall, cmdlet
from wuacache_lab.powershell.conversions import convert_to, to_integer, to_string
from wuacache_lab.powershell.dotnet import constructor, dotnet_type, static
from wuacache_lab.powershell.errors import (
    OBJECT_NOT_FOUND,
    DotNetException,
    LabLimitation,
    PowerShellError,
    dotnet_error,
)
from wuacache_lab.powershell.reference import ReferenceContracts
from wuacache_lab.powershell.runtime import current_runtime
from wuacache_lab.powershell.values import DotNetType, EnumValue, Int64, PSObject, TypedArray, base_object
from wuacache_lab.windows.disk import CHUNK_SIZE, DiskWriter
from wuacache_lab.windows.errors import (
    E_ACCESSDENIED,
    ERROR_FILE_NOT_FOUND,
    ERROR_PATH_NOT_FOUND,
    ERROR_SHARING_VIOLATION,
    HResultError,
)
from wuacache_lab.windows.providers import FILESYSTEM, ProviderPath, normalized_path, resolve, with_notes
from wuacache_lab.windows.runtime import host_runtime
from wuacache_lab.windows.owners import default_owner, may_own
from wuacache_lab.windows.security import descriptor_of
from wuacache_lab.windows.servicinglog import is_held_open

if TYPE_CHECKING:
    from wuacache_lab.windows.disk import HostDisk
    from wuacache_lab.windows.runtime import HostRuntime

# System.IO.FileAttributes values.
DIRECTORY = 0x10
ARCHIVE = 0x20
REPARSE_POINT = 0x400

_BYTE_ORDER_MARKS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def io_error(error: HResultError, path: str) -> PowerShellError:
    """The exception .NET's WinIOError makes of a Win32 error on ``path``."""
    code = error.hresult & 0xFFFFFFFF
    if code == ERROR_FILE_NOT_FOUND:
        return dotnet_error("System.IO.FileNotFoundException", f"Could not find file '{path}'.", FileName=path)
    if code == ERROR_PATH_NOT_FOUND:
        return dotnet_error("System.IO.DirectoryNotFoundException", f"Could not find a part of the path '{path}'.")
    if code == E_ACCESSDENIED:
        return dotnet_error("System.UnauthorizedAccessException", f"Access to the path '{path}' is denied.")
    return dotnet_error("System.IO.IOException", error.message, hresult=code)


def dotnet_path(text: object) -> str:
    """A path as .NET's Path.GetFullPath makes it: relative to the process's current directory."""
    path = to_string(text).replace("/", "\\")
    if not path:
        raise dotnet_error("System.ArgumentException", "Empty path name is not legal.", ParamName="path")
    if path.startswith("\\\\") or (len(path) > 1 and path[1] == ":"):
        return normalized_path(path)
    return normalized_path(current_runtime().working_directory.rstrip("\\") + "\\" + path.lstrip("\\"))


def enum_argument(value: object, type_name: str) -> int:
    """A method argument of an enum type: a value of it, its name, or its number, as PowerShell converts them."""
    definition = ReferenceContracts.enum_definition(type_name)
    assert definition is not None, type_name
    converted = convert_to(base_object(value), DotNetType(type_name, enum=definition))
    assert isinstance(converted, EnumValue)
    return converted.value


def file_attributes(value: int) -> EnumValue:
    definition = ReferenceContracts.enum_definition("System.IO.FileAttributes")
    assert definition is not None
    return EnumValue(definition, value)


def filter_matches(pattern: str, name: str) -> bool:
    """A FileSystem provider's ``-Filter``, which Windows matches itself: ``*`` any characters, ``?`` one, case ignored."""
    expression = "".join(".*" if character == "*" else "." if character == "?" else re.escape(character) for character in pattern)
    return re.fullmatch(expression, name, re.IGNORECASE | re.DOTALL) is not None


def decoded(data: bytes, fallback: str = "utf-8") -> str:
    """Text as .NET's StreamReader reads it: the byte order mark decides, else ``fallback``."""
    for mark, encoding in _BYTE_ORDER_MARKS:
        if data.startswith(mark):
            return data[len(mark) :].decode(encoding, errors="replace")
    return data.decode(fallback, errors="replace")


# ---------------------------------------------------------------- FileSystemInfo, FileInfo, DirectoryInfo


@dotnet_type("System.IO.FileSystemInfo", base="System.MarshalByRefObject")
class FileSystemInfo:
    """A file or folder of drive C:, by its full path; ``ToString()`` gives the path it was made from."""

    def __init__(self, full_name: str, original_path: str | None = None) -> None:
        self._full_name = full_name
        self._original_path = original_path if original_path is not None else full_name

    @property
    def _disk(self) -> HostDisk:
        return host_runtime().host.disk

    @property
    def FullName(self) -> str:  # noqa: N802 - .NET member name
        return self._full_name

    @property
    def Name(self) -> str:  # noqa: N802
        return ProviderPath(FILESYSTEM, self._full_name).name

    @property
    def Extension(self) -> str:  # noqa: N802
        name = self.Name
        return name[name.rindex(".") :] if "." in name else ""

    @property
    def Attributes(self) -> EnumValue:  # noqa: N802
        disk = self._disk
        try:
            disk.security(self._full_name)
        except HResultError as error:
            raise io_error(error, self._full_name) from None
        value = DIRECTORY if disk.is_folder(self._full_name) else ARCHIVE
        return file_attributes(value | (REPARSE_POINT if disk.is_link(self._full_name) else 0))

    def ToString(self) -> str:  # noqa: N802
        return self._original_path


@dotnet_type("System.IO.FileInfo", base="System.IO.FileSystemInfo")
class FileInfo(FileSystemInfo):
    @property
    def Exists(self) -> bool:  # noqa: N802
        return self._disk.exists(self._full_name)

    @property
    def Length(self) -> Int64:  # noqa: N802
        if not self.Exists:
            raise dotnet_error("System.IO.FileNotFoundException", f"Could not find file '{self._full_name}'.", FileName=self._full_name)
        return Int64(self._disk.size(self._full_name))

    @property
    def DirectoryName(self) -> str:  # noqa: N802
        return ProviderPath(FILESYSTEM, self._full_name).parent

    @property
    def BaseName(self) -> str:  # noqa: N802 - the ScriptProperty of PowerShell's types.ps1xml
        name = self.Name
        return name[: -len(self.Extension)] if self.Extension else name

    @property
    def VersionInfo(self) -> object:  # noqa: N802 - the ScriptProperty of PowerShell's types.ps1xml
        """``[System.Diagnostics.FileVersionInfo]::GetVersionInfo($this.FullName)``."""
        from wuacache_lab.powershell.dotnet import TypeRegistry

        registry = TypeRegistry()
        return registry.invoke_static(registry.resolve("System.Diagnostics.FileVersionInfo"), "GetVersionInfo", [self._full_name])


@dotnet_type("System.IO.DirectoryInfo", base="System.IO.FileSystemInfo")
class DirectoryInfo(FileSystemInfo):
    @property
    def Exists(self) -> bool:  # noqa: N802
        return self._disk.is_folder(self._full_name)

    @property
    def BaseName(self) -> str:  # noqa: N802 - the ScriptProperty of PowerShell's types.ps1xml
        return self.Name


def item_at(disk: HostDisk, path: str, original_path: str | None = None) -> FileInfo | DirectoryInfo | None:
    """The file or folder at ``path``, None when there is nothing."""
    if disk.is_folder(path):
        return DirectoryInfo(path, original_path)
    if disk.exists(path):
        return FileInfo(path, original_path)
    return None


# ---------------------------------------------------------------- Stream, FileStream


@dotnet_type("System.IO.Stream", base="System.MarshalByRefObject", interfaces=("System.IDisposable",))
class Stream:
    """A stream: ``CopyTo`` moves what ``read_chunk`` gives into the destination's ``Write``.

    A stream of the emulated Windows subclasses it and gives ``read_chunk``
    (what arrives next, empty at the end) and ``close``; the process can be
    ended between two chunks, as a blocking read is a point where Windows
    ends it.
    """

    _closed = False

    def read_chunk(self) -> bytes:
        raise LabLimitation(f"The lab does not read from a {type(self).__name__}.")

    def write_chunk(self, chunk: bytes) -> None:
        raise LabLimitation(f"The lab does not write to a {type(self).__name__}.")

    def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise dotnet_error("System.ObjectDisposedException", "Cannot access a closed Stream.", ObjectName="")

    def CopyTo(self, destination: object, bufferSize: object = None) -> None:  # noqa: N802, N803 - .NET names
        self._check_open()
        target = base_object(destination)
        if not isinstance(target, Stream):
            raise dotnet_error("System.ArgumentNullException", "Value cannot be null.\r\nParameter name: destination", ParamName="destination")
        runtime = current_runtime()
        while True:
            runtime.check_alive()
            chunk = self.read_chunk()
            if not chunk:
                return
            target.Write(chunk, 0, len(chunk))

    def Write(self, buffer: object, offset: object, count: object) -> None:  # noqa: N802
        self._check_open()
        data = bytes(buffer)  # type: ignore[arg-type]
        start = int(offset)  # type: ignore[call-overload]
        self.write_chunk(data[start : start + int(count)])  # type: ignore[call-overload]

    def Flush(self) -> None:  # noqa: N802
        self._check_open()

    def Close(self) -> None:  # noqa: N802
        self.Dispose()

    def Dispose(self) -> None:  # noqa: N802
        if not self._closed:
            self.close()


@dotnet_type("System.IO.MemoryStream", base="System.IO.Stream")
class MemoryStream(Stream):
    """A stream over a byte array, read from its start (``MemoryStream(Byte[])``)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._position = 0

    @constructor
    def new(_: DotNetType, buffer: object) -> MemoryStream:
        if buffer is None:
            raise dotnet_error("System.ArgumentNullException", "Buffer cannot be null.\r\nParameter name: buffer", ParamName="buffer")
        if not isinstance(buffer, TypedArray) or buffer.element_type != "System.Byte":
            raise LabLimitation("The lab's MemoryStream is made from a Byte[] only.")
        return MemoryStream(bytes(buffer))

    def read_chunk(self) -> bytes:
        self._check_open()
        chunk = self._data[self._position : self._position + CHUNK_SIZE]
        self._position += len(chunk)
        return chunk


@dotnet_type("System.IO.FileStream", base="System.IO.Stream")
class FileStream(Stream):
    """A file of drive C: open for writing (the modes ``File.Open`` takes with FileAccess.Write), or
    for reading (FileMode.Open with FileAccess.Read)."""

    def __init__(self, path: str, *, writer: DiskWriter | None = None, start: int = 0, reader: BinaryIO | None = None) -> None:
        self._path = path
        self._writer = writer
        self._start = start
        self._reader = reader

    def write_chunk(self, chunk: bytes) -> None:
        if self._writer is None:
            raise dotnet_error("System.NotSupportedException", "Stream does not support writing.")
        try:
            self._writer.write(chunk)
        except HResultError as error:
            raise io_error(error, self._path) from None

    def read_chunk(self) -> bytes:
        return self._reading().read(CHUNK_SIZE)

    def close(self) -> None:
        super().close()
        if self._writer is not None:
            self._writer.close()
        if self._reader is not None:
            self._reader.close()

    def _reading(self) -> BinaryIO:
        self._check_open()
        if self._reader is None:
            raise dotnet_error("System.NotSupportedException", "Stream does not support reading.")
        return self._reader

    @property
    def Name(self) -> str:  # noqa: N802
        return self._path

    @property
    def Length(self) -> Int64:  # noqa: N802
        self._check_open()
        if self._reader is not None:
            return Int64(os.fstat(self._reader.fileno()).st_size)
        return Int64(self._start + self._writer.written)  # type: ignore[union-attr]

    @property
    def Position(self) -> Int64:  # noqa: N802
        return Int64(self._reading().tell())

    @Position.setter
    def Position(self, value: object) -> None:  # noqa: N802
        position = to_integer(value, "System.Int64")
        if position < 0:
            raise dotnet_error(
                "System.ArgumentOutOfRangeException", "Non-negative number required.\r\nParameter name: value", ParamName="value"
            )
        self._reading().seek(position)

    @property
    def CanWrite(self) -> bool:  # noqa: N802
        return self._writer is not None and not self._closed

    @property
    def CanRead(self) -> bool:  # noqa: N802
        return self._reader is not None and not self._closed

    @property
    def CanSeek(self) -> bool:  # noqa: N802
        return self._reader is not None and not self._closed


# ---------------------------------------------------------------- File, Directory

# System.IO.FileMode.Open, System.IO.FileAccess.Read, System.IO.FileShare.Read and Write.
OPEN = 3
READ = 1
SHARE_READ = 1
SHARE_WRITE = 2


def _check_sharing(path: str, share: int) -> None:
    """Another process holding the file open for writing lets in only a reader that shares write
    access: the FileShare of an open must allow what others opened it for (FileShare,
    dotnet/dotnet-api-docs xml/System.IO/FileShare.xml; CreateFile's dwShareMode)."""
    if is_held_open(path) and not share & SHARE_WRITE:
        raise HResultError(
            ERROR_SHARING_VIOLATION, f"The process cannot access the file '{path}' because it is being used by another process."
        )


def _new_file_owner(runtime: HostRuntime) -> str:
    return default_owner(runtime.host, runtime.logon)


@dotnet_type("System.IO.File")
class File:
    @static
    def WriteAllText(path: object, contents: object) -> None:  # noqa: N802
        """UTF-8 without a byte order mark, replacing the file."""
        runtime = host_runtime()
        full = dotnet_path(path)
        try:
            runtime.host.disk.write(full, [to_string(contents).encode("utf-8")], owner=_new_file_owner(runtime))
        except HResultError as error:
            raise io_error(error, full) from None

    @static
    def ReadAllText(path: object) -> str:  # noqa: N802
        """The text of a file, decoded as its byte order mark says, UTF-8 without one; opened with FileShare.Read."""
        runtime = host_runtime()
        full = dotnet_path(path)
        try:
            _check_sharing(full, SHARE_READ)
            return decoded(b"".join(runtime.host.disk.read(full)))
        except HResultError as error:
            raise io_error(error, full) from None

    @static
    def Open(path: object, mode: object, access: object = None, share: object = None) -> FileStream:  # noqa: N802
        """FileMode Create, CreateNew or Append, for writing; FileMode Open with FileAccess Read, for reading.

        Without ``share``, File.Open shares nothing (FileShare.None).
        """
        runtime = host_runtime()
        full = dotnet_path(path)
        file_mode = enum_argument(mode, "System.IO.FileMode")
        file_access = enum_argument(access, "System.IO.FileAccess") if access is not None else 3
        if file_mode == OPEN and file_access == READ:
            try:
                _check_sharing(full, enum_argument(share, "System.IO.FileShare") if share is not None else 0)
                if not runtime.host.disk.exists(full):
                    raise HResultError(ERROR_FILE_NOT_FOUND)
                reader = open(runtime.host.disk.path(full), "rb")  # noqa: SIM115 - closed with the stream
            except HResultError as error:
                raise io_error(error, full) from None
            return FileStream(full, reader=reader)
        names = {1: "CreateNew", 2: "Create", 6: "Append"}
        if file_mode not in names or file_access != 2:
            raise LabLimitation(
                "The lab opens files for writing (File.Open with FileMode Create, CreateNew or Append and FileAccess Write) "
                "or for reading (FileMode Open and FileAccess Read) only."
            )
        disk = runtime.host.disk
        if file_mode == 1 and (disk.exists(full) or disk.is_folder(full)):
            raise dotnet_error("System.IO.IOException", f"The file '{full}' already exists.", hresult=0x80070050)
        start = disk.size(full) if file_mode == 6 and disk.exists(full) else 0
        try:
            writer = disk.open_writer(full, append=file_mode == 6, owner=_new_file_owner(runtime))
        except HResultError as error:
            raise io_error(error, full) from None
        return FileStream(full, writer=writer, start=start)


@dotnet_type("System.IO.Directory")
class Directory:
    @static
    def CreateDirectory(path: object, directorySecurity: object = None) -> DirectoryInfo:  # noqa: N802, N803
        """The folder and its missing parents; given a DirectorySecurity, each folder it creates gets it at once.

        A folder that exists already is returned as it is, its security untouched; a file in its place
        fails with ERROR_ALREADY_EXISTS (dotnet/dotnet-api-docs, xml/System.IO/Directory.xml, CreateDirectory).
        """
        runtime = host_runtime()
        full = dotnet_path(path)
        disk = runtime.host.disk
        descriptor = descriptor_of(directorySecurity, "Directory.CreateDirectory") if directorySecurity is not None else None
        if descriptor is not None and not may_own(runtime.logon, descriptor.owner):
            # CreateDirectory fails with ERROR_INVALID_OWNER, which WinIOError makes an IOException.
            raise dotnet_error("System.IO.IOException", "This security ID may not be assigned as the owner of this object.", hresult=0x8007051B)
        if disk.is_folder(full):
            return DirectoryInfo(full)
        if disk.exists(full):
            raise dotnet_error("System.IO.IOException", f"Cannot create \"{full}\" because a file or directory with the same name already exists.", hresult=0x800700B7)
        try:
            created = _missing_folders(disk, full)
            disk.make_dirs(full, owner=_new_file_owner(runtime))
        except HResultError as error:
            raise io_error(error, full) from None
        if descriptor is not None:
            for folder in created:
                disk.set_security(folder, descriptor)
        return DirectoryInfo(full)


def _missing_folders(disk: HostDisk, path: str) -> list[str]:
    """The folders of ``path`` that do not exist yet, the outermost first."""
    missing: list[str] = []
    current = ProviderPath(FILESYSTEM, path)
    while current.path and not disk.is_folder(current.path):
        missing.insert(0, current.path)
        if not current.parent:
            break
        current = ProviderPath(FILESYSTEM, current.parent)
    return missing


# ---------------------------------------------------------------- the FileSystem provider


class FileSystemProvider:
    """What the item cmdlets do with paths of drive C: for one process."""

    def __init__(self, runtime: HostRuntime) -> None:
        self.runtime = runtime
        self.disk = runtime.host.disk

    def item(self, location: ProviderPath) -> PSObject | None:
        """The file or folder at ``location`` with the provider's notes; None when there is nothing."""
        try:
            found = item_at(self.disk, location.path)
        except HResultError:
            return None
        if found is None:
            return None
        return with_notes(found, location, isinstance(found, DirectoryInfo))

    def exists(self, location: ProviderPath, path_type: str) -> bool:
        """Test-Path: ``Any``, ``Container`` or ``Leaf``."""
        try:
            folder, file = self.disk.is_folder(location.path), self.disk.exists(location.path)
        except HResultError:
            return False
        return {"Any": folder or file, "Container": folder, "Leaf": file}[path_type]

    def children(self, location: ProviderPath, *, pattern: str | None, recurse: bool, files: bool, folders: bool) -> Iterator[PSObject]:
        """Get-ChildItem of a folder: its folders, then its files, each in name order, then what each folder holds."""
        names = self.disk.children(location.path)
        entries = [(name, self.disk.is_folder(location.child(name).path)) for name in names]
        for want_folders in (True, False):
            for name, is_folder in entries:
                if is_folder != want_folders or (pattern is not None and not filter_matches(pattern, name)):
                    continue
                if (files and is_folder) or (folders and not is_folder):
                    continue
                child = location.child(name)
                item: FileSystemInfo = DirectoryInfo(child.path, name) if is_folder else FileInfo(child.path, name)
                yield with_notes(item, child, is_folder)
        if recurse:
            for name, is_folder in entries:
                child = location.child(name)
                if is_folder and not self.disk.is_link(child.path):
                    yield from self.children(child, pattern=pattern, recurse=True, files=files, folders=folders)

    def new_directory(self, location: ProviderPath) -> PSObject:
        """A folder and its missing parents, owned by the process's default owner."""
        self.disk.make_dirs(location.path, owner=default_owner(self.runtime.host, self.runtime.logon))
        return with_notes(DirectoryInfo(location.path), location, True)

    def remove(self, location: ProviderPath, recurse: bool) -> None:
        if self.disk.is_folder(location.path):
            if self.disk.children(location.path) and not recurse:
                raise LabLimitation(
                    f"Remove-Item would ask for confirmation to remove {location.path}, which has children, without -Recurse."
                )
            self.disk.remove_tree(location.path)
        else:
            self.disk.remove(location.path)

    def move(self, location: ProviderPath, destination: ProviderPath, force: bool) -> ProviderPath:
        """Rename or move an item; into a folder that ``destination`` names, under its own name. FileInfo.MoveTo
        replaces no file, and the FileSystem provider deletes one first only with ``-Force`` (PowerShell/PowerShell,
        src/System.Management.Automation/namespaces/FileSystemProvider.cs, MoveFileInfoItem)."""
        target = destination.child(location.name) if self.disk.is_folder(destination.path) else destination
        self.disk.move(location.path, target.path, replace=force)
        return target

    def content(self, location: ProviderPath, encoding: str | None) -> str:
        """The file's text: its byte order mark decides, else the encoding given, else the system's ANSI code page."""
        data = b"".join(self.disk.read(location.path))
        fallback = {"utf8": "utf-8", "unicode": "utf-16-le", "bigendianunicode": "utf-16-be", "ascii": "ascii", "utf32": "utf-32-le"}
        key = (encoding or "default").casefold()
        if key not in fallback and key not in ("default", "string", "unknown", "oem"):
            raise LabLimitation(f"The lab's Get-Content does not read the {encoding} encoding.")
        return decoded(data, fallback.get(key, "cp1252" if key != "oem" else "cp437"))


# ---------------------------------------------------------------- Get-FileHash


@cmdlet("Get-FileHash")
def get_file_hash(call: CmdletCall) -> Iterable[object]:
    """An object with ``Algorithm``, ``Hash`` (upper-case hexadecimal) and ``Path``, for each file."""
    runtime = host_runtime()
    for parameters in call.records:
        algorithm = to_string(parameters.get("Algorithm", "SHA256")).upper()
        if algorithm not in ("SHA1", "SHA256", "SHA384", "SHA512", "MD5"):
            raise LabLimitation(f"The lab's Get-FileHash does not compute {algorithm}.")
        if call.parameter_set == "Stream":
            # What remains of the stream, from its position; the result has no Path.
            stream = base_object(parameters["InputStream"])
            if not isinstance(stream, Stream):
                raise LabLimitation("The lab's Get-FileHash reads the lab's streams only.")
            digest = hashlib.new(algorithm.replace("SHA", "sha").lower())
            while chunk := stream.read_chunk():
                runtime.check_alive()
                digest.update(chunk)
            yield PSObject.custom([("Algorithm", algorithm), ("Hash", digest.hexdigest().upper()), ("Path", None)])
            continue
        literal = "LiteralPath" in parameters
        for text in parameters["LiteralPath" if literal else "Path"]:  # type: ignore[union-attr]
            location = resolve(to_string(text), runtime.working_directory, literal=literal)
            if location.provider != FILESYSTEM or not runtime.host.disk.exists(location.path):
                call.write_error(
                    DotNetException("System.Management.Automation.ItemNotFoundException", f"Cannot find path '{to_string(text)}' because it does not exist."),
                    "PathNotFound",
                    OBJECT_NOT_FOUND,
                    to_string(text),
                )
                continue
            digest = hashlib.new(algorithm.replace("SHA", "sha").lower())
            for chunk in runtime.host.disk.read(location.path):
                runtime.check_alive()
                digest.update(chunk)
            yield PSObject.custom([("Algorithm", algorithm), ("Hash", digest.hexdigest().upper()), ("Path", location.path)])

