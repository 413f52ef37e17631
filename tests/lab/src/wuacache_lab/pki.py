"""The lab's throwaway certificate authority.

Everything the lab signs or serves over TLS chains to one self-signed CA kept
in a directory: the code-signing certificate that signs ``wsusscn2.cab`` (the
stand-in for Microsoft's code-signing chain) and the TLS server certificate
of the HTTPS WinRM endpoints and of the wuacache server. Lab hosts and
servers trust that CA and nothing else, so a cab signed by any other CA fails
verification as a foreign one would on Windows.

Keys are unencrypted PEM files: they protect nothing outside the lab.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
CODESIGN_CERT = "codesign.pem"
CODESIGN_KEY = "codesign.key"
SERVER_NAME = "server"

_KEY_SIZE = 2048
# Start validity a day early so clock skew between lab processes never makes
# a fresh certificate "not yet valid".
_BACKDATE = datetime.timedelta(days=1)
_CA_LIFETIME = datetime.timedelta(days=3650)
_LEAF_LIFETIME = datetime.timedelta(days=825)


@dataclass(frozen=True)
class LabCA:
    """Paths of the lab CA and of its code-signing certificate and key."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    codesign_cert: Path
    codesign_key: Path


class ServerCertificate(NamedTuple):
    """Paths of a TLS server certificate (leaf then CA) and of its key, in
    the order ``ssl.SSLContext.load_cert_chain`` takes them."""

    cert: Path
    key: Path


def ensure_lab_ca(ca_dir: str | os.PathLike[str], *, name: str = "wuacache lab") -> LabCA:
    """Create the lab CA and its code-signing certificate in ``ca_dir``,
    keeping whatever already exists there.

    ``name`` goes into the subjects, so two CAs made for one test can be told
    apart in verification messages.
    """
    directory = Path(ca_dir)
    directory.mkdir(parents=True, exist_ok=True)
    ca = LabCA(
        directory=directory,
        ca_cert=directory / CA_CERT,
        ca_key=directory / CA_KEY,
        codesign_cert=directory / CODESIGN_CERT,
        codesign_key=directory / CODESIGN_KEY,
    )
    new_ca = not (ca.ca_cert.exists() and ca.ca_key.exists())
    if new_ca:
        key = _new_key()
        subject = _name(f"{name} root CA")
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_key(ca.ca_key, key)
        _write_certs(ca.ca_cert, [cert])
    if new_ca or not (ca.codesign_cert.exists() and ca.codesign_key.exists()):
        key = _new_key()
        cert = _issue(
            ca,
            key,
            subject=_name(f"{name} code signing"),
            extended_usage=ExtendedKeyUsageOID.CODE_SIGNING,
            key_encipherment=False,
        )
        _write_key(ca.codesign_key, key)
        _write_certs(ca.codesign_cert, [cert])
    return ca


def ensure_server_certificate(
    ca_dir: str | os.PathLike[str],
    names: Sequence[str],
    *,
    name: str = SERVER_NAME,
) -> ServerCertificate:
    """A TLS server certificate of the lab CA in ``ca_dir`` for ``names``
    (IP addresses and DNS names), as ``<name>.pem`` and ``<name>.key``.

    An existing certificate is kept when the current CA issued it for exactly
    these names; otherwise a new one replaces it.
    """
    if not names:
        raise ValueError("a server certificate needs at least one DNS name or IP address")
    ca = ensure_lab_ca(ca_dir)
    wanted = {_alternative_name(entry) for entry in names}
    result = ServerCertificate(cert=ca.directory / f"{name}.pem", key=ca.directory / f"{name}.key")
    if result.cert.exists() and result.key.exists() and _covers(result.cert, ca, wanted):
        return result
    key = _new_key()
    cert = _issue(
        ca,
        key,
        subject=_name(names[0]),
        extended_usage=ExtendedKeyUsageOID.SERVER_AUTH,
        key_encipherment=True,
        alternative_names=[_alternative_name(entry) for entry in names],
    )
    _write_key(result.key, key)
    _write_certs(result.cert, [cert, x509.load_pem_x509_certificate(ca.ca_cert.read_bytes())])
    return result


def _alternative_name(entry: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(entry))
    except ValueError:
        return x509.DNSName(entry)


def _covers(cert_file: Path, ca: LabCA, names: set[x509.GeneralName]) -> bool:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    ca_cert = x509.load_pem_x509_certificate(ca.ca_cert.read_bytes())
    try:
        cert.verify_directly_issued_by(ca_cert)
        present = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return set(present) == names and cert.not_valid_after_utc > _now()


def _issue(
    ca: LabCA,
    key: rsa.RSAPrivateKey,
    *,
    subject: x509.Name,
    extended_usage: x509.ObjectIdentifier,
    key_encipherment: bool,
    alternative_names: Sequence[x509.GeneralName] = (),
) -> x509.Certificate:
    ca_cert = x509.load_pem_x509_certificate(ca.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.ca_key.read_bytes(), password=None)
    if not isinstance(ca_key, rsa.RSAPrivateKey):
        raise ValueError(f"{ca.ca_key} is not an RSA private key")
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(min(now + _LEAF_LIFETIME, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=key_encipherment,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([extended_usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if alternative_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _new_key() -> rsa.RSAPrivateKey:
    # RSA rather than ECDSA: Authenticode tooling and WinRM's TLS stacks all
    # accept it.
    return rsa.generate_private_key(public_exponent=65537, key_size=_KEY_SIZE)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wuacache lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomically(path, pem, mode=0o600)


def _write_certs(path: Path, certs: Sequence[x509.Certificate]) -> None:
    pem = b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)
    _write_atomically(path, pem, mode=0o644)


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``path`` so that a concurrent reader never sees a partial file."""
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.chmod(partial, mode)
        os.replace(partial, path)
    except BaseException:
        os.unlink(partial)
        raise
