"""The patching plugins as users run them: the collection's playbooks, run by
ansible-playbook over WinRM against emulated hosts, with a wuacache server
(``lab up --server``) that syncs its catalog from the lab's fake Microsoft.

Every assertion about a host is checked against the lab's ground truth (the
emulated host's saved state), not only against what the plugins say.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests
from e2e_support import install_collection, lab, run_playbook

from wuacache_lab.labspec import LabSpec
from wuacache_lab.packages import build_cbs_cab, build_msu, build_upgrade_media
from wuacache_lab.upstream import read_access_log
from wuacache_lab.windows.host import read_remote_commands
from wuacache_lab.windows.state import HostState, read_host_state

# Away from the other e2e labs (127.0.3.1...) and from `make demo` (127.0.1.x).
PATCH_BASE_ADDRESS = "127.0.3.21"
PLAYBOOKS = Path(__file__).parent / "playbooks"
STATUSES = {"OK", "PENDING", "MISSING", "DISCARDED", "ERROR"}
WU_E_UH_INSTALLERFAILURE = "0x8024200B"


@dataclass
class PatchLab:
    spec: LabSpec
    collections: Path
    admin_token: str

    def playbook(self, tmp_path: Path, module: str, host: str, *extra: str) -> tuple[int, dict[str, Any], str]:
        """Run ``wuacache.wua.<module>`` on one host through a playbook; returns
        the exit code, the module's result and the output."""
        rc, results, output = run_playbook(
            self.collections, self.spec.inventory_file, tmp_path, PLAYBOOKS / f"{module}.yml", "-e", f"wua_hosts={host}", *extra
        )
        return rc, results.get(host, {}), output

    def truth(self, host: str) -> HostState:
        return read_host_state(self.spec.hosts_dir, host.upper())

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(
            method,
            f"{self.spec.server_url}{path}",
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
            **kwargs,
        )
        assert response.ok, response.text
        return response.json() if response.content else None

    def upload_package(self, package: Path, kb: str) -> None:
        response = requests.put(
            f"{self.spec.server_url}/api/v1/packages/{package.name}",
            params={"kb": kb},
            data=package.read_bytes(),
            headers={"Authorization": f"Bearer {self.admin_token}", "Content-Type": "application/octet-stream"},
            timeout=30,
        )
        assert response.status_code == 201, response.text

    def fault(self, host: str, *args: str) -> None:
        done = lab(self.spec.state_dir, "fault", "host", host, *args)
        assert done.returncode == 0, done.stderr

    def clear_faults(self, host: str) -> None:
        done = lab(self.spec.state_dir, "fault", "clear", "--host", host)
        assert done.returncode == 0, done.stderr

    @contextmanager
    def faulted(self, host: str, *args: str) -> Iterator[None]:
        """The host has the fault for the block, and none after it."""
        self.fault(host, *args)
        try:
            yield
        finally:
            self.clear_faults(host)

    def commands(self, host: str) -> list[str | None]:
        """The bridge operation of every command the host ran for a remote client, oldest first."""
        return [command["operation"] for command in read_remote_commands(self.spec.hosts_dir / host.upper())]

    def server_log(self) -> str:
        return (self.spec.log_dir / "server.log").read_text()


