"""What Windows does with a command line a remote shell hands it.

WinRS runs every command through cmd.exe, which refuses lines longer than
8,191 characters. ``powershell.exe -EncodedCommand`` scripts carrying the
bridge marker run a bridge operation (:mod:`wuacache_lab.windows.bridge`)
with the request read from standard input; those carrying the task
bootstrap's marker run the ``envelope.json`` of their working directory and
write ``response.json`` beside it, as the elevated runs' scheduled tasks do.
``wusa.exe`` and ``dism.exe`` install servicing packages and remove updates
(:mod:`wuacache_lab.windows.wusa`, :mod:`wuacache_lab.windows.dism`), and
the ``setup.exe`` of upgrade media on the host's disk upgrades Windows
(:mod:`wuacache_lab.windows.setup`).
A handful of plain commands are
understood so that generic tools (Ansible's ``raw``, ``shutdown /r`` and ``/a``) can be
tested; the emulator is not a PowerShell interpreter and says so for anything
else.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import TYPE_CHECKING

from wuacache_lab.windows.bridge import (
    BRIDGE_MARKER,
    ENVELOPE_FILE,
    RESPONSE_FILE,
    TASK_MARKER,
    handle_request,
    set_file_text,
)
from wuacache_lab.windows.errors import HResultError
from wuacache_lab.windows.process import DEFAULT_WORKING_DIRECTORY, MAX_COMMAND_LINE, LogonSession, ProcessResult
from wuacache_lab.windows.dism import run_dism
from wuacache_lab.windows.setup import run_setup
from wuacache_lab.windows.wusa import run_wusa

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost

COMMAND_LINE_TOO_LONG = b"The command line is too long.\r\n"
CANNOT_RUN = b"The emulated host cannot run this script.\r\n"

# powershell.exe parameters in the order it resolves abbreviations
# ("-e" is EncodedCommand, "-ex" ExecutionPolicy), and whether they take a value.
_POWERSHELL_PARAMETERS = (
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
_POWERSHELL_ALIASES = {"ec": "encodedcommand", "ep": "executionpolicy"}

_SHUTDOWN = re.compile(r"^shutdown(?:\.exe)?\s+(.*)$", re.IGNORECASE)
_WRITE_OUTPUT = re.compile(r"""^(?:Write-Output|echo)\s+(?:'((?:[^']|'')*)'|"([^"$`]*)")$""", re.IGNORECASE)
_ENVIRONMENT = re.compile(r"^\$env:(\w+)$", re.IGNORECASE)
_EXIT = re.compile(r"^exit(?:\s+(-?\d+))?$", re.IGNORECASE)
_HOSTNAME = re.compile(r"^hostname(?:\.exe)?$", re.IGNORECASE)


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
    if program == "powershell":
        return _run_powershell(host, arguments[1:], stdin, logon, working_directory)
    if program == "wusa":
        return run_wusa(host, arguments[1:], logon)
    if program == "dism":
        return run_dism(host, arguments[1:], logon)
    if program == "setup":
        return run_setup(host, arguments[0], arguments[1:], logon)
    return _run_script(host, command_line)


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
    script = None
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        if not argument.startswith(("-", "/")):
            script = " ".join(arguments[index:])  # bare words are a -Command
            break
        parameter = _powershell_parameter(argument[1:])
        if parameter == "command":
            script = " ".join(arguments[index + 1 :])
            break
        if parameter == "encodedcommand":
            try:
                script = base64.b64decode(arguments[index + 1], validate=True).decode("utf-16-le")
            except (IndexError, binascii.Error, UnicodeDecodeError):
                return ProcessResult(
                    b"",
                    b"Cannot process the command because the value specified with -EncodedCommand is not properly "
                    b"encoded. The value must be Base64 encoded.\r\n",
                    1,
                )
            index += 2
            continue
        takes_value = dict(_POWERSHELL_PARAMETERS).get(parameter or "", False)
        index += 2 if takes_value else 1
    if script is None:
        return ProcessResult(b"", CANNOT_RUN, 1)  # an interactive shell
    # The bridge marker is a prefix of the task bootstrap's.
    if TASK_MARKER in script:
        return _run_task_bootstrap(host, logon, working_directory)
    if BRIDGE_MARKER in script:
        return _run_bridge(host, stdin, logon, working_directory)
    return _run_script(host, script)


def _powershell_parameter(name: str) -> str | None:
    name = name.casefold()
    if name in _POWERSHELL_ALIASES:
        return _POWERSHELL_ALIASES[name]
    return next((full for full, _ in _POWERSHELL_PARAMETERS if name and full.startswith(name)), None)


