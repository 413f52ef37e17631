# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Recorded bridge answers of a Windows Server 2022 host, and the plans a wuacache server answers its reports with.

The host has three updates in the catalog: a cumulative update bundling two
per-architecture children that share a file (allowed, to install), the
servicing stack update (installed) and a preview (forbidden).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from typing import Any
from unittest.mock import MagicMock

from ansible.parsing.dataloader import DataLoader
from ansible.plugins.action import ActionBase
from ansible.template import Templar

from ansible_collections.wuacache.wua.plugins.plugin_utils._bridge import bridge_command

from .test_host_info import WS2022_INFO

CAB_SHA256 = "3f2b7c1e9a0d4c6b8e5f1a2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3"
CAB_PATH = "C:\\ProgramData\\wuacache\\wsusscn2.cab"
CAB_SIZE = 52428800
SERVICE_ID = "7971f918-a847-4430-9279-4a52d1efe18d"

CU = "0b1e3bd6-5b6c-4c0e-9d61-1d2a83d02a94"
CU_X64 = "4a0a6f6f-3c7e-4f1b-a1e9-5d7b9b1f2c01"
CU_ARM64 = "4a0a6f6f-3c7e-4f1b-a1e9-5d7b9b1f2c02"
SSU = "9c1f0e8a-2d4b-4e6a-8f0c-3b5d7e9f1a2b"
PREVIEW = "e2d4c6b8-a0f1-4e3d-9c5b-7a8f6e4d2c1b"

CU_FILE_URL = "http://download.windowsupdate.com/c/msdownload/update/software/secu/2024/01/windows10.0-kb5034129-x64_{}.cab"
SHARED_FILE_URL = "http://download.windowsupdate.com/d/msdownload/update/software/secu/2024/01/ssu-20348.2200-x64_{}.psf"


CU_CONTENT = b"cumulative update"
SHARED_CONTENT = b"shared file"
# The catalog names files by their SHA-1; the plan gives the digest in base64.
CU_FILE = CU_FILE_URL.format(hashlib.sha1(CU_CONTENT).hexdigest())
CU_FILE_SHA1 = base64.b64encode(hashlib.sha1(CU_CONTENT).digest()).decode("ascii")
SHARED_FILE = SHARED_FILE_URL.format(hashlib.sha1(SHARED_CONTENT).hexdigest())
SHARED_FILE_SHA1 = base64.b64encode(hashlib.sha1(SHARED_CONTENT).digest()).decode("ascii")


def scanned_update(update_id: str, title: str, kb: str, **fields: Any) -> dict[str, Any]:
    """One update of the bridge's scan answer."""
    update = {
        "update_id": update_id,
        "revision_number": 200,
        "title": title,
        "kb_article_ids": [kb],
        "msrc_severity": "",
        "categories": [{"id": "0fa1201d-4330-4fa8-8ae9-b877473b6441", "name": "Security Updates", "type": "UpdateClassification"}],
        "last_deployment_change_time": "2024-01-09T00:00:00.0000000Z",
        "is_installed": False,
        "is_hidden": False,
        "is_downloaded": False,
        "is_mandatory": False,
        "eula_accepted": True,
        "reboot_required": False,
        "reboot_behavior": 1,
        "can_request_user_input": False,
        "max_download_size": 123456,
        "superseded_update_ids": [],
        "download_urls": [],
        "bundled": [],
    }
    update.update(fields)
    return update


