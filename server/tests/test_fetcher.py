"""The fetcher's pool against the lab's fake Microsoft upstream."""

from __future__ import annotations

import base64
import hashlib
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from wuacache_lab.upstream import UpstreamServer, read_access_log, set_fault

from wuacache_server.fetch.allowlist import UrlNotAllowed
from wuacache_server.fetch.downloader import HttpStatusError, new_session
from wuacache_server.fetch.fetcher import Fetcher, FetchHandle, FetchJob, FetchState

ALLOWLIST = ("download.windowsupdate.com",)
MS = "http://download.windowsupdate.com"
SECU_PATH = "/c/msdownload/update/software/secu/2024/01"
WAIT = 30  # seconds: a bound for a hung test, never a measure


@pytest.fixture
def files(tmp_path: Path) -> dict[str, bytes]:
    """Five payloads in the upstream's docroot, by URL."""
    rng = random.Random(5)
    files = {}
    for number in range(1, 6):
        data = rng.randbytes(40 * 1024)
        path = f"{SECU_PATH}/windows10.0-kb50000{number:02d}-x64_{hashlib.sha1(data).hexdigest()}.cab"
        file = tmp_path / "docroot" / "download.windowsupdate.com" / path.lstrip("/")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data)
        files[MS + path] = data
    return files


@pytest.fixture
def upstream(tmp_path: Path, files: dict[str, bytes]) -> Iterator[UpstreamServer]:
    with UpstreamServer(tmp_path / "docroot", tmp_path / "upstream") as server:
        yield server


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return tmp_path / "repo"


@pytest.fixture
def jobs(files: dict[str, bytes]) -> list[FetchJob]:
    return [job_for(url, data) for url, data in files.items()]


def job_for(url: str, data: bytes, **fields: Any) -> FetchJob:
    sha1 = base64.b64encode(hashlib.sha1(data).digest()).decode()
    return FetchJob(
        **{
            "key": sha1,
            "url": url,
            "file_name": url.rsplit("/", 1)[-1],
            "sha1_b64": sha1,
            "sha256_b64": base64.b64encode(hashlib.sha256(data).digest()).decode(),
            "size": len(data),
            **fields,
        }
    )


class Recorder:
    """Collects what on_change reports."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changes: list[tuple[str, FetchState, int]] = []  # file name, state, bytes done
        self.running = 0
        self.peak_running = 0

    def __call__(self, job: FetchJob, handle: FetchHandle) -> None:
        with self.lock:
            states = [state for name, state, _ in self.changes if name == job.file_name]
            if handle.state != (states[-1] if states else None):
                if handle.state == FetchState.RUNNING:
                    self.running += 1
                    self.peak_running = max(self.peak_running, self.running)
                elif states and states[-1] == FetchState.RUNNING:
                    self.running -= 1
            self.changes.append((job.file_name, handle.state, handle.bytes_done))

    def states(self, job: FetchJob) -> list[FetchState]:
        """The distinct states the job went through, in order."""
        with self.lock:
            states = [state for name, state, _ in self.changes if name == job.file_name]
        return [state for index, state in enumerate(states) if index == 0 or states[index - 1] != state]


class Gate:
    """A session factory that holds every job that reaches it until opened."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.arrived = threading.Semaphore(0)

    def __call__(self) -> requests.Session:
        self.arrived.release()
        assert self.opened.wait(WAIT)
        return new_session()


def make_fetcher(
    repo: Path,
    upstream: UpstreamServer,
    *,
    session_factory: Callable[[], requests.Session] = new_session,
    **options: Any,
) -> Fetcher:
    return Fetcher(
        repo,
        ALLOWLIST,
        proxy=upstream.url,
        retries=1,
        backoff=0.01,
        session_factory=session_factory,
        **options,
    )


def requested(upstream: UpstreamServer) -> list[str]:
    upstream.wait_idle()
    return [entry["url"] for entry in read_access_log(upstream.state_dir)]


def test_a_job_is_fetched_and_its_progress_reported(
    jobs: list[FetchJob], files: dict[str, bytes], repo: Path, upstream: UpstreamServer
) -> None:
    job = jobs[0]
    recorder = Recorder()
    with make_fetcher(repo, upstream, on_change=recorder) as fetcher:
        handle = fetcher.submit(job)
        assert handle.wait(WAIT)

    assert (handle.state, handle.error, handle.bytes_done, handle.bytes_total) == (
        "completed",
        None,
        job.size,
        job.size,
    )
    assert handle.result is not None and handle.result.bytes_transferred == job.size
    assert (repo / job.file_name).read_bytes() == files[job.url]
    assert recorder.states(job) == ["waiting", "running", "completed"]
    assert recorder.changes[-1] == (job.file_name, "completed", job.size)
    assert requested(upstream) == [job.url]


