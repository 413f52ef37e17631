"""Authenticode signing and verification of cabinets with ``osslsigncode``.

WUA runs WinVerifyTrust on scan packages and refuses unsigned ones; the lab
signs its catalog with the lab CA's code-signing certificate (SHA-256 only,
as Microsoft has since 2020) and verifies against a pinned CA file, the same
check the wuacache server makes against Microsoft's roots.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

OSSLSIGNCODE = "osslsigncode"


class SigningError(RuntimeError):
    """osslsigncode is missing or refused to sign."""


def sign_cab(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    cert: str | os.PathLike[str],
    key: str | os.PathLike[str],
) -> None:
    """Write to ``dst`` a copy of cabinet ``src`` signed with the PEM ``cert``
    and ``key``. ``dst`` appears atomically and may equal ``src``."""
    source, destination = Path(src), Path(dst)
    for path in (source, Path(cert), Path(key)):
        if not path.is_file():
            raise FileNotFoundError(f"cannot sign {source}: {path} does not exist")
    # osslsigncode refuses to overwrite its output: sign into a fresh
    # directory next to the destination, then move the result into place.
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".signing-") as scratch:
        signed = Path(scratch, destination.name)
        result = _run(
            "sign", "-h", "sha256", "-certs", str(cert), "-key", str(key), "-in", str(source), "-out", str(signed)
        )
        if result.returncode != 0:
            raise SigningError(f"osslsigncode could not sign {source}: {_output(result)}")
        signed.chmod(0o644)
        os.replace(signed, destination)


def verify_cab(path: str | os.PathLike[str], ca_file: str | os.PathLike[str]) -> bool:
    """Whether cabinet ``path`` carries a valid Authenticode signature chaining
    to a certificate in ``ca_file`` (and nothing else)."""
    for required in (Path(path), Path(ca_file)):
        if not required.is_file():
            raise FileNotFoundError(f"cannot verify {path}: {required} does not exist")
    # -ignore-cdp: never fetch CRLs; the lab has no network beyond loopback.
    return _run("verify", "-ignore-cdp", "-in", str(path), "-CAfile", str(ca_file)).returncode == 0


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which(OSSLSIGNCODE)
    if executable is None:
        raise SigningError(f"{OSSLSIGNCODE} is not installed (Debian package 'osslsigncode')")
    return subprocess.run(
        [executable, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )


def _output(result: subprocess.CompletedProcess[str]) -> str:
    # Keep osslsigncode's own messages, not the OpenSSL error stack after them.
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines()]
    messages = [line for line in lines if line and ":error:" not in line]
    return "; ".join(messages) or f"exit status {result.returncode}"