@pytest.fixture(scope="module")
def patch_lab(tmp_path_factory: pytest.TempPathFactory, collections_path: Path) -> Iterator[PatchLab]:
    state_dir = tmp_path_factory.mktemp("patch-lab")
    # A catalog of the last two months, as a live one ends: install delays can hold its updates back.
    today = date.today()
    year, month = divmod(today.year * 12 + today.month - 1 - 2, 12)
    started = lab(
        state_dir,
        "up",
        *("--hosts", "4", "--profile", "mixed", "--base-address", PATCH_BASE_ADDRESS),
        *("--updates", "80", "--first-month", f"{year:04d}-{month + 1:02d}", "--server"),
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        spec = LabSpec.load(state_dir)
        yield PatchLab(spec, collections_path, (spec.server_dir / "admin.token").read_text().strip())
    finally:
        stopped = lab(state_dir, "down")
        assert stopped.returncode == 0, stopped.stderr


def host_names(patch_lab: PatchLab) -> list[str]:
    return [host.name for host in patch_lab.spec.hosts]


def by_id(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {update["update_id"]: update for update in result["updates"]}


def assert_plan_shape(result: dict[str, Any]) -> None:
    assert set(result["counts"]) == STATUSES
    assert sum(result["counts"].values()) == len(result["updates"])
    for update in result["updates"]:
        assert update["status"] in STATUSES
        assert update["reason"]


@pytest.mark.oldest_ansible
def test_scan_reports_to_the_server_and_fetches_the_cab_only_when_it_changed(patch_lab: PatchLab, tmp_path: Path) -> None:
    host = host_names(patch_lab)[0]
    cab_requests = re.compile(r'"GET /wua/wsusscn2\.cab HTTP/1\.1" (\d{3})')

    rc, first, output = patch_lab.playbook(tmp_path, "scan", host)
    assert rc == 0, output
    assert_plan_shape(first)
    assert first["cab"]["transferred"] is True
    assert first["changed"] is True
    truth = patch_lab.truth(host)
    installed = {update_id for update_id, update in by_id(first).items() if update["status"] == "OK"}
    assert installed <= set(truth.installed)
    # The scan leaves no scan service, task or run folder behind, and wuauserv disabled and stopped.
    assert truth.scan_services == {}
    assert truth.scheduled_tasks == {}
    assert (truth.wuauserv_start_mode, truth.wuauserv_state) == ("Disabled", "Stopped")

    server_view = patch_lab.api("GET", f"/api/v1/hosts/{host}")
    assert server_view["counts"] == first["counts"]

    rc, second, output = patch_lab.playbook(tmp_path, "scan", host)
    assert rc == 0, output
    assert second["cab"]["transferred"] is False
    assert second["changed"] is False
    assert second["counts"] == first["counts"]
    # The second scan found the server's SHA-256 on the host's copy: the host did not ask for the catalog again.
    assert cab_requests.findall(patch_lab.server_log()) == ["200"]


def test_policy_outcomes_follow_the_host_variables_and_rule_sets(patch_lab: PatchLab, tmp_path: Path) -> None:
    host = host_names(patch_lab)[1]
    rc, everything, output = patch_lab.playbook(tmp_path, "scan", host, "-e", "wua_default_allow=true")
    assert rc == 0, output
    needed = [update for update in everything["updates"] if update["status"] in ("PENDING", "MISSING")]
    assert len(needed) >= 3, everything["counts"]
    assert everything["counts"]["DISCARDED"] == 0

    # Nothing is allowed without default_allow and without a rule.
    rc, nothing, output = patch_lab.playbook(tmp_path, "scan", host, "-e", "wua_default_allow=false")
    assert rc == 0, output
    assert {update["status"] for update in nothing["updates"]} <= {"OK", "DISCARDED"}

    # allowed_severities lets security updates of those severities through.
    severities = {update["severity"] for update in needed if update["severity"]}
    assert severities, "the catalog gives this host security updates"
    severity = min(severities)
    rc, by_severity, output = patch_lab.playbook(
        tmp_path, "scan", host, "-e", json.dumps({"wua_default_allow": False, "wua_allowed_severities": [severity]})
    )
    assert rc == 0, output
    for update in by_severity["updates"]:
        if update["status"] in ("PENDING", "MISSING"):
            assert update["severity"] == severity

    # A rule set forbids one update and allows another; a PREPROD rule set only reaches PREPROD hosts.
    forbidden, allowed, preprod_only = needed[0], needed[1], needed[2]
    patch_lab.api("POST", "/api/v1/rulesets", json={"name": "e2e-base", "forbidden_updates": [forbidden["update_id"]], "allowed_updates": [allowed["update_id"]]})
    patch_lab.api("POST", "/api/v1/rulesets", json={"name": "e2e-preprod", "maturity": "PREPROD", "allowed_updates": [preprod_only["update_id"]]})
    rule_sets = {"wua_default_allow": True, "wua_rule_sets": ["e2e-base", "e2e-preprod"]}
    rc, prod, output = patch_lab.playbook(tmp_path, "scan", host, "-e", json.dumps({**rule_sets, "wua_maturities": ["PROD"]}))
    assert rc == 0, output
    assert by_id(prod)[forbidden["update_id"]]["status"] == "DISCARDED"
    assert "e2e-base" in by_id(prod)[forbidden["update_id"]]["reason"]
    assert by_id(prod)[allowed["update_id"]]["status"] in ("PENDING", "MISSING")
    assert "e2e-preprod" in " ".join(prod["rule_sets"]["ignored"])

    rc, preprod, output = patch_lab.playbook(
        tmp_path, "scan", host, "-e", json.dumps({**rule_sets, "wua_default_allow": False, "wua_maturities": ["PREPROD", "PROD"]})
    )
    assert rc == 0, output
    assert by_id(preprod)[preprod_only["update_id"]]["status"] in ("PENDING", "MISSING")

    # An install delay longer than the catalog's age holds every needed update back.
    rc, delayed, output = patch_lab.playbook(tmp_path, "scan", host, "-e", json.dumps({"wua_default_allow": True, "wua_install_delay": "200d"}))
    assert rc == 0, output
    for update_id in (update["update_id"] for update in needed):
        assert by_id(delayed)[update_id]["status"] == "DISCARDED"
        assert "delayed until" in by_id(delayed)[update_id]["reason"]


def test_files_the_update_agent_refuses_are_reported_and_the_rest_downloads(patch_lab: PatchLab, tmp_path: Path) -> None:
    host = host_names(patch_lab)[1]
    allow_all = json.dumps({"wua_default_allow": True, "wua_wait_for_files": 120})
    rc, plan, output = patch_lab.playbook(tmp_path, "download", host, "--check", "-e", allow_all)
    assert rc == 0, output
    refused, *others = [outcome["update_id"] for outcome in plan["downloads"]]
    assert others, plan["downloads"]
    # Windows Update would download other files than the catalog's for this one (express, say).
    with patch_lab.faulted(host, "cache_refuses_files", "--update-id", refused):
        rc, result, output = patch_lab.playbook(tmp_path, "download", host, "-e", allow_all)
    assert rc == 2, output
    outcomes = {outcome["update_id"]: outcome for outcome in result["downloads"]}
    assert outcomes[refused]["downloaded"] is False
    assert (outcomes[refused]["hresult"], outcomes[refused]["hresult_name"]) == ("0x8024200D", "WU_E_UH_NEEDANOTHERDOWNLOAD")
    assert "IUpdate.CopyToCache" in outcomes[refused]["msg"]
    assert all(outcomes[update_id]["downloaded"] for update_id in others)


def test_scan_over_basic_authentication(patch_lab: PatchLab, tmp_path: Path) -> None:
    host = host_names(patch_lab)[0]
    rc, result, output = patch_lab.playbook(tmp_path, "scan", host, "-e", "ansible_winrm_transport=basic")
    assert rc == 0, output
    assert_plan_shape(result)
    assert patch_lab.api("GET", f"/api/v1/hosts/{host}")["counts"] == result["counts"]


def test_a_file_corrupted_on_the_server_is_refused_by_the_host_and_reported(patch_lab: PatchLab, tmp_path: Path) -> None:
    host = host_names(patch_lab)[0]
    allow_all = json.dumps({"wua_default_allow": True, "wua_wait_for_files": 120})
    rc, plan, output = patch_lab.playbook(tmp_path, "download", host, "--check", "-e", allow_all)
    assert rc == 0, output
    target = next(update for update in plan["updates"] if update["status"] in ("PENDING", "MISSING"))
    # Wait until the server holds the update's files, then damage one of them on its disk.
    deadline = time.monotonic() + 120
    while True:
        files = by_id(patch_lab.api("GET", f"/api/v1/hosts/{host}/plan"))[target["update_id"]]["files"]
        if all(file["available"] for file in files):
            break
        assert time.monotonic() < deadline, files
        time.sleep(0.5)
    stored = patch_lab.spec.server_dir / "data" / "repository" / "wua" / files[0]["file_name"]
    original = stored.read_bytes()
    stored.write_bytes(b"X" + original[1:])
    try:
        rc, result, output = patch_lab.playbook(tmp_path, "download", host, "-e", allow_all)
    finally:
        stored.write_bytes(original)
    assert rc == 2, output
    [outcome] = [outcome for outcome in result["downloads"] if outcome["update_id"] == target["update_id"]]
    assert outcome["downloaded"] is False
    assert "SHA-1" in outcome["msg"] or "sha1" in outcome["msg"].lower()
    assert target["update_id"] in result["msg"]
    # Nothing of it reached Windows Update's cache; the other updates did.
    truth = patch_lab.truth(host)
    assert target["update_id"] not in truth.cached_content
    assert any(outcome["downloaded"] for outcome in result["downloads"] if outcome["update_id"] != target["update_id"])


def test_direct_download_fetches_from_microsoft_not_from_the_server(patch_lab: PatchLab, tmp_path: Path) -> None:
    host = host_names(patch_lab)[0]
    allow_all = json.dumps({"wua_default_allow": True, "wua_direct_download": True})
    rc, plan, output = patch_lab.playbook(tmp_path, "download", host, "--check", "-e", allow_all)
    assert rc == 0, output
    wanted = [outcome["update_id"] for outcome in plan["downloads"]]
    assert wanted, "an earlier test left an update to download"
    server_plan = by_id(patch_lab.api("GET", f"/api/v1/hosts/{host}/plan"))
    urls = {file["download_url"] for update_id in wanted for file in server_plan[update_id]["files"]}
    assert urls
    before = [entry["url"] for entry in read_access_log(patch_lab.spec.upstream_dir)]

    # Over basic authentication, elevated runs included.
    rc, result, output = patch_lab.playbook(tmp_path, "download", host, "-e", allow_all, "-e", "ansible_winrm_transport=basic")
    assert rc == 0, output
    assert all(outcome["downloaded"] for outcome in result["downloads"])
    rc, rescan, output = patch_lab.playbook(tmp_path, "scan", host, "-e", allow_all)
    assert rc == 0, output
    assert all(by_id(rescan)[update_id]["downloaded"] for update_id in wanted)
    after = [entry["url"] for entry in read_access_log(patch_lab.spec.upstream_dir)]
    # Each file once more from the fake Microsoft: the host's own request.
    for url in urls:
        assert after.count(url) == before.count(url) + 1, url


def test_check_mode_shows_the_plan_and_changes_nothing(patch_lab: PatchLab, tmp_path: Path) -> None:
    host = host_names(patch_lab)[2]
    before = patch_lab.truth(host)
    rc, result, output = patch_lab.playbook(tmp_path, "install", host, "--check", "-e", "wua_default_allow=true", "-e", "wua_reboot=true")
    assert rc == 0, output
    assert_plan_shape(result)
    assert any(update["status"] in ("PENDING", "MISSING") for update in result["updates"])
    after = patch_lab.truth(host)
    assert after.installed == before.installed
    assert after.cached_content == before.cached_content
    assert after.history == before.history
    assert after.last_boot_up_time == before.last_boot_up_time


def test_a_scan_takes_three_commands_and_an_install_as_many_as_its_stages(patch_lab: PatchLab, tmp_path: Path) -> None:
    host = host_names(patch_lab)[0]
    for _ in range(2):
        already = len(patch_lab.commands(host))
        rc, _result, output = patch_lab.playbook(tmp_path, "scan", host)
        assert rc == 0, output
        scan = patch_lab.commands(host)[already:]
        assert len(scan) <= 3, scan
        assert scan.count("info") + scan.count("task_start") == len(scan), scan

    # However long the install takes, the host answers a poll when something changed.
    already = len(patch_lab.commands(host))
    with patch_lab.faulted(host, "slow_install", "--seconds", "8"):
        rc, result, output = patch_lab.playbook(
            tmp_path, "install", host, "-e", json.dumps({"wua_default_allow": True, "wua_reboot": False, "wua_wait_for_files": 120})
        )
    assert rc == 0, output
    assert result["installed"] > 0
    install = patch_lab.commands(host)[already:]
    stages = re.findall(rf"^<{host}> (?:searching|downloading|installing)", output, re.MULTILINE)
    elevated_runs = install.count("task_start")

    assert install.count("task_poll") <= len(stages) + elevated_runs, (install, stages)


def test_install_downloads_from_the_server_installs_reboots_and_reports(patch_lab: PatchLab, tmp_path: Path) -> None:
    host = host_names(patch_lab)[2]
    booted = patch_lab.truth(host).last_boot_up_time
    rc, result, output = patch_lab.playbook(
        tmp_path, "install", host, "-e", json.dumps({"wua_default_allow": True, "wua_reboot": True, "wua_wait_for_files": 120})
    )
    assert rc == 0, output
    truth = patch_lab.truth(host)
    ok = {update["update_id"] for update in result["updates"] if update["status"] == "OK"}
    assert ok and ok <= set(truth.installed)
    assert result["installed"] > 0
    assert result["counts"]["PENDING"] == result["counts"]["MISSING"] == result["counts"]["ERROR"] == 0
    # Where the host stood was shown at the default verbosity.
    assert re.search(rf"^<{host}> downloading file \d+ of \d+: \S+$", output, re.MULTILINE), output
    assert re.search(rf"^<{host}> installing \d+ updates?$", output, re.MULTILINE), output
    # Updates that needed a restart were completed by one.
    assert not truth.pending_changes
    assert result["rebooted"] is (truth.last_boot_up_time != booted)
    assert result["reboot_required"] is False
    # The server's view is the host's final state.
    assert patch_lab.api("GET", f"/api/v1/hosts/{host}")["counts"] == result["counts"]


def test_a_failed_install_names_its_hresult_and_the_server_marks_it_error(patch_lab: PatchLab, tmp_path: Path) -> None:
    host = host_names(patch_lab)[3]
    rc, plan, output = patch_lab.playbook(tmp_path, "scan", host, "-e", "wua_default_allow=true")
    assert rc == 0, output
    target = next(update for update in plan["updates"] if update["status"] in ("PENDING", "MISSING"))
    with patch_lab.faulted(host, "install_failure", "--hresult", WU_E_UH_INSTALLERFAILURE, "--update-id", target["update_id"]):
        rc, result, output = patch_lab.playbook(
            tmp_path, "install", host, "-e", json.dumps({"wua_default_allow": True, "wua_reboot": False, "wua_wait_for_files": 120})
        )
    assert rc == 2, output
    assert result["failed_installs"] == 1
    assert "WU_E_UH_INSTALLERFAILURE" in result["msg"]
    failed = by_id(result)[target["update_id"]]
    assert failed["status"] == "ERROR"
    assert WU_E_UH_INSTALLERFAILURE.lower() in failed["reason"].lower()
    [outcome] = [outcome for outcome in result["installs"] if outcome["update_id"] == target["update_id"]]
    assert (outcome["installed"], outcome["hresult"], outcome["hresult_name"]) == (
        False,
        WU_E_UH_INSTALLERFAILURE,
        "WU_E_UH_INSTALLERFAILURE",
    )
    assert target["update_id"] not in patch_lab.truth(host).installed
    assert by_id(patch_lab.api("GET", f"/api/v1/hosts/{host}/plan"))[target["update_id"]]["status"] == "ERROR"


def test_uninstall_removes_one_kb_and_only_through_uninstall(patch_lab: PatchLab, tmp_path: Path) -> None:
    host = host_names(patch_lab)[2]
    truth = patch_lab.truth(host)
    rc, scan, output = patch_lab.playbook(tmp_path, "scan", host, "-e", "wua_default_allow=false")
    assert rc == 0, output
    # Forbidden now, installed before: install leaves it alone.
    removable = next(update for update in scan["updates"] if update["status"] == "OK" and update["kb"])
    rc, result, output = patch_lab.playbook(tmp_path, "install", host, "-e", "wua_default_allow=false")
    assert rc == 0, output
    assert removable["update_id"] in patch_lab.truth(host).installed

    rc, result, output = patch_lab.playbook(tmp_path, "uninstall", host, "-e", f"wua_kb={removable['kb'][0]}", "-e", "wua_reboot=true")
    assert rc == 0, output
    assert result["changed"] is True
    assert removable["update_id"] not in patch_lab.truth(host).installed
    assert removable["update_id"] in truth.installed


def test_a_long_install_survives_a_dropped_connection(patch_lab: PatchLab, tmp_path: Path) -> None:
    host = host_names(patch_lab)[1]
    runs = patch_lab.spec.hosts_dir / host.upper() / "disk"
    patch_lab.fault(host, "slow_install", "--seconds", "3")
    dropping = threading.Event()

    def drop_once_installing() -> None:
        # Once the install's task runs, the controller's next command (a poll) is cut.
        while not dropping.is_set():
            envelopes = runs.glob("C/ProgramData/wuacache/runs/*/envelope.json")
            if any('"operation":"install"' in envelope.read_text() for envelope in envelopes):
                patch_lab.fault(host, "drop_connection", "--count", "1")
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=drop_once_installing)
    watcher.start()
    try:
        rc, result, output = patch_lab.playbook(
            tmp_path, "install", host, "-e", json.dumps({"wua_default_allow": True, "wua_reboot": True, "wua_wait_for_files": 120})
        )
    finally:
        dropping.set()
        watcher.join()
        patch_lab.clear_faults(host)
    assert rc == 0, output
    truth = patch_lab.truth(host)
    assert result["installed"] > 0
    assert {update["update_id"] for update in result["updates"] if update["status"] == "OK"} <= set(truth.installed)
    assert truth.scheduled_tasks == {}


def test_a_reboot_loop_is_detected_and_stops_the_rounds(patch_lab: PatchLab, tmp_path: Path) -> None:
    host = host_names(patch_lab)[3]
    rc, plan, output = patch_lab.playbook(tmp_path, "scan", host, "-e", "wua_default_allow=true")
    assert rc == 0, output
    truth = patch_lab.truth(host)
    # An update that needs a restart, which Windows rolls back during every restart.
    target = next(update for update in plan["updates"] if update["status"] in ("PENDING", "MISSING", "ERROR"))
    with patch_lab.faulted(host, "revert_at_reboot", "--update-id", target["update_id"]):
        rc, result, output = patch_lab.playbook(
            tmp_path, "install", host, "-e", json.dumps({"wua_default_allow": True, "wua_reboot": True, "wua_wait_for_files": 120})
        )
    assert rc == 2, output
    assert "update loop" in result["msg"]
    assert target["update_id"] in result["msg"]
    assert result["rebooted"] is True
    assert target["update_id"] not in patch_lab.truth(host).installed
    assert len(patch_lab.truth(host).history) > len(truth.history)


def test_a_package_of_the_server_is_installed_and_the_server_learns_of_it(patch_lab: PatchLab, tmp_path: Path) -> None:
    host = patch_lab.spec.hosts[0]
    package = build_msu(tmp_path / "windows10.0-kb5099001-x64.msu", kb="5099001", target=host.profile, restart=False)
    other_os = build_msu(tmp_path / "windows11.0-kb5099002-x64.msu", kb="5099002", target="win11-23h2", restart=False)
    cab = build_cbs_cab(tmp_path / "windows10.0-kb5099003-x64.cab", kb="5099003", target=host.profile, restart=False)
    for built in (package, other_os, cab):
        patch_lab.upload_package(built, kb=built.name.split("-kb")[1].split("-")[0])

    rc, result, output = patch_lab.playbook(tmp_path, "package", host.name, "-e", f"wua_package={package.name}")
    assert rc == 0, output
    assert (result["changed"], result["exit_code"]) == (True, 0)
    assert any(installed.kb == "5099001" for installed in patch_lab.truth(host.name).packages.values())
    # A second run finds it installed.
    rc, again, output = patch_lab.playbook(tmp_path, "package", host.name, "-e", f"wua_package={package.name}")
    assert rc == 0, output
    assert again["changed"] is False

    rc, refused, output = patch_lab.playbook(tmp_path, "package", host.name, "-e", f"wua_package={other_os.name}")
    assert rc == 2, output
    assert "0x80240017" in refused["msg"]
    assert not any(installed.kb == "5099002" for installed in patch_lab.truth(host.name).packages.values())

    # A .cab goes to DISM, unless Get-WindowsPackage finds its package installed.
    rc, result, output = patch_lab.playbook(tmp_path, "package", host.name, "-e", f"wua_package={cab.name}")
    assert rc == 0, output
    assert (result["changed"], result["exit_code"], result["package_state"]) == (True, 0, "NotPresent")
    assert any(installed.kb == "5099003" for installed in patch_lab.truth(host.name).packages.values())
    rc, again, output = patch_lab.playbook(tmp_path, "package", host.name, "-e", f"wua_package={cab.name}")
    assert rc == 0, output
    assert (again["changed"], again["exit_code"], again["package_state"]) == (False, None, "Installed")


def test_the_cumulative_update_of_a_combined_package_is_uninstalled_by_dism(patch_lab: PatchLab, tmp_path: Path) -> None:
    host = patch_lab.spec.hosts[0]
    # KB5099011 with the servicing stack update KB5099010, in one .msu.
    combined = build_msu(
        tmp_path / "windows10.0-kb5099011-x64.msu", kb="5099011", target=host.profile, restart=False, servicing_stack_kb="5099010"
    )
    patch_lab.upload_package(combined, kb="5099011")
    rc, result, output = patch_lab.playbook(tmp_path, "package", host.name, "-e", f"wua_package={combined.name}")
    assert rc == 0, output

    rc, result, output = patch_lab.playbook(tmp_path, "uninstall", host.name, "-e", "wua_kb=KB5099011")

    assert rc == 0, output
    assert (result["changed"], result["method"], result["exit_code"]) == (True, "dism", None)
    assert result["package_name"].startswith("Package_for_RollupFix~")
    kbs = {installed.kb for installed in patch_lab.truth(host.name).packages.values()}
    # The servicing stack stays for good.
    assert "5099010" in kbs and "5099011" not in kbs


def test_after_a_restart_the_controller_waits_until_windows_has_started_up(patch_lab: PatchLab, tmp_path: Path) -> None:
    host = patch_lab.spec.hosts[0]
    # A package whose install completes at the restart; the host answers 5 s before it has finished starting up.
    cab = build_cbs_cab(tmp_path / "windows10.0-kb5099004-x64.cab", kb="5099004", target=host.profile, restart=True)
    patch_lab.upload_package(cab, kb="5099004")
    booted = patch_lab.truth(host.name).last_boot_up_time
    with patch_lab.faulted(host.name, "slow_startup", "--seconds", "5"):
        rc, result, output = patch_lab.playbook(tmp_path, "package", host.name, "-e", f"wua_package={cab.name}", "-e", "wua_reboot=true")
    assert rc == 0, output
    assert (result["exit_code"], result["rebooted"]) == (3010, True)
    # Rescanned once the restart had completed the install: nothing is pending any more.
    assert result["reboot_required"] is False
    truth = patch_lab.truth(host.name)
    assert truth.last_boot_up_time != booted
    assert truth.startup_until is None and not truth.pending_changes
    assert any(installed.kb == "5099004" for installed in truth.packages.values())


def test_a_restart_scheduled_by_another_tool_is_replaced_by_one_now(patch_lab: PatchLab, tmp_path: Path) -> None:
    host = patch_lab.spec.hosts[0]
    cab = build_cbs_cab(tmp_path / "windows10.0-kb5099005-x64.cab", kb="5099005", target=host.profile, restart=True)
    patch_lab.upload_package(cab, kb="5099005")
    booted = patch_lab.truth(host.name).last_boot_up_time
    rc, _, output = patch_lab.playbook(tmp_path, "raw", host.name, "-e", "wua_command='shutdown.exe /r /t 3600'")
    assert rc == 0, output
    assert patch_lab.truth(host.name).reboot_at is not None

    rc, result, output = patch_lab.playbook(tmp_path, "package", host.name, "-e", f"wua_package={cab.name}", "-e", "wua_reboot=true")

    assert rc == 0, output
    assert "a restart was scheduled already: it is replaced by one now" in output
    assert (result["exit_code"], result["rebooted"], result["reboot_required"]) == (3010, True, False)
    truth = patch_lab.truth(host.name)
    # Restarted now, and nothing is left scheduled for later.
    assert truth.last_boot_up_time != booted
    assert truth.reboot_at is None
    assert any(installed.kb == "5099005" for installed in truth.packages.values())


def test_cleanup_empties_the_host_staging_and_runs_the_server_cleanup(patch_lab: PatchLab, tmp_path: Path) -> None:
    host = host_names(patch_lab)[0]
    staging = patch_lab.spec.hosts_dir / host.upper() / "disk" / "C" / "ProgramData" / "wuacache" / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "windows10.0-kb5034441-x64_0123.cab.part").write_bytes(b"x" * 1000)
    runs_before = patch_lab.api("GET", "/api/v1/cleanup")["total"]

    rc, results, output = run_playbook(
        patch_lab.collections, patch_lab.spec.inventory_file, tmp_path, "wuacache.wua.cleanup", "-e", f"wua_hosts={host}"
    )
    assert rc == 0, output
    assert (results[host]["removed_files"], results[host]["removed_bytes"]) == (1, 1000)
    assert list(staging.iterdir()) == []
    assert patch_lab.api("GET", "/api/v1/cleanup")["total"] == runs_before + 1
    # The catalog stays for the next scan.
    assert (staging.parent / "wsusscn2.cab").exists()


