"""Records parked on disk by key, so that memory holds one key's worth.

The parser parks every Update of package.xml under the fragment cab that
describes it, and relationships until every record they name is delivered.
Pickle is safe here: this process alone writes and reads the files, in its
private scratch folder.
"""

from __future__ import annotations

import itertools
import pickle
from collections import defaultdict
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")

# Items kept in memory, across keys, before they are appended to disk.
BUFFERED_ITEMS = 10_000


class Spool(Generic[T]):
    def __init__(self, folder: Path, *, buffered_items: int = BUFFERED_ITEMS) -> None:
        folder.mkdir()
        self._folder = folder
        self._buffered_items = buffered_items
        self._names = itertools.count()
        self._paths: dict[Hashable, Path] = {}
        self._buffers: defaultdict[Hashable, list[T]] = defaultdict(list)
        self._buffered = 0

    def add(self, key: Hashable, item: T) -> None:
        self._buffers[key].append(item)
        self._buffered += 1
        if self._buffered >= self._buffered_items:
            self._flush()

    def drain(self, key: Hashable) -> Iterator[T]:
        """What was added under ``key``, in order; the key is empty afterwards."""
        path = self._paths.pop(key, None)
        buffered = self._buffers.pop(key, [])
        self._buffered -= len(buffered)
        return self._replay(path, buffered)

    @staticmethod
    def _replay(path: Path | None, buffered: list[T]) -> Iterator[T]:
        if path is not None:
            with path.open("rb") as stream:
                while True:
                    try:
                        chunk = pickle.load(stream)
                    except EOFError:
                        break
                    yield from chunk
            path.unlink()
        yield from buffered

    def _flush(self) -> None:
        for key, items in self._buffers.items():
            path = self._paths.get(key)
            if path is None:
                path = self._paths[key] = self._folder / f"{next(self._names)}.pickle"
            with path.open("ab") as stream:
                pickle.dump(items, stream, protocol=pickle.HIGHEST_PROTOCOL)
        self._buffers.clear()
        self._buffered = 0
