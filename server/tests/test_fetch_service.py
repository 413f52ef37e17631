"""The fetch service: the fetcher wired to the catalog, download tasks and host
decisions, against the lab's fake Microsoft upstream, on both database backends.

The catalog is the lab's (the model ``generate_catalog`` writes into its cab),
stored as the catalog import stores it; hosts' needs are stored as the report
service stores them, with the reasons ``policy.decide`` gives.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from wuacache_lab.catalog.model import MIN_UPDATES, Bundle, BundledUpdate, Catalog, build_catalog
from wuacache_lab.catalog.model import PayloadFile as LabFile
from wuacache_lab.catalog.payloads import payload_bytes, write_payload_tree
from wuacache_lab.upstream import UpstreamServer, read_access_log, set_fault

from wuacache_server.cli import main
from wuacache_server.config import Settings
from wuacache_server.db.engine import session_factory
from wuacache_server.db.models import (
    BundleMember,
    CatalogVersion,
    ChildFile,
    DownloadTask,
    DownloadTaskStatus,
    Host,
    HostUpdate,
    HostUpdateFile,
    PayloadFile,
    Update,
    UpdateKind,
)
from wuacache_server.fetch.downloader import PART_SUFFIX, PARTIAL_DIR
from wuacache_server.policy import Assignment, FilesState, Status, UpdateFacts, decide, effective_rules
from wuacache_server.services import fetching
from wuacache_server.services.fetching import FetchService, FetchServiceBusy, UpdatesNotDownloadable

SEED = 11
WAIT = 30  # seconds: a bound for a hung test, never a measure
NOW = datetime(2026, 3, 1, tzinfo=UTC)
NEEDING = (Status.PENDING, Status.MISSING, Status.ERROR)
HOSTS = 20


def decision(status: Status, *, files: FilesState = FilesState.ABSENT, hidden: bool = False) -> str:
    """The reason policy.decide gives an update in ``status``."""
    assignment = Assignment(default_allow=status != Status.DISCARDED)
    facts = UpdateFacts(
        update_id=str(uuid.uuid4()),
        revision_number=1,
        title="an update",
        last_deployment_change_time=NOW - timedelta(days=30),
        is_installed=status == Status.OK,
        is_hidden=hidden,
        last_install_failed=status == Status.ERROR,
        files=FilesState.FETCHING if status == Status.PENDING and files == FilesState.ABSENT else files,
    )
    decided = decide(facts, effective_rules(assignment, {}), assignment, NOW)
    assert decided.status == status
    return decided.reason


class Lab:
    """The lab catalog in the database, its files upstream, and a server's settings to fetch them."""

    def __init__(
        self, catalog: Catalog, sessions: sessionmaker[Session], settings: Settings, upstream: UpstreamServer | None
    ) -> None:
        self.catalog = catalog
        self.sessions = sessions
        self.settings = settings
        self.upstream = upstream
        self.file_ids: dict[str, int] = {}  # by SHA-1 digest
        self._store_catalog()

    def _store_catalog(self) -> None:
        with self.sessions.begin() as session:
            version = CatalogVersion(
                sha256="0" * 64,
                package_id=self.catalog.package_id,
                package_version="1",
                creation_date=self.catalog.published,
            )
            session.add(version)
            session.flush()
            files = {
                file.digest: PayloadFile(
                    sha1=file.digest, sha256=file.sha256_digest, url=file.url, file_name=file.file_name, size=file.size
                )
                for file in self.catalog.files
            }
            session.add_all(files.values())
            for bundle in self.catalog.bundles:
                session.add(self._update(bundle, UpdateKind.BUNDLE, version.id))
                session.add_all(self._update(child, UpdateKind.CHILD, version.id) for child in bundle.children)
            session.flush()
            for bundle in self.catalog.bundles:
                for position, child in enumerate(bundle.children):
                    session.add(
                        BundleMember(
                            bundle_revision_id=bundle.revision_id,
                            child_revision_id=child.revision_id,
                            position=position,
                        )
                    )
                    for file in child.files:
                        session.add(
                            ChildFile(child_revision_id=child.revision_id, payload_file_id=files[file.digest].id)
                        )
            session.flush()
            self.file_ids = {digest: row.id for digest, row in files.items()}

    @staticmethod
    def _update(update: Bundle | BundledUpdate, kind: UpdateKind, version_id: int) -> Update:
        return Update(
            update_id=update.update_id,
            revision_number=update.revision_number,
            revision_id=update.revision_id,
            kind=kind,
            title=update.title,
            creation_date=update.created,
            catalog_version_id=version_id,
        )

    def service(self, **settings: Any) -> FetchService:
        return FetchService(self.settings.model_copy(update=settings), self.sessions, backoff=0.01)

    def add_host(
        self,
        name: str,
        updates: dict[Bundle, Status],
        *,
        child: int = 0,
        hidden: Sequence[Bundle] = (),
        reported_urls: Sequence[str] = (),
        extra_files: Sequence[int] = (),
    ) -> list[LabFile]:
        """Store a host's decisions; it reports the ``child``-th child of each
        bundle (its architecture). Returns the files it needs."""
        needed: list[LabFile] = []
        with self.sessions.begin() as session:
            host = Host(name=name)
            session.add(host)
            session.flush()
            for bundle, status in updates.items():
                session.add(
                    HostUpdate(
                        host_id=host.id,
                        update_id=bundle.update_id,
                        revision_number=bundle.revision_number,
                        status=status,
                        reason=decision(status, hidden=bundle in hidden),
                        is_hidden=bundle in hidden,
                        reported_urls=list(reported_urls),
                    )
                )
            session.flush()
            for bundle, status in updates.items():
                if status in NEEDING:
                    files = bundle.children[child % len(bundle.children)].files
                    needed.extend(files)
                    file_ids = {self.file_ids[file.digest] for file in files} | set(extra_files)
                    session.add_all(
                        HostUpdateFile(host_id=host.id, update_id=bundle.update_id, payload_file_id=file_id)
                        for file_id in file_ids
                    )
        return needed

    def decisions(self, name: str) -> dict[str, tuple[str, str]]:
        """(status, reason) of each update of a host, by UpdateID."""
        with self.sessions() as session:
            rows = session.execute(
                select(HostUpdate.update_id, HostUpdate.status, HostUpdate.reason)
                .join(Host, Host.id == HostUpdate.host_id)
                .where(Host.name == name)
            )
            return {update_id: (status, reason) for update_id, status, reason in rows}

    def tasks(self) -> list[DownloadTask]:
        with self.sessions() as session:
            return list(session.scalars(select(DownloadTask).order_by(DownloadTask.id)))

    def task_of(self, file: LabFile) -> DownloadTask:
        (task,) = [task for task in self.tasks() if task.payload_file_id == self.file_ids[file.digest]]
        return task

    def row(self, file: LabFile) -> PayloadFile:
        with self.sessions() as session:
            row = session.get(PayloadFile, self.file_ids[file.digest])
            assert row is not None
            return row

    @property
    def upstream_state(self) -> Path:
        """Where the upstream keeps its faults and access log."""
        assert self.upstream is not None
        return self.upstream.state_dir

    def requested(self) -> list[dict[str, Any]]:
        assert self.upstream is not None
        self.upstream.wait_idle()
        return read_access_log(self.upstream.state_dir)

    def published(self, file: LabFile) -> Path:
        return self.settings.wua_dir / file.file_name


