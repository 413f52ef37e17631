"""Bodies of the host report, plan, host and rule set endpoints.

A report is what a host's Windows Update Agent scan returned, as the
collection's bridge sends it. Fields this version does not know are ignored,
so that a newer collection can report to an older server; the fields the
server relies on are required, so that a misspelt key is refused rather than
read as "no updates". The assignment is the exception: an unknown key there
is refused (by :meth:`wuacache_server.policy.Assignment.from_dict`), since a
misspelt rule would silently change what a host may install. Every string and
list has a bound, no string holds a NUL; GUIDs, digests and HRESULTs are checked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from wuacache_server.api.schemas import HostName, Text
from wuacache_server.db.models import HostRuleKind, HostUpdateStatus

MAX_UPDATES = 5_000
MAX_HISTORY = 10_000
MAX_URLS = 64  # download URLs of one update, or of one bundled child
MAX_CHILDREN = 64
MAX_CATEGORIES = 32
MAX_KBS = 32
MAX_SUPERSEDED = 2_000

Guid = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    ),
]
Url = Annotated[Text, StringConstraints(min_length=1, max_length=2048)]
ShortText = Annotated[Text, StringConstraints(max_length=255)]
# A list written as one comma-separated string, as inventories often do.
CommaSeparated = Annotated[Text, StringConstraints(max_length=4096)]
Token = Annotated[Text, StringConstraints(max_length=64)]
RevisionNumber = Annotated[int, Field(ge=0, le=2**31 - 1)]
# WUA hands HRESULTs out signed (PowerShell's Int32); either form is accepted.
HResult = Annotated[int, Field(ge=-(2**31), le=2**32 - 1)]
Sha256Hex = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, pattern=r"^[0-9a-f]{64}$")]


class _Reported(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ReportedCategory(_Reported):
    """``ICategory``: products and classifications are matched by these names and ids."""

    id: Guid
    name: ShortText
    type: Token = Field(description="Company, ProductFamily, Product or UpdateClassification.")


class ReportedChild(_Reported):
    """One of ``IUpdate.BundledUpdates``: the per-architecture part that owns the files."""

    update_id: Guid
    revision_number: RevisionNumber
    download_urls: list[Url] = Field(default=[], max_length=MAX_URLS)


class ReportedUpdate(_Reported):
    """One ``IUpdate`` the scan returned."""

    update_id: Guid
    revision_number: RevisionNumber
    title: Annotated[Text, StringConstraints(max_length=1000)]
    kb_ids: list[Token] = Field(default=[], max_length=MAX_KBS, description="Digits, with or without 'KB'.")
    msrc_severity: Token | None = Field(default=None, description="Empty or null for non-security updates.")
    categories: list[ReportedCategory] = Field(default=[], max_length=MAX_CATEGORIES)
    last_deployment_change_time: AwareDatetime = Field(description="UTC; install delays count from it.")
    is_installed: bool
    reboot_required: bool = Field(
        default=False, description="IUpdate.RebootRequired: installed, the host's next restart completes it."
    )
    is_hidden: bool = False
    is_downloaded: bool = False
    superseded_update_ids: list[Guid] = Field(default=[], max_length=MAX_SUPERSEDED)
    bundled: list[ReportedChild] = Field(default=[], max_length=MAX_CHILDREN)
    download_urls: list[Url] = Field(default=[], max_length=MAX_URLS)
    reboot_behaviour: Token | StrictInt | None = None


class HistoryEntry(_Reported):
    """One ``IUpdateHistoryEntry``."""

    operation: int = Field(ge=1, le=3, description="1 installation, 2 uninstallation, 3 other.")
    result_code: int = Field(ge=0, le=5, description="OperationResultCode: 2 succeeded, 3, 4 and 5 failed.")
    hresult: HResult = 0
    date: AwareDatetime
    update_id: Guid
    revision_number: RevisionNumber


class ReportedOs(_Reported):
    caption: ShortText | None = None
    build: Token | None = None
    architecture: Token | None = None


class AssignmentBody(BaseModel):
    """What a host follows, as :meth:`wuacache_server.policy.Assignment.from_dict`
    reads it; a key left out takes the policy's default. Lists may also be
    comma-separated strings."""

    model_config = ConfigDict(extra="forbid")

    rule_sets: Annotated[list[ShortText], Field(max_length=100)] | CommaSeparated = []
    default_allow: bool = Field(default=False, description="What an update that no rule names follows.")
    allowed_severities: Annotated[list[Token], Field(max_length=16)] | CommaSeparated = []
    install_delay: Token | StrictInt | None = Field(
        default=None,
        description="From LastDeploymentChangeTime: a number of days, or 30m, 12h, 7d, 2w.",
        examples=["7d"],
    )
    maturities: Annotated[list[Token], Field(max_length=16)] | CommaSeparated = ["PROD"]

    def to_dict(self) -> dict[str, Any]:
        """The keys the host gave, for :meth:`~wuacache_server.policy.Assignment.from_dict`."""
        return self.model_dump(exclude_unset=True)


class HostReportIn(_Reported):
    """A host's scan report: who scanned, with which catalog, and what WUA returned."""

    hostname: HostName = Field(description="The host's name: the one in the URL.")
    os: ReportedOs = Field(default_factory=ReportedOs)
    wua_version: Token | None = None
    cab_sha256: Sha256Hex | None = Field(default=None, description="Hex SHA-256 of the wsusscn2.cab scanned with.")
    cab_date: AwareDatetime | None = None
    scan_duration_seconds: float | None = Field(default=None, ge=0)
    reboot_required: bool = False
    wuauserv_state: Token | None = None
    error_hresult: HResult | None = Field(
        default=None, description="Set when the scan failed: the updates are then ignored and the plan kept."
    )
    assignment: AssignmentBody = Field(description="What the host follows, from its inventory variables.")
    updates: list[ReportedUpdate] = Field(max_length=MAX_UPDATES)
    history: list[HistoryEntry] = Field(default=[], max_length=MAX_HISTORY)


