"""``lab``: bring a wuacache lab up and down.

    lab up --hosts 5 --profile mixed     # start the upstream and 5 emulated hosts
    lab up --hosts 10 --server           # ... and a wuacache server that uses them
    lab up --connection ssh              # the inventory reaches the hosts over SSH
    lab status
    lab fault upstream /c/msdownload/update/software/secu/... truncate
    lab fault host win10-01 install_failure --hresult 0x80070643
    lab fault host win10-01 revert_at_reboot --update-id <UpdateID>
    lab fault clear
    lab down [--purge]

A lab lives in one state folder (``--state-dir``, default ``.lab/default``):
its description, certificates, synthetic catalog, host disks, logs and the
Ansible inventory of its hosts (``inventory.ini``).
"""

from __future__ import annotations

import argparse
import shutil
from datetime import datetime
import sys
from pathlib import Path

from wuacache_lab import processes
from wuacache_lab.catalog import generate_catalog
from wuacache_lab.inventory import write_inventory
from wuacache_lab.labspec import SSH_SHELLS, HostSpec, LabSpec, plan_hosts
from wuacache_lab.loopback import free_port
from wuacache_lab.pki import ensure_lab_ca
from wuacache_lab.ssh import keys as ssh_keys
from wuacache_lab.upstream import clear_faults, set_fault
from wuacache_lab.upstream.faults import FAULT_KINDS as UPSTREAM_FAULTS
from wuacache_lab.windows.faults import FAULT_KINDS as HOST_FAULTS
from wuacache_lab.windows.faults import clear_host_faults, set_host_fault
from wuacache_lab.windows.owners import DEFAULT_OWNER_VALUES
from wuacache_lab.windows.profiles import profile_mix

DEFAULT_STATE_DIR = Path(".lab/default")
PROCESSES = ("server", "fleet", "upstream")  # stopped in this order


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
            hosts=plan_hosts(
                args.hosts,
                profile_mix(args.profile, args.hosts),
                args.base_address,
                port,
                ssh_port=args.ssh_port if args.connection == "ssh" else None,
                ssh_shells=list(SSH_SHELLS) if args.ssh_shell == "mixed" else [args.ssh_shell],
            ),
            connection=args.connection,
            transport=args.transport,
            https=args.https,
            updates=args.updates,
            seed=args.seed,
            first_month=args.first_month,
        )
    if args.server and spec.server_port is None:
        spec.server_port = free_port()
    spec.save()

    ca = ensure_lab_ca(spec.ca_dir)
    if spec.connection == "ssh":
        ssh_keys.provision(spec)
    if not (spec.catalog_dir / "wsusscn2.cab").exists():
        print(f"lab: generating a signed catalog of {spec.updates} updates")
        year, month = (int(part) for part in spec.first_month.split("-"))
        generate_catalog(spec.catalog_dir, updates=spec.updates, seed=spec.seed, ca=ca, first_month=(year, month))

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
    if spec.server_port is not None:
        try:
            processes.start(
                "server",
                "wuacache_lab.productserver",
                ["--state-dir", str(spec.state_dir), "--upstream", upstream, "--listen", f"127.0.0.1:{spec.server_port}"],
                spec.run_dir,
                spec.log_dir,
                timeout=300,  # it syncs the catalog first
            )
        except processes.LabProcessError:
            processes.stop("fleet", spec.run_dir)
            processes.stop("upstream", spec.run_dir)
            raise
    write_inventory(spec)

    print(f"lab: upstream (Microsoft's download servers) at {upstream}")
    for host in spec.hosts:
        print(f"lab: {host.name:<15} {host.profile:<18} {spec.transport}://{host.address}:{host.port}/wsman{_ssh_server(host)}")
    if spec.server_url is not None:
        print(f"lab: wuacache server at {spec.server_url}")
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
    for name in PROCESSES if spec.server_url is not None else PROCESSES[1:]:
        pid = processes.running(name, spec.run_dir)
        up = up and pid is not None
        print(f"lab: {name:<9} {'running, pid ' + str(pid) if pid else 'stopped'}")
    for host in spec.hosts:
        print(f"lab: {host.name:<15} {host.profile:<18} {host.address}:{host.port}{_ssh_server(host)}")
    return 0 if up else 3


def _ssh_server(host: HostSpec) -> str:
    return "" if host.ssh_port is None else f", ssh://{host.address}:{host.ssh_port} ({host.ssh_shell}.exe)"


def cmd_fault_upstream(args: argparse.Namespace) -> int:
    spec = LabSpec.load(args.state_dir.resolve())
    set_fault(spec.upstream_dir, args.path, args.kind, count=args.count, status=args.status, delay=args.delay, rate=args.rate)
    print(f"lab: upstream answers {args.path} with {args.kind}" + (f" for the next {args.count} requests" if args.count else ""))
    return 0


def cmd_fault_host(args: argparse.Namespace) -> int:
    spec = LabSpec.load(args.state_dir.resolve())
    host = _find_host(spec, args.host)
    options = {
        "install_failure": {"hresult": args.hresult, "update_ids": args.update_id},
        "slow_install": {"seconds": args.seconds},
        "drop_connection": {"count": args.count, "delay": args.delay},
        "disk_full": {},
        "reboot_seconds": {"seconds": args.seconds},
        "slow_startup": {"seconds": args.seconds},
        "revert_at_reboot": {"hresult": args.hresult, "update_ids": args.update_id},
        "cache_refuses_files": {"update_ids": args.update_id},
        "stuck_reboot_pending": {},
        "upgrade_rollback": {},
        "upgrade_blocked": {},
        "default_owner": {"owner": args.owner},
        "net_framework_tls": {
            "system_default_tls_versions": args.system_default_tls_versions,
            "sch_use_strong_crypto": args.sch_use_strong_crypto,
            "view": args.view,
        },
        "file_in_use": {"paths": args.path},
    }[args.kind]
    if args.kind == "default_owner" and args.owner is None:
        raise ValueError("default_owner needs --owner administrators or --owner creator")
    if args.kind == "file_in_use" and not args.path:
        raise ValueError("file_in_use needs --path C:\\...\\file")
    set_host_fault(spec.hosts_dir, host.name.upper(), args.kind, **{key: value for key, value in options.items() if value is not None})
    print(f"lab: {host.name} has fault {args.kind}")
    return 0


