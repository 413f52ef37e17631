from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, delete, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from wuacache_server.db.engine import (
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    migrate,
    normalise_database_url,
)
from wuacache_server.db.models import (
    ApiToken,
    Base,
    DownloadTask,
    DownloadTaskStatus,
    Host,
    HostReport,
    HostUpdate,
    HostUpdateStatus,
    PayloadFile,
    TokenRole,
    queue_download,
)

TABLES = {
    "catalog_versions",
    "cab_sync_runs",
    "categories",
    "updates",
    "bundle_members",
    "supersedence",
    "payload_files",
    "child_files",
    "hosts",
    "host_updates",
    "host_update_files",
    "host_update_rules",
    "audit_events",
    "host_reports",
    "rule_sets",
    "download_tasks",
    "cleanup_runs",
    "api_tokens",
    "packages",
}


def add_payload_file(session: Session, sha1: str = "zs0CQi9xMy/tvVU8nu2J5HSGOP4=") -> PayloadFile:
    payload = PayloadFile(
        sha1=sha1,
        url="http://download.windowsupdate.com/c/msdownload/update/software/secu/2024/01/kb5000001-x64.cab",
        file_name="kb5000001-x64.cab",
    )
    session.add(payload)
    session.commit()
    return payload


def test_migrating_an_empty_database_creates_the_schema(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) is None
        migrate(engine)
        migrate(engine)  # nothing left to do the second time
        assert current_revision(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    finally:
        engine.dispose()


def test_the_trust_model_migration_keeps_hosts_and_tokens(database_url: str) -> None:
    """From 0004: hosts keep their data, but no assignment counts as set (a host may
    have sent its own), and tokens stay live without an expiry."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection, connection.begin():
            command.upgrade(alembic_config(connection), "0004")
            connection.execute(
                text("INSERT INTO hosts (name, reboot_pending, assignment) VALUES ('web-01', false, '{}')")
            )
            connection.execute(
                text(
                    "INSERT INTO api_tokens (name, role, token_hash, created_at) "
                    "VALUES ('ansible', 'controller', :hash, CURRENT_TIMESTAMP)"
                ),
                {"hash": "0" * 64},
            )
        migrate(engine)
        with engine.connect() as connection:
            host = connection.execute(text("SELECT name, assignment_set_at, assignment_set_by FROM hosts")).one()
            token = connection.execute(text("SELECT name, expires_at FROM api_tokens")).one()
        assert tuple(host) == ("web-01", None, None)
        assert tuple(token) == ("ansible", None)
    finally:
        engine.dispose()


def test_migrate_accepts_a_url(database_url: str) -> None:
    migrate(database_url)
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_the_migrations_build_exactly_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("updates", ["product_id", "classification_id", "kind", "msrc_severity", "creation_date", "is_superseded"]),
        ("updates", ["catalog_version_id"]),
        ("bundle_members", ["child_revision_id"]),
        ("supersedence", ["superseding_revision_id"]),
        ("child_files", ["payload_file_id"]),
        ("payload_files", ["file_name", "stored_at"]),
        ("host_updates", ["status", "update_id"]),
        ("host_reports", ["host_id", "received_at"]),
        ("download_tasks", ["status", "payload_file_id"]),
        ("categories", ["category_type"]),
    ],
)
def test_filtered_and_joined_columns_are_indexed(engine: Engine, table: str, columns: list[str]) -> None:
    indexed = {tuple(index["column_names"]) for index in inspect(engine).get_indexes(table)}
    for column in columns:
        assert (column,) in indexed


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("updates", ["update_id", "revision_number"]),
        ("updates", ["revision_id"]),
        ("payload_files", ["sha1"]),
        ("catalog_versions", ["sha256"]),
        ("hosts", ["name"]),
        ("rule_sets", ["name"]),
        ("api_tokens", ["token_hash"]),
    ],
)
def test_natural_keys_are_unique(engine: Engine, table: str, columns: list[str]) -> None:
    unique = {tuple(constraint["column_names"]) for constraint in inspect(engine).get_unique_constraints(table)}
    assert tuple(columns) in unique


def test_one_active_download_per_file_is_enforced_by_the_database(session: Session) -> None:
    payload = add_payload_file(session)
    session.add(DownloadTask(payload_file_id=payload.id, status=DownloadTaskStatus.COMPLETED))
    session.add(DownloadTask(payload_file_id=payload.id, status=DownloadTaskStatus.FAILED))
    session.add(DownloadTask(payload_file_id=payload.id, status=DownloadTaskStatus.WAITING))
    session.commit()  # finished tasks do not count

    session.add(DownloadTask(payload_file_id=payload.id, status=DownloadTaskStatus.RUNNING))
    with pytest.raises(IntegrityError, match=r"uq_download_tasks_active_payload_file_id|UNIQUE constraint failed"):
        session.commit()


def test_queue_download_reuses_the_active_task(session: Session) -> None:
    payload = add_payload_file(session)

    first = queue_download(session, payload.id)
    session.commit()
    again = queue_download(session, payload.id, forced=True)
    session.commit()

    assert again.id == first.id
    assert again.forced is True
    assert queue_download(session, payload.id).forced is True  # a later, unforced ask keeps it forced

    again.status = DownloadTaskStatus.COMPLETED
    session.commit()
    fresh = queue_download(session, payload.id)
    session.commit()
    assert fresh.id != first.id
    assert (fresh.status, fresh.forced) == (DownloadTaskStatus.WAITING, False)


def test_queue_download_for_an_unknown_file_fails_and_leaves_the_session_usable(session: Session) -> None:
    payload = add_payload_file(session)
    with pytest.raises(IntegrityError):
        queue_download(session, payload.id + 1000)
    # Only the savepoint was rolled back: the transaction goes on.
    assert queue_download(session, payload.id).payload_file_id == payload.id
    session.commit()
    assert session.scalar(select(DownloadTask.payload_file_id)) == payload.id


def test_timestamps_come_back_aware_in_utc(session: Session) -> None:
    reported = datetime(2025, 3, 10, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    session.add(Host(name="WIN10-01", last_report_at=reported))
    session.commit()
    session.expunge_all()

    host = session.scalars(select(Host)).one()
    assert host.name == "win10-01"
    assert host.last_report_at == reported
    assert host.last_report_at is not None and host.last_report_at.tzinfo == UTC
    later = session.scalars(select(Host).where(Host.last_report_at > datetime(2025, 3, 10, 7, 29, tzinfo=UTC)))
    assert later.one_or_none() is not None


def test_naive_timestamps_are_refused(session: Session) -> None:
    session.add(Host(name="win10-01", last_report_at=datetime(2025, 3, 10, 9, 30)))
    with pytest.raises(StatementError, match="must carry a time zone"):
        session.commit()


def test_deleting_a_host_deletes_its_updates_and_reports(session: Session) -> None:
    host = Host(name="win10-01")
    session.add(host)
    session.flush()
    update_id = "3b4e5f6a-0000-4000-8000-000000000001"
    session.add(HostUpdate(host_id=host.id, update_id=update_id, revision_number=200, status=HostUpdateStatus.MISSING))
    session.add(HostReport(host_id=host.id))
    session.commit()

    session.execute(delete(Host))
    session.commit()

    assert session.scalars(select(HostUpdate)).all() == []
    assert session.scalars(select(HostReport)).all() == []


def test_host_tokens_must_name_their_host(session: Session) -> None:
    session.add(ApiToken(name="win10-01", role=TokenRole.HOST, token_hash="a" * 64))
    with pytest.raises(IntegrityError):
        session.commit()


def test_sqlite_connections_are_set_up_for_a_server(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/wuacache.db")
    try:
        migrate(engine)
        with engine.connect() as connection:
            pragmas = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
            }
        # Foreign keys are back on after the migration turned them off.
        assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 10_000, "synchronous": 1}
    finally:
        engine.dispose()


def test_sqlite_rolls_back_ddl_with_the_transaction(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/wuacache.db")
    try:
        with engine.connect() as connection:
            connection.execute(text("CREATE TABLE scratch (id INTEGER)"))
            connection.rollback()
        assert "scratch" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://wuacache@db.example.com/wuacache", "postgresql+psycopg"),
        ("postgres://wuacache@db.example.com/wuacache", "postgresql+psycopg"),
        ("postgresql+psycopg://wuacache@db.example.com/wuacache", "postgresql+psycopg"),
        ("sqlite:////var/lib/wuacache/wuacache.db", "sqlite"),
    ],
)
def test_database_urls_use_the_shipped_drivers(url: str, driver: str) -> None:
    assert normalise_database_url(url).drivername == driver
