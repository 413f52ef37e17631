"""The synthetic update set a lab catalog publishes.

:func:`build_catalog` models what Microsoft would have published: the
categories and architecture detectoids (which are updates themselves), and one
month after another of deployable bundles, each with per-architecture bundled
children that own the payload files. Everything derives from the seed: the
same ``(updates, seed, generation)`` always yields the same catalog.

Generations model later publications of ``wsusscn2.cab``. Generation ``g``
replays generations ``1..g-1`` and then publishes one more month, whose
cumulative updates supersede the previous month's, and revises a few earlier
bundles (new RevisionNumber and RevisionId, updated metadata).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from wuacache_lab.catalog.payloads import payload_bytes

# --- Categories and detectoids (Microsoft's real GUIDs) -----------------------


@dataclass(frozen=True)
class Category:
    """A Company, ProductFamily, Product or UpdateClassification."""

    update_id: str
    name: str
    category_type: str
    parent: Category | None = None


MICROSOFT = Category("56309036-4c77-4dd9-951a-99ee9c246a94", "Microsoft", "Company")
WINDOWS = Category("6964aab4-c5b5-43bd-a17d-ffb4346a8e1d", "Windows", "ProductFamily", MICROSOFT)

WINDOWS_10_PRODUCT = Category(
    "b3c75dc1-155f-4be4-b015-3f1a91758e52", "Windows 10, version 1903 and later", "Product", WINDOWS
)
WINDOWS_11_PRODUCT = Category("72e7624a-5b00-45d2-b92f-e561c0a6a160", "Windows 11", "Product", WINDOWS)
SERVER_2019_PRODUCT = Category("f702a48c-919b-45d6-9aef-ca4248d50397", "Windows Server 2019", "Product", WINDOWS)
SERVER_2022_PRODUCT = Category(
    "71718f13-7324-4c0f-8f6e-0e4ecc7d1a29", "Microsoft Server operating system-21H2", "Product", WINDOWS
)

SECURITY_UPDATES = Category("0fa1201d-4330-4fa8-8ae9-b877473b6441", "Security Updates", "UpdateClassification")
CRITICAL_UPDATES = Category("e6cf1350-c01b-414d-a61f-263d14d133b4", "Critical Updates", "UpdateClassification")
UPDATE_ROLLUPS = Category("28bc880e-0592-4cbf-8f95-c79b17911d5f", "Update Rollups", "UpdateClassification")
UPDATES = Category("cd5ffd1e-e932-4e3a-bf74-18bf0b1bbd83", "Updates", "UpdateClassification")
DEFINITION_UPDATES = Category("e0789628-ce08-4437-be74-2495b842f43b", "Definition Updates", "UpdateClassification")
FEATURE_PACKS = Category("b54e7d24-7add-428f-8b75-90a396fa584f", "Feature Packs", "UpdateClassification")
SERVICE_PACKS = Category("68c5b0a3-d1a6-4553-ae49-01d3a7827828", "Service Packs", "UpdateClassification")
TOOLS = Category("b4832bd8-e735-4761-8daf-37f882276dab", "Tools", "UpdateClassification")

CATEGORIES: tuple[Category, ...] = (
    MICROSOFT,
    WINDOWS,
    WINDOWS_10_PRODUCT,
    WINDOWS_11_PRODUCT,
    SERVER_2019_PRODUCT,
    SERVER_2022_PRODUCT,
    SECURITY_UPDATES,
    CRITICAL_UPDATES,
    UPDATE_ROLLUPS,
    UPDATES,
    DEFINITION_UPDATES,
    FEATURE_PACKS,
    SERVICE_PACKS,
    TOOLS,
)


@dataclass(frozen=True)
class Architecture:
    name: str
    processor: int
    """``Processor/@Architecture`` in applicability rules."""
    detectoid: str
    title: str


X86 = Architecture("x86", 0, "aabd43ad-a183-4f0b-8eee-8dbbcd67687f", "x86-based Systems")
X64 = Architecture("x64", 9, "59653007-e2e9-4f71-8525-2ff588527978", "x64-based Systems")
ARM64 = Architecture("arm64", 12, "1a7d0b5e-4f6f-4f56-b3f2-0b5a0f2d1e5c", "ARM64-based Systems")
ARCHITECTURES: tuple[Architecture, ...] = (X64, X86, ARM64)


@dataclass(frozen=True)
class OperatingSystem:
    product: Category
    title: str
    file_prefix: str
    build: int
    product_type: int
    """1 workstation, 3 server."""
    architectures: tuple[Architecture, ...]


WINDOWS_10 = OperatingSystem(WINDOWS_10_PRODUCT, "Windows 10 Version 22H2", "windows10.0", 19045, 1, (X64, X86))
WINDOWS_11 = OperatingSystem(WINDOWS_11_PRODUCT, "Windows 11 Version 23H2", "windows11.0", 22631, 1, (X64, ARM64))
SERVER_2019 = OperatingSystem(SERVER_2019_PRODUCT, "Windows Server 2019", "windows10.0", 17763, 3, (X64,))
SERVER_2022 = OperatingSystem(
    SERVER_2022_PRODUCT, "Microsoft server operating system version 21H2", "windows10.0", 20348, 3, (X64,)
)
OPERATING_SYSTEMS: tuple[OperatingSystem, ...] = (WINDOWS_10, WINDOWS_11, SERVER_2019, SERVER_2022)

SEVERITIES = ("Critical", "Important", "Moderate", "Low")


# --- Applicability rules ------------------------------------------------------


@dataclass(frozen=True)
class WindowsVersion:
    comparison: str
    """EqualTo, GreaterThanOrEqualTo or LessThan."""
    build: int
    product_type: int | None = None
    major: int = 10
    minor: int = 0


@dataclass(frozen=True)
class Processor:
    architecture: int


@dataclass(frozen=True)
class And:
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Or:
    rules: tuple[Rule, ...]


Rule = WindowsVersion | Processor | And | Or


# --- Update kinds -------------------------------------------------------------


@dataclass(frozen=True)
class UpdateKind:
    """What a family of bundles looks like.

    ``title`` and ``stem`` are format strings over ``month`` ("2024-01"),
    ``os``, ``systems`` (" for x64-based Systems" when one architecture is
    meant), ``version``, ``prefix`` (file prefix of the OS) and ``arch``.
    A kind that ``supersedes_previous`` replaces the previous bundle of the
    same kind for the same operating system.
    """

    name: str
    classification: Category
    title: str
    stem: str
    extension: str
    reboot: str
    description: str
    operating_systems: tuple[OperatingSystem, ...]
    has_kb: bool = True
    supersedes_previous: bool = False


CUMULATIVE = UpdateKind(
    "cumulative",
    SECURITY_UPDATES,
    "{month} Cumulative Update for {os}{systems}",
    "{prefix}-kb{kb}-{arch}",
    "cab",
    "AlwaysRequiresReboot",
    "Install this update to resolve issues in Windows. For a complete listing of the issues that are included "
    "in this update, see the associated Microsoft Knowledge Base article for more information. After you "
    "install this item, you may have to restart your computer.",
    OPERATING_SYSTEMS,
    supersedes_previous=True,
)
SECURITY = UpdateKind(
    "security",
    SECURITY_UPDATES,
    "{month} Security Update for {os}{systems}",
    "{prefix}-kb{kb}-{arch}",
    "cab",
    "AlwaysRequiresReboot",
    "A security issue has been identified in a Microsoft software product that could affect your system. "
    "You can help protect your system by installing this update from Microsoft.",
    OPERATING_SYSTEMS,
)
DOTNET = UpdateKind(
    "dotnet",
    SECURITY_UPDATES,
    "{month} Cumulative Update for .NET Framework 3.5 and 4.8.1 for {os}{systems}",
    "{prefix}-kb{kb}-{arch}-ndp481",
    "msu",
    "CanRequestReboot",
    "A security issue has been identified in the .NET Framework that could allow an attacker to compromise "
    "your system. You can help protect your system by installing this update from Microsoft.",
    (WINDOWS_10, WINDOWS_11, SERVER_2022),
)
SERVICING_STACK = UpdateKind(
    "servicing-stack",
    CRITICAL_UPDATES,
    "{month} Servicing Stack Update for {os}{systems}",
    "ssu-{prefix}-kb{kb}-{arch}",
    "cab",
    "NeverReboots",
    "Install this update to improve the reliability of the Windows servicing stack.",
    (WINDOWS_10, SERVER_2019),
)
QUALITY = UpdateKind(
    "update",
    UPDATES,
    "{month} Update for {os}{systems}",
    "{prefix}-kb{kb}-{arch}-quality",
    "cab",
    "CanRequestReboot",
    "Install this update to resolve issues in Windows. After you install this item, you may have to restart "
    "your computer.",
    OPERATING_SYSTEMS,
)
MALICIOUS_SOFTWARE_REMOVAL = UpdateKind(
    "msrt",
    UPDATE_ROLLUPS,
    "Windows Malicious Software Removal Tool for {os}{systems} - v{version}",
    "windows-kb890830-{arch}-{prefix}-v{version}",
    "exe",
    "NeverReboots",
    "After the download, this tool runs one time to check your computer for infection by specific, prevalent "
    "malicious software, and helps remove any infection that is found.",
    (WINDOWS_10,),
    supersedes_previous=True,
)
DEFINITION = UpdateKind(
    "definition",
    DEFINITION_UPDATES,
    "Security Intelligence Update for Microsoft Defender Antivirus for {os}{systems} (Version {version})",
    "mpam-fe-{prefix}-{arch}-{version}",
    "exe",
    "NeverReboots",
    "Install this update to revise the files that are used to detect viruses, spyware, and other potentially "
    "unwanted software.",
    (WINDOWS_10, WINDOWS_11),
    has_kb=False,
    supersedes_previous=True,
)
LANGUAGE_PACK = UpdateKind(
    "language-pack",
    FEATURE_PACKS,
    "Local Experience Pack French (France) for {os}{systems}",
    "{prefix}-kb{kb}-{arch}-fr-fr",
    "cab",
    "CanRequestReboot",
    "Adds the French (France) display language to Windows.",
    (WINDOWS_10,),
)

# Every month publishes these, then fills up with random bundles of the
# weighted kinds below.
_MONTHLY_KINDS = (CUMULATIVE, MALICIOUS_SOFTWARE_REMOVAL)
_FILLER_KINDS: tuple[tuple[UpdateKind, int], ...] = (
    (DEFINITION, 40),
    (SECURITY, 20),
    (QUALITY, 15),
    (DOTNET, 15),
    (SERVICING_STACK, 10),
)
_MSRT_KB = 890830
# Definitions for the Windows 10 product also serve Windows 11 (see
# _applicability), hence the extra architecture.
_DEFINITION_ARCHITECTURES = {WINDOWS_10: (X64, X86, ARM64), WINDOWS_11: (X64, ARM64)}


# --- The catalog --------------------------------------------------------------


@dataclass(slots=True, eq=False)
class PayloadFile:
    """A file of a FileLocation: its Id is base64(SHA-1) of the content."""

    stem: str
    file_name: str
    url: str
    size: int
    sha1: bytes
    sha256: bytes
    modified: datetime.datetime

    @property
    def digest(self) -> str:
        return base64.b64encode(self.sha1).decode()

    @property
    def sha256_digest(self) -> str:
        return base64.b64encode(self.sha256).decode()


@dataclass(slots=True, eq=False)
class CategoryUpdate:
    category: Category
    revision_number: int
    revision_id: int
    created: datetime.datetime

    @property
    def update_id(self) -> str:
        return self.category.update_id

    @property
    def title(self) -> str:
        return self.category.name


@dataclass(slots=True, eq=False)
class Detectoid:
    architecture: Architecture
    revision_number: int
    revision_id: int
    created: datetime.datetime

    @property
    def update_id(self) -> str:
        return self.architecture.detectoid

    @property
    def title(self) -> str:
        return self.architecture.title


@dataclass(slots=True, eq=False)
class Bundle:
    """A deployable update: what WUA's search returns."""

    update_id: str
    revision_number: int
    revision_id: int
    created: datetime.datetime
    kind: UpdateKind
    os: OperatingSystem
    month: str
    kb: int | None
    version: str | None
    severity: str | None
    cves: tuple[str, ...]
    children: list[BundledUpdate] = field(default_factory=list)
    supersedes: tuple[Bundle, ...] = ()
    superseded_by: list[Bundle] = field(default_factory=list)
    revised: bool = False
    # InstallationBehavior/@CanRequestUserInput: its installer may ask whoever installs it a question.
    can_request_user_input: bool = False

    @property
    def classification(self) -> Category:
        return self.kind.classification

    @property
    def title(self) -> str:
        if len(self.children) == 1:
            return self.children[0].title
        return self.title_for(None)

    @property
    def description(self) -> str:
        if self.revised:
            return f"{self.kind.description} This revision updates the update's details."
        return self.kind.description

    @property
    def support_url(self) -> str:
        if self.kb is None:
            return "https://go.microsoft.com/fwlink/?LinkId=52661"
        return f"https://support.microsoft.com/help/{self.kb}"

    def title_for(self, architecture: Architecture | None) -> str:
        """The title naming one architecture, or none (a multi-architecture bundle)."""
        systems = f" for {architecture.title}" if architecture is not None else ""
        title = self.kind.title.format(month=self.month, os=self.os.title, systems=systems, version=self.version)
        return f"{title} (KB{self.kb})" if self.kb is not None else title


