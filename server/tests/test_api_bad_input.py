"""Numbers no database column holds, and NUL characters, which PostgreSQL can
neither store nor compare, are refused with 422 wherever a request carries them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_api_hosts import report

from wuacache_server.db.models import TokenRole

HUGE = 10**20  # beyond a signed 64-bit integer


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/api/v1/catalog/syncs/{HUGE}"),
        ("GET", f"/api/v1/catalog/syncs/{2**31}"),  # beyond PostgreSQL's INTEGER
        ("GET", f"/api/v1/downloads/{HUGE}"),
        ("DELETE", f"/api/v1/tokens/{HUGE}"),
        ("DELETE", f"/api/v1/tokens/{-HUGE}"),
        ("GET", f"/api/v1/hosts?offset={HUGE}"),
        ("GET", f"/api/v1/catalog/syncs?offset={HUGE}"),
        ("GET", f"/api/v1/downloads?offset={HUGE}"),
        ("GET", f"/api/v1/cleanup?offset={HUGE}"),
    ],
)
def test_an_id_or_offset_beyond_what_the_database_holds_is_refused(
    client: TestClient, admin_headers: dict[str, str], method: str, path: str
) -> None:
    answer = client.request(method, path, headers=admin_headers)
    assert answer.status_code == 422


def test_a_host_token_cannot_reach_the_database_with_a_huge_offset(
    client: TestClient, issue_token: Callable[..., str]
) -> None:
    host = bearer(issue_token(TokenRole.HOST, "win10-01"))
    assert client.get(f"/api/v1/hosts?offset={HUGE}", headers=host).status_code == 422


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/rulesets", {"name": "prod\x00"}),
        ("POST", "/api/v1/rulesets", {"name": "prod", "allowed_products": ["Windows\x0010"]}),
        ("GET", "/api/v1/rulesets/prod%00", None),
        ("PUT", "/api/v1/rulesets/prod%00", {}),
        ("GET", "/api/v1/hosts?name_prefix=web%00", None),
        ("POST", "/api/v1/tokens", {"name": "ansible\x00", "role": "controller"}),
    ],
)
def test_nul_is_refused_in_bodies_queries_and_paths(
    client: TestClient, admin_headers: dict[str, str], method: str, path: str, body: dict[str, Any] | None
) -> None:
    answer = client.request(method, path, headers=admin_headers, json=body)
    assert answer.status_code == 422
    assert "NUL" in answer.text


@pytest.mark.parametrize(
    "field",
    [("updates", 0, "title"), ("os", "caption"), ("assignment", "rule_sets", 0), ("updates", 0, "download_urls", 0)],
    ids=lambda field: ".".join(map(str, field)),
)
def test_nul_is_refused_in_a_report(client: TestClient, admin_headers: dict[str, str], field: tuple[Any, ...]) -> None:
    body = report("win10-01", missing=1)
    body["updates"][0]["download_urls"] = ["http://download.windowsupdate.com/a.cab"]
    body.setdefault("assignment", {}).setdefault("rule_sets", ["prod"])
    container = body
    for key in field[:-1]:
        container = container[key]
    container[field[-1]] = "text\x00more"

    answer = client.post("/api/v1/hosts/win10-01/reports", headers=admin_headers, json=body)
    assert answer.status_code == 422
    assert client.get("/api/v1/hosts", headers=admin_headers).json()["total"] == 0
