"""A loopback stand-in for Microsoft's download servers.

It serves a docroot that mirrors Microsoft URLs, as an origin and as a
forward proxy, never forwarding anything: it makes no outbound connection.
Every answer can be disturbed by the faults of ``faults.json`` and is
recorded in ``access.jsonl`` (both in the state directory).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from ..loopback import LoopbackHTTPServer, require_loopback
from .accesslog import AccessLog, AccessRecord
from .faults import Fault, FaultTable
from .representation import RangeNotSatisfiable, Representation
from .targets import BadTarget, RequestTarget, docroot_file, parse_target, redirect_location

logger = logging.getLogger(__name__)

_CHUNK_SIZE = 64 * 1024
_STOP_POLL_INTERVAL = 0.05  # seconds
# A slow transfer sends this many pieces per second, so it looks like a
# trickle rather than one burst per second.
_SLOW_WRITES_PER_SECOND = 10


class UpstreamServer:
    """Serve ``docroot`` on a loopback address until stopped.

    Faults are read from, and the access log written to, ``state_dir``.
    """

    def __init__(
        self, docroot: Path, state_dir: Path, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        require_loopback(host)
        self.docroot = Path(docroot)
        self.state_dir = Path(state_dir)
        self._requested_address = (host, port)
        self._httpd: _UpstreamHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._httpd is not None:
            raise RuntimeError("the upstream server is already running")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._httpd = _UpstreamHTTPServer(
            self._requested_address,
            docroot=self.docroot.resolve(),
            faults=FaultTable(self.state_dir),
            access_log=AccessLog(self.state_dir),
        )
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            # How long stop() may wait for the loop to notice.
            kwargs={"poll_interval": _STOP_POLL_INTERVAL},
            name="upstream-server",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening, cut every open connection and wait for its thread."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()  # joins the request threads
        thread.join()
        self._httpd = self._thread = None

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until no request is being answered.

        An entry is logged after its response is sent, so a client can hold a
        whole body before its entry exists; after this call, every response
        a client has received is in the access log.
        """
        self._running().wait_idle(timeout)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._running().server_address[:2]
        return host, port

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def __enter__(self) -> UpstreamServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _running(self) -> _UpstreamHTTPServer:
        if self._httpd is None:
            raise RuntimeError("the upstream server is not running")
        return self._httpd


class _UpstreamHTTPServer(LoopbackHTTPServer):
    def __init__(
        self, address: tuple[str, int], *, docroot: Path, faults: FaultTable, access_log: AccessLog
    ) -> None:
        self.docroot = docroot
        self.faults = faults
        self.access_log = access_log
        self.stopping = threading.Event()
        self._answering = 0
        self._idle = threading.Condition()
        super().__init__(address, _UpstreamRequestHandler)

    def close_connections(self) -> None:
        """Wake every request thread: idle keep-alive reads end, sends fail."""
        self.stopping.set()
        self.drop_connections()

    @contextmanager
    def answering(self) -> Iterator[None]:
        with self._idle:
            self._answering += 1
        try:
            yield
        finally:
            with self._idle:
                self._answering -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> None:
        with self._idle:
            if not self._idle.wait_for(lambda: self._answering == 0, timeout):
                raise TimeoutError(f"requests still being answered after {timeout} s")


