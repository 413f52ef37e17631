"""HTTP from an emulated host's PowerShell: ServicePointManager, HttpWebRequest, HttpWebResponse and its stream,
WebException; the bytes travel through the host's proxy onto its disk, with the upstream's access log as witness."""

from __future__ import annotations

import hashlib
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from host_snippets import chain, failure, new_host, output, runtime_of
from wuacache_lab.pki import ensure_lab_ca, ensure_server_certificate
from wuacache_lab.upstream import UpstreamServer, read_access_log, set_fault
from wuacache_lab.windows.faults import set_host_fault
from wuacache_lab.windows.host import WindowsHost

PATH = "/c/msdownload/update/software/secu/2024/01/windows10.0-kb5034122-x64_{sha1}.cab"
FOLDER = "C:\\ProgramData\\wuacache\\staging"
PART = f"{FOLDER}\\update.cab.part"
COR_E_IO = -2146232800
COR_E_INVALIDOPERATION = -2146233079


def fetch(url: str, offset: int = 0, path: str = PART) -> str:
    """Save-HttpFile's transfer: a GET from an offset, the body appended on a 206, in place of the file on a 200."""
    return f"""$request = [System.Net.HttpWebRequest]::Create('{url}')
if ({offset} -gt 0) {{ $request.AddRange([long]{offset}) }}
$response = $request.GetResponse()
try {{
    $mode = 'Create'
    if ([int]$response.StatusCode -eq 206) {{ $mode = 'Append' }}
    $file = [System.IO.File]::Open('{path}', $mode, 'Write')
    try {{ $response.GetResponseStream().CopyTo($file) }} finally {{ $file.Dispose() }}
    [int]$response.StatusCode
}}
finally {{
    $response.Close()
}}"""


def held(host: WindowsHost, path: str = PART) -> bytes:
    return b"".join(host.disk.read(path))


# ---------------------------------------------------------------- through the upstream, as the host's proxy


@pytest.fixture
def payload(tmp_path: Path) -> tuple[Path, str, bytes]:
    """A payload file at a download.windowsupdate.com path of a docroot; returns (docroot, url, bytes)."""
    data = bytes(range(256)) * 400  # 100 KiB: several pieces, worth truncating
    path = PATH.format(sha1=hashlib.sha1(data).hexdigest())
    docroot = tmp_path / "docroot"
    file = docroot / "download.windowsupdate.com" / path.lstrip("/")
    file.parent.mkdir(parents=True)
    file.write_bytes(data)
    return docroot, f"http://download.windowsupdate.com{path}", data


@pytest.fixture
def upstream(tmp_path: Path, payload: tuple[Path, str, bytes]) -> Iterator[UpstreamServer]:
    with UpstreamServer(payload[0], tmp_path / "upstream") as server:
        yield server


@pytest.fixture
def host(tmp_path: Path, upstream: UpstreamServer) -> WindowsHost:
    host = new_host(tmp_path, proxy=upstream.url)
    host.disk.make_dirs(FOLDER)
    return host


def test_the_host_fetches_microsofts_url_through_its_proxy(host: WindowsHost, upstream: UpstreamServer, payload, tmp_path: Path) -> None:
    _, url, data = payload

    assert output(runtime_of(host), fetch(url)) == [200]

    assert held(host) == data
    upstream.wait_idle()
    [entry] = read_access_log(tmp_path / "upstream")
    assert (entry["proxied"], entry["url"], entry["status"], entry["bytes"], entry["range"]) == (True, url, 200, len(data), None)


def test_a_transfer_cut_short_keeps_what_came_and_resumes_from_there(host: WindowsHost, upstream: UpstreamServer, payload, tmp_path: Path) -> None:
    _, url, data = payload
    set_fault(tmp_path / "upstream", url, "truncate", count=1)

    error = failure(runtime_of(host), fetch(url))

    assert chain(error) == ["System.Management.Automation.MethodInvocationException", "System.IO.IOException"]
    inner = error.reported_exception.inner
    assert inner is not None and inner.hresult == COR_E_IO
    assert inner.message == "Unable to read data from the transport connection: The connection was closed."
    kept = host.disk.size(PART)
    assert 0 < kept < len(data)

    assert output(runtime_of(host), fetch(url, kept)) == [206]

    assert held(host) == data
    upstream.wait_idle()
    first, second = read_access_log(tmp_path / "upstream")
    assert first["fault"] == "truncate" and first["bytes"] == kept
    assert (second["status"], second["range"], second["bytes"]) == (206, f"bytes={kept}-", len(data) - kept)


def test_an_http_error_status_is_a_web_exception_holding_the_response(host: WindowsHost, payload, tmp_path: Path) -> None:
    _, url, _ = payload
    set_fault(tmp_path / "upstream", url, "status", status=404, count=1)
    script = f"""try {{ $null = [System.Net.HttpWebRequest]::Create('{url}').GetResponse() }}
catch {{
    $exception = $_.Exception.InnerException
    $exception.GetType().FullName
    $exception.Message
    $exception.HResult
    [string]$exception.Status
    [int]$exception.Response.StatusCode
}}"""

    assert output(runtime_of(host), script) == [
        "System.Net.WebException",
        "The remote server returned an error: (404) Not Found.",
        COR_E_INVALIDOPERATION,
        "ProtocolError",
        404,
    ]
    assert not host.disk.exists(PART)


def test_a_connection_closed_without_an_answer_is_a_web_exception(host: WindowsHost, payload, tmp_path: Path) -> None:
    _, url, _ = payload
    set_fault(tmp_path / "upstream", url, "reset", count=1)

    error = failure(runtime_of(host), fetch(url))

    exception = error.reported_exception.inner
    assert exception is not None and exception.type_name == "System.Net.WebException"
    assert exception.message == "The underlying connection was closed: The connection was closed unexpectedly."
    assert str(exception.properties["Status"]) == "ConnectionClosed"


