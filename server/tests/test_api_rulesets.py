"""The rule sets API: admins write, the controller reads, hosts do neither."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from wuacache_server.db.models import TokenRole

RULESETS = "/api/v1/rulesets"
SECURITY_UPDATES = "0fa1201d-4330-4fa8-8ae9-b877473b6441"
UPDATE_ID = "8B2A8B5C-0E7C-4F2A-9B0F-4A1B2C3D4E5F"
EMPTY_LISTS = {
    f"{verdict}_{kind}": []
    for kind in ("updates", "kbs", "products", "classifications", "severities")
    for verdict in ("allowed", "forbidden")
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def controller(issue_token: Callable[..., str]) -> dict[str, str]:
    return bearer(issue_token(TokenRole.CONTROLLER))


def public(answer: Any) -> dict[str, Any]:
    """A rule set as answered, without its timestamps."""
    body = dict(answer.json())
    assert {"created_at", "updated_at"} <= body.keys()
    del body["created_at"], body["updated_at"]
    return body


def test_a_created_rule_set_is_stored_normalised(client: TestClient, admin_headers: dict[str, str]) -> None:
    created = client.post(
        RULESETS,
        headers=admin_headers,
        json={
            "name": "prod-security",
            "maturity": "prod",
            "allowed_updates": [UPDATE_ID, UPDATE_ID.lower()],
            "forbidden_kbs": ["kb5034122", 5034123],
            "allowed_classifications": [SECURITY_UPDATES.upper(), "Critical Updates"],
            "allowed_severities": ["critical"],
        },
    )

    assert created.status_code == 201
    expected = {
        **EMPTY_LISTS,
        "name": "prod-security",
        "maturity": "PROD",
        "allowed_updates": [UPDATE_ID.lower()],
        "forbidden_kbs": ["5034122", "5034123"],
        "allowed_classifications": [SECURITY_UPDATES, "Critical Updates"],
        "allowed_severities": ["Critical"],
    }
    assert public(created) == expected
    assert public(client.get(f"{RULESETS}/prod-security", headers=admin_headers)) == expected


def test_rule_sets_are_listed_by_name(client: TestClient, admin_headers: dict[str, str]) -> None:
    for name in ("zeta", "alpha", "mid"):
        assert client.post(RULESETS, headers=admin_headers, json={"name": name}).status_code == 201

    listed = client.get(RULESETS, headers=admin_headers)

    assert listed.status_code == 200
    assert [rule_set["name"] for rule_set in listed.json()] == ["alpha", "mid", "zeta"]
    assert listed.json()[0]["maturity"] is None


def test_a_duplicate_name_is_a_conflict(client: TestClient, admin_headers: dict[str, str]) -> None:
    assert client.post(RULESETS, headers=admin_headers, json={"name": "prod", "allowed_kbs": ["1"]}).status_code == 201

    again = client.post(RULESETS, headers=admin_headers, json={"name": "prod"})

    assert again.status_code == 409
    assert again.json() == {"detail": "a rule set named 'prod' exists already"}
    assert client.get(f"{RULESETS}/prod", headers=admin_headers).json()["allowed_kbs"] == ["1"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"name": "prod", "allowed_updates": ["not-a-guid"]},
            "allowed_updates: 'not-a-guid' is not a GUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
        ),
        (
            {"name": "prod", "forbidden_kbs": ["KB12x"]},
            "forbidden_kbs: 'KB12x' is not a KB number (expected e.g. KB5034122 or 5034122)",
        ),
        ({"name": "bad name"}, "name: 'bad name' is not a rule set name"),
        ({"name": "prod", "maturity": "pre prod"}, "maturity: 'pre prod' is not a maturity (e.g. DEV, PREPROD, PROD)"),
        ({"name": "prod", "allowed_severities": ["Unspecified"]}, "allowed_severities: 'Unspecified' is not an MSRC"),
        ({}, "rule set: name is required"),
    ],
    ids=["guid", "kb", "name", "maturity", "severity", "no-name"],
)
def test_invalid_rules_are_refused_with_the_policy_s_message(
    client: TestClient, admin_headers: dict[str, str], body: dict[str, Any], message: str
) -> None:
    answer = client.post(RULESETS, headers=admin_headers, json=body)

    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(message)
    assert client.get(RULESETS, headers=admin_headers).json() == []


@pytest.mark.parametrize(
    "body",
    [
        {"name": "prod", "allowed_update": [UPDATE_ID]},
        {"name": "prod", "allowed_updates": UPDATE_ID},
        {"name": "prod", "allowed_kbs": [True]},
        {"name": "x" * 101},
        {"name": "prod", "allowed_products": ["p" * 256]},
    ],
    ids=["unknown-key", "not-a-list", "boolean-kb", "long-name", "long-entry"],
)
def test_malformed_bodies_are_refused(client: TestClient, admin_headers: dict[str, str], body: dict[str, Any]) -> None:
    answer = client.post(RULESETS, headers=admin_headers, json=body)

    assert answer.status_code == 422
    assert client.get(RULESETS, headers=admin_headers).json() == []


def test_put_replaces_every_rule(client: TestClient, admin_headers: dict[str, str]) -> None:
    client.post(RULESETS, headers=admin_headers, json={"name": "prod", "maturity": "PROD", "allowed_kbs": ["1"]})
    before = client.get(f"{RULESETS}/prod", headers=admin_headers).json()

    replaced = client.put(f"{RULESETS}/prod", headers=admin_headers, json={"forbidden_updates": [UPDATE_ID]})

    assert replaced.status_code == 200
    assert public(replaced) == {
        **EMPTY_LISTS,
        "name": "prod",
        "maturity": None,
        "forbidden_updates": [UPDATE_ID.lower()],
    }
    assert replaced.json()["created_at"] == before["created_at"]
    assert replaced.json()["updated_at"] > before["updated_at"]
    assert client.get(f"{RULESETS}/prod", headers=admin_headers).json() == replaced.json()


def test_put_cannot_rename_and_keeps_the_rules_on_error(client: TestClient, admin_headers: dict[str, str]) -> None:
    client.post(RULESETS, headers=admin_headers, json={"name": "prod", "allowed_kbs": ["1"]})

    renamed = client.put(f"{RULESETS}/prod", headers=admin_headers, json={"name": "other"})
    invalid = client.put(f"{RULESETS}/prod", headers=admin_headers, json={"allowed_kbs": ["nope"]})

    assert renamed.status_code == 422
    assert renamed.json() == {"detail": "the body names rule set 'other', the URL 'prod': rule sets cannot be renamed"}
    assert invalid.status_code == 422
    assert client.get(f"{RULESETS}/prod", headers=admin_headers).json()["allowed_kbs"] == ["1"]


def test_delete_removes_the_rule_set(client: TestClient, admin_headers: dict[str, str]) -> None:
    client.post(RULESETS, headers=admin_headers, json={"name": "prod"})

    assert client.delete(f"{RULESETS}/prod", headers=admin_headers).status_code == 204

    assert client.get(f"{RULESETS}/prod", headers=admin_headers).status_code == 404
    assert client.delete(f"{RULESETS}/prod", headers=admin_headers).status_code == 404


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_an_unknown_rule_set_is_not_found(client: TestClient, admin_headers: dict[str, str], method: str) -> None:
    answer = client.request(method.upper(), f"{RULESETS}/nowhere", headers=admin_headers, json={})

    assert answer.status_code == 404
    assert answer.json() == {"detail": "no rule set named 'nowhere'"}


def test_the_controller_reads_but_does_not_write(
    client: TestClient, admin_headers: dict[str, str], controller: dict[str, str]
) -> None:
    client.post(RULESETS, headers=admin_headers, json={"name": "prod"})

    assert client.get(RULESETS, headers=controller).status_code == 200
    assert client.get(f"{RULESETS}/prod", headers=controller).status_code == 200
    for answer in (
        client.post(RULESETS, headers=controller, json={"name": "other"}),
        client.put(f"{RULESETS}/prod", headers=controller, json={"allowed_kbs": ["1"]}),
        client.delete(f"{RULESETS}/prod", headers=controller),
    ):
        assert answer.status_code == 403
        assert answer.json() == {"detail": "this needs a token with role admin"}
    assert public(client.get(f"{RULESETS}/prod", headers=admin_headers)) == {
        **EMPTY_LISTS,
        "name": "prod",
        "maturity": None,
    }


def test_hosts_and_strangers_may_not_even_read(client: TestClient, issue_token: Callable[..., str]) -> None:
    host = bearer(issue_token(TokenRole.HOST, "win10-01"))

    assert client.get(RULESETS, headers=host).status_code == 403
    assert client.post(RULESETS, headers=host, json={"name": "prod"}).status_code == 403
    assert client.get(RULESETS).status_code == 401
    assert client.post(RULESETS, json={"name": "prod"}).status_code == 401


def test_the_rule_set_api_is_documented(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert set(paths[RULESETS]) == {"get", "post"}
    assert set(paths[f"{RULESETS}/{{name}}"]) == {"get", "put", "delete"}
    assert {
        "/api/v1/hosts",
        "/api/v1/hosts/{name}",
        "/api/v1/hosts/{name}/plan",
        "/api/v1/hosts/{name}/reports",
    } <= set(paths)
