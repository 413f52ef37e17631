"""A streaming writer for Microsoft Cabinet (CAB) files, per [MS-CAB].

Python has no CAB writer that streams: ``cabarchive`` keeps every member in
memory, which a catalog of a few hundred MB and hundreds of thousands of
members cannot afford. This writer compresses members into 32 KiB CFDATA
blocks as they arrive, spools the blocks to a temporary file next to the
destination, and writes the header and the CFFILE table once every member is
known (they precede the data in the format).

Each cabinet holds a single folder, so one cabinet is limited to 65,535 files
and 65,535 data blocks (2 GiB of uncompressed data): the catalog never comes
close to the second limit and splits its fragments across cabinets to stay
under the first.
"""

from __future__ import annotations

import enum
import os
import struct
import tempfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

MAX_FILES = 65_535
MAX_BLOCKS = 65_535
BLOCK_SIZE = 32_768
MAX_NAME_BYTES = 255
_MAX_U32 = 0xFFFF_FFFF

_CFHEADER = struct.Struct("<4sIIIIIBBHHHHH")
_CFFOLDER = struct.Struct("<IHH")
_CFFILE = struct.Struct("<IIHHHH")
_CFDATA = struct.Struct("<IHH")

_ATTRIBUTE_ARCHIVE = 0x20
_ATTRIBUTE_NAME_IS_UTF8 = 0x80
_READ_CHUNK = 1 << 20


class Compression(enum.IntEnum):
    """CFFOLDER.typeCompress values this writer produces."""

    NONE = 0
    MSZIP = 1


class CabLimitError(ValueError):
    """The input does not fit in one cabinet."""


@dataclass(frozen=True)
class _FileEntry:
    name: bytes
    size: int
    offset: int
    dos_date: int
    dos_time: int
    attributes: int


