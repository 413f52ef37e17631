"""The system drive of an emulated host.

Drive ``C:`` is a folder on the lab machine (``C:\\ProgramData\\x`` is
``<root>/C/ProgramData/x``). Names are looked up case-insensitively as NTFS
does, and the drive has the capacity of the host's profile: what the host
writes uses up its free space, and the ``disk_full`` fault makes every write
fail as a full disk would. Files and folders carry the part of their security
descriptor that decides who may plant files in them: their owner and
explicit full-control grants (:class:`SecurityDescriptor`), read and written
as SDDL strings. An item the lab records no owner for is one of Windows' own,
owned by SYSTEM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path

from wuacache_lab.windows.errors import (
    E_ACCESSDENIED,
    ERROR_ALREADY_EXISTS,
    ERROR_DISK_FULL,
    ERROR_FILE_NOT_FOUND,
    ERROR_PATH_NOT_FOUND,
    ERROR_SHARING_VIOLATION,
    HResultError,
)
from wuacache_lab.windows.faults import HostFaults

SYSTEM_DRIVE = "C:"
# What Explorer shows on a disk the disk_full fault has filled.
DISK_FULL_FREE_BYTES = 4096
CHUNK_SIZE = 1024 * 1024

# Well-known SIDs, and the aliases SDDL gives them ("SID Strings", MicrosoftDocs/win32
# desktop-src/SecAuthZ/sid-strings.md).
SYSTEM_SID = "S-1-5-18"
ADMINISTRATORS_SID = "S-1-5-32-544"
_SDDL_ALIASES = {SYSTEM_SID: "SY", ADMINISTRATORS_SID: "BA"}

# The forms of "Security Descriptor String Format" and "ACE Strings" (desktop-src/SecAuthZ/) a
# folder's security takes here: an owner, an optional group, the DACL's flags in the order Windows
# writes them (P, AR, AI), and full-control ACEs inherited by subfolders and files.
_SDDL_SID = r"[A-Z]{2}|S-1(?:-[0-9]+)+"
_SDDL = re.compile(rf"O:(?P<owner>{_SDDL_SID})(?:G:(?:{_SDDL_SID}))?D:(?P<protected>P?)(?:AR)?(?:AI)?(?P<aces>(?:\([^)]*\))*)")
_FULL_CONTROL_ACE = re.compile(rf"\(A;OICI;FA;;;(?P<sid>{_SDDL_SID})\)")

# Windows' own files that scripts and programs find on the drive: the Update Agent's
# library, whose version resource the lab models, and the programs the lab runs. Their
# content is not modelled.
WINDOWS_FILES = (
    "Windows/System32/wuapi.dll",
    "Windows/System32/dism.exe",
    "Windows/System32/HOSTNAME.EXE",
    "Windows/System32/shutdown.exe",
    "Windows/System32/wusa.exe",
    "Windows/System32/WindowsPowerShell/v1.0/powershell.exe",
)

_DRIVE_PATH = re.compile(r"^([A-Za-z]):[\\/]*(.*)$", re.DOTALL)


def is_unc(windows_path: str) -> bool:
    return windows_path.startswith(("\\\\", "//"))


@dataclass(frozen=True)
class SecurityDescriptor:
    """An item's owner and access, as ``Get-Acl`` reads and ``Set-Acl`` writes them."""

    owner: str  # SID
    # The DACL's P flag (SE_DACL_PROTECTED): nothing inherited from the parent.
    protected: bool = False
    # SIDs given full control explicitly, inherited by what a folder holds.
    full_control: tuple[str, ...] = ()

    @property
    def sddl(self) -> str:
        """``(Get-Acl).Sddl``: the owner and the DACL, auto-inherited (AI) as NTFS
        items' are, the ACEs inherited from the parent left out."""
        aces = "".join(f"(A;OICI;FA;;;{_sddl_sid(sid)})" for sid in self.full_control)
        return f"O:{_sddl_sid(self.owner)}D:{'P' if self.protected else ''}AI{aces}"

    @classmethod
    def from_sddl(cls, sddl: str) -> SecurityDescriptor:
        """``ObjectSecurity.SetSecurityDescriptorSddlForm`` for the forms the
        emulated disk models; any other is refused as such."""
        match = _SDDL.fullmatch(sddl)
        aces = _FULL_CONTROL_ACE.findall(match["aces"]) if match else []
        if match is None or "".join(f"(A;OICI;FA;;;{sid})" for sid in aces) != match["aces"]:
            raise NotImplementedError(f"the emulated disk models no security descriptor {sddl!r}")
        return cls(
            owner=_sid(match["owner"]),
            protected=bool(match["protected"]),
            full_control=tuple(_sid(sid) for sid in aces),
        )


