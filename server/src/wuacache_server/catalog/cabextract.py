"""Reading cabinets with ``cabextract``, the LZX-capable extractor.

cabextract turns the backslashes of member names into slashes
(``c\\40000311`` becomes ``c/40000311``) and keeps every member inside the
destination folder. Fragment cabs hold thousands of small members: rather
than writing them to disk, :func:`read_members` streams them out of one
``cabextract --pipe`` run, split by the sizes ``cabextract --list`` gives
(both walk the cab's members in the same order).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
from collections.abc import Callable, Generator
from pathlib import Path
from typing import IO

from wuacache_server.catalog.errors import CatalogFormatError

# --single: never follow a header to the next cab of a multi-part set.
_CABEXTRACT = ("cabextract", "--quiet", "--single")
# "      553 | 09.12.2025 20:00:00 | c/40079810", one line per member.
_LISTED_MEMBER = re.compile(r" *(\d+) \| [\d.]+ [\d:]+ \| (.*)")
_CHUNK = 1 << 20
# Enough of cabextract's first complaints to tell what was wrong with the cab
# (a damaged cab gets one line per member).
_MAX_COMPLAINT = 500


def extract(cab: Path, destination: Path) -> None:
    """Extract every member of ``cab`` into ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    _run(cab, "--directory", str(destination))


def read_members(
    cab: Path, wanted: Callable[[str], bool], *, max_size: int
) -> Generator[tuple[str, bytes], None, None]:
    """(name, content) of each member of ``cab`` whose folder-form name
    ``wanted`` accepts, in the cab's order.

    Use it inside ``contextlib.closing``: closing the iterator early stops
    cabextract.
    """
    members = list_members(cab)
    with tempfile.TemporaryFile() as complaints:
        process = subprocess.Popen(
            [*_CABEXTRACT, "--pipe", str(cab)], stdout=subprocess.PIPE, stderr=complaints, bufsize=_CHUNK
        )
        assert process.stdout is not None
        problem = "cabextract stopped before its last member"
        try:
            for name, size in members:
                if not wanted(name):
                    if not _skip(process.stdout, size):
                        break
                    continue
                if size > max_size:
                    raise CatalogFormatError(f"{cab.name}: member {name} is larger than {max_size} bytes")
                content = process.stdout.read(size)
                if len(content) != size:
                    break
                yield name, content
            else:
                problem = "cabextract gave more than the members it listed" if process.stdout.read(1) else ""
        finally:
            if problem:
                process.kill()
            process.stdout.close()
            process.wait()
        if problem or process.returncode != 0:
            complaints.seek(0)
            complaint = _complaint(complaints.read(_MAX_COMPLAINT).decode(errors="replace")) or problem
            raise CatalogFormatError(f"{cab.name} cannot be extracted: {complaint}")


def list_members(cab: Path) -> list[tuple[str, int]]:
    """(folder-form name, size) of each member of ``cab``, in the cab's order."""
    listing = _run(cab, "--list")
    return [(match[2], int(match[1])) for line in listing.splitlines() if (match := _LISTED_MEMBER.fullmatch(line))]


def sha256_hex(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _run(cab: Path, *options: str) -> str:
    completed = subprocess.run(
        [*_CABEXTRACT, *options, str(cab)], capture_output=True, text=True, errors="replace", check=False
    )
    if completed.returncode != 0:
        raise CatalogFormatError(f"{cab.name} cannot be extracted: {_complaint(completed.stderr or completed.stdout)}")
    return completed.stdout


def _skip(stream: IO[bytes], size: int) -> bool:
    while size > 0:
        chunk = stream.read(min(size, _CHUNK))
        if not chunk:
            return False
        size -= len(chunk)
    return True


def _complaint(output: str) -> str:
    return output.strip()[:_MAX_COMPLAINT]
