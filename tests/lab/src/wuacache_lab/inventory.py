"""The Ansible inventory of a lab: its emulated hosts, as real ones would be listed."""

from __future__ import annotations

from wuacache_lab.labspec import HostSpec, LabSpec


def render_inventory(spec: LabSpec) -> str:
    lines = ["# Emulated Windows hosts of a wuacache lab.", "[windows]"]
    lines += [_host_line(spec, host) for host in spec.hosts]
    lines += ["", "[windows:vars]", *_connection_vars(spec)]
    token_file = spec.server_dir / "controller.token"
    if spec.server_url is not None and token_file.exists():
        lines += [f"wua_server_url={spec.server_url}", f"wua_server_token={token_file.read_text().strip()}"]
    lines.append("")
    return "\n".join(lines)


def _host_line(spec: LabSpec, host: HostSpec) -> str:
    if spec.connection == "ssh":
        # Ansible's shell type is the host's DefaultShell (Ansible's "Windows SSH" guide).
        reach = f"ansible_port={host.ssh_port} ansible_shell_type={host.ssh_shell}"
    else:
        reach = f"ansible_port={host.port}"
    return f"{host.name} ansible_host={host.address} {reach} lab_profile={host.profile}"


def _connection_vars(spec: LabSpec) -> list[str]:
    if spec.connection == "ssh":
        # The lab's key logs on, and the hosts' keys are checked against the lab's known_hosts.
        return [
            "ansible_connection=ssh",
            f"ansible_user={spec.user}",
            f"ansible_ssh_private_key_file={spec.ssh_client_key}",
            f"ansible_ssh_common_args=-o UserKnownHostsFile={spec.known_hosts_file} -o StrictHostKeyChecking=yes",
        ]
    return [
        "ansible_connection=winrm",
        f"ansible_winrm_transport={spec.transport}",
        f"ansible_winrm_scheme={'https' if spec.https else 'http'}",
        "ansible_winrm_server_cert_validation=ignore",
        f"ansible_user={spec.user}",
        f"ansible_password={spec.password}",
    ]


def write_inventory(spec: LabSpec) -> None:
    spec.inventory_file.write_text(render_inventory(spec))
    spec.inventory_file.chmod(0o600)
