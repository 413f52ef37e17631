"""Get-WindowsPackage of the DISM module: a cabinet's package and its state on the running Windows."""

from __future__ import annotations

from pathlib import Path

import pytest
from host_snippets import STANDARD_USER, SYSTEM, chain, failure, new_host, output, runtime_of
from wuacache_lab.packages import build_cbs_cab
from wuacache_lab.windows.host import WindowsHost

CAB = "C:\\ProgramData\\packages\\windows10.0-kb5099003-x64.cab"
ERROR_ELEVATION_REQUIRED = 0x800702E4 - (1 << 32)


@pytest.fixture
def host(tmp_path: Path) -> WindowsHost:
    host = new_host(tmp_path)
    host.disk.make_dirs("C:\\ProgramData\\packages")
    build_cbs_cab(host.disk.path(CAB), kb="5099003", target="win10-22h2", restart=True)
    return host


def state(host: WindowsHost) -> list[object]:
    return output(runtime_of(host, SYSTEM), f"$package = Get-WindowsPackage -Online -PackagePath '{CAB}'\n[string]$package.PackageState\n$package.Applicable")


def test_a_package_goes_from_not_present_to_install_pending_when_dism_adds_it(host: WindowsHost) -> None:
    assert state(host) == ["NotPresent", True]
    name = output(runtime_of(host, SYSTEM), f"(Get-WindowsPackage -Online -PackagePath '{CAB}').PackageName")

    output(runtime_of(host, SYSTEM), f"Start-Process dism.exe -ArgumentList '/Online', '/Add-Package', '/PackagePath:{CAB}', '/Quiet', '/NoRestart' -Wait")

    assert state(host) == ["InstallPending", True]
    assert name[0].startswith("Package_for_KB5099003~")  # type: ignore[union-attr]


def test_it_serves_elevated_administrators_only(host: WindowsHost) -> None:
    error = failure(runtime_of(host, STANDARD_USER), f"Get-WindowsPackage -Online -PackagePath '{CAB}'")

    assert chain(error) == ["System.Runtime.InteropServices.COMException"]
    assert error.reported_exception.hresult == ERROR_ELEVATION_REQUIRED
    assert error.record.fully_qualified_error_id == "Microsoft.Dism.Commands.GetWindowsPackageCommand"
