"""Parsing a verified ``wsusscn2.cab`` into records, in bounded memory.

The outer cab is extracted (index.xml, package.cab and the fragment cabs,
all still compressed), then package.cab. package.xml is streamed once:
each Update is parked on disk under the fragment cab that holds its
fragments, each relationship under its kind. Fragment cabs are then read
one at a time, their ``c\\``, ``x\\`` and ``l\\en\\`` members streamed out of
cabextract, and every parked update is joined with its fragments and
delivered. Categories and relationships come last, once every update and
file they name has been delivered.

Memory holds one fragment cab's updates and fragments, the catalog's
RevisionIds and its FileLocations (digest and URL: about 25 MB for
Microsoft's catalog); disk, about the outer cab's size plus package.xml.

The caller verifies the cab (signature, integrity) before parsing it.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
from urllib.parse import urlsplit

from wuacache_server.catalog.cabextract import extract, sha256_hex
from wuacache_server.catalog.errors import CatalogFormatError
from wuacache_server.catalog.fragments import NO_FRAGMENTS, FragmentFile, Fragments, read_fragment_cab
from wuacache_server.catalog.index import CatalogIndex, read_index
from wuacache_server.catalog.package import FileLocation, PackageUpdate, iter_package, read_header
from wuacache_server.catalog.records import (
    BundleMemberRecord,
    CatalogInfo,
    CategoryRecord,
    ChildFileRecord,
    PayloadFileRecord,
    SupersedenceRecord,
    UpdateKind,
    UpdateRecord,
)
from wuacache_server.catalog.safexml import is_base64_digest
from wuacache_server.catalog.spool import Spool

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 5_000
_SHA1_BYTES = 20
_KINDS_BY_TYPE = {"Category": UpdateKind.CATEGORY, "Detectoid": UpdateKind.DETECTOID}
_MAX_FILE_NAME = 255


class CatalogSink(Protocol):
    """Receives the records of a parse, in batches of at most ``batch_size``.

    Order: updates and payload files while the fragment cabs are read, then
    categories, then the relationships (bundle members, supersedence, child
    files). A relationship only names revisions and files delivered earlier
    in the same parse, so the caller may store it under foreign keys.
    """

    def add_updates(self, records: list[UpdateRecord]) -> None: ...

    def add_payload_files(self, records: list[PayloadFileRecord]) -> None: ...

    def add_categories(self, records: list[CategoryRecord]) -> None: ...

    def add_bundle_members(self, records: list[BundleMemberRecord]) -> None: ...

    def add_supersedences(self, records: list[SupersedenceRecord]) -> None: ...

    def add_child_files(self, records: list[ChildFileRecord]) -> None: ...


@dataclass(frozen=True)
class ParsedCatalog:
    info: CatalogInfo
    fragment_cab_digests: Mapping[str, str]
    """Hex SHA-256 of every fragment cab, by name: pass it as
    ``skip_fragment_cabs`` when parsing the next publication."""
    skipped_fragment_cabs: frozenset[str]


def parse_catalog(
    cab_path: Path,
    sink: CatalogSink,
    *,
    workdir: Path | None = None,
    skip_fragment_cabs: Mapping[str, str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ParsedCatalog:
    """Parse the catalog ``cab_path``, delivering its records to ``sink``.

    Every revision of package.xml is delivered as an :class:`UpdateRecord`
    and every FileLocation (whose Id is a SHA-1) as a
    :class:`PayloadFileRecord`, whatever is skipped: a revision or file not
    delivered is gone from the catalog.

    Incremental parse: ``skip_fragment_cabs`` maps fragment cab names to the
    digests of a previous parse (its ``fragment_cab_digests``). A fragment
    cab whose digest did not change is not extracted. This relies on a
    revision's fragments never changing (a revised update gets a new
    RevisionId), so the caller keeps what it stored from that cab: the
    fragment fields of its updates (delivered with ``fragments_read``
    false), the name, size and SHA-256 of files it may describe (likewise),
    its categories and the members of its bundles (not delivered).

    Args:
        cab_path: the outer cab, already verified by the caller.
        sink: receives the records.
        workdir: where the scratch folder goes (the system's temporary
            folder by default); it needs the cab's size and package.xml's
            free.
        skip_fragment_cabs: digests of fragment cabs already imported.
        batch_size: the most records of one kind in one sink call.

    Raises:
        CatalogFormatError: the file is not a readable catalog. Records
            delivered before belong to no catalog: discard them (store a
            parse in one transaction).
    """
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=workdir, prefix="wsusscn2-") as scratch:
        parse = _Parse(Path(scratch), _Batches(sink, batch_size))
        parsed = parse.run(cab_path, skip_fragment_cabs or {})
    delivered = parse.batches.delivered
    logger.info(
        "parsed catalog %s (package %s): %d updates, %d payload files, %d categories; "
        "read %d fragment cabs, skipped %d unchanged, in %.1f s",
        cab_path,
        parsed.info.package_id,
        delivered[UpdateRecord],
        delivered[PayloadFileRecord],
        delivered[CategoryRecord],
        len(parsed.fragment_cab_digests) - len(parsed.skipped_fragment_cabs),
        len(parsed.skipped_fragment_cabs),
        time.monotonic() - started,
    )
    return parsed


@dataclass(frozen=True, slots=True)
class _Member:
    """A child, parked with its bundle until the bundle's ``c\\`` gives the order."""

    bundle_revision_id: int
    child_revision_id: int
    update_id: str
    revision_number: int


