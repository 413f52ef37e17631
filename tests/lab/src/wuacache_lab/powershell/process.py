"""One ``powershell.exe`` process: its command line, standard streams and exit code.

about_PowerShell_exe (5.1) is the reference:

- the parameters, each abbreviable to a unique prefix in this order
  (``-e`` is EncodedCommand, ``-ex`` ExecutionPolicy), and bare words after
  them taken as a ``-Command``;
- ``-EncodedCommand`` is the base64 of the UTF-16LE text of the script;
  standard input, when the script reads it, comes as ``$input``, one string
  per line, unless a program the script runs inherits it first
  (:class:`~wuacache_lab.powershell.runtime.StandardInput`);
- the script runs in the global scope; its output objects go to standard
  output as the default formatter writes strings and numbers, one per line;
- an error that nothing caught is written to standard error as Windows
  PowerShell 5.1 writes it (``<command> : <message>``, the position, then
  ``+ CategoryInfo`` and ``+ FullyQualifiedErrorId``), and the exit code is
  1; ``exit n`` ends the process with n; otherwise the exit code is 0 when
  ``$?`` holds at the end, 1 when it does not.

The process is independent of the emulated Windows: everything it needs
from the machine comes through its :class:`~wuacache_lab.powershell.runtime.Runtime`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from decimal import Decimal

from wuacache_lab.powershell import coverage, raised
from wuacache_lab.powershell.conversions import to_string
from wuacache_lab.powershell.errors import (
    BreakSignal,
    ContinueSignal,
    DotNetException,
    ErrorRecord,
    ExitSignal,
    LabLimitation,
    PowerShellError,
    ProcessKilled,
    UnsupportedSyntax,
)
from wuacache_lab.powershell.evaluate import Interpreter
from wuacache_lab.powershell.lower import parse
from wuacache_lab.powershell.reference import ReferenceContracts
from wuacache_lab.powershell.runtime import Runtime, StandardInput
from wuacache_lab.powershell.values import EnumValue, type_name_of

# powershell.exe's parameters in the order it resolves abbreviations, and whether they take a value.
PARAMETERS = (
    ("encodedcommand", True),
    ("executionpolicy", True),
    ("command", True),
    ("file", True),
    ("inputformat", True),
    ("outputformat", True),
    ("windowstyle", True),
    ("configurationname", True),
    ("version", True),
    ("psconsolefile", True),
    ("noprofile", False),
    ("noninteractive", False),
    ("nologo", False),
    ("noexit", False),
    ("sta", False),
    ("mta", False),
)
ALIASES = {"ec": "encodedcommand", "ep": "executionpolicy"}

NOT_ENCODED = (
    "Cannot process the command because the value specified with -EncodedCommand is not properly encoded. "
    "The value must be Base64 encoded."
)
# The console's code page when output is redirected (OEM United States).
CONSOLE_ENCODING = "cp437"


def resolve_parameter(name: str) -> str | None:
    """The powershell.exe parameter a (possibly abbreviated) switch names, without its dash."""
    name = name.casefold()
    if name in ALIASES:
        return ALIASES[name]
    return next((full for full, _ in PARAMETERS if name and full.startswith(name)), None)


def script_of(arguments: list[str]) -> str | None:
    """The script a command line runs: ``-Command``, ``-EncodedCommand`` or bare words; None for an interactive shell.

    Raises ValueError for an -EncodedCommand that is not base64 of UTF-16LE.
    """
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        if not argument.startswith(("-", "/")):
            return " ".join(arguments[index:])
        parameter = resolve_parameter(argument[1:])
        if parameter == "command":
            return " ".join(arguments[index + 1 :])
        if parameter == "encodedcommand":
            try:
                return base64.b64decode(arguments[index + 1], validate=True).decode("utf-16-le")
            except (IndexError, binascii.Error, UnicodeDecodeError):
                raise ValueError(NOT_ENCODED) from None
        takes_value = dict(PARAMETERS).get(parameter or "", False)
        index += 2 if takes_value else 1
    return None


@dataclass
class Completed:
    """What a process leaves: its standard output and error, and its exit code.

    ``killed`` says the runtime ended it (its exit code is then the one the
    machine gives a terminated process); ``lab_limitation`` names what the
    lab could not run, when that ended it.
    """

    stdout: bytes
    stderr: bytes
    exit_code: int
    killed: bool = False
    lab_limitation: str | None = field(default=None)


class PowerShellProcess:
    """``powershell.exe`` with its arguments, standard input and runtime."""

    def __init__(self, runtime: Runtime, contracts: ReferenceContracts | None = None) -> None:
        self.runtime = runtime
        self.contracts = contracts
        self._stderr: list[str] = []

    def run(self, arguments: list[str], stdin: bytes = b"") -> Completed:
        try:
            script = script_of(arguments)
        except ValueError as error:
            return Completed(b"", _encode(f"{error}\r\n"), 1)
        if script is None:
            return Completed(b"", b"The lab runs no interactive PowerShell: give -Command or -EncodedCommand.\r\n", 1, lab_limitation="interactive shell")
        return self.run_script(script, StandardInput(stdin))

    def run_script(self, script: str, stdin: StandardInput | list[str]) -> Completed:
        """Run a script's text as powershell.exe runs a command, with its standard input (or its lines)."""
        try:
            return self._run_script(script, stdin if isinstance(stdin, StandardInput) else StandardInput.of_lines(stdin))
        finally:
            recorder = coverage.from_environment()
            if recorder is not None:
                recorder.flush()
            error_log = raised.from_environment()
            if error_log is not None:
                error_log.write(self.runtime.raised)

    def _run_script(self, script: str, stdin: StandardInput) -> Completed:
        output: list[object] = []
        interpreter = Interpreter(self.runtime, self.contracts, self._report)
        try:
            body = parse(script, self.runtime.script_name(script))
            interpreter.run(body, output, stdin)
            exit_code = 0 if interpreter.last_status else 1
        except ExitSignal as signal:
            exit_code = signal.code
        except (BreakSignal, ContinueSignal):
            # Outside a loop they stop the script, as at the end.
            exit_code = 0 if interpreter.last_status else 1
        except UnsupportedSyntax as error:
            self._stderr.append(_parse_error_text(error))
            exit_code = 1
        except PowerShellError as error:
            self._stderr.append(error_text(error.record, error.exception))
            exit_code = 1
        except ProcessKilled:
            return Completed(self._stdout(output), _encode("".join(self._stderr)), 1, killed=True)
        except LabLimitation as limitation:
            self._stderr.append(f"The emulated host cannot do this: {limitation}\r\n")
            return Completed(self._stdout(output), _encode("".join(self._stderr)), 1, lab_limitation=str(limitation))
        return Completed(self._stdout(output), _encode("".join(self._stderr)), exit_code & 0xFFFFFFFF if exit_code < 0 else exit_code)

    def _report(self, record: ErrorRecord, exception: DotNetException) -> None:
        self._stderr.append(error_text(record, exception))

    def _stdout(self, output: list[object]) -> bytes:
        return _encode("".join(f"{line}\r\n" for value in output for line in _formatted(value, self.runtime)))


