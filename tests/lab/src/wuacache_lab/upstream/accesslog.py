"""The upstream's access log: one JSON object per answered request.

Tests use it to prove what was, and was not, downloaded from "Microsoft", so
``bytes`` counts the body bytes actually handed to the socket, including for
transfers cut short by a fault or by the client.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ACCESS_LOG_FILE = "access.jsonl"


@dataclass
class AccessRecord:
    """What the server knows about one request while answering it."""

    client: str
    method: str
    url: str
    host: str | None = None
    path: str | None = None
    proxied: bool = False
    range: str | None = None
    status: int | None = None  # None: the connection was closed without an answer
    sent: int = 0
    fault: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "time": datetime.now(UTC).isoformat(),
            "client": self.client,
            "method": self.method,
            "url": self.url,
            "host": self.host,
            "path": self.path,
            "status": self.status,
            "range": self.range,
            "bytes": self.sent,
            "fault": self.fault,
            "proxied": self.proxied,
        }


class AccessLog:
    """Appends records to ``state_dir/access.jsonl``, flushed line by line."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / ACCESS_LOG_FILE
        self._lock = threading.Lock()

    def append(self, record: AccessRecord) -> None:
        line = json.dumps(record.to_json(), sort_keys=True) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as log:
            log.write(line)


def read_access_log(state_dir: Path) -> list[dict[str, Any]]:
    """Every entry logged so far, oldest first."""
    try:
        text = (Path(state_dir) / ACCESS_LOG_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    # A last line without its newline is still being written.
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


def bytes_sent(entries: Iterable[dict[str, Any]], path: str | None = None) -> int:
    """Body bytes sent in ``entries``, only for the URL path ``path`` if given."""
    return sum(entry["bytes"] for entry in entries if path is None or entry["path"] == path)
