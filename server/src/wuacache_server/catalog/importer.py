"""Importing a verified ``wsusscn2.cab`` into the catalog tables.

An import has two phases, so that the database is locked for seconds rather
than for the minutes a parse of Microsoft's catalog takes (SQLite has one
writer at a time, and host reports must not wait that long):

1. *Staging*: the parser's records go, batch by batch, into temporary tables
   of one connection. They are private to it and live outside the database
   file, so no other connection waits for them.
2. *Merge*: one transaction brings the catalog tables in line with the
   staged catalog, in set-based statements that write only what changed.
   Any failure rolls it back whole: the previous catalog stays as it was.

Incremental: the parser gets the fragment cab digests recorded for the
current catalog version and skips the unchanged cabs; the merge then keeps
what the database holds from them (the fragment fields of their revisions,
the members of their bundles, the names, sizes and SHA-256 of their files).

What the merge preserves of the server's own state: ``stored_at`` and
``stored_size`` of payload files, and the name of a stored file (its bytes
are on disk under that name). A payload file that left the catalog is
removed unless it is stored or being downloaded: deleting files is the
cleanup's job, which then drops the row. Each update keeps the catalog
version that first listed its revision (a revision never changes).
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    case,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from wuacache_server.catalog.cabextract import sha256_hex
from wuacache_server.catalog.parser import DEFAULT_BATCH_SIZE, ParsedCatalog, parse_catalog
from wuacache_server.catalog.records import (
    FRAGMENT_FIELDS,
    BundleMemberRecord,
    CategoryRecord,
    ChildFileRecord,
    PayloadFileRecord,
    SupersedenceRecord,
    UpdateRecord,
)
from wuacache_server.db.engine import DEFERRED_BEGIN
from wuacache_server.db.models import (
    ACTIVE_DOWNLOAD_STATUSES,
    GUID,
    Base,
    BundleMember,
    CatalogVersion,
    Category,
    CategoryType,
    ChildFile,
    DownloadTask,
    JSONDocument,
    PayloadFile,
    Supersedence,
    Update,
    UTCDateTime,
    utcnow,
)

logger = logging.getLogger(__name__)

PROGRESS_LOG_INTERVAL = 5.0  # seconds
# Serialises merges on PostgreSQL (SQLite serialises every writer anyway).
_MERGE_LOCK_KEY = 0x5755_4143_4154  # "WUACAT"
_CATEGORY_TYPES = frozenset(CategoryType)
_CATEGORY_NAME_LENGTH = 255  # of the categories.name column


class CatalogImportConflict(Exception):
    """Another import changed the catalog while this one was staged."""


@dataclass(frozen=True)
class CatalogImport:
    """What one import did. Counts are of rows added, changed and removed."""

    catalog_version_id: int
    sha256: str
    imported: bool
    """False: the database already held this catalog; nothing was read."""
    updates_added: int = 0
    updates_changed: int = 0
    updates_removed: int = 0
    files_added: int = 0
    files_removed: int = 0
    files_kept: int = 0
    """Files no longer in the catalog kept because they are stored or being downloaded."""
    fragment_cabs_read: int = 0
    fragment_cabs_skipped: int = 0
    duration_seconds: float = 0.0

    def describe(self) -> str:
        if not self.imported:
            return f"catalog {self.sha256[:12]} already imported"
        return (
            f"catalog {self.sha256[:12]} imported: updates +{self.updates_added} ~{self.updates_changed} "
            f"-{self.updates_removed}, files +{self.files_added} -{self.files_removed}, "
            f"{self.fragment_cabs_skipped} of {self.fragment_cabs_read + self.fragment_cabs_skipped} "
            f"fragment cabs unchanged, in {self.duration_seconds:.1f} s"
        )


_LATEST_FIRST = (CatalogVersion.imported_at.desc(), CatalogVersion.id.desc())


def current_catalog_version(session: Session) -> CatalogVersion | None:
    """The catalog version the tables hold: the one imported last."""
    return session.scalars(select(CatalogVersion).order_by(*_LATEST_FIRST).limit(1)).first()


def import_catalog(
    engine: Engine,
    cab_path: Path,
    *,
    workdir: Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> CatalogImport:
    """Make the catalog tables describe ``cab_path``.

    Args:
        engine: the server's database, migrated.
        cab_path: the catalog, verified by the caller (signature, integrity).
        workdir: where the parser's scratch folder goes (see :func:`parse_catalog`).
        batch_size: the most rows of one kind written at once.

    Raises:
        CatalogFormatError: the cab is not a readable catalog.
        CatalogImportConflict: another import committed meanwhile.
        SQLAlchemyError: the database refused the catalog.

    The previous catalog is intact after any of these. Callers serialise
    imports; the merge only makes sure a concurrent one is noticed.
    """
    started = time.monotonic()
    sha256 = sha256_hex(cab_path)
    with engine.connect() as connection:
        current = connection.execute(
            select(CatalogVersion.id, CatalogVersion.sha256, CatalogVersion.fragment_cabs)
            .order_by(*_LATEST_FIRST)
            .limit(1)
        ).first()
    if current is not None and current.sha256 == sha256:
        logger.info("catalog %s is the one the database holds: nothing to import", sha256[:12])
        return CatalogImport(catalog_version_id=current.id, sha256=sha256, imported=False)

    logger.info("importing catalog %s", sha256[:12])
    with engine.connect() as connection:
        try:
            # Staging writes temporary tables only: on SQLite, it must not hold
            # the database's write lock for as long as the parse takes.
            connection.execution_options(**{DEFERRED_BEGIN: True})
            with connection.begin():
                _staging.create_all(connection, checkfirst=False)
            sink = _StagingSink(connection)
            with connection.begin():
                parsed = parse_catalog(
                    cab_path,
                    sink,
                    workdir=workdir,
                    skip_fragment_cabs=current.fragment_cabs if current is not None else None,
                    batch_size=batch_size,
                )
            logger.info("catalog %s staged (%s); merging it into the database", sha256[:12], sink.describe())
            connection.execution_options(**{DEFERRED_BEGIN: False})
            with connection.begin():
                merge = _Merge(connection, parsed, previous_version_id=current.id if current is not None else None)
                result = merge.run(started)
        finally:
            # The staging tables go with the connection, which never returns
            # to the pool with them.
            connection.invalidate()
    logger.info("%s", result.describe())
    return result


# --- Staging -------------------------------------------------------------------------

_staging = MetaData()
_TEMPORARY = ("TEMPORARY",)

_staged_updates = Table(
    "staged_updates",
    _staging,
    Column("revision_id", Integer, primary_key=True),
    Column("update_id", GUID, nullable=False),
    Column("revision_number", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("kb_ids", JSONDocument, nullable=False),
    Column("msrc_severity", String(32)),
    Column("product_id", GUID),
    Column("classification_id", GUID),
    Column("creation_date", UTCDateTime(), nullable=False),
    Column("reboot_behavior", String(32)),
    Column("min_download_size", BigInteger),
    Column("max_download_size", BigInteger),
    Column("fragments_read", Boolean, nullable=False),
    prefixes=_TEMPORARY,
)
_staged_payload_files = Table(
    "staged_payload_files",
    _staging,
    Column("sha1", String(28), primary_key=True),
    Column("url", Text, nullable=False),
    Column("file_name", String(255), nullable=False),
    Column("size", BigInteger),
    Column("sha256", String(44)),
    Column("fragments_read", Boolean, nullable=False),
    prefixes=_TEMPORARY,
)
_staged_categories = Table(
    "staged_categories",
    _staging,
    Column("update_id", GUID, primary_key=True),
    Column("category_type", String(32), nullable=False),
    Column("name", String(255)),
    prefixes=_TEMPORARY,
)
_staged_bundle_members = Table(
    "staged_bundle_members",
    _staging,
    Column("bundle_revision_id", Integer, primary_key=True),
    Column("child_revision_id", Integer, primary_key=True),
    Column("position", Integer, nullable=False),
    prefixes=_TEMPORARY,
)
_staged_supersedence = Table(
    "staged_supersedence",
    _staging,
    Column("superseded_revision_id", Integer, primary_key=True),
    Column("superseding_revision_id", Integer, primary_key=True),
    prefixes=_TEMPORARY,
)
_staged_child_files = Table(
    "staged_child_files",
    _staging,
    Column("child_revision_id", Integer, primary_key=True),
    Column("sha1", String(28), primary_key=True),
    prefixes=_TEMPORARY,
)


class _StagingSink:
    """The parser's sink: writes each batch into the staging tables."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.updates = 0
        self.payload_files = 0
        self._next_log = time.monotonic() + PROGRESS_LOG_INTERVAL

    def add_updates(self, records: list[UpdateRecord]) -> None:
        self._insert(_staged_updates, [_update_row(record) for record in records])
        self.updates += len(records)
        self._log_progress()

    def add_payload_files(self, records: list[PayloadFileRecord]) -> None:
        self._insert(_staged_payload_files, [_payload_file_row(record) for record in records])
        self.payload_files += len(records)
        self._log_progress()

    def add_categories(self, records: list[CategoryRecord]) -> None:
        rows = [
            {"update_id": record.update_id, "category_type": record.category_type, "name": _category_name(record)}
            for record in records
            if record.category_type in _CATEGORY_TYPES
        ]
        if len(rows) < len(records):
            # A category update like any other, but no category row: its
            # type is none the server (or a host's report) knows.
            logger.warning("ignored %d categories of an unknown type", len(records) - len(rows))
        self._insert(_staged_categories, rows)

    def add_bundle_members(self, records: list[BundleMemberRecord]) -> None:
        self._insert(_staged_bundle_members, [asdict(record) for record in records])

    def add_supersedences(self, records: list[SupersedenceRecord]) -> None:
        self._insert(_staged_supersedence, [asdict(record) for record in records])

    def add_child_files(self, records: list[ChildFileRecord]) -> None:
        self._insert(
            _staged_child_files,
            [{"child_revision_id": record.child_revision_id, "sha1": record.sha1_b64} for record in records],
        )

    def describe(self) -> str:
        return f"{self.updates} updates, {self.payload_files} payload files"

    def _insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.connection.execute(table.insert(), rows)

    def _log_progress(self) -> None:
        now = time.monotonic()
        if now >= self._next_log:
            logger.info("catalog import: %s read so far", self.describe())
            self._next_log = now + PROGRESS_LOG_INTERVAL


