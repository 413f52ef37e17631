"""The machine side of a ``powershell.exe`` process on an emulated host.

The lab's PowerShell interpreter reaches Windows only through its
:class:`~wuacache_lab.powershell.runtime.Runtime`; :class:`HostRuntime` is
that runtime for one process of a :class:`~wuacache_lab.windows.host.WindowsHost`:
the process's environment block and working directory, the COM classes its
logon can create, and its end, which comes from outside when a scheduled
task's instance is stopped or the host restarts. The cmdlets and .NET types
that touch the machine reach the host and the logon through it
(``current_runtime()``, an instance of this class while a process of the host
runs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wuacache_lab.powershell.errors import ProcessKilled
from wuacache_lab.powershell.runtime import Runtime

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost
    from wuacache_lab.windows.process import LogonSession
    from wuacache_lab.windows.system import WindowsSystem


class HostRuntime(Runtime):
    """One process of ``host``, running as ``logon`` in ``working_directory``."""

    def __init__(self, host: WindowsHost, logon: LogonSession, working_directory: str) -> None:
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
        return self._com.create_object(prog_id)
