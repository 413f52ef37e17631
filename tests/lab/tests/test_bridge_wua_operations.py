"""The Windows Update operations of the bridge on an emulated host, driven as
the controller drives them (docs/bridge-protocol.md): ``ensure_cab`` over the
WinRM logon, the others through elevated runs, against a generated, signed
catalog served by the lab's upstream."""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from bridge_client import (
    ALL_UPDATES,
    ALWAYS_REQUIRES_REBOOT,
    CAB_URL,
    DISABLED_AND_STOPPED,
    NETWORK,
    NEVER_REBOOTS,
    ROOT,
    RUNS,
    STAGING,
    STANDARD_USER,
    TASK_STATE_RUNNING,
    Lab,
    bridge_request,
    call,
    criteria_for,
    download,
    elevated,
    ensure_cab,
    files_for,
    install,
    pending,
    run_elevated,
    scan,
    start,
)
from http_servers import Server, serving, tls_context
from wuacache_lab.catalog.payloads import upstream_path
from wuacache_lab.upstream import UpstreamServer, read_access_log, set_fault
from wuacache_lab.windows.disk import ADMINISTRATORS_SID, SYSTEM_SID, SecurityDescriptor
from wuacache_lab.windows.faults import set_host_fault
from wuacache_lab.windows.host import SYSTEM, WindowsHost
from wuacache_lab.windows.owners import account_sid
from wuacache_lab.windows.wua import SCAN_FILE_FOLDER

CAB = f"{ROOT}\\wsusscn2.cab"

E_ACCESSDENIED = -2147024891
E_INVALIDARG = -2147024809
ERROR_FILE_NOT_FOUND = -2147024894
ERROR_SERVICE_DISABLED = -2147023838
COR_E_SYSTEM = -2146233087
# IOException: New-Item's "already exists", a transfer cut while the body is read.
COR_E_IO = -2146232800
# InvalidCastException: an argument PowerShell cannot convert to a parameter's type.
COR_E_INVALIDCAST = -2147467262
WU_E_UH_NEEDANOTHERDOWNLOAD = 0x8024200D - (1 << 32)
WU_E_ALL_UPDATES_FAILED = 0x80240022 - (1 << 32)
ERROR_INSTALL_FAILURE = 0x80070643 - (1 << 32)
WUSA_NOT_INSTALLED = 2359303

UPDATE_MEMBERS = {
    "update_id", "revision_number", "title", "kb_article_ids", "msrc_severity", "categories",
    "last_deployment_change_time", "is_installed", "is_hidden", "is_downloaded", "is_mandatory",
    "eula_accepted", "reboot_required", "reboot_behavior", "can_request_user_input", "max_download_size", "superseded_update_ids",
    "download_urls", "bundled",
}  # fmt: skip


def transfers(upstream: UpstreamServer, tmp_path: Path, url: str) -> list[tuple[int, int]]:
    """(status, bytes) of each answer the upstream gave for ``url``."""
    upstream.wait_idle()
    return [
        (entry["status"], entry["bytes"]) for entry in read_access_log(tmp_path / "upstream") if entry["url"] == url
    ]


def wuauserv(host: WindowsHost) -> tuple[str, str]:
    state = host.state
    return state.wuauserv_start_mode, state.wuauserv_state


# The host's folder


def plant_root(host: WindowsHost) -> None:
    """An ordinary user creates the root first, with a catalog of their own in it."""
    host.disk.make_dirs(ROOT, owner=account_sid(STANDARD_USER))
    host.disk.write(CAB, [b"planted"])


def test_a_root_planted_by_a_user_is_refused_before_a_run_starts(host: WindowsHost) -> None:
    plant_root(host)

    exit_code, response = start(host, "planted", bridge_request("reboot_required", wuauserv_after=DISABLED_AND_STOPPED))

    assert exit_code == 1
    assert (response["error"]["hresult"], response["error"]["call"]) == (E_ACCESSDENIED, "Initialize-PrivateFolder")
    assert host.state.scheduled_tasks == {}
    assert not host.disk.path(RUNS).exists()
    assert host.disk.security(ROOT).owner == account_sid(STANDARD_USER)


