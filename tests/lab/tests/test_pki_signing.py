"""The lab CA, its certificates, and Authenticode signing of cabinets."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from datetime import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from wuacache_lab.cabfile import CabWriter
from wuacache_lab.pki import LabCA, ensure_lab_ca, ensure_server_certificate
from wuacache_lab.signing import SigningError, sign_cab, verify_cab


@pytest.fixture(scope="module")
def lab_ca(tmp_path_factory: pytest.TempPathFactory) -> LabCA:
    return ensure_lab_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def foreign_ca(tmp_path_factory: pytest.TempPathFactory) -> LabCA:
    return ensure_lab_ca(tmp_path_factory.mktemp("foreign-ca"), name="foreign")


@pytest.fixture(scope="module")
def unsigned_cab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cab = tmp_path_factory.mktemp("unsigned") / "wsusscn2.cab"
    with CabWriter(cab) as writer:
        writer.add("index.xml", b'<INDEX VERSION="1"/>', modified=datetime(2024, 1, 9))
        writer.add("package.cab", bytes(range(256)) * 300, modified=datetime(2024, 1, 9))
    return cab


@pytest.fixture(scope="module")
def signed_cab(tmp_path_factory: pytest.TempPathFactory, unsigned_cab: Path, lab_ca: LabCA) -> Path:
    signed = tmp_path_factory.mktemp("signed") / "wsusscn2.cab"
    sign_cab(unsigned_cab, signed, lab_ca.codesign_cert, lab_ca.codesign_key)
    return signed


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_ca_is_kept_once_created(tmp_path: Path) -> None:
    first = ensure_lab_ca(tmp_path)
    contents = {path: path.read_bytes() for path in tmp_path.iterdir()}
    second = ensure_lab_ca(tmp_path)
    assert second == first
    assert {path: path.read_bytes() for path in tmp_path.iterdir()} == contents
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ca.key", "ca.pem", "codesign.key", "codesign.pem"]
    assert first.ca_key.stat().st_mode & 0o077 == 0


def test_codesign_certificate_is_issued_by_the_ca(lab_ca: LabCA) -> None:
    ca_cert = load_cert(lab_ca.ca_cert)
    codesign = load_cert(lab_ca.codesign_cert)
    codesign.verify_directly_issued_by(ca_cert)
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not codesign.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = codesign.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CODE_SIGNING]
    key = serialization.load_pem_private_key(lab_ca.codesign_key.read_bytes(), password=None)
    assert key.public_key() == codesign.public_key()


def test_server_certificate_is_trusted_through_the_lab_ca_only(
    tmp_path: Path, lab_ca: LabCA, foreign_ca: LabCA
) -> None:
    server_cert = ensure_server_certificate(lab_ca.directory, ["127.0.0.1", "localhost"], name="tls-test")
    usage = load_cert(server_cert.cert).extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]

    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(*server_cert)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)
        port = listener.getsockname()[1]

        def serve(connections: int) -> None:
            for _ in range(connections):
                raw, _ = listener.accept()
                try:
                    with server_context.wrap_socket(raw, server_side=True) as tls:
                        tls.sendall(b"hello")
                except (ssl.SSLError, OSError):
                    pass

        server = threading.Thread(target=serve, args=(3,))
        server.start()
        try:
            for host in ("127.0.0.1", "localhost"):
                trusting = ssl.create_default_context(cafile=lab_ca.ca_cert)
                with (
                    socket.create_connection(("127.0.0.1", port)) as raw,
                    trusting.wrap_socket(raw, server_hostname=host) as tls,
                ):
                    assert tls.recv(5) == b"hello"
            foreign = ssl.create_default_context(cafile=foreign_ca.ca_cert)
            with (
                socket.create_connection(("127.0.0.1", port)) as raw,
                pytest.raises(ssl.SSLCertVerificationError),
            ):
                foreign.wrap_socket(raw, server_hostname="127.0.0.1")
        finally:
            server.join(timeout=10)
    assert not server.is_alive()


def test_server_certificate_is_reissued_only_for_other_names(lab_ca: LabCA) -> None:
    first = ensure_server_certificate(lab_ca.directory, ["127.0.0.2", "127.0.0.3"], name="reuse")
    issued = first.cert.read_bytes()
    assert ensure_server_certificate(lab_ca.directory, ["127.0.0.3", "127.0.0.2"], name="reuse") == first
    assert first.cert.read_bytes() == issued

    ensure_server_certificate(lab_ca.directory, ["127.0.0.2", "127.0.0.4"], name="reuse")
    names = load_cert(first.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.2", "127.0.0.4"]


def test_signed_cab_verifies_against_the_lab_ca(signed_cab: Path, lab_ca: LabCA) -> None:
    assert verify_cab(signed_cab, lab_ca.ca_cert)
    # Independently of the wrapper: osslsigncode itself accepts it.
    result = subprocess.run(
        ["osslsigncode", "verify", "-ignore-cdp", "-in", str(signed_cab), "-CAfile", str(lab_ca.ca_cert)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Message digest algorithm  : SHA256" in result.stdout


def test_signed_cab_still_extracts(tmp_path: Path, signed_cab: Path) -> None:
    result = subprocess.run(
        ["cabextract", "-q", "-d", str(tmp_path), str(signed_cab)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "package.cab").read_bytes() == bytes(range(256)) * 300


def test_signature_from_another_ca_is_rejected(signed_cab: Path, foreign_ca: LabCA) -> None:
    assert not verify_cab(signed_cab, foreign_ca.ca_cert)


def test_unsigned_cab_is_rejected(unsigned_cab: Path, lab_ca: LabCA) -> None:
    assert not verify_cab(unsigned_cab, lab_ca.ca_cert)


def test_corrupted_cab_is_rejected(tmp_path: Path, signed_cab: Path, lab_ca: LabCA) -> None:
    corrupted = tmp_path / "corrupted.cab"
    data = bytearray(signed_cab.read_bytes())
    data[len(data) // 3] ^= 0xFF
    corrupted.write_bytes(bytes(data))
    assert not verify_cab(corrupted, lab_ca.ca_cert)


def test_signing_with_a_key_of_another_certificate_fails(
    tmp_path: Path, unsigned_cab: Path, lab_ca: LabCA, foreign_ca: LabCA
) -> None:
    with pytest.raises(SigningError, match="could not sign"):
        sign_cab(unsigned_cab, tmp_path / "signed.cab", lab_ca.codesign_cert, foreign_ca.codesign_key)
    assert list(tmp_path.iterdir()) == []


def test_missing_inputs_are_reported(tmp_path: Path, unsigned_cab: Path, lab_ca: LabCA) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.pem"):
        sign_cab(unsigned_cab, tmp_path / "signed.cab", tmp_path / "missing.pem", lab_ca.codesign_key)
    with pytest.raises(FileNotFoundError, match=r"absent\.cab"):
        verify_cab(tmp_path / "absent.cab", lab_ca.ca_cert)
