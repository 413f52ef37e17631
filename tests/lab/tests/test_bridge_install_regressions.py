"""Defects of the install and uninstall operations that Windows shows, each with the test that catches it.

Each test runs twice (shipped_scripts.py): with today's scripts, and with
the scripts of the commit before the fix, taken from git, where it must fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bridge_client import (
    DISABLED_AND_STOPPED,
    NEVER_REBOOTS,
    ROOT,
    Lab,
    call,
    download,
    elevated,
    ensure_cab,
    install,
    install_package,
    pending,
    publish,
    run_elevated,
    scan,
)
from shipped_scripts import before_and_after

from wuacache_lab.packages import build_msu
from wuacache_lab.upstream import UpstreamServer
from wuacache_lab.windows.faults import set_host_fault
from wuacache_lab.windows.host import WindowsHost

BEFORE_FIXES = "711075a1b30a1e7f4bf47480d34edb8cc1cd808b"
# A combined package: the cumulative update KB5099101 with the servicing stack update KB5099100.
CUMULATIVE_KB = "5099101"
SERVICING_STACK_KB = "5099100"
CBS_E_CANNOT_UNINSTALL = 0x800F0825 - (1 << 32)
CBS_LOG = "C:\\Windows\\Logs\\CBS\\CBS.log"
ERROR_SUCCESS_REBOOT_REQUIRED = 3010


@pytest.fixture
def french_host(lab: Lab, upstream: UpstreamServer, tmp_path: Path) -> WindowsHost:
    """A host whose display language is French: the catalog's French language pack applies to it."""
    return WindowsHost(
        "WIN10-FR", tmp_path / "hosts", profile="win10-22h2-fr", trusted_ca=lab.ca.ca_cert, proxy=upstream.url
    )


@before_and_after(
    BEFORE_FIXES,
    "an update that can ask for user input was handed to the installer of a SYSTEM task, where nobody can answer it",
)
def test_an_update_that_can_ask_for_user_input_is_not_given_to_the_installer(
    shipped_scripts: object, lab: Lab, french_host: WindowsHost
) -> None:
    host = french_host
    ensure_cab(lab, host)
    # The language pack is the catalog's update whose InstallationBehavior.CanRequestUserInput is true.
    [asking] = [update for update in scan(host, "IsInstalled=0")["updates"] if "Local Experience Pack" in update["title"]]
    [other] = pending(host, NEVER_REBOOTS)
    download(lab, host, asking, other)

    result = install(host, asking, other)

    assert [update["update_id"] for update in result["updates"]] == [other["update_id"]]
    assert result["result_code"] == 2
    # The installer never saw it: no attempt in the history.
    assert [entry.update_id for entry in host.state.history] == [other["update_id"]]
    assert result["skipped"] == [{"update_id": asking["update_id"], "title": asking["title"]}]


def test_the_scan_says_which_update_can_ask_for_user_input(lab: Lab, french_host: WindowsHost) -> None:
    ensure_cab(lab, french_host)

    updates = scan(french_host)["updates"]

    assert {update["title"] for update in updates if update["can_request_user_input"]} == {
        update["title"] for update in updates if "Local Experience Pack" in update["title"]
    }
    assert any(update["can_request_user_input"] for update in updates)


def test_an_install_of_nothing_but_updates_that_ask_for_input_installs_nothing(lab: Lab, french_host: WindowsHost) -> None:
    host = french_host
    ensure_cab(lab, host)
    [asking] = [update for update in scan(host, "IsInstalled=0")["updates"] if update["can_request_user_input"]]
    download(lab, host, asking)

    result = install(host, asking)

    # IUpdateInstaller::Install would refuse the empty collection (WU_E_NO_UPDATE).
    assert result == {
        "reboot_required_before_installation": False,
        "result_code": None,
        "hresult": None,
        "reboot_required": None,
        "updates": [],
        "skipped": [{"update_id": asking["update_id"], "title": asking["title"]}],
    }
    assert host.state.history == []


@pytest.fixture
def combined_package(lab: Lab, host: WindowsHost, tmp_path: Path) -> WindowsHost:
    """The host, with a combined package installed by wusa.exe and its restart done."""
    set_host_fault(tmp_path / "hosts", host.name, "reboot_seconds", seconds=0)
    package = publish(
        lab, f"windows10.0-kb{CUMULATIVE_KB}-x64.msu", build_msu, kb=CUMULATIVE_KB, servicing_stack_kb=SERVICING_STACK_KB
    )
    assert install_package(host, package)["exit_code"] == ERROR_SUCCESS_REBOOT_REQUIRED
    host.reboot()
    assert host.is_reachable()
    return host


def installed_kbs(host: WindowsHost) -> list[str]:
    """The KB of each servicing package installed."""
    return sorted(package.kb for package in host.state.packages.values())


