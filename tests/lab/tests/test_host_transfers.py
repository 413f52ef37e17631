"""An emulated host downloading from the fake Microsoft upstream through its
proxy setting, with the upstream's access log as the witness."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from wuacache_lab.pki import ensure_lab_ca
from wuacache_lab.upstream import UpstreamServer, read_access_log, set_fault
from wuacache_lab.windows.downloads import DownloadError, download
from wuacache_lab.windows.host import WindowsHost

PATH = "/c/msdownload/update/software/secu/2024/01/windows10.0-kb5034122-x64_{sha1}.cab"
DEST = r"C:\ProgramData\wuacache\files\update.cab"


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
    return WindowsHost("WIN10-01", tmp_path / "hosts", profile="win10-22h2", trusted_ca=ca.ca_cert, proxy=upstream.url)


def host_file(host: WindowsHost) -> bytes:
    return b"".join(host.disk.read(DEST))


def test_the_host_fetches_microsofts_url_through_its_proxy(host: WindowsHost, upstream: UpstreamServer, payload, tmp_path: Path) -> None:
    _, url, data = payload
    result = download(host, url, DEST, expected_sha1=hashlib.sha1(data).hexdigest())
    assert (result.status, result.transferred) == ("downloaded", len(data))
    assert host_file(host) == data

    upstream.wait_idle()
    [entry] = read_access_log(tmp_path / "upstream")
    assert (entry["proxied"], entry["url"], entry["status"], entry["bytes"]) == (True, url, 200, len(data))


def test_an_unchanged_file_is_not_transferred_again(host: WindowsHost, upstream: UpstreamServer, payload, tmp_path: Path) -> None:
    _, url, data = payload
    download(host, url, DEST)
    again = download(host, url, DEST)
    assert (again.status, again.transferred) == ("not_modified", 0)

    upstream.wait_idle()
    entries = read_access_log(tmp_path / "upstream")
    assert [(entry["status"], entry["bytes"]) for entry in entries] == [(200, len(data)), (304, 0)]


def test_a_broken_transfer_resumes_where_it_stopped(host: WindowsHost, upstream: UpstreamServer, payload, tmp_path: Path) -> None:
    _, url, data = payload
    set_fault(tmp_path / "upstream", url, "truncate", count=1)
    with pytest.raises(DownloadError):
        download(host, url, DEST)
    assert not host.disk.exists(DEST)

    resumed = download(host, url, DEST, expected_sha1=hashlib.sha1(data).hexdigest())
    assert resumed.status == "resumed"
    assert host_file(host) == data

    upstream.wait_idle()
    first, second = read_access_log(tmp_path / "upstream")
    assert first["fault"] == "truncate" and 0 < first["bytes"] < len(data)
    # The second request asks only for what the first did not bring.
    assert (second["status"], second["range"]) == (206, f"bytes={first['bytes']}-")
    assert resumed.transferred == second["bytes"] == len(data) - first["bytes"]


def test_corrupted_bytes_are_not_kept(host: WindowsHost, upstream: UpstreamServer, payload, tmp_path: Path) -> None:
    _, url, data = payload
    set_fault(tmp_path / "upstream", url, "corrupt", count=1)
    with pytest.raises(DownloadError, match="expected SHA-1"):
        download(host, url, DEST, expected_sha1=hashlib.sha1(data).hexdigest())
    assert not host.disk.exists(DEST)
    assert download(host, url, DEST, expected_sha1=hashlib.sha1(data).hexdigest()).status == "downloaded"
    assert host_file(host) == data
