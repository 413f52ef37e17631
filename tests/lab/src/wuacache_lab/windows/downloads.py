"""HTTP transfers an emulated host makes itself.

The host really fetches the bytes, through its proxy setting (which, as
.NET's ``WebProxy`` does, never applies to a loopback address), onto its own
disk: a partial ``<file>.part`` is resumed with ``Range``, an existing file
is only fetched again when the server says it changed (``If-Modified-Since``
from its modification time), and writes fail like a full disk would.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from email.utils import format_datetime, parsedate_to_datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests
import urllib3

from wuacache_lab.windows.errors import COR_E_INVALIDOPERATION, COR_E_SYSTEM, HResultError

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost

CHUNK_SIZE = 256 * 1024
TIMEOUT = (10, 60)  # connect, read (seconds)


class DownloadError(HResultError):
    """A failed transfer, as the WebException a PowerShell download raises."""

    HRESULT = COR_E_INVALIDOPERATION

    def __init__(self, message: str) -> None:
        super().__init__(self.HRESULT, message)


class DigestMismatch(DownloadError):
    """A complete transfer without the expected digest: an
    InvalidDataException, whose HRESULT is SystemException's."""

    HRESULT = COR_E_SYSTEM


@dataclass(frozen=True)
class DownloadResult:
    status: str  # "downloaded", "resumed" or "not_modified"
    size: int  # of the complete file
    transferred: int  # bytes received by this call


def download(
    host: WindowsHost,
    url: str,
    dest_windows_path: str,
    *,
    proxy: str | None = None,
    resume: bool = True,
    expected_sha1: str | None = None,
    expected_sha256: str | None = None,
) -> DownloadResult:
    """Fetch ``url`` to ``dest_windows_path`` on the host's disk.

    ``proxy`` defaults to the host's proxy setting. ``expected_sha1`` and
    ``expected_sha256`` (hex) are checked on the complete file; a mismatch
    deletes it.
    """
    disk = host.disk
    partial = dest_windows_path + ".part"
    disk.make_dirs(dest_windows_path.replace("/", "\\").rsplit("\\", 1)[0])
    profile = host.profile
    headers = {
        "User-Agent": f"Mozilla/5.0 (Windows NT; Windows NT {profile.major_version}.{profile.minor_version}; en-US) "
        f"WindowsPowerShell/5.1.{profile.build}.{profile.ubr}"
    }
    if disk.exists(dest_windows_path):
        headers["If-Modified-Since"] = format_datetime(disk.modified(dest_windows_path).astimezone(UTC), usegmt=True)
    offset = disk.size(partial) if resume and disk.exists(partial) else 0
    if offset:
        headers["Range"] = f"bytes={offset}-"
        # The part carries the Last-Modified of the file it began: a file changed since comes whole.
        headers["If-Range"] = format_datetime(disk.modified(partial).astimezone(UTC), usegmt=True)
    proxy = None if _is_loopback(url) else proxy or host.proxy
    with requests.Session() as session:
        session.trust_env = False  # the host's own proxy setting only
        proxies = {"http": proxy, "https": proxy} if proxy else {}
        try:
            response = session.get(url, headers=headers, proxies=proxies, stream=True, timeout=TIMEOUT)
        except requests.RequestException as error:
            raise DownloadError(f"Unable to connect to the remote server: {error}") from error
        with response:
            if response.status_code == 304:
                host.log.info("%s not modified", url)
                return DownloadResult("not_modified", disk.size(dest_windows_path), 0)
            if response.status_code == 416 and offset:
                # The partial file is not a prefix of the current one: start over.
                disk.remove(partial)
                return download(
                    host,
                    url,
                    dest_windows_path,
                    proxy=proxy,
                    resume=False,
                    expected_sha1=expected_sha1,
                    expected_sha256=expected_sha256,
                )
            if response.status_code not in (200, 206):
                raise DownloadError(f"The remote server returned an error: ({response.status_code}) {response.reason}.")
            resumed = response.status_code == 206
            last_modified = response.headers.get("Last-Modified")
            try:
                transferred = disk.write(partial, _as_received(response), append=resumed)
            except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
                raise DownloadError(f"The connection was closed unexpectedly: {error}") from error
            finally:
                if last_modified and disk.exists(partial):
                    disk.set_modified(partial, parsedate_to_datetime(last_modified))
    for algorithm, name, expected in (("sha1", "SHA-1", expected_sha1), ("sha256", "SHA-256", expected_sha256)):
        if expected is not None and file_hash(host, partial, algorithm) != expected.lower():
            disk.remove(partial)
            raise DigestMismatch(f"The file downloaded from {url} does not have the expected {name} {expected}.")
    disk.move(partial, dest_windows_path)
    if last_modified:
        disk.set_modified(dest_windows_path, parsedate_to_datetime(last_modified))
    size = disk.size(dest_windows_path)
    host.log.info("downloaded %s (%d bytes, %d transferred%s)", url, size, transferred, ", resumed" if resumed else "")
    return DownloadResult("resumed" if resumed else "downloaded", size, transferred)


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
