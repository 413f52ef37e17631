"""The lab's hosts seen by the real pywinrm, as any WinRM client sees Windows."""

from __future__ import annotations

import pytest
import winrm
from winrm.exceptions import InvalidCredentialsError

from wuacache_lab.labspec import LabSpec


def session(lab_spec: LabSpec, index: int, transport: str, password: str | None = None) -> winrm.Session:
    host = lab_spec.hosts[index]
    return winrm.Session(
        f"http://{host.address}:{host.port}/wsman",
        auth=(lab_spec.user, password or lab_spec.password),
        transport=transport,
    )


@pytest.mark.parametrize("transport", ["basic", "ntlm"])
def test_run_ps_reaches_each_host(lab_spec: LabSpec, transport: str) -> None:
    for index, host in enumerate(lab_spec.hosts):
        result = session(lab_spec, index, transport).run_ps("$env:COMPUTERNAME")
        assert (result.status_code, result.std_out.strip(), result.std_err) == (0, host.name.upper().encode(), b"")


def test_ntlm_sessions_are_encrypted(lab_spec: LabSpec) -> None:
    protocol = session(lab_spec, 0, "ntlm").protocol
    # pywinrm encrypts NTLM over plain HTTP; the lab answers in kind.
    assert protocol.transport.message_encryption == "auto"
    shell = protocol.open_shell()
    try:
        assert protocol.transport.encryption is not None
        command = protocol.run_command(shell, "hostname")
        stdout, _, status = protocol.get_command_output(shell, command)
        protocol.cleanup_command(shell, command)
    finally:
        protocol.close_shell(shell)
    assert (status, stdout.strip()) == (0, lab_spec.hosts[0].name.upper().encode())


def test_wrong_password_is_refused(lab_spec: LabSpec) -> None:
    with pytest.raises(InvalidCredentialsError):
        session(lab_spec, 1, "ntlm", password="not-the-password").run_ps("hostname")


def test_a_command_line_longer_than_windows_allows_is_refused(lab_spec: LabSpec) -> None:
    # What cmd.exe answers; the script never runs.
    script = "Write-Output '" + "x" * 3100 + "'"
    result = session(lab_spec, 2, "ntlm").run_ps(script)
    assert result.status_code == 1
    assert result.std_out == b""
    assert result.std_err == b"The command line is too long.\r\n"
