"""An emulated host downloading from the fake Microsoft upstream through its
proxy setting, with the upstream's access log as the witness."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from wuacache_lab.pki import ensure_lab_ca
from wuacache_lab.upstream import UpstreamServer, read_access_log, set_fault
from wuacache_lab.windows.downloads import DownloadError, file_hash, get
from wuacache_lab.windows.host import WindowsHost

PATH = "/c/msdownload/update/software/secu/2024/01/windows10.0-kb5034122-x64_{sha1}.cab"
FOLDER = r"C:\ProgramData\wuacache\files"
PART = rf"{FOLDER}\update.cab.part"


@pytest.fixture
def payload(tmp_path: Path) -> tuple[Path, str, bytes]:
    """A payload file at a download.windowsupdate.com path of a docroot; returns (docroot, url, bytes)."""
    data = bytes(range(256)) * 400  # 100 KiB: several chunks, worth truncating
    path = PATH.format(sha1=hashlib.sha1(data).hexdigest())
    docroot = tmp_path / "docroot"
    file = docroot / "download.windowsupdate.com" / path.lstrip("/")
    file.parent.mkdir(parents=True)
    file.write_bytes(data)
    return docroot, f"http://download.windowsupdate.com{path}", data


@pytest.fixture
def upstream(tmp_path: Path, payload: tuple[Path, str, bytes]) -> Iterator[UpstreamServer]:
    with UpstreamServer(payload[0], tmp_path / "upstream") as server:
        yield server


@pytest.fixture
def host(tmp_path: Path, upstream: UpstreamServer) -> WindowsHost:
    ca = ensure_lab_ca(tmp_path / "ca")
    host = WindowsHost("WIN10-01", tmp_path / "hosts", profile="win10-22h2", trusted_ca=ca.ca_cert, proxy=upstream.url)
    host.disk.make_dirs(FOLDER)
    return host


def host_file(host: WindowsHost) -> bytes:
    return b"".join(host.disk.read(PART))


def test_the_host_fetches_microsofts_url_through_its_proxy(host: WindowsHost, upstream: UpstreamServer, payload, tmp_path: Path) -> None:
    _, url, data = payload
    transfer = get(host, url, PART)
    assert (transfer.resumed, transfer.transferred) == (False, len(data))
    assert host_file(host) == data

    upstream.wait_idle()
    [entry] = read_access_log(tmp_path / "upstream")
    assert (entry["proxied"], entry["url"], entry["status"], entry["bytes"]) == (True, url, 200, len(data))


def test_a_broken_transfer_resumes_where_it_stopped(host: WindowsHost, upstream: UpstreamServer, payload, tmp_path: Path) -> None:
    _, url, data = payload
    set_fault(tmp_path / "upstream", url, "truncate", count=1)
    with pytest.raises(DownloadError):
        get(host, url, PART)
    # What came before the cut stays, for the controller to resume from its length.
    kept = host.disk.size(PART)
    assert 0 < kept < len(data)

    resumed = get(host, url, PART, offset=kept)
    assert resumed.resumed is True
    assert host_file(host) == data

    upstream.wait_idle()
    first, second = read_access_log(tmp_path / "upstream")
    assert first["fault"] == "truncate" and first["bytes"] == kept
    # The second request asks only for what the first did not bring.
    assert (second["status"], second["range"]) == (206, f"bytes={kept}-")
    assert resumed.transferred == second["bytes"] == len(data) - kept


def test_corrupted_bytes_arrive_with_another_digest(host: WindowsHost, upstream: UpstreamServer, payload, tmp_path: Path) -> None:
    _, url, data = payload
    set_fault(tmp_path / "upstream", url, "corrupt", count=1)
    get(host, url, PART)
    # Only the digest tells: the bridge's Save-HttpFile checks it before it keeps the file.
    assert file_hash(host, PART, "sha1") != hashlib.sha1(data).hexdigest()
    get(host, url, PART)
    assert file_hash(host, PART, "sha1") == hashlib.sha1(data).hexdigest()
