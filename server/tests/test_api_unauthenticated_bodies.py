"""Requests without a valid token are refused from their headers alone, before
any byte of their body is read: against ``wuacache-server serve`` over loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine
from wuacache_lab.loopback import free_port

REPORTS = "/api/v1/hosts/win10-01/reports"
BODY_SIZE = 15 * 1024 * 1024  # under max_report_bytes, 16 MiB by default
MiB = 1024 * 1024


@pytest.fixture
def server(engine: Engine, database_url: str, data_dir: Path) -> Iterator[tuple[int, int]]:
    """``wuacache-server serve`` on the migrated database: (port, process id)."""
    port = free_port()
    env = {
        **os.environ,
        "WUACACHE_DATA_DIR": str(data_dir),
        "WUACACHE_DATABASE_URL": database_url,
        "WUACACHE_LISTEN": f"127.0.0.1:{port}",
    }
    command = [Path(sys.executable).parent / "wuacache-server", "serve"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/health", timeout=5, headers={"Connection": "close"})
                break
            except requests.ConnectionError:
                assert process.poll() is None, "the server exited"
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.1)
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def request_head(port: int, content_length: int, headers: str = "") -> bytes:
    return (
        f"POST {REPORTS} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {content_length}\r\n{headers}\r\n"
    ).encode()


def status_line(connection: socket.socket) -> bytes:
    received = b""
    while b"\r\n" not in received:
        chunk = connection.recv(4096)
        if not chunk:
            break
        received += chunk
    return received.partition(b"\r\n")[0]


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_headers_announcing_a_large_body_without_a_token_get_401_at_once(server: tuple[int, int]) -> None:
    port, _ = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        started = time.monotonic()
        connection.sendall(request_head(port, BODY_SIZE))  # and no body
        answer = status_line(connection)
        elapsed = time.monotonic() - started
    assert answer == b"HTTP/1.1 401 Unauthorized"
    assert elapsed < 1


def test_a_small_body_without_a_token_gets_401_not_422(server: tuple[int, int]) -> None:
    port, _ = server
    body = b"{" + b"x" * 99  # not even JSON
    answer = requests.post(
        f"http://127.0.0.1:{port}{REPORTS}", data=body, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"


def test_a_wrong_token_gets_401_before_the_body(server: tuple[int, int]) -> None:
    port, _ = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request_head(port, BODY_SIZE, "Authorization: Bearer wua_not-a-token\r\n"))
        assert status_line(connection) == b"HTTP/1.1 401 Unauthorized"


def test_concurrent_large_bodies_without_a_token_cost_no_memory(server: tuple[int, int]) -> None:
    port, pid = server
    body = b"[" + b" " * (BODY_SIZE - 2) + b"]"
    before = resident_bytes(pid)
    peak = before
    attacking = True

    def watch_memory() -> None:
        nonlocal peak
        while attacking:
            peak = max(peak, resident_bytes(pid))
            time.sleep(0.01)

    answers: list[bytes] = []

    def post() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
            # Sent from another thread, as a client that does not wait for an answer would.
            sender = threading.Thread(
                target=send_ignoring_refusal, args=(connection, request_head(port, BODY_SIZE) + body)
            )
            sender.start()
            answers.append(status_line(connection))
            sender.join()

    watcher = threading.Thread(target=watch_memory)
    watcher.start()
    posters = [threading.Thread(target=post) for _ in range(8)]
    for poster in posters:
        poster.start()
    for poster in posters:
        poster.join()
    attacking = False
    watcher.join()

    assert answers == [b"HTTP/1.1 401 Unauthorized"] * 8
    assert peak - before < 20 * MiB


def send_ignoring_refusal(connection: socket.socket, data: bytes) -> None:
    try:
        connection.sendall(data)
    except OSError:
        pass  # the server answered and closed the connection before the end of the body
