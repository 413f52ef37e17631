# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The os_upgrade action: setup.exe's exit codes, the restart and the build check, against recorded answers."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ansible_collections.wuacache.wua.plugins.action.os_upgrade import SETUP_ARGUMENTS, ActionModule
from ansible_collections.wuacache.wua.plugins.plugin_utils._reboot import RESTART

from .conftest import FakeServer
from .recorded import SHUTDOWN_ACCEPTED, Failure, RecordedHost, info, make_action, plan, scan_answer

SETUP = "\\\\fileserver\\iso\\ws2025\\setup.exe"
LOGS = "C:\\ProgramData\\wuacache\\logs\\os_upgrade"
BOOTED = "2024-05-14T06:12:31.5000000Z"
REBOOTED = "2024-05-14T09:02:44.3000000Z"


def upgraded_info() -> dict[str, Any]:
    """``info`` once Windows Server 2022 became Windows Server 2025."""
    answer = info(REBOOTED)
    answer["os"].update(caption="Microsoft Windows Server 2025 Standard", version="10.0.26100", build_number="26100", ubr=1742)
    return answer


def run(server: FakeServer, host: RecordedHost, *, check_mode: bool = False, **args: Any) -> dict[str, Any]:
    action = make_action(
        ActionModule, host, args={"server_url": server.url, "setup_path": SETUP, **args}, check_mode=check_mode, name="os_upgrade"
    )
    return action.run(task_vars={"inventory_hostname": "ws2022-01"})


def setup_host(exit_code: int, *, back: dict[str, Any] | None = None) -> RecordedHost:
    """A host whose setup.exe exits with ``exit_code``, and that comes back from the restart with ``back``."""
    return RecordedHost({
        # Before setup.exe, before the restart, back from it, then the rescan's.
        "info": [info(BOOTED), info(BOOTED), copy.deepcopy(back), copy.deepcopy(back)] if back else [info(BOOTED)],
        "os_upgrade": [{"exit_code": exit_code, "logs": LOGS}],
        "restart": [SHUTDOWN_ACCEPTED],
        "scan": [scan_answer()],
    })


@pytest.mark.parametrize("exit_code", [0x3, 0])
def test_upgrades_restarts_and_reports_the_new_build(server: FakeServer, exit_code: int) -> None:
    server.report_answers.append(plan())
    host = setup_host(exit_code, back=upgraded_info())

    result = run(server, host, extra_arguments=["/bitlocker", "TryKeepActive"])

    [params] = host.params("os_upgrade")
    assert params["setup_path"] == SETUP
    # Microsoft's unattended upgrade, then the task's own switches; the host adds /copylogs.
    assert " ".join(params["arguments"]) == (
        "/auto upgrade /quiet /eula accept /noreboot /dynamicupdate disable /compat ignorewarning /showoobe none "
        "/telemetry disable /bitlocker TryKeepActive"
    )
    assert host.params("restart") == [RESTART]
    assert host.operations == ["info", "os_upgrade", "info", "restart", "info", "info", "scan"]
    # The rescan reports the new OS to the server.
    assert server.reports[0]["os"]["build"] == "26100.1742"
    assert (result["build_before"], result["build_after"]) == ("20348.2227", "26100.1742")
    assert result["os"] == "Microsoft Windows Server 2025 Standard"
    assert (result["changed"], result["rebooted"], result["exit_code"], result["logs"]) == (True, True, exit_code, LOGS)
    assert "failed" not in result


