"""Run the downloads hosts need, a bounded number at a time, once per file.

A FetchJob names one file of the catalog; its key is the file's SHA-1, so
however many hosts need the file and however often it is submitted while
waiting or running, it is downloaded once. Each job gets a FetchHandle whose
state and progress the ``on_change`` callback reports, so that the caller can
keep a task record of it.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from types import TracebackType

import requests

from .allowlist import validate_allowlist
from .downloader import (
    DownloadCanceled,
    DownloadError,
    DownloadResult,
    ExpectedContent,
    download,
    file_matches,
    new_session,
    validate_file_name,
)

logger = logging.getLogger(__name__)

# Queue priorities: forced jobs go before the need-driven ones, and the
# workers' stop signals after every job.
_FORCED, _NORMAL, _STOP = 0, 1, 2


class FetchState(StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


FINISHED_STATES = frozenset({FetchState.COMPLETED, FetchState.FAILED, FetchState.CANCELED})


@dataclass(frozen=True)
class FetchJob:
    """One file to fetch, as the verified catalog describes it.

    ``forced`` marks a download an administrator asked for: it goes before
    the need-driven ones.
    """

    key: str  # the file's SHA-1 digest (base64, as in the catalog)
    url: str
    file_name: str
    sha1_b64: str
    sha256_b64: str | None = None
    size: int | None = None
    forced: bool = False


OnChange = Callable[[FetchJob, "FetchHandle"], None]


class FetchHandle:
    """The state and progress of one job, shared by every submit of its key."""

    def __init__(self, job: FetchJob, fetcher: Fetcher) -> None:
        self.job = job
        self._fetcher = fetcher
        self._finished = threading.Event()
        self._cancel_event = threading.Event()
        self.state = FetchState.WAITING
        self.bytes_done = 0
        self.bytes_total = job.size
        self.error: BaseException | None = None
        self.result: DownloadResult | None = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job is finished; False if ``timeout`` passed first."""
        return self._finished.wait(timeout)

    def cancel(self) -> None:
        """Cancel the job; a running download stops at its next chunk and
        keeps its partial file, to be resumed by a later job."""
        self._fetcher._cancel_handle(self)

    def __repr__(self) -> str:
        return f"<FetchHandle {self.job.file_name} {self.state}>"


