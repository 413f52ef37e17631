"""``index.xml``: which inner cab of the catalog holds what.

``INDEX/CABLIST/CAB`` lists the inner cabs. The one without ``RANGESTART``
(``package.cab``) holds package.xml; each other one holds the fragments of
the revisions from its ``RANGESTART`` up to the next cab's: a revision's
fragments live in the cab with the largest ``RANGESTART`` at or below its
RevisionId.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

from wuacache_server.catalog.errors import CatalogFormatError
from wuacache_server.catalog.safexml import integer, parse_document, required

_WHAT = "index.xml"
# Inner cab names become paths under the extraction folder: plain names only.
_CAB_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}")
_MAX_INDEX_BYTES = 4 << 20


@dataclass(frozen=True)
class CatalogIndex:
    package_cab: str
    fragment_cabs: tuple[tuple[int, str], ...]
    """(RANGESTART, NAME), by RANGESTART."""

    def fragment_cab_for(self, revision_id: int) -> str | None:
        """The cab holding ``revision_id``'s fragments; None below the first range."""
        position = bisect_right(self.fragment_cabs, revision_id, key=lambda cab: cab[0])
        return self.fragment_cabs[position - 1][1] if position else None


def read_index(path: Path) -> CatalogIndex:
    if not path.is_file():
        raise CatalogFormatError("the cab has no index.xml: it is not an offline update catalog")
    if path.stat().st_size > _MAX_INDEX_BYTES:
        raise CatalogFormatError(f"{_WHAT} is larger than {_MAX_INDEX_BYTES} bytes")
    root = parse_document(path.read_bytes(), _WHAT)
    if root.tag != "INDEX":
        raise CatalogFormatError(f"{_WHAT} has root {root.tag!r}, not INDEX")
    package_cabs: list[str] = []
    ranges: dict[int, str] = {}
    for cab in root.iterfind("CABLIST/CAB"):
        name = required(cab, "NAME", _WHAT)
        if not _CAB_NAME.fullmatch(name):
            raise CatalogFormatError(f"{_WHAT} names an inner cab {name!r}, which is not a plain file name")
        range_start = cab.get("RANGESTART")
        if range_start is None:
            package_cabs.append(name)
            continue
        start = integer(range_start, f"{_WHAT} RANGESTART of {name}")
        if ranges.setdefault(start, name) != name:
            raise CatalogFormatError(f"{_WHAT} gives {ranges[start]} and {name} the same RANGESTART {start}")
    if len(package_cabs) != 1:
        raise CatalogFormatError(f"{_WHAT} must name one cab without RANGESTART (package.cab), not {package_cabs}")
    return CatalogIndex(package_cabs[0], tuple(sorted(ranges.items())))
