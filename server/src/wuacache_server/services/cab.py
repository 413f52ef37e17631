"""Cab sync runs: refresh ``wsusscn2.cab`` from upstream and import the catalog it brings.

Every run is a ``cab_sync_runs`` row, recorded as running before upstream is
asked anything and finished with the outcome. A new cab is published only
once its catalog import committed: a failed import fails the run, and the
previous cab and catalog stay. A run also imports the published cab when the
database does not hold its catalog (a cab published by something else).

One run at a time: a lock file in the data folder is held from a run's
start to its end, whichever process runs it (the server's scheduler and API,
``wuacache-server sync-cab``). The kernel releases it when its process dies,
so a run still marked running while the lock is free was interrupted: the
next run, or :func:`recover_cab_sync` when the server starts, closes it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from email.utils import format_datetime
from pathlib import Path
from typing import IO

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from wuacache_server.catalog.cabsync import CabRejected, CabState, CabSyncResult, restore_published, sync_cab
from wuacache_server.catalog.errors import CatalogFormatError
from wuacache_server.catalog.importer import (
    CatalogImport,
    CatalogImportConflict,
    current_catalog_version,
    import_catalog,
)
from wuacache_server.config import Settings
from wuacache_server.db.models import CabSyncReason, CabSyncRun, CabSyncStatus, utcnow
from wuacache_server.filelock import try_lock
from wuacache_server.httpdate import parse_http_date

logger = logging.getLogger(__name__)

LOCK_NAME = "cab-sync.lock"
_ETAG_LENGTH = 255  # of the cab_sync_runs.etag column


class CabSyncBusy(Exception):
    """Another cab sync is running."""


@dataclass(frozen=True)
class CabSyncOutcome:
    """A finished run, and the import it made (None: it imported nothing)."""

    run: CabSyncRun
    catalog: CatalogImport | None

    @property
    def succeeded(self) -> bool:
        return self.run.status is not CabSyncStatus.FAILED

    def summary(self) -> str:
        """One line saying what the run did."""
        run = self.run
        reason = f" ({run.reason})" if run.reason else ""
        line = (
            f"cab sync {run.id} {run.status}{reason}: {run.bytes_downloaded} bytes downloaded "
            f"in {run.duration_seconds or 0.0:.1f} s"
        )
        if run.error:
            line += f"; {run.error}"
        if self.catalog is not None:
            line += f"; {self.catalog.describe()}"
        return line


def start_cab_sync(settings: Settings, session_factory: sessionmaker[Session], *, force: bool = False) -> CabSyncJob:
    """Take the sync lock and record a running run; :meth:`CabSyncJob.run` carries it out.

    Raises:
        CabSyncBusy: another run holds the lock.
    """
    lock = try_lock(settings.data_dir / LOCK_NAME)
    if lock is None:
        raise CabSyncBusy("another cab sync is running")
    try:
        with session_factory() as session:
            _close_interrupted_runs(session)
            run = CabSyncRun(status=CabSyncStatus.RUNNING)
            session.add(run)
            session.commit()
    except BaseException:
        lock.close()
        raise
    logger.info("cab sync run %d started%s", run.id, " (forced)" if force else "")
    return CabSyncJob(settings, session_factory, run.id, force=force, lock=lock)


def recover_cab_sync(settings: Settings, session_factory: sessionmaker[Session]) -> None:
    """At start-up: close the runs a dead process left running, and serve the
    cab whose catalog the database holds, should a run have stopped between
    the import's commit and the cab's publication.

    Nothing is done while another process runs a sync: the lock shows that
    its run is alive, and it publishes its cab itself.
    """
    lock = try_lock(settings.data_dir / LOCK_NAME)
    if lock is None:
        logger.info("a cab sync is running in another process: nothing to recover")
        return
    with lock, session_factory() as session:
        _close_interrupted_runs(session)
        session.commit()
        catalog = current_catalog_version(session)
        if catalog is not None:
            restore_published(settings.repository_dir, catalog.sha256)


def run_cab_sync(settings: Settings, session_factory: sessionmaker[Session], *, force: bool = False) -> CabSyncOutcome:
    """Sync the cab, import the catalog when it changed, and record the run.

    Raises:
        CabSyncBusy: another run holds the lock.
    """
    return start_cab_sync(settings, session_factory, force=force).run()


class CabSyncJob:
    """A started run: it holds the sync lock, and its row says running."""

    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        run_id: int,
        *,
        force: bool,
        lock: IO[str],
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.run_id = run_id
        self.force = force
        self._lock = lock
        self._catalog: CatalogImport | None = None

    def run(self) -> CabSyncOutcome:
        """Carry the run out and record its outcome; the lock is released after."""
        started = time.monotonic()
        try:
            outcome = self._run(started)
        except Exception as exc:
            # The row must not stay "running": record the failure, then let
            # the error surface.
            self._record(started, CabSyncStatus.FAILED, error=f"unexpected error: {exc}")
            raise
        finally:
            self._lock.close()
        logger.log(logging.INFO if outcome.succeeded else logging.WARNING, "%s", outcome.summary())
        return outcome

    def _run(self, started: float) -> CabSyncOutcome:
        settings = self.settings
        if settings.cab_ca_bundle is None:
            error = "cab_ca_bundle is not set: without it the catalog's signature cannot be checked"
            return CabSyncOutcome(self._record(started, CabSyncStatus.FAILED, error=error), None)
        with self.session_factory() as session:
            previous = _previous_state(session)
        result = sync_cab(
            url=settings.upstream_cab_url,
            repository_dir=settings.repository_dir,
            ca_bundle=settings.cab_ca_bundle,
            allowlist=settings.upstream_allowlist,
            proxy=settings.http_proxy,
            force=self.force,
            previous=previous,
            accept=self._import_before_publishing,
        )
        if result.status == "failed" or result.path is None:
            return CabSyncOutcome(self._record(started, CabSyncStatus.FAILED, result), None)
        if result.status == "unchanged":
            try:
                self._catalog = self._import(result.path, result.sha256)
            except CabRejected as exc:
                return CabSyncOutcome(self._record(started, CabSyncStatus.FAILED, result, error=str(exc)), None)
        return CabSyncOutcome(self._record(started, CabSyncStatus(result.status), result), self._catalog)

    def _import_before_publishing(self, cab: Path, sha256: str) -> None:
        self._catalog = self._import(cab, sha256)

    def _import(self, cab: Path, sha256: str | None) -> CatalogImport | None:
        """Import ``cab`` unless the database holds its catalog already."""
        with self.session_factory() as session:
            current = current_catalog_version(session)
            engine = session.get_bind()
        if current is not None and current.sha256 == sha256:
            return None
        if not isinstance(engine, Engine):
            raise TypeError("the session factory must be bound to an engine")
        try:
            return import_catalog(engine, cab, workdir=self.settings.data_dir)
        except (CatalogFormatError, CatalogImportConflict, SQLAlchemyError, OSError) as exc:
            logger.warning("cab sync run %d: the catalog import failed: %s", self.run_id, exc)
            raise CabRejected(f"catalog import failed: {_describe(exc)}") from exc

    def _record(
        self,
        started: float,
        status: CabSyncStatus,
        result: CabSyncResult | None = None,
        *,
        error: str | None = None,
    ) -> CabSyncRun:
        with self.session_factory() as session:
            run = session.get_one(CabSyncRun, self.run_id)
            run.status = status
            run.finished_at = utcnow()
            run.duration_seconds = time.monotonic() - started
            run.error = error or (result.error if result is not None else None)
            if result is not None:
                run.reason = CabSyncReason(result.reason)
                run.bytes_downloaded = result.bytes_downloaded
                # Too long to store is too long to be worth sending back.
                run.etag = result.etag if result.etag and len(result.etag) <= _ETAG_LENGTH else None
                run.last_modified = parse_http_date(result.last_modified)
                run.sha256 = result.sha256
                run.size = result.size
            session.commit()
        return run


def _close_interrupted_runs(session: Session) -> None:
    """Runs still marked running while the lock is free died with their process."""
    session.execute(
        update(CabSyncRun)
        .where(CabSyncRun.status == CabSyncStatus.RUNNING)
        .values(status=CabSyncStatus.FAILED, finished_at=utcnow(), error="interrupted: the process running it ended")
    )


def _previous_state(session: Session) -> CabState | None:
    """The published cab as the latest run recorded it.

    Every finished run records the cab published at its end, failed ones
    too (the previous cab).
    """
    run = session.scalars(
        select(CabSyncRun)
        .where(CabSyncRun.status != CabSyncStatus.RUNNING, CabSyncRun.sha256.is_not(None))
        .order_by(CabSyncRun.started_at.desc(), CabSyncRun.id.desc())
        .limit(1)
    ).first()
    if run is None or run.sha256 is None or run.size is None:
        return None
    return CabState(
        etag=run.etag,
        last_modified=format_datetime(run.last_modified, usegmt=True) if run.last_modified else None,
        sha256=run.sha256,
        size=run.size,
    )


def _describe(exc: Exception) -> str:
    if isinstance(exc, SQLAlchemyError):
        original = getattr(exc, "orig", None)
        return f"database: {str(original or exc).strip().splitlines()[0]}"
    return str(exc).strip() or type(exc).__name__
