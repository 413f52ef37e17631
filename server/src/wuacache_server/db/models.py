"""The server's tables.

The catalog (``catalog_versions``, ``categories``, ``updates``,
``bundle_members``, ``supersedence``, ``payload_files``, ``child_files``)
mirrors the verified ``wsusscn2.cab``, keyed as Microsoft keys it: updates by
UpdateID + RevisionNumber, cross-references by RevisionId, files by the
base64 SHA-1 digest of their FileLocation. Hosts, their reports and per-update
decisions, rule sets, download tasks, runs, API tokens and the packages admins
upload are the server's own state. The schema itself is owned by the Alembic migrations; these classes
must match them (a test compares the two).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, validates
from sqlalchemy.types import TypeEngine

# Named constraints let Alembic's batch mode (SQLite) drop and recreate them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

GUID = String(36)  # UpdateIDs and category ids, lowercase "xxxxxxxx-xxxx-..."
JSONDocument = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both backends: SQLite keeps no time zone and would
    hand back naive values, which compare wrongly with aware ones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value}: timestamps are stored in UTC and must carry a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class CabSyncStatus(enum.StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    UNCHANGED = "unchanged"
    FAILED = "failed"


class CabSyncReason(enum.StrEnum):
    MISSING = "missing"
    NEWER = "newer"
    FORCED = "forced"
    UNCHANGED = "unchanged"


class CategoryType(enum.StrEnum):
    COMPANY = "Company"
    PRODUCT_FAMILY = "ProductFamily"
    PRODUCT = "Product"
    UPDATE_CLASSIFICATION = "UpdateClassification"


class UpdateKind(enum.StrEnum):
    BUNDLE = "bundle"  # what WUA offers and installs
    CHILD = "child"  # per-architecture part of a bundle; owns the payload files
    CATEGORY = "category"
    DETECTOID = "detectoid"
    OTHER = "other"


class HostUpdateStatus(enum.StrEnum):
    OK = "OK"
    PENDING = "PENDING"
    MISSING = "MISSING"
    DISCARDED = "DISCARDED"
    ERROR = "ERROR"


class DownloadTaskStatus(enum.StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


ACTIVE_DOWNLOAD_STATUSES = (DownloadTaskStatus.WAITING, DownloadTaskStatus.RUNNING)


class PackageKind(enum.StrEnum):
    MSU = "msu"  # installed with wusa.exe
    CAB = "cab"  # installed with DISM


class TokenRole(enum.StrEnum):
    ADMIN = "admin"  # everything
    CONTROLLER = "controller"  # the Ansible controller: sets assignments, mints host tokens, reads
    HOST = "host"  # one host: its own record only


def _enum(enum_class: type[enum.StrEnum], name: str) -> Enum:
    # Strings with a CHECK constraint rather than a PostgreSQL enum type: adding
    # a value is then the same simple migration on both backends.
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class HostRuleKind(enum.StrEnum):
    HOLD = "hold"  # the update is not installed on the host, whatever the rules say
    OVERRIDE = "override"  # the update is installed although the rules discard it


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, TypeEngine[Any]]] = {
        datetime: UTCDateTime(),
        list[str]: JSONDocument,
        dict[str, Any]: JSONDocument,
    }


class CatalogVersion(Base):
    """One verified ``wsusscn2.cab`` the catalog was imported from."""

    __tablename__ = "catalog_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    package_id: Mapped[str] = mapped_column(GUID)
    package_version: Mapped[str] = mapped_column(String(32))
    creation_date: Mapped[datetime]
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Hex SHA-256 of each fragment cab, by name: the next import skips the
    # unchanged ones. None: not known, the next import reads them all.
    fragment_cabs: Mapped[dict[str, str] | None] = mapped_column(JSONDocument)


class CabSyncRun(Base):
    """One attempt to refresh the catalog from Microsoft, whatever its outcome."""

    __tablename__ = "cab_sync_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None]
    status: Mapped[CabSyncStatus] = mapped_column(
        _enum(CabSyncStatus, "cab_sync_status"), default=CabSyncStatus.RUNNING, index=True
    )
    reason: Mapped[CabSyncReason | None] = mapped_column(_enum(CabSyncReason, "cab_sync_reason"))
    bytes_downloaded: Mapped[int] = mapped_column(BigInteger, default=0)
    duration_seconds: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(String(255))
    last_modified: Mapped[datetime | None]
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)


class Category(Base):
    """A product, product family, company or update classification."""

    __tablename__ = "categories"

    update_id: Mapped[str] = mapped_column(GUID, primary_key=True)
    category_type: Mapped[CategoryType] = mapped_column(_enum(CategoryType, "category_type"), index=True)
    # The catalog carries no names; hosts report them (ICategory.Name).
    name: Mapped[str | None] = mapped_column(String(255))


class Update(Base):
    """One revision of an update in the catalog."""

    __tablename__ = "updates"
    # The unique (update_id, revision_number) index also serves lookups by update_id.
    __table_args__ = (UniqueConstraint("update_id", "revision_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    update_id: Mapped[str] = mapped_column(GUID)
    revision_number: Mapped[int]
    revision_id: Mapped[int] = mapped_column(unique=True)
    kind: Mapped[UpdateKind] = mapped_column(_enum(UpdateKind, "update_kind"), index=True)
    title: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    kb_ids: Mapped[list[str]] = mapped_column(default=list)
    msrc_severity: Mapped[str | None] = mapped_column(String(32), index=True)
    product_id: Mapped[str | None] = mapped_column(GUID, index=True)
    classification_id: Mapped[str | None] = mapped_column(GUID, index=True)
    # LastDeploymentChangeTime, from which install delays count.
    creation_date: Mapped[datetime] = mapped_column(index=True)
    is_superseded: Mapped[bool] = mapped_column(default=False, index=True)
    reboot_behavior: Mapped[str | None] = mapped_column(String(32))
    min_download_size: Mapped[int | None] = mapped_column(BigInteger)
    max_download_size: Mapped[int | None] = mapped_column(BigInteger)
    catalog_version_id: Mapped[int] = mapped_column(ForeignKey("catalog_versions.id"), index=True)


class BundleMember(Base):
    """A bundle's child (the catalog's ``BundledBy``), by RevisionId."""

    __tablename__ = "bundle_members"

    bundle_revision_id: Mapped[int] = mapped_column(
        ForeignKey("updates.revision_id", ondelete="CASCADE"), primary_key=True
    )
    child_revision_id: Mapped[int] = mapped_column(
        ForeignKey("updates.revision_id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(default=0)


class Supersedence(Base):
    """One revision superseding another (the catalog's ``SupersededBy``)."""

    __tablename__ = "supersedence"

    superseded_revision_id: Mapped[int] = mapped_column(
        ForeignKey("updates.revision_id", ondelete="CASCADE"), primary_key=True
    )
    superseding_revision_id: Mapped[int] = mapped_column(
        ForeignKey("updates.revision_id", ondelete="CASCADE"), primary_key=True, index=True
    )


class PayloadFile(Base):
    """A file Microsoft serves for bundle children, and whether we hold it."""

    __tablename__ = "payload_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha1: Mapped[str] = mapped_column(String(28), unique=True)  # base64, as the FileLocation Id
    sha256: Mapped[str | None] = mapped_column(String(44))  # base64, from the x\ fragment
    url: Mapped[str] = mapped_column(Text)
    file_name: Mapped[str] = mapped_column(String(255), index=True)  # the name it is served under
    size: Mapped[int | None] = mapped_column(BigInteger)
    stored_at: Mapped[datetime | None] = mapped_column(index=True)  # when the verified file was published
    stored_size: Mapped[int | None] = mapped_column(BigInteger)


class ChildFile(Base):
    """A payload file of a bundle child (the catalog's ``PayloadFiles``)."""

    __tablename__ = "child_files"

    child_revision_id: Mapped[int] = mapped_column(
        ForeignKey("updates.revision_id", ondelete="CASCADE"), primary_key=True
    )
    payload_file_id: Mapped[int] = mapped_column(
        ForeignKey("payload_files.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Host(Base):
    """A Windows host, as its last report describes it."""

    __tablename__ = "hosts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    os_caption: Mapped[str | None] = mapped_column(String(255))
    os_build: Mapped[str | None] = mapped_column(String(64))
    os_architecture: Mapped[str | None] = mapped_column(String(32))
    wua_version: Mapped[str | None] = mapped_column(String(64))
    cab_sha256: Mapped[str | None] = mapped_column(String(64))
    last_report_at: Mapped[datetime | None] = mapped_column(index=True)
    reboot_pending: Mapped[bool] = mapped_column(default=False)
    # rule_sets, default_allow, allowed_severities, install_delay, maturities, as
    # a controller or an admin last set them; unset, the default assignment applies.
    assignment: Mapped[dict[str, Any]] = mapped_column(default=dict)
    assignment_set_at: Mapped[datetime | None]
    assignment_set_by: Mapped[str | None] = mapped_column(String(255))  # who: see security.actor

    @validates("name")
    def _lowercase_name(self, key: str, name: str) -> str:
        return name.lower()


class HostUpdate(Base):
    """One update a host's last scan returned, and the server's decision for it."""

    __tablename__ = "host_updates"

    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True)
    update_id: Mapped[str] = mapped_column(GUID, primary_key=True, index=True)
    revision_number: Mapped[int]
    title: Mapped[str] = mapped_column(Text, default="", server_default="")
    is_installed: Mapped[bool] = mapped_column(default=False)
    is_hidden: Mapped[bool] = mapped_column(default=False)
    is_downloaded: Mapped[bool] = mapped_column(default=False)
    last_result_code: Mapped[int | None]  # OperationResultCode of the last install attempt
    last_hresult: Mapped[int | None] = mapped_column(BigInteger)  # unsigned 32-bit, beyond INTEGER
    status: Mapped[HostUpdateStatus] = mapped_column(_enum(HostUpdateStatus, "host_update_status"), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    # The rules' verdict: true also for an update held back by its install delay alone.
    allowed: Mapped[bool] = mapped_column(default=False, server_default=false())
    delayed_until: Mapped[datetime | None]
    # Download URLs the host reported that the catalog does not give for this
    # update: never fetched, kept to explain the plan's warnings.
    reported_urls: Mapped[list[str]] = mapped_column(default=list)
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


class HostUpdateRule(Base):
    """A hold or an override of one update (by UpdateID or KB) on one host, with who, why and when.

    Keyed by host name, so that a host can be held before it first reports.
    """

    __tablename__ = "host_update_rules"
    __table_args__ = (CheckConstraint("(update_id IS NULL) != (kb IS NULL)", name="update_id_or_kb"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    host_name: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[HostRuleKind] = mapped_column(_enum(HostRuleKind, "host_rule_kind"))
    update_id: Mapped[str | None] = mapped_column(GUID)
    kb: Mapped[str | None] = mapped_column(String(16))  # digits, without "KB"
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(255))


class HostUpdateFile(Base):
    """A payload file a host needs for an update it may install (PENDING,
    MISSING or ERROR): the catalog files of the bundled children it reported.
    What the fetcher downloads and the cleanup keeps."""

    __tablename__ = "host_update_files"
    __table_args__ = (
        ForeignKeyConstraint(
            ["host_id", "update_id"], ["host_updates.host_id", "host_updates.update_id"], ondelete="CASCADE"
        ),
    )

    host_id: Mapped[int] = mapped_column(primary_key=True)
    update_id: Mapped[str] = mapped_column(GUID, primary_key=True)
    payload_file_id: Mapped[int] = mapped_column(
        ForeignKey("payload_files.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class HostReport(Base):
    """One scan report received from (or for) a host: the history of reports."""

    __tablename__ = "host_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"), index=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    cab_sha256: Mapped[str | None] = mapped_column(String(64))
    cab_date: Mapped[datetime | None]
    scan_duration_seconds: Mapped[float | None]
    wuauserv_state: Mapped[str | None] = mapped_column(String(32))
    update_count: Mapped[int] = mapped_column(default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)  # updates per status
    # The assigned rule sets the decisions applied, ignored (and why) and did not find.
    rule_sets: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    warnings: Mapped[list[str]] = mapped_column(default=list, server_default=text("'[]'"))
    error: Mapped[str | None] = mapped_column(Text)  # why the scan failed


class RuleSet(Base):
    """Named lists of allowed and forbidden updates, for the hosts assigned to it."""

    __tablename__ = "rule_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    maturity: Mapped[str | None] = mapped_column(String(32), index=True)
    allowed_updates: Mapped[list[str]] = mapped_column(default=list)
    forbidden_updates: Mapped[list[str]] = mapped_column(default=list)
    allowed_kbs: Mapped[list[str]] = mapped_column(default=list)
    forbidden_kbs: Mapped[list[str]] = mapped_column(default=list)
    allowed_products: Mapped[list[str]] = mapped_column(default=list)
    forbidden_products: Mapped[list[str]] = mapped_column(default=list)
    allowed_classifications: Mapped[list[str]] = mapped_column(default=list)
    forbidden_classifications: Mapped[list[str]] = mapped_column(default=list)
    allowed_severities: Mapped[list[str]] = mapped_column(default=list)
    forbidden_severities: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DownloadTask(Base):
    """One download of a payload file from Microsoft, with its progress."""

    __tablename__ = "download_tasks"
    __table_args__ = (
        # One download per file, however many hosts need it.
        Index(
            "uq_download_tasks_active_payload_file_id",
            "payload_file_id",
            unique=True,
            sqlite_where=text("status IN ('waiting', 'running')"),
            postgresql_where=text("status IN ('waiting', 'running')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    payload_file_id: Mapped[int] = mapped_column(ForeignKey("payload_files.id", ondelete="CASCADE"), index=True)
    status: Mapped[DownloadTaskStatus] = mapped_column(
        _enum(DownloadTaskStatus, "download_task_status"), default=DownloadTaskStatus.WAITING, index=True
    )
    forced: Mapped[bool] = mapped_column(default=False)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_total: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


def queue_download(session: Session, payload_file_id: int, *, forced: bool = False) -> DownloadTask:
    """The file's waiting or running task, else a new waiting one.

    Two callers racing for the same file both end up with the one task: the
    loser's insert hits the partial unique index and it takes the winner's.
    """
    active = select(DownloadTask).where(
        DownloadTask.payload_file_id == payload_file_id, DownloadTask.status.in_(ACTIVE_DOWNLOAD_STATUSES)
    )
    task = session.scalars(active).one_or_none()
    if task is None:
        try:
            with session.begin_nested():
                task = DownloadTask(payload_file_id=payload_file_id, forced=forced)
                session.add(task)
        except IntegrityError:
            task = session.scalars(active).one_or_none()
            if task is None:  # not the race: an unknown file, say
                raise
    task.forced = task.forced or forced
    return task


class CleanupRun(Base):
    """One pass deleting stored files that no host needs any more."""

    __tablename__ = "cleanup_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None]
    files_removed: Mapped[int] = mapped_column(default=0)
    bytes_freed: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class ApiToken(Base):
    """A bearer token for the API; only its SHA-256 is kept."""

    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint("(role = 'host') = (host_name IS NOT NULL)", name="host_name_for_host_role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[TokenRole] = mapped_column(_enum(TokenRole, "token_role"))
    host_name: Mapped[str | None] = mapped_column(String(255), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None] = mapped_column(index=True)
    expires_at: Mapped[datetime | None]  # host tokens always have one


class Package(Base):
    """A standalone update package an admin uploaded, served to hosts under ``/packages/<name>``."""

    __tablename__ = "packages"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)  # the file name it is served under
    kind: Mapped[PackageKind] = mapped_column(_enum(PackageKind, "package_kind"))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(44))  # base64, as payload files' digests
    sha1: Mapped[str] = mapped_column(String(28))
    kb: Mapped[str | None] = mapped_column(String(16))  # digits, without "KB"
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)  # when its file was last replaced


class AuditEvent(Base):
    """One write to the server's policy or state, by whom: a token, ``cli`` or ``scheduler``."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64), index=True)  # e.g. "ruleset.replace"
    target: Mapped[str] = mapped_column(String(255))  # what it acted on, e.g. the rule set's name
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)  # what changed
