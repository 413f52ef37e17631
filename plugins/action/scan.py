# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Scan a Windows host against the offline catalog and report it to the server (module documentation in plugins/modules/scan.py)."""

from __future__ import annotations

from typing import Any

from ansible_collections.wuacache.wua.plugins.plugin_utils._action import PatchingAction
from ansible_collections.wuacache.wua.plugins.plugin_utils._patching import (
    Patching,
    plan_result,
)


class ActionModule(PatchingAction):
    """Refresh the host's catalog, scan, report, and return the server's plan."""

    def patch(self, patching: Patching, options: dict[str, Any], result: dict[str, Any]) -> None:
        # Check mode scans too: the catalog is the collection's own cache, and a scan changes nothing on the host.
        scan = patching.scan()
        result.update(plan_result(scan))
        result["changed"] = result["cab"]["transferred"]
