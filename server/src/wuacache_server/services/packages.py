"""Packages: standalone update files admins bring themselves, for hosts to install.

An ``.msu`` is installed with wusa, a ``.cab`` with DISM; hosts download
either from ``/packages/<name>``. A package is received into a hidden file of
the packages folder while its SHA-256 and SHA-1 are computed, then renamed
over its name: hosts never see part of a package, and a replaced package
changes at once. The file is renamed (or removed) after the database row is
written and before it is committed, so that two uploads of the same name
touch the file in the order their rows are written.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from types import TracebackType
from typing import BinaryIO, Self

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wuacache_server.db.models import Package, PackageKind, utcnow
from wuacache_server.fetch.downloader import CHUNK_SIZE, validate_file_name
from wuacache_server.policy import PolicyError, normalise_kb

logger = logging.getLogger(__name__)

KINDS = {".msu": PackageKind.MSU, ".cab": PackageKind.CAB}
# Windows opens a device for these names, whatever their extension and case
# ("Naming Files, Paths, and Namespaces", Microsoft's Win32 documentation):
# a host could not save such a package under its name.
RESERVED_WINDOWS_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL", *(f"COM{digit}" for digit in range(1, 10)), *(f"LPT{digit}" for digit in range(1, 10))]
)
MAX_DESCRIPTION_LENGTH = 1000
UPLOAD_PREFIX = ".upload-"  # a dot-file: never served


class InvalidPackage(ValueError):
    """A package name, KB, description or file the server refuses; the message says why."""


class PackageTooLarge(Exception):
    """The package exceeds ``max_package_bytes``."""


class PackageConflict(Exception):
    """Another upload of the same name created the package first."""


def package_kind(name: str) -> PackageKind:
    """The kind of package ``name`` is; InvalidPackage unless it is a plain ``.msu`` or ``.cab`` file name."""
    try:
        validate_file_name(name)
    except ValueError as exc:
        raise InvalidPackage(f"package name: {exc}") from None
    kind = KINDS.get(PurePath(name).suffix.lower())
    if kind is None:
        raise InvalidPackage(f"package name {name!r} must end in .msu or .cab")
    if name.partition(".")[0].upper() in RESERVED_WINDOWS_NAMES:
        raise InvalidPackage(f"package name {name!r} is a device name on Windows")
    return kind


class PackageUpload:
    """A package being received: a hidden file in the packages folder, hashed as it grows.

    Used as a context manager: the file is removed on exit unless
    :func:`save_package` published it.
    """

    def __init__(self, packages_dir: Path, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._sha1 = hashlib.sha1()
        packages_dir.mkdir(parents=True, exist_ok=True)
        self.path = packages_dir / f"{UPLOAD_PREFIX}{secrets.token_hex(8)}"
        self._file: BinaryIO = self.path.open("xb")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)

    def write(self, chunk: bytes) -> None:
        if self.size + len(chunk) > self.max_bytes:
            raise PackageTooLarge(f"the package exceeds the limit of {self.max_bytes} bytes")
        self._file.write(chunk)
        self._sha256.update(chunk)
        self._sha1.update(chunk)
        self.size += len(chunk)

    def copy_from(self, source: BinaryIO) -> None:
        while chunk := source.read(CHUNK_SIZE):
            self.write(chunk)

    @property
    def sha256(self) -> str:
        return base64.b64encode(self._sha256.digest()).decode("ascii")

    @property
    def sha1(self) -> str:
        return base64.b64encode(self._sha1.digest()).decode("ascii")

    def publish(self, target: Path) -> None:
        """Make the received file ``target``, replacing any file of that name at once."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.path, target)


@dataclass(frozen=True)
class PackageInfo:
    """What an admin says of a package, checked: known before its file is received."""

    name: str
    kind: PackageKind
    kb: str | None = None  # digits, without "KB"
    description: str = ""

    @classmethod
    def checked(cls, name: str, kb: str | None = None, description: str = "") -> PackageInfo:
        """The info of package ``name``; InvalidPackage for a bad name, KB or description."""
        if len(description) > MAX_DESCRIPTION_LENGTH:
            raise InvalidPackage(f"the description is longer than {MAX_DESCRIPTION_LENGTH} characters")
        kind = package_kind(name)
        try:
            digits = normalise_kb(kb) if kb else None
        except PolicyError as exc:
            raise InvalidPackage(str(exc)) from None
        return cls(name, kind, digits, description)


@dataclass(frozen=True)
class SavedPackage:
    package: Package
    replaced: bool  # whether a package of that name existed before


def save_package(session: Session, upload: PackageUpload, info: PackageInfo) -> SavedPackage:
    """Publish what ``upload`` received as package ``info.name``, replacing one of that name, and commit.

    A replaced package takes the KB and description of ``info``.

    Raises:
        InvalidPackage: the file is empty.
        PackageConflict: a concurrent upload created the package first.
    """
    if upload.size == 0:
        raise InvalidPackage("the package is empty")
    now = utcnow()
    package = find_package(session, info.name)
    replaced = package is not None
    if package is None:
        package = Package(name=info.name, created_at=now)
        session.add(package)
    package.kind = info.kind
    package.size = upload.size
    package.sha256 = upload.sha256
    package.sha1 = upload.sha1
    package.kb = info.kb
    package.description = info.description
    package.updated_at = now
    try:
        session.flush()
    except IntegrityError:  # the name is unique
        session.rollback()
        raise PackageConflict(f"another upload created package {info.name!r} meanwhile; send it again") from None
    upload.publish(upload.path.parent / info.name)
    session.commit()
    logger.info(
        "Package %s %s: %d bytes, SHA-256 %s",
        info.name,
        "replaced" if replaced else "added",
        upload.size,
        upload.sha256,
    )
    return SavedPackage(package, replaced)


def package_url(base_url: str, name: str) -> str:
    """Where hosts download package ``name``."""
    return f"{base_url}/packages/{name}"


def find_package(session: Session, name: str) -> Package | None:
    return session.scalars(select(Package).where(Package.name == name)).one_or_none()


def list_packages(session: Session) -> Sequence[Package]:
    return session.scalars(select(Package).order_by(Package.name)).all()


def remove_package(session: Session, packages_dir: Path, package: Package) -> None:
    """Delete ``package``, its row and its file, and commit."""
    session.delete(package)
    session.flush()
    (packages_dir / package.name).unlink(missing_ok=True)
    session.commit()
    logger.info("Package %s removed: %d bytes, SHA-256 %s", package.name, package.size, package.sha256)
