"""The bridge the host keeps (docs/bridge-protocol.md, "The kept bridge"): sent whole once, then named by
its SHA-256, and run only when the text the bootstrap reads has that digest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from bridge_client import NETWORK, ROOT, STANDARD_USER, bridge_request, script, send

from wuacache_lab.windows.host import WindowsHost

KEPT = f"{ROOT}\\bridge"
MISSING = {"bridge_missing": True}


@pytest.fixture
def host(tmp_path: Path) -> WindowsHost:
    return WindowsHost("win10-01", tmp_path, profile="win10-22h2", trusted_ca=tmp_path / "ca.pem")


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def by_digest(sha256: str) -> dict[str, object]:
    return {"bridge_sha256": sha256, "request": bridge_request("info")}


def test_a_bridge_sent_whole_is_kept_and_then_run_by_its_digest(host: WindowsHost) -> None:
    bridge = script("_wua_bridge.ps1")
    sha256 = digest(bridge)
    # An older version kept before is replaced.
    host.disk.make_dirs(KEPT)
    host.disk.write(f"{KEPT}\\{'0' * 64}.ps1", [b"'older'"])

    assert send(host, by_digest(sha256)) == (1, MISSING)
    exit_code, whole = send(host, dict(by_digest(sha256), bridge=bridge))
    assert (exit_code, whole["operation"]) == (0, "info"), whole

    assert host.disk.children(KEPT) == [f"{sha256}.ps1"]
    assert b"".join(host.disk.read(f"{KEPT}\\{sha256}.ps1")) == bridge.encode("utf-8")
    exit_code, kept = send(host, by_digest(sha256))
    assert (exit_code, kept["result"]["computer_name"]) == (0, whole["result"]["computer_name"])


def test_a_kept_bridge_whose_text_lost_its_digest_is_not_run(host: WindowsHost) -> None:
    bridge = script("_wua_bridge.ps1")
    sha256 = digest(bridge)
    send(host, dict(by_digest(sha256), bridge=bridge))

    host.disk.write(f"{KEPT}\\{sha256}.ps1", [bridge.replace("Get-HostInfo", "Get-HostInfo; 'planted'", 1).encode("utf-8")])

    assert send(host, by_digest(sha256)) == (1, MISSING)


@pytest.mark.parametrize("name", ["..\\..\\Windows\\System32\\evil", "", "A" * 64])
def test_a_digest_that_is_no_sha256_names_no_file(host: WindowsHost, name: str) -> None:
    assert send(host, by_digest(name)) == (1, MISSING)


def test_a_logon_that_may_not_write_the_root_gets_its_answer_all_the_same(host: WindowsHost) -> None:
    bridge = script("_wua_bridge.ps1")

    exit_code, response = send(host, dict(by_digest(digest(bridge)), bridge=bridge), STANDARD_USER)

    assert (exit_code, response["operation"]) == (0, "info"), response
    assert not host.disk.exists(KEPT)
    assert send(host, by_digest(digest(bridge)), NETWORK) == (1, MISSING)
