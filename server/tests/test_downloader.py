"""The downloader against the lab's fake Microsoft upstream, used as the proxy
for Microsoft's real URLs, with its access log as the witness."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from wuacache_lab.upstream import UpstreamServer, read_access_log, set_fault

from wuacache_server.fetch.allowlist import UrlNotAllowed
from wuacache_server.fetch.downloader import (
    PARTIAL_DIR,
    DigestMismatch,
    DownloadCanceled,
    DownloadInProgress,
    DownloadResult,
    HttpStatusError,
    SizeMismatch,
    TransferError,
    download,
    new_session,
)

ALLOWLIST = ("download.windowsupdate.com", "go.microsoft.com")
MS = "http://download.windowsupdate.com"
SECU_PATH = "/c/msdownload/update/software/secu/2024/01"
CATALOG_PATH = "/microsoftupdate/v6/wsusscan/wsusscn2.cab"
FWLINK = "http://go.microsoft.com/fwlink/?LinkID=74689"


@dataclass(frozen=True)
class Payload:
    url: str
    data: bytes

    @property
    def path(self) -> str:
        return self.url.removeprefix(MS)

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def sha1_b64(self) -> str:
        return base64.b64encode(hashlib.sha1(self.data).digest()).decode()

    @property
    def sha256_b64(self) -> str:
        return base64.b64encode(hashlib.sha256(self.data).digest()).decode()


def make_payloads(docroot: Path) -> dict[str, Payload]:
    rng = random.Random(3)
    kb = rng.randbytes(300 * 1024)  # several chunks, worth truncating
    stream = rng.randbytes(100 * 1024)
    catalog = rng.randbytes(20 * 1024)
    paths = {
        "kb": f"{SECU_PATH}/windows10.0-kb5034122-x64_{hashlib.sha1(kb).hexdigest()}.cab",
        # Newer URLs carry no digest: only the catalog's says what the bytes must be.
        "stream": "/d/filestreamingservice/files/4f5b7c1e-8a3d-4a5e-9c2b-0d1e2f3a4b5c",
        "catalog": CATALOG_PATH,
    }
    payloads = {}
    for name, data in {"kb": kb, "stream": stream, "catalog": catalog}.items():
        file = docroot / "download.windowsupdate.com" / paths[name].lstrip("/")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data)
        payloads[name] = Payload(MS + paths[name], data)
    return payloads


@pytest.fixture
def payloads(tmp_path: Path) -> dict[str, Payload]:
    return make_payloads(tmp_path / "docroot")


@pytest.fixture
def upstream(tmp_path: Path, payloads: dict[str, Payload]) -> Iterator[UpstreamServer]:
    with UpstreamServer(tmp_path / "docroot", tmp_path / "upstream") as server:
        yield server


@pytest.fixture
def kb(payloads: dict[str, Payload]) -> Payload:
    return payloads["kb"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return tmp_path / "repo"


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with new_session() as session:
        yield session


def fetch(
    payload: Payload, repo: Path, upstream: UpstreamServer, session: requests.Session, **options: Any
) -> DownloadResult:
    arguments: dict[str, Any] = {
        "dest_dir": repo,
        "file_name": payload.file_name,
        "sha1_b64": payload.sha1_b64,
        "sha256_b64": payload.sha256_b64,
        "size": len(payload.data),
        "allowlist": ALLOWLIST,
        "session": session,
        "proxy": upstream.url,
        "retries": 2,
        "backoff": 0.01,
    }
    arguments.update(options)
    return download(arguments.pop("url", payload.url), **arguments)


def access_log(upstream: UpstreamServer) -> list[dict[str, Any]]:
    upstream.wait_idle()
    return read_access_log(upstream.state_dir)


def partial_files(repo: Path) -> list[str]:
    return sorted(path.name for path in (repo / PARTIAL_DIR).iterdir())


@pytest.mark.parametrize("name", ["kb", "stream"])
def test_a_file_is_fetched_once_verified_and_published_under_its_name(
    name: str, payloads: dict[str, Payload], repo: Path, upstream: UpstreamServer, session: requests.Session
) -> None:
    payload = payloads[name]
    result = fetch(payload, repo, upstream, session)

    assert result == DownloadResult(repo / payload.file_name, len(payload.data), len(payload.data), 1, False)
    assert (repo / payload.file_name).read_bytes() == payload.data
    assert partial_files(repo) == []
    [entry] = access_log(upstream)
    assert (entry["method"], entry["url"], entry["proxied"]) == ("GET", payload.url, True)
    assert (entry["status"], entry["bytes"], entry["range"]) == (200, len(payload.data), None)


def test_progress_is_reported_up_to_the_whole_file(
    kb: Payload, repo: Path, upstream: UpstreamServer, session: requests.Session
) -> None:
    reports: list[tuple[int, int | None]] = []
    fetch(kb, repo, upstream, session, progress=lambda done, total: reports.append((done, total)))
    assert reports[-1] == (len(kb.data), len(kb.data))
    assert [done for done, _ in reports] == sorted(done for done, _ in reports)


def test_a_truncated_transfer_resumes_where_it_broke(
    kb: Payload, repo: Path, upstream: UpstreamServer, session: requests.Session
) -> None:
    set_fault(upstream.state_dir, kb.url, "truncate", count=1)
    result = fetch(kb, repo, upstream, session)

    assert (result.attempts, result.resumed, result.bytes_transferred) == (2, True, len(kb.data))
    assert (repo / kb.file_name).read_bytes() == kb.data
    first, second = access_log(upstream)
    assert first["fault"] == "truncate" and 0 < first["bytes"] < len(kb.data)
    assert (second["status"], second["range"]) == (206, f"bytes={first['bytes']}-")
    # Nothing was fetched twice: the two transfers add up to the file.
    assert first["bytes"] + second["bytes"] == len(kb.data)


def test_a_changed_upstream_file_is_fetched_again_from_the_start(
    kb: Payload, repo: Path, upstream: UpstreamServer, session: requests.Session, tmp_path: Path
) -> None:
    set_fault(upstream.state_dir, kb.url, "truncate", count=1)
    with pytest.raises(TransferError):
        fetch(kb, repo, upstream, session, retries=0)
    served = tmp_path / "docroot" / "download.windowsupdate.com" / kb.path.lstrip("/")
    stat = served.stat()
    os.utime(served, ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**9))  # new validators, same bytes

    result = fetch(kb, repo, upstream, session)
    assert (result.resumed, result.bytes_transferred) == (False, len(kb.data))
    assert (repo / kb.file_name).read_bytes() == kb.data
    first, second = access_log(upstream)
    # The range was asked If-Range the old validator, so the whole new file came.
    assert (second["range"], second["status"]) == (f"bytes={first['bytes']}-", 200)
    assert second["bytes"] == len(kb.data)


def test_corrupted_bytes_are_fetched_again_and_only_correct_ones_published(
    kb: Payload, repo: Path, upstream: UpstreamServer, session: requests.Session
) -> None:
    set_fault(upstream.state_dir, kb.url, "corrupt", count=1)
    result = fetch(kb, repo, upstream, session)

    assert (result.attempts, result.bytes_transferred) == (2, 2 * len(kb.data))
    assert (repo / kb.file_name).read_bytes() == kb.data
    entries = access_log(upstream)
    assert [(entry["fault"], entry["range"], entry["bytes"]) for entry in entries] == [
        ("corrupt", None, len(kb.data)),
        (None, None, len(kb.data)),  # the corrupt bytes were not resumed from
    ]


def test_permanently_corrupted_bytes_are_never_published(
    kb: Payload, repo: Path, upstream: UpstreamServer, session: requests.Session
) -> None:
    set_fault(upstream.state_dir, kb.url, "corrupt")
    with pytest.raises(DigestMismatch) as raised:
        fetch(kb, repo, upstream, session, retries=2)

    assert (raised.value.algorithm, raised.value.expected) == ("SHA-1", kb.sha1_b64)
    assert not (repo / kb.file_name).exists()
    assert partial_files(repo) == []
    assert len(access_log(upstream)) == 3


def test_a_wrong_sha256_is_a_mismatch_even_when_sha1_matches(
    kb: Payload, repo: Path, upstream: UpstreamServer, session: requests.Session
) -> None:
    wrong = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
    with pytest.raises(DigestMismatch) as raised:
        fetch(kb, repo, upstream, session, sha256_b64=wrong, retries=0)
    assert (raised.value.algorithm, raised.value.actual) == ("SHA-256", kb.sha256_b64)
    assert not (repo / kb.file_name).exists()


def test_a_file_of_another_size_is_refused_before_its_body_is_read(
    kb: Payload, repo: Path, upstream: UpstreamServer, session: requests.Session
) -> None:
    with pytest.raises(SizeMismatch):
        fetch(kb, repo, upstream, session, size=len(kb.data) - 1, retries=0)
    assert not (repo / kb.file_name).exists()
    assert partial_files(repo) == []


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_server_error_is_retried(
    status: int, kb: Payload, repo: Path, upstream: UpstreamServer, session: requests.Session
) -> None:
    set_fault(upstream.state_dir, kb.url, "status", status=status, count=1)
    result = fetch(kb, repo, upstream, session)
    assert result.attempts == 2
    assert (repo / kb.file_name).read_bytes() == kb.data
    assert [entry["status"] for entry in access_log(upstream)] == [status, 200]


@pytest.mark.parametrize("status", [404, 403])
def test_a_client_error_is_not_retried(
    status: int, kb: Payload, repo: Path, upstream: UpstreamServer, session: requests.Session
) -> None:
    set_fault(upstream.state_dir, kb.url, "status", status=status)
    with pytest.raises(HttpStatusError) as raised:
        fetch(kb, repo, upstream, session, retries=3)
    assert (raised.value.status, raised.value.retryable) == (status, False)
    assert len(access_log(upstream)) == 1
    assert partial_files(repo) == []


def test_a_slow_transfer_can_be_canceled_and_keeps_its_bytes(
    kb: Payload, repo: Path, upstream: UpstreamServer, session: requests.Session
) -> None:
    set_fault(upstream.state_dir, kb.url, "slow", rate=20_000)  # 15 s for the whole file
    cancel = threading.Event()
    received: list[int] = []

    def progress(done: int, total: int | None) -> None:
        received.append(done)
        cancel.set()

    with pytest.raises(DownloadCanceled):
        fetch(kb, repo, upstream, session, progress=progress, cancel=cancel)

    assert not (repo / kb.file_name).exists()
    part = repo / PARTIAL_DIR / f"{kb.file_name}.part"
    assert part.read_bytes() == kb.data[: part.stat().st_size]
    assert 0 < received[-1] == part.stat().st_size < len(kb.data)
    [entry] = access_log(upstream)
    assert entry["bytes"] < len(kb.data)


def test_a_new_download_resumes_the_partial_file_of_an_interrupted_one(
    kb: Payload, repo: Path, upstream: UpstreamServer, tmp_path: Path
) -> None:
    """As after a restart of the server: another call, another session."""
    set_fault(upstream.state_dir, kb.url, "slow", rate=50_000, count=1)
    cancel = threading.Event()
    with new_session() as first_session, pytest.raises(DownloadCanceled):
        fetch(kb, repo, upstream, first_session, cancel=cancel, progress=lambda done, total: cancel.set())
    kept = (repo / PARTIAL_DIR / f"{kb.file_name}.part").stat().st_size

    with new_session() as second_session:
        result = fetch(kb, repo, upstream, second_session)

    assert (result.resumed, result.bytes_transferred) == (True, len(kb.data) - kept)
    assert (repo / kb.file_name).read_bytes() == kb.data
    # Entries are logged as answers end, and the canceled one may end last.
    [first] = [entry for entry in access_log(upstream) if entry["range"] is None]
    [second] = [entry for entry in access_log(upstream) if entry["range"] is not None]
    # The upstream may have sent bytes the canceled download never read.
    assert first["bytes"] >= kept
    assert (second["status"], second["range"], second["bytes"]) == (206, f"bytes={kept}-", len(kb.data) - kept)
    assert kept + second["bytes"] == len(kb.data)


def test_a_damaged_partial_file_is_discarded_and_the_file_fetched_whole(
    kb: Payload, repo: Path, upstream: UpstreamServer, session: requests.Session
) -> None:
    set_fault(upstream.state_dir, kb.url, "truncate", count=1)
    with pytest.raises(TransferError):
        fetch(kb, repo, upstream, session, retries=0)
    with open(repo / PARTIAL_DIR / f"{kb.file_name}.part", "r+b") as part:
        part.write(b"\0" * 16)  # as a disk error would leave it

    result = fetch(kb, repo, upstream, session)
    assert (repo / kb.file_name).read_bytes() == kb.data
    assert (result.attempts, result.resumed) == (2, True)
    truncated, resumed, whole = access_log(upstream)
    assert (resumed["status"], resumed["range"]) == (206, f"bytes={truncated['bytes']}-")
    assert (whole["status"], whole["range"], whole["bytes"]) == (200, None, len(kb.data))


def test_a_complete_partial_file_is_published_without_a_request(
    kb: Payload, repo: Path, upstream: UpstreamServer, session: requests.Session
) -> None:
    """A previous run stopped between receiving the last byte and publishing."""
    (repo / PARTIAL_DIR).mkdir(parents=True)
    (repo / PARTIAL_DIR / f"{kb.file_name}.part").write_bytes(kb.data)
    (repo / PARTIAL_DIR / f"{kb.file_name}.part.json").write_text('{"if_range": "\\"1-2\\""}')

    result = fetch(kb, repo, upstream, session)
    assert (result.bytes_transferred, result.resumed) == (0, True)
    assert (repo / kb.file_name).read_bytes() == kb.data
    assert partial_files(repo) == []
    assert access_log(upstream) == []


def test_a_redirect_to_an_allowlisted_host_is_followed(
    payloads: dict[str, Payload], repo: Path, upstream: UpstreamServer, session: requests.Session
) -> None:
    catalog = payloads["catalog"]
    result = fetch(catalog, repo, upstream, session, url=FWLINK)
    assert (repo / "wsusscn2.cab").read_bytes() == catalog.data
    assert result.size == len(catalog.data)
    assert [(entry["url"], entry["status"]) for entry in access_log(upstream)] == [
        (FWLINK, 302),
        (catalog.url, 200),
    ]


def test_a_redirect_to_another_host_is_refused_without_requesting_it(
    payloads: dict[str, Payload], repo: Path, upstream: UpstreamServer, session: requests.Session
) -> None:
    catalog = payloads["catalog"]
    with pytest.raises(UrlNotAllowed) as raised:
        fetch(catalog, repo, upstream, session, url=FWLINK, allowlist=["go.microsoft.com"])
    assert raised.value.url == catalog.url
    assert [entry["url"] for entry in access_log(upstream)] == [FWLINK]
    assert not (repo / "wsusscn2.cab").exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example/c/msdownload/update/software/secu/2024/01/x.cab",
        "http://127.0.0.1/c/msdownload/update/software/secu/2024/01/x.cab",  # the upstream itself
    ],
)
def test_a_url_off_the_allowlist_is_never_requested(
    url: str, kb: Payload, repo: Path, upstream: UpstreamServer, session: requests.Session
) -> None:
    with pytest.raises(UrlNotAllowed):
        fetch(kb, repo, upstream, session, url=url)
    assert access_log(upstream) == []
    assert not repo.exists()


@pytest.mark.parametrize("file_name", ["../wsusscn2.cab", "a/b.cab", ".partial", "..", "", "x" * 201, "a b.cab"])
def test_an_unsafe_file_name_is_refused_before_any_request(
    file_name: str, kb: Payload, repo: Path, upstream: UpstreamServer, session: requests.Session
) -> None:
    with pytest.raises(ValueError, match="file name"):
        fetch(kb, repo, upstream, session, file_name=file_name)
    assert access_log(upstream) == []
    assert not repo.exists()


def test_a_malformed_digest_is_refused_before_any_request(
    kb: Payload, repo: Path, upstream: UpstreamServer, session: requests.Session
) -> None:
    with pytest.raises(ValueError, match="SHA-1 digest"):
        fetch(kb, repo, upstream, session, sha1_b64=hashlib.sha1(kb.data).hexdigest())
    assert access_log(upstream) == []


def test_a_file_another_process_is_downloading_is_left_to_it(
    kb: Payload, repo: Path, upstream: UpstreamServer, session: requests.Session
) -> None:
    (repo / PARTIAL_DIR).mkdir(parents=True)
    with open(repo / PARTIAL_DIR / f"{kb.file_name}.part", "ab") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        with pytest.raises(DownloadInProgress):
            fetch(kb, repo, upstream, session)
    assert access_log(upstream) == []
    assert not (repo / kb.file_name).exists()
