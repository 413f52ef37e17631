"""Programs an emulated host's PowerShell starts: Start-Process and its Process, and programs run as commands."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from host_snippets import ADMINISTRATOR, STANDARD_USER, SYSTEM, WORKING_DIRECTORY, chain, failure, new_host, output, run_system_task, runtime_of
from wuacache_lab.packages import build_cbs_cab, build_msu
from wuacache_lab.powershell.errors import ProcessKilled
from wuacache_lab.windows.commands import cmd_command
from wuacache_lab.windows.dism import CBS_E_NOT_APPLICABLE
from wuacache_lab.windows.host import WindowsHost
from wuacache_lab.windows.process import ProcessResult
from wuacache_lab.windows.wusa import WU_S_ALREADY_UNINSTALLED

PACKAGES = "C:\\ProgramData\\packages"
ERROR_SUCCESS_REBOOT_REQUIRED = 3010
TASK_STATE_RUNNING = 4
SCHED_S_TASK_TERMINATED = 0x00041306


@pytest.fixture
def host(tmp_path: Path) -> WindowsHost:
    host = new_host(tmp_path)
    host.disk.make_dirs(PACKAGES)
    return host


def on_disk(host: WindowsHost, windows_path: str) -> Path:
    path = host.disk.path(windows_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_start_process_passthru_gives_the_process_and_its_exit_code(host: WindowsHost) -> None:
    script = """$process = Start-Process -FilePath 'wusa.exe' -ArgumentList '/uninstall', '/kb:5034441', '/quiet', '/norestart' -WorkingDirectory $env:SystemRoot -WindowStyle Hidden -PassThru
$null = $process.Handle
$process.WaitForExit()
$process.GetType().FullName
$process.ProcessName
$process.HasExited
$process.ExitCode"""

    assert output(runtime_of(host, SYSTEM), script) == ["System.Diagnostics.Process", "wusa", True, WU_S_ALREADY_UNINSTALLED]


def test_a_path_the_script_quotes_is_one_argument(host: WindowsHost) -> None:
    build_msu(on_disk(host, f"{PACKAGES}\\my update.msu"), kb="5099001")
    # Start-Process joins the arguments with spaces, without quoting them: the script quotes the path.
    script = f"""$process = Start-Process -FilePath wusa.exe -ArgumentList '"{PACKAGES}\\my update.msu"', '/quiet', '/norestart' -PassThru -Wait
$process.ExitCode"""

    assert output(runtime_of(host, SYSTEM), script) == [ERROR_SUCCESS_REBOOT_REQUIRED]
    assert any("5099001" in change.kb_article_ids for change in host.state.pending_changes)


def test_dism_exit_codes_are_signed_32_bit_integers(host: WindowsHost) -> None:
    build_cbs_cab(on_disk(host, f"{PACKAGES}\\other.cab"), kb="5099002", target="server2022")
    script = f"(Start-Process dism.exe -ArgumentList '/Online', '/Add-Package', '/PackagePath:{PACKAGES}\\other.cab', '/Quiet', '/NoRestart' -PassThru -Wait).ExitCode"

    assert output(runtime_of(host, SYSTEM), script) == [CBS_E_NOT_APPLICABLE - (1 << 32)]


def test_a_program_that_does_not_exist_cannot_start(host: WindowsHost) -> None:
    error = failure(runtime_of(host), "Start-Process -FilePath 'C:\\nowhere\\setup.exe' -PassThru")

    assert chain(error) == ["System.InvalidOperationException"]
    assert error.reported_exception.message == "This command cannot be run due to the error: The system cannot find the file specified."
    assert error.record.fully_qualified_error_id == "InvalidOperationException,Microsoft.PowerShell.Commands.StartProcessCommand"


def test_exit_code_before_the_program_has_exited_is_refused(host: WindowsHost) -> None:
    script = """$process = Start-Process powershell.exe -ArgumentList '-Command', 'Start-Sleep -Seconds 2' -PassThru
$process.HasExited
$process.ExitCode"""

    error = failure(runtime_of(host), script)

    assert chain(error) == ["System.Management.Automation.GetValueInvocationException", "System.InvalidOperationException"]
    assert error.reported_exception.inner.message == "Process must exit before requested information can be determined."  # type: ignore[union-attr]


def test_wait_for_exit_with_a_time_out_says_whether_it_has_exited(host: WindowsHost) -> None:
    script = """$process = Start-Process powershell.exe -ArgumentList '-Command', 'Start-Sleep -Milliseconds 600; exit 7' -PassThru
