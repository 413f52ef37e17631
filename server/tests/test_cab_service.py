"""Cab sync runs against the lab's fake Microsoft upstream: real HTTP through
its proxy, real signed catalogs, cabextract and osslsigncode, and the
database on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from wuacache_lab.cabfile import CabWriter
from wuacache_lab.catalog import CatalogSummary, generate_catalog
from wuacache_lab.catalog.payloads import CATALOG_URL, upstream_path
from wuacache_lab.loopback import free_port
from wuacache_lab.pki import LabCA, ensure_lab_ca
from wuacache_lab.signing import sign_cab
from wuacache_lab.upstream import UpstreamServer, read_access_log, set_fault

from wuacache_server.catalog.cabsync import sync_cab
from wuacache_server.catalog.importer import import_catalog
from wuacache_server.config import Settings
from wuacache_server.db.engine import session_factory
from wuacache_server.db.models import CabSyncRun, CabSyncStatus, CatalogVersion, TokenRole, Update
from wuacache_server.security import create_token
from wuacache_server.services.cab import CabSyncBusy, recover_cab_sync, run_cab_sync, start_cab_sync

CAB_PATH = "/microsoftupdate/v6/wsusscan/wsusscn2.cab"
UPDATES = 70
WRITING_THREADS = 4


@pytest.fixture(scope="module")
def lab_ca(tmp_path_factory: pytest.TempPathFactory) -> LabCA:
    return ensure_lab_ca(tmp_path_factory.mktemp("ca"))


@dataclass
class Lab:
    """Upstream serving a lab catalog, and a server's settings and database."""

    catalog_dir: Path
    upstream: UpstreamServer
    ca: LabCA
    settings: Settings
    sessions: sessionmaker[Session]
    first: CatalogSummary

    @property
    def upstream_cab(self) -> Path:
        return upstream_path(self.catalog_dir / "files", CATALOG_URL)

    def publish(self, generation: int) -> CatalogSummary:
        return generate_catalog(self.catalog_dir, updates=UPDATES, generation=generation, ca=self.ca)

    def cab_requests(self) -> list[dict[str, Any]]:
        self.upstream.wait_idle()
        return [entry for entry in read_access_log(self.upstream.state_dir) if entry["path"] == CAB_PATH]

    def current_catalog(self) -> str | None:
        with self.sessions() as session:
            return session.scalar(select(CatalogVersion.sha256).order_by(CatalogVersion.imported_at.desc()))

    def catalog_versions(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(CatalogVersion)) or 0


@pytest.fixture
def lab(tmp_path: Path, lab_ca: LabCA, data_dir: Path, database_url: str, engine: Engine) -> Iterator[Lab]:
    catalog_dir = tmp_path / "catalog"
    first = generate_catalog(catalog_dir, updates=UPDATES, ca=lab_ca)
    with UpstreamServer(catalog_dir / "files", tmp_path / "upstream") as upstream:
        settings = Settings(
            data_dir=data_dir,
            database_url=database_url,
            http_proxy=upstream.url,
            cab_ca_bundle=lab_ca.ca_cert,
        )
        yield Lab(catalog_dir, upstream, lab_ca, settings, session_factory(engine), first)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_first_run_publishes_and_imports_then_an_unchanged_upstream_costs_a_304(lab: Lab) -> None:
    first = run_cab_sync(lab.settings, lab.sessions)

    run = first.run
    assert (run.status, run.reason, run.error) == (CabSyncStatus.FINISHED, "missing", None)
    assert run.sha256 == lab.first.cab_sha256 == sha256_of(lab.settings.wua_dir / "wsusscn2.cab")
    assert run.size == run.bytes_downloaded == lab.first.cab_size
    assert run.etag is not None
    assert run.last_modified == datetime.fromisoformat(lab.first.published)
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert first.catalog is not None and first.catalog.updates_added == lab.first.updates
    assert lab.current_catalog() == lab.first.cab_sha256
    assert first.summary().startswith(f"cab sync {run.id} finished (missing): {lab.first.cab_size} bytes downloaded")

    second = run_cab_sync(lab.settings, lab.sessions)

    assert (second.run.status, second.run.reason, second.run.bytes_downloaded) == ("unchanged", "unchanged", 0)
    assert second.run.sha256 == lab.first.cab_sha256
    assert second.catalog is None
    assert [(entry["status"], entry["bytes"]) for entry in lab.cab_requests()] == [(200, lab.first.cab_size), (304, 0)]
    assert lab.catalog_versions() == 1


