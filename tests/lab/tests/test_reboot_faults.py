"""Restarts that do not go as planned, as the lab's host faults make them:
``revert_at_reboot`` (servicing undoes an install during the restart that was
to complete it) and ``stuck_reboot_pending`` (a broken servicing stack marks
a pending restart again after every restart), ``slow_startup`` (back from a
restart, the host answers before Windows has finished configuring updates)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from bridge_client import (
    ALWAYS_REQUIRES_REBOOT,
    NEVER_REBOOTS,
    Lab,
    call,
    criteria_for,
    download,
    ensure_cab,
    install,
    pending,
    scan,
)
from wuacache_lab.cli import main as lab_cli
from wuacache_lab.labspec import LabSpec, plan_hosts
from wuacache_lab.windows.faults import set_host_fault
from wuacache_lab.windows.host import WindowsHost

CBS_E_INSTALLERS_FAILED = 0x800F0922 - (1 << 32)
ERROR_INSTALL_FAILURE = 0x80070643 - (1 << 32)
FAILED = 4
SUCCEEDED = 2


@pytest.fixture
def faults(host: WindowsHost, tmp_path: Path) -> Path:
    """The hosts' state folder, where faults are set; restarts take no time."""
    set_host_fault(tmp_path / "hosts", host.name, "reboot_seconds", seconds=0)
    return tmp_path / "hosts"


def installed_pending_restart(lab: Lab, host: WindowsHost, count: int = 1) -> list[dict]:
    ensure_cab(lab, host)
    updates = pending(host, ALWAYS_REQUIRES_REBOOT, count)
    download(lab, host, *updates)
    assert install(host, *updates)["reboot_required"] is True
    return updates


def reboot_indicators(host: WindowsHost) -> list[str]:
    exit_code, response = call(host, "info")
    assert exit_code == 0, response
    return response["result"]["reboot_indicators"]


# revert_at_reboot


def test_an_install_reverted_at_the_restart_stays_uninstalled(lab: Lab, host: WindowsHost, faults: Path) -> None:
    set_host_fault(faults, host.name, "revert_at_reboot")
    [update] = installed_pending_restart(lab, host)

    host.reboot()

    after = scan(host, criteria_for(update))
    assert after["updates"][0]["is_installed"] is False
    [entry] = after["history"]
    assert (entry["operation"], entry["result_code"], entry["hresult"], entry["update_id"]) == (
        1,
        FAILED,
        CBS_E_INSTALLERS_FAILED,
        update["update_id"],
    )
    # The restart is over: another attempt may start, and is reverted again.
    assert reboot_indicators(host) == []
    assert install(host, update)["reboot_required"] is True
    host.reboot()
    assert [entry["result_code"] for entry in scan(host, criteria_for(update))["history"]] == [FAILED, FAILED]


@pytest.mark.parametrize("named", [True, False], ids=["named", "another-named"])
def test_revert_at_reboot_reverts_only_the_updates_it_names(
    lab: Lab, host: WindowsHost, faults: Path, named: bool
) -> None:
    [update] = installed_pending_restart(lab, host)
    update_id = update["update_id"] if named else "00000000-0000-0000-0000-000000000000"
    set_host_fault(faults, host.name, "revert_at_reboot", update_ids=[update_id.upper()], hresult=0x80070643)

    host.reboot()

    after = scan(host, criteria_for(update))
    assert after["updates"][0]["is_installed"] is not named
    [entry] = after["history"]
    assert (entry["result_code"], entry["hresult"]) == ((FAILED, ERROR_INSTALL_FAILURE) if named else (SUCCEEDED, 0))


def test_revert_at_reboot_leaves_installs_without_a_restart_alone(lab: Lab, host: WindowsHost, faults: Path) -> None:
    set_host_fault(faults, host.name, "revert_at_reboot")
    ensure_cab(lab, host)
    [update] = pending(host, NEVER_REBOOTS)
    download(lab, host, update)
    install(host, update)

    host.reboot()

    assert scan(host, criteria_for(update))["updates"][0]["is_installed"] is True


