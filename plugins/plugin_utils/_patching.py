# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The steps the patching actions share: scan and report, download, install.

The server decides, per update, a status and a reason (its plan); these steps
carry the plan out on one host, through the bridge. Updates the plan does not
allow (DISCARDED) or that are installed (OK) are never touched.
"""

# FOR INTERNAL COLLECTION USE ONLY: may change in any release.

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.wuacache.wua.plugins.plugin_utils import _servicing_log
from ansible_collections.wuacache.wua.plugins.plugin_utils._bridge import (
    BridgeError,
    run_bridge,
    run_elevated,
)
from ansible_collections.wuacache.wua.plugins.plugin_utils._hresult import describe
from ansible_collections.wuacache.wua.plugins.plugin_utils._options import (
    assignment,
    wuauserv_after,
)
from ansible_collections.wuacache.wua.plugins.plugin_utils._reboot import RebootError
from ansible_collections.wuacache.wua.plugins.plugin_utils._report import build_report
from ansible_collections.wuacache.wua.plugins.plugin_utils._server import (
    ServerError,
    WuacacheServer,
)

STATUSES = ("OK", "PENDING", "MISSING", "DISCARDED", "ERROR")
# Allowed, not delayed and not installed: what the host is to download and install.
# MISSING only means that the server had not the files when it decided; ERROR that the last install failed.
STATUSES_TO_PATCH = frozenset({"PENDING", "MISSING", "ERROR"})
# OperationResultCode
RESULT_CODES = {0: "not_started", 1: "in_progress", 2: "succeeded", 3: "succeeded_with_errors", 4: "failed", 5: "aborted"}
SUCCEEDED = frozenset({2, 3})
# orcFailed, orcAborted
FAILED = frozenset({4, 5})
display = Display()

# How often the plan is read again while waiting for the server to fetch files.
PLAN_POLL_INTERVAL = 10.0
# The call of a failed transfer of the catalog.
CATALOG_TRANSFER_CALL = "Save-HttpFile wsusscn2.cab"
# Why an update that can ask for user input is not installed.
USER_INPUT_SKIPPED = (
    "skipped: Windows Update says that its installer can ask for user input (InstallationBehavior.CanRequestUserInput), "
    "which nobody can give to an unattended install; install it interactively"
)


class PatchingError(AnsibleError):
    """A step cannot go on as the plan asks."""


# What fails a patching task with a message, rather than as an unreachable host or an internal error.
TASK_FAILURES = (BridgeError, ServerError, PatchingError, RebootError)


@dataclass(frozen=True)
class Scan:
    """One scan of the host, and the plan the server answered its report with."""

    info: dict[str, Any]
    cab: dict[str, Any]
    updates: dict[str, dict[str, Any]]  # the scan's updates by UpdateID
    reboot_required: bool
    plan: dict[str, Any]

    def to_patch(self, plan: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The plan's updates to download and install, that the scan found neither installed nor
        installed until the next restart, and that install unattended."""
        return [update for update in self._outstanding(plan) if not self.updates[update["update_id"]]["can_request_user_input"]]

    def needing_user_input(self, plan: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The plan's updates to patch that the scan says can ask for user input while they install
        (``InstallationBehavior.CanRequestUserInput``): left out, as Microsoft's install sample does,
        since nobody can answer in the SYSTEM task that installs."""
        return [update for update in self._outstanding(plan) if self.updates[update["update_id"]]["can_request_user_input"]]

    def _outstanding(self, plan: dict[str, Any] | None) -> list[dict[str, Any]]:
        return [
            update
            for update in (plan or self.plan)["updates"]
            if update["status"] in STATUSES_TO_PATCH
            # ERROR and not allowed: held by a rule set the host's assignment names but the server lacks.
            and update["allowed"]
            and not self.updates[update["update_id"]]["is_installed"]
            and not self.updates[update["update_id"]]["reboot_required"]
        ]


class Patching:
    """The shared steps, for the task's host, with the task's options."""

    def __init__(self, action: ActionBase, options: dict[str, Any]) -> None:
        self.action = action
        self.options = options
        self.server = WuacacheServer(
            options["server_url"],
            options["server_token"],
            validate_certs=options["validate_certs"],
            ca_path=options["ca_path"],
        )

    def scan(self) -> Scan:
        """Refresh the host's catalog, scan with it, report to the server and return its plan."""
        # What the host holds of downloads comes with it: the catalog's digest, and the partial files.
        info = run_bridge(self.action, "info", {"downloads": True})
        held = info["downloads"]["catalog"]
        cab_sha256 = self.server.cab_sha256()
        params = {"criteria": self.options["criteria"], "wuauserv_after": wuauserv_after(self.options, info)}
        if held["sha256"] != cab_sha256:
            # The run fetches the catalog before it scans, resuming the partial file the host holds.
            params["cab"] = {"url": self.server.cab_url, "sha256": cab_sha256, "offset": held["part_size"] or 0}
        started = time.monotonic()
        try:
            result = self._scan_run(params)
        except BridgeError as error:
            # A host busy with another run has not scanned, nor has one that could not fetch the catalog:
            # the server keeps what it knew.
            if error.hresult is not None and not error.host_busy and error.call != CATALOG_TRANSFER_CALL:
                self._report_failed_scan(info, cab_sha256, error, time.monotonic() - started)
            raise
        cab = cab_status(held, cab_sha256, result["cab"]["transfer"])
        report = build_report(
            host_name=self.options["host_name"],
            info=info,
            cab_sha256=cab["sha256"],
            scan=result,
            scan_duration_seconds=round(time.monotonic() - started, 3),
            assignment=assignment(self.options),
        )
        plan = self.server.post_report(self.options["host_name"], report)
        return Scan(
            info=info,
            cab=cab,
            updates={update["update_id"].lower(): update for update in result["updates"]},
            reboot_required=report["reboot_required"],
            plan=plan,
        )

    def _report_failed_scan(self, info: dict[str, Any], cab_sha256: str, error: BridgeError, duration: float) -> None:
        """Tell the server that the host's scan failed, and how: the server keeps the last plan."""
        report = build_report(
            host_name=self.options["host_name"],
            info=info,
            cab_sha256=cab_sha256,
            scan={"updates": [], "history": [], "reboot_required": False},
            scan_duration_seconds=round(duration, 3),
            assignment=assignment(self.options),
        )
        report["error_hresult"] = int(error.hresult.code, 16)
        try:
            self.server.post_report(self.options["host_name"], report)
        except ServerError as server_error:
            # The scan's own failure is what the task reports.
            display.warning(f"The failed scan could not be reported to the server: {server_error}")

    def _scan_run(self, params: dict[str, Any]) -> dict[str, Any]:
        """The elevated scan, which first fetches the catalog when ``params`` has ``cab``."""
        try:
            return run_elevated(self.action, "scan", params, timeout=self.options["timeout"])
        except BridgeError as error:
            offset = params.get("cab", {}).get("offset")
            if not offset or error.call != CATALOG_TRANSFER_CALL:
                raise
            # The partial file began another catalog, or is as long as the server's: start over, once.
            display.vvv(f"Resuming the catalog from byte {offset} failed, fetching it whole: {error}")
            return run_elevated(self.action, "scan", dict(params, cab=dict(params["cab"], offset=0)), timeout=self.options["timeout"])

    def wait_for_files(self, scan: Scan, seconds: float) -> dict[str, Any]:
        """The plan once the files of every update to download are on the server, or when ``seconds`` have passed."""
        plan = scan.plan
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and any(not _files_available(update) for update in self.downloads_wanted(scan, plan)):
            time.sleep(PLAN_POLL_INTERVAL)
            plan = self.server.plan(self.options["host_name"])
        return plan

    def downloads_wanted(self, scan: Scan, plan: dict[str, Any]) -> list[dict[str, Any]]:
        """The updates to patch that the host has not downloaded and that have files."""
        return [update for update in scan.to_patch(plan) if not scan.updates[update["update_id"]]["is_downloaded"] and update["files"]]

    def download(self, scan: Scan, plan: dict[str, Any]) -> list[dict[str, Any]]:
        """Download the updates whose files are all on the server into the host's WUA cache.

        Returns the outcome per update, those still waiting for their files included.
        """
        outcomes: dict[str, dict[str, Any]] = {}
        planned_by_child: dict[str, list[dict[str, Any]]] = {}
        # How often the host fetches each file: for each child that lists it, in each update that bundles the child.
        fetches: Counter[str] = Counter()
        for update in self.downloads_wanted(scan, plan):
            outcome = {"update_id": update["update_id"], "title": update["title"], "downloaded": False, "files": []}
            outcomes[update["update_id"]] = outcome
            if not _files_available(update):
                outcome["waiting"] = True
                outcome["msg"] = "its files are not yet on the server"
                continue
            for child_id, planned_files in _planned_files_by_child(scan.updates[update["update_id"]], update).items():
                planned_by_child[child_id] = planned_files
                fetches.update(planned["download_url"] for planned in planned_files)
        ready = [update_id for update_id, outcome in outcomes.items() if not outcome.get("waiting")]
        if not ready:
            return list(outcomes.values())
        part_sizes = scan.info["downloads"]["staged_part_sizes"]
        files = {
            child_id: [self._file_to_fetch(planned, part_sizes, fetches[planned["download_url"]]) for planned in planned_files]
            for child_id, planned_files in planned_by_child.items()
        }

        answer = run_elevated(
            self.action,
            "download",
            {"criteria": update_criteria(ready), "files": files, "wuauserv_after": wuauserv_after(self.options, scan.info)},
            timeout=self.options["timeout"],
        )
        for downloaded in answer["updates"]:
            outcome = outcomes.get(downloaded["update_id"].lower())
            if outcome is None:
                continue
            outcome.update(downloaded=downloaded["is_downloaded"], files=downloaded["files"])
            if downloaded["error"] is not None:
                outcome.update(_error_fields(downloaded["error"]))
            elif not downloaded["is_downloaded"]:
                outcome["msg"] = "Windows Update did not take the files into its cache (IsDownloaded stayed false)"
        for update_id in ready:
            outcome = outcomes[update_id]
            if "msg" not in outcome and not outcome["downloaded"]:
                outcome["msg"] = "the host's search did not return the update"
        return list(outcomes.values())

    def _file_to_fetch(self, planned: dict[str, Any], part_sizes: dict[str, int], fetches: int) -> dict[str, Any]:
        """What the host needs to fetch one file of the plan: where from, its name in the staging folder, its SHA-1,
        and the offset to resume from. Only the first transfer of a file finds its partial file: a file the host
        fetches more than once starts over each time."""
        name = planned["download_url"].rsplit("/", 1)[-1]
        part_size = part_sizes.get(name) if fetches == 1 else None
        return {
            "url": planned["download_url"] if self.options["direct_download"] else planned["url"],
            "name": name,
            "sha1": base64.b64decode(planned["sha1"]).hex(),
            "offset": _resume_offset(part_size, planned["size"]),
        }

    def install(self, update_ids: list[str], info: dict[str, Any]) -> dict[str, Any]:
        """Install the updates (downloaded, to patch) and return the bridge's answer."""
        return run_elevated(
            self.action,
            "install",
            {"criteria": update_criteria(update_ids), "wuauserv_after": wuauserv_after(self.options, info)},
            timeout=self.options["timeout"],
        )

    def servicing_log(self, hresults: Iterable[str]) -> dict[str, Any]:
        """The lines of the host's servicing log (CBS.log) about the failure of ``hresults``, for an install that failed.

        Whatever keeps the log from being read is reported with it, never as the task's failure: the install's
        own result is what the task reports.
        """
        try:
            log = run_bridge(self.action, "servicing_log", {"max_bytes": _servicing_log.MAX_BYTES})
        except AnsibleError as error:
            return {"path": None, "lines": [], "error": str(error)}
        return {"path": log["path"], "lines": _servicing_log.excerpt(log["text"], log["offset"], hresults), "error": None}


def cab_status(held: dict[str, Any], sha256: str, transfer: dict[str, Any] | None) -> dict[str, Any]:
    """The host's catalog after a scan: ``held`` as ``info`` found it, brought to the server's ``sha256`` by ``transfer``, if any."""
    cab = {"path": held["path"], "sha256": sha256}
    if transfer is None:
        return dict(cab, status="not_modified", size=held["size"], transferred=0)
    return dict(cab, **transfer)


def _planned_files_by_child(scanned: dict[str, Any], update: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The plan's files of an update, per bundled child that lists them: CopyToCache takes each child's own files."""
    by_child: dict[str, list[dict[str, Any]]] = {}
    for planned in update["files"]:
        for child in scanned["bundled"]:
            if planned["download_url"] in child["download_urls"]:
                by_child.setdefault(child["update_id"].lower(), []).append(planned)
    return by_child


def _resume_offset(part_size: int | None, size: int | None) -> int:
    """Where the transfer of a file of ``size`` bytes starts: at the end of a partial file shorter than
    the whole, else at the beginning (the server would refuse a range from the end)."""
    if part_size and size and part_size < size:
        return part_size
    return 0


def update_criteria(update_ids: list[str]) -> str:
    """Search criteria that find exactly these updates."""
    return " or ".join(f"UpdateID='{update_id}'" for update_id in update_ids)


def install_outcome(result: dict[str, Any]) -> dict[str, Any]:
    """One update's ``IUpdateInstallationResult``, in the module's words."""
    hresult = describe(result["hresult"])
    outcome = {
        "update_id": result["update_id"].lower(),
        "title": result["title"],
        "installed": result["result_code"] in SUCCEEDED,
        "skipped": False,
        "result_code": result["result_code"],
        "result": RESULT_CODES.get(result["result_code"], "unknown"),
        "hresult": hresult.code,
        "hresult_name": hresult.name,
        "reboot_required": result["reboot_required"],
    }
    if not outcome["installed"]:
        outcome["msg"] = f"{outcome['result']}, {hresult_text(result['hresult'])}"
    return outcome


def not_installed_outcome(update_id: str, title: str, msg: str, *, skipped: bool) -> dict[str, Any]:
    """An update the installer was not given: ``skipped`` on purpose, or missing from the host's search."""
    return {
        "update_id": update_id.lower(),
        "title": title,
        "installed": False,
        "skipped": skipped,
        "result_code": None,
        "result": "skipped" if skipped else "not_started",
        "hresult": None,
        "hresult_name": None,
        "reboot_required": False,
        "msg": msg,
    }


def user_input_outcome(update_id: str, title: str) -> dict[str, Any]:
    """An update left out of the install because it can ask for user input."""
    return not_installed_outcome(update_id, title, USER_INPUT_SKIPPED, skipped=True)


def hresult_text(hresult: int, message: str | None = None) -> str:
    """An HRESULT as Microsoft's documentation and search engines know it: ``0x80240022 WU_E_ALL_UPDATES_FAILED: ...``."""
    info = describe(hresult)
    code = info.code if info.name is None else f"{info.code} {info.name}"
    return f"{code}: {message or info.description or 'no description'}"


def plan_result(scan: Scan) -> dict[str, Any]:
    """The module's return values for a scan: the plan, with what the scan says of each update."""
    plan = scan.plan
    return {
        "updates": [_update_result(update, scan.updates.get(update["update_id"])) for update in plan["updates"]],
        "counts": {status: plan["counts"].get(status, 0) for status in STATUSES},
        "reboot_required": scan.reboot_required,
        "cab": {
            "path": scan.cab["path"],
            "sha256": scan.cab["sha256"],
            "status": scan.cab["status"],
            "transferred": scan.cab["status"] != "not_modified",
        },
        "rule_sets": plan["rule_sets"],
        "warnings": plan["warnings"],
    }


def failures_message(done: str, outcomes: list[dict[str, Any]]) -> str:
    """What went wrong with the outcomes of a step, in one message; empty when nothing did.

    An update still waiting for its files on the server is no failure: a later run takes it. Nor is
    an update skipped on purpose: the task warns of it.
    """
    failures = [
        outcome for outcome in outcomes if not outcome.get(done, False) and not outcome.get("waiting") and not outcome.get("skipped")
    ]
    if not failures:
        return ""
    details = "; ".join(f"{outcome['title']} ({outcome['update_id']}): {outcome['msg']}" for outcome in failures)
    return f"{len(failures)} of {len(outcomes)} updates could not be {done}: {details}"


def _update_result(update: dict[str, Any], scanned: dict[str, Any] | None) -> dict[str, Any]:
    scanned = scanned or {}
    return {
        "update_id": update["update_id"],
        "revision_number": update["revision_number"],
        "title": update["title"],
        "kb": [f"KB{kb}" for kb in scanned.get("kb_article_ids", [])],
        "severity": scanned.get("msrc_severity") or None,
        "status": update["status"],
        "reason": update["reason"],
        "allowed": update["allowed"],
        "delayed_until": update["delayed_until"],
        "installed": scanned.get("is_installed", False),
        "downloaded": scanned.get("is_downloaded", False),
        "can_request_user_input": scanned.get("can_request_user_input", False),
    }


def _files_available(update: dict[str, Any]) -> bool:
    return all(file["available"] for file in update["files"])


def _error_fields(error: dict[str, Any]) -> dict[str, Any]:
    hresult = describe(error["hresult"])
    return {
        "hresult": hresult.code,
        "hresult_name": hresult.name,
        "msg": f"{hresult_text(error['hresult'], error['message'])} (call {error['call']})",
    }
