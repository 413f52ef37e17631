"""``os_upgrade`` on an emulated host, driven as the controller drives it
(docs/bridge-protocol.md): Windows Setup reads the version and edition of
the upgrade media's install.wim, ends its down-level phase with an exit
code, and the upgrade completes (or rolls back) at the next restart."""

from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from bridge_client import ROOT, Lab, call, elevated, run_elevated
from wuacache_lab.packages import build_upgrade_media
from wuacache_lab.upstream import UpstreamServer
from wuacache_lab.windows.faults import set_host_fault
from wuacache_lab.windows.host import WindowsHost
from wuacache_lab.windows.profiles import GiB, get_profile

MEDIA = "C:\\Media\\Win11"
SETUP = f"{MEDIA}\\setup.exe"
LOGS = f"{ROOT}\\logs\\os_upgrade"
# What the controller sends for an unattended in-place upgrade.
ARGUMENTS = [
    "/auto", "upgrade", "/quiet", "/eula", "accept", "/noreboot", "/dynamicupdate", "disable",
    "/compat", "ignorewarning", "/showoobe", "none", "/telemetry", "disable",
]  # fmt: skip

CONTINUE_REBOOT = 3
ERROR_FILE_NOT_FOUND = -2147024894
MOSETUP_E_CLEANUP_PENDING = 0xC1900107 - (1 << 32)
MOSETUP_E_COMPAT_MIGCHOICE_BLOCK = 0xC1900204 - (1 << 32)
MOSETUP_E_COMPAT_INSTALLREQ_BLOCK = 0xC1900208 - (1 << 32)
MOSETUP_E_INSTALLDISKSPACE_BLOCK = 0xC190020E - (1 << 32)
MOSETUP_E_COMPAT_SCANONLY = 0xC1900210 - (1 << 32)


@pytest.fixture
def faults(host: WindowsHost, tmp_path: Path) -> Path:
    """The hosts' state folder, where faults are set; restarts take no time."""
    set_host_fault(tmp_path / "hosts", host.name, "reboot_seconds", seconds=0)
    return tmp_path / "hosts"


def media(host: WindowsHost, target: str = "win11-23h2") -> None:
    build_upgrade_media(host.disk.path(MEDIA), target_profile=target)


def os_upgrade(host: WindowsHost, *extra: str, setup_path: str = SETUP) -> dict[str, Any]:
    return elevated(host, "os_upgrade", setup_path=setup_path, arguments=[*ARGUMENTS, *extra])


def os_info(host: WindowsHost) -> dict[str, Any]:
    exit_code, response = call(host, "info")
    assert exit_code == 0, response
    return response["result"]["os"]


def release(host: WindowsHost) -> tuple[str, str, str, int]:
    os = os_info(host)
    return os["caption"], os["version"], os["build_number"], os["ubr"]


def log(host: WindowsHost, path: str) -> str:
    return b"".join(host.disk.read(path)).decode()


def test_the_media_holds_a_wim_whose_xml_names_the_release(host: WindowsHost) -> None:
    media(host)

    wim = host.disk.path(f"{MEDIA}\\sources\\install.wim").read_bytes()

    signature, header_size = struct.unpack_from("<8sI", wim)
    assert (signature, header_size) == (b"MSWIM\0\0\0", 208)
    # rhXmlData, after the lookup table's header: a 7-byte size and a flag byte, then the offset.
    size = int.from_bytes(wim[72:79], "little")
    [offset] = struct.unpack_from("<q", wim, 80)
    xml = wim[offset : offset + size]
    assert xml.startswith(b"\xff\xfe")
    text = xml.decode("utf-16")
    assert "<BUILD>22631</BUILD>" in text and "<EDITIONID>Professional</EDITIONID>" in text


