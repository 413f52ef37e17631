"""Who owns what a process of an emulated host creates: the security policy "System objects: Default
owner for objects created by members of the Administrators group", its default per edition, and the
bridge under each of its values."""

from __future__ import annotations

from pathlib import Path

import pytest
from bridge_client import CAB_URL, DISABLED_AND_STOPPED, NETWORK, ROOT, Lab, bridge_request, call, elevated, ensure_cab, start
from host_snippets import ADMINISTRATOR, STANDARD_USER, SYSTEM, new_host, output, runtime_of
from wuacache_lab.windows.disk import ADMINISTRATORS_SID
from wuacache_lab.windows.faults import set_host_fault
from wuacache_lab.windows.host import WindowsHost
from wuacache_lab.windows.owners import account_sid

CAB = f"{ROOT}\\wsusscn2.cab"
E_ACCESSDENIED = -2147024891
ERROR_INVALID_OWNER = 0x8007051B - (1 << 32)
LSA = "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Lsa"


def owner_of_a_new_folder(host: WindowsHost, logon: object) -> str:
    script = "(Get-Acl -LiteralPath (New-Item -ItemType Directory -Path 'C:\\ProgramData\\made' -Force).FullName).Sddl"
    [sddl] = output(runtime_of(host, logon), script)  # type: ignore[arg-type]
    return str(sddl).removeprefix("O:").split("D:")[0]


@pytest.mark.parametrize(
    ("profile", "value", "owner"),
    [("win10-22h2", 1, account_sid(ADMINISTRATOR)), ("win11-24h2", 1, account_sid(ADMINISTRATOR)), ("server2022", 0, "BA")],
)
def test_each_edition_has_the_policys_default(tmp_path: Path, profile: str, value: int, owner: str) -> None:
    host = new_host(tmp_path, profile=profile)

    assert output(runtime_of(host), f"(Get-Item -LiteralPath '{LSA}').GetValue('NoDefaultAdminOwner')") == [value]
    assert owner_of_a_new_folder(host, ADMINISTRATOR) == owner


@pytest.mark.parametrize(
    ("setting", "administrator", "system"),
    [("administrators", "BA", "BA"), ("creator", account_sid(ADMINISTRATOR), "SY")],
)
def test_the_setting_decides_for_administrators_and_system(tmp_path: Path, setting: str, administrator: str, system: str) -> None:
    host = new_host(tmp_path)
    set_host_fault(tmp_path / "hosts", host.name, "default_owner", owner=setting)

    assert owner_of_a_new_folder(host, ADMINISTRATOR) == administrator
    host.disk.remove_tree("C:\\ProgramData\\made")
    assert owner_of_a_new_folder(host, SYSTEM) == system


@pytest.mark.parametrize("setting", ["administrators", "creator"])
def test_a_standard_user_owns_what_it_creates_and_cannot_give_it_away(tmp_path: Path, setting: str) -> None:
    host = new_host(tmp_path)
    set_host_fault(tmp_path / "hosts", host.name, "default_owner", owner=setting)
    assert owner_of_a_new_folder(host, STANDARD_USER) == account_sid(STANDARD_USER)

    script = (
        "$acl = New-Object -TypeName System.Security.AccessControl.DirectorySecurity\n"
        "$acl.SetSecurityDescriptorSddlForm('O:BAD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)')\n"
        "Set-Acl -LiteralPath 'C:\\ProgramData\\made' -AclObject $acl -ErrorAction SilentlyContinue\n"
        "$?; $Error[0].Exception.GetType().FullName; $Error[0].Exception.Message"
    )
    assert output(runtime_of(host, STANDARD_USER), script) == [
        False,
        "System.InvalidOperationException",
        "The security identifier is not allowed to be the owner of this object.",
    ]
    assert host.disk.security("C:\\ProgramData\\made").owner == account_sid(STANDARD_USER)


@pytest.mark.parametrize(("setting", "cab_owner"), [("administrators", ADMINISTRATORS_SID), ("creator", account_sid(NETWORK))])
def test_the_bridge_uses_its_own_root_under_either_value(lab: Lab, host: WindowsHost, tmp_path: Path, setting: str, cab_owner: str) -> None:
    set_host_fault(tmp_path / "hosts", host.name, "default_owner", owner=setting)
    ensure_cab(lab, host)
    assert host.disk.security(CAB).owner == cab_owner
    assert host.disk.security(ROOT).owner == ADMINISTRATORS_SID

    # Each run secures the root again, with the catalog and the folders of earlier runs in it.
    assert elevated(host, "reboot_required", wuauserv_after=DISABLED_AND_STOPPED) == {"reboot_required": False}
    assert elevated(host, "reboot_required", wuauserv_after=DISABLED_AND_STOPPED) == {"reboot_required": False}


def test_a_root_that_a_user_made_is_refused_under_object_creator(lab: Lab, host: WindowsHost, tmp_path: Path) -> None:
    set_host_fault(tmp_path / "hosts", host.name, "default_owner", owner="creator")
    host.disk.make_dirs(ROOT, owner=account_sid(STANDARD_USER))

    exit_code, response = call(host, "ensure_cab", url=CAB_URL, sha256=lab.catalog.cab_sha256, offset=0)
    assert (exit_code, response["error"]["hresult"], response["error"]["call"]) == (1, E_ACCESSDENIED, "Initialize-PrivateFolder")
    exit_code, response = start(host, "planted", bridge_request("reboot_required", wuauserv_after=DISABLED_AND_STOPPED))
    assert (exit_code, response["error"]["hresult"]) == (1, E_ACCESSDENIED)
    assert host.disk.security(ROOT).owner == account_sid(STANDARD_USER)
    assert not host.disk.exists(CAB)


def test_a_standard_user_cannot_create_a_folder_administrators_own(tmp_path: Path) -> None:
    host = new_host(tmp_path)
    script = (
        "$acl = New-Object -TypeName System.Security.AccessControl.DirectorySecurity\n"
        "$acl.SetSecurityDescriptorSddlForm('O:BAD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)')\n"
        "try { [System.IO.Directory]::CreateDirectory('C:\\ProgramData\\theirs', $acl) }\n"
        "catch { $_.Exception.GetType().FullName; $_.Exception.InnerException.GetType().FullName; $_.Exception.InnerException.HResult }"
    )

    assert output(runtime_of(host, STANDARD_USER), script) == [
        "System.Management.Automation.MethodInvocationException",
        "System.IO.IOException",
        ERROR_INVALID_OWNER,
    ]
    assert not host.disk.is_folder("C:\\ProgramData\\theirs")
