"""The machine side of a ``powershell.exe`` process on an emulated host.

The lab's PowerShell interpreter reaches Windows only through its
:class:`~wuacache_lab.powershell.runtime.Runtime`; :class:`HostRuntime` is
that runtime for one process of a :class:`~wuacache_lab.windows.host.WindowsHost`:
the process's environment block and working directory, the COM classes its
logon can create, and its end, which comes from outside when a scheduled
task's instance is stopped or the host restarts. The cmdlets and .NET types
that touch the machine reach the host and the logon through it
(:func:`host_runtime`, ``current_runtime()`` as this class, while a process
of the host runs).

The modules of :data:`WINDOWS_MODULES` register those cmdlets and types with
the interpreter; a host's first process imports them.

The shipped scripts are recognised by the comment that opens them, so that
an error names ``_wua_bridge.ps1`` and its line as a file run from disk
would; that name is all the recognition gives them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from wuacache_lab.powershell.errors import LabLimitation, ProcessKilled
from wuacache_lab.powershell.runtime import ProgramResult, Runtime, StandardInput, current_runtime
from wuacache_lab.windows.errors import REGDB_E_CLASSNOTREG, HResultError

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost
    from wuacache_lab.windows.process import LogonSession
    from wuacache_lab.windows.system import WindowsSystem


# The cmdlets and .NET types of the emulated Windows, one concept per module.
WINDOWS_MODULES = (
    "wuacache_lab.windows.providers",
    "wuacache_lab.windows.filesystem",
    "wuacache_lab.windows.registry",
    "wuacache_lab.windows.security",
    "wuacache_lab.windows.items",
    "wuacache_lab.windows.cim",
    "wuacache_lab.windows.services",
    "wuacache_lab.windows.programs",
    "wuacache_lab.windows.versioninfo",
    "wuacache_lab.windows.net",
    "wuacache_lab.windows.dism",
)

# What opens each of the collection's scripts, and the file it is.
SHIPPED_SCRIPTS = (
    ("# wuacache.wua bridge task:", "_wua_task.ps1"),
    ("# wuacache.wua bridge:", "_wua_bootstrap.ps1"),
    ("# Copyright: Contributors to the wuacache project", "_wua_bridge.ps1"),
)


def register_windows() -> None:
    """Import the modules that register the emulated Windows' cmdlets and .NET types."""
    for name in WINDOWS_MODULES:
        importlib.import_module(name)


class HostRuntime(Runtime):
    """One process of ``host``, running as ``logon`` in ``working_directory``."""

    def __init__(self, host: WindowsHost, logon: LogonSession, working_directory: str) -> None:
        register_windows()
        self.host = host
        self.logon = logon
        self.system: WindowsSystem = host.system(logon)
        super().__init__(self.system.environment, working_directory=working_directory)
        # A process lives in one boot of its host: a restart ends it.
        self._boot = host.running_boot()
        # The COM objects of one process: the scan services it registers go with it.
        self._com = host.wua(logon)

    def check_alive(self) -> None:
        super().check_alive()
        if self.host.task_scheduler.process_killed() or self.host.running_boot() != self._boot:
            self.end()
            raise ProcessKilled()

    def wait(self, seconds: float) -> None:
        """Block for ``seconds`` in slices, so that an end from outside is seen within one."""
        remaining = max(seconds, 0.0)
        while True:
            self.check_alive()
            if remaining <= 0:
                return
            step = min(remaining, 0.1)
            super().wait(step)
            remaining -= step

    def create_com_object(self, prog_id: str) -> object:
        try:
            return self._com.create_object(prog_id)
        except HResultError as error:
            if error.hresult == REGDB_E_CLASSNOTREG:
                return super().create_com_object(prog_id)
            raise

    def script_name(self, text: str) -> str:
        return next((name for opening, name in SHIPPED_SCRIPTS if text.lstrip("\ufeff").startswith(opening)), "")

    def run_program(self, name: str, arguments: list[str], stdin: StandardInput) -> ProgramResult | None:
        from wuacache_lab.windows.programs import run_program

        return run_program(self, name, arguments, stdin)


def host_runtime() -> HostRuntime:
    """The process of an emulated host running on this thread, for the cmdlets and .NET members that need its machine."""
    runtime = current_runtime()
    if not isinstance(runtime, HostRuntime):
        raise LabLimitation("This command touches Windows: the lab runs it in a process of an emulated host only.")
    return runtime