# stuck_reboot_pending


def test_a_stuck_reboot_pending_marker_comes_back_after_every_restart(
    lab: Lab, host: WindowsHost, faults: Path
) -> None:
    set_host_fault(faults, host.name, "stuck_reboot_pending")
    ensure_cab(lab, host)
    [update] = pending(host, NEVER_REBOOTS)
    download(lab, host, update)

    for _ in range(2):
        host.reboot()
        assert reboot_indicators(host) == ["cbs_reboot_pending"]
        assert install(host, update)["reboot_required_before_installation"] is True

    assert scan(host, criteria_for(update))["updates"][0]["is_installed"] is False


def test_without_the_fault_the_marker_goes_with_the_restart(lab: Lab, host: WindowsHost, faults: Path) -> None:
    host.set_reboot_marker("cbs_reboot_pending")

    host.reboot()

    assert reboot_indicators(host) == []


# slow_startup


def startup(host: WindowsHost) -> dict:
    exit_code, response = call(host, "info")
    assert exit_code == 0, response
    return response["result"]["startup"]


def test_a_host_answers_before_it_has_finished_starting_up(lab: Lab, host: WindowsHost, faults: Path) -> None:
    [update] = installed_pending_restart(lab, host)
    assert startup(host) == {"logon_ui_ready": True, "servicing_in_progress": 1}
    boot_before = host.state.last_boot_up_time
    set_host_fault(faults, host.name, "slow_startup", seconds=5)

    host.reboot()

    # Back on a new boot, but no logon screen yet and servicing still completing the install.
    assert host.state.last_boot_up_time != boot_before
    assert startup(host) == {"logon_ui_ready": False, "servicing_in_progress": 2}
    assert "cbs_reboot_pending" in reboot_indicators(host)
    assert host.state.pending_changes
    deadline = time.monotonic() + 30
    while not startup(host)["logon_ui_ready"]:
        assert time.monotonic() < deadline, "the host never finished starting up"
        time.sleep(0.1)
    assert startup(host) == {"logon_ui_ready": True, "servicing_in_progress": 0}
    assert reboot_indicators(host) == []
    assert scan(host, criteria_for(update))["updates"][0]["is_installed"] is True


# lab fault host


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["revert_at_reboot"], {}),
        (
            ["revert_at_reboot", "--update-id", "abc", "--hresult", "0x800F0922"],
            {"update_ids": ["abc"], "hresult": 0x800F0922},
        ),
        (["stuck_reboot_pending"], {}),
        (["slow_startup", "--seconds", "30"], {"seconds": 30.0}),
        (["upgrade_rollback"], {}),
        (["upgrade_blocked"], {}),
        (
            ["net_framework_tls", "--system-default-tls-versions", "1", "--sch-use-strong-crypto", "1"],
            {"system_default_tls_versions": 1, "sch_use_strong_crypto": 1},
        ),
        (["net_framework_tls", "--sch-use-strong-crypto", "1", "--view", "wow6432node"], {"sch_use_strong_crypto": 1, "view": "wow6432node"}),
    ],
)
def test_the_lab_command_sets_the_faults(tmp_path: Path, arguments: list[str], expected: dict) -> None:
    spec = LabSpec(state_dir=tmp_path, hosts=plan_hosts(1, ["win10-22h2"], "127.0.1.1", 5985))
    spec.save()
    [host_spec] = spec.hosts

    assert lab_cli(["--state-dir", str(tmp_path), "fault", "host", host_spec.name, *arguments]) == 0

    host = WindowsHost(host_spec.name.upper(), spec.hosts_dir, profile="win10-22h2", trusted_ca=tmp_path / "ca.pem")
    assert host.faults.current() == {arguments[0]: expected}
