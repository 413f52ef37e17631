"""Host reports through the API, built from the lab's Windows Update Agent.

Each host is an emulated Windows machine that scans a generated, signed
catalog placed on its disk; the same catalog is imported into the server's
database. :func:`scan_report` turns the agent's search result and history into
the report JSON, as the collection's bridge does. The oracle for files is the
generator's model, never the server's own catalog tables.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, event, func, select
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session, sessionmaker
from wuacache_lab.catalog import generate_catalog
from wuacache_lab.catalog.model import Bundle, Catalog, build_catalog
from wuacache_lab.pki import LabCA, ensure_lab_ca
from wuacache_lab.scanreport import ScanningHost
from wuacache_lab.windows.faults import set_host_fault

from wuacache_server.api.app import create_app
from wuacache_server.api.report_schemas import HostReportIn
from wuacache_server.api.routes.hosts import current_time
from wuacache_server.catalog.importer import import_catalog
from wuacache_server.config import Settings
from wuacache_server.db.engine import session_factory
from wuacache_server.db.models import (
    ACTIVE_DOWNLOAD_STATUSES,
    DownloadTask,
    HostReport,
    HostUpdate,
    HostUpdateFile,
    PayloadFile,
    TokenRole,
    queue_download,
    utcnow,
)
from wuacache_server.services.cleanup import run_cleanup
from wuacache_server.services.reports import ingest_report

UPDATES = 120
SEED = 7
BASE_URL = "http://127.0.0.1:8088"
ALLOW_ALL = {"default_allow": True}


@dataclass(frozen=True)
class Lab:
    root: Path
    ca: LabCA
    cab: Path
    cab_sha256: str
    files_dir: Path
    model: Catalog


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    root = tmp_path_factory.mktemp("reports")
    ca = ensure_lab_ca(root / "ca")
    summary = generate_catalog(root / "catalog", updates=UPDATES, seed=SEED, ca=ca, fragments_per_cab=40)
    return Lab(
        root=root,
        ca=ca,
        cab=summary.cab,
        cab_sha256=hashlib.sha256(summary.cab.read_bytes()).hexdigest(),
        files_dir=summary.files_dir,
        model=build_catalog(updates=UPDATES, seed=SEED),
    )


@pytest.fixture
def catalog(engine: Engine, lab: Lab) -> None:
    """The lab's catalog, imported into the server's database."""
    assert import_catalog(engine, lab.cab).imported


@pytest.fixture
def db(engine: Engine) -> sessionmaker[Session]:
    """Sessions of the test's own, to look at and change what the API stores."""
    return session_factory(engine)


@pytest.fixture
def controller(issue_token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(TokenRole.CONTROLLER)}"}


def scanning_host(lab: Lab, state_dir: Path, name: str, profile: str) -> ScanningHost:
    return ScanningHost(
        state_dir,
        name,
        profile,
        cab=lab.cab,
        cab_sha256=lab.cab_sha256,
        cab_date=lab.model.published,
        trusted_ca=lab.ca.ca_cert,
        files_dir=lab.files_dir,
    )


@pytest.fixture
def new_host(lab: Lab, tmp_path: Path) -> Callable[..., ScanningHost]:
    def make(name: str = "win10-01", profile: str = "win10-22h2") -> ScanningHost:
        return scanning_host(lab, tmp_path / "hosts", name, profile)

    return make


def post(client: TestClient, headers: dict[str, str], report: dict[str, Any], host: str | None = None) -> Any:
    answer = client.post(f"/api/v1/hosts/{host or report['hostname']}/reports", headers=headers, json=report)
    assert answer.status_code == 200, answer.text
    return answer.json()


def by_id(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["update_id"]: entry for entry in plan["updates"]}


def bundle(lab: Lab, update_id: str) -> Bundle:
    (found,) = (bundle for bundle in lab.model.bundles if bundle.update_id == update_id)
    return found


def expected_files(lab: Lab, reported: dict[str, Any]) -> list[dict[str, Any]]:
    """The model's files of the children the host reported, as a plan lists them."""
    children = {child.update_id: child for child in bundle(lab, reported["update_id"]).children}
    files = {file.digest: file for child in reported["bundled"] for file in children[child["update_id"]].files}.values()
    return sorted(
        (
            {
                "file_name": file.file_name,
                "url": f"{BASE_URL}/wua/{file.file_name}",
                "download_url": file.url,
                "sha1": file.digest,
                "size": file.size,
                "available": False,
            }
            for file in files
        ),
        key=lambda file: file["file_name"],
    )


