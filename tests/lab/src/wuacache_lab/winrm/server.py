"""The WinRM listener of one emulated Windows host: HTTP(S) on ``/wsman``, authentication, encryption.

Like http.sys in front of the WinRM service it keeps HTTP/1.1 connections
open for as long as the client wants, because NTLM authenticates connections.
It only closes them itself when the host is down, or when the host drops the
network under a running command.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Collection, Mapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import urlsplit

import spnego

from wuacache_lab.loopback import LoopbackHTTPServer, require_loopback
from wuacache_lab.windows.process import ConnectionDropped, LogonSession

from . import encryption, soap
from .auth import AUTH_METHODS, NTLM_USER_FILE, Accounts, ConnectionAuth, Unauthorized
from .shell import Host, WinRS

logger = logging.getLogger(__name__)

# How often the accept loop looks whether its host went down, to drop its connections and shells.
HOST_POLL_INTERVAL = 0.1
# Far above the ~270 KB envelopes of Ansible's stdin chunks, yet a bound on what one request holds in memory.
MAX_REQUEST_SIZE = 4 * 1024 * 1024


class ReachableHost(Host, Protocol):
    def is_reachable(self) -> bool: ...


class WinRMEndpoint:
    """A WinRM (WS-Management) listener serving the WinRS shells of ``host``.

    ``users`` maps account names to passwords; ``auth`` lists the accepted
    methods (``basic``, ``ntlm``); ``https`` is a PEM certificate and key
    path pair. Port 0 binds a free port, which `port` and `url` then give.
    """

    def __init__(
        self,
        host: ReachableHost,
        address: str = "127.0.0.1",
        port: int = 5985,
        *,
        users: Mapping[str, str],
        https: tuple[Path, Path] | None = None,
        auth: Collection[str] = ("basic", "ntlm"),
    ) -> None:
        require_loopback(address)
        unknown = set(auth) - AUTH_METHODS
        if unknown or not auth:
            raise ValueError(f"auth must be a non-empty choice of {sorted(AUTH_METHODS)}, not {sorted(auth)}")
        self.host = host
        self.address = address
        self.accounts = Accounts(users)
        self.auth_methods = frozenset(auth)
        self._port = port
        self._https = https
        self._server: _Server | None = None
        self._serving: threading.Thread | None = None
        self._host_was_reachable = True
        self._winrs: WinRS | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self._port

    @property
    def url(self) -> str:
        return f"{'https' if self._https else 'http'}://{self.address}:{self.port}/wsman"

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError(f"the WinRM endpoint of {self.host.name} is already running")
        tls = None
        if self._https:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(*self._https)
        if "ntlm" in self.auth_methods:
            NTLM_USER_FILE.acquire(self.accounts)
        try:
            self._server = _Server((self.address, self._port), self)
        except BaseException:
            if "ntlm" in self.auth_methods:
                NTLM_USER_FILE.release()
            raise
        if tls:
            # The handshake happens in the connection's own thread, never in the accept loop.
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True, do_handshake_on_connect=False)
        self._winrs = WinRS(self.host, self.url)
        self._host_was_reachable = True
        self._serving = threading.Thread(
            target=self._server.serve_forever, args=(HOST_POLL_INTERVAL,), name=f"winrm-{self.host.name}", daemon=True
        )
        self._serving.start()
        logger.debug("%s: WinRM listening on %s", self.host.name, self.url)

    def stop(self) -> None:
        """Close the listener and every connection, and wait for the commands already started."""
        if self._server is None or self._winrs is None or self._serving is None:
            return
        self._server.shutdown()
        self._winrs.forget_shells()  # releases Receives waiting for a command
        self._server.drop_connections()
        self._server.server_close()  # waits for the connection threads
        self._serving.join()
        self._winrs.close()
        if "ntlm" in self.auth_methods:
            NTLM_USER_FILE.release()
        self._server = self._serving = self._winrs = None
        logger.debug("%s: WinRM stopped", self.host.name)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def _watch_host(self) -> None:
        """Called by the accept loop: connections idle in a client's pool die with the host too."""
        reachable = self.host.is_reachable()
        if self._host_was_reachable and not reachable:
            self._host_down()
        self._host_was_reachable = reachable

    def _host_down(self) -> None:
        """A host that goes down (reboot, power off) loses its TCP connections and its shells."""
        if self._server is None or self._winrs is None:
            return
        logger.debug("%s: host down, dropping its WinRM connections and shells", self.host.name)
        self._server.drop_connections()
        self._winrs.forget_shells()

    def _answer(self, body: bytes, logon: LogonSession, client_ip: str) -> tuple[int, bytes]:
        """HTTP status and SOAP reply to a request envelope; raises `ConnectionDropped`."""
        assert self._winrs is not None, "only running endpoints answer"
        try:
            request = soap.parse_request(body)
        except soap.WSManFault as fault:
            return 500, fault.envelope(None, self.host.name)
        try:
            return 200, self._winrs.handle(request, logon, client_ip)
        except soap.WSManFault as fault:
            logger.debug("%s: %s fault: %s", self.host.name, fault.subcode, fault.message)
            return 500, fault.envelope(request.message_id, self.host.name)