def test_a_root_planted_by_a_user_gets_no_catalog(
    lab: Lab, host: WindowsHost, upstream: UpstreamServer, tmp_path: Path
) -> None:
    plant_root(host)

    exit_code, response = call(host, "ensure_cab", url=CAB_URL, sha256=lab.catalog.cab_sha256, offset=0)

    assert exit_code == 1
    assert (response["error"]["hresult"], response["error"]["call"]) == (E_ACCESSDENIED, "Initialize-PrivateFolder")
    assert b"".join(host.disk.read(CAB)) == b"planted"
    assert transfers(upstream, tmp_path, CAB_URL) == []


def test_a_folder_planted_inside_the_root_is_refused(host: WindowsHost) -> None:
    # An administrator's root that still has ProgramData's ACL, where a user created a folder.
    host.disk.make_dirs(ROOT, owner=ADMINISTRATORS_SID)
    host.disk.make_dirs(RUNS, owner=account_sid(STANDARD_USER))

    exit_code, response = start(host, "planted", bridge_request("reboot_required", wuauserv_after=DISABLED_AND_STOPPED))

    assert exit_code == 1
    assert (response["error"]["hresult"], response["error"]["call"]) == (E_ACCESSDENIED, "Initialize-PrivateFolder")
    assert host.state.scheduled_tasks == {}
    assert not host.disk.exists(f"{RUNS}\\planted")


def test_a_run_folder_that_exists_already_is_not_used(lab: Lab, host: WindowsHost) -> None:
    ensure_cab(lab, host)
    host.disk.make_dirs(f"{RUNS}\\run-1")

    exit_code, response = start(host, "run-1", bridge_request("reboot_required", wuauserv_after=DISABLED_AND_STOPPED))

    assert exit_code == 1
    assert (response["error"]["hresult"], response["error"]["call"]) == (COR_E_IO, "New-Item run folder")
    assert host.state.scheduled_tasks == {}


def test_only_http_urls_are_fetched(lab: Lab, host: WindowsHost) -> None:
    exit_code, response = call(
        host, "ensure_cab", url="file://fileserver/share/wsusscn2.cab", sha256=lab.catalog.cab_sha256, offset=0
    )

    assert exit_code == 1
    assert (response["error"]["hresult"], response["error"]["call"]) == (E_INVALIDARG, "Save-HttpFile wsusscn2.cab")
    assert not host.disk.exists(CAB)


def test_a_staged_file_name_that_is_a_path_is_refused(lab: Lab, host: WindowsHost) -> None:
    ensure_cab(lab, host)
    [update] = pending(host, NEVER_REBOOTS)
    files = files_for(lab, update)
    for child_files in files.values():
        for file in child_files:
            file["name"] = "..\\runs\\envelope.json"

    result = download(lab, host, update, files=files)

    [outcome] = result["updates"]
    assert (outcome["error"]["hresult"], outcome["error"]["call"], outcome["is_downloaded"]) == (
        E_INVALIDARG,
        "staged file name",
        False,
    )
    assert not host.disk.exists(f"{RUNS}\\envelope.json")


def test_the_root_is_made_private_before_anything_is_written(lab: Lab, host: WindowsHost) -> None:
    ensure_cab(lab, host)

    assert host.disk.security(ROOT) == SecurityDescriptor(
        owner=ADMINISTRATORS_SID, protected=True, full_control=(SYSTEM_SID, ADMINISTRATORS_SID)
    )
    assert host.disk.security(ROOT).sddl == "O:BAD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"


# ensure_cab, and what info tells of downloads


def info_downloads(host: WindowsHost) -> dict[str, Any]:
    exit_code, response = call(host, "info", downloads=True)
    assert exit_code == 0, response
    return response["result"]["downloads"]


