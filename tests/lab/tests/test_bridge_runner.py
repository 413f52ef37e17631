"""Bridge requests sent to an emulated host exactly as docs/bridge-protocol.md
describes them: an encoded bootstrap on the command line, JSON on stdin."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from bridge_client import NETWORK, powershell_arguments, script
from wuacache_lab.windows.faults import set_host_fault
from wuacache_lab.windows.host import WindowsHost
from wuacache_lab.windows.process import MAX_COMMAND_LINE, ProcessResult

BRIDGE = script("_wua_bridge.ps1")

# ParameterBindingException, a RuntimeException: SystemException's HRESULT.
COR_E_SYSTEM = -2146233087


def command_line() -> str:
    return "PowerShell " + powershell_arguments(script("_wua_bootstrap.ps1"))


def request(operation: str = "info", protocol: int = 1, params: Any = None) -> bytes:
    document = {"bridge": BRIDGE, "request": {"protocol": protocol, "operation": operation, "params": params or {}}}
    return json.dumps(document).encode("utf-8")


def run(host: WindowsHost, stdin: bytes) -> tuple[ProcessResult, Any]:
    result = host.execute(command_line(), stdin, NETWORK)
    return result, json.loads(result.stdout) if result.stdout else None


def new_host(tmp_path: Path, profile: str = "win10-22h2", name: str = "win10-01") -> WindowsHost:
    return WindowsHost(name, tmp_path, profile=profile, trusted_ca=tmp_path / "ca.pem")


EXPECTED_OS = {
    "win10-22h2": ("Microsoft Windows 10 Pro", "10.0.19045", "19045", "64-bit", 1, "10.0.19041.3996"),
    "win11-23h2-arm64": (
        "Microsoft Windows 11 Pro",
        "10.0.22631",
        "22631",
        "ARM 64-bit Processor",
        1,
        "10.0.22621.3007",
    ),
    "server2022": ("Microsoft Windows Server 2022 Standard", "10.0.20348", "20348", "64-bit", 3, "10.0.20348.2227"),
}


@pytest.mark.parametrize("profile", EXPECTED_OS)
def test_info_reports_the_host_as_windows_would(tmp_path: Path, profile: str) -> None:
    host = new_host(tmp_path, profile)

    result, response = run(host, request())

    assert (result.exit_code, result.stderr) == (0, b"")
    assert (response["protocol"], response["operation"]) == (1, "info")
    info = response["result"]
    caption, version, build, architecture, product_type, wua_version = EXPECTED_OS[profile]
    assert info["computer_name"] == "WIN10-01"
    assert info["wua_version"] == wua_version
    # wuapi.dll's file version, which the Update Agent documents as its ProductVersionString.
    assert host.wua(NETWORK).create_object("Microsoft.Update.AgentInfo").GetInfo("ProductVersionString") == wua_version
    os_info = info["os"]
    assert (os_info["caption"], os_info["version"], os_info["build_number"]) == (caption, version, build)
    assert (os_info["architecture"], os_info["product_type"]) == (architecture, product_type)
    assert os_info["ubr"] == host.profile.ubr
    assert os_info["last_boot_up_time"].endswith("Z") and len(os_info["last_boot_up_time"].split(".")[1]) == 8
    assert datetime.fromisoformat(os_info["last_boot_up_time"][:26] + "+00:00") == datetime.fromisoformat(
        host.state.last_boot_up_time.replace("Z", "+00:00")
    )
    # No run has recorded the state it found.
    assert info["wuauserv"] == {"start_mode": "Manual", "state": "Stopped", "recorded": None}
    assert info["reboot_indicators"] == []
    drive = info["system_drive"]
    assert drive["device_id"] == "C:"
    assert drive["size_bytes"] == host.profile.disk_size_bytes
    assert 0 < drive["free_bytes"] < drive["size_bytes"]


def test_info_lists_the_reboot_markers_present(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    host.set_reboot_marker("pending_file_rename")
    host.set_reboot_marker("cbs_reboot_pending")

    _, response = run(host, request())

    assert sorted(response["result"]["reboot_indicators"]) == ["cbs_reboot_pending", "pending_file_rename"]


def test_info_works_while_wuauserv_is_disabled(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    host.system().set_service_start_mode("wuauserv", "Disabled")

    result, response = run(host, request())

    assert result.exit_code == 0
    assert response["result"]["wuauserv"] == {"start_mode": "Disabled", "state": "Stopped", "recorded": None}


def test_info_sees_a_full_disk(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    set_host_fault(tmp_path, host.name, "disk_full")

    _, response = run(host, request())

    assert response["result"]["system_drive"]["free_bytes"] == 4096


def test_request_with_a_utf8_bom_is_read(tmp_path: Path) -> None:
    result, response = run(new_host(tmp_path), b"\xef\xbb\xbf" + request())

    assert result.exit_code == 0
    assert response["result"]["computer_name"] == "WIN10-01"


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (b"", "ConvertFrom-Json"),
        (b"{not json", "ConvertFrom-Json"),
    ],
)
def test_malformed_standard_input_fails_like_powershell(tmp_path: Path, stdin: bytes, message: str) -> None:
    result = new_host(tmp_path).execute(command_line(), stdin, NETWORK)

    assert result.exit_code == 1
    assert result.stdout == b""
    assert message.encode() in result.stderr


@pytest.mark.parametrize(
    ("stdin", "operation", "hresult"),
    [
        (request(operation="reticulate"), "reticulate", -2147024809),  # ArgumentException: E_INVALIDARG
        (request(protocol=2), "info", -2147024809),
        # ParameterBindingException: task_poll's function takes no parameter "colour".
        (request("task_poll", params={"name": "run-1", "colour": "blue"}), "task_poll", -2146233087),
        # PropertyNotFoundException under strict mode: the request has no "operation".
        (json.dumps({"bridge": BRIDGE, "request": {"protocol": 1}}).encode(), None, -2146233087),
        (json.dumps({"bridge": BRIDGE, "request": "info"}).encode(), None, -2146233087),
    ],
)
def test_requests_the_bridge_cannot_run_get_an_error_response(
    tmp_path: Path, stdin: bytes, operation: str | None, hresult: int
) -> None:
    result, response = run(new_host(tmp_path), stdin)

    assert result.exit_code == 1
    assert (response["protocol"], response["operation"]) == (1, operation)
    assert response["error"]["hresult"] == hresult
    assert response["error"]["call"] == "bridge request"
    assert "result" not in response


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (request(operation="reticulate"), "Unknown bridge operation 'reticulate'."),
        (request(protocol=2), "This bridge speaks protocol 1, not 2."),
    ],
)
def test_a_refused_request_says_what_was_asked(tmp_path: Path, stdin: bytes, message: str) -> None:
    _, response = run(new_host(tmp_path), stdin)

    assert response["error"]["message"] == message


def test_the_collections_own_bootstrap_and_bridge_run(tmp_path: Path) -> None:
    scripts = Path(__file__).resolve().parents[3] / "plugins" / "plugin_utils"
    bootstrap = (scripts / "_wua_bootstrap.ps1").read_text(encoding="utf-8")
    payload = base64.b64encode(bootstrap.encode("utf-16-le")).decode("ascii")
    line = f"PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand {payload}"
    stdin = json.dumps(
        {
            "bridge": (scripts / "_wua_bridge.ps1").read_text(encoding="utf-8"),
            "request": {"protocol": 1, "operation": "info", "params": {}},
        }
    ).encode("ascii")

    result = new_host(tmp_path).execute(line, stdin, NETWORK)

    assert len(line) <= MAX_COMMAND_LINE
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["result"]["computer_name"] == "WIN10-01"


def test_powershell_is_found_whatever_its_spelling(tmp_path: Path) -> None:
    encoded = base64.b64encode(script("_wua_bootstrap.ps1").encode("utf-16-le")).decode("ascii")
    line = rf"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe -noprofile -enc {encoded}"

    result = new_host(tmp_path).execute(line, request(), NETWORK)

    assert result.exit_code == 0
    assert json.loads(result.stdout)["result"]["os"]["build_number"] == "19045"


def test_an_operation_refuses_a_parameter_it_does_not_declare(tmp_path: Path) -> None:
    # Every function of the bridge is advanced: PowerShell binds no name it does not declare.
    result, response = run(new_host(tmp_path), request(params={"colour": "blue"}))

    assert result.exit_code == 1
    assert (response["error"]["hresult"], response["error"]["call"]) == (COR_E_SYSTEM, "bridge request")
    assert "'colour'" in response["error"]["message"]


def test_an_operation_takes_the_common_parameters(tmp_path: Path) -> None:
    result, response = run(new_host(tmp_path), request(params={"verbose": True}))

    assert result.exit_code == 0
    assert response["result"]["computer_name"] == "WIN10-01"