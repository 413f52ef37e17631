"""The SSH keys of a lab: each host's host key, the key the lab's user logs on
with, the hosts' authorized keys and the controller's ``known_hosts``.

On Windows, sshd generates its host keys the first time the service starts
and keeps them in ``%ProgramData%\\ssh``, and reads the keys of an
administrator from ``%ProgramData%\\ssh\\administrators_authorized_keys``
rather than from the profile's ``.ssh\\authorized_keys`` (MicrosoftDocs/windowsserverdocs
WindowsServerDocs/administration/OpenSSH/openssh-server-configuration.md,
HostKey and AuthorizedKeysFile). The lab keeps both in each host's folder,
beside its disk.
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncssh

from wuacache_lab.labspec import LabSpec
from wuacache_lab.windows.state import host_dir

KEY_ALGORITHM = "ssh-ed25519"
HOST_KEY_FILE = "ssh_host_ed25519_key"
ADMINISTRATORS_AUTHORIZED_KEYS = "administrators_authorized_keys"


def sshd_dir(hosts_dir: Path, host_name: str) -> Path:
    """A host's ``%ProgramData%\\ssh``: its host key and its administrators' authorized keys."""
    return host_dir(hosts_dir, host_name.upper()) / "ssh"


def ensure_key(path: Path, comment: str) -> asyncssh.SSHKey:
    """The private key at ``path`` (OpenSSH format, its public key beside it as ``.pub``), made the first time."""
    if path.exists():
        return asyncssh.read_private_key(path)
    key = asyncssh.generate_private_key(KEY_ALGORITHM, comment=comment)
    path.parent.mkdir(parents=True, exist_ok=True)
    # ssh refuses a private key that others can read.
    descriptor = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as private:
        private.write(key.export_private_key())
    path.with_suffix(".tmp").replace(path)
    path.with_name(path.name + ".pub").write_bytes(key.export_public_key())
    return key


def ensure_host_key(hosts_dir: Path, host_name: str) -> asyncssh.SSHKey:
    return ensure_key(sshd_dir(hosts_dir, host_name) / HOST_KEY_FILE, comment=f"{host_name.upper()} host key")


def known_hosts_line(address: str, port: int, host_key: asyncssh.SSHKey) -> str:
    """The ``known_hosts`` line of a host key (sshd(8), SSH_KNOWN_HOSTS FILE FORMAT: a port other than 22 in brackets)."""
    pattern = address if port == 22 else f"[{address}]:{port}"
    algorithm, blob = host_key.export_public_key().decode("ascii").split()[:2]
    return f"{pattern} {algorithm} {blob}"


def provision(spec: LabSpec) -> None:
    """Give the lab's hosts their host keys and the lab user's key, and the controller a ``known_hosts`` of them."""
    client_key = ensure_key(spec.ssh_client_key, comment=f"{spec.user} of the wuacache lab")
    lines = []
    for host in spec.hosts:
        if host.ssh_port is None:
            continue
        host_key = ensure_host_key(spec.hosts_dir, host.name)
        # The lab's user is an administrator of every host.
        (sshd_dir(spec.hosts_dir, host.name) / ADMINISTRATORS_AUTHORIZED_KEYS).write_bytes(client_key.export_public_key())
        lines.append(known_hosts_line(host.address, host.ssh_port, host_key))
    spec.known_hosts_file.write_text("".join(f"{line}\n" for line in lines))
