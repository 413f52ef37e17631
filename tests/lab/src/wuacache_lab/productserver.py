"""The wuacache server, run against a lab as an administrator would run it.

Run by ``lab up --server`` as ``python -m wuacache_lab.productserver
--state-dir DIR --upstream URL --listen ADDRESS:PORT --ready-file FILE``.
It drives the server's own command line: ``init`` (SQLite in the lab's
``server`` folder), ``sync-cab`` through the lab's upstream (the fake
Microsoft, a forward proxy) with the lab CA as the catalog's trust anchor,
``token create`` for the controller, then ``serve``, and writes the ready file
once ``/health`` answers. The controller token is kept in
``server/controller.token`` for the lab's inventory, the first admin token in
``server/admin.token``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import requests

from wuacache_lab.labspec import LabSpec
from wuacache_lab.pki import CA_CERT

READY_TIMEOUT = 60.0


class ServerStartError(RuntimeError):
    pass


def server_executable() -> str:
    """``wuacache-server`` of the lab's own environment, else the first on PATH."""
    beside = Path(sys.executable).parent / "wuacache-server"
    found = str(beside) if beside.exists() else shutil.which("wuacache-server")
    if found is None:
        raise ServerStartError("wuacache-server is not installed in this environment")
    return found


def server_environment(spec: LabSpec, upstream: str, listen: str) -> dict[str, str]:
    return dict(
        os.environ,
        WUACACHE_DATA_DIR=str(spec.server_dir / "data"),
        WUACACHE_HTTP_PROXY=upstream,
        WUACACHE_CAB_CA_BUNDLE=str(spec.ca_dir / CA_CERT),
        WUACACHE_LISTEN=listen,
    )


def run_command(executable: str, env: dict[str, str], *args: str) -> str:
    """Run one server command; its standard output (which may hold a token) is
    returned, never logged."""
    print(f"wuacache-server {' '.join(args)}", flush=True)
    completed = subprocess.run([executable, *args], env=env, capture_output=True, text=True, check=False)
    sys.stdout.write(completed.stderr)
    sys.stdout.flush()
    if completed.returncode != 0:
        raise ServerStartError(f"wuacache-server {' '.join(args)} failed with status {completed.returncode}")
    return completed.stdout


def wait_until_serving(url: str, server: subprocess.Popen, timeout: float = READY_TIMEOUT) -> None:
    """Wait until the server at ``url`` answers ``/health``; stop it if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                return
        except requests.ConnectionError:
            pass
        if server.poll() is not None:
            raise ServerStartError(f"wuacache-server serve exited with status {server.returncode}")
        if time.monotonic() > deadline:
            server.terminate()
            raise ServerStartError(f"the server did not answer /health within {timeout:.0f} s")
        time.sleep(0.2)


def write_secret(path: Path, secret: str) -> None:
    path.touch(mode=0o600)
    path.write_text(secret + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wuacache_lab.productserver")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--upstream", required=True, help="URL of the lab's upstream, the servers' proxy")
    parser.add_argument("--listen", required=True, help="address:port the server listens on")
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args(argv)

    spec = LabSpec.load(args.state_dir)
    executable = server_executable()
    env = server_environment(spec, args.upstream, args.listen)
    spec.server_dir.mkdir(parents=True, exist_ok=True)
    if not (spec.server_dir / "data").exists():
        initialised = run_command(executable, env, "init")
        # The first admin token, for tests and demos that write rule sets.
        admin = next(line.split(":", 1)[1].strip() for line in initialised.splitlines() if line.startswith("admin token:"))
        write_secret(spec.server_dir / "admin.token", admin)
    run_command(executable, env, "sync-cab")
    token_file = spec.server_dir / "controller.token"
    if not token_file.exists():
        write_secret(token_file, run_command(executable, env, "token", "create", "lab-controller", "--role", "controller").strip())

    # `lab down` signals the whole session: the server shuts down with this process.
    server = subprocess.Popen([executable, "serve"], env=env)
    wait_until_serving(f"http://{args.listen}", server)
    args.ready_file.write_text(f"{args.listen}\n")
    return server.wait()


if __name__ == "__main__":
    raise SystemExit(main())
