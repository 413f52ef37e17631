"""HTTP authentication of the WinRM listener: Basic, and NTLM through pyspnego's acceptor.

NTLM authenticates a TCP connection, not a request: the handshake's security
context lives in a `ConnectionAuth` that the HTTP handler keeps for as long as
the client keeps the connection open, and later requests on it (encrypted with
that context, or carrying no Authorization header at all) are that user's.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import tempfile
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import spnego
from spnego.exceptions import SpnegoError

logger = logging.getLogger(__name__)

AUTH_METHODS = frozenset({"basic", "ntlm"})


class Accounts:
    """The local accounts of an emulated host; like Windows, names compare case-insensitively."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self._accounts = {name.casefold(): (name, password) for name, password in users.items()}
        if len(self._accounts) != len(users):
            raise ValueError("user names differ only by case, which Windows cannot tell apart")

    def verify(self, user: str, password: str) -> str | None:
        """The account's own spelling of its name if the password is right, else None."""
        name, expected = self._accounts.get(user.casefold(), (None, ""))
        if name is None or not hmac.compare_digest(password.encode(), expected.encode()):
            return None
        return name

    def name_of(self, user: str) -> str | None:
        name, _ = self._accounts.get(user.casefold(), (None, ""))
        return name

    def as_mapping(self) -> dict[str, str]:
        return {key: password for key, (_, password) in self._accounts.items()}

    def items(self) -> list[tuple[str, str]]:
        return list(self._accounts.values())


@dataclass(frozen=True)
class Unauthorized:
    """Reply 401 with one ``WWW-Authenticate`` header per entry."""

    challenges: tuple[str, ...]


class ConnectionAuth:
    """Authentication state of one client TCP connection."""

    def __init__(self, accounts: Accounts, methods: Collection[str]) -> None:
        self._accounts = accounts
        self._methods = frozenset(methods)
        self._ntlm: spnego.ContextProxy | None = None
        self._ntlm_user: str | None = None

    @property
    def security_context(self) -> spnego.ContextProxy | None:
        """The completed NTLM context that seals this connection's messages, if any."""
        return self._ntlm if self._ntlm_user is not None else None

    def authenticate(self, authorization: str | None) -> str | Unauthorized:
        """The account name this request runs as, or the 401 to answer instead."""
        if authorization is None:
            return self._ntlm_user or self._offer()
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "basic" and "basic" in self._methods:
            return self._basic(credentials.strip())
        if scheme.lower() in ("negotiate", "ntlm") and "ntlm" in self._methods:
            return self._ntlm_step(scheme, credentials.strip())
        return self._offer()

    def _offer(self) -> Unauthorized:
        challenges = []
        if "ntlm" in self._methods:
            challenges.append("Negotiate")
        if "basic" in self._methods:
            challenges.append('Basic realm="WSMAN"')
        return Unauthorized(tuple(challenges))

    def _basic(self, credentials: str) -> str | Unauthorized:
        try:
            user, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return self._offer()
        account = self._accounts.verify(user, password)
        if account is None:
            logger.info("Basic authentication failed for %r", user)
            return self._offer()
        return account

    def _ntlm_step(self, scheme: str, token: str) -> str | Unauthorized:
        # A new handshake may start at any time, even on an authenticated connection.
        if self._ntlm is None or self._ntlm.complete:
            self._ntlm = spnego.server(protocol="ntlm")
            self._ntlm_user = None
        try:
            reply = self._ntlm.step(base64.b64decode(token, validate=True))
        except (binascii.Error, SpnegoError) as exc:
            logger.info("NTLM authentication failed: %s", exc)
            self._ntlm = None
            return self._offer()
        if not self._ntlm.complete:
            return Unauthorized((f"{scheme} {base64.b64encode(reply or b'').decode()}",))
        # The user file only holds accounts without a domain, so this is the bare name.
        principal = self._ntlm.client_principal or ""
        self._ntlm_user = self._accounts.name_of(principal.rpartition("\\")[2])
        if self._ntlm_user is None:
            self._ntlm = None
            return self._offer()
        return self._ntlm_user


class NtlmUserFile:
    """The NTLM account file that pyspnego's acceptor reads.

    pyspnego finds it through the process-wide ``NTLM_USER_FILE`` variable, so
    all endpoints of one process that accept NTLM share one set of accounts:
    the file exists while at least one of them is running, and an endpoint
    with a different set is refused rather than silently given the wrong one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._accounts: dict[str, str] = {}
        self._path: Path | None = None
        self._previous: str | None = None

    def acquire(self, accounts: Accounts) -> None:
        with self._lock:
            if self._holders and accounts.as_mapping() != self._accounts:
                raise ValueError(
                    "endpoints accepting NTLM in one process must share one set of users "
                    "(pyspnego reads them from the process-wide NTLM_USER_FILE)"
                )
            if not self._holders:
                self._path = _write_user_file(accounts)
                self._accounts = accounts.as_mapping()
                self._previous = os.environ.get("NTLM_USER_FILE")
                os.environ["NTLM_USER_FILE"] = str(self._path)
            self._holders += 1

    def release(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders or self._path is None:
                return
            if self._previous is None:
                os.environ.pop("NTLM_USER_FILE", None)
            else:
                os.environ["NTLM_USER_FILE"] = self._previous
            self._path.unlink(missing_ok=True)
            self._path = None
            self._accounts = {}


def _write_user_file(accounts: Accounts) -> Path:
    lines = []
    for name, password in accounts.items():
        # ``:name:password`` (no domain) is the only form; a colon would turn the
        # line into smbpasswd format, a line break into two entries.
        if any(char in name + password for char in ":\r\n"):
            raise ValueError(f"user {name!r}: NTLM user names and passwords cannot contain ':' or line breaks")
        lines.append(f":{name}:{password}\n")
    fd, path = tempfile.mkstemp(prefix="wuacache-lab-ntlm-", suffix=".users")
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.writelines(lines)
    return Path(path)


NTLM_USER_FILE = NtlmUserFile()
