# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The uninstall action: wusa.exe's exit codes, against recorded bridge answers and a recorded server."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.wuacache.wua.plugins.action.uninstall import ActionModule
from ansible_collections.wuacache.wua.plugins.plugin_utils._reboot import RESTART

from .conftest import FakeServer
from .recorded import SHUTDOWN_ACCEPTED, RecordedHost, info, make_action, plan, scan_answer

REBOOTED = "2024-05-14T07:40:02.1000000Z"


def run(server: FakeServer, host: RecordedHost, *, check_mode: bool = False, **args: Any) -> dict[str, Any]:
    action = make_action(ActionModule, host, args={"server_url": server.url, **args}, check_mode=check_mode, name="uninstall")
    return action.run(task_vars={"inventory_hostname": "ws2022-01"})


def uninstalling_host(exit_code: int, **answers: list[Any]) -> RecordedHost:
    # info before wusa (how to leave wuauserv), and again for the rescan.
    return RecordedHost(
        {"uninstall": [{"exit_code": exit_code}], "info": [info(), info()], "scan": [scan_answer()], **answers}
    )


@pytest.mark.parametrize("kb", ["KB5034439", "kb5034439", "5034439"])
def test_uninstalls_then_rescans_and_reports(server: FakeServer, kb: str) -> None:
    server.report_answers.append(plan())
    host = uninstalling_host(0)

    result = run(server, host, kb=kb)

    assert host.params("uninstall") == [{"kb": "5034439", "wuauserv_after": {"start_mode": "Disabled", "running": False}}]
    assert host.operations == ["info", "uninstall", "info", "scan"]
    assert len(server.reports) == 1
    assert (result["changed"], result["reboot_required"], result["kb"]) == (True, False, "KB5034439")
    assert "failed" not in result


def test_exit_code_3010_means_a_reboot_is_required(server: FakeServer) -> None:
    server.report_answers.append(plan())

    result = run(server, uninstalling_host(3010), kb="KB5034439")

    assert (result["changed"], result["reboot_required"], result["rebooted"]) == (True, True, False)


def test_exit_code_3010_with_reboot_restarts_the_host(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = uninstalling_host(
        3010, info=[info(), info(), info(REBOOTED), info(REBOOTED)], restart=[SHUTDOWN_ACCEPTED]
    )

    result = run(server, host, kb="KB5034439", reboot=True)

    assert host.params("restart") == [RESTART]
    assert (result["changed"], result["reboot_required"], result["rebooted"]) == (True, False, True)


def test_an_update_not_installed_is_no_change(server: FakeServer) -> None:
    server.report_answers.append(plan())

    result = run(server, uninstalling_host(2359303), kb="KB5034439")

    assert result["changed"] is False
    assert "failed" not in result


def test_another_exit_code_fails_naming_its_hresult_after_the_rescan(server: FakeServer) -> None:
    server.report_answers.append(plan())

    result = run(server, uninstalling_host(0x80240017 - 2**32), kb="KB5034439")

    assert result["failed"] is True
    assert result["hresult"] == "0x80240017"
    assert "0x80240017 WU_E_NOT_APPLICABLE" in result["msg"]
    assert len(server.reports) == 1


def test_a_malformed_kb_is_refused_before_the_host_is_contacted(server: FakeServer) -> None:
    host = RecordedHost({})

    with pytest.raises(AnsibleActionFail, match="KB number"):
        run(server, host, kb="KB-latest")

    assert host.requests == []


def test_check_mode_says_whether_the_kb_is_installed_and_uninstalls_nothing(server: FakeServer) -> None:
    server.report_answers.extend([plan(), plan()])
    installed_kb = RecordedHost({"info": [info()], "scan": [scan_answer()]})
    absent_kb = RecordedHost({"info": [info()], "scan": [scan_answer()]})

    # The servicing stack update is installed; the preview is not.
    assert run(server, installed_kb, check_mode=True, kb="KB5034439")["changed"] is True
    assert run(server, absent_kb, check_mode=True, kb="KB5034770")["changed"] is False
    assert "uninstall" not in installed_kb.operations + absent_kb.operations