def test_a_newer_cab_is_published_and_its_changes_imported(lab: Lab) -> None:
    run_cab_sync(lab.settings, lab.sessions)
    with lab.sessions() as session:
        before = set(session.scalars(select(Update.revision_id)))
    second = lab.publish(generation=2)

    outcome = run_cab_sync(lab.settings, lab.sessions)

    assert (outcome.run.status, outcome.run.reason) == ("finished", "newer")
    assert outcome.run.sha256 == second.cab_sha256
    assert outcome.catalog is not None
    with lab.sessions() as session:
        after = set(session.scalars(select(Update.revision_id)))
    assert len(after) == second.updates
    assert (outcome.catalog.updates_added, outcome.catalog.updates_removed) == (
        len(after - before),
        len(before - after),
    )
    assert 0 < outcome.catalog.updates_added < second.updates
    assert lab.current_catalog() == second.cab_sha256
    assert lab.cab_requests()[-1]["status"] == 200


def test_a_corrupt_cab_fails_the_run_and_the_previous_catalog_stays(lab: Lab) -> None:
    run_cab_sync(lab.settings, lab.sessions)
    lab.publish(generation=2)
    set_fault(lab.upstream.state_dir, CATALOG_URL, "corrupt")

    outcome = run_cab_sync(lab.settings, lab.sessions)

    assert not outcome.succeeded
    assert (outcome.run.status, outcome.run.reason) == ("failed", "newer")
    assert outcome.run.error is not None and outcome.run.error.startswith("integrity test failed: ")
    assert outcome.run.bytes_downloaded > 0
    # The run records the cab still published: the previous one.
    assert outcome.run.sha256 == lab.first.cab_sha256 == sha256_of(lab.settings.wua_dir / "wsusscn2.cab")
    assert lab.current_catalog() == lab.first.cab_sha256
    assert lab.catalog_versions() == 1


def test_a_published_cab_whose_catalog_is_missing_is_imported_without_downloading_it(lab: Lab) -> None:
    # As if the process had stopped between publishing the cab and importing it.
    published = sync_cab(
        url=CATALOG_URL,
        repository_dir=lab.settings.repository_dir,
        ca_bundle=lab.ca.ca_cert,
        allowlist=lab.settings.upstream_allowlist,
        proxy=lab.upstream.url,
    )
    assert published.status == "finished"

    outcome = run_cab_sync(lab.settings, lab.sessions)

    assert (outcome.run.status, outcome.run.bytes_downloaded) == ("unchanged", 0)
    assert outcome.catalog is not None and outcome.catalog.imported
    assert lab.current_catalog() == lab.first.cab_sha256
    assert lab.cab_requests()[-1]["status"] == 304


def publish_signed_non_catalog(lab: Lab, work: Path) -> str:
    """A cab Microsoft could have signed that holds no catalog: it passes the
    integrity and signature checks, and only the import finds it wrong."""
    work.mkdir()
    (work / "index.xml").write_text('<INDEX VERSION="1"><CABLIST XOR="0"><CAB NAME="package.cab"/></CABLIST></INDEX>')
    with CabWriter(work / "unsigned.cab") as writer:
        writer.add_path("index.xml", work / "index.xml")
    sign_cab(work / "unsigned.cab", work / "signed.cab", lab.ca.codesign_cert, lab.ca.codesign_key)
    newer = lab.upstream_cab.stat().st_mtime + 86400
    (work / "signed.cab").replace(lab.upstream_cab)
    os.utime(lab.upstream_cab, (newer, newer))
    return sha256_of(lab.upstream_cab)


def test_a_verified_cab_that_is_no_catalog_is_never_published_and_is_retried(lab: Lab, tmp_path: Path) -> None:
    run_cab_sync(lab.settings, lab.sessions)
    broken = publish_signed_non_catalog(lab, tmp_path / "broken")

    failed = run_cab_sync(lab.settings, lab.sessions)

    assert (failed.run.status, failed.run.reason) == ("failed", "newer")
    assert failed.run.error is not None and failed.run.error.startswith("catalog import failed: ")
    assert "package.cab" in failed.run.error
    # The previous cab stays served, with its digest, and matches the catalog.
    served = lab.settings.wua_dir / "wsusscn2.cab"
    assert failed.run.sha256 == lab.first.cab_sha256 == sha256_of(served) != broken
    assert (lab.settings.wua_dir / "wsusscn2.cab.sha256").read_text() == f"{lab.first.cab_sha256}  wsusscn2.cab\n"
    assert lab.current_catalog() == lab.first.cab_sha256
    assert [path.name for path in lab.settings.wua_dir.iterdir() if path.name.endswith(".part")] == []

    again = run_cab_sync(lab.settings, lab.sessions)

    # Still newer than what is served: downloaded again, refused again.
    assert (again.run.status, again.run.reason) == ("failed", "newer")
    assert again.run.error == failed.run.error
    assert lab.cab_requests()[-1]["status"] == 200
    assert sha256_of(served) == lab.first.cab_sha256


