"""Programs a PowerShell process starts on an emulated host.

Three ways, each as Windows PowerShell 5.1 and .NET Framework 4.8 do it:

- a command that names a program (``hostname``, ``shutdown.exe /r /t 5``):
  PowerShell finds it on the PATH (or at the path given), passes each
  argument as a word of the command line (in double quotes when it holds a
  space), gives it the PowerShell process's standard input when nothing is
  piped to it, waits for it, writes its standard output to the pipeline line
  by line and sets ``$LASTEXITCODE`` (:func:`run_program`);
- ``Start-Process`` (Microsoft.PowerShell.Management): the program starts
  with its ``-ArgumentList`` joined by spaces, unquoted, in
  ``-WorkingDirectory``, without waiting unless ``-Wait``; ``-PassThru``
  gives the ``System.Diagnostics.Process``;
- that :class:`Process`: ``Id``, ``Handle``, ``HasExited``, ``ExitCode``
  (an InvalidOperationException until the program has exited),
  ``WaitForExit()``. A wait is a kill point: the PowerShell process ended
  from outside stops waiting, and the program it started runs on.

Every program runs through the host's own command line handling
(``WindowsHost.run_process``), on a thread of its own while it runs. This
module also implements the two System32 programs no other module does:
``hostname.exe`` and ``shutdown.exe`` (:func:`run_hostname`,
:func:`run_shutdown`).
"""

from __future__ import annotations

import itertools
import ntpath
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from wuacache_lab.powershell.commands import CmdletCall, cmdlet, is_switch
from wuacache_lab.powershell.conversions import enumerate_value, to_string
from wuacache_lab.powershell.dotnet import dotnet_type
from wuacache_lab.powershell.errors import INVALID_OPERATION, DotNetException, LabLimitation, dotnet_error
from wuacache_lab.powershell.runtime import ProgramResult, StandardInput
from wuacache_lab.powershell.values import AUTOMATION_NULL
from wuacache_lab.windows.errors import HResultError, signed
from wuacache_lab.windows.process import LogonSession, ProcessResult
from wuacache_lab.windows.runtime import HostRuntime, host_runtime

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost

# The console's code page, in which programs write their output.
CONSOLE_ENCODING = "cp437"
# Programs of the system folder the emulated hosts run, as found on the PATH, by name without extension.
SYSTEM_PROGRAMS = {
    "cmd": "System32\\cmd.exe",
    "dism": "System32\\dism.exe",
    "hostname": "System32\\HOSTNAME.EXE",
    "powershell": "System32\\WindowsPowerShell\\v1.0\\powershell.exe",
    "shutdown": "System32\\shutdown.exe",
    "wusa": "System32\\wusa.exe",
}
# How often a wait for a program looks whether the PowerShell process was ended meanwhile.
WAIT_SLICE_SECONDS = 0.1
# Win32 errors CreateProcess reports, with their system messages.
ERROR_FILE_NOT_FOUND = 2
ERROR_DIRECTORY = 267
_CREATE_PROCESS_MESSAGES = {
    ERROR_FILE_NOT_FOUND: "The system cannot find the file specified",
    ERROR_DIRECTORY: "The directory name is invalid",
}
# shutdown.exe's default time-out before a restart.
DEFAULT_SHUTDOWN_SECONDS = 30
ERROR_ACCESS_DENIED = 5

_process_ids = itertools.count(4120, 4)


def find_program(runtime: HostRuntime, name: str, *, search_working_directory: bool) -> str | None:
    """The full path of the program ``name`` stands for, or None.

    A path (with a backslash) must be a file of the disk; a bare name is one
    of the system folder's programs, with or without ``.exe``. CreateProcess
    also looks in the working directory first (``Start-Process``);
    PowerShell's command discovery does not.
    """
    if "\\" in name or "/" in name:
        path = name if ntpath.isabs(name) else ntpath.join(runtime.working_directory, name)
        return path if is_file(runtime.host, path) else None
    if search_working_directory:
        local = ntpath.join(runtime.working_directory, name)
        if is_file(runtime.host, local):
            return local
    stem = name.casefold()
    known = SYSTEM_PROGRAMS.get(stem[: -len(".exe")] if stem.endswith(".exe") else stem)
    return None if known is None else f"{runtime.system.getenv('SystemRoot')}\\{known}"


