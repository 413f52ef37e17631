"""Cab sync against the lab's fake Microsoft upstream, over real HTTP, with a
real signed catalog, cabextract and osslsigncode."""

from __future__ import annotations

import fcntl
import os
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from wuacache_lab.catalog import CatalogSummary, generate_catalog
from wuacache_lab.pki import LabCA, ensure_lab_ca
from wuacache_lab.upstream import UpstreamServer, read_access_log, set_fault
from wuacache_server.catalog.cabsync import CabSyncResult, sync_cab

CAB_URL = "http://download.windowsupdate.com/microsoftupdate/v6/wsusscan/wsusscn2.cab"
CAB_PATH = "/microsoftupdate/v6/wsusscan/wsusscn2.cab"
FWLINK_URL = "http://go.microsoft.com/fwlink/p/?LinkID=74689"
ALLOWLIST = ("*.windowsupdate.com", "download.microsoft.com", "*.update.microsoft.com", "go.microsoft.com")
UPDATES = 62


@pytest.fixture(scope="module")
def lab_ca(tmp_path_factory: pytest.TempPathFactory) -> LabCA:
    return ensure_lab_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def foreign_ca(tmp_path_factory: pytest.TempPathFactory) -> LabCA:
    return ensure_lab_ca(tmp_path_factory.mktemp("foreign-ca"), name="foreign")


@dataclass
class Lab:
    """A catalog published by the fake upstream, and a repository to sync it into."""

    catalog_dir: Path
    upstream: UpstreamServer
    ca: LabCA
    repository: Path

    @property
    def cab(self) -> Path:
        return self.repository / "wua" / "wsusscn2.cab"

    @property
    def sidecar(self) -> Path:
        return self.repository / "wua" / "wsusscn2.cab.sha256"

    @property
    def upstream_cab(self) -> Path:
        return self.catalog_dir / "files" / "download.windowsupdate.com" / CAB_PATH.lstrip("/")

    def publish(self, *, generation: int, ca: LabCA | None) -> CatalogSummary:
        """Make upstream serve another generation of the catalog."""
        return generate_catalog(self.catalog_dir, updates=UPDATES, generation=generation, ca=ca)

    def sync(self, *, url: str = CAB_URL, allowlist: Sequence[str] = ALLOWLIST, **options: Any) -> CabSyncResult:
        return sync_cab(
            url=url,
            repository_dir=self.repository,
            ca_bundle=self.ca.ca_cert,
            allowlist=allowlist,
            proxy=self.upstream.url,
            **options,
        )

    def requests(self) -> list[dict[str, Any]]:
        self.upstream.wait_idle()
        return read_access_log(self.upstream.state_dir)

    def leftovers(self) -> list[str]:
        """Files of the wua folder other than the lock, the cab and its sidecar."""
        kept = {".cabsync.lock", self.cab.name, self.sidecar.name}
        return sorted(path.name for path in self.cab.parent.iterdir() if path.name not in kept)


@pytest.fixture
def lab(tmp_path: Path, lab_ca: LabCA) -> Iterator[Lab]:
    catalog_dir = tmp_path / "catalog"
    generate_catalog(catalog_dir, updates=UPDATES, ca=lab_ca)
    with UpstreamServer(catalog_dir / "files", tmp_path / "upstream") as upstream:
        yield Lab(catalog_dir=catalog_dir, upstream=upstream, ca=lab_ca, repository=tmp_path / "repository")


def _published(summary: CatalogSummary) -> float:
    return datetime.fromisoformat(summary.published).timestamp()


