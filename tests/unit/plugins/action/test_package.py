# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The package action: wusa.exe's and dism.exe's exit codes, against recorded bridge answers and a recorded server."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from ansible_collections.wuacache.wua.plugins.action.package import ActionModule
from ansible_collections.wuacache.wua.plugins.plugin_utils._reboot import RESTART

from .conftest import FakeServer
from .recorded import SHUTDOWN_ACCEPTED, RecordedHost, info, make_action, plan, scan_answer

CONTENT = b"standalone update"
REBOOTED = "2024-05-14T07:40:02.1000000Z"
DOWNLOADED = {"status": "downloaded", "size": len(CONTENT), "transferred": len(CONTENT)}


def package(name: str = "windows10.0-kb5034129-x64.msu", *, kind: str = "msu", kb: str | None = "5034129") -> dict[str, Any]:
    """What GET /api/v1/packages/<name> answers."""
    return {
        "name": name,
        "kind": kind,
        "size": len(CONTENT),
        "sha256": base64.b64encode(hashlib.sha256(CONTENT).digest()).decode("ascii"),
        "sha1": base64.b64encode(hashlib.sha1(CONTENT).digest()).decode("ascii"),
        "kb": kb,
        "description": "",
        "created_at": "2024-02-01T09:00:00Z",
        "updated_at": "2024-02-01T09:00:00Z",
        "url": f"https://wuacache.example/packages/{name}",
    }


DRIVER = package("nic-driver-2024.cab", kind="cab", kb=None)


def run(server: FakeServer, host: RecordedHost, *, check_mode: bool = False, **args: Any) -> dict[str, Any]:
    action = make_action(
        ActionModule, host, args={"server_url": server.url, "server_token": "s3cret", **args}, check_mode=check_mode, name="package"
    )
    return action.run(task_vars={"inventory_hostname": "ws2022-01"})


def installing_host(exit_code: int | None, package_state: str | None = None, **answers: list[Any]) -> RecordedHost:
    return RecordedHost({
        "info": [info(), info()],
        "install_package": [{"exit_code": exit_code, "package_state": package_state, "download": DOWNLOADED}],
        "scan": [scan_answer()],
        **answers,
    })


def serving(server: FakeServer, *packages: dict[str, Any]) -> FakeServer:
    server.packages.update((item["name"], item) for item in packages)
    server.report_answers.append(plan())
    return server


def test_installs_the_servers_package_then_rescans_and_reports(server: FakeServer) -> None:
    msu = package()
    host = installing_host(0)

    result = run(serving(server, msu), host, name=msu["name"])

    assert host.params("install_package") == [{
        "url": msu["url"],
        "name": msu["name"],
        "sha256": hashlib.sha256(CONTENT).hexdigest(),
        "kind": "msu",
        "installed_states": ["InstallPending", "Installed", "Superseded"],
        "wuauserv_after": {"start_mode": "Disabled", "running": False},
    }]
    assert host.operations == ["info", "install_package", "info", "scan"]
    # The package is read with the controller token; the rescan is reported.
    method, path, headers = server.requests[0]
    assert (method, path, headers["Authorization"]) == ("GET", f"/api/v1/packages/{msu['name']}", "Bearer s3cret")
    assert len(server.reports) == 1
    assert (result["changed"], result["reboot_required"], result["rebooted"]) == (True, False, False)
    assert (result["package"], result["exit_code"], result["package_state"], result["download"]) == (msu, 0, None, DOWNLOADED)
    assert result["counts"]["PENDING"] == 1
    assert "failed" not in result


@pytest.mark.parametrize(
    ("kind", "exit_code", "changed", "reboot_required"),
    [
        ("msu", 3010, True, True),
        ("msu", 0x00240005, True, True),  # WU_S_REBOOT_REQUIRED
        ("msu", 0x00240006, False, False),  # WU_S_ALREADY_INSTALLED
        ("cab", 0, True, False),
        ("cab", 3010, True, True),
    ],
)
def test_exit_codes_that_are_no_failure(server: FakeServer, kind: str, exit_code: int, changed: bool, reboot_required: bool) -> None:
    item = package(f"update.{kind}", kind=kind)

    result = run(serving(server, item), installing_host(exit_code), name=item["name"])

    assert "failed" not in result
    assert (result["changed"], result["reboot_required"], result["rebooted"]) == (changed, reboot_required, False)


