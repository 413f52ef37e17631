"""The scan and an install (with its restarts) over Ansible's ssh connection, as on hosts whose
OpenSSH server is reached instead of WinRM (Ansible's "Windows SSH" guide):
one host with powershell.exe as its default shell and the lab's key, one with
cmd.exe and the lab user's password.

Every assertion about a host is checked against the lab's ground truth.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests
from e2e_support import lab, run_playbook

from wuacache_lab.labspec import LabSpec
from wuacache_lab.windows.state import read_host_state

# Away from the other e2e labs (127.0.3.1, 127.0.3.21...) and from `make demo` (127.0.1.x).
SSH_BASE_ADDRESS = "127.0.3.41"
PLAYBOOKS = Path(__file__).parent / "playbooks"


@pytest.fixture(scope="module")
def ssh_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabSpec]:
    state_dir = tmp_path_factory.mktemp("ssh-lab")
    today = date.today()
    year, month = divmod(today.year * 12 + today.month - 1 - 2, 12)
    started = lab(
        state_dir,
        "up",
        *("--hosts", "2", "--profile", "mixed", "--base-address", SSH_BASE_ADDRESS),
        *("--updates", "80", "--first-month", f"{year:04d}-{month + 1:02d}", "--server"),
        *("--connection", "ssh", "--ssh-shell", "mixed"),
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield LabSpec.load(state_dir)
    finally:
        stopped = lab(state_dir, "down")
        assert stopped.returncode == 0, stopped.stderr


def playbook(spec: LabSpec, collections: Path, tmp_path: Path, name: str, host: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    rc, results, output = run_playbook(collections, spec.inventory_file, tmp_path, PLAYBOOKS / f"{name}.yml", "-e", f"wua_hosts={host}", *extra)
    return rc, results.get(host, {}), output


def logons(spec: LabSpec, host: str) -> list[str]:
    """How the host's OpenSSH server authenticated each connection, in order."""
    pattern = re.compile(rf"{host.upper()}: accepted (\w+) for {spec.user} ")
    return pattern.findall((spec.log_dir / "fleet.log").read_text())


def test_scan_with_powershell_as_default_shell_and_a_key(ssh_lab: LabSpec, collections_path: Path, tmp_path: Path) -> None:
    host = ssh_lab.hosts[0]
    assert host.ssh_shell == "powershell"

    rc, result, output = playbook(ssh_lab, collections_path, tmp_path, "scan", host.name)

    assert rc == 0, output
    assert sum(result["counts"].values()) == len(result["updates"]) > 0
    installed = {update["update_id"] for update in result["updates"] if update["status"] == "OK"}
    assert installed <= set(read_host_state(ssh_lab.hosts_dir, host.name.upper()).installed)
    server_view = requests.get(
        f"{ssh_lab.server_url}/api/v1/hosts/{host.name}",
        headers={"Authorization": f"Bearer {(ssh_lab.server_dir / 'admin.token').read_text().strip()}"},
        timeout=30,
    )
    assert server_view.json()["counts"] == result["counts"]
    assert set(logons(ssh_lab, host.name)) == {"publickey"}


def test_install_and_restart_with_cmd_as_default_shell_and_a_password(ssh_lab: LabSpec, collections_path: Path, tmp_path: Path) -> None:
    host = ssh_lab.hosts[1]
    assert host.ssh_shell == "cmd"
    booted = read_host_state(ssh_lab.hosts_dir, host.name.upper()).last_boot_up_time
    password_only = {
        "ansible_password": ssh_lab.password,
        "ansible_ssh_extra_args": "-o PubkeyAuthentication=no",
        # sshpass rather than the default SSH_ASKPASS: the server sees the same password logon.
        "ansible_ssh_password_mechanism": "sshpass",
    }

    rc, result, output = playbook(
        ssh_lab,
        collections_path,
        tmp_path,
        "install",
        host.name,
        "-e",
        json.dumps({**password_only, "wua_default_allow": True, "wua_wait_for_files": 120, "wua_reboot": True}),
    )

    assert rc == 0, output
    assert result["installed"] > 0
    truth = read_host_state(ssh_lab.hosts_dir, host.name.upper())
    ok = {update["update_id"] for update in result["updates"] if update["status"] == "OK"}
    assert ok and ok <= set(truth.installed)
    # The restarts the installs asked for happened, and the connection came back after each.
    assert not truth.pending_changes
    assert result["rebooted"] is (truth.last_boot_up_time != booted)
    assert set(logons(ssh_lab, host.name)) == {"password"}