def pick(report: dict[str, Any], wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    return next(update for update in report["updates"] if wanted(update))


def with_files(update: dict[str, Any]) -> bool:
    return any(child["download_urls"] for child in update["bundled"])


# The plan


@pytest.mark.usefixtures("catalog")
def test_a_report_is_answered_with_a_plan_naming_the_catalog_files(
    client: TestClient,
    controller: dict[str, str],
    new_host: Callable[..., ScanningHost],
    lab: Lab,
    db: sessionmaker[Session],
) -> None:
    host = new_host("WIN10-01")
    report = host.report(ALLOW_ALL)
    assert len(report["updates"]) >= 5

    plan = post(client, controller, report)

    assert plan["host"] == "win10-01"
    assert {entry["update_id"] for entry in plan["updates"]} == {update["update_id"] for update in report["updates"]}
    entries = by_id(plan)
    for reported in report["updates"]:
        entry = entries[reported["update_id"]]
        assert entry["revision_number"] == reported["revision_number"]
        assert entry["title"] == reported["title"]
        assert entry["status"] == "MISSING"
        assert entry["reason"] == "allowed by default_allow (no rule names it); files not yet on the server"
        assert entry["allowed"] is True and entry["delayed_until"] is None
        assert entry["files"] == expected_files(lab, reported)
    assert plan["counts"] == {"OK": 0, "PENDING": 0, "MISSING": len(report["updates"]), "DISCARDED": 0, "ERROR": 0}
    assert plan["warnings"] == []
    with db() as session:
        stored = session.scalars(select(HostUpdate)).all()
        assert {(row.update_id, row.status) for row in stored} == {(update_id, "MISSING") for update_id in entries}
        assert session.scalar(select(func.count()).select_from(HostReport)) == 1


@pytest.mark.usefixtures("catalog")
def test_the_stored_plan_is_the_answer_to_the_report(
    client: TestClient, controller: dict[str, str], new_host: Callable[..., ScanningHost]
) -> None:
    report = new_host().report({**ALLOW_ALL, "rule_sets": ["missing-one"]})

    answer = post(client, controller, report)

    assert answer["rule_sets"] == {"applied": [], "ignored": [], "unknown": ["missing-one"]}
    assert client.get("/api/v1/hosts/win10-01/plan", headers=controller).json() == answer


# Policy outcomes


def create_rule_set(client: TestClient, admin_headers: dict[str, str], **rules: Any) -> None:
    answer = client.post("/api/v1/rulesets", headers=admin_headers, json=rules)
    assert answer.status_code == 201, answer.text


@pytest.mark.usefixtures("catalog")
def test_rule_sets_allow_and_forbid_updates_and_the_rest_follows_default_allow(
    client: TestClient, controller: dict[str, str], admin_headers: dict[str, str], new_host: Callable[..., ScanningHost]
) -> None:
    report = new_host().report({})
    forbidden = pick(report, lambda update: bool(update["kb_ids"]))
    allowed = pick(report, lambda update: update is not forbidden and with_files(update))
    by_kb = pick(
        report, lambda update: update not in (forbidden, allowed) and bool(update["kb_ids"]) and with_files(update)
    )
    create_rule_set(
        client,
        admin_headers,
        name="prod",
        forbidden_kbs=forbidden["kb_ids"],
        allowed_updates=[allowed["update_id"], forbidden["update_id"]],
        allowed_kbs=[f"KB{by_kb['kb_ids'][0]}"],
    )
    report["assignment"] = {"rule_sets": ["prod"], "default_allow": False}

    entries = by_id(post(client, controller, report))

    assert entries[forbidden["update_id"]]["status"] == "DISCARDED"
    assert entries[forbidden["update_id"]]["reason"] == f"forbidden by rule set 'prod' (KB{forbidden['kb_ids'][0]})"
    assert entries[forbidden["update_id"]]["files"] == []
    assert entries[allowed["update_id"]]["status"] == "MISSING"
    assert entries[allowed["update_id"]]["reason"].startswith(
        f"allowed by rule set 'prod' (UpdateID {allowed['update_id']})"
    )
    assert entries[by_kb["update_id"]]["status"] == "MISSING"
    others = set(entries) - {forbidden["update_id"], allowed["update_id"], by_kb["update_id"]}
    assert others
    for update_id in others:
        assert entries[update_id]["status"] == "DISCARDED"
        assert entries[update_id]["reason"] == "no rule allows it and default_allow is false"
        assert entries[update_id]["allowed"] is False


@pytest.mark.usefixtures("catalog")
def test_the_host_s_allowed_severities_select_security_updates(
    client: TestClient, controller: dict[str, str], new_host: Callable[..., ScanningHost]
) -> None:
    report = new_host().report({"allowed_severities": "Critical,Important,Moderate,Low"})

    entries = by_id(post(client, controller, report))

    rated = {update["update_id"] for update in report["updates"] if update["msrc_severity"]}
    assert rated and rated != set(entries)
    for update in report["updates"]:
        entry = entries[update["update_id"]]
        if update["update_id"] in rated:
            assert entry["status"] == "MISSING"
            assert f"host assignment (severity {update['msrc_severity']})" in entry["reason"]
        else:
            assert entry["status"] == "DISCARDED"


@pytest.mark.usefixtures("catalog")
def test_install_delay_counts_from_the_last_deployment_change_in_utc(
    client: TestClient, controller: dict[str, str], new_host: Callable[..., ScanningHost]
) -> None:
    report = new_host().report({**ALLOW_ALL, "install_delay": "7d"})
    update = pick(report, with_files)
    changed = datetime.fromisoformat(update["last_deployment_change_time"])

    client.app.dependency_overrides[current_time] = lambda: changed + timedelta(days=1)  # type: ignore[attr-defined]
    entry = by_id(post(client, controller, report))[update["update_id"]]
    assert (entry["status"], entry["allowed"]) == ("DISCARDED", True)
    assert datetime.fromisoformat(entry["delayed_until"]) == changed + timedelta(days=7)
    assert "but delayed until" in entry["reason"] and "install_delay 7 days" in entry["reason"]
    assert entry["files"] == []

    client.app.dependency_overrides[current_time] = lambda: changed + timedelta(days=7)  # type: ignore[attr-defined]
    entry = by_id(post(client, controller, report))[update["update_id"]]
    assert (entry["status"], entry["delayed_until"]) == ("MISSING", None)
    assert entry["files"]


@pytest.mark.usefixtures("catalog")
def test_rule_sets_of_a_maturity_the_host_does_not_accept_are_ignored(
    client: TestClient, controller: dict[str, str], admin_headers: dict[str, str], new_host: Callable[..., ScanningHost]
) -> None:
    report = new_host().report({})
    update = pick(report, with_files)
    create_rule_set(client, admin_headers, name="preprod", maturity="PREPROD", allowed_updates=[update["update_id"]])
    create_rule_set(client, admin_headers, name="prod", maturity="PROD", forbidden_severities=["Low"])

    report["assignment"] = {"rule_sets": "preprod,prod"}
    plan = post(client, controller, report)
    assert plan["rule_sets"]["applied"] == ["prod"]
    assert plan["rule_sets"]["ignored"] == [
        "rule set 'preprod' ignored: its maturity PREPROD is not among the host's maturities (PROD)"
    ]
    assert by_id(plan)[update["update_id"]]["status"] == "DISCARDED"

    report["assignment"] = {"rule_sets": ["preprod", "prod"], "maturities": ["PREPROD"]}
    plan = post(client, controller, report)
    assert plan["rule_sets"]["applied"] == ["preprod"]
    assert by_id(plan)[update["update_id"]]["status"] == "MISSING"


@pytest.mark.usefixtures("catalog")
def test_a_failed_last_install_is_an_error_and_its_files_stay_needed(
    client: TestClient, controller: dict[str, str], new_host: Callable[..., ScanningHost], lab: Lab
) -> None:
    host = new_host()
    failing = pick(host.report({}), with_files)
    set_host_fault(host.state_dir, host.windows.name, "install_failure", hresult=0x80073712)
    host.install(failing["update_id"])

    report = host.report(ALLOW_ALL)
    entry = by_id(post(client, controller, report))[failing["update_id"]]

    assert entry["status"] == "ERROR"
    assert entry["reason"] == "allowed by default_allow (no rule names it), but the last install failed with 0x80073712"
    assert entry["files"] == expected_files(lab, failing)


@pytest.mark.usefixtures("catalog")
def test_an_update_installed_until_the_next_restart_is_pending_and_needs_no_file(
    client: TestClient, controller: dict[str, str], new_host: Callable[..., ScanningHost]
) -> None:
    host = new_host()
    restarting = pick(host.report({}), lambda update: with_files(update) and update["reboot_behaviour"] == 1)
    host.install(restarting["update_id"])

    report = host.report(ALLOW_ALL)
    entry = by_id(post(client, controller, report))[restarting["update_id"]]

    assert [update["reboot_required"] for update in report["updates"] if update["update_id"] == restarting["update_id"]] == [True]
    assert (entry["status"], entry["reason"], entry["files"]) == ("PENDING", "installed; the host's next restart completes it", [])
    set_host_fault(host.state_dir, host.windows.name, "reboot_seconds", seconds=0)
    host.windows.reboot()
    assert by_id(post(client, controller, host.report(ALLOW_ALL)))[restarting["update_id"]]["status"] == "OK"


@pytest.mark.usefixtures("catalog")
def test_only_the_newest_install_attempt_counts(
    client: TestClient, controller: dict[str, str], new_host: Callable[..., ScanningHost]
) -> None:
    report = new_host().report(ALLOW_ALL)
    update = pick(report, with_files)
    attempt = {"operation": 1, "update_id": update["update_id"], "revision_number": update["revision_number"]}
    report["history"] = [
        {**attempt, "result_code": 2, "hresult": 0, "date": "2024-03-02T10:00:00Z"},
        {**attempt, "result_code": 4, "hresult": -2147023293, "date": "2024-03-01T10:00:00Z"},
        {**attempt, "operation": 2, "result_code": 4, "hresult": -2147023293, "date": "2024-03-03T10:00:00Z"},
    ]

    assert by_id(post(client, controller, report))[update["update_id"]]["status"] == "MISSING"

    report["history"][1]["date"] = "2024-03-02T11:00:00Z"
    entry = by_id(post(client, controller, report))[update["update_id"]]
    assert entry["status"] == "ERROR"
    assert entry["reason"].endswith("the last install failed with 0x80070643")


@pytest.mark.usefixtures("catalog")
def test_an_installed_forbidden_update_is_ok_and_never_uninstalled(
    client: TestClient,
    controller: dict[str, str],
    admin_headers: dict[str, str],
    new_host: Callable[..., ScanningHost],
    lab: Lab,
) -> None:
    host = new_host()
    installed = pick(host.report({}), lambda update: bundle(lab, update["update_id"]).kind.name == "definition")
    host.install(installed["update_id"])
    create_rule_set(client, admin_headers, name="prod", forbidden_updates=[installed["update_id"]])

    entry = by_id(post(client, controller, host.report({"rule_sets": ["prod"]})))[installed["update_id"]]

    assert entry["status"] == "OK"
    assert entry["reason"] == (
        f"installed although forbidden by rule set 'prod' (UpdateID {installed['update_id']}); "
        "wuacache never uninstalls it"
    )
    assert entry["files"] == []


# Files state


def store(db: sessionmaker[Session], sha1s: Sequence[str]) -> None:
    """Mark the files published, as the fetcher does once it verified them."""
    with db() as session:
        session.execute(sql_update(PayloadFile).where(PayloadFile.sha1.in_(sha1s)).values(stored_at=utcnow()))
        session.commit()


def fetch(db: sessionmaker[Session], sha1s: Sequence[str]) -> None:
    """Queue a download of the files, as the fetcher does."""
    with db() as session:
        for payload_file_id in session.scalars(select(PayloadFile.id).where(PayloadFile.sha1.in_(sha1s))).all():
            queue_download(session, payload_file_id)
        session.commit()


@pytest.mark.usefixtures("catalog")
def test_files_state_makes_an_allowed_update_pending_or_missing(
    client: TestClient, controller: dict[str, str], new_host: Callable[..., ScanningHost], db: sessionmaker[Session]
) -> None:
    report = new_host().report(ALLOW_ALL)
    first = by_id(post(client, controller, report))
    sha1s = {update_id: [file["sha1"] for file in entry["files"]] for update_id, entry in first.items()}
    partly = next(update_id for update_id, digests in sha1s.items() if len(digests) >= 2)
    available, fetching, absent = [
        update_id for update_id, digests in sha1s.items() if digests and not set(digests) & set(sha1s[partly])
    ][:3]
    store(db, sha1s[available])
    fetch(db, sha1s[fetching])
    store(db, sha1s[partly][:1])
    fetch(db, sha1s[partly][1:])

    entries = by_id(post(client, controller, report))

    assert entries[available]["status"] == "PENDING"
    assert entries[available]["reason"].endswith("; files available on the server")
    assert all(file["available"] for file in entries[available]["files"])
    assert entries[fetching]["status"] == "PENDING"
    assert entries[fetching]["reason"].endswith("; files being fetched")
    assert not any(file["available"] for file in entries[fetching]["files"])
    assert entries[partly]["status"] == "PENDING"
    assert entries[partly]["reason"].endswith("; files being fetched")
    assert [file["available"] for file in entries[partly]["files"]].count(True) == 1
    assert entries[absent]["status"] == "MISSING"


# What the server never trusts


@pytest.mark.usefixtures("catalog")
def test_download_urls_the_catalog_does_not_give_are_ignored_and_never_planned(
    client: TestClient,
    controller: dict[str, str],
    new_host: Callable[..., ScanningHost],
    lab: Lab,
    db: sessionmaker[Session],
) -> None:
    announced: list[Sequence[int]] = []
    client.app.state.on_new_needs = announced.append  # type: ignore[attr-defined]
    report = new_host().report(ALLOW_ALL)
    update = pick(report, with_files)
    foreign = [
        "http://attacker.example/evil.exe",
        "http://download.windowsupdate.com/c/msdownload/update/software/secu/2024/01/not-in-the-catalog.cab",
    ]
    update["bundled"][0]["download_urls"].append(foreign[0])
    update["download_urls"].extend(foreign)
    with db() as session:
        files_before = session.scalar(select(func.count()).select_from(PayloadFile))

    answer = client.post("/api/v1/hosts/win10-01/reports", headers=controller, json=report)

    assert answer.status_code == 200
    assert not any(url in answer.text for url in foreign)
    plan = answer.json()
    assert by_id(plan)[update["update_id"]]["files"] == expected_files(lab, update)
    assert plan["warnings"] == [
        "2 download URL(s) reported for 1 update(s) are not the catalog's and are ignored: "
        "the server only fetches the files of its verified catalog"
    ]
    with db() as session:
        stored = session.scalars(select(HostUpdate).where(HostUpdate.update_id == update["update_id"])).one()
        assert stored.reported_urls == sorted(foreign)
        assert session.scalar(select(func.count()).select_from(PayloadFile)) == files_before
        (needed,) = announced
        needed_urls = set(session.scalars(select(PayloadFile.url).where(PayloadFile.id.in_(needed))))
    assert needed_urls == {file["download_url"] for entry in plan["updates"] for file in entry["files"]}
    assert not set(foreign) & needed_urls


@pytest.mark.usefixtures("catalog")
def test_an_update_the_catalog_does_not_know_gets_a_status_but_no_files(
    client: TestClient, controller: dict[str, str], new_host: Callable[..., ScanningHost], db: sessionmaker[Session]
) -> None:
    report = new_host().report(ALLOW_ALL)
    known = pick(report, with_files)
    unknown = {**known, "update_id": str(uuid.uuid4()), "title": "Not in the server's catalog"}
    unknown["bundled"] = [{**child, "update_id": str(uuid.uuid4())} for child in known["bundled"]]
    newer_revision = {**known, "revision_number": known["revision_number"] + 1}
    report["updates"] = [unknown, newer_revision]

    plan = by_id(post(client, controller, report))

    for update in (unknown, newer_revision):
        entry = plan[update["update_id"]]
        assert entry["status"] == "MISSING"
        assert entry["reason"].endswith(
            "; the server's catalog does not know this revision: the server cannot provide its files"
        )
        assert entry["files"] == []
    with db() as session:
        assert session.scalar(select(func.count()).select_from(HostUpdateFile)) == 0


@pytest.mark.usefixtures("catalog")
def test_children_the_catalog_does_not_bundle_with_the_update_bring_no_files(
    client: TestClient, controller: dict[str, str], new_host: Callable[..., ScanningHost], lab: Lab
) -> None:
    report = new_host().report(ALLOW_ALL)
    update, other = [update for update in report["updates"] if with_files(update)][:2]
    own_files = expected_files(lab, update)
    update["bundled"] = update["bundled"] + other["bundled"]  # a child of another bundle

    plan = post(client, controller, report)

    assert by_id(plan)[update["update_id"]]["files"] == own_files
    assert by_id(plan)[other["update_id"]]["files"] == expected_files(lab, other)
    assert plan["warnings"][0].endswith(
        "reported for 1 update(s) are not the catalog's and are ignored: "
        "the server only fetches the files of its verified catalog"
    )


# Needs announced to the fetcher


def ids_of(db: sessionmaker[Session], files: Sequence[dict[str, Any]]) -> set[int]:
    sha1s = [file["sha1"] for file in files]
    with db() as session:
        return set(session.scalars(select(PayloadFile.id).where(PayloadFile.sha1.in_(sha1s))))


@pytest.mark.usefixtures("catalog")
def test_new_needs_are_announced_once_and_never_for_stored_files(
    client: TestClient,
    controller: dict[str, str],
    new_host: Callable[..., ScanningHost],
    lab: Lab,
    db: sessionmaker[Session],
) -> None:
    announced: list[Sequence[int]] = []
    client.app.state.on_new_needs = announced.append  # type: ignore[attr-defined]
    report = new_host().report(ALLOW_ALL)
    first, second = [update for update in report["updates"] if len(expected_files(lab, update)) >= 2][:2]
    report["updates"] = [first]

    post(client, controller, report)
    assert [set(ids) for ids in announced] == [ids_of(db, expected_files(lab, first))]

    post(client, controller, report)
    assert len(announced) == 1  # nothing new

    second_files = expected_files(lab, second)
    store(db, [second_files[0]["sha1"]])
    report["updates"] = [first, second]
    post(client, controller, report)
    assert [set(ids) for ids in announced[1:]] == [ids_of(db, second_files[1:])]


# Bad input, tokens, history


def plan_of(client: TestClient, headers: dict[str, str], host: str = "win10-01") -> Any:
    answer = client.get(f"/api/v1/hosts/{host}/plan", headers=headers)
    assert answer.status_code == 200
    return answer.json()


def report_count(db: sessionmaker[Session]) -> int:
    with db() as session:
        return session.scalar(select(func.count()).select_from(HostReport)) or 0


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(report: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = report
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value

    return change


def _minimal_update() -> dict[str, Any]:
    return {
        "update_id": str(uuid.uuid4()),
        "revision_number": 1,
        "title": "Synthetic update",
        "last_deployment_change_time": "2024-01-09T18:00:00Z",
        "is_installed": False,
    }


MALFORMED: dict[str, Callable[[dict[str, Any]], None]] = {
    "bad-guid": _set("updates.0.update_id", "not-a-guid"),
    "other-host": _set("hostname", "win10-02"),
    "listed-twice": lambda report: report["updates"].append(
        {**report["updates"][0], "revision_number": report["updates"][0]["revision_number"] + 1}
    ),
    "naive-time": _set("updates.0.last_deployment_change_time", "2024-01-09T18:00:00"),
    "no-updates": lambda report: report.pop("updates"),
    "no-assignment": lambda report: report.pop("assignment"),
    "assignment-typo": _set("assignment", {"default_alow": True}),
    "bad-delay": _set("assignment", {"install_delay": "soon"}),
    "bad-kb": _set("updates.0.kb_ids", ["not-a-kb"]),
    "long-title": _set("updates.0.title", "x" * 1001),
    "hresult-range": _set("error_hresult", 2**33),
    "bad-result-code": lambda report: report["history"].append(
        {
            "operation": 1,
            "result_code": 9,
            "hresult": 0,
            "date": "2024-03-01T00:00:00Z",
            "update_id": report["updates"][0]["update_id"],
            "revision_number": 1,
        }
    ),
    "too-many-updates": lambda report: report.update(updates=[_minimal_update() for _ in range(5_001)]),
    "too-many-children": _set("updates.0.bundled", [{"update_id": str(uuid.uuid4()), "revision_number": 1}] * 65),
}


@pytest.mark.usefixtures("catalog")
@pytest.mark.parametrize("change", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_report_is_refused_and_changes_nothing(
    client: TestClient,
    controller: dict[str, str],
    new_host: Callable[..., ScanningHost],
    db: sessionmaker[Session],
    change: Callable[[dict[str, Any]], None],
) -> None:
    report = new_host().report(ALLOW_ALL)
    post(client, controller, report)
    before = plan_of(client, controller)
    bad = json.loads(json.dumps(report))
    bad["assignment"] = {"install_delay": "1d"}  # would change every decision
    change(bad)

    answer = client.post("/api/v1/hosts/win10-01/reports", headers=controller, json=bad)

    assert answer.status_code == 422
    assert answer.json()["detail"]
    assert "Traceback" not in answer.text
    assert plan_of(client, controller) == before
    assert report_count(db) == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"{", 422), (b"[]", 422), (b"null", 422), ("é".encode("latin-1"), 400)],
    ids=["truncated", "array", "null", "not-utf-8"],
)
def test_a_body_that_is_no_report_is_refused(
    client: TestClient, controller: dict[str, str], body: bytes, status: int
) -> None:
    answer = client.post(
        "/api/v1/hosts/win10-01/reports", headers={**controller, "Content-Type": "application/json"}, content=body
    )

    assert answer.status_code == status
    assert answer.json()["detail"]


