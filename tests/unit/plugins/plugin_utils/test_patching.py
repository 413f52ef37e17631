"""Which of a plan's updates a patching task acts on."""

from __future__ import annotations

from typing import Any

from ansible_collections.wuacache.wua.plugins.plugin_utils._patching import Scan


def _entry(update_id: str, status: str, *, allowed: bool = True) -> dict[str, Any]:
    return {"update_id": update_id, "status": status, "allowed": allowed}


def test_updates_the_server_holds_in_error_are_not_patched() -> None:
    plan = {
        "updates": [
            _entry("failed-before", "ERROR"),
            _entry("unknown-rule-set", "ERROR", allowed=False),
            _entry("missing", "MISSING"),
            _entry("discarded", "DISCARDED", allowed=False),
        ]
    }
    scanned = {"is_installed": False, "reboot_required": False, "can_request_user_input": False}
    scan = Scan(
        info={},
        cab={},
        updates={entry["update_id"]: scanned for entry in plan["updates"]},
        reboot_required=False,
        plan=plan,
    )

    assert [update["update_id"] for update in scan.to_patch()] == ["failed-before", "missing"]
