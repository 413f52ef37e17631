"""An emulated host as a machine: profiles, command lines, state, restarts,
faults and its disk."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from wuacache_lab.windows.disk import ADMINISTRATORS_SID, SYSTEM_SID, SecurityDescriptor
from wuacache_lab.windows.errors import HResultError
from wuacache_lab.windows.faults import clear_host_faults, set_host_fault
from wuacache_lab.windows.host import WindowsHost
from wuacache_lab.windows.owners import account_sid
from wuacache_lab.windows.process import MAX_COMMAND_LINE, ConnectionDropped, LogonSession
from wuacache_lab.windows.profiles import MIXED_ROTATION, PROFILES, profile_for, profile_mix

NETWORK = LogonSession(user="Administrator", logon_type="network")


def new_host(tmp_path: Path, profile: str = "win10-22h2", name: str = "win10-01") -> WindowsHost:
    return WindowsHost(name, tmp_path, profile=profile, trusted_ca=tmp_path / "ca.pem")


def encoded(script: str) -> str:
    """What Ansible's raw (and pywinrm's run_ps) send for a script."""
    payload = base64.b64encode(script.encode("utf-16-le")).decode("ascii")
    return f"powershell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand {payload}"


def wait_until_reachable(host: WindowsHost, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not host.is_reachable():
        assert time.monotonic() < deadline, "the host did not come back"
        time.sleep(0.05)


# Profiles


@pytest.mark.parametrize(
    ("profile", "caption", "version", "architecture", "product_type"),
    [
        ("win10-22h2", "Microsoft Windows 10 Pro", "10.0.19045", "64-bit", 1),
        ("win10-22h2-x86", "Microsoft Windows 10 Pro", "10.0.19045", "32-bit", 1),
        ("win11-23h2", "Microsoft Windows 11 Pro", "10.0.22631", "64-bit", 1),
        ("win11-23h2-arm64", "Microsoft Windows 11 Pro", "10.0.22631", "ARM 64-bit Processor", 1),
        ("server2019", "Microsoft Windows Server 2019 Standard", "10.0.17763", "64-bit", 3),
        ("server2022", "Microsoft Windows Server 2022 Standard", "10.0.20348", "64-bit", 3),
    ],
)
def test_profiles_show_in_win32_operatingsystem(
    tmp_path: Path, profile: str, caption: str, version: str, architecture: str, product_type: int
) -> None:
    system = new_host(tmp_path, profile).system()

    (os_instance,) = system.cim_instances("Win32_OperatingSystem")

    assert (os_instance["Caption"], os_instance["Version"]) == (caption, version)
    assert os_instance["BuildNumber"] == version.rsplit(".", 1)[1]
    assert (os_instance["OSArchitecture"], os_instance["ProductType"]) == (architecture, product_type)
    current_version = system.registry_values(r"HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion")
    assert current_version["CurrentBuildNumber"] == os_instance["BuildNumber"]
    assert current_version["UBR"] == PROFILES[profile].ubr


def test_a_french_host_reports_its_display_language(tmp_path: Path) -> None:
    (os_instance,) = new_host(tmp_path, "win10-22h2-fr").system().cim_instances("Win32_OperatingSystem")

    assert (os_instance["OSLanguage"], os_instance["MUILanguages"]) == (1036, ["fr-FR"])


def test_mixed_labs_cover_every_x64_release_first_then_every_profile() -> None:
    assert profile_mix("mixed", 4) == ["win10-22h2", "win11-23h2", "server2019", "server2022"]
    assert set(profile_mix("mixed", len(MIXED_ROTATION))) == set(PROFILES)
    assert profile_for(len(MIXED_ROTATION), "mixed").name == "win10-22h2"
    assert profile_mix("server2022", 3) == ["server2022"] * 3
    with pytest.raises(ValueError):
        profile_mix("windows-xp", 1)


# Command lines


def test_an_over_long_command_line_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    line = encoded("shutdown.exe /r /t 0\n# " + "x" * 4000)
    assert len(line) > MAX_COMMAND_LINE

    result = host.execute(line, b"", NETWORK)

    assert (result.stdout, result.stderr, result.exit_code) == (b"", b"The command line is too long.\r\n", 1)
    assert host.is_reachable() and host.state.reboot_at is None


def test_a_command_line_of_the_maximum_length_runs(tmp_path: Path) -> None:
    prefix = "powershell -Command Write-Output '"
    line = prefix + "x" * (MAX_COMMAND_LINE - len(prefix) - 1) + "'"
    assert len(line) == MAX_COMMAND_LINE

    result = new_host(tmp_path).execute(line, b"", NETWORK)

    assert result.exit_code == 0
    assert result.stdout == b"x" * (MAX_COMMAND_LINE - len(prefix) - 1) + b"\r\n"


@pytest.mark.parametrize(
    ("script", "stdout", "exit_code"),
    [
        ("$env:COMPUTERNAME", b"WIN10-01\r\n", 0),
        ("hostname", b"win10-01\r\n", 0),
        ("Write-Output 'it''s here'; exit 3", b"it's here\r\n", 3),
        ("Write-Output 'first'\nWrite-Output \"second\"", b"first\r\nsecond\r\n", 0),
    ],
)
def test_simple_scripts_run(tmp_path: Path, script: str, stdout: bytes, exit_code: int) -> None:
    result = new_host(tmp_path).execute(encoded(script), b"", NETWORK)

    assert (result.stdout, result.stderr, result.exit_code) == (stdout, b"", exit_code)


def test_a_program_the_host_does_not_have_is_refused(tmp_path: Path) -> None:
    result = new_host(tmp_path).execute("ipconfig /all", b"", NETWORK)

    assert (result.stdout, result.stderr, result.exit_code) == (b"", b"The emulated host cannot run this program.\r\n", 1)


def test_a_command_nothing_defines_fails_as_in_powershell(tmp_path: Path) -> None:
    result = new_host(tmp_path).execute(encoded("Write-Output 'a'\nInvoke-Reticulation"), b"", NETWORK)

    assert (result.stdout, result.exit_code) == (b"a\r\n", 1)
    assert b"The term 'Invoke-Reticulation' is not recognized as the name of a cmdlet" in result.stderr
    assert b"At line:2 char:1" in result.stderr


def test_what_the_lab_cannot_run_is_refused_as_such(tmp_path: Path) -> None:
    result = new_host(tmp_path).execute(encoded("Write-Output 'a' && Write-Output 'b'"), b"", NETWORK)

    # && is PowerShell 7's: Windows PowerShell 5.1 does not parse the script, and runs none of it.
    assert (result.stdout, result.exit_code) == (b"", 1)
    assert b"At line:1 char:18" in result.stderr


# State and restarts


def test_state_survives_a_restart_of_the_emulator(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    host.system().set_service_start_mode("wuauserv", "Disabled")
    host.set_reboot_marker("pending_file_rename")
    host.disk.write(r"C:\ProgramData\note.txt", [b"kept"])
    booted = host.state.last_boot_up_time

    again = new_host(tmp_path)

    assert again.state.wuauserv_start_mode == "Disabled"
    assert again.state.reboot_markers == ["pending_file_rename"]
    assert again.state.last_boot_up_time == booted
    assert b"".join(again.disk.read(r"c:\programdata\NOTE.TXT")) == b"kept"
    assert (tmp_path / "win10-01" / "state.json").is_file()


def test_shutdown_restarts_the_host(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    set_host_fault(tmp_path, host.name, "reboot_seconds", seconds=0.3)
    host.set_reboot_marker("cbs_reboot_pending")
    booted = host.state.last_boot_up_time

    result = host.execute('shutdown /r /t 0 /c "wuacache reboot"', b"", NETWORK)

    assert result.exit_code == 0
    assert not host.is_reachable()
    with pytest.raises(ConnectionDropped):
        host.execute(encoded("hostname"), b"", NETWORK)
    wait_until_reachable(host)
    assert host.state.last_boot_up_time > booted
    assert host.state.reboot_markers == []


def test_a_delayed_restart_leaves_the_host_up_until_then(tmp_path: Path) -> None:
    host = new_host(tmp_path)

    first = host.execute(encoded("shutdown.exe /r /t 600"), b"", NETWORK)
    second = host.execute("shutdown /r /t 0", b"", NETWORK)

    assert first.exit_code == 0
    assert host.is_reachable()
    assert second.exit_code == 1190
    assert b"already been scheduled" in second.stderr


def test_a_scheduled_restart_can_be_aborted_in_its_time_out_only(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    booted = host.state.last_boot_up_time
    assert host.execute("shutdown.exe /r /t 600", b"", NETWORK).exit_code == 0

    aborted = host.execute("shutdown.exe /a", b"", NETWORK)
    again = host.execute("shutdown.exe /a", b"", NETWORK)

    assert aborted.exit_code == 0
    assert host.state.reboot_at is None
    assert again.exit_code == 1116
    assert b"no shutdown was in progress" in again.stderr
    # Another restart may be scheduled now.
    assert host.execute("shutdown /r /t 0", b"", NETWORK).exit_code == 0
    wait_until_reachable(host)
    assert host.state.last_boot_up_time > booted


def test_restart_after_a_restart_of_the_emulator_still_completes(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    set_host_fault(tmp_path, host.name, "reboot_seconds", seconds=0.2)
    booted = host.state.last_boot_up_time
    host.reboot()

    again = new_host(tmp_path)

    wait_until_reachable(again)
    assert again.state.last_boot_up_time > booted


# Faults


def test_dropped_connections_hit_the_next_commands_only(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    set_host_fault(tmp_path, host.name, "drop_connection", count=2)

    for _ in range(2):
        with pytest.raises(ConnectionDropped):
            host.execute(encoded("hostname"), b"", NETWORK)

    assert host.execute(encoded("hostname"), b"", NETWORK).stdout == b"win10-01\r\n"


def test_faults_can_be_cleared_from_another_process(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    set_host_fault(tmp_path, "WIN10-01", "disk_full")  # computer names ignore case
    assert host.disk.free_bytes() == 4096

    clear_host_faults(tmp_path, "win10-01")

    assert host.disk.free_bytes() > 4096
    with pytest.raises(ValueError):
        set_host_fault(tmp_path, "win10-01", "meteor_strike")


# Disk


def test_disk_space_follows_what_the_host_writes(tmp_path: Path) -> None:
    disk = new_host(tmp_path).disk
    free = disk.free_bytes()

    disk.write(r"C:\ProgramData\blob.bin", [b"\0" * 4096] * 4)

    assert disk.free_bytes() == free - 16384
    assert disk.size(r"C:\PROGRAMDATA\Blob.BIN") == 16384


def test_a_full_disk_refuses_writes(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    set_host_fault(tmp_path, host.name, "disk_full")

    with pytest.raises(HResultError) as error:
        host.disk.write(r"C:\ProgramData\blob.bin", [b"data"])

    assert error.value.hresult == 0x80070070


def test_the_security_of_items_reads_and_writes_as_sddl(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    alice = account_sid(LogonSession(user="alice", logon_type="network", administrator=False))
    host.disk.make_dirs(r"C:\ProgramData\planted", owner=alice)
    host.disk.write(r"C:\ProgramData\planted\note.txt", [b"x"], owner=alice)

    # Well-known SIDs by their aliases, any other SID as its string; Windows' own items are SYSTEM's.
    assert host.disk.security(r"C:\ProgramData\planted").sddl == f"O:{alice}D:AI"
    assert host.disk.security(r"C:\ProgramData\planted\note.txt").sddl == f"O:{alice}D:AI"
    assert host.disk.security(r"C:\ProgramData").sddl == "O:SYD:AI"

    private = SecurityDescriptor.from_sddl("O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)")
    assert private == SecurityDescriptor(ADMINISTRATORS_SID, protected=True, full_control=(SYSTEM_SID, ADMINISTRATORS_SID))
    assert private.sddl == "O:BAD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"


def test_a_moved_file_keeps_its_owner_and_a_removed_one_its_record_goes(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    alice = account_sid(LogonSession(user="alice", logon_type="network", administrator=False))
    host.disk.write(r"C:\ProgramData\a.txt", [b"x"], owner=alice)

    host.disk.move(r"C:\ProgramData\a.txt", r"C:\ProgramData\b.txt")
    assert host.disk.security(r"C:\ProgramData\b.txt").owner == alice
    host.disk.remove(r"C:\ProgramData\b.txt")
    host.disk.write(r"C:\ProgramData\b.txt", [b"y"])

    assert host.disk.security(r"C:\ProgramData\b.txt").owner == SYSTEM_SID


@pytest.mark.parametrize("sddl", ["O:BAD:PAI(A;OICI;FR;;;BU)", "O:XYD:P", "D:PAI(A;OICI;FA;;;SY)"])
def test_security_the_disk_does_not_model_is_refused(sddl: str) -> None:
    with pytest.raises(NotImplementedError):
        SecurityDescriptor.from_sddl(sddl)

