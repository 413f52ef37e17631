"""Importing lab catalogs into the database, on SQLite and on PostgreSQL.

The oracle is the generator's model (what each catalog was built from),
never the importer's own output; an incremental import is also held to the
result of a full import of the same cab.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, FromClause, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from wuacache_lab.cabfile import CabWriter
from wuacache_lab.catalog import CatalogSummary, generate_catalog
from wuacache_lab.catalog.model import Bundle, BundledUpdate, Catalog, CategoryUpdate, Detectoid, build_catalog
from wuacache_lab.catalog.writer import write_catalog_cab
from wuacache_lab.pki import ensure_lab_ca

from wuacache_server.catalog import CatalogFormatError
from wuacache_server.catalog import importer as importer_module
from wuacache_server.catalog.importer import CatalogImport, CatalogImportConflict, import_catalog
from wuacache_server.db.models import (
    BundleMember,
    CatalogVersion,
    Category,
    ChildFile,
    DownloadTask,
    DownloadTaskStatus,
    PayloadFile,
    Supersedence,
    Update,
)

UPDATES = 120
SEED = 5
# Small enough to spread the fragments over several fragment cabs.
FRAGMENTS_PER_CAB = 40
STORED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclass
class Publication:
    cab: Path
    model: Catalog


@dataclass
class Catalogs:
    first: Publication
    second: Publication
    """Generation 2, its unchanged fragment cabs byte for byte those of generation 1."""
    work: Path


def unpack(cab: Path, folder: Path) -> Path:
    subprocess.run(["cabextract", "-q", "-d", str(folder), str(cab)], check=True, capture_output=True)
    return folder


def members(inner_cab: Path, work: Path) -> dict[str, bytes]:
    folder = unpack(inner_cab, work)
    try:
        return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    finally:
        shutil.rmtree(folder)


def keep_unchanged_fragment_cabs(previous: CatalogSummary, current: CatalogSummary, target: Path, work: Path) -> int:
    """Write ``current`` to ``target`` with the fragment cabs whose members did
    not change taken byte for byte from ``previous``, as a publication that
    rebuilds only what changed would; returns how many were taken."""
    old, new = unpack(previous.cab, work / "previous"), unpack(current.cab, work / "current")
    kept = 0
    for inner in current.inner_cabs:
        if inner.range_start is None or not (old / inner.name).is_file():
            continue
        if members(old / inner.name, work / "a") == members(new / inner.name, work / "b"):
            shutil.copyfile(old / inner.name, new / inner.name)
            kept += 1
    with CabWriter(target) as writer:
        writer.add_path("index.xml", new / "index.xml")
        for inner in current.inner_cabs:
            writer.add_path(inner.name, new / inner.name)
    return kept


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory: pytest.TempPathFactory) -> Catalogs:
    work = tmp_path_factory.mktemp("catalogs")
    ca = ensure_lab_ca(work / "ca")
    first = generate_catalog(work / "g1", updates=UPDATES, seed=SEED, ca=ca, fragments_per_cab=FRAGMENTS_PER_CAB)
    second = generate_catalog(
        work / "g2", updates=UPDATES, seed=SEED, generation=2, ca=ca, fragments_per_cab=FRAGMENTS_PER_CAB
    )
    second_cab = work / "g2-incremental.cab"
    assert keep_unchanged_fragment_cabs(first, second, second_cab, work / "repack") >= 2
    return Catalogs(
        first=Publication(first.cab, build_catalog(updates=UPDATES, seed=SEED)),
        second=Publication(second_cab, build_catalog(updates=UPDATES, seed=SEED, generation=2)),
        work=work,
    )


def run_import(engine: Engine, cab: Path, tmp_path: Path, **options: Any) -> CatalogImport:
    workdir = tmp_path / "import-work"
    workdir.mkdir(exist_ok=True)
    result = import_catalog(engine, cab, workdir=workdir, **options)
    assert list(workdir.iterdir()) == [], "the import left files behind"
    return result


def rows(
    connection: Connection, table: FromClause, key: list[str], *, without: tuple[str, ...] = ()
) -> list[tuple[Any, ...]]:
    columns = [column for column in table.c if column.name not in without]
    result = connection.execute(select(*columns).order_by(*(table.c[name] for name in key)))
    return [tuple(row) for row in result]


def catalog_snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """The catalog tables, without the row ids an import is free to pick."""
    with engine.connect() as connection:
        child_files = connection.execute(
            select(ChildFile.child_revision_id, PayloadFile.sha1)
            .join(PayloadFile, PayloadFile.id == ChildFile.payload_file_id)
            .order_by(ChildFile.child_revision_id, PayloadFile.sha1)
        ).all()
        return {
            "updates": rows(connection, Update.__table__, ["revision_id"], without=("id", "catalog_version_id")),
            "categories": rows(connection, Category.__table__, ["update_id"]),
            "payload_files": rows(connection, PayloadFile.__table__, ["sha1"], without=("id",)),
            "bundle_members": rows(connection, BundleMember.__table__, ["bundle_revision_id", "child_revision_id"]),
            "supersedence": rows(
                connection, Supersedence.__table__, ["superseded_revision_id", "superseding_revision_id"]
            ),
            "child_files": [tuple(row) for row in child_files],
        }


def current_sha256(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return connection.scalar(
            select(CatalogVersion.sha256).order_by(CatalogVersion.imported_at.desc(), CatalogVersion.id.desc())
        )


def kind_of(update: Any) -> str:
    return {CategoryUpdate: "category", Detectoid: "detectoid", Bundle: "bundle", BundledUpdate: "child"}[type(update)]


# --- A whole catalog ---------------------------------------------------------------


def test_an_import_stores_the_catalog_the_cab_describes(engine: Engine, catalogs: Catalogs, tmp_path: Path) -> None:
    model = catalogs.first.model
    result = run_import(engine, catalogs.first.cab, tmp_path)

    assert (result.imported, result.updates_added, result.updates_removed) == (True, len(model.updates()), 0)
    assert (result.files_added, result.fragment_cabs_skipped) == (len(model.files), 0)
    with engine.connect() as connection:
        (version,) = connection.execute(select(CatalogVersion)).all()
        assert (version.package_id, version.creation_date) == (model.package_id, model.published)
        assert version.sha256 == result.sha256 == hashlib.sha256(catalogs.first.cab.read_bytes()).hexdigest()
        assert len(version.fragment_cabs) == result.fragment_cabs_read >= 3

        updates = {row.revision_id: row for row in connection.execute(select(Update))}
        assert {revision_id: row.kind for revision_id, row in updates.items()} == {
            update.revision_id: kind_of(update) for update in model.updates()
        }
        for update in model.updates():
            row = updates[update.revision_id]
            assert (row.update_id, row.revision_number, row.title) == (
                update.update_id,
                update.revision_number,
                update.title,
            )
            assert row.creation_date == update.created
            assert row.catalog_version_id == version.id
        for bundle in model.bundles:
            row = updates[bundle.revision_id]
            assert row.kb_ids == ([] if bundle.kb is None else [str(bundle.kb)])
            assert (row.msrc_severity, row.reboot_behavior) == (bundle.severity, bundle.kind.reboot)
            assert (row.product_id, row.classification_id) == (
                bundle.os.product.update_id,
                bundle.classification.update_id,
            )
            assert row.is_superseded == bool(bundle.superseded_by)
        assert any(row.is_superseded for row in updates.values())

        assert set(connection.execute(select(Category.update_id, Category.category_type, Category.name))) == {
            (update.update_id, update.category.category_type, update.category.name) for update in model.categories
        }
        assert set(
            connection.execute(select(Supersedence.superseded_revision_id, Supersedence.superseding_revision_id))
        ) == {(bundle.revision_id, newer.revision_id) for bundle in model.bundles for newer in bundle.superseded_by}
        members = connection.execute(
            select(BundleMember.bundle_revision_id, BundleMember.child_revision_id).order_by(BundleMember.position)
        ).all()
        for bundle in model.bundles:
            assert [child for parent, child in members if parent == bundle.revision_id] == [
                child.revision_id for child in bundle.children
            ]
        assert len(members) == sum(len(bundle.children) for bundle in model.bundles)

        files = {row.sha1: row for row in connection.execute(select(PayloadFile))}
        assert set(files) == {file.digest for file in model.files}
        for child in model.children():
            for file in child.files:
                stored = files[file.digest]
                assert (stored.url, stored.file_name, stored.size, stored.sha256) == (
                    file.url,
                    file.file_name,
                    file.size,
                    file.sha256_digest,
                )
                assert stored.stored_at is None
        child_files = connection.execute(select(ChildFile.child_revision_id, PayloadFile.sha1).join(PayloadFile)).all()
        assert sorted(child_files) == sorted(
            (child.revision_id, file.digest) for child in model.children() for file in child.files
        )


def test_the_same_cab_again_is_recognised_without_being_read(
    engine: Engine, catalogs: Catalogs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run_import(engine, catalogs.first.cab, tmp_path)
    before = catalog_snapshot(engine)

    def no_parse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a catalog the database holds must not be parsed again")

    monkeypatch.setattr(importer_module, "parse_catalog", no_parse)
    again = run_import(engine, catalogs.first.cab, tmp_path)

    assert (again.imported, again.catalog_version_id, again.sha256) == (False, first.catalog_version_id, first.sha256)
    assert catalog_snapshot(engine) == before
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(CatalogVersion)) == 1


def test_progress_is_logged_while_reading_and_a_summary_at_the_end(
    engine: Engine,
    catalogs: Catalogs,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importer_module, "PROGRESS_LOG_INTERVAL", 0.0)
    caplog.set_level(logging.INFO, logger=importer_module.__name__)

    result = run_import(engine, catalogs.first.cab, tmp_path, batch_size=25)

    messages = [record.getMessage() for record in caplog.records if record.name == importer_module.__name__]
    progress = [
        int(match[1])
        for message in messages
        if (match := re.fullmatch(r"catalog import: (\d+) updates, .* read so far", message))
    ]
    updates = len(catalogs.first.model.updates())
    assert len(progress) >= updates // 25
    assert progress == sorted(progress) and {25, 50, 75, 100} <= set(progress)
    assert messages[-1] == result.describe()
    assert f"updates +{updates} ~0 -0" in messages[-1]


# --- A new publication ------------------------------------------------------------


def digest(content: str) -> str:
    return base64.b64encode(hashlib.sha1(content.encode()).digest()).decode()


def add_file(connection: Connection, name: str, **values: Any) -> int:
    """A payload file of an earlier catalog, none of the lab's."""
    url = f"http://download.windowsupdate.com/d/msdownload/update/software/updt/2023/01/{name}"
    statement = insert(PayloadFile).values(sha1=digest(name), url=url, file_name=name, **values)
    file_id: int = connection.execute(statement.returning(PayloadFile.id)).scalar_one()
    return file_id


