"""Fetch the update files hosts need: the fetcher wired to the catalog and to download tasks.

Every file the server downloads is a ``payload_files`` row of the verified
catalog, and its URL and digests come from that row only: a host's report can
say which updates it needs, never where to fetch anything from. Each download
is a ``download_tasks`` row, one active (waiting or running) task per file,
whose state and progress the fetcher's callbacks keep current in short
transactions. A task that failed is queued again, rather than a new one
created, the next time its file is needed: its ``attempts`` keep counting and
its ``error`` stays readable until it succeeds.

When a file is published, ``payload_files.stored_at`` records it, and every
host update whose files are now all on the server becomes PENDING with its
files available; when a download fails, the host updates PENDING because
their files were being fetched become MISSING. Their reasons are rewritten in
:func:`wuacache_server.policy.decide`'s words.

One process fetches into a repository at a time: the service holds a lock on
it while it runs. Tasks it finds waiting or running when it starts were
therefore left by a stop or a crash, and it resumes them (the downloader
resumes their partial files with ``Range``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import IO, Any

from sqlalchemy import ColumnElement, CursorResult, and_, func, insert, or_, select, union, update
from sqlalchemy import Update as UpdateStatement
from sqlalchemy.orm import Session, sessionmaker

from wuacache_server.config import Settings
from wuacache_server.db.batches import chunks
from wuacache_server.db.models import (
    ACTIVE_DOWNLOAD_STATUSES,
    BundleMember,
    ChildFile,
    DownloadTask,
    DownloadTaskStatus,
    HostUpdate,
    HostUpdateFile,
    HostUpdateStatus,
    PayloadFile,
    Update,
    utcnow,
)
from wuacache_server.fetch import Fetcher, FetchHandle, FetchJob, FetchState
from wuacache_server.fetch.fetcher import FINISHED_STATES
from wuacache_server.filelock import try_lock
from wuacache_server.policy import FILES_OUTCOMES, FilesState
from wuacache_server.services.needs import missing_file_ids

logger = logging.getLogger(__name__)

LOCK_NAME = ".fetch.lock"  # in the repository folder, beside wua/
PROGRESS_WRITE_INTERVAL = 2.0  # seconds between two progress writes of one task
MAX_ERROR_LENGTH = 2000
FAILURE_COOLDOWN = timedelta(minutes=5)  # before a report may queue a failed file again

# How policy.decide says where an allowed, needed update's files stand, at the
# end of its reason (before "; hidden on the host").
FILES_ABSENT = "; " + FILES_OUTCOMES[FilesState.ABSENT][1]
FILES_FETCHING = "; " + FILES_OUTCOMES[FilesState.FETCHING][1]
FILES_AVAILABLE = "; " + FILES_OUTCOMES[FilesState.AVAILABLE][1]


class FetchServiceBusy(RuntimeError):
    """Another process is fetching into the same repository."""


class UpdatesNotDownloadable(ValueError):
    """UpdateIDs asked for that the catalog does not have, or that have no files."""

    def __init__(self, unknown: Sequence[str], without_files: Sequence[str]) -> None:
        problems = []
        if unknown:
            problems.append(f"not in the catalog: {', '.join(unknown)}")
        if without_files:
            problems.append(f"without files to download: {', '.join(without_files)}")
        super().__init__("UpdateIDs " + "; ".join(problems))
        self.unknown = tuple(unknown)
        self.without_files = tuple(without_files)


@dataclass(frozen=True)
class FetchSummary:
    """How a set of download tasks ended."""

    completed: int
    bytes_done: int  # of the completed files
    failed: tuple[tuple[str, str], ...]  # (file name, error) of the tasks that failed or were canceled


def summarize(session: Session, task_ids: Sequence[int]) -> FetchSummary:
    """How the finished tasks among ``task_ids`` ended."""
    completed = bytes_done = 0
    failed = []
    for chunk in chunks(sorted(task_ids)):
        rows = session.execute(
            select(DownloadTask.status, DownloadTask.bytes_done, DownloadTask.error, PayloadFile.file_name)
            .join(PayloadFile, PayloadFile.id == DownloadTask.payload_file_id)
            .where(DownloadTask.id.in_(chunk), DownloadTask.status.not_in(ACTIVE_DOWNLOAD_STATUSES))
        )
        for status, done, error, file_name in rows:
            if status == DownloadTaskStatus.COMPLETED:
                completed += 1
                bytes_done += done
            else:
                failed.append((file_name, error or str(status)))
    return FetchSummary(completed=completed, bytes_done=bytes_done, failed=tuple(failed))


class FetchService:
    """Downloads the files hosts need, and those an administrator forces.

    Args:
        settings: repository, allowlist, proxy, concurrency and retries.
        session_factory: makes the database sessions; each callback of the
            fetcher uses a session of its own.
        backoff: seconds before a failed transfer's first retry, doubled for
            each next one.

    ``start()`` (or ``with``) takes the repository's lock and resumes the
    tasks left waiting or running; ``close()`` stops the downloads, keeping
    their partial files and leaving their tasks waiting for the next start.
    """

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session], *, backoff: float = 60.0) -> None:
        self._settings = settings
        self._sessions = session_factory
        self._backoff = backoff
        self._fetcher: Fetcher | None = None
        self._lock_file: IO[str] | None = None
        self._stopping = False
        # Held to queue files and to record how downloads end, so that a
        # queueing never decides on an outcome recorded meanwhile (a download
        # would start twice), and two files of one update completing at once
        # do not each see the other still absent. Reentrant: a job the
        # fetcher refuses is recorded as failed while queueing.
        self._tasks_lock = threading.RLock()
        self._state_lock = threading.Lock()
        self._handles: dict[int, FetchHandle] = {}  # by task id, until finished
        self._progress_written: dict[str, float] = {}  # running jobs by key: when progress was last written

    def start(self) -> list[int]:
        """Start the downloads and resume the tasks a previous run left; returns their ids.

        Raises:
            FetchServiceBusy: another process fetches into the repository.
        """
        if self._fetcher is not None:
            raise RuntimeError("the fetch service is already running")
        self._lock_repository()
        self._stopping = False
        settings = self._settings
        self._fetcher = Fetcher(
            settings.wua_dir,
            settings.upstream_allowlist,
            concurrency=settings.fetch_concurrency,
            retries=settings.fetch_retries,
            backoff=self._backoff,
            proxy=settings.http_proxy,
            on_change=self._on_change,
        )
        try:
            left = self._resume()
        except BaseException:
            self.close()
            raise
        if left:
            logger.info("Resuming %d download(s) left by the previous run", len(left))
        return left

    def _resume(self) -> list[int]:
        with self._tasks_lock:
            with self._sessions.begin() as session:
                # A crash left these running; they run again from the queue.
                session.execute(
                    update(DownloadTask)
                    .where(DownloadTask.status == DownloadTaskStatus.RUNNING)
                    .values(status=DownloadTaskStatus.WAITING)
                    .execution_options(synchronize_session=False)
                )
                left = list(
                    session.scalars(select(DownloadTask.id).where(DownloadTask.status == DownloadTaskStatus.WAITING))
                )
                jobs = _jobs_of(session, left)
            self._submit(jobs)
        return left

    def close(self) -> None:
        """Stop: running downloads keep their partial files, their tasks wait for the next start."""
        if self._fetcher is None:
            return
        self._stopping = True
        try:
            self._fetcher.shutdown(wait=True, cancel_pending=True)
        finally:
            self._fetcher = None
            if self._lock_file is not None:
                self._lock_file.close()  # releases the lock
                self._lock_file = None

    def __enter__(self) -> FetchService:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def run_once(self, forced_update_ids: Collection[str] = ()) -> list[int]:
        """Queue every needed file not on the server yet, plus the files of ``forced_update_ids``.

        Returns the ids of the tasks queued (or found already queued); it
        does not wait for them: see :meth:`wait`.

        Raises:
            UpdatesNotDownloadable: a forced UpdateID is unknown or has no files;
                nothing is queued then.
        """
        task_ids = self.force(forced_update_ids) if forced_update_ids else []
        with self._sessions() as session:
            missing = missing_file_ids(session)
        task_ids.extend(self._queue(missing, forced=False))
        logger.info("Fetch run: %d needed file(s) not on the server yet", len(missing))
        return sorted(set(task_ids))

    def force(self, update_ids: Collection[str]) -> list[int]:
        """Queue, ahead of the others, the files of the latest revision of each UpdateID.

        Files already on the server are verified again rather than fetched.

        Raises:
            UpdatesNotDownloadable: an UpdateID is unknown or has no files;
                nothing is queued then.
        """
        wanted = sorted({update_id.strip().lower() for update_id in update_ids})
        files: dict[str, set[int]] = {}
        with self._sessions() as session:
            for chunk in chunks(wanted):
                for update_id, file_id in _files_of_latest_revisions(session, chunk):
                    files.setdefault(update_id, set())
                    if file_id is not None:
                        files[update_id].add(file_id)
        unknown = [update_id for update_id in wanted if update_id not in files]
        without_files = [update_id for update_id in wanted if files.get(update_id) == set()]
        if unknown or without_files:
            raise UpdatesNotDownloadable(unknown, without_files)
        logger.info("Forced download of %d update(s)", len(wanted))
        return self._queue(set().union(*files.values()), forced=True)

    def trigger(self, file_ids: Iterable[int]) -> list[int]:
        """Queue at once those of ``file_ids`` not on the server yet (a report brought a new need).

        A file whose download failed less than :data:`FAILURE_COOLDOWN` ago
        waits for the next scheduled run: reports from many hosts needing it
        must not hammer an upstream that just served it wrong.
        """
        return self._queue(file_ids, forced=False, cooldown=FAILURE_COOLDOWN)

    def wait(self, task_ids: Iterable[int], timeout: float | None = None) -> bool:
        """Block until the tasks are finished; False if ``timeout`` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for task_id in task_ids:
            with self._state_lock:
                handle = self._handles.get(task_id)
            if handle is None:
                continue  # finished and forgotten, or never submitted
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not handle.wait(remaining):
                return False
        return True

    # Queueing ------------------------------------------------------------------

    def _queue(self, file_ids: Iterable[int], *, forced: bool, cooldown: timedelta | None = None) -> list[int]:
        if self._fetcher is None:
            raise RuntimeError("the fetch service is not running")
        with self._tasks_lock:
            with self._sessions.begin() as session:
                task_ids = [
                    task_id
                    for chunk in chunks(sorted(set(file_ids)))
                    for task_id in _activate_tasks(session, chunk, forced=forced, cooldown=cooldown)
                ]
                jobs = _jobs_of(session, task_ids)
            # Only once committed: the workers update these rows.
            self._submit(jobs)
        return task_ids

    def _submit(self, jobs: list[tuple[int, FetchJob]]) -> None:
        assert self._fetcher is not None
        with self._state_lock:
            self._handles = {
                task_id: handle for task_id, handle in self._handles.items() if handle.state not in FINISHED_STATES
            }
        for task_id, job in jobs:
            try:
                handle = self._fetcher.submit(job)
            except ValueError as exc:  # a catalog row the downloader cannot use
                logger.error("Cannot fetch %s: %s", job.file_name, exc)
                self._write_finished(job, DownloadTaskStatus.FAILED, error=str(exc))
                continue
            with self._state_lock:
                self._handles[task_id] = handle

    def _lock_repository(self) -> None:
        # Held open for as long as the service runs.
        lock_file = try_lock(self._settings.repository_dir / LOCK_NAME)
        if lock_file is None:
            raise FetchServiceBusy(
                f"another process is fetching into {self._settings.repository_dir} (the running server?)"
            )
        self._lock_file = lock_file

    # Progress ------------------------------------------------------------------

    def _on_change(self, job: FetchJob, handle: FetchHandle) -> None:
        state = handle.state
        if state == FetchState.WAITING:
            return  # written when queued
        if state == FetchState.RUNNING:
            self._write_running(job, handle)
        elif state == FetchState.COMPLETED:
            self._write_completed(job, handle)
        elif state == FetchState.CANCELED and self._stopping:
            # Stopped with the service, not canceled: the next start resumes
            # it. One that never ran is still waiting as written.
            with self._state_lock:
                ran = self._progress_written.pop(job.key, None) is not None
            if ran:
                self._write_finished(job, DownloadTaskStatus.WAITING, bytes_done=handle.bytes_done or None)
        else:
            status = DownloadTaskStatus.FAILED if state == FetchState.FAILED else DownloadTaskStatus.CANCELED
            error = str(handle.error or state)[:MAX_ERROR_LENGTH]
            self._write_finished(job, status, error=error, bytes_done=handle.bytes_done or None)

    def _write_running(self, job: FetchJob, handle: FetchHandle) -> None:
        now = time.monotonic()
        with self._state_lock:
            last = self._progress_written.get(job.key)
            if last is not None and now - last < PROGRESS_WRITE_INTERVAL:
                return
            self._progress_written[job.key] = now
        values: dict[str, object] = {"bytes_done": handle.bytes_done, "bytes_total": handle.bytes_total}
        if last is None:  # the job just started
            values |= {
                "status": DownloadTaskStatus.RUNNING,
                "started_at": utcnow(),
                "attempts": DownloadTask.attempts + 1,
            }
        with self._sessions.begin() as session:
            session.execute(_update_current_task(job.key, values))

    def _write_completed(self, job: FetchJob, handle: FetchHandle) -> None:
        with self._state_lock:
            self._progress_written.pop(job.key, None)
        now = utcnow()
        size = handle.bytes_done
        with self._tasks_lock, self._sessions.begin() as session:
            session.execute(
                _update_current_task(
                    job.key,
                    {
                        "status": DownloadTaskStatus.COMPLETED,
                        "bytes_done": size,
                        "bytes_total": size,
                        "error": None,
                        "finished_at": now,
                    },
                )
            )
            file_id = session.scalar(select(PayloadFile.id).where(PayloadFile.sha1 == job.key))
            if file_id is None:
                return  # the catalog dropped it meanwhile
            session.execute(
                update(PayloadFile)
                .where(PayloadFile.id == file_id)
                .values(stored_at=now, stored_size=size)
                .execution_options(synchronize_session=False)
            )
            promoted = _promote_host_updates(session, file_id, now)
        logger.info(
            "%s is on the server (%d bytes)%s",
            job.file_name,
            size,
            f"; {promoted} host update(s) now PENDING" if promoted else "",
        )

    def _write_finished(
        self, job: FetchJob, status: DownloadTaskStatus, *, error: str | None = None, bytes_done: int | None = None
    ) -> None:
        with self._state_lock:
            self._progress_written.pop(job.key, None)
        values: dict[str, object] = {"status": status}
        if status != DownloadTaskStatus.WAITING:
            values |= {"error": error, "finished_at": utcnow()}
        if bytes_done is not None:
            values["bytes_done"] = bytes_done
        with self._tasks_lock, self._sessions.begin() as session:
            session.execute(_update_current_task(job.key, values))
            if status != DownloadTaskStatus.WAITING:
                _demote_host_updates(session, job.key, utcnow())


