"""The item cmdlets of an emulated host (Test-Path, Get-Item, Get-ChildItem, New-Item, Remove-Item,
Move-Item, Get-Content), run from PowerShell on its FileSystem and Registry providers."""

from __future__ import annotations

from pathlib import Path

import pytest
from host_snippets import chain, failure, new_host, output, runtime_of
from wuacache_lab.windows.errors import ERROR_ALREADY_EXISTS, HResultError
from wuacache_lab.windows.faults import set_host_fault
from wuacache_lab.windows.host import WindowsHost

FOLDER = r"C:\ProgramData\items"
COR_E_IO = -2146232800
ERROR_SHARING_VIOLATION = -2147024864


@pytest.fixture
def host(tmp_path: Path) -> WindowsHost:
    host = new_host(tmp_path)
    host.disk.make_dirs(f"{FOLDER}\\sub")
    host.disk.write(f"{FOLDER}\\b.part", [b"12345"])
    host.disk.write(f"{FOLDER}\\a.cab", [b"1"])
    host.disk.write(f"{FOLDER}\\sub\\c.part", [b"123"])
    return host


def run(host: WindowsHost, script: str) -> list[object]:
    return output(runtime_of(host), script)


def test_a_file_system_item_carries_the_providers_notes(host: WindowsHost) -> None:
    script = f"$i = Get-Item -LiteralPath '{FOLDER}\\b.part'\n$i.GetType().FullName; $i.PSPath; $i.PSParentPath; $i.PSChildName; $i.PSIsContainer; [string]$i.PSDrive; [string]$i.PSProvider; $i.Length"

    assert run(host, script) == [
        "System.IO.FileInfo",
        f"Microsoft.PowerShell.Core\\FileSystem::{FOLDER}\\b.part",
        f"Microsoft.PowerShell.Core\\FileSystem::{FOLDER}",
        "b.part",
        False,
        "C",
        "Microsoft.PowerShell.Core\\FileSystem",
        5,
    ]


def test_a_registry_key_gives_its_values_and_null_for_one_it_has_not(host: WindowsHost) -> None:
    script = (
        "$k = Get-Item -LiteralPath 'HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion'\n"
        "$k.GetType().FullName; $k.Name; $k.PSIsContainer; $k.GetValue('UBR'); $null -eq $k.GetValue('NoSuchValue')"
    )

    assert run(host, script) == [
        "Microsoft.Win32.RegistryKey",
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion",
        True,
        host.profile.ubr,
        True,
    ]


def test_test_path_tells_files_folders_keys_and_nothing_apart(host: WindowsHost) -> None:
    script = (
        f"Test-Path -LiteralPath '{FOLDER}' -PathType Container; Test-Path -LiteralPath '{FOLDER}' -PathType Leaf\n"
        f"Test-Path -LiteralPath '{FOLDER}\\a.cab' -PathType Leaf; Test-Path -LiteralPath '{FOLDER}\\none'\n"
        "Test-Path -LiteralPath 'HKLM:\\SOFTWARE\\Microsoft'; Test-Path -LiteralPath 'Q:\\anything'"
    )

    assert run(host, script) == [True, False, True, False, True, False]


def test_a_missing_item_is_a_non_terminating_error(host: WindowsHost) -> None:
    script = f"Get-Item -LiteralPath '{FOLDER}\\none' -ErrorAction SilentlyContinue\n$?; $Error[0].FullyQualifiedErrorId; $Error[0].Exception.Message; [string]$Error[0].CategoryInfo.Category"

    assert run(host, script) == [
        False,
        "PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand",
        f"Cannot find path '{FOLDER}\\none' because it does not exist.",
        "ObjectNotFound",
    ]


def test_erroraction_stop_makes_a_missing_item_terminating(host: WindowsHost) -> None:
    error = failure(runtime_of(host), f"Get-Content -LiteralPath '{FOLDER}\\none' -Raw -ErrorAction Stop")

    assert chain(error) == ["System.Management.Automation.ItemNotFoundException"]
    assert error.record.fully_qualified_error_id == "PathNotFound,Microsoft.PowerShell.Commands.GetContentCommand"


def test_a_registry_path_has_no_file_system_parameter(host: WindowsHost) -> None:
    error = failure(runtime_of(host), "Get-Content -LiteralPath 'HKLM:\\SOFTWARE' -Raw")

    assert chain(error) == ["System.Management.Automation.ParameterBindingException"]
    assert error.exception.message == "A parameter cannot be found that matches parameter name 'Raw'."


def test_a_drive_that_does_not_exist_is_reported_as_such(host: WindowsHost) -> None:
    script = "Get-Item -LiteralPath 'Q:\\x' -ErrorAction SilentlyContinue\n$Error[0].Exception.GetType().FullName; $Error[0].Exception.Message"

    assert run(host, script) == [
        "System.Management.Automation.DriveNotFoundException",
        "Cannot find drive. A drive with the name 'Q' does not exist.",
    ]


def test_child_items_come_folders_first_then_files_by_name(host: WindowsHost) -> None:
    script = f"foreach ($i in Get-ChildItem -LiteralPath '{FOLDER}' -Force) {{ $i.Name }}"

    assert run(host, script) == ["sub", "a.cab", "b.part"]


