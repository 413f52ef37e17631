"""``/api/v1/catalog``: the catalog's state, the sync runs, forced syncs in
the background, against the lab's fake upstream, on both backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from wuacache_lab.catalog import CatalogSummary, generate_catalog
from wuacache_lab.catalog.model import build_catalog
from wuacache_lab.pki import LabCA, ensure_lab_ca
from wuacache_lab.upstream import UpstreamServer, read_access_log

from wuacache_server.api.app import create_app
from wuacache_server.catalog.importer import import_catalog
from wuacache_server.config import Settings
from wuacache_server.db.engine import session_factory
from wuacache_server.db.models import CabSyncRun, CabSyncStatus, PayloadFile, TokenRole
from wuacache_server.services.cab import start_cab_sync

CATALOG = "/api/v1/catalog"
SYNCS = f"{CATALOG}/syncs"
SYNC = f"{CATALOG}/sync"
CAB_PATH = "/microsoftupdate/v6/wsusscan/wsusscn2.cab"
UPDATES = 70
SEED = 3


@pytest.fixture(scope="module")
def lab_ca(tmp_path_factory: pytest.TempPathFactory) -> LabCA:
    return ensure_lab_ca(tmp_path_factory.mktemp("ca"))


@dataclass
class Server:
    client: TestClient
    settings: Settings
    engine: Engine
    upstream: UpstreamServer
    catalog: CatalogSummary
    headers: dict[TokenRole | None, dict[str, str]]

    def cab_requests(self) -> list[dict[str, Any]]:
        self.upstream.wait_idle()
        return [entry for entry in read_access_log(self.upstream.state_dir) if entry["path"] == CAB_PATH]


@pytest.fixture
def server(
    tmp_path: Path,
    lab_ca: LabCA,
    data_dir: Path,
    database_url: str,
    engine: Engine,
    issue_token: Callable[..., str],
) -> Iterator[Server]:
    catalog = generate_catalog(tmp_path / "catalog", updates=UPDATES, seed=SEED, ca=lab_ca)
    headers: dict[TokenRole | None, dict[str, str]] = {
        role: {"Authorization": f"Bearer {issue_token(role, 'win10-01' if role is TokenRole.HOST else None)}"}
        for role in TokenRole
    }
    headers[None] = {}
    with UpstreamServer(tmp_path / "catalog" / "files", tmp_path / "upstream") as upstream:
        settings = Settings(
            data_dir=data_dir, database_url=database_url, http_proxy=upstream.url, cab_ca_bundle=lab_ca.ca_cert
        )
        with TestClient(create_app(settings)) as client:
            yield Server(client, settings, engine, upstream, catalog, headers)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", CATALOG, {TokenRole.ADMIN, TokenRole.CONTROLLER}),
        ("GET", SYNCS, {TokenRole.ADMIN, TokenRole.CONTROLLER}),
        ("POST", SYNC, {TokenRole.ADMIN}),
    ],
)
def test_each_call_needs_a_token_of_its_role(server: Server, method: str, path: str, allowed: set[TokenRole]) -> None:
    for role, headers in server.headers.items():
        answer = server.client.request(method, path, headers=headers)
        if role is None:
            assert answer.status_code == 401
        elif role in allowed:
            assert answer.status_code == (202 if method == "POST" else 200), answer.text
        else:
            assert answer.status_code == 403, role


def test_before_any_import_the_catalog_is_empty(server: Server) -> None:
    answer = server.client.get(CATALOG, headers=server.headers[TokenRole.CONTROLLER])

    assert answer.status_code == 200
    state = answer.json()
    assert (state["version"], state["last_sync"]) == (None, None)
    assert set(state["counts"].values()) == {0}


def test_the_catalog_state_counts_what_the_cab_holds(server: Server, tmp_path: Path) -> None:
    import_catalog(server.engine, server.catalog.cab, workdir=tmp_path)
    model = build_catalog(updates=UPDATES, seed=SEED)
    with server.engine.begin() as connection:
        stored = model.bundles[0].children[0].files[0]
        connection.execute(
            update(PayloadFile)
            .where(PayloadFile.sha1 == stored.digest)
            .values(stored_at=datetime.now(UTC), stored_size=stored.size)
        )

    state = server.client.get(CATALOG, headers=server.headers[TokenRole.CONTROLLER]).json()

    version = state["version"]
    assert (version["sha256"], version["package_id"]) == (server.catalog.cab_sha256, model.package_id)
    assert datetime.fromisoformat(version["creation_date"]) == model.published
    assert state["counts"] == {
        "updates": len(model.updates()),
        "bundles": len(model.bundles),
        "superseded_bundles": sum(1 for bundle in model.bundles if bundle.superseded_by),
        "children": sum(1 for _ in model.children()),
        "categories": len(model.categories),
        "payload_files": len(model.files),
        "stored_files": 1,
        "stored_bytes": stored.size,
    }


def test_a_forced_sync_runs_in_the_background_and_is_listed(server: Server) -> None:
    admin = server.headers[TokenRole.ADMIN]

    started = server.client.post(SYNC, headers=admin)

    assert started.status_code == 202
    run_id = started.json()["run_id"]
    # The test client returns once the background task is done.
    run = server.client.get(f"{SYNCS}/{run_id}", headers=admin).json()
    assert (run["status"], run["reason"], run["error"]) == ("finished", "missing", None)
    assert run["sha256"] == server.catalog.cab_sha256
    state = server.client.get(CATALOG, headers=admin).json()
    assert state["version"]["sha256"] == server.catalog.cab_sha256
    assert state["last_sync"]["id"] == run_id

    again = server.client.post(SYNC, headers=admin).json()["run_id"]

    run = server.client.get(f"{SYNCS}/{again}", headers=admin).json()
    # Forced: downloaded whole and published again although upstream has
    # nothing new; the catalog it holds is imported already.
    assert (run["status"], run["reason"], run["bytes_downloaded"]) == ("finished", "forced", server.catalog.cab_size)
    assert server.client.get(CATALOG, headers=admin).json()["version"] == state["version"]
    assert [(entry["status"], entry["bytes"]) for entry in server.cab_requests()] == [
        (200, server.catalog.cab_size),
        (200, server.catalog.cab_size),
    ]
    listed = server.client.get(SYNCS, headers=admin).json()
    assert [item["id"] for item in listed["items"]] == [again, run_id]


def test_a_sync_while_one_runs_is_refused_with_409(server: Server) -> None:
    admin = server.headers[TokenRole.ADMIN]
    running = start_cab_sync(server.settings, session_factory(server.engine))

    refused = server.client.post(SYNC, headers=admin)

    assert refused.status_code == 409
    assert "another cab sync is running" in refused.json()["detail"]
    assert server.client.get(f"{SYNCS}/{running.run_id}", headers=admin).json()["status"] == "running"
    assert server.cab_requests() == []
    running.run()
    assert server.client.post(SYNC, headers=admin).status_code == 202


def test_runs_are_listed_newest_first_by_page(server: Server) -> None:
    started = datetime(2024, 6, 1, 3, 0, tzinfo=UTC)
    with session_factory(server.engine)() as session:
        for day in range(5):
            session.add(
                CabSyncRun(
                    started_at=started + timedelta(days=day),
                    finished_at=started + timedelta(days=day, seconds=5),
                    status=CabSyncStatus.UNCHANGED,
                    reason="unchanged",
                    duration_seconds=5.0,
                )
            )
        session.commit()

    page = server.client.get(SYNCS, params={"limit": 2, "offset": 1}, headers=server.headers[TokenRole.CONTROLLER])

    assert page.status_code == 200
    body = page.json()
    assert (body["total"], body["limit"], body["offset"]) == (5, 2, 1)
    assert [datetime.fromisoformat(item["started_at"]).day for item in body["items"]] == [4, 3]
    assert body["items"][0]["status"] == "unchanged"


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        (SYNCS, {"limit": 0}, 422),
        (SYNCS, {"limit": 501}, 422),
        (SYNCS, {"offset": -1}, 422),
        (SYNCS, {"limit": "many"}, 422),
        (f"{SYNCS}/999", {}, 404),
        (f"{SYNCS}/latest", {}, 422),
    ],
)
def test_bad_requests_get_a_clear_4xx(server: Server, path: str, params: dict[str, Any], status: int) -> None:
    answer = server.client.get(path, params=params, headers=server.headers[TokenRole.ADMIN])

    assert answer.status_code == status
    assert answer.json()["detail"]


def test_the_catalog_calls_are_documented(server: Server) -> None:
    paths = server.client.get("/openapi.json").json()["paths"]
    assert set(paths[CATALOG]) == {"get"}
    assert set(paths[SYNCS]) == {"get"}
    assert set(paths[SYNC]) == {"post"}
    assert {"202", "409"} <= set(paths[SYNC]["post"]["responses"])
