"""Failures a test or the lab CLI injects into an emulated host.

Faults live in ``<state_dir>/<host>/faults.json`` so that another process can
change them while the host runs; the host rereads the file whenever it
changes.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from wuacache_lab.windows.state import host_dir

FAULT_KINDS = (
    "install_failure",
    "slow_install",
    "drop_connection",
    "disk_full",
    "reboot_seconds",
    "slow_startup",
    "revert_at_reboot",
    "stuck_reboot_pending",
    "upgrade_rollback",
    "upgrade_blocked",
    "cache_refuses_files",
    "default_owner",
    "net_framework_tls",
    "file_in_use",
)

# ERROR_INSTALL_FAILURE: "Fatal error during installation."
DEFAULT_INSTALL_FAILURE = 0x80070643
# CBS_E_INSTALLERS_FAILED: what servicing reports when it undoes changes at a restart.
DEFAULT_REVERT_FAILURE = 0x800F0922
DEFAULT_REBOOT_SECONDS = 3.0


def faults_path(state_dir: Path, host: str) -> Path:
    return host_dir(state_dir, host) / "faults.json"


def set_host_fault(state_dir: Path, host: str, kind: str, **params: Any) -> None:
    """Turn on a fault of ``host``, replacing an earlier one of the same kind.

    ``install_failure``: ``hresult`` (default ERROR_INSTALL_FAILURE), optional
    ``update_ids`` to fail only those updates. ``slow_install``: ``seconds``
    per update. ``drop_connection``: the next ``count`` commands (default 1)
    are dropped after ``delay`` seconds (default 0) without running.
    ``disk_full``: no parameters. ``reboot_seconds``: ``seconds`` a restart
    keeps the host unreachable. ``slow_startup``: after a restart the host
answers ``seconds`` before it has finished starting up (the logon screen
not shown yet, servicing still completing the changes of the restart).
``revert_at_reboot``: installs that wait for
    a restart are undone during it, with ``hresult`` (default
    CBS_E_INSTALLERS_FAILED), only those of ``update_ids`` if given.
    ``stuck_reboot_pending``: servicing marks a pending restart again after
    every restart. ``upgrade_rollback``: Windows Setup rolls the upgrade back
    at the restart. ``upgrade_blocked``: Windows Setup finds an incompatible
    application and refuses to upgrade. ``default_owner``: ``owner``
    ("administrators" or "creator"), the value of the security policy
    "System objects: Default owner for objects created by members of the
    Administrators group" (:mod:`wuacache_lab.windows.security`).
    ``net_framework_tls``: the .NET Framework 4 values that decide each new
    process's ``ServicePointManager.SecurityProtocol``
    (:mod:`wuacache_lab.windows.net`), ``system_default_tls_versions`` and
    ``sch_use_strong_crypto`` (DWORDs; absent unless given), in ``view``
    ``both`` (the default: the native key and its WOW6432Node twin, as
    Microsoft's sample sets them), ``native`` or ``wow6432node``.
    ``file_in_use``: ``paths``, files of drive C: that another program (a
    scanner, an indexer) holds open without sharing their deletion: deleting
    or renaming one, or deleting the folder that holds it, fails with
    ERROR_SHARING_VIOLATION.
    """
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {kind!r}; choose one of {', '.join(FAULT_KINDS)}")
    with _locked_faults(faults_path(state_dir, host)) as faults:
        faults[kind] = params


def clear_host_faults(state_dir: Path, host: str, *kinds: str) -> None:
    """Turn off the given faults of ``host``, or all of them."""
    with _locked_faults(faults_path(state_dir, host)) as faults:
        for kind in kinds or tuple(faults):
            faults.pop(kind, None)


@contextmanager
def _locked_faults(path: Path) -> Iterator[dict[str, dict[str, Any]]]:
    """Read, change and atomically rewrite the faults file under a file lock,
    so the CLI and the running host never lose each other's changes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name("faults.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        faults = _read(path)
        yield faults
        temporary = path.with_name("faults.json.tmp")
        temporary.write_text(json.dumps(faults, indent=1))
        os.replace(temporary, path)


def _read(path: Path) -> dict[str, dict[str, Any]]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


class HostFaults:
    """The faults in force on one host, as the host sees them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._faults: dict[str, dict[str, Any]] = {}

    def current(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                self._signature, self._faults = None, {}
                return {}
            signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if signature != self._signature:
                self._faults = _read(self.path)
                self._signature = signature
            return self._faults

    def install_failure(self, update_id: str) -> int | None:
        """The HRESULT an install of ``update_id`` must fail with, if any."""
        return self._update_failure("install_failure", update_id, DEFAULT_INSTALL_FAILURE)

    def revert_at_reboot(self, update_id: str) -> int | None:
        """The HRESULT with which the restart undoes the install of ``update_id``, if it does."""
        return self._update_failure("revert_at_reboot", update_id, DEFAULT_REVERT_FAILURE)

    def cache_refuses_files(self, update_id: str) -> bool:
        """Whether CopyToCache refuses the catalog's files of ``update_id``, as
        when Windows Update would download other files on this host."""
        return self._update_failure("cache_refuses_files", update_id, 0) is not None

    def _update_failure(self, kind: str, update_id: str, default: int) -> int | None:
        fault = self.current().get(kind)
        if fault is None:
            return None
        update_ids = fault.get("update_ids")
        if update_ids is not None and update_id.lower() not in {uid.lower() for uid in update_ids}:
            return None
        return int(fault.get("hresult", default))

    def stuck_reboot_pending(self) -> bool:
        return "stuck_reboot_pending" in self.current()

    def upgrade_rollback(self) -> bool:
        return "upgrade_rollback" in self.current()

    def upgrade_blocked(self) -> bool:
        return "upgrade_blocked" in self.current()

    def install_delay(self) -> float:
        return float(self.current().get("slow_install", {}).get("seconds", 0.0))

    def default_owner(self) -> str | None:
        """The ``default_owner`` setting, when the host's differs from its edition's default."""
        setting = self.current().get("default_owner")
        return None if setting is None else str(setting["owner"])

    def net_framework_tls(self) -> dict[str, Any]:
        """The ``net_framework_tls`` setting; empty when the registry holds none of its values."""
        return dict(self.current().get("net_framework_tls", {}))

    def disk_full(self) -> bool:
        return "disk_full" in self.current()

    def files_in_use(self) -> tuple[str, ...]:
        """The Windows paths of the ``file_in_use`` fault."""
        return tuple(self.current().get("file_in_use", {}).get("paths", ()))

    def startup_seconds(self) -> float:
        return float(self.current().get("slow_startup", {}).get("seconds", 0.0))

    def reboot_seconds(self) -> float:
        return float(self.current().get("reboot_seconds", {}).get("seconds", DEFAULT_REBOOT_SECONDS))

    def take_dropped_connection(self) -> float | None:
        """Consume one dropped command; returns the delay before the drop, or
        None when no command is to be dropped."""
        if "drop_connection" not in self.current():
            return None
        with _locked_faults(self.path) as faults:
            fault = faults.get("drop_connection")
            if fault is None:
                return None
            remaining = int(fault.get("count", 1)) - 1
            if remaining > 0:
                faults["drop_connection"] = {**fault, "count": remaining}
            else:
                del faults["drop_connection"]
            return float(fault.get("delay", 0.0))