def test_a_body_slower_than_the_read_write_timeout_fails_the_copy(host: WindowsHost, payload, tmp_path: Path) -> None:
    _, url, _ = payload
    set_fault(tmp_path / "upstream", url, "slow", delay=2, count=1)
    script = fetch(url).replace("$response = $request.GetResponse()", "$request.ReadWriteTimeout = 300\n$response = $request.GetResponse()")

    error = failure(runtime_of(host), script)

    assert chain(error) == ["System.Management.Automation.MethodInvocationException", "System.IO.IOException"]
    assert "did not properly respond after a period of time" in error.reported_exception.message


def test_a_full_disk_fails_the_copy_with_what_fitted_written(host: WindowsHost, payload, tmp_path: Path) -> None:
    _, url, _ = payload
    set_host_fault(tmp_path / "hosts", host.name, "disk_full")

    error = failure(runtime_of(host), fetch(url))

    assert chain(error)[-1] == "System.IO.IOException"
    assert error.reported_exception.inner.hresult == 0x80070070 - (1 << 32)  # type: ignore[union-attr]


# ---------------------------------------------------------------- a server of its own: ranges ignored, HTTPS


@dataclass
class Server:
    """A tiny HTTP server honouring Range (or ignoring it, as some servers do)."""

    body: bytes
    ignore_range: bool = False
    requests: list[dict[str, str]] = field(default_factory=list)
    url: str = ""


def serve(state: Server, context: ssl.SSLContext | None = None) -> Iterator[Server]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(dict(self.headers))
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


@pytest.fixture
def server() -> Iterator[Server]:
    yield from serve(Server(body=hashlib.shake_256(b"payload").digest(200_000)))


def test_a_server_that_ignores_the_range_answers_200_and_the_file_is_replaced(tmp_path: Path, server: Server) -> None:
    host = new_host(tmp_path)
    host.disk.make_dirs(FOLDER)
    host.disk.write(PART, [b"x" * 50_000])
    server.ignore_range = True

    assert output(runtime_of(host), fetch(f"{server.url}/payload.cab", 50_000)) == [200]

    assert held(host) == server.body
    assert server.requests[-1]["Range"] == "bytes=50000-"
    # HttpWebRequest sends no User-Agent of its own, and loopback is never proxied.
    assert "User-Agent" not in server.requests[-1]


def test_an_offset_at_the_end_is_a_416_and_leaves_the_file(tmp_path: Path, server: Server) -> None:
    host = new_host(tmp_path, proxy="http://127.0.0.1:9")
    host.disk.make_dirs(FOLDER)
    host.disk.write(PART, [server.body])

    error = failure(runtime_of(host), fetch(f"{server.url}/payload.cab", len(server.body)))

    assert error.reported_exception.inner.message == "The remote server returned an error: (416) Requested Range Not Satisfiable."  # type: ignore[union-attr]
    assert held(host) == server.body


def test_nothing_listening_is_unable_to_connect(tmp_path: Path) -> None:
    error = failure(runtime_of(new_host(tmp_path)), "[System.Net.HttpWebRequest]::Create('http://127.0.0.1:9/x').GetResponse()")

    exception = error.reported_exception.inner
    assert exception is not None and exception.message == "Unable to connect to the remote server"
    assert str(exception.properties["Status"]) == "ConnectFailure"


def test_security_protocol_starts_from_ssl3_and_tls_in_every_process(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    script = """[string][System.Net.ServicePointManager]::SecurityProtocol
[System.Net.ServicePointManager]::SecurityProtocol = [System.Net.ServicePointManager]::SecurityProtocol -bor [System.Net.SecurityProtocolType]::Tls12
[string][System.Net.ServicePointManager]::SecurityProtocol"""

    assert output(runtime_of(host), script) == ["Ssl3, Tls", "Ssl3, Tls, Tls12"]
    assert output(runtime_of(host), "[int][System.Net.ServicePointManager]::SecurityProtocol") == [240]


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[Server]:
    certificate = ensure_server_certificate(tmp_path / "ca", ["127.0.0.1"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certificate.cert, certificate.key)
    yield from serve(Server(body=b"over tls"), context)


def test_https_needs_tls_1_2_in_security_protocol(tmp_path: Path, https_server: Server) -> None:
    host = new_host(tmp_path, trusted_ca=ensure_lab_ca(tmp_path / "ca").ca_cert)
    host.disk.make_dirs(FOLDER)
    url = f"{https_server.url}/file.bin"

    error = failure(runtime_of(host), fetch(url))
    assert error.reported_exception.inner.message == "The request was aborted: Could not create SSL/TLS secure channel."  # type: ignore[union-attr]
    assert https_server.requests == []

    enable = "[System.Net.ServicePointManager]::SecurityProtocol = [System.Net.ServicePointManager]::SecurityProtocol -bor 'Tls12'\n"
    assert output(runtime_of(host), enable + fetch(url)) == [200]
    assert held(host) == b"over tls"


def test_https_from_a_host_that_does_not_trust_the_issuer_fails_trust(tmp_path: Path, https_server: Server) -> None:
    other_ca = ensure_lab_ca(tmp_path / "other-ca", name="another lab").ca_cert
    host = new_host(tmp_path, trusted_ca=other_ca)

    error = failure(runtime_of(host), f"[System.Net.ServicePointManager]::SecurityProtocol = 'Tls12'\n[System.Net.HttpWebRequest]::Create('{https_server.url}/x').GetResponse()")

    exception = error.reported_exception.inner
    assert exception is not None and str(exception.properties["Status"]) == "TrustFailure"
