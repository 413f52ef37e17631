"""The OpenSSH server (sshd) of one emulated Windows host.

What Windows' own OpenSSH server does with a session, from its source
(PowerShell/openssh-portable contrib/win32/win32compat/w32-doexec.c) and
Microsoft's configuration page (MicrosoftDocs/windowsserverdocs
WindowsServerDocs/administration/OpenSSH/openssh-server-configuration.md):

- authentication by password or public key only; an administrator's keys are
  those of ``administrators_authorized_keys`` (:mod:`wuacache_lab.ssh.keys`);
- an ``exec`` request runs its command through the default shell
  (``HKLM\\SOFTWARE\\OpenSSH`` ``DefaultShell``), in the user's profile folder:
  cmd.exe gets ``/c "<command>"`` as is, powershell.exe gets ``-c`` and the
  command as one argument, quoted as the C runtime reads it back;
- the process's standard output and error are the channel's data and
  extended data, and its exit code the ``exit-status``. Win32-OpenSSH sends
  all 32 bits of it (contrib/win32/win32compat/inc/sys/wait.h); asyncssh, on
  which the lab's server is built, sends the low byte, all the OpenSSH
  client's own exit status keeps of it either way.

The emulated host needs a command's whole input before it runs it, so a
command starts when the client closes its standard input (``ssh -n``, or the
end of the data Ansible pipes to it). The lab runs no interactive shell and no
subsystem (sftp): the collection's connection only runs commands.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self

import asyncssh

from wuacache_lab.labspec import SSH_SHELLS
from wuacache_lab.loopback import require_loopback
from wuacache_lab.windows.process import ConnectionDropped, LogonSession
from wuacache_lab.winrm.server import ReachableHost

logger = logging.getLogger(__name__)

DEFAULT_SHELL_PATHS = {
    "cmd": "C:\\Windows\\System32\\cmd.exe",
    "powershell": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
}
# How often the endpoint looks whether its host went down, to drop its connections.
HOST_POLL_INTERVAL = 0.1
NO_SHELL = b"The emulated host runs commands only: give ssh a command, and no subsystem.\r\n"


def shell_command_line(shell: str, command: str) -> str:
    """The command line sshd starts for ``command`` with ``shell`` (one of SSH_SHELLS) as its default shell."""
    path = DEFAULT_SHELL_PATHS[shell]
    if shell == "cmd":
        # cmd.exe reads its own command line: the command goes unescaped, in quotes.
        return f'"{path}" /c "{command}"'
    return f'"{path}" -c {quote_argument(command)}'


def quote_argument(argument: str) -> str:
    """An argument as Win32-OpenSSH's posix_spawn writes it on a command line (build_commandline_string,
    contrib/win32/win32compat/misc.c): in quotes when it holds a space and does not open with a single
    quote, each double quote escaped, and the backslashes before one doubled."""
    written = []
    index = 0
    while index < len(argument):
        character = argument[index]
        if character == "\\":
            run = len(argument[index:]) - len(argument[index:].lstrip("\\"))
            before_quote = argument[index + run : index + run + 1] == '"'
            written.append("\\" * run * (2 if before_quote else 1))
            index += run
            continue
        written.append('\\"' if character == '"' else character)
        index += 1
    text = "".join(written)
    return f'"{text}"' if " " in argument and not argument.startswith("'") else text


class SSHEndpoint:
    """The OpenSSH server of ``host``, on a loopback address.

    ``users`` maps account names to passwords; ``authorized_keys`` maps them
    to the file of the keys they may log on with; ``shell`` is the default
    shell, one of SSH_SHELLS. Port 0 binds a free port, which `port` then gives.
    """

    def __init__(
        self,
        host: ReachableHost,
        address: str = "127.0.0.1",
        port: int = 22,
        *,
        host_key: asyncssh.SSHKey,
        users: Mapping[str, str],
        authorized_keys: Mapping[str, Path],
        shell: str = "cmd",
    ) -> None:
        require_loopback(address)
        if shell not in SSH_SHELLS:
            raise ValueError(f"the default shell must be one of {SSH_SHELLS}, not {shell!r}")
        self.host = host
        self.address = address
        self.shell = shell
        self._port = port
        self._host_key = host_key
        # Windows account names are case-insensitive.
        self._accounts = {name.casefold(): name for name in [*users, *authorized_keys]}
        self._passwords = {name.casefold(): password for name, password in users.items()}
        self._authorized_keys = {name.casefold(): path for name, path in authorized_keys.items()}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()

    @property
    def port(self) -> int:
        return self._acceptor.get_port() if self._acceptor else self._port

    @property
    def url(self) -> str:
        return f"ssh://{self.address}:{self.port}"

    def start(self) -> None:
        if self._loop is not None:
            raise RuntimeError(f"the SSH server of {self.host.name} is already running")
        self._loop = asyncio.new_event_loop()
        self._executor = ThreadPoolExecutor(thread_name_prefix=f"sshd-{self.host.name}")
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"sshd-{self.host.name}", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result()
        except BaseException:
            self._shut_down()
            raise
        logger.debug("%s: sshd listening on %s:%d", self.host.name, self.address, self.port)

    def stop(self) -> None:
        """Close the listener and every connection, and wait for the commands already started."""
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result()
        self._shut_down()
        logger.debug("%s: sshd stopped", self.host.name)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    async def _listen(self) -> None:
        self._acceptor = await asyncssh.create_server(
            lambda: _Server(self),
            self.address,
            self._port,
            server_host_keys=[self._host_key],
            process_factory=self._run,
            encoding=None,
            # Windows' sshd offers password and public key authentication only.
            kbdint_auth=False,
            host_based_auth=False,
            allow_scp=False,
            agent_forwarding=False,
            x11_forwarding=False,
        )
        self._watcher = asyncio.get_running_loop().create_task(self._watch_host())

    async def _close(self) -> None:
        assert self._acceptor is not None and self._watcher is not None
        self._watcher.cancel()
        self._acceptor.close()
        await self._acceptor.wait_closed()
        self._drop_connections()

    def _shut_down(self) -> None:
        assert self._loop is not None and self._thread is not None and self._executor is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._executor.shutdown(wait=True)
        self._loop.close()
        self._loop = self._thread = self._executor = self._acceptor = self._watcher = None

    async def _watch_host(self) -> None:
        """A host that goes down (reboot, power off) loses its TCP connections."""
        was_reachable = True
        while True:
            reachable = await asyncio.get_running_loop().run_in_executor(self._executor, self.host.is_reachable)
            if was_reachable and not reachable:
                logger.debug("%s: host down, dropping its SSH connections", self.host.name)
                self._drop_connections()
            was_reachable = reachable
            await asyncio.sleep(HOST_POLL_INTERVAL)

    def _drop_connections(self) -> None:
        for connection in list(self._connections):
            connection.abort()

    def _password_matches(self, user: str, password: str) -> bool:
        return self._passwords.get(user.casefold()) == password

    def _key_authorized(self, user: str, key: asyncssh.SSHKey, peer: str) -> bool:
        path = self._authorized_keys.get(user.casefold())
        if path is None or not path.exists():
            return False
        try:
            keys = asyncssh.read_authorized_keys(path)
        except ValueError:  # a file without any key
            return False
        return keys.validate(key, peer, peer) is not None

    async def _run(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        connection = process.get_extra_info("connection")
        # Only an account of the host authenticates; Windows spells its name its own way.
        account = self._accounts[process.get_extra_info("username").casefold()]
        if process.command is None or process.subsystem is not None:
            process.stderr.write(NO_SHELL)
            process.exit(1)
            return
        stdin = await process.stdin.read()
        command_line = shell_command_line(self.shell, process.command)
        logger.debug("%s: ssh command of %s: %.200s", self.host.name, account, command_line)
        # sshd logs users on with a network logon: S4U for a key, the password's for a password.
        logon = LogonSession(user=account, logon_type="network")
        try:
            result = await asyncio.get_running_loop().run_in_executor(self._executor, self.host.execute, command_line, stdin, logon)
        except ConnectionDropped as dropped:
            logger.info("%s: %s", self.host.name, dropped)
            connection.abort()
            return
        except Exception:  # a failing host must end the command, not hang its client
            logger.exception("%s: the host failed to run an ssh command", self.host.name)
            process.stderr.write(b"The emulated host failed to run the command.\r\n")
            process.exit(1)
            return
        process.stdout.write(result.stdout)
        process.stderr.write(result.stderr)
        process.exit(result.exit_code)
        logger.info("%s: ssh command of %s exited with %d", self.host.name, account, result.exit_code)


class _Server(asyncssh.SSHServer):
    """One connection's authentication."""

    def __init__(self, endpoint: SSHEndpoint) -> None:
        self._endpoint = endpoint
        self._connection: asyncssh.SSHServerConnection | None = None
        self._peer = ""
        self._method = ""

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._connection = conn
        self._peer = conn.get_extra_info("peername")[0]
        if not self._endpoint.host.is_reachable():
            # A host that is down answers nothing.
            conn.abort()
            return
        self._endpoint._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._connection is not None:
            self._endpoint._connections.discard(self._connection)

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        self._method = "password"
        return self._endpoint._password_matches(username, password)

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        self._method = "publickey"
        return self._endpoint._key_authorized(username, key, self._peer)

    def auth_completed(self) -> None:
        assert self._connection is not None
        user = self._connection.get_extra_info("username")
        logger.info("%s: accepted %s for %s from %s", self._endpoint.host.name, self._method, user, self._peer)
