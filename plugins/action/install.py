# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Install the updates the server's plan allows on a Windows host (module documentation in plugins/modules/install.py)."""

from __future__ import annotations

from typing import Any, ClassVar

from ansible_collections.wuacache.wua.plugins.plugin_utils._action import PatchingAction
from ansible_collections.wuacache.wua.plugins.plugin_utils._bridge import BridgeError
from ansible_collections.wuacache.wua.plugins.plugin_utils._hresult import describe
from ansible_collections.wuacache.wua.plugins.plugin_utils._patching import (
    FAILED,
    Patching,
    PatchingError,
    Scan,
    failures_message,
    install_outcome,
    not_installed_outcome,
    plan_result,
    user_input_outcome,
)
from ansible_collections.wuacache.wua.plugins.plugin_utils._reboot import reboot_host


class ActionModule(PatchingAction):
    """Scan, download and install in rounds, rebooting between them when allowed."""

    OWN_OPTIONS: ClassVar[dict[str, dict[str, Any]]] = {
        "wait_for_files": {"type": "int", "default": 0},
        "reboot": {"type": "bool", "default": False},
        "reboot_timeout": {"type": "int", "default": 1200},
        "max_rounds": {"type": "int", "default": 3},
    }

    def patch(self, patching: Patching, options: dict[str, Any], result: dict[str, Any]) -> None:
        scan = patching.scan()
        if self._task.check_mode:
            result.update(plan_result(scan))
            to_patch = scan.to_patch()
            result["installs"] = [{"update_id": update["update_id"], "title": update["title"]} for update in to_patch] + [
                user_input_outcome(update["update_id"], update["title"]) for update in scan.needing_user_input()
            ]
            result["changed"] = result["cab"]["transferred"] or bool(to_patch)
            return

        rounds = Rounds(self, patching, options, scan)
        try:
            rounds.run()
        finally:
            # Whatever stopped the rounds, the task reports what they did.
            result.update(rounds.result())


class Rounds:
    """Install rounds: download, install, reboot if needed and allowed, rescan; until nothing is left to install."""

    def __init__(self, action: PatchingAction, patching: Patching, options: dict[str, Any], scan: Scan) -> None:
        self.action = action
        self.patching = patching
        self.options = options
        self.scan = scan
        self.cab_transferred = scan.cab["status"] != "not_modified"
        self.downloads: dict[str, dict[str, Any]] = {}
        self.installs: dict[str, dict[str, Any]] = {}
        self.rounds = 0
        # The excerpt of the servicing log read after the last install that failed.
        self.servicing_log: dict[str, Any] | None = None
        self.rebooted = False
        # An install asked for a reboot that has not happened.
        self.reboot_pending = False

    def run(self) -> None:
        if self.scan.reboot_required and self.options["reboot"]:
            # Complete what waits for a restart (ours or another installer's) before installing more.
            self._reboot()
            self.scan = self.patching.scan()
        while True:
            to_install = self._download()
            if not to_install:
                return
            installed_before = {update_id for update_id, outcome in self.installs.items() if outcome["installed"]}
            if set(to_install) <= installed_before:
                raise PatchingError(
                    f"Windows Update installed {', '.join(sorted(to_install))} in an earlier round, yet still finds them "
                    "not installed: stopping an update loop"
                )
            if self.rounds >= self.options["max_rounds"]:
                raise PatchingError(f"{len(to_install)} updates are still to install after {self.rounds} rounds (max_rounds)")
            self.rounds += 1

            try:
                answer = self.patching.install(to_install, self.scan.info)
            except BridgeError:
                self.servicing_log = self.patching.servicing_log([])
                raise
            if answer["reboot_required_before_installation"]:
                if not self.options["reboot"]:
                    raise PatchingError("Windows Update requires a reboot before it installs anything: set reboot to true to allow it")
                self._reboot()
                self.scan = self.patching.scan()
                continue

            outcomes = [install_outcome(update) for update in answer["updates"]]
            self.installs.update((outcome["update_id"], outcome) for outcome in outcomes)
            failures = [outcome["hresult"] for outcome in outcomes if not outcome["installed"]]
            if failures or answer["result_code"] in FAILED:
                # Read before a restart or another install adds to it.
                self.servicing_log = self.patching.servicing_log([*failures, describe(answer["hresult"] or 0).code])
            # Another revision than the scan's, found by the install's own search, that can ask for user input.
            self.installs.update(
                (skipped["update_id"].lower(), user_input_outcome(skipped["update_id"], skipped["title"])) for skipped in answer["skipped"]
            )
            answered = {update["update_id"].lower() for update in answer["updates"] + answer["skipped"]}
            for update_id in set(to_install) - answered:
                self.installs[update_id] = not_installed_outcome(
                    update_id, self.scan.updates[update_id]["title"], "the host's search did not return the update", skipped=False
                )
            self.reboot_pending = self.reboot_pending or answer["reboot_required"]
            if self.reboot_pending and self.options["reboot"]:
                self._reboot()
            # The rescan reports every install result to the server, through the update history.
            self.scan = self.patching.scan()
            if self.reboot_pending or not any(outcome["installed"] for outcome in outcomes):
                return

    def _download(self) -> list[str]:
        """Download what the current scan lacks; return the updates to install."""
        plan = self.patching.wait_for_files(self.scan, self.options["wait_for_files"])
        for update in self.scan.needing_user_input(plan):
            self.installs[update["update_id"]] = user_input_outcome(update["update_id"], update["title"])
        outcomes = self.patching.download(self.scan, plan)
        self.downloads.update((outcome["update_id"], outcome) for outcome in outcomes)
        downloaded = {outcome["update_id"] for outcome in outcomes if outcome["downloaded"]}
        return [
            update["update_id"]
            for update in self.scan.to_patch(plan)
            if self.scan.updates[update["update_id"]]["is_downloaded"] or update["update_id"] in downloaded
        ]

    def _reboot(self) -> None:
        reboot_host(self.action, timeout=self.options["reboot_timeout"])
        self.rebooted = True
        self.reboot_pending = False

    def result(self) -> dict[str, Any]:
        result = plan_result(self.scan)
        installs = list(self.installs.values())
        downloads = list(self.downloads.values())
        attempted = any(not outcome["skipped"] for outcome in installs)
        result.update(
            changed=self.cab_transferred or self.rebooted or any(outcome["downloaded"] for outcome in downloads) or attempted,
            downloads=downloads,
            installs=installs,
            installed=sum(outcome["installed"] for outcome in installs),
            failed_installs=sum(not outcome["installed"] and not outcome["skipped"] for outcome in installs),
            skipped_installs=sum(outcome["skipped"] for outcome in installs),
            reboot_required=result["reboot_required"] or self.reboot_pending,
            rebooted=self.rebooted,
            rounds=self.rounds,
        )
        if self.servicing_log is not None:
            result["servicing_log"] = self.servicing_log
        skipped = [outcome for outcome in installs if outcome["skipped"]]
        if skipped:
            titles = ", ".join(f"{outcome['title']} ({outcome['update_id']})" for outcome in skipped)
            result["warnings"] = [*result["warnings"], f"Not installed, since their installers can ask for user input: {titles}"]
        message = "; ".join(filter(None, (failures_message("downloaded", downloads), failures_message("installed", installs))))
        if message:
            result.update(failed=True, msg=message)
        return result
