# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Uninstall an update from a Windows host by its KB (module documentation in plugins/modules/uninstall.py)."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from ansible.errors import AnsibleActionFail

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

_KB = re.compile(r"(?:KB)?([1-9][0-9]{0,9})", re.IGNORECASE)
# wusa.exe's exit codes that are no failure: done, done but waiting for a restart, and not installed
# (WU_S_ALREADY_UNINSTALLED).
_UNINSTALLED = 0
_UNINSTALLED_REBOOT_REQUIRED = 3010
_NOT_INSTALLED = 0x00240007
# A cumulative update's servicing package, whose name carries its build, not its KB.
_CUMULATIVE_PACKAGES = "Package_for_RollupFix*"


class ActionModule(PatchingAction):
    """Remove the KB's update (wusa.exe) or cumulative update package (DISM), then rescan so that the server learns of it."""

    OWN_OPTIONS: ClassVar[dict[str, dict[str, Any]]] = {
        "kb": {"type": "str", "required": True},
        "reboot": {"type": "bool", "default": False},
        "reboot_timeout": {"type": "int", "default": 1200},
    }

    def patch(self, patching: Patching, options: dict[str, Any], result: dict[str, Any]) -> None:
        match = _KB.fullmatch(options["kb"].strip())
        if match is None:
            raise AnsibleActionFail(f"kb must be a KB number such as KB5034441 or 5034441, not {options['kb']!r}")
        kb = match.group(1)
        result["kb"] = f"KB{kb}"

        if self._task.check_mode:
            scan = patching.scan()
            result.update(plan_result(scan))
            result["changed"] = any(kb in update["kb_article_ids"] and update["is_installed"] for update in scan.updates.values())
            return

        info = run_bridge(self, "info")
        package = cumulative_package_of(run_bridge(self, "servicing_packages", {"name_like": _CUMULATIVE_PACKAGES})["packages"], kb)
        answer = run_elevated(
            self,
            "uninstall",
            {"kb": kb, "package_name": package, "wuauserv_after": wuauserv_after(options, info)},
            timeout=options["timeout"],
        )
        exit_code = answer["exit_code"]
        result.update(method=answer["method"], package_name=package, exit_code=exit_code)
        if answer["method"] == "dism":
            changed, reboot_required = True, answer["restart_needed"]
        else:
            changed = exit_code in (_UNINSTALLED, _UNINSTALLED_REBOOT_REQUIRED)
            reboot_required = exit_code == _UNINSTALLED_REBOOT_REQUIRED
        rebooted = reboot_required and options["reboot"]
        if rebooted:
            reboot_host(self, timeout=options["reboot_timeout"])

        # Whatever the uninstall did, the server learns the host's state and its history.
        scan = patching.scan()
        result.update(plan_result(scan))
        result.update(
            changed=changed,
            reboot_required=result["reboot_required"] or (reboot_required and not rebooted),
            rebooted=rebooted,
        )
        if not changed and exit_code != _NOT_INSTALLED:
            result.update(
                failed=True,
                hresult=describe(exit_code).code,
                msg=f"wusa.exe could not uninstall KB{kb}: exit code {hresult_text(exit_code)}",
            )


def cumulative_package_of(packages: list[dict[str, Any]], kb: str) -> str | None:
    """The installed cumulative update package of ``kb``, if any: its description (``Fix for KB5034441``) or support
    information (``https://support.microsoft.com/help/5034441``) names the KB, as its update.mum does.

    wusa.exe /uninstall does not work on the combined package that carries a cumulative update with the servicing
    stack update; Microsoft's KB articles have the cumulative update's own package removed with DISM instead
    ("If you want to remove the LCU", MicrosoftDocs/azure-stack-docs azure-local/security-update/security-update.md).
    """
    names_kb = re.compile(rf"(?<![0-9]){kb}(?![0-9])")
    return next(
        (
            package["name"]
            for package in packages
            if package["state"] == "Installed"
            and any(names_kb.search(package[field] or "") for field in ("description", "support_information"))
        ),
        None,
    )
