"""The Windows Update Agent of an emulated host, shaped like its COM API.

Class, property and method names are those of the WUA SDK (``UpdateSession``,
``IUpdate.Identity.UpdateID``, ``UpdateInstaller.Install()``...), so that the
bridge runner reads like the PowerShell it stands for. The rules Windows
enforces live here, not in the callers: the Windows Update service must not
be disabled, calls Microsoft lists as unavailable remotely fail with
E_ACCESSDENIED for network logons, offline scans need ``ServerSelection=3``
and a ``ServiceID``, scan files must be signed by a trusted root,
``CopyToCache`` only accepts the exact payload files, and installs need
downloaded content, write history and may need a restart.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wuacache_lab.windows.applicability import language_matches, prerequisites_met, rule_applies
from wuacache_lab.windows.com import ComCollection
from wuacache_lab.windows.criteria import matches, parse_criteria
from wuacache_lab.windows.disk import is_unc
from wuacache_lab.windows.errors import (
    E_ACCESSDENIED,
    E_INVALIDARG,
    ERROR_FILE_NOT_FOUND,
    ERROR_INVALID_NAME,
    ERROR_SERVICE_DISABLED,
    REGDB_E_CLASSNOTREG,
    WU_E_ALL_UPDATES_FAILED,
    WU_E_DM_NOTDOWNLOADED,
    WU_E_DS_UNKNOWNSERVICE,
    WU_E_EULAS_DECLINED,
    WU_E_INSTALL_NOT_ALLOWED,
    WU_E_INVALIDINDEX,
    WU_E_NO_UPDATE,
    WU_E_NOT_APPLICABLE,
    WU_E_PT_WINHTTP_NAME_NOT_RESOLVED,
    WU_E_UH_CANREQUIREINPUT,
    WU_E_UH_NEEDANOTHERDOWNLOAD,
    COMError,
    signed,
)
from wuacache_lab.windows import servicinglog
from wuacache_lab.windows.process import LogonSession
from wuacache_lab.windows.profiles import OsProfile
from wuacache_lab.windows.scanfile import CatalogEntry, ScanPackage, UpdateDetails, scan_packages
from wuacache_lab.windows.state import (
    OPERATION_INSTALLATION,
    OPERATION_UNINSTALLATION,
    HistoryEntry,
    HostState,
    InstalledPackage,
    InstalledUpdate,
    PendingChange,
    ScanService,
    T,
    from_iso,
    to_iso,
    utc_now,
)
from wuacache_lab.windows.system import CBS_REBOOT_PENDING, WU_REBOOT_REQUIRED
from wuacache_lab.windows.taskscheduler import TaskService

if TYPE_CHECKING:
    from wuacache_lab.windows.faults import HostFaults
    from wuacache_lab.windows.host import WindowsHost


SCAN_FILE_FOLDER = "C:\\Windows\\SoftwareDistribution\\ScanFile"
DOWNLOAD_FOLDER = "C:\\Windows\\SoftwareDistribution\\Download"

USO_NON_VOLATILE_SERVICE = 1  # UpdateServiceOption
UPDATE_TYPES = {"Software": 1, "Driver": 2}  # UpdateType
REBOOT_BEHAVIORS = {"NeverReboots": 0, "AlwaysRequiresReboot": 1, "CanRequestReboot": 2}  # InstallationRebootBehavior


class OperationResultCode(IntEnum):
    NotStarted = 0
    InProgress = 1
    Succeeded = 2
    SucceededWithErrors = 3
    Failed = 4
    Aborted = 5


class ServerSelection(IntEnum):
    Default = 0
    ManagedServer = 1
    WindowsUpdate = 2
    Others = 3


class _WuaCollection(ComCollection[T]):
    """The agent's collections are 0-based; an index outside one fails with
    WU_E_INVALIDINDEX ([MS-UAMG] 3.18.4.2, IStringCollection::Item)."""

    _index_base = 0
    _invalid_index = WU_E_INVALIDINDEX


class _GrowingCollection(_WuaCollection[T]):
    def Add(self, value: T) -> int:
        self._items.append(value)
        return len(self._items) - 1


class UpdateCollection(_GrowingCollection["Update"]):
    """``Microsoft.Update.UpdateColl``, and the updates a search finds or a bundle holds."""

    __com_interface__ = "IUpdateCollection"


class StringCollection(_GrowingCollection[str]):
    """``Microsoft.Update.StringColl``, and an update's KB numbers, URLs and identifiers."""

    __com_interface__ = "IStringCollection"


