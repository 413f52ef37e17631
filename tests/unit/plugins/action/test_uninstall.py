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
from .recorded import SHUTDOWN_ACCEPTED, Failure, RecordedHost, info, make_action, plan, scan_answer

REBOOTED = "2024-05-14T07:40:02.1000000Z"


def run(server: FakeServer, host: RecordedHost, *, check_mode: bool = False, **args: Any) -> dict[str, Any]:
    action = make_action(ActionModule, host, args={"server_url": server.url, **args}, check_mode=check_mode, name="uninstall")
    return action.run(task_vars={"inventory_hostname": "ws2022-01"})


# The cumulative update packages of the host: the installed one of KB5034129, and an older one removed since.
CUMULATIVE_PACKAGES = [
    {"name": "Package_for_RollupFix~31bf3856ad364e35~amd64~~20348.2227.1.10", "state": "Installed",
     "description": "Fix for KB5034129", "support_information": "https://support.microsoft.com/help/5034129"},
    {"name": "Package_for_RollupFix~31bf3856ad364e35~amd64~~20348.2159.1.7", "state": "Superseded",
     "description": "Fix for KB5033118", "support_information": "http://support.microsoft.com/?kbid=5033118"},
]


def uninstalling_host(exit_code: int, **answers: list[Any]) -> RecordedHost:
    # info before wusa (how to leave wuauserv), and again for the rescan.
    return RecordedHost({
        "servicing_packages": [{"packages": CUMULATIVE_PACKAGES}],
        "uninstall": [{"method": "wusa", "exit_code": exit_code, "restart_needed": None}],
        "info": [info(), info()],
        "scan": [scan_answer()],
        **answers,
    })


def removing_host(restart_needed: bool, **answers: list[Any]) -> RecordedHost:
    """A host whose cumulative update package DISM removes."""
    return uninstalling_host(0, **{"uninstall": [{"method": "dism", "exit_code": None, "restart_needed": restart_needed}], **answers})


@pytest.mark.parametrize("kb", ["KB5034439", "kb5034439", "5034439"])
def test_uninstalls_then_rescans_and_reports(server: FakeServer, kb: str) -> None:
    server.report_answers.append(plan())
    host = uninstalling_host(0)

    result = run(server, host, kb=kb)

    # No cumulative update package names the KB: wusa.exe removes it.
    assert host.params("servicing_packages") == [{"name_like": "Package_for_RollupFix*"}]
    assert host.params("uninstall") == [
        {"kb": "5034439", "package_name": None, "wuauserv_after": {"start_mode": "Disabled", "running": False}}
    ]
    assert host.operations == ["info", "servicing_packages", "uninstall", "info", "scan"]
    assert len(server.reports) == 1
    assert (result["changed"], result["reboot_required"], result["kb"]) == (True, False, "KB5034439")
    assert (result["method"], result["package_name"], result["exit_code"]) == ("wusa", None, 0)
    assert "failed" not in result


@pytest.mark.parametrize(("restart_needed", "reboot_required"), [(True, True), (False, False)])
def test_a_cumulative_update_package_is_removed_by_dism(server: FakeServer, restart_needed: bool, reboot_required: bool) -> None:
    server.report_answers.append(plan())
    host = removing_host(restart_needed)

    result = run(server, host, kb="KB5034129")

    # The package whose description names the KB, not the older one.
    assert host.params("uninstall")[0]["package_name"] == CUMULATIVE_PACKAGES[0]["name"]
    assert (result["method"], result["package_name"], result["exit_code"]) == ("dism", CUMULATIVE_PACKAGES[0]["name"], None)
    assert (result["changed"], result["reboot_required"]) == (True, reboot_required)
    assert "failed" not in result


def test_a_package_found_by_its_support_information_only_is_removed_by_dism(server: FakeServer) -> None:
    server.report_answers.append(plan())
    package = dict(CUMULATIVE_PACKAGES[0], description="", support_information="http://support.microsoft.com/?kbid=5034129")
    host = removing_host(True, servicing_packages=[{"packages": [package]}])

    run(server, host, kb="5034129")

    assert host.params("uninstall")[0]["package_name"] == package["name"]


def test_a_kb_that_is_only_part_of_a_longer_number_is_not_its_package(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = uninstalling_host(2359303)

    # KB503412 is the beginning of KB5034129.
    run(server, host, kb="KB503412")

    assert host.params("uninstall")[0]["package_name"] is None


def test_a_package_no_longer_installed_is_not_removed_again(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = uninstalling_host(2359303)

    result = run(server, host, kb="KB5033118")

    assert host.params("uninstall")[0]["package_name"] is None
    assert (result["method"], result["changed"]) == ("wusa", False)


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


def test_a_package_dism_refuses_to_remove_fails_the_task_naming_its_hresult(server: FakeServer) -> None:
    refused = Failure(0x800F0825 - 2**32, "The package cannot be uninstalled.", "Remove-WindowsPackage")
    host = removing_host(False, uninstall=[refused])

    result = run(server, host, kb="KB5034129")

    assert result["failed"] is True
    assert result["hresult"] == "0x800F0825"
    assert "CBS_E_CANNOT_UNINSTALL" in result["msg"] and "Remove-WindowsPackage" in result["msg"]
