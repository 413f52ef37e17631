"""A loopback stand-in for Microsoft's download servers, with fault injection
and an exact access log."""

from __future__ import annotations

from .accesslog import bytes_sent, read_access_log
from .faults import clear_faults, read_faults, set_fault
from .server import UpstreamServer

__all__ = [
    "UpstreamServer",
    "bytes_sent",
    "clear_faults",
    "read_access_log",
    "read_faults",
    "set_fault",
]
