"""What an emulated host remembers across restarts of the lab.

A real machine keeps this in its registry, the service control manager and
the Windows Update datastore; the emulator keeps it in one JSON document per
host, rewritten atomically after every change.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# IUpdateHistoryEntry.Operation
OPERATION_INSTALLATION = 1
OPERATION_UNINSTALLATION = 2


def host_dir(state_dir: Path, name: str) -> Path:
    """The folder of host ``name`` under ``state_dir``.

    Windows computer names are case-insensitive, so an existing folder whose
    name differs only in case is the same host's.
    """
    if state_dir.is_dir():
        for child in state_dir.iterdir():
            if child.name.casefold() == name.casefold():
                return child
    return state_dir / name


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class InstalledUpdate:
    update_id: str
    revision_number: int
    title: str
    installed_at: str
    # What servicing knows of the package: wusa finds it by KB, and removing
    # it needs a restart when installing it did.
    kb_article_ids: list[str] = field(default_factory=list)
    reboot_behavior: str = "NeverReboots"


@dataclass
class InstalledPackage:
    """A servicing (CBS) package installed by wusa.exe or DISM, found by its KB."""

    identity: str  # Package_for_KB<kb>~<public key token>~<architecture>~~<version>
    kb: str
    installed_at: str
    reboot_behavior: str = "NeverReboots"


@dataclass
class PackageManifest:
    """What servicing keeps of a package it installed, as Windows keeps its ``update.mum`` in
    ``%windir%\\servicing\\Packages``: what ``Get-WindowsPackage -PackageName`` tells of it."""

    identity: str
    description: str = ""
    support_information: str = ""
    # package/@permanence="permanent": servicing never removes it (servicing stack updates).
    permanent: bool = False
    # The servicing stack package that came with it in one combined package, which wusa.exe
    # cannot remove: the combined package holds the servicing stack.
    servicing_stack: str | None = None


@dataclass
class HistoryEntry:
    operation: int
    result_code: int
    hresult: int
    date: str
    update_id: str
    revision_number: int
    title: str
    client_application_id: str


@dataclass
class PendingChange:
    """An install or uninstall that completes only when the host restarts."""

    operation: int
    update_id: str
    revision_number: int
    title: str
    kb_article_ids: list[str] = field(default_factory=list)
    reboot_behavior: str = "NeverReboots"
    # The CBS identity of the servicing package the change installs or
    # removes (wusa.exe, DISM); None for a change of an update.
    package: str | None = None


@dataclass
class PendingUpgrade:
    """Windows Setup's down-level phase is done: the upgrade to ``target``
    (an OS profile's name) happens at the next restart."""

    target: str
    # /copylogs: where Setup copies its logs when the upgrade fails.
    copy_logs: str | None = None


@dataclass
class ScanService:
    """A scan package registered with ``usoNonVolatileService``."""

    service_id: str
    name: str
    scan_file: str  # Windows path of WUA's own copy of the cab


@dataclass
class TaskExecAction:
    path: str
    arguments: str = ""
    working_directory: str = ""


@dataclass
class ScheduledTask:
    """A task registered with the Task Scheduler; its running instances are
    not kept, as a restart ends them."""

    path: str  # "\\name" in the root folder, "\\folder\\name" in another
    user_id: str
    logon_type: int
    run_level: int
    actions: list[TaskExecAction]
    settings: dict[str, Any]
    enabled: bool
    last_task_result: int
    last_run_time: str | None = None

    @classmethod
    def from_json(cls, data: dict) -> ScheduledTask:
        return cls(**{**data, "actions": [TaskExecAction(**action) for action in data["actions"]]})


@dataclass
class HostState:
    last_boot_up_time: str
    wuauserv_start_mode: str = "Manual"
    wuauserv_state: str = "Stopped"
    installed: dict[str, InstalledUpdate] = field(default_factory=dict)  # by UpdateID
    packages: dict[str, InstalledPackage] = field(default_factory=dict)  # by CBS identity
    package_manifests: dict[str, PackageManifest] = field(default_factory=dict)  # by CBS identity
    history: list[HistoryEntry] = field(default_factory=list)  # oldest first
    cached_content: dict[str, list[str]] = field(default_factory=dict)  # UpdateID -> cached SHA-1 digests
    hidden_updates: list[str] = field(default_factory=list)
    accepted_eulas: list[str] = field(default_factory=list)
    reboot_markers: list[str] = field(default_factory=list)
    pending_changes: list[PendingChange] = field(default_factory=list)
    scan_services: dict[str, ScanService] = field(default_factory=dict)  # by ServiceID
    scheduled_tasks: dict[str, ScheduledTask] = field(default_factory=dict)  # by case-folded path
    # The Task Scheduler's folders under the root, by path as created ("\\wuacache\\runs").
    task_folders: list[str] = field(default_factory=list)
    # A restart in progress: down from reboot_at for reboot_seconds.
    reboot_at: str | None = None
    reboot_seconds: float = 0.0
    # Back from a restart, Windows is still starting up (configuring updates)
    # until then: the logon screen is not shown yet, servicing is at work.
    startup_until: str | None = None
    # The OS profile Windows Setup upgraded the host to; None for the one it was built with.
    os_profile: str | None = None
    pending_upgrade: PendingUpgrade | None = None

    def holder_of_kb(self, kb: str) -> InstalledUpdate | InstalledPackage | None:
        """What servicing holds for ``kb`` and is not waiting to remove: an
        update the Update Agent installed, or a package wusa.exe or DISM did."""
        leaving = {
            change.package or change.update_id
            for change in self.pending_changes
            if change.operation == OPERATION_UNINSTALLATION
        }
        updates = (update for update in self.installed.values() if kb in update.kb_article_ids)
        packages = (package for package in self.packages.values() if package.kb == kb)
        return next((update for update in updates if update.update_id not in leaving), None) or next(
            (package for package in packages if package.identity not in leaving), None
        )

    @classmethod
    def from_json(cls, data: dict) -> HostState:
        data = dict(data)
        data["installed"] = {key: InstalledUpdate(**value) for key, value in data.get("installed", {}).items()}
        data["packages"] = {key: InstalledPackage(**value) for key, value in data.get("packages", {}).items()}
        data["package_manifests"] = {
            key: PackageManifest(**value) for key, value in data.get("package_manifests", {}).items()
        }
        data["history"] = [HistoryEntry(**entry) for entry in data.get("history", [])]
        data["pending_changes"] = [PendingChange(**change) for change in data.get("pending_changes", [])]
        data["scan_services"] = {key: ScanService(**value) for key, value in data.get("scan_services", {}).items()}
        data["scheduled_tasks"] = {
            key: ScheduledTask.from_json(value) for key, value in data.get("scheduled_tasks", {}).items()
        }
        if data.get("pending_upgrade") is not None:
            data["pending_upgrade"] = PendingUpgrade(**data["pending_upgrade"])
        return cls(**data)


def read_host_state(state_dir: Path, name: str) -> HostState:
    """The saved state of host ``name``, read from outside the process that
    owns it (the lab's ground truth for tests and the demo); never written."""
    path = host_dir(state_dir, name) / "state.json"
    return HostState.from_json(json.loads(path.read_text()))


class StateStore:
    """The state of one host, held in memory and saved after every change.

    One process owns a host at a time; the lock serialises the commands that
    run on it concurrently.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        if path.exists():
            self._state = HostState.from_json(json.loads(path.read_text()))
        else:
            self._state = HostState(last_boot_up_time=to_iso(utc_now()))
            self._save()

    def read(self) -> HostState:
        """A copy of the current state."""
        with self._lock:
            return copy.deepcopy(self._state)

    def peek(self, reader: Callable[[HostState], T]) -> T:
        """What ``reader`` computes from the current state, without copying
        it: ``reader`` must return immutable values only."""
        with self._lock:
            return reader(self._state)

    @contextmanager
    def update(self) -> Iterator[HostState]:
        """Change the state; saved when the block ends without an exception."""
        with self._lock:
            draft = copy.deepcopy(self._state)
            yield draft
            self._state = draft
            self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        with open(temporary, "w") as stream:
            json.dump(asdict(self._state), stream, indent=1)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, self.path)