def test_first_sync_publishes_the_verified_cab_with_its_sidecar(lab: Lab) -> None:
    upstream_bytes = lab.upstream_cab.read_bytes()
    calls: list[tuple[int, int | None]] = []

    result = lab.sync(progress=lambda done, total: calls.append((done, total)))

    assert (result.status, result.reason, result.error) == ("finished", "missing", None)
    assert lab.cab.read_bytes() == upstream_bytes
    assert result.path == lab.cab
    assert result.size == result.bytes_downloaded == len(upstream_bytes)
    assert lab.sidecar.read_text() == f"{result.sha256}  wsusscn2.cab\n"
    subprocess.run(["sha256sum", "--check", "--quiet", lab.sidecar.name], cwd=lab.cab.parent, check=True)
    # Served with Microsoft's date, and recorded with upstream's validators.
    assert lab.cab.stat().st_mtime == lab.upstream_cab.stat().st_mtime
    assert result.last_modified == formatdate(lab.upstream_cab.stat().st_mtime, usegmt=True)
    assert result.etag is not None
    assert calls[-1] == (len(upstream_bytes), len(upstream_bytes))
    assert lab.leftovers() == []


def test_unchanged_upstream_transfers_no_cab_body(lab: Lab) -> None:
    first = lab.sync()
    published = lab.cab.stat()

    second = lab.sync(previous=first.state)

    assert (second.status, second.reason, second.bytes_downloaded) == ("unchanged", "unchanged", 0)
    assert second.state == first.state
    last = lab.requests()[-1]
    assert (last["path"], last["status"], last["bytes"]) == (CAB_PATH, 304, 0)
    assert lab.cab.stat().st_mtime_ns == published.st_mtime_ns
    assert lab.cab.stat().st_ino == published.st_ino


def test_without_a_recorded_state_the_published_cab_date_makes_the_request_conditional(lab: Lab) -> None:
    first = lab.sync()
    lab.sidecar.unlink()  # as if a run had stopped right after publishing the cab

    second = lab.sync(previous=None)

    assert (second.status, second.reason, second.sha256) == ("unchanged", "unchanged", first.sha256)
    last = lab.requests()[-1]
    assert (last["status"], last["bytes"]) == (304, 0)
    assert lab.sidecar.read_text() == f"{first.sha256}  wsusscn2.cab\n"


def test_newer_upstream_cab_replaces_the_published_one(lab: Lab) -> None:
    first = lab.sync()
    newer = lab.publish(generation=2, ca=lab.ca)

    second = lab.sync(previous=first.state)

    assert (second.status, second.reason) == ("finished", "newer")
    assert second.sha256 == newer.cab_sha256 != first.sha256
    assert lab.cab.read_bytes() == lab.upstream_cab.read_bytes()
    assert lab.sidecar.read_text() == f"{newer.cab_sha256}  wsusscn2.cab\n"
    assert lab.cab.stat().st_mtime == _published(newer)
    assert second.last_modified is not None and first.last_modified is not None
    assert parsedate_to_datetime(second.last_modified) > parsedate_to_datetime(first.last_modified)


def test_redated_upstream_cab_with_the_same_content_is_unchanged(lab: Lab) -> None:
    first = lab.sync()
    published_mtime = lab.cab.stat().st_mtime_ns
    later = lab.upstream_cab.stat().st_mtime + 86400
    os.utime(lab.upstream_cab, (later, later))

    second = lab.sync(previous=first.state)

    assert (second.status, second.reason, second.sha256) == ("unchanged", "unchanged", first.sha256)
    assert second.bytes_downloaded == first.size
    assert lab.cab.stat().st_mtime_ns == published_mtime
    # The new validators are recorded, so the next sync asks with them.
    assert second.etag != first.etag
    assert lab.sync(previous=second.state).bytes_downloaded == 0
    assert lab.requests()[-1]["status"] == 304