def test_the_upgrade_completes_at_the_restart(host: WindowsHost, faults: Path) -> None:
    media(host)
    before = os_info(host)

    result = os_upgrade(host)

    assert result == {"exit_code": CONTINUE_REBOOT, "logs": LOGS}
    assert os_info(host) == before
    host.reboot()
    target = get_profile("win11-23h2")
    after = os_info(host)
    assert (after["caption"], after["version"], after["build_number"], after["ubr"]) == (
        target.caption,
        target.version,
        str(target.build),
        target.ubr,
    )
    assert after["last_boot_up_time"] != before["last_boot_up_time"]
    assert elevated(host, "history", wuauserv_after={"start_mode": "Manual", "running": False}) == {"history": []}
    assert host.wua().create_object("Microsoft.Update.AgentInfo").GetInfo("ProductVersionString") == target.wua_version


def test_the_restart_of_an_upgrade_lasts_several_restarts(host: WindowsHost, tmp_path: Path) -> None:
    set_host_fault(tmp_path / "hosts", host.name, "reboot_seconds", seconds=60)
    media(host)
    os_upgrade(host)

    host.reboot()

    assert host.state.reboot_seconds == 180
    assert not host.is_reachable()


def test_a_compatibility_scan_changes_nothing(host: WindowsHost, faults: Path) -> None:
    media(host)
    before = release(host)

    assert os_upgrade(host, "/compat", "scanonly")["exit_code"] == MOSETUP_E_COMPAT_SCANONLY

    host.reboot()
    assert release(host) == before


def test_a_blocked_upgrade_fails_at_once_and_copies_its_logs(host: WindowsHost, faults: Path) -> None:
    set_host_fault(faults, host.name, "upgrade_blocked")
    media(host)

    assert os_upgrade(host)["exit_code"] == MOSETUP_E_COMPAT_INSTALLREQ_BLOCK

    assert "0xC1900208" in log(host, f"{LOGS}\\Panther\\setupact.log")
    assert host.state.pending_upgrade is None


def test_an_upgrade_rolled_back_at_the_restart_keeps_the_build(host: WindowsHost, faults: Path) -> None:
    set_host_fault(faults, host.name, "upgrade_rollback")
    media(host)
    before = release(host)
    assert os_upgrade(host)["exit_code"] == CONTINUE_REBOOT

    host.reboot()

    assert release(host) == before
    assert "restored" in log(host, f"{LOGS}\\Rollback\\setupact.log")
    # The next attempt may start.
    assert os_upgrade(host)["exit_code"] == CONTINUE_REBOOT


def test_a_second_run_before_the_restart_is_refused(host: WindowsHost, faults: Path) -> None:
    media(host)
    os_upgrade(host)

    assert os_upgrade(host)["exit_code"] == MOSETUP_E_CLEANUP_PENDING


@pytest.mark.parametrize("target", ["win10-22h2", "server2022", "win10-22h2-fr"])
def test_media_that_cannot_keep_applications_and_data(host: WindowsHost, faults: Path, target: str) -> None:
    media(host, target)
    before = release(host)

    assert os_upgrade(host)["exit_code"] == MOSETUP_E_COMPAT_MIGCHOICE_BLOCK

    host.reboot()
    assert release(host) == before


def test_an_upgrade_needs_free_disk_space(lab: Lab, upstream: UpstreamServer, tmp_path: Path) -> None:
    # 10 GiB free, where an upgrade needs 20.
    profile = replace(get_profile("win10-22h2"), disk_size_bytes=64 * GiB, disk_used_bytes=54 * GiB)
    host = WindowsHost("WIN10-SMALL", tmp_path / "hosts", profile=profile, trusted_ca=lab.ca.ca_cert, proxy=upstream.url)
    media(host)

    assert os_upgrade(host)["exit_code"] == MOSETUP_E_INSTALLDISKSPACE_BLOCK
    assert host.state.pending_upgrade is None


@pytest.mark.parametrize("setup_path", [SETUP, "\\\\fileserver\\iso\\setup.exe", MEDIA])
def test_a_setup_path_that_is_no_file_fails_before_anything_runs(host: WindowsHost, setup_path: str) -> None:
    if setup_path == MEDIA:
        media(host)

    exit_code, response = run_elevated(host, "os_upgrade", setup_path=setup_path, arguments=ARGUMENTS)

    assert exit_code == 1
    assert (response["error"]["hresult"], response["error"]["call"]) == (ERROR_FILE_NOT_FOUND, "Test-Path setup_path")
    assert not host.disk.path(f"{ROOT}\\logs").exists()