def _update_current_task(key: str, values: dict[str, Any]) -> UpdateStatement:
    """An UPDATE of the file's latest task, the one its download reports on (ids only grow)."""
    current = (
        select(func.max(DownloadTask.id))
        .join(PayloadFile, PayloadFile.id == DownloadTask.payload_file_id)
        .where(PayloadFile.sha1 == key)
        .scalar_subquery()
    )
    return (
        update(DownloadTask)
        .where(DownloadTask.id == current)
        .values(values)
        .execution_options(synchronize_session=False)
    )


def _activate_tasks(
    session: Session, file_ids: Sequence[int], *, forced: bool, cooldown: timedelta | None = None
) -> list[int]:
    """The active task of each file: the one already waiting or running, else the
    file's failed or canceled task queued again, else a new one.

    Unless ``forced``, files already on the server get none; with ``cooldown``,
    neither do files whose latest download failed less than that long ago.
    Both are decided here, in the transaction that queues: read before, they
    would miss an outcome recorded meanwhile, and start a download again.

    It writes before it reads: on SQLite a transaction that read first cannot
    take the write lock once a worker has committed meanwhile.
    """
    wanted_files = select(PayloadFile.id).where(PayloadFile.id.in_(file_ids))
    if not forced:
        wanted_files = wanted_files.where(PayloadFile.stored_at.is_(None))
    # A file's latest task is its active one if it has one (ids only grow).
    latest = (
        select(func.max(DownloadTask.id))
        .where(DownloadTask.payload_file_id.in_(wanted_files))
        .group_by(DownloadTask.payload_file_id)
    )
    retryable: ColumnElement[bool] = DownloadTask.status.in_((DownloadTaskStatus.FAILED, DownloadTaskStatus.CANCELED))
    if cooldown is not None:
        retryable = and_(
            retryable,
            or_(DownloadTask.status == DownloadTaskStatus.CANCELED, DownloadTask.finished_at <= utcnow() - cooldown),
        )
    session.execute(
        update(DownloadTask)
        .where(DownloadTask.id.in_(latest), retryable)
        .values(status=DownloadTaskStatus.WAITING, finished_at=None)
        .execution_options(synchronize_session=False)
    )
    wanted = set(session.scalars(wanted_files))
    if cooldown is not None:
        cooling = select(DownloadTask.payload_file_id).where(
            DownloadTask.id.in_(latest), DownloadTask.status == DownloadTaskStatus.FAILED
        )
        wanted -= set(session.scalars(cooling))
    active = select(DownloadTask.payload_file_id).where(
        DownloadTask.payload_file_id.in_(file_ids), DownloadTask.status.in_(ACTIVE_DOWNLOAD_STATUSES)
    )
    queued = set(session.scalars(active))
    new = [{"payload_file_id": file_id, "forced": forced} for file_id in sorted(wanted - queued)]
    if new:
        session.execute(insert(DownloadTask), new)
    tasks = select(DownloadTask.id).where(
        DownloadTask.payload_file_id.in_(wanted), DownloadTask.status.in_(ACTIVE_DOWNLOAD_STATUSES)
    )
    if forced:
        session.execute(
            update(DownloadTask)
            .where(DownloadTask.id.in_(tasks), DownloadTask.forced.is_(False))
            .values(forced=True)
            .execution_options(synchronize_session=False)
        )
    return list(session.scalars(tasks))