def test_ensure_cab_fetches_the_catalog_with_the_servers_digest(
    lab: Lab, host: WindowsHost, upstream: UpstreamServer, tmp_path: Path
) -> None:
    size = lab.catalog.cab_size

    fetched = ensure_cab(lab, host)

    assert fetched == {"status": "downloaded", "size": size, "transferred": size}
    assert transfers(upstream, tmp_path, CAB_URL) == [(200, size)]
    assert not host.disk.exists(f"{CAB}.part")


@pytest.mark.parametrize(
    ("profile", "setting"),
    [
        ("win11-23h2", {}),
        ("win11-23h2", {"sch_use_strong_crypto": 1}),
        ("win11-23h2", {"system_default_tls_versions": 1, "sch_use_strong_crypto": 1}),
        ("win10-22h2", {"system_default_tls_versions": 1, "sch_use_strong_crypto": 1}),
    ],
    ids=["win11-registry-unset", "win11-strong-crypto", "win11-system-default", "win10-system-default"],
)
def test_ensure_cab_reaches_a_server_that_speaks_tls_1_2_only(lab: Lab, tmp_path: Path, profile: str, setting: dict[str, int]) -> None:
    host = WindowsHost("HOST-01", tmp_path / "hosts", profile=profile, trusted_ca=lab.ca.ca_cert)
    set_host_fault(tmp_path / "hosts", host.name, "net_framework_tls", **setting)
    context = tls_context(lab.ca.directory, maximum=ssl.TLSVersion.TLSv1_2)

    with serving(Server(body=lab.catalog.cab.read_bytes()), context) as server:
        fetched = ensure_cab(lab, host, url=f"{server.url}/wua/wsusscn2.cab")

    assert fetched["status"] == "downloaded"
    assert server.tls_versions == ["TLSv1.2"]


def test_info_tells_what_the_root_holds_of_downloads(lab: Lab, host: WindowsHost) -> None:
    exit_code, response = call(host, "info")
    assert (exit_code, response["result"]["downloads"]) == (0, None)
    assert info_downloads(host) == {
        "catalog": {"path": CAB, "size": None, "sha256": None, "part_size": None},
        "staged_part_sizes": {},
    }

    ensure_cab(lab, host)
    host.disk.make_dirs(STAGING)
    host.disk.write(f"{STAGING}\\windows10.0-kb5034441-x64_0123.cab.part", [b"x" * 100])
    host.disk.write(f"{STAGING}\\windows10.0-kb5034441-x64_4567.cab", [b"x" * 10])

    # The part of each file by the name of the file it becomes; a whole file is no part.
    assert info_downloads(host) == {
        "catalog": {"path": CAB, "size": lab.catalog.cab_size, "sha256": lab.catalog.cab_sha256, "part_size": None},
        "staged_part_sizes": {"windows10.0-kb5034441-x64_0123.cab": 100},
    }


def test_ensure_cab_resumes_a_broken_transfer_from_the_offset_given(
    lab: Lab, host: WindowsHost, upstream: UpstreamServer, tmp_path: Path
) -> None:
    set_fault(tmp_path / "upstream", CAB_URL, "truncate", count=1)

    exit_code, response = call(host, "ensure_cab", url=CAB_URL, sha256=lab.catalog.cab_sha256, offset=0)
    assert exit_code == 1
    assert (response["error"]["hresult"], response["error"]["call"]) == (
        COR_E_IO,
        "Save-HttpFile wsusscn2.cab",
    )
    assert not host.disk.exists(CAB)
    cut = info_downloads(host)["catalog"]["part_size"]

    resumed = ensure_cab(lab, host, offset=cut)

    [(_, sent), (status, rest)] = transfers(upstream, tmp_path, CAB_URL)
    assert 0 < cut == sent < lab.catalog.cab_size and status == 206
    assert resumed == {"status": "resumed", "size": lab.catalog.cab_size, "transferred": rest}
    assert info_downloads(host)["catalog"]["sha256"] == lab.catalog.cab_sha256


