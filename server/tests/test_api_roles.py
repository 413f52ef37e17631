"""The trust model, route by route: 401 without a live token, 403 for a role the route does not admit.

The table is docs/server.md's matrix; a route missing from it fails the test,
so that a new route gets its row. Requests carry bodies a permitted caller gets
a 4xx for (or do nothing harmful): these tests are about who gets through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from wuacache_server.db.models import TokenRole
from test_api_hosts import bearer, report

ANY = frozenset({"host", "controller", "admin"})
CONTROLLER = frozenset({"controller", "admin"})
ADMIN = frozenset({"admin"})

# (method, path, body, who gets through); the host token is web-01's.
MATRIX: list[tuple[str, str, Any, frozenset[str]]] = [
    ("GET", "/api/v1/hosts", None, ANY),
    ("GET", "/api/v1/hosts/web-01", None, ANY),
    ("GET", "/api/v1/hosts/web-01/plan", None, ANY),
    ("POST", "/api/v1/hosts/web-01/reports", report("web-01"), ANY),
    ("GET", "/api/v1/hosts/web-02", None, CONTROLLER),
    ("GET", "/api/v1/hosts/web-02/plan", None, CONTROLLER),
    ("POST", "/api/v1/hosts/web-02/reports", report("web-02"), CONTROLLER),
    ("PUT", "/api/v1/hosts/web-01/assignment", {"default_allow": "not a boolean"}, CONTROLLER),
    ("GET", "/api/v1/hosts/web-01/holds", None, CONTROLLER),
    ("POST", "/api/v1/hosts/web-01/holds", {"reason": "no update named"}, CONTROLLER),
    ("DELETE", "/api/v1/hosts/web-01/holds/999999", None, CONTROLLER),
    ("GET", "/api/v1/hosts/web-01/overrides", None, CONTROLLER),
    ("POST", "/api/v1/hosts/web-01/overrides", {"reason": "no update named"}, CONTROLLER),
    ("DELETE", "/api/v1/hosts/web-01/overrides/999999", None, CONTROLLER),
    ("GET", "/api/v1/rulesets", None, CONTROLLER),
    ("GET", "/api/v1/rulesets/nothing", None, CONTROLLER),
    ("POST", "/api/v1/rulesets", {}, ADMIN),
    ("PUT", "/api/v1/rulesets/nothing", {}, ADMIN),
    ("DELETE", "/api/v1/rulesets/nothing", None, ADMIN),
    ("GET", "/api/v1/tokens", None, CONTROLLER),
    ("POST", "/api/v1/tokens", {"name": "ws-0002", "role": "host", "host_name": "ws-0002"}, CONTROLLER),
    ("POST", "/api/v1/tokens", {"name": "another", "role": "controller"}, ADMIN),
    ("DELETE", "/api/v1/tokens/999999", None, CONTROLLER),
    ("POST", "/api/v1/tokens/999999/rotate", {}, CONTROLLER),
    ("GET", "/api/v1/catalog", None, CONTROLLER),
    ("GET", "/api/v1/catalog/syncs", None, CONTROLLER),
    ("GET", "/api/v1/catalog/syncs/999999", None, CONTROLLER),
    ("POST", "/api/v1/catalog/sync", None, ADMIN),
    ("GET", "/api/v1/downloads", None, CONTROLLER),
    ("GET", "/api/v1/downloads/999999", None, CONTROLLER),
    ("POST", "/api/v1/downloads", {}, ADMIN),
    ("GET", "/api/v1/cleanup", None, CONTROLLER),
    ("POST", "/api/v1/cleanup", None, CONTROLLER),
    ("GET", "/api/v1/audit", None, CONTROLLER),
    ("GET", "/api/v1/packages", None, CONTROLLER),
    ("GET", "/api/v1/packages/nothing.msu", None, CONTROLLER),
    ("PUT", "/api/v1/packages/nothing.txt", None, ADMIN),
    ("DELETE", "/api/v1/packages/nothing.msu", None, ADMIN),
]
# Admitted, these start work the test has no business doing (a catalog download).
NOT_RUN = {("POST", "/api/v1/catalog/sync", "admin")}
# Routes every caller may use, without a token.
PUBLIC = {"/health", "/wua/{file_name}", "/packages/{name}"}


def _matches(path: str, template: str) -> bool:
    """Whether ``path`` is a request to the OpenAPI route ``template``."""
    parts, pattern = path.split("/"), template.split("/")
    return len(parts) == len(pattern) and all(
        part == expected or expected.startswith("{") for part, expected in zip(parts, pattern, strict=True)
    )


def test_the_matrix_covers_every_route(client: TestClient) -> None:
    documented = {
        (method.upper(), path)
        for path, operations in client.app.openapi()["paths"].items()  # type: ignore[attr-defined]
        for method in operations
        if path not in PUBLIC
    }

    exercised = {
        (method, template)
        for method, template in documented
        if any(method == row[0] and _matches(row[1], template) for row in MATRIX)
    }
    assert exercised == documented


@pytest.fixture
def headers(issue_token: Callable[..., str]) -> dict[str | None, dict[str, str]]:
    return {
        None: {},
        "host": bearer(issue_token(TokenRole.HOST, "web-01")),
        "controller": bearer(issue_token(TokenRole.CONTROLLER)),
        "admin": bearer(issue_token(TokenRole.ADMIN)),
    }


@pytest.mark.parametrize(("method", "path", "body", "admitted"), MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
def test_each_route_admits_the_roles_the_matrix_gives(
    client: TestClient,
    headers: dict[str | None, dict[str, str]],
    method: str,
    path: str,
    body: Any,
    admitted: frozenset[str],
) -> None:
    assert client.request(method, path, headers=headers[None], json=body).status_code == 401
    for role in ("host", "controller", "admin"):
        if (method, path, role) in NOT_RUN:
            continue
        answer = client.request(method, path, headers=headers[role], json=body)
        if role in admitted:
            assert answer.status_code not in (401, 403), f"{role}: {answer.text}"
        else:
            assert answer.status_code == 403, f"{role}: {answer.status_code} {answer.text}"