def test_the_same_build_after_the_restart_is_a_rollback(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = setup_host(0x3, back=info(REBOOTED))

    result = run(server, host)

    assert result["failed"] is True
    assert "rolled back" in result["msg"]
    assert "20348.2227" in result["msg"]
    assert LOGS in result["msg"]
    assert (result["build_after"], result["rebooted"]) == ("20348.2227", True)
    # The server still learns the host's state.
    assert len(server.reports) == 1


def test_without_reboot_the_upgrade_waits_for_a_restart(server: FakeServer) -> None:
    host = setup_host(0x3)

    result = run(server, host, reboot=False)

    assert host.operations == ["info", "os_upgrade"]
    assert (result["changed"], result["reboot_required"], result["rebooted"]) == (True, True, False)
    assert "failed" not in result


@pytest.mark.parametrize(
    ("exit_code", "message"),
    [
        (0x5, "exit code 0x5 CONX_SETUP_EXITCODE_RESUME_AT_COMPAT_REPORT"),
        (0x7, "exit code 0x7 CONX_SETUP_EXITCODE_AUTO_INSTALL_FAIL"),
        (0xC1900208 - 2**32, "exit code 0xC1900208 MOSETUP_E_COMPAT_INSTALLREQ_BLOCK: an incompatible application or driver"),
        (0xC1900200 - 2**32, "exit code 0xC1900200 MOSETUP_E_COMPAT_SYSREQ_BLOCK"),
        (0xC1900204 - 2**32, "exit code 0xC1900204 MOSETUP_E_COMPAT_MIGCHOICE_BLOCK"),
        (0xC190020E - 2**32, "exit code 0xC190020E MOSETUP_E_INSTALLDISKSPACE_BLOCK"),
        (0xC1900107 - 2**32, "exit code 0xC1900107 MOSETUP_E_CLEANUP_PENDING"),
        (0xC1900101 - 2**32, "exit code 0xC1900101 MOSETUP_E_SETUP_PLATFORM"),
        (0x80070070 - 2**32, "exit code 0x80070070 ERROR_DISK_FULL"),
        (0xC1900999 - 2**32, "exit code 0xC1900999: no description"),
    ],
)
def test_other_exit_codes_fail_without_restarting(server: FakeServer, exit_code: int, message: str) -> None:
    host = setup_host(exit_code)

    result = run(server, host)

    assert result["failed"] is True
    assert result["msg"].startswith(f"Windows Setup did not upgrade the host: {message}")
    assert LOGS in result["msg"]
    assert result["hresult"] == f"0x{exit_code & 0xFFFFFFFF:08X}"
    assert (result["changed"], result["rebooted"]) == (False, False)
    assert "restart" not in host.operations
    assert server.reports == []


def test_a_scanonly_run_that_finds_no_issue_changes_nothing(server: FakeServer) -> None:
    host = setup_host(0xC1900210 - 2**32)

    result = run(server, host, extra_arguments=["/compat", "scanonly"])

    assert host.params("os_upgrade")[0]["arguments"][-2:] == ["/compat", "scanonly"]
    assert (result["changed"], result["rebooted"]) == (False, False)
    assert "restart" not in host.operations
    assert "failed" not in result


def test_a_missing_setup_exe_fails_with_a_clear_message(server: FakeServer) -> None:
    not_found = Failure(0x80070002 - 2**32, f"Could not find file '{SETUP}'.", "Test-Path setup_path")
    host = RecordedHost({"info": [info()], "os_upgrade": [not_found]})

    result = run(server, host)

    assert result["failed"] is True
    assert result["msg"].startswith(f"{SETUP} is not a file the host's SYSTEM account can read")
    assert "restart" not in host.operations


def test_another_bridge_failure_keeps_its_hresult(server: FakeServer) -> None:
    host = RecordedHost({"info": [info()], "os_upgrade": [Failure(0x80070005 - 2**32, "Access is denied.", "New-Item logs folder")]})

    result = run(server, host)

    assert result["failed"] is True
    assert result["hresult"] == "0x80070005"
    assert "New-Item logs folder" in result["msg"]


def test_check_mode_only_reads_info_and_says_what_it_would_run(server: FakeServer) -> None:
    host = RecordedHost({"info": [info()]})

    result = run(server, host, check_mode=True, extra_arguments=["/migratedrivers", "all"])

    assert host.operations == ["info"]
    assert server.requests == []
    assert result["changed"] is True
    assert (result["setup_path"], result["arguments"]) == (SETUP, [*SETUP_ARGUMENTS, "/migratedrivers", "all"])
    assert (result["build_before"], result["os"]) == ("20348.2227", "Microsoft Windows Server 2022 Standard")