def test_start_up_publishes_the_cab_whose_import_committed_and_closes_dead_runs(lab: Lab, engine: Engine) -> None:
    run_cab_sync(lab.settings, lab.sessions)
    second = lab.publish(generation=2)
    killed = {}

    def die_after_the_commit(cab: Path, sha256: str) -> None:
        import_catalog(engine, cab, workdir=lab.settings.data_dir)
        killed["part"] = cab
        raise KeyboardInterrupt  # as if the process ended before the rename

    with pytest.raises(KeyboardInterrupt), lab.sessions() as session:
        session.add(CabSyncRun(status=CabSyncStatus.RUNNING))
        session.commit()
        sync_cab(
            url=CATALOG_URL,
            repository_dir=lab.settings.repository_dir,
            ca_bundle=lab.ca.ca_cert,
            allowlist=lab.settings.upstream_allowlist,
            proxy=lab.upstream.url,
            accept=die_after_the_commit,
        )
    # A dying process runs no cleanup: put the part file back as it left it.
    assert not killed["part"].exists()
    shutil.copyfile(lab.upstream_cab, killed["part"])
    assert lab.current_catalog() == second.cab_sha256 != sha256_of(lab.settings.wua_dir / "wsusscn2.cab")

    recover_cab_sync(lab.settings, lab.sessions)

    assert sha256_of(lab.settings.wua_dir / "wsusscn2.cab") == second.cab_sha256
    assert (lab.settings.wua_dir / "wsusscn2.cab.sha256").read_text() == f"{second.cab_sha256}  wsusscn2.cab\n"
    assert not killed["part"].exists()
    with lab.sessions() as session:
        assert session.scalar(select(func.count()).where(CabSyncRun.status == CabSyncStatus.RUNNING)) == 0
    assert run_cab_sync(lab.settings, lab.sessions).run.status == "unchanged"


def test_start_up_leaves_a_run_alone_while_its_process_holds_the_lock(lab: Lab) -> None:
    job = start_cab_sync(lab.settings, lab.sessions)

    recover_cab_sync(lab.settings, lab.sessions)

    with lab.sessions() as session:
        assert session.get_one(CabSyncRun, job.run_id).status == CabSyncStatus.RUNNING
    assert job.run().run.status == "finished"


def test_one_run_at_a_time(lab: Lab) -> None:
    with lab.sessions() as session:
        # Left running by a process that died.
        session.add(CabSyncRun(status=CabSyncStatus.RUNNING))
        session.commit()

    job = start_cab_sync(lab.settings, lab.sessions)
    with pytest.raises(CabSyncBusy):
        start_cab_sync(lab.settings, lab.sessions)
    with lab.sessions() as session:
        runs = session.scalars(select(CabSyncRun).order_by(CabSyncRun.id)).all()
        assert [(run.status, run.error) for run in runs] == [
            ("failed", "interrupted: the process running it ended"),
            ("running", None),
        ]
    assert lab.cab_requests() == []

    assert job.run().run.status == "finished"
    assert run_cab_sync(lab.settings, lab.sessions).run.status == "unchanged"


def test_without_a_ca_bundle_nothing_is_downloaded_and_the_run_says_why(lab: Lab) -> None:
    settings = lab.settings.model_copy(update={"cab_ca_bundle": None})

    outcome = run_cab_sync(settings, lab.sessions)

    assert outcome.run.status == "failed"
    assert outcome.run.error is not None and "cab_ca_bundle" in outcome.run.error
    assert lab.cab_requests() == []
    assert not (lab.settings.wua_dir / "wsusscn2.cab").exists()