def _update_row(record: UpdateRecord) -> dict[str, Any]:
    return {
        "revision_id": record.revision_id,
        "update_id": record.update_id,
        "revision_number": record.revision_number,
        "kind": record.kind.value,
        "title": record.title,
        "description": record.description,
        "kb_ids": list(record.kb_ids),
        "msrc_severity": record.msrc_severity,
        "product_id": record.product_id,
        "classification_id": record.classification_id,
        "creation_date": record.creation_date,
        "reboot_behavior": record.reboot_behavior,
        "min_download_size": record.min_download_size,
        "max_download_size": record.max_download_size,
        "fragments_read": record.fragments_read,
    }


def _payload_file_row(record: PayloadFileRecord) -> dict[str, Any]:
    return {
        "sha1": record.sha1_b64,
        "url": record.url,
        # Neither the fragment nor the URL gives a plain name: the digest
        # (hex, as plain as a name gets) keeps the file storable.
        "file_name": record.file_name or base64.b64decode(record.sha1_b64).hex(),
        "size": record.size,
        "sha256": record.sha256_b64,
        "fragments_read": record.fragments_read,
    }


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def _category_name(record: CategoryRecord) -> str | None:
    return record.name[:_CATEGORY_NAME_LENGTH] or None


# --- Merge ---------------------------------------------------------------------------