class CategoryCollection(_WuaCollection["Category"]):
    __com_interface__ = "ICategoryCollection"


class UpdateDownloadContentCollection(_WuaCollection["UpdateDownloadContent"]):
    __com_interface__ = "IUpdateDownloadContentCollection"


class UpdateExceptionCollection(_WuaCollection[Any]):
    """A search's warnings: none in the lab."""

    __com_interface__ = "IUpdateExceptionCollection"


class UpdateHistoryEntryCollection(_WuaCollection["UpdateHistoryEntry"]):
    __com_interface__ = "IUpdateHistoryEntryCollection"


class UpdateServiceCollection(_WuaCollection["UpdateService"]):
    __com_interface__ = "IUpdateServiceCollection"


class UpdateAgent:
    """The Windows Update service of one host, shared by every process."""

    def __init__(self, host: WindowsHost) -> None:
        self.host = host
        self._installing = threading.Lock()

    def client(self, logon: LogonSession) -> WuaClient:
        return WuaClient(self, logon)

    @property
    def is_busy(self) -> bool:
        return self._installing.locked()

    def require_local(self, logon: LogonSession, call: str) -> None:
        """Calls "unavailable remotely" per Microsoft refuse network logons."""
        if logon.logon_type == "network":
            self.host.log.info("WUA refused %s to a network logon", call)
            raise COMError(E_ACCESSDENIED)

    def ensure_running(self) -> None:
        """Every call that reaches the Update Agent needs wuauserv: refused while it is disabled with
        ERROR_SERVICE_DISABLED (0x80070422, "The service cannot be started, either because it is disabled
        or because it has no enabled devices associated with it.", MicrosoftDocs/win32
        desktop-src/Debug/system-error-codes--1000-1299-.md), started on demand while it is stopped.
        Microsoft's Update Agent reference documents neither; 0x80070422 is what Windows is commonly
        seen to return, and the lab holds every call to it, so that no call goes unnoticed."""
        if self.host.store.peek(lambda state: state.wuauserv_state) == "Running":
            return
        with self.host.store.update() as state:
            if state.wuauserv_start_mode == "Disabled":
                raise COMError(ERROR_SERVICE_DISABLED)
            state.wuauserv_state = "Running"

    @contextmanager
    def installing(self) -> Iterator[None]:
        if not self._installing.acquire(blocking=False):
            raise COMError(WU_E_INSTALL_NOT_ALLOWED, "Another installation is in progress.")
        try:
            yield
        finally:
            self._installing.release()

    def reboot_required_before_installation(self) -> bool:
        return self.host.store.peek(
            lambda state: CBS_REBOOT_PENDING in state.reboot_markers or WU_REBOOT_REQUIRED in state.reboot_markers
        )


class WuaClient:
    """The WUA objects one process creates. A scan service registered without
    usoNonVolatileService goes when its IUpdateService is released
    (UpdateServiceOption, MicrosoftDocs/sdk-api
    sdk-api-src/content/wuapi/ne-wuapi-updateserviceoption.md): the lab, which
    counts no COM references, removes it when the process ends, which
    releases them all."""

    def __init__(self, agent: UpdateAgent, logon: LogonSession) -> None:
        self.agent = agent
        self.logon = logon
        self.volatile_services: dict[str, ScanService] = {}

    @property
    def host(self) -> WindowsHost:
        return self.agent.host

    def create_object(self, prog_id: str) -> Any:
        """``New-Object -ComObject <prog_id>``: ProgIDs are case-insensitive."""
        for known, create in PROG_IDS.items():
            if known.casefold() == prog_id.casefold():
                return create(self)
        raise COMError(REGDB_E_CLASSNOTREG)

    def find_service(self, service_id: str) -> ScanService:
        wanted = service_id.lower()
        services = {**self.host.store.read().scan_services, **self.volatile_services}
        for known, service in services.items():
            if known.lower() == wanted:
                return service
        raise COMError(WU_E_DS_UNKNOWNSERVICE)


class WindowsUpdateAgentInfo:
    """``Microsoft.Update.AgentInfo``, which needs no local logon."""

    __com_interface__ = "IWindowsUpdateAgentInfo"
    _API_MAJOR_VERSION = 8
    _API_MINOR_VERSION = 0

    def __init__(self, client: WuaClient) -> None:
        self._client = client

    def GetInfo(self, varInfoIdentifier: str) -> Any:
        self._client.agent.ensure_running()
        values = {
            "productversionstring": self._client.host.profile.wua_version,
            "apimajorversion": self._API_MAJOR_VERSION,
            "apiminorversion": self._API_MINOR_VERSION,
        }
        try:
            return values[varInfoIdentifier.casefold()]
        except KeyError:
            raise COMError(E_INVALIDARG) from None


