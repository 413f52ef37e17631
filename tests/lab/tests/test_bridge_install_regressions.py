"""Defects of the install and uninstall operations that Windows shows, each with the test that catches it.

Each test runs twice (shipped_scripts.py): with today's scripts, and with
the scripts of the commit before the fix, taken from git, where it must fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bridge_client import NEVER_REBOOTS, Lab, download, ensure_cab, install, pending, scan
from shipped_scripts import before_and_after

from wuacache_lab.upstream import UpstreamServer
from wuacache_lab.windows.host import WindowsHost

BEFORE_FIXES = "711075a1b30a1e7f4bf47480d34edb8cc1cd808b"


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
