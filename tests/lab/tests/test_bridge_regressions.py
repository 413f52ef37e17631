"""Defects of the bridge that only Windows showed, each with the test that catches it.

Each test runs twice (shipped_scripts.py): with today's scripts, and with
the scripts of the commit before the fix, taken from git, where it must fail.
"""

from __future__ import annotations

from pathlib import Path

from bridge_client import ALL_UPDATES, DISABLED_AND_STOPPED, Lab, call, elevated, ensure_cab, run_elevated
from shipped_scripts import before_and_after

from wuacache_lab.windows.faults import set_host_fault
from wuacache_lab.windows.host import WindowsHost

ERROR_FILE_NOT_FOUND = -2147024894


@before_and_after(
    "513693e6757f40d2960f820cdf7af24fc1c353e1",
    "Start-Service -Name wuauserv -NoWait: Start-Service has no -NoWait, so no operation could start the service",
)
def test_an_operation_starts_the_windows_update_service_and_leaves_it_as_asked(
    shipped_scripts: object, lab: Lab, host: WindowsHost, tmp_path: Path
) -> None:
    # Administrators own what an administrator creates, as on a server: the scripts of then refused
    # their own files where the creator owns them (the next test).
    set_host_fault(tmp_path / "hosts", host.name, "default_owner", owner="administrators")
    ensure_cab(lab, host)
    host.system().set_service_start_mode("wuauserv", "Disabled")

    result = elevated(host, "history", wuauserv_after={"start_mode": "Manual", "running": True})

    assert result == {"history": []}
    state = host.state
    assert (state.wuauserv_start_mode, state.wuauserv_state) == ("Manual", "Running")


@before_and_after(
    "cbe82810619c0e3545afea53c9c32478760d775b",
    "a COM method's HRESULT read from the TargetInvocationException PowerShell's COM adapter puts around it",
)
def test_a_com_methods_hresult_is_the_one_windows_returned(shipped_scripts: object, host: WindowsHost) -> None:
    # A run whose task is already gone: ITaskFolder.GetTask fails with ERROR_FILE_NOT_FOUND, which means nothing to clean.
    exit_code, response = call(host, "task_collect", name="run-gone")
    assert exit_code == 0, response
    assert response["result"]["response"] is None

    # No catalog in the root: IUpdateServiceManager.AddScanPackageService fails with ERROR_FILE_NOT_FOUND.
    exit_code, response = run_elevated(host, "scan", criteria=ALL_UPDATES, wuauserv_after=DISABLED_AND_STOPPED)
    assert exit_code == 1
    assert (response["error"]["hresult"], response["error"]["call"]) == (ERROR_FILE_NOT_FOUND, "AddScanPackageService")


@before_and_after(
    "58d8a7709afb0d1bf278e978f4a1c84110305023",
    "the private folder refused the files the bridge itself wrote there where their creator owns them",
)
def test_the_bridge_accepts_its_own_files_where_their_creator_owns_them(
    shipped_scripts: object, lab: Lab, host: WindowsHost, tmp_path: Path
) -> None:
    # "Object creator": what an administrator creates is that administrator's, as on client editions.
    set_host_fault(tmp_path / "hosts", host.name, "default_owner", owner="creator")
    ensure_cab(lab, host)

    assert elevated(host, "history", wuauserv_after=DISABLED_AND_STOPPED) == {"history": []}