def scan_answer(
    *,
    cu_installed: bool = False,
    cu_downloaded: bool = False,
    cu_awaiting_restart: bool = False,
    cu_user_input: bool = False,
    reboot_required: bool = False,
    transfer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What ``scan`` answers, after the ``transfer`` of the catalog it was asked for; the history records the
    cumulative update's install once it is installed (or installed until the next restart). ``cu_user_input``:
    its installer can ask for user input."""
    history = []
    if cu_installed or cu_awaiting_restart:
        history.append({
            "operation": 1, "result_code": 2, "hresult": 0, "date": "2024-02-01T10:00:00.0000000Z",
            "update_id": CU, "revision_number": 200, "title": "2024-01 Cumulative Update",
        })
    return {
        "cab": {"path": CAB_PATH, "service_id": SERVICE_ID, "transfer": transfer},
        "result_code": 2,
        "updates": [
            scanned_update(
                CU,
                "2024-01 Cumulative Update for Microsoft server operating system version 21H2 for x64-based Systems (KB5034129)",
                "5034129",
                msrc_severity="Critical",
                is_installed=cu_installed,
                is_downloaded=cu_downloaded or cu_awaiting_restart,
                reboot_required=cu_awaiting_restart,
                can_request_user_input=cu_user_input,
                bundled=[
                    {"update_id": CU_X64, "revision_number": 201, "title": "CU x64", "download_urls": [CU_FILE, SHARED_FILE]},
                    {"update_id": CU_ARM64, "revision_number": 201, "title": "CU arm64", "download_urls": [SHARED_FILE]},
                ],
            ),
            scanned_update(SSU, "2024-01 Servicing Stack Update (KB5034439)", "5034439", is_installed=True, is_downloaded=True),
            scanned_update(PREVIEW, "2024-01 Cumulative Update Preview (KB5034770)", "5034770"),
        ],
        "history": history,
        "reboot_required": reboot_required or cu_awaiting_restart,
    }


def plan(cu_status: str = "PENDING", *, available: bool = True) -> dict[str, Any]:
    """The plan the server answers a report of :func:`scan_answer` with."""
    cu_files = [
        {"file_name": CU_FILE.rsplit("/", 1)[-1], "url": f"https://wuacache.example/wua/{CU_FILE.rsplit('/', 1)[-1]}",
         "download_url": CU_FILE, "sha1": CU_FILE_SHA1, "size": 17, "available": available},
        {"file_name": SHARED_FILE.rsplit("/", 1)[-1], "url": f"https://wuacache.example/wua/{SHARED_FILE.rsplit('/', 1)[-1]}",
         "download_url": SHARED_FILE, "sha1": SHARED_FILE_SHA1, "size": 11, "available": True},
    ]
    reasons = {
        "PENDING": "rule set 'prod': allowed_severities Critical; files available on the server",
        "MISSING": "rule set 'prod': allowed_severities Critical; files not yet on the server",
        "ERROR": "rule set 'prod': allowed_severities Critical, but the last install failed with 0x80240022",
        "OK": "installed",
    }
    counts = dict.fromkeys(("OK", "PENDING", "MISSING", "DISCARDED", "ERROR"), 0)
    counts["OK"] += 1
    counts["DISCARDED"] += 1
    counts[cu_status] += 1
    return {
        "host": "ws2022-01",
        "decided_at": "2024-02-01T10:05:00Z",
        "counts": counts,
        "rule_sets": {"applied": ["prod"], "ignored": [], "unknown": []},
        "warnings": [],
        "updates": [
            {"update_id": CU, "revision_number": 200, "title": "2024-01 Cumulative Update", "status": cu_status,
             "reason": reasons[cu_status], "allowed": True, "delayed_until": None,
             "files": [] if cu_status == "OK" else cu_files},
            {"update_id": PREVIEW, "revision_number": 200, "title": "2024-01 Cumulative Update Preview",
             "status": "DISCARDED", "reason": "forbidden by rule set 'prod': forbidden_kbs KB5034770",
             "allowed": False, "delayed_until": None, "files": []},
            {"update_id": SSU, "revision_number": 200, "title": "2024-01 Servicing Stack Update", "status": "OK",
             "reason": "installed", "allowed": True, "delayed_until": None, "files": []},
        ],
    }


def info(
    last_boot: str = "2024-05-14T06:12:31.5000000Z",
    *,
    catalog_sha256: str | None = CAB_SHA256,
    catalog_part_size: int | None = None,
    staged_part_sizes: dict[str, int] | None = None,
) -> dict[str, Any]:
    """``info`` with what the root holds of downloads: by default the server's catalog and no partial file."""
    answer = copy.deepcopy(WS2022_INFO)
    answer["os"]["last_boot_up_time"] = last_boot
    answer["wuauserv"] = {"start_mode": "Manual", "state": "Stopped", "recorded": None}
    answer["reboot_indicators"] = []
    answer["downloads"] = {
        "catalog": {
            "path": CAB_PATH,
            "size": None if catalog_sha256 is None else CAB_SIZE,
            "sha256": catalog_sha256,
            "part_size": catalog_part_size,
        },
        "staged_part_sizes": staged_part_sizes or {},
    }
    return answer


def cab(status: str = "downloaded", transferred: int = CAB_SIZE) -> dict[str, Any]:
    """The transfer of the catalog, as ``ensure_cab`` and ``scan`` answer it."""
    return {"status": status, "size": CAB_SIZE, "transferred": transferred}


def downloaded(update_id: str, *, is_downloaded: bool = True, error: dict[str, Any] | None = None) -> dict[str, Any]:
    files = [] if error else [{"name": CU_FILE.rsplit("/", 1)[-1], "status": "downloaded", "size": 17, "transferred": 17}]
    return {"update_id": update_id, "is_downloaded": is_downloaded, "files": files, "error": error}


def installed(*results: tuple[str, int, int, bool], reboot_required: bool = False) -> dict[str, Any]:
    """``install``'s answer: per update (UpdateID, result code, HRESULT, reboot required)."""
    return {
        "reboot_required_before_installation": False,
        "result_code": max((result[1] for result in results), default=2),
        "hresult": next((result[2] for result in results if result[2]), 0),
        "reboot_required": reboot_required,
        "updates": [
            {"update_id": update_id, "title": f"update {update_id}", "result_code": code, "hresult": hresult, "reboot_required": reboot}
            for update_id, code, hresult, reboot in results
        ],
        "skipped": [],
    }


class Failure(Exception):
    """A recorded error answer: ``{"hresult", "message", "call"}``."""

    def __init__(self, hresult: int, message: str, call: str) -> None:
        super().__init__(message)
        self.error = {"hresult": hresult, "message": message, "call": call}


# shutdown.exe's answer to ``restart`` when it has scheduled the restart.
SHUTDOWN_ACCEPTED = {"exit_code": 0}

ELEVATED = frozenset({"scan", "download", "install", "uninstall", "history", "reboot_required", "install_package", "os_upgrade"})


class RecordedHost:
    """Answers the bridge's operations from recorded answers, in order; elevated ones through task_start.

    ``answers`` maps an operation to its answers (a result, or a :class:`Failure`),
    ``task_start`` to its refusals, ``task_collect`` to the errors of its clean-ups;
    ``requests`` records every operation asked for with its params, elevated ones
    under their own name.
    """

    def __init__(self, answers: dict[str, list[Any]]) -> None:
        self.answers = answers
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._running: dict[str, str] = {}

    @property
    def operations(self) -> list[str]:
        return [request[0] for request in self.requests]

    def params(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.requests if name == operation]

    def execute(self, cmd: str, sudoable: bool = True, in_data: bytes | None = None) -> dict[str, Any]:
        assert sudoable is False
        # Everything the collection does on a host goes through the bridge.
        assert cmd == bridge_command()
        request = json.loads(in_data or b"")["request"]
        operation, params = request["operation"], request["params"]
        if operation == "task_start":
            # A run that ends before task_start's wait does, collected by it.
            elevated = params["envelope"]["request"]
            self.requests.append((elevated["operation"], elevated["params"]))
            if self.answers.get("task_start"):
                # Refused (another run holds the host): the controller collects what the start may have left.
                self._running[params["name"]] = None
                return self._answer("task_start")
            # A run that ends within task_start's wait, collected by it.
            answer = self._answer(elevated["operation"])
            status = {"state": 3, "last_task_result": answer["rc"], "response_ready": True, "progress": None, "collected": None}
            if params.get("collect"):
                status["collected"] = {"response": answer["stdout"], "cleanup_error": self._cleanup_error()}
            run = {"task": f"\\wuacache\\runs\\{params['name']}", "folder": f"C:\\ProgramData\\wuacache\\runs\\{params['name']}"}
            return _response("task_start", dict(run, status=status))
        if operation == "task_collect":
            elevated = self._running.pop(params["name"])
            response = None if elevated is None else self._answer(elevated)["stdout"]
            return _response("task_collect", {"response": response, "cleanup_error": self._cleanup_error()})
        self.requests.append((operation, params))
        return self._answer(operation)

    def _cleanup_error(self) -> dict[str, Any] | None:
        """The recorded "task_collect" answers are the errors of clean-ups that failed, in order."""
        cleanup_errors = self.answers.get("task_collect")
        return cleanup_errors.pop(0) if cleanup_errors else None

    def _answer(self, operation: str) -> dict[str, Any]:
        queue = self.answers.get(operation)
        assert queue, f"no recorded answer left for {operation}"
        answer = queue.pop(0)
        if isinstance(answer, Failure):
            return {"rc": 1, "stdout": json.dumps({"protocol": 1, "operation": operation, "error": answer.error}), "stderr": ""}
        return _response(operation, answer)


def _response(operation: str, result: dict[str, Any]) -> dict[str, Any]:
    return {"rc": 0, "stdout": json.dumps({"protocol": 1, "operation": operation, "result": result}), "stderr": ""}


def make_action(
    action_class: type[ActionBase],
    host: RecordedHost,
    *,
    args: dict[str, Any] | None = None,
    check_mode: bool = False,
    name: str = "scan",
) -> ActionBase:
    task = MagicMock(args=args or {}, async_val=0, check_mode=check_mode, action=f"wuacache.wua.{name}")
    action = action_class(task, MagicMock(), MagicMock(), loader=None, templar=Templar(loader=DataLoader()), shared_loader_obj=None)
    action._low_level_execute_command = host.execute
    return action