def content(file: LabFile) -> bytes:
    return payload_bytes(SEED, file.stem, file.size)


def single_file_child(catalog: Catalog, *, larger_than: int = 0) -> tuple[Bundle, LabFile]:
    """A bundle whose first child has a single file, of more than ``larger_than`` bytes."""
    for bundle in catalog.bundles:
        files = bundle.children[0].files
        if len(files) == 1 and files[0].size > larger_than:
            return bundle, files[0]
    raise AssertionError("the lab catalog has no such bundle")


def two_file_child(catalog: Catalog) -> tuple[Bundle, tuple[LabFile, ...]]:
    for bundle in catalog.bundles:
        if len(bundle.children[0].files) == 2:
            return bundle, bundle.children[0].files
    raise AssertionError("the lab catalog has no such bundle")


@functools.cache
def lab_catalog() -> Catalog:
    """The smallest lab catalog, of payloads from 4 to 40 kB."""
    return build_catalog(updates=MIN_UPDATES, seed=SEED, payload_size=(4_000, 40_000))


@contextmanager
def running_lab(engine: Engine, data_dir: Path, database_url: str, tmp_path: Path) -> Iterator[Lab]:
    """The lab catalog stored in the database, and an upstream serving its files."""
    docroot = tmp_path / "docroot"
    write_payload_tree(docroot, lab_catalog().files, seed=SEED)
    with UpstreamServer(docroot, tmp_path / "upstream") as upstream:
        settings = Settings(
            data_dir=data_dir,
            database_url=database_url,
            http_proxy=upstream.url,
            fetch_retries=0,
            fetch_concurrency=3,
        )
        yield Lab(lab_catalog(), session_factory(engine), settings, upstream)


