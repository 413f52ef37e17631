"""Reading hosts and their plans: listing, filters, summaries, and who may read what.

Reports here are written by hand and name updates no catalog knows: these
tests are about hosts, not files (``test_reports.py`` covers those).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from wuacache_server.db.models import TokenRole

HOSTS = "/api/v1/hosts"
CAB_SHA256 = "ab" * 32
NO_COUNTS = {"OK": 0, "PENDING": 0, "MISSING": 0, "DISCARDED": 0, "ERROR": 0}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def controller(issue_token: Callable[..., str]) -> dict[str, str]:
    return bearer(issue_token(TokenRole.CONTROLLER))


def _update(*, severity: str = "", installed: bool = False) -> dict[str, Any]:
    return {
        "update_id": str(uuid.uuid4()),
        "revision_number": 200,
        "title": f"{severity or 'Other'} update",
        "msrc_severity": severity,
        "last_deployment_change_time": "2024-01-09T18:00:00Z",
        "is_installed": installed,
    }


def report(name: str, *, missing: int = 0, discarded: int = 0, ok: int = 0) -> dict[str, Any]:
    """A report whose updates the policy decides MISSING (allowed, not in the catalog),
    DISCARDED (allowed by no rule) and OK (installed)."""
    return {
        "hostname": name,
        "os": {"caption": "Microsoft Windows 10 Pro", "build": "10.0.19045.3930", "architecture": "64-bit"},
        "wua_version": "10.0.19041.3996",
        "cab_sha256": CAB_SHA256,
        "cab_date": "2024-02-13T18:00:00Z",
        "scan_duration_seconds": 12.5,
        "reboot_required": True,
        "wuauserv_state": "Running",
        "assignment": {"allowed_severities": ["Critical"]},
        "updates": [_update(severity="Critical") for _ in range(missing)]
        + [_update() for _ in range(discarded)]
        + [_update(installed=True) for _ in range(ok)],
    }


def send(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    answer = client.post(f"{HOSTS}/{body['hostname']}/reports", headers=headers, json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture
def fleet(client: TestClient, controller: dict[str, str]) -> None:
    send(client, controller, report("web-02", missing=2, discarded=1))
    send(client, controller, report("web-01", ok=3))
    send(client, controller, report("db-01", missing=1, ok=1))


@pytest.mark.usefixtures("fleet")
def test_hosts_are_listed_by_name_with_their_updates_per_status(client: TestClient, controller: dict[str, str]) -> None:
    answer = client.get(HOSTS, headers=controller)

    assert answer.status_code == 200
    page = answer.json()
    assert page["total"] == 3
    assert [(host["name"], host["counts"]) for host in page["items"]] == [
        ("db-01", {**NO_COUNTS, "MISSING": 1, "OK": 1}),
        ("web-01", {**NO_COUNTS, "OK": 3}),
        ("web-02", {**NO_COUNTS, "MISSING": 2, "DISCARDED": 1}),
    ]
    first = page["items"][0]
    assert first["os_caption"] == "Microsoft Windows 10 Pro"
    assert (first["os_build"], first["wua_version"], first["cab_sha256"]) == (
        "10.0.19045.3930",
        "10.0.19041.3996",
        CAB_SHA256,
    )
    assert first["reboot_pending"] is True
    assert first["last_report_at"]


@pytest.mark.usefixtures("fleet")
@pytest.mark.parametrize(
    ("query", "names"),
    [
        ({"name_prefix": "web"}, ["web-01", "web-02"]),
        ({"name_prefix": "WEB-0"}, ["web-01", "web-02"]),
        ({"name_prefix": "web_"}, []),  # no wildcard: "_" is a character of host names
        ({"status": "MISSING"}, ["db-01", "web-02"]),
        ({"status": "OK", "name_prefix": "web"}, ["web-01"]),
        ({"status": "ERROR"}, []),
    ],
)
def test_hosts_are_filtered(
    client: TestClient, controller: dict[str, str], query: dict[str, str], names: list[str]
) -> None:
    page = client.get(HOSTS, headers=controller, params=query).json()

    assert [host["name"] for host in page["items"]] == names
    assert page["total"] == len(names)


@pytest.mark.usefixtures("fleet")
def test_hosts_are_paginated(client: TestClient, controller: dict[str, str]) -> None:
    pages = [client.get(HOSTS, headers=controller, params={"limit": 2, "offset": offset}).json() for offset in (0, 2)]

    assert [[host["name"] for host in page["items"]] for page in pages] == [["db-01", "web-01"], ["web-02"]]
    assert [page["total"] for page in pages] == [3, 3]


@pytest.mark.parametrize(
    "query", [{"limit": 0}, {"limit": 1001}, {"offset": -1}, {"status": "BROKEN"}, {"name_prefix": "x" * 254}]
)
def test_bad_list_parameters_are_refused(client: TestClient, controller: dict[str, str], query: dict[str, Any]) -> None:
    assert client.get(HOSTS, headers=controller, params=query).status_code == 422


@pytest.mark.usefixtures("fleet")
def test_a_host_shows_its_last_report(client: TestClient, controller: dict[str, str]) -> None:
    send(client, controller, {**report("web-02", missing=1), "error_hresult": 0x80247001 - 2**32, "updates": []})

    answer = client.get(f"{HOSTS}/web-02", headers=controller)

    assert answer.status_code == 200
    host = answer.json()
    assert host["name"] == "web-02"
    assert host["counts"] == {**NO_COUNTS, "MISSING": 2, "DISCARDED": 1}
    assert host["assignment"] == {"allowed_severities": ["Critical"]}
    assert host["assignment_set_by"].startswith("token ")
    last = host["last_report"]
    assert last["error"] == "the scan failed with 0x80247001"
    assert (last["update_count"], last["cab_sha256"], last["scan_duration_seconds"], last["wuauserv_state"]) == (
        0,
        CAB_SHA256,
        12.5,
        "Running",
    )
    assert last["cab_date"].startswith("2024-02-13T18:00:00")


@pytest.mark.usefixtures("fleet")
def test_a_plan_holds_updates_of_unknown_rule_sets_and_names_updates_the_catalog_lacks(
    client: TestClient, controller: dict[str, str]
) -> None:
    body = report("db-02", missing=1, ok=1)
    body["assignment"]["rule_sets"] = ["prod"]
    send(client, controller, body)
    plan = client.get(f"{HOSTS}/db-02/plan", headers=controller).json()

    assert plan["host"] == "db-02"
    assert plan["rule_sets"] == {"applied": [], "ignored": [], "unknown": ["prod"]}
    assert plan["counts"] == {**NO_COUNTS, "ERROR": 1, "OK": 1}
    assert plan["warnings"] == [
        "the assignment names unknown rule set(s) 'prod': the updates the other rules allow are held "
        "in ERROR until it names rule sets that exist"
    ]
    held = next(entry for entry in plan["updates"] if entry["status"] == "ERROR")
    assert held["reason"] == (
        "allowed by host assignment (severity Critical), but unknown rule set 'prod' is assigned: "
        "not installed until it exists"
    )
    assert held["allowed"] is False
    missing_plan = client.get(f"{HOSTS}/db-01/plan", headers=controller).json()
    missing = next(entry for entry in missing_plan["updates"] if entry["status"] == "MISSING")
    assert missing["reason"] == (
        "allowed by host assignment (severity Critical); files not yet on the server; "
        "the server's catalog does not know this revision: the server cannot provide its files"
    )
    assert missing["files"] == []


@pytest.mark.parametrize("path", ["", "/plan"])
def test_an_unknown_host_is_not_found(client: TestClient, controller: dict[str, str], path: str) -> None:
    answer = client.get(f"{HOSTS}/nobody{path}", headers=controller)

    assert answer.status_code == 404
    assert answer.json() == {"detail": "no report was ever received for host nobody"}


@pytest.mark.parametrize("name", ["bad%20name", "-dash-first", "a" * 254])
def test_a_host_name_that_is_none_is_refused(client: TestClient, controller: dict[str, str], name: str) -> None:
    assert client.get(f"{HOSTS}/{name}", headers=controller).status_code == 422
    assert client.post(f"{HOSTS}/{name}/reports", headers=controller, json=report(name)).status_code == 422


def test_hosts_are_named_in_lowercase(client: TestClient, controller: dict[str, str]) -> None:
    body = report("Web-01", missing=1)

    send(client, controller, body)

    assert [host["name"] for host in client.get(HOSTS, headers=controller).json()["items"]] == ["web-01"]
    assert client.get(f"{HOSTS}/WEB-01/plan", headers=controller).json()["host"] == "web-01"


@pytest.mark.usefixtures("fleet")
def test_a_host_token_reads_its_own_host_only(client: TestClient, issue_token: Callable[..., str]) -> None:
    own = bearer(issue_token(TokenRole.HOST, "web-01"))

    page = client.get(HOSTS, headers=own).json()
    assert [host["name"] for host in page["items"]] == ["web-01"]
    assert page["total"] == 1
    assert client.get(f"{HOSTS}/web-01", headers=own).status_code == 200
    assert client.get(f"{HOSTS}/web-01/plan", headers=own).status_code == 200
    for path in ("/web-02", "/web-02/plan", "/nobody"):
        answer = client.get(f"{HOSTS}{path}", headers=own)
        assert answer.status_code == 403
        assert answer.json()["detail"].startswith("this token acts for host web-01, not ")


@pytest.mark.parametrize("path", ["", "/web-01", "/web-01/plan"])
def test_reading_hosts_needs_a_token(client: TestClient, path: str) -> None:
    assert client.get(f"{HOSTS}{path}").status_code == 401
