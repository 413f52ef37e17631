"""The ``wuacache-server`` command."""

from __future__ import annotations

import argparse
from importlib.metadata import version


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wuacache-server",
        description="Offline Windows Update catalog and need-driven update cache for wuacache.wua.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('wuacache-server')}")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0
