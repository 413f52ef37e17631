"""HTTP dates (RFC 9110 5.6.7), as the server reads them in Last-Modified and If-Modified-Since."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP date as an aware UTC datetime; None when absent or not a date."""
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    # A naive result comes from "-0000", RFC 5322's way of saying UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