class _UpstreamRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "wuacache-lab-upstream/1"
    timeout = 30  # seconds an idle keep-alive connection may hold a thread
    server: _UpstreamHTTPServer

    def do_GET(self) -> None:
        self._handle(send_body=True)

    def do_HEAD(self) -> None:
        self._handle(send_body=False)

    def do_CONNECT(self) -> None:
        # Tunnels would be opaque to the lab, and Microsoft's payloads are plain http.
        self._record = AccessRecord(
            client=self.client_address[0], method=self.command, url=self.path
        )
        with self.server.answering():
            try:
                self._send_text(
                    405, "CONNECT is not supported", send_body=True, headers={"Allow": "GET, HEAD"}
                )
            finally:
                self._log()

    def version_string(self) -> str:
        return self.server_version

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are logged once answered, by _log()."""

    def log_message(self, format: str, *args: object) -> None:
        logger.info("%s - - %s", self.address_string(), format % args)

    def _handle(self, send_body: bool) -> None:
        self._record = AccessRecord(
            client=self.client_address[0],
            method=self.command,
            url=self.path,
            range=self.headers.get("Range"),
        )
        with self.server.answering():
            try:
                self._respond(send_body)
            except (ConnectionError, TimeoutError):
                self.close_connection = True  # the client left, or the server is stopping
            finally:
                self._log()

    def _respond(self, send_body: bool) -> None:
        try:
            target = parse_target(self.path, self.headers.get("Host"))
        except BadTarget as exc:
            self._send_text(400, str(exc), send_body)
            return
        self._record.url = target.url
        self._record.host = target.host
        self._record.path = target.path
        self._record.proxied = target.proxied

        location = redirect_location(target)
        if location is not None:
            self._answer_text(
                target, 302, f"Moved to {location}", send_body, headers={"Location": location}
            )
            return
        path = docroot_file(self.server.docroot, target)
        if path is None:
            self._answer_text(target, 404, f"Not found: {target.url}", send_body)
            return
        with open(path, "rb") as file:
            self._send_file(
                target, file, Representation.of(os.fstat(file.fileno()), path.name), send_body
            )

    def _send_file(
        self, target: RequestTarget, file: BinaryIO, rep: Representation, send_body: bool
    ) -> None:
        validators = {"ETag": rep.etag, "Last-Modified": rep.last_modified}
        if rep.is_not_modified(
            self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
        ):
            if self._take_fault(target, sends_body=False) is None:
                self._send_headers(304, validators)
            return
        # RFC 7233: a server must ignore Range on anything but GET.
        range_header = self.headers.get("Range") if self.command == "GET" else None
        try:
            selected = rep.selected_range(range_header, self.headers.get("If-Range"))
        except RangeNotSatisfiable:
            headers = {"Content-Range": f"bytes */{rep.size}", **validators}
            self._answer_text(target, 416, "Range not satisfiable", send_body, headers=headers)
            return
        start, end = selected if selected is not None else (0, rep.size - 1)
        length = end - start + 1
        fault = self._take_fault(target, sends_body=send_body and length > 0)
        if fault is not None and not fault.affects_body:
            return
        headers = {
            "Content-Type": rep.content_type,
            "Content-Length": str(length),
            "Accept-Ranges": "bytes",
            **validators,
        }
        if selected is not None:
            headers["Content-Range"] = f"bytes {start}-{end}/{rep.size}"
        self._send_headers(206 if selected is not None else 200, headers)
        if send_body:
            file.seek(start)
            self._stream(file, length, fault)

    def _answer_text(
        self,
        target: RequestTarget,
        status: int,
        text: str,
        send_body: bool,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer a short text, unless a ``status`` or ``reset`` fault answers instead."""
        if self._take_fault(target, sends_body=False) is None:
            self._send_text(status, text, send_body, headers)

    def _take_fault(self, target: RequestTarget, *, sends_body: bool) -> Fault | None:
        """Look up the fault for this request; answer it here if it replaces
        the whole response (``status``, ``reset``)."""
        fault = self.server.faults.take(target.host, target.path, sends_body=sends_body)
        if fault is None:
            return None
        self._record.fault = fault.kind
        if fault.kind == "reset":
            self.close_connection = True  # closed without a single byte of answer
        elif fault.kind == "status":
            assert fault.status is not None
            self._send_text(
                fault.status, f"Injected fault: status {fault.status}", self.command != "HEAD"
            )
        return fault

    def _stream(self, file: BinaryIO, length: int, fault: Fault | None) -> None:
        to_send = length
        chunk_size = _CHUNK_SIZE
        rate = None
        if fault is not None and fault.kind == "truncate":
            to_send = length // 2
            self.close_connection = True  # the advertised length is never reached
        elif fault is not None and fault.kind == "slow":
            if fault.delay:
                self._pause(fault.delay)
            if fault.rate:
                rate = fault.rate
                chunk_size = max(1, min(_CHUNK_SIZE, rate // _SLOW_WRITES_PER_SECOND))
        corrupt = fault is not None and fault.kind == "corrupt"
        while to_send > 0:
            chunk = file.read(min(chunk_size, to_send))
            if not chunk:
                self.close_connection = True  # the file shrank after the headers went out
                return
            self._write_body(_flip_middle_byte(chunk) if corrupt else chunk)
            to_send -= len(chunk)
            if rate is not None:
                self._pause(len(chunk) / rate)

    def _send_text(
        self, status: int, text: str, send_body: bool, headers: dict[str, str] | None = None
    ) -> None:
        body = text.encode("utf-8") + b"\n"
        self._send_headers(
            status,
            {
                "Content-Type": "text/plain; charset=utf-8",
                "Content-Length": str(len(body)),
                **(headers or {}),
            },
        )
        if send_body:
            self._write_body(body)

    def _send_headers(self, status: int, headers: dict[str, str]) -> None:
        self._record.status = status
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _write_body(self, data: bytes) -> None:
        # send() rather than sendall(), so that the log counts exactly what
        # reached the socket when a transfer breaks half-way.
        view = memoryview(data)
        while view:
            sent = self.connection.send(view)
            self._record.sent += sent
            view = view[sent:]

    def _pause(self, seconds: float) -> None:
        if self.server.stopping.wait(seconds):
            raise ConnectionAbortedError("the upstream server is stopping")

    def _log(self) -> None:
        record = self._record
        self.server.access_log.append(record)
        logger.info(
            '%s - - [%s] "%s" %s %d%s',
            record.client,
            time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            self.requestline,
            record.status if record.status is not None else "-",
            record.sent,
            f" fault={record.fault}" if record.fault else "",
        )


def _flip_middle_byte(chunk: bytes) -> bytes:
    corrupted = bytearray(chunk)
    corrupted[len(corrupted) // 2] ^= 0xFF
    return bytes(corrupted)
