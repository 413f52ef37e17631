"""Who may set policy: a host's assignment, holds and overrides are set by controllers
and admins, never by the host."""

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


def test_a_hold_keeps_an_update_off_a_host_and_an_override_lets_one_on(
    client: TestClient, host: dict[str, str], controller: dict[str, str]
) -> None:
    body = report("web-01", missing=1, discarded=1)
    wanted, unwanted = body["updates"][1]["update_id"], body["updates"][0]["update_id"]
    body["updates"][0]["kb_ids"] = ["KB5034441"]
    held = client.post(
        f"{HOSTS}/web-01/holds",
        headers=controller,
        json={"kb": "kb5034441", "reason": "breaks the VPN client", "expires_at": "2099-01-01T00:00:00Z"},
    )
    assert held.status_code == 201, held.text
    assert (held.json()["kb"], held.json()["created_by"][-9:]) == ("5034441", "(ansible)")
    overridden = client.post(
        f"{HOSTS}/web-01/overrides", headers=controller, json={"update_id": wanted.upper(), "reason": "needed by app X"}
    )
    assert overridden.status_code == 201, overridden.text

    plan = post(client, controller, body)

    decisions = {update["update_id"]: update for update in plan["updates"]}
    assert decisions[unwanted]["status"] == "DISCARDED"
    assert decisions[unwanted]["reason"].startswith("held on this host by token ")
    assert decisions[unwanted]["reason"].endswith(" until 2099-01-01 00:00 UTC: breaks the VPN client")
    assert decisions[wanted]["status"] == "MISSING"
    assert "overridden on this host by token " in decisions[wanted]["reason"]
    assert decisions[wanted]["reason"].endswith(
        ": needed by app X (the rules: no rule allows it and default_allow is false); files not yet on the server; "
        "the server's catalog does not know this revision: the server cannot provide its files"
    )

    listed = client.get(f"{HOSTS}/web-01/holds", headers=controller).json()
    assert [hold["id"] for hold in listed] == [held.json()["id"]]
    revoked = client.delete(f"{HOSTS}/web-01/holds/{held.json()['id']}", headers=controller)
    assert revoked.status_code == 204
    assert client.get(f"{HOSTS}/web-01/holds", headers=controller).json()[0]["revoked_at"] is not None
    assert client.delete(f"{HOSTS}/web-02/holds/{held.json()['id']}", headers=controller).status_code == 404
    assert client.delete(f"{HOSTS}/web-01/overrides/{held.json()['id']}", headers=controller).status_code == 404

    plan = post(client, controller, body)
    assert {update["update_id"]: update["status"] for update in plan["updates"]}[unwanted] == "MISSING"


@pytest.mark.parametrize(
    "body",
    [
        {"reason": "which update?"},
        {"kb": "KB1", "update_id": "00000000-0000-4000-8000-000000000000", "reason": "both"},
        {"kb": "not a kb", "reason": "bad"},
        {"update_id": "not-a-guid", "reason": "bad"},
        {"kb": "KB1", "reason": " "},
        {"kb": "KB1", "reason": "past", "expires_at": "2001-01-01T00:00:00Z"},
    ],
)
def test_an_invalid_hold_is_refused(client: TestClient, controller: dict[str, str], body: dict[str, Any]) -> None:
    answer = client.post(f"{HOSTS}/web-01/holds", headers=controller, json=body)

    assert answer.status_code == 422
    assert client.get(f"{HOSTS}/web-01/holds", headers=controller).json() == []


def test_every_policy_write_is_in_the_audit_trail(
    client: TestClient, controller: dict[str, str], admin_headers: dict[str, str], host: dict[str, str]
) -> None:
    client.put(f"{HOSTS}/web-01/assignment", headers=controller, json={"rule_sets": ["baseline"]})
    client.post("/api/v1/rulesets", headers=admin_headers, json={"name": "baseline", "allowed_kbs": ["KB1"]})
    client.put("/api/v1/rulesets/baseline", headers=admin_headers, json={"allowed_kbs": ["KB2"]})
    hold = client.post(f"{HOSTS}/web-01/holds", headers=controller, json={"kb": "KB3", "reason": "breaks"}).json()
    client.delete(f"{HOSTS}/web-01/holds/{hold['id']}", headers=controller)
    minted = client.post(
        "/api/v1/tokens", headers=controller, json={"name": "ws", "role": "host", "host_name": "ws-01"}
    ).json()
    post(client, controller, {**report("web-01"), "assignment": {"default_allow": False}})
    post(client, controller, {**report("web-01"), "assignment": {"default_allow": False}})  # unchanged: no event
    post(client, host, {**report("web-01"), "assignment": {"default_allow": True}})  # ignored: no event
    client.delete("/api/v1/rulesets/baseline", headers=admin_headers)

    answer = client.get("/api/v1/audit", headers=controller)

    assert answer.status_code == 200
    page = answer.json()
    events = [
        (event["action"], event["target"], event["actor"].rpartition(" (")[2]) for event in reversed(page["items"])
    ]
    assert events == [
        ("assignment.set", "web-01", "ansible)"),
        ("ruleset.create", "baseline", "test)"),
        ("ruleset.replace", "baseline", "test)"),
        ("hold.create", "web-01", "ansible)"),
        ("hold.revoke", "web-01", "ansible)"),
        ("token.create", f"token {minted['id']} (ws)", "ansible)"),
        ("assignment.set", "web-01", "ansible)"),
        ("ruleset.delete", "baseline", "test)"),
    ]
    replaced = page["items"][-3]["details"]
    assert (replaced["before"]["allowed_kbs"], replaced["after"]["allowed_kbs"]) == (["1"], ["2"])
    assert page["items"][1]["details"] == {"assignment": {"default_allow": False}, "through": "report"}
    assert minted["token"] not in answer.text
    assert page["total"] == 8
    only = client.get("/api/v1/audit", headers=controller, params={"action": "hold.create", "limit": 1}).json()
    assert (only["total"], len(only["items"])) == (1, 1)