@pytest.mark.usefixtures("catalog")
def test_an_oversized_report_is_refused_before_it_is_read(
    settings: Settings,
    engine: Engine,
    issue_token: Callable[..., str],
    new_host: Callable[..., ScanningHost],
    db: sessionmaker[Session],
) -> None:
    headers = {"Authorization": f"Bearer {issue_token(TokenRole.CONTROLLER)}"}
    report = new_host().report(ALLOW_ALL)
    small = {**report, "updates": report["updates"][:1]}
    limit = len(json.dumps(small)) + 100
    assert len(json.dumps(report)) > limit
    with TestClient(create_app(settings.model_copy(update={"max_report_bytes": limit}))) as client:
        before = post(client, headers, small)

        answer = client.post("/api/v1/hosts/win10-01/reports", headers=headers, json=report)

        assert answer.status_code == 413
        assert answer.json() == {"detail": f"the request body exceeds the limit of {limit} bytes"}
        assert plan_of(client, headers) == before
    assert report_count(db) == 1


@pytest.mark.usefixtures("catalog")
def test_a_host_token_reports_for_its_own_host_only(
    client: TestClient, issue_token: Callable[..., str], new_host: Callable[..., ScanningHost], db: sessionmaker[Session]
) -> None:
    report = new_host().report(ALLOW_ALL)
    url = "/api/v1/hosts/win10-01/reports"

    assert client.post(url, json=report).status_code == 401
    assert client.post(url, headers={"Authorization": "Bearer wua_unknown"}, json=report).status_code == 401
    other = client.post(
        url, headers={"Authorization": f"Bearer {issue_token(TokenRole.HOST, 'win10-02')}"}, json=report
    )
    assert other.status_code == 403
    assert other.json() == {"detail": "this token acts for host win10-02, not win10-01"}
    assert report_count(db) == 0

    own = {"Authorization": f"Bearer {issue_token(TokenRole.HOST, 'WIN10-01')}"}
    assert client.post("/api/v1/hosts/WIN10-01/reports", headers=own, json=report).status_code == 200
    admin = {"Authorization": f"Bearer {issue_token(TokenRole.ADMIN)}"}
    assert client.post(url, headers=admin, json=report).status_code == 200
    assert report_count(db) == 2