@pytest.fixture
def lab(engine: Engine, data_dir: Path, database_url: str, tmp_path: Path) -> Iterator[Lab]:
    with running_lab(engine, data_dir, database_url, tmp_path) as lab:
        yield lab


def fetch(lab: Lab, service: FetchService, forced: Sequence[str] = ()) -> list[int]:
    task_ids = service.run_once(forced)
    assert service.wait(task_ids, WAIT)
    return task_ids


def test_each_needed_file_is_fetched_once_however_many_hosts_need_it(lab: Lab) -> None:
    rng = random.Random(3)
    *bundles, installed, discarded = lab.catalog.bundles  # the last two, no host needs
    needed: dict[str, LabFile] = {}
    hidden = bundles[0]
    for number in range(HOSTS):
        chosen = [*rng.sample(bundles, 5), installed, discarded]
        statuses = [
            Status.MISSING,
            Status.MISSING,
            Status.PENDING,
            Status.ERROR,
            Status.OK,
            Status.OK,
            Status.DISCARDED,
        ]
        updates = dict(zip(chosen, statuses, strict=True))
        if number == 0:
            updates[hidden] = Status.MISSING
        files = lab.add_host(f"host-{number}", updates, child=number, hidden=[hidden])
        needed |= {file.digest: file for file in files}

    with lab.service() as service:
        task_ids = fetch(lab, service)

    requested = lab.requested()
    assert sorted(entry["url"] for entry in requested) == sorted(file.url for file in needed.values())
    assert sum(entry["bytes"] for entry in requested) == sum(file.size for file in needed.values())
    assert len(task_ids) == len(needed) < len(lab.catalog.files)
    for file in lab.catalog.files:
        row = lab.row(file)
        if file.digest in needed:
            assert lab.published(file).read_bytes() == content(file)
            assert (row.stored_at is not None, row.stored_size) == (True, file.size)
            task = lab.task_of(file)
            assert (task.status, task.bytes_done, task.bytes_total, task.attempts) == (
                "completed",
                file.size,
                file.size,
                1,
            )
        else:
            assert not lab.published(file).exists()
            assert row.stored_at is None
    # Every update's files are now on the server: MISSING and PENDING read so, the others are left alone.
    for number in range(HOSTS):
        for update_id, (status, reason) in lab.decisions(f"host-{number}").items():
            is_hidden = update_id == hidden.update_id
            if status == Status.PENDING:
                assert reason == decision(Status.PENDING, files=FilesState.AVAILABLE, hidden=is_hidden)
            else:
                assert status in (Status.ERROR, Status.OK, Status.DISCARDED)
                assert reason == decision(Status(status), hidden=is_hidden)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"kind": "corrupt"}, "SHA-1 is"),
        ({"kind": "truncate"}, "transfer broken"),
        ({"kind": "status", "status": 500}, "500"),
    ],
)
def test_an_upstream_fault_never_publishes_a_bad_file_and_the_task_succeeds_on_retry(
    lab: Lab, fault: dict[str, Any], error: str
) -> None:
    bundle, (good, bad) = two_file_child(lab.catalog)
    lab.add_host("host", {bundle: Status.MISSING})
    # Decided while the files were being fetched.
    lab.add_host("other", {bundle: Status.PENDING})
    set_fault(lab.upstream_state, bad.url, count=1, **fault)

    with lab.service() as service:
        fetch(lab, service)
        task = lab.task_of(bad)
        assert (task.status, task.attempts) == ("failed", 1)
        assert task.error is not None and error in task.error
        assert not lab.published(bad).exists()
        assert lab.row(bad).stored_at is None
        # One of its two files is missing, and no longer on its way: MISSING.
        for host in ("host", "other"):
            assert lab.decisions(host)[bundle.update_id] == (Status.MISSING, decision(Status.MISSING))

        again = fetch(lab, service)

    assert again == [task.id]  # the same task, queued again
    task = lab.task_of(bad)
    assert (task.status, task.attempts, task.error, task.bytes_done) == ("completed", 2, None, bad.size)
    assert lab.published(bad).read_bytes() == content(bad)
    assert lab.row(bad).stored_at is not None
    for host in ("host", "other"):
        assert lab.decisions(host)[bundle.update_id] == (
            Status.PENDING,
            decision(Status.PENDING, files=FilesState.AVAILABLE),
        )
    assert [entry["url"] for entry in lab.requested()].count(good.url) == 1


