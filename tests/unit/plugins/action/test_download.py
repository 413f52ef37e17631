# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The download action against recorded bridge answers and a recorded server."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from ansible_collections.wuacache.wua.plugins.action.download import ActionModule

from ..conftest import FakeClock
from .conftest import FakeServer
from .recorded import (
    CU,
    CU_ARM64,
    CU_CONTENT,
    CU_FILE,
    CU_X64,
    SHARED_CONTENT,
    SHARED_FILE,
    Failure,
    RecordedHost,
    downloaded,
    info,
    make_action,
    plan,
    scan_answer,
)


def run(server: FakeServer, host: RecordedHost, *, check_mode: bool = False, **args: Any) -> dict[str, Any]:
    action = make_action(ActionModule, host, args={"server_url": server.url, **args}, check_mode=check_mode, name="download")
    return action.run(task_vars={"inventory_hostname": "ws2022-01"})


def host_with(*download_answers: Any, scan: dict[str, Any] | None = None) -> RecordedHost:
    return RecordedHost({
        "info": [info()], "scan": [scan or scan_answer()], "download": list(download_answers),
    })


def test_downloads_the_allowed_update_through_its_bundled_children(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = host_with({"updates": [downloaded(CU)]})

    result = run(server, host)

    [params] = host.params("download")
    assert params["criteria"] == f"UpdateID='{CU}'"
    assert params["wuauserv_after"] == {"start_mode": "Disabled", "running": False}
    cu_file = CU_FILE.rsplit("/", 1)[-1]
    shared_file = SHARED_FILE.rsplit("/", 1)[-1]
    shared = {"url": f"https://wuacache.example/wua/{shared_file}", "name": shared_file,
              "sha1": hashlib.sha1(SHARED_CONTENT).hexdigest(), "offset": 0}
    # The shared file goes to both children; each child gets exactly the files it lists.
    assert params["files"] == {
        CU_X64: [{"url": f"https://wuacache.example/wua/{cu_file}", "name": cu_file,
                  "sha1": hashlib.sha1(CU_CONTENT).hexdigest(), "offset": 0}, shared],
        CU_ARM64: [shared],
    }
    assert result["changed"] is True
    assert "failed" not in result
    [outcome] = result["downloads"]
    assert outcome["downloaded"] is True
    assert next(update for update in result["updates"] if update["update_id"] == CU)["downloaded"] is True


@pytest.mark.parametrize(
    ("cu_part_size", "cu_offset"),
    [
        (5, 5),  # a partial file the plan's size says is shorter than the whole: resumed
        (17, 0),  # as long as the whole: a range from its end would be refused, so the transfer starts over
        (None, 0),
    ],
)
def test_partial_files_the_host_holds_are_resumed_from_their_length(
    server: FakeServer, cu_part_size: int | None, cu_offset: int
) -> None:
    server.report_answers.append(plan())
    cu_file = CU_FILE.rsplit("/", 1)[-1]
    shared_file = SHARED_FILE.rsplit("/", 1)[-1]
    part_sizes = {shared_file: 3} if cu_part_size is None else {cu_file: cu_part_size, shared_file: 3}
    host = RecordedHost({
        "info": [info(staged_part_sizes=part_sizes)], "scan": [scan_answer()], "download": [{"updates": [downloaded(CU)]}],
    })

    run(server, host)

    files = host.params("download")[0]["files"]
    assert [file["offset"] for file in files[CU_X64] if file["name"] == cu_file] == [cu_offset]
    # Both children list the shared file: the host fetches it twice, and only the first transfer would find its part.
    assert [file["offset"] for child_files in files.values() for file in child_files if file["name"] == shared_file] == [0, 0]


def test_direct_download_takes_the_files_from_microsoft(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = host_with({"updates": [downloaded(CU)]})

    run(server, host, direct_download=True)

    assert [file["url"] for file in host.params("download")[0]["files"][CU_X64]] == [CU_FILE, SHARED_FILE]


def test_a_failed_download_fails_the_task_with_the_hresult_name(server: FakeServer) -> None:
    server.report_answers.append(plan())
    error = {"hresult": -2145099769, "message": "Exception from HRESULT: 0x80246007", "call": "IUpdate.CopyToCache"}
    host = host_with({"updates": [downloaded(CU, is_downloaded=False, error=error)]})

    result = run(server, host)

    assert result["failed"] is True
    [outcome] = result["downloads"]
    assert (outcome["hresult"], outcome["hresult_name"]) == ("0x80246007", "WU_E_DM_NOTDOWNLOADED")
    assert "1 of 1 updates could not be downloaded" in result["msg"]
    assert "0x80246007 WU_E_DM_NOTDOWNLOADED" in result["msg"]
    assert "IUpdate.CopyToCache" in result["msg"]


def test_files_not_yet_on_the_server_wait_for_a_later_run(server: FakeServer) -> None:
    server.report_answers.append(plan("MISSING", available=False))
    host = host_with()

    result = run(server, host)

    assert "download" not in host.operations
    assert "failed" not in result
    assert result["changed"] is False
    [outcome] = result["downloads"]
    assert outcome["waiting"] is True


def test_wait_for_files_polls_the_plan_until_the_server_has_them(server: FakeServer, clock: FakeClock) -> None:
    server.report_answers.append(plan("MISSING", available=False))
    server.plan_answers.extend([plan("MISSING", available=False), plan("MISSING", available=True)])
    host = host_with({"updates": [downloaded(CU)]})

    result = run(server, host, wait_for_files=60)

    assert [request[1] for request in server.requests if request[0] == "GET" and request[1].endswith("/plan")] == [
        "/api/v1/hosts/ws2022-01/plan"
    ] * 2
    assert clock.sleeps == [10.0, 10.0]
    assert result["downloads"][0]["downloaded"] is True


def test_an_installed_or_downloaded_update_is_not_downloaded_again(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = host_with(scan=scan_answer(cu_downloaded=True))

    result = run(server, host)

    assert "download" not in host.operations
    assert result["downloads"] == []
    assert result["changed"] is False


def test_check_mode_lists_what_would_be_downloaded_and_downloads_nothing(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = host_with()

    result = run(server, host, check_mode=True)

    assert host.operations == ["info", "scan"]
    assert result["downloads"] == [{"update_id": CU, "title": "2024-01 Cumulative Update"}]
    assert result["changed"] is True


def test_an_elevated_run_that_fails_fails_the_task(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = host_with(Failure(-2147024891, "Access is denied.", "Initialize-PrivateFolder"))

    result = run(server, host)

    assert result["failed"] is True
    assert result["hresult"] == "0x80070005"
    assert "Initialize-PrivateFolder" in result["msg"]