def _jobs_of(session: Session, task_ids: Sequence[int]) -> list[tuple[int, FetchJob]]:
    """The fetcher's jobs for tasks, from the catalog's rows only."""
    jobs = []
    for chunk in chunks(sorted(task_ids)):
        rows = session.execute(
            select(DownloadTask.id, DownloadTask.forced, PayloadFile)
            .join(PayloadFile, PayloadFile.id == DownloadTask.payload_file_id)
            .where(DownloadTask.id.in_(chunk))
        )
        for task_id, forced, file in rows:
            job = FetchJob(
                key=file.sha1,
                url=file.url,
                file_name=file.file_name,
                sha1_b64=file.sha1,
                sha256_b64=file.sha256,
                size=file.size,
                forced=forced,
            )
            jobs.append((task_id, job))
    # Forced ones first, so that they reach the fetcher's queue before the others.
    return sorted(jobs, key=lambda entry: not entry[1].forced)


def _files_of_latest_revisions(session: Session, update_ids: Sequence[str]) -> list[tuple[str, int | None]]:
    """(UpdateID, payload file id) for the latest revision of each known UpdateID;
    the id is None for an update without files."""
    latest = (
        select(Update.update_id, func.max(Update.revision_number).label("revision_number"))
        .where(Update.update_id.in_(update_ids))
        .group_by(Update.update_id)
        .subquery()
    )
    revisions = dict(
        session.execute(
            select(Update.revision_id, Update.update_id).join(
                latest,
                and_(Update.update_id == latest.c.update_id, Update.revision_number == latest.c.revision_number),
            )
        ).all()
    )
    if not revisions:
        return []
    own = select(ChildFile.child_revision_id, ChildFile.payload_file_id).where(
        ChildFile.child_revision_id.in_(revisions)
    )
    bundled = (
        select(BundleMember.bundle_revision_id, ChildFile.payload_file_id)
        .join(ChildFile, ChildFile.child_revision_id == BundleMember.child_revision_id)
        .where(BundleMember.bundle_revision_id.in_(revisions))
    )
    found: list[tuple[str, int | None]] = [(update_id, None) for update_id in revisions.values()]
    found.extend((revisions[revision_id], file_id) for revision_id, file_id in session.execute(union(own, bundled)))
    return found


