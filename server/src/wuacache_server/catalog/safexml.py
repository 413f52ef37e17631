"""XML reading and attribute values shared by the catalog readers.

Catalog XML never declares a DTD, so any document that does is refused
before its content is read; entities are never expanded and nothing is
fetched from the network. Every failure becomes a :class:`CatalogFormatError`
naming the document.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime

from lxml import etree

from wuacache_server.catalog.errors import CatalogFormatError

# Options for every lxml parser and iterparse of catalog content. The
# documents are small or streamed, so lxml's default limits (huge_tree off)
# hold.
PARSER_OPTIONS = {"resolve_entities": False, "no_network": True, "load_dtd": False}


def parse_document(data: bytes, what: str) -> etree._Element:
    """Parse a small document held in memory."""
    try:
        root = etree.fromstring(data, etree.XMLParser(**PARSER_OPTIONS))
    except etree.XMLSyntaxError as error:
        raise CatalogFormatError(f"{what} is not well-formed XML: {error}") from error
    refuse_doctype(root, what)
    return root


def refuse_doctype(element: etree._Element, what: str) -> None:
    if element.getroottree().docinfo.doctype:
        raise CatalogFormatError(f"{what} declares a DTD, which catalog XML never does")


def required(element: etree._Element, name: str, what: str) -> str:
    value: str | None = element.get(name)
    if value is None or not value.strip():
        raise CatalogFormatError(f"{what}: a {etree.QName(element).localname} element has no {name}")
    return value.strip()


def integer(value: str, what: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise CatalogFormatError(f"{what}: {value!r} is not an integer") from None
    if number < 0:
        raise CatalogFormatError(f"{what}: {value!r} is negative")
    return number


def optional_integer(value: str | None, what: str) -> int | None:
    return None if value is None else integer(value, what)


def guid(value: str, what: str) -> str:
    """The canonical (lowercase, hyphenated) form of a GUID."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise CatalogFormatError(f"{what}: {value!r} is not a GUID") from None


def utc_datetime(value: str, what: str) -> datetime:
    """An ISO 8601 timestamp as an aware UTC datetime; catalog timestamps
    without an offset are UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CatalogFormatError(f"{what}: {value!r} is not an ISO 8601 date") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def flag(value: str | None) -> bool:
    """An xs:boolean attribute, false when absent."""
    return value is not None and value.strip() in ("true", "1")


def is_base64_digest(value: str, length: int) -> bool:
    """Whether ``value`` is the base64 form of a ``length``-byte digest."""
    try:
        return len(base64.b64decode(value, validate=True)) == length
    except binascii.Error:
        return False
