"""Writes under load: admin writes and the CLI's succeed while hosts flood reports,
and a write that cannot take its lock in time is refused cleanly, changing nothing.

A live server on loopback, in its own process, takes the reports of several
threads; meanwhile the test revokes tokens, changes a rule set and uploads
packages through the API, and revokes tokens with the CLI, a second process
writing the same database.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg.errors
import pytest
import requests
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from wuacache_lab.loopback import free_port
from wuacache_server import cli
from wuacache_server.config import Settings
from wuacache_server.db import engine as db_engine
from wuacache_server.db.engine import is_contention, session_factory
from wuacache_server.db.models import ApiToken, TokenRole

REPORTING_THREADS = 8
ADMIN_ROUNDS = 8
TOKENS = "/api/v1/tokens"
WUACACHE_SERVER = Path(sys.executable).with_name("wuacache-server")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}



@pytest.fixture
def server_env(settings: Settings) -> dict[str, str]:
    """The environment of a server process, and of the CLI, on the test's database."""
    return {
        **os.environ,
        "WUACACHE_DATA_DIR": str(settings.data_dir),
        "WUACACHE_DATABASE_URL": settings.database_url,
        "WUACACHE_LISTEN": f"127.0.0.1:{free_port()}",
    }


@pytest.fixture
def live_server(server_env: dict[str, str], engine: Engine, tmp_path: Path) -> Iterator[str]:
    """The base URL of ``wuacache-server serve`` running on the migrated database."""
    base_url = f"http://{server_env['WUACACHE_LISTEN']}"
    with (tmp_path / "server.log").open("wb") as log:
        server = subprocess.Popen([WUACACHE_SERVER, "serve"], env=server_env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if requests.get(f"{base_url}/health", timeout=5).ok:
                        break
                except requests.ConnectionError:
                    pass
                assert server.poll() is None, (tmp_path / "server.log").read_text()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
            yield base_url
        finally:
            server.terminate()
            server.wait(30)


def _report(name: str) -> dict[str, Any]:
    return {
        "hostname": name,
        "os": {"caption": "Microsoft Windows 10 Pro", "build": "10.0.19045.3930", "architecture": "64-bit"},
        "wua_version": "10.0.19041.3996",
        "cab_sha256": "ab" * 32,
        "cab_date": "2024-02-13T18:00:00Z",
        "scan_duration_seconds": 12.5,
        "reboot_required": False,
        "wuauserv_state": "Running",
        "assignment": {"allowed_severities": ["Critical"]},
        "updates": [
            {
                "update_id": str(uuid.uuid4()),
                "revision_number": 200,
                "title": "Critical update",
                "msrc_severity": "Critical",
                "last_deployment_change_time": "2024-01-09T18:00:00Z",
                "is_installed": False,
            }
            for _ in range(5)
        ],
    }


class ReportFlood:
    """Threads posting reports until stopped; the status of every answer is counted."""

    def __init__(self, base_url: str, token: str) -> None:
        self.statuses: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._post, args=(base_url, token, f"flood-{number}"))
            for number in range(REPORTING_THREADS)
        ]

    def _post(self, base_url: str, token: str, host_name: str) -> None:
        with requests.Session() as http:
            while not self._stop.is_set():
                answer = http.post(
                    f"{base_url}/api/v1/hosts/{host_name}/reports", headers=bearer(token), json=_report(host_name)
                )
                with self._lock:
                    self.statuses[answer.status_code] += 1

    def __enter__(self) -> ReportFlood:
        for thread in self._threads:
            thread.start()
        time.sleep(1)  # under way before the writes under test
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def _tokens_to_revoke(issue_token: Callable[..., str], engine: Engine) -> list[tuple[int, str]]:
    secrets = [issue_token(TokenRole.CONTROLLER, name=f"doomed-{number}") for number in range(ADMIN_ROUNDS)]
    with session_factory(engine)() as session:
        ids = {token.name: token.id for token in session.scalars(select(ApiToken))}
    return [(ids[f"doomed-{number}"], secret) for number, secret in enumerate(secrets)]


def test_admin_writes_succeed_under_a_flood_of_reports(
    live_server: str, issue_token: Callable[..., str], engine: Engine
) -> None:
    admin = bearer(issue_token(TokenRole.ADMIN, name="admin"))
    doomed = _tokens_to_revoke(issue_token, engine)
    assert requests.post(f"{live_server}/api/v1/rulesets", headers=admin, json={"name": "prod"}).status_code == 201
    writes: list[tuple[str, int]] = []
    refused_after_revocation: list[int] = []

    with ReportFlood(live_server, issue_token(TokenRole.CONTROLLER, name="reporter")) as flood:
        for number, (token_id, secret) in enumerate(doomed):
            writes.append(("revoke", requests.delete(f"{live_server}{TOKENS}/{token_id}", headers=admin).status_code))
            refused_after_revocation.append(
                requests.get(f"{live_server}/api/v1/hosts", headers=bearer(secret)).status_code
            )
            ruleset = {"name": "prod", "allowed_kbs": [str(5034441 + number)]}
            answer = requests.put(f"{live_server}/api/v1/rulesets/prod", headers=admin, json=ruleset)
            writes.append(("rule set", answer.status_code))
            answer = requests.put(
                f"{live_server}/api/v1/packages/windows10.0-kb{5034441 + number}-x64.msu",
                headers={**admin, "Content-Type": "application/octet-stream"},
                data=os.urandom(64 * 1024),
            )
            writes.append(("package", answer.status_code))

    assert [write for write in writes if write[1] not in (200, 201, 204)] == []
    assert refused_after_revocation == [401] * ADMIN_ROUNDS
    assert set(flood.statuses) == {200}, flood.statuses
    assert flood.statuses[200] >= REPORTING_THREADS  # the flood did run beside the writes


