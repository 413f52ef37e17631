"""The ``wuacache-server`` console script, run as a user runs it."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
import requests
from sqlalchemy.orm import Session
from wuacache_lab.loopback import free_port
from wuacache_lab.pki import ensure_lab_ca, ensure_server_certificate

from wuacache_server.db.engine import head_revision, make_engine
from wuacache_server.security import authenticate

TOKEN = re.compile(r"wua_[A-Za-z0-9_-]{40,}")


def console_script() -> Path:
    return Path(sys.executable).parent / "wuacache-server"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([console_script(), *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def server_env(data_dir: Path) -> dict[str, str]:
    """The environment of a server whose state lives in ``data_dir``."""
    return {**os.environ, "WUACACHE_DATA_DIR": str(data_dir)}


def assert_one_line_error(completed: subprocess.CompletedProcess[str], message: str) -> None:
    assert completed.returncode == 2
    assert completed.stderr.startswith("wuacache-server: error: ")
    assert message in completed.stderr
    assert completed.stderr.count("\n") == 1
    assert "Traceback" not in completed.stderr


def test_console_script_reports_the_installed_version() -> None:
    completed = run("--version")
    assert completed.stdout.strip() == f"wuacache-server {version('wuacache-server')}"


def test_unknown_option_is_refused_with_usage() -> None:
    completed = run("--no-such-option")
    assert completed.returncode == 2
    assert "usage: wuacache-server" in completed.stderr


def test_init_gives_a_working_server_and_tokens_are_managed(data_dir: Path, server_env: dict[str, str]) -> None:
    initialised = run("init", env=server_env)
    assert initialised.returncode == 0, initialised.stderr
    admin_token = TOKEN.search(initialised.stdout)
    assert admin_token is not None

    config_file = data_dir / "server.toml"
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert tomllib.loads(config_file.read_text()) == {}  # documented, all commented out
    assert (data_dir / "repository" / "wua").is_dir()

    engine = make_engine(f"sqlite:///{data_dir}/wuacache.db")
    try:
        with Session(engine) as session:
            admin = authenticate(session, admin_token.group())
            assert admin is not None and admin.role == "admin"
    finally:
        engine.dispose()

    status = run("status", env=server_env)
    assert status.returncode == 0, status.stderr
    assert re.search(rf"^settings: +{re.escape(str(config_file))}$", status.stdout, re.MULTILINE)
    assert re.search(rf"^schema: +{head_revision()} \(current\)$", status.stdout, re.MULTILINE)
    assert re.search(r"^hosts: +0$", status.stdout, re.MULTILINE)
    assert re.search(r"^files: +0 stored of 0$", status.stdout, re.MULTILINE)
    assert re.search(r"^last cab sync: +never$", status.stdout, re.MULTILINE)

    created = run("token", "create", "ansible", "--role", "controller", env=server_env)
    assert created.returncode == 0, created.stderr
    assert TOKEN.fullmatch(created.stdout.strip())  # the secret alone, for scripts
    host_token = run("token", "create", "win10-01", "--role", "host", "--host", "WIN10-01", env=server_env)
    assert host_token.returncode == 0, host_token.stderr

    revoked = run("token", "revoke", "2", env=server_env)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.strip() == "token 2 'ansible' revoked"

    listed = run("token", "list", env=server_env)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert [row[:4] for row in rows] == [
        ["1", "admin", "admin", "-"],
        ["2", "ansible", "controller", "-"],
        ["3", "win10-01", "host", "win10-01"],
    ]
    # Revoked, never expiring; live, expiring (a host token): the last columns are REVOKED and EXPIRES.
    assert rows[1][-2:] == ["UTC", "-"]
    assert rows[2][-4] == "-" and rows[2][-1] == "UTC"
    assert "wua_" not in listed.stdout

    rotated = run("token", "rotate", "3", "--grace", "1h", env=server_env)
    assert rotated.returncode == 0, rotated.stderr
    assert TOKEN.fullmatch(rotated.stdout.strip())
    assert "the old one works until" in rotated.stderr
    rows = [line.split() for line in run("token", "list", env=server_env).stdout.splitlines()[1:]]
    assert [row[:4] for row in rows[2:]] == [
        ["3", "win10-01", "host", "win10-01"],
        ["4", "win10-01", "host", "win10-01"],
    ]
    assert_one_line_error(run("token", "rotate", "2", env=server_env), "token 2 is revoked or expired")

    trail = run("audit", env=server_env)
    assert trail.returncode == 0, trail.stderr
    assert [line.split()[4:6] for line in trail.stdout.splitlines()[1:]] == [
        ["token.rotate", "token"],
        ["token.revoke", "token"],
        ["token.create", "token"],
        ["token.create", "token"],
        ["token.create", "the"],
    ]
    assert all(line.split()[3] == "cli" for line in trail.stdout.splitlines()[1:])
    assert "wua_" not in trail.stdout


def test_init_again_keeps_the_settings_and_makes_no_second_admin(data_dir: Path, server_env: dict[str, str]) -> None:
    assert run("init", env=server_env).returncode == 0
    (data_dir / "server.toml").write_text("fetch_retries = 5\n")

    again = run("init", env=server_env)

    assert again.returncode == 0, again.stderr
    assert TOKEN.search(again.stdout) is None
    assert "one exists already" in again.stdout
    assert (data_dir / "server.toml").read_text() == "fetch_retries = 5\n"
    assert len(run("token", "list", env=server_env).stdout.splitlines()) == 2  # header and one token


def test_migrate_brings_a_new_database_to_the_current_schema(server_env: dict[str, str]) -> None:
    migrated = run("migrate", env=server_env)
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.strip().endswith(f"at schema revision {head_revision()}")
    assert run("status", env=server_env).returncode == 0


def test_status_of_a_database_never_migrated_exits_1(server_env: dict[str, str]) -> None:
    status = run("status", env=server_env)
    assert status.returncode == 1
    assert "not migrated" in status.stdout and "run `wuacache-server migrate`" in status.stdout


def test_status_of_an_unreachable_database_is_an_error(tmp_path: Path, server_env: dict[str, str]) -> None:
    env = {**server_env, "WUACACHE_DATABASE_URL": f"sqlite:///{tmp_path}/missing/wuacache.db"}
    assert_one_line_error(run("status", env=env), "database: unable to open database file")


def test_commands_refuse_a_database_never_migrated(server_env: dict[str, str]) -> None:
    assert_one_line_error(run("token", "list", env=server_env), "not migrated; this server needs")
    assert_one_line_error(run("serve", env=server_env), "run `wuacache-server migrate`")


def test_invalid_settings_are_one_line_errors(tmp_path: Path, server_env: dict[str, str]) -> None:
    assert_one_line_error(run("status", env={**server_env, "WUACACHE_LISTEN": "nowhere"}), "listen: 'nowhere'")
    assert_one_line_error(run("--config", str(tmp_path / "missing.toml"), "status"), "does not exist")


def test_token_mistakes_are_one_line_errors(server_env: dict[str, str]) -> None:
    assert run("migrate", env=server_env).returncode == 0
    assert_one_line_error(
        run("token", "create", "win10-01", "--role", "host", env=server_env), "a host token names its host"
    )
    assert_one_line_error(run("token", "revoke", "99", env=server_env), "no token with id 99")



@pytest.fixture
def https_server(tmp_path: Path, server_env: dict[str, str]) -> Iterator[tuple[str, Path, subprocess.Popen[str]]]:
    """``wuacache-server serve`` over HTTPS with a lab certificate: (base URL, CA file, process)."""
    ca = ensure_lab_ca(tmp_path / "ca")
    certificate = ensure_server_certificate(ca.directory, ["127.0.0.1"])
    port = free_port()
    env = {
        **server_env,
        "WUACACHE_LISTEN": f"127.0.0.1:{port}",
        "WUACACHE_TLS_CERT": str(certificate.cert),
        "WUACACHE_TLS_KEY": str(certificate.key),
    }
    assert run("migrate", env=env).returncode == 0
    process = subprocess.Popen(
        [console_script(), "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield f"https://127.0.0.1:{port}", ca.ca_cert, process
    finally:
        process.terminate()
        process.wait(timeout=30)
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        process.stderr.close()


def test_serve_answers_over_tls_and_logs_to_stderr(https_server: tuple[str, Path, subprocess.Popen[str]]) -> None:
    base_url, ca_cert, process = https_server
    deadline = time.monotonic() + 30
    while True:
        try:
            # No keep-alive: the server's shutdown would wait for the idle connection.
            answer = requests.get(f"{base_url}/health", verify=str(ca_cert), timeout=5, headers={"Connection": "close"})
            break
        except requests.ConnectionError:
            assert process.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not answer"
            time.sleep(0.1)
    assert answer.status_code == 200
    assert answer.json()["database"] is True
    assert "server" not in answer.headers  # no banner

    process.terminate()
    stdout, stderr = process.communicate(timeout=30)
    assert stdout == ""
    assert "Uvicorn running on https://127.0.0.1" in stderr
    assert "GET /health" in stderr
