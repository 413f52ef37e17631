# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A wuacache server on the loopback that answers from recorded plans, and a clock that does not wait."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ..conftest import FakeClock

# The collection is importable only once the session is configured (tests/unit/conftest.py): the fixtures import it.

PACKAGES_PATH = "/api/v1/packages/"


class FakeServer:
    """Answers the report and plan endpoints from queues of recorded answers, and records the requests.

    An answer is a plan (status 200) or a ``(status, body)`` pair. ``packages``
    holds the packages the server knows, by name.
    """

    def __init__(self, cab_sha256: str) -> None:
        self.sidecar = f"{cab_sha256}  wsusscn2.cab\n"
        self.reports: list[Any] = []
        self.report_answers: list[Any] = []
        self.plan_answers: list[Any] = []
        self.packages: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        # A short poll interval: shutdown() waits for it.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self.url = f"http://127.0.0.1:{self._httpd.server_port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(("GET", self.path, dict(self.headers)))
                if self.path == "/wua/wsusscn2.cab.sha256":
                    self._send(200, server.sidecar.encode("ascii"), "text/plain")
                elif self.path.endswith("/plan"):
                    self._answer(server.plan_answers.pop(0))
                elif self.path.startswith(PACKAGES_PATH) and self.path[len(PACKAGES_PATH):] in server.packages:
                    self._answer(server.packages[self.path[len(PACKAGES_PATH):]])
                else:
                    self._answer((404, {"detail": "Not Found"}))

            def do_POST(self) -> None:
                server.requests.append(("POST", self.path, dict(self.headers)))
                body = self.rfile.read(int(self.headers["Content-Length"]))
                server.reports.append(json.loads(body))
                self._answer(server.report_answers.pop(0))

            def _answer(self, answer: Any) -> None:
                status, body = answer if isinstance(answer, tuple) else (200, answer)
                self._send(status, json.dumps(body).encode("utf-8"), "application/json")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture(name="server")
def fixture_server() -> Iterator[FakeServer]:
    from .recorded import CAB_SHA256  # pylint: disable=import-outside-toplevel

    server = FakeServer(CAB_SHA256)
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_waiting(clock: FakeClock) -> FakeClock:
    """The actions' polls and reboots never wait in these tests."""
    return clock
