# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Empty a Windows host's download staging (module documentation in plugins/modules/cleanup.py)."""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase

from ansible_collections.wuacache.wua.plugins.plugin_utils._bridge import BridgeError, failure_result, run_bridge


class ActionModule(ActionBase):
    """Ask the bridge to remove what downloads left in the host's staging and package folders."""

    _VALID_ARGS = frozenset()
    # The bridge cannot tell what it would remove without removing it.
    _supports_check_mode = False
    _supports_async = False

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp

        self.validate_argument_spec(argument_spec={})

        try:
            cleaned = run_bridge(self, "clean_staging")
        except BridgeError as error:
            result.update(failure_result(error))
            return result

        result.update(
            changed=cleaned["removed_files"] > 0,
            removed_files=cleaned["removed_files"],
            removed_bytes=cleaned["removed_bytes"],
        )
        return result
