"""Generate a lab catalog: ``python -m wuacache_lab.catalog --out DIR``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from wuacache_lab.catalog.model import MIN_UPDATES
from wuacache_lab.catalog.writer import DEFAULT_FRAGMENTS_PER_CAB, DEFAULT_UPDATES, generate_catalog
from wuacache_lab.pki import ensure_lab_ca


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m wuacache_lab.catalog",
        description="Write a signed synthetic wsusscn2.cab and the upstream file tree serving it.",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--updates",
        type=int,
        default=DEFAULT_UPDATES,
        help=f"Update entries of generation 1, at least {MIN_UPDATES} (default %(default)s; "
        "136000 is the size of Microsoft's catalog)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every generated value (default %(default)s)")
    parser.add_argument(
        "--generation",
        type=int,
        default=1,
        help="publication to model: each one after the first adds a month and revises a few updates",
    )
    parser.add_argument(
        "--ca-dir",
        type=Path,
        help="lab CA directory, created if absent (default OUT/ca)",
    )
    parser.add_argument(
        "--fragments-per-cab",
        type=int,
        default=DEFAULT_FRAGMENTS_PER_CAB,
        help="fragment files per inner cab (default %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.updates < MIN_UPDATES:
        parser.error(f"--updates must be at least {MIN_UPDATES}")

    ca = ensure_lab_ca(args.ca_dir or args.out / "ca")
    summary = generate_catalog(
        args.out,
        updates=args.updates,
        seed=args.seed,
        generation=args.generation,
        ca=ca,
        fragments_per_cab=args.fragments_per_cab,
    )
    print(summary.to_json(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