class SystemInformation:
    """``Microsoft.Update.SystemInfo`` (``ISystemInformation``), which
    Microsoft lists as unavailable remotely."""

    __com_interface__ = "ISystemInformation"

    def __init__(self, client: WuaClient) -> None:
        self._client = client

    @property
    def RebootRequired(self) -> bool:
        """Whether installs or uninstalls wait for a restart: what Windows
        Update also marks with its ``Auto Update\\RebootRequired`` key."""
        agent = self._client.agent
        agent.require_local(self._client.logon, "ISystemInformation.RebootRequired")
        agent.ensure_running()
        return self._client.host.store.peek(lambda state: WU_REBOOT_REQUIRED in state.reboot_markers)


@dataclass(frozen=True)
class UpdateService:
    __com_interface__ = "IUpdateService2"

    Name: str
    ServiceID: str
    IsScanPackageService: bool = True
    IsManaged: bool = False
    IsRegisteredWithAU: bool = False


class UpdateServiceManager:
    __com_interface__ = "IUpdateServiceManager2"

    def __init__(self, client: WuaClient) -> None:
        self._client = client
        self.ClientApplicationID = ""

    @property
    def Services(self) -> UpdateServiceCollection:
        self._client.agent.ensure_running()
        services = {**self._client.host.store.read().scan_services, **self._client.volatile_services}
        return UpdateServiceCollection(UpdateService(service.name, service.service_id) for service in services.values())

    def AddScanPackageService(self, serviceName: str, scanFileLocation: str, flags: int = 0) -> UpdateService:
        client = self._client
        host = client.host
        client.agent.require_local(client.logon, "AddScanPackageService")
        client.agent.ensure_running()
        if is_unc(scanFileLocation):
            raise COMError(ERROR_INVALID_NAME)
        if not host.disk.exists(scanFileLocation):
            raise COMError(ERROR_FILE_NOT_FOUND)
        scan_packages.verify(host.disk.path(scanFileLocation), host.trusted_ca)
        service_id = str(uuid.uuid4())
        copy = f"{SCAN_FILE_FOLDER}\\{service_id}\\wsusscn2.cab"
        host.disk.make_dirs(f"{SCAN_FILE_FOLDER}\\{service_id}")
        host.disk.copy(scanFileLocation, copy)
        service = ScanService(service_id=service_id, name=serviceName, scan_file=copy)
        if flags & USO_NON_VOLATILE_SERVICE:
            with host.store.update() as state:
                state.scan_services[service_id] = service
        else:
            client.volatile_services[service_id] = service
        host.log.info("registered scan package service %s (%s) from %s", service_id, serviceName, scanFileLocation)
        return UpdateService(serviceName, service_id)

    def RemoveService(self, serviceID: str) -> None:
        client = self._client
        client.agent.ensure_running()
        service = client.find_service(serviceID)
        client.volatile_services.pop(service.service_id, None)
        with client.host.store.update() as state:
            state.scan_services.pop(service.service_id, None)
        client.host.disk.remove(service.scan_file)
        client.host.log.info("removed scan package service %s", service.service_id)


class UpdateSession:
    __com_interface__ = "IUpdateSession3"

    def __init__(self, client: WuaClient) -> None:
        self._client = client
        self.ClientApplicationID = ""
        self.UserLocale = 1033

    @property
    def ReadOnly(self) -> bool:
        return False

    def CreateUpdateSearcher(self) -> UpdateSearcher:
        return UpdateSearcher(self._client, self)

    def CreateUpdateInstaller(self) -> UpdateInstaller:
        self._client.agent.require_local(self._client.logon, "CreateUpdateInstaller")
        return UpdateInstaller(self._client, self)

    def CreateUpdateDownloader(self) -> Any:
        self._client.agent.require_local(self._client.logon, "CreateUpdateDownloader")
        # Hosts of the lab never download from Microsoft themselves.
        raise NotImplementedError("the emulated WUA has no downloader; use CopyToCache")


@dataclass(frozen=True)
class UpdateIdentity:
    __com_interface__ = "IUpdateIdentity"

    UpdateID: str
    RevisionNumber: int


@dataclass(frozen=True)
class Category:
    __com_interface__ = "ICategory"

    CategoryID: str
    Name: str
    Type: str


