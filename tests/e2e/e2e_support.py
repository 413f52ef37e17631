"""Helpers shared by the end-to-end tests."""

from __future__ import annotations

import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def task_results(output: dict, task_name: str) -> dict[str, dict]:
    """Per-host results of the task named ``task_name`` in a JSON callback output."""
    for play in output["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == task_name:
                return task["hosts"]
    raise AssertionError(f"no task named {task_name!r} in the playbook output")