@dataclass(slots=True, eq=False)
class BundledUpdate:
    """A per-architecture child of a bundle: owns the payload files."""

    update_id: str
    revision_number: int
    revision_id: int
    bundle: Bundle
    architecture: Architecture
    files: tuple[PayloadFile, ...]
    rule: Rule
    language: str | None = None

    @property
    def created(self) -> datetime.datetime:
        return self.bundle.created

    @property
    def title(self) -> str:
        return self.bundle.title_for(self.architecture)


Update = CategoryUpdate | Detectoid | Bundle | BundledUpdate


@dataclass
class Catalog:
    seed: int
    generation: int
    published: datetime.datetime
    package_id: str
    source_id: str
    categories: list[CategoryUpdate]
    detectoids: list[Detectoid]
    bundles: list[Bundle]
    files: list[PayloadFile]
    """The FileLocations, in publication order, including unreferenced ones."""

    def updates(self) -> list[Update]:
        """Every Update entry, by RevisionId (the order of package.xml)."""
        entries: list[Update] = [*self.categories, *self.detectoids]
        for bundle in self.bundles:
            entries.append(bundle)
            entries.extend(bundle.children)
        entries.sort(key=lambda update: update.revision_id)
        return entries

    def children(self) -> Iterator[BundledUpdate]:
        for bundle in self.bundles:
            yield from bundle.children


