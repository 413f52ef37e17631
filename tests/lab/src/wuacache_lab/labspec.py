"""A lab's description on disk: which hosts it emulates, where, and how to log in.

``lab up`` writes it once; the fleet process, ``lab down``, the inventory and
the tests all read the same file, so a lab can be stopped and started again
with the same hosts, addresses and credentials.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

LAB_USER = "Administrator"


# The default shell of OpenSSH's server, HKLM\SOFTWARE\OpenSSH DefaultShell: cmd.exe when unset, or
# powershell.exe (MicrosoftDocs/windowsserverdocs WindowsServerDocs/administration/OpenSSH/openssh-server-configuration.md).
SSH_SHELLS = ("powershell", "cmd")


@dataclass(frozen=True)
class HostSpec:
    name: str
    address: str
    port: int
    profile: str
    # The port of the host's OpenSSH server (None when it runs none) and its default shell, one of SSH_SHELLS.
    ssh_port: int | None = None
    ssh_shell: str = "cmd"


@dataclass
class LabSpec:
    state_dir: Path
    hosts: list[HostSpec]
    user: str = LAB_USER
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    # How the inventory reaches the hosts: "winrm", or "ssh" (the hosts then also run OpenSSH's server).
    connection: str = "winrm"
    transport: str = "ntlm"
    https: bool = False
    updates: int = 200
    seed: int = 1
    # Month 1 of the synthetic catalog, "YYYY-MM".
    first_month: str = "2024-01"
    # Where `lab up --server` runs the wuacache server; None without one.
    server_port: int | None = None

    @property
    def spec_file(self) -> Path:
        return self.state_dir / "lab.json"

    # Everything else a lab keeps lives under these folders.
    @property
    def ca_dir(self) -> Path:
        return self.state_dir / "ca"

    @property
    def catalog_dir(self) -> Path:
        return self.state_dir / "catalog"

    @property
    def upstream_dir(self) -> Path:
        return self.state_dir / "upstream"

    @property
    def hosts_dir(self) -> Path:
        return self.state_dir / "hosts"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def server_dir(self) -> Path:
        return self.state_dir / "server"

    @property
    def server_url(self) -> str | None:
        return None if self.server_port is None else f"http://127.0.0.1:{self.server_port}"

    @property
    def inventory_file(self) -> Path:
        return self.state_dir / "inventory.ini"

    @property
    def ssh_dir(self) -> Path:
        return self.state_dir / "ssh"

    @property
    def ssh_client_key(self) -> Path:
        """The private key the lab's user logs on to the hosts' OpenSSH servers with."""
        return self.ssh_dir / "id_ed25519"

    @property
    def known_hosts_file(self) -> Path:
        return self.ssh_dir / "known_hosts"

    def save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        data = asdict(self)
        data["state_dir"] = str(self.state_dir)
        tmp = self.spec_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.chmod(0o600)
        tmp.replace(self.spec_file)

    @classmethod
    def load(cls, state_dir: Path) -> LabSpec:
        data = json.loads((state_dir / "lab.json").read_text())
        data["state_dir"] = state_dir
        data["hosts"] = [HostSpec(**host) for host in data["hosts"]]
        return cls(**data)


def plan_hosts(
    count: int, profiles: list[str], base_address: str, port: int, ssh_port: int | None = None, ssh_shells: list[str] | None = None
) -> list[HostSpec]:
    """One host per loopback address from ``base_address`` on, all on ``port``
    (and on ``ssh_port`` with OpenSSH's server, whose default shells are
    ``ssh_shells`` in turn), so that an inventory of the lab looks like one of
    real hosts."""
    shells = ssh_shells or ["cmd"]
    first = ipaddress.IPv4Address(base_address)
    if not first.is_loopback:
        raise ValueError(f"lab hosts only live on loopback addresses, not {first}")
    hosts = []
    for index, profile in enumerate(profiles[:count]):
        address = first + index
        if not address.is_loopback:
            raise ValueError(f"{count} hosts from {first} leave the loopback range")
        hosts.append(
            HostSpec(
                name=f"{profile.split('-')[0]}-{index + 1:02d}",
                address=str(address),
                port=port,
                profile=profile,
                ssh_port=ssh_port,
                ssh_shell=shells[index % len(shells)],
            )
        )
    return hosts
