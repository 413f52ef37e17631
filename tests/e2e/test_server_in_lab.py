"""The wuacache server as users run it (``wuacache-server init``, ``sync-cab``,
``serve``) against the lab's fake Microsoft, fed by the scan reports of 20
emulated hosts whose needs overlap."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from e2e_support import BIN
from wuacache_lab.catalog import generate_catalog
from wuacache_lab.loopback import free_port
from wuacache_lab.productserver import ServerStartError, wait_until_serving
from wuacache_lab.pki import ensure_lab_ca
from wuacache_lab.scanreport import ScanningHost
from wuacache_lab.upstream import UpstreamServer, read_access_log, set_fault
from wuacache_lab.windows.profiles import profile_mix

CAB_PATH = "/microsoftupdate/v6/wsusscan/wsusscn2.cab"
HOSTS = 20
# URLs a report may name that the server must never request: off the
# allowlist, and on it but absent from the verified catalog.
FOREIGN_URLS = (
    "http://downloads.example.net/payload.cab",
    "http://download.windowsupdate.com/c/msdownload/update/software/secu/2024/01/not-in-the-catalog_"
    + "0" * 40
    + ".cab",
)


@dataclass
class Server:
    url: str
    env: dict[str, str]
    controller: dict[str, str]
    upstream: UpstreamServer
    upstream_state: Path
    cab: Path
    files_dir: Path
    ca: Path
    state_dir: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([BIN / "wuacache-server", *args], env=self.env, capture_output=True, text=True, timeout=300)

    def payload_entries(self) -> list[dict]:
        self.upstream.wait_idle()
        return [entry for entry in read_access_log(self.upstream_state) if entry["path"] != CAB_PATH]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("server-in-lab")
    ca = ensure_lab_ca(root / "ca")
    catalog = generate_catalog(root / "catalog", updates=120, seed=11, ca=ca)
    port = free_port()
    with UpstreamServer(catalog.files_dir, root / "upstream") as upstream:
        env = dict(
            os.environ,
            WUACACHE_DATA_DIR=str(root / "data"),
            WUACACHE_HTTP_PROXY=upstream.url,
            WUACACHE_CAB_CA_BUNDLE=str(ca.ca_cert),
            WUACACHE_LISTEN=f"127.0.0.1:{port}",
            WUACACHE_FETCH_RETRIES="0",
        )
        server = Server(
            url=f"http://127.0.0.1:{port}",
            env=env,
            controller={},
            upstream=upstream,
            upstream_state=root / "upstream",
            cab=catalog.cab,
            files_dir=catalog.files_dir,
            ca=ca.ca_cert,
            state_dir=root,
        )
        assert server.cli("init").returncode == 0
        synced = server.cli("sync-cab")
        assert synced.returncode == 0, synced.stderr
        created = server.cli("token", "create", "ansible", "--role", "controller")
        assert created.returncode == 0, created.stderr
        server.controller = {"Authorization": f"Bearer {created.stdout.strip()}"}

        log = open(root / "server.log", "wb")  # noqa: SIM115 - closed after the server stops
        process = subprocess.Popen([BIN / "wuacache-server", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            try:
                wait_until_serving(server.url, process, timeout=30)
            except ServerStartError as error:
                pytest.fail(f"{error}: {(root / 'server.log').read_text()}")
            yield server
        finally:
            process.send_signal(signal.SIGTERM)
            # uvicorn shuts down gracefully, then ends by the signal it caught.
            assert process.wait(timeout=30) in (0, -signal.SIGTERM)
            log.close()
            assert "Application shutdown complete" in (root / "server.log").read_text()


def wait_for_downloads(server: Server, timeout: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        tasks = requests.get(f"{server.url}/api/v1/downloads", params={"limit": 500}, headers=server.controller, timeout=10).json()
        items = tasks["items"] if isinstance(tasks, dict) else tasks
        if items and all(task["status"] in ("completed", "failed") for task in items):
            return items
        assert time.monotonic() < deadline, f"downloads still running after {timeout} s: {items}"
        time.sleep(0.5)


def test_twenty_hosts_get_only_what_they_need_once_and_verified(server: Server) -> None:
    cab_sha256 = hashlib.sha256(server.cab.read_bytes()).hexdigest()
    hosts = [
        ScanningHost(
            server.state_dir / "hosts",
            f"host-{index:02d}",
            profile,
            cab=server.cab,
            cab_sha256=cab_sha256,
            cab_date=time_of(server.cab),
            trusted_ca=server.ca,
            files_dir=server.files_dir,
        )
        for index, profile in enumerate(profile_mix("mixed", HOSTS))
    ]
    reports = [host.report({"default_allow": True}) for host in hosts]
    # One host's scan names URLs the catalog does not give: they must be ignored.
    reports[0]["updates"][0]["download_urls"] += list(FOREIGN_URLS)
    reports[0]["updates"][0]["bundled"][0]["download_urls"] += list(FOREIGN_URLS)

    # One needed file is served corrupted by "Microsoft", every time.
    first_plan = post_report(server, reports[0])
    corrupted = next(file for update in first_plan["updates"] for file in update["files"])
    set_fault(server.upstream_state, corrupted["download_url"], "corrupt")

    plans = [first_plan] + [post_report(server, report) for report in reports[1:]]
    needed = {file["download_url"]: file for plan in plans for update in plan["updates"] for file in update["files"]}
    assert len(needed) > 1
    tasks = wait_for_downloads(server)

    # Every needed file was requested once, and nothing else.
    entries = server.payload_entries()
    requested = [entry["url"] for entry in entries]
    assert sorted(requested) == sorted(needed)
    assert sum(entry["bytes"] for entry in entries) == sum(file["size"] for file in needed.values())
    for url in FOREIGN_URLS:
        assert url not in requested

    # What matches its digest is served; the corrupted file never is.
    assert [task["status"] for task in tasks].count("failed") == 1
    for url, file in needed.items():
        served = requests.get(f"{server.url}/wua/{file['file_name']}", timeout=10)
        if url == corrupted["download_url"]:
            assert served.status_code == 404
        else:
            assert served.status_code == 200
            assert hashlib.sha1(served.content).digest() == base64.b64decode(file["sha1"])


def test_a_second_sync_of_an_unchanged_cab_transfers_no_body(server: Server) -> None:
    synced = server.cli("sync-cab")
    assert synced.returncode == 0, synced.stderr
    assert "unchanged" in synced.stdout
    server.upstream.wait_idle()
    cab_requests = [entry for entry in read_access_log(server.upstream_state) if entry["path"] == CAB_PATH]
    assert (cab_requests[-1]["status"], cab_requests[-1]["bytes"]) == (304, 0)
    assert [entry["status"] for entry in cab_requests].count(200) == 1


def post_report(server: Server, report: dict) -> dict:
    answer = requests.post(
        f"{server.url}/api/v1/hosts/{report['hostname']}/reports", json=report, headers=server.controller, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def time_of(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)