@dataclass(frozen=True)
class InstallationBehavior:
    __com_interface__ = "IInstallationBehavior"

    RebootBehavior: int
    CanRequestUserInput: bool = False
    Impact: int = 0  # iiNormal
    RequiresNetworkConnectivity: bool = False


@dataclass(frozen=True)
class UpdateDownloadContent:
    __com_interface__ = "IUpdateDownloadContent2"

    DownloadUrl: str
    IsDeltaCompressedContent: bool = False


class Update:
    """``IUpdate``, for a bundle or one of its bundled children: what the catalog
    says of it, and state-backed properties (IsInstalled, IsDownloaded, IsHidden...)
    read live."""

    __com_interface__ = "IUpdate5"

    def __init__(
        self,
        client: WuaClient,
        entry: CatalogEntry,
        details: UpdateDetails,
        *,
        installed_as: str,
        categories: Iterable[Category] = (),
        category_ids: Iterable[str] = (),
        bundled_updates: Iterable[Update] = (),
        download_contents: Iterable[tuple[str, str]] = (),  # (SHA-1 digest, URL)
    ) -> None:
        self._client = client
        self._entry = entry
        self._details = details
        self._installed_as = installed_as  # children are installed with their bundle
        self._contents = tuple(download_contents)
        self._categories = tuple(categories)
        # Every category of the update, ancestors included: what a
        # "CategoryIDs contains" criterion matches.
        self._category_ids = frozenset(category_ids)
        self._bundled_updates = tuple(bundled_updates)

    @property
    def Identity(self) -> UpdateIdentity:
        return UpdateIdentity(self._entry.update_id, self._entry.revision_number)

    @property
    def Title(self) -> str:
        return self._details.title

    @property
    def Description(self) -> str:
        return self._details.description

    @property
    def Type(self) -> int:
        return UPDATE_TYPES[self._details.update_type]

    @property
    def KBArticleIDs(self) -> StringCollection:
        return StringCollection(self._details.kb_article_ids)

    @property
    def MsrcSeverity(self) -> str:
        return self._details.msrc_severity

    @property
    def Categories(self) -> CategoryCollection:
        return CategoryCollection(self._categories)

    @property
    def LastDeploymentChangeTime(self) -> datetime:
        return from_iso(self._entry.creation_date)

    @property
    def Deadline(self) -> None:
        return None

    @property
    def IsBeta(self) -> bool:
        return False

    @property
    def IsMandatory(self) -> bool:
        return False

    @property
    def SupersededUpdateIDs(self) -> StringCollection:
        return StringCollection(self._details.superseded_update_ids)

    @property
    def SecurityBulletinIDs(self) -> StringCollection:
        return StringCollection(self._details.security_bulletin_ids)

    @property
    def CveIDs(self) -> StringCollection:
        return StringCollection(self._details.cve_ids)

    @property
    def MoreInfoUrls(self) -> StringCollection:
        return StringCollection([self._details.more_info_url] if self._details.more_info_url else [])

    @property
    def SupportUrl(self) -> str:
        return self._details.support_url

    @property
    def MinDownloadSize(self) -> int:
        return self._details.min_download_size

    @property
    def MaxDownloadSize(self) -> int:
        return self._details.max_download_size

    @property
    def InstallationBehavior(self) -> InstallationBehavior:
        return InstallationBehavior(
            REBOOT_BEHAVIORS.get(self._details.reboot_behavior, 0),
            CanRequestUserInput=self._details.can_request_user_input,
        )

    @property
    def BundledUpdates(self) -> UpdateCollection:
        return UpdateCollection(self._bundled_updates)

    @property
    def DownloadContents(self) -> UpdateDownloadContentCollection:
        return UpdateDownloadContentCollection(UpdateDownloadContent(url) for _, url in self._contents)

    @property
    def _reboot_behavior(self) -> str:
        return self._details.reboot_behavior

    def _criteria_values(self, state: HostState) -> dict[str, Any]:
        """What the criteria of a search compare, by lower-case name."""
        update_id = self._entry.update_id
        installed = _is_installed(state, update_id, self._details.kb_article_ids)
        return {
            "isinstalled": installed,
            "ishidden": update_id in state.hidden_updates,
            "ispresent": installed,
            "rebootrequired": any(change.update_id == update_id for change in state.pending_changes),
            "type": self._details.update_type,
            "updateid": update_id,
            "revisionnumber": self._entry.revision_number,
            "categoryids": self._category_ids,
            "deploymentaction": "Installation",
        }

    def _peek(self, reader: Callable[[HostState], T]) -> T:
        return self._client.host.store.peek(reader)

    @property
    def IsInstalled(self) -> bool:
        return self._peek(lambda state: _is_installed(state, self._installed_as, self._details.kb_article_ids))

    @property
    def IsPresent(self) -> bool:
        return self.IsInstalled

    @property
    def RebootRequired(self) -> bool:
        return self._peek(lambda state: any(change.update_id == self._installed_as for change in state.pending_changes))

    @property
    def IsDownloaded(self) -> bool:
        if self._bundled_updates:
            return all(child.IsDownloaded for child in self._bundled_updates)
        cached = self._peek(lambda state: frozenset(state.cached_content.get(self.Identity.UpdateID, ())))
        return all(digest in cached for digest, _ in self._contents)

    @property
    def IsHidden(self) -> bool:
        return self._peek(lambda state: self.Identity.UpdateID in state.hidden_updates)

    @IsHidden.setter
    def IsHidden(self, hidden: bool) -> None:
        agent = self._client.agent
        agent.require_local(self._client.logon, "IUpdate.IsHidden")
        agent.ensure_running()
        with self._client.host.store.update() as state:
            hidden_updates = set(state.hidden_updates)
            (hidden_updates.add if hidden else hidden_updates.discard)(self.Identity.UpdateID)
            state.hidden_updates = sorted(hidden_updates)

    @property
    def EulaAccepted(self) -> bool:
        return not self._entry.has_eula or self._peek(lambda state: self.Identity.UpdateID in state.accepted_eulas)

    def AcceptEula(self) -> None:
        agent = self._client.agent
        agent.require_local(self._client.logon, "AcceptEula")
        agent.ensure_running()
        with self._client.host.store.update() as state:
            if self.Identity.UpdateID not in state.accepted_eulas:
                state.accepted_eulas.append(self.Identity.UpdateID)

    def CopyToCache(self, pFiles: Iterable[str]) -> None:
        """Accepts only files named and hashed exactly like this update's own
        payload (file name = last segment of the download URL)."""
        client = self._client
        disk = client.host.disk
        client.agent.require_local(client.logon, "CopyToCache")
        client.agent.ensure_running()
        paths = list(pFiles)
        if not paths:
            raise COMError(E_INVALIDARG)
        expected = {url.rsplit("/", 1)[-1].casefold(): digest for digest, url in self._contents}
        accepted: list[tuple[str, str, str]] = []
        for path in paths:
            if is_unc(path) or not disk.exists(path):
                raise COMError(ERROR_FILE_NOT_FOUND)
            name = path.replace("/", "\\").rsplit("\\", 1)[-1]
            digest = expected.get(name.casefold())
            # IUpdate2::CopyToCache takes only the very files Windows Update would download on
            # this host, which may differ from the catalog's (express files, say).
            refused = client.host.faults.cache_refuses_files(self._installed_as)
            if refused or digest is None or sha1_of(disk.path(path)) != digest:
                client.host.log.info("CopyToCache refused %s for update %s", path, self.Identity.UpdateID)
                raise COMError(WU_E_UH_NEEDANOTHERDOWNLOAD)
            accepted.append((path, name, digest))
        disk.make_dirs(DOWNLOAD_FOLDER)
        for path, name, _ in accepted:
            disk.copy(path, f"{DOWNLOAD_FOLDER}\\{name}")
        with client.host.store.update() as state:
            cached = set(state.cached_content.get(self.Identity.UpdateID, ()))
            cached.update(digest for _, _, digest in accepted)
            state.cached_content[self.Identity.UpdateID] = sorted(cached)


