"""What a ``powershell.exe`` process gets from the machine it runs on.

The interpreter never reaches the machine directly. A process is given a
:class:`Runtime`: its environment block, working directory, clock and time
zone, the COM classes it can create, and whether it has been ended from
outside. The emulated Windows subclasses it; the base class is complete on
its own (no COM class is registered), which is what the interpreter's own
tests run on.

While a process runs, :func:`current_runtime` gives its runtime to the
implementations of .NET members that need the machine (``[DateTime]::Now``,
``[scriptblock]::Create``, the file system...), so that they keep .NET's
signatures.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone

from wuacache_lab.powershell.errors import ProcessKilled, dotnet_error
from wuacache_lab.powershell.raised import RaisedError

REGDB_E_CLASSNOTREG = 0x80040154


@dataclass(frozen=True)
class ProgramResult:
    """What a program run as a command leaves: its standard output and error, as text, and its exit code."""

    stdout: str
    stderr: str
    exit_code: int


class StandardInput:
    """The standard input of a ``powershell.exe`` process, which one reader takes.

    The script reads it as ``$input``, one string per line. A program the
    script runs first in a pipeline, with no pipeline input, inherits the
    handle instead: PowerShell redirects a program's input only when the
    pipeline gives it some (CalculateIORedirection, PowerShell/PowerShell
    src/System.Management.Automation/engine/NativeCommandProcessor.cs). The
    lab takes such a program to read it to its end.
    """

    def __init__(self, data: bytes = b"") -> None:
        self._data = data

    @classmethod
    def of_lines(cls, lines: list[str]) -> StandardInput:
        return cls("".join(f"{line}\r\n" for line in lines).encode("utf-8"))

    def read(self) -> bytes:
        """What nobody has read yet; the stream is at its end afterwards."""
        data, self._data = self._data, b""
        return data


class Runtime:
    """The machine side of one process.

    ``end()`` ends the process from outside (a stopped task, an execution
    time limit, a restart): the next statement, or a blocking call already
    waiting (``Start-Sleep``, ``WaitForExit``...), raises
    :class:`~wuacache_lab.powershell.errors.ProcessKilled`.
    """

    def __init__(
        self,
        environment: dict[str, str] | None = None,
        *,
        working_directory: str = "C:\\Windows\\System32",
        utc_offset_minutes: int = 0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.environment = dict(environment or {})
        self.working_directory = working_directory
        self.utc_offset_minutes = utc_offset_minutes
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._ended = threading.Event()
        # The terminating errors the process's statements raised, in order.
        self.raised: list[RaisedError] = []

    # ------------------------------------------------------------ time

    def utc_now(self) -> datetime:
        """The machine's clock, as an aware UTC datetime."""
        return self._clock()

    # ------------------------------------------------------------ ending

    def end(self) -> None:
        self._ended.set()

    def check_alive(self) -> None:
        """Called before every statement and by blocking calls: raises once the process was ended."""
        if self._ended.is_set():
            raise ProcessKilled()

    def wait(self, seconds: float) -> None:
        """Block for ``seconds``, or until the process is ended (then raise)."""
        self.check_alive()
        if self._ended.wait(max(seconds, 0)):
            raise ProcessKilled()

    # ------------------------------------------------------------ COM and scripts

    def create_com_object(self, prog_id: str) -> object:
        """``New-Object -ComObject <prog_id>``: the Python object implementing the class's default interface."""
        # An unknown ProgID has no CLSID: Windows PowerShell names the empty GUID.
        raise dotnet_error(
            "System.Runtime.InteropServices.COMException",
            "Retrieving the COM class factory for component with CLSID {00000000-0000-0000-0000-000000000000} "
            "failed due to the following error: "
            "80040154 Class not registered (Exception from HRESULT: 0x80040154 (REGDB_E_CLASSNOTREG)).",
            hresult=REGDB_E_CLASSNOTREG,
        )

    def script_name(self, text: str) -> str:
        """The name errors give a script block made from ``text`` with ``[scriptblock]::Create``.

        PowerShell has none ("At line:3 char:5"); the emulated Windows may name
        the scripts it recognises, so that a refusal names the shipped file.
        """
        return ""

    def run_program(self, name: str, arguments: list[str], stdin: StandardInput) -> ProgramResult | None:
        """Run the program a command name stands for (``hostname``, ``shutdown.exe``) and wait for it;
        it reads ``stdin`` (the process's own when it inherits it).

        None when the machine has no such program: the command is not found.
        """
        return None


ScriptBlockInvoker = Callable[[object, list[object]], object]

_CURRENT: ContextVar[tuple[Runtime, ScriptBlockInvoker]] = ContextVar("wuacache_lab.powershell.runtime")


def current_runtime() -> Runtime:
    """The runtime of the process running on this thread."""
    return _CURRENT.get()[0]


def invoke_delegate(script_block: object, arguments: list[object]) -> object:
    """Run a script block given to a .NET method as a delegate (a MatchEvaluator...), in the running process."""
    return _CURRENT.get()[1](script_block, arguments)


@contextmanager
def running(runtime: Runtime, invoker: ScriptBlockInvoker) -> Iterator[Runtime]:
    token = _CURRENT.set((runtime, invoker))
    try:
        yield runtime
    finally:
        _CURRENT.reset(token)
