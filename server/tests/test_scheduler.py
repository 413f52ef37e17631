"""When the scheduler runs the cab sync, the fetch and the cleanup."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from wuacache_server.config import Settings
from wuacache_server.db.engine import session_factory
from wuacache_server.db.models import CabSyncReason, CabSyncRun, CabSyncStatus
from wuacache_server.services import scheduler as scheduler_module
from wuacache_server.services.scheduler import Scheduler

# Schedules and windows follow the server's local time.
LOCAL = datetime.now().astimezone().tzinfo


class Jobs:
    """Records which job ran when; stands in for the real jobs."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, datetime | None]] = []

    def run_once(self) -> list[int]:
        self.ran.append(("fetch", None))
        return []


@pytest.fixture
def jobs(monkeypatch: pytest.MonkeyPatch) -> Jobs:
    jobs = Jobs()
    monkeypatch.setattr(scheduler_module, "run_cab_sync", lambda settings, sessions: jobs.ran.append(("cab sync", None)))
    monkeypatch.setattr(scheduler_module, "run_cleanup", lambda settings, sessions, now: jobs.ran.append(("cleanup", now)))
    return jobs


def make_scheduler(settings: Settings, engine: Engine, jobs: Jobs, **changes: object) -> Scheduler:
    settings = settings.model_copy(update={"cab_ca_bundle": settings.data_dir / "roots.pem", **changes})
    return Scheduler(settings, session_factory(engine), jobs, rng=random.Random(1))  # type: ignore[arg-type]


def names(jobs: Jobs) -> list[str]:
    return [name for name, _ in jobs.ran]


def test_a_server_that_never_synced_syncs_at_once_then_daily(settings: Settings, engine: Engine, jobs: Jobs) -> None:
    scheduler = make_scheduler(settings, engine, jobs)
    start = datetime(2026, 11, 27, 14, 0, tzinfo=LOCAL)
    scheduler.prime(start)
    scheduler.tick(start)
    assert names(jobs) == ["cab sync", "fetch"]

    # Next sync: tomorrow at 03:00 local time plus at most the random delay.
    assert datetime(2026, 11, 28, 3, 0, tzinfo=LOCAL) <= scheduler.next_sync <= datetime(2026, 11, 28, 3, 30, tzinfo=LOCAL)
    scheduler.tick(start + timedelta(hours=1))
    assert names(jobs).count("cab sync") == 1


def test_a_server_that_synced_before_waits_for_the_schedule(settings: Settings, engine: Engine, jobs: Jobs) -> None:
    with session_factory(engine).begin() as session:
        now = datetime.now(UTC)
        session.add(
            CabSyncRun(started_at=now, finished_at=now, status=CabSyncStatus.UNCHANGED, reason=CabSyncReason.UNCHANGED)
        )
    scheduler = make_scheduler(settings, engine, jobs)
    start = datetime(2026, 11, 27, 14, 0, tzinfo=LOCAL)
    scheduler.prime(start)
    scheduler.tick(start)
    assert names(jobs) == ["fetch"]


def test_fetch_runs_every_interval(settings: Settings, engine: Engine, jobs: Jobs) -> None:
    scheduler = make_scheduler(settings, engine, jobs, fetch_interval=timedelta(minutes=30))
    start = datetime(2026, 11, 27, 14, 0, tzinfo=LOCAL)
    scheduler.prime(start)
    for minutes in (0, 10, 29, 30, 45, 61):
        scheduler.tick(start + timedelta(minutes=minutes))
    assert names(jobs).count("fetch") == 3  # at 0, 30 and 61 minutes


def test_cleanup_runs_once_a_night_inside_its_window(settings: Settings, engine: Engine, jobs: Jobs) -> None:
    scheduler = make_scheduler(settings, engine, jobs)
    night = datetime(2026, 11, 28, 2, 0, tzinfo=LOCAL)
    scheduler.prime(night)
    for minutes in (0, 29, 30, 45, 59, 89, 91):  # the window is 02:30-03:30
        scheduler.tick(night + timedelta(minutes=minutes))
    cleanups = [when for name, when in jobs.ran if name == "cleanup"]
    assert cleanups == [(night + timedelta(minutes=30)).astimezone(UTC)]

    scheduler.tick(night + timedelta(days=1, minutes=40))
    assert len([name for name in names(jobs) if name == "cleanup"]) == 2


def test_cleanup_kbs_false_never_cleans(settings: Settings, engine: Engine, jobs: Jobs) -> None:
    scheduler = make_scheduler(settings, engine, jobs, cleanup_kbs=False)
    night = datetime(2026, 11, 28, 2, 45, tzinfo=LOCAL)
    scheduler.prime(night)
    scheduler.tick(night)
    assert "cleanup" not in names(jobs)


def test_a_failing_job_does_not_stop_the_others(settings: Settings, engine: Engine, jobs: Jobs, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(settings: Settings, sessions: object) -> None:
        raise RuntimeError("upstream unreachable")

    monkeypatch.setattr(scheduler_module, "run_cab_sync", broken)
    scheduler = make_scheduler(settings, engine, jobs)
    start = datetime(2026, 11, 27, 14, 0, tzinfo=LOCAL)
    scheduler.prime(start)
    scheduler.tick(start)
    assert names(jobs) == ["fetch"]
    assert scheduler.next_sync > start  # tried again at its next turn, not in a loop


def test_no_ca_bundle_no_sync(settings: Settings, engine: Engine, jobs: Jobs) -> None:
    scheduler = make_scheduler(settings, engine, jobs, cab_ca_bundle=None)
    start = datetime(2026, 11, 27, 14, 0, tzinfo=LOCAL)
    scheduler.prime(start)
    scheduler.tick(start)
    assert names(jobs) == ["fetch"]
