"""Scan reports of emulated hosts, in the JSON the collection sends the server.

An emulated host scans a catalog cab placed on its disk with its simulated
Windows Update Agent; :meth:`ScanningHost.report` turns the search result and
the update history into the report document (wua-and-wsusscn2.md, "WUA scan
result"), the way the collection's scan does on a real host. Server tests use
it to feed the server realistic reports.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wuacache_lab.catalog.payloads import upstream_path
from wuacache_lab.windows.host import WindowsHost
from wuacache_lab.windows.wua import Update, UpdateSearcher, UpdateSession

SCAN_FILE = r"C:\ProgramData\wuacache\wsusscn2.cab"
STAGING = r"C:\ProgramData\wuacache\staging"


class ScanningHost:
    """An emulated Windows host with a catalog cab on its disk, registered as an offline scan service.

    Args:
        state_dir: where the lab keeps its hosts.
        name, profile: the host's name and OS profile.
        cab: the catalog the host scans against; ``cab_sha256`` and
            ``cab_date`` describe it in reports.
        trusted_ca: the roots the host trusts for the cab's signature.
        files_dir: the upstream's file tree, where installs take the files from.
    """

    def __init__(
        self,
        state_dir: Path,
        name: str,
        profile: str,
        *,
        cab: Path,
        cab_sha256: str,
        cab_date: datetime,
        trusted_ca: Path,
        files_dir: Path,
    ) -> None:
        self.state_dir = state_dir
        self.cab_sha256 = cab_sha256
        self.cab_date = cab_date
        self.files_dir = files_dir
        self.windows = WindowsHost(name.upper(), state_dir, profile=profile, trusted_ca=trusted_ca)
        self.windows.disk.make_dirs(STAGING)
        self.windows.disk.write(SCAN_FILE, [cab.read_bytes()])
        client = self.windows.wua()
        self.service_id = (
            client.create_object("Microsoft.Update.ServiceManager")
            .AddScanPackageService("Offline Sync Service", SCAN_FILE, 1)
            .ServiceID
        )

    @property
    def name(self) -> str:
        return self.windows.name.lower()

    def searcher(self) -> UpdateSearcher:
        searcher = self.windows.wua().create_object("Microsoft.Update.Session").CreateUpdateSearcher()
        searcher.ServerSelection = 3
        searcher.ServiceID = self.service_id
        return searcher

    def search(self) -> list[Update]:
        return list(self.searcher().Search("IsInstalled=0 or IsInstalled=1").Updates)

    def install(self, update_id: str) -> None:
        """Stage the update's files as the bridge will, then install it."""
        (found,) = (update for update in self.search() if update.Identity.UpdateID == update_id)
        for child in found.BundledUpdates:
            paths = []
            for content in child.DownloadContents:
                path = f"{STAGING}\\{content.DownloadUrl.rsplit('/', 1)[-1]}"
                self.windows.disk.write(path, [upstream_path(self.files_dir, content.DownloadUrl).read_bytes()])
                paths.append(path)
            child.CopyToCache(paths)
        installer = self.windows.wua().create_object("Microsoft.Update.Session").CreateUpdateInstaller()
        installer.Updates = [found]
        installer.Install()

    def report(self, assignment: dict[str, Any]) -> dict[str, Any]:
        """What the bridge sends after a scan: the search result and the history, as JSON."""
        searcher = self.searcher()
        started = datetime.now(UTC)
        found = searcher.Search("IsInstalled=0 or IsInstalled=1").Updates
        profile = self.windows.profile
        return {
            "hostname": self.name,
            "os": {"caption": profile.caption, "build": f"{profile.version}.{profile.ubr}", "architecture": "x64"},
            "wua_version": self.windows.wua()
            .create_object("Microsoft.Update.AgentInfo")
            .GetInfo("ProductVersionString"),
            "cab_sha256": self.cab_sha256,
            "cab_date": _utc_text(self.cab_date),
            "scan_duration_seconds": (datetime.now(UTC) - started).total_seconds(),
            "reboot_required": False,
            "wuauserv_state": self.windows.state.wuauserv_state,
            "assignment": assignment,
            "updates": [update_json(update) for update in found],
            "history": _history(self.windows.wua().create_object("Microsoft.Update.Session")),
        }


def update_json(update: Update) -> dict[str, Any]:
    children = [
        {
            "update_id": child.Identity.UpdateID,
            "revision_number": child.Identity.RevisionNumber,
            "download_urls": [content.DownloadUrl for content in child.DownloadContents],
        }
        for child in update.BundledUpdates
    ]
    return {
        "update_id": update.Identity.UpdateID,
        "revision_number": update.Identity.RevisionNumber,
        "title": update.Title,
        "kb_ids": list(update.KBArticleIDs),
        "msrc_severity": update.MsrcSeverity,
        "categories": [
            {"id": category.CategoryID, "name": category.Name, "type": category.Type} for category in update.Categories
        ],
        "last_deployment_change_time": _utc_text(update.LastDeploymentChangeTime),
        "is_installed": update.IsInstalled,
        "reboot_required": update.RebootRequired,
        "is_hidden": update.IsHidden,
        "is_downloaded": update.IsDownloaded,
        "superseded_update_ids": list(update.SupersededUpdateIDs),
        "bundled": children,
        "download_urls": [content.DownloadUrl for content in update.DownloadContents]
        + [url for child in children for url in child["download_urls"]],
        "reboot_behaviour": update.InstallationBehavior.RebootBehavior,
    }


def _history(session: UpdateSession) -> list[dict[str, Any]]:
    """Every entry of the host's Windows Update history, most recent first, as reports give it."""
    searcher = session.CreateUpdateSearcher()
    count = searcher.GetTotalHistoryCount()
    return [
        {
            "operation": entry.Operation,
            "result_code": entry.ResultCode,
            "hresult": entry.HResult,
            "date": _utc_text(entry.Date),
            "update_id": entry.UpdateIdentity.UpdateID,
            "revision_number": entry.UpdateIdentity.RevisionNumber,
            "title": entry.Title,
        }
        for entry in (searcher.QueryHistory(0, count) if count > 0 else [])
    ]


def _utc_text(moment: datetime) -> str:
    """A date in the round-trip format of .NET ("o"): UTC, seven fractional digits and Z."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"
