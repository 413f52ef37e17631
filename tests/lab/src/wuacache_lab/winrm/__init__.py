"""The WinRM (WS-Management / WinRS) listener of the lab's emulated Windows hosts."""

from __future__ import annotations

from .server import WinRMEndpoint

__all__ = ["WinRMEndpoint"]