def sha1_of(path: Path) -> str:
    """A file's identity in the catalog: the base64 of its SHA-1."""
    with open(path, "rb") as stream:
        return base64.b64encode(hashlib.file_digest(stream, "sha1").digest()).decode("ascii")


@dataclass(frozen=True)
class SearchResult:
    __com_interface__ = "ISearchResult"

    ResultCode: int
    Updates: UpdateCollection
    Warnings: UpdateExceptionCollection = field(default_factory=UpdateExceptionCollection)


@dataclass(frozen=True)
class UpdateHistoryEntry:
    __com_interface__ = "IUpdateHistoryEntry2"

    Operation: int
    ResultCode: int
    HResult: int
    Date: datetime
    UpdateIdentity: UpdateIdentity
    Title: str
    ClientApplicationID: str
    Description: str = ""


class UpdateSearcher:
    __com_interface__ = "IUpdateSearcher3"

    def __init__(self, client: WuaClient, session: UpdateSession) -> None:
        self._client = client
        self.ClientApplicationID = session.ClientApplicationID
        self.ServerSelection = ServerSelection.Default
        self.ServiceID = ""
        self.IncludePotentiallySupersededUpdates = False
        self.Online = True

    def Search(self, criteria: str) -> SearchResult:
        client = self._client
        client.agent.ensure_running()
        if self.ServerSelection != ServerSelection.Others or not self.ServiceID:
            # WUA would contact Windows Update or WSUS, which hosts cannot reach.
            raise COMError(WU_E_PT_WINHTTP_NAME_NOT_RESOLVED)
        service = client.find_service(self.ServiceID)
        parsed = parse_criteria(criteria)
        package = scan_packages.open(client.host.disk.path(service.scan_file))
        updates = _applicable_updates(client, package, include_superseded=self.IncludePotentiallySupersededUpdates)
        state = client.host.store.read()
        found = UpdateCollection(update for update in updates if matches(parsed, update._criteria_values(state)))
        client.host.log.info("offline scan against %s: %d updates match %r", service.name, len(found), criteria)
        return SearchResult(ResultCode=OperationResultCode.Succeeded, Updates=found)

    def GetTotalHistoryCount(self) -> int:
        self._client.agent.ensure_running()
        return len(self._client.host.store.read().history)

    def QueryHistory(self, startIndex: int, count: int) -> UpdateHistoryEntryCollection:
        """History entries, most recent first."""
        self._client.agent.ensure_running()
        newest_first = list(reversed(self._client.host.store.read().history))
        return UpdateHistoryEntryCollection(
            UpdateHistoryEntry(
                Operation=entry.operation,
                ResultCode=entry.result_code,
                HResult=entry.hresult,
                Date=from_iso(entry.date),
                UpdateIdentity=UpdateIdentity(entry.update_id, entry.revision_number),
                Title=entry.title,
                ClientApplicationID=entry.client_application_id,
            )
            for entry in newest_first[startIndex : startIndex + count]
        )


