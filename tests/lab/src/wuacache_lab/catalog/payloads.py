"""Payload bytes of the synthetic updates and the upstream file tree.

Payload content is a pure function of the catalog seed and the file's stem,
so the generator, the upstream stand-in and any test can recreate a file
without storing it. The upstream tree mirrors Microsoft's URL layout:
``<root>/<url host>/<url path>``, so a static HTTP server rooted there
answers the catalog's URLs once a proxy routes Microsoft's hostnames to it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Protocol
from urllib.parse import urlsplit

CATALOG_URL = "http://download.windowsupdate.com/microsoftupdate/v6/wsusscan/wsusscn2.cab"


class Payload(Protocol):
    stem: str
    size: int
    url: str


def payload_bytes(seed: int, stem: str, size: int) -> bytes:
    """The content of the payload named ``stem``: a readable first line, then
    pseudo-random bytes (SHAKE-256, stable across Python versions)."""
    header = f"wuacache lab payload {stem}\n".encode()
    if size < len(header):
        raise ValueError(f"payload {stem!r} needs at least {len(header)} bytes, not {size}")
    return header + hashlib.shake_256(f"{seed}/{stem}".encode()).digest(size - len(header))


def upstream_path(root: str | os.PathLike[str], url: str) -> Path:
    """Where the upstream tree under ``root`` keeps the file served at ``url``."""
    parts = urlsplit(url)
    path = PurePosixPath(parts.path)
    if not parts.hostname or not path.is_absolute() or ".." in path.parts:
        raise ValueError(f"not a download URL: {url!r}")
    return Path(root, parts.hostname, *path.parts[1:])


def write_payload_tree(root: str | os.PathLike[str], payloads: Iterable[Payload], *, seed: int) -> int:
    """Write every payload under ``root`` at its URL's path; return the bytes written."""
    total = 0
    for payload in payloads:
        target = upstream_path(root, payload.url)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(payload_bytes(seed, payload.stem, payload.size))
        total += payload.size
    return total