_Relation = SupersedenceRecord | ChildFileRecord | BundleMemberRecord


class _Parse:
    def __init__(self, scratch: Path, batches: _Batches) -> None:
        self.scratch = scratch
        self.batches = batches
        # Updates and members by fragment cab; relationships by record type.
        self.parked: Spool[PackageUpdate | _Member] = Spool(scratch / "parked")
        self.relations: Spool[_Relation] = Spool(scratch / "relations")
        self.revision_ids: set[int] = set()
        self.file_urls: dict[str, str] = {}
        self.described_files: set[str] = set()
        # By UpdateID: (RevisionNumber, record) of the latest revision read.
        self.categories: dict[str, tuple[int, CategoryRecord]] = {}
        # Bundles naming a category without @Type that no fragment typed yet.
        self.untyped: list[tuple[UpdateRecord, PackageUpdate]] = []

    def run(self, cab_path: Path, skip: Mapping[str, str]) -> ParsedCatalog:
        cab_sha256 = sha256_hex(cab_path)
        outer = self.scratch / "outer"
        extract(cab_path, outer)
        index = read_index(outer / "index.xml")
        package_xml = self._extract_package(outer, index)
        header = read_header(package_xml)
        self._read_package(package_xml, index)
        package_xml.unlink()

        digests: dict[str, str] = {}
        skipped: set[str] = set()
        for _, name in index.fragment_cabs:
            inner = _inner_cab(outer, name)
            digests[name] = sha256_hex(inner)
            if skip.get(name) == digests[name]:
                skipped.add(name)
                self._deliver_cab(name, None)
            else:
                self._deliver_cab(name, read_fragment_cab(inner))
            inner.unlink()
        if orphans := self._deliver_cab(None, {}):
            logger.warning("%d revisions lie below every fragment cab's RANGESTART: no fragments", orphans)

        self._deliver_untyped()
        self._deliver_undescribed_files(fragments_read=not skipped)
        for _, category in self.categories.values():
            self.batches.add(category)
        self.batches.flush()
        self._deliver_relations()
        self.batches.flush()
        info = CatalogInfo(header.package_id, header.package_version, header.creation_date, cab_sha256)
        return ParsedCatalog(info, digests, frozenset(skipped))

    def _extract_package(self, outer: Path, index: CatalogIndex) -> Path:
        package_cab = _inner_cab(outer, index.package_cab)
        extract(package_cab, self.scratch / "package")
        package_cab.unlink()
        return self.scratch / "package" / "package.xml"

    # package.xml ---------------------------------------------------------------

    def _read_package(self, path: Path, index: CatalogIndex) -> None:
        invalid_locations = 0
        for item in iter_package(path):
            if isinstance(item, FileLocation):
                if is_base64_digest(item.digest, _SHA1_BYTES):
                    self.file_urls.setdefault(item.digest, item.url)
                else:
                    invalid_locations += 1
                continue
            if item.revision_id in self.revision_ids:
                raise CatalogFormatError(f"package.xml lists revision {item.revision_id} twice")
            self.revision_ids.add(item.revision_id)
            self.parked.add(index.fragment_cab_for(item.revision_id), item)
            for bundle in item.bundled_by:
                member = _Member(bundle, item.revision_id, item.update_id, item.revision_number)
                self.parked.add(index.fragment_cab_for(bundle), member)
            for newer in item.superseded_by:
                self.relations.add(SupersedenceRecord, SupersedenceRecord(item.revision_id, newer))
            for digest in item.payload_files:
                self.relations.add(ChildFileRecord, ChildFileRecord(item.revision_id, digest))
        if invalid_locations:
            logger.warning("ignored %d FileLocations whose Id is not a base64 SHA-1", invalid_locations)

    # Fragment cabs -------------------------------------------------------------

    def _deliver_cab(self, name: str | None, fragments: Mapping[int, Fragments] | None) -> int:
        """Deliver the updates parked under cab ``name`` with the cab's
        ``fragments`` (None: the cab is skipped); returns their number."""
        updates: list[PackageUpdate] = []
        members: defaultdict[int, list[_Member]] = defaultdict(list)
        for item in self.parked.drain(name):
            if isinstance(item, _Member):
                members[item.bundle_revision_id].append(item)
            else:
                updates.append(item)
        for update in updates:
            if fragments is None:
                self._deliver_update(update, None)
                continue
            details = fragments.get(update.revision_id, NO_FRAGMENTS)
            self._deliver_update(update, details)
            for record in _ordered_members(update.revision_id, details, members.get(update.revision_id, [])):
                self.relations.add(BundleMemberRecord, record)
        if dangling := sum(len(items) for bundle, items in members.items() if bundle not in self.revision_ids):
            logger.warning("ignored %d BundledBy references to revisions package.xml does not list", dangling)
        return len(updates)

    def _deliver_update(self, update: PackageUpdate, fragments: Fragments | None) -> None:
        details = fragments or NO_FRAGMENTS
        product_id, classification_id, typed = self._classify(update)
        record = UpdateRecord(
            update_id=update.update_id,
            revision_number=update.revision_number,
            revision_id=update.revision_id,
            kind=_kind(update, details),
            title=details.title,
            description=details.description,
            kb_ids=details.kb_ids,
            msrc_severity=details.msrc_severity,
            product_id=product_id,
            classification_id=classification_id,
            creation_date=update.creation_date,
            reboot_behavior=details.reboot_behavior,
            min_download_size=details.min_download_size,
            max_download_size=details.max_download_size,
            languages=update.languages,
            fragments_read=fragments is not None,
        )
        if typed:
            self.batches.add(record)
        else:
            self.untyped.append((record, update))
        if record.kind is UpdateKind.CATEGORY:
            self._add_category(update, details)
        for file in details.files:
            self._describe_file(file)

    def _classify(self, update: PackageUpdate) -> tuple[str | None, str | None, bool]:
        """(product, classification, whether every category had a type).

        package.xml gives each category's ``@Type``; when it does not, the
        type comes from the category update's own ``c\\`` fragment (none
        when that fragment's cab is skipped).
        """
        product_id = classification_id = None
        typed = True
        for declared, category_id in update.categories:
            known = self.categories.get(category_id)
            category_type = declared or (known[1].category_type if known else None)
            if category_type is None:
                typed = False
            elif category_type == "Product" and product_id is None:
                product_id = category_id
            elif category_type == "UpdateClassification" and classification_id is None:
                classification_id = category_id
        return product_id, classification_id, typed

    def _add_category(self, update: PackageUpdate, fragments: Fragments) -> None:
        known = self.categories.get(update.update_id)
        if known is None or known[0] < update.revision_number:
            record = CategoryRecord(update.update_id, fragments.category_type, fragments.title)
            self.categories[update.update_id] = (update.revision_number, record)

    def _describe_file(self, file: FragmentFile) -> None:
        url = self.file_urls.get(file.digest)
        if url is None or file.digest in self.described_files:
            return
        self.described_files.add(file.digest)
        file_name = _plain_file_name(file.file_name) or _url_file_name(url)
        self.batches.add(PayloadFileRecord(file.digest, url, file_name, file.size, file.sha256_b64))

    # After the fragment cabs ---------------------------------------------------

    def _deliver_untyped(self) -> None:
        """Bundles whose untyped categories are now typed, or never will be."""
        for record, update in self.untyped:
            product_id, classification_id, _ = self._classify(update)
            self.batches.add(replace(record, product_id=product_id, classification_id=classification_id))
        self.untyped.clear()

    def _deliver_undescribed_files(self, *, fragments_read: bool) -> None:
        """FileLocations no fragment read described: unreferenced ones, and
        those whose children sit in skipped cabs."""
        for digest, url in self.file_urls.items():
            if digest not in self.described_files:
                record = PayloadFileRecord(digest, url, _url_file_name(url), None, None, fragments_read)
                self.batches.add(record)

    def _deliver_relations(self) -> None:
        dangling = 0
        for kind in (SupersedenceRecord, ChildFileRecord, BundleMemberRecord):
            for record in self.relations.drain(kind):
                if self._resolvable(record):
                    self.batches.add(record)
                else:
                    dangling += 1
        if dangling:
            logger.warning("ignored %d SupersededBy or PayloadFiles references the catalog cannot resolve", dangling)

    def _resolvable(self, record: _Relation) -> bool:
        match record:
            case SupersedenceRecord():
                return record.superseding_revision_id in self.revision_ids
            case ChildFileRecord():
                return record.sha1_b64 in self.file_urls
        return True


