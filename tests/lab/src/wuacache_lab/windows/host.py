"""An emulated Windows host: what the lab's WinRM endpoint talks to.

It ties together the host's profile, persistent state, disk, faults, the
simulated Windows surface and Update Agent, and answers command lines the way
cmd.exe and powershell.exe would (:mod:`wuacache_lab.windows.commands`).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from wuacache_lab.windows.commands import run_command_line
from wuacache_lab.windows.disk import HostDisk
from wuacache_lab.windows.errors import ERROR_NO_SHUTDOWN_IN_PROGRESS, ERROR_SHUTDOWN_IS_SCHEDULED, HResultError
from wuacache_lab.windows.faults import HostFaults
from wuacache_lab.windows.process import DEFAULT_WORKING_DIRECTORY, ConnectionDropped, LogonSession, ProcessResult
from wuacache_lab.windows.profiles import OsProfile, get_profile
from wuacache_lab.windows.state import HostState, StateStore, from_iso, host_dir, to_iso, utc_now
from wuacache_lab.windows.setup import UPGRADE_RESTARTS, finish_upgrade
from wuacache_lab.windows.system import CBS_REBOOT_PENDING, REBOOT_MARKERS, WindowsSystem
from wuacache_lab.windows.taskscheduler import TaskScheduler
from wuacache_lab.windows.wua import UpdateAgent, WuaClient, complete_pending_changes

# The account scheduled tasks and services run as.
SYSTEM = LogonSession(user="SYSTEM", logon_type="service")


class _HostLogAdapter(logging.LoggerAdapter):
    """Prefixes every message with the host's name."""

    def __init__(self, host_name: str) -> None:
        super().__init__(logging.getLogger("wuacache_lab.windows"))
        self.host_name = host_name

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"{self.host_name}: {msg}", kwargs


REMOTE_COMMANDS_LOG = "remote-commands.jsonl"


def record_remote_command(directory: Path, logon: LogonSession, stdin: bytes) -> None:
    """Note a command a remote client ran, with the bridge operation its standard input asks for, if any.

    The lab's own observation, not Windows state: it is how tests count the commands an operation costs.
    """
    try:
        operation = json.loads(stdin)["request"]["operation"]
    except (ValueError, TypeError, KeyError):
        operation = None
    record = {"at": to_iso(utc_now()), "user": logon.user, "operation": operation}
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / REMOTE_COMMANDS_LOG).open("a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")


def read_remote_commands(directory: Path) -> list[dict[str, Any]]:
    """The remote commands a host ran, oldest first (:func:`record_remote_command`)."""
    path = directory / REMOTE_COMMANDS_LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


