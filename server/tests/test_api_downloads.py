"""``/api/v1/downloads`` against the real app, fetching from the lab's upstream, on both backends."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from test_fetch_service import WAIT, Lab, content, running_lab, two_file_child
from wuacache_lab.upstream import set_fault

from wuacache_server.db.models import TokenRole
from wuacache_server.policy import Status
from wuacache_server.services.fetching import FetchService


@pytest.fixture
def lab(engine: Engine, data_dir: Path, database_url: str, tmp_path: Path) -> Iterator[Lab]:
    with running_lab(engine, data_dir, database_url, tmp_path) as lab:
        yield lab


@pytest.fixture
def service(lab: Lab, client: TestClient) -> Iterator[FetchService]:
    """The fetch service, as the server runs it beside the API."""
    with lab.service() as service:
        client.app.state.fetch_service = service  # type: ignore[attr-defined]
        yield service


@pytest.fixture
def controller(issue_token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(TokenRole.CONTROLLER)}"}


def test_reading_tasks_needs_a_controller_or_admin_token(
    client: TestClient, issue_token: Callable[..., str], controller: dict[str, str], admin_headers: dict[str, str]
) -> None:
    host = {"Authorization": f"Bearer {issue_token(TokenRole.HOST, 'win10-01')}"}
    assert client.get("/api/v1/downloads").status_code == 401
    assert client.get("/api/v1/downloads", headers=host).status_code == 403
    assert client.get("/api/v1/downloads/1", headers=host).status_code == 403
    assert client.get("/api/v1/downloads", headers=controller).json() == {
        "items": [],
        "total": 0,
        "limit": 100,
        "offset": 0,
    }
    assert client.get("/api/v1/downloads", headers=admin_headers).status_code == 200


def test_tasks_are_listed_with_status_and_progress_filtered_and_paged(
    lab: Lab, client: TestClient, service: FetchService, controller: dict[str, str]
) -> None:
    bundles = [bundle for bundle in lab.catalog.bundles if len(bundle.children[0].files) == 1][:3]
    files = [bundle.children[0].files[0] for bundle in bundles]
    lab.add_host("host", dict.fromkeys(bundles, Status.MISSING))
    set_fault(lab.upstream_state, files[1].url, "status", status=500)
    task_ids = service.run_once()
    assert service.wait(task_ids, WAIT)

    page = client.get("/api/v1/downloads", headers=controller).json()
    assert (page["total"], [item["id"] for item in page["items"]]) == (3, sorted(task_ids, reverse=True))
    by_name = {item["file_name"]: item for item in page["items"]}
    for file in (files[0], files[2]):
        item = by_name[file.file_name]
        assert (item["status"], item["bytes_done"], item["bytes_total"], item["size"]) == (
            "completed",
            file.size,
            file.size,
            file.size,
        )
        assert (item["url"], item["sha1"], item["forced"], item["attempts"], item["error"]) == (
            file.url,
            file.digest,
            False,
            1,
            None,
        )
    failed = by_name[files[1].file_name]
    assert failed["status"] == "failed" and "500" in failed["error"]

    only_failed = client.get("/api/v1/downloads", params={"status": "failed"}, headers=controller).json()
    assert (only_failed["total"], [item["id"] for item in only_failed["items"]]) == (1, [failed["id"]])
    both = client.get("/api/v1/downloads", params=[("status", "failed"), ("status", "completed")], headers=controller)
    assert both.json()["total"] == 3
    second_page = client.get("/api/v1/downloads", params={"limit": 2, "offset": 2}, headers=controller).json()
    assert (second_page["total"], len(second_page["items"]), second_page["items"][0]["id"]) == (3, 1, min(task_ids))

    one = client.get(f"/api/v1/downloads/{failed['id']}", headers=controller)
    assert one.status_code == 200 and one.json() == failed


@pytest.mark.parametrize(
    "params",
    [{"status": "finished"}, {"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "ten"}],
)
def test_bad_filters_are_refused(client: TestClient, controller: dict[str, str], params: dict[str, str | int]) -> None:
    answer = client.get("/api/v1/downloads", params=params, headers=controller)
    assert answer.status_code == 422
    assert next(iter(params)) in str(answer.json()["detail"])


def test_an_unknown_task_is_404(client: TestClient, controller: dict[str, str]) -> None:
    answer = client.get("/api/v1/downloads/4242", headers=controller)
    assert (answer.status_code, answer.json()) == (404, {"detail": "no download task with id 4242"})
    assert client.get("/api/v1/downloads/first", headers=controller).status_code == 422


def test_an_admin_forces_the_download_of_chosen_updates(
    lab: Lab, client: TestClient, service: FetchService, controller: dict[str, str], admin_headers: dict[str, str]
) -> None:
    bundle, files = two_file_child(lab.catalog)
    files = tuple({file.digest: file for child in bundle.children for file in child.files}.values())
    body = {"update_ids": [bundle.update_id.upper()]}
    assert client.post("/api/v1/downloads", json=body, headers=controller).status_code == 403

    answer = client.post("/api/v1/downloads", json=body, headers=admin_headers)

    assert answer.status_code == 202
    task_ids = answer.json()["task_ids"]
    assert len(task_ids) == len(files)
    assert service.wait(task_ids, WAIT)
    for task_id in task_ids:
        task = client.get(f"/api/v1/downloads/{task_id}", headers=controller).json()
        assert (task["status"], task["forced"]) == ("completed", True)
    for file in files:
        served = client.get(f"/wua/{file.file_name}")
        assert (served.status_code, served.content) == (200, content(file))


def test_forcing_unknown_updates_is_refused_naming_them(
    lab: Lab, client: TestClient, service: FetchService, admin_headers: dict[str, str]
) -> None:
    unknown = [str(uuid.uuid4()), str(uuid.uuid4())]
    body = {"update_ids": [lab.catalog.bundles[0].update_id, *unknown]}

    answer = client.post("/api/v1/downloads", json=body, headers=admin_headers)

    assert answer.status_code == 422
    assert all(update_id in answer.json()["detail"] for update_id in unknown)
    assert lab.tasks() == []


@pytest.mark.parametrize(
    "body",
    [
        {"update_ids": []},
        {"update_ids": ["KB5034122"]},
        {"update_ids": ["5b42a268-3b47-8ab5-a5ae-20fa66f9bf9"]},
        {"update_ids": [str(uuid.uuid4())] * 1001},
        {"update_ids": [str(uuid.uuid4())], "urls": ["http://download.windowsupdate.com/x.cab"]},
        {},
    ],
)
def test_malformed_forced_downloads_are_refused(
    lab: Lab, client: TestClient, service: FetchService, admin_headers: dict[str, str], body: dict[str, object]
) -> None:
    answer = client.post("/api/v1/downloads", json=body, headers=admin_headers)
    assert answer.status_code == 422
    assert lab.tasks() == []


def test_forcing_a_download_where_none_run_is_503(client: TestClient, admin_headers: dict[str, str]) -> None:
    answer = client.post("/api/v1/downloads", json={"update_ids": [str(uuid.uuid4())]}, headers=admin_headers)
    assert (answer.status_code, answer.json()) == (503, {"detail": "downloads are not running on this server"})
