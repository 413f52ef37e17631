"""Long lists of values cut into pieces one SQL statement can take."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

# Bound parameters per statement: far below SQLite's 32,766 and PostgreSQL's
# 65,535, and short enough for the planners.
PARAMETERS_PER_STATEMENT = 1000


def chunks(values: Sequence[T], size: int | None = None) -> Iterator[Sequence[T]]:
    """``values`` in consecutive slices of at most ``size`` (default :data:`PARAMETERS_PER_STATEMENT`)."""
    size = size or PARAMETERS_PER_STATEMENT
    for start in range(0, len(values), size):
        yield values[start : start + size]
