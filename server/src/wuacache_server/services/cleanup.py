"""Delete the update files no host needs any more, and record what it freed.

The repository's ``wua/`` folder holds the catalog, its sidecar and the
update files hosts download. A cleanup keeps the catalog and its sidecar,
every file at least one host needs, the files being downloaded and those an
administrator forced recently (they are often fetched before hosts report
needing them); it deletes every other file, and clears ``stored_at`` of the
catalog rows first, so that the database never claims a file the disk lacks.
Partial downloads of files nobody needs go too, unless a download holds them.

Reports and cleanups are serialised on ``host_update_files``: a report
writes there before it reads which files are stored, and a cleanup decides
what to keep and clears ``stored_at`` while it holds that table's lock. A
report under way is waited for and its needs kept; a later one sees the
files gone and queues their download.

``cleanup_kbs = false`` turns it off; the nightly schedule runs it inside
``cleanup_window`` (see :func:`in_window`). One cleanup at a time: a lock file
in the data folder is held while one runs, whichever process runs it (the
server's scheduler and API, ``wuacache-server cleanup``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, false, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from wuacache_server.catalog.cabsync import CAB_NAME, SIDECAR_NAME
from wuacache_server.config import Settings, TimeWindow
from wuacache_server.db.batches import chunks
from wuacache_server.db.models import (
    ACTIVE_DOWNLOAD_STATUSES,
    CleanupRun,
    DownloadTask,
    DownloadTaskStatus,
    HostUpdateFile,
    PayloadFile,
    utcnow,
)
from wuacache_server.fetch.downloader import PART_SUFFIX, PARTIAL_DIR, VALIDATOR_SUFFIX
from wuacache_server.filelock import try_lock
from wuacache_server.services.needs import needed_file_ids

logger = logging.getLogger(__name__)

# How long a forced download is kept when no host needs it.
FORCED_RETENTION = timedelta(days=7)
LOCK_NAME = "cleanup.lock"


class CleanupBusy(Exception):
    """Another cleanup is running."""


@dataclass(frozen=True)
class CleanupResult:
    """What one cleanup did; ``run_id`` is its ``cleanup_runs`` row (None when disabled)."""

    run_id: int | None
    files_removed: int
    bytes_freed: int
    partials_removed: int
    message: str


def in_window(now: datetime, window: TimeWindow | str) -> bool:
    """Whether ``now`` falls in a daily window such as ``"02:30-03:30"`` (server local time).

    An aware ``now`` is read in the server's time zone; a naive one is taken as local time.
    """
    if isinstance(window, str):
        window = TimeWindow.model_validate(window)
    local = now.astimezone() if now.tzinfo is not None else now
    return window.contains(local.time())


def run_cleanup(settings: Settings, session_factory: sessionmaker[Session], now: datetime) -> CleanupResult:
    """Delete the files of ``<repository>/wua`` that no host needs; see the module's docstring.

    ``now`` is when the run starts (timezone-aware), recorded with it.

    Raises:
        CleanupBusy: another cleanup is running; this one did nothing.
    """
    if not settings.cleanup_kbs:
        message = "cleanup is turned off (cleanup_kbs = false): nothing removed"
        logger.info(message)
        return CleanupResult(run_id=None, files_removed=0, bytes_freed=0, partials_removed=0, message=message)
    with _exclusive(settings.data_dir / LOCK_NAME):
        return _clean(settings, session_factory, now)


def _clean(settings: Settings, session_factory: sessionmaker[Session], now: datetime) -> CleanupResult:
    """The cleanup itself, run with the lock held."""
    with session_factory.begin() as session:
        run = CleanupRun(started_at=now)
        session.add(run)
        session.flush()
        run_id = run.id
    try:
        kept, files_removed, bytes_freed = _remove_unneeded_files(settings.wua_dir, session_factory, now)
        partials_removed, partial_bytes = _remove_stale_partials(settings.wua_dir / PARTIAL_DIR, kept)
    except Exception as exc:
        with session_factory.begin() as session:
            session.execute(
                update(CleanupRun).where(CleanupRun.id == run_id).values(finished_at=utcnow(), error=str(exc)[:2000])
            )
        raise
    bytes_freed += partial_bytes
    with session_factory.begin() as session:
        session.execute(
            update(CleanupRun)
            .where(CleanupRun.id == run_id)
            .values(finished_at=utcnow(), files_removed=files_removed, bytes_freed=bytes_freed)
        )
    message = (
        f"removed {files_removed} file(s) and {partials_removed} partial download(s), "
        f"{bytes_freed} bytes freed; kept {len(kept)} needed or recent file(s)"
    )
    logger.info("Cleanup: %s", message)
    return CleanupResult(
        run_id=run_id,
        files_removed=files_removed,
        bytes_freed=bytes_freed,
        partials_removed=partials_removed,
        message=message,
    )


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold the cleanup lock for the block; CleanupBusy, at once, if another cleanup holds it."""
    lock = try_lock(lock_path)
    if lock is None:
        raise CleanupBusy("another cleanup is running")
    with lock:
        yield


