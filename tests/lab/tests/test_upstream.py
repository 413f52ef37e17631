"""The fake Microsoft download server, spoken to over real HTTP on loopback."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from email.utils import format_datetime, formatdate, parsedate_to_datetime
from http.client import HTTPConnection, IncompleteRead
from pathlib import Path

import pytest
import requests

from wuacache_lab.upstream import (
    UpstreamServer,
    bytes_sent,
    clear_faults,
    read_access_log,
    read_faults,
    set_fault,
)

CAB_PATH = "/microsoftupdate/v6/wsusscan/wsusscn2.cab"
CAB_URL = f"http://download.windowsupdate.com{CAB_PATH}"
CAB = bytes(i % 251 for i in range(10_000))
PAYLOAD_PATH = (
    "/c/msdownload/update/software/secu/2024/01/"
    "windows10.0-kb5000001-x64_0123456789abcdef0123456789abcdef01234567.msu"
)
PAYLOAD_URL = f"http://download.windowsupdate.com{PAYLOAD_PATH}"
PAYLOAD = b"payload of KB5000001\n" * 50
MIRROR_HOST = "catalog.s.download.windowsupdate.com"
SECRET = b"outside the docroot"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def docroot(tmp_path: Path) -> Path:
    root = tmp_path / "docroot"
    _write(root / "download.windowsupdate.com" / CAB_PATH.lstrip("/"), CAB)
    _write(root / "download.windowsupdate.com" / PAYLOAD_PATH.lstrip("/"), PAYLOAD)
    _write(root / MIRROR_HOST / CAB_PATH.lstrip("/"), CAB)
    _write(tmp_path / "secret.txt", SECRET)
    return root


@pytest.fixture
def cab_file(docroot: Path) -> Path:
    return docroot / "download.windowsupdate.com" / CAB_PATH.lstrip("/")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def upstream(docroot: Path, state_dir: Path) -> Iterator[UpstreamServer]:
    with UpstreamServer(docroot, state_dir) as server:
        yield server


@pytest.fixture
def client() -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False  # an environment proxy must never see lab traffic
    yield session
    session.close()


def _via(upstream: UpstreamServer) -> dict[str, str]:
    return {"http": upstream.url}


def _log(upstream: UpstreamServer) -> list[dict]:
    upstream.wait_idle()
    return read_access_log(upstream.state_dir)


def _raw_request(
    upstream: UpstreamServer, method: str, target: str, host: str | None = None
) -> tuple[int, bytes]:
    """A request sent byte for byte, where a client library would normalise the target."""
    address, port = upstream.address
    connection = HTTPConnection(address, port, timeout=10)
    try:
        connection.putrequest(method, target, skip_host=True)
        connection.putheader("Host", host or f"{address}:{port}")
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _read_until_broken(response: requests.Response) -> bytes:
    received = bytearray()
    with pytest.raises(requests.exceptions.RequestException):
        for chunk in response.iter_content(1024):
            received += chunk
    return bytes(received)


# --- serving files -------------------------------------------------------------


@pytest.mark.parametrize("proxied", [False, True], ids=["origin", "proxy"])
def test_get_catalog_at_microsoft_path(
    upstream: UpstreamServer, client: requests.Session, cab_file: Path, proxied: bool
) -> None:
    if proxied:
        response = client.get(CAB_URL, proxies=_via(upstream))
    else:
        response = client.get(upstream.url + CAB_PATH)

    assert response.status_code == 200
    assert response.content == CAB
    assert response.headers["Content-Type"] == "application/vnd.ms-cab-compressed"
    assert response.headers["Content-Length"] == str(len(CAB))
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Last-Modified"] == formatdate(
        int(cab_file.stat().st_mtime), usegmt=True
    )
    etag = response.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')  # strong, not W/"..."


def test_head_answers_headers_without_body(
    upstream: UpstreamServer, client: requests.Session
) -> None:
    head = client.head(CAB_URL, proxies=_via(upstream))
    get = client.get(CAB_URL, proxies=_via(upstream))
    # Range applies to GET only; on HEAD it must not turn into a 206 or a 416.
    ranged = client.head(CAB_URL, proxies=_via(upstream), headers={"Range": "bytes=99999-"})

    assert head.status_code == ranged.status_code == 200
    assert head.content == b""
    assert head.headers["Content-Length"] == str(len(CAB))
    assert head.headers["ETag"] == get.headers["ETag"]
    assert head.headers["Last-Modified"] == get.headers["Last-Modified"]


def test_payload_is_served_as_octet_stream(
    upstream: UpstreamServer, client: requests.Session
) -> None:
    response = client.get(PAYLOAD_URL, proxies=_via(upstream))

    assert response.content == PAYLOAD
    assert response.headers["Content-Type"] == "application/octet-stream"


@pytest.mark.parametrize(
    "fwlink",
    [
        "http://go.microsoft.com/fwlink/p/?LinkID=74689",
        "http://go.microsoft.com/fwlink/?LinkID=74689",
    ],
)
def test_fwlink_redirects_to_the_catalog(
    upstream: UpstreamServer, client: requests.Session, fwlink: str
) -> None:
    response = client.get(fwlink, proxies=_via(upstream))

    assert [r.status_code for r in response.history] == [302]
    assert response.history[0].headers["Location"] == CAB_URL
    assert response.status_code == 200
    assert response.content == CAB


def test_fwlink_redirect_as_origin_and_unknown_link(
    upstream: UpstreamServer, client: requests.Session
) -> None:
    headers = {"Host": "go.microsoft.com"}
    known = client.get(
        f"{upstream.url}/fwlink/p/?linkid=74689", headers=headers, allow_redirects=False
    )
    unknown = client.get(
        f"{upstream.url}/fwlink/p/?LinkID=1", headers=headers, allow_redirects=False
    )

    assert known.status_code == 302
    assert known.headers["Location"] == CAB_URL
    assert unknown.status_code == 404


def test_unknown_host_is_not_found(upstream: UpstreamServer, client: requests.Session) -> None:
    proxied = client.get("http://example.com" + CAB_PATH, proxies=_via(upstream))
    origin = client.get(upstream.url + CAB_PATH, headers={"Host": "example.com"})
    named = client.get(upstream.url + CAB_PATH, headers={"Host": "download.windowsupdate.com"})

    assert proxied.status_code == 404
    assert origin.status_code == 404
    assert named.status_code == 200
    assert CAB not in proxied.content + origin.content


def test_connect_is_refused(upstream: UpstreamServer) -> None:
    status, _ = _raw_request(upstream, "CONNECT", "download.windowsupdate.com:443")

    assert status == 405


@pytest.mark.parametrize(
    "target",
    [
        "/../../secret.txt",
        "/%2e%2e/%2E%2E/secret.txt",
        "/c/..%2f..%2f..%2fsecret.txt",
        "/c/..\\..\\..\\secret.txt",
        "http://download.windowsupdate.com/../../secret.txt",
        "http://download.windowsupdate.com/%2e%2e/%2e%2e/secret.txt",
        "http://../secret.txt",
    ],
)
def test_path_traversal_is_refused(upstream: UpstreamServer, target: str) -> None:
    status, body = _raw_request(upstream, "GET", target)

    assert status in (400, 404)
    assert SECRET not in body


def test_symlink_out_of_the_docroot_is_not_followed(
    upstream: UpstreamServer, client: requests.Session, docroot: Path, tmp_path: Path
) -> None:
    (docroot / "download.windowsupdate.com" / "link.txt").symlink_to(tmp_path / "secret.txt")

    response = client.get(upstream.url + "/link.txt")

    assert response.status_code == 404
    assert SECRET not in response.content


# --- validators and conditional requests ---------------------------------------


def test_if_none_match_answers_304(upstream: UpstreamServer, client: requests.Session) -> None:
    etag = client.head(CAB_URL, proxies=_via(upstream)).headers["ETag"]

    same = client.get(CAB_URL, proxies=_via(upstream), headers={"If-None-Match": etag})
    weak = client.get(
        CAB_URL, proxies=_via(upstream), headers={"If-None-Match": f'"other", W/{etag}'}
    )
    other = client.get(CAB_URL, proxies=_via(upstream), headers={"If-None-Match": '"other"'})

    assert (same.status_code, same.content, same.headers["ETag"]) == (304, b"", etag)
    assert weak.status_code == 304
    assert (other.status_code, other.content) == (200, CAB)


def test_if_modified_since_answers_304_unless_newer(
    upstream: UpstreamServer, client: requests.Session
) -> None:
    last_modified = client.head(CAB_URL, proxies=_via(upstream)).headers["Last-Modified"]
    earlier = format_datetime(
        parsedate_to_datetime(last_modified) - timedelta(hours=1), usegmt=True
    )

    unchanged = client.get(
        CAB_URL, proxies=_via(upstream), headers={"If-Modified-Since": last_modified}
    )
    changed = client.get(CAB_URL, proxies=_via(upstream), headers={"If-Modified-Since": earlier})

    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert (changed.status_code, changed.content) == (200, CAB)


def test_etag_changes_when_the_file_is_rewritten(
    upstream: UpstreamServer, client: requests.Session, cab_file: Path
) -> None:
    old_etag = client.head(CAB_URL, proxies=_via(upstream)).headers["ETag"]
    republished = CAB + b"republished on Patch Tuesday"
    cab_file.write_bytes(republished)

    response = client.get(CAB_URL, proxies=_via(upstream), headers={"If-None-Match": old_etag})

    assert response.status_code == 200
    assert response.content == republished
    assert response.headers["ETag"] != old_etag


# --- ranges ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("range_header", "first", "last"),
    [
        ("bytes=2-5", 2, 5),
        ("bytes=9990-", 9990, 9999),
        ("bytes=-3", 9997, 9999),
        ("bytes=5000-999999", 5000, 9999),
    ],
)
def test_range_answers_206(
    upstream: UpstreamServer, client: requests.Session, range_header: str, first: int, last: int
) -> None:
    response = client.get(CAB_URL, proxies=_via(upstream), headers={"Range": range_header})

    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{len(CAB)}"
    assert response.content == CAB[first : last + 1]


@pytest.mark.parametrize("range_header", ["bytes=10000-", "bytes=20000-20010", "bytes=-0"])
def test_unsatisfiable_range_answers_416(
    upstream: UpstreamServer, client: requests.Session, range_header: str
) -> None:
    response = client.get(CAB_URL, proxies=_via(upstream), headers={"Range": range_header})

    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(CAB)}"


def test_if_range_resumes_only_the_same_file(
    upstream: UpstreamServer, client: requests.Session
) -> None:
    head = client.head(CAB_URL, proxies=_via(upstream))
    etag, last_modified = head.headers["ETag"], head.headers["Last-Modified"]

    def get(if_range: str) -> requests.Response:
        return client.get(
            CAB_URL, proxies=_via(upstream), headers={"Range": "bytes=100-", "If-Range": if_range}
        )

    for validator in (etag, last_modified):
        resumed = get(validator)
        assert (resumed.status_code, resumed.content) == (206, CAB[100:])
    for stale in ('"stale"', f"W/{etag}", "Mon, 01 Jan 2024 00:00:00 GMT"):
        restarted = get(stale)
        assert (restarted.status_code, restarted.content) == (200, CAB)


# --- faults --------------------------------------------------------------------------


def test_truncate_sends_less_than_advertised(upstream: UpstreamServer, state_dir: Path) -> None:
    set_fault(state_dir, CAB_URL, "truncate")
    # http.client hands over every byte that arrived before the connection
    # closed, where a higher-level client may drop its last buffer.
    connection = HTTPConnection(*upstream.address, timeout=10)
    try:
        connection.request("GET", CAB_PATH)
        response = connection.getresponse()
        with pytest.raises(IncompleteRead) as broken:
            response.read()
    finally:
        connection.close()
    received = broken.value.partial

    assert response.headers["Content-Length"] == str(len(CAB))
    assert 0 < len(received) < len(CAB)
    assert received == CAB[: len(received)]
    [entry] = _log(upstream)
    assert (entry["fault"], entry["bytes"]) == ("truncate", len(received))


def test_corrupt_sends_full_length_with_other_bytes(
    upstream: UpstreamServer, client: requests.Session, state_dir: Path
) -> None:
    set_fault(state_dir, PAYLOAD_PATH, "corrupt")

    response = client.get(PAYLOAD_URL, proxies=_via(upstream))

    assert response.status_code == 200
    assert len(response.content) == len(PAYLOAD)
    assert hashlib.sha1(response.content).digest() != hashlib.sha1(PAYLOAD).digest()


@pytest.mark.parametrize("status", [404, 500, 503])
def test_status_fault_answers_that_status(
    upstream: UpstreamServer, client: requests.Session, state_dir: Path, status: int
) -> None:
    set_fault(state_dir, CAB_PATH, "status", status=status)

    response = client.get(CAB_URL, proxies=_via(upstream))

    assert response.status_code == status
    assert 0 < len(response.content) < 100


def test_reset_closes_without_answer(
    upstream: UpstreamServer, client: requests.Session, state_dir: Path
) -> None:
    set_fault(state_dir, CAB_PATH, "reset")

    with pytest.raises(requests.exceptions.ConnectionError):
        client.get(CAB_URL, proxies=_via(upstream))

    [entry] = _log(upstream)
    assert (entry["status"], entry["bytes"], entry["fault"]) == (None, 0, "reset")


def test_slow_delay_holds_back_the_body(
    upstream: UpstreamServer, client: requests.Session, state_dir: Path
) -> None:
    set_fault(state_dir, CAB_PATH, "slow", delay=5)

    response = client.get(CAB_URL, proxies=_via(upstream), stream=True, timeout=(5, 0.2))

    assert response.status_code == 200  # the headers are not delayed
    assert _read_until_broken(response) == b""


def test_slow_rate_trickles_the_body(
    upstream: UpstreamServer, client: requests.Session, state_dir: Path
) -> None:
    set_fault(state_dir, PAYLOAD_PATH, "slow", rate=2)  # one byte every half second

    response = client.get(PAYLOAD_URL, proxies=_via(upstream), stream=True, timeout=(5, 0.2))

    assert len(_read_until_broken(response)) < len(PAYLOAD)


def test_slow_rate_delivers_the_whole_body(
    upstream: UpstreamServer, client: requests.Session, state_dir: Path
) -> None:
    set_fault(state_dir, CAB_PATH, "slow", rate=50_000)

    response = client.get(CAB_URL, proxies=_via(upstream), headers={"Range": "bytes=0-999"})

    assert response.content == CAB[:1000]
    [entry] = _log(upstream)
    assert (entry["fault"], entry["bytes"]) == ("slow", 1000)


def test_count_expires_and_normal_service_resumes(
    upstream: UpstreamServer, client: requests.Session, state_dir: Path
) -> None:
    set_fault(state_dir, CAB_URL, "status", status=503, count=2)

    first = client.get(CAB_URL, proxies=_via(upstream))
    remaining = read_faults(state_dir)
    second = client.get(CAB_URL, proxies=_via(upstream))
    after = read_faults(state_dir)
    third = client.get(CAB_URL, proxies=_via(upstream))

    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 200]
    assert remaining["download.windowsupdate.com" + CAB_PATH].count == 1
    assert after == {}
    assert third.content == CAB


def test_count_holds_under_concurrent_requests(upstream: UpstreamServer, state_dir: Path) -> None:
    set_fault(state_dir, CAB_PATH, "status", status=503, count=5)

    def fetch(_: int) -> int:
        with requests.Session() as session:
            session.trust_env = False
            return session.get(CAB_URL, proxies=_via(upstream)).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(fetch, range(20)))

    assert sorted(statuses) == [200] * 15 + [503] * 5
    assert read_faults(state_dir) == {}


def test_head_does_not_use_up_a_body_fault(
    upstream: UpstreamServer, client: requests.Session, state_dir: Path
) -> None:
    set_fault(state_dir, CAB_PATH, "truncate", count=1)

    head = client.head(CAB_URL, proxies=_via(upstream))
    truncated = _read_until_broken(client.get(CAB_URL, proxies=_via(upstream), stream=True))
    whole = client.get(CAB_URL, proxies=_via(upstream))

    assert head.status_code == 200
    assert len(truncated) < len(CAB)
    assert whole.content == CAB


def test_faults_file_changes_reach_the_running_server(
    upstream: UpstreamServer, client: requests.Session, state_dir: Path
) -> None:
    before = client.get(CAB_URL, proxies=_via(upstream))
    set_fault(state_dir, CAB_PATH, "status", status=500)
    during = client.get(CAB_URL, proxies=_via(upstream))
    set_fault(state_dir, CAB_PATH, "status", status=404)
    replaced = client.get(CAB_URL, proxies=_via(upstream))
    clear_faults(state_dir)
    after = client.get(CAB_URL, proxies=_via(upstream))

    assert [r.status_code for r in (before, during, replaced, after)] == [200, 500, 404, 200]


def test_host_qualified_fault_spares_other_hosts(
    upstream: UpstreamServer, client: requests.Session, state_dir: Path
) -> None:
    set_fault(state_dir, f"{MIRROR_HOST}{CAB_PATH}", "status", status=500)

    mirror = client.get(f"http://{MIRROR_HOST}{CAB_PATH}", proxies=_via(upstream))
    main = client.get(CAB_URL, proxies=_via(upstream))

    assert (mirror.status_code, main.status_code) == (500, 200)


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("explode", {}),
        ("status", {}),
        ("truncate", {"status": 500}),
        ("status", {"status": 200}),
        ("slow", {}),
        ("corrupt", {"delay": 1.0}),
        ("reset", {"count": 0}),
    ],
)
def test_invalid_fault_is_rejected(state_dir: Path, kind: str, options: dict) -> None:
    with pytest.raises(ValueError):
        set_fault(state_dir, CAB_PATH, kind, **options)

    assert read_faults(state_dir) == {}


# --- access log --------------------------------------------------------------------


def test_access_log_records_exactly_what_was_sent(
    upstream: UpstreamServer, client: requests.Session, state_dir: Path
) -> None:
    full = client.get(upstream.url + CAB_PATH)
    ranged = client.get(CAB_URL, proxies=_via(upstream), headers={"Range": "bytes=100-199"})
    head = client.head(PAYLOAD_URL, proxies=_via(upstream))
    missing = client.get("http://download.windowsupdate.com/c/absent.cab", proxies=_via(upstream))

    entries = _log(upstream)

    assert [(e["method"], e["status"], e["proxied"]) for e in entries] == [
        ("GET", 200, False),
        ("GET", 206, True),
        ("HEAD", 200, True),
        ("GET", 404, True),
    ]
    assert [e["bytes"] for e in entries] == [len(full.content), 100, 0, len(missing.content)]
    assert [e["url"] for e in entries] == [
        CAB_URL,
        CAB_URL,
        PAYLOAD_URL,
        "http://download.windowsupdate.com/c/absent.cab",
    ]
    assert [e["range"] for e in entries] == [None, "bytes=100-199", None, None]
    assert {e["host"] for e in entries} == {"download.windowsupdate.com"}
    assert all(e["fault"] is None and e["client"] == "127.0.0.1" for e in entries)
    assert datetime.fromisoformat(entries[0]["time"]).utcoffset() == timedelta(0)
    assert bytes_sent(entries, CAB_PATH) == len(CAB) + len(ranged.content)
    assert bytes_sent(entries, PAYLOAD_PATH) == len(head.content) == 0
    assert bytes_sent(entries) == len(CAB) + 100 + len(missing.content)


# --- lifecycle -----------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.com"])
def test_non_loopback_address_is_refused(docroot: Path, state_dir: Path, host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        UpstreamServer(docroot, state_dir, host=host)


def test_stop_closes_idle_keep_alive_connections(docroot: Path, state_dir: Path) -> None:
    server = UpstreamServer(docroot, state_dir)
    server.start()
    address, port = server.address
    connection = HTTPConnection(address, port, timeout=10)
    try:
        connection.request("GET", CAB_PATH)
        assert connection.getresponse().read() == CAB
        server.stop()  # must not wait for the idle connection to time out

        with pytest.raises(ConnectionRefusedError):
            HTTPConnection(address, port, timeout=10).request("GET", CAB_PATH)
    finally:
        connection.close()
        server.stop()


def test_process_serves_until_sigterm(docroot: Path, state_dir: Path, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wuacache_lab.upstream",
            "--docroot",
            str(docroot),
            "--state-dir",
            str(state_dir),
            "--ready-file",
            str(ready),
        ],
        stderr=subprocess.PIPE,
    )
    try:
        while not ready.exists():
            assert process.poll() is None, "the upstream process exited before it was ready"
            time.sleep(0.05)
        url = "http://" + ready.read_text().strip()
        session = requests.Session()
        session.trust_env = False
        with session:
            served = session.get(url + CAB_PATH)
            set_fault(state_dir, CAB_PATH, "status", status=500)
            faulted = session.get(url + CAB_PATH)

        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert served.content == CAB
    assert faulted.status_code == 500
    assert process.returncode == 0
    assert f'"GET {CAB_PATH} HTTP/1.1" 200 {len(CAB)}'.encode() in stderr
    assert [entry["status"] for entry in read_access_log(state_dir)] == [200, 500]


def test_process_refuses_non_loopback_listen(docroot: Path, state_dir: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "wuacache_lab.upstream",
            "--docroot",
            str(docroot),
            "--state-dir",
            str(state_dir),
            "--listen",
            "0.0.0.0:0",
        ],
        capture_output=True,
        timeout=30,
    )

    assert result.returncode == 2
    assert b"loopback" in result.stderr