@pytest.mark.usefixtures("catalog")
def test_each_report_replaces_the_decisions_and_joins_the_history(
    client: TestClient,
    controller: dict[str, str],
    new_host: Callable[..., ScanningHost],
    db: sessionmaker[Session],
    lab: Lab,
) -> None:
    host = new_host()
    first = host.report(ALLOW_ALL)
    post(client, controller, first)
    installed = pick(first, lambda update: bundle(lab, update["update_id"]).kind.name == "definition")
    host.install(installed["update_id"])
    second = host.report(ALLOW_ALL)
    second["updates"] = [
        update for update in second["updates"] if update["update_id"] != first["updates"][-1]["update_id"]
    ]

    plan = post(client, controller, second)

    assert plan["counts"]["OK"] == 1
    with db() as session:
        reports = session.scalars(select(HostReport).order_by(HostReport.id)).all()
        assert [report.update_count for report in reports] == [len(first["updates"]), len(second["updates"])]
        assert reports[0].counts == {
            "OK": 0,
            "PENDING": 0,
            "MISSING": len(first["updates"]),
            "DISCARDED": 0,
            "ERROR": 0,
        }
        assert reports[1].counts["OK"] == 1
        assert reports[1].cab_sha256 == lab.cab_sha256
        assert reports[1].wuauserv_state == "Running"
        decided = {row.update_id: row.status for row in session.scalars(select(HostUpdate))}
    assert decided == {entry["update_id"]: entry["status"] for entry in plan["updates"]}
    assert set(decided) == {update["update_id"] for update in second["updates"]}
    assert decided[installed["update_id"]] == "OK"