@pytest.mark.parametrize(
    ("package_state", "reboot_required"),
    [("Installed", False), ("InstallPending", True), ("Superseded", False)],
)
def test_a_cab_whose_package_is_there_already_is_no_change(server: FakeServer, package_state: str, reboot_required: bool) -> None:
    # The bridge ran no dism.exe: Get-WindowsPackage found the package in a state the controller named.
    result = run(serving(server, DRIVER), installing_host(None, package_state), name=DRIVER["name"])

    assert "failed" not in result
    assert (result["exit_code"], result["package_state"]) == (None, package_state)
    assert (result["changed"], result["reboot_required"], result["rebooted"]) == (False, reboot_required, False)
    assert len(server.reports) == 1


@pytest.mark.parametrize(
    ("kind", "exit_code", "message"),
    [
        ("msu", 0x80240017 - 2**32, "update.msu does not apply to this host: wusa.exe exited with 0x80240017 WU_E_NOT_APPLICABLE"),
        ("cab", 0x800F081E - 2**32, "update.cab does not apply to this host: dism.exe exited with 0x800F081E CBS_E_NOT_APPLICABLE"),
        ("cab", 0x800F0922 - 2**32, "dism.exe could not install update.cab: exit code 0x800F0922"),
        ("msu", 0x80070422 - 2**32, "wusa.exe could not install update.msu: exit code 0x80070422 ERROR_SERVICE_DISABLED"),
        # wusa.exe's WU_E_NOT_APPLICABLE means nothing from dism.exe.
        ("cab", 0x80240017 - 2**32, "dism.exe could not install update.cab: exit code 0x80240017 WU_E_NOT_APPLICABLE"),
    ],
)
def test_other_exit_codes_fail_naming_them_after_the_rescan(server: FakeServer, kind: str, exit_code: int, message: str) -> None:
    item = package(f"update.{kind}", kind=kind)

    result = run(serving(server, item), installing_host(exit_code), name=item["name"])

    assert result["failed"] is True
    assert result["msg"].startswith(message)
    assert result["hresult"] == f"0x{exit_code & 0xFFFFFFFF:08X}"
    assert (result["changed"], result["rebooted"]) == (False, False)
    assert len(server.reports) == 1


def test_a_required_restart_with_reboot_restarts_the_host_before_the_rescan(server: FakeServer) -> None:
    host = installing_host(3010, info=[info(), info(), info(REBOOTED), info(REBOOTED)], restart=[SHUTDOWN_ACCEPTED])

    result = run(serving(server, DRIVER), host, name=DRIVER["name"], reboot=True)

    assert host.params("restart") == [RESTART]
    assert host.operations == ["info", "install_package", "info", "restart", "info", "info", "scan"]
    assert (result["changed"], result["reboot_required"], result["rebooted"]) == (True, False, True)


def test_no_restart_when_the_install_needs_none(server: FakeServer) -> None:
    host = installing_host(0)

    result = run(serving(server, DRIVER), host, name=DRIVER["name"], reboot=True)

    assert "restart" not in host.operations
    assert result["rebooted"] is False


def test_wuauserv_unchanged_keeps_the_state_info_read(server: FakeServer) -> None:
    host = installing_host(0)

    run(serving(server, DRIVER), host, name=DRIVER["name"], wuauserv_after="unchanged")

    [params] = host.params("install_package")
    assert params["wuauserv_after"] == {"start_mode": "Manual", "running": False}


@pytest.mark.parametrize(
    ("kb", "changed"),
    [("5034439", False), ("5034129", True), (None, True)],
    ids=["kb-installed", "kb-not-installed", "no-kb"],
)
def test_check_mode_says_whether_the_package_is_installed_and_installs_nothing(server: FakeServer, kb: str | None, changed: bool) -> None:
    item = package(kb=kb)
    host = RecordedHost({"info": [info()], "scan": [scan_answer()]})

    result = run(serving(server, item), host, check_mode=True, name=item["name"])

    # The servicing stack update (KB5034439) is installed, the cumulative update (KB5034129) is not.
    assert result["changed"] is changed
    assert result["package"] == item
    assert host.operations == ["info", "scan"]
    assert "failed" not in result


def test_an_unknown_package_fails_before_the_host_is_contacted(server: FakeServer) -> None:
    host = RecordedHost({})

    result = run(server, host, name="missing.msu")

    assert result["failed"] is True
    assert "HTTP 404" in result["msg"]
    assert host.requests == []