def test_a_new_publication_is_imported_incrementally(engine: Engine, catalogs: Catalogs, tmp_path: Path) -> None:
    old, new = catalogs.first.model, catalogs.second.model
    run_import(engine, catalogs.first.cab, tmp_path)
    stored_digest = old.bundles[0].children[0].files[0].digest
    with engine.begin() as connection:
        # Stored under a name the catalog no longer gives it: its bytes are there.
        connection.execute(
            update(PayloadFile)
            .where(PayloadFile.sha1 == stored_digest)
            .values(stored_at=STORED_AT, stored_size=1234, file_name="stored-earlier.cab")
        )
        # Files of an earlier catalog: one on disk, one being fetched, one neither.
        add_file(connection, "stored.cab", stored_at=STORED_AT, stored_size=99)
        fetching = add_file(connection, "fetching.cab")
        connection.execute(insert(DownloadTask).values(payload_file_id=fetching, status=DownloadTaskStatus.RUNNING))
        add_file(connection, "forgotten.cab")

    result = run_import(engine, catalogs.second.cab, tmp_path)

    assert result.fragment_cabs_skipped >= 2 and result.fragment_cabs_read >= 1
    revised = [bundle for bundle in new.bundles if bundle.revised]
    assert revised
    old_revisions = {update.revision_id for update in old.updates()}
    new_revisions = {update.revision_id for update in new.updates()}
    assert result.updates_added == len(new_revisions - old_revisions)
    assert result.updates_removed == len(old_revisions - new_revisions) == sum(1 + len(b.children) for b in revised)
    assert (result.files_removed, result.files_kept) == (1, 2)
    with engine.connect() as connection:
        updates = {row.revision_id: row for row in connection.execute(select(Update))}
        assert set(updates) == new_revisions
        for bundle in revised:
            row = updates[bundle.revision_id]
            assert (row.update_id, row.revision_number) == (bundle.update_id, bundle.revision_number)
            assert row.description == bundle.description
            assert row.description.endswith("This revision updates the update's details.")
        for bundle in new.bundles:
            assert updates[bundle.revision_id].is_superseded == bool(bundle.superseded_by)
            assert updates[bundle.revision_id].title == bundle.title
        # The new month's cumulative updates supersede the previous month's.
        newly_superseded = [b.revision_id for b in old.bundles if not b.superseded_by and b.revision_id in updates]
        assert any(updates[revision_id].is_superseded for revision_id in newly_superseded)
        assert set(
            connection.execute(select(Supersedence.superseded_revision_id, Supersedence.superseding_revision_id))
        ) == {(bundle.revision_id, newer.revision_id) for bundle in new.bundles for newer in bundle.superseded_by}
        files = {row.sha1: row for row in connection.execute(select(PayloadFile))}
        assert set(files) == {file.digest for file in new.files} | {digest("stored.cab"), digest("fetching.cab")}
        stored = files[stored_digest]
        assert (stored.stored_at, stored.stored_size, stored.file_name) == (STORED_AT, 1234, "stored-earlier.cab")
        current_version = connection.scalar(select(func.max(CatalogVersion.id)))
        first_version = connection.scalar(select(func.min(CatalogVersion.id)))
        assert {row.catalog_version_id for rid, row in updates.items() if rid in old_revisions} == {first_version}
        assert {row.catalog_version_id for rid, row in updates.items() if rid not in old_revisions} == {current_version}
    assert current_sha256(engine) == result.sha256


