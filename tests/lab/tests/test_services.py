"""The service cmdlets and ServiceController of an emulated host, run from PowerShell."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from host_snippets import STANDARD_USER, chain, failure, new_host, output, runtime_of
from wuacache_lab.powershell.errors import ProcessKilled
from wuacache_lab.windows.host import WindowsHost

E_FAIL = -2147467259


@pytest.fixture
def host(tmp_path: Path) -> WindowsHost:
    return new_host(tmp_path)


def disable_wuauserv(host: WindowsHost) -> None:
    host.system().set_service_start_mode("wuauserv", "Disabled")


def test_get_service_gives_a_controller_with_its_status_and_start_type(host: WindowsHost) -> None:
    script = "$s = Get-Service -Name WUAUSERV\n$s.GetType().FullName; $s.Name; $s.ServiceName; $s.DisplayName; [string]$s.Status; [string]$s.StartType"

    assert output(runtime_of(host), script) == [
        "System.ServiceProcess.ServiceController",
        "WUAUSERV",  # the name as asked for, as .NET keeps it
        "WUAUSERV",
        "Windows Update",
        "Stopped",
        "Manual",
    ]


def test_an_unknown_service_is_a_non_terminating_error(host: WindowsHost) -> None:
    script = "Get-Service -Name nosuchservice -ErrorAction SilentlyContinue\n$?; $Error[0].FullyQualifiedErrorId; $Error[0].Exception.Message"

    assert output(runtime_of(host), script) == [
        False,
        "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand",
        "Cannot find any service with service name 'nosuchservice'.",
    ]


def test_erroraction_stop_makes_it_terminating(host: WindowsHost) -> None:
    error = failure(runtime_of(host), "Get-Service -Name nosuchservice -ErrorAction Stop")

    assert chain(error) == ["Microsoft.PowerShell.Commands.ServiceCommandException"]
    assert error.record.category == "ObjectNotFound"


def test_starting_a_disabled_service_fails_with_the_win32_error_inside(host: WindowsHost) -> None:
    disable_wuauserv(host)

    error = failure(runtime_of(host), "(Get-Service -Name wuauserv).Start()")

    assert chain(error) == [
        "System.Management.Automation.MethodInvocationException",
        "System.InvalidOperationException",
        "System.ComponentModel.Win32Exception",
    ]
    inner = error.reported_exception.inner
    assert inner is not None and inner.message == "Cannot start service wuauserv on computer '.'."
    win32 = inner.inner
    assert win32 is not None and win32.properties["NativeErrorCode"] == 1058 and win32.hresult == E_FAIL
    assert host.state.wuauserv_state == "Stopped"


def test_start_service_reports_it_as_a_service_command_exception(host: WindowsHost) -> None:
    disable_wuauserv(host)
    script = "try { Start-Service -Name wuauserv -ErrorAction Stop } catch { $_.Exception.GetType().FullName; $_.Exception.Message; $_.Exception.InnerException.InnerException.NativeErrorCode; $_.FullyQualifiedErrorId }"

    assert output(runtime_of(host), script) == [
        "Microsoft.PowerShell.Commands.ServiceCommandException",
        "Service 'Windows Update (wuauserv)' cannot be started due to the following error: Cannot start service wuauserv on computer '.'.",
        1058,
        "CouldNotStartService,Microsoft.PowerShell.Commands.StartServiceCommand",
    ]


def test_set_start_and_stop_change_the_service(host: WindowsHost) -> None:
    disable_wuauserv(host)
    runtime = runtime_of(host)

    output(runtime, "Set-Service -Name wuauserv -StartupType Manual\nStart-Service -Name wuauserv")
    assert (host.state.wuauserv_start_mode, host.state.wuauserv_state) == ("Manual", "Running")

    output(runtime, "Set-Service -Name wuauserv -StartupType Automatic\nStop-Service -Name wuauserv -Force -NoWait")
    assert (host.state.wuauserv_start_mode, host.state.wuauserv_state) == ("Auto", "Stopped")

    # Neither cmdlet minds a service already in the state asked for.
    assert output(runtime, "Stop-Service -Name wuauserv; $?; Start-Service -Name wuauserv; Start-Service -Name wuauserv; $?") == [True, True]


def test_status_is_read_once_until_refresh(host: WindowsHost) -> None:
    script = """$s = Get-Service -Name wuauserv