@before_and_after(
    BEFORE_FIXES,
    "the cumulative update of a combined package could not be removed: wusa.exe refuses the package that holds the servicing stack",
)
def test_the_cumulative_update_of_a_combined_package_is_removed_by_dism_and_the_servicing_stack_stays(
    shipped_scripts: object, combined_package: WindowsHost
) -> None:
    host = combined_package
    exit_code, response = call(host, "servicing_packages", name_like="Package_for_RollupFix*")
    assert exit_code == 0, response
    [cumulative] = response["result"]["packages"]

    exit_code, response = run_elevated(
        host, "uninstall", kb=CUMULATIVE_KB, package_name=cumulative["name"], wuauserv_after=DISABLED_AND_STOPPED
    )

    assert (exit_code, response.get("result")) == (0, {"method": "dism", "exit_code": None, "restart_needed": True})
    host.reboot()
    assert installed_kbs(host) == [SERVICING_STACK_KB]


def test_a_cumulative_update_package_names_its_kb_in_its_details(combined_package: WindowsHost) -> None:
    exit_code, response = call(combined_package, "servicing_packages", name_like="Package_for_*")

    assert exit_code == 0, response
    details = {package["name"]: package for package in response["result"]["packages"]}
    assert details.keys() == combined_package.state.packages.keys()
    [cumulative] = [package for name, package in details.items() if name.startswith("Package_for_RollupFix~")]
    assert (cumulative["state"], cumulative["description"], cumulative["support_information"]) == (
        "Installed",
        f"Fix for KB{CUMULATIVE_KB}",
        f"https://support.microsoft.com/help/{CUMULATIVE_KB}",
    )


def test_wusa_does_not_remove_a_combined_package(combined_package: WindowsHost) -> None:
    assert installed_kbs(combined_package) == [SERVICING_STACK_KB, CUMULATIVE_KB]

    result = elevated(combined_package, "uninstall", kb=CUMULATIVE_KB, wuauserv_after=DISABLED_AND_STOPPED)

    assert result == {"method": "wusa", "exit_code": CBS_E_CANNOT_UNINSTALL, "restart_needed": None}
    assert installed_kbs(combined_package) == [SERVICING_STACK_KB, CUMULATIVE_KB]


def test_dism_does_not_remove_a_servicing_stack(combined_package: WindowsHost) -> None:
    [servicing_stack] = [name for name in combined_package.state.packages if name.startswith("Package_for_ServicingStack")]

    exit_code, response = run_elevated(
        combined_package, "uninstall", kb=SERVICING_STACK_KB, package_name=servicing_stack, wuauserv_after=DISABLED_AND_STOPPED
    )

    assert exit_code == 1
    assert (response["error"]["hresult"], response["error"]["call"]) == (CBS_E_CANNOT_UNINSTALL, "Remove-WindowsPackage")
    assert servicing_stack in combined_package.state.packages


@before_and_after(BEFORE_FIXES, "a failed install returned nothing of the servicing log, CBS.log, which tells why it failed")
def test_after_a_failed_install_the_end_of_the_servicing_log_tells_why(
    shipped_scripts: object, lab: Lab, host: WindowsHost, tmp_path: Path
) -> None:
    ensure_cab(lab, host)
    [update] = pending(host, NEVER_REBOOTS)
    download(lab, host, update)
    set_host_fault(tmp_path / "hosts", host.name, "install_failure")
    assert install(host, update)["updates"][0]["result_code"] == 4

    # As the controller reads it: over the network logon, while TrustedInstaller holds the log open for writing.
    exit_code, response = call(host, "servicing_log", max_bytes=65536)

    assert exit_code == 0, response
    log = response["result"]
    assert (log["path"], log["offset"]) == (CBS_LOG, 0)
    assert log["size"] == len(log["text"]) == len(b"".join(host.disk.read(CBS_LOG)))
    [failed] = [line for line in log["text"].splitlines() if ", Error " in line]
    assert failed.endswith(f"Exec: Failed to install Package_for_KB{update['kb_article_ids'][0]}. [HRESULT = 0x80070643 - ERROR_INSTALL_FAILURE]")
    # The copy of the tail does not stay in the root.
    assert not host.disk.exists(f"{ROOT}\\CBS.log.tail")


def test_the_servicing_log_comes_from_the_given_bytes_before_its_end(lab: Lab, host: WindowsHost) -> None:
    host.disk.make_dirs(CBS_LOG.rsplit("\\", 1)[0])
    text = "".join(f"2024-05-14 07:46:{second:02d}, Info                  CBS    Line {second}\r\n" for second in range(60))
    host.disk.write(CBS_LOG, [text.encode("ascii")])

    exit_code, response = call(host, "servicing_log", max_bytes=100)

    assert exit_code == 0, response
    assert response["result"] == {"path": CBS_LOG, "size": len(text), "offset": len(text) - 100, "text": text[-100:]}


def test_a_host_without_a_servicing_log_answers_no_text(host: WindowsHost) -> None:
    exit_code, response = call(host, "servicing_log", max_bytes=100)

    assert (exit_code, response["result"]) == (0, {"path": CBS_LOG, "size": None, "offset": None, "text": None})
