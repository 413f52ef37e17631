# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Empty a Windows host's download staging (module documentation in plugins/modules/cleanup.py)."""

from __future__ import annotations

from typing import Any

from ansible_collections.wuacache.wua.plugins.plugin_utils._action import HostOperationAction


class ActionModule(HostOperationAction):
    """Ask the bridge to remove what downloads left in the host's staging and package folders."""

    OPERATION = "clean_staging"
    # The bridge cannot tell what it would remove without removing it.
    _supports_check_mode = False

    def to_result(self, answer: dict[str, Any]) -> dict[str, Any]:
        return {
            "changed": answer["removed_files"] > 0,
            "removed_files": answer["removed_files"],
            "removed_bytes": answer["removed_bytes"],
        }