def _kept_file_names(session: Session, now: datetime) -> set[str]:
    """Names of the files hosts need, of those being downloaded and of those forced recently."""
    kept: set[str] = set()
    needed = sorted(needed_file_ids(session))
    for chunk in chunks(needed):
        kept.update(session.scalars(select(PayloadFile.file_name).where(PayloadFile.id.in_(chunk))))
    recent_or_active = (
        select(PayloadFile.file_name)
        .join(DownloadTask, DownloadTask.payload_file_id == PayloadFile.id)
        .where(
            or_(
                DownloadTask.status.in_(ACTIVE_DOWNLOAD_STATUSES),
                (DownloadTask.forced.is_(True))
                & (DownloadTask.status == DownloadTaskStatus.COMPLETED)
                & (DownloadTask.finished_at >= now - FORCED_RETENTION),
            )
        )
    )
    kept.update(session.scalars(recent_or_active))
    return kept


def _remove_unneeded_files(
    wua_dir: Path, session_factory: sessionmaker[Session], now: datetime
) -> tuple[set[str], int, int]:
    """Delete the update files no host needs; returns (the names kept, files removed, bytes freed)."""
    # The database first: a file it no longer claims is fetched again if
    # needed, while a claimed file that is gone would be promised to hosts.
    with session_factory.begin() as session:
        _hold_off_reports(session)
        kept = _kept_file_names(session, now)
        doomed = {name: size for name, size in _repository_files(wua_dir) if name not in kept}
        names = sorted(doomed)
        for chunk in chunks(names):
            session.execute(
                update(PayloadFile)
                .where(PayloadFile.file_name.in_(chunk))
                .values(stored_at=None, stored_size=None)
            )
    removed = freed = 0
    for name in names:
        try:
            (wua_dir / name).unlink()
        except FileNotFoundError:
            continue
        removed += 1
        freed += doomed[name]
        logger.debug("Removed %s (%d bytes): no host needs it", name, doomed[name])
    return kept, removed, freed


def _hold_off_reports(session: Session) -> None:
    """Lock ``host_update_files`` against reports until the session commits.

    The lock waits for the reports under way to commit; the needs read after
    it are then final until the commit.
    """
    if session.get_bind().dialect.name == "postgresql":
        # SHARE conflicts with the ROW EXCLUSIVE of a report's writes.
        session.execute(text("LOCK TABLE host_update_files IN SHARE MODE"))
    else:
        # SQLite has one writer: a first write, even of no row, takes its lock.
        session.execute(delete(HostUpdateFile).where(false()))


def _repository_files(wua_dir: Path) -> Iterator[tuple[str, int]]:
    """(name, size) of the update files in ``wua_dir``: regular files other than the catalog's."""
    try:
        entries = list(os.scandir(wua_dir))
    except FileNotFoundError:
        return
    for entry in entries:
        # Dot-files are work files (partial downloads, the cab sync's temporary files).
        if entry.name.startswith(".") or entry.name in (CAB_NAME, SIDECAR_NAME):
            continue
        info = entry.stat(follow_symlinks=False)
        if stat.S_ISREG(info.st_mode):
            yield entry.name, info.st_size


def _remove_stale_partials(partial_dir: Path, kept: set[str]) -> tuple[int, int]:
    """Delete partial downloads of files not in ``kept`` that no download holds;
    returns (partials removed, bytes freed)."""
    try:
        parts = [entry for entry in os.scandir(partial_dir) if entry.name.endswith(PART_SUFFIX)]
    except FileNotFoundError:
        return 0, 0
    removed = freed = 0
    for entry in parts:
        file_name = entry.name.removesuffix(PART_SUFFIX)
        if file_name in kept:
            continue  # the next fetch resumes it
        with open(entry.path, "rb") as part:
            try:
                # The lock every download holds on its part (fetch.downloader).
                fcntl.flock(part.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            size = os.fstat(part.fileno()).st_size
            Path(entry.path).unlink(missing_ok=True)
            (partial_dir / (file_name + VALIDATOR_SUFFIX)).unlink(missing_ok=True)
        removed += 1
        freed += size
    return removed, freed