@pytest.mark.usefixtures("catalog", "engine")
def test_the_history_keeps_the_newest_reports_of_each_host(
    settings: Settings, controller: dict[str, str], new_host: Callable[..., ScanningHost], db: sessionmaker[Session]
) -> None:
    hosts = [new_host("win10-01"), new_host("win11-02", "win11-23h2")]
    reports = {host.name: host.report(ALLOW_ALL) for host in hosts}
    failed_scan = {**reports["win10-01"], "error_hresult": 0x80247001 - (1 << 32)}
    with TestClient(create_app(settings.model_copy(update={"report_history": 2}))) as client:
        for report in (reports["win10-01"], reports["win11-02"], failed_scan, reports["win10-01"]):
            post(client, controller, report)

    with db() as session:
        history = session.execute(
            select(HostReport.host_id, HostReport.error).order_by(HostReport.host_id, HostReport.id)
        ).all()
    # win10-01 keeps its failed scan and the report after it; win11-02 its only one.
    assert [error for _, error in history] == ["the scan failed with 0x80247001", None, None]


@pytest.mark.usefixtures("catalog")
def test_reports_racing_each_other_all_land(
    client: TestClient, controller: dict[str, str], new_host: Callable[..., ScanningHost], db: sessionmaker[Session]
) -> None:
    report = new_host().report(ALLOW_ALL)
    bodies = [{**report, "hostname": name} for name in ("win10-01", "win10-01", "win10-02", "win10-03")]
    barrier = threading.Barrier(len(bodies))
    # The token's first use is recorded (a write); the race is between reports only.
    assert client.get("/api/v1/hosts", headers=controller).status_code == 200

    def send(body: dict[str, Any]) -> int:
        barrier.wait()
        return client.post(f"/api/v1/hosts/{body['hostname']}/reports", headers=controller, json=body).status_code

    with ThreadPoolExecutor(len(bodies)) as pool:
        statuses = list(pool.map(send, bodies))

    assert statuses == [200] * len(bodies)
    assert report_count(db) == len(bodies)
    with db() as session:
        assert session.scalar(select(func.count()).select_from(HostUpdate)) == 3 * len(report["updates"])