def _is_installed(state: HostState, update_id: str, kb_article_ids: Iterable[str]) -> bool:
    """Installed through the agent, or through the servicing package of its
    KB, which the update's IsInstalled rules detect whoever installed it."""
    return update_id in state.installed or any(
        package.kb in kb_article_ids for package in state.packages.values()
    )


def _applicable_updates(client: WuaClient, package: ScanPackage, *, include_superseded: bool) -> list[Update]:
    """The bundles that apply to the host, each with its applicable children."""
    profile = client.host.profile
    candidates: list[tuple[CatalogEntry, list[CatalogEntry]]] = []
    for entry in package.latest.values():
        if not entry.is_bundle or not prerequisites_met(entry.prerequisites, profile):
            continue
        children = [
            child
            for child in package.children(entry)
            if language_matches(child.languages, profile) and prerequisites_met(child.prerequisites, profile)
        ]
        candidates.append((entry, children))
    child_details = package.details(child.revision_id for _, children in candidates for child in children)
    applicable = []
    for bundle, children in candidates:
        kept = [child for child in children if _installable(child_details[child.revision_id], profile)]
        if kept:
            applicable.append((bundle, kept))

    applicable_ids = {bundle.update_id for bundle, _ in applicable}
    if not include_superseded:
        applicable = [
            (bundle, children)
            for bundle, children in applicable
            if not any(
                package.entries[revision].update_id in applicable_ids
                for revision in bundle.superseded_by
                if revision in package.entries
            )
        ]

    category_entries = {
        category_id: package.latest[category_id]
        for bundle, _ in applicable
        for _, category_id in bundle.categories
        if category_id in package.latest
    }
    details = package.details(
        [bundle.revision_id for bundle, _ in applicable] + [entry.revision_id for entry in category_entries.values()]
    )
    updates = []
    for bundle, children in applicable:
        bundle_details = details[bundle.revision_id]
        order = [update_id for update_id, _ in bundle_details.bundled_updates]
        children.sort(key=lambda child: order.index(child.update_id) if child.update_id in order else len(order))
        categories = [
            Category(
                category_id,
                details[category_entries[category_id].revision_id].title if category_id in category_entries else "",
                kind,
            )
            for kind, category_id in bundle.categories
            # IUpdate.Categories holds the update's own product and
            # classification; company and product family are their parents.
            if kind in ("Product", "UpdateClassification")
        ]
        update = Update(
            client,
            bundle,
            bundle_details,
            installed_as=bundle.update_id,
            categories=categories,
            category_ids=[category_id for _, category_id in bundle.categories],
            bundled_updates=[
                Update(
                    client,
                    child,
                    child_details[child.revision_id],
                    installed_as=bundle.update_id,
                    download_contents=[
                        (digest, package.file_urls[digest])
                        for digest in child.payload_digests
                        if digest in package.file_urls
                    ],
                )
                for child in children
            ],
        )
        updates.append(update)
    return updates


