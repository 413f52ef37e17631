"""Write a modelled catalog as Microsoft publishes it.

Layout of the signed outer cab ``wsusscn2.cab``: ``index.xml``, then
``package.cab`` (holding ``package.xml``), then ``package2.cab`` ..
``packageN.cab`` holding the per-revision fragments ``c\\<RevisionId>``,
``x\\<RevisionId>`` and ``l\\en\\<RevisionId>``. Every XML document is
streamed into its cab as it is produced, so memory stays bounded by the model
whatever the catalog size.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from lxml import etree

from wuacache_lab.cabfile import MAX_FILES, CabWriter, Compression
from wuacache_lab.catalog.model import (
    CRITICAL_UPDATES,
    DEFAULT_PAYLOAD_SIZE,
    FIRST_MONTH,
    MICROSOFT,
    SECURITY_UPDATES,
    WINDOWS,
    And,
    Bundle,
    BundledUpdate,
    Catalog,
    CategoryUpdate,
    Detectoid,
    Or,
    Processor,
    Rule,
    Update,
    build_catalog,
)
from wuacache_lab.catalog.payloads import CATALOG_URL, upstream_path, write_payload_tree
from wuacache_lab.pki import LabCA
from wuacache_lab.signing import sign_cab

NAMESPACE = "http://schemas.microsoft.com/msus/2004/02/OfflineSync"
DEFAULT_UPDATES = 2_000
DEFAULT_FRAGMENTS_PER_CAB = 6_000
CAB_NAME = "wsusscn2.cab"
FILES_DIR = "files"
MANIFEST = "manifest.json"

_HANDLERS = {
    "exe": "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/CommandLineInstallation",
    "cab": "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/CBS",
    "msu": "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/CBS",
}
_MONTH_ABBREVIATIONS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


class _Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


@dataclass(frozen=True)
class InnerCab:
    name: str
    range_start: int | None
    """None for package.cab, which holds package.xml rather than fragments."""


@dataclass(frozen=True)
class CatalogSummary:
    """What :func:`generate_catalog` wrote (also saved as ``manifest.json``)."""

    cab: Path
    files_dir: Path
    seed: int
    generation: int
    published: str
    package_id: str
    updates: int
    categories: int
    detectoids: int
    bundles: int
    children: int
    superseded: int
    file_locations: int
    unreferenced_file_locations: int
    hashless_file_locations: int
    payload_bytes: int
    inner_cabs: tuple[InnerCab, ...]
    cab_sha256: str
    cab_size: int
    signed: bool

    def to_json(self) -> str:
        data = asdict(self)
        data["cab"] = self.cab.name
        data["files_dir"] = self.files_dir.name
        return json.dumps(data, indent=2) + "\n"


def generate_catalog(
    out_dir: str | os.PathLike[str],
    *,
    updates: int = DEFAULT_UPDATES,
    seed: int = 0,
    generation: int = 1,
    ca: LabCA | None,
    fragments_per_cab: int = DEFAULT_FRAGMENTS_PER_CAB,
    payload_size: tuple[int, int] = DEFAULT_PAYLOAD_SIZE,
    first_month: tuple[int, int] = FIRST_MONTH,
) -> CatalogSummary:
    """Write ``out_dir/wsusscn2.cab`` and the upstream tree ``out_dir/files``.

    The cab is signed with ``ca``'s code-signing certificate; ``ca=None``
    leaves it unsigned (what WUA must refuse). ``files/`` holds every payload
    at its FileLocation URL's path and the cab at Microsoft's catalog URL's
    path, so one static HTTP server rooted there serves both.
    """
    if not 3 <= fragments_per_cab <= MAX_FILES:
        raise ValueError(f"fragments_per_cab must be between 3 and {MAX_FILES}, not {fragments_per_cab}")
    catalog = build_catalog(
        updates=updates, seed=seed, generation=generation, payload_size=payload_size, first_month=first_month
    )
    out = Path(out_dir)
    files_dir = out / FILES_DIR
    files_dir.mkdir(parents=True, exist_ok=True)
    payload_total = write_payload_tree(files_dir, catalog.files, seed=seed)

    cab = out / CAB_NAME
    with tempfile.TemporaryDirectory(dir=out, prefix=".build-") as build:
        unsigned = Path(build, CAB_NAME)
        inner_cabs = write_catalog_cab(catalog, unsigned, fragments_per_cab=fragments_per_cab)
        if ca is None:
            os.replace(unsigned, cab)
        else:
            sign_cab(unsigned, cab, ca.codesign_cert, ca.codesign_key)
    # Microsoft's Last-Modified is the publication time; servers compare it.
    published = catalog.published.timestamp()
    os.utime(cab, (published, published))
    _publish(cab, upstream_path(files_dir, CATALOG_URL))

    referenced = {file.digest for child in catalog.children() for file in child.files}
    summary = CatalogSummary(
        cab=cab,
        files_dir=files_dir,
        seed=seed,
        generation=generation,
        published=_timestamp(catalog.published),
        package_id=catalog.package_id,
        updates=len(catalog.updates()),
        categories=len(catalog.categories),
        detectoids=len(catalog.detectoids),
        bundles=len(catalog.bundles),
        children=sum(1 for _ in catalog.children()),
        superseded=sum(1 for bundle in catalog.bundles if bundle.superseded_by),
        file_locations=len(catalog.files),
        unreferenced_file_locations=sum(1 for file in catalog.files if file.digest not in referenced),
        hashless_file_locations=sum(1 for file in catalog.files if "/filestreamingservice/" in file.url),
        payload_bytes=payload_total,
        inner_cabs=tuple(inner_cabs),
        cab_sha256=_sha256(cab),
        cab_size=cab.stat().st_size,
        signed=ca is not None,
    )
    (out / MANIFEST).write_text(summary.to_json())
    return summary


def write_catalog_cab(catalog: Catalog, path: Path, *, fragments_per_cab: int) -> list[InnerCab]:
    """Write the unsigned outer cab of ``catalog`` to ``path``."""
    build = path.parent
    modified = catalog.published
    package_cab = build / "package.cab"
    with CabWriter(package_cab, Compression.MSZIP) as cab, cab.open("package.xml", modified=modified) as member:
        write_package_xml(catalog, member)
    inner_cabs = [InnerCab("package.cab", None), *_write_fragment_cabs(catalog, build, fragments_per_cab)]

    with CabWriter(path, Compression.MSZIP) as outer:
        outer.add("index.xml", index_xml(inner_cabs), modified=modified)
        for inner in inner_cabs:
            outer.add_path(inner.name, build / inner.name, modified=modified)
            (build / inner.name).unlink()
    return inner_cabs


def index_xml(inner_cabs: list[InnerCab]) -> bytes:
    index = etree.Element("INDEX", VERSION="1")
    cab_list = etree.SubElement(index, "CABLIST", XOR="0")
    for inner in inner_cabs:
        entry = etree.SubElement(cab_list, "CAB", NAME=inner.name)
        if inner.range_start is not None:
            entry.set("RANGESTART", str(inner.range_start))
            entry.set("FILESDIR", "1")
    return etree.tostring(index, xml_declaration=True, encoding="utf-8")


# --- package.xml ----------------------------------------------------------------


def write_package_xml(catalog: Catalog, stream: _Writable) -> None:
    """Stream ``package.xml`` to ``stream``, one Update at a time."""
    with etree.xmlfile(stream, encoding="utf-8") as xml:
        xml.write_declaration()
        root_attributes = {
            "MinimumClientVersion": "5.8.0.2678",
            "PackageId": catalog.package_id,
            "PackageVersion": "1.1",
            "ProtocolVersion": "1.0",
            "CreationDate": _timestamp(catalog.published),
            "SourceId": catalog.source_id,
        }
        with xml.element(f"{{{NAMESPACE}}}OfflineSyncPackage", root_attributes, nsmap={None: NAMESPACE}):
            # Elements below are built without a namespace: serialized inside
            # the root's default namespace declaration they land in it, and
            # lxml does not repeat the declaration on each of them.
            with xml.element(f"{{{NAMESPACE}}}Updates"):
                for update in catalog.updates():
                    xml.write(_package_update(update))
            with xml.element(f"{{{NAMESPACE}}}FileLocations"):
                for file in catalog.files:
                    xml.write(etree.Element("FileLocation", Id=file.digest, Url=file.url))


def _package_update(update: Update) -> etree._Element:
    element = etree.Element(
        "Update",
        UpdateId=update.update_id,
        RevisionNumber=str(update.revision_number),
        RevisionId=str(update.revision_id),
        CreationDate=_timestamp(update.created),
        DefaultLanguage="en",
        IsLeaf="true",
    )
    if isinstance(update, (CategoryUpdate, Detectoid)):
        # Categories and detectoids are evaluated, never installed.
        element.set("DeploymentAction", "Evaluate")
        element.set("IsSoftware", "false")
        parent = update.category.parent if isinstance(update, CategoryUpdate) else None
        if parent is not None:
            _sub(_sub(element, "Prerequisites"), "UpdateId", Id=parent.update_id)
    elif isinstance(update, Bundle):
        element.set("IsBundle", "true")
        categories = _sub(element, "Categories")
        for category in (MICROSOFT, WINDOWS, update.os.product, update.classification):
            _sub(categories, "Category", Type=category.category_type, Id=category.update_id)
        if update.superseded_by:
            superseded_by = _sub(element, "SupersededBy")
            for newer in update.superseded_by:
                _sub(superseded_by, "Revision", Id=str(newer.revision_id))
    else:
        element.set("DeploymentAction", "Bundle")
        _sub(_sub(element, "Prerequisites"), "UpdateId", Id=update.architecture.detectoid)
        _sub(_sub(element, "BundledBy"), "Revision", Id=str(update.bundle.revision_id))
        if update.language is not None:
            _sub(_sub(element, "Languages"), "Language", Name=update.language)
        payload_files = _sub(element, "PayloadFiles")
        for file in update.files:
            _sub(payload_files, "File", Id=file.digest)
    return element


# --- Fragments ------------------------------------------------------------------


def _write_fragment_cabs(catalog: Catalog, build: Path, fragments_per_cab: int) -> Iterator[InnerCab]:
    """Fill package2.cab, package3.cab, ... in RevisionId order; each cab's
    RANGESTART is its first RevisionId (0 for the first cab)."""
    modified = catalog.published
    cab: CabWriter | None = None
    number = 1
    try:
        for update in catalog.updates():
            fragments = list(_fragments(update))
            if cab is None or cab.file_count + len(fragments) > fragments_per_cab:
                if cab is not None:
                    cab.close()
                number += 1
                name = f"package{number}.cab"
                cab = CabWriter(build / name, Compression.MSZIP)
                yield InnerCab(name, 0 if number == 2 else update.revision_id)
            for name, content in fragments:
                cab.add(name, content, modified=modified)
        if cab is not None:
            cab.close()
    except BaseException:
        if cab is not None:
            cab.abort()
        raise


def _fragments(update: Update) -> Iterator[tuple[str, bytes]]:
    revision = update.revision_id
    yield f"c\\{revision}", _core(update)
    if isinstance(update, (Bundle, BundledUpdate)):
        yield f"x\\{revision}", _extended(update)
    yield f"l\\en\\{revision}", _localized(update)


def _core(update: Update) -> bytes:
    """The rootless ``c\\`` fragment: identity, properties, relationships, rules."""
    parts = [etree.Element("UpdateIdentity", UpdateID=update.update_id, RevisionNumber=str(update.revision_number))]
    if isinstance(update, CategoryUpdate):
        parts.append(etree.Element("Properties", UpdateType="Category"))
        if update.category.parent is not None:
            parts.append(_relationships(categories=(update.category.parent.update_id,)))
        handler = etree.Element("HandlerSpecificData", type="cat:Category")
        _sub(handler, "CategoryInformation", CategoryType=update.category.category_type)
        parts.append(handler)
    elif isinstance(update, Detectoid):
        parts.append(etree.Element("Properties", UpdateType="Detectoid"))
        rules = etree.Element("ApplicabilityRules")
        _sub(_sub(rules, "IsInstalled"), "Processor", Architecture=str(update.architecture.processor))
        parts.append(rules)
    elif isinstance(update, Bundle):
        # Windows Update selects security and critical updates by itself.
        automatic = "true" if update.classification in (SECURITY_UPDATES, CRITICAL_UPDATES) else "false"
        parts.append(
            etree.Element(
                "Properties", UpdateType="Software", ExplicitlyDeployable="true", AutoSelectOnWebSites=automatic
            )
        )
        parts.append(
            _relationships(
                categories=(update.os.product.update_id,),
                bundled=update.children,
                superseded=update.supersedes,
            )
        )
    else:
        parts.append(
            etree.Element(
                "Properties", UpdateType="Software", ExplicitlyDeployable="false", AutoSelectOnWebSites="true"
            )
        )
        parts.append(_relationships(prerequisites=(update.architecture.detectoid,)))
        rules = etree.Element("ApplicabilityRules")
        _sub(rules, "IsInstallable").append(_rule(update.rule))
        parts.append(rules)
    return b"".join(etree.tostring(part, encoding="utf-8") for part in parts)


def _relationships(
    *,
    prerequisites: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    bundled: list[BundledUpdate] | None = None,
    superseded: tuple[Bundle, ...] = (),
) -> etree._Element:
    relationships = etree.Element("Relationships")
    if prerequisites or categories:
        required = _sub(relationships, "Prerequisites")
        for update_id in prerequisites:
            _sub(required, "UpdateIdentity", UpdateID=update_id)
        if categories:
            any_category = _sub(required, "AtLeastOne", IsCategory="true")
            for update_id in categories:
                _sub(any_category, "UpdateIdentity", UpdateID=update_id)
    if bundled:
        bundled_updates = _sub(relationships, "BundledUpdates")
        for child in bundled:
            _sub(bundled_updates, "UpdateIdentity", UpdateID=child.update_id, RevisionNumber=str(child.revision_number))
    if superseded:
        superseded_updates = _sub(relationships, "SupersededUpdates")
        for older in superseded:
            _sub(superseded_updates, "UpdateIdentity", UpdateID=older.update_id)
    return relationships


def _rule(rule: Rule) -> etree._Element:
    if isinstance(rule, (And, Or)):
        element = etree.Element(type(rule).__name__)
        for operand in rule.rules:
            element.append(_rule(operand))
        return element
    if isinstance(rule, Processor):
        return etree.Element("Processor", Architecture=str(rule.architecture))
    element = etree.Element(
        "WindowsVersion",
        Comparison=rule.comparison,
        MajorVersion=str(rule.major),
        MinorVersion=str(rule.minor),
        BuildNumber=str(rule.build),
    )
    if rule.product_type is not None:
        element.set("ProductType", str(rule.product_type))
    return element


def _extended(update: Bundle | BundledUpdate) -> bytes:
    """The ``x\\`` fragment: properties for a bundle, files for a child."""
    bundle = update if isinstance(update, Bundle) else update.bundle
    if isinstance(update, Bundle):
        # Unique files: .NET children share one.
        files = {file.digest: file for child in update.children for file in child.files}
        maximum = sum(file.size for file in files.values())
        minimum = min(sum(file.size for file in child.files) for child in update.children)
    else:
        maximum = minimum = sum(file.size for file in update.files)
    properties = etree.Element(
        "ExtendedProperties",
        DefaultPropertiesLanguage="en",
        Handler=_HANDLERS[bundle.kind.extension],
        MaxDownloadSize=str(maximum),
        MinDownloadSize=str(minimum),
    )
    if isinstance(update, Bundle) and update.severity is not None:
        properties.set("MsrcSeverity", update.severity)
    _sub(
        properties,
        "InstallationBehavior",
        RebootBehavior=bundle.kind.reboot,
        CanRequestUserInput="true" if bundle.can_request_user_input else "false",
    )
    parts = [properties]
    if isinstance(update, Bundle):
        if update.kb is not None:
            parts.append(_text("KBArticleID", str(update.kb)))
        if update.classification is SECURITY_UPDATES:
            year, month = update.month.split("-")
            parts.append(_text("SecurityBulletinID", f"MS{year[2:]}-{_MONTH_ABBREVIATIONS[int(month) - 1]}"))
            parts.extend(_text("CveID", cve) for cve in update.cves)
        parts.append(_text("SupportUrl", update.support_url))
    else:
        files_element = etree.Element("Files")
        for file in update.files:
            entry = _sub(
                files_element,
                "File",
                Digest=file.digest,
                DigestAlgorithm="SHA1",
                FileName=file.file_name,
                Size=str(file.size),
                Modified=_timestamp(file.modified),
                PatchingType="SelfContained",
            )
            _sub(entry, "AdditionalDigest", Algorithm="SHA256").text = file.sha256_digest
        parts.append(files_element)
    return b"".join(etree.tostring(part, encoding="utf-8") for part in parts)


def _localized(update: Update) -> bytes:
    """The ``l\\en\\`` fragment: where WUA takes titles (and category names)."""
    properties = etree.Element("LocalizedProperties")
    _sub(properties, "Language").text = "en"
    _sub(properties, "Title").text = update.title
    if isinstance(update, (Bundle, BundledUpdate)):
        bundle = update if isinstance(update, Bundle) else update.bundle
        _sub(properties, "Description").text = bundle.description
        _sub(properties, "MoreInfoUrl").text = bundle.support_url
    else:
        _sub(properties, "Description").text = update.title
    return etree.tostring(properties, encoding="utf-8")


# --- Helpers --------------------------------------------------------------------


def _sub(parent: etree._Element, tag: str, **attributes: str) -> etree._Element:
    return etree.SubElement(parent, tag, attributes)


def _text(tag: str, text: str) -> etree._Element:
    element = etree.Element(tag)
    element.text = text
    return element


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _publish(cab: Path, served: Path) -> None:
    """Make the cab available at Microsoft's URL in the upstream tree."""
    served.parent.mkdir(parents=True, exist_ok=True)
    partial = served.with_name(f".{served.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        os.link(cab, partial)
    except OSError:
        shutil.copyfile(cab, partial)
    os.replace(partial, served)