def test_a_download_stopped_midway_resumes_with_range_after_a_restart(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetching, "PROGRESS_WRITE_INTERVAL", 0.0)  # every progress report reaches the task
    bundle, file = single_file_child(lab.catalog, larger_than=20_000)
    lab.add_host("host", {bundle: Status.MISSING})
    set_fault(lab.upstream_state, file.url, "slow", rate=8_000, count=1)  # seconds of transfer

    with lab.service() as service:
        (task_id,) = service.run_once()
        deadline = time.monotonic() + WAIT
        while lab.task_of(file).bytes_done == 0:
            assert time.monotonic() < deadline, "no progress recorded"
            time.sleep(0.05)
    stopped = lab.task_of(file)
    part = lab.settings.wua_dir / PARTIAL_DIR / (file.file_name + PART_SUFFIX)
    kept = part.stat().st_size
    assert (stopped.status, stopped.attempts) == ("waiting", 1)
    assert 0 < stopped.bytes_done <= kept < file.size
    assert not lab.published(file).exists()

    restarted = lab.service()
    try:
        assert restarted.start() == [task_id]
        assert restarted.wait([task_id], WAIT)
    finally:
        restarted.close()

    # Logged as each answer ends, so not necessarily in the order asked.
    first, resumed = sorted(
        (entry for entry in lab.requested() if entry["url"] == file.url), key=lambda e: bool(e["range"])
    )
    assert (resumed["status"], resumed["range"], resumed["bytes"]) == (206, f"bytes={kept}-", file.size - kept)
    assert (first["range"], first["status"]) == (None, 200)
    assert first["bytes"] >= kept  # what the socket took; the rest was never read
    task = lab.task_of(file)
    assert (task.id, task.status, task.attempts, task.bytes_done) == (task_id, "completed", 2, file.size)
    assert lab.published(file).read_bytes() == content(file)
    assert not part.exists()
    assert lab.decisions("host")[bundle.update_id][0] == Status.PENDING


def test_tasks_left_running_by_a_crash_are_resumed_at_start(lab: Lab) -> None:
    bundle, file = single_file_child(lab.catalog)
    lab.add_host("host", {bundle: Status.MISSING})
    with lab.sessions.begin() as session:
        crashed = DownloadTask(
            payload_file_id=lab.file_ids[file.digest], status=DownloadTaskStatus.RUNNING, attempts=1, bytes_done=100
        )
        session.add(crashed)
        session.flush()
        task_id = crashed.id

    service = lab.service()
    try:
        assert service.start() == [task_id]
        assert service.wait([task_id], WAIT)
    finally:
        service.close()

    task = lab.task_of(file)
    assert (task.status, task.attempts, task.bytes_done) == ("completed", 2, file.size)
    assert lab.published(file).read_bytes() == content(file)
    assert [entry["url"] for entry in lab.requested()] == [file.url]