@pytest.mark.usefixtures("catalog")
def test_a_failed_scan_is_recorded_and_the_plan_kept(
    client: TestClient, controller: dict[str, str], new_host: Callable[..., ScanningHost], db: sessionmaker[Session]
) -> None:
    report = new_host().report(ALLOW_ALL)
    before = post(client, controller, report)
    failed = {**report, "updates": [], "error_hresult": 0x80247001 - 2**32}

    answer = post(client, controller, failed)

    assert answer["warnings"][0].startswith("the last scan failed (the scan failed with 0x80247001)")
    assert {**answer, "warnings": answer["warnings"][1:]} == before
    assert plan_of(client, controller) == answer
    with db() as session:
        latest = session.scalars(select(HostReport).order_by(HostReport.id.desc())).first()
        assert latest is not None and latest.error == "the scan failed with 0x80247001"
        assert session.scalar(select(func.count()).select_from(HostUpdate)) == len(report["updates"])


@pytest.mark.usefixtures("catalog")
def test_a_report_takes_the_same_few_statements_whatever_its_size(
    client: TestClient, controller: dict[str, str], new_host: Callable[..., ScanningHost]
) -> None:
    report = new_host().report(ALLOW_ALL)
    extra = [_minimal_update() for _ in range(300)]
    larger = {**report, "updates": report["updates"] + extra}
    # Failed installs on every other update: rows with and without a last result.
    failures = [
        {
            "operation": 1,
            "result_code": 4,
            "hresult": 0x80240022 - (1 << 32),
            "date": "2024-02-01T10:00:00Z",
            "update_id": update["update_id"],
            "revision_number": update["revision_number"],
        }
        for update in extra[::2]
    ]
    mixed = {**larger, "history": report["history"] + failures}
    statements: list[str] = []
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    # The first call records the token's use; later ones within a minute write nothing.
    assert client.get("/api/v1/hosts", headers=controller).status_code == 200
    # The first report sets the host's assignment, and records that: a few statements more, once.
    post(client, controller, report)

    counts = []
    for body in (report, larger, mixed):
        statements.clear()
        post(client, controller, body)
        counts.append(len(statements))

    assert counts[0] == counts[1] == counts[2], counts
    assert counts[0] <= 20, counts