# --- Building -----------------------------------------------------------------

# Month 1 of a catalog, unless its builder is given another.
FIRST_MONTH = (2024, 1)
MAX_MONTHS = 24
DEFAULT_PAYLOAD_SIZE = (256, 4096)

_FIXED_UPDATES = len(CATEGORIES) + len(ARCHITECTURES)
_MONTHLY_UPDATES = sum(1 + len(os.architectures) for kind in _MONTHLY_KINDS for os in kind.operating_systems)
# A month holds its monthly updates and at least one more bundle (2 updates).
_MIN_MONTH = _MONTHLY_UPDATES + 2
_HASHLESS_SHARE = 0.1
# Share of other children with an express package too: Microsoft's catalog has
# about 0.7 FileLocation per Update.
_EXPRESS_SHARE = 0.09
_FIRST_REVISION_ID = 20_000_000
_FIRST_BUNDLE_REVISION_ID = 40_000_000
_FIRST_KB = 5_034_100


@dataclass(frozen=True)
class _Showcase:
    """A bundle the first month always publishes, so that even the smallest
    catalog holds every shape of update that hosts and servers must handle."""

    kind: UpdateKind
    os: OperatingSystem
    architectures: tuple[Architecture, ...]
    severity: str | None = None
    language: str | None = None
    can_request_user_input: bool = False

    @property
    def size(self) -> int:
        return 1 + len(self.architectures)


