"""The Ansible inventory of a lab: its emulated hosts, as real ones would be listed."""

from __future__ import annotations

from wuacache_lab.labspec import LabSpec


def render_inventory(spec: LabSpec) -> str:
    lines = ["# Emulated Windows hosts of a wuacache lab.", "[windows]"]
    for host in spec.hosts:
        lines.append(f"{host.name} ansible_host={host.address} ansible_port={host.port} lab_profile={host.profile}")
    lines += [
        "",
        "[windows:vars]",
        "ansible_connection=winrm",
        f"ansible_winrm_transport={spec.transport}",
        f"ansible_winrm_scheme={'https' if spec.https else 'http'}",
        "ansible_winrm_server_cert_validation=ignore",
        f"ansible_user={spec.user}",
        f"ansible_password={spec.password}",
    ]
    token_file = spec.server_dir / "controller.token"
    if spec.server_url is not None and token_file.exists():
        lines += [f"wua_server_url={spec.server_url}", f"wua_server_token={token_file.read_text().strip()}"]
    lines.append("")
    return "\n".join(lines)


def write_inventory(spec: LabSpec) -> None:
    spec.inventory_file.write_text(render_inventory(spec))
    spec.inventory_file.chmod(0o600)
