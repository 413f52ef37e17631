"""Which upstream hosts the server may download from.

The server requests only URLs that are in the verified catalog *and* on an
allowlisted Microsoft host, so that a host report can never make it fetch an
arbitrary URL. An entry is a host name (``download.windowsupdate.com``),
matching that host only, or ``*.`` and a domain (``*.update.microsoft.com``),
matching every name below that domain but not the domain itself.

Host names are compared after the IDNA normalisation ``requests`` applies
before connecting, so the host checked is the host contacted. URLs that
parsers may read differently (credentials, backslashes, whitespace) and IP
literals are refused outright.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

import idna

ALLOWED_SCHEMES = frozenset({"http", "https"})
WILDCARD_PREFIX = "*."

_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*")


class UrlNotAllowed(Exception):
    """A URL the server must not request, and why."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"URL not allowed ({reason}): {url!r}")
        self.url = url
        self.reason = reason


def is_allowed(url: str, allowlist: Sequence[str]) -> bool:
    """Whether ``url`` may be requested. Raises ValueError for a malformed allowlist."""
    try:
        ensure_allowed(url, allowlist)
    except UrlNotAllowed:
        return False
    return True


def ensure_allowed(url: str, allowlist: Sequence[str]) -> None:
    """Raise UrlNotAllowed unless ``url`` may be requested.

    Raises ValueError for a malformed allowlist.
    """
    entries = validate_allowlist(allowlist)
    host = _host_of(url)
    if not any(_matches(host, entry) for entry in entries):
        raise UrlNotAllowed(url, f"host {host!r} is not on the allowlist")


def validate_allowlist(allowlist: Sequence[str]) -> tuple[str, ...]:
    """The allowlist's entries normalised; ValueError names the first malformed one."""
    if isinstance(allowlist, str):
        raise ValueError("the allowlist is a list of host names, not one string")
    return tuple(_normalise_entry(entry) for entry in allowlist)


def _host_of(url: str) -> str:
    # Parsers disagree on these (urllib drops tabs and newlines, browsers read
    # a backslash as a slash), so the host checked could differ from the host
    # contacted.
    if any(char.isspace() or not char.isprintable() for char in url) or "\\" in url:
        raise UrlNotAllowed(url, "whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        if parts.port == 0:  # parsing the port raises ValueError when malformed
            raise UrlNotAllowed(url, "port 0")
    except ValueError as exc:
        raise UrlNotAllowed(url, f"malformed URL: {exc}") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise UrlNotAllowed(url, f"scheme {parts.scheme!r} is not http or https")
    if "@" in parts.netloc:
        raise UrlNotAllowed(url, "credentials in the URL")
    if not parts.hostname:
        raise UrlNotAllowed(url, "no host")
    try:
        return _normalise_host(parts.hostname)
    except ValueError as exc:
        raise UrlNotAllowed(url, str(exc)) from None


def _normalise_entry(entry: str) -> str:
    if not isinstance(entry, str):
        raise ValueError(f"allowlist entry {entry!r} is not a string")
    wildcard = entry.startswith(WILDCARD_PREFIX)
    domain = entry.removeprefix(WILDCARD_PREFIX) if wildcard else entry
    try:
        host = _normalise_host(domain)
    except ValueError as exc:
        raise ValueError(f"allowlist entry {entry!r}: {exc}") from None
    if wildcard and "." not in host:
        raise ValueError(f"allowlist entry {entry!r} would match a whole top-level domain")
    return WILDCARD_PREFIX + host if wildcard else host


def _normalise_host(host: str) -> str:
    """The ASCII, lowercase form of a host name; ValueError for anything else."""
    host = host.removesuffix(".")  # the fully qualified form names the same host
    if not host.isascii():
        try:
            # As requests does before connecting (requests.models.PreparedRequest).
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise ValueError(f"host {host!r} is not a valid internationalised name: {exc}") from None
    host = host.lower()
    if _is_ip_literal(host):
        raise ValueError(f"host {host!r} is an IP address")
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"host {host!r} is not a valid host name")
    return host


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        # URL parsers and resolvers also read "127.1", "0x7f.1" or "2130706433"
        # as IPv4 addresses: a name whose last label is a number is one.
        return bool(_NUMBER.fullmatch(host.rsplit(".", 1)[-1]))
    return True


def _matches(host: str, entry: str) -> bool:
    if entry.startswith(WILDCARD_PREFIX):
        return host.endswith(entry[1:])  # ".domain": strictly below it
    return host == entry
