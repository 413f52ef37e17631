"""The server's periodic work, in one background thread of ``wuacache-server serve``.

- The catalog: once a day at ``cab_sync_schedule`` (plus its random delay),
  and at start when no catalog has ever been synced.
- Need-driven downloads: every ``fetch_interval``, the files at least one host
  needs and the server lacks (reports also trigger them at once).
- Cleanup: once a night inside ``cleanup_window``, unless ``cleanup_kbs`` is off.

A job that fails is logged and tried again at its next turn; it never stops
the others.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from wuacache_server.config import Settings
from wuacache_server.db.models import CabSyncRun, CabSyncStatus
from wuacache_server.services.cab import CabSyncBusy, run_cab_sync
from wuacache_server.services.cleanup import in_window, run_cleanup
from wuacache_server.services.fetching import FetchService

logger = logging.getLogger(__name__)

# Upper bound of one sleep, so that a changed clock (suspend, NTP) is noticed.
MAX_SLEEP_SECONDS = 60.0


class Scheduler:
    """Runs the cab sync, the fetch and the cleanup when they are due.

    Args:
        settings: schedules and switches.
        session_factory: database sessions for the jobs.
        fetch_service: the running fetch service whose ``run_once`` queues what hosts need.
        clock: the current time, aware (injectable for tests).
        rng: draws the cab sync's daily random delay.
    """

    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        fetch_service: FetchService,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now().astimezone(),
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._sessions = session_factory
        self._fetch = fetch_service
        self._clock = clock
        self._rng = rng or random.Random()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="wuacache-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        settings = self._settings
        now = self._clock()
        next_sync = now if self._never_synced() else settings.cab_sync_schedule.next_run(now, self._rng)
        next_fetch = now
        cleaned_on: date | None = None
        logger.info("Scheduler started: next cab sync %s, fetch every %s", next_sync.isoformat(timespec="minutes"), settings.fetch_interval)
        while not self._stopping.is_set():
            now = self._clock()
            if now >= next_sync:
                self._run("cab sync", self._sync_cab)
                next_sync = settings.cab_sync_schedule.next_run(self._clock(), self._rng)
            if now >= next_fetch:
                self._run("fetch", self._fetch.run_once)
                next_fetch = self._clock() + settings.fetch_interval
            if settings.cleanup_kbs and cleaned_on != now.date() and in_window(now, settings.cleanup_window):
                self._run("cleanup", lambda: run_cleanup(settings, self._sessions, datetime.now(UTC)))
                cleaned_on = now.date()
            due = min(next_sync, next_fetch)
            self._stopping.wait(min(max((due - self._clock()).total_seconds(), 1.0), MAX_SLEEP_SECONDS))
        logger.info("Scheduler stopped")

    def _sync_cab(self) -> None:
        if self._settings.cab_ca_bundle is None:
            logger.warning("Cab sync skipped: cab_ca_bundle is not set, so no catalog signature could be verified")
            return
        try:
            outcome = run_cab_sync(self._settings, self._sessions)
        except CabSyncBusy:
            logger.info("Cab sync skipped: another one is running")
            return
        logger.info("Scheduled cab sync: %s", outcome.summary())

    def _never_synced(self) -> bool:
        with self._sessions() as session:
            return (
                session.scalar(
                    select(CabSyncRun.id).where(CabSyncRun.status.in_((CabSyncStatus.FINISHED, CabSyncStatus.UNCHANGED))).limit(1)
                )
                is None
            )

    @staticmethod
    def _run(name: str, job: Callable[[], object]) -> None:
        try:
            job()
        except Exception:  # a failed job waits for its next turn; the others go on
            logger.exception("Scheduled %s failed", name)
