"""Keep ``<repository>/wua/wsusscn2.cab`` in step with Microsoft's offline catalog.

A sync asks upstream with a conditional GET whether the catalog changed and
only then streams it into a temporary file next to the published one. That
file is published only once it passed every check: its announced length, an
integrity test of every member (``cabextract -t``) and its Authenticode
signature against the pinned CA bundle (``osslsigncode verify``), and what
the caller checks before it is served (the server imports its catalog).
Publishing is an atomic rename followed by the ``.sha256`` sidecar, so hosts
never see a partial or unverified cab, and a failed sync leaves the previous
one served.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Literal
from urllib.parse import urljoin

import requests

from wuacache_server.fetch.allowlist import is_allowed
from wuacache_server.filelock import try_lock
from wuacache_server.httpdate import parse_http_date

logger = logging.getLogger(__name__)

WUA_DIR = "wua"
CAB_NAME = "wsusscn2.cab"
SIDECAR_NAME = f"{CAB_NAME}.sha256"
LOCK_NAME = ".cabsync.lock"
PART_NAME = f".{CAB_NAME}.part"

MAX_REDIRECTS = 5
# Microsoft's cab is about 1 GB: a larger answer is a runaway upstream, not a
# catalog, and must not fill the repository's disk.
MAX_CAB_SIZE = 8 * 1024**3
CONNECT_TIMEOUT = 30.0  # seconds
READ_TIMEOUT = 120.0  # seconds without a byte before the download is abandoned
CHUNK_SIZE = 1024 * 1024
PROGRESS_LOG_INTERVAL = 10.0  # seconds

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# The lines of cabextract's and osslsigncode's output that say what went wrong.
_TOOL_COMPLAINT = re.compile(r"error|fail|no signature|no valid|unable|truncated", re.IGNORECASE)

SyncStatus = Literal["finished", "unchanged", "failed"]
SyncReason = Literal["missing", "newer", "forced", "unchanged"]
ProgressCallback = Callable[[int, int | None], None]
AcceptCallback = Callable[[Path, str], None]


@dataclass(frozen=True)
class CabState:
    """What identifies a published cab: upstream's validators and its digest.

    ``last_modified`` is kept as the HTTP-date upstream sent, so that it goes
    back verbatim in ``If-Modified-Since`` as RFC 9110 recommends.
    """

    etag: str | None
    last_modified: str | None
    sha256: str
    size: int


@dataclass(frozen=True)
class CabSyncResult:
    """The record of one sync.

    ``reason`` is why the cab was (or would have been) downloaded: it was
    ``missing``, the run was ``forced``, upstream had a ``newer`` one, or
    nothing changed (``unchanged``). ``etag`` to ``path`` describe the cab
    published after the run, the previous one when the run failed, and are
    None while no cab is published.
    """

    status: SyncStatus
    reason: SyncReason
    bytes_downloaded: int
    duration_seconds: float
    error: str | None
    etag: str | None
    last_modified: str | None
    sha256: str | None
    size: int | None
    path: Path | None

    @property
    def state(self) -> CabState | None:
        """The published cab's state, to pass as ``previous`` to the next sync."""
        if self.sha256 is None or self.size is None:
            return None
        return CabState(etag=self.etag, last_modified=self.last_modified, sha256=self.sha256, size=self.size)


class _SyncFailure(Exception):
    """A step of the sync failed; the message says which and why."""


class CabRejected(_SyncFailure):
    """Raised by a sync's ``accept`` callback: the verified cab must not be published."""


