# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The scan report the server takes (``HostReportIn``), built from the bridge's raw answers."""

# FOR INTERNAL COLLECTION USE ONLY: may change in any release.

from __future__ import annotations

from typing import Any


def build_report(
    *,
    host_name: str,
    info: dict[str, Any],
    cab_sha256: str,
    scan: dict[str, Any],
    scan_duration_seconds: float,
    assignment: dict[str, Any],
) -> dict[str, Any]:
    """Turn what ``info`` and ``scan`` answered into the report the server decides from.

    ``reboot_required`` counts the reboot markers ``info`` found as well as
    ``ISystemInformation.RebootRequired``: either way the host waits for a reboot.
    """
    os_info = info["os"]
    build = os_info["build_number"] if os_info["ubr"] is None else f"{os_info['build_number']}.{os_info['ubr']}"
    return {
        "hostname": host_name,
        "os": {"caption": os_info["caption"], "build": build, "architecture": os_info["architecture"]},
        "wua_version": info["wua_version"],
        "cab_sha256": cab_sha256,
        "scan_duration_seconds": scan_duration_seconds,
        "reboot_required": bool(scan["reboot_required"] or info["reboot_indicators"]),
        "wuauserv_state": info["wuauserv"]["state"],
        "assignment": assignment,
        "updates": [reported_update(update) for update in scan["updates"]],
        "history": [
            {
                "operation": entry["operation"],
                "result_code": entry["result_code"],
                "hresult": entry["hresult"],
                "date": entry["date"],
                "update_id": entry["update_id"],
                "revision_number": entry["revision_number"],
            }
            for entry in scan["history"]
        ],
    }


def reported_update(update: dict[str, Any]) -> dict[str, Any]:
    """One ``IUpdate`` of the scan, as the report describes it."""
    children = [
        {"update_id": child["update_id"], "revision_number": child["revision_number"], "download_urls": child["download_urls"]}
        for child in update["bundled"]
    ]
    return {
        "update_id": update["update_id"],
        "revision_number": update["revision_number"],
        "title": update["title"],
        "kb_ids": update["kb_article_ids"],
        "msrc_severity": update["msrc_severity"] or None,
        "categories": update["categories"],
        "last_deployment_change_time": update["last_deployment_change_time"],
        "is_installed": update["is_installed"],
        "reboot_required": update["reboot_required"],
        "is_hidden": update["is_hidden"],
        "is_downloaded": update["is_downloaded"],
        "superseded_update_ids": update["superseded_update_ids"],
        "bundled": children,
        # The files of a bundle belong to its children; the report lists them all, as WAPT's agents do.
        "download_urls": update["download_urls"] + [url for child in children for url in child["download_urls"]],
        "reboot_behaviour": update["reboot_behavior"],
    }