class _Batches:
    """Per-kind buffers of records, handed to the sink when full."""

    def __init__(self, sink: CatalogSink, size: int) -> None:
        if size < 1:
            raise ValueError(f"batch_size must be at least 1, not {size}")
        self._size = size
        self._senders: dict[type, Callable[[list[Any]], None]] = {
            UpdateRecord: sink.add_updates,
            PayloadFileRecord: sink.add_payload_files,
            CategoryRecord: sink.add_categories,
            BundleMemberRecord: sink.add_bundle_members,
            SupersedenceRecord: sink.add_supersedences,
            ChildFileRecord: sink.add_child_files,
        }
        self._pending: dict[type, list[object]] = {kind: [] for kind in self._senders}
        self.delivered: dict[type, int] = dict.fromkeys(self._senders, 0)

    def add(self, record: object) -> None:
        pending = self._pending[type(record)]
        pending.append(record)
        if len(pending) >= self._size:
            self._send(type(record))

    def flush(self) -> None:
        for kind, pending in self._pending.items():
            if pending:
                self._send(kind)

    def _send(self, kind: type) -> None:
        records, self._pending[kind] = self._pending[kind], []
        self._senders[kind](records)
        self.delivered[kind] += len(records)


def _inner_cab(outer: Path, name: str) -> Path:
    path = outer / name
    if not path.is_file():
        raise CatalogFormatError(f"index.xml names {name}, which the cab does not hold")
    return path


