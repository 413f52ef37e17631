"""A tiny HTTP or HTTPS server for the tests of what a host fetches: it honours
Range (or ignores it, as some servers do) and records each request, with the
TLS version its connection negotiated."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from wuacache_lab.pki import ensure_server_certificate


@dataclass
class Server:
    body: bytes
    ignore_range: bool = False
    requests: list[dict[str, str]] = field(default_factory=list)
    # Of each request over TLS: "TLSv1.2", "TLSv1.3".
    tls_versions: list[str | None] = field(default_factory=list)
    url: str = ""


def tls_context(ca_dir: Path, *, maximum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3, minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2) -> ssl.SSLContext:
    """A server's TLS settings: a certificate of the lab CA in ``ca_dir`` for 127.0.0.1, the versions from ``minimum`` to ``maximum``."""
    certificate = ensure_server_certificate(ca_dir, ["127.0.0.1"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version, context.maximum_version = minimum, maximum
    context.load_cert_chain(certificate.cert, certificate.key)
    return context


@contextmanager
def serving(state: Server, context: ssl.SSLContext | None = None) -> Iterator[Server]:
    """``state`` served on a port of 127.0.0.1 (over TLS with ``context``) until the block ends."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(dict(self.headers))
            if isinstance(self.connection, ssl.SSLSocket):
                state.tls_versions.append(self.connection.version())
            body, status = state.body, 200
            if (ranged := self.headers.get("Range")) is not None and not state.ignore_range:
                start = int(ranged.removeprefix("bytes=").rstrip("-"))
                body, status = body[start:], 206 if start < len(body) else 416
            self.send_response(status)
            self.send_header("Content-Length", str(len(body) if status != 416 else 0))
            self.end_headers()
            if status != 416:
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"{'https' if context else 'http'}://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
