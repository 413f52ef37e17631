# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Restart a Windows host and wait until it is back and has finished starting up."""

# FOR INTERNAL COLLECTION USE ONLY: may change in any release.

from __future__ import annotations

import time
from typing import Any

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.wuacache.wua.plugins.plugin_utils._bridge import (
    CONNECTION_ERRORS,
    BridgeError,
    host_label,
    reset_connection,
    run_bridge,
)

# The bridge's "restart" requests. A few seconds' delay lets the answer reach the controller before the host goes down.
RESTART = {"delay": 5, "comment": "wuacache.wua: restarting to complete Windows updates"}
ABORT = {"abort": True}
# shutdown.exe's exit code when a shutdown is scheduled already (ERROR_SHUTDOWN_IS_SCHEDULED).
_SHUTDOWN_IS_SCHEDULED = 1190

# ServicingInProgress values that leave the host ready: none, idle, changes waiting for a restart. Servicing
# still at work after a restart writes 2 (observed, not documented: another value also means "wait").
_SERVICING_IDLE = (None, 0, 1)

display = Display()


class RebootError(AnsibleError):
    """The host could not be restarted, or did not come back in time."""


def startup_unfinished(info: dict[str, Any]) -> str | None:
    """Why the host, from its ``info``, has not finished starting up; None when it has."""
    startup = info["startup"]
    if not startup["logon_ui_ready"]:
        return "the logon screen is not ready"
    if startup["servicing_in_progress"] not in _SERVICING_IDLE:
        return f"servicing is at work (ServicingInProgress {startup['servicing_in_progress']})"
    return None


def _request_restart(action: ActionBase) -> None:
    """Have the host restart in a few seconds.

    A restart scheduled already, maybe hours away, is aborted and replaced; one
    that cannot be aborted any more is under way, which is what is wanted.
    shutdown.exe runs through the bridge, which answers its exit code: a command
    of its own would end with powershell.exe's, which is not the program's.
    """
    exit_code = run_bridge(action, "restart", RESTART)["exit_code"]
    if exit_code == _SHUTDOWN_IS_SCHEDULED:
        display.warning(f"<{host_label(action)}> a restart was scheduled already: it is replaced by one now")
        # Whatever the abort answers, the second request tells what became of the scheduled restart.
        run_bridge(action, "restart", ABORT)
        exit_code = run_bridge(action, "restart", RESTART)["exit_code"]
        if exit_code == _SHUTDOWN_IS_SCHEDULED:
            return
    if exit_code != 0:
        raise RebootError(f"shutdown.exe could not restart the host (exit code {exit_code})")


def reboot_host(action: ActionBase, *, timeout: float, poll_interval: float = 5.0) -> dict[str, Any]:
    """Restart the task's host and return its ``info`` once it is back and has started up.

    The host is back when ``info`` reports another ``last_boot_up_time`` than
    before; until then, lost connections and failing requests (services still
    starting) are expected and retried within ``timeout`` seconds. WinRM may
    answer before Windows has finished configuring updates: the host is ready
    once :func:`startup_unfinished` finds nothing more to wait for.
    """
    boot_time_before = run_bridge(action, "info")["os"]["last_boot_up_time"]
    _request_restart(action)
    display.vv("Restart requested, waiting for the host to come back")
    reset_connection(action)

    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    unfinished: str | None = None
    while True:
        time.sleep(poll_interval)
        try:
            info = run_bridge(action, "info")
        except (*CONNECTION_ERRORS, BridgeError) as error:
            display.vvv(f"The host is not back yet: {error}")
            last_error, unfinished = error, None
            reset_connection(action)
        else:
            last_error = None
            if info["os"]["last_boot_up_time"] != boot_time_before:
                unfinished = startup_unfinished(info)
                if unfinished is None:
                    return info
                display.vvv(f"The host is back and still starting up: {unfinished}")
        if time.monotonic() >= deadline:
            if unfinished is not None:
                raise RebootError(
                    f"the host came back from its restart but did not finish starting up within {timeout:g} seconds:"
                    f" {unfinished}"
                )
            detail = "" if last_error is None else f"; last error: {last_error}"
            raise RebootError(f"the host did not come back from its restart within {timeout:g} seconds{detail}")
