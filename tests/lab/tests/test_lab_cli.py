"""``lab up`` / ``lab status`` / ``lab down`` as separate processes, as users run them."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import winrm

from wuacache_lab.labspec import LabSpec

LAB = Path(sys.executable).parent / "lab"
BASE_ADDRESS = "127.0.4.1"


def lab(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LAB, "--state-dir", str(state_dir), *args], capture_output=True, text=True, timeout=300)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def computer_name(spec: LabSpec, index: int) -> str:
    host = spec.hosts[index]
    session = winrm.Session(f"http://{host.address}:{host.port}/wsman", auth=(spec.user, spec.password), transport="ntlm")
    return session.run_ps("hostname").std_out.decode().strip()


def boot_time(spec: LabSpec, index: int) -> str:
    state_file = spec.hosts_dir / spec.hosts[index].name.upper() / "state.json"
    return json.loads(state_file.read_text())["last_boot_up_time"]


def test_up_status_down_and_up_again(tmp_path: Path) -> None:
    state_dir = tmp_path / "lab"
    started = lab(state_dir, "up", "--hosts", "2", "--profile", "server2022", "--base-address", BASE_ADDRESS, "--updates", "62")
    try:
        assert started.returncode == 0, started.stderr
        spec = LabSpec.load(state_dir)
        assert [(host.address, host.port, host.profile) for host in spec.hosts] == [
            ("127.0.4.1", 5985, "server2022"),
            ("127.0.4.2", 5985, "server2022"),
        ]
        pids = [int((spec.run_dir / f"{name}.pid").read_text()) for name in ("fleet", "upstream")]
        assert all(alive(pid) for pid in pids)
        assert lab(state_dir, "status").returncode == 0

        inventory = configparser.ConfigParser(allow_no_value=True, delimiters=("=",))
        inventory.read_string(spec.inventory_file.read_text().replace(" ansible_host", "=ansible_host", 2))
        assert [name for name in inventory["windows"]] == [host.name for host in spec.hosts]
        assert inventory["windows:vars"]["ansible_password"] == spec.password
        assert spec.inventory_file.stat().st_mode & 0o077 == 0  # it holds a password

        again = lab(state_dir, "up")
        assert again.returncode == 1 and "already up" in again.stderr

        assert computer_name(spec, 0) == spec.hosts[0].name.upper()
        first_boot = boot_time(spec, 0)
    finally:
        stopped = lab(state_dir, "down")
    assert stopped.returncode == 0
    assert not any(alive(pid) for pid in pids)
    assert lab(state_dir, "status").returncode == 3

    # The hosts come back as they were: same addresses, credentials and state.
    restarted = lab(state_dir, "up")
    try:
        assert restarted.returncode == 0, restarted.stderr
        assert "reusing" in restarted.stdout
        assert LabSpec.load(state_dir).password == spec.password
        assert computer_name(spec, 0) == spec.hosts[0].name.upper()
        assert boot_time(spec, 0) == first_boot
    finally:
        assert lab(state_dir, "down", "--purge").returncode == 0
    assert not state_dir.exists()


def test_hosts_outside_loopback_are_refused(tmp_path: Path) -> None:
    refused = lab(tmp_path / "lab", "up", "--hosts", "1", "--base-address", "192.0.2.1")
    assert refused.returncode == 1
    assert "loopback" in refused.stderr


def test_faults_set_from_the_command_line_reach_the_running_lab(tmp_path: Path) -> None:
    state_dir = tmp_path / "lab"
    started = lab(state_dir, "up", "--hosts", "1", "--profile", "win10-22h2", "--base-address", "127.0.4.20", "--updates", "62")
    try:
        assert started.returncode == 0, started.stderr
        spec = LabSpec.load(state_dir)
        upstream = "http://" + (spec.run_dir / "upstream.ready").read_text().strip()
        cab_url = "http://download.windowsupdate.com/microsoftupdate/v6/wsusscan/wsusscn2.cab"
        assert requests.head(cab_url, proxies={"http": upstream}, timeout=10).status_code == 200

        assert lab(state_dir, "fault", "upstream", "/microsoftupdate/v6/wsusscan/wsusscn2.cab", "status", "--status", "503").returncode == 0
        assert requests.head(cab_url, proxies={"http": upstream}, timeout=10).status_code == 503

        host = spec.hosts[0].name
        assert lab(state_dir, "fault", "host", host, "drop_connection").returncode == 0
        with pytest.raises(requests.exceptions.ConnectionError):
            computer_name(spec, 0)
        assert computer_name(spec, 0) == host.upper()  # only the next command was dropped

        assert lab(state_dir, "fault", "clear").returncode == 0
        assert requests.head(cab_url, proxies={"http": upstream}, timeout=10).status_code == 200

        unknown = lab(state_dir, "fault", "host", "no-such-host", "disk_full")
        assert unknown.returncode == 1 and "no host 'no-such-host'" in unknown.stderr
    finally:
        assert lab(state_dir, "down", "--purge").returncode == 0


def test_fault_without_a_lab_says_so(tmp_path: Path) -> None:
    refused = lab(tmp_path / "nothing", "fault", "clear")
    assert refused.returncode == 1
    assert "run `lab up` first" in refused.stderr


def test_https_lab_serves_winrm_with_a_certificate_of_the_lab_ca(tmp_path: Path) -> None:
    state_dir = tmp_path / "lab"
    started = lab(state_dir, "up", "--hosts", "1", "--https", "--base-address", "127.0.4.30", "--updates", "62")
    try:
        assert started.returncode == 0, started.stderr
        spec = LabSpec.load(state_dir)
        host = spec.hosts[0]
        assert host.port == 5986
        assert "ansible_winrm_scheme=https" in spec.inventory_file.read_text()
        session = winrm.Session(
            f"https://{host.address}:{host.port}/wsman",
            auth=(spec.user, spec.password),
            transport="ssl",
            server_cert_validation="validate",
            ca_trust_path=str(spec.ca_dir / "ca.pem"),
        )
        result = session.run_ps("$env:COMPUTERNAME")
        assert (result.status_code, result.std_out.strip()) == (0, host.name.upper().encode())
    finally:
        assert lab(state_dir, "down", "--purge").returncode == 0


def test_ssh_lab_is_reached_with_its_inventory_and_keeps_its_host_keys(tmp_path: Path) -> None:
    state_dir = tmp_path / "lab"
    up = ("up", "--hosts", "2", "--base-address", "127.0.4.40", "--updates", "62", "--connection", "ssh", "--ssh-port", "2022", "--ssh-shell", "mixed")
    started = lab(state_dir, *up)
    try:
        assert started.returncode == 0, started.stderr
        spec = LabSpec.load(state_dir)
        assert [(host.ssh_port, host.ssh_shell) for host in spec.hosts] == [(2022, "powershell"), (2022, "cmd")]
        inventory = spec.inventory_file.read_text()
        assert "ansible_connection=ssh" in inventory
        assert f"{spec.hosts[1].name} ansible_host=127.0.4.41 ansible_port=2022 ansible_shell_type=cmd" in inventory
        known_hosts = spec.known_hosts_file.read_text()
        # What the inventory gives ssh: the lab's key, the hosts' keys checked against the lab's known_hosts.
        for host in spec.hosts:
            reached = subprocess.run(
                ["ssh", "-n", "-p", str(host.ssh_port), "-i", str(spec.ssh_client_key), "-o", f"UserKnownHostsFile={spec.known_hosts_file}"]
                + ["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", f"{spec.user}@{host.address}", "hostname"],
                capture_output=True,
                timeout=60,
                check=False,
            )
            assert (reached.returncode, reached.stdout) == (0, f"{host.name.upper()}\r\n".encode()), reached.stderr
    finally:
        assert lab(state_dir, "down").returncode == 0

    restarted = lab(state_dir, "up")
    try:
        assert restarted.returncode == 0, restarted.stderr
        assert spec.known_hosts_file.read_text() == known_hosts
    finally:
        assert lab(state_dir, "down", "--purge").returncode == 0
