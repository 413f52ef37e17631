# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Report what a Windows host needs before it can be patched (module documentation in plugins/modules/host_info.py)."""

from __future__ import annotations

from typing import Any

from ansible_collections.wuacache.wua.plugins.plugin_utils._action import HostOperationAction
from ansible_collections.wuacache.wua.plugins.plugin_utils._reboot import startup_unfinished

# Win32_OperatingSystem.ProductType
_PRODUCT_TYPES = {1: "workstation", 2: "domain_controller", 3: "server"}


class ActionModule(HostOperationAction):
    """Ask the bridge for the host's ``info`` and report it in Ansible's terms."""

    OPERATION = "info"
    _supports_check_mode = True

    def to_result(self, answer: dict[str, Any]) -> dict[str, Any]:
        return {"changed": False, **to_host_info(answer)}


def to_host_info(info: dict[str, Any]) -> dict[str, Any]:
    """Turn the raw values of the bridge's ``info`` operation into the module's return values."""
    os_info = info["os"]
    service = info["wuauserv"]
    drive = info["system_drive"]
    indicators = list(info["reboot_indicators"])
    return {
        "computer_name": info["computer_name"],
        "wua_version": info["wua_version"],
        "os": {
            "caption": os_info["caption"],
            "version": os_info["version"],
            "build": int(os_info["build_number"]),
            "ubr": os_info["ubr"],
            "architecture": os_info["architecture"],
            "product_type": _PRODUCT_TYPES.get(os_info["product_type"]),
            "last_boot_time": os_info["last_boot_up_time"],
        },
        "wuauserv": {
            # Win32_Service reports "Auto", "Start Pending"...: Ansible's Windows modules say "auto", "start_pending".
            "start_mode": _snake_case(service["start_mode"]),
            "state": _snake_case(service["state"]),
            "recorded": _recorded_state(service["recorded"]),
        },
        "reboot_pending": bool(indicators),
        "reboot_indicators": indicators,
        "startup_complete": startup_unfinished(info) is None,
        "system_drive": {
            "device_id": drive["device_id"],
            "free_bytes": drive["free_bytes"],
            "size_bytes": drive["size_bytes"],
        },
    }


def _recorded_state(recorded: dict[str, Any] | None) -> dict[str, Any] | None:
    """The state a run recorded before it started the service, in the words of the wuauserv_after option."""
    if recorded is None:
        return None
    return {"start_mode": recorded["start_mode"].lower(), "running": recorded["running"]}


def _snake_case(value: str) -> str:
    return value.lower().replace(" ", "_")
