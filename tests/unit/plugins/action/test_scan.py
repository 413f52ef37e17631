# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The scan action against recorded bridge answers and a recorded server."""

from __future__ import annotations

import re
from typing import Any

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.wuacache.wua.plugins.action.scan import ActionModule

from .conftest import FakeServer
from .recorded import (
    CAB_PATH,
    CAB_SHA256,
    CU,
    CU_ARM64,
    PREVIEW,
    SSU,
    Failure,
    RecordedHost,
    cab,
    info,
    make_action,
    plan,
    scan_answer,
)


# What a transfer of the catalog without the server's SHA-256 fails with: InvalidDataException's HRESULT.
COR_E_SYSTEM = -2146233087
ERROR_BUSY = -2147024726
ERROR_SHARING_VIOLATION = -2147024864


def scanning_host(
    *transfers: Any, held: dict[str, Any] | None = None, scan: dict[str, Any] | None = None
) -> RecordedHost:
    """A host whose root holds what ``held`` says (``info``'s arguments; the server's catalog by default),
    whose scans fetch the catalog as ``transfers`` say (a transfer's answer, or a failure), one per scan."""
    scans = [transfer if isinstance(transfer, Failure) else scan_answer(transfer=transfer) for transfer in transfers]
    return RecordedHost({"info": [info(**(held or {}))], "scan": scans or [scan or scan_answer()]})


def digest_mismatch(server: FakeServer) -> Failure:
    return Failure(
        COR_E_SYSTEM,
        f"The file downloaded from {server.url}/wua/wsusscn2.cab does not have the expected SHA256 {CAB_SHA256}.",
        "Save-HttpFile wsusscn2.cab",
    )


def run(server: FakeServer, host: RecordedHost, *, args: dict[str, Any] | None = None, task_vars: dict[str, Any] | None = None,
        check_mode: bool = False) -> dict[str, Any]:
    action = make_action(ActionModule, host, args={"server_url": server.url, **(args or {})}, check_mode=check_mode)
    return action.run(task_vars={"inventory_hostname": "WS2022-01.example.org", **(task_vars or {})})


