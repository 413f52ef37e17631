#!/usr/bin/env python3
"""Time and peak memory of parsing a full-size catalog, then of re-parsing it
unchanged (every fragment cab skipped).

    .venv/bin/python benchmarks/catalog-parse.py [CATALOG_DIR]

CATALOG_DIR (default .build/bench/catalog, where catalog-generation.sh
writes) is reused when it holds a wsusscn2.cab; otherwise a catalog of
$UPDATES updates (default 136000, the size of Microsoft's) is generated
there first, in another process so that its memory is not counted. Run by
hand, never as part of the tests.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from wuacache_server.catalog import ParsedCatalog, parse_catalog

REPOSITORY = Path(__file__).resolve().parent.parent


class CountingSink:
    """Counts the records and keeps none, as a database writer would."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add_updates(self, records: Sequence[object]) -> None:
        self.counts["updates"] += len(records)

    def add_payload_files(self, records: Sequence[object]) -> None:
        self.counts["payload files"] += len(records)

    def add_categories(self, records: Sequence[object]) -> None:
        self.counts["categories"] += len(records)

    def add_bundle_members(self, records: Sequence[object]) -> None:
        self.counts["bundle members"] += len(records)

    def add_supersedences(self, records: Sequence[object]) -> None:
        self.counts["supersedences"] += len(records)

    def add_child_files(self, records: Sequence[object]) -> None:
        self.counts["child files"] += len(records)


def timed_parse(cab: Path, workdir: Path, previous: ParsedCatalog | None) -> ParsedCatalog:
    sink = CountingSink()
    started = time.monotonic()
    parsed = parse_catalog(
        cab, sink, workdir=workdir, skip_fragment_cabs=previous.fragment_cab_digests if previous else None
    )
    elapsed = time.monotonic() - started
    kind = "unchanged re-parse" if previous else "full parse"
    read = len(parsed.fragment_cab_digests) - len(parsed.skipped_fragment_cabs)
    print(f"{kind}: {elapsed:.1f} s, {read} of {len(parsed.fragment_cab_digests)} fragment cabs read")
    print("  " + ", ".join(f"{count} {name}" for name, count in sink.counts.items()))
    return parsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("catalog_dir", nargs="?", type=Path, default=REPOSITORY / ".build" / "bench" / "catalog")
    parser.add_argument("--workdir", type=Path, help="where the parser's scratch folder goes")
    args = parser.parse_args()

    cab = args.catalog_dir / "wsusscn2.cab"
    if not cab.is_file():
        updates = os.environ.get("UPDATES", "136000")
        print(f"generating a catalog of {updates} updates in {args.catalog_dir}")
        generator = [sys.executable, "-m", "wuacache_lab.catalog", "--out", str(args.catalog_dir)]
        subprocess.run([*generator, "--updates", updates], check=True, stdout=subprocess.DEVNULL)
    print(f"catalog: {cab} ({cab.stat().st_size / 2**20:.0f} MiB)")

    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        first = timed_parse(cab, Path(scratch), None)
        timed_parse(cab, Path(scratch), first)

    # ru_maxrss is in KiB on Linux.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"peak resident memory: parser {own / 1024:.0f} MiB, largest child process {children / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
