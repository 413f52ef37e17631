# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The install action: rounds, reboots and loop detection, against recorded bridge answers and a recorded server."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.errors import AnsibleConnectionFailure

from ansible_collections.wuacache.wua.plugins.action.install import ActionModule
from ansible_collections.wuacache.wua.plugins.plugin_utils._reboot import ABORT, RESTART

from .conftest import FakeServer
from .recorded import (
    CU,
    Failure,
    PREVIEW,
    SHUTDOWN_ACCEPTED,
    SSU,
    RecordedHost,
    downloaded,
    info,
    installed,
    make_action,
    plan,
    scan_answer,
)

CBS_LOG = "C:\\Windows\\Logs\\CBS\\CBS.log"
# The end of a servicing log, from inside a line: an older session that went well, then the failed one.
CBS_LOG_TAIL = """\
Package_for_KB5034000 [HRESULT = 0x00000000 - S_OK]
2024-05-14 07:40:01, Info                  CBS    Session: 31099380_1 initialized by client WindowsUpdateAgent.
2024-05-14 07:40:02, Info                  CBS    Session: 31099380_1 finalized. Reboot required: no [HRESULT = 0x00000000 - S_OK]
2024-05-14 07:46:51, Info                  CBS    Session: 31099381_2 initialized by client WindowsUpdateAgent.
2024-05-14 07:46:51, Info                  CBS    Exec: Processing started.  Client: WindowsUpdateAgent, Session: 31099381_2
2024-05-14 07:46:58, Error                 CBS    Exec: Failed to install Package_for_KB5034129. [HRESULT = 0x80240022 - Unknown Error]
2024-05-14 07:46:59, Info                  CBS    Session: 31099381_2 finalized. Reboot required: no [HRESULT = 0x80240022 - Unknown Error]
"""

BOOTED = "2024-05-14T06:12:31.5000000Z"
REBOOTED = "2024-05-14T07:40:02.1000000Z"
# WU_E_ALL_UPDATES_FAILED, as IUpdateInstallationResult.HResult gives it.
ALL_UPDATES_FAILED = 0x80240022 - 2**32


def servicing_log(text: str | None = CBS_LOG_TAIL, offset: int | None = 1000) -> dict[str, Any]:
    """``servicing_log``'s answer: the end of CBS.log."""
    return {"path": CBS_LOG, "size": None if text is None else offset + len(text), "offset": offset, "text": text}


def run(server: FakeServer, host: RecordedHost, *, check_mode: bool = False, **args: Any) -> dict[str, Any]:
    action = make_action(ActionModule, host, args={"server_url": server.url, **args}, check_mode=check_mode, name="install")
    return action.run(task_vars={"inventory_hostname": "ws2022-01"})


def test_downloads_installs_and_rescans_so_that_the_server_learns_the_result(server: FakeServer) -> None:
    server.report_answers.extend([plan(), plan("OK")])
    host = RecordedHost({
        "info": [info(), info()],
        "scan": [scan_answer(), scan_answer(cu_installed=True)],
        "download": [{"updates": [downloaded(CU)]}],
        "install": [installed((CU, 2, 0, False))],
    })

    result = run(server, host)

    assert host.operations == ["info", "scan", "download", "install", "info", "scan"]
    assert host.params("install") == [{"criteria": f"UpdateID='{CU}'",
                                       "wuauserv_after": {"start_mode": "Disabled", "running": False}}]
    # The rescan's history carries the install to the server.
    assert server.reports[1]["history"][0]["update_id"] == CU
    assert result["changed"] is True
    assert "failed" not in result
    assert (result["installed"], result["failed_installs"], result["rounds"]) == (1, 0, 1)
    assert result["installs"][0] == {
        "update_id": CU, "title": f"update {CU}", "installed": True, "skipped": False, "result_code": 2, "result": "succeeded",
        "hresult": "0x00000000", "hresult_name": None, "reboot_required": False,
    }
    assert result["counts"]["OK"] == 2
    assert (result["reboot_required"], result["rebooted"]) == (False, False)


def test_forbidden_and_installed_updates_are_never_touched(server: FakeServer) -> None:
    server.report_answers.extend([plan(), plan("OK")])
    host = RecordedHost({
        "info": [info(), info()], "scan": [scan_answer(cu_downloaded=True), scan_answer(cu_installed=True)],
        "install": [installed((CU, 2, 0, False))],
    })

    run(server, host)

    [params] = host.params("install")
    assert PREVIEW not in params["criteria"]
    assert SSU not in params["criteria"]


