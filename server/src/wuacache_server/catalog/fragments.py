"""The per-revision fragments of a catalog: ``c\\``, ``x\\`` and ``l\\en\\``.

A fragment cab extracted with cabextract holds ``c/<RevisionId>`` (core:
type, relationships), ``x/<RevisionId>`` (extended: KBs, severity, reboot
behaviour, sizes, and the payload files' names, sizes and SHA-256) and
``l/en/<RevisionId>`` (English title and description). Fragments are
rootless lists of elements without namespace; any of them may be missing,
which leaves the fields it would give empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from wuacache_server.catalog.errors import CatalogFormatError
from wuacache_server.catalog.safexml import guid, is_base64_digest, optional_integer, parse_document, required

# Member folders, as cabextract writes the backslash-separated names.
CORE = ("c",)
EXTENDED = ("x",)
ENGLISH = ("l", "en")
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


def read_fragments(folder: Path, revision_id: int) -> Fragments:
    """The fragments of ``revision_id`` in an extracted fragment cab."""
    core = _read(folder, CORE, revision_id)
    extended = _read(folder, EXTENDED, revision_id)
    english = _read(folder, ENGLISH, revision_id)
    what = f"fragments of revision {revision_id}"
    extended_properties = extended.find("ExtendedProperties")
    return Fragments(
        update_type=_attribute(core.find("Properties"), "UpdateType"),
        category_type=_attribute(core.find("HandlerSpecificData/CategoryInformation"), "CategoryType"),
        bundled_updates=tuple(
            (
                guid(required(identity, "UpdateID", what), what),
                optional_integer(identity.get("RevisionNumber"), f"{what} RevisionNumber"),
            )
            for identity in core.iterfind("Relationships/BundledUpdates/UpdateIdentity")
        ),
        kb_ids=tuple(_texts(extended, "KBArticleID")),
        msrc_severity=_attribute(extended_properties, "MsrcSeverity"),
        reboot_behavior=_attribute(extended.find(".//InstallationBehavior"), "RebootBehavior"),
        min_download_size=optional_integer(
            _attribute(extended_properties, "MinDownloadSize"), f"{what} MinDownloadSize"
        ),
        max_download_size=optional_integer(
            _attribute(extended_properties, "MaxDownloadSize"), f"{what} MaxDownloadSize"
        ),
        files=tuple(_file(entry, what) for entry in extended.iterfind("Files/File") if _is_sha1(entry)),
        title=next(iter(_texts(english, "Title")), ""),
        description=next(iter(_texts(english, "Description")), ""),
    )


def _read(folder: Path, member: tuple[str, ...], revision_id: int) -> etree._Element:
    """The fragment wrapped in a root element; an empty root when it is missing."""
    what = "fragment " + "\\".join((*member, str(revision_id)))
    try:
        with folder.joinpath(*member, str(revision_id)).open("rb") as stream:
            data = stream.read(_MAX_FRAGMENT_BYTES + 1)
    except FileNotFoundError:
        return etree.Element("fragment")
    if len(data) > _MAX_FRAGMENT_BYTES:
        raise CatalogFormatError(f"{what} is larger than {_MAX_FRAGMENT_BYTES} bytes")
    # A leading BOM or XML declaration would be illegal inside the wrapper.
    data = data.removeprefix(_BOM)
    if data.startswith(b"<?xml"):
        data = data[data.find(b"?>") + 2 :]
    return parse_document(b"<fragment>" + data + b"</fragment>", what)


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
