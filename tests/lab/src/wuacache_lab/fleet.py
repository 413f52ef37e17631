"""The process that runs every emulated Windows host of a lab.

Each host gets its own WinRM endpoint on its own loopback address, and its
OpenSSH server when the lab has some; the hosts' state lives on disk, so stopping and starting this process is like switching
the machines' network off and on, not like reinstalling them.

Run by ``lab up`` as ``python -m wuacache_lab.fleet --state-dir DIR --ready-file FILE``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from wuacache_lab.labspec import LabSpec
from wuacache_lab.pki import ensure_lab_ca, ensure_server_certificate
from wuacache_lab.ssh.keys import ADMINISTRATORS_AUTHORIZED_KEYS, ensure_host_key, sshd_dir
from wuacache_lab.ssh.server import SSHEndpoint
from wuacache_lab.windows.host import WindowsHost
from wuacache_lab.winrm.server import WinRMEndpoint

log = logging.getLogger("wuacache_lab.fleet")


def build_endpoints(spec: LabSpec, proxy: str | None) -> list[WinRMEndpoint | SSHEndpoint]:
    ca = ensure_lab_ca(spec.ca_dir)
    https = None
    if spec.https:
        https = ensure_server_certificate(spec.ca_dir, [host.address for host in spec.hosts])
    endpoints: list[WinRMEndpoint | SSHEndpoint] = []
    for host_spec in spec.hosts:
        host = WindowsHost(
            host_spec.name.upper(),
            spec.hosts_dir,
            profile=host_spec.profile,
            trusted_ca=ca.ca_cert,
            proxy=proxy,
        )
        endpoints.append(
            WinRMEndpoint(host, host_spec.address, host_spec.port, users={spec.user: spec.password}, https=https)
        )
        if host_spec.ssh_port is not None:
            endpoints.append(
                SSHEndpoint(
                    host,
                    host_spec.address,
                    host_spec.ssh_port,
                    host_key=ensure_host_key(spec.hosts_dir, host_spec.name),
                    users={spec.user: spec.password},
                    authorized_keys={spec.user: sshd_dir(spec.hosts_dir, host_spec.name) / ADMINISTRATORS_AUTHORIZED_KEYS},
                    shell=host_spec.ssh_shell,
                )
            )
    return endpoints


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wuacache_lab.fleet")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--proxy", help="HTTP proxy the hosts use to reach Microsoft (the lab's upstream)")
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # asyncssh tells every step of every connection at INFO; the SSH servers log what the hosts do.
    logging.getLogger("asyncssh").setLevel(logging.WARNING)

    spec = LabSpec.load(args.state_dir)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    endpoints = build_endpoints(spec, args.proxy)
    try:
        for endpoint in endpoints:
            endpoint.start()
            log.info("host %s listening on %s", endpoint.host.name, endpoint.url)
        args.ready_file.write_text("ready\n")
        stopping.wait()
    finally:
        for endpoint in endpoints:
            endpoint.stop()
    log.info("all hosts stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