def test_scan_reports_to_the_server_and_returns_its_plan(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = scanning_host()

    result = run(server, host, args={"server_token": "s3cret", "rule_sets": ["prod"], "install_delay": "7d"})

    # The host holds the server's catalog: nothing to fetch, and no call to ask for it.
    assert host.operations == ["info", "scan"]
    assert host.params("info") == [{"downloads": True}]
    assert host.params("scan") == [{"criteria": "IsInstalled=0 or IsInstalled=1",
                                    "wuauserv_after": {"start_mode": "Disabled", "running": False}}]
    assert result["changed"] is False
    assert "failed" not in result
    assert result["counts"] == {"OK": 1, "PENDING": 1, "MISSING": 0, "DISCARDED": 1, "ERROR": 0}
    assert result["cab"] == {"path": CAB_PATH, "sha256": CAB_SHA256, "status": "not_modified", "transferred": False}
    assert result["rule_sets"] == {"applied": ["prod"], "ignored": [], "unknown": []}
    cumulative = next(update for update in result["updates"] if update["update_id"] == CU)
    assert cumulative == {
        "update_id": CU, "revision_number": 200, "title": "2024-01 Cumulative Update", "kb": ["KB5034129"],
        "severity": "Critical", "status": "PENDING",
        "reason": "rule set 'prod': allowed_severities Critical; files available on the server",
        "allowed": True, "delayed_until": None, "installed": False, "downloaded": False, "can_request_user_input": False,
    }
    assert next(update for update in result["updates"] if update["update_id"] == SSU)["installed"] is True

    [(path, headers)] = [(request[1], request[2]) for request in server.requests if request[0] == "POST"]
    assert path == "/api/v1/hosts/ws2022-01.example.org/reports"
    assert headers["Authorization"] == "Bearer s3cret"
    sidecar_request = next(request for request in server.requests if request[1] == "/wua/wsusscn2.cab.sha256")
    assert "Authorization" not in sidecar_request[2]


def test_the_report_carries_the_scan_in_the_servers_terms(server: FakeServer) -> None:
    server.report_answers.append(plan())

    run(server, scanning_host(scan=scan_answer(cu_installed=True)), args={"rule_sets": ["prod", "pilot"], "install_delay": 7})

    [report] = server.reports
    assert report["hostname"] == "ws2022-01.example.org"
    assert report["os"] == {"caption": "Microsoft Windows Server 2022 Standard", "build": "20348.2227", "architecture": "64-bit"}
    assert report["wua_version"] == "10.0.20348.2227"
    assert report["cab_sha256"] == CAB_SHA256
    assert report["wuauserv_state"] == "Stopped"
    assert report["reboot_required"] is False
    assert report["assignment"] == {
        "rule_sets": ["prod", "pilot"], "default_allow": False, "allowed_severities": [], "install_delay": 7, "maturities": ["PROD"],
    }
    cumulative = next(update for update in report["updates"] if update["update_id"] == CU)
    assert cumulative["kb_ids"] == ["5034129"]
    assert cumulative["reboot_behaviour"] == 1
    assert cumulative["msrc_severity"] == "Critical"
    assert next(update for update in report["updates"] if update["update_id"] == PREVIEW)["msrc_severity"] is None
    # A bundle's files are its children's: the report lists them on the bundle too, each child keeping its own.
    assert len(cumulative["download_urls"]) == 3
    assert [child["update_id"] for child in cumulative["bundled"]][1] == CU_ARM64
    assert report["history"] == [{"operation": 1, "result_code": 2, "hresult": 0, "date": "2024-02-01T10:00:00.0000000Z",
                                  "update_id": CU, "revision_number": 200}]


def test_inventory_variables_are_the_fallback_and_the_task_wins(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = scanning_host()

    run(
        server,
        host,
        args={"maturities": ["PREPROD"], "server_url": server.url},
        task_vars={
            "wua_server_url": "http://unused.example",
            "wua_maturities": ["DEV"],
            "wua_allowed_severities": "Critical,Important",
            "wua_host_name": "ws-custom",
            "wua_wuauserv_after": "unchanged",
            "wua_criteria": "IsInstalled=0",
        },
    )

    [report] = server.reports
    assert report["assignment"]["maturities"] == ["PREPROD"]
    assert report["assignment"]["allowed_severities"] == ["Critical", "Important"]
    assert report["hostname"] == "ws-custom"
    # info found the service Manual and stopped: "unchanged" leaves it so.
    assert host.params("scan") == [{"criteria": "IsInstalled=0", "wuauserv_after": {"start_mode": "Manual", "running": False}}]


def test_a_disabled_host_is_skipped_without_contacting_anything(server: FakeServer) -> None:
    host = RecordedHost({})

    result = run(server, host, task_vars={"wua_enabled": False})

    assert result["skipped"] is True
    assert "enabled" in result["msg"]
    assert host.requests == []
    assert server.requests == []


def test_server_url_is_required() -> None:
    action = make_action(ActionModule, RecordedHost({}))

    with pytest.raises(AnsibleActionFail, match="server_url"):
        action.run(task_vars={"inventory_hostname": "ws2022-01"})


@pytest.mark.parametrize(
    "held",
    [
        {"catalog_sha256": None},  # no catalog yet
        {"catalog_sha256": "0" * 64},  # last month's, or a damaged copy
    ],
)
def test_a_catalog_other_than_the_servers_is_fetched_with_the_servers_digest(server: FakeServer, held: dict[str, Any]) -> None:
    server.report_answers.append(plan())
    host = scanning_host(cab("downloaded"), held=held)

    result = run(server, host)

    assert host.operations == ["info", "scan"]
    assert [params["cab"] for params in host.params("scan")] == [{"url": f"{server.url}/wua/wsusscn2.cab", "sha256": CAB_SHA256, "offset": 0}]
    assert result["changed"] is True
    assert result["cab"] == {"path": CAB_PATH, "sha256": CAB_SHA256, "status": "downloaded", "transferred": True}
    assert server.reports[0]["cab_sha256"] == CAB_SHA256


def test_a_partial_catalog_is_resumed_from_its_length(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = scanning_host(cab("resumed", transferred=1000), held={"catalog_sha256": None, "catalog_part_size": 4096})

    result = run(server, host)

    assert [params["cab"]["offset"] for params in host.params("scan")] == [4096]
    assert (result["cab"]["status"], result["changed"]) == ("resumed", True)


def test_a_partial_catalog_that_does_not_resume_into_the_servers_is_fetched_whole(server: FakeServer) -> None:
    server.report_answers.append(plan())
    # The part began last month's catalog: resumed, it does not have the server's digest, and is deleted.
    host = scanning_host(digest_mismatch(server), cab("downloaded"), held={"catalog_sha256": "0" * 64, "catalog_part_size": 4096})

    result = run(server, host)

    assert [params["cab"]["offset"] for params in host.params("scan")] == [4096, 0]
    assert "failed" not in result
    assert result["cab"]["status"] == "downloaded"


def test_a_whole_catalog_without_the_servers_digest_fails_the_scan_unreported(server: FakeServer) -> None:
    host = scanning_host(digest_mismatch(server), held={"catalog_sha256": None})

    result = run(server, host)

    assert result["failed"] is True
    assert (result["hresult"], CAB_SHA256 in result["msg"]) == ("0x80131501", True)
    assert "Save-HttpFile wsusscn2.cab" in result["msg"]
    assert host.operations == ["info", "scan"]
    # A catalog the host could not fetch is no failed scan: the server keeps the last one.
    assert server.reports == []


def test_check_mode_scans_and_reports_too(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = scanning_host()

    result = run(server, host, check_mode=True)

    assert host.operations == ["info", "scan"]
    assert len(server.reports) == 1
    assert result["counts"]["PENDING"] == 1


def test_a_refused_report_fails_with_the_servers_detail(server: FakeServer) -> None:
    server.report_answers.append((422, {"detail": "assignment: install_delay must be a duration from 0 to 365d"}))

    result = run(server, scanning_host(), args={"server_token": "s3cret", "install_delay": "900d"})

    assert result["failed"] is True
    assert "HTTP 422" in result["msg"]
    assert "install_delay must be a duration" in result["msg"]
    assert "s3cret" not in str(result)


def test_a_failed_scan_names_the_hresult_and_reaches_the_server(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = RecordedHost({
        "info": [info()],
        "scan": [Failure(-2145095679, "Exception from HRESULT: 0x80247001", "IUpdateSearcher.Search")],
    })

    result = run(server, host)

    assert result["failed"] is True
    assert result["hresult"] == "0x80247001"
    assert result["msg"].startswith("0x80247001 WU_E_OL_INVALID_SCANFILE")
    # The server records the failure and keeps the host's last plan.
    [report] = server.reports
    assert (report["error_hresult"], report["updates"], report["cab_sha256"]) == (0x80247001, [], CAB_SHA256)


def test_a_host_busy_with_another_run_fails_the_scan_without_reporting_or_retrying(server: FakeServer) -> None:
    busy = "Another run holds this host: 'run-1', since 2024-05-14T06:12:31.5000000Z, until 2024-05-14T08:22:31.5000000Z at the latest."
    host = RecordedHost({"info": [info()], "task_start": [Failure(ERROR_BUSY, busy, "host.lock")]})

    result = run(server, host)

    assert result["failed"] is True
    assert (result["hresult"], result["msg"]) == ("0x800700AA", f"0x800700AA ERROR_BUSY: {busy} (bridge operation 'task_start', call host.lock)")
    # One start, refused, and nothing the host did not do reaches the server.
    assert host.operations == ["info", "scan"]
    assert server.reports == []


def test_a_run_that_left_its_folder_behind_is_a_warning_of_the_scan(server: FakeServer) -> None:
    server.report_answers.append(plan())
    in_use = {
        "hresult": ERROR_SHARING_VIOLATION,
        "message": "The process cannot access the file 'C:\\ProgramData\\wuacache\\runs\\run-1\\envelope.json' "
        "because it is being used by another process.",
        "call": "Remove-Item run folder",
    }
    host = RecordedHost({"info": [info()], "scan": [scan_answer()], "task_collect": [in_use]})

    result = run(server, host)

    assert "failed" not in result
    assert result["counts"]["PENDING"] == 1
    [warning] = result["warnings"]
    assert re.fullmatch(
        r"The elevated run run-[0-9a-f]{32} left its scheduled task or folder on the host: 0x80070020 ERROR_SHARING_VIOLATION: "
        r"The process cannot access the file .*envelope\.json' because it is being used by another process\. "
        r"\(bridge operation 'task_collect', call Remove-Item run folder\)",
        warning,
    )


def test_an_unreachable_server_fails_clearly() -> None:
    host = RecordedHost({"info": [info()]})
    action = make_action(ActionModule, host, args={"server_url": "http://127.0.0.1:9"})

    result = action.run(task_vars={"inventory_hostname": "ws2022-01"})

    assert result["failed"] is True
    assert "GET http://127.0.0.1:9/wua/wsusscn2.cab.sha256 failed: the wuacache server could not be reached" in result["msg"]
    assert host.operations == ["info"]