def test_one_download_per_key_however_often_it_is_submitted(
    jobs: list[FetchJob], repo: Path, upstream: UpstreamServer
) -> None:
    job = jobs[0]
    gate = Gate()
    with make_fetcher(repo, upstream, concurrency=2, session_factory=gate) as fetcher:
        first = fetcher.submit(job)
        assert gate.arrived.acquire(timeout=WAIT)  # running, held before its request
        again = [fetcher.submit(job) for _ in range(3)]
        gate.opened.set()
        assert first.wait(WAIT)

    assert all(handle is first for handle in again)
    assert first.state == "completed"
    assert requested(upstream) == [job.url]


def test_no_more_downloads_run_at_once_than_the_concurrency(
    jobs: list[FetchJob], files: dict[str, bytes], repo: Path, upstream: UpstreamServer
) -> None:
    for job in jobs:
        set_fault(upstream.state_dir, job.url, "slow", rate=100_000)  # 0.4 s per file: they overlap
    recorder = Recorder()
    with make_fetcher(repo, upstream, concurrency=2, on_change=recorder) as fetcher:
        handles = [fetcher.submit(job) for job in jobs]
        assert all(handle.wait(WAIT) for handle in handles)

    assert [handle.state for handle in handles] == ["completed"] * len(jobs)
    assert recorder.peak_running == 2
    assert sorted(requested(upstream)) == sorted(files)
    for job in jobs:
        assert (repo / job.file_name).read_bytes() == files[job.url]


def test_a_file_already_in_the_repository_is_verified_not_fetched(
    jobs: list[FetchJob], files: dict[str, bytes], repo: Path, upstream: UpstreamServer
) -> None:
    job = jobs[0]
    repo.mkdir()
    (repo / job.file_name).write_bytes(files[job.url])
    recorder = Recorder()
    with make_fetcher(repo, upstream, on_change=recorder) as fetcher:
        handle = fetcher.submit(job)
        assert handle.wait(WAIT)

    assert (handle.state, handle.bytes_done, handle.result) == ("completed", job.size, None)
    assert recorder.states(job) == ["waiting", "running", "completed"]
    assert requested(upstream) == []


def test_a_file_in_the_repository_with_wrong_bytes_is_replaced(
    jobs: list[FetchJob], files: dict[str, bytes], repo: Path, upstream: UpstreamServer
) -> None:
    job = jobs[0]
    repo.mkdir()
    wrong = bytearray(files[job.url])
    wrong[100] ^= 0xFF
    (repo / job.file_name).write_bytes(wrong)
    with make_fetcher(repo, upstream) as fetcher:
        handle = fetcher.submit(job)
        assert handle.wait(WAIT)

    assert handle.state == "completed"
    assert (repo / job.file_name).read_bytes() == files[job.url]
    assert requested(upstream) == [job.url]


def test_a_failed_job_reports_its_error_and_can_be_submitted_again(
    jobs: list[FetchJob], files: dict[str, bytes], repo: Path, upstream: UpstreamServer
) -> None:
    job = jobs[0]
    set_fault(upstream.state_dir, job.url, "status", status=404, count=1)
    with make_fetcher(repo, upstream) as fetcher:
        failed = fetcher.submit(job)
        assert failed.wait(WAIT)
        assert failed.state == "failed"
        assert isinstance(failed.error, HttpStatusError) and failed.error.status == 404

        again = fetcher.submit(job)
        assert again is not failed
        assert again.wait(WAIT)

    assert again.state == "completed"
    assert (repo / job.file_name).read_bytes() == files[job.url]
    assert requested(upstream) == [job.url, job.url]


def test_a_job_off_the_allowlist_fails_without_a_request(
    files: dict[str, bytes], repo: Path, upstream: UpstreamServer
) -> None:
    url, data = next(iter(files.items()))
    job = job_for(url.replace("download.windowsupdate.com", "download.evil.example"), data)
    with make_fetcher(repo, upstream) as fetcher:
        handle = fetcher.submit(job)
        assert handle.wait(WAIT)

    assert handle.state == "failed"
    assert isinstance(handle.error, UrlNotAllowed)
    assert requested(upstream) == []


