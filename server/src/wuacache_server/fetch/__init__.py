"""Need-driven downloads of update files from Microsoft: only allowlisted
hosts, only verified bytes published, resumable, one download per file."""

from __future__ import annotations

from .allowlist import UrlNotAllowed, ensure_allowed, is_allowed, validate_allowlist
from .downloader import (
    DigestMismatch,
    DownloadCanceled,
    DownloadError,
    DownloadInProgress,
    DownloadResult,
    ExpectedContent,
    HttpStatusError,
    SizeMismatch,
    TooManyRedirects,
    TransferError,
    download,
    file_matches,
    new_session,
    validate_file_name,
)
from .fetcher import Fetcher, FetchHandle, FetchJob, FetchState

__all__ = [
    "DigestMismatch",
    "DownloadCanceled",
    "DownloadError",
    "DownloadInProgress",
    "DownloadResult",
    "ExpectedContent",
    "FetchHandle",
    "FetchJob",
    "FetchState",
    "Fetcher",
    "HttpStatusError",
    "SizeMismatch",
    "TooManyRedirects",
    "TransferError",
    "UrlNotAllowed",
    "download",
    "ensure_allowed",
    "file_matches",
    "is_allowed",
    "new_session",
    "validate_allowlist",
    "validate_file_name",
]