class PlanFile(BaseModel):
    file_name: str
    url: str = Field(description="Where the host downloads it from this server.")
    download_url: str = Field(
        description="The catalog's URL of the file, as WUA lists it in the update's DownloadContents."
    )
    sha1: str = Field(description="Base64 SHA-1, the catalog's digest of the file.")
    size: int | None
    available: bool = Field(description="Whether the server holds the verified file now.")


class PlanUpdate(BaseModel):
    update_id: str
    revision_number: int
    title: str
    status: HostUpdateStatus
    reason: str
    allowed: bool = Field(description="The rules' verdict; true also for an update held back by its install delay.")
    delayed_until: datetime | None
    files: list[PlanFile] = Field(
        description="The files the host needs to install the update; empty for OK and DISCARDED updates."
    )


class PlanRuleSets(BaseModel):
    applied: list[str] = []
    ignored: list[str] = Field(default=[], description="Assigned rule sets left out, and why.")
    unknown: list[str] = Field(default=[], description="Assigned rule set names no rule set has.")


class HostPlan(BaseModel):
    """What a host should do with each update its last successful scan returned."""

    host: str
    decided_at: datetime | None
    counts: dict[HostUpdateStatus, int]
    rule_sets: PlanRuleSets
    warnings: list[str]
    updates: list[PlanUpdate]


class ReportSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    received_at: datetime
    cab_sha256: str | None
    cab_date: datetime | None
    scan_duration_seconds: float | None
    wuauserv_state: str | None
    update_count: int
    counts: dict[str, int]
    warnings: list[str]
    error: str | None


class HostSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    os_caption: str | None
    os_build: str | None
    os_architecture: str | None
    wua_version: str | None
    cab_sha256: str | None
    last_report_at: datetime | None
    reboot_pending: bool
    counts: dict[HostUpdateStatus, int] = Field(description="The host's updates per status.")


class HostAssignment(BaseModel):
    """A host's assignment and who set it; never set, the server's default assignment applies."""

    assignment: dict[str, Any]
    assignment_set_at: datetime | None
    assignment_set_by: str | None = Field(description="The token that set it, or cli.")


class HostRuleBody(BaseModel):
    """A hold or an override: the update, by UpdateID or KB, and why."""

    model_config = ConfigDict(extra="forbid")

    update_id: Annotated[Text, StringConstraints(max_length=36)] | None = Field(
        default=None, description="The update's UpdateID; or give kb."
    )
    kb: Annotated[Text, StringConstraints(max_length=16)] | None = Field(
        default=None, description="The update's KB, e.g. KB5034441; or give update_id.", examples=["KB5034441"]
    )
    reason: Annotated[Text, StringConstraints(min_length=1, max_length=1000)] = Field(
        description="Why: shown in the host's plan."
    )
    expires_at: AwareDatetime | None = Field(default=None, description="When it stops applying; never by default.")


class HostRulePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    host_name: str
    kind: HostRuleKind
    update_id: str | None
    kb: str | None
    reason: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None


class HostDetail(HostSummary, HostAssignment):
    last_report: ReportSummary | None


class HostPage(BaseModel):
    total: int = Field(description="Hosts matching the filters, on every page.")
    items: list[HostSummary]


class RuleSetBody(BaseModel):
    """A rule set, as :meth:`wuacache_server.policy.RuleSet.from_dict` reads it.

    Update lists hold UpdateID GUIDs; KBs are written with or without "KB";
    products and classifications by ``ICategory.Name`` or category GUID;
    severities are Critical, Important, Moderate or Low. A rule set without
    maturity applies to every host; one with a maturity only to hosts that
    accept it.
    """

    model_config = ConfigDict(extra="forbid")

    name: Text | None = Field(default=None, max_length=100, description="Required on creation; the URL's on update.")
    maturity: Text | None = Field(default=None, max_length=32, examples=["PROD"])
    allowed_updates: list[ShortText] = Field(default=[], max_length=10_000)
    forbidden_updates: list[ShortText] = Field(default=[], max_length=10_000)
    allowed_kbs: list[Token | StrictInt] = Field(default=[], max_length=10_000)
    forbidden_kbs: list[Token | StrictInt] = Field(default=[], max_length=10_000)
    allowed_products: list[ShortText] = Field(default=[], max_length=1_000)
    forbidden_products: list[ShortText] = Field(default=[], max_length=1_000)
    allowed_classifications: list[ShortText] = Field(default=[], max_length=1_000)
    forbidden_classifications: list[ShortText] = Field(default=[], max_length=1_000)
    allowed_severities: list[Token] = Field(default=[], max_length=16)
    forbidden_severities: list[Token] = Field(default=[], max_length=16)


class RuleSetPublic(BaseModel):
    name: str
    maturity: str | None
    allowed_updates: list[str]
    forbidden_updates: list[str]
    allowed_kbs: list[str]
    forbidden_kbs: list[str]
    allowed_products: list[str]
    forbidden_products: list[str]
    allowed_classifications: list[str]
    forbidden_classifications: list[str]
    allowed_severities: list[str]
    forbidden_severities: list[str]
    created_at: datetime
    updated_at: datetime