# Reports and cleanups


@pytest.mark.usefixtures("catalog")
def test_a_report_during_a_cleanup_is_never_handed_a_file_the_cleanup_deletes(
    client: TestClient,
    controller: dict[str, str],
    new_host: Callable[..., ScanningHost],
    engine: Engine,
    db: sessionmaker[Session],
    settings: Settings,
) -> None:
    report = new_host().report(ALLOW_ALL)
    plan = post(client, controller, report)
    files = {file["file_name"]: file["sha1"] for entry in plan["updates"] for file in entry["files"]}
    assert files
    with db() as session:  # no host needs them any more: the cleanup would delete them
        session.execute(delete(HostUpdateFile))
        session.commit()
    settings.wua_dir.mkdir(parents=True)
    for name in files:
        (settings.wua_dir / name).write_bytes(b"verified")
    store(db, list(files.values()))
    run_recorded, report_decided = threading.Event(), threading.Event()

    def pause_after_recording_the_run(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        """Hold the cleanup after it recorded its run, before it reads anything, until the report decided."""
        if threading.current_thread() is threading.main_thread():
            return
        if run_recorded.is_set():
            assert report_decided.wait(30)
        elif statement.startswith("INSERT INTO cleanup_runs"):
            run_recorded.set()

    event.listen(engine, "before_cursor_execute", pause_after_recording_the_run)
    try:
        with db() as reporting, ThreadPoolExecutor(1) as executor:
            cleanup = executor.submit(run_cleanup, settings, db, utcnow())
            assert run_recorded.wait(30)
            # A report under way: it decided and answers, but has not committed yet.
            outcome = ingest_report(
                reporting, "win10-01", HostReportIn.model_validate(report), base_url=BASE_URL, now=utcnow()
            )
            handed_out = {file.file_name for entry in outcome.plan.updates for file in entry.files if file.available}
            assert handed_out == set(files)
            report_decided.set()
            time.sleep(0.5)  # time for the cleanup to decide what to delete, had it not to wait
            reporting.commit()
            cleanup.result(timeout=60)
    finally:
        event.remove(engine, "before_cursor_execute", pause_after_recording_the_run)

    with db() as session:
        stored = set(session.scalars(select(PayloadFile.file_name).where(PayloadFile.stored_at.is_not(None))))
        queued = set(
            session.scalars(
                select(PayloadFile.file_name)
                .join(DownloadTask, DownloadTask.payload_file_id == PayloadFile.id)
                .where(DownloadTask.status.in_(ACTIVE_DOWNLOAD_STATUSES))
            )
        )
    for name in handed_out:
        assert ((settings.wua_dir / name).exists() and name in stored) or name in queued, name
