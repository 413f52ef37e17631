"""Helpers shared by the end-to-end tests."""

from __future__ import annotations

import sys
from pathlib import Path

BIN = Path(sys.executable).parent
