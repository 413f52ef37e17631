"""What Windows does with a command line a remote shell or the host itself hands it.

WinRS runs every command through cmd.exe, which refuses lines longer than
8,191 characters. The first word names the program:

- ``powershell.exe`` runs its ``-Command`` or ``-EncodedCommand`` (with its
  standard input) in the lab's Windows PowerShell 5.1
  (:mod:`wuacache_lab.powershell`), as a process of the host
  (:class:`~wuacache_lab.windows.runtime.HostRuntime`): the bootstrap and the
  bridge over WinRM, the task script in a scheduled task, and whatever else
  a tool sends;
- ``wusa.exe`` and ``dism.exe`` install servicing packages and remove updates
  (:mod:`wuacache_lab.windows.wusa`, :mod:`wuacache_lab.windows.dism`), and
  the ``setup.exe`` of upgrade media on the host's disk upgrades Windows
  (:mod:`wuacache_lab.windows.setup`);
- ``hostname.exe`` and ``shutdown.exe`` (:mod:`wuacache_lab.windows.programs`).

Any other program, or a use of one of these the lab does not model, is
refused as such.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from wuacache_lab.powershell.process import PowerShellProcess
from wuacache_lab.windows.dism import run_dism
from wuacache_lab.windows.process import DEFAULT_WORKING_DIRECTORY, MAX_COMMAND_LINE, LogonSession, ProcessResult
from wuacache_lab.windows.programs import run_hostname, run_shutdown
from wuacache_lab.windows.runtime import HostRuntime
from wuacache_lab.windows.setup import run_setup
from wuacache_lab.windows.wusa import run_wusa

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost

COMMAND_LINE_TOO_LONG = b"The command line is too long.\r\n"
CANNOT_RUN = b"The emulated host cannot run this program.\r\n"

# The programs of the host other than powershell.exe and setup.exe, each given its arguments and logon.
_PROGRAMS: dict[str, Callable[[WindowsHost, list[str], LogonSession], ProcessResult]] = {
    "wusa": run_wusa,
    "dism": run_dism,
    "hostname": run_hostname,
    "shutdown": run_shutdown,
}


def run_command_line(
    host: WindowsHost,
    command_line: str,
    stdin: bytes,
    logon: LogonSession,
    working_directory: str = DEFAULT_WORKING_DIRECTORY,
) -> ProcessResult:
    if len(command_line) > MAX_COMMAND_LINE:
        return ProcessResult(b"", COMMAND_LINE_TOO_LONG, 1)
    arguments = split_command_line(command_line)
    if not arguments:
        return ProcessResult(b"", b"", 0)
    program = re.split(r"[\\/]", arguments[0])[-1].casefold().removesuffix(".exe")
    try:
        if program == "powershell":
            return _run_powershell(host, arguments[1:], stdin, logon, working_directory)
        if program == "setup":
            return run_setup(host, arguments[0], arguments[1:], logon)
        if program in _PROGRAMS:
            return _PROGRAMS[program](host, arguments[1:], logon)
    except NotImplementedError as error:
        host.log.warning("%s: %s", program, error)
    return ProcessResult(b"", CANNOT_RUN, 1)


def split_command_line(command_line: str) -> list[str]:
    """Split like CommandLineToArgvW: quotes group, and backslashes escape
    a quote only when they precede one."""
    arguments: list[str] = []
    current: list[str] = []
    in_argument = in_quotes = False
    index = 0
    while index < len(command_line):
        character = command_line[index]
        if character == "\\":
            run = len(command_line[index:]) - len(command_line[index:].lstrip("\\"))
            index += run
            if index < len(command_line) and command_line[index] == '"':
                current.append("\\" * (run // 2))
                if run % 2:
                    current.append('"')
                    index += 1
            else:
                current.append("\\" * run)
            in_argument = True
            continue
        if character == '"':
            in_quotes = not in_quotes
            in_argument = True
        elif character in " \t" and not in_quotes:
            if in_argument:
                arguments.append("".join(current))
                current, in_argument = [], False
        else:
            current.append(character)
            in_argument = True
        index += 1
    if in_argument:
        arguments.append("".join(current))
    return arguments


def _run_powershell(
    host: WindowsHost, arguments: list[str], stdin: bytes, logon: LogonSession, working_directory: str
) -> ProcessResult:
    """powershell.exe, run by the lab's interpreter in a process of the host; what ended it goes to the host's log."""
    completed = PowerShellProcess(HostRuntime(host, logon, working_directory)).run(arguments, stdin)
    if completed.lab_limitation is not None:
        host.log.warning("powershell.exe did what the lab does not implement: %s", completed.lab_limitation)
    elif completed.killed:
        host.log.info("powershell.exe was ended from outside")
    elif completed.exit_code != 0 and completed.stderr:
        # The error nothing caught, as powershell.exe writes it: its message, then its file and line.
        host.log.info("powershell.exe exited with %d: %s", completed.exit_code, completed.stderr.decode("cp437").strip())
    return ProcessResult(completed.stdout, completed.stderr, completed.exit_code)