def _kind(update: PackageUpdate, fragments: Fragments) -> UpdateKind:
    if update.is_bundle:
        return UpdateKind.BUNDLE
    if update.deployed_by_bundle or update.bundled_by:
        return UpdateKind.CHILD
    return _KINDS_BY_TYPE.get(fragments.update_type or "", UpdateKind.OTHER)


def _ordered_members(bundle_revision_id: int, fragments: Fragments, members: list[_Member]) -> list[BundleMemberRecord]:
    """Members in the order of the bundle's ``c\\`` fragment; children it
    does not list (package.xml's BundledBy is what makes a member) follow by
    RevisionId."""
    listed = len(fragments.bundled_updates)
    order: dict[tuple[str, int | None], int] = {}
    for position, (update_id, revision_number) in enumerate(fragments.bundled_updates):
        order.setdefault((update_id, revision_number), position)
        order.setdefault((update_id, None), position)

    def rank(member: _Member) -> tuple[int, int]:
        position = order.get((member.update_id, member.revision_number), order.get((member.update_id, None), listed))
        return position, member.child_revision_id

    ranked = sorted(members, key=rank)
    return [
        BundleMemberRecord(bundle_revision_id, member.child_revision_id, position)
        for position, member in enumerate(ranked)
    ]


def _plain_file_name(name: str | None) -> str | None:
    """``name`` if it is a plain file name, safe to store a file under."""
    if (
        not name
        or len(name) > _MAX_FILE_NAME
        or name in (".", "..")
        or any(character in name for character in "/\\")
        or not name.isprintable()
    ):
        return None
    return name


def _url_file_name(url: str) -> str | None:
    return _plain_file_name(PurePosixPath(urlsplit(url).path).name)