def test_the_cli_writes_beside_a_busy_server(
    live_server: str, server_env: dict[str, str], issue_token: Callable[..., str], engine: Engine
) -> None:
    doomed = _tokens_to_revoke(issue_token, engine)
    outcomes: list[tuple[int, str]] = []
    refused_after_revocation: list[int] = []

    with ReportFlood(live_server, issue_token(TokenRole.CONTROLLER, name="reporter")) as flood:
        for token_id, secret in doomed:
            revoke = subprocess.run(
                [WUACACHE_SERVER, "token", "revoke", str(token_id)],
                env=server_env,
                capture_output=True,
                text=True,
                check=False,
            )
            outcomes.append((revoke.returncode, revoke.stderr.strip()))
            refused_after_revocation.append(
                requests.get(f"{live_server}/api/v1/hosts", headers=bearer(secret)).status_code
            )

    assert outcomes == [(0, "")] * ADMIN_ROUNDS
    assert refused_after_revocation == [401] * ADMIN_ROUNDS
    assert set(flood.statuses) == {200}, flood.statuses


@pytest.fixture
def short_busy_timeout(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite writers give up after 0.2 s; set before the app or the CLI makes its engine."""
    if not database_url.startswith("sqlite"):
        pytest.skip("a test of SQLite's write lock")
    monkeypatch.setattr(db_engine, "SQLITE_BUSY_TIMEOUT_MS", 200)


@contextmanager
def sqlite_write_lock_held(database_url: str) -> Iterator[None]:
    """Another connection holds the database's write lock."""
    holder = sqlite3.connect(make_url(database_url).database or "", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
        holder.rollback()
    finally:
        holder.close()


def test_a_write_that_cannot_take_the_lock_is_a_503_and_changes_nothing(
    short_busy_timeout: None,
    client: TestClient,
    database_url: str,
    issue_token: Callable[..., str],
    engine: Engine,
) -> None:
    admin = bearer(issue_token(TokenRole.ADMIN, name="admin"))
    [(token_id, secret)] = _tokens_to_revoke(issue_token, engine)[:1]
    assert client.get(TOKENS, headers=admin).status_code == 200  # its use is recorded: the next GET only reads

    with sqlite_write_lock_held(database_url):
        read = client.get(TOKENS, headers=admin)
        busy = client.delete(f"{TOKENS}/{token_id}", headers=admin)

    assert read.status_code == 200  # readers never wait for the writer
    assert (busy.status_code, busy.headers.get("Retry-After")) == (503, "2")
    assert busy.json() == {"detail": "the database is busy; try again shortly"}
    assert client.get("/api/v1/hosts", headers=bearer(secret)).status_code == 200
    assert client.delete(f"{TOKENS}/{token_id}", headers=admin).status_code == 204
    assert client.get("/api/v1/hosts", headers=bearer(secret)).status_code == 401


def test_the_cli_says_when_the_database_stays_busy(
    short_busy_timeout: None,
    settings: Settings,
    database_url: str,
    issue_token: Callable[..., str],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    [(token_id, _)] = _tokens_to_revoke(issue_token, engine)[:1]
    monkeypatch.setenv("WUACACHE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("WUACACHE_DATABASE_URL", database_url)

    with sqlite_write_lock_held(database_url):
        status = cli.main(["token", "revoke", str(token_id)])

    assert status == 2
    assert capsys.readouterr().err == (
        "wuacache-server: error: the database stayed busy with other writers too long; nothing changed, try again\n"
    )
    with session_factory(engine)() as session:
        assert session.get_one(ApiToken, token_id).revoked_at is None


@pytest.mark.parametrize(
    ("error", "contention"),
    [
        (psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"), True),
        (psycopg.errors.SerializationFailure("could not serialize access"), True),
        (psycopg.errors.DeadlockDetected("deadlock detected"), True),
        (psycopg.errors.UniqueViolation("duplicate key value"), False),
    ],
)
def test_postgresql_lock_errors_are_contention(error: Exception, contention: bool) -> None:
    wrapped = (OperationalError if contention else IntegrityError)("UPDATE ...", None, error)
    assert is_contention(wrapped) is contention