def is_file(host: WindowsHost, path: str) -> bool:
    """Whether ``path`` (a full path) is a file of the host's disk."""
    try:
        return host.disk.exists(path) and not host.disk.is_folder(path)
    except HResultError:
        return False


class RunningProgram:
    """A program started on the host, running on a thread of its own until it exits."""

    def __init__(
        self, host: WindowsHost, command_line: str, logon: LogonSession, working_directory: str, stdin: bytes = b""
    ) -> None:
        self.id = next(_process_ids)
        self._exited = threading.Event()
        self._result: ProcessResult | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run,
            args=(host, command_line, logon, working_directory, stdin),
            name=f"{host.name} program {self.id}",
            daemon=True,
        )
        self._thread.start()

    def _run(self, host: WindowsHost, command_line: str, logon: LogonSession, working_directory: str, stdin: bytes) -> None:
        try:
            self._result = host.run_process(command_line, stdin, logon, working_directory)
        except BaseException as failure:  # noqa: BLE001 - handed to whoever waits for the program
            self._failure = failure
        finally:
            self._exited.set()

    @property
    def has_exited(self) -> bool:
        return self._exited.is_set()

    def wait(self, runtime: HostRuntime, seconds: float | None = None) -> bool:
        """Wait for the program, at most ``seconds``; a kill point of the waiting process. True once it has exited."""
        remaining = seconds
        while not self._exited.is_set():
            runtime.check_alive()
            if remaining is not None and remaining <= 0:
                return False
            step = WAIT_SLICE_SECONDS if remaining is None else min(WAIT_SLICE_SECONDS, remaining)
            self._exited.wait(step)
            if remaining is not None:
                remaining -= step
        return True

    @property
    def result(self) -> ProcessResult:
        """What the program left, once it has exited."""
        if self._failure is not None:
            raise self._failure
        assert self._result is not None
        return self._result


@dotnet_type("System.Diagnostics.Process", base="System.ComponentModel.Component")
class Process:
    """A process ``Start-Process -PassThru`` gives: the program started, seen from the process that started it."""

    def __init__(self, program: RunningProgram, path: str) -> None:
        self._program = program
        self._name = ntpath.splitext(ntpath.basename(path))[0]

    @property
    def Id(self) -> int:  # noqa: N802 - .NET member name
        return self._program.id

    @property
    def ProcessName(self) -> str:  # noqa: N802
        return self._name

    @property
    def Handle(self) -> int:  # noqa: N802
        """The process handle (an IntPtr); holding it keeps the exit code readable once the program has exited."""
        return 0x400 + self._program.id

    @property
    def HasExited(self) -> bool:  # noqa: N802
        return self._program.has_exited

    @property
    def ExitCode(self) -> int:  # noqa: N802
        if not self._program.has_exited:
            # The ExitCode page: "The process has not exited."
            raise dotnet_error("System.InvalidOperationException", "Process must exit before requested information can be determined.")
        return signed(self._program.result.exit_code & 0xFFFFFFFF)

    def WaitForExit(self, milliseconds: object = None) -> object:  # noqa: N802
        """Without a time-out, until the program has exited (the void overload: no output); with one, whether it has."""
        runtime = host_runtime()
        if milliseconds is None:
            self._program.wait(runtime)
            return AUTOMATION_NULL
        limit = int(milliseconds)  # type: ignore[call-overload]
        return self._program.wait(runtime, None if limit == -1 else limit / 1000)

    def ToString(self) -> str:  # noqa: N802
        return f"System.Diagnostics.Process ({self._name})"


def _start_failure(call: CmdletCall, code: int) -> Exception:
    """StartProcessCommand: a program that cannot start is a terminating InvalidOperationException."""
    message = f"This command cannot be run due to the error: {_CREATE_PROCESS_MESSAGES[code]}."
    return call.terminating(DotNetException("System.InvalidOperationException", message), "InvalidOperationException", INVALID_OPERATION)


_UNSUPPORTED = ("Credential", "LoadUserProfile", "RedirectStandardError", "RedirectStandardInput", "RedirectStandardOutput", "UseNewEnvironment", "Verb")