def _sddl_sid(sid: str) -> str:
    return _SDDL_ALIASES.get(sid, sid)


def _sid(sddl_sid: str) -> str:
    if sddl_sid.startswith("S-"):
        return sddl_sid
    for sid, alias in _SDDL_ALIASES.items():
        if alias == sddl_sid:
            return sid
    raise NotImplementedError(f"the emulated disk knows no SID alias {sddl_sid}")


# What Windows' own files and folders (ProgramData, Windows...) are: owned by SYSTEM.
SYSTEM_ITEM = SecurityDescriptor(owner=SYSTEM_SID)


class DiskWriter:
    """A file open for writing: what it takes uses up the drive's free space,
    and a write that does not fit fails with ERROR_DISK_FULL, leaving what was
    written before it, as Windows does."""

    def __init__(self, disk: HostDisk, path: Path, *, append: bool) -> None:
        self._disk = disk
        self._room = disk.free_bytes()
        self._stream = open(path, "ab" if append else "wb")  # noqa: SIM115 - closed by close()
        self.written = 0

    def write(self, chunk: bytes) -> None:
        if self._disk.full() or self.written + len(chunk) > self._room:
            raise HResultError(ERROR_DISK_FULL)
        self._stream.write(chunk)
        self.written += len(chunk)

    def tell(self) -> int:
        return self._stream.tell()

    def close(self) -> None:
        self._stream.close()