def test_forced_sync_downloads_again_and_repairs_a_damaged_copy(lab: Lab) -> None:
    first = lab.sync()
    damaged = bytearray(lab.cab.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    lab.cab.write_bytes(damaged)

    forced = lab.sync(previous=first.state, force=True)

    assert (forced.status, forced.reason, forced.sha256) == ("finished", "forced", first.sha256)
    assert forced.bytes_downloaded == first.size
    assert lab.cab.read_bytes() == lab.upstream_cab.read_bytes()
    assert lab.requests()[-1]["status"] == 200


@pytest.mark.parametrize(
    ("fault", "error"),
    [("corrupt", "integrity test failed: index.xml  failed (checksum error)"), ("truncate", "connection")],
)
def test_damaged_download_is_never_published(lab: Lab, fault: str, error: str) -> None:
    first = lab.sync()
    served, sidecar = lab.cab.read_bytes(), lab.sidecar.read_text()
    lab.publish(generation=2, ca=lab.ca)
    set_fault(lab.upstream.state_dir, CAB_URL, fault)

    result = lab.sync(previous=first.state)

    assert (result.status, result.reason) == ("failed", "newer")
    assert result.error is not None and error in result.error
    assert result.state == first.state
    assert lab.cab.read_bytes() == served
    assert lab.sidecar.read_text() == sidecar
    assert lab.leftovers() == []
    assert lab.requests()[-1]["fault"] == fault


@pytest.mark.parametrize("signer", ["unsigned", "foreign CA"])
def test_cab_without_a_trusted_signature_is_never_published(lab: Lab, foreign_ca: LabCA, signer: str) -> None:
    first = lab.sync()
    served = lab.cab.read_bytes()
    lab.publish(generation=2, ca=None if signer == "unsigned" else foreign_ca)

    result = lab.sync(previous=first.state)

    assert result.status == "failed"
    assert result.error is not None and result.error.startswith("signature check failed")
    assert lab.cab.read_bytes() == served
    assert lab.leftovers() == []


def test_documented_alias_redirect_is_followed(lab: Lab) -> None:
    result = lab.sync(url=FWLINK_URL)

    assert result.status == "finished"
    assert lab.cab.read_bytes() == lab.upstream_cab.read_bytes()
    hops = [(entry["host"], entry["status"]) for entry in lab.requests()]
    assert hops == [("go.microsoft.com", 302), ("download.windowsupdate.com", 200)]


def test_redirect_outside_the_allowlist_is_never_requested(lab: Lab) -> None:
    result = lab.sync(url=FWLINK_URL, allowlist=["go.microsoft.com"])

    assert (result.status, result.reason) == ("failed", "missing")
    assert result.error is not None and "download.windowsupdate.com" in result.error
    assert [entry["host"] for entry in lab.requests()] == ["go.microsoft.com"]
    assert not lab.cab.exists()
    assert lab.leftovers() == []


@pytest.mark.parametrize(
    "allowlist",
    [
        ["windowsupdate.com"],  # the domain itself, not its subdomains
        ["*.download.windowsupdate.com"],  # subdomains only, not the host itself
        ["*.microsoft.com"],
    ],
)
def test_url_outside_the_allowlist_is_never_requested(lab: Lab, allowlist: list[str]) -> None:
    result = lab.sync(allowlist=allowlist)

    assert result.status == "failed"
    assert lab.requests() == []


def test_upstream_error_fails_cleanly(lab: Lab) -> None:
    set_fault(lab.upstream.state_dir, CAB_URL, "status", status=500)

    result = lab.sync()

    assert (result.status, result.reason, result.state) == ("failed", "missing", None)
    assert result.error is not None and "500" in result.error
    assert not lab.cab.exists()
    assert not lab.sidecar.exists()
    assert lab.leftovers() == []


def test_missing_ca_bundle_fails_before_any_request(lab: Lab, tmp_path: Path) -> None:
    result = sync_cab(
        url=CAB_URL,
        repository_dir=lab.repository,
        ca_bundle=tmp_path / "absent.pem",
        allowlist=ALLOWLIST,
        proxy=lab.upstream.url,
    )

    assert result.status == "failed"
    assert result.error is not None and "absent.pem" in result.error
    assert lab.requests() == []


def test_a_second_sync_fails_fast_while_one_runs(lab: Lab) -> None:
    lock_path = lab.cab.parent / ".cabsync.lock"
    lock_path.parent.mkdir(parents=True)
    with open(lock_path, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)

        result = lab.sync()

    assert (result.status, result.error) == ("failed", "another cab sync is running")
    assert lab.requests() == []
    assert lab.sync().status == "finished"  # the lock went with its holder