def _encode(text: str) -> bytes:
    return text.encode(CONSOLE_ENCODING, errors="replace")


def _formatted(value: object, runtime: Runtime) -> list[str]:
    """The default formatter's lines for a string or a number; nothing for ``$null``."""
    from wuacache_lab.powershell.values import PSObject

    plain = value.base if isinstance(value, PSObject) and not value.is_custom else value
    if plain is None:
        return []
    if isinstance(plain, (str, bool, int, float, Decimal, EnumValue)):
        return to_string(plain, runtime.utc_offset_minutes).split("\n")
    raise LabLimitation(f"The lab does not format objects of type {type_name_of(plain)} for the console.")


def error_text(record: ErrorRecord, carrier: DotNetException) -> str:
    """An error as Windows PowerShell 5.1 writes it on standard error (its NormalView)."""
    exception = record.resolved_exception(carrier)
    command = record.invocation.command_name if record.invocation else None
    lines = [f"{command} : {exception.message}" if command else exception.message]
    if record.invocation is not None and record.invocation.extent is not None:
        lines.extend(record.invocation.position_message.split("\n"))
    target = record.target_object
    target_name = record.target_name if record.target_name is not None else (to_string(target) if target is not None else "")
    target_type = type_name_of(target).rsplit(".", 1)[-1] if target is not None else ""
    lines.append(f"    + CategoryInfo          : {record.category_message(carrier, target_name, target_type)}")
    lines.append(f"    + FullyQualifiedErrorId : {record.fully_qualified_error_id}")
    lines.append(" ")
    return "".join(f"{line}\r\n" for line in lines)


def _parse_error_text(error: UnsupportedSyntax) -> str:
    lines = [*error.record.invocation.position_message.split("\n"), error.reason] if error.record.invocation else [error.reason]  # type: ignore[union-attr]
    lines.append("    + CategoryInfo          : ParserError: (:) [], ParentContainsErrorRecordException")
    lines.append(f"    + FullyQualifiedErrorId : {error.record.fully_qualified_error_id}")
    lines.append(" ")
    return "".join(f"{line}\r\n" for line in lines)