def test_a_failed_install_fails_the_task_with_the_wu_error_name(server: FakeServer) -> None:
    server.report_answers.extend([plan(), plan("ERROR")])
    host = RecordedHost({
        "info": [info(), info()], "scan": [scan_answer(cu_downloaded=True), scan_answer(cu_downloaded=True)],
        "install": [installed((CU, 4, ALL_UPDATES_FAILED, False))],
        "servicing_log": [servicing_log()],
    })

    result = run(server, host)

    assert result["failed"] is True
    assert result["installs"][0]["hresult"] == "0x80240022"
    assert result["installs"][0]["hresult_name"] == "WU_E_ALL_UPDATES_FAILED"
    assert "0x80240022 WU_E_ALL_UPDATES_FAILED" in result["msg"]
    assert (result["installed"], result["failed_installs"]) == (0, 1)
    # Only one attempt: a round that installs nothing ends the rounds.
    assert host.operations.count("install") == 1


def test_a_required_reboot_without_reboot_allowed_is_reported(server: FakeServer) -> None:
    server.report_answers.extend([plan(), plan()])
    host = RecordedHost({
        "info": [info(), info()], "scan": [scan_answer(cu_downloaded=True), scan_answer(cu_downloaded=True, reboot_required=True)],
        "install": [installed((CU, 2, 0, True), reboot_required=True)],
    })

    result = run(server, host)

    assert "failed" not in result
    assert (result["reboot_required"], result["rebooted"]) == (True, False)
    assert "restart" not in host.operations


def test_reboot_true_reboots_waits_for_the_new_boot_and_continues(server: FakeServer) -> None:
    server.report_answers.extend([plan(), plan("OK")])
    host = RecordedHost({
        # Before the restart, then: unreachable, still the old boot (not down yet), back.
        "info": [info(), info(BOOTED), info(BOOTED), info(REBOOTED), info(REBOOTED)],
        "scan": [scan_answer(cu_downloaded=True), scan_answer(cu_installed=True)],
        "install": [installed((CU, 2, 0, True), reboot_required=True)],
        "restart": [SHUTDOWN_ACCEPTED],
    })
    connection_lost = ConnectionResetError(104, "Connection reset by peer")
    execute = host.execute
    attempts = {"info": 0}

    def flaky(cmd: str, sudoable: bool = True, in_data: bytes | None = None) -> dict[str, Any]:
        if in_data and b'"operation":"info"' in in_data:
            attempts["info"] += 1
            if attempts["info"] == 3:
                raise connection_lost
        return execute(cmd, sudoable=sudoable, in_data=in_data)

    action = make_action(ActionModule, host, args={"server_url": server.url, "reboot": True}, name="install")
    action._low_level_execute_command = flaky
    result = action.run(task_vars={"inventory_hostname": "ws2022-01"})

    assert host.params("restart") == [RESTART]
    assert action._connection.reset.call_count >= 2
    assert (result["rebooted"], result["reboot_required"], result["installed"]) == (True, False, 1)
    assert "failed" not in result


def starting_up(last_boot: str, *, logon_ui_ready: bool, servicing_in_progress: int | None) -> dict[str, Any]:
    """``info`` of a host back from a restart that may still be configuring updates."""
    answer = info(last_boot)
    answer["startup"] = {"logon_ui_ready": logon_ui_ready, "servicing_in_progress": servicing_in_progress}
    return answer


def test_after_a_reboot_the_rounds_wait_until_windows_has_started_up(server: FakeServer) -> None:
    server.report_answers.extend([plan(), plan("OK")])
    host = RecordedHost({
        # Back on a new boot, first without the logon screen, then with servicing still at work, then ready.
        "info": [
            info(),
            info(BOOTED),
            starting_up(REBOOTED, logon_ui_ready=False, servicing_in_progress=2),
            starting_up(REBOOTED, logon_ui_ready=True, servicing_in_progress=2),
            starting_up(REBOOTED, logon_ui_ready=True, servicing_in_progress=0),
            info(REBOOTED),
        ],
        "scan": [scan_answer(cu_downloaded=True), scan_answer(cu_installed=True)],
        "install": [installed((CU, 2, 0, True), reboot_required=True)],
        "restart": [SHUTDOWN_ACCEPTED],
    })

    result = run(server, host, reboot=True)

    assert "failed" not in result
    assert (result["rebooted"], result["installed"]) == (True, 1)
    # The rescan came only once the host was ready.
    assert host.operations == ["info", "scan", "install", "info", "restart", "info", "info", "info", "info", "scan"]