def _run_bridge(
    host: WindowsHost,
    envelope: bytes,
    logon: LogonSession,
    working_directory: str,
    response_path: str | None = None,
) -> ProcessResult:
    """A bootstrap invokes the envelope's ``bridge`` member with its
    ``request`` member; given ``response_path``, the bridge writes its
    response there instead of standard output."""
    try:
        document = json.loads(envelope.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as error:
        return ProcessResult(
            b"",
            _powershell_error("ConvertFrom-Json", f"Invalid JSON primitive: {error}.", "ArgumentException"),
            1,
        )
    bridge = document.get("bridge") if isinstance(document, dict) else None
    request = document.get("request") if isinstance(document, dict) else None
    if not isinstance(bridge, str) or not bridge.strip() or not isinstance(request, dict):
        return ProcessResult(
            b"",
            _powershell_error(
                "Invoke-Command",
                "The envelope holds no 'bridge' script and 'request' object.",
                "ParameterBindingException",
            ),
            1,
        )
    try:
        response, exit_code = handle_request(host, request, logon, working_directory, response_path)
    except NotImplementedError as error:
        host.log.warning("bridge request outside what the emulator models: %s", error)
        return ProcessResult(b"", f"The emulated host cannot do this: {error}\r\n".encode(), 1)
    # ConvertTo-Json -Compress, non-ASCII escaped, as the bridge writes it.
    text = json.dumps(response, separators=(",", ":")).encode("ascii")
    if response_path is None:
        return ProcessResult(text + b"\r\n", b"", exit_code)
    if host.task_scheduler.process_killed():
        return ProcessResult(b"", b"", 1)  # what a killed process leaves
    try:
        set_file_text(host.disk, response_path, text)
    except HResultError as error:
        return ProcessResult(b"", _powershell_error("WriteAllText", error.message, "MethodInvocationException"), 1)
    return ProcessResult(b"", b"", exit_code)


def _run_task_bootstrap(host: WindowsHost, logon: LogonSession, working_directory: str) -> ProcessResult:
    """The task bootstrap runs the envelope of its working directory and
    leaves the response beside it."""
    envelope_path = f"{working_directory}\\{ENVELOPE_FILE}"
    try:
        envelope = b"".join(host.disk.read(envelope_path))
    except HResultError:
        return ProcessResult(
            b"",
            _powershell_error(
                "Get-Content",
                f"Cannot find path '{envelope_path}' because it does not exist.",
                "ItemNotFoundException",
            ),
            1,
        )
    return _run_bridge(host, envelope, logon, working_directory, f"{working_directory}\\{RESPONSE_FILE}")


def _powershell_error(command: str, message: str, exception: str) -> bytes:
    """A non-terminating error as powershell.exe prints it on standard error."""
    return (
        f"{command} : {message}\r\n"
        f"    + CategoryInfo          : NotSpecified: (:) [{command}], {exception}\r\n"
        f"    + FullyQualifiedErrorId : System.{exception}\r\n"
    ).encode()


def _run_script(host: WindowsHost, script: str) -> ProcessResult:
    """The few statements the emulator understands, one per line or
    separated by ``;``; a script with anything else runs nothing."""
    statements = [statement.strip() for line in script.splitlines() for statement in _split_statements(line)]
    statements = [statement for statement in statements if statement and not statement.startswith("#")]
    if not statements or not all(_understood(statement) for statement in statements):
        return ProcessResult(b"", CANNOT_RUN, 1)
    output: list[str] = []
    system = host.system()
    for statement in statements:
        if _HOSTNAME.match(statement):
            output.append(host.name)
        elif match := _ENVIRONMENT.match(statement):
            value = system.getenv(match.group(1))
            if value is not None:
                output.append(value)
        elif match := _WRITE_OUTPUT.match(statement):
            output.append(match.group(1).replace("''", "'") if match.group(1) is not None else match.group(2))
        elif match := _EXIT.match(statement):
            return ProcessResult(_lines(output), b"", int(match.group(1) or 0))
        elif match := _SHUTDOWN.match(statement):
            delay = _shutdown_delay(match.group(1))
            try:
                if delay is None:
                    host.abort_reboot()
                else:
                    host.reboot(delay)
            except HResultError as error:
                # shutdown.exe prints the Win32 error's text and code, and exits with the code.
                code = error.hresult & 0xFFFF
                return ProcessResult(_lines(output), f"{error.message}({code})\r\n".encode(), code)
    return ProcessResult(_lines(output), b"", 0)


def _split_statements(line: str) -> list[str]:
    return re.findall(r"(?:'(?:[^']|'')*'|\"[^\"]*\"|[^;'\"])+", line)


def _understood(statement: str) -> bool:
    if match := _SHUTDOWN.match(statement):
        return _shutdown_delay(match.group(1)) is not None or _is_shutdown_abort(match.group(1))
    return any(pattern.match(statement) for pattern in (_HOSTNAME, _ENVIRONMENT, _WRITE_OUTPUT, _EXIT))


def _is_shutdown_abort(arguments: str) -> bool:
    """Whether the arguments are ``shutdown /a``."""
    return [word.casefold().replace("-", "/", 1) for word in split_command_line(arguments)] == ["/a"]


def _shutdown_delay(arguments: str) -> int | None:
    """The delay of ``shutdown /r [/t n] [/f] [/c "comment"]``; None for
    anything but a restart."""
    words = split_command_line(arguments)
    switches = [word.casefold().replace("-", "/", 1) for word in words]
    if "/r" not in switches:
        return None
    delay = 30  # shutdown.exe's default
    if "/t" in switches:
        position = switches.index("/t")
        if position + 1 >= len(words) or not words[position + 1].isdigit():
            return None
        delay = int(words[position + 1])
    return delay


def _lines(output: list[str]) -> bytes:
    return "".join(f"{line}\r\n" for line in output).encode()
