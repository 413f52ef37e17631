"""System.IO and Get-FileHash on an emulated host's disk, run from PowerShell."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from host_snippets import chain, failure, new_host, output, runtime_of
from wuacache_lab.windows.faults import set_host_fault
from wuacache_lab.windows.host import WindowsHost

FOLDER = r"C:\ProgramData\io"
ERROR_FILE_EXISTS = -2147024816
ERROR_DISK_FULL = -2147024784
ERROR_SHARING_VIOLATION = 0x80070020 - (1 << 32)
CBS_LOG = r"C:\Windows\Logs\CBS\CBS.log"


@pytest.fixture
def host(tmp_path: Path) -> WindowsHost:
    host = new_host(tmp_path)
    host.disk.make_dirs(FOLDER)
    return host


def run(host: WindowsHost, script: str) -> list[object]:
    return output(runtime_of(host), script)


def test_write_all_text_writes_utf8_without_a_byte_order_mark(host: WindowsHost) -> None:
    run(host, f"[System.IO.File]::WriteAllText('{FOLDER}\\t.json', 'caf' + [char]0xE9)")

    assert b"".join(host.disk.read(f"{FOLDER}\\t.json")) == "café".encode()


def test_read_all_text_follows_the_byte_order_mark(host: WindowsHost) -> None:
    host.disk.write(f"{FOLDER}\\u16.txt", [b"\xff\xfe" + "été".encode("utf-16-le")])
    host.disk.write(f"{FOLDER}\\u8.txt", ["été".encode()])

    assert run(host, f"[System.IO.File]::ReadAllText('{FOLDER}\\u16.txt'); [System.IO.File]::ReadAllText('{FOLDER}\\u8.txt')") == ["été", "été"]


def test_a_file_in_a_missing_folder_fails_inside_a_method_invocation_exception(host: WindowsHost) -> None:
    error = failure(runtime_of(host), f"[System.IO.File]::WriteAllText('{FOLDER}\\none\\t.txt', 'x')")

    assert chain(error) == ["System.Management.Automation.MethodInvocationException", "System.IO.DirectoryNotFoundException"]
    assert error.exception.message == f"Exception calling \"WriteAllText\" with \"2\" argument(s): \"Could not find a part of the path '{FOLDER}\\none\\t.txt'.\""


def test_a_missing_file_is_a_file_not_found_exception_with_its_name(host: WindowsHost) -> None:
    script = f"try {{ [System.IO.File]::ReadAllText('{FOLDER}\\none.txt') }} catch [System.IO.FileNotFoundException] {{ $_.Exception.FileName }}"

    assert run(host, script) == [f"{FOLDER}\\none.txt"]


def test_a_stream_appends_and_tells_its_length(host: WindowsHost) -> None:
    host.disk.write(f"{FOLDER}\\f.part", [b"abc"])
    script = (
        f"$f = [System.IO.File]::Open('{FOLDER}\\f.part', 'Append', 'Write')\n"
        "$f.Length; $f.Write([byte[]](100, 101), 0, 2); $f.Length; $f.Dispose()"
    )

    assert run(host, script) == [3, 5]
    assert b"".join(host.disk.read(f"{FOLDER}\\f.part")) == b"abcde"


def test_a_stream_opened_for_reading_copies_from_its_position(host: WindowsHost) -> None:
    host.disk.write(f"{FOLDER}\\log.txt", [b"abcdef"])
    script = (
        f"$source = [System.IO.File]::Open('{FOLDER}\\log.txt', 'Open', 'Read', 'Read')\n"
        "$source.Length; $source.Position = 2\n"
        f"$copy = [System.IO.File]::Open('{FOLDER}\\tail.txt', 'Create', 'Write')\n"
        "$source.CopyTo($copy); $source.Position; $copy.Dispose(); $source.Dispose()"
    )

    assert run(host, script) == [6, 6]
    assert b"".join(host.disk.read(f"{FOLDER}\\tail.txt")) == b"cdef"


@pytest.mark.parametrize(
    "opening",
    ["[System.IO.File]::Open($log, 'Open', 'Read', 'Read')", "[System.IO.File]::Open($log, 'Open', 'Read')", "[System.IO.File]::ReadAllText($log)"],
)
def test_the_servicing_log_refuses_a_reader_that_does_not_share_write_access(host: WindowsHost, opening: str) -> None:
    host.disk.make_dirs(r"C:\Windows\Logs\CBS")
    line = b"2024-05-14 07:46:51, Info                  CBS    Starting TrustedInstaller initialization.\r\n"
    host.disk.write(CBS_LOG, [line])

    error = failure(runtime_of(host), f"$log = '{CBS_LOG}'; {opening}")

    # TrustedInstaller holds it open for writing: ERROR_SHARING_VIOLATION.
    assert chain(error)[-1] == "System.IO.IOException"
    assert error.reported_exception.inner.hresult == ERROR_SHARING_VIOLATION  # type: ignore[union-attr]
    assert f"The process cannot access the file '{CBS_LOG}' because it is being used by another process." in error.exception.message
    # Sharing write access, it opens.
    assert run(host, f"$s = [System.IO.File]::Open('{CBS_LOG}', 'Open', 'Read', 'ReadWrite'); $s.Length; $s.Dispose()") == [len(line)]


def test_create_new_refuses_a_file_that_exists(host: WindowsHost) -> None:
    host.disk.write(f"{FOLDER}\\f.part", [b"abc"])
    script = f"try {{ [System.IO.File]::Open('{FOLDER}\\f.part', 'CreateNew', 'Write') }} catch {{ $_.Exception.InnerException.HResult }}"

    assert run(host, script) == [ERROR_FILE_EXISTS]


def test_a_mode_that_is_no_file_mode_fails_to_convert(host: WindowsHost) -> None:
    error = failure(runtime_of(host), f"[System.IO.File]::Open('{FOLDER}\\f.part', 'Sometimes', 'Write')")

    assert "System.IO.FileMode" in error.exception.message


def test_a_disposed_stream_refuses_more_writes(host: WindowsHost) -> None:
    script = f"$f = [System.IO.File]::Open('{FOLDER}\\f.part', 'Create', 'Write'); $f.Dispose(); $f.Write([byte[]](1), 0, 1)"

    assert chain(failure(runtime_of(host), script))[-1] == "System.ObjectDisposedException"


def test_a_full_disk_fails_a_write_with_its_hresult(host: WindowsHost, tmp_path: Path) -> None:
    set_host_fault(tmp_path / "hosts", host.name, "disk_full")
    script = f"try {{ [System.IO.File]::WriteAllText('{FOLDER}\\t.txt', 'x') }} catch {{ $_.Exception.InnerException.GetType().FullName; $_.Exception.InnerException.HResult }}"

    assert run(host, script) == ["System.IO.IOException", ERROR_DISK_FULL]


def test_create_directory_gives_each_folder_it_creates_the_security_given(host: WindowsHost) -> None:
    script = (
        "$acl = New-Object -TypeName System.Security.AccessControl.DirectorySecurity\n"
        "$acl.SetSecurityDescriptorSddlForm('O:BAD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)')\n"
        f"([System.IO.Directory]::CreateDirectory('{FOLDER}\\a\\b', $acl)).FullName\n"
        f"(Get-Acl -LiteralPath '{FOLDER}\\a\\b').Sddl; (Get-Acl -LiteralPath '{FOLDER}').Sddl"
    )

    assert run(host, script) == [f"{FOLDER}\\a\\b", "O:BAD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)", "O:SYD:AI"]


def test_create_directory_returns_a_folder_that_exists_as_it_is_and_refuses_a_file(host: WindowsHost) -> None:
    host.disk.make_dirs(f"{FOLDER}\\there")
    host.disk.write(f"{FOLDER}\\file", [b"x"])
    script = (
        "$acl = New-Object -TypeName System.Security.AccessControl.DirectorySecurity\n"
        "$acl.SetSecurityDescriptorSddlForm('O:BAD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)')\n"
        f"([System.IO.Directory]::CreateDirectory('{FOLDER}\\there', $acl)).FullName\n"
        f"(Get-Acl -LiteralPath '{FOLDER}\\there').Sddl\n"
        f"try {{ [System.IO.Directory]::CreateDirectory('{FOLDER}\\file') }} catch {{ $_.Exception.InnerException.HResult; $_.Exception.InnerException.Message }}"
    )

    assert run(host, script) == [
        f"{FOLDER}\\there",
        "O:SYD:AI",
        0x800700B7 - (1 << 32),
        f'Cannot create "{FOLDER}\\file" because a file or directory with the same name already exists.',
    ]


def test_file_hash_gives_the_algorithm_the_upper_case_digest_and_the_path(host: WindowsHost) -> None:
    host.disk.write(f"{FOLDER}\\f.bin", [b"payload"])
    script = f"$h = Get-FileHash -LiteralPath '{FOLDER}\\f.bin' -Algorithm SHA1\n$h.Algorithm; $h.Hash; $h.Path; (Get-FileHash -LiteralPath '{FOLDER}\\f.bin').Algorithm"

    assert run(host, script) == ["SHA1", hashlib.sha1(b"payload").hexdigest().upper(), f"{FOLDER}\\f.bin", "SHA256"]


def test_file_hash_of_a_stream_digests_the_utf8_of_a_text_and_has_no_path(host: WindowsHost) -> None:
    script = "$h = Get-FileHash -InputStream ([System.IO.MemoryStream]::new([System.Text.Encoding]::UTF8.GetBytes('caf' + [char]0xE9))) -Algorithm SHA256\n$h.Hash; $null -eq $h.Path"

    assert run(host, script) == [hashlib.sha256("café".encode()).hexdigest().upper(), True]


def test_a_memory_stream_is_made_from_a_byte_array_only(host: WindowsHost) -> None:
    error = failure(runtime_of(host), "[System.IO.MemoryStream]::new($null)")

    assert chain(error)[-1] == "System.ArgumentNullException"


def test_an_item_of_the_system_folder_has_its_version_resource(host: WindowsHost) -> None:
    script = "$v = (Get-Item -LiteralPath 'C:\\Windows\\System32\\wuapi.dll').VersionInfo\n'{0}.{1}.{2}.{3}' -f $v.FileMajorPart, $v.FileMinorPart, $v.FileBuildPart, $v.FilePrivatePart"

    assert run(host, script) == [host.profile.wua_version]


def test_a_member_net_framework_lacks_is_refused(host: WindowsHost) -> None:
    # File.ReadAllTextAsync exists from .NET Core 2.0 on, not in .NET Framework 4.8.
    error = failure(runtime_of(host), f"[System.IO.File]::ReadAllTextAsync('{FOLDER}\\f.bin')")

    assert chain(error) == ["System.Management.Automation.RuntimeException"]
    assert "does not contain a method named 'ReadAllTextAsync'" in error.exception.message