def test_a_host_that_never_finishes_starting_up_fails_at_reboot_timeout(server: FakeServer) -> None:
    server.report_answers.append(plan())
    busy = starting_up(REBOOTED, logon_ui_ready=True, servicing_in_progress=2)
    host = RecordedHost({
        "info": [info(), info(BOOTED), *[busy] * 20], "scan": [scan_answer(cu_downloaded=True)],
        "install": [installed((CU, 2, 0, True), reboot_required=True)],
        "restart": [SHUTDOWN_ACCEPTED],
    })

    result = run(server, host, reboot=True, reboot_timeout=30)

    assert result["failed"] is True
    assert "came back from its restart but did not finish starting up within 30 seconds" in result["msg"]
    assert "servicing is at work (ServicingInProgress 2)" in result["msg"]
    assert host.operations.count("scan") == 1


# shutdown.exe's answer when a restart is scheduled already (ERROR_SHUTDOWN_IS_SCHEDULED).
SHUTDOWN_SCHEDULED = {"exit_code": 1190}


@pytest.mark.parametrize(
    "after_abort",
    [
        # The scheduled restart is aborted and replaced by one now.
        pytest.param(SHUTDOWN_ACCEPTED, id="replaced"),
        # Too late to abort: the scheduled restart is under way, which does as well.
        pytest.param(SHUTDOWN_SCHEDULED, id="under-way"),
    ],
)
def test_a_restart_scheduled_already_is_replaced_or_waited_for(server: FakeServer, after_abort: dict[str, Any]) -> None:
    server.report_answers.extend([plan(), plan("OK")])
    host = RecordedHost({
        "info": [info(), info(BOOTED), info(REBOOTED), info(REBOOTED)],
        "scan": [scan_answer(cu_downloaded=True), scan_answer(cu_installed=True)],
        "install": [installed((CU, 2, 0, True), reboot_required=True)],
        "restart": [SHUTDOWN_SCHEDULED, SHUTDOWN_ACCEPTED, after_abort],
    })

    result = run(server, host, reboot=True)

    assert "failed" not in result
    assert host.params("restart") == [RESTART, ABORT, RESTART]
    assert (result["rebooted"], result["installed"]) == (True, 1)


