"""The cleanup of stored update files no host needs, on both database backends."""

from __future__ import annotations

import fcntl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from test_fetch_service import Lab, content, lab_catalog, two_file_child
from wuacache_lab.catalog.model import PayloadFile as LabFile

from wuacache_server.cli import main
from wuacache_server.config import Settings
from wuacache_server.db.engine import session_factory
from wuacache_server.db.models import CleanupRun, DownloadTask, DownloadTaskStatus, PayloadFile
from wuacache_server.fetch.downloader import PART_SUFFIX, PARTIAL_DIR, VALIDATOR_SUFFIX
from wuacache_server.policy import Status
from wuacache_server.services.cleanup import FORCED_RETENTION, LOCK_NAME, in_window, run_cleanup

NOW = datetime(2026, 3, 2, 2, 45, tzinfo=UTC)


@pytest.fixture
def lab(engine: Engine, data_dir: Path, database_url: str) -> Lab:
    """The lab catalog in the database; no upstream: the cleanup downloads nothing."""
    return Lab(lab_catalog(), session_factory(engine), Settings(data_dir=data_dir, database_url=database_url), None)


def store(lab: Lab, *files: LabFile) -> None:
    """Publish ``files`` in the repository, as the fetch service does."""
    lab.settings.wua_dir.mkdir(parents=True, exist_ok=True)
    with lab.sessions.begin() as session:
        for file in files:
            lab.published(file).write_bytes(content(file))
            row = session.get(PayloadFile, lab.file_ids[file.digest])
            assert row is not None
            row.stored_at, row.stored_size = NOW - timedelta(days=30), file.size


def stored_at(lab: Lab, file: LabFile) -> datetime | None:
    return lab.row(file).stored_at


def runs(lab: Lab) -> list[CleanupRun]:
    with lab.sessions() as session:
        return list(session.scalars(select(CleanupRun)))


def test_only_files_no_host_needs_are_removed_and_the_bytes_freed_recorded(lab: Lab) -> None:
    bundles = lab.catalog.bundles
    needed = lab.add_host(
        "host-1", {bundles[0]: Status.MISSING, bundles[1]: Status.OK, bundles[2]: Status.DISCARDED}
    ) + lab.add_host("host-2", {bundles[3]: Status.ERROR, bundles[4]: Status.PENDING, bundles[1]: Status.OK})
    needed_digests = {file.digest for file in needed}
    unneeded = [file for file in lab.catalog.files if file.digest not in needed_digests]
    store(lab, *needed, *unneeded)
    wua = lab.settings.wua_dir
    (wua / "wsusscn2.cab").write_bytes(b"the catalog")
    (wua / "wsusscn2.cab.sha256").write_text("0" * 64 + "  wsusscn2.cab\n")
    (wua / ".wsusscn2.cab.part").write_bytes(b"a cab sync at work")
    (wua / "stray.bin").write_bytes(b"x" * 100)

    result = run_cleanup(lab.settings, lab.sessions, NOW)

    assert sorted(path.name for path in wua.iterdir()) == sorted(
        [file.file_name for file in {file.digest: file for file in needed}.values()]
        + ["wsusscn2.cab", "wsusscn2.cab.sha256", ".wsusscn2.cab.part"]
    )
    freed = sum(file.size for file in unneeded) + 100
    assert (result.files_removed, result.bytes_freed) == (len(unneeded) + 1, freed)
    for file in needed:
        assert lab.published(file).read_bytes() == content(file)
        assert stored_at(lab, file) is not None
    for file in unneeded:
        assert stored_at(lab, file) is None
        assert lab.row(file).stored_size is None
    (run,) = runs(lab)
    assert (run.id, run.files_removed, run.bytes_freed, run.error) == (result.run_id, len(unneeded) + 1, freed, None)
    assert run.started_at == NOW and run.finished_at is not None

    again = run_cleanup(lab.settings, lab.sessions, NOW)
    assert (again.files_removed, again.bytes_freed) == (0, 0)


def test_files_being_fetched_or_forced_recently_are_kept(lab: Lab) -> None:
    fetching, recent, old, done = lab.catalog.files[:4]
    store(lab, fetching, recent, old, done)
    with lab.sessions.begin() as session:
        session.add_all(
            [
                DownloadTask(payload_file_id=lab.file_ids[fetching.digest], status=DownloadTaskStatus.RUNNING),
                DownloadTask(
                    payload_file_id=lab.file_ids[recent.digest],
                    status=DownloadTaskStatus.COMPLETED,
                    forced=True,
                    finished_at=NOW - FORCED_RETENTION + timedelta(hours=1),
                ),
                DownloadTask(
                    payload_file_id=lab.file_ids[old.digest],
                    status=DownloadTaskStatus.COMPLETED,
                    forced=True,
                    finished_at=NOW - FORCED_RETENTION - timedelta(hours=1),
                ),
                DownloadTask(
                    payload_file_id=lab.file_ids[done.digest],
                    status=DownloadTaskStatus.COMPLETED,
                    finished_at=NOW - timedelta(hours=1),
                ),
            ]
        )

    result = run_cleanup(lab.settings, lab.sessions, NOW)

    assert result.files_removed == 2
    assert [lab.published(file).exists() for file in (fetching, recent, old, done)] == [True, True, False, False]