class HostDisk:
    def __init__(self, root: Path, *, size_bytes: int, os_used_bytes: int, faults: HostFaults) -> None:
        self.root = root
        self.size_bytes = size_bytes
        self._os_used_bytes = os_used_bytes
        self._faults = faults
        # Outside the drive, so that it takes no room on it.
        self._security_path = root.with_name(root.name + "-security.json")
        self._security_lock = threading.Lock()
        for folder in ("Windows/SoftwareDistribution", "Windows/Temp", "ProgramData", "Users"):
            (root / "C" / folder).mkdir(parents=True, exist_ok=True)
        for name in WINDOWS_FILES:
            path = root / "C" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()

    def path(self, windows_path: str) -> Path:
        """Where a Windows path of drive C: lives; components that exist are
        matched case-insensitively, the others kept as given."""
        match = _DRIVE_PATH.match(windows_path)
        if match is None or match.group(1).upper() + ":" != SYSTEM_DRIVE:
            raise HResultError(ERROR_PATH_NOT_FOUND)
        resolved = self.root / "C"
        for part in re.split(r"[\\/]+", match.group(2)):
            if part in ("", "."):
                continue
            if part == "..":
                resolved = resolved.parent if resolved != self.root / "C" else resolved
                continue
            resolved = resolved / _existing_name(resolved, part)
        return resolved

    def free_bytes(self) -> int:
        if self.full():
            return DISK_FULL_FREE_BYTES
        return max(0, self.size_bytes - self._os_used_bytes - self._written_bytes())

    def full(self) -> bool:
        """The ``disk_full`` fault: every write fails."""
        return self._faults.disk_full()

    def exists(self, windows_path: str) -> bool:
        return self.path(windows_path).is_file()

    def is_folder(self, windows_path: str) -> bool:
        return self.path(windows_path).is_dir()

    def is_link(self, windows_path: str) -> bool:
        """A reparse point: a link planted in the drive (a symbolic link on the lab machine)."""
        return self.path(windows_path).is_symlink()

    def children(self, windows_path: str) -> list[str]:
        """The names of what a folder holds, in NTFS's order (case-insensitive)."""
        return sorted((child.name for child in self.path(windows_path).iterdir()), key=str.upper)

    def make_dirs(self, windows_path: str, owner: str = SYSTEM_SID) -> None:
        """Create a folder and its missing parents; those it creates belong to ``owner``."""
        path = self.path(windows_path)
        missing = [folder for folder in (path, *path.parents) if not folder.exists()]
        path.mkdir(parents=True, exist_ok=True)
        self._record(missing, SecurityDescriptor(owner))

    def security(self, windows_path: str) -> SecurityDescriptor:
        """The security descriptor of a file or folder."""
        path = self._existing(windows_path)
        with self._security_lock:
            recorded = self._read_security().get(self._security_key(path))
        if recorded is None:
            return SYSTEM_ITEM
        return SecurityDescriptor(recorded["owner"], recorded["protected"], tuple(recorded["full_control"]))

    def set_security(self, windows_path: str, security: SecurityDescriptor) -> None:
        self._record([self._existing(windows_path)], security)

    def read(self, windows_path: str) -> Iterator[bytes]:
        path = self.path(windows_path)
        if not path.is_file():
            raise HResultError(ERROR_FILE_NOT_FOUND)
        with open(path, "rb") as stream:
            while chunk := stream.read(CHUNK_SIZE):
                yield chunk

    def open_writer(self, windows_path: str, *, append: bool = False, owner: str = SYSTEM_SID) -> DiskWriter:
        """Open a file whose folder exists for writing (or appending); a file it
        creates belongs to ``owner``."""
        path = self.path(windows_path)
        if not path.parent.is_dir():
            raise HResultError(ERROR_PATH_NOT_FOUND)
        if path.is_dir():
            raise HResultError(E_ACCESSDENIED)
        created = not path.exists()
        writer = DiskWriter(self, path, append=append)
        if created:
            self._record([path], SecurityDescriptor(owner))
        return writer

    def write(self, windows_path: str, chunks: Iterable[bytes], *, append: bool = False, owner: str = SYSTEM_SID) -> int:
        """Write (or append) ``chunks`` to a file whose folder exists; returns
        the bytes written (see :class:`DiskWriter`)."""
        writer = self.open_writer(windows_path, append=append, owner=owner)
        try:
            for chunk in chunks:
                writer.write(chunk)
        finally:
            writer.close()
        return writer.written

    def copy(self, source: str, destination: str) -> int:
        return self.write(destination, self.read(source))

    def move(self, source: str, destination: str, *, replace: bool = True) -> None:
        """Rename a file or folder, replacing a destination file only when ``replace``; it keeps its security.

        Without ``replace`` the rename fails with ERROR_ALREADY_EXISTS when the destination exists, in the
        same step, as MoveFileEx without MOVEFILE_REPLACE_EXISTING does (MicrosoftDocs/sdk-api
        sdk-api-src/content/winbase/nf-winbase-movefileexw.md): of two renames onto one name, one fails.
        """
        origin, target = self.path(source), self.path(destination)
        # Renaming needs delete access, which a file open without FILE_SHARE_DELETE refuses (the dwShareMode
        # of CreateFile, MicrosoftDocs/sdk-api sdk-api-src/content/fileapi/nf-fileapi-createfilew.md).
        if origin in self._in_use():
            raise self._sharing_violation(origin)
        if replace:
            origin.replace(target)
        elif origin.is_dir():
            with self._security_lock:
                if target.exists():
                    raise HResultError(ERROR_ALREADY_EXISTS)
                origin.rename(target)
        else:
            try:
                os.link(origin, target)
            except FileExistsError:
                raise HResultError(ERROR_ALREADY_EXISTS) from None
            origin.unlink()
        with self._security_lock:
            table = self._read_security()
            moved, renamed = self._security_key(origin), self._security_key(target)
            table = {key: value for key, value in table.items() if key != renamed and not key.startswith(renamed + "/")}
            for key in [key for key in table if key == moved or key.startswith(moved + "/")]:
                table[renamed + key[len(moved) :]] = table.pop(key)
            self._write_security(table)

    def remove(self, windows_path: str) -> None:
        path = self.path(windows_path)
        if path in self._in_use():
            raise self._sharing_violation(path)
        path.unlink(missing_ok=True)
        self._forget(path)

    def remove_tree(self, windows_path: str) -> None:
        """``Remove-Item -Recurse -Force``: a folder and everything in it. A file in use
        stays, with the folders that hold it, and the rest goes."""
        path = self.path(windows_path)
        if not path.is_dir():
            return
        in_use = self._in_use()
        kept = [file for file in path.rglob("*") if file in in_use]
        if not kept:
            shutil.rmtree(path)
            self._forget(path)
            return
        for folder, folders, files in os.walk(path, topdown=False):
            for name in files:
                file = Path(folder) / name
                if file not in in_use:
                    file.unlink()
                    self._forget(file)
            for name in folders:
                with suppress(OSError):  # a folder that still holds a file in use
                    (Path(folder) / name).rmdir()
                    self._forget(Path(folder) / name)
        raise self._sharing_violation(kept[0])

    def _in_use(self) -> set[Path]:
        """The files of the ``file_in_use`` fault."""
        return {self.path(windows_path) for windows_path in self._faults.files_in_use()}

    def _sharing_violation(self, file: Path) -> HResultError:
        """DeleteFile fails on a file that another process has open without sharing its deletion
        (MicrosoftDocs/sdk-api sdk-api-src/content/fileapi/nf-fileapi-deletefilew.md), with the text
        .NET's WinIOError gives ERROR_SHARING_VIOLATION."""
        name = "C:\\" + str(file.relative_to(self.root / "C")).replace("/", "\\")
        return HResultError(ERROR_SHARING_VIOLATION, f"The process cannot access the file '{name}' because it is being used by another process.")

    def size(self, windows_path: str) -> int:
        return self.path(windows_path).stat().st_size

    def _existing(self, windows_path: str) -> Path:
        path = self.path(windows_path)
        if not path.exists():
            raise HResultError(ERROR_FILE_NOT_FOUND if path.parent.is_dir() else ERROR_PATH_NOT_FOUND)
        return path

    def _record(self, paths: Iterable[Path], security: SecurityDescriptor) -> None:
        with self._security_lock:
            table = self._read_security()
            for path in paths:
                table[self._security_key(path)] = asdict(security)
            self._write_security(table)

    def _forget(self, path: Path) -> None:
        """Drop the security of an item gone, and of everything it held."""
        removed = self._security_key(path)
        with self._security_lock:
            table = self._read_security()
            kept = {key: value for key, value in table.items() if key != removed and not key.startswith(removed + "/")}
            if len(kept) != len(table):
                self._write_security(kept)

    def _security_key(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix().casefold()

    def _read_security(self) -> dict[str, dict]:
        try:
            return json.loads(self._security_path.read_text())
        except FileNotFoundError:
            return {}

    def _write_security(self, table: dict[str, dict]) -> None:
        temporary = self._security_path.with_name(self._security_path.name + ".tmp")
        temporary.write_text(json.dumps(table, indent=1))
        os.replace(temporary, self._security_path)

    def _written_bytes(self) -> int:
        total = 0
        for folder, _, files in os.walk(self.root):
            for name in files:
                with suppress(FileNotFoundError):  # removed by a concurrent command
                    total += os.path.getsize(os.path.join(folder, name))
        return total


def _existing_name(folder: Path, name: str) -> str:
    if (folder / name).exists() or not folder.is_dir():
        return name
    wanted = name.casefold()
    for child in folder.iterdir():
        if child.name.casefold() == wanted:
            return child.name
    return name