def test_a_restart_shutdown_exe_refuses_fails_the_task_with_its_exit_code(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = RecordedHost({
        "info": [info(), info(BOOTED)], "scan": [scan_answer(cu_downloaded=True)],
        "install": [installed((CU, 2, 0, True), reboot_required=True)],
        # ERROR_ACCESS_DENIED: the account lacks the right to shut down the system.
        "restart": [{"exit_code": 5}],
    })

    result = run(server, host, reboot=True)

    assert result["failed"] is True
    assert "shutdown.exe could not restart the host (exit code 5)" in result["msg"]
    # Nothing is aborted, and nobody waits for a restart that will not come.
    assert host.params("restart") == [RESTART]
    assert host.operations[-1] == "restart"


def test_reboot_required_before_installation_is_an_error_without_reboot(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = RecordedHost({
        "info": [info()], "scan": [scan_answer(cu_downloaded=True)],
        "install": [dict(installed(), reboot_required_before_installation=True, updates=[])],
    })

    result = run(server, host)

    assert result["failed"] is True
    assert "requires a reboot before" in result["msg"]
    assert "restart" not in host.operations


def test_an_update_that_stays_not_installed_after_its_reboot_is_a_loop(server: FakeServer) -> None:
    server.report_answers.extend([plan(), plan()])
    host = RecordedHost({
        "info": [info(), info(BOOTED), info(REBOOTED), info(REBOOTED)],
        # Installed with success, restarted: Windows Update still finds it not installed.
        "scan": [scan_answer(cu_downloaded=True), scan_answer(cu_downloaded=True)],
        "install": [installed((CU, 2, 0, True), reboot_required=True)],
        "restart": [SHUTDOWN_ACCEPTED],
    })

    result = run(server, host, reboot=True)

    assert result["failed"] is True
    assert "update loop" in result["msg"]
    assert host.operations.count("install") == 1
    # What the rounds did is still returned.
    assert result["installed"] == 1
    assert result["rebooted"] is True


def test_a_host_that_does_not_come_back_fails_at_reboot_timeout(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = RecordedHost({
        "info": [info(), info(BOOTED)], "scan": [scan_answer(cu_downloaded=True)],
        "install": [installed((CU, 2, 0, True), reboot_required=True)],
        "restart": [SHUTDOWN_ACCEPTED],
    })
    action = make_action(ActionModule, host, args={"server_url": server.url, "reboot": True, "reboot_timeout": 30}, name="install")
    execute = host.execute

    def unreachable_after_shutdown(cmd: str, sudoable: bool = True, in_data: bytes | None = None) -> dict[str, Any]:
        if "restart" in host.operations and in_data and b'"operation":"info"' in in_data:
            raise AnsibleConnectionFailure("winrm connection error: [Errno 111] Connection refused")
        return execute(cmd, sudoable=sudoable, in_data=in_data)

    action._low_level_execute_command = unreachable_after_shutdown
    result = action.run(task_vars={"inventory_hostname": "ws2022-01"})

    assert result["failed"] is True
    assert "did not come back from its restart within 30 seconds" in result["msg"]
    assert "Connection refused" in result["msg"]


def test_max_rounds_bounds_the_rounds(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = RecordedHost({"info": [info()], "scan": [scan_answer(cu_downloaded=True)]})

    result = run(server, host, max_rounds=0)

    assert result["failed"] is True
    assert "after 0 rounds" in result["msg"]
    assert "install" not in host.operations


def test_check_mode_lists_what_would_be_installed_and_changes_nothing(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = RecordedHost({"info": [info()], "scan": [scan_answer()]})

    result = run(server, host, check_mode=True, reboot=True)

    assert host.operations == ["info", "scan"]
    assert result["installs"] == [{"update_id": CU, "title": "2024-01 Cumulative Update"}]
    assert result["changed"] is True


def test_an_update_installed_until_the_next_restart_is_not_installed_again(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = RecordedHost({"info": [info()], "scan": [scan_answer(cu_awaiting_restart=True)]})

    result = run(server, host)

    assert "install" not in host.operations
    assert "download" not in host.operations
    assert server.reports[0]["updates"][0]["reboot_required"] is True
    assert (result["installed"], result["reboot_required"], result["rebooted"]) == (0, True, False)


def test_with_reboot_a_pending_restart_comes_first(server: FakeServer) -> None:
    server.report_answers.extend([plan(), plan("OK")])
    host = RecordedHost({
        "info": [info(), info(), info(REBOOTED), info(REBOOTED)],
        "scan": [scan_answer(cu_awaiting_restart=True), scan_answer(cu_installed=True)],
        "restart": [SHUTDOWN_ACCEPTED],
    })

    result = run(server, host, reboot=True)

    assert host.params("restart") == [RESTART]
    assert "install" not in host.operations
    assert (result["rebooted"], result["reboot_required"], result["counts"]["OK"]) == (True, False, 2)


def test_an_update_that_can_ask_for_user_input_is_left_out_with_a_warning(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = RecordedHost({"info": [info()], "scan": [scan_answer(cu_user_input=True)]})

    result = run(server, host)

    # Neither downloaded nor installed: nobody could answer it in the task that installs.
    assert host.operations == ["info", "scan"]
    [outcome] = result["installs"]
    assert (outcome["update_id"], outcome["installed"], outcome["skipped"], outcome["result"]) == (CU, False, True, "skipped")
    assert "CanRequestUserInput" in outcome["msg"]
    assert (result["installed"], result["failed_installs"], result["skipped_installs"]) == (0, 0, 1)
    assert "failed" not in result
    assert result["changed"] is False
    assert any(CU in warning for warning in result["warnings"])


def test_check_mode_names_the_updates_that_would_be_left_out(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = RecordedHost({"info": [info()], "scan": [scan_answer(cu_user_input=True)]})

    result = run(server, host, check_mode=True)

    [outcome] = result["installs"]
    assert (outcome["update_id"], outcome["skipped"]) == (CU, True)
    assert result["changed"] is False


def test_an_update_the_host_leaves_out_of_the_install_is_reported_as_skipped(server: FakeServer) -> None:
    # The scan saw a revision that installs unattended; the install's own search found one that can ask for input.
    server.report_answers.extend([plan(), plan()])
    host = RecordedHost({
        "info": [info(), info()],
        "scan": [scan_answer(cu_downloaded=True), scan_answer(cu_downloaded=True, cu_user_input=True)],
        "install": [dict(installed(), result_code=None, hresult=None, reboot_required=None,
                         skipped=[{"update_id": CU.upper(), "title": "2024-01 Cumulative Update"}])],
    })

    result = run(server, host)

    [outcome] = result["installs"]
    assert (outcome["update_id"], outcome["skipped"], outcome["installed"]) == (CU, True, False)
    assert (result["failed_installs"], result["skipped_installs"]) == (0, 1)
    assert "failed" not in result


def test_an_update_the_install_search_does_not_return_fails_the_task(server: FakeServer) -> None:
    server.report_answers.extend([plan(), plan()])
    host = RecordedHost({
        "info": [info(), info()],
        "scan": [scan_answer(cu_downloaded=True), scan_answer(cu_downloaded=True)],
        "install": [dict(installed(), result_code=None, hresult=None, reboot_required=None)],
    })

    result = run(server, host)

    assert result["failed"] is True
    assert "the host's search did not return the update" in result["msg"]
    assert (result["installs"][0]["update_id"], result["failed_installs"]) == (CU, 1)


def test_a_failed_install_returns_the_lines_of_the_servicing_log_about_it(server: FakeServer) -> None:
    server.report_answers.extend([plan(), plan("ERROR")])
    host = RecordedHost({
        "info": [info(), info()], "scan": [scan_answer(cu_downloaded=True), scan_answer(cu_downloaded=True)],
        "install": [installed((CU, 4, ALL_UPDATES_FAILED, False))],
        "servicing_log": [servicing_log()],
    })

    result = run(server, host)

    # Read right after the install, before the rescan.
    assert host.operations == ["info", "scan", "install", "servicing_log", "info", "scan"]
    assert host.params("servicing_log") == [{"max_bytes": 65536}]
    lines = result["servicing_log"]["lines"]
    assert result["servicing_log"]["path"] == CBS_LOG and result["servicing_log"]["error"] is None
    assert any("Failed to install Package_for_KB5034129. [HRESULT = 0x80240022" in line for line in lines)
    # The line cut by the start of the tail is left out.
    assert not any(line.startswith("Package_for_KB5034000") for line in lines)


def test_a_servicing_log_that_cannot_be_read_is_reported_and_the_install_failure_stays_the_task_failure(
    server: FakeServer,
) -> None:
    server.report_answers.extend([plan(), plan("ERROR")])
    locked = Failure(0x80070020 - 2**32, "The process cannot access the file because it is being used by another process.", "Read CBS.log")
    host = RecordedHost({
        "info": [info(), info()], "scan": [scan_answer(cu_downloaded=True), scan_answer(cu_downloaded=True)],
        "install": [installed((CU, 4, ALL_UPDATES_FAILED, False))],
        "servicing_log": [locked],
    })

    result = run(server, host)

    assert (result["servicing_log"]["lines"], result["servicing_log"]["path"]) == ([], None)
    assert "0x80070020 ERROR_SHARING_VIOLATION" in result["servicing_log"]["error"]
    assert "0x80240022 WU_E_ALL_UPDATES_FAILED" in result["msg"]


def test_an_install_that_fails_on_the_host_returns_the_servicing_log_with_its_failure(server: FakeServer) -> None:
    server.report_answers.append(plan())
    host = RecordedHost({
        "info": [info()], "scan": [scan_answer(cu_downloaded=True)],
        "install": [Failure(0x80240022 - 2**32, "", "IUpdateInstaller.Install")],
        "servicing_log": [servicing_log()],
    })

    result = run(server, host)

    assert result["failed"] is True
    assert "IUpdateInstaller.Install" in result["msg"]
    assert any("[HRESULT = 0x80240022" in line for line in result["servicing_log"]["lines"])


def test_a_successful_install_reads_no_servicing_log(server: FakeServer) -> None:
    server.report_answers.extend([plan(), plan("OK")])
    host = RecordedHost({
        "info": [info(), info()], "scan": [scan_answer(cu_downloaded=True), scan_answer(cu_installed=True)],
        "install": [installed((CU, 2, 0, False))],
    })

    result = run(server, host)

    assert "servicing_log" not in host.operations
    assert "servicing_log" not in result
