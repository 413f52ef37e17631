"""HTTP transfers an emulated host makes itself.

The host really fetches the bytes, through its proxy setting (which, as
.NET's ``WebProxy`` does, never applies to a loopback address), onto its own
disk, as ``HttpWebRequest`` does for the bridge: a GET, with a ``Range`` from
an offset when one is given, whose body is appended to the partial file on a
206 and replaces it on a 200. Writes fail like a full disk would.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests
import urllib3

from wuacache_lab.windows.errors import COR_E_INVALIDOPERATION, HResultError

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost

CHUNK_SIZE = 256 * 1024
TIMEOUT = (10, 60)  # connect, read (seconds)


class DownloadError(HResultError):
    """A failed transfer, as the WebException a PowerShell download raises."""

    def __init__(self, message: str) -> None:
        super().__init__(COR_E_INVALIDOPERATION, message)


@dataclass(frozen=True)
class Transfer:
    resumed: bool  # the server answered the range (206): the body was appended
    transferred: int  # bytes received


def get(host: WindowsHost, url: str, partial_path: str, *, offset: int = 0, proxy: str | None = None) -> Transfer:
    """GET ``url`` into ``partial_path`` on the host's disk, from ``offset`` when it is not 0.

    ``proxy`` defaults to the host's proxy setting. An HTTP error status (a 416
    for an offset beyond the end included) or a broken connection fails with a
    :class:`DownloadError`; what arrived before a cut stays in the file.
    """
    disk = host.disk
    profile = host.profile
    headers = {
        "User-Agent": f"Mozilla/5.0 (Windows NT; Windows NT {profile.major_version}.{profile.minor_version}; en-US) "
        f"WindowsPowerShell/5.1.{profile.build}.{profile.ubr}"
    }
    if offset > 0:
        # HttpWebRequest.AddRange(offset).
        headers["Range"] = f"bytes={offset}-"
    proxy = None if _is_loopback(url) else proxy or host.proxy
    with requests.Session() as session:
        session.trust_env = False  # the host's own proxy setting only
        proxies = {"http": proxy, "https": proxy} if proxy else {}
        try:
            response = session.get(url, headers=headers, proxies=proxies, stream=True, timeout=TIMEOUT)
        except requests.RequestException as error:
            raise DownloadError(f"Unable to connect to the remote server: {error}") from error
        with response:
            if response.status_code not in (200, 206):
                raise DownloadError(f"The remote server returned an error: ({response.status_code}) {response.reason}.")
            resumed = response.status_code == 206
            try:
                transferred = disk.write(partial_path, _as_received(response), append=resumed)
            except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
                raise DownloadError(f"The connection was closed unexpectedly: {error}") from error
    host.log.info("fetched %s (%d bytes%s)", url, transferred, f", from {offset}" if resumed else "")
    return Transfer(resumed, transferred)


def _is_loopback(url: str) -> bool:
    hostname = urlsplit(url).hostname or ""
    if hostname.casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _as_received(response: requests.Response) -> Iterator[bytes]:
    """The body as it arrives: a transfer cut short keeps on disk what came
    before the cut, as Windows' downloaders do, ready to be resumed."""
    while chunk := response.raw.read1(CHUNK_SIZE):
        yield chunk


def file_hash(host: WindowsHost, windows_path: str, algorithm: str) -> str:
    """``(Get-FileHash -Algorithm <algorithm>).Hash``, in lower case."""
    digest = hashlib.new(algorithm)
    for chunk in host.disk.read(windows_path):
        digest.update(chunk)
    return digest.hexdigest()
