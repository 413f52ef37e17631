"""``wuacache.wua.host_info`` run by ansible-playbook over WinRM against emulated hosts."""

from __future__ import annotations

import subprocess
from pathlib import Path

from e2e_support import BIN, ansible_environment

from wuacache_lab.labspec import LabSpec
from wuacache_lab.windows.profiles import PROFILES

PLAYBOOK = Path(__file__).parent / "playbooks" / "host_info.yml"


def assert_matches_profile(result: dict, host_name: str, profile_name: str) -> None:
    profile = PROFILES[profile_name]
    assert result.get("failed") is not True, result
    assert result["changed"] is False
    assert result["computer_name"] == host_name.upper()
    assert result["os"]["caption"] == profile.caption
    assert result["os"]["build"] == profile.build
    assert result["os"]["architecture"] == profile.os_architecture
    assert result["wua_version"] == profile.wua_version
    assert result["system_drive"]["device_id"] == "C:"
    assert 0 < result["system_drive"]["free_bytes"] <= result["system_drive"]["size_bytes"]
    assert isinstance(result["reboot_pending"], bool)


def test_host_info_over_ntlm_with_message_encryption(ansible_playbook, lab_spec: LabSpec) -> None:
    assert lab_spec.transport == "ntlm"
    rc, results, output = ansible_playbook(PLAYBOOK)
    assert rc == 0, output
    assert sorted(results) == sorted(host.name for host in lab_spec.hosts)
    assert len({host.profile for host in lab_spec.hosts}) == 3
    for host in lab_spec.hosts:
        assert_matches_profile(results[host.name], host.name, host.profile)


def test_host_info_over_basic_auth(ansible_playbook, lab_spec: LabSpec) -> None:
    rc, results, output = ansible_playbook(PLAYBOOK, "-e", "ansible_winrm_transport=basic")
    assert rc == 0, output
    for host in lab_spec.hosts:
        assert_matches_profile(results[host.name], host.name, host.profile)


def test_wrong_password_makes_the_host_unreachable_not_failed(ansible_playbook, lab_spec: LabSpec) -> None:
    rc, results, output = ansible_playbook(PLAYBOOK, "-e", "ansible_password=wrong")
    assert rc == 4, output  # ansible-playbook's exit code for unreachable hosts
    for host in lab_spec.hosts:
        assert results[host.name]["unreachable"] is True
        assert "credentials" in results[host.name]["msg"].lower()


def test_collection_playbook_prints_a_table_of_every_host(collections_path: Path, lab_spec: LabSpec, tmp_path: Path) -> None:
    env = ansible_environment(collections_path, tmp_path, ANSIBLE_CALLBACK_RESULT_FORMAT="yaml")
    completed = subprocess.run(
        [BIN / "ansible-playbook", "-i", str(lab_spec.inventory_file), "wuacache.wua.host_info"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    for host in lab_spec.hosts:
        profile = PROFILES[host.profile]
        table_rows = [line for line in completed.stdout.splitlines() if f"{profile.build}." in line and host.name in line]
        assert len(table_rows) == 1, completed.stdout
        assert profile.wua_version in table_rows[0]