def test_a_forced_update_is_fetched_whole_though_no_host_needs_it(lab: Lab) -> None:
    forced = next(bundle for bundle in lab.catalog.bundles if len(bundle.children) > 1)
    files = {file.digest: file for child in forced.children for file in child.files}
    needed_bundle, needed = single_file_child(lab.catalog)
    lab.add_host("host", {needed_bundle: Status.MISSING})
    set_fault(lab.upstream_state, needed.url, "status", status=500, count=1)

    with lab.service() as service:
        fetch(lab, service)
        assert lab.task_of(needed).status == "failed"
        # A forced update's file that a host needs too: its failed task is queued again, forced.
        with lab.sessions.begin() as session:
            session.add(
                ChildFile(child_revision_id=forced.children[0].revision_id, payload_file_id=lab.file_ids[needed.digest])
            )
        task_ids = service.force([forced.update_id.upper()])
        assert service.wait(task_ids, WAIT)

    files[needed.digest] = needed
    assert len(task_ids) == len(files)
    for file in files.values():
        task = lab.task_of(file)
        assert (task.id in task_ids, task.forced, task.status) == (True, True, "completed")
        assert lab.published(file).read_bytes() == content(file)
    assert sorted(entry["url"] for entry in lab.requested()) == sorted(
        [needed.url] + [file.url for file in files.values()]
    )


def test_unknown_updates_or_updates_without_files_are_refused_and_nothing_is_queued(lab: Lab) -> None:
    known = lab.catalog.bundles[0].update_id
    unknown = str(uuid.uuid4())
    with lab.sessions.begin() as session:
        version_id = session.scalar(select(CatalogVersion.id))
        session.add(
            Update(
                update_id=(fileless := str(uuid.uuid4())),
                revision_number=1,
                revision_id=1,
                kind=UpdateKind.DETECTOID,
                creation_date=NOW,
                catalog_version_id=version_id,
            )
        )

    with lab.service() as service, pytest.raises(UpdatesNotDownloadable) as refused:
        service.run_once([known, unknown, fileless])

    assert (refused.value.unknown, refused.value.without_files) == ((unknown,), (fileless,))
    assert unknown in str(refused.value) and fileless in str(refused.value)
    assert lab.tasks() == []
    assert lab.requested() == []


def test_only_catalog_urls_on_allowlisted_hosts_are_ever_requested(lab: Lab) -> None:
    bundle, file = single_file_child(lab.catalog)
    with lab.sessions.begin() as session:
        off_list = PayloadFile(
            sha1=base64.b64encode(hashlib.sha1(b"elsewhere").digest()).decode(),
            url="http://downloads.example.net/c/msdownload/update/software/secu/2024/01/elsewhere.cab",
            file_name="elsewhere.cab",
            size=9,
        )
        session.add(off_list)
        session.flush()
        off_list_id = off_list.id
    # The host also reports a URL of its own, on an allowlisted host: only the catalog counts.
    reported = "http://download.windowsupdate.com/c/msdownload/update/software/secu/2024/01/reported.cab"
    lab.add_host("host", {bundle: Status.MISSING}, reported_urls=[reported], extra_files=[off_list_id])

    with lab.service() as service:
        fetch(lab, service)

    assert [entry["url"] for entry in lab.requested()] == [file.url]
    (refused,) = [task for task in lab.tasks() if task.payload_file_id == off_list_id]
    assert refused.status == "failed"
    assert refused.error is not None and "not on the allowlist" in refused.error
    assert lab.task_of(file).status == "completed"
    # One of its files cannot be fetched: the update stays MISSING.
    assert lab.decisions("host")[bundle.update_id][0] == Status.MISSING


def test_trigger_queues_the_files_a_report_newly_needs_at_once(lab: Lab) -> None:
    bundle, (first, second) = two_file_child(lab.catalog)
    lab.add_host("host", {bundle: Status.MISSING})
    with lab.sessions.begin() as session:
        session.get(PayloadFile, lab.file_ids[second.digest]).stored_at = NOW  # type: ignore[union-attr]

    with lab.service() as service:
        task_ids = service.trigger([lab.file_ids[first.digest], lab.file_ids[second.digest]])
        assert service.wait(task_ids, WAIT)

    assert [task.payload_file_id for task in lab.tasks()] == [lab.file_ids[first.digest]]
    assert [entry["url"] for entry in lab.requested()] == [first.url]
    assert lab.decisions("host")[bundle.update_id][0] == Status.PENDING