def test_a_part_of_an_older_catalog_fails_the_digest_and_is_deleted(
    lab: Lab, host: WindowsHost, upstream: UpstreamServer, tmp_path: Path
) -> None:
    # What a transfer broken last month left: the first bytes of another cab.
    host.disk.make_dirs(ROOT)
    host.disk.write(f"{CAB}.part", [b"MSCF" + b"\0" * 1000])

    exit_code, response = call(host, "ensure_cab", url=CAB_URL, sha256=lab.catalog.cab_sha256, offset=1004)

    assert exit_code == 1
    assert (response["error"]["hresult"], response["error"]["call"]) == (COR_E_SYSTEM, "Save-HttpFile wsusscn2.cab")
    assert lab.catalog.cab_sha256 in response["error"]["message"]
    assert not host.disk.exists(f"{CAB}.part") and not host.disk.exists(CAB)
    # From the start, it comes whole.
    assert ensure_cab(lab, host)["status"] == "downloaded"
    assert [(status, sent) for status, sent in transfers(upstream, tmp_path, CAB_URL)][-1] == (200, lab.catalog.cab_size)


# wuauserv around every Windows Update operation


@pytest.mark.parametrize(
    ("wuauserv_after", "expected"),
    [
        (DISABLED_AND_STOPPED, ("Disabled", "Stopped")),
        ({"start_mode": "Automatic", "running": True}, ("Auto", "Running")),
        ({"start_mode": "Manual", "running": False}, ("Manual", "Stopped")),
    ],
)
def test_wuauserv_is_left_as_asked(lab: Lab, host: WindowsHost, wuauserv_after: dict[str, Any], expected: tuple) -> None:
    ensure_cab(lab, host)
    host.system().set_service_start_mode("wuauserv", "Disabled")

    elevated(host, "history", wuauserv_after=wuauserv_after)

    assert wuauserv(host) == expected


def test_wuauserv_is_restored_when_the_operation_fails(host: WindowsHost) -> None:
    host.system().set_service_start_mode("wuauserv", "Disabled")

    # No catalog in the root yet.
    exit_code, response = run_elevated(host, "scan", criteria=ALL_UPDATES, wuauserv_after=DISABLED_AND_STOPPED)

    assert exit_code == 1
    assert (response["error"]["hresult"], response["error"]["call"]) == (ERROR_FILE_NOT_FOUND, "AddScanPackageService")
    assert wuauserv(host) == ("Disabled", "Stopped")


# A start mode Set-Service cannot take: restoring wuauserv fails to bind -StartupType, whose
# ParameterBindingException holds the PSInvalidCastException of the conversion.
UNKNOWN_START_MODE = {"start_mode": "Sometimes", "running": False}


def test_a_failing_clean_up_is_the_error_of_an_operation_that_succeeded(host: WindowsHost) -> None:
    exit_code, response = run_elevated(host, "history", wuauserv_after=UNKNOWN_START_MODE)

    assert exit_code == 1
    assert (response["error"]["hresult"], response["error"]["call"]) == (COR_E_INVALIDCAST, "Restore wuauserv")
    assert "result" not in response


def test_a_failing_clean_up_does_not_hide_why_the_operation_failed(host: WindowsHost) -> None:
    # No catalog in the root yet.
    exit_code, response = run_elevated(host, "scan", criteria=ALL_UPDATES, wuauserv_after=UNKNOWN_START_MODE)

    assert exit_code == 1
    assert (response["error"]["hresult"], response["error"]["call"]) == (ERROR_FILE_NOT_FOUND, "AddScanPackageService")


# scan and history


