# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Download the updates a Windows host is to install into its Windows Update cache (module documentation in plugins/modules/download.py)."""

from __future__ import annotations

from typing import Any, ClassVar

from ansible_collections.wuacache.wua.plugins.plugin_utils._action import PatchingAction
from ansible_collections.wuacache.wua.plugins.plugin_utils._patching import (
    Patching,
    failures_message,
    plan_result,
)


class ActionModule(PatchingAction):
    """Scan, then download what the plan allows and the host lacks."""

    OWN_OPTIONS: ClassVar[dict[str, dict[str, Any]]] = {"wait_for_files": {"type": "int", "default": 0}}

    def patch(self, patching: Patching, options: dict[str, Any], result: dict[str, Any]) -> None:
        scan = patching.scan()
        result.update(plan_result(scan))
        result["changed"] = result["cab"]["transferred"]
        if self._task.check_mode:
            wanted = patching.downloads_wanted(scan, scan.plan)
            result["downloads"] = [{"update_id": update["update_id"], "title": update["title"]} for update in wanted]
            result["changed"] = result["changed"] or bool(wanted)
            return

        outcomes = patching.download(scan, patching.wait_for_files(scan, options["wait_for_files"]))
        result["downloads"] = outcomes
        downloaded = {outcome["update_id"] for outcome in outcomes if outcome["downloaded"]}
        for update in result["updates"]:
            update["downloaded"] = update["downloaded"] or update["update_id"] in downloaded
        result["changed"] = result["changed"] or bool(downloaded)
        message = failures_message("downloaded", outcomes)
        if message:
            result.update(failed=True, msg=message)
