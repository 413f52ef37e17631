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
- ``hostname.exe`` and ``shutdown.exe`` (:mod:`wuacache_lab.windows.programs`);
- ``cmd.exe /c <string>`` runs the command line ``<string>`` once cmd.exe has
  removed its quotes (below), as OpenSSH's server does with every command when
  cmd.exe is its default shell.

Any other program, or a use of one of these the lab does not model, is
refused as such.
"""

from __future__ import annotations

import ntpath
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from wuacache_lab.powershell.process import PowerShellProcess
from wuacache_lab.windows.dism import run_dism
from wuacache_lab.windows.process import DEFAULT_WORKING_DIRECTORY, MAX_COMMAND_LINE, LogonSession, ProcessResult
from wuacache_lab.windows.programs import is_file, run_hostname, run_shutdown
from wuacache_lab.windows.runtime import HostRuntime
from wuacache_lab.windows.setup import run_setup
from wuacache_lab.windows.wusa import run_wusa

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost

COMMAND_LINE_TOO_LONG = b"The command line is too long.\r\n"
CANNOT_RUN = b"The emulated host cannot run this program.\r\n"
# What cmd.exe treats as special in a command line (MicrosoftDocs/windowsserverdocs
# WindowsServerDocs/administration/windows-commands/cmd.md, Remarks).
CMD_SPECIAL_CHARACTERS = frozenset("&<>()@^|")

# The programs of the host other than powershell.exe, cmd.exe and setup.exe, each given its arguments and logon.
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
        if program == "cmd":
            return run_command_line(host, cmd_command(host, command_line, working_directory), stdin, logon, working_directory)
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


def cmd_command(host: WindowsHost, command_line: str, working_directory: str) -> str:
    """The command ``cmd.exe /c <string>`` carries out (cmd.md, Remarks, in
    MicrosoftDocs/windowsserverdocs WindowsServerDocs/administration/windows-commands/).

    cmd.exe keeps the quotes of ``<string>`` only when it holds exactly two, with
    white space and none of ``& < > ( ) @ ^ |`` between them, around the name of
    an executable file; otherwise a string that opens with a quote loses it and
    its last quote. The lab runs one program per command: the other switches, and
    commands that cmd.exe itself would split, pipe or redirect, are refused.
    """
    switch, _, string = _after_program(command_line).partition(" ")
    if switch.casefold() != "/c":
        raise NotImplementedError("the emulated cmd.exe only carries out /c <command>")
    string = string.lstrip(" \t")
    if string.startswith('"'):
        quoted = string[1:].partition('"')[0]
        keeps_quotes = (
            string.count('"') == 2
            and not CMD_SPECIAL_CHARACTERS & set(quoted)
            and any(character in " \t" for character in quoted)
            and is_file(host, quoted if ntpath.isabs(quoted) else ntpath.join(working_directory, quoted))
        )
        if not keeps_quotes:
            last = string.rindex('"')
            string = string[1:last] + string[last + 1 :] if last else string[1:]
    if any(character in CMD_SPECIAL_CHARACTERS for character in _unquoted(string)):
        raise NotImplementedError("the emulated cmd.exe runs one program, without cmd.exe's operators")
    return string


def _after_program(command_line: str) -> str:
    """What follows the program's name on a command line: a quoted name ends at
    its closing quote, an unquoted one at white space (CreateProcess)."""
    name = re.match(r'[ \t]*(?:"[^"]*"?|[^ \t]*)[ \t]*', command_line)
    assert name is not None  # the pattern matches any text
    return command_line[name.end() :]


def _unquoted(text: str) -> str:
    """The characters of ``text`` outside double quotes."""
    return "".join(text.split('"')[::2])


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