_SHOWCASE = (
    # Microsoft marks a few updates as able to ask the user something while they install; which
    # update of the lab's catalog is one is arbitrary, the attribute is the point.
    _Showcase(LANGUAGE_PACK, WINDOWS_10, (X64,), language="fr", can_request_user_input=True),
    _Showcase(DEFINITION, WINDOWS_10, (X64, X86, ARM64)),
    _Showcase(DOTNET, WINDOWS_10, (X64, X86), severity="Moderate"),
    _Showcase(SECURITY, SERVER_2022, (X64,), severity="Low"),
    _Showcase(SERVICING_STACK, SERVER_2019, (X64,)),
    _Showcase(QUALITY, SERVER_2019, (X64,)),
)
_SHOWCASE_UPDATES = sum(item.size for item in _SHOWCASE)
MIN_UPDATES = _FIXED_UPDATES + _SHOWCASE_UPDATES + 2 * _MIN_MONTH


def build_catalog(
    *,
    updates: int,
    seed: int,
    generation: int = 1,
    payload_size: tuple[int, int] = DEFAULT_PAYLOAD_SIZE,
    first_month: tuple[int, int] = FIRST_MONTH,
) -> Catalog:
    """Model generation ``generation`` of a catalog whose first generation
    holds exactly ``updates`` Update entries (categories and detectoids
    included); each later generation adds one month. Month 1 is
    ``first_month`` (year, month): a recent one gives updates whose install
    delays have not run out yet."""
    if updates < MIN_UPDATES:
        raise ValueError(f"a catalog needs at least {MIN_UPDATES} updates, not {updates}")
    if generation < 1:
        raise ValueError(f"generation starts at 1, not {generation}")
    low, high = payload_size
    if not 128 <= low <= high:
        raise ValueError(f"payload sizes must satisfy 128 <= min <= max, not {payload_size}")
    return _Builder(updates, seed, payload_size, first_month).build(generation)


