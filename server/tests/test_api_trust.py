"""Who may set policy: a host's assignment is set by controllers and admins, never by the host."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from wuacache_server.api.app import create_app
from wuacache_server.config import Settings
from wuacache_server.db.models import TokenRole
from test_api_hosts import HOSTS, bearer, report

OWN_ASSIGNMENT = {"default_allow": True, "maturities": ["PROD"]}


def statuses(plan: dict[str, Any]) -> list[str]:
    return sorted(update["status"] for update in plan["updates"])


@pytest.fixture
def host(issue_token: Callable[..., str]) -> dict[str, str]:
    return bearer(issue_token(TokenRole.HOST, "web-01"))


@pytest.fixture
def controller(issue_token: Callable[..., str]) -> dict[str, str]:
    return bearer(issue_token(TokenRole.CONTROLLER, name="ansible"))


def post(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    answer = client.post(f"{HOSTS}/{body['hostname']}/reports", headers=headers, json=body)
    assert answer.status_code == 200, answer.text
    plan: dict[str, Any] = answer.json()
    return plan


def test_a_host_token_cannot_widen_its_own_assignment(client: TestClient, host: dict[str, str]) -> None:
    plan = post(client, host, {**report("web-01", discarded=3), "assignment": OWN_ASSIGNMENT})

    assert statuses(plan) == ["DISCARDED"] * 3
    assert plan["warnings"][0] == (
        "the assignment in the report is ignored: only a controller or an admin sets a host's; "
        "this plan follows the server's default assignment"
    )
    stored = client.get(f"{HOSTS}/web-01", headers=host).json()
    assert (stored["assignment"], stored["assignment_set_at"]) == ({}, None)


def test_a_host_report_follows_the_assignment_a_controller_set(
    client: TestClient, host: dict[str, str], controller: dict[str, str]
) -> None:
    answer = client.put(f"{HOSTS}/WEB-01/assignment", headers=controller, json={"default_allow": True})
    assert answer.status_code == 200, answer.text
    assert answer.json()["assignment"] == {"default_allow": True}
    assert answer.json()["assignment_set_by"].endswith("(ansible)")

    plan = post(client, host, {**report("web-01", discarded=2), "assignment": {"default_allow": False}})

    assert statuses(plan) == ["MISSING"] * 2
    assert plan["warnings"][0].endswith("this plan follows the assignment a controller set")


def test_a_controller_report_sets_the_assignment(
    client: TestClient, host: dict[str, str], controller: dict[str, str]
) -> None:
    post(client, controller, {**report("web-01"), "assignment": {"default_allow": True}})

    plan = post(client, host, {**report("web-01", discarded=1), "assignment": {}})

    assert statuses(plan) == ["MISSING"]
    assert plan["warnings"] == []


def test_a_host_token_cannot_set_an_assignment(client: TestClient, host: dict[str, str]) -> None:
    answer = client.put(f"{HOSTS}/web-01/assignment", headers=host, json=OWN_ASSIGNMENT)

    assert answer.status_code == 403


@pytest.mark.parametrize(
    "body", [{"default_allow": "maybe"}, {"rule_sets": ["no spaces"]}, {"install_delay": "1y"}, {"colour": "red"}]
)
def test_an_invalid_assignment_is_refused(client: TestClient, controller: dict[str, str], body: dict[str, Any]) -> None:
    answer = client.put(f"{HOSTS}/web-01/assignment", headers=controller, json=body)

    assert answer.status_code == 422
    assert client.get(f"{HOSTS}/web-01", headers=controller).status_code == 404


@pytest.fixture
def default_allowing_client(data_dir: Any, database_url: str, engine: Engine) -> Iterator[TestClient]:
    settings = Settings(data_dir=data_dir, database_url=database_url, default_assignment={"default_allow": True})
    with TestClient(create_app(settings)) as client:
        yield client


def test_the_default_assignment_judges_hosts_none_was_set_for(
    default_allowing_client: TestClient, host: dict[str, str]
) -> None:
    plan = post(default_allowing_client, host, {**report("web-01", discarded=1), "assignment": {}})

    assert statuses(plan) == ["MISSING"]


def test_an_invalid_default_assignment_is_refused() -> None:
    with pytest.raises(ValueError, match="default_allow must be true or false"):
        Settings(default_assignment={"default_allow": "yes"})