def test_an_incremental_import_ends_where_a_full_import_does(
    engine: Engine, catalogs: Catalogs, tmp_path: Path
) -> None:
    run_import(engine, catalogs.first.cab, tmp_path)
    incremental = run_import(engine, catalogs.second.cab, tmp_path)
    assert incremental.fragment_cabs_skipped >= 2
    after_incremental = catalog_snapshot(engine)
    with engine.begin() as connection:
        for model in (ChildFile, BundleMember, Supersedence, Update, PayloadFile, Category, CatalogVersion):
            connection.execute(delete(model))

    full = run_import(engine, catalogs.second.cab, tmp_path)

    assert full.fragment_cabs_skipped == 0
    assert catalog_snapshot(engine) == after_incremental


# --- Failures -----------------------------------------------------------------------


def cab_without_package(catalogs: Catalogs, target: Path) -> Path:
    """A cab whose index names a package.cab it does not hold."""
    target.parent.mkdir(parents=True)
    outer = unpack(catalogs.first.cab, target.parent / "unpacked")
    with CabWriter(target) as writer:
        for path in sorted(outer.iterdir()):
            if path.name != "package.cab":
                writer.add_path(path.name, path)
    return target


def cab_with_a_revision_twice(catalogs: Catalogs, target: Path) -> Path:
    """Generation 2 in which a new bundle claims the UpdateID and
    RevisionNumber of an old one: the database refuses it, half-way through
    the merge (after the revised revisions were removed)."""
    model = build_catalog(updates=UPDATES, seed=SEED, generation=2)
    old_revisions = {update.revision_id for update in catalogs.first.model.updates()}
    newest = next(bundle for bundle in reversed(model.bundles) if bundle.revision_id not in old_revisions)
    claimed = next(bundle for bundle in model.bundles if bundle.revision_id in old_revisions and not bundle.revised)
    newest.update_id, newest.revision_number = claimed.update_id, claimed.revision_number
    target.parent.mkdir(parents=True)
    write_catalog_cab(model, target, fragments_per_cab=FRAGMENTS_PER_CAB)
    return target


