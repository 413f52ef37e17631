# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Install a package of the wuacache server on a Windows host (module documentation in plugins/modules/package.py)."""

from __future__ import annotations

import base64
from typing import Any, ClassVar, NamedTuple

from ansible_collections.wuacache.wua.plugins.plugin_utils._action import PatchingAction
from ansible_collections.wuacache.wua.plugins.plugin_utils._bridge import run_bridge, run_elevated
from ansible_collections.wuacache.wua.plugins.plugin_utils._hresult import describe
from ansible_collections.wuacache.wua.plugins.plugin_utils._options import wuauserv_after
from ansible_collections.wuacache.wua.plugins.plugin_utils._patching import (
    Patching,
    hresult_text,
    plan_result,
)
from ansible_collections.wuacache.wua.plugins.plugin_utils._reboot import reboot_host


class Success(NamedTuple):
    """What an exit code that is no failure means."""

    changed: bool
    reboot_required: bool


# The tool that installs each kind of package, and its exit codes that are no failure.
_TOOLS = {"msu": "wusa.exe", "cab": "dism.exe"}
_SUCCESSES: dict[str, dict[int, Success]] = {
    "msu": {
        0: Success(changed=True, reboot_required=False),
        3010: Success(changed=True, reboot_required=True),  # ERROR_SUCCESS_REBOOT_REQUIRED
        0x00240005: Success(changed=True, reboot_required=True),  # WU_S_REBOOT_REQUIRED
        0x00240006: Success(changed=False, reboot_required=False),  # WU_S_ALREADY_INSTALLED
    },
    "cab": {
        0: Success(changed=True, reboot_required=False),
        3010: Success(changed=True, reboot_required=True),
    },
}
# The states of a cabinet's package (Get-WindowsPackage's PackageState) in which DISM is not run: it is there already.
_INSTALLED_STATES = {
    "Installed": Success(changed=False, reboot_required=False),
    "InstallPending": Success(changed=False, reboot_required=True),
    "Superseded": Success(changed=False, reboot_required=False),  # a later package replaced it
}
# The exit code that says the package does not apply to the host (another OS, architecture or missing prerequisite).
_NOT_APPLICABLE = {"msu": (0x80240017, "WU_E_NOT_APPLICABLE"), "cab": (0x800F081E, "CBS_E_NOT_APPLICABLE")}


class ActionModule(PatchingAction):
    """Download a package from the server onto the host and install it, then rescan so that the server learns of it."""

    OWN_OPTIONS: ClassVar[dict[str, dict[str, Any]]] = {
        "name": {"type": "str", "required": True},
        "reboot": {"type": "bool", "default": False},
        "reboot_timeout": {"type": "int", "default": 1200},
    }

    def patch(self, patching: Patching, options: dict[str, Any], result: dict[str, Any]) -> None:
        package = patching.server.package(options["name"])
        result["package"] = package

        if self._task.check_mode:
            scan = patching.scan()
            result.update(plan_result(scan))
            # Without a KB, nothing tells whether the package is installed: it would be installed again.
            installed = package["kb"] is not None and any(
                package["kb"] in update["kb_article_ids"] and update["is_installed"] for update in scan.updates.values()
            )
            result["changed"] = not installed
            return

        kind = package["kind"]
        info = run_bridge(self, "info")
        answer = run_elevated(
            self,
            "install_package",
            {
                "url": package["url"],
                "name": package["name"],
                "sha256": base64.b64decode(package["sha256"]).hex(),
                "kind": kind,
                "installed_states": sorted(_INSTALLED_STATES),
                "wuauserv_after": wuauserv_after(options, info),
            },
            timeout=options["timeout"],
        )
        exit_code = answer["exit_code"]
        result.update(exit_code=exit_code, package_state=answer["package_state"], download=answer["download"])
        if exit_code is None:
            success: Success | None = _INSTALLED_STATES[answer["package_state"]]
        else:
            success = _SUCCESSES[kind].get(exit_code & 0xFFFFFFFF)
        rebooted = success is not None and success.reboot_required and options["reboot"]
        if rebooted:
            reboot_host(self, timeout=options["reboot_timeout"])

        # Whatever the tool did, the server learns the host's state and its history.
        scan = patching.scan()
        result.update(plan_result(scan))
        if success is None:
            result.update(
                changed=False,
                rebooted=False,
                failed=True,
                hresult=describe(exit_code).code,
                msg=_failure_message(package, exit_code),
            )
            return
        result.update(
            changed=success.changed,
            reboot_required=result["reboot_required"] or (success.reboot_required and not rebooted),
            rebooted=rebooted,
        )


def _failure_message(package: dict[str, Any], exit_code: int) -> str:
    kind = package["kind"]
    tool = _TOOLS[kind]
    not_applicable, name = _NOT_APPLICABLE[kind]
    if exit_code & 0xFFFFFFFF == not_applicable:
        return f"{package['name']} does not apply to this host: {tool} exited with {describe(exit_code).code} {name}"
    return f"{tool} could not install {package['name']}: exit code {hresult_text(exit_code)}"
