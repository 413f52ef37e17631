"""``/api/v1/cleanup``: cleanups on demand and the list of runs, on both backends."""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from test_cleanup import store
from test_fetch_service import Lab, content, lab_catalog

from wuacache_server.api.app import create_app
from wuacache_server.config import Settings
from wuacache_server.db.engine import session_factory
from wuacache_server.db.models import TokenRole
from wuacache_server.fetch.downloader import PART_SUFFIX, PARTIAL_DIR
from wuacache_server.policy import Status
from wuacache_server.services.cleanup import LOCK_NAME

CLEANUP = "/api/v1/cleanup"

Headers = dict[TokenRole | None, dict[str, str]]


@pytest.fixture
def lab(engine: Engine, settings: Settings) -> Lab:
    """The lab catalog in the database; no upstream: a cleanup downloads nothing."""
    return Lab(lab_catalog(), session_factory(engine), settings, None)


@pytest.fixture
def headers(issue_token: Callable[..., str]) -> Headers:
    headers: Headers = {
        role: {"Authorization": f"Bearer {issue_token(role, 'win10-01' if role is TokenRole.HOST else None)}"}
        for role in TokenRole
    }
    headers[None] = {}
    return headers


@pytest.fixture
def disabled_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """The API of a server with ``cleanup_kbs = false``."""
    with TestClient(create_app(settings.model_copy(update={"cleanup_kbs": False}))) as client:
        yield client


def test_a_cleanup_removes_only_what_no_host_needs_and_says_what_it_freed(
    client: TestClient, lab: Lab, headers: Headers
) -> None:
    bundle = lab.catalog.bundles[0]
    needed = lab.add_host("host-1", {bundle: Status.MISSING})
    needed_digests = {file.digest for file in needed}
    unneeded, stale = [file for file in lab.catalog.files if file.digest not in needed_digests][:2]
    store(lab, *needed, unneeded)
    partial_dir = lab.settings.wua_dir / PARTIAL_DIR
    partial_dir.mkdir()
    (partial_dir / (stale.file_name + PART_SUFFIX)).write_bytes(content(stale)[:1000])

    answer = client.post(CLEANUP, headers=headers[TokenRole.CONTROLLER])

    assert answer.status_code == 200, answer.text
    done = answer.json()
    run = done["run"]
    assert (run["files_removed"], run["bytes_freed"], done["partials_removed"]) == (1, unneeded.size + 1000, 1)
    assert run["error"] is None and run["finished_at"] is not None and run["duration_seconds"] >= 0
    assert f"{unneeded.size + 1000} bytes freed" in done["message"]
    assert not lab.published(unneeded).exists() and lab.row(unneeded).stored_at is None
    for file in needed:
        assert lab.published(file).read_bytes() == content(file)
    assert list(partial_dir.iterdir()) == []

    listed = client.get(CLEANUP, headers=headers[TokenRole.CONTROLLER]).json()
    assert (listed["total"], listed["items"]) == (1, [run])

    # The lock is released: the next cleanup runs, and finds nothing left to remove.
    again = client.post(CLEANUP, headers=headers[TokenRole.ADMIN]).json()["run"]
    assert again["id"] != run["id"] and (again["files_removed"], again["bytes_freed"]) == (0, 0)


@pytest.mark.parametrize(
    ("method", "allowed"),
    [("GET", {TokenRole.ADMIN, TokenRole.CONTROLLER}), ("POST", {TokenRole.ADMIN, TokenRole.CONTROLLER})],
)
def test_roles(client: TestClient, lab: Lab, headers: Headers, method: str, allowed: set[TokenRole]) -> None:
    unneeded = lab.catalog.files[0]
    store(lab, unneeded)
    assert client.request(method, CLEANUP, headers=headers[None]).status_code == 401
    for role in TokenRole:
        expected = 200 if role in allowed else 403
        assert client.request(method, CLEANUP, headers=headers[role]).status_code == expected, role
    # Refused callers removed nothing: only the first allowed POST did.
    assert lab.published(unneeded).exists() is (method == "GET")


def test_runs_are_listed_newest_first_a_page_at_a_time(client: TestClient, lab: Lab, headers: Headers) -> None:
    admin = headers[TokenRole.ADMIN]
    ids = [client.post(CLEANUP, headers=admin).json()["run"]["id"] for _ in range(3)]

    page = client.get(CLEANUP, params={"limit": 2, "offset": 1}, headers=admin).json()

    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 1)
    assert [run["id"] for run in page["items"]] == ids[1::-1]
    assert client.get(CLEANUP, params={"limit": 0}, headers=admin).status_code == 422


def test_a_cleanup_while_another_runs_is_refused_at_once(client: TestClient, lab: Lab, headers: Headers) -> None:
    unneeded = lab.catalog.files[0]
    store(lab, unneeded)
    admin = headers[TokenRole.ADMIN]

    with open(lab.settings.data_dir / LOCK_NAME, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a running cleanup holds it, in this process or another
        answer = client.post(CLEANUP, headers=admin)

    assert answer.status_code == 409
    assert answer.json()["detail"] == "another cleanup is running: wait for it to finish"
    assert lab.published(unneeded).exists()
    assert client.get(CLEANUP, headers=admin).json()["total"] == 0


def test_a_cleanup_is_refused_when_cleanup_kbs_is_off(disabled_client: TestClient, lab: Lab, headers: Headers) -> None:
    unneeded = lab.catalog.files[0]
    store(lab, unneeded)

    answer = disabled_client.post(CLEANUP, headers=headers[TokenRole.ADMIN])

    assert answer.status_code == 409
    assert answer.json()["detail"] == "cleanup is turned off (cleanup_kbs = false): nothing removed"
    assert lab.published(unneeded).exists()
    assert disabled_client.get(CLEANUP, headers=headers[TokenRole.ADMIN]).json()["total"] == 0