def test_os_upgrade_from_media_reaches_the_new_build(patch_lab: PatchLab, tmp_path: Path) -> None:
    host = patch_lab.spec.hosts[1]
    assert host.profile == "win11-23h2"
    media = patch_lab.spec.hosts_dir / host.name.upper() / "disk" / "C" / "Media" / "Win11_24H2"
    build_upgrade_media(media, target_profile="win11-24h2")

    rc, result, output = patch_lab.playbook(tmp_path, "os_upgrade", host.name, "-e", "wua_setup_path=C:\\Media\\Win11_24H2\\setup.exe")
    assert rc == 0, output
    assert result["build_before"].startswith("22631.")
    assert result["build_after"].startswith("26100.")
    assert (result["changed"], result["rebooted"]) == (True, True)
    assert patch_lab.api("GET", f"/api/v1/hosts/{host.name}")["os_build"].startswith("26100.")

    # Media of the build the host now runs is no upgrade.
    rc, result, output = patch_lab.playbook(tmp_path, "os_upgrade", host.name, "-e", "wua_setup_path=C:\\Media\\Win11_24H2\\setup.exe")
    assert rc == 2, output
    assert "0xC1900204" in result["msg"].upper().replace("0X", "0x")


# A copy of the collection whose bridge cannot run


@pytest.fixture(scope="module")
def throwing_collections(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The collection installed as users install it, then its bridge made to begin with ``throw 'x'``:
    its first statement, right after the script's param block, which PowerShell wants first."""
    path = tmp_path_factory.mktemp("throwing-collections")
    install_collection(path)
    bridge = path / "ansible_collections" / "wuacache" / "wua" / "plugins" / "plugin_utils" / "_wua_bridge.ps1"
    text = bridge.read_text(encoding="utf-8")
    param_block = "param($Request, $ResponsePath, [string]$BridgeText, [string]$KeepAs)\n"
    assert param_block in text
    bridge.write_text(text.replace(param_block, param_block + "throw 'x'\n", 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "module", ["host_info", "scan", "download", "install", "uninstall", "package", "os_upgrade", "cleanup"]
)
def test_every_operation_runs_the_shipped_bridge(
    patch_lab: PatchLab, throwing_collections: Path, tmp_path: Path, module: str
) -> None:
    host = patch_lab.spec.hosts[0]
    extra: tuple[str, ...] = {
        "uninstall": ("-e", "wua_kb=5034441"),
        "os_upgrade": ("-e", "wua_setup_path=C:\\media\\setup.exe"),
    }.get(module, ())
    if module == "package":
        package = build_msu(tmp_path / "windows10.0-kb5099009-x64.msu", kb="5099009", target=host.profile, restart=False)
        patch_lab.upload_package(package, kb="5099009")
        extra = ("-e", f"wua_package={package.name}")
    before = patch_lab.truth(host.name)

    rc, _, output = run_playbook(
        throwing_collections, patch_lab.spec.inventory_file, tmp_path, PLAYBOOKS / f"{module}.yml", "-e", f"wua_hosts={host.name}", *extra
    )

    assert rc != 0, output
    assert f"fatal: [{host.name}]: FAILED!" in output, output
    # The host ran the bridge it was sent, and its first statement failed it.
    assert "did not answer with one JSON document" in output, output
    assert "throw 'x'" in output, output
    after = patch_lab.truth(host.name)
    assert (after.installed, after.scheduled_tasks, after.reboot_at) == (before.installed, before.scheduled_tasks, before.reboot_at)