class WindowsHost:
    """One emulated machine; safe to use from several threads at once."""

    def __init__(
        self,
        name: str,
        state_dir: Path,
        *,
        profile: str | OsProfile,
        trusted_ca: Path,
        proxy: str | None = None,
    ) -> None:
        self.name = name
        self.built_profile = get_profile(profile) if isinstance(profile, str) else profile
        self.trusted_ca = Path(trusted_ca)
        self.proxy = proxy
        self.directory = host_dir(Path(state_dir), name)
        self.log = _HostLogAdapter(name)
        self.faults = HostFaults(self.directory / "faults.json")
        self.store = StateStore(self.directory / "state.json")
        self.disk = HostDisk(
            self.directory / "disk",
            size_bytes=self.built_profile.disk_size_bytes,
            os_used_bytes=self.built_profile.disk_used_bytes,
            faults=self.faults,
        )
        self.agent = UpdateAgent(self)
        self.task_scheduler = TaskScheduler(self)

    def __repr__(self) -> str:
        return f"WindowsHost({self.name!r}, profile={self.built_profile.name!r})"

    @property
    def profile(self) -> OsProfile:
        """The OS the host runs: the one it was built with, until Windows
        Setup upgrades it."""
        upgraded = self.store.peek(lambda state: state.os_profile)
        return self.built_profile if upgraded is None else get_profile(upgraded)

    @property
    def computer_name(self) -> str:
        """The NetBIOS name: upper case, at most 15 characters."""
        return self.name.upper()[:15]

    @property
    def state(self) -> HostState:
        """A copy of the host's persistent state."""
        self._finish_reboot()
        return self.store.read()

    def is_reachable(self) -> bool:
        """False while the host restarts."""
        self._finish_reboot()
        reboot_at = self.store.peek(lambda state: state.reboot_at)
        return reboot_at is None or utc_now() < from_iso(reboot_at)

    def running_boot(self) -> str | None:
        """The ``LastBootUpTime`` of the boot processes run in now; None once a
        restart has begun, which has killed every process."""
        reboot_at, booted = self.store.peek(lambda state: (state.reboot_at, state.last_boot_up_time))
        if reboot_at is not None and from_iso(reboot_at) <= utc_now():
            return None
        return booted

    def execute(self, command_line: str, stdin: bytes, logon: LogonSession) -> ProcessResult:
        """Run a command line as WinRS would (through cmd.exe)."""
        if not self.is_reachable():
            raise ConnectionDropped(f"{self.name} is restarting")
        delay = self.faults.take_dropped_connection()
        if delay is not None:
            self.log.info("dropping the connection of a command after %.1f s", delay)
            time.sleep(delay)
            raise ConnectionDropped(f"{self.name} dropped the connection")
        record_remote_command(self.directory, logon, stdin)
        # A WinRS shell starts in the user's profile folder.
        return self.run_process(command_line, stdin, logon, working_directory=f"C:\\Users\\{logon.user}")

    def run_process(
        self, command_line: str, stdin: bytes, logon: LogonSession, working_directory: str = DEFAULT_WORKING_DIRECTORY
    ) -> ProcessResult:
        """Run a command line on the host itself, as its services and
        scheduled tasks start processes."""
        return run_command_line(self, command_line, stdin, logon, working_directory)

    def wua(self, logon: LogonSession = SYSTEM) -> WuaClient:
        """The COM objects (Windows Update Agent, ``Schedule.Service``) a
        process running as ``logon`` can create."""
        self._finish_reboot()
        return self.agent.client(logon)

    def system(self, logon: LogonSession = SYSTEM) -> WindowsSystem:
        self._finish_reboot()
        return WindowsSystem(self, logon)

    def reboot(self, delay: float = 0.0) -> None:
        """Restart in ``delay`` seconds (``shutdown /r /t <delay>``); the host
        then stays unreachable for the ``reboot_seconds`` fault's duration."""
        self._finish_reboot()
        with self.store.update() as state:
            if state.reboot_at is not None:
                raise HResultError(ERROR_SHUTDOWN_IS_SCHEDULED)
            state.reboot_at = to_iso(utc_now() + timedelta(seconds=delay))
            restarts = UPGRADE_RESTARTS if state.pending_upgrade is not None else 1
            state.reboot_seconds = self.faults.reboot_seconds() * restarts
        self.log.info("restart scheduled in %.0f s", delay)

    def abort_reboot(self) -> None:
        """``shutdown /a``: cancel a restart still in its time-out period."""
        self._finish_reboot()
        with self.store.update() as state:
            if state.reboot_at is None or from_iso(state.reboot_at) <= utc_now():
                raise HResultError(ERROR_NO_SHUTDOWN_IN_PROGRESS)
            state.reboot_at = None
            state.reboot_seconds = 0.0
        self.log.info("scheduled restart aborted")

    def restart_for_installer(self) -> None:
        """The restart an installer run without its no-restart switch starts at
        once; one already on its way is enough."""
        try:
            self.reboot()
        except HResultError as error:
            if error.hresult != ERROR_SHUTDOWN_IS_SCHEDULED:
                raise

    def set_reboot_marker(self, marker: str) -> None:
        """Leave a reboot marker, as another installer would."""
        if marker not in REBOOT_MARKERS:
            raise ValueError(f"unknown reboot marker {marker!r}; choose one of {REBOOT_MARKERS}")
        with self.store.update() as state:
            if marker not in state.reboot_markers:
                state.reboot_markers.append(marker)

    def _finish_reboot(self) -> None:
        """Bring the host back once its restart is over (new boot time,
        services in their start mode), then, once it has finished starting up
        (at once unless the ``slow_startup`` fault delays it), complete the
        post-reboot work (an upgrade included) and clear the reboot markers
        (unless the ``stuck_reboot_pending`` fault brings servicing's back)."""
        if self.store.peek(lambda state: state.reboot_at is None and state.startup_until is None):
            return
        with self.store.update() as state:
            now = utc_now()
            if state.reboot_at is not None:
                back_at = from_iso(state.reboot_at) + timedelta(seconds=state.reboot_seconds)
                if now < back_at:
                    return
                state.last_boot_up_time = to_iso(back_at)
                state.wuauserv_state = "Running" if state.wuauserv_start_mode == "Auto" else "Stopped"
                state.reboot_at = None
                state.reboot_seconds = 0.0
                state.startup_until = to_iso(back_at + timedelta(seconds=self.faults.startup_seconds()))
                self.log.info("restarted")
            if state.startup_until is None or now < from_iso(state.startup_until):
                return
            complete_pending_changes(state, state.startup_until, self.faults)
            finish_upgrade(self, state)
            state.reboot_markers = [CBS_REBOOT_PENDING] if self.faults.stuck_reboot_pending() else []
            state.startup_until = None
        self.log.info("started up")
