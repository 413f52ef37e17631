"""Running PowerShell snippets in the lab's interpreter, for its tests."""

from __future__ import annotations

from wuacache_lab.powershell.errors import PowerShellError
from wuacache_lab.powershell.evaluate import Interpreter
from wuacache_lab.powershell.lower import parse
from wuacache_lab.powershell.process import Completed, PowerShellProcess
from wuacache_lab.powershell.runtime import Runtime

ENVIRONMENT = {"COMPUTERNAME": "WIN10-01", "ProgramData": "C:\\ProgramData", "SystemRoot": "C:\\Windows"}


def output(script: str, runtime: Runtime | None = None) -> list[object]:
    """The objects a script writes to its output."""
    written: list[object] = []
    Interpreter(runtime or Runtime(ENVIRONMENT)).run(parse(script, "snippet.ps1"), written)
    return written


def failure(script: str, runtime: Runtime | None = None) -> PowerShellError:
    """The terminating error a script ends with."""
    try:
        output(script, runtime)
    except PowerShellError as error:
        return error
    raise AssertionError("the script ended without error")


def run(script: str, stdin: list[str] | None = None, runtime: Runtime | None = None) -> Completed:
    """The script run as powershell.exe runs a command: standard output and error, exit code."""
    return PowerShellProcess(runtime or Runtime(ENVIRONMENT)).run_script(script, stdin or [])


def text(completed: Completed) -> str:
    return completed.stdout.decode("cp437")