[string]$s.Status
(Get-Service -Name wuauserv).Start()
[string]$s.Status
$s.Refresh()
[string]$s.Status"""

    assert output(runtime_of(host), script) == ["Stopped", "Stopped", "Running"]


def test_start_refuses_a_running_service(host: WindowsHost) -> None:
    error = failure(runtime_of(host), "Start-Service -Name wuauserv\n(Get-Service -Name wuauserv).Start()")

    assert error.reported_exception.inner.inner.properties["NativeErrorCode"] == 1056  # type: ignore[union-attr]


def test_wait_for_status_throws_the_service_timeout_exception(host: WindowsHost) -> None:
    started = time.monotonic()

    error = failure(runtime_of(host), "(Get-Service -Name wuauserv).WaitForStatus('Running', [timespan]::FromMilliseconds(300))")

    assert time.monotonic() - started >= 0.3
    assert chain(error) == ["System.Management.Automation.MethodInvocationException", "System.ServiceProcess.TimeoutException"]
    assert error.reported_exception.message == (
        'Exception calling "WaitForStatus" with "2" argument(s): "Time out has expired and the operation has not been completed."'
    )


def test_a_process_ended_while_it_waits_for_a_service_stops_there(host: WindowsHost) -> None:
    runtime = runtime_of(host)
    threading.Timer(0.3, runtime.end).start()
    started = time.monotonic()

    with pytest.raises(ProcessKilled):
        output(runtime, "(Get-Service -Name wuauserv).WaitForStatus('Running', [timespan]::FromMinutes(2))")

    assert time.monotonic() - started < 2


def test_a_standard_user_cannot_configure_or_start_a_service(host: WindowsHost) -> None:
    runtime = runtime_of(host, STANDARD_USER)
    script = "try { Set-Service -Name wuauserv -StartupType Disabled -ErrorAction Stop } catch { $_.FullyQualifiedErrorId; $_.Exception.InnerException.NativeErrorCode }"

    assert output(runtime, script) == ["CouldNotSetService,Microsoft.PowerShell.Commands.SetServiceCommand", 5]
    error = failure(runtime, "(Get-Service -Name wuauserv).Start()")
    assert error.reported_exception.inner.message == "Cannot open wuauserv service on computer '.'."  # type: ignore[union-attr]
    assert host.state.wuauserv_start_mode == "Manual"


def test_set_service_of_an_unknown_service_says_it_was_not_found(host: WindowsHost) -> None:
    script = "try { Set-Service -Name nosuchservice -StartupType Manual -ErrorAction Stop } catch { $_.Exception.GetType().FullName; $_.Exception.Message }"

    assert output(runtime_of(host), script) == ["System.InvalidOperationException", "Service nosuchservice was not found on computer '.'."]


def test_the_bridge_start_sequence_starts_wuauserv_within_its_timeout(host: WindowsHost) -> None:
    # Start-WindowsUpdateService of the bridge, which starts the service through its controller.
    script = """$ServiceTimeout = [timespan]::FromMinutes(2)
Set-Service -Name wuauserv -StartupType Manual
$service = Get-Service -Name wuauserv
if ($service.Status -eq 'StopPending') { $service.WaitForStatus('Stopped', $ServiceTimeout) }
if ($service.Status -eq 'Stopped') { $service.Start() }
$service.WaitForStatus('Running', $ServiceTimeout)
[string]$service.Status"""

    assert output(runtime_of(host), script) == ["Running"]