def _installable(details: UpdateDetails, profile: OsProfile) -> bool:
    """A child without an IsInstallable rule is installable everywhere."""
    return details.installable is None or rule_applies(details.installable, profile)


@dataclass(frozen=True)
class UpdateInstallationResult:
    __com_interface__ = "IUpdateInstallationResult"

    ResultCode: int
    HResult: int
    RebootRequired: bool


@dataclass(frozen=True)
class InstallationResult:
    __com_interface__ = "IInstallationResult"

    ResultCode: int
    HResult: int
    RebootRequired: bool
    _update_results: tuple[UpdateInstallationResult, ...]

    def GetUpdateResult(self, updateIndex: int) -> UpdateInstallationResult:
        return self._update_results[updateIndex]


def _installation_result(results: list[UpdateInstallationResult]) -> InstallationResult:
    """The result of an install or uninstall, from those of its updates."""
    succeeded = [result.ResultCode == OperationResultCode.Succeeded for result in results]
    if all(succeeded):
        code, hresult = OperationResultCode.Succeeded, 0
    elif any(succeeded):
        code, hresult = OperationResultCode.SucceededWithErrors, 0
    else:
        code, hresult = OperationResultCode.Failed, signed(WU_E_ALL_UPDATES_FAILED)
    return InstallationResult(code, hresult, any(result.RebootRequired for result in results), tuple(results))


class UpdateInstaller:
    __com_interface__ = "IUpdateInstaller4"

    def __init__(self, client: WuaClient, session: UpdateSession) -> None:
        self._client = client
        self.ClientApplicationID = session.ClientApplicationID
        self.Updates: UpdateCollection | None = None
        self.AllowSourcePrompts = True
        self.ForceQuiet = False
        self.IsForced = False

    @property
    def IsBusy(self) -> bool:
        return self._client.agent.is_busy

    @property
    def RebootRequiredBeforeInstallation(self) -> bool:
        return self._client.agent.reboot_required_before_installation()

    def Install(self) -> InstallationResult:
        return self._run(OPERATION_INSTALLATION)

    def Uninstall(self) -> InstallationResult:
        return self._run(OPERATION_UNINSTALLATION)

    def _run(self, operation: int) -> InstallationResult:
        agent = self._client.agent
        agent.ensure_running()
        if not self.Updates:
            raise COMError(WU_E_NO_UPDATE)
        with agent.installing():
            if agent.reboot_required_before_installation():
                raise COMError(WU_E_INSTALL_NOT_ALLOWED, "A restart is pending.")
            results = [self._apply(operation, update) for update in self.Updates]
        return _installation_result(results)

    def _apply(self, operation: int, update: Update) -> UpdateInstallationResult:
        host = self._client.host
        update_id = update.Identity.UpdateID
        if operation == OPERATION_INSTALLATION:
            failure = self._refusal(update) or self._serviced_install(update)
        else:
            failure = None if update.IsInstalled else WU_E_NOT_APPLICABLE
        reboot = failure is None and update._reboot_behavior == "AlwaysRequiresReboot"
        now = to_iso(utc_now())
        with host.store.update() as state:
            if failure is None:
                change = PendingChange(
                    operation,
                    update_id,
                    update.Identity.RevisionNumber,
                    update.Title,
                    list(update.KBArticleIDs),
                    update._reboot_behavior,
                )
                commit_change(state, change, reboot=reboot, when=now)
            state.history.append(
                HistoryEntry(
                    operation=operation,
                    result_code=OperationResultCode.Failed if failure else OperationResultCode.Succeeded,
                    hresult=signed(failure or 0),
                    date=now,
                    update_id=update_id,
                    revision_number=update.Identity.RevisionNumber,
                    title=update.Title,
                    client_application_id=self.ClientApplicationID,
                )
            )
        verb = "install" if operation == OPERATION_INSTALLATION else "uninstall"
        if failure:
            host.log.info("%s of %s failed with 0x%08X", verb, update_id, failure)
            return UpdateInstallationResult(OperationResultCode.Failed, signed(failure), False)
        host.log.info("%s of %s succeeded%s", verb, update_id, ", restart required" if reboot else "")
        return UpdateInstallationResult(OperationResultCode.Succeeded, 0, reboot)

    def _refusal(self, update: Update) -> int | None:
        """Why the Update Agent does not hand ``update`` to its installer, if it does not."""
        if not update.EulaAccepted:
            return WU_E_EULAS_DECLINED
        if not update.IsDownloaded:
            return WU_E_DM_NOTDOWNLOADED
        if update.InstallationBehavior.CanRequestUserInput:
            # Nobody is ever logged on interactively to a lab host to answer it. Microsoft does not say
            # what the installer does then; its handler's error for an update that requires user input
            # is WU_E_UH_CANREQUIREINPUT (wuerror.h, microsoft/win32metadata
            # generation/WinSDK/RecompiledIdlHeaders/um/wuerror.h), and Microsoft's sample leaves such
            # updates out of an install ("Searching, Downloading, and Installing Updates",
            # MicrosoftDocs/win32 desktop-src/Wua_Sdk/searching--downloading--and-installing-updates.md).
            return WU_E_UH_CANREQUIREINPUT
        return None

    def _serviced_install(self, update: Update) -> int | None:
        """The install by servicing, which logs its session: the HRESULT it fails with, if it does."""
        host = self._client.host
        if delay := host.faults.install_delay():
            time.sleep(delay)
        failure = host.faults.install_failure(update.Identity.UpdateID)
        reboot = failure is None and update._reboot_behavior == "AlwaysRequiresReboot"
        for kb in update.KBArticleIDs:
            servicinglog.log_install(host, f"Package_for_KB{kb}", failure or 0, reboot=reboot)
        return failure