def cmd_fault_clear(args: argparse.Namespace) -> int:
    spec = LabSpec.load(args.state_dir.resolve())
    if args.host:
        clear_host_faults(spec.hosts_dir, _find_host(spec, args.host).name.upper())
        print(f"lab: {args.host} has no fault any more")
        return 0
    clear_faults(spec.upstream_dir)
    for host in spec.hosts:
        clear_host_faults(spec.hosts_dir, host.name.upper())
    print("lab: no fault any more, on the upstream or any host")
    return 0


def _find_host(spec: LabSpec, name: str) -> HostSpec:
    for host in spec.hosts:
        if host.name.lower() == name.lower():
            return host
    raise ValueError(f"the lab has no host {name!r}; it has {', '.join(host.name for host in spec.hosts)}")


def _month(text: str) -> str:
    try:
        datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a month written YYYY-MM") from None
    return text


def _hresult(text: str) -> int:
    return int(text, 0)


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
    up.add_argument(
        "--connection",
        choices=("winrm", "ssh"),
        default="winrm",
        help="how the inventory reaches the hosts; ssh also runs OpenSSH's server on every host (default: %(default)s)",
    )
    up.add_argument("--ssh-port", type=int, default=2222, help="port of every host's OpenSSH server (default: %(default)s)")
    up.add_argument(
        "--ssh-shell",
        choices=(*SSH_SHELLS, "mixed"),
        default="powershell",
        help="default shell of the OpenSSH servers, or 'mixed': powershell and cmd in turn (default: %(default)s)",
    )
    up.add_argument("--updates", type=int, default=200, help="size of the synthetic catalog (default: %(default)s)")
    up.add_argument("--seed", type=int, default=1, help="seed of the synthetic catalog (default: %(default)s)")
    up.add_argument("--first-month", type=_month, default="2024-01", help="month of the catalog's oldest updates, YYYY-MM (default: %(default)s)")
    up.add_argument("--server", action="store_true", help="also run a wuacache server (SQLite) synced from the upstream")
    up.set_defaults(handler=cmd_up)

    down = commands.add_parser("down", help="stop every process of the lab")
    down.add_argument("--purge", action="store_true", help="also delete the lab's state folder")
    down.set_defaults(handler=cmd_down)

    status = commands.add_parser("status", help="tell whether the lab runs; exit 3 if not")
    status.set_defaults(handler=cmd_status)

    fault = commands.add_parser("fault", help="inject faults into a running lab").add_subparsers(dest="target", required=True)
    upstream = fault.add_parser("upstream", help="make the upstream fail on one URL path")
    upstream.add_argument("path", help="URL path, e.g. /microsoftupdate/v6/wsusscan/wsusscn2.cab")
    upstream.add_argument("kind", choices=sorted(UPSTREAM_FAULTS))
    upstream.add_argument("--count", type=int, help="only for the next N requests")
    upstream.add_argument("--status", type=int, help="HTTP status of a 'status' fault")
    upstream.add_argument("--delay", type=float, help="seconds a 'slow' answer waits before its body")
    upstream.add_argument("--rate", type=int, help="bytes per second of a 'slow' answer")
    upstream.set_defaults(handler=cmd_fault_upstream)
    host = fault.add_parser("host", help="make an emulated host fail")
    host.add_argument("host", help="host name, as in the inventory")
    host.add_argument("kind", choices=HOST_FAULTS)
    host.add_argument("--hresult", type=_hresult, help="HRESULT of an install_failure or revert_at_reboot, e.g. 0x80070643")
    host.add_argument("--update-id", action="append", help="fail or revert only this UpdateID (repeatable)")
    host.add_argument("--seconds", type=float, help="of a slow_install (per update), of reboot_seconds or of a slow_startup")
    host.add_argument("--count", type=int, help="commands a drop_connection drops")
    host.add_argument("--delay", type=float, help="seconds before a drop_connection drops")
    host.add_argument("--owner", choices=DEFAULT_OWNER_VALUES, help="default_owner: who owns what an administrator creates")
    host.add_argument("--system-default-tls-versions", type=int, choices=(0, 1), help="net_framework_tls: the SystemDefaultTlsVersions value")
    host.add_argument("--sch-use-strong-crypto", type=int, choices=(0, 1), help="net_framework_tls: the SchUseStrongCrypto value")
    host.add_argument("--view", choices=("both", "native", "wow6432node"), help="net_framework_tls: the registry views that hold the values (default: both)")
    host.add_argument("--path", action="append", help="file_in_use: a file of drive C: another program holds open (repeatable)")
    host.set_defaults(handler=cmd_fault_host)
    clear = fault.add_parser("clear", help="remove the faults of one host, or all faults")
    clear.add_argument("--host", help="only this host's")
    clear.set_defaults(handler=cmd_fault_clear)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (processes.LabProcessError, ValueError) as error:
        print(f"lab: {error}", file=sys.stderr)
        return 1
    except FileNotFoundError as error:
        print(f"lab: no lab in {args.state_dir} ({error.filename} is missing); run `lab up` first", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
