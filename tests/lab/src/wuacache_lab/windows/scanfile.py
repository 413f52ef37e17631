"""Reading an offline scan file (wsusscn2.cab) the way WUA does.

WUA trusts a scan file only when its Authenticode signature chains to a
trusted root (``osslsigncode verify`` against the lab's CA stands in for
WinVerifyTrust). It then reads ``package.xml`` for the whole catalog and, for
the updates it evaluates, only the fragment cabs that hold their ``c\\``,
``x\\`` and ``l\\en\\`` fragments. Parsed catalogs are cached by content
(SHA-256), so every host of a lab scanning the same cab shares one parse.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import tempfile
import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from wuacache_lab.windows.applicability import Rule
from wuacache_lab.windows.errors import WU_E_OL_INVALID_SCANFILE, COMError

log = logging.getLogger(__name__)

OFFLINE_SYNC_NS = "{http://schemas.microsoft.com/msus/2004/02/OfflineSync}"
PROPERTIES_LANGUAGE = "en"
_CACHED_PACKAGES = 4


def invalid_scan_file(reason: str) -> COMError:
    return COMError(WU_E_OL_INVALID_SCANFILE, f"The scan package is not valid: {reason}")


@dataclass(frozen=True)
class CatalogEntry:
    """One ``Update`` element of package.xml."""

    revision_id: int
    update_id: str
    revision_number: int
    creation_date: str
    is_bundle: bool
    categories: tuple[tuple[str, str], ...]  # (Type, Id) in document order
    prerequisites: tuple[tuple[str, ...], ...]  # each group is met by any of its members
    bundled_by: tuple[int, ...]
    superseded_by: tuple[int, ...]
    languages: tuple[str, ...]
    payload_digests: tuple[str, ...]  # base64 SHA-1
    has_eula: bool


@dataclass(frozen=True)
class UpdateDetails:
    """What the c, x and l fragments of one revision say."""

    update_type: str
    bundled_updates: tuple[tuple[str, int], ...]  # (UpdateID, RevisionNumber), in order
    superseded_update_ids: tuple[str, ...]
    installable: Rule | None
    msrc_severity: str
    kb_article_ids: tuple[str, ...]
    security_bulletin_ids: tuple[str, ...]
    cve_ids: tuple[str, ...]
    support_url: str
    min_download_size: int
    max_download_size: int
    reboot_behavior: str
    can_request_user_input: bool
    title: str
    description: str
    more_info_url: str


class ScanPackage:
    """A parsed scan file: the whole package.xml, fragments on demand."""

    def __init__(self, cab: Path) -> None:
        self._workdir = tempfile.TemporaryDirectory(prefix="wsusscn2-")
        self._root = Path(self._workdir.name)
        self._lock = threading.Lock()
        self._extracted: set[str] = set()
        self._details: dict[int, UpdateDetails] = {}
        self.entries: dict[int, CatalogEntry] = {}  # by RevisionId, in document order
        self.file_urls: dict[str, str] = {}  # FileLocation Id (digest) -> Url
        try:
            _extract(cab, self._root / "outer")
            self._ranges = _read_index(self._root / "outer" / "index.xml")
            _extract(self._root / "outer" / "package.cab", self._root / "package")
            self._read_package(self._root / "package" / "package.xml")
        except BaseException:
            self.close()
            raise
        self.latest: dict[str, CatalogEntry] = {}  # by UpdateID
        self._children: dict[int, list[CatalogEntry]] = {}
        for entry in self.entries.values():
            known = self.latest.get(entry.update_id)
            if known is None or known.revision_number < entry.revision_number:
                self.latest[entry.update_id] = entry
            for parent in entry.bundled_by:
                self._children.setdefault(parent, []).append(entry)

    def close(self) -> None:
        self._workdir.cleanup()

    def children(self, bundle: CatalogEntry) -> list[CatalogEntry]:
        return self._children.get(bundle.revision_id, [])

    def details(self, revision_ids: Iterable[int]) -> dict[int, UpdateDetails]:
        """The fragments of these revisions, extracting only the fragment
        cabs (largest RANGESTART <= RevisionId) that hold them."""
        wanted = list(dict.fromkeys(revision_ids))
        with self._lock:
            for revision_id in wanted:
                if revision_id not in self._details:
                    self._details[revision_id] = self._read_details(revision_id)
            return {revision_id: self._details[revision_id] for revision_id in wanted}

    def _read_package(self, path: Path) -> None:
        try:
            for _, element in etree.iterparse(
                str(path), events=("end",), tag=(f"{OFFLINE_SYNC_NS}Update", f"{OFFLINE_SYNC_NS}FileLocation")
            ):
                if element.tag == f"{OFFLINE_SYNC_NS}Update":
                    entry = _catalog_entry(element)
                    self.entries[entry.revision_id] = entry
                else:
                    self.file_urls[_attribute(element, "Id")] = _attribute(element, "Url")
                element.clear(keep_tail=False)
                while element.getprevious() is not None:
                    del element.getparent()[0]
        except (etree.XMLSyntaxError, OSError, TypeError, ValueError) as error:
            raise invalid_scan_file(f"package.xml: {error}") from error

    def _read_details(self, revision_id: int) -> UpdateDetails:
        index = bisect_right([start for start, _ in self._ranges], revision_id) - 1
        if index < 0:
            raise invalid_scan_file(f"no fragment cab holds revision {revision_id}")
        cab_name = self._ranges[index][1]
        folder = self._root / "fragments" / cab_name
        if cab_name not in self._extracted:
            _extract(self._root / "outer" / cab_name, folder)
            self._extracted.add(cab_name)
        try:
            core = _read_fragment(folder / "c" / str(revision_id))
            extended = _read_optional_fragment(folder / "x" / str(revision_id))
            localized = _read_optional_fragment(folder / "l" / PROPERTIES_LANGUAGE / str(revision_id))
            return _update_details(core, extended, localized)
        except (etree.XMLSyntaxError, OSError, ValueError) as error:
            raise invalid_scan_file(f"fragments of revision {revision_id}: {error}") from error


class ScanPackageCache:
    """Parsed scan files by SHA-256, and which were verified against which CA."""

    def __init__(self, size: int = _CACHED_PACKAGES) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._packages: OrderedDict[str, ScanPackage] = OrderedDict()
        self._trusted: set[tuple[str, str]] = set()

    def verify(self, cab: Path, trusted_ca: Path) -> None:
        """Check the cab's signature (WU_E_OL_INVALID_SCANFILE if it fails)."""
        key = (_sha256(cab), str(trusted_ca))
        with self._lock:
            if key in self._trusted:
                return
        completed = subprocess.run(
            ["osslsigncode", "verify", "-in", str(cab), "-CAfile", str(trusted_ca), "-ignore-cdp"],
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            log.info(
                "scan file %s failed signature verification: %s",
                cab,
                completed.stderr.strip() or completed.stdout.strip(),
            )
            raise invalid_scan_file("its signature does not verify against a trusted root")
        with self._lock:
            self._trusted.add(key)

    def open(self, cab: Path) -> ScanPackage:
        digest = _sha256(cab)
        with self._lock:
            package = self._packages.get(digest)
            if package is not None:
                self._packages.move_to_end(digest)
                return package
            package = ScanPackage(cab)
            self._packages[digest] = package
            while len(self._packages) > self._size:
                # Not closed here: a scan may still hold it; its folder goes
                # when the last reference does.
                self._packages.popitem(last=False)
            return package


# One cache for the whole process: the hosts of a lab scan the same cab.
scan_packages = ScanPackageCache()


def _sha256(path: Path) -> str:
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _extract(cab: Path, destination: Path) -> None:
    """Extract a cab; member names use backslashes, which cabextract turns
    into folders (``c\\123`` becomes ``c/123``)."""
    if not cab.is_file():
        raise invalid_scan_file(f"{cab.name} is missing")
    destination.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(
        ["cabextract", "-q", "-d", str(destination), str(cab)], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise invalid_scan_file(f"{cab.name} cannot be extracted: {completed.stderr.strip()}")


def _read_index(path: Path) -> list[tuple[int, str]]:
    """The fragment cabs of index.xml as sorted (RANGESTART, NAME)."""
    try:
        root = etree.parse(str(path)).getroot()
    except (etree.XMLSyntaxError, OSError) as error:
        raise invalid_scan_file(f"index.xml: {error}") from error
    ranges = sorted(
        (int(_attribute(cab, "RANGESTART")), _attribute(cab, "NAME"))
        for cab in root.iter("CAB")
        if cab.get("RANGESTART") is not None
    )
    if not ranges:
        raise invalid_scan_file("index.xml lists no fragment cab")
    return ranges


def _attribute(element: etree._Element, name: str) -> str:
    value = element.get(name)
    if value is None:
        raise invalid_scan_file(f"a {etree.QName(element).localname} element has no {name}")
    return value


def _catalog_entry(element: etree._Element) -> CatalogEntry:
    ns = OFFLINE_SYNC_NS

    def ids(path: str, attribute: str = "Id") -> list[str]:
        return [_attribute(child, attribute) for child in element.iterfind(path)]

    prerequisites: list[tuple[str, ...]] = []
    for group in element.iterfind(f"{ns}Prerequisites/*"):
        if group.tag == f"{ns}UpdateId":
            prerequisites.append((_attribute(group, "Id").lower(),))
        else:  # Or
            prerequisites.append(tuple(_attribute(member, "Id").lower() for member in group.iterfind(f"{ns}UpdateId")))
    return CatalogEntry(
        revision_id=int(_attribute(element, "RevisionId")),
        update_id=_attribute(element, "UpdateId").lower(),
        revision_number=int(_attribute(element, "RevisionNumber")),
        creation_date=_attribute(element, "CreationDate"),
        is_bundle=element.get("IsBundle") == "true",
        categories=tuple(
            (_attribute(category, "Type"), _attribute(category, "Id").lower())
            for category in element.iterfind(f"{ns}Categories/{ns}Category")
        ),
        prerequisites=tuple(prerequisites),
        bundled_by=tuple(int(value) for value in ids(f"{ns}BundledBy/{ns}Revision")),
        superseded_by=tuple(int(value) for value in ids(f"{ns}SupersededBy/{ns}Revision")),
        languages=tuple(ids(f"{ns}Languages/{ns}Language", "Name")),
        payload_digests=tuple(ids(f"{ns}PayloadFiles/{ns}File")),
        has_eula=element.find(f"{ns}EulaFiles") is not None,
    )


def _read_fragment(path: Path) -> etree._Element:
    """Fragments are rootless lists of elements: wrap them before parsing."""
    if not path.is_file():
        raise invalid_scan_file(f"fragment {path.parent.name}\\{path.name} is missing")
    return etree.fromstring(b"<fragment>" + path.read_bytes() + b"</fragment>")


def _read_optional_fragment(path: Path) -> etree._Element | None:
    return _read_fragment(path) if path.is_file() else None


def _identities(parent: etree._Element | None, path: str) -> list[tuple[str, int]]:
    if parent is None:
        return []
    return [
        (_attribute(identity, "UpdateID").lower(), int(identity.get("RevisionNumber", "0")))
        for identity in parent.iterfind(path)
    ]


def _update_details(
    core: etree._Element, extended: etree._Element | None, localized: etree._Element | None
) -> UpdateDetails:
    properties = core.find("Properties")
    installable = core.find("ApplicabilityRules/IsInstallable")
    rule_elements = [child for child in installable if isinstance(child.tag, str)] if installable is not None else []
    extended_properties = extended.find("ExtendedProperties") if extended is not None else None
    behavior = extended_properties.find("InstallationBehavior") if extended_properties is not None else None

    def texts(parent: etree._Element | None, tag: str) -> tuple[str, ...]:
        if parent is None:
            return ()
        return tuple(child.text.strip() for child in parent.iter(tag) if child.text)

    def text(parent: etree._Element | None, tag: str) -> str:
        return next(iter(texts(parent, tag)), "")

    def extended_attribute(name: str, default: str = "") -> str:
        return extended_properties.get(name, default) if extended_properties is not None else default

    return UpdateDetails(
        update_type=properties.get("UpdateType", "Software") if properties is not None else "Software",
        bundled_updates=tuple(_identities(core, "Relationships/BundledUpdates/UpdateIdentity")),
        superseded_update_ids=tuple(
            update_id for update_id, _ in _identities(core, "Relationships/SupersededUpdates/UpdateIdentity")
        ),
        installable=Rule.from_element(rule_elements[0]) if rule_elements else None,
        msrc_severity=extended_attribute("MsrcSeverity"),
        kb_article_ids=texts(extended, "KBArticleID"),
        security_bulletin_ids=texts(extended, "SecurityBulletinID"),
        cve_ids=texts(extended, "CveID"),
        support_url=text(extended, "SupportUrl"),
        min_download_size=int(extended_attribute("MinDownloadSize", "0")),
        max_download_size=int(extended_attribute("MaxDownloadSize", "0")),
        reboot_behavior=behavior.get("RebootBehavior", "NeverReboots") if behavior is not None else "NeverReboots",
        can_request_user_input=behavior is not None and behavior.get("CanRequestUserInput") == "true",
        title=text(localized, "Title"),
        description=text(localized, "Description"),
        more_info_url=text(localized, "MoreInfoUrl"),
    )