# What ``New-Object -ComObject <ProgID>`` creates in a process of the lab.
PROG_IDS: dict[str, Callable[[WuaClient], Any]] = {
    "Microsoft.Update.Session": UpdateSession,
    "Microsoft.Update.ServiceManager": UpdateServiceManager,
    "Microsoft.Update.AgentInfo": WindowsUpdateAgentInfo,
    "Microsoft.Update.SystemInfo": SystemInformation,
    "Microsoft.Update.UpdateColl": lambda client: UpdateCollection(),
    "Microsoft.Update.StringColl": lambda client: StringCollection(),
    "Schedule.Service": lambda client: TaskService(client.host.task_scheduler, client.logon),
}


def commit_change(state: HostState, change: PendingChange, *, reboot: bool, when: str) -> None:
    """A successful install or uninstall: done now, or left for the next
    restart, which Windows' reboot markers then ask for."""
    if reboot:
        state.pending_changes.append(change)
        state.reboot_markers = sorted(set(state.reboot_markers) | {CBS_REBOOT_PENDING, WU_REBOOT_REQUIRED})
    else:
        _apply_change(state, change, when)


def _apply_change(state: HostState, change: PendingChange, when: str) -> None:
    if change.package is not None:
        if change.operation == OPERATION_INSTALLATION:
            state.packages[change.package] = InstalledPackage(
                change.package, change.kb_article_ids[0], when, change.reboot_behavior
            )
        else:
            state.packages.pop(change.package, None)
        return
    if change.operation == OPERATION_INSTALLATION:
        state.installed[change.update_id] = InstalledUpdate(
            change.update_id,
            change.revision_number,
            change.title,
            when,
            change.kb_article_ids,
            change.reboot_behavior,
        )
    else:
        state.installed.pop(change.update_id, None)


def complete_pending_changes(state: HostState, when: str, faults: HostFaults) -> None:
    """What Windows finishes while it restarts: installs and uninstalls that
    waited for the reboot. An install the ``revert_at_reboot`` fault names is
    undone instead ("We couldn't complete the updates. Undoing changes"): the
    update stays uninstalled and its history entry becomes a failure."""
    for change in state.pending_changes:
        hresult = None
        if change.package is None and change.operation == OPERATION_INSTALLATION:
            hresult = faults.revert_at_reboot(change.update_id)
        if hresult is None:
            _apply_change(state, change, when)
        else:
            _record_reverted_install(state, change, hresult, when)
    state.pending_changes = []


def _record_reverted_install(state: HostState, change: PendingChange, hresult: int, when: str) -> None:
    """The history entry of the install attempt that waited for the restart
    now says it failed, with the HRESULT of the rollback."""
    attempt = next(
        (
            entry
            for entry in reversed(state.history)
            if entry.update_id == change.update_id and entry.operation == OPERATION_INSTALLATION
        ),
        None,
    )
    if attempt is None:
        return
    attempt.result_code = OperationResultCode.Failed
    attempt.hresult = signed(hresult)
    attempt.date = when
