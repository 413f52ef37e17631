"""The lab's OpenSSH server, driven by the OpenSSH client Ansible's ssh connection runs, and by asyncssh's."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncssh
import pytest
from host_snippets import new_host
from wuacache_lab.ssh import SSHEndpoint
from wuacache_lab.ssh.keys import ensure_key, known_hosts_line
from wuacache_lab.ssh.server import quote_argument, shell_command_line
from wuacache_lab.windows.process import ConnectionDropped, LogonSession, ProcessResult

USER, PASSWORD = "Administrator", "Lab-Passw0rd!"
CMD = '"C:\\Windows\\System32\\cmd.exe" /c '
POWERSHELL = '"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe" -c '
# What the collection's controller sends: powershell.exe reads a JSON document on its standard input.
BOOTSTRAP = "$envelope = (@($input) -join \"`n\") | ConvertFrom-Json\n\"hello $($envelope.name) from $env:COMPUTERNAME\""


class FakeHost:
    """A host whose processes are a Python function of their command line and stdin."""

    def __init__(self, respond: Callable[[str, bytes], ProcessResult]) -> None:
        self.name = "WS01"
        self.reachable = True
        self.calls: list[tuple[str, bytes, LogonSession]] = []
        self._respond = respond

    def is_reachable(self) -> bool:
        return self.reachable

    def execute(self, command_line: str, stdin: bytes, logon: LogonSession) -> ProcessResult:
        self.calls.append((command_line, stdin, logon))
        return self._respond(command_line, stdin)


def answer(stdout: bytes = b"", stderr: bytes = b"", exit_code: int = 0) -> Callable[[str, bytes], ProcessResult]:
    return lambda command_line, stdin: ProcessResult(stdout, stderr, exit_code)


class Lab:
    """Keys and files of the SSH tests: the lab's client key, a host key, the authorized keys and known_hosts."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.host_key = ensure_key(folder / "ssh_host_ed25519_key", comment="host")
        self.client_key = folder / "id_ed25519"
        self.authorized_keys = folder / "administrators_authorized_keys"
        self.authorized_keys.write_bytes(ensure_key(self.client_key, comment="client").export_public_key())
        self.known_hosts = folder / "known_hosts"
        self.endpoints: list[SSHEndpoint] = []

    def serve(self, host: object, shell: str = "cmd") -> SSHEndpoint:
        endpoint = SSHEndpoint(
            host,  # type: ignore[arg-type]
            port=0,
            host_key=self.host_key,
            users={USER: PASSWORD},
            authorized_keys={USER: self.authorized_keys},
            shell=shell,
        )
        endpoint.start()
        self.endpoints.append(endpoint)
        self.known_hosts.write_text(known_hosts_line(endpoint.address, endpoint.port, self.host_key) + "\n")
        return endpoint

    def ssh(self, endpoint: SSHEndpoint, *command: str, stdin: bytes = b"", user: str = "administrator", key: Path | None = None) -> subprocess.CompletedProcess[bytes]:
        """The OpenSSH client, as Ansible runs it: the lab's key, the host's key checked."""
        options = ["-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"]
        options += ["-o", "IdentitiesOnly=yes", "-i", str(key or self.client_key), "-p", str(endpoint.port)]
        return subprocess.run(["ssh", *options, f"{user}@{endpoint.address}", *command], input=stdin, capture_output=True, timeout=60, check=False)

    def connect(self, endpoint: SSHEndpoint, **credentials: object) -> asyncssh.SSHClientConnection:
        """asyncssh's client, which logs on with a password and says why a logon fails."""
        trusted = ([self.host_key.convert_to_public()], [], [])
        return asyncssh.connect(endpoint.address, endpoint.port, known_hosts=trusted, **credentials)  # type: ignore[return-value, arg-type]

    def run(self, endpoint: SSHEndpoint, command: str, **credentials: object) -> asyncssh.SSHCompletedProcess:
        async def run() -> asyncssh.SSHCompletedProcess:
            async with self.connect(endpoint, **credentials) as connection:
                return await connection.run(command, stdin=asyncssh.DEVNULL, encoding=None)

        return asyncio.run(run())


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    lab = Lab(tmp_path / "keys")
    yield lab
    for endpoint in lab.endpoints:
        endpoint.stop()


def test_cmd_exe_gets_the_command_in_quotes_as_is(lab: Lab) -> None:
    host = FakeHost(answer(b"out\r\n", b"err\r\n", 3))
    endpoint = lab.serve(host, shell="cmd")

    done = lab.ssh(endpoint, 'PowerShell -EncodedCommand AB"C', stdin=b'{"a": 1}\n')

    assert (done.returncode, done.stdout, done.stderr) == (3, b"out\r\n", b"err\r\n")
    ((command_line, stdin, logon),) = host.calls
    assert command_line == CMD + '"PowerShell -EncodedCommand AB"C"'
    assert stdin == b'{"a": 1}\n'
    # The account as Windows spells it, logged on over the network.
    assert logon == LogonSession(user=USER, logon_type="network")


def test_powershell_exe_gets_the_command_as_one_argument(lab: Lab) -> None:
    host = FakeHost(answer())
    endpoint = lab.serve(host, shell="powershell")

    assert lab.ssh(endpoint, 'Write-Output "a b"').returncode == 0

    assert host.calls[0][0] == POWERSHELL + '"Write-Output \\"a b\\""'


