"""Download one update file: verified, resumable, never published unless correct.

The body streams to ``<dest_dir>/.partial/<file_name>.part`` (a folder hosts
are never served) while its SHA-1, and SHA-256 when the catalog gives one, are
computed. A broken transfer is resumed with ``Range`` and ``If-Range``, the
validator kept in a small sidecar next to the part, so that it also resumes
after a restart. Only a file whose size and digests match the catalog is
moved, fsync'd, to ``<dest_dir>/<file_name>``: the flat name hosts request.

Retries back off exponentially, and only on failures a retry can cure:
connection errors, timeouts, 429 and 5xx answers, truncated bodies and wrong
bytes (which a CDN node sometimes serves).
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urljoin

import requests
import urllib3

from .allowlist import ensure_allowed

logger = logging.getLogger(__name__)

PARTIAL_DIR = ".partial"
PART_SUFFIX = ".part"
VALIDATOR_SUFFIX = ".part.json"
MAX_REDIRECTS = 5
TIMEOUT = (10, 60)  # seconds: connect, and between two reads of the body
CHUNK_SIZE = 256 * 1024
PROGRESS_INTERVAL = 0.5  # seconds between two progress reports

SHA1_SIZE = 20
SHA256_SIZE = 32
MAX_FILE_NAME_LENGTH = 200  # leaves room for the partial's suffixes in 255 bytes
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")

Progress = Callable[[int, int | None], None]


class DownloadError(Exception):
    """A download that failed; ``retryable`` tells whether trying again may help."""

    retryable = False


class TransferError(DownloadError):
    """The connection failed, timed out or ended before the whole body came."""

    retryable = True


class HttpStatusError(DownloadError):
    """The upstream answered an error status."""

    def __init__(self, url: str, status: int, reason: str) -> None:
        super().__init__(f"{url} answered {status} {reason}".rstrip())
        self.url = url
        self.status = status
        self.retryable = status == 429 or status >= 500


class SizeMismatch(DownloadError):
    """The upstream's file does not have the size the catalog gives."""

    retryable = True


class DigestMismatch(DownloadError):
    """The bytes received do not have the digest the catalog gives."""

    retryable = True

    def __init__(self, file_name: str, algorithm: str, expected: str, actual: str) -> None:
        super().__init__(f"{file_name}: {algorithm} is {actual}, expected {expected}")
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual


class TooManyRedirects(DownloadError):
    """More than MAX_REDIRECTS redirects."""


class DownloadInProgress(DownloadError):
    """Another download of the same file holds its partial file."""


class DownloadCanceled(DownloadError):
    """The cancel event was set; the partial file is kept for a later resume."""


@dataclass(frozen=True)
class DownloadResult:
    path: Path  # the published file
    size: int
    bytes_transferred: int  # body bytes received by this call, over all attempts
    attempts: int
    resumed: bool  # whether bytes of an earlier transfer were kept


@dataclass(frozen=True)
class ExpectedContent:
    """What the catalog says a file is: its digests, and its size when known."""

    sha1: bytes
    sha256: bytes | None = None
    size: int | None = None

    @classmethod
    def from_catalog(cls, sha1_b64: str, sha256_b64: str | None = None, size: int | None = None) -> ExpectedContent:
        """From the catalog's base64 digests; ValueError when they are malformed."""
        if size is not None and size < 0:
            raise ValueError(f"negative file size {size}")
        return cls(
            sha1=_decode_digest(sha1_b64, SHA1_SIZE, "SHA-1"),
            sha256=None if sha256_b64 is None else _decode_digest(sha256_b64, SHA256_SIZE, "SHA-256"),
            size=size,
        )


def validate_file_name(file_name: str) -> str:
    """``file_name`` if it is a safe flat name in the repository; ValueError otherwise."""
    if len(file_name) > MAX_FILE_NAME_LENGTH:
        raise ValueError(f"file name longer than {MAX_FILE_NAME_LENGTH} characters")
    if not _FILE_NAME.fullmatch(file_name):
        raise ValueError(
            f"file name {file_name!r} must start with a letter or digit and contain"
            " only letters, digits, '.', '_' and '-'"
        )
    return file_name


def file_matches(path: Path, expected: ExpectedContent) -> bool:
    """Whether the file at ``path`` exists and has the expected size and digests."""
    try:
        with open(path, "rb") as file:
            if expected.size is not None and os.fstat(file.fileno()).st_size != expected.size:
                return False
            hashes = _Hashes(expected)
            hashes.update_from(file)
    except FileNotFoundError:
        return False
    return hashes.mismatch() is None


