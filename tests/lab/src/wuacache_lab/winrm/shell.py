"""The Windows Remote Shell (WinRS) service of one emulated host: shells, commands, their streams.

A command's process is the host's ``execute`` call. It runs in a worker thread
started by the first Receive once the client has sent all its stdin (or sent
none), because the host needs the whole input at once. Its output is returned
when it has ended, in as many Receive replies as the client's envelope size
allows, the last one saying ``Done`` with the exit code.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from lxml import etree

from wuacache_lab.windows.process import ConnectionDropped, LogonSession, ProcessResult

from . import soap
from .soap import NS_ADDRESSING, NS_SHELL, NS_TRANSFER, NS_WSMAN, Action, Request, WSManFault, qname

logger = logging.getLogger(__name__)

CMD_RESOURCE_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
COMMAND_STATE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/"

# Windows' defaults: OperationTimeout when the client sends none, and the
# envelope size clients advertise (w:MaxEnvelopeSize 153600).
DEFAULT_OPERATION_TIMEOUT = 60.0
DEFAULT_MAX_ENVELOPE_SIZE = 153600
# A Receive never holds a connection longer than this, and answers a little
# before the client's deadline so the TimedOut fault arrives before its read timeout.
MAX_LONG_POLL = 60.0
LONG_POLL_FRACTION = 0.9
# What a reply needs besides the base64 of the output.
ENVELOPE_OVERHEAD = 2048
IDLE_TIMEOUT = "PT7200.000S"

# Win32 ERROR_NO_DATA: writing to a process whose stdin has been closed.
ERROR_NO_DATA = 232


@dataclass(frozen=True)
class _Failed:
    """The host raised while running the command: a bug in the host, reported to the client."""

    error: Exception


@dataclass(frozen=True)
class _Dropped:
    """The host lost its network while running the command."""


_Outcome = ProcessResult | _Failed | _Dropped


class Command:
    """A process started in a shell, from its first stdin byte to its last output byte."""

    def __init__(self, command_id: str, command_line: str) -> None:
        self.command_id = command_id
        self.command_line = command_line
        self._stdin = bytearray()
        self._stdin_ended = False
        self._started = False
        self._outcome: _Outcome | None = None
        self._abandoned = False
        self._changed = threading.Condition()
        self._stdout_sent = 0
        self._stderr_sent = 0

    def send_stdin(self, data: bytes, end: bool) -> None:
        with self._changed:
            if self._stdin_ended or self._started:
                raise WSManFault("s:Receiver", "w:InternalError", ERROR_NO_DATA, "The pipe is being closed. ")
            self._stdin += data
            self._stdin_ended = end
            self._changed.notify_all()

    def wait(self, timeout: float, start: Callable[[bytes], None]) -> _Outcome | None:
        """Start the process (``start(stdin)``) once its stdin is complete, and wait up to ``timeout`` for its end."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if not self._started and (self._stdin_ended or not self._stdin):
                    self._started = True
                    start(bytes(self._stdin))
                    self._stdin.clear()
                if self._outcome is not None or self._abandoned:
                    return self._outcome
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)

    def finish(self, outcome: _Outcome) -> None:
        with self._changed:
            self._outcome = outcome
            self._changed.notify_all()

    def abandon(self) -> None:
        """Nobody will read this command any more: release whoever waits for it."""
        with self._changed:
            self._abandoned = True
            self._changed.notify_all()

    def take_output(self, result: ProcessResult, budget: int) -> tuple[bytes, bytes, bool]:
        """The next stdout and stderr bytes that fit in ``budget``, and whether they are the last."""
        with self._changed:
            stdout = result.stdout[self._stdout_sent : self._stdout_sent + budget]
            self._stdout_sent += len(stdout)
            stderr = result.stderr[self._stderr_sent : self._stderr_sent + budget - len(stdout)]
            self._stderr_sent += len(stderr)
            done = self._stdout_sent == len(result.stdout) and self._stderr_sent == len(result.stderr)
            return stdout, stderr, done


class Host(Protocol):
    """What the shell service needs of the emulated host (see ``wuacache_lab.windows.process``)."""

    name: str

    def execute(self, command_line: str, stdin: bytes, logon: LogonSession) -> ProcessResult: ...


@dataclass
class Shell:
    shell_id: str
    owner: str
    input_streams: str
    output_streams: str
    commands: dict[str, Command] = field(default_factory=dict)


