"""Extracting cabinets with ``cabextract``, the LZX-capable extractor.

cabextract turns the backslashes of member names into folders
(``c\\40000311`` becomes ``c/40000311``) and keeps every member inside the
destination.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from wuacache_server.catalog.errors import CatalogFormatError

# Enough of cabextract's complaint to tell what was wrong with the cab.
_MAX_COMPLAINT = 500


def extract(cab: Path, destination: Path, *, pattern: str | None = None) -> None:
    """Extract the members of ``cab`` (those matching the shell ``pattern``,
    on their folder-form names, when given) into ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    # --single: never follow a header to the next cab of a multi-part set.
    command = ["cabextract", "--quiet", "--single", "--directory", str(destination)]
    if pattern is not None:
        command += ["--filter", pattern]
    completed = subprocess.run([*command, str(cab)], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        complaint = (completed.stderr.strip() or completed.stdout.strip())[-_MAX_COMPLAINT:]
        raise CatalogFormatError(f"{cab.name} cannot be extracted: {complaint}")


def sha256_hex(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()
