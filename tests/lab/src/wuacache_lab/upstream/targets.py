"""Which Microsoft URL a request asks for, and which docroot file answers it.

The upstream is both an origin and a forward proxy. A proxied request names
the URL in full (``GET http://download.windowsupdate.com/c/... HTTP/1.1``);
an origin request gives a path and a ``Host`` header, and a loopback ``Host``
(a client that was simply pointed at the lab) means Microsoft's download
server. The docroot mirrors URLs as ``docroot/<host>/<path>``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

DEFAULT_HOST = "download.windowsupdate.com"
CATALOG_URL = "http://download.windowsupdate.com/microsoftupdate/v6/wsusscan/wsusscn2.cab"

# go.microsoft.com/fwlink/?LinkID=74689 is the documented alias of the catalog.
_FWLINK_HOST = "go.microsoft.com"
_FWLINK_PATHS = frozenset({"/fwlink", "/fwlink/", "/fwlink/p", "/fwlink/p/"})
_FWLINK_TARGETS = {"74689": CATALOG_URL}

_HOSTNAME = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*")


class BadTarget(ValueError):
    """The request target is malformed or tries to leave the docroot."""


@dataclass(frozen=True)
class RequestTarget:
    host: str
    path: str  # percent-decoded, always starts with "/"
    query: str
    raw_path: str  # as received, for the logged URL
    proxied: bool

    @property
    def url(self) -> str:
        return f"http://{self.host}{self.raw_path}" + (f"?{self.query}" if self.query else "")


def parse_target(request_target: str, host_header: str | None) -> RequestTarget:
    """Resolve a request line's target (and ``Host``) to the URL it names."""
    try:
        return _parse_target(request_target, host_header)
    except BadTarget:
        raise
    except ValueError as exc:  # bad IPv6 literal, percent-escape that is not UTF-8, ...
        raise BadTarget(f"malformed request target {request_target!r}: {exc}") from exc


def _parse_target(request_target: str, host_header: str | None) -> RequestTarget:
    proxied = not request_target.startswith("/")
    if proxied:
        parts = urlsplit(request_target)
        if parts.scheme.lower() != "http" or not parts.netloc:
            raise BadTarget(f"not an http URL: {request_target!r}")
        authority = parts.netloc
    else:
        parts = urlsplit("//placeholder" + request_target)
        authority = host_header or ""
    host = _host_of(authority)
    raw_path = parts.path or "/"
    path = unquote(raw_path, errors="strict")
    segments = path.split("/")
    if any(segment in (".", "..") for segment in segments) or "\\" in path or "\0" in path:
        raise BadTarget(f"path leaves the docroot: {raw_path!r}")
    return RequestTarget(
        host=host, path=path, query=parts.query, raw_path=raw_path, proxied=proxied
    )


def redirect_location(target: RequestTarget) -> str | None:
    """Where Microsoft redirects ``target``, for the redirects the lab knows."""
    if target.host != _FWLINK_HOST or target.path not in _FWLINK_PATHS:
        return None
    params = {name.lower(): value for name, value in parse_qsl(target.query)}
    return _FWLINK_TARGETS.get(params.get("linkid", ""))


def docroot_file(docroot: Path, target: RequestTarget) -> Path | None:
    """The file mirroring ``target``, or None when the host or file is not mirrored."""
    host_root = (docroot / target.host).resolve()
    if not host_root.is_dir():
        return None
    candidate = (host_root / target.path.lstrip("/")).resolve()
    # resolve() also follows symlinks, which must not lead out of the mirror.
    if not candidate.is_relative_to(host_root) or not candidate.is_file():
        return None
    return candidate


def _host_of(authority: str) -> str:
    hostname = urlsplit("//" + authority).hostname if authority else None
    if hostname is None or hostname == "localhost" or _is_loopback_address(hostname):
        return DEFAULT_HOST
    if not _HOSTNAME.fullmatch(hostname):
        raise BadTarget(f"not a host name: {hostname!r}")
    return hostname


def _is_loopback_address(hostname: str) -> bool:
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False
