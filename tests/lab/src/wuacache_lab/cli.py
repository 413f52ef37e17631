"""``lab``: bring a wuacache lab up and down.

    lab up --hosts 5 --profile mixed     # start the upstream and 5 emulated hosts
    lab status
    lab down [--purge]

A lab lives in one state folder (``--state-dir``, default ``.lab/default``):
its description, certificates, synthetic catalog, host disks, logs and the
Ansible inventory of its hosts (``inventory.ini``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from wuacache_lab import processes
from wuacache_lab.catalog import generate_catalog
from wuacache_lab.inventory import write_inventory
from wuacache_lab.labspec import LabSpec, plan_hosts
from wuacache_lab.pki import ensure_lab_ca
from wuacache_lab.windows.profiles import profile_mix

DEFAULT_STATE_DIR = Path(".lab/default")
PROCESSES = ("fleet", "upstream")  # stopped in this order


def cmd_up(args: argparse.Namespace) -> int:
    state_dir = args.state_dir.resolve()
    if any(processes.running(name, state_dir / "run") for name in PROCESSES):
        print(f"lab: a lab is already up in {state_dir}; run `lab down` first", file=sys.stderr)
        return 1
    if (state_dir / "lab.json").exists():
        spec = LabSpec.load(state_dir)
        print(f"lab: reusing the lab described in {spec.spec_file} ({len(spec.hosts)} hosts)")
    else:
        port = args.port or (5986 if args.https else 5985)
        spec = LabSpec(
            state_dir=state_dir,
            hosts=plan_hosts(args.hosts, profile_mix(args.profile, args.hosts), args.base_address, port),
            transport=args.transport,
            https=args.https,
            updates=args.updates,
            seed=args.seed,
        )
        spec.save()

    ca = ensure_lab_ca(spec.ca_dir)
    if not (spec.catalog_dir / "wsusscn2.cab").exists():
        print(f"lab: generating a signed catalog of {spec.updates} updates")
        generate_catalog(spec.catalog_dir, updates=spec.updates, seed=spec.seed, ca=ca)

    processes.start(
        "upstream",
        "wuacache_lab.upstream",
        ["--docroot", str(spec.catalog_dir / "files"), "--state-dir", str(spec.upstream_dir), "--listen", "127.0.0.1:0"],
        spec.run_dir,
        spec.log_dir,
    )
    upstream = "http://" + (spec.run_dir / "upstream.ready").read_text().strip()
    try:
        processes.start(
            "fleet",
            "wuacache_lab.fleet",
            ["--state-dir", str(spec.state_dir), "--proxy", upstream],
            spec.run_dir,
            spec.log_dir,
        )
    except processes.LabProcessError:
        processes.stop("upstream", spec.run_dir)
        raise
    write_inventory(spec)

    print(f"lab: upstream (Microsoft's download servers) at {upstream}")
    for host in spec.hosts:
        print(f"lab: {host.name:<15} {host.profile:<18} {spec.transport}://{host.address}:{host.port}/wsman")
    print(f"lab: inventory {spec.inventory_file}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    state_dir = args.state_dir.resolve()
    for name in PROCESSES:
        if processes.stop(name, state_dir / "run"):
            print(f"lab: stopped {name}")
    if args.purge and state_dir.exists():
        shutil.rmtree(state_dir)
        print(f"lab: removed {state_dir}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state_dir = args.state_dir.resolve()
    if not (state_dir / "lab.json").exists():
        print(f"lab: no lab in {state_dir}")
        return 3
    spec = LabSpec.load(state_dir)
    up = True
    for name in PROCESSES:
        pid = processes.running(name, spec.run_dir)
        up = up and pid is not None
        print(f"lab: {name:<9} {'running, pid ' + str(pid) if pid else 'stopped'}")
    for host in spec.hosts:
        print(f"lab: {host.name:<15} {host.profile:<18} {host.address}:{host.port}")
    return 0 if up else 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lab", description="Loopback stand-ins for Windows hosts and Microsoft's servers.")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="folder that holds the lab (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start the upstream and the emulated hosts")
    up.add_argument("--hosts", type=int, default=5, help="number of emulated hosts (default: %(default)s)")
    up.add_argument("--profile", default="mixed", help="OS profile of the hosts, or 'mixed' (default: %(default)s)")
    up.add_argument("--base-address", default="127.0.1.1", help="loopback address of the first host (default: %(default)s)")
    up.add_argument("--port", type=int, help="WinRM port of every host (default: 5985, or 5986 with --https)")
    up.add_argument("--transport", choices=("ntlm", "basic"), default="ntlm", help="WinRM transport the inventory uses")
    up.add_argument("--https", action="store_true", help="serve WinRM over HTTPS with a certificate of the lab CA")
    up.add_argument("--updates", type=int, default=200, help="size of the synthetic catalog (default: %(default)s)")
    up.add_argument("--seed", type=int, default=1, help="seed of the synthetic catalog (default: %(default)s)")
    up.set_defaults(handler=cmd_up)

    down = commands.add_parser("down", help="stop every process of the lab")
    down.add_argument("--purge", action="store_true", help="also delete the lab's state folder")
    down.set_defaults(handler=cmd_down)

    status = commands.add_parser("status", help="tell whether the lab runs; exit 3 if not")
    status.set_defaults(handler=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (processes.LabProcessError, ValueError) as error:
        print(f"lab: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