class WinRS:
    """Answers the WS-Man requests addressed to the cmd shell resource of one host."""

    def __init__(self, host: Host, address: str) -> None:
        self._host = host
        self._address = address
        self._shells: dict[str, Shell] = {}
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def handle(self, request: Request, logon: LogonSession, client_ip: str) -> bytes:
        """The reply envelope to a request; raises `WSManFault`, or `ConnectionDropped` if the host dropped it."""
        try:
            action = Action(request.action)
        except ValueError:
            raise soap.action_not_supported(request.action) from None
        if request.resource_uri != CMD_RESOURCE_URI:
            raise soap.resource_not_found(request.resource_uri)
        if action is Action.CREATE:
            body = self._create(request, logon, client_ip)
        else:
            shell = self._shell(request)
            match action:
                case Action.COMMAND:
                    body = self._command(request, shell)
                case Action.SEND:
                    body = self._send(request, shell)
                case Action.RECEIVE:
                    body = self._receive(request, shell, logon)
                case Action.SIGNAL:
                    body = self._signal(request, shell)
                case Action.DELETE:
                    body = self._delete(shell)
        return soap.envelope(action.response, request.message_id, body)

    def forget_shells(self) -> None:
        """The host restarted: its shells and their commands are gone."""
        with self._lock:
            shells, self._shells = self._shells, {}
        for shell in shells.values():
            for command in shell.commands.values():
                command.abandon()

    def close(self) -> None:
        """Forget every shell and wait for the host to finish the processes already started."""
        self.forget_shells()
        with self._lock:
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.join()

    def _create(self, request: Request, logon: LogonSession, client_ip: str) -> list[etree._Element]:
        requested = request.body.find(qname(NS_SHELL, "Shell"))
        if requested is None:
            raise soap.schema_violation("Create needs an rsp:Shell body")
        shell = Shell(
            shell_id=soap.new_id(),
            owner=logon.user,
            input_streams=_child_text(requested, "InputStreams") or "stdin",
            output_streams=_child_text(requested, "OutputStreams") or "stdout stderr",
        )
        with self._lock:
            self._shells[shell.shell_id] = shell
        logger.debug("%s: Create shell %s for %s", self._host.name, shell.shell_id, logon.user)

        created = etree.Element(qname(NS_TRANSFER, "ResourceCreated"))
        etree.SubElement(created, qname(NS_ADDRESSING, "Address")).text = self._address
        reference = etree.SubElement(created, qname(NS_ADDRESSING, "ReferenceParameters"))
        etree.SubElement(reference, qname(NS_WSMAN, "ResourceURI")).text = CMD_RESOURCE_URI
        selectors = etree.SubElement(reference, qname(NS_WSMAN, "SelectorSet"))
        etree.SubElement(selectors, qname(NS_WSMAN, "Selector"), Name="ShellId").text = shell.shell_id

        description = etree.Element(qname(NS_SHELL, "Shell"))
        for name, value in (
            ("ShellId", shell.shell_id),
            ("ResourceUri", CMD_RESOURCE_URI),
            ("Owner", shell.owner),
            ("ClientIP", client_ip),
            ("IdleTimeOut", IDLE_TIMEOUT),
            ("InputStreams", shell.input_streams),
            ("OutputStreams", shell.output_streams),
            ("ShellRunTime", "P0DT0H0M0S"),
            ("ShellInactivity", "P0DT0H0M0S"),
        ):
            etree.SubElement(description, qname(NS_SHELL, name)).text = value
        return [created, description]

    def _command(self, request: Request, shell: Shell) -> list[etree._Element]:
        command_line = request.body.find(qname(NS_SHELL, "CommandLine"))
        if command_line is None:
            raise soap.schema_violation("Command needs an rsp:CommandLine body")
        # WinRS hands cmd.exe the command and its arguments joined by single spaces.
        parts = [_child_text(command_line, "Command") or ""]
        parts += [argument.text or "" for argument in command_line.iterfind(qname(NS_SHELL, "Arguments"))]
        command = Command(soap.new_id(), " ".join(parts))
        with self._lock:
            shell.commands[command.command_id] = command
        logger.debug(
            "%s: Command %s in shell %s: %.200s",
            self._host.name,
            command.command_id,
            shell.shell_id,
            command.command_line,
        )

        response = etree.Element(qname(NS_SHELL, "CommandResponse"))
        etree.SubElement(response, qname(NS_SHELL, "CommandId")).text = command.command_id
        return [response]

    def _send(self, request: Request, shell: Shell) -> list[etree._Element]:
        streams = list(request.body.iterfind(f"{qname(NS_SHELL, 'Send')}/{qname(NS_SHELL, 'Stream')}"))
        if not streams:
            raise soap.schema_violation("Send needs rsp:Send/rsp:Stream")
        for stream in streams:
            command = self._command_of(shell, stream.get("CommandId"))
            try:
                data = base64.b64decode(stream.text or "", validate=True)
            except binascii.Error:
                raise soap.schema_violation("rsp:Stream is not base64") from None
            command.send_stdin(data, end=stream.get("End", "").lower() == "true")
            logger.debug("%s: Send %d bytes to command %s", self._host.name, len(data), command.command_id)
        return [etree.Element(qname(NS_SHELL, "SendResponse"))]

    def _receive(self, request: Request, shell: Shell, logon: LogonSession) -> list[etree._Element]:
        desired = request.body.find(f"{qname(NS_SHELL, 'Receive')}/{qname(NS_SHELL, 'DesiredStream')}")
        if desired is None:
            raise soap.schema_violation("Receive needs rsp:Receive/rsp:DesiredStream")
        command = self._command_of(shell, desired.get("CommandId"))
        logger.debug("%s: Receive from command %s", self._host.name, command.command_id)

        timeout = min(request.operation_timeout or DEFAULT_OPERATION_TIMEOUT, MAX_LONG_POLL) * LONG_POLL_FRACTION
        outcome = command.wait(timeout, lambda stdin: self._start(command, stdin, logon))
        match outcome:
            case None:
                raise soap.timed_out()
            case _Dropped():
                self._discard(shell, command)
                raise ConnectionDropped(f"the host dropped the connection running command {command.command_id}")
            case _Failed(error=error):
                self._discard(shell, command)
                raise soap.provider_failure(f"The host failed to run the command: {error!r}")
        return [self._receive_response(request, command, outcome, (desired.text or "").split())]

    def _receive_response(
        self, request: Request, command: Command, result: ProcessResult, stream_names: list[str]
    ) -> etree._Element:
        envelope_size = request.max_envelope_size or DEFAULT_MAX_ENVELOPE_SIZE
        budget = max(envelope_size - ENVELOPE_OVERHEAD, 1024) * 3 // 4
        stdout, stderr, done = command.take_output(result, budget)
        response = etree.Element(qname(NS_SHELL, "ReceiveResponse"))
        for name, data in (("stdout", stdout), ("stderr", stderr)):
            if name not in stream_names:
                continue
            if data:
                stream = etree.SubElement(response, qname(NS_SHELL, "Stream"), Name=name, CommandId=command.command_id)
                stream.text = base64.b64encode(data).decode()
            if done:
                etree.SubElement(
                    response, qname(NS_SHELL, "Stream"), Name=name, CommandId=command.command_id, End="true"
                )
        state = etree.SubElement(
            response,
            qname(NS_SHELL, "CommandState"),
            CommandId=command.command_id,
            State=COMMAND_STATE + ("Done" if done else "Running"),
        )
        if done:
            etree.SubElement(state, qname(NS_SHELL, "ExitCode")).text = str(result.exit_code)
            logger.info("%s: command %s exited with %d", self._host.name, command.command_id, result.exit_code)
        return response

    def _start(self, command: Command, stdin: bytes, logon: LogonSession) -> None:
        worker = threading.Thread(
            target=self._execute, args=(command, stdin, logon), name=f"winrs-{command.command_id}", daemon=True
        )
        with self._lock:
            self._workers = [running for running in self._workers if running.is_alive()]
            self._workers.append(worker)
        worker.start()

    def _execute(self, command: Command, stdin: bytes, logon: LogonSession) -> None:
        outcome: _Outcome
        try:
            outcome = self._host.execute(command.command_line, stdin, logon)
        except ConnectionDropped:
            outcome = _Dropped()
        except Exception as exc:  # a failing host must end the command, not hang its client
            logger.exception("%s: the host failed to run command %s", self._host.name, command.command_id)
            outcome = _Failed(exc)
        command.finish(outcome)

    def _signal(self, request: Request, shell: Shell) -> list[etree._Element]:
        signal = request.body.find(qname(NS_SHELL, "Signal"))
        if signal is None:
            raise soap.schema_violation("Signal needs an rsp:Signal body")
        command = self._command_of(shell, signal.get("CommandId"))
        # An emulated process cannot be interrupted; any signal ends the client's interest in it.
        self._discard(shell, command)
        logger.debug("%s: Signal %s to command %s", self._host.name, _child_text(signal, "Code"), command.command_id)
        return [etree.Element(qname(NS_SHELL, "SignalResponse"))]

    def _delete(self, shell: Shell) -> list[etree._Element]:
        with self._lock:
            self._shells.pop(shell.shell_id, None)
            commands = list(shell.commands.values())
        for command in commands:
            command.abandon()
        logger.debug("%s: Delete shell %s", self._host.name, shell.shell_id)
        return []

    def _shell(self, request: Request) -> Shell:
        shell_id = request.selectors.get("ShellId", "")
        with self._lock:
            shell = self._shells.get(shell_id)
        if shell is None:
            raise soap.invalid_selectors(
                f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not "
                "found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer "
                "exists on the server. Provide the correct ShellId or create a new shell and retry the operation. "
            )
        return shell

    def _command_of(self, shell: Shell, command_id: str | None) -> Command:
        with self._lock:
            command = shell.commands.get(command_id or "")
        if command is None:
            raise soap.invalid_selectors(
                "The Windows Remote Shell received a request to perform an operation on a command identifier that "
                "does not exist. Either the command has completed execution or the client specified an invalid "
                "command identifier. ",
                unexpected=True,
            )
        return command

    def _discard(self, shell: Shell, command: Command) -> None:
        with self._lock:
            shell.commands.pop(command.command_id, None)
        command.abandon()


def _child_text(parent: etree._Element, local_name: str) -> str | None:
    child = parent.find(qname(NS_SHELL, local_name))
    return None if child is None or child.text is None else child.text.strip()