def test_a_waiting_job_canceled_is_never_requested(jobs: list[FetchJob], repo: Path, upstream: UpstreamServer) -> None:
    first, second = jobs[:2]
    gate = Gate()
    recorder = Recorder()
    with make_fetcher(repo, upstream, concurrency=1, session_factory=gate, on_change=recorder) as fetcher:
        running = fetcher.submit(first)
        assert gate.arrived.acquire(timeout=WAIT)
        waiting = fetcher.submit(second)
        waiting.cancel()
        assert waiting.wait(0)
        gate.opened.set()
        assert running.wait(WAIT)

    assert (running.state, waiting.state) == ("completed", "canceled")
    assert recorder.states(second) == ["waiting", "canceled"]
    assert requested(upstream) == [first.url]


def test_a_running_job_canceled_stops_and_keeps_its_partial_file(
    jobs: list[FetchJob], files: dict[str, bytes], repo: Path, upstream: UpstreamServer
) -> None:
    job = jobs[0]
    set_fault(upstream.state_dir, job.url, "slow", rate=10_000)  # 4 s for the whole file
    canceled = threading.Event()

    def cancel_on_progress(job: FetchJob, handle: FetchHandle) -> None:
        if handle.state == FetchState.RUNNING and handle.bytes_done and not canceled.is_set():
            canceled.set()
            handle.cancel()

    with make_fetcher(repo, upstream, on_change=cancel_on_progress) as fetcher:
        handle = fetcher.submit(job)
        assert handle.wait(WAIT)

    assert handle.state == "canceled"
    assert not (repo / job.file_name).exists()
    assert 0 < (repo / ".partial" / f"{job.file_name}.part").stat().st_size < len(files[job.url])


def test_forced_jobs_go_before_waiting_ones(jobs: list[FetchJob], repo: Path, upstream: UpstreamServer) -> None:
    first, normal, promoted, forced = jobs[:4]
    gate = Gate()
    with make_fetcher(repo, upstream, concurrency=1, session_factory=gate) as fetcher:
        handles = [fetcher.submit(first)]
        assert gate.arrived.acquire(timeout=WAIT)
        handles += [fetcher.submit(normal), fetcher.submit(promoted), fetcher.submit(replace(forced, forced=True))]
        # A waiting job submitted again, forced, moves ahead as well.
        assert fetcher.submit(replace(promoted, forced=True)) is handles[2]
        gate.opened.set()
        assert all(handle.wait(WAIT) for handle in handles)

    assert handles[2].job.forced
    assert requested(upstream) == [first.url, forced.url, promoted.url, normal.url]


def test_shutdown_cancels_pending_jobs_and_refuses_new_ones(
    jobs: list[FetchJob], repo: Path, upstream: UpstreamServer
) -> None:
    gate = Gate()
    fetcher = make_fetcher(repo, upstream, concurrency=1, session_factory=gate)
    running = fetcher.submit(jobs[0])
    assert gate.arrived.acquire(timeout=WAIT)
    waiting = fetcher.submit(jobs[1])
    fetcher.shutdown(wait=False, cancel_pending=True)
    with pytest.raises(RuntimeError, match="shut down"):
        fetcher.submit(jobs[2])
    gate.opened.set()
    fetcher.shutdown(wait=True)

    assert (running.state, waiting.state) == ("canceled", "canceled")
    assert requested(upstream) == []


def test_two_keys_for_one_file_name_are_refused(jobs: list[FetchJob], repo: Path, upstream: UpstreamServer) -> None:
    gate = Gate()
    with make_fetcher(repo, upstream, session_factory=gate) as fetcher:
        fetcher.submit(jobs[0])
        other = replace(jobs[1], file_name=jobs[0].file_name)
        with pytest.raises(ValueError, match="another key"):
            fetcher.submit(other)
        gate.opened.set()


def test_a_malformed_job_is_refused_at_submit(jobs: list[FetchJob], repo: Path, upstream: UpstreamServer) -> None:
    with make_fetcher(repo, upstream) as fetcher:
        with pytest.raises(ValueError, match="file name"):
            fetcher.submit(replace(jobs[0], file_name="../escape.cab"))
        with pytest.raises(ValueError, match="SHA-1 digest"):
            fetcher.submit(replace(jobs[0], sha1_b64="not base64!"))
    assert requested(upstream) == []