def _its_files() -> ColumnElement[bool]:
    """Correlates host_update_files with the host_updates row being updated."""
    return and_(HostUpdateFile.host_id == HostUpdate.host_id, HostUpdateFile.update_id == HostUpdate.update_id)


def _promote_host_updates(session: Session, file_id: int, now: datetime) -> int:
    """MISSING → PENDING for the host updates that need ``file_id`` and now have all their files."""
    this_file = HostUpdateFile.payload_file_id == file_id
    its_files = _its_files()
    a_file_absent = (
        select(HostUpdateFile.payload_file_id)
        .join(PayloadFile, PayloadFile.id == HostUpdateFile.payload_file_id)
        .where(its_files, PayloadFile.stored_at.is_(None))
    )
    reason = func.replace(
        func.replace(HostUpdate.reason, FILES_ABSENT, FILES_AVAILABLE), FILES_FETCHING, FILES_AVAILABLE
    )
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(HostUpdate)
        .where(
            or_(
                HostUpdate.status == HostUpdateStatus.MISSING,
                and_(
                    HostUpdate.status == HostUpdateStatus.PENDING,
                    HostUpdate.reason.contains(FILES_FETCHING, autoescape=True),
                ),
            ),
            select(HostUpdateFile.payload_file_id).where(its_files, this_file).exists(),
            ~a_file_absent.exists(),
        )
        .values(status=HostUpdateStatus.PENDING, reason=reason, decided_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def _demote_host_updates(session: Session, key: str, now: datetime) -> None:
    """PENDING → MISSING for the host updates whose files were "being fetched" and
    include the file whose download just failed: they are not on their way any more."""
    this_file = HostUpdateFile.payload_file_id.in_(select(PayloadFile.id).where(PayloadFile.sha1 == key))
    session.execute(
        update(HostUpdate)
        .where(
            HostUpdate.status == HostUpdateStatus.PENDING,
            HostUpdate.reason.contains(FILES_FETCHING, autoescape=True),
            select(HostUpdateFile.payload_file_id).where(_its_files(), this_file).exists(),
        )
        .values(
            status=HostUpdateStatus.MISSING,
            reason=func.replace(HostUpdate.reason, FILES_FETCHING, FILES_ABSENT),
            decided_at=now,
        )
        .execution_options(synchronize_session=False)
    )
