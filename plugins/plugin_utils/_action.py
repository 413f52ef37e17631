# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The bases of the actions: one bridge operation reported as is, or the server's plan carried out."""

# FOR INTERNAL COLLECTION USE ONLY: may change in any release.

from __future__ import annotations

from typing import Any, ClassVar

from ansible.plugins.action import ActionBase

from ansible_collections.wuacache.wua.plugins.plugin_utils._bridge import BridgeError, failure_result, run_bridge
from ansible_collections.wuacache.wua.plugins.plugin_utils._options import (
    argument_spec,
    task_options,
)
from ansible_collections.wuacache.wua.plugins.plugin_utils._patching import (
    TASK_FAILURES,
    Patching,
)


class HostOperationAction(ActionBase):
    """An action without options that runs one bridge operation, ``OPERATION``, and reports
    what :meth:`to_result` makes of its answer; a failure fails the task with its HRESULT."""

    OPERATION: ClassVar[str]

    _VALID_ARGS = frozenset()
    _supports_async = False

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp

        self.validate_argument_spec(argument_spec={})

        try:
            answer = run_bridge(self, self.OPERATION)
        except BridgeError as error:
            result.update(failure_result(error))
            return result

        result.update(self.to_result(answer))
        return result

    def to_result(self, answer: dict[str, Any]) -> dict[str, Any]:
        """The task's return values, ``changed`` included."""
        raise NotImplementedError


class PatchingAction(ActionBase):
    """An action that takes the shared options plus ``OWN_OPTIONS`` and carries out the server's plan on its host.

    Subclasses implement :meth:`patch`; a failure it raises (the host's, the
    server's, or a step's) fails the task with its message, keeping what the
    subclass put in the result until then.
    """

    OWN_OPTIONS: ClassVar[dict[str, dict[str, Any]]] = {}

    _supports_check_mode = True
    _supports_async = False

    # The host's name in the inventory, as the run's output names it.
    inventory_hostname: str | None = None
    # What went wrong without failing the task (_bridge.warn): the result's warnings.
    task_warnings: list[str] | None = None

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp
        self.inventory_hostname = (task_vars or {}).get("inventory_hostname")
        self.task_warnings = []

        options = task_options(self, task_vars or {}, argument_spec(**self.OWN_OPTIONS))
        if not options["enabled"]:
            result.update(skipped=True, changed=False, msg="wuacache.wua is not enabled for this host (option enabled)")
            return result

        try:
            self.patch(Patching(self, options), options, result)
        except TASK_FAILURES as error:
            result.update(failure_result(error))
        if self.task_warnings:
            result["warnings"] = [*result.get("warnings", []), *self.task_warnings]
        return result

    def patch(self, patching: Patching, options: dict[str, Any], result: dict[str, Any]) -> None:
        """Carry out the action, filling in ``result``."""
        raise NotImplementedError