class _Merge:
    """The statements that bring the catalog tables in line with the staging tables."""

    def __init__(self, connection: Connection, parsed: ParsedCatalog, *, previous_version_id: int | None) -> None:
        self.connection = connection
        self.parsed = parsed
        self.previous_version_id = previous_version_id
        self.postgresql = connection.dialect.name == "postgresql"

    def run(self, started: float) -> CatalogImport:
        version_id = self._record_version()
        self._check_previous_version(version_id)
        self._analyze_staging()
        updates_added, updates_changed, updates_removed = self._merge_updates(version_id)
        self._merge_categories()
        files_added, files_removed, files_kept = self._merge_payload_files()
        self._merge_supersedence()
        self._merge_bundle_members()
        self._merge_child_files()
        skipped = len(self.parsed.skipped_fragment_cabs)
        return CatalogImport(
            catalog_version_id=version_id,
            sha256=self.parsed.info.sha256,
            imported=True,
            updates_added=updates_added,
            updates_changed=updates_changed,
            updates_removed=updates_removed,
            files_added=files_added,
            files_removed=files_removed,
            files_kept=files_kept,
            fragment_cabs_read=len(self.parsed.fragment_cab_digests) - skipped,
            fragment_cabs_skipped=skipped,
            duration_seconds=time.monotonic() - started,
        )

    def _upsert(self, table: Table) -> Any:
        """INSERT ... ON CONFLICT, in the dialect's own spelling."""
        return (postgresql.insert if self.postgresql else sqlite.insert)(table)

    def _upsert_changed(
        self, table: Table, query: Select[Any], keys: list[str], *, insert_only: tuple[str, ...] = ()
    ) -> int:
        """Insert the rows of ``query`` into ``table``; a row whose ``keys``
        exist updates the stored one (but for ``insert_only`` columns), only
        where a column differs: unchanged rows are not rewritten (no dead
        tuples on PostgreSQL, nothing counted). Returns the rows inserted or
        changed."""
        names = [column.name for column in query.selected_columns]
        # SQLite needs a WHERE to tell a join's ON from ON CONFLICT.
        statement = self._upsert(table).from_select(names, query.where(true()))
        columns = [name for name in names if name not in keys and name not in insert_only]
        statement = statement.on_conflict_do_update(
            index_elements=keys,
            set_={name: statement.excluded[name] for name in columns},
            where=or_(*(table.c[name].is_distinct_from(statement.excluded[name]) for name in columns)),
        )
        # Drivers report the rows an INSERT wrote only when asked to.
        written: int = self.connection.execute(statement.execution_options(preserve_rowcount=True)).rowcount
        return written

    def _record_version(self) -> int:
        # Merges take turns: PostgreSQL through a lock; on SQLite this first
        # statement writes, which takes the database's write lock before
        # anything is read, so nothing read can go stale.
        if self.postgresql:
            self.connection.execute(select(func.pg_advisory_xact_lock(_MERGE_LOCK_KEY)))
        info = self.parsed.info
        statement = self._upsert(_table(CatalogVersion)).values(
            sha256=info.sha256,
            package_id=info.package_id,
            package_version=info.package_version or "",
            creation_date=info.creation_date,
            imported_at=utcnow(),
            fragment_cabs=dict(self.parsed.fragment_cab_digests),
        )
        # A publication imported before (upstream went back to it) becomes current again.
        statement = statement.on_conflict_do_update(
            index_elements=["sha256"],
            set_={name: statement.excluded[name] for name in ("imported_at", "fragment_cabs")},
        ).returning(CatalogVersion.id)
        version_id: int = self.connection.execute(statement).scalar_one()
        return version_id

    def _check_previous_version(self, version_id: int) -> None:
        latest_other = self.connection.execute(
            select(CatalogVersion.id).where(CatalogVersion.id != version_id).order_by(*_LATEST_FIRST).limit(1)
        ).scalar()
        if latest_other != self.previous_version_id:
            raise CatalogImportConflict(
                "another import changed the catalog while this one was being read; run the import again"
            )

    def _analyze_staging(self) -> None:
        # Autovacuum never sees temporary tables: without statistics,
        # PostgreSQL's planner would guess their sizes.
        if self.postgresql:
            for table in _staging.sorted_tables:
                self.connection.execute(text(f"ANALYZE {table.name}"))

    def _count(self, query: Select[Any]) -> int:
        return self.connection.execute(select(func.count()).select_from(query.subquery())).scalar_one()

    def _merge_updates(self, version_id: int) -> tuple[int, int, int]:
        updates, staged = _table(Update), _staged_updates
        removed = self.connection.execute(
            delete(updates).where(updates.c.revision_id.not_in(select(staged.c.revision_id)))
        ).rowcount
        added = self._count(
            select(staged.c.revision_id).where(staged.c.revision_id.not_in(select(updates.c.revision_id)))
        )

        stored = updates.alias("stored")
        # The stored value where the revision's fragments were not read.
        keep_stored = ~staged.c.fragments_read & stored.c.revision_id.is_not(None)

        def value(name: str) -> ColumnElement[Any]:
            if name in FRAGMENT_FIELDS:
                return case((keep_stored, stored.c[name]), else_=staged.c[name])
            return staged.c[name]

        copied = [column.name for column in staged.c if column.name != "fragments_read"]
        superseded = exists().where(_staged_supersedence.c.superseded_revision_id == staged.c.revision_id)
        query = select(
            *(value(name).label(name) for name in copied),
            superseded.label("is_superseded"),
            literal(version_id).label("catalog_version_id"),
        ).select_from(staged.outerjoin(stored, stored.c.revision_id == staged.c.revision_id))
        # The version that first listed a revision stays.
        written = self._upsert_changed(updates, query, ["revision_id"], insert_only=("catalog_version_id",))
        return added, written - added, removed

    def _merge_categories(self) -> None:
        categories, staged = _table(Category), _staged_categories
        # Categories of skipped fragment cabs are not staged: only a category
        # whose update left the catalog goes.
        self.connection.execute(
            delete(categories).where(categories.c.update_id.not_in(select(_staged_updates.c.update_id)))
        )
        self._upsert_changed(categories, select(staged), ["update_id"])

    def _merge_payload_files(self) -> tuple[int, int, int]:
        files, staged = _table(PayloadFile), _staged_payload_files
        left_catalog = files.c.sha1.not_in(select(staged.c.sha1))
        downloading = select(DownloadTask.payload_file_id).where(DownloadTask.status.in_(ACTIVE_DOWNLOAD_STATUSES))
        removed = self.connection.execute(
            delete(files).where(left_catalog, files.c.stored_at.is_(None), files.c.id.not_in(downloading))
        ).rowcount
        kept = self._count(select(files.c.id).where(left_catalog))
        added = self._count(select(staged.c.sha1).where(staged.c.sha1.not_in(select(files.c.sha1))))

        stored = files.alias("stored")
        keep_described = ~staged.c.fragments_read & stored.c.id.is_not(None)
        file_name = case(
            (or_(keep_described, stored.c.stored_at.is_not(None)), stored.c.file_name), else_=staged.c.file_name
        )
        query = select(
            staged.c.sha1,
            staged.c.url,
            file_name.label("file_name"),
            case((keep_described, stored.c.size), else_=staged.c.size).label("size"),
            case((keep_described, stored.c.sha256), else_=staged.c.sha256).label("sha256"),
        ).select_from(staged.outerjoin(stored, stored.c.sha1 == staged.c.sha1))
        self._upsert_changed(files, query, ["sha1"])
        return added, removed, kept

    def _merge_supersedence(self) -> None:
        self._replace(_table(Supersedence), _staged_supersedence)

    def _merge_bundle_members(self) -> None:
        members, staged = _table(BundleMember), _staged_bundle_members
        # Bundles of skipped fragment cabs keep the members stored for them.
        read_bundles = select(_staged_updates.c.revision_id).where(_staged_updates.c.fragments_read)
        self.connection.execute(
            delete(members).where(
                members.c.bundle_revision_id.in_(read_bundles),
                ~exists().where(
                    staged.c.bundle_revision_id == members.c.bundle_revision_id,
                    staged.c.child_revision_id == members.c.child_revision_id,
                ),
            )
        )
        self._upsert_changed(members, select(staged), ["bundle_revision_id", "child_revision_id"])

    def _merge_child_files(self) -> None:
        links, staged, files = _table(ChildFile), _staged_child_files, _table(PayloadFile)
        current = select(staged.c.child_revision_id, files.c.id.label("payload_file_id")).join(
            files, files.c.sha1 == staged.c.sha1
        )
        self._replace(links, current.subquery())

    def _replace(self, table: Table, wanted: Any) -> None:
        """Make ``table`` hold the rows of ``wanted`` (same column names), writing only the difference."""
        names = [column.name for column in wanted.c]

        def same_row(left: Any, right: Any) -> list[ColumnElement[bool]]:
            return [left.c[name] == right.c[name] for name in names]

        self.connection.execute(delete(table).where(~exists().where(*same_row(wanted, table))))
        missing = select(*(wanted.c[name] for name in names)).where(~exists().where(*same_row(table, wanted)))
        self.connection.execute(table.insert().from_select(names, missing))
