"""The lab's WinRM endpoint, driven by the real pywinrm client as Ansible drives it."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import winrm
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lxml import etree
from winrm.exceptions import InvalidCredentialsError, WSManFaultError

from wuacache_lab.windows.process import ConnectionDropped, LogonSession, ProcessResult
from wuacache_lab.winrm.server import WinRMEndpoint

USERS = {"Administrator": "Lab-Passw0rd!"}
NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}
INVALID_SELECTORS = 2150858843
OPERATION_TIMED_OUT = 2150858793


def decoded_script(command_line: str) -> str:
    """The script of a ``powershell -EncodedCommand`` line, as powershell.exe would read it."""
    match = re.search(r"-encodedcommand\s+(\S+)", command_line, re.IGNORECASE)
    assert match, command_line
    return base64.b64decode(match.group(1)).decode("utf-16-le")


class FakeHost:
    """A host whose processes are a Python function of their command line and stdin."""

    def __init__(self, respond: Callable[[str, bytes], ProcessResult], name: str = "lab-host") -> None:
        self.name = name
        self.reachable = True
        self.calls: list[tuple[str, bytes, LogonSession]] = []
        self._respond = respond

    def is_reachable(self) -> bool:
        return self.reachable

    def execute(self, command_line: str, stdin: bytes, logon: LogonSession) -> ProcessResult:
        self.calls.append((command_line, stdin, logon))
        return self._respond(command_line, stdin)


def echo(command_line: str, stdin: bytes) -> ProcessResult:
    return ProcessResult(stdout=command_line.encode(), stderr=b"", exit_code=0)


@pytest.fixture
def serve() -> Iterator[Callable[..., WinRMEndpoint]]:
    """Start endpoints on free ports; all are stopped after the test."""
    endpoints: list[WinRMEndpoint] = []

    def serve(host: FakeHost, **kwargs: object) -> WinRMEndpoint:
        kwargs.setdefault("port", 0)
        kwargs.setdefault("users", USERS)
        endpoint = WinRMEndpoint(host, **kwargs)
        endpoint.start()
        endpoints.append(endpoint)
        return endpoint

    yield serve
    for endpoint in endpoints:
        endpoint.stop()


def session(
    endpoint: WinRMEndpoint,
    transport: str,
    user: str = "administrator",
    password: str = USERS["Administrator"],
    **kwargs: object,
) -> winrm.Session:
    # Loopback endpoints have self-signed certificates, when they have any.
    kwargs.setdefault("server_cert_validation", "ignore")
    return winrm.Session(endpoint.url, auth=(user, password), transport=transport, **kwargs)


def protocol(endpoint: WinRMEndpoint, transport: str = "basic", **kwargs: object) -> winrm.Protocol:
    return session(endpoint, transport, **kwargs).protocol


def envelope(action: str, message_id: str, shell_id: str | None = None, body: str = "") -> bytes:
    selector = f'<w:SelectorSet><w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>' if shell_id else ""
    # Prefixes unlike pywinrm's, as other clients choose theirs.
    return f"""<e:Envelope xmlns:e="{NS['s']}" xmlns:wsa="{NS['a']}" xmlns:w="{NS['w']}" xmlns:shell="{NS['rsp']}">
      <e:Header>
        <wsa:To>http://windows-host:5985/wsman</wsa:To>
        <wsa:Action>{action}</wsa:Action>
        <wsa:MessageID>{message_id}</wsa:MessageID>
        <w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>
        <w:OperationTimeout>PT20S</w:OperationTimeout>
        {selector}
      </e:Header>
      <e:Body>{body}</e:Body>
    </e:Envelope>""".encode()


def post(endpoint: WinRMEndpoint, data: bytes, **kwargs: object) -> requests.Response:
    kwargs.setdefault("auth", ("Administrator", USERS["Administrator"]))
    kwargs.setdefault("headers", {"Content-Type": "application/soap+xml;charset=UTF-8"})
    return requests.post(endpoint.url, data=data, timeout=10, **kwargs)


@pytest.mark.parametrize("transport", ["basic", "ntlm"])
def test_run_ps_reaches_the_host_as_the_authenticated_user(serve, transport: str) -> None:
    host = FakeHost(lambda line, stdin: ProcessResult(decoded_script(line).encode(), b"a warning", 3))
    endpoint = serve(host)

    result = session(endpoint, transport).run_ps("Get-Date -Format o")

    assert (result.status_code, result.std_out, result.std_err) == (3, b"Get-Date -Format o", b"a warning")
    ((command_line, stdin, logon),) = host.calls
    assert command_line.startswith("powershell -encodedcommand ")
    assert stdin == b""
    assert logon == LogonSession(user="Administrator", logon_type="network")


def test_command_and_arguments_reach_the_host_as_one_command_line(serve) -> None:
    host = FakeHost(echo)
    endpoint = serve(host)

    result = session(endpoint, "basic").run_cmd("ipconfig", ["/all", "/allcompartments"])

    assert result.std_out == b"ipconfig /all /allcompartments"


def test_ntlm_messages_are_sealed_on_the_wire(serve) -> None:
    endpoint = serve(FakeHost(echo))
    client = session(endpoint, "ntlm")
    seen: list[requests.Response] = []
    client.protocol.transport.build_session().hooks["response"].append(lambda response, **_: seen.append(response))

    assert client.run_cmd("whoami").std_out == b"whoami"

    assert len(seen) == 5  # Create, Command, Receive, Signal, Delete
    for response in seen:
        assert response.request.headers["Content-Type"].startswith("multipart/encrypted;")
        assert response.headers["Content-Type"].startswith("multipart/encrypted;")
        assert b"Envelope" not in response.request.body
        assert b"Envelope" not in response.content


def test_encrypted_message_on_a_connection_without_context_is_a_bad_request(serve) -> None:
    endpoint = serve(FakeHost(echo))
    content_type = (
        'multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"'
    )

    response = post(endpoint, b"--Encrypted Boundary\r\n", auth=None, headers={"Content-Type": content_type})

    assert response.status_code == 400


@pytest.mark.parametrize("transport", ["basic", "ntlm"])
@pytest.mark.parametrize(("user", "password"), [("Administrator", "wrong"), ("nobody", USERS["Administrator"])])
def test_wrong_credentials_are_rejected(serve, transport: str, user: str, password: str) -> None:
    host = FakeHost(echo)
    endpoint = serve(host)

    with pytest.raises(InvalidCredentialsError):
        session(endpoint, transport, user, password).run_cmd("hostname")
    assert host.calls == []


def test_unauthenticated_request_is_offered_both_methods(serve) -> None:
    endpoint = serve(FakeHost(echo))

    response = post(endpoint, envelope("http://schemas.xmlsoap.org/ws/2004/09/transfer/Create", "uuid:1"), auth=None)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Negotiate, Basic realm="WSMAN"'


def test_only_the_configured_methods_are_accepted(serve) -> None:
    endpoint = serve(FakeHost(echo), auth=("ntlm",))

    with pytest.raises(InvalidCredentialsError):
        session(endpoint, "basic").run_cmd("hostname")
    assert session(endpoint, "ntlm").run_cmd("hostname").std_out == b"hostname"


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lab-host")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    certificate_path, key_path = directory / "winrm.pem", directory / "winrm.key"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certificate_path, key_path


@pytest.mark.parametrize("transport", ["ssl", "ntlm"])
def test_https_with_a_self_signed_certificate(serve, tmp_path: Path, transport: str) -> None:
    endpoint = serve(FakeHost(echo), https=self_signed_certificate(tmp_path))
    client = session(endpoint, transport)
    seen: list[requests.Response] = []
    client.protocol.transport.build_session().hooks["response"].append(lambda response, **_: seen.append(response))

    result = client.run_cmd("hostname")

    assert endpoint.url.startswith("https://")
    assert result.std_out == b"hostname"
    # Over HTTPS, pywinrm relies on TLS and sends the SOAP itself.
    assert seen and all(r.headers["Content-Type"].startswith("application/soap+xml") for r in seen)


def test_stdin_reaches_the_host_byte_for_byte(serve) -> None:
    host = FakeHost(lambda line, stdin: ProcessResult(str(len(stdin)).encode(), b"", 0))
    endpoint = serve(host)
    chunks = [bytes(range(256)) * 40, b"\r\n\x00\x00\x00\x00\r\n", b'{"end": true}']
    client = protocol(endpoint)

    shell_id = client.open_shell()
    command_id = client.run_command(shell_id, "powershell", ["-NoProfile", "-"], console_mode_stdin=False)
    for number, chunk in enumerate(chunks, start=1):
        client.send_command_input(shell_id, command_id, chunk, end=number == len(chunks))
    stdout, _, exit_code = client.get_command_output(shell_id, command_id)
    client.cleanup_command(shell_id, command_id)
    client.close_shell(shell_id)

    assert host.calls[0][:2] == ("powershell -NoProfile -", b"".join(chunks))
    assert (stdout, exit_code) == (str(len(b"".join(chunks))).encode(), 0)


def test_stdin_after_its_end_is_refused(serve) -> None:
    endpoint = serve(FakeHost(echo))
    client = protocol(endpoint)
    shell_id = client.open_shell()
    command_id = client.run_command(shell_id, "more")
    client.send_command_input(shell_id, command_id, b"all of it", end=True)

    with pytest.raises(WSManFaultError) as fault:
        client.send_command_input(shell_id, command_id, b"more")
    assert fault.value.wsman_fault_code == 232  # ERROR_NO_DATA, "The pipe is being closed."


def test_slow_command_completes_through_operation_timeouts(serve) -> None:
    def slow(line: str, stdin: bytes) -> ProcessResult:
        time.sleep(2.5)
        return ProcessResult(b"finally", b"", 0)

    endpoint = serve(FakeHost(slow))
    client = session(endpoint, "basic", operation_timeout_sec=1, read_timeout_sec=2)
    seen: list[requests.Response] = []
    client.protocol.transport.build_session().hooks["response"].append(lambda response, **_: seen.append(response))

    result = client.run_cmd("wusa", ["/quiet"])

    assert (result.std_out, result.status_code) == (b"finally", 0)
    timed_out = [r for r in seen if r.status_code == 500]
    assert timed_out, "the Receive should have been answered with w:TimedOut at least once"
    for response in timed_out:
        fault = etree.fromstring(response.content)
        assert fault.findtext(".//s:Subcode/s:Value", namespaces=NS) == "w:TimedOut"
        assert fault.find(".//f:WSManFault", NS).get("Code") == str(OPERATION_TIMED_OUT)


def test_large_output_comes_back_in_several_receives(serve) -> None:
    output = os.urandom(300_000)
    endpoint = serve(FakeHost(lambda line, stdin: ProcessResult(output, b"tail of stderr", 0)))
    client = session(endpoint, "basic")
    receives: list[requests.Response] = []
    client.protocol.transport.build_session().hooks["response"].append(
        lambda response, **_: receives.append(response) if b"ReceiveResponse" in response.content else None
    )

    result = client.run_cmd("type", ["big.bin"])

    assert (result.std_out, result.std_err) == (output, b"tail of stderr")
    assert len(receives) > 1
    # The envelope size the client advertised (w:MaxEnvelopeSize 153600) bounds every reply.
    assert all(len(response.content) <= 153600 for response in receives)


def test_connection_dropped_by_the_host_closes_the_connection_without_reply(serve) -> None:
    def drop(line: str, stdin: bytes) -> ProcessResult:
        if line == "shutdown /r /t 0":
            raise ConnectionDropped
        return echo(line, stdin)

    endpoint = serve(FakeHost(drop))

    with pytest.raises(requests.exceptions.ConnectionError):
        session(endpoint, "ntlm").run_cmd("shutdown", ["/r", "/t", "0"])
    assert session(endpoint, "ntlm").run_cmd("hostname").std_out == b"hostname"


def test_unreachable_host_refuses_service_and_loses_its_shells(serve) -> None:
    host = FakeHost(echo)
    endpoint = serve(host)
    client = protocol(endpoint, "ntlm")
    shell_id = client.open_shell()

    host.reachable = False
    with pytest.raises(requests.exceptions.ConnectionError):
        client.run_command(shell_id, "hostname")  # on the connection that was open
    with pytest.raises(requests.exceptions.ConnectionError):
        protocol(endpoint, "ntlm").open_shell()  # on a new one
    host.reachable = True

    with pytest.raises(WSManFaultError) as fault:
        protocol(endpoint, "ntlm").run_command(shell_id, "hostname")
    assert fault.value.wsman_fault_code == INVALID_SELECTORS
    assert host.calls == []


def test_idle_connection_is_closed_when_the_host_goes_down(serve) -> None:
    host = FakeHost(echo)
    endpoint = serve(host)
    connection = socket.create_connection((endpoint.address, endpoint.port))
    connection.settimeout(10)

    host.reachable = False

    assert connection.recv(1) == b""  # closed by the endpoint, without a reply
    connection.close()


def endpoints_share_a_free_port(addresses: list[str]) -> int:
    with socket.socket() as probe:
        probe.bind((addresses[0], 0))
        return probe.getsockname()[1]


def test_each_host_listens_on_its_own_loopback_address(serve) -> None:
    addresses = ["127.0.1.21", "127.0.1.22"]
    port = endpoints_share_a_free_port(addresses)
    hosts = [
        FakeHost(lambda line, stdin, name=name: ProcessResult(name.encode(), b"", 0), name) for name in ("ws01", "ws02")
    ]
    endpoints = [serve(host, address=address, port=port) for host, address in zip(hosts, addresses, strict=True)]

    outputs = [session(endpoint, "ntlm").run_cmd("hostname").std_out for endpoint in endpoints]

    assert [endpoint.url for endpoint in endpoints] == [f"http://{address}:{port}/wsman" for address in addresses]
    assert outputs == [b"ws01", b"ws02"]


def test_non_loopback_address_is_refused() -> None:
    with pytest.raises(ValueError, match="loopback"):
        WinRMEndpoint(FakeHost(echo), "192.0.2.10", users=USERS)


def test_reply_relates_to_the_request_like_windows(serve) -> None:
    endpoint = serve(FakeHost(echo))
    message_id = f"uuid:{uuid.uuid4()}"
    body = (
        "<shell:Shell><shell:InputStreams>stdin</shell:InputStreams>"
        "<shell:OutputStreams>stdout stderr</shell:OutputStreams></shell:Shell>"
    )

    response = post(endpoint, envelope("http://schemas.xmlsoap.org/ws/2004/09/transfer/Create", message_id, body=body))

    assert response.status_code == 200
    reply = etree.fromstring(response.content)
    assert reply.findtext("s:Header/a:RelatesTo", namespaces=NS) == message_id
    assert (
        reply.findtext("s:Header/a:Action", namespaces=NS)
        == "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse"
    )
    assert reply.findtext("s:Header/a:MessageID", namespaces=NS).startswith("uuid:")
    assert reply.findtext("s:Header/a:MessageID", namespaces=NS) != message_id
    shell_id = reply.findtext(
        "s:Body/{http://schemas.xmlsoap.org/ws/2004/09/transfer}ResourceCreated/a:ReferenceParameters"
        "/w:SelectorSet/w:Selector[@Name='ShellId']",
        namespaces=NS,
    )
    assert reply.findtext("s:Body/rsp:Shell/rsp:ShellId", namespaces=NS) == shell_id
    assert reply.findtext("s:Body/rsp:Shell/rsp:Owner", namespaces=NS) == "Administrator"


def test_unknown_action_is_a_fault(serve) -> None:
    endpoint = serve(FakeHost(echo))
    message_id = f"uuid:{uuid.uuid4()}"

    response = post(endpoint, envelope("http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate", message_id))

    assert response.status_code == 500
    fault = etree.fromstring(response.content)
    assert fault.findtext("s:Header/a:RelatesTo", namespaces=NS) == message_id
    assert fault.findtext("s:Body/s:Fault/s:Code/s:Subcode/s:Value", namespaces=NS) == "a:ActionNotSupported"


def test_unknown_shell_and_command_are_invalid_selectors(serve) -> None:
    endpoint = serve(FakeHost(echo))
    client = protocol(endpoint)

    with pytest.raises(WSManFaultError) as unknown_shell:
        client.run_command(str(uuid.uuid4()).upper(), "hostname")
    shell_id = client.open_shell()
    with pytest.raises(WSManFaultError) as unknown_command:
        client.get_command_output(shell_id, str(uuid.uuid4()).upper())

    for fault in (unknown_shell.value, unknown_command.value):
        assert (fault.code, fault.fault_subcode, fault.wsman_fault_code) == (
            500,
            "w:InvalidSelectors",
            INVALID_SELECTORS,
        )


def test_deleted_shell_is_gone(serve) -> None:
    endpoint = serve(FakeHost(echo))
    client = protocol(endpoint)
    shell_id = client.open_shell()
    client.close_shell(shell_id)

    with pytest.raises(WSManFaultError) as fault:
        client.run_command(shell_id, "hostname")
    assert fault.value.wsman_fault_code == INVALID_SELECTORS


def test_host_failure_is_a_fault_not_a_hang(serve) -> None:
    def broken(line: str, stdin: bytes) -> ProcessResult:
        raise RuntimeError("emulator bug")

    endpoint = serve(FakeHost(broken))

    with pytest.raises(WSManFaultError, match="emulator bug"):
        session(endpoint, "basic").run_cmd("hostname")


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/wsman", 405), ("POST", "/other", 404)])
def test_only_post_to_wsman_is_served(serve, method: str, path: str, status: int) -> None:
    endpoint = serve(FakeHost(echo))

    response = requests.request(method, endpoint.url.replace("/wsman", path), timeout=10)

    assert response.status_code == status


def test_endpoints_accepting_ntlm_share_their_users(serve) -> None:
    serve(FakeHost(echo))

    with pytest.raises(ValueError, match="share one set of users"):
        serve(FakeHost(echo), users={"someone": "else"})
    # Basic does not go through the process-wide NTLM account file.
    other = serve(FakeHost(echo), users={"someone": "else"}, auth=("basic",))
    assert session(other, "basic", "someone", "else").run_cmd("hostname").std_out == b"hostname"


def test_ntlm_user_file_exists_only_while_an_endpoint_runs() -> None:
    endpoint = WinRMEndpoint(FakeHost(echo), port=0, users=USERS)
    previous = os.environ.get("NTLM_USER_FILE")
    with endpoint:
        user_file = Path(os.environ["NTLM_USER_FILE"])
        assert user_file.read_text() == f":Administrator:{USERS['Administrator']}\n"
    assert os.environ.get("NTLM_USER_FILE") == previous
    assert not user_file.exists()


def test_logs_name_commands_but_never_secrets(serve, caplog: pytest.LogCaptureFixture) -> None:
    endpoint = serve(FakeHost(lambda line, stdin: ProcessResult(b"", b"", 5)))
    caplog.set_level(logging.DEBUG, logger="wuacache_lab.winrm")

    for transport in ("basic", "ntlm"):
        session(endpoint, transport).run_cmd("hostname")

    finished = [r for r in caplog.records if r.levelno == logging.INFO and "exited with 5" in r.getMessage()]
    assert len(finished) == 2 and all(r.getMessage().startswith("lab-host: command ") for r in finished)
    assert USERS["Administrator"] not in caplog.text
    assert base64.b64encode(f"administrator:{USERS['Administrator']}".encode()).decode() not in caplog.text