def test_scan_reports_what_the_agent_finds(lab: Lab, host: WindowsHost) -> None:
    ensure_cab(lab, host)

    result = scan(host)

    assert result["cab"]["path"] == CAB and result["result_code"] == 2
    assert result["history"] == [] and result["reboot_required"] is False
    # The agent's own view of the same catalog.
    host.system().set_service_start_mode("wuauserv", "Manual")
    client = host.wua()
    searcher = client.create_object("Microsoft.Update.Session").CreateUpdateSearcher()
    searcher.ServerSelection = 3
    searcher.ServiceID = (
        client.create_object("Microsoft.Update.ServiceManager").AddScanPackageService("check", CAB, 0).ServiceID
    )
    found = {update.Identity.UpdateID: update for update in searcher.Search(ALL_UPDATES).Updates}
    assert [update["update_id"] for update in result["updates"]] == list(found)
    for record in result["updates"]:
        assert set(record) == UPDATE_MEMBERS
        update = found[record["update_id"]]
        assert record["kb_article_ids"] == list(update.KBArticleIDs)
        assert record["can_request_user_input"] is update.InstallationBehavior.CanRequestUserInput
        assert {category["type"] for category in record["categories"]} == {"Product", "UpdateClassification"}
        assert record["last_deployment_change_time"].endswith("Z")
        assert record["bundled"] == [
            {
                "update_id": child.Identity.UpdateID,
                "revision_number": child.Identity.RevisionNumber,
                "title": child.Title,
                "download_urls": [content.DownloadUrl for content in child.DownloadContents],
            }
            for child in update.BundledUpdates
        ]
    assert any(child["download_urls"] for record in result["updates"] for child in record["bundled"])


def test_a_scan_given_the_servers_catalog_fetches_it_first_under_its_own_hold_on_the_host(lab: Lab, host: WindowsHost) -> None:
    cab = {"url": CAB_URL, "sha256": lab.catalog.cab_sha256, "offset": 0}

    result = elevated(host, "scan", criteria=ALL_UPDATES, wuauserv_after=DISABLED_AND_STOPPED, cab=cab)

    assert result["cab"]["transfer"]["status"] == "downloaded"
    assert result["cab"]["transfer"]["size"] == host.disk.size(f"{ROOT}\\wsusscn2.cab")
    assert result["updates"]
    # Without one, the scan uses the catalog the host holds.
    assert scan(host)["cab"]["transfer"] is None


def test_scan_removes_its_scan_package_service(lab: Lab, host: WindowsHost) -> None:
    ensure_cab(lab, host)

    service_id = scan(host)["cab"]["service_id"]

    assert host.state.scan_services == {}
    assert not host.disk.exists(f"{SCAN_FILE_FOLDER}\\{service_id}\\wsusscn2.cab")


def test_scan_is_refused_to_a_network_logon(lab: Lab, host: WindowsHost) -> None:
    ensure_cab(lab, host)

    exit_code, response = call(host, "scan", criteria=ALL_UPDATES, wuauserv_after=DISABLED_AND_STOPPED)

    assert exit_code == 1
    assert (response["error"]["hresult"], response["error"]["call"]) == (E_ACCESSDENIED, "AddScanPackageService")


# download


def test_download_puts_each_childs_files_in_the_cache(lab: Lab, host: WindowsHost) -> None:
    ensure_cab(lab, host)
    [update] = pending(host, NEVER_REBOOTS)

    result = download(lab, host, update)

    [entry] = result["updates"]
    names = [url.rsplit("/", 1)[-1] for child in update["bundled"] for url in child["download_urls"]]
    assert (entry["update_id"], entry["is_downloaded"], entry["error"]) == (update["update_id"], True, None)
    assert [(file["name"], file["status"]) for file in entry["files"]] == [(name, "downloaded") for name in names]
    assert [file["size"] for file in entry["files"]] == [file["transferred"] for file in entry["files"]]
    assert list(host.disk.path(STAGING).iterdir()) == []
    assert scan(host, criteria_for(update))["updates"][0]["is_downloaded"] is True