def sync_cab(
    *,
    url: str,
    repository_dir: Path,
    ca_bundle: Path,
    allowlist: Sequence[str],
    proxy: str | None = None,
    force: bool = False,
    previous: CabState | None = None,
    session: requests.Session | None = None,
    progress: ProgressCallback | None = None,
    accept: AcceptCallback | None = None,
) -> CabSyncResult:
    """Bring ``<repository_dir>/wua/wsusscn2.cab`` up to date with ``url``.

    Args:
        url: the catalog's upstream URL; it and every redirect must be on ``allowlist``.
        repository_dir: the repository; the cab goes to its ``wua`` folder.
        ca_bundle: PEM certificates the cab's Authenticode signature must chain to.
        allowlist: upstream host names, as :mod:`wuacache_server.fetch.allowlist` reads them.
        proxy: HTTP proxy for every request; the environment's proxies are never used
            by the session made here.
        force: download and publish even if upstream reports no change.
        previous: the published cab's state as the caller recorded it. When it is
            None or does not match the file, the state is derived from the file.
        session: a session to reuse, used as configured.
        progress: called with (bytes received, bytes announced or None) after each chunk.
        accept: called with a verified cab (a hidden file next to the published
            one) and its SHA-256 before it is published; it refuses the cab by
            raising :class:`CabRejected`, and the previous one stays served.

    Returns:
        The outcome; every failure of the sync is reported there rather than raised.

    Raises:
        ValueError: ``allowlist`` is malformed, a configuration error.

    A sync that finds another one running fails at once rather than waiting:
    the running one already asks upstream the same question, and a scheduler
    or API caller gets an immediate answer instead of a blocked worker.
    """
    started = time.monotonic()
    cab = Path(repository_dir) / WUA_DIR / CAB_NAME
    cab.parent.mkdir(parents=True, exist_ok=True)
    lock = try_lock(cab.parent / LOCK_NAME)
    if lock is None:
        reason = _initial_reason(published=cab.exists(), force=force)
        return _finish(_result("failed", reason, previous, cab, started, error="another cab sync is running"))
    with lock, _http_session(session) as http:
        run = _CabSync(
            url=url,
            cab=cab,
            ca_bundle=Path(ca_bundle),
            allowlist=allowlist,
            proxies={"http": proxy, "https": proxy} if proxy else {},
            force=force,
            http=http,
            meter=_Meter(progress),
            started=started,
            accept=accept,
        )
        return _finish(run.run(previous))