$process.WaitForExit(100)
$process.WaitForExit(5000)
$process.ExitCode"""

    assert output(runtime_of(host), script) == [False, True, 7]


def test_a_process_ended_while_it_waits_for_a_program_stops_there(host: WindowsHost) -> None:
    runtime = runtime_of(host)
    threading.Timer(0.3, runtime.end).start()
    started = time.monotonic()

    with pytest.raises(ProcessKilled):
        output(runtime, "(Start-Process powershell.exe -ArgumentList '-Command', 'Start-Sleep -Seconds 3' -PassThru).WaitForExit()")

    assert time.monotonic() - started < 2


def test_a_program_run_as_a_command_writes_its_output_and_sets_lastexitcode(host: WindowsHost) -> None:
    assert output(runtime_of(host), "hostname\n$LASTEXITCODE\nHOSTNAME.EXE") == ["win10-01", 0, "win10-01"]


def test_shutdown_schedules_a_restart_and_says_when_one_is_scheduled(host: WindowsHost) -> None:
    runtime = runtime_of(host)

    assert output(runtime, 'shutdown.exe /r /t 600 /c "wuacache reboot"\n$LASTEXITCODE') == [0]
    assert host.state.reboot_at is not None
    assert output(runtime, "shutdown /r /t 0\n$?\n$LASTEXITCODE\n$Error[0].Exception.Message") == [
        False,
        1190,
        "A system shutdown has already been scheduled.(1190)",
    ]
    assert output(runtime, "shutdown /a\n$LASTEXITCODE\nshutdown /a\n$LASTEXITCODE") == [0, 1116]
    assert host.state.reboot_at is None


def test_a_standard_user_cannot_restart_the_host(host: WindowsHost) -> None:
    assert output(runtime_of(host, STANDARD_USER), "shutdown /r /t 5\n$LASTEXITCODE") == [5]
    assert host.state.reboot_at is None


def test_a_name_that_is_no_program_is_not_found(host: WindowsHost) -> None:
    error = failure(runtime_of(host, ADMINISTRATOR), "ipconfig /all")

    assert chain(error) == ["System.Management.Automation.CommandNotFoundException"]


def test_a_stopped_task_ends_its_script_in_wait_for_exit(host: WindowsHost) -> None:
    script = """$program = Start-Process powershell.exe -ArgumentList '-Command', 'Start-Sleep -Seconds 5' -PassThru
$program.WaitForExit()
[System.IO.File]::WriteAllText('C:\\ProgramData\\after.txt', 'the wait ended')"""
    task = run_system_task(host, "waits", script)
    time.sleep(0.5)
    assert task.State == TASK_STATE_RUNNING

    stopped = time.monotonic()
    task.Stop(0)
    while task.State == TASK_STATE_RUNNING:
        assert time.monotonic() - stopped < 2, "the task's process did not end"
        time.sleep(0.05)

    assert task.LastTaskResult == SCHED_S_TASK_TERMINATED
    time.sleep(0.3)
    assert not host.disk.exists("C:\\ProgramData\\after.txt")


CMD = '"C:\\Windows\\System32\\cmd.exe" /c '


def test_cmd_c_runs_its_command_without_the_quotes_around_it(host: WindowsHost) -> None:
    assert cmd_command(host, CMD + '"hostname"', WORKING_DIRECTORY) == "hostname"
    assert host.run_process(CMD + '"hostname"', b"", ADMINISTRATOR) == ProcessResult(b"win10-01\r\n", b"", 0)


def test_cmd_c_keeps_the_quotes_around_the_name_of_a_program_with_a_space(host: WindowsHost) -> None:
    on_disk(host, "C:\\Program Files\\Tools\\my tool.exe").write_bytes(b"MZ")

    assert cmd_command(host, CMD + '"C:\\Program Files\\Tools\\my tool.exe"', WORKING_DIRECTORY) == '"C:\\Program Files\\Tools\\my tool.exe"'
    # Not the name of a file: the first and the last quote go, whatever lies between.
    assert cmd_command(host, CMD + '"C:\\Program Files\\Tools\\other.exe"', WORKING_DIRECTORY) == "C:\\Program Files\\Tools\\other.exe"
    assert cmd_command(host, CMD + '"wusa.exe" "my update.msu" /quiet', WORKING_DIRECTORY) == 'wusa.exe" "my update.msu /quiet'


def test_cmd_c_gives_the_programs_exit_code(host: WindowsHost) -> None:
    assert host.run_process(CMD + '"shutdown /a"', b"", ADMINISTRATOR).exit_code == 1116


def test_cmd_operators_are_refused_as_the_lab_does_not_model_them(host: WindowsHost) -> None:
    refused = host.run_process(CMD + '"hostname & shutdown /r"', b"", ADMINISTRATOR)

    assert (refused.stdout, refused.exit_code) == (b"", 1)
    assert host.state.reboot_at is None
