# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The host_info action against recorded bridge answers."""

from __future__ import annotations

import copy
import json
from typing import Any
from unittest.mock import MagicMock

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.wuacache.wua.plugins.action.host_info import ActionModule

# What the bridge answers for "info" on Windows Server 2022 (Win32_OperatingSystem.ProductType 3).
WS2022_INFO: dict[str, Any] = {
    "computer_name": "WS2022-01",
    "wua_version": "10.0.20348.2227",
    "os": {
        "caption": "Microsoft Windows Server 2022 Standard",
        "version": "10.0.20348",
        "build_number": "20348",
        "ubr": 2227,
        "architecture": "64-bit",
        "product_type": 3,
        "last_boot_up_time": "2024-05-14T06:12:31.5000000Z",
    },
    "wuauserv": {"start_mode": "Manual", "state": "Start Pending", "recorded": None},
    "reboot_indicators": ["cbs_reboot_pending", "pending_file_rename"],
    "startup": {"logon_ui_ready": True, "servicing_in_progress": 1},
    "system_drive": {"device_id": "C:", "free_bytes": 41255329792, "size_bytes": 135838822400},
}


def answer(result: dict[str, Any]) -> dict[str, Any]:
    return {"rc": 0, "stdout": json.dumps({"protocol": 1, "operation": "info", "result": result}), "stderr": ""}


def make_action(response: dict[str, Any], *, args: dict[str, Any] | None = None, check_mode: bool = False) -> ActionModule:
    task = MagicMock(args=args or {}, async_val=0, check_mode=check_mode, action="wuacache.wua.host_info")
    action = ActionModule(task, MagicMock(), MagicMock(), loader=None, templar=None, shared_loader_obj=None)
    action._low_level_execute_command = MagicMock(return_value=response)
    return action


def test_reports_the_host_in_ansible_terms() -> None:
    result = make_action(answer(WS2022_INFO)).run(task_vars={})

    assert result == {
        "changed": False,
        "computer_name": "WS2022-01",
        "wua_version": "10.0.20348.2227",
        "os": {
            "caption": "Microsoft Windows Server 2022 Standard",
            "version": "10.0.20348",
            "build": 20348,
            "ubr": 2227,
            "architecture": "64-bit",
            "product_type": "server",
            "last_boot_time": "2024-05-14T06:12:31.5000000Z",
        },
        "wuauserv": {"start_mode": "manual", "state": "start_pending", "recorded": None},
        "reboot_pending": True,
        "reboot_indicators": ["cbs_reboot_pending", "pending_file_rename"],
        "startup_complete": True,
        "system_drive": {"device_id": "C:", "free_bytes": 41255329792, "size_bytes": 135838822400},
    }


@pytest.mark.parametrize(("product_type", "expected"), [(1, "workstation"), (2, "domain_controller"), (3, "server")])
def test_product_type(product_type: int, expected: str) -> None:
    info = copy.deepcopy(WS2022_INFO)
    info["os"]["product_type"] = product_type

    assert make_action(answer(info)).run(task_vars={})["os"]["product_type"] == expected


def test_no_indicator_means_no_reboot_pending_and_missing_ubr_stays_null() -> None:
    info = copy.deepcopy(WS2022_INFO)
    info["reboot_indicators"] = []
    info["os"]["ubr"] = None

    result = make_action(answer(info)).run(task_vars={})

    assert result["reboot_pending"] is False
    assert result["reboot_indicators"] == []
    assert result["os"]["ubr"] is None


@pytest.mark.parametrize(
    ("logon_ui_ready", "servicing_in_progress", "complete"),
    [(True, None, True), (True, 0, True), (True, 1, True), (True, 2, False), (False, 0, False)],
)
def test_startup_is_complete_once_the_logon_screen_is_ready_and_servicing_is_idle(
    logon_ui_ready: bool, servicing_in_progress: int | None, complete: bool
) -> None:
    info = copy.deepcopy(WS2022_INFO)
    info["startup"] = {"logon_ui_ready": logon_ui_ready, "servicing_in_progress": servicing_in_progress}

    assert make_action(answer(info)).run(task_vars={})["startup_complete"] is complete


def test_runs_in_check_mode() -> None:
    result = make_action(answer(WS2022_INFO), check_mode=True).run(task_vars={})

    assert result["changed"] is False
    assert result["computer_name"] == "WS2022-01"


def test_host_failure_names_the_hresult() -> None:
    error = {"hresult": -2147024891, "message": "Access is denied.", "call": "Microsoft.Update.AgentInfo.GetInfo"}
    response = {"rc": 1, "stdout": json.dumps({"protocol": 1, "operation": "info", "error": error}), "stderr": ""}

    result = make_action(response).run(task_vars={})

    assert result["failed"] is True
    assert result["hresult"] == "0x80070005"
    assert result["msg"].startswith("0x80070005 E_ACCESSDENIED: Access is denied.")
    assert "computer_name" not in result


def test_broken_answer_fails_without_hresult() -> None:
    result = make_action({"rc": 1, "stdout": "", "stderr": "The command line is too long."}).run(task_vars={})

    assert result["failed"] is True
    assert "hresult" not in result
    assert "The command line is too long." in result["msg"]


def test_unknown_option_is_refused_before_the_host_is_contacted() -> None:
    action = make_action(answer(WS2022_INFO), args={"category": "security"})

    with pytest.raises(AnsibleActionFail, match="category"):
        action.run(task_vars={})

    action._low_level_execute_command.assert_not_called()


def test_async_is_refused() -> None:
    action = make_action(answer(WS2022_INFO))
    action._task.async_val = 60

    with pytest.raises(AnsibleActionFail, match="does not support async"):
        action.run(task_vars={})