class _Server(LoopbackHTTPServer):
    def __init__(self, address: tuple[str, int], endpoint: WinRMEndpoint) -> None:
        self.endpoint = endpoint
        super().__init__(address, _Handler)

    def service_actions(self) -> None:
        self.endpoint._watch_host()

    def verify_request(self, request: socket.socket, client_address: tuple[str, int]) -> bool:
        # A down host answers nothing: the connection is closed before any byte is read.
        if self.endpoint.host.is_reachable():
            return True
        self.endpoint._host_down()
        return False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        super().setup()
        endpoint = self.server.endpoint
        self._auth = ConnectionAuth(endpoint.accounts, endpoint.auth_methods)

    def do_POST(self) -> None:
        body = self._read_request()
        if body is None:
            return
        if urlsplit(self.path).path.lower() != "/wsman":
            self._reply(404)
            return
        opened = self._open(body)
        if opened is None:
            return
        user, context, message = opened
        if not message:
            # The end of an authentication handshake that carried no message.
            self._reply(200)
            return
        endpoint = self.server.endpoint
        try:
            status, reply = endpoint._answer(
                message, LogonSession(user=user, logon_type="network"), self.client_address[0]
            )
        except ConnectionDropped as exc:
            logger.info("%s: %s", endpoint.host.name, exc)
            self.close_connection = True
            return
        self._reply(status, reply, context)

    def _open(self, body: bytes) -> tuple[str, spnego.ContextProxy | None, bytes] | None:
        """Who sends the request, the context sealing it, and its SOAP; None once refused with 400 or 401."""
        encrypted = encryption.is_encrypted(self.headers.get("Content-Type", ""))
        if encrypted and self._auth.security_context is None:
            self._reply(400)
            return None
        user = self._auth.authenticate(self.headers.get("Authorization"))
        if isinstance(user, Unauthorized):
            self._reply(401, headers=[("WWW-Authenticate", challenge) for challenge in user.challenges])
            return None
        context = self._auth.security_context if encrypted else None
        if context is None:
            return user, None, body
        try:
            return user, context, encryption.unseal(context, body)
        except encryption.EncryptionError as exc:
            logger.info("%s: %s", self.server.endpoint.host.name, exc)
            self._reply(400)
            return None

    def _method_not_allowed(self) -> None:
        if self._read_request() is not None:
            self._reply(405, headers=[("Allow", "POST")])

    do_GET = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _method_not_allowed

    def _read_request(self) -> bytes | None:
        """The request body, or None when the request gets no answer."""
        if not self.server.endpoint.host.is_reachable():
            self.server.endpoint._host_down()
            self.close_connection = True
            return None
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_SIZE:
            self._reply(413, headers=[("Connection", "close")])  # also ends the connection
            return None
        return self.rfile.read(length)

    def _reply(
        self,
        status: int,
        body: bytes = b"",
        context: spnego.ContextProxy | None = None,
        headers: Collection[tuple[str, str]] = (),
    ) -> None:
        content_type = soap.CONTENT_TYPE
        if context is not None and body:
            body = encryption.seal(context, body)
            content_type = encryption.CONTENT_TYPE
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Successful requests are logged once per WinRM operation by the shell service.
        if code != 200:
            super().log_request(code, size)

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s: %s %s", self.server.endpoint.host.name, self.client_address[0], format % args)

