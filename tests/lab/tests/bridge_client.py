"""Drives the bridge of an emulated host as the controller does
(docs/bridge-protocol.md): plain operations over a WinRM logon, elevated ones
through ``task_start``, ``task_poll`` and ``task_collect``, with the
collection's own scripts; and the Windows Update operations' common steps
against the catalog of the ``lab`` fixture (conftest.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wuacache_lab.catalog import CatalogSummary
from wuacache_lab.catalog.payloads import upstream_path
from wuacache_lab.pki import LabCA
from wuacache_lab.windows.host import WindowsHost
from wuacache_lab.windows.process import LogonSession

# The collection's host scripts; the mutation tests give changed copies through the environment.
SCRIPTS = Path(os.environ.get("WUACACHE_LAB_SCRIPTS") or Path(__file__).resolve().parents[3] / "plugins" / "plugin_utils")
NETWORK = LogonSession(user="Administrator", logon_type="network")
STANDARD_USER = LogonSession(user="alice", logon_type="network", administrator=False)
ROOT = "C:\\ProgramData\\wuacache"
RUNS = f"{ROOT}\\runs"
STAGING = f"{ROOT}\\staging"
HOST_LOCK = f"{ROOT}\\host.lock"
WUAUSERV_RECORD = f"{ROOT}\\wuauserv.json"
# The Task Scheduler folder of the runs' tasks.
RUNS_TASK_FOLDER = "\\wuacache\\runs"
TASK_STATE_RUNNING = 4
# The seconds task_start gives a run (its task's ExecutionTimeLimit, its hold on the host), unless a test
# gives its own; None for scripts from before task_start took one (see the shipped_scripts fixture).
TIME_LIMIT: int | None = 3600
# Where the server publishes the catalog.
CAB_URL = "http://wuacache.example/wua/wsusscn2.cab"
DISABLED_AND_STOPPED = {"start_mode": "Disabled", "running": False}
ALL_UPDATES = "IsInstalled=0 or IsInstalled=1"
# InstallationBehavior.RebootBehavior
NEVER_REBOOTS = 0
ALWAYS_REQUIRES_REBOOT = 1
# Where the server publishes packages.
PACKAGES_URL = "http://wuacache.example/packages"
# What the controller sends: DISM is not run for a package in these states.
INSTALLED_STATES = ["InstallPending", "Installed", "Superseded"]


@dataclass(frozen=True)
class Lab:
    """A signed catalog, and the upstream's document root that serves it and its payloads."""

    ca: LabCA
    catalog: CatalogSummary
    docroot: Path


def script(name: str) -> str:
    return (SCRIPTS / name).read_text(encoding="utf-8")


def powershell_arguments(text: str) -> str:
    encoded = base64.b64encode(text.encode("utf-16-le")).decode("ascii")
    return f"-NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand {encoded}"


def bridge_request(operation: str, **params: Any) -> dict[str, Any]:
    return {"protocol": 1, "operation": operation, "params": params}


def call(host: WindowsHost, operation: str, logon: LogonSession = NETWORK, **params: Any) -> tuple[int, Any]:
    """One bridge request over a WinRM logon, the bridge sent whole."""
    return send(host, {"bridge": script("_wua_bridge.ps1"), "request": bridge_request(operation, **params)}, logon)


def send(host: WindowsHost, envelope: dict[str, Any], logon: LogonSession = NETWORK) -> tuple[int, Any]:
    """One command over a WinRM logon: the bootstrap on the command line, the envelope on standard input."""
    result = host.execute(
        "PowerShell " + powershell_arguments(script("_wua_bootstrap.ps1")),
        json.dumps(envelope).encode("ascii"),
        logon,
    )
    assert result.stderr == b""
    return result.exit_code, json.loads(result.stdout)


def start(
    host: WindowsHost,
    name: str | None,
    request: dict[str, Any],
    logon: LogonSession = NETWORK,
    time_limit: int | None = None,
) -> tuple[int, Any]:
    params: dict[str, Any] = {
        "name": name,
        "envelope": {"bridge": script("_wua_bridge.ps1"), "request": request},
        "task_arguments": powershell_arguments(script("_wua_task.ps1")),
    }
    if time_limit is not None or TIME_LIMIT is not None:
        params["time_limit"] = TIME_LIMIT if time_limit is None else time_limit
    return call(host, "task_start", logon, **params)


def task_path(name: str) -> str:
    """The path of a run's task in the Task Scheduler."""
    return f"{RUNS_TASK_FOLDER}\\{name}"


