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
from wuacache_server.services.cleanup import CleanupBusy, in_window, run_cleanup
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
        self.prime(self._clock())
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="wuacache-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def prime(self, now: datetime) -> None:
        """Plan the first turns: a server that never synced its catalog does it at once."""
        schedule = self._settings.cab_sync_schedule
        self.next_sync = now if self._never_synced() else schedule.next_run(now, self._rng)
        self.next_fetch = now
        self.cleaned_on: date | None = None
        logger.info(
            "Scheduler started: next cab sync %s, fetch every %s",
            self.next_sync.isoformat(timespec="minutes"),
            self._settings.fetch_interval,
        )

    def tick(self, now: datetime) -> datetime:
        """Run what is due at ``now``; returns when something is due next."""
        settings = self._settings
        if now >= self.next_sync:
            self._run("cab sync", self._sync_cab)
            self.next_sync = settings.cab_sync_schedule.next_run(now, self._rng)
        if now >= self.next_fetch:
            self._run("fetch", self._fetch.run_once)
            self.next_fetch = now + settings.fetch_interval
        if settings.cleanup_kbs and self.cleaned_on != now.date() and in_window(now, settings.cleanup_window):
            self._run("cleanup", lambda: self._cleanup(now))
            self.cleaned_on = now.date()
        return min(self.next_sync, self.next_fetch)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            due = self.tick(self._clock())
            self._stopping.wait(min(max((due - self._clock()).total_seconds(), 1.0), MAX_SLEEP_SECONDS))
        logger.info("Scheduler stopped")

    def _sync_cab(self) -> None:
        if self._settings.cab_ca_bundle is None:
            logger.warning("Cab sync skipped: cab_ca_bundle is not set, so no catalog signature could be verified")
            return
        try:
            run_cab_sync(self._settings, self._sessions)  # it logs its own summary
        except CabSyncBusy:
            logger.info("Cab sync skipped: another one is running")

    def _cleanup(self, now: datetime) -> None:
        try:
            run_cleanup(self._settings, self._sessions, now.astimezone(UTC))  # it logs its own summary
        except CleanupBusy:
            logger.info("Cleanup skipped: another one is running")

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
