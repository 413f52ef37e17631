"""Drives the bridge of an emulated host as the controller does
(docs/bridge-protocol.md): plain operations over a WinRM logon, elevated ones
through ``task_start``, ``task_poll`` and ``task_collect``, with the
collection's own scripts."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

from wuacache_lab.windows.host import WindowsHost
from wuacache_lab.windows.process import LogonSession

SCRIPTS = Path(__file__).resolve().parents[3] / "plugins" / "plugin_utils"
NETWORK = LogonSession(user="Administrator", logon_type="network")
STANDARD_USER = LogonSession(user="alice", logon_type="network", administrator=False)
ROOT = "C:\\ProgramData\\wuacache"
RUNS = f"{ROOT}\\runs"
TASK_STATE_RUNNING = 4


def script(name: str) -> str:
    return (SCRIPTS / name).read_text(encoding="utf-8")


def powershell_arguments(text: str) -> str:
    encoded = base64.b64encode(text.encode("utf-16-le")).decode("ascii")
    return f"-NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand {encoded}"


def bridge_request(operation: str, **params: Any) -> dict[str, Any]:
    return {"protocol": 1, "operation": operation, "params": params}


def call(host: WindowsHost, operation: str, logon: LogonSession = NETWORK, **params: Any) -> tuple[int, Any]:
    """One bridge request over a WinRM logon: the bootstrap on the command
    line, the envelope on standard input."""
    envelope = {"bridge": script("_wua_bridge.ps1"), "request": bridge_request(operation, **params)}
    result = host.execute(
        "PowerShell " + powershell_arguments(script("_wua_bootstrap.ps1")),
        json.dumps(envelope).encode("ascii"),
        logon,
    )
    assert result.stderr == b""
    return result.exit_code, json.loads(result.stdout)


def start(
    host: WindowsHost, name: str | None, request: dict[str, Any], logon: LogonSession = NETWORK
) -> tuple[int, Any]:
    return call(
        host,
        "task_start",
        logon,
        name=name,
        envelope={"bridge": script("_wua_bridge.ps1"), "request": request},
        task_arguments=powershell_arguments(script("_wua_task.ps1")),
    )


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
    exit_code, response = call(host, "task_collect", name=name)
    assert exit_code == 0, response
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
