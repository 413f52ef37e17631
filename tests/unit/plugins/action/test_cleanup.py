# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The cleanup action against recorded bridge answers."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import MagicMock

from ansible_collections.wuacache.wua.plugins.action.cleanup import ActionModule


def answer(document: dict[str, Any], rc: int = 0) -> dict[str, Any]:
    return {"rc": rc, "stdout": json.dumps({"protocol": 1, "operation": "clean_staging", **document}), "stderr": ""}


def run(response: dict[str, Any]) -> tuple[dict[str, Any], MagicMock]:
    task = MagicMock(args={}, async_val=0, check_mode=False, action="wuacache.wua.cleanup")
    action = ActionModule(task, MagicMock(), MagicMock(), loader=None, templar=None, shared_loader_obj=None)
    action._low_level_execute_command = MagicMock(return_value=response)
    return action.run(task_vars={}), action._low_level_execute_command


def test_reports_what_was_removed_as_a_change() -> None:
    result, execute = run(answer({"result": {"removed_files": 3, "removed_bytes": 7340032}}))

    assert result == {"changed": True, "removed_files": 3, "removed_bytes": 7340032}
    [call] = execute.call_args_list
    envelope = json.loads(call.kwargs["in_data"])
    assert envelope["request"] == {"protocol": 1, "operation": "clean_staging", "params": {}}


def test_nothing_to_remove_is_no_change() -> None:
    result = run(answer({"result": {"removed_files": 0, "removed_bytes": 0}}))[0]

    assert result == {"changed": False, "removed_files": 0, "removed_bytes": 0}


def test_a_failure_names_its_hresult() -> None:
    error = {"hresult": -2147024891, "message": "Access to the path is denied.", "call": "Remove-Item staging"}
    result = run(answer({"error": error}, rc=1))[0]

    assert result["failed"] is True
    assert result["hresult"] == "0x80070005"
    assert "E_ACCESSDENIED" in result["msg"]
    assert "Remove-Item staging" in result["msg"]