def checksum(data: bytes, seed: int = 0) -> int:
    """The [MS-CAB] CFDATA checksum of ``data``, continuing from ``seed``.

    The checksum XORs the little-endian 32-bit words of the data, then the
    trailing 1-3 bytes packed most significant first (as libmspack and
    Microsoft's cabinet.dll do).
    """
    words = len(data) // 4
    # XOR all words at once: read them as one little-endian integer and fold
    # its upper half onto its lower half until one word remains.
    value = int.from_bytes(data[: words * 4], "little")
    while words > 1:
        half = (words + 1) // 2
        value = (value & ((1 << (half * 32)) - 1)) ^ (value >> (half * 32))
        words = half
    tail = 0
    for byte in data[len(data) // 4 * 4 :]:
        tail = (tail << 8) | byte
    return seed ^ value ^ tail


def _dos_date_time(moment: datetime) -> tuple[int, int]:
    if not 1980 <= moment.year <= 2107:
        raise ValueError(f"CAB timestamps cover 1980-2107, not {moment.year}")
    date = ((moment.year - 1980) << 9) | (moment.month << 5) | moment.day
    time = (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2)
    return date, time


def _encode_name(name: str) -> tuple[bytes, int]:
    if not name or "\0" in name:
        raise ValueError(f"invalid CAB member name {name!r}")
    try:
        encoded, attributes = name.encode("ascii"), _ATTRIBUTE_ARCHIVE
    except UnicodeEncodeError:
        encoded, attributes = name.encode("utf-8"), _ATTRIBUTE_ARCHIVE | _ATTRIBUTE_NAME_IS_UTF8
    if len(encoded) > MAX_NAME_BYTES:
        raise ValueError(f"CAB member name longer than {MAX_NAME_BYTES} bytes: {name!r}")
    return encoded, attributes


class MemberWriter:
    """A write-only file object for one member, from :meth:`CabWriter.open`."""

    def __init__(self, cab: CabWriter, name: bytes, attributes: int, modified: datetime) -> None:
        self._cab = cab
        self._name = name
        self._attributes = attributes
        self._modified = modified
        self._offset = cab._folder_size
        self.closed = False

    def write(self, data: bytes) -> int:
        if self.closed:
            raise ValueError("write to a closed CAB member")
        self._cab._append(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._cab._finish_member(self._name, self._offset, self._attributes, self._modified)

    def __enter__(self) -> MemberWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class CabWriter:
    """Write one cabinet file, member by member.

    Use as a context manager; the cabinet appears at ``path`` (atomically)
    when the ``with`` block ends without error::

        with CabWriter(path, Compression.MSZIP) as cab:
            cab.add("index.xml", index_bytes, modified=published)
            cab.add_path("package.cab", package_cab, modified=published)

    Member names are stored as given: Microsoft's catalogs use backslashes
    (``c\\123456``), which extractors map to directories.
    """

    def __init__(self, path: str | os.PathLike[str], compression: Compression = Compression.MSZIP) -> None:
        self.path = Path(path)
        self.compression = compression
        self._spool: BinaryIO = tempfile.TemporaryFile(dir=self.path.parent, prefix=".cab-spool-")
        self._files: list[_FileEntry] = []
        self._pending = bytearray()
        self._folder_size = 0
        self._blocks = 0
        self._member: MemberWriter | None = None
        self._closed = False

    def __enter__(self) -> CabWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @property
    def file_count(self) -> int:
        return len(self._files)

    def open(self, name: str, *, modified: datetime) -> MemberWriter:
        """Start a member whose content the caller writes piece by piece."""
        if self._closed:
            raise ValueError("the cabinet is already closed")
        if self._member is not None and not self._member.closed:
            raise ValueError("close the previous member before opening another")
        if len(self._files) >= MAX_FILES:
            raise CabLimitError(f"a cabinet holds at most {MAX_FILES:,} files; split the input across cabinets")
        encoded, attributes = _encode_name(name)
        self._member = MemberWriter(self, encoded, attributes, modified)
        return self._member

    def add(self, name: str, data: bytes | Iterable[bytes], *, modified: datetime) -> None:
        """Add a member from bytes or from an iterable of byte chunks."""
        with self.open(name, modified=modified) as member:
            if isinstance(data, (bytes, bytearray, memoryview)):
                member.write(bytes(data))
            else:
                for chunk in data:
                    member.write(chunk)

    def add_path(self, name: str, path: str | os.PathLike[str], *, modified: datetime | None = None) -> None:
        """Add a file from disk, streamed; ``modified`` defaults to its mtime."""
        source = Path(path)
        if modified is None:
            modified = datetime.fromtimestamp(source.stat().st_mtime)
        with source.open("rb") as stream:
            self.add(name, iter(lambda: stream.read(_READ_CHUNK), b""), modified=modified)

    def close(self) -> None:
        """Write the cabinet to ``path``."""
        if self._closed:
            return
        if self._member is not None and not self._member.closed:
            raise ValueError("close the last member before closing the cabinet")
        if not self._files:
            self.abort()
            raise ValueError("a cabinet needs at least one file")
        if self._pending:
            self._flush_block(bytes(self._pending))
            self._pending.clear()
        try:
            self._write_cabinet()
        finally:
            self._closed = True
            self._spool.close()

    def abort(self) -> None:
        """Discard everything written so far; ``path`` is left untouched."""
        self._closed = True
        self._spool.close()

    def _append(self, data: bytes) -> None:
        self._folder_size += len(data)
        if self._folder_size > _MAX_U32:
            raise CabLimitError("a CAB folder holds at most 4 GiB of uncompressed data")
        self._pending += data
        if len(self._pending) >= BLOCK_SIZE:
            full = len(self._pending) // BLOCK_SIZE * BLOCK_SIZE
            view = memoryview(self._pending)
            for start in range(0, full, BLOCK_SIZE):
                self._flush_block(bytes(view[start : start + BLOCK_SIZE]))
            view.release()
            del self._pending[:full]

    def _finish_member(self, name: bytes, offset: int, attributes: int, modified: datetime) -> None:
        dos_date, dos_time = _dos_date_time(modified)
        self._files.append(_FileEntry(name, self._folder_size - offset, offset, dos_date, dos_time, attributes))

    def _flush_block(self, block: bytes) -> None:
        if self._blocks >= MAX_BLOCKS:
            raise CabLimitError(f"a CAB folder holds at most {MAX_BLOCKS:,} data blocks (2 GiB)")
        if self.compression is Compression.MSZIP:
            # Each block is a complete raw deflate stream behind the "CK"
            # signature; not reusing the previous block as a dictionary keeps
            # blocks independent, which MSZIP allows.
            compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
            payload = b"CK" + compressor.compress(block) + compressor.flush()
        else:
            payload = block
        sizes = struct.pack("<HH", len(payload), len(block))
        self._spool.write(_CFDATA.pack(checksum(payload, checksum(sizes)), len(payload), len(block)))
        self._spool.write(payload)
        self._blocks += 1

    def _write_cabinet(self) -> None:
        table = b"".join(
            _CFFILE.pack(entry.size, entry.offset, 0, entry.dos_date, entry.dos_time, entry.attributes)
            + entry.name
            + b"\0"
            for entry in self._files
        )
        files_offset = _CFHEADER.size + _CFFOLDER.size
        data_offset = files_offset + len(table)
        total = data_offset + self._spool.tell()
        if total > _MAX_U32:
            raise CabLimitError("a cabinet is at most 4 GiB")
        header = _CFHEADER.pack(b"MSCF", 0, total, 0, files_offset, 0, 3, 1, 1, len(self._files), 0, 0, 0)
        folder = _CFFOLDER.pack(data_offset, self._blocks, int(self.compression))

        partial = tempfile.NamedTemporaryFile(dir=self.path.parent, prefix=f".{self.path.name}.", delete=False)
        try:
            with partial:
                partial.write(header + folder + table)
                self._spool.seek(0)
                while chunk := self._spool.read(_READ_CHUNK):
                    partial.write(chunk)
            # The lab serves cabinets over HTTP: make them world-readable
            # rather than keeping the temporary file's private mode.
            os.chmod(partial.name, 0o644)
            os.replace(partial.name, self.path)
        except BaseException:
            os.unlink(partial.name)
            raise
