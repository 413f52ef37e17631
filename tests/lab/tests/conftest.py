"""Fixtures of the bridge tests: a signed catalog per test module, the lab's
upstream serving it, and an emulated host that reaches it through its proxy."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import bridge_client
import pytest
from bridge_client import CAB_URL, Lab
from shipped_scripts import write_scripts_at
from wuacache_lab.catalog import generate_catalog
from wuacache_lab.catalog.payloads import upstream_path
from wuacache_lab.pki import ensure_lab_ca
from wuacache_lab.upstream import UpstreamServer
from wuacache_lab.windows.host import WindowsHost


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    root = tmp_path_factory.mktemp("catalog")
    ca = ensure_lab_ca(root / "ca")
    catalog = generate_catalog(root / "catalog", updates=80, seed=11, ca=ca, fragments_per_cab=40)
    # The payloads at Microsoft's URLs, and the catalog where the server publishes it.
    docroot = catalog.files_dir
    published = upstream_path(docroot, CAB_URL)
    published.parent.mkdir(parents=True)
    shutil.copyfile(catalog.cab, published)
    return Lab(ca, catalog, docroot)


@pytest.fixture
def upstream(lab: Lab, tmp_path: Path) -> Iterator[UpstreamServer]:
    with UpstreamServer(lab.docroot, tmp_path / "upstream") as server:
        yield server


@pytest.fixture
def host(lab: Lab, upstream: UpstreamServer, tmp_path: Path) -> WindowsHost:
    return WindowsHost(
        "WIN10-01", tmp_path / "hosts", profile="win10-22h2", trusted_ca=lab.ca.ca_cert, proxy=upstream.url
    )


@pytest.fixture
def shipped_scripts(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder the bridge client sends the scripts from: the working tree's, or those of a commit
    (``request.param``, see shipped_scripts.py)."""
    commit = getattr(request, "param", None)
    if commit is None:
        return bridge_client.SCRIPTS
    folder = write_scripts_at(commit, tmp_path / "scripts")
    monkeypatch.setattr(bridge_client, "SCRIPTS", folder)
    if "time_limit" not in (folder / "_wua_bridge.ps1").read_text(encoding="utf-8"):
        # Scripts from before task_start took a time limit refuse one.
        monkeypatch.setattr(bridge_client, "TIME_LIMIT", None)
    return folder