def new_session() -> requests.Session:
    """A session for upstream downloads: the proxy comes from settings, never the environment."""
    session = requests.Session()
    session.trust_env = False
    session.headers["User-Agent"] = f"wuacache-server/{version('wuacache-server')}"
    return session


def download(
    url: str,
    *,
    dest_dir: Path,
    file_name: str,
    sha1_b64: str,
    sha256_b64: str | None = None,
    size: int | None = None,
    allowlist: Sequence[str],
    session: requests.Session,
    proxy: str | None = None,
    retries: int = 3,
    backoff: float = 60.0,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> DownloadResult:
    """Download ``url`` to ``dest_dir/file_name`` and return what it took.

    Args:
        url: the catalog's URL of the file; it and every redirect must be
            allowlisted.
        dest_dir: the flat repository folder the file is published in.
        file_name: the name hosts will request.
        sha1_b64, sha256_b64, size: what the catalog says the file is.
        allowlist: the upstream hosts that may be contacted.
        session: the HTTP session; see new_session().
        proxy: the HTTP proxy for every request, if any.
        retries: attempts after the first one, for retryable failures.
        backoff: seconds before the first retry, doubled for each next one.
        progress: called with (bytes of the file received, total bytes if
            known) at most every PROGRESS_INTERVAL seconds, and at the end.
        cancel: when set, the download stops and raises DownloadCanceled.

    Raises:
        ValueError: a malformed file name, digest or size.
        UrlNotAllowed: the URL, or a redirect, is not allowlisted.
        DigestMismatch, SizeMismatch: the upstream kept serving wrong bytes;
            nothing was published and the partial file is removed.
        DownloadError: any other failure, the last one if it was retried.
    """
    validate_file_name(file_name)
    expected = ExpectedContent.from_catalog(sha1_b64, sha256_b64, size)
    if retries < 0 or backoff < 0:
        raise ValueError("retries and backoff must not be negative")
    ensure_allowed(url, allowlist)
    partial_dir = Path(dest_dir) / PARTIAL_DIR
    partial_dir.mkdir(parents=True, exist_ok=True)
    transfer = _Transfer(
        url,
        expected,
        allowlist=allowlist,
        session=session,
        proxies={"http": proxy, "https": proxy} if proxy else {},
        progress=_ProgressReporter(progress),
        cancel=cancel or threading.Event(),
    )
    with _PartialFile.acquire(partial_dir, file_name) as partial:
        return transfer.run(partial, Path(dest_dir) / file_name, retries=retries, backoff=backoff)


class _Transfer:
    """One download() call: its attempts and what they transferred."""

    def __init__(
        self,
        url: str,
        expected: ExpectedContent,
        *,
        allowlist: Sequence[str],
        session: requests.Session,
        proxies: dict[str, str],
        progress: _ProgressReporter,
        cancel: threading.Event,
    ) -> None:
        self.url = url
        self.expected = expected
        self.allowlist = allowlist
        self.session = session
        self.proxies = proxies
        self.progress = progress
        self.cancel = cancel
        self.bytes_transferred = 0
        self.resumed = False

    def run(self, partial: _PartialFile, target: Path, *, retries: int, backoff: float) -> DownloadResult:
        started = time.monotonic()
        logger.info(
            "Downloading %s to %s (%s bytes expected)",
            self.url,
            target.name,
            "unknown" if self.expected.size is None else self.expected.size,
        )
        attempt = 0
        try:
            while True:
                if self.cancel.is_set():
                    raise DownloadCanceled(f"{target.name}: canceled")
                attempt += 1
                try:
                    self._attempt(partial)
                    break
                except DownloadError as exc:
                    if not exc.retryable or attempt > retries:
                        raise
                    delay = backoff * 2 ** (attempt - 1)
                    logger.warning("%s: attempt %d failed (%s); retrying in %.1f s", target.name, attempt, exc, delay)
                    self.cancel.wait(delay)
        except DownloadCanceled:
            logger.info("%s: canceled; %d bytes kept for a later resume", target.name, partial.size())
            raise
        except DownloadError as exc:
            logger.warning(
                "%s: download failed after %d attempt(s), %d bytes transferred: %s",
                target.name,
                attempt,
                self.bytes_transferred,
                exc,
            )
            raise
        file_size = partial.publish(target)
        logger.info(
            "Downloaded %s: %d bytes in %.1f s (%d transferred, %d attempt(s)%s)",
            target.name,
            file_size,
            time.monotonic() - started,
            self.bytes_transferred,
            attempt,
            ", resumed" if self.resumed else "",
        )
        return DownloadResult(target, file_size, self.bytes_transferred, attempt, self.resumed)

    def _attempt(self, partial: _PartialFile) -> None:
        """Bring the partial file to the complete, verified file, or raise."""
        expected = self.expected
        offset = partial.size()
        if_range = partial.read_validator()
        if offset and (if_range is None or (expected.size is not None and offset > expected.size)):
            partial.discard()  # cannot be resumed safely
            offset = 0
        hashes = _Hashes(expected)
        if offset:
            partial.hash_into(hashes)
        if offset and offset == expected.size:
            # Complete, but not published before the previous run stopped.
            self.resumed = True
            self._verify(partial, hashes)
            return

        response = self._request(_range_headers(offset, if_range))
        if response.status_code == 416 and offset:
            response.close()
            logger.info("%s: the upstream refused to resume at byte %d; starting over", partial.name, offset)
            partial.discard()
            offset = 0
            hashes = _Hashes(expected)
            response = self._request({})
        with response:
            if response.status_code == 206:
                total = self._resume_total(response, offset, partial)
                self.resumed = True
            elif response.status_code == 200:
                if offset:
                    logger.info("%s: the upstream file changed; starting over", partial.name)
                    partial.discard()
                    offset = 0
                    hashes = _Hashes(expected)
                partial.write_validator(_validator(response))
                total = _content_length(response)
            else:
                raise HttpStatusError(response.url, response.status_code, response.reason or "")
            if total is not None and expected.size is not None and total != expected.size:
                partial.discard()
                raise SizeMismatch(f"{partial.name}: the upstream has {total} bytes, expected {expected.size}")
            self._receive(response, partial, hashes, offset, total)
        self._verify(partial, hashes)

    def _request(self, headers: dict[str, str]) -> requests.Response:
        """GET the URL, following allowlisted redirects only."""
        url = self.url
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = self.session.get(
                    url,
                    headers={"Accept-Encoding": "identity", **headers},
                    proxies=self.proxies,
                    stream=True,
                    allow_redirects=False,
                    timeout=TIMEOUT,
                )
            except requests.RequestException as exc:
                raise TransferError(f"{url}: {exc}") from exc
            location = self.session.get_redirect_target(response)
            if location is None:
                return response
            response.close()
            next_url = urljoin(url, location)
            ensure_allowed(next_url, self.allowlist)  # before any request to it
            logger.info("%s redirects to %s", url, next_url)
            url = next_url
        raise TooManyRedirects(f"{self.url}: more than {MAX_REDIRECTS} redirects")

    def _resume_total(self, response: requests.Response, offset: int, partial: _PartialFile) -> int | None:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        if match is None or int(match[1]) != offset:
            partial.discard()
            raise TransferError(
                f"{response.url}: asked for bytes from {offset}, got Content-Range "
                f"{response.headers.get('Content-Range')!r}"
            )
        return None if match[3] == "*" else int(match[3])

    def _receive(
        self,
        response: requests.Response,
        partial: _PartialFile,
        hashes: _Hashes,
        offset: int,
        total: int | None,
    ) -> None:
        """Append the body to the partial file, hashing it, until it ends."""
        limit = self.expected.size if self.expected.size is not None else total
        while True:
            if self.cancel.is_set():
                raise DownloadCanceled(f"{partial.name}: canceled at byte {offset}")
            try:
                # read1 returns what has arrived, so that a slow transfer still
                # reports progress and notices cancellation.
                chunk = response.raw.read1(CHUNK_SIZE, decode_content=False)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise TransferError(f"{response.url}: transfer broken at byte {offset}: {exc}") from exc
            if not chunk:
                break
            self.bytes_transferred += len(chunk)
            if limit is not None and offset + len(chunk) > limit:
                partial.discard()
                raise SizeMismatch(f"{partial.name}: the upstream sent more than {limit} bytes")
            partial.append(chunk)
            hashes.update(chunk)
            offset += len(chunk)
            self.progress.report(offset, limit)
        self.progress.report(offset, limit, final=True)
        if limit is not None and offset < limit:
            raise TransferError(f"{response.url}: the body ended at byte {offset} of {limit}")

    def _verify(self, partial: _PartialFile, hashes: _Hashes) -> None:
        mismatch = hashes.mismatch()
        if mismatch is not None:
            partial.discard()
            algorithm, expected, actual = mismatch
            raise DigestMismatch(partial.name, algorithm, expected, actual)


class _Hashes:
    """The digests of the bytes seen so far, compared with the expected ones."""

    def __init__(self, expected: ExpectedContent) -> None:
        self._expected = expected
        self._sha1 = hashlib.sha1()
        self._sha256 = hashlib.sha256() if expected.sha256 is not None else None

    def update(self, data: bytes) -> None:
        self._sha1.update(data)
        if self._sha256 is not None:
            self._sha256.update(data)

    def update_from(self, file: BinaryIO) -> None:
        while chunk := file.read(CHUNK_SIZE):
            self.update(chunk)

    def mismatch(self) -> tuple[str, str, str] | None:
        """(algorithm, expected, actual) in base64 for the first digest that differs."""
        checks = [("SHA-1", self._expected.sha1, self._sha1)]
        if self._sha256 is not None and self._expected.sha256 is not None:
            checks.append(("SHA-256", self._expected.sha256, self._sha256))
        for algorithm, expected, hasher in checks:
            actual = hasher.digest()
            if actual != expected:
                return algorithm, _b64(expected), _b64(actual)
        return None


class _PartialFile:
    """``.partial/<name>.part`` and its validator sidecar, locked by one download.

    The lock (flock on the part file) keeps two processes, a scheduled fetch
    and a command-line one, from interleaving their writes. A part restarted
    from scratch is truncated in place, so the lock is never lost.
    """

    def __init__(self, file: BinaryIO, path: Path) -> None:
        self._file = file
        self.path = path
        self.name = path.name.removesuffix(PART_SUFFIX)
        self._validator_path = path.with_name(self.name + VALIDATOR_SUFFIX)

    @classmethod
    @contextmanager
    def acquire(cls, partial_dir: Path, file_name: str) -> Iterator[_PartialFile]:
        path = partial_dir / (file_name + PART_SUFFIX)
        with open(path, "a+b") as file:  # appends, whatever the position reads use
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DownloadInProgress(f"{file_name} is being downloaded by another process") from None
            partial = cls(file, path)
            try:
                yield partial
            finally:
                if not file.closed and partial.size() == 0:
                    partial.remove()  # nothing worth resuming

    def size(self) -> int:
        self._file.flush()
        return os.fstat(self._file.fileno()).st_size

    def hash_into(self, hashes: _Hashes) -> None:
        self._file.seek(0)
        hashes.update_from(self._file)

    def append(self, data: bytes) -> None:
        self._file.write(data)

    def discard(self) -> None:
        """Forget the bytes received so far."""
        self._file.truncate(0)
        self._validator_path.unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete the part and its sidecar; the lock ends with close."""
        self.path.unlink(missing_ok=True)
        self._validator_path.unlink(missing_ok=True)

    def read_validator(self) -> str | None:
        """The ETag or Last-Modified the bytes so far were sent with, for If-Range."""
        try:
            with open(self._validator_path, encoding="utf-8") as file:
                value = json.loads(file.read(4096)).get("if_range")
        except (OSError, ValueError, AttributeError):
            return None  # missing or damaged: the part is not resumable
        return value if isinstance(value, str) and value.isprintable() else None

    def write_validator(self, value: str | None) -> None:
        if value is None:
            self._validator_path.unlink(missing_ok=True)
            return
        tmp = self._validator_path.with_name(self._validator_path.name + ".tmp")
        tmp.write_text(json.dumps({"if_range": value}), encoding="utf-8")
        os.replace(tmp, self._validator_path)

    def publish(self, target: Path) -> int:
        """Move the verified part to ``target`` durably; returns its size."""
        self._file.flush()
        os.fsync(self._file.fileno())
        size = os.fstat(self._file.fileno()).st_size
        os.replace(self.path, target)
        _fsync_dir(target.parent)
        self._validator_path.unlink(missing_ok=True)
        self._file.close()
        return size


class _ProgressReporter:
    """Calls the progress callback at most every PROGRESS_INTERVAL seconds."""

    def __init__(self, callback: Progress | None) -> None:
        self._callback = callback
        self._last = -math.inf  # the first bytes are reported at once

    def report(self, done: int, total: int | None, *, final: bool = False) -> None:
        if self._callback is None:
            return
        now = time.monotonic()
        if final or now - self._last >= PROGRESS_INTERVAL:
            self._last = now
            self._callback(done, total)


def _range_headers(offset: int, if_range: str | None) -> dict[str, str]:
    if not offset or if_range is None:
        return {}
    # If-Range: the server sends the whole file (200) if it changed since.
    return {"Range": f"bytes={offset}-", "If-Range": if_range}


def _validator(response: requests.Response) -> str | None:
    """The validator If-Range may use: a strong ETag, else Last-Modified (RFC 9110 13.1.5)."""
    etag = response.headers.get("ETag")
    if etag and etag.startswith('"'):
        return etag
    return response.headers.get("Last-Modified")


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


def _decode_digest(value: str, length: int, algorithm: str) -> bytes:
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{algorithm} digest {value!r} is not base64") from None
    if len(digest) != length:
        raise ValueError(f"{algorithm} digest {value!r} is not {length} bytes long")
    return digest


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
