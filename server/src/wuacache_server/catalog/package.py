"""Streaming ``package.xml``, the whole catalog in one (large) document.

The document is read with ``iterparse`` one ``Update`` or ``FileLocation``
at a time; each element is cleared once read, so memory holds one element
whatever the catalog size (Microsoft's package.xml is about 110 MB).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lxml import etree

from wuacache_server.catalog.errors import CatalogFormatError
from wuacache_server.catalog.safexml import (
    PARSER_OPTIONS,
    flag,
    guid,
    integer,
    refuse_doctype,
    required,
    utc_datetime,
)

NAMESPACE = "http://schemas.microsoft.com/msus/2004/02/OfflineSync"
_NS = f"{{{NAMESPACE}}}"
_ROOT = f"{_NS}OfflineSyncPackage"
_UPDATE = f"{_NS}Update"
_FILE_LOCATION = f"{_NS}FileLocation"
_WHAT = "package.xml"


@dataclass(frozen=True, slots=True)
class PackageHeader:
    package_id: str
    package_version: str | None
    creation_date: datetime


@dataclass(frozen=True, slots=True)
class PackageUpdate:
    """What package.xml says of one revision."""

    revision_id: int
    update_id: str
    revision_number: int
    creation_date: datetime
    is_bundle: bool
    deployed_by_bundle: bool
    """``DeploymentAction="Bundle"``: a bundle's child."""
    bundled_by: tuple[int, ...]
    superseded_by: tuple[int, ...]
    categories: tuple[tuple[str | None, str], ...]
    """(``@Type``, ``@Id``) of each category, in document order."""
    languages: tuple[str, ...]
    payload_files: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FileLocation:
    digest: str
    url: str


def read_header(path: Path) -> PackageHeader:
    """The root element's attributes, read without parsing further."""
    if not path.is_file():
        raise CatalogFormatError("package.cab holds no package.xml")
    try:
        _, root = next(etree.iterparse(str(path), events=("start",), **PARSER_OPTIONS))
    except (etree.XMLSyntaxError, StopIteration) as error:
        raise CatalogFormatError(f"{_WHAT} is not well-formed XML: {error}") from error
    refuse_doctype(root, _WHAT)
    if root.tag != _ROOT:
        raise CatalogFormatError(f"{_WHAT} has root {root.tag!r}, not OfflineSyncPackage in namespace {NAMESPACE}")
    return PackageHeader(
        package_id=required(root, "PackageId", _WHAT),
        package_version=root.get("PackageVersion"),
        creation_date=utc_datetime(required(root, "CreationDate", _WHAT), f"{_WHAT} CreationDate"),
    )


def iter_package(path: Path) -> Iterator[PackageUpdate | FileLocation]:
    """Every Update, then every FileLocation, in document order. Call
    :func:`read_header` first: it checks the root and refuses DTDs."""
    context = etree.iterparse(str(path), events=("end",), tag=(_UPDATE, _FILE_LOCATION), **PARSER_OPTIONS)
    try:
        for _, element in context:
            if element.tag == _UPDATE:
                yield _update(element)
            else:
                yield FileLocation(required(element, "Id", _WHAT), required(element, "Url", _WHAT))
            # Drop the element and the already-read siblings before it.
            element.clear(keep_tail=False)
            while element.getprevious() is not None:
                del element.getparent()[0]
    except etree.XMLSyntaxError as error:
        raise CatalogFormatError(f"{_WHAT} is not well-formed XML: {error}") from error


def _update(element: etree._Element) -> PackageUpdate:
    revision_id = integer(required(element, "RevisionId", _WHAT), f"{_WHAT} RevisionId")
    what = f"{_WHAT} revision {revision_id}"

    def references(path: str, attribute: str = "Id") -> list[str]:
        # Each once, in document order.
        return list(dict.fromkeys(required(child, attribute, what) for child in element.iterfind(path)))

    return PackageUpdate(
        revision_id=revision_id,
        update_id=guid(required(element, "UpdateId", what), what),
        revision_number=integer(required(element, "RevisionNumber", what), f"{what} RevisionNumber"),
        creation_date=utc_datetime(required(element, "CreationDate", what), f"{what} CreationDate"),
        is_bundle=flag(element.get("IsBundle")),
        deployed_by_bundle=element.get("DeploymentAction") == "Bundle",
        bundled_by=tuple(integer(value, f"{what} BundledBy") for value in references(f"{_NS}BundledBy/{_NS}Revision")),
        superseded_by=tuple(
            integer(value, f"{what} SupersededBy") for value in references(f"{_NS}SupersededBy/{_NS}Revision")
        ),
        categories=tuple(
            (category.get("Type") or None, guid(required(category, "Id", what), what))
            for category in element.iterfind(f"{_NS}Categories/{_NS}Category")
        ),
        languages=tuple(references(f"{_NS}Languages/{_NS}Language", "Name")),
        payload_files=tuple(references(f"{_NS}PayloadFiles/{_NS}File")),
    )