def test_download_resumes_a_staged_part_from_the_offset_given(
    lab: Lab, host: WindowsHost, upstream: UpstreamServer, tmp_path: Path
) -> None:
    ensure_cab(lab, host)
    [update] = pending(host, NEVER_REBOOTS)
    files = files_for(lab, update)
    first = files[update["bundled"][0]["update_id"].lower()][0]
    payload = upstream_path(lab.docroot, first["url"]).read_bytes()
    # What a transfer broken in an earlier run left, as info reported it.
    host.disk.make_dirs(STAGING)
    host.disk.write(f"{STAGING}\\{first['name']}.part", [payload[:100]])
    first["offset"] = 100

    [entry] = download(lab, host, update, files=files)["updates"]

    assert (entry["is_downloaded"], entry["error"]) == (True, None)
    resumed = next(file for file in entry["files"] if file["name"] == first["name"])
    assert resumed == {"name": first["name"], "status": "resumed", "size": len(payload), "transferred": len(payload) - 100}
    assert (206, len(payload) - 100) in transfers(upstream, tmp_path, first["url"])


def test_a_wrong_digest_fails_its_update_only(lab: Lab, host: WindowsHost) -> None:
    ensure_cab(lab, host)
    damaged, sound = pending(host, NEVER_REBOOTS, 2)
    files = files_for(lab, damaged, sound)
    first_child = files[damaged["bundled"][0]["update_id"].lower()]
    first_child[0] = {**first_child[0], "sha1": "0" * 40}

    result = download(lab, host, damaged, sound, files=files)

    entries = {entry["update_id"]: entry for entry in result["updates"]}
    failed = entries[damaged["update_id"]]
    assert failed["is_downloaded"] is False
    assert failed["error"]["hresult"] == COR_E_SYSTEM
    assert failed["error"]["call"] == f"Save-HttpFile {first_child[0]['name']}"
    assert (entries[sound["update_id"]]["is_downloaded"], entries[sound["update_id"]]["error"]) == (True, None)
    assert list(host.disk.path(STAGING).iterdir()) == []


def test_copy_to_cache_refuses_the_file_of_another_child(lab: Lab, host: WindowsHost) -> None:
    ensure_cab(lab, host)
    update, other = pending(host, NEVER_REBOOTS, 2)
    files = files_for(lab, update)
    files[update["bundled"][0]["update_id"].lower()] = files_for(lab, other)[other["bundled"][0]["update_id"].lower()]

    [entry] = download(lab, host, update, files=files)["updates"]

    assert entry["is_downloaded"] is False
    assert (entry["error"]["hresult"], entry["error"]["call"]) == (WU_E_UH_NEEDANOTHERDOWNLOAD, "IUpdate.CopyToCache")


def test_copy_to_cache_refuses_files_windows_update_would_not_download(lab: Lab, host: WindowsHost, tmp_path: Path) -> None:
    ensure_cab(lab, host)
    refused, taken = pending(host, NEVER_REBOOTS, 2)
    set_host_fault(tmp_path / "hosts", host.name, "cache_refuses_files", update_ids=[refused["update_id"]])

    entries = {entry["update_id"]: entry for entry in download(lab, host, refused, taken)["updates"]}

    assert (entries[refused["update_id"]]["error"]["hresult"], entries[refused["update_id"]]["is_downloaded"]) == (
        WU_E_UH_NEEDANOTHERDOWNLOAD,
        False,
    )
    assert (entries[taken["update_id"]]["error"], entries[taken["update_id"]]["is_downloaded"]) == (None, True)


# install


def test_install_installs_and_records_it(lab: Lab, host: WindowsHost) -> None:
    ensure_cab(lab, host)
    [update] = pending(host, NEVER_REBOOTS)
    download(lab, host, update)

    result = install(host, update)

    assert result == {
        "reboot_required_before_installation": False,
        "result_code": 2,
        "hresult": 0,
        "reboot_required": False,
        "updates": [
            {"update_id": update["update_id"], "title": update["title"], "result_code": 2, "hresult": 0,
             "reboot_required": False},
        ],
        "skipped": [],
    }  # fmt: skip
    [entry] = elevated(host, "history", wuauserv_after=DISABLED_AND_STOPPED)["history"]
    assert (entry["operation"], entry["result_code"], entry["update_id"], entry["title"]) == (
        1,
        2,
        update["update_id"],
        update["title"],
    )
    assert scan(host, criteria_for(update))["updates"][0]["is_installed"] is True