def run_exists(host: WindowsHost, name: str) -> bool:
    """Whether anything of the run is left on the host: its task or its folder."""
    return task_path(name).casefold() in host.state.scheduled_tasks or host.disk.path(f"{RUNS}\\{name}").exists()


def poll_until_ended(host: WindowsHost, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        exit_code, response = call(host, "task_poll", name=name)
        assert exit_code == 0, response
        if response["result"]["state"] != TASK_STATE_RUNNING:
            return response["result"]
        assert time.monotonic() < deadline, "the task never ended"
        time.sleep(0.02)


def collect(host: WindowsHost, name: str) -> str | None:
    """The run's response, collected with everything it left on the host."""
    exit_code, response = call(host, "task_collect", name=name)
    assert exit_code == 0, response
    assert response["result"].get("cleanup_error") is None, response
    return response["result"]["response"]


def run_elevated(host: WindowsHost, operation: str, **params: Any) -> tuple[int, Any]:
    """An elevated operation from start to collection: the task's
    ``LastTaskResult`` and its parsed response."""
    name = f"run-{time.monotonic_ns()}"
    exit_code, started = start(host, name, bridge_request(operation, **params))
    assert exit_code == 0, started
    poll = poll_until_ended(host, name)
    text = collect(host, name)
    assert text is not None, poll
    return poll["last_task_result"], json.loads(text)


def elevated(host: WindowsHost, operation: str, **params: Any) -> dict[str, Any]:
    """The result of an elevated operation that must succeed."""
    exit_code, response = run_elevated(host, operation, **params)
    assert exit_code == 0, response
    return response["result"]


def ensure_cab(lab: Lab, host: WindowsHost, offset: int = 0, url: str = CAB_URL) -> dict[str, Any]:
    """The server's catalog, with the digest the server publishes, fetched from ``offset``."""
    exit_code, response = call(host, "ensure_cab", url=url, sha256=lab.catalog.cab_sha256, offset=offset)
    assert exit_code == 0, response
    return response["result"]


def scan(host: WindowsHost, criteria: str = ALL_UPDATES) -> dict[str, Any]:
    return elevated(host, "scan", criteria=criteria, wuauserv_after=DISABLED_AND_STOPPED)


def criteria_for(*updates: dict[str, Any]) -> str:
    return " or ".join(f"UpdateID='{update['update_id']}'" for update in updates)


def pending(host: WindowsHost, reboot_behavior: int, count: int = 1) -> list[dict[str, Any]]:
    """Updates not installed yet, with files and a KB of their own, that install with ``reboot_behavior``."""
    updates = [
        update
        for update in scan(host, "IsInstalled=0")["updates"]
        if update["reboot_behavior"] == reboot_behavior
        and len(update["kb_article_ids"]) == 1
        and all(child["download_urls"] for child in update["bundled"])
    ]
    assert len(updates) >= count
    return updates[:count]


def sha1_hex(lab: Lab, url: str) -> str:
    return hashlib.sha1(upstream_path(lab.docroot, url).read_bytes()).hexdigest()


def files_for(lab: Lab, *updates: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """What the controller sends: each bundled child's files, by the child's UpdateID, fetched from the start."""
    return {
        child["update_id"].lower(): [
            {"url": url, "name": url.rsplit("/", 1)[-1], "sha1": sha1_hex(lab, url), "offset": 0}
            for url in child["download_urls"]
        ]
        for update in updates
        for child in update["bundled"]
    }


def download(lab: Lab, host: WindowsHost, *updates: dict[str, Any], files: Any = None) -> dict[str, Any]:
    return elevated(
        host,
        "download",
        criteria=criteria_for(*updates),
        files=files_for(lab, *updates) if files is None else files,
        wuauserv_after=DISABLED_AND_STOPPED,
    )


def install(host: WindowsHost, *updates: dict[str, Any]) -> dict[str, Any]:
    return elevated(host, "install", criteria=criteria_for(*updates), wuauserv_after=DISABLED_AND_STOPPED)


def publish(lab: Lab, name: str, build: Callable[..., Path], **options: Any) -> dict[str, Any]:
    """Build a package where the server serves it; returns what the
    controller sends to install it."""
    url = f"{PACKAGES_URL}/{name}"
    path = upstream_path(lab.docroot, url)
    path.parent.mkdir(parents=True, exist_ok=True)
    build(path, **options)
    return {
        "url": url,
        "name": name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "kind": name.rsplit(".", 1)[1],
        "installed_states": INSTALLED_STATES,
        "wuauserv_after": DISABLED_AND_STOPPED,
    }


def install_package(host: WindowsHost, package: dict[str, Any]) -> dict[str, Any]:
    return elevated(host, "install_package", **package)