def test_a_file_that_just_failed_waits_for_the_scheduled_run_not_for_the_next_report(lab: Lab) -> None:
    bundle, (_, bad) = two_file_child(lab.catalog)
    lab.add_host("host", {bundle: Status.MISSING})
    set_fault(lab.upstream_state, bad.url, "status", status=500, count=1)

    with lab.service() as service:
        fetch(lab, service)
        assert lab.task_of(bad).status == "failed"
        # Another report needing it: not at once, the upstream just failed.
        assert service.trigger([lab.file_ids[bad.digest]]) == []
        # The scheduled run: yes.
        again = fetch(lab, service)

    assert again == [lab.task_of(bad).id]
    assert lab.task_of(bad).status == "completed"
    assert [entry["url"] for entry in lab.requested()].count(bad.url) == 2


def test_reports_arriving_while_a_download_fails_never_fetch_it_twice(lab: Lab) -> None:
    # Reports come all the time: one needing the file while its download runs,
    # fails and is recorded must find it queued, or failed just now, and never
    # start a second download of it.
    bundle, (_, bad) = two_file_child(lab.catalog)
    lab.add_host("host", {bundle: Status.MISSING})
    set_fault(lab.upstream_state, bad.url, "corrupt")
    bad_id = lab.file_ids[bad.digest]

    with lab.service() as service:
        for attempt in range(1, 11):
            task_ids = set(service.trigger([bad_id]))
            deadline = time.monotonic() + WAIT
            while lab.task_of(bad).status != "failed":
                assert time.monotonic() < deadline, "the download was started again and again"
                task_ids.update(service.trigger([bad_id]))
            assert service.trigger([bad_id]) == []
            assert service.wait(task_ids, WAIT)
            assert [entry["url"] for entry in lab.requested()] == [bad.url] * attempt
            # Past the cooldown, the next report queues it again.
            with lab.sessions.begin() as session:
                session.get(DownloadTask, lab.task_of(bad).id).finished_at = NOW  # type: ignore[union-attr]


def test_one_fetch_service_per_repository(lab: Lab) -> None:
    with lab.service(), pytest.raises(FetchServiceBusy):
        lab.service().start()
    with lab.service():  # released when closed
        pass


def test_the_fetch_command_reports_and_fails_when_a_download_fails(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle, (good, bad) = two_file_child(lab.catalog)
    lab.add_host("host", {bundle: Status.MISSING})
    forced_bundle, forced = single_file_child(lab.catalog)
    for name, value in {
        "DATA_DIR": str(lab.settings.data_dir),
        "DATABASE_URL": lab.settings.database_url,
        "HTTP_PROXY": lab.settings.http_proxy or "",
        "FETCH_RETRIES": "0",
    }.items():
        monkeypatch.setenv(f"WUACACHE_{name}", value)
    set_fault(lab.upstream_state, bad.url, "status", status=503)

    assert main(["fetch", "--update", forced_bundle.update_id]) == 1
    output = capsys.readouterr().out
    forced_files = {file.digest for child in forced_bundle.children for file in child.files}
    assert f"{1 + len(forced_files)} file(s) on the server" in output
    assert f"failed: {bad.file_name}: " in output and "503" in output
    assert lab.published(good).exists() and lab.published(forced).exists()

    unknown = str(uuid.uuid4())
    assert main(["fetch", "--update", unknown]) == 2
    assert unknown in capsys.readouterr().err

    set_fault(lab.upstream_state, bad.url, "status", status=503, count=1)  # then answers normally
    assert main(["fetch"]) == 1
    assert main(["fetch"]) == 0
    assert "1 file(s) on the server" in capsys.readouterr().out
    assert lab.published(bad).read_bytes() == content(bad)
