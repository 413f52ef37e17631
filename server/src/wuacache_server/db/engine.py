"""Engines, sessions and migrations for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
# The execution option of connections whose SQLite transactions begin DEFERRED
# rather than IMMEDIATE: see make_engine.
DEFERRED_BEGIN = "wuacache_deferred_begin"
# PostgreSQL's answers to a write that lost a race for a lock: lock_not_available
# (lock_timeout), serialization_failure, deadlock_detected.
_POSTGRES_CONTENTION = frozenset({"55P03", "40001", "40P01"})


class MigrationError(Exception):
    """The database could not be brought to the current schema."""


def normalise_database_url(url: str | URL) -> URL:
    """Plain ``postgresql://`` (and ``postgres://``) URLs use psycopg 3, the driver we ship."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL) -> Engine:
    """An engine for ``url``, with the settings the server relies on.

    On SQLite, a transaction begins IMMEDIATE: it takes the write lock up
    front, waiting up to the busy timeout for it, in whichever process. A
    DEFERRED one that reads first fails at once, without waiting, when it comes
    to write after another connection wrote meanwhile (SQLite's "Transactions"
    page). The BEGIN is ours to emit, as in SQLAlchemy's pysqlite recipe
    ("Serializable isolation / Savepoints / Transactional DDL"). Work that only
    reads, or whose transactions start with their write, uses
    :func:`deferred_begin` so as not to wait behind writers.
    """
    parsed = normalise_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed)
        _configure_sqlite(engine)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def deferred_begin(engine: Engine) -> Engine:
    """``engine``, its SQLite transactions beginning DEFERRED: for readers, which
    WAL lets run beside the writer."""
    return engine.execution_options(**{DEFERRED_BEGIN: True})


def is_contention(exc: BaseException) -> bool:
    """Whether ``exc`` says a write could not take its lock in time: worth retrying later."""
    if not isinstance(exc, DBAPIError):
        return False
    sqlite_code = getattr(exc.orig, "sqlite_errorcode", None)
    if sqlite_code is not None:
        # The primary code of extended ones, such as SQLITE_BUSY_SNAPSHOT.
        return sqlite_code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return getattr(exc.orig, "sqlstate", None) in _POSTGRES_CONTENTION


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Take transaction control away from the sqlite3 module, which would not
        # begin one before DDL or SAVEPOINT (SQLAlchemy's documented recipe): the
        # "begin" hook below emits BEGIN instead, so migrations and nested
        # transactions are atomic. The pragmas must run outside a transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; fsync at checkpoints
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        deferred = connection.get_execution_options().get(DEFERRED_BEGIN)
        connection.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


def session_factory(engine: Engine, *, deferred: bool = False) -> sessionmaker[Session]:
    """Sessions on ``engine``; ``deferred`` ones for readers (see :func:`deferred_begin`)."""
    # Objects stay usable after commit: API handlers commit, then answer with them.
    return sessionmaker(deferred_begin(engine) if deferred else engine, expire_on_commit=False)


def alembic_config(connection: Connection) -> Config:
    """Alembic's configuration, built in code: no alembic.ini to ship or find."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The schema revision this version of the server expects."""
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    if head is None:
        raise MigrationError(f"no migration found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision; None for a database never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(target: Engine | str | URL) -> None:
    """Upgrade the database to the current schema (``alembic upgrade head``)."""
    engine = target if isinstance(target, Engine) else make_engine(target)
    try:
        with engine.connect() as connection, _foreign_keys_deferred(connection), connection.begin():
            command.upgrade(alembic_config(connection), "head")
            _check_foreign_keys(connection)
    finally:
        if engine is not target:
            engine.dispose()
    logger.info("database schema at revision %s", head_revision())


@contextmanager
def _foreign_keys_deferred(connection: Connection) -> Iterator[None]:
    # SQLite alters a table by copying it into a new one and dropping the old:
    # with foreign keys enforced, dropping a referenced table would cascade.
    # Alembic's batch mode therefore needs them off; the pragma is ignored
    # inside a transaction, so it goes to the driver before BEGIN.
    if connection.dialect.name != "sqlite":
        yield
        return
    cursor = connection.connection.cursor()
    cursor.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def _check_foreign_keys(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        violations = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if violations:
            raise MigrationError(f"the migration left {len(violations)} rows with dangling foreign keys")