def sync_cab_command(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "WUACACHE_DATA_DIR": str(lab.settings.data_dir),
        "WUACACHE_DATABASE_URL": lab.settings.database_url,
        "WUACACHE_HTTP_PROXY": lab.upstream.url,
        "WUACACHE_CAB_CA_BUNDLE": str(lab.ca.ca_cert),
    }
    command = [str(Path(sys.executable).parent / "wuacache-server"), "sync-cab", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_the_sync_cab_command_prints_one_line_and_fails_with_the_run(lab: Lab) -> None:
    first = sync_cab_command(lab)

    assert first.returncode == 0, first.stderr
    assert first.stdout.count("\n") == 1
    assert first.stdout.startswith("cab sync 1 finished (missing): ")
    assert f"catalog {lab.first.cab_sha256[:12]} imported: updates +{lab.first.updates} " in first.stdout

    unchanged = sync_cab_command(lab)
    assert (unchanged.returncode, unchanged.stdout.split(":")[0]) == (0, "cab sync 2 unchanged (unchanged)")

    set_fault(lab.upstream.state_dir, CATALOG_URL, "truncate")
    forced = sync_cab_command(lab, "--force")

    assert forced.returncode == 1
    assert forced.stdout.startswith("cab sync 3 failed (forced): ")
    assert lab.current_catalog() == lab.first.cab_sha256


@dataclass
class ServeProcess:
    """``wuacache-server serve`` of the lab's settings, its log in a file."""

    env: dict[str, str]
    log: Path
    base_url: str
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            command = [str(Path(sys.executable).parent / "wuacache-server"), "serve"]
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.wait_for(lambda: self._answers_health(), "the server did not answer")

    def wait_for(self, condition: Callable[[], bool], failure: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process is not None and self.process.poll() is None, "the server exited"
            assert time.monotonic() < deadline, failure
            time.sleep(0.05)

    def stop(self, signal_number: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal_number)
            self.process.wait(timeout=30)
        self.process = None

    def _answers_health(self) -> bool:
        try:
            return requests.get(f"{self.base_url}/health", timeout=5, headers={"Connection": "close"}).ok
        except requests.ConnectionError:
            return False


@pytest.fixture
def serve(lab: Lab, tmp_path: Path) -> Iterator[ServeProcess]:
    port = free_port()
    env = {
        **os.environ,
        "WUACACHE_DATA_DIR": str(lab.settings.data_dir),
        "WUACACHE_DATABASE_URL": lab.settings.database_url,
        "WUACACHE_HTTP_PROXY": lab.upstream.url,
        "WUACACHE_CAB_CA_BUNDLE": str(lab.ca.ca_cert),
        "WUACACHE_LISTEN": f"127.0.0.1:{port}",
    }
    server = ServeProcess(env, tmp_path / "serve.log", f"http://127.0.0.1:{port}")
    try:
        yield server
    finally:
        server.stop()


def test_a_server_killed_during_an_import_serves_the_committed_catalog_after_a_restart(
    lab: Lab, serve: ServeProcess
) -> None:
    run_cab_sync(lab.settings, lab.sessions)
    # Big enough that its import lasts seconds, long after the kill lands.
    second = generate_catalog(lab.catalog_dir, updates=20_000, generation=2, ca=lab.ca, payload_size=(128, 128))
    with lab.sessions() as session:
        token = create_token(session, "admin", TokenRole.ADMIN)
        session.commit()
    serve.start()

    started = requests.post(
        f"{serve.base_url}/api/v1/catalog/sync", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert started.status_code == 202
    # The import parses the cab in a scratch folder of the data folder.
    serve.wait_for(lambda: any(lab.settings.data_dir.glob("wsusscn2-*")), "the import did not start")
    serve.stop(signal.SIGKILL)
    assert lab.current_catalog() == lab.first.cab_sha256  # killed before the import committed

    serve.start()

    served = requests.get(f"{serve.base_url}/wua/wsusscn2.cab", timeout=30)
    assert served.status_code == 200
    assert hashlib.sha256(served.content).hexdigest() == lab.current_catalog() == lab.first.cab_sha256
    digest = requests.get(f"{serve.base_url}/wua/wsusscn2.cab.sha256", timeout=30).text
    assert digest == f"{lab.first.cab_sha256}  wsusscn2.cab\n"
    with lab.sessions() as session:
        run = session.get_one(CabSyncRun, started.json()["run_id"])
        assert (run.status, run.error) == ("failed", "interrupted: the process running it ended")


@contextmanager
def other_writer(engine: Engine) -> Iterator[Callable[[], int]]:
    """Threads writing the database in small transactions, as reports do; it gives the count of their writes."""
    sessions = session_factory(engine)
    stop = threading.Event()
    writes = 0

    def write() -> None:
        nonlocal writes
        while not stop.is_set():
            with sessions.begin() as session:
                create_token(session, f"load-{uuid.uuid4()}", TokenRole.CONTROLLER)
            writes += 1  # a count, racy but never zero once one write is in
            time.sleep(0.002)

    threads = [threading.Thread(target=write) for _ in range(WRITING_THREADS)]
    for thread in threads:
        thread.start()
    try:
        yield lambda: writes
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def test_runs_beside_other_writers_record_their_success(lab: Lab, engine: Engine) -> None:
    with other_writer(engine) as writes:
        first = sync_cab_command(lab)
        second_catalog = lab.publish(generation=2)
        second = sync_cab_command(lab)

    assert (first.returncode, first.stderr) == (0, "")
    assert (second.returncode, second.stderr) == (0, "")
    with lab.sessions() as session:
        assert session.scalars(select(CabSyncRun.status)).all() == [CabSyncStatus.FINISHED] * 2
    assert lab.current_catalog() == second_catalog.cab_sha256
    assert writes() > 0