def test_child_items_filtered_recursed_and_files_only(host: WindowsHost) -> None:
    script = f"foreach ($i in Get-ChildItem -LiteralPath '{FOLDER}' -Filter '*.part' -File -Recurse -Force) {{ $i.FullName; $i.BaseName }}"

    assert run(host, script) == [f"{FOLDER}\\b.part", "b", f"{FOLDER}\\sub\\c.part", "c"]


def test_a_path_relative_to_the_current_location(host: WindowsHost) -> None:
    script = "(Get-Item -LiteralPath 'b.part').FullName; Get-Content -LiteralPath '.\\sub\\..\\a.cab' -Raw"

    assert output(runtime_of(host, working_directory=FOLDER), script) == [f"{FOLDER}\\b.part", "1"]


def test_new_item_makes_a_folder_and_refuses_one_that_exists_without_force(host: WindowsHost) -> None:
    script = (
        f"(New-Item -ItemType Directory -Path '{FOLDER}\\new\\deeper').FullName\n"
        f"(New-Item -ItemType Directory -Path '{FOLDER}\\new\\deeper' -Force).PSIsContainer\n"
        f"New-Item -ItemType Directory -Path '{FOLDER}\\new' -ErrorAction SilentlyContinue\n"
        "$Error[0].FullyQualifiedErrorId; $Error[0].Exception.HResult; $Error[0].Exception.Message"
    )

    assert run(host, script) == [
        f"{FOLDER}\\new\\deeper",
        True,
        "DirectoryExist,Microsoft.PowerShell.Commands.NewItemCommand",
        COR_E_IO,
        f"An item with the specified name {FOLDER}\\new already exists.",
    ]
    assert host.disk.is_folder(f"{FOLDER}\\new\\deeper")


def test_move_item_replaces_a_file_only_with_force(host: WindowsHost) -> None:
    script = (
        f"Move-Item -LiteralPath '{FOLDER}\\a.cab' -Destination '{FOLDER}\\b.part' -ErrorAction SilentlyContinue\n"
        "$?; $Error[0].Exception.GetType().FullName\n"
        f"Move-Item -LiteralPath '{FOLDER}\\a.cab' -Destination '{FOLDER}\\b.part' -Force\n"
        f"Get-Content -LiteralPath '{FOLDER}\\b.part' -Raw; Test-Path -LiteralPath '{FOLDER}\\a.cab'"
    )

    assert run(host, script) == [False, "System.IO.IOException", "1", False]


def test_remove_item_removes_a_folder_with_what_it_holds(host: WindowsHost) -> None:
    run(host, f"Remove-Item -LiteralPath '{FOLDER}\\sub' -Recurse -Force; Remove-Item -LiteralPath '{FOLDER}\\a.cab' -Force")

    assert host.disk.children(FOLDER) == ["b.part"]


def test_of_two_renames_onto_one_name_without_force_one_fails(host: WindowsHost) -> None:
    host.disk.write(f"{FOLDER}\\one.lock", [b"one"])
    host.disk.write(f"{FOLDER}\\two.lock", [b"two"])

    host.disk.move(f"{FOLDER}\\one.lock", f"{FOLDER}\\host.lock", replace=False)
    with pytest.raises(HResultError) as refused:
        host.disk.move(f"{FOLDER}\\two.lock", f"{FOLDER}\\HOST.LOCK", replace=False)

    assert refused.value.hresult == ERROR_ALREADY_EXISTS
    assert (b"".join(host.disk.read(f"{FOLDER}\\host.lock")), host.disk.exists(f"{FOLDER}\\two.lock")) == (b"one", True)


def test_a_file_in_use_stays_with_its_folder_and_the_rest_goes(host: WindowsHost, tmp_path: Path) -> None:
    set_host_fault(tmp_path / "hosts", host.name, "file_in_use", paths=[f"{FOLDER}\\SUB\\c.part"])
    host.disk.write(f"{FOLDER}\\sub\\d.part", [b"4"])

    error = failure(runtime_of(host), f"Remove-Item -LiteralPath '{FOLDER}' -Recurse -Force -ErrorAction Stop")

    exception = error.reported_exception
    assert (exception.type_name, exception.hresult) == ("System.IO.IOException", ERROR_SHARING_VIOLATION)
    assert exception.message == f"The process cannot access the file '{FOLDER}\\sub\\c.part' because it is being used by another process."
    assert (host.disk.children(FOLDER), host.disk.children(f"{FOLDER}\\sub")) == (["sub"], ["c.part"])
    for command in ("Remove-Item", "Move-Item -Destination C:\\c.part"):
        refused = failure(runtime_of(host), f"{command} -LiteralPath '{FOLDER}\\sub\\c.part' -ErrorAction Stop")
        assert refused.reported_exception.hresult == ERROR_SHARING_VIOLATION


def test_get_content_reads_lines_or_the_whole_text(host: WindowsHost) -> None:
    host.disk.write(f"{FOLDER}\\lines.txt", ["\ufefffirst\r\nsecond\nthird\r\n".encode()])
    script = f"$lines = Get-Content -LiteralPath '{FOLDER}\\lines.txt'\n$lines.Count; $lines[2]; (Get-Content -LiteralPath '{FOLDER}\\lines.txt' -Raw -Encoding UTF8).Length"

    assert run(host, script) == [3, "third", len("first\r\nsecond\nthird\r\n")]
