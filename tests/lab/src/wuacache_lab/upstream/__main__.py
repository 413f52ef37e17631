"""Run the fake Microsoft download server as a process.

    python -m wuacache_lab.upstream --docroot DIR --state-dir DIR \
        [--listen 127.0.0.1:0] [--ready-file PATH]

Once listening it writes the bound ``host:port`` to the ready file, so a
parent asking for port 0 learns the port; SIGTERM or SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from .server import UpstreamServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m wuacache_lab.upstream",
        description="Serve a docroot mirroring Microsoft's download servers, on loopback.",
    )
    parser.add_argument(
        "--docroot", type=Path, required=True, help="folder holding <host>/<url path> files"
    )
    parser.add_argument(
        "--state-dir", type=Path, required=True, help="folder of faults.json and access.jsonl"
    )
    parser.add_argument(
        "--listen", default="127.0.0.1:0", help="loopback host:port (default: %(default)s)"
    )
    parser.add_argument(
        "--ready-file", type=Path, help="file to write the bound host:port to once listening"
    )
    args = parser.parse_args(argv)

    host, _, port = args.listen.rpartition(":")
    try:
        server = UpstreamServer(args.docroot, args.state_dir, host=host.strip("[]"), port=int(port))
    except ValueError as exc:
        parser.error(f"--listen {args.listen}: {exc}")

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    with server:
        if args.ready_file is not None:
            _write_atomically(args.ready_file, server.url.removeprefix("http://") + "\n")
        stop.wait()
    return 0


def _write_atomically(path: Path, text: str) -> None:
    # A parent polling for the file must never read it half-written.
    partial = path.with_name(path.name + ".part")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


if __name__ == "__main__":
    sys.exit(main())