@pytest.mark.parametrize(
    ("argument", "written"),
    [("plain", "plain"), ("two words", '"two words"'), ('say "hi"', '"say \\"hi\\""'), ('C:\\dir\\"x', 'C:\\dir\\\\\\"x'), ("C:\\a b\\", '"C:\\a b\\"'), ("'as is' x", "'as is' x")],
)
def test_arguments_are_written_as_win32_openssh_writes_them(argument: str, written: str) -> None:
    assert quote_argument(argument) == written


def test_the_client_exits_with_the_low_byte_of_the_exit_code(lab: Lab) -> None:
    endpoint = lab.serve(FakeHost(answer(exit_code=0x80070005)))

    assert lab.ssh(endpoint, "anything").returncode == 0x05


@pytest.mark.parametrize("user", ["Administrator", "ADMINISTRATOR"])
def test_a_password_logs_on_whatever_the_case_of_the_account(lab: Lab, user: str) -> None:
    endpoint = lab.serve(FakeHost(answer(b"ok")))

    assert lab.run(endpoint, "hostname", username=user, password=PASSWORD, client_keys=None).stdout == b"ok"


def test_a_wrong_password_is_refused(lab: Lab) -> None:
    host = FakeHost(answer())
    endpoint = lab.serve(host)

    with pytest.raises(asyncssh.PermissionDenied):
        lab.run(endpoint, "hostname", username=USER, password="not-the-password", client_keys=None)
    assert host.calls == []


def test_a_key_that_is_not_authorized_is_refused(lab: Lab) -> None:
    host = FakeHost(answer())
    endpoint = lab.serve(host)
    other = lab.folder / "other" / "id_ed25519"
    ensure_key(other, comment="someone else")

    refused = lab.ssh(endpoint, "hostname", key=other)

    assert refused.returncode == 255
    assert b"Permission denied" in refused.stderr
    assert host.calls == []


def test_keyboard_interactive_is_not_offered(lab: Lab) -> None:
    # Windows' sshd authenticates by password and public key only.
    refused = lab.ssh(lab.serve(FakeHost(answer())), "-o", "PreferredAuthentications=keyboard-interactive", "hostname")

    assert refused.returncode == 255
    assert b"Permission denied (publickey,password)" in refused.stderr


def test_a_host_key_other_than_the_known_one_is_refused(lab: Lab) -> None:
    endpoint = lab.serve(FakeHost(answer()))
    impostor = ensure_key(lab.folder / "impostor", comment="impostor")
    lab.known_hosts.write_text(known_hosts_line(endpoint.address, endpoint.port, impostor) + "\n")

    refused = lab.ssh(endpoint, "hostname")

    assert refused.returncode == 255
    assert b"Host key verification failed" in refused.stderr


def test_an_interactive_shell_is_refused(lab: Lab) -> None:
    host = FakeHost(answer())

    refused = lab.ssh(lab.serve(host))

    assert refused.returncode == 1
    assert b"runs commands only" in refused.stderr
    assert host.calls == []


def test_a_connection_the_host_drops_closes_without_an_exit_status(lab: Lab) -> None:
    def drop(command_line: str, stdin: bytes) -> ProcessResult:
        raise ConnectionDropped("WS01 dropped the connection")

    dropped = lab.ssh(lab.serve(FakeHost(drop)), "hostname")

    assert dropped.returncode == 255


def test_a_host_that_is_down_answers_nothing(lab: Lab) -> None:
    host = FakeHost(answer())
    endpoint = lab.serve(host)
    host.reachable = False

    refused = lab.ssh(endpoint, "hostname")

    assert refused.returncode == 255
    assert host.calls == []


def test_an_open_connection_is_dropped_when_the_host_goes_down(lab: Lab) -> None:
    host = FakeHost(answer(b"ok"))
    endpoint = lab.serve(host)

    async def go_down_while_connected() -> None:
        async with lab.connect(endpoint, username=USER, password=PASSWORD, client_keys=None) as connection:
            assert (await connection.run("hostname", stdin=asyncssh.DEVNULL, encoding=None)).stdout == b"ok"
            host.reachable = False
            await asyncio.wait_for(connection.wait_closed(), timeout=30)

    asyncio.run(go_down_while_connected())


def encoded(script: str) -> str:
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


@pytest.mark.parametrize("shell", ["cmd", "powershell"])
def test_the_emulated_host_runs_the_controllers_command_through_either_shell(lab: Lab, tmp_path: Path, shell: str) -> None:
    endpoint = lab.serve(new_host(tmp_path), shell=shell)
    command = f"PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand {encoded(BOOTSTRAP)}"

    done = lab.ssh(endpoint, command, stdin=json.dumps({"name": "ssh"}).encode())

    # Through powershell.exe, the controller's PowerShell is a program that inherits the standard input.
    assert (done.returncode, done.stdout, done.stderr) == (0, b"hello ssh from WIN10-01\r\n", b"")


def test_shell_command_lines_name_the_default_shell() -> None:
    assert shell_command_line("cmd", "hostname") == CMD + '"hostname"'
    assert shell_command_line("powershell", "hostname") == POWERSHELL + "hostname"
