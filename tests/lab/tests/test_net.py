"""HTTP from an emulated host's PowerShell: ServicePointManager, HttpWebRequest, HttpWebResponse and its stream,
WebException; the bytes travel through the host's proxy onto its disk, with the upstream's access log as witness."""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from host_snippets import chain, failure, new_host, output, runtime_of
from http_servers import Server, serving, tls_context
from wuacache_lab.pki import ensure_lab_ca
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


@pytest.fixture
def server() -> Iterator[Server]:
    with serving(Server(body=hashlib.shake_256(b"payload").digest(200_000))) as state:
        yield state


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


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ({"sch_use_strong_crypto": 1}, "Tls, Tls11, Tls12"),
        ({"system_default_tls_versions": 1}, "SystemDefault"),
        ({"system_default_tls_versions": 1, "sch_use_strong_crypto": 1}, "SystemDefault"),
        ({"system_default_tls_versions": 0, "sch_use_strong_crypto": 0}, "Ssl3, Tls"),
        # The 32-bit view only: the native powershell.exe reads the other.
        ({"system_default_tls_versions": 1, "sch_use_strong_crypto": 1, "view": "wow6432node"}, "Ssl3, Tls"),
    ],
    ids=["strong-crypto", "system-default", "both", "both-0", "wow6432node-only"],
)
def test_security_protocol_starts_from_the_net_framework_registry_values(tmp_path: Path, setting: dict, expected: str) -> None:
    host = new_host(tmp_path)
    set_host_fault(tmp_path / "hosts", host.name, "net_framework_tls", **setting)

    assert output(runtime_of(host), "[string][System.Net.ServicePointManager]::SecurityProtocol") == [expected]


@pytest.mark.parametrize(("profile", "twin"), [("win10-22h2", True), ("win10-22h2-x86", False)])
def test_the_net_framework_values_are_in_the_registry_and_only_64_bit_windows_has_a_32_bit_view(
    tmp_path: Path, profile: str, twin: bool
) -> None:
    host = new_host(tmp_path, profile=profile)
    set_host_fault(tmp_path / "hosts", host.name, "net_framework_tls", system_default_tls_versions=1)
    script = """(Get-Item -LiteralPath 'HKLM:\\SOFTWARE\\Microsoft\\.NETFramework\\v4.0.30319').GetValue('SystemDefaultTlsVersions')
(Get-Item -LiteralPath 'HKLM:\\SOFTWARE\\Microsoft\\.NETFramework\\v4.0.30319').GetValue('SchUseStrongCrypto')
Test-Path -LiteralPath 'HKLM:\\SOFTWARE\\WOW6432Node\\Microsoft\\.NETFramework\\v4.0.30319'"""

    assert output(runtime_of(host), script) == [1, None, twin]


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    return ensure_lab_ca(tmp_path / "ca").ca_cert


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[Server]:
    """A server that speaks TLS 1.2 and 1.3."""
    with serving(Server(body=b"over tls"), tls_context(tmp_path / "ca")) as state:
        yield state


def get(url: str, security_protocol: str | None = None) -> str:
    """A GET of ``url`` that answers its status, with SecurityProtocol set to ``security_protocol`` first if given."""
    setting = "" if security_protocol is None else f"[System.Net.ServicePointManager]::SecurityProtocol = {security_protocol}\n"
    return f"{setting}$response = [System.Net.HttpWebRequest]::Create('{url}').GetResponse()\n[int]$response.StatusCode\n$response.Close()"


def test_https_needs_tls_1_2_in_security_protocol(tmp_path: Path, ca: Path, https_server: Server) -> None:
    host = new_host(tmp_path, trusted_ca=ca)
    host.disk.make_dirs(FOLDER)
    url = f"{https_server.url}/file.bin"

    error = failure(runtime_of(host), fetch(url))
    assert error.reported_exception.inner.message == "The request was aborted: Could not create SSL/TLS secure channel."  # type: ignore[union-attr]
    assert https_server.requests == []

    enable = "[System.Net.ServicePointManager]::SecurityProtocol = [System.Net.ServicePointManager]::SecurityProtocol -bor 'Tls12'\n"
    assert output(runtime_of(host), enable + fetch(url)) == [200]
    assert held(host) == b"over tls"
    assert https_server.tls_versions == ["TLSv1.2"]


@pytest.mark.parametrize(
    ("profile", "negotiated"),
    [("win10-22h2", "TLSv1.2"), ("server2019", "TLSv1.2"), ("win11-23h2", "TLSv1.3"), ("server2022", "TLSv1.3")],
)
def test_system_default_offers_what_windows_enables(tmp_path: Path, ca: Path, https_server: Server, profile: str, negotiated: str) -> None:
    host = new_host(tmp_path, profile=profile, trusted_ca=ca)
    set_host_fault(tmp_path / "hosts", host.name, "net_framework_tls", system_default_tls_versions=1)

    assert output(runtime_of(host), get(f"{https_server.url}/x")) == [200]

    assert https_server.tls_versions == [negotiated]


@pytest.mark.parametrize(
    "security_protocol",
    [
        "'Tls12'",
        # A flag added to SystemDefault (0) is that flag alone.
        "[System.Net.SecurityProtocolType]::SystemDefault -bor [System.Net.SecurityProtocolType]::Tls12",
        "'Tls, Tls11, Tls12'",
    ],
)
def test_an_explicit_set_offers_only_its_own_versions(tmp_path: Path, ca: Path, https_server: Server, security_protocol: str) -> None:
    host = new_host(tmp_path, profile="win11-23h2", trusted_ca=ca)

    assert output(runtime_of(host), get(f"{https_server.url}/x", security_protocol)) == [200]

    assert https_server.tls_versions == ["TLSv1.2"]


@pytest.mark.parametrize(
    ("profile", "security_protocol", "server_maximum"),
    [
        ("win11-23h2", "'Tls12'", ssl.TLSVersion.TLSv1_3),
        ("win11-23h2", "'Tls13'", ssl.TLSVersion.TLSv1_2),
        # Windows 10 has no TLS 1.3 to offer.
        ("win10-22h2", "'Tls13'", ssl.TLSVersion.TLSv1_3),
    ],
    ids=["tls12-to-tls13-only", "tls13-to-tls12-only", "tls13-on-windows-10"],
)
def test_no_version_both_sides_speak_is_a_secure_channel_failure(
    tmp_path: Path, ca: Path, profile: str, security_protocol: str, server_maximum: ssl.TLSVersion
) -> None:
    host = new_host(tmp_path, profile=profile, trusted_ca=ca)
    context = tls_context(tmp_path / "ca", minimum=server_maximum, maximum=server_maximum)

    with serving(Server(body=b"over tls"), context) as server:
        error = failure(runtime_of(host), get(f"{server.url}/x", security_protocol))

    exception = error.reported_exception.inner
    assert exception is not None and exception.message == "The request was aborted: Could not create SSL/TLS secure channel."
    assert str(exception.properties["Status"]) == "SecureChannelFailure"
    assert server.requests == []


def test_https_from_a_host_that_does_not_trust_the_issuer_fails_trust(tmp_path: Path, https_server: Server) -> None:
    other_ca = ensure_lab_ca(tmp_path / "other-ca", name="another lab").ca_cert
    host = new_host(tmp_path, trusted_ca=other_ca)

    error = failure(runtime_of(host), f"[System.Net.ServicePointManager]::SecurityProtocol = 'Tls12'\n[System.Net.HttpWebRequest]::Create('{https_server.url}/x').GetResponse()")

    exception = error.reported_exception.inner
    assert exception is not None and str(exception.properties["Status"]) == "TrustFailure"
