"""The figures `make demo` prints, from the wuacache server's API and the lab.

    demo_summary.py needs STATE_DIR OUT.json      # files the hosts need now, by catalog URL
    demo_summary.py pick-update STATE_DIR HOST    # an update HOST is to install
    demo_summary.py report STATE_DIR NEEDS.json   # per host counts, ground truth, bytes

STATE_DIR is a lab started with ``lab up --server``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import requests

from wuacache_lab.labspec import LabSpec
from wuacache_lab.upstream import read_access_log
from wuacache_lab.windows.state import read_host_state

STATUSES = ("OK", "PENDING", "MISSING", "DISCARDED", "ERROR")
CAB_PATH = "/microsoftupdate/v6/wsusscan/wsusscn2.cab"


class Server:
    def __init__(self, spec: LabSpec) -> None:
        self.url = spec.server_url
        token = (spec.server_dir / "controller.token").read_text().strip()
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params: Any) -> Any:
        response = self.session.get(f"{self.url}{path}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def plan(self, host: str) -> dict[str, Any]:
        return self.get(f"/api/v1/hosts/{host}/plan")


def needed_files(server: Server, spec: LabSpec) -> dict[str, int]:
    """The files of every update some host is to install, once each, with their size."""
    return {
        file["download_url"]: file["size"]
        for host in spec.hosts
        for update in server.plan(host.name)["updates"]
        if update["status"] in ("PENDING", "MISSING")
        for file in update["files"]
    }


def cmd_needs(spec: LabSpec, args: argparse.Namespace) -> int:
    args.out.write_text(json.dumps(needed_files(Server(spec), spec), indent=1) + "\n")
    return 0


def cmd_pick_update(spec: LabSpec, args: argparse.Namespace) -> int:
    plan = Server(spec).plan(args.host)
    candidates = [update for update in plan["updates"] if update["status"] in ("PENDING", "MISSING")]
    if not candidates:
        print(f"{args.host} has nothing to install", file=sys.stderr)
        return 1
    print(candidates[0]["update_id"])
    return 0


def cmd_report(spec: LabSpec, args: argparse.Namespace) -> int:
    server = Server(spec)
    hosts = {host["name"]: host for host in server.get("/api/v1/hosts", limit=1000)["items"]}
    print(f"{'HOST':<15} {'OK':>4} {'PENDING':>8} {'MISSING':>8} {'DISCARDED':>10} {'ERROR':>6}   "
          f"{'INSTALLED (LAB)':>15} {'REBOOT (LAB)':>12}")
    for host in spec.hosts:
        counts = hosts.get(host.name, {}).get("counts", {})
        truth = read_host_state(spec.hosts_dir, host.name)
        print(
            f"{host.name:<15} "
            + " ".join(f"{counts.get(status, 0):>{width}}" for status, width in zip(STATUSES, (4, 8, 8, 10, 6)))
            + f"   {len(truth.installed):>15} {'yes' if truth.pending_changes else 'no':>12}"
        )
    needed = json.loads(args.needs.read_text())
    fetched = [entry for entry in read_access_log(spec.upstream_dir) if entry["path"] != CAB_PATH]
    print()
    print(f"distinct files the hosts needed: {len(needed):>6}, {sum(needed.values()):>12,} bytes")
    print(f"fetched from upstream:           {len(fetched):>6}, {sum(entry['bytes'] for entry in fetched):>12,} bytes")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo_summary.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    needs = commands.add_parser("needs")
    needs.add_argument("state_dir", type=Path)
    needs.add_argument("out", type=Path)
    needs.set_defaults(handler=cmd_needs)
    pick = commands.add_parser("pick-update")
    pick.add_argument("state_dir", type=Path)
    pick.add_argument("host")
    pick.set_defaults(handler=cmd_pick_update)
    report = commands.add_parser("report")
    report.add_argument("state_dir", type=Path)
    report.add_argument("needs", type=Path)
    report.set_defaults(handler=cmd_report)
    args = parser.parse_args(argv)
    return args.handler(LabSpec.load(args.state_dir.resolve()), args)


if __name__ == "__main__":
    raise SystemExit(main())
