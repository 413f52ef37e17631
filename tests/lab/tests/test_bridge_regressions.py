"""Defects of the bridge that only Windows showed, each with the test that catches it.

Each test runs twice (shipped_scripts.py): with today's scripts, and with
the scripts of the commit before the fix, taken from git, where it must fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bridge_client import ALL_UPDATES, CAB_URL, DISABLED_AND_STOPPED, ROOT, STANDARD_USER, Lab, call, elevated, ensure_cab, run_elevated
from http_servers import Server, serving, tls_context
from shipped_scripts import before_and_after

from wuacache_lab.windows import filesystem
from wuacache_lab.windows.faults import set_host_fault
from wuacache_lab.windows.host import WindowsHost
from wuacache_lab.windows.owners import account_sid
from wuacache_lab.windows.providers import ProviderPath

ERROR_FILE_NOT_FOUND = -2147024894
E_ACCESSDENIED = -2147024891


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


@before_and_after(
    "711075a1b30a1e7f4bf47480d34edb8cc1cd808b",
    "TLS 1.2 added to SystemDefault made TLS 1.2 the only protocol: no TLS 1.3 where Windows has it",
)
def test_where_windows_chooses_the_protocol_a_download_gets_tls_1_3(shipped_scripts: object, lab: Lab, tmp_path: Path) -> None:
    # Windows 11 offers TLS 1.3, and the registry lets it choose (SystemDefault).
    host = WindowsHost("WIN11-01", tmp_path / "hosts", profile="win11-23h2", trusted_ca=lab.ca.ca_cert)
    set_host_fault(tmp_path / "hosts", host.name, "net_framework_tls", system_default_tls_versions=1, sch_use_strong_crypto=1)

    with serving(Server(body=lab.catalog.cab.read_bytes()), tls_context(lab.ca.directory)) as server:
        fetched = ensure_cab(lab, host, url=f"{server.url}/wua/wsusscn2.cab")

    assert fetched["status"] == "downloaded"
    assert server.tls_versions == ["TLSv1.3"]


@before_and_after(
    "711075a1b30a1e7f4bf47480d34edb8cc1cd808b",
    "reboot_required asked the Update Agent without starting its service: 0x80070422 while wuauserv is disabled",
)
def test_reboot_required_starts_the_windows_update_service_and_leaves_it_as_asked(shipped_scripts: object, host: WindowsHost) -> None:
    host.system().set_service_start_mode("wuauserv", "Disabled")
    host.set_reboot_marker("wu_reboot_required")

    result = elevated(host, "reboot_required", wuauserv_after=DISABLED_AND_STOPPED)

    assert result == {"reboot_required": True}
    state = host.state
    assert (state.wuauserv_start_mode, state.wuauserv_state) == ("Disabled", "Stopped")


@before_and_after(
    "711075a1b30a1e7f4bf47480d34edb8cc1cd808b",
    "a root another user created between Test-Path and CreateDirectory was taken as private: CreateDirectory returns a folder that exists",
)
def test_a_root_another_user_creates_while_the_bridge_creates_it_is_refused(
    shipped_scripts: object, lab: Lab, host: WindowsHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    exists = filesystem.FileSystemProvider.exists

    def losing_the_race(provider: filesystem.FileSystemProvider, location: ProviderPath, path_type: str) -> bool:
        found = exists(provider, location, path_type)
        if not found and location.path.casefold() == ROOT.casefold():
            # An ordinary user creates the root right after Test-Path found none.
            host.disk.make_dirs(ROOT, owner=account_sid(STANDARD_USER))
        return found

    monkeypatch.setattr(filesystem.FileSystemProvider, "exists", losing_the_race)

    exit_code, response = call(host, "ensure_cab", url=CAB_URL, sha256=lab.catalog.cab_sha256, offset=0)

    assert exit_code == 1, response
    assert (response["error"]["hresult"], response["error"]["call"]) == (E_ACCESSDENIED, "Initialize-PrivateFolder")
    assert host.disk.children(ROOT) == []