def test_stale_partial_downloads_go_unless_needed_or_held(lab: Lab) -> None:
    bundle, (needed, _) = two_file_child(lab.catalog)
    lab.add_host("host", {bundle: Status.MISSING})
    stale, held = [file for file in lab.catalog.files if file not in bundle.children[0].files][:2]
    partial_dir = lab.settings.wua_dir / PARTIAL_DIR
    partial_dir.mkdir(parents=True)
    for file in (needed, stale, held):
        (partial_dir / (file.file_name + PART_SUFFIX)).write_bytes(content(file)[:1000])
        (partial_dir / (file.file_name + VALIDATOR_SUFFIX)).write_text('{"if_range": "\\"1\\""}')

    with open(partial_dir / (held.file_name + PART_SUFFIX), "a+b") as download:
        fcntl.flock(download.fileno(), fcntl.LOCK_EX)  # as a running download holds it
        result = run_cleanup(lab.settings, lab.sessions, NOW)

    assert sorted(path.name for path in partial_dir.iterdir()) == sorted(
        name + suffix for name in (needed.file_name, held.file_name) for suffix in (PART_SUFFIX, VALIDATOR_SUFFIX)
    )
    assert (result.files_removed, result.partials_removed, result.bytes_freed) == (0, 1, 1000)


def test_nothing_is_removed_when_cleanup_kbs_is_off(lab: Lab) -> None:
    store(lab, *lab.catalog.files)
    settings = lab.settings.model_copy(update={"cleanup_kbs": False})

    result = run_cleanup(settings, lab.sessions, NOW)

    assert "cleanup_kbs = false" in result.message
    assert (result.run_id, result.files_removed) == (None, 0)
    assert all(lab.published(file).exists() and stored_at(lab, file) for file in lab.catalog.files)
    assert runs(lab) == []


def test_the_cleanup_command_says_what_it_freed(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    unneeded = lab.catalog.files[0]
    store(lab, unneeded)
    monkeypatch.setenv("WUACACHE_DATA_DIR", str(lab.settings.data_dir))
    monkeypatch.setenv("WUACACHE_DATABASE_URL", lab.settings.database_url)

    assert main(["cleanup"]) == 0

    assert f"removed 1 file(s) and 0 partial download(s), {unneeded.size} bytes freed" in capsys.readouterr().out
    assert not lab.published(unneeded).exists()
    monkeypatch.setenv("WUACACHE_CLEANUP_KBS", "false")
    assert main(["cleanup"]) == 0
    assert "nothing removed" in capsys.readouterr().out


def test_the_cleanup_command_fails_at_once_while_another_cleanup_runs(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    unneeded = lab.catalog.files[0]
    store(lab, unneeded)
    monkeypatch.setenv("WUACACHE_DATA_DIR", str(lab.settings.data_dir))
    monkeypatch.setenv("WUACACHE_DATABASE_URL", lab.settings.database_url)

    with open(lab.settings.data_dir / LOCK_NAME, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as the server's nightly cleanup holds it
        assert main(["cleanup"]) == 1

    assert "another cleanup is running" in capsys.readouterr().err
    assert lab.published(unneeded).exists()
    assert runs(lab) == []


@pytest.mark.parametrize(
    ("moment", "window", "inside"),
    [
        ("02:30", "02:30-03:30", True),
        ("03:29", "02:30-03:30", True),
        ("03:30", "02:30-03:30", False),
        ("02:29", "02:30-03:30", False),
        ("23:30", "23:00-01:00", True),
        ("00:59", "23:00-01:00", True),
        ("01:00", "23:00-01:00", False),
        ("12:00", "23:00-01:00", False),
    ],
)
def test_in_window(moment: str, window: str, inside: bool) -> None:
    hour, minute = (int(part) for part in moment.split(":"))
    local = datetime(2026, 3, 2, hour, minute)
    assert in_window(local, window) is inside
    # An aware time is read in the server's time zone.
    assert in_window(local.astimezone().astimezone(UTC), window) is inside