class _CabSync:
    """One sync, run with the lock held."""

    def __init__(
        self,
        *,
        url: str,
        cab: Path,
        ca_bundle: Path,
        allowlist: Sequence[str],
        proxies: dict[str, str],
        force: bool,
        http: requests.Session,
        meter: _Meter,
        started: float,
        accept: AcceptCallback | None,
    ) -> None:
        self.url = url
        self.cab = cab
        self.part = cab.with_name(PART_NAME)
        self.ca_bundle = ca_bundle
        self.allowlist = allowlist
        self.proxies = proxies
        self.force = force
        self.http = http
        self.meter = meter
        self.started = started
        self.accept = accept
        self.published: CabState | None = None
        self.reason: SyncReason = "missing"

    def run(self, previous: CabState | None) -> CabSyncResult:
        self.published = _published_state(self.cab, previous)
        self.reason = _initial_reason(published=self.published is not None, force=self.force)
        logger.info("cab sync of %s started (%s)", self.url, self.reason)
        try:
            return self._sync()
        except (_SyncFailure, requests.RequestException, OSError) as exc:
            return self._result("failed", self.published, error=str(exc))
        finally:
            self.part.unlink(missing_ok=True)

    def _sync(self) -> CabSyncResult:
        if not self.ca_bundle.is_file():
            raise _SyncFailure(f"the CA bundle {self.ca_bundle} does not exist")
        with self._get() as response:
            if response.status_code == 304 and self.published is not None:
                return self._unchanged(response.headers.get("ETag"), response.headers.get("Last-Modified"))
            if response.status_code != 200:
                raise _SyncFailure(f"{response.url} answered {response.status_code} {response.reason}")
            if self.reason == "unchanged":
                self.reason = "newer"  # the conditional request says it changed
            etag = response.headers.get("ETag")
            last_modified = response.headers.get("Last-Modified")
            sha256, size = self._download(response)
        _run_check("integrity test", "cabextract", "-q", "-t", str(self.part))
        # -ignore-cdp: revocation lists are not fetched. Their distribution
        # points are outside the upstream allowlist and would be reached
        # without the proxy; trust rests on the pinned CA bundle instead.
        # -TSA-CAfile: Microsoft timestamps its signatures, and the pinned
        # bundle holds its timestamping root too; a valid timestamp lets an
        # expired signing certificate be judged at signing time, as
        # WinVerifyTrust does.
        ca_bundle = str(self.ca_bundle)
        _run_check(
            "signature check",
            "osslsigncode",
            *("verify", "-ignore-cdp", "-CAfile", ca_bundle, "-TSA-CAfile", ca_bundle, "-in", str(self.part)),
        )
        if self.published is not None and sha256 == self.published.sha256 and not self.force:
            return self._unchanged(etag, last_modified)
        # The served Last-Modified is the file's mtime: make it upstream's, so
        # that hosts and the next sync compare against Microsoft's date.
        moment = parse_http_date(last_modified)
        if moment is not None:
            os.utime(self.part, (moment.timestamp(), moment.timestamp()))
        if self.accept is not None:
            self.accept(self.part, sha256)
        _publish(self.part, self.cab, sha256)
        return self._result("finished", CabState(etag, last_modified, sha256, size))

    def _get(self) -> requests.Response:
        """GET the cab, following redirects only to allowlisted URLs."""
        # identity: the bytes received must be the cab itself, as signed.
        headers = {"Accept-Encoding": "identity", **self._conditions()}
        url = self.url
        for _ in range(MAX_REDIRECTS + 1):
            if not is_allowed(url, self.allowlist):
                raise _SyncFailure(f"refusing {url}: its host is not on the upstream allowlist")
            response = self.http.get(
                url,
                headers=headers,
                proxies=self.proxies,
                stream=True,
                allow_redirects=False,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            )
            if response.status_code not in _REDIRECT_STATUSES:
                return response
            location = response.headers.get("Location")
            response.close()
            if not location:
                raise _SyncFailure(f"{url} answered {response.status_code} without a Location")
            url = urljoin(url, location)
        raise _SyncFailure(f"{self.url} redirected more than {MAX_REDIRECTS} times")

    def _conditions(self) -> dict[str, str]:
        if self.force or self.published is None:
            return {}
        headers = {}
        if self.published.etag:
            headers["If-None-Match"] = self.published.etag
        if self.published.last_modified:
            headers["If-Modified-Since"] = self.published.last_modified
        return headers

    def _download(self, response: requests.Response) -> tuple[str, int]:
        """Stream the body into the part file; return its SHA-256 and size."""
        announced = _content_length(response)
        if announced is not None and announced > MAX_CAB_SIZE:
            raise _SyncFailure(f"{response.url} announces {announced} bytes, more than a cab can be")
        self.meter.start(announced)
        digest = hashlib.sha256()
        with open(self.part, "wb") as stream:
            try:
                for chunk in response.iter_content(CHUNK_SIZE):
                    stream.write(chunk)
                    digest.update(chunk)
                    self.meter.advance(len(chunk))
                    if self.meter.received > MAX_CAB_SIZE:
                        raise _SyncFailure(f"{response.url} sent more than {MAX_CAB_SIZE} bytes")
            except requests.exceptions.ChunkedEncodingError as exc:
                # Its message is a nested tuple repr; say what happened instead.
                raise _SyncFailure(f"the connection to {response.url} broke before the whole cab arrived") from exc
            # On disk before the rename publishes it, even across a power cut.
            stream.flush()
            os.fsync(stream.fileno())
        if announced is not None and self.meter.received != announced:
            raise _SyncFailure(f"received {self.meter.received} of the {announced} bytes announced")
        return digest.hexdigest(), self.meter.received

    def _unchanged(self, etag: str | None, last_modified: str | None) -> CabSyncResult:
        assert self.published is not None
        self.reason = "unchanged"
        # Repairs the sidecar if a run stopped between the rename and its write.
        _ensure_sidecar(self.cab, self.published.sha256)
        state = CabState(
            etag=etag or self.published.etag,
            last_modified=last_modified or self.published.last_modified,
            sha256=self.published.sha256,
            size=self.published.size,
        )
        return self._result("unchanged", state)

    def _result(self, status: SyncStatus, state: CabState | None, error: str | None = None) -> CabSyncResult:
        return _result(
            status, self.reason, state, self.cab, self.started, error=error, bytes_downloaded=self.meter.received
        )