def test_install_reports_the_failure_of_each_update(lab: Lab, host: WindowsHost, tmp_path: Path) -> None:
    ensure_cab(lab, host)
    [update] = pending(host, NEVER_REBOOTS)
    download(lab, host, update)
    set_host_fault(tmp_path / "hosts", host.name, "install_failure")

    result = install(host, update)

    assert (result["result_code"], result["hresult"]) == (4, WU_E_ALL_UPDATES_FAILED)
    assert [(entry["result_code"], entry["hresult"]) for entry in result["updates"]] == [(4, ERROR_INSTALL_FAILURE)]
    assert scan(host, criteria_for(update))["history"][0]["hresult"] == ERROR_INSTALL_FAILURE


def test_an_install_that_needs_a_restart_blocks_the_next_one(lab: Lab, host: WindowsHost) -> None:
    ensure_cab(lab, host)
    [first] = pending(host, ALWAYS_REQUIRES_REBOOT)
    [second] = pending(host, NEVER_REBOOTS)
    download(lab, host, first, second)

    installed = install(host, first)
    refused = install(host, second)

    assert (installed["result_code"], installed["reboot_required"]) == (2, True)
    assert installed["updates"][0]["reboot_required"] is True
    assert refused == {
        "reboot_required_before_installation": True,
        "result_code": None,
        "hresult": None,
        "reboot_required": None,
        "updates": [],
        "skipped": [],
    }
    assert scan(host, criteria_for(second))["updates"][0]["is_installed"] is False
    assert scan(host)["reboot_required"] is True


# uninstall


def installed(lab: Lab, host: WindowsHost, reboot_behavior: int, tmp_path: Path) -> dict[str, Any]:
    """An update installed for good, restart included."""
    set_host_fault(tmp_path / "hosts", host.name, "reboot_seconds", seconds=0)
    ensure_cab(lab, host)
    [update] = pending(host, reboot_behavior)
    download(lab, host, update)
    assert install(host, update)["result_code"] == 2
    host.reboot()
    assert host.is_reachable()
    return update


def test_uninstall_removes_the_update_of_a_kb(lab: Lab, host: WindowsHost, tmp_path: Path) -> None:
    update = installed(lab, host, NEVER_REBOOTS, tmp_path)

    result = elevated(host, "uninstall", kb=update["kb_article_ids"][0], wuauserv_after=DISABLED_AND_STOPPED)

    assert result == {"method": "wusa", "exit_code": 0, "restart_needed": None}
    after = scan(host, criteria_for(update))
    assert after["updates"][0]["is_installed"] is False
    assert (after["history"][0]["operation"], after["history"][0]["update_id"]) == (2, update["update_id"])


def test_uninstall_that_needs_a_restart_completes_with_it(lab: Lab, host: WindowsHost, tmp_path: Path) -> None:
    update = installed(lab, host, ALWAYS_REQUIRES_REBOOT, tmp_path)

    result = elevated(host, "uninstall", kb=update["kb_article_ids"][0], wuauserv_after=DISABLED_AND_STOPPED)

    assert result == {"method": "wusa", "exit_code": 3010, "restart_needed": None}
    assert scan(host, criteria_for(update))["updates"][0]["is_installed"] is True
    host.reboot()
    assert scan(host, criteria_for(update))["updates"][0]["is_installed"] is False


