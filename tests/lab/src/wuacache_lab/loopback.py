"""The HTTP server the lab's stand-ins are built on: loopback only, and able
to cut every open connection at once, as a machine going away does."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

logger = logging.getLogger(__name__)


def require_loopback(address: str) -> None:
    """Refuse any listen address but a loopback IP: the lab never listens elsewhere."""
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:  # a host name: resolving it could lead anywhere
        loopback = False
    if not loopback:
        raise ValueError(f"{address!r} is not a loopback IP address; the lab never listens elsewhere")


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now, for a process started later."""
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A threading HTTP/1.1 server on a loopback address that knows its open connections."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        require_loopback(address[0])
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() resolves the host's FQDN; skip that lookup.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Cut every open connection at the TCP level (no TLS close_notify):
        idle keep-alive reads end and pending sends fail."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its client
                socket.socket.shutdown(connection, socket.SHUT_RDWR)

    def handle_error(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        # Clients giving up and connections cut on purpose (faults, reboots)
        # are routine in the lab: not worth a traceback on stderr.
        logger.debug("connection from %s ended with an error", client_address[0], exc_info=True)