class _Meter:
    """Counts the bytes received, for the result, the callback and a log line
    every few seconds."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.received = 0
        self.announced: int | None = None
        self._callback = callback
        self._next_log = 0.0

    def start(self, announced: int | None) -> None:
        self.announced = announced
        self._next_log = time.monotonic() + PROGRESS_LOG_INTERVAL
        if self._callback is not None:
            self._callback(0, announced)

    def advance(self, count: int) -> None:
        self.received += count
        if self._callback is not None:
            self._callback(self.received, self.announced)
        now = time.monotonic()
        if now >= self._next_log:
            logger.info("cab download: %d of %s bytes", self.received, self.announced or "unknown")
            self._next_log = now + PROGRESS_LOG_INTERVAL


def restore_published(repository_dir: Path, sha256: str) -> bool:
    """Make the published cab the one whose SHA-256 is ``sha256``, after a
    sync that stopped between its ``accept`` and its publication.

    The verified cab is then still in the hidden part file: it is published
    if it is that cab; a stale sidecar is repaired. Any other part file is
    the leftover of an interrupted download and goes.

    Returns:
        True if the published cab is that cab; False when it is not (a
        warning says so) or when a sync is running, which publishes its own.
    """
    cab = Path(repository_dir) / WUA_DIR / CAB_NAME
    lock = try_lock(cab.parent / LOCK_NAME)
    if lock is None:
        return False
    with lock:
        part = cab.with_name(PART_NAME)
        # The sidecar follows the rename, and a rename follows its import's
        # commit: a sidecar naming that cab names the published one.
        if _sidecar_digest(cab) == sha256 and cab.exists():
            part.unlink(missing_ok=True)
            return True
        if part.exists() and _file_sha256(part) == sha256:
            logger.info("publishing cab %s, whose catalog was imported before its sync stopped", sha256[:12])
            _publish(part, cab, sha256)
            return True
        part.unlink(missing_ok=True)
        if cab.exists() and _file_sha256(cab) == sha256:
            _ensure_sidecar(cab, sha256)
            return True
    logger.warning("the published cab is not %s, the one whose catalog the database holds", sha256[:12])
    return False


def _publish(part: Path, cab: Path, sha256: str) -> None:
    os.replace(part, cab)
    _ensure_sidecar(cab, sha256)


def _sidecar_digest(cab: Path) -> str | None:
    try:
        return cab.with_name(SIDECAR_NAME).read_text(encoding="ascii").split(" ", 1)[0]
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def _initial_reason(*, published: bool, force: bool) -> SyncReason:
    if not published:
        return "missing"
    return "forced" if force else "unchanged"


def _published_state(cab: Path, previous: CabState | None) -> CabState | None:
    """The state of the published cab: ``previous`` if it describes the file,
    else one derived from the file (no ETag, its mtime as Last-Modified)."""
    try:
        stat = cab.stat()
    except FileNotFoundError:
        return None
    if previous is not None and previous.size == stat.st_size:
        return previous
    return CabState(
        etag=None,
        last_modified=formatdate(stat.st_mtime, usegmt=True),
        sha256=_file_sha256(cab),
        size=stat.st_size,
    )


def _result(
    status: SyncStatus,
    reason: SyncReason,
    state: CabState | None,
    cab: Path,
    started: float,
    *,
    error: str | None = None,
    bytes_downloaded: int = 0,
) -> CabSyncResult:
    return CabSyncResult(
        status=status,
        reason=reason,
        bytes_downloaded=bytes_downloaded,
        duration_seconds=time.monotonic() - started,
        error=error,
        etag=state.etag if state else None,
        last_modified=state.last_modified if state else None,
        sha256=state.sha256 if state else None,
        size=state.size if state else None,
        path=cab if state else None,
    )


def _finish(result: CabSyncResult) -> CabSyncResult:
    if result.status == "failed":
        logger.warning(
            "cab sync failed (%s) after %d bytes in %.1f s: %s",
            result.reason,
            result.bytes_downloaded,
            result.duration_seconds,
            result.error,
        )
    else:
        logger.info(
            "cab sync %s (%s): %d bytes downloaded in %.1f s, sha256 %s",
            result.status,
            result.reason,
            result.bytes_downloaded,
            result.duration_seconds,
            (result.sha256 or "")[:12],
        )
    return result


@contextmanager
def _http_session(session: requests.Session | None) -> Iterator[requests.Session]:
    if session is not None:
        yield session
        return
    with requests.Session() as own:
        own.trust_env = False  # no proxy, netrc or CA bundle slipped in by the environment
        yield own


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length", "").strip()
    return int(value) if value.isdigit() else None


def _run_check(check: str, tool: str, *args: str) -> None:
    executable = shutil.which(tool)
    if executable is None:
        raise _SyncFailure(f"{check} impossible: {tool} is not installed")
    completed = subprocess.run(
        [executable, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    if completed.returncode != 0:
        lines = (line.strip() for line in (completed.stdout + completed.stderr).splitlines())
        # OpenSSL's error stack (":error:" lines) repeats what the tool said.
        complaints = [line for line in lines if _TOOL_COMPLAINT.search(line) and ":error:" not in line]
        explanation = "; ".join(complaints) or f"{tool} exit status {completed.returncode}"
        raise _SyncFailure(f"{check} failed: {explanation}")


def _ensure_sidecar(cab: Path, sha256: str) -> None:
    """Write ``wsusscn2.cab.sha256`` (``sha256sum`` format) atomically, unless
    it already says ``sha256``."""
    sidecar = cab.with_name(SIDECAR_NAME)
    line = f"{sha256}  {cab.name}\n"
    try:
        if sidecar.read_text(encoding="ascii") == line:
            return
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    partial = sidecar.with_name(f".{sidecar.name}.part")
    partial.write_text(line, encoding="ascii")
    os.replace(partial, sidecar)


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()

