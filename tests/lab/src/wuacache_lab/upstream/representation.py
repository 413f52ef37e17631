"""A served file's validators, and what RFC 7232/7233 make of a request's
conditional and range headers for it.

Clients of Microsoft's download servers rely on these: the catalog refresh
asks whether ``wsusscn2.cab`` changed, and payload downloads resume with
``Range``/``If-Range``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime

_CAB_SUFFIX = ".cab"
_SINGLE_RANGE = re.compile(r"bytes=\s*(\d*)\s*-\s*(\d*)\s*")


class RangeNotSatisfiable(Exception):
    """The requested range lies wholly outside the file (416)."""


@dataclass(frozen=True)
class Representation:
    size: int
    mtime_ns: int
    content_type: str

    @classmethod
    def of(cls, stat: os.stat_result, name: str) -> Representation:
        content_type = (
            "application/vnd.ms-cab-compressed"
            if name.lower().endswith(_CAB_SUFFIX)
            else "application/octet-stream"
        )
        return cls(size=stat.st_size, mtime_ns=stat.st_mtime_ns, content_type=content_type)

    @property
    def etag(self) -> str:
        """A strong validator: rewriting the file changes its mtime or size."""
        return f'"{self.size:x}-{self.mtime_ns:x}"'

    @property
    def last_modified(self) -> str:
        return formatdate(self.mtime_seconds, usegmt=True)

    @property
    def mtime_seconds(self) -> int:
        # HTTP dates have a one-second resolution.
        return self.mtime_ns // 1_000_000_000

    def is_not_modified(self, if_none_match: str | None, if_modified_since: str | None) -> bool:
        """Whether a GET or HEAD with these headers gets a 304 (RFC 7232 section 6)."""
        if if_none_match is not None:
            # If-None-Match uses the weak comparison, and overrides If-Modified-Since.
            tags = [tag.strip() for tag in if_none_match.split(",")]
            return "*" in tags or any(_opaque(tag) == _opaque(self.etag) for tag in tags)
        since = _http_date_seconds(if_modified_since)
        return since is not None and self.mtime_seconds <= since

    def selected_range(
        self, range_header: str | None, if_range: str | None
    ) -> tuple[int, int] | None:
        """The inclusive byte range to answer with 206, or None for the whole file.

        Raises RangeNotSatisfiable for a 416. Multiple ranges are answered
        with the whole file, which RFC 7233 allows.
        """
        if range_header is None or not self._if_range_holds(if_range):
            return None
        match = _SINGLE_RANGE.fullmatch(range_header)
        if match is None:
            return None  # syntactically invalid or multipart: ignore the header
        first, last = match.groups()
        if not first and not last:
            return None
        if not first:  # suffix range: the last n bytes
            length = int(last)
            if length == 0 or self.size == 0:
                raise RangeNotSatisfiable
            return max(self.size - length, 0), self.size - 1
        start = int(first)
        if last and int(last) < start:
            return None  # invalid byte-range-spec: ignore the header
        if start >= self.size:
            raise RangeNotSatisfiable
        end = min(int(last), self.size - 1) if last else self.size - 1
        return start, end

    def _if_range_holds(self, if_range: str | None) -> bool:
        if if_range is None:
            return True
        if_range = if_range.strip()
        if if_range.startswith(('"', "W/")):
            # Only a strong, identical entity tag validates a range.
            return if_range == self.etag
        return _http_date_seconds(if_range) == self.mtime_seconds


def _opaque(tag: str) -> str:
    return tag.removeprefix("W/")


def _http_date_seconds(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError):
        return None  # an unparsable date is ignored, as RFC 7232 requires
