"""What a remote shell hands to an emulated Windows host, and what it gets back.

The WinRM endpoint (``wuacache_lab.winrm``) only transports commands; the
emulated host (``wuacache_lab.windows``) decides what they do. These types are
the whole contract between the two.
"""

from __future__ import annotations

from dataclasses import dataclass


# cmd.exe refuses longer command lines ("The command line is too long.").
MAX_COMMAND_LINE = 8191
# Where a process starts when its creator names no working directory.
DEFAULT_WORKING_DIRECTORY = "C:\\Windows\\System32"


@dataclass(frozen=True)
class LogonSession:
    """The security context a process runs in.

    ``logon_type`` is ``"network"`` for anything started through WinRM and
    ``"service"`` for processes started by the host itself as local SYSTEM
    (scheduled tasks, services). WUA refuses several calls to network logons.
    WinRM admits only administrators, so sessions are elevated by default.
    """

    user: str
    logon_type: str = "network"
    administrator: bool = True


@dataclass(frozen=True)
class ProcessResult:
    stdout: bytes
    stderr: bytes
    exit_code: int


class ConnectionDropped(Exception):
    """The host lost its network mid-command: the transport must close the
    TCP connection without answering, as a real host going away would."""
