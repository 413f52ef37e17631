"""Ansible's own winrm connection plugin against the lab's WinRM endpoint."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wuacache_lab.windows.process import LogonSession, ProcessResult
from wuacache_lab.winrm.server import WinRMEndpoint

USER, PASSWORD = "Administrator", "Lab-Passw0rd!"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

# The raw task's result is written to a file on the controller: structured,
# and independent of which stdout callbacks this ansible-core ships.
PLAYBOOK = """\
- name: Run a raw command on the emulated host
  hosts: windows
  gather_facts: false
  tasks:
    - name: Ask the host its name
      ansible.builtin.raw: hostname
      register: hostname

    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ hostname | to_json }}"
        dest: "{{ result_path }}"
        mode: "0600"
      delegate_to: localhost
"""


class PowerShellHost:
    """A host that answers ``hostname`` scripts sent as ``powershell ... -EncodedCommand``."""

    name = "ws01"

    def __init__(self) -> None:
        self.scripts: list[str] = []
        self.logons: list[LogonSession] = []

    def is_reachable(self) -> bool:
        return True

    def execute(self, command_line: str, stdin: bytes, logon: LogonSession) -> ProcessResult:
        match = re.fullmatch(r"powershell (?:-\w+ \w+ |-\w+ )*-EncodedCommand (\S+)", command_line, re.IGNORECASE)
        if not match:
            return ProcessResult(b"", f"unexpected command line {command_line!r}\r\n".encode(), 1)
        script = base64.b64decode(match.group(1)).decode("utf-16-le")
        self.scripts.append(script)
        self.logons.append(logon)
        if script.strip() != "hostname":
            return ProcessResult(b"", f"unexpected script {script!r}\r\n".encode(), 1)
        return ProcessResult(b"WS01\r\n", b"", 0)


@pytest.fixture
def host_endpoint() -> Iterator[tuple[PowerShellHost, WinRMEndpoint]]:
    host = PowerShellHost()
    with WinRMEndpoint(host, port=0, users={USER: PASSWORD}) as endpoint:
        yield host, endpoint


@pytest.mark.parametrize("transport", ["ntlm", "basic"])
def test_raw_task_runs_on_the_emulated_host(
    host_endpoint: tuple[PowerShellHost, WinRMEndpoint], tmp_path: Path, transport: str
) -> None:
    host, endpoint = host_endpoint
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        "[windows]\n"
        f"ws01 ansible_host={endpoint.address} ansible_port={endpoint.port} ansible_connection=winrm"
        f" ansible_winrm_transport={transport} ansible_winrm_scheme=http"
        f" ansible_winrm_server_cert_validation=ignore ansible_user={USER.lower()} ansible_password={PASSWORD}\n"
    )
    (tmp_path / "playbook.yml").write_text(PLAYBOOK)
    result_path = tmp_path / "result.json"
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_NOCOLOR": "1",
    }

    run = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", inventory, "-e", f"result_path={result_path}", "playbook.yml"],
        cwd=tmp_path,  # away from any project ansible.cfg
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    assert host.scripts == ["hostname"]
    assert host.logons == [LogonSession(user=USER, logon_type="network")]
    result = json.loads(result_path.read_text())
    assert (result["rc"], result["stdout"], result["stderr"]) == (0, "WS01\r\n", "")
