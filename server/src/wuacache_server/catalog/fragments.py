"""The per-revision fragments of a catalog: ``c\\``, ``x\\`` and ``l\\en\\``.

A fragment cab holds ``c\\<RevisionId>`` (core: type, relationships),
``x\\<RevisionId>`` (extended: KBs, severity, reboot behaviour, sizes, and
the payload files' names, sizes and SHA-256) and ``l\\en\\<RevisionId>``
(English title and description), among others this reader skips. Fragments
are rootless lists of elements without namespace; any of them may be
missing, which leaves the fields it would give empty.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from wuacache_server.catalog.cabextract import read_members
from wuacache_server.catalog.safexml import guid, is_base64_digest, optional_integer, parse_document, required

# Member names as cabextract gives them (backslashes turned into slashes).
_MEMBER = re.compile(r"(c|x|l/en)/(\d+)", re.IGNORECASE)
# Fragments are a few KB; a large x\ lists a few hundred files.
_MAX_FRAGMENT_BYTES = 16 << 20
_BOM = b"\xef\xbb\xbf"
_SHA256_BYTES = 32


@dataclass(frozen=True, slots=True)
class FragmentFile:
    """A ``Files/File`` entry of an ``x\\`` fragment."""

    digest: str
    file_name: str | None
    size: int | None
    sha256_b64: str | None


@dataclass(frozen=True, slots=True)
class Fragments:
    update_type: str | None = None
    category_type: str | None = None
    bundled_updates: tuple[tuple[str, int | None], ...] = ()
    """(UpdateID, RevisionNumber) of each child, in the bundle's order."""
    kb_ids: tuple[str, ...] = ()
    msrc_severity: str | None = None
    reboot_behavior: str | None = None
    min_download_size: int | None = None
    max_download_size: int | None = None
    files: tuple[FragmentFile, ...] = ()
    title: str = ""
    description: str = ""


NO_FRAGMENTS = Fragments()


def read_fragment_cab(cab: Path) -> dict[int, Fragments]:
    """The fragments of every revision ``cab`` holds, by RevisionId."""
    fields: defaultdict[int, dict[str, Any]] = defaultdict(dict)
    with closing(read_members(cab, _is_fragment, max_size=_MAX_FRAGMENT_BYTES)) as members:
        for name, content in members:
            kind, revision = _fragment_name(name)
            what = "fragment " + "\\".join((*kind.split("/"), revision))
            fields[int(revision)].update(_READERS[kind](_wrap(content, what), what))
    return {revision_id: Fragments(**values) for revision_id, values in fields.items()}


def _is_fragment(name: str) -> bool:
    return _MEMBER.fullmatch(name) is not None


def _fragment_name(name: str) -> tuple[str, str]:
    match = _MEMBER.fullmatch(name)
    assert match is not None
    return match[1].lower(), match[2]


def _wrap(content: bytes, what: str) -> etree._Element:
    """The fragment under a root element; a leading BOM or XML declaration
    would be illegal inside it."""
    content = content.removeprefix(_BOM)
    if content.startswith(b"<?xml"):
        content = content[content.find(b"?>") + 2 :]
    return parse_document(b"<fragment>" + content + b"</fragment>", what)


def _core(core: etree._Element, what: str) -> dict[str, Any]:
    return {
        "update_type": _attribute(core.find("Properties"), "UpdateType"),
        "category_type": _attribute(core.find("HandlerSpecificData/CategoryInformation"), "CategoryType"),
        "bundled_updates": tuple(
            (
                guid(required(identity, "UpdateID", what), what),
                optional_integer(identity.get("RevisionNumber"), f"{what} RevisionNumber"),
            )
            for identity in core.iterfind("Relationships/BundledUpdates/UpdateIdentity")
        ),
    }


def _extended(extended: etree._Element, what: str) -> dict[str, Any]:
    properties = extended.find("ExtendedProperties")
    return {
        "kb_ids": tuple(_texts(extended, "KBArticleID")),
        "msrc_severity": _attribute(properties, "MsrcSeverity"),
        "reboot_behavior": _attribute(extended.find(".//InstallationBehavior"), "RebootBehavior"),
        "min_download_size": optional_integer(_attribute(properties, "MinDownloadSize"), f"{what} MinDownloadSize"),
        "max_download_size": optional_integer(_attribute(properties, "MaxDownloadSize"), f"{what} MaxDownloadSize"),
        "files": tuple(_file(entry, what) for entry in extended.iterfind("Files/File") if _is_sha1(entry)),
    }


def _english(english: etree._Element, what: str) -> dict[str, Any]:
    return {
        "title": next(iter(_texts(english, "Title")), ""),
        "description": next(iter(_texts(english, "Description")), ""),
    }


_READERS: dict[str, Callable[[etree._Element, str], dict[str, Any]]] = {
    "c": _core,
    "x": _extended,
    "l/en": _english,
}


def _attribute(element: etree._Element | None, name: str) -> str | None:
    value = element.get(name) if element is not None else None
    return value.strip() or None if value is not None else None


def _texts(parent: etree._Element, tag: str) -> list[str]:
    return [text.strip() for element in parent.iter(tag) if (text := element.text) and text.strip()]


def _is_sha1(entry: etree._Element) -> bool:
    # FileLocation Ids are SHA-1 digests: a file listed by another digest
    # cannot be matched to its location.
    algorithm: str = entry.get("DigestAlgorithm", "SHA1")
    return algorithm.strip().upper() == "SHA1"


def _file(entry: etree._Element, what: str) -> FragmentFile:
    sha256 = next(
        (
            (element.text or "").strip()
            for element in entry.iterfind("AdditionalDigest")
            if element.get("Algorithm", "").strip().upper() == "SHA256"
        ),
        None,
    )
    return FragmentFile(
        digest=required(entry, "Digest", what),
        file_name=_attribute(entry, "FileName"),
        size=optional_integer(_attribute(entry, "Size"), f"{what} file Size"),
        sha256_b64=sha256 if sha256 is not None and is_base64_digest(sha256, _SHA256_BYTES) else None,
    )
