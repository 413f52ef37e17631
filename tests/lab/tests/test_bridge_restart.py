"""``restart`` on an emulated host, driven as the controller drives it
(docs/bridge-protocol.md): shutdown.exe's exit code comes back in the
response, whatever powershell.exe itself exits with."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from bridge_client import STANDARD_USER, call
from host_snippets import new_host
from shipped_scripts import before_and_after
from wuacache_lab.windows.faults import set_host_fault
from wuacache_lab.windows.host import WindowsHost
from wuacache_lab.windows.process import ConnectionDropped

COMMENT = "wuacache.wua: restarting to complete Windows updates"
ERROR_ACCESS_DENIED = 5
ERROR_NO_SHUTDOWN_IN_PROGRESS = 1116
ERROR_SHUTDOWN_IS_SCHEDULED = 1190
E_INVALIDARG = -2147024809


@pytest.fixture
def host(tmp_path: Path) -> WindowsHost:
    return new_host(tmp_path)


def restart(host: WindowsHost, **params: Any) -> int:
    """shutdown.exe's exit code, from a restart request that succeeded as a bridge operation."""
    exit_code, response = call(host, "restart", **params)
    assert exit_code == 0, response
    return response["result"]["exit_code"]


def reboot_at(host: WindowsHost) -> datetime | None:
    scheduled = host.state.reboot_at
    return None if scheduled is None else datetime.fromisoformat(scheduled)


@before_and_after(
    "c2434256090aab449328c9fd4dc5d3442a29230f",
    "shutdown.exe ran as a raw command, whose exit code a connection that wraps commands in powershell.exe turns into 1: "
    "no bridge operation answered 1190 (a restart is scheduled already)",
)
def test_a_restart_is_scheduled_after_its_delay_and_a_second_finds_it_scheduled(shipped_scripts: object, host: WindowsHost) -> None:
    requested = datetime.now(timezone.utc)

    assert restart(host, delay=600, comment=COMMENT) == 0

    scheduled = reboot_at(host)
    assert scheduled is not None
    assert timedelta(seconds=590) < scheduled - requested < timedelta(seconds=610)
    assert restart(host, delay=5, comment=COMMENT) == ERROR_SHUTDOWN_IS_SCHEDULED
    # The first restart stays as it was.
    assert reboot_at(host) == scheduled


def test_abort_cancels_a_scheduled_restart_and_then_finds_none(host: WindowsHost) -> None:
    assert restart(host, delay=600, comment=COMMENT) == 0

    assert restart(host, abort=True) == 0
    assert reboot_at(host) is None
    assert restart(host, abort=True) == ERROR_NO_SHUTDOWN_IN_PROGRESS


def test_the_exit_code_of_a_refusal_is_answered_as_it_is(host: WindowsHost) -> None:
    # A standard user lacks the privilege to restart the host: the bridge does not interpret the code.
    exit_code, response = call(host, "restart", STANDARD_USER, delay=5, comment=COMMENT)

    assert (exit_code, response["result"]) == (0, {"exit_code": ERROR_ACCESS_DENIED})
    assert reboot_at(host) is None


def test_a_comment_holding_a_double_quote_is_refused_before_shutdown_runs(host: WindowsHost) -> None:
    exit_code, response = call(host, "restart", delay=5, comment='done" /a "')

    assert exit_code == 1
    assert (response["error"]["hresult"], response["error"]["call"]) == (E_INVALIDARG, "bridge request")
    assert reboot_at(host) is None


def test_a_restart_and_an_abort_together_are_refused(host: WindowsHost) -> None:
    exit_code, response = call(host, "restart", delay=5, comment=COMMENT, abort=True)

    assert exit_code == 1
    assert response["error"]["call"] == "bridge request"
    assert response["error"]["message"].startswith("Parameter set cannot be resolved")
    assert reboot_at(host) is None


def info(host: WindowsHost) -> dict[str, Any]:
    exit_code, response = call(host, "info")
    assert exit_code == 0, response
    return response["result"]


def info_from_a_new_boot(host: WindowsHost, booted: str) -> dict[str, Any]:
    """``info`` polled as the controller polls it after a restart, until the host answers from a
    boot after ``booted`` and has started up. Only a host that does not answer is expected: down,
    or going down during the request, which then answers nothing."""
    deadline = time.monotonic() + 10
    while True:
        try:
            current = info(host)
        except (ConnectionDropped, json.JSONDecodeError):
            pass
        else:
            if current["os"]["last_boot_up_time"] != booted and current["startup"]["logon_ui_ready"]:
                return current
        assert time.monotonic() < deadline, "the host did not come back from its restart"
        time.sleep(0.05)


@pytest.mark.parametrize("start_mode", ["Disabled", "Manual"], ids=["disabled", "stopped"])
def test_info_the_restart_and_the_wait_after_it_leave_the_windows_update_service_alone(
    tmp_path: Path, host: WindowsHost, start_mode: str
) -> None:
    # Any call to the Update Agent fails while its service is disabled, and starts it while it is
    # stopped: a hidden call would show either way.
    set_host_fault(tmp_path / "hosts", host.name, "reboot_seconds", seconds=0.2)
    host.system().set_service_start_mode("wuauserv", start_mode)
    # Nothing recorded either: no operation started the service.
    untouched = {"start_mode": start_mode, "state": "Stopped", "recorded": None}
    before = info(host)
    assert before["wuauserv"] == untouched

    assert restart(host, delay=1, comment=COMMENT) == 0
    after = info_from_a_new_boot(host, before["os"]["last_boot_up_time"])

    assert after["wuauserv"] == untouched
    assert (host.state.wuauserv_start_mode, host.state.wuauserv_state) == (start_mode, "Stopped")