class Fetcher:
    """A bounded pool of download workers, one download per key at a time.

    Args:
        dest_dir: the flat repository folder files are published in.
        allowlist: the upstream hosts that may be contacted.
        concurrency: how many downloads may run at once.
        retries, backoff, proxy: passed to each download().
        session_factory: makes the HTTP session of one job.
        on_change: called with (job, handle) on every state change and on
            progress (at most every downloader.PROGRESS_INTERVAL seconds per
            job), from the thread that made the change; what it raises is
            logged and ignored.
    """

    def __init__(
        self,
        dest_dir: Path,
        allowlist: Sequence[str],
        *,
        concurrency: int = 4,
        retries: int = 3,
        backoff: float = 60.0,
        proxy: str | None = None,
        session_factory: Callable[[], requests.Session] = new_session,
        on_change: OnChange | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.dest_dir = Path(dest_dir)
        self.allowlist = validate_allowlist(allowlist)  # a configuration error fails here, not per job
        self.retries = retries
        self.backoff = backoff
        self.proxy = proxy
        self._session_factory = session_factory
        self._on_change = on_change
        self._lock = threading.Lock()
        self._active: dict[str, FetchHandle] = {}  # waiting or running, by key
        self._queue: queue.PriorityQueue[tuple[int, int, FetchHandle | None]] = queue.PriorityQueue()
        self._order = itertools.count()  # first in, first out within a priority
        self._closed = False
        self._workers = [
            threading.Thread(target=self._work, name=f"fetch-worker-{number}", daemon=True)
            for number in range(1, concurrency + 1)
        ]
        for worker in self._workers:
            worker.start()

    def submit(self, job: FetchJob) -> FetchHandle:
        """Queue ``job``, or return the handle of the same key already queued or running.

        Raises ValueError for a malformed job and RuntimeError after shutdown().
        """
        validate_file_name(job.file_name)
        ExpectedContent.from_catalog(job.sha1_b64, job.sha256_b64, job.size)
        with self._lock:
            if self._closed:
                raise RuntimeError("the fetcher is shut down")
            handle = self._active.get(job.key)
            if handle is None:
                if any(other.job.file_name == job.file_name for other in self._active.values()):
                    raise ValueError(f"{job.file_name} is already being fetched under another key")
                handle = FetchHandle(job, self)
                self._active[job.key] = handle
                self._enqueue(handle)
            elif job.forced and not handle.job.forced and handle.state == FetchState.WAITING:
                # Queued again, ahead; the older entry is skipped when reached.
                handle.job = replace(handle.job, forced=True)
                self._enqueue(handle)
            else:
                return handle
        self._notify(handle)
        return handle

    def shutdown(self, wait: bool = True, cancel_pending: bool = False) -> None:
        """Accept no more jobs and stop the workers once the queue is done.

        ``cancel_pending`` cancels every job not finished yet, running ones
        included: their partial files are kept for a later resume.
        """
        with self._lock:
            if not self._closed:
                self._closed = True
                for _ in self._workers:
                    self._queue.put((_STOP, next(self._order), None))
            pending = list(self._active.values()) if cancel_pending else []
        for handle in pending:
            handle.cancel()
        if wait:
            for worker in self._workers:
                worker.join()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shutdown(wait=True, cancel_pending=True)

    def _enqueue(self, handle: FetchHandle) -> None:
        priority = _FORCED if handle.job.forced else _NORMAL
        self._queue.put((priority, next(self._order), handle))

    def _work(self) -> None:
        while True:
            _, _, handle = self._queue.get()
            if handle is None:
                return
            with self._lock:
                if handle.state != FetchState.WAITING:
                    continue  # canceled while waiting, or queued twice
                handle.state = FetchState.RUNNING
            self._notify(handle)
            self._run(handle)

    def _run(self, handle: FetchHandle) -> None:
        job = handle.job
        target = self.dest_dir / job.file_name
        expected = ExpectedContent.from_catalog(job.sha1_b64, job.sha256_b64, job.size)
        try:
            if file_matches(target, expected):
                logger.info("%s is already in the repository, verified", job.file_name)
                size = target.stat().st_size
                self._finish(handle, FetchState.COMPLETED, bytes_done=size, bytes_total=size)
                return
            if target.exists():
                # Never leave wrong bytes where hosts download from.
                logger.warning("%s in the repository does not match its digest; removing it", job.file_name)
                target.unlink(missing_ok=True)
            with self._session_factory() as session:
                result = download(
                    job.url,
                    dest_dir=self.dest_dir,
                    file_name=job.file_name,
                    sha1_b64=job.sha1_b64,
                    sha256_b64=job.sha256_b64,
                    size=job.size,
                    allowlist=self.allowlist,
                    session=session,
                    proxy=self.proxy,
                    retries=self.retries,
                    backoff=self.backoff,
                    progress=lambda done, total: self._progress(handle, done, total),
                    cancel=handle._cancel_event,
                )
        except DownloadCanceled as exc:
            self._finish(handle, FetchState.CANCELED, error=exc)
        except DownloadError as exc:  # the downloader logged it
            self._finish(handle, FetchState.FAILED, error=exc)
        except Exception as exc:  # recorded on the handle: one bad file must not stop the worker
            logger.error("Fetching %s from %s failed: %s", job.file_name, job.url, exc)
            self._finish(handle, FetchState.FAILED, error=exc)
        else:
            handle.result = result
            self._finish(handle, FetchState.COMPLETED, bytes_done=result.size, bytes_total=result.size)

    def _progress(self, handle: FetchHandle, done: int, total: int | None) -> None:
        handle.bytes_done = done
        if total is not None:
            handle.bytes_total = total
        self._notify(handle)

    def _cancel_handle(self, handle: FetchHandle) -> None:
        with self._lock:
            if handle.state in FINISHED_STATES:
                return
            handle._cancel_event.set()
            if handle.state == FetchState.RUNNING:
                return  # the download notices the event and finishes the handle
            handle.state = FetchState.CANCELED
            self._active.pop(handle.job.key, None)
        self._notify(handle)
        handle._finished.set()

    def _finish(
        self,
        handle: FetchHandle,
        state: FetchState,
        *,
        error: BaseException | None = None,
        bytes_done: int | None = None,
        bytes_total: int | None = None,
    ) -> None:
        with self._lock:
            handle.state = state
            handle.error = error
            if bytes_done is not None:
                handle.bytes_done = bytes_done
            if bytes_total is not None:
                handle.bytes_total = bytes_total
        # The key is released only once on_change has recorded the outcome: a
        # job submitted meanwhile gets this handle, not a second download
        # decided on a record that still says "running".
        self._notify(handle)
        with self._lock:
            if self._active.get(handle.job.key) is handle:
                del self._active[handle.job.key]
        handle._finished.set()

    def _notify(self, handle: FetchHandle) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(handle.job, handle)
        except Exception:
            logger.exception("on_change failed for %s", handle.job.file_name)