def month_label(index: int, first_month: tuple[int, int]) -> str:
    """The "YYYY-MM" of month ``index`` (1 = ``first_month``)."""
    year, month = divmod(first_month[0] * 12 + first_month[1] - 1 + index - 1, 12)
    return f"{year:04d}-{month + 1:02d}"


def patch_tuesday(index: int, first_month: tuple[int, int]) -> datetime.datetime:
    """Release time of month ``index``: its second Tuesday, 18:00 UTC."""
    year, month = (int(part) for part in month_label(index, first_month).split("-"))
    first = datetime.date(year, month, 1)
    second_tuesday = first + datetime.timedelta(days=(1 - first.weekday()) % 7 + 7)
    return datetime.datetime.combine(second_tuesday, datetime.time(18), datetime.UTC)


class _Builder:
    def __init__(self, updates: int, seed: int, payload_size: tuple[int, int], first_month: tuple[int, int]) -> None:
        self.seed = seed
        self.payload_size = payload_size
        self.first_month = first_month
        # The first generation spreads what the categories, detectoids and
        # showcase leave over 2 to MAX_MONTHS months; the first month takes
        # the showcase and the rounding remainder.
        variable = updates - _FIXED_UPDATES - _SHOWCASE_UPDATES
        self.first_months = max(2, min(MAX_MONTHS, variable // 100))
        self.month_budget = variable // self.first_months
        self.first_month_extra = variable % self.first_months + _SHOWCASE_UPDATES

        self.next_revision_id = _FIRST_REVISION_ID
        self.next_kb = _FIRST_KB
        self.bundles: list[Bundle] = []
        self.files: list[PayloadFile] = []
        self.latest: dict[tuple[UpdateKind, OperatingSystem], Bundle] = {}

    def build(self, generation: int) -> Catalog:
        rng = random.Random(f"{self.seed}/categories")
        created = datetime.datetime(2016, 1, 1, tzinfo=datetime.UTC)
        categories = [CategoryUpdate(category, 200, self._revision_id(rng), created) for category in CATEGORIES]
        detectoids = [Detectoid(architecture, 200, self._revision_id(rng), created) for architecture in ARCHITECTURES]

        self.next_revision_id = _FIRST_BUNDLE_REVISION_ID
        for month in range(1, self.first_months + 1):
            extra = self.first_month_extra if month == 1 else 0
            self._publish_month(month, self.month_budget + extra, showcase=month == 1)
        for later in range(2, generation + 1):
            newest = self.first_months + later - 1
            published_before = len(self.bundles)
            self._publish_month(newest, self.month_budget, showcase=False)
            self._revise(later, self.bundles[:published_before], patch_tuesday(newest, self.first_month))

        newest = self.first_months + generation - 1
        publication = random.Random(f"{self.seed}/publication/{generation}")
        return Catalog(
            seed=self.seed,
            generation=generation,
            published=patch_tuesday(newest, self.first_month) + datetime.timedelta(hours=2),
            package_id=_uuid(publication),
            source_id=_uuid(random.Random(f"{self.seed}/source")),
            categories=categories,
            detectoids=detectoids,
            bundles=self.bundles,
            files=self.files,
        )

    # Months ------------------------------------------------------------------

    def _publish_month(self, month: int, budget: int, *, showcase: bool) -> None:
        rng = random.Random(f"{self.seed}/month/{month}")
        remaining = budget - _MONTHLY_UPDATES
        for kind in _MONTHLY_KINDS:
            for os in kind.operating_systems:
                severity = None
                if kind.classification is SECURITY_UPDATES:
                    severity = "Critical" if os.product_type == 1 else "Important"
                self._bundle(rng, kind, os, os.architectures, month, severity)
        if showcase:
            for item in _SHOWCASE:
                bundle = self._bundle(rng, item.kind, item.os, item.architectures, month, item.severity, item.language)
                bundle.can_request_user_input = item.can_request_user_input
                remaining -= item.size
            self._unreferenced_file(rng, month)
        # Random bundles hold 2..4 updates, so stopping at 6 leaves 2..5 to
        # close the month exactly with one or two definition updates.
        while remaining >= 6:
            remaining -= self._random_bundle(rng, month)
        closing = (1, 2) if remaining == 5 else (remaining - 1,) if remaining else ()
        for children in closing:
            architectures = _some_architectures(rng, _DEFINITION_ARCHITECTURES[WINDOWS_10], children)
            self._bundle(rng, DEFINITION, WINDOWS_10, architectures, month)

    def _random_bundle(self, rng: random.Random, month: int) -> int:
        kinds, weights = zip(*_FILLER_KINDS, strict=True)
        kind = rng.choices(kinds, weights)[0]
        os = rng.choice(kind.operating_systems)
        if kind is DEFINITION:
            candidates = _DEFINITION_ARCHITECTURES[os]
            architectures = _some_architectures(rng, candidates, rng.randint(1, len(candidates)))
        else:
            architectures = os.architectures
        severity = None
        if kind is SECURITY:
            severity = rng.choice(SEVERITIES)
        elif kind is DOTNET:
            severity = rng.choice(("Important", "Moderate"))
        self._bundle(rng, kind, os, architectures, month, severity)
        return 1 + len(architectures)

    def _revise(self, generation: int, candidates: Sequence[Bundle], when: datetime.datetime) -> None:
        """Publish new revisions of a few earlier bundles, as Microsoft does
        when it corrects an update's metadata."""
        rng = random.Random(f"{self.seed}/revisions/{generation}")
        for bundle in rng.sample(list(candidates), max(1, len(candidates) // 100)):
            bundle.revision_number += 1
            bundle.revision_id = self._revision_id(rng)
            bundle.created = when - datetime.timedelta(minutes=rng.randint(30, 600))
            bundle.revised = True
            for child in bundle.children:
                child.revision_number += 1
                child.revision_id = self._revision_id(rng)

    # Bundles -----------------------------------------------------------------

    def _bundle(
        self,
        rng: random.Random,
        kind: UpdateKind,
        os: OperatingSystem,
        architectures: Sequence[Architecture],
        month: int,
        severity: str | None = None,
        language: str | None = None,
    ) -> Bundle:
        released = patch_tuesday(month, self.first_month)
        if kind not in _MONTHLY_KINDS:
            # Only the monthly updates ship at the Patch Tuesday hour; the
            # others earlier in the same month.
            released -= datetime.timedelta(days=rng.randint(0, released.day - 1), minutes=rng.randint(0, 1079))
        bundle = Bundle(
            update_id=_uuid(rng),
            revision_number=200,
            revision_id=self._revision_id(rng),
            created=released,
            kind=kind,
            os=os,
            month=month_label(month, self.first_month),
            kb=self._kb(rng, kind),
            version=_version(kind, month, len(self.bundles)),
            severity=severity,
            cves=_cves(rng, released.year) if kind.classification is SECURITY_UPDATES else (),
        )
        shared = None
        if kind is DOTNET and len(architectures) > 1:
            # Language-neutral content every architecture needs: one file,
            # one FileLocation, referenced by several children.
            shared = self._file(rng, bundle, f"{os.file_prefix}-kb{bundle.kb}-ndp35-neutral")
        for architecture in architectures:
            stem = kind.stem.format(prefix=os.file_prefix, kb=bundle.kb, arch=architecture.name, version=bundle.version)
            files: tuple[PayloadFile, ...] = (self._file(rng, bundle, stem),)
            if kind is CUMULATIVE or rng.random() < _EXPRESS_SHARE:
                # Cumulative updates, and some others, also carry an express (delta) package.
                files += (self._file(rng, bundle, f"{stem}-express"),)
            if shared is not None:
                files += (shared,)
            bundle.children.append(
                BundledUpdate(
                    update_id=_uuid(rng),
                    revision_number=200,
                    revision_id=self._revision_id(rng),
                    bundle=bundle,
                    architecture=architecture,
                    files=files,
                    rule=_applicability(kind, os, architecture),
                    language=language,
                )
            )
        if kind.supersedes_previous:
            previous = self.latest.get((kind, os))
            if previous is not None:
                bundle.supersedes += (previous,)
                previous.superseded_by.append(bundle)
            self.latest[kind, os] = bundle
        self.bundles.append(bundle)
        return bundle

    def _file(self, rng: random.Random, bundle: Bundle, stem: str) -> PayloadFile:
        # Windows 11 cumulative updates always come from the file streaming
        # service, so every catalog has hashless URLs; other files sometimes.
        hashless = (bundle.kind is CUMULATIVE and bundle.os is WINDOWS_11) or rng.random() < _HASHLESS_SHARE
        return self._payload(
            rng,
            stem=stem,
            extension=bundle.kind.extension,
            folder={SECURITY_UPDATES: "secu", CRITICAL_UPDATES: "crup"}.get(bundle.classification, "updt"),
            month=bundle.month,
            built=bundle.created,
            hashless=hashless,
        )

    def _unreferenced_file(self, rng: random.Random, month: int) -> None:
        """A FileLocation whose update was expired: listed, served, unused."""
        self.next_kb += 1
        stem = f"windows10.0-kb{self.next_kb}-x64-expired"
        self._payload(
            rng,
            stem=stem,
            extension="cab",
            folder="updt",
            month=month_label(month, self.first_month),
            built=patch_tuesday(month, self.first_month),
            hashless=False,
        )

    def _payload(
        self,
        rng: random.Random,
        *,
        stem: str,
        extension: str,
        folder: str,
        month: str,
        built: datetime.datetime,
        hashless: bool,
    ) -> PayloadFile:
        size = rng.randint(*self.payload_size)
        content = payload_bytes(self.seed, stem, size)
        sha1 = hashlib.sha1(content).digest()
        if hashless:
            # The file streaming service's URLs carry neither hash nor name.
            url = f"http://download.windowsupdate.com/d/filestreamingservice/files/{_uuid(rng)}"
            file_name = f"{stem}.{extension}"
        else:
            year, month_number = month.split("-")
            file_name = f"{stem}_{sha1.hex()}.{extension}"
            url = (
                "http://download.windowsupdate.com/c/msdownload/update/software/"
                f"{folder}/{year}/{month_number}/{file_name}"
            )
        payload = PayloadFile(
            stem=stem,
            file_name=file_name,
            url=url,
            size=size,
            sha1=sha1,
            sha256=hashlib.sha256(content).digest(),
            modified=built - datetime.timedelta(days=rng.randint(1, 6), seconds=rng.randint(0, 86399)),
        )
        self.files.append(payload)
        return payload

    # Identifiers -------------------------------------------------------------

    def _revision_id(self, rng: random.Random) -> int:
        self.next_revision_id += rng.randint(1, 9)
        return self.next_revision_id

    def _kb(self, rng: random.Random, kind: UpdateKind) -> int | None:
        if not kind.has_kb:
            return None
        if kind is MALICIOUS_SOFTWARE_REMOVAL:
            return _MSRT_KB
        self.next_kb += rng.randint(1, 3)
        return self.next_kb


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _version(kind: UpdateKind, month: int, sequence: int) -> str | None:
    if kind is DEFINITION:
        return f"1.{402 + month}.{sequence}.0"
    if kind is MALICIOUS_SOFTWARE_REMOVAL:
        return f"5.{119 + month}"
    return None


def _cves(rng: random.Random, year: int) -> tuple[str, ...]:
    return tuple(f"CVE-{year}-{rng.randint(20000, 49999)}" for _ in range(rng.randint(1, 3)))


def _some_architectures(
    rng: random.Random, candidates: tuple[Architecture, ...], count: int
) -> tuple[Architecture, ...]:
    chosen = set(rng.sample(candidates, count))
    return tuple(architecture for architecture in candidates if architecture in chosen)


def _applicability(kind: UpdateKind, os: OperatingSystem, architecture: Architecture) -> Rule:
    """The IsInstallable rule of a child of ``kind`` for ``os`` on ``architecture``."""
    processor = Processor(architecture.processor)
    if kind is DEFINITION and os is WINDOWS_10:
        # Definitions for the Windows 10 product also serve Windows 11.
        releases = Or((WindowsVersion("EqualTo", WINDOWS_10.build, 1), WindowsVersion("EqualTo", WINDOWS_11.build, 1)))
        return And((releases, processor))
    if kind is DEFINITION or kind is MALICIOUS_SOFTWARE_REMOVAL:
        return And((WindowsVersion("GreaterThanOrEqualTo", os.build, os.product_type), processor))
    if kind is SERVICING_STACK and os is WINDOWS_10:
        # One servicing stack serves every Windows 10 release of the 19041 family.
        return And(
            (
                WindowsVersion("GreaterThanOrEqualTo", 19041, 1),
                WindowsVersion("LessThan", 19046, 1),
                processor,
            )
        )
    return And((WindowsVersion("EqualTo", os.build, os.product_type), processor))