def test_wusa_needs_the_windows_update_service(host: WindowsHost) -> None:
    host.system().set_service_start_mode("wuauserv", "Disabled")
    assert host.run_process("wusa.exe /uninstall /kb:1 /quiet /norestart", b"", SYSTEM).exit_code == ERROR_SERVICE_DISABLED
    # The bridge starts the service around wusa, and leaves it as asked.
    assert elevated(host, "uninstall", kb="1", wuauserv_after=DISABLED_AND_STOPPED) == {"method": "wusa", "exit_code": WUSA_NOT_INSTALLED, "restart_needed": None}
    assert (host.state.wuauserv_start_mode, host.state.wuauserv_state) == ("Disabled", "Stopped")


def test_uninstall_of_a_kb_nothing_installed_has(host: WindowsHost) -> None:
    assert elevated(host, "uninstall", kb="1", wuauserv_after=DISABLED_AND_STOPPED) == {"method": "wusa", "exit_code": WUSA_NOT_INSTALLED, "restart_needed": None}
    assert host.state.history == []


def test_uninstall_refuses_a_kb_that_is_not_a_number(host: WindowsHost) -> None:
    exit_code, response = run_elevated(host, "uninstall", kb="1 /extract:C:\\", wuauserv_after=DISABLED_AND_STOPPED)

    assert exit_code == 1
    assert (response["error"]["hresult"], response["error"]["call"]) == (E_INVALIDARG, "bridge request")


def test_wusa_is_refused_to_a_network_logon(host: WindowsHost) -> None:
    exit_code, response = call(host, "uninstall", NETWORK, kb="1", wuauserv_after=DISABLED_AND_STOPPED)

    assert (exit_code, response["result"]) == (0, {"method": "wusa", "exit_code": E_ACCESSDENIED, "restart_needed": None})


def watched_run(host: WindowsHost, operation: str, **params: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """An elevated run polled as the controller polls it, each poll waiting on the host for the run to move
    on: the progress values seen, in order, and the run's result, collected by the last poll."""
    name = f"run-{time.monotonic_ns()}"
    exit_code, started = start(host, name, bridge_request(operation, **params))
    assert exit_code == 0, started
    seen: list[dict[str, Any]] = []
    sequence = 0
    while True:
        exit_code, polled = call(
            host, "task_poll", name=name, wait_seconds=30, interval_milliseconds=20, progress_sequence=sequence, collect=True
        )
        assert exit_code == 0, polled
        status = polled["result"]
        if status["collected"] is not None:
            return seen, json.loads(status["collected"]["response"])["result"]
        # A poll that does not collect answers a step after the last one seen, within its wait.
        progress = dict(status["progress"])
        assert progress.pop("sequence") > sequence, status
        sequence = status["progress"]["sequence"]
        seen.append(progress)


def test_an_elevated_run_tells_task_poll_where_it_stands(lab: Lab, host: WindowsHost, tmp_path: Path) -> None:
    ensure_cab(lab, host)
    [update] = pending(host, NEVER_REBOOTS)
    files = files_for(lab, update)
    names = [file["name"] for child_files in files.values() for file in child_files]
    search = {"step": "search", "done": 0, "total": 1, "item": None}
    steps = [search] + [
        {"step": "download", "done": done, "total": len(names), "item": name} for done, name in enumerate(names)
    ]

    seen, result = watched_run(
        host, "download", criteria=criteria_for(update), files=files, wuauserv_after=DISABLED_AND_STOPPED
    )

    assert result["updates"][0]["is_downloaded"] is True
    # Polls see some of the steps, in the order they were written, and the last one for sure.
    assert seen == [step for step in steps if step in seen]
    assert seen[-1] == steps[-1]

    set_host_fault(tmp_path / "hosts", host.name, "slow_install", seconds=1)
    seen, result = watched_run(host, "install", criteria=criteria_for(update), wuauserv_after=DISABLED_AND_STOPPED)

    assert result["updates"][0]["result_code"] == 2
    assert seen[-1] == {"step": "install", "done": 0, "total": 1, "item": None}
    assert seen == [step for step in (search, seen[-1]) if step in seen]