@cmdlet("Start-Process")
def start_process(call: CmdletCall) -> Iterable[object]:
    runtime = host_runtime()
    for parameters in call.records:
        for name in _UNSUPPORTED:
            if name in parameters:
                raise LabLimitation(f"The lab's Start-Process does not implement -{name}.")
        working_directory = to_string(parameters["WorkingDirectory"]) if "WorkingDirectory" in parameters else runtime.working_directory
        if not runtime.host.disk.is_folder(working_directory):
            raise _start_failure(call, ERROR_DIRECTORY)
        path = find_program(runtime, to_string(parameters["FilePath"]), search_working_directory=True)
        if path is None:
            raise _start_failure(call, ERROR_FILE_NOT_FOUND)
        arguments = " ".join(to_string(item) for item in enumerate_value(parameters.get("ArgumentList") or []))
        command_line = f'"{path}" {arguments}' if arguments else f'"{path}"'
        program = RunningProgram(runtime.host, command_line, runtime.logon, working_directory)
        if is_switch(parameters, "Wait"):
            program.wait(runtime)
        if is_switch(parameters, "PassThru"):
            yield Process(program, path)


def run_program(runtime: HostRuntime, name: str, arguments: list[str], stdin: StandardInput) -> ProgramResult | None:
    """A command naming a program, reading ``stdin``: its output and exit code once it has exited; None when
    there is no such program."""
    path = find_program(runtime, name, search_working_directory=False)
    if path is None:
        return None
    words = [f'"{argument}"' if " " in argument and not argument.startswith('"') else argument for argument in arguments]
    program = RunningProgram(runtime.host, " ".join([f'"{path}"', *words]), runtime.logon, runtime.working_directory, stdin.read())
    program.wait(runtime)
    completed = program.result
    return ProgramResult(
        completed.stdout.decode(CONSOLE_ENCODING, errors="replace"),
        completed.stderr.decode(CONSOLE_ENCODING, errors="replace"),
        signed(completed.exit_code & 0xFFFFFFFF),
    )


# ---------------------------------------------------------------- hostname.exe and shutdown.exe


def run_hostname(host: WindowsHost, arguments: list[str], logon: LogonSession) -> ProcessResult:
    """``hostname``: the computer's host name on one line."""
    del logon
    if arguments:
        raise NotImplementedError("the emulated hostname.exe takes no arguments")
    return ProcessResult(f"{host.name}\r\n".encode(CONSOLE_ENCODING), b"", 0)


def run_shutdown(host: WindowsHost, arguments: list[str], logon: LogonSession) -> ProcessResult:
    """``shutdown /r [/t <seconds>] [/f] [/c <comment>]`` schedules a restart; ``shutdown /a`` aborts one in its time-out.

    A failure is written as its system message followed by the code in
    parentheses, which is also the exit code (ERROR_SHUTDOWN_IS_SCHEDULED,
    ERROR_NO_SHUTDOWN_IN_PROGRESS).
    """
    switches = [argument.casefold().replace("-", "/", 1) if argument.startswith("-") else argument.casefold() for argument in arguments]
    if not logon.administrator:
        # Restarting needs SeShutdownPrivilege, which a remote user holds as an administrator only.
        return ProcessResult(b"", b"Access is denied.(5)\r\n", ERROR_ACCESS_DENIED)
    try:
        if switches == ["/a"]:
            host.abort_reboot()
        elif "/r" in switches:
            host.reboot(_shutdown_delay(arguments, switches))
        else:
            raise NotImplementedError("the emulated shutdown.exe restarts (/r) or aborts (/a) only")
    except HResultError as error:
        code = error.hresult & 0xFFFF
        return ProcessResult(b"", f"{error.message}({code})\r\n".encode(CONSOLE_ENCODING), code)
    return ProcessResult(b"", b"", 0)


def _shutdown_delay(arguments: list[str], switches: list[str]) -> int:
    """The seconds of ``/t`` (30 without it); the other switches of a restart (``/f``, ``/c <comment>``, ``/d ...``) change nothing here."""
    if "/t" not in switches:
        return DEFAULT_SHUTDOWN_SECONDS
    position = switches.index("/t")
    if position + 1 >= len(arguments) or not arguments[position + 1].isdigit():
        raise NotImplementedError("shutdown /t takes a number of seconds")
    return int(arguments[position + 1])
