"""The catalog parser against real lab catalogs: generated cabs, real cabextract.

The oracle is the generator's model (what the catalog was built from) and
the payload files the upstream serves, never the parser's own output.
Catalogs a test needs changed are unpacked, edited and packed again with the
lab's cab writer.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree
from wuacache_lab.cabfile import CabWriter
from wuacache_lab.catalog import CatalogSummary, generate_catalog
from wuacache_lab.catalog.model import Bundle, Catalog, build_catalog
from wuacache_lab.catalog.payloads import upstream_path
from wuacache_lab.pki import ensure_lab_ca
from wuacache_server.catalog import (
    DEFAULT_BATCH_SIZE,
    BundleMemberRecord,
    CatalogFormatError,
    CategoryRecord,
    ChildFileRecord,
    ParsedCatalog,
    PayloadFileRecord,
    SupersedenceRecord,
    UpdateKind,
    UpdateRecord,
    parse_catalog,
)
from wuacache_server.catalog.index import read_index
from wuacache_server.catalog.spool import Spool

UPDATES = 260
SEED = 11
# Small enough to spread the fragments over several fragment cabs.
FRAGMENTS_PER_CAB = 150
NAMESPACE = "http://schemas.microsoft.com/msus/2004/02/OfflineSync"
NS = {"o": NAMESPACE}
PACKED_AT = datetime(2024, 3, 1, tzinfo=UTC)


@dataclass
class Collector:
    """A sink keeping every record, and the sequence of calls it got."""

    updates: list[UpdateRecord] = field(default_factory=list)
    payload_files: list[PayloadFileRecord] = field(default_factory=list)
    categories: list[CategoryRecord] = field(default_factory=list)
    bundle_members: list[BundleMemberRecord] = field(default_factory=list)
    supersedences: list[SupersedenceRecord] = field(default_factory=list)
    child_files: list[ChildFileRecord] = field(default_factory=list)
    calls: list[tuple[str, int]] = field(default_factory=list)

    def add_updates(self, records: list[UpdateRecord]) -> None:
        self._take("updates", records)

    def add_payload_files(self, records: list[PayloadFileRecord]) -> None:
        self._take("payload_files", records)

    def add_categories(self, records: list[CategoryRecord]) -> None:
        self._take("categories", records)

    def add_bundle_members(self, records: list[BundleMemberRecord]) -> None:
        self._take("bundle_members", records)

    def add_supersedences(self, records: list[SupersedenceRecord]) -> None:
        self._take("supersedences", records)

    def add_child_files(self, records: list[ChildFileRecord]) -> None:
        self._take("child_files", records)

    def _take(self, kind: str, records: Sequence[object]) -> None:
        self.calls.append((kind, len(records)))
        getattr(self, kind).extend(records)

    def update(self, revision_id: int) -> UpdateRecord:
        (record,) = (record for record in self.updates if record.revision_id == revision_id)
        return record

    def file(self, digest: str) -> PayloadFileRecord:
        (record,) = (record for record in self.payload_files if record.sha1_b64 == digest)
        return record

    def members(self) -> dict[int, list[int]]:
        """Child RevisionIds by bundle RevisionId, by position."""
        ordered = sorted(self.bundle_members, key=lambda member: member.position)
        members: defaultdict[int, list[int]] = defaultdict(list)
        for member in ordered:
            members[member.bundle_revision_id].append(member.child_revision_id)
        return dict(members)


@dataclass
class Generated:
    summary: CatalogSummary
    model: Catalog

    @property
    def cab(self) -> Path:
        cab: Path = self.summary.cab
        return cab


def parse(
    cab: Path,
    workdir: Path,
    *,
    skip_fragment_cabs: Mapping[str, str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> tuple[ParsedCatalog, Collector]:
    sink = Collector()
    workdir.mkdir(exist_ok=True)
    parsed = parse_catalog(cab, sink, workdir=workdir, skip_fragment_cabs=skip_fragment_cabs, batch_size=batch_size)
    assert list(workdir.iterdir()) == [], "the parse left files behind"
    return parsed, sink


def cabextract(*args: str | Path) -> str:
    completed = subprocess.run(["cabextract", *map(str, args)], capture_output=True, text=True, check=True)
    return completed.stdout


class CatalogEditor:
    """Unpacks a catalog to change it as a test needs, then packs it again.

    Only the inner cabs a test opened are rebuilt: the others keep their
    exact bytes, as an unchanged part of a new publication would.
    """

    def __init__(self, cab: Path, work: Path) -> None:
        self.work = work
        self.outer = work / "outer"
        cabextract("-q", "-d", self.outer, cab)
        self.opened: set[str] = set()

    def inner(self, name: str) -> Path:
        """The extracted folder of inner cab ``name``."""
        folder = self.work / name
        if name not in self.opened:
            cabextract("-q", "-d", folder, self.outer / name)
            self.opened.add(name)
        return folder

    def package_xml(self) -> Path:
        return self.inner("package.cab") / "package.xml"

    def fragment_cab_of(self, revision_id: int) -> str:
        """The fragment cab whose member list names ``c\\<revision_id>``."""
        index = etree.parse(self.outer / "index.xml").getroot()
        names: list[str] = [
            cab.get("NAME") for cab in index.iterfind("CABLIST/CAB") if cab.get("RANGESTART") is not None
        ]
        holders = [name for name in names if f" c/{revision_id}\n" in cabextract("-l", self.outer / name)]
        assert len(holders) == 1
        return holders[0]

    def fragment(self, member: str, revision_id: int) -> Path:
        return self.inner(self.fragment_cab_of(revision_id)) / member / str(revision_id)

    def pack(self, target: Path) -> Path:
        for name in self.opened:
            with CabWriter(self.outer / name) as writer:
                for path in sorted(self.work.joinpath(name).rglob("*")):
                    if path.is_file():
                        member = path.relative_to(self.work / name).as_posix().replace("/", "\\")
                        writer.add(member, path.read_bytes(), modified=PACKED_AT)
        with CabWriter(target) as writer:
            for path in sorted(self.outer.iterdir()):
                writer.add(path.name, path.read_bytes(), modified=PACKED_AT)
        return target


def edit_package(editor: CatalogEditor, change: Callable[[etree._Element], None]) -> None:
    """Apply ``change(root)`` to package.xml (small in tests: a DOM is fine)."""
    path = editor.package_xml()
    tree = etree.parse(path)
    change(tree.getroot())
    tree.write(path, xml_declaration=True, encoding="utf-8")


def package_update(root: etree._Element, revision_id: int) -> etree._Element:
    return root.find(f"o:Updates/o:Update[@RevisionId='{revision_id}']", NS)


def sha1_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha1(data).digest()).decode()


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    ca = ensure_lab_ca(tmp_path_factory.mktemp("ca"))
    summary = generate_catalog(
        tmp_path_factory.mktemp("catalog"), updates=UPDATES, seed=SEED, ca=ca, fragments_per_cab=FRAGMENTS_PER_CAB
    )
    return Generated(summary, build_catalog(updates=UPDATES, seed=SEED))


@pytest.fixture(scope="module")
def parsed(generated: Generated, tmp_path_factory: pytest.TempPathFactory) -> tuple[ParsedCatalog, Collector]:
    return parse(generated.cab, tmp_path_factory.mktemp("work"))


@pytest.fixture(scope="module")
def records(parsed: tuple[ParsedCatalog, Collector]) -> Collector:
    return parsed[1]


@pytest.fixture
def cabextract_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Record the cab each cabextract run opens (the real cabextract still runs)."""
    real = shutil.which("cabextract")
    assert real is not None
    shims = tmp_path / "shims"
    shims.mkdir()
    log = tmp_path / "cabextract.log"
    shim = shims / "cabextract"
    shim.write_text(f'#!/bin/sh\nfor cab; do :; done\necho "$cab" >> "{log}"\nexec "{real}" "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    return log


def bundle_sizes(bundle: Bundle) -> tuple[int, int]:
    """(MinDownloadSize, MaxDownloadSize): the smallest child's files, all distinct files."""
    distinct = {file.digest: file.size for child in bundle.children for file in child.files}
    return min(sum(file.size for file in child.files) for child in bundle.children), sum(distinct.values())


# --- A whole catalog ---------------------------------------------------------------


def test_catalog_info_identifies_the_publication(generated: Generated, parsed: tuple[ParsedCatalog, Collector]) -> None:
    info = parsed[0].info
    assert info.package_id == generated.model.package_id
    assert info.package_version == "1.1"
    assert info.creation_date == generated.model.published
    assert info.sha256 == hashlib.sha256(generated.cab.read_bytes()).hexdigest()


def test_every_update_of_the_catalog_is_a_record_of_its_kind(generated: Generated, records: Collector) -> None:
    model = generated.model
    expected = {
        **{update.revision_id: UpdateKind.CATEGORY for update in model.categories},
        **{update.revision_id: UpdateKind.DETECTOID for update in model.detectoids},
        **{bundle.revision_id: UpdateKind.BUNDLE for bundle in model.bundles},
        **{child.revision_id: UpdateKind.CHILD for child in model.children()},
    }
    assert {record.revision_id: record.kind for record in records.updates} == expected
    for update in model.updates():
        record = records.update(update.revision_id)
        assert (record.update_id, record.revision_number) == (update.update_id, update.revision_number)
        assert record.creation_date == update.created
        assert record.title == update.title
        assert record.fragments_read


def test_bundles_carry_kbs_severity_categories_and_sizes_from_their_fragments(
    generated: Generated, records: Collector
) -> None:
    for bundle in generated.model.bundles:
        record = records.update(bundle.revision_id)
        assert record.kb_ids == (() if bundle.kb is None else (str(bundle.kb),))
        assert record.msrc_severity == bundle.severity
        assert record.product_id == bundle.os.product.update_id
        assert record.classification_id == bundle.classification.update_id
        assert record.description == bundle.description
        assert record.reboot_behavior == bundle.kind.reboot
        assert (record.min_download_size, record.max_download_size) == bundle_sizes(bundle)
    assert {record.msrc_severity for record in records.updates} >= {"Critical", "Important", "Moderate", "Low", None}


def test_children_follow_their_bundle_in_its_order_with_their_languages(
    generated: Generated, records: Collector
) -> None:
    members = records.members()
    for bundle in generated.model.bundles:
        assert members.pop(bundle.revision_id) == [child.revision_id for child in bundle.children]
        for child in bundle.children:
            record = records.update(child.revision_id)
            assert record.languages == (() if child.language is None else (child.language,))
            assert (record.product_id, record.kb_ids) == (None, ())
    assert members == {}
    assert any(record.languages == ("fr",) for record in records.updates)


def test_categories_are_typed_and_named_by_their_own_fragments(generated: Generated, records: Collector) -> None:
    expected = {
        CategoryRecord(update.update_id, update.category.category_type, update.category.name)
        for update in generated.model.categories
    }
    assert len(records.categories) == len(expected)
    assert set(records.categories) == expected


def test_supersedence_names_both_revisions(generated: Generated, records: Collector) -> None:
    expected = {
        SupersedenceRecord(bundle.revision_id, newer.revision_id)
        for bundle in generated.model.bundles
        for newer in bundle.superseded_by
    }
    assert expected
    assert set(records.supersedences) == expected
    assert len(records.supersedences) == len(expected)


def test_payload_files_describe_the_bytes_upstream_serves(generated: Generated, records: Collector) -> None:
    files_dir = generated.summary.files_dir
    assert len(records.payload_files) == len(generated.model.files)
    described = 0
    for record in records.payload_files:
        content = upstream_path(files_dir, record.url).read_bytes()
        assert record.sha1_b64 == sha1_b64(content)
        assert record.fragments_read
        if record.size is not None:
            assert (record.size, record.sha256_b64) == (len(content), sha256_b64(content))
            described += 1
    assert described == len(records.payload_files) - 1  # all but the expired update's file


def test_payload_files_take_name_size_and_sha256_from_their_child_fragment(
    generated: Generated, records: Collector
) -> None:
    owned = {file.digest for child in generated.model.children() for file in child.files}
    hashless = 0
    for file in generated.model.files:
        record = records.file(file.digest)
        assert record.url == file.url
        if file.digest in owned:
            assert (record.file_name, record.size, record.sha256_b64) == (file.file_name, file.size, file.sha256_digest)
            hashless += "/filestreamingservice/" in file.url
        else:
            # An expired update's file: no fragment describes it.
            assert (record.file_name, record.size, record.sha256_b64) == (file.url.rsplit("/", 1)[1], None, None)
    assert hashless, "the catalog must hold hashless URLs, whose name only the fragment gives"
    assert len(owned) < len(generated.model.files)


def test_child_files_link_each_child_to_its_payloads(generated: Generated, records: Collector) -> None:
    expected = {
        ChildFileRecord(child.revision_id, file.digest) for child in generated.model.children() for file in child.files
    }
    assert set(records.child_files) == expected
    assert len(records.child_files) == len(expected)


def test_fragments_at_and_around_each_range_start_are_found(generated: Generated, records: Collector) -> None:
    revisions = sorted(update.revision_id for update in generated.model.updates())
    titles = {update.revision_id: update.title for update in generated.model.updates()}
    starts = [cab.range_start for cab in generated.summary.inner_cabs if cab.range_start]
    assert len(starts) >= 3
    for start in starts:
        assert start in titles
        before = revisions[revisions.index(start) - 1]
        after = revisions[revisions.index(start) + 1]
        for revision_id in (before, start, after):
            assert records.update(revision_id).title == titles[revision_id]


def test_index_picks_the_largest_range_start_at_or_below_a_revision(tmp_path: Path) -> None:
    index_xml = tmp_path / "index.xml"
    index_xml.write_text(
        '<INDEX VERSION="1"><CABLIST XOR="0"><CAB NAME="package.cab"/>'
        '<CAB NAME="package3.cab" RANGESTART="500" FILESDIR="1"/>'
        '<CAB NAME="package2.cab" RANGESTART="100" FILESDIR="1"/></CABLIST></INDEX>'
    )
    index = read_index(index_xml)
    assert index.package_cab == "package.cab"
    assert [index.fragment_cab_for(revision) for revision in (99, 100, 101, 499, 500, 501)] == [
        None,
        "package2.cab",
        "package2.cab",
        "package2.cab",
        "package3.cab",
        "package3.cab",
    ]


def test_spool_gives_back_each_key_in_order_from_disk_and_memory(tmp_path: Path) -> None:
    spool: Spool[int] = Spool(tmp_path / "spool", buffered_items=7)
    for number in range(50):
        spool.add(number % 3, number)
    assert any((tmp_path / "spool").iterdir()), "the items beyond the buffer must have gone to disk"
    assert list(spool.drain(1)) == list(range(1, 50, 3))
    spool.add(1, 99)
    assert list(spool.drain(1)) == [99]
    assert list(spool.drain(0)) == list(range(0, 50, 3))
    assert list(spool.drain(2)) == list(range(2, 50, 3))
    assert list(spool.drain(2)) == []
    assert list((tmp_path / "spool").iterdir()) == []


def test_sink_gets_bounded_batches_with_relationships_last(generated: Generated, tmp_path: Path) -> None:
    _, sink = parse(generated.cab, tmp_path / "work", batch_size=40)
    assert max(size for _, size in sink.calls) == 40
    assert all(size > 0 for _, size in sink.calls)
    kinds = [kind for kind, _ in sink.calls]
    assert kinds.count("updates") == -(-len(sink.updates) // 40)
    first_relationship = min(kinds.index(kind) for kind in ("bundle_members", "supersedences", "child_files"))
    last_entity = max(len(kinds) - 1 - kinds[::-1].index(kind) for kind in ("updates", "payload_files", "categories"))
    assert last_entity < first_relationship


# --- Incremental parse ---------------------------------------------------------------


def test_unchanged_fragment_cabs_are_not_extracted_again(
    generated: Generated, tmp_path: Path, cabextract_log: Path
) -> None:
    first, _ = parse(generated.cab, tmp_path / "work")
    bundle = generated.model.bundles[len(generated.model.bundles) // 2]
    editor = CatalogEditor(generated.cab, tmp_path / "edit")
    changed_cab = editor.fragment_cab_of(bundle.revision_id)
    title = editor.fragment("l/en", bundle.revision_id)
    title.write_text(title.read_text().replace(bundle.title, "Revised title"))
    republished = editor.pack(tmp_path / "republished.cab")
    cabextract_log.unlink()

    second, sink = parse(republished, tmp_path / "work", skip_fragment_cabs=first.fragment_cab_digests)

    extracted = [Path(line).name for line in cabextract_log.read_text().splitlines()]
    assert set(extracted) == {"republished.cab", "package.cab", changed_cab}
    assert second.skipped_fragment_cabs == set(first.fragment_cab_digests) - {changed_cab}
    assert second.fragment_cab_digests[changed_cab] != first.fragment_cab_digests[changed_cab]
    assert sink.update(bundle.revision_id).title == "Revised title"
    read = {record.revision_id for record in sink.updates if record.fragments_read}
    assert bundle.revision_id in read
    assert len(sink.updates) == len(generated.model.updates())
    for update in generated.model.updates():
        record = sink.update(update.revision_id)
        if record.revision_id in read:
            continue
        # Placeholders where fragments speak; package.xml's fields as ever.
        assert (record.title, record.kb_ids, record.msrc_severity) == ("", (), None)
        assert record.kind in (UpdateKind.BUNDLE, UpdateKind.CHILD, UpdateKind.OTHER)
        assert record.creation_date == update.created
        if isinstance(update, Bundle):
            assert record.product_id == update.os.product.update_id
    assert {member.bundle_revision_id for member in sink.bundle_members} <= read
    assert len(sink.payload_files) == len(generated.model.files)
    assert any(not record.fragments_read for record in sink.payload_files)
    # Relationships from package.xml do not depend on fragments.
    assert len(sink.supersedences) == sum(len(bundle.superseded_by) for bundle in generated.model.bundles)


def test_a_parse_without_previous_digests_reads_every_fragment_cab(
    generated: Generated, tmp_path: Path, cabextract_log: Path
) -> None:
    parsed, _ = parse(generated.cab, tmp_path / "work", skip_fragment_cabs={"package2.cab": "0" * 64})
    assert parsed.skipped_fragment_cabs == frozenset()
    extracted = {Path(line).name for line in cabextract_log.read_text().splitlines()}
    assert extracted >= set(parsed.fragment_cab_digests)


# --- Tolerance -----------------------------------------------------------------------


def test_parser_reads_by_the_format_not_by_the_generator_habits(generated: Generated, tmp_path: Path) -> None:
    model = generated.model
    bare, untyped = model.bundles[3], model.bundles[4]
    # A hashless file of its own: only its x\ fragment names it.
    renamed_child = next(
        child
        for child in model.children()
        if "/filestreamingservice/" in child.files[0].url and child.bundle.kind.name != "dotnet"
    )
    unsafe = renamed_child.files[0]
    editor = CatalogEditor(generated.cab, tmp_path / "edit")
    # A bundle without x\ nor l\en\ fragments.
    editor.fragment("x", bare.revision_id).unlink()
    editor.fragment("l/en", bare.revision_id).unlink()
    # Another language, which must not replace the English title.
    french = editor.fragment("l/en", untyped.revision_id).parent.parent / "fr" / str(untyped.revision_id)
    french.parent.mkdir()
    french.write_text("<LocalizedProperties><Language>fr</Language><Title>Mise à jour</Title></LocalizedProperties>")
    # A file name that would leave the repository folder.
    extended = editor.fragment("x", renamed_child.revision_id)
    extended.write_text(extended.read_text().replace(unsafe.file_name, "..\\..\\evil.cab"))

    def change(root: etree._Element) -> None:
        for category in package_update(root, untyped.revision_id).iterfind("o:Categories/o:Category", NS):
            del category.attrib["Type"]
        child = package_update(root, untyped.children[0].revision_id)
        del child.attrib["DefaultLanguage"]
        child.set("FutureAttribute", "yes")
        prerequisites = child.find("o:Prerequisites", NS)
        either = etree.SubElement(prerequisites, f"{{{NAMESPACE}}}Or")
        for architecture in ("59653007-e2e9-4f71-8525-2ff588527978", "aabd43ad-a183-4f0b-8eee-8dbbcd67687f"):
            etree.SubElement(either, f"{{{NAMESPACE}}}UpdateId", Id=architecture)
        etree.SubElement(child, f"{{{NAMESPACE}}}FutureElement").text = "ignored"

    edit_package(editor, change)
    _, sink = parse(editor.pack(tmp_path / "edited.cab"), tmp_path / "work")

    bare_record = sink.update(bare.revision_id)
    assert bare_record.kind is UpdateKind.BUNDLE
    assert (bare_record.title, bare_record.kb_ids, bare_record.max_download_size) == ("", (), None)
    assert bare_record.fragments_read
    assert bare_record.product_id == bare.os.product.update_id
    untyped_record = sink.update(untyped.revision_id)
    assert untyped_record.title == untyped.title
    assert (untyped_record.product_id, untyped_record.classification_id) == (
        untyped.os.product.update_id,
        untyped.classification.update_id,
    )
    assert sink.update(untyped.children[0].revision_id).kind is UpdateKind.CHILD
    assert len(sink.updates) == len(model.updates())
    assert sink.file(unsafe.digest).file_name == unsafe.url.rsplit("/", 1)[1]


# --- Not a catalog -------------------------------------------------------------------


def _replace_package_xml(content: bytes) -> Callable[[CatalogEditor], None]:
    def edit(editor: CatalogEditor) -> None:
        editor.package_xml().write_bytes(content)

    return edit


def _remove_index(editor: CatalogEditor) -> None:
    (editor.outer / "index.xml").unlink()


def _remove_fragment_cab(editor: CatalogEditor) -> None:
    (editor.outer / "package3.cab").unlink()


def _doctype_in_index(editor: CatalogEditor) -> None:
    path = editor.outer / "index.xml"
    path.write_bytes(path.read_bytes().replace(b"<INDEX", b'<!DOCTYPE INDEX [<!ENTITY a "a">]><INDEX', 1))


def _truncated_fragment_cab(editor: CatalogEditor) -> None:
    path = editor.outer / "package3.cab"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _damaged_fragment_cab(editor: CatalogEditor) -> None:
    """Damage the last data block: the member list still reads."""
    path = editor.outer / "package3.cab"
    data = path.read_bytes()
    path.write_bytes(data[:-64] + bytes(64))


def _wrong_namespace(editor: CatalogEditor) -> None:
    path = editor.package_xml()
    path.write_bytes(path.read_bytes().replace(NAMESPACE.encode(), b"urn:not-offline-sync"))


def _truncated_package(editor: CatalogEditor) -> None:
    path = editor.package_xml()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _revision_id_not_a_number(editor: CatalogEditor) -> None:
    path = editor.package_xml()
    path.write_bytes(path.read_bytes().replace(b'RevisionId="4', b'RevisionId="x4', 1))


def _malformed_fragment(editor: CatalogEditor) -> None:
    path = editor.inner("package2.cab") / "c"
    next(path.iterdir()).write_bytes(b"<UpdateIdentity UpdateID=")


ENTITY_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE OfflineSyncPackage [<!ENTITY a "aaaaaaaaaa">'
    b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    b'<OfflineSyncPackage xmlns="' + NAMESPACE.encode() + b'" PackageId="p" CreationDate="2024-01-01T00:00:00Z">'
    b"<Updates>&b;</Updates></OfflineSyncPackage>"
)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_remove_index, "no index.xml"),
        (_remove_fragment_cab, "package3.cab"),
        (_truncated_fragment_cab, "package3.cab cannot be extracted"),
        (_damaged_fragment_cab, "package3.cab cannot be extracted: .*checksum error"),
        (_replace_package_xml(ENTITY_BOMB), "DTD"),
        (_doctype_in_index, "DTD"),
        (_wrong_namespace, "not OfflineSyncPackage"),
        (_truncated_package, "not well-formed"),
        (_revision_id_not_a_number, "not an integer"),
        (_malformed_fragment, "not well-formed"),
    ],
    ids=[
        "no-index",
        "missing-fragment-cab",
        "truncated-fragment-cab",
        "damaged-fragment-cab",
        "dtd",
        "dtd-in-index",
        "namespace",
        "truncated",
        "revision-id",
        "fragment",
    ],
)
def test_a_cab_that_is_not_a_readable_catalog_is_refused(
    generated: Generated, tmp_path: Path, edit: Callable[[CatalogEditor], None], message: str
) -> None:
    editor = CatalogEditor(generated.cab, tmp_path / "edit")
    edit(editor)
    broken = editor.pack(tmp_path / "broken.cab")
    with pytest.raises(CatalogFormatError, match=message):
        parse(broken, tmp_path / "work")
    assert list((tmp_path / "work").iterdir()) == []


def test_a_file_that_is_no_cab_is_refused(tmp_path: Path) -> None:
    not_a_cab = tmp_path / "wsusscn2.cab"
    not_a_cab.write_bytes(b"<html>Service Unavailable</html>" * 100)
    with pytest.raises(CatalogFormatError, match="cannot be extracted"):
        parse(not_a_cab, tmp_path / "work")
    assert list((tmp_path / "work").iterdir()) == []


def test_a_cab_without_package_xml_is_refused(generated: Generated, tmp_path: Path) -> None:
    editor = CatalogEditor(generated.cab, tmp_path / "edit")
    editor.package_xml().rename(editor.inner("package.cab") / "other.xml")
    with pytest.raises(CatalogFormatError, match=r"no package\.xml"):
        parse(editor.pack(tmp_path / "broken.cab"), tmp_path / "work")
