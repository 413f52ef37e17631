"""The version resource of wuapi.dll, as FileVersionInfo and Get-Item's VersionInfo give it."""

from __future__ import annotations

from pathlib import Path

import pytest
from host_snippets import chain, failure, new_host, output, runtime_of
from wuacache_lab.windows.profiles import get_profile


@pytest.mark.parametrize("profile", ["win10-22h2", "server2022"])
def test_wuapi_dll_has_the_update_agents_version(tmp_path: Path, profile: str) -> None:
    host = new_host(tmp_path, profile=profile)
    script = """$info = [System.Diagnostics.FileVersionInfo]::GetVersionInfo("$env:SystemRoot\\System32\\wuapi.dll")
'{0}.{1}.{2}.{3}' -f $info.FileMajorPart, $info.FileMinorPart, $info.FileBuildPart, $info.FilePrivatePart
$item = (Get-Item -LiteralPath "$env:SystemRoot\\System32\\wuapi.dll").VersionInfo
$item.GetType().FullName
$item.FileBuildPart -eq $info.FileBuildPart"""

    assert output(runtime_of(host), script) == [get_profile(profile).wua_version, "System.Diagnostics.FileVersionInfo", True]


def test_a_file_that_does_not_exist_has_no_version(tmp_path: Path) -> None:
    error = failure(runtime_of(new_host(tmp_path)), "[System.Diagnostics.FileVersionInfo]::GetVersionInfo('C:\\Windows\\System32\\nothing.dll')")

    assert chain(error) == ["System.Management.Automation.MethodInvocationException", "System.IO.FileNotFoundException"]
    assert error.reported_exception.inner.message == "C:\\Windows\\System32\\nothing.dll"  # type: ignore[union-attr]

