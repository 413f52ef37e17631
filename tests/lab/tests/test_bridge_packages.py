"""``install_package`` on an emulated host, driven as the controller drives it
(docs/bridge-protocol.md): a package of the server fetched into the host's
packages folder and installed by wusa.exe (.msu) or DISM (.cab), whose exit
codes are those of Windows, and whose install the Update Agent sees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bridge_client import (
    ALWAYS_REQUIRES_REBOOT,
    DISABLED_AND_STOPPED,
    NETWORK,
    NEVER_REBOOTS,
    ROOT,
    STAGING,
    STANDARD_USER,
    Lab,
    call,
    criteria_for,
    elevated,
    ensure_cab,
    install_package,
    pending,
    publish,
    run_elevated,
    scan,
)
from host_snippets import failure, runtime_of
from wuacache_lab.catalog.payloads import upstream_path
from wuacache_lab.packages import build_cbs_cab, build_msu
from wuacache_lab.windows.faults import set_host_fault
from wuacache_lab.windows.host import WindowsHost

PACKAGES = f"{ROOT}\\packages"

E_ACCESSDENIED = -2147024891
E_INVALIDARG = -2147024809
COR_E_SYSTEM = -2146233087
ERROR_SUCCESS_REBOOT_REQUIRED = 3010
WU_S_ALREADY_INSTALLED = 0x00240006
WU_E_NOT_APPLICABLE = 0x80240017 - (1 << 32)
CBS_E_NOT_APPLICABLE = 0x800F081E - (1 << 32)
ERROR_ELEVATION_REQUIRED = 740
HRESULT_ELEVATION_REQUIRED = 0x800702E4

def catalog_update(lab: Lab, host: WindowsHost, reboot_behavior: int = NEVER_REBOOTS) -> dict[str, Any]:
    """An update of the catalog that is not installed, and its KB."""
    ensure_cab(lab, host)
    [update] = pending(host, reboot_behavior)
    return update


def is_installed(host: WindowsHost, update: dict[str, Any]) -> bool:
    return scan(host, criteria_for(update))["updates"][0]["is_installed"]


def packages_folder(host: WindowsHost) -> list[str]:
    return sorted(path.name for path in host.disk.path(PACKAGES).iterdir())


def reboot_indicators(host: WindowsHost) -> list[str]:
    exit_code, response = call(host, "info")
    assert exit_code == 0, response
    return response["result"]["reboot_indicators"]


def test_an_msu_installs_the_kb_the_catalog_knows(lab: Lab, host: WindowsHost) -> None:
    update = catalog_update(lab, host)
    [kb] = update["kb_article_ids"]
    package = publish(lab, f"windows10.0-kb{kb}-x64.msu", build_msu, kb=kb, restart=False)
    size = upstream_path(lab.docroot, package["url"]).stat().st_size

    result = install_package(host, package)

    assert result == {
        "exit_code": 0,
        "package_state": None,
        "download": {"status": "downloaded", "size": size, "transferred": size},
    }
    assert is_installed(host, update)
    # Used once: neither the package nor a partial download stays.
    assert packages_folder(host) == []
    assert (host.state.wuauserv_start_mode, host.state.wuauserv_state) == ("Disabled", "Stopped")


def test_an_msu_that_needs_a_restart_completes_with_it(lab: Lab, host: WindowsHost, tmp_path: Path) -> None:
    set_host_fault(tmp_path / "hosts", host.name, "reboot_seconds", seconds=0)
    update = catalog_update(lab, host, ALWAYS_REQUIRES_REBOOT)
    [kb] = update["kb_article_ids"]
    package = publish(lab, f"windows10.0-kb{kb}-x64.msu", build_msu, kb=kb, restart=True)

    assert install_package(host, package)["exit_code"] == ERROR_SUCCESS_REBOOT_REQUIRED

    assert "cbs_reboot_pending" in reboot_indicators(host)
    assert not is_installed(host, update)
    host.reboot()
    assert is_installed(host, update)
    assert reboot_indicators(host) == []


def test_an_msu_of_a_kb_already_installed_changes_nothing(lab: Lab, host: WindowsHost) -> None:
    update = catalog_update(lab, host)
    [kb] = update["kb_article_ids"]
    package = publish(lab, f"windows10.0-kb{kb}-x64-again.msu", build_msu, kb=kb, restart=False)
    install_package(host, package)
    before = host.state.packages

    assert install_package(host, package)["exit_code"] == WU_S_ALREADY_INSTALLED
    assert host.state.packages == before


def test_an_msu_for_another_release_does_not_apply(lab: Lab, host: WindowsHost) -> None:
    update = catalog_update(lab, host)
    [kb] = update["kb_article_ids"]
    package = publish(lab, f"windows11.0-kb{kb}-x64.msu", build_msu, kb=kb, target="win11-23h2", restart=False)

    assert install_package(host, package)["exit_code"] == WU_E_NOT_APPLICABLE
    assert not is_installed(host, update)
    assert host.state.packages == {}


def test_an_msu_for_another_architecture_does_not_apply(lab: Lab, host: WindowsHost) -> None:
    package = publish(lab, "windows10.0-kb5099001-x86.msu", build_msu, kb="5099001", target="win10-22h2-x86")

    assert install_package(host, package)["exit_code"] == WU_E_NOT_APPLICABLE


def test_a_kb_installed_by_wusa_can_be_removed_by_wusa(lab: Lab, host: WindowsHost) -> None:
    update = catalog_update(lab, host)
    [kb] = update["kb_article_ids"]
    install_package(host, publish(lab, f"windows10.0-kb{kb}-x64-removable.msu", build_msu, kb=kb, restart=False))

    assert elevated(host, "uninstall", kb=kb, wuauserv_after=DISABLED_AND_STOPPED) == {"method": "wusa", "exit_code": 0, "restart_needed": None}
    assert not is_installed(host, update)


def test_wusa_is_refused_to_a_network_logon(lab: Lab, host: WindowsHost) -> None:
    package = publish(lab, "windows10.0-kb5099002-x64.msu", build_msu, kb="5099002", restart=False)

    exit_code, response = call(host, "install_package", NETWORK, **package)

    assert (exit_code, response["result"]["exit_code"]) == (0, E_ACCESSDENIED)
    assert host.state.packages == {}


def test_a_cab_installs_with_dism_and_is_not_given_to_dism_again(lab: Lab, host: WindowsHost) -> None:
    update = catalog_update(lab, host)
    [kb] = update["kb_article_ids"]
    package = publish(lab, f"windows10.0-kb{kb}-x64.cab", build_cbs_cab, kb=kb, restart=False)

    first = install_package(host, package)
    assert (first["exit_code"], first["package_state"]) == (0, "NotPresent")
    assert is_installed(host, update)
    installed = host.state.packages
    assert [package.kb for package in installed.values()] == [kb]
    history = host.state.history

    again = install_package(host, package)
    assert (again["exit_code"], again["package_state"]) == (None, "Installed")
    assert (host.state.packages, host.state.history) == (installed, history)
    assert packages_folder(host) == []
    # Given to DISM whatever its state, it is applied again, which changes nothing.
    assert install_package(host, {**package, "installed_states": []})["exit_code"] == 0
    assert host.state.packages == installed


def test_a_cab_that_needs_a_restart_exits_with_3010_and_then_waits_for_it(lab: Lab, host: WindowsHost) -> None:
    package = publish(lab, "windows10.0-kb5099003-x64.cab", build_cbs_cab, kb="5099003", restart=True)

    first = install_package(host, package)
    assert (first["exit_code"], first["package_state"]) == (ERROR_SUCCESS_REBOOT_REQUIRED, "NotPresent")
    assert host.state.packages == {}
    assert "cbs_reboot_pending" in reboot_indicators(host)
    [change] = host.state.pending_changes

    again = install_package(host, package)
    assert (again["exit_code"], again["package_state"]) == (None, "InstallPending")
    assert install_package(host, {**package, "installed_states": []})["exit_code"] == ERROR_SUCCESS_REBOOT_REQUIRED
    assert host.state.pending_changes == [change]


def test_a_cab_for_another_release_does_not_apply(lab: Lab, host: WindowsHost) -> None:
    package = publish(lab, "windows10.0-kb5099004-server.cab", build_cbs_cab, kb="5099004", target="server2022")

    assert install_package(host, package)["exit_code"] == CBS_E_NOT_APPLICABLE
    assert host.state.packages == {}


def test_dism_needs_an_elevated_administrator(lab: Lab, host: WindowsHost) -> None:
    path = "C:\\Users\\alice\\kb5099005.cab"
    host.disk.make_dirs("C:\\Users\\alice")
    build_cbs_cab(host.disk.path(path), kb="5099005")

    dism = host.run_process(f'dism.exe /Online /Add-Package "/PackagePath:{path}" /Quiet /NoRestart', b"", STANDARD_USER)

    assert dism.exit_code == ERROR_ELEVATION_REQUIRED
    assert host.state.packages == {}
    refused = failure(runtime_of(host, STANDARD_USER), f"Get-WindowsPackage -Online -PackagePath '{path}'")
    assert refused.reported_exception.hresult == HRESULT_ELEVATION_REQUIRED - (1 << 32)


def test_a_package_with_the_wrong_digest_is_not_installed(lab: Lab, host: WindowsHost) -> None:
    package = publish(lab, "windows10.0-kb5099006-x64.msu", build_msu, kb="5099006")

    exit_code, response = run_elevated(host, "install_package", **{**package, "sha256": "0" * 64})

    assert exit_code == 1
    assert (response["error"]["hresult"], response["error"]["call"]) == (
        COR_E_SYSTEM,
        "Save-HttpFile windows10.0-kb5099006-x64.msu",
    )
    assert packages_folder(host) == []
    assert host.state.packages == {}
    assert (host.state.wuauserv_start_mode, host.state.wuauserv_state) == ("Disabled", "Stopped")


@pytest.mark.parametrize(
    ("name", "kind"),
    [("..\\evil.msu", "msu"), ("kb1.msu\n", "msu"), ("kb1.exe", "msu"), ("kb1.msu", "exe")],
    ids=["path", "newline", "extension", "kind"],
)
def test_a_name_or_kind_that_is_no_package_is_refused(lab: Lab, host: WindowsHost, name: str, kind: str) -> None:
    package = {**publish(lab, "windows10.0-kb5099007-x64.msu", build_msu, kb="5099007"), "name": name, "kind": kind}

    exit_code, response = run_elevated(host, "install_package", **package)

    assert exit_code == 1
    assert (response["error"]["hresult"], response["error"]["call"]) == (E_INVALIDARG, "bridge request")
    assert not host.disk.path(PACKAGES).exists()


# clean_staging


def test_clean_staging_removes_every_download_and_keeps_the_folders(lab: Lab, host: WindowsHost) -> None:
    ensure_cab(lab, host)
    leftovers = {
        f"{STAGING}\\windows10.0-kb5099010-x64.cab.part": 100,
        f"{STAGING}\\windows10.0-kb5099011-x64.cab": 50,
        f"{STAGING}\\nested\\file.bin": 5,
        f"{PACKAGES}\\windows10.0-kb5099012-x64.msu.part": 10,
    }
    for path, size in leftovers.items():
        host.disk.make_dirs(path.rsplit("\\", 1)[0])
        host.disk.write(path, [b"x" * size])
    catalog = b"".join(host.disk.read(f"{ROOT}\\wsusscn2.cab"))

    # No elevation needed: the WinRM logon does it.
    exit_code, response = call(host, "clean_staging")

    assert (exit_code, response["result"]) == (0, {"removed_files": 4, "removed_bytes": 165})
    assert list(host.disk.path(STAGING).iterdir()) == [] and packages_folder(host) == []
    assert b"".join(host.disk.read(f"{ROOT}\\wsusscn2.cab")) == catalog


def test_clean_staging_without_a_root_removes_nothing(host: WindowsHost) -> None:
    exit_code, response = call(host, "clean_staging")

    assert (exit_code, response["result"]) == (0, {"removed_files": 0, "removed_bytes": 0})
    assert not host.disk.path(ROOT).exists()