@pytest.mark.parametrize(
    ("break_cab", "error"),
    [(cab_without_package, CatalogFormatError), (cab_with_a_revision_twice, IntegrityError)],
    ids=["parse-error", "database-error"],
)
def test_a_failed_import_leaves_the_previous_catalog(
    engine: Engine,
    catalogs: Catalogs,
    tmp_path: Path,
    break_cab: Callable[[Catalogs, Path], Path],
    error: type[Exception],
) -> None:
    first = run_import(engine, catalogs.first.cab, tmp_path)
    before = catalog_snapshot(engine)
    broken = break_cab(catalogs, tmp_path / "broken" / "wsusscn2.cab")

    with pytest.raises(error):
        import_catalog(engine, broken, workdir=tmp_path)

    assert catalog_snapshot(engine) == before
    assert current_sha256(engine) == first.sha256
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(CatalogVersion)) == 1
    # The failure left nothing that blocks the next import.
    assert run_import(engine, catalogs.second.cab, tmp_path).imported


def test_an_import_committed_meanwhile_is_not_overwritten(
    engine: Engine, catalogs: Catalogs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two imports staged from the same catalog: the one that merges second
    would undo the first's changes with its stale view, so it gives up."""
    run_import(engine, catalogs.first.cab, tmp_path)
    # Generation 1 once more, unsigned: another file, so not taken for the imported one.
    again = generate_catalog(
        tmp_path / "again", updates=UPDATES, seed=SEED, ca=None, fragments_per_cab=FRAGMENTS_PER_CAB
    )
    real_parse = importer_module.parse_catalog
    meanwhile: list[CatalogImport] = []

    def parse_while_another_import_commits(*args: Any, **kwargs: Any) -> Any:
        parsed = real_parse(*args, **kwargs)
        if args[0] == again.cab:
            meanwhile.append(import_catalog(engine, catalogs.second.cab, workdir=tmp_path))
        return parsed

    monkeypatch.setattr(importer_module, "parse_catalog", parse_while_another_import_commits)

    with pytest.raises(CatalogImportConflict):
        import_catalog(engine, again.cab, workdir=tmp_path)

    assert current_sha256(engine) == meanwhile[0].sha256
    with engine.connect() as connection:
        revisions = set(connection.scalars(select(Update.revision_id)))
    assert revisions == {update.revision_id for update in catalogs.second.model.updates()}
