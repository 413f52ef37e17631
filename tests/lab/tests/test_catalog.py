"""The synthetic wsusscn2.cab, read back with cabextract and osslsigncode the
way a consumer of Microsoft's catalog would, never through the generator's
own model or manifest."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from lxml import etree

from wuacache_lab.catalog import generate_catalog
from wuacache_lab.pki import LabCA, ensure_lab_ca

NS = {"o": "http://schemas.microsoft.com/msus/2004/02/OfflineSync"}
UPDATES = 80
SEED = 7
# Small enough to spread the fragments over several inner cabs.
FRAGMENTS_PER_CAB = 40
SEVERITIES = {"Critical", "Important", "Moderate", "Low"}


@dataclass
class Extracted:
    """A generated catalog, unpacked with cabextract."""

    out_dir: Path
    work: Path
    index: list[tuple[str, int | None]] = field(default_factory=list)
    package_xml: bytes = b""
    fragment_dirs: dict[str, Path] = field(default_factory=dict)

    @property
    def cab(self) -> Path:
        return self.out_dir / "wsusscn2.cab"

    @property
    def package(self) -> etree._Element:
        return etree.fromstring(self.package_xml)

    def updates(self) -> list[etree._Element]:
        return self.package.findall("o:Updates/o:Update", NS)

    def fragment(self, kind: str, revision_id: int | str) -> etree._Element:
        """Fragment ``c``, ``x`` or ``l/en`` of a revision, wrapped in a root
        (``c`` and ``x`` fragments are rootless sibling lists)."""
        paths = [
            d / kind / str(revision_id) for d in self.fragment_dirs.values() if (d / kind / str(revision_id)).exists()
        ]
        assert len(paths) == 1, f"{kind}\\{revision_id} found in {len(paths)} inner cabs"
        return etree.fromstring(b"<fragment>" + paths[0].read_bytes() + b"</fragment>")


def cabextract(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["cabextract", *map(str, args)], capture_output=True, text=True, check=False)


def osslsigncode_verify(cab: Path, ca_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["osslsigncode", "verify", "-ignore-cdp", "-in", str(cab), "-CAfile", str(ca_file)],
        capture_output=True,
        text=True,
        check=False,
    )


def extract(out_dir: Path, work: Path) -> Extracted:
    extracted = Extracted(out_dir=out_dir, work=work)
    outer = work / "outer"
    result = cabextract("-q", "-d", outer, extracted.cab)
    assert result.returncode == 0, result.stderr
    index = etree.parse(outer / "index.xml").getroot()
    for cab in index.iterfind("CABLIST/CAB"):
        start = cab.get("RANGESTART")
        extracted.index.append((cab.get("NAME"), None if start is None else int(start)))
    for name, start in extracted.index:
        target = work / name.removesuffix(".cab")
        assert cabextract("-q", "-d", target, outer / name).returncode == 0
        if start is None:
            extracted.package_xml = (target / "package.xml").read_bytes()
        else:
            extracted.fragment_dirs[name] = target
    return extracted


def generate(root: Path, *, ca: LabCA | None, **options: int) -> Extracted:
    out_dir = root / "out"
    generate_catalog(out_dir, ca=ca, **{"updates": UPDATES, "seed": SEED, **options})
    return extract(out_dir, root / "extracted")


@pytest.fixture(scope="module")
def lab_ca(tmp_path_factory: pytest.TempPathFactory) -> LabCA:
    return ensure_lab_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory, lab_ca: LabCA) -> Extracted:
    return generate(tmp_path_factory.mktemp("catalog"), ca=lab_ca, fragments_per_cab=FRAGMENTS_PER_CAB)


@pytest.fixture(scope="module")
def next_generation(tmp_path_factory: pytest.TempPathFactory) -> Extracted:
    return generate(tmp_path_factory.mktemp("generation2"), ca=None, generation=2, fragments_per_cab=FRAGMENTS_PER_CAB)


def file_locations(catalog: Extracted) -> dict[str, str]:
    return {loc.get("Id"): loc.get("Url") for loc in catalog.package.iterfind("o:FileLocations/o:FileLocation", NS)}


def served_path(catalog: Extracted, url: str) -> Path:
    parts = urlsplit(url)
    return catalog.out_dir / "files" / parts.hostname / parts.path.lstrip("/")


def sha1_base64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha1(data).digest()).decode()


# --- The outer cab ----------------------------------------------------------------


def test_outer_cab_passes_cabextract_integrity_test(catalog: Extracted) -> None:
    result = cabextract("-t", catalog.cab)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All done, no errors." in result.stdout


def test_outer_cab_holds_index_package_and_fragment_cabs(catalog: Extracted) -> None:
    members = sorted(path.name for path in (catalog.work / "outer").iterdir())
    names = [name for name, _ in catalog.index]
    assert members == sorted(["index.xml", *names])
    assert names[0] == "package.cab"
    assert names[1:] == [f"package{number}.cab" for number in range(2, len(names) + 1)]
    assert len(names) >= 4, "expected several fragment cabs"


def test_index_xml_layout(catalog: Extracted) -> None:
    index = etree.parse(catalog.work / "outer" / "index.xml").getroot()
    assert index.tag == "INDEX" and index.get("VERSION") == "1"
    cab_list = index.find("CABLIST")
    assert cab_list.get("XOR") == "0"
    package, *fragment_cabs = cab_list.findall("CAB")
    assert package.attrib == {"NAME": "package.cab"}
    assert fragment_cabs[0].get("RANGESTART") == "0"
    assert all(cab.get("FILESDIR") == "1" for cab in fragment_cabs)
    starts = [int(cab.get("RANGESTART")) for cab in fragment_cabs]
    assert starts == sorted(starts)


def test_signature_verifies_only_against_the_lab_ca(
    catalog: Extracted, lab_ca: LabCA, tmp_path_factory: pytest.TempPathFactory
) -> None:
    result = osslsigncode_verify(catalog.cab, lab_ca.ca_cert)
    assert result.returncode == 0, result.stdout + result.stderr
    foreign = ensure_lab_ca(tmp_path_factory.mktemp("foreign-ca"), name="foreign")
    assert osslsigncode_verify(catalog.cab, foreign.ca_cert).returncode != 0


def test_corrupted_catalog_fails_verification(catalog: Extracted, lab_ca: LabCA, tmp_path: Path) -> None:
    data = bytearray(catalog.cab.read_bytes())
    data[len(data) // 2] ^= 0x01
    corrupted = tmp_path / "wsusscn2.cab"
    corrupted.write_bytes(bytes(data))
    assert osslsigncode_verify(corrupted, lab_ca.ca_cert).returncode != 0


def test_catalog_is_served_at_microsofts_url(catalog: Extracted) -> None:
    served = served_path(catalog, "http://download.windowsupdate.com/microsoftupdate/v6/wsusscan/wsusscn2.cab")
    assert served.read_bytes() == catalog.cab.read_bytes()
    # Its modification time (the HTTP Last-Modified) is the publication time.
    published = datetime.strptime(catalog.package.get("CreationDate"), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert served.stat().st_mtime == published.timestamp()


# --- package.xml ------------------------------------------------------------------


def test_package_xml_root(catalog: Extracted) -> None:
    root = catalog.package
    assert root.tag == "{http://schemas.microsoft.com/msus/2004/02/OfflineSync}OfflineSyncPackage"
    assert root.get("PackageVersion") == "1.1"
    assert root.get("ProtocolVersion") == "1.0"
    for attribute in ("MinimumClientVersion", "PackageId", "SourceId"):
        assert root.get(attribute)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", root.get("CreationDate"))


def test_update_entries(catalog: Extracted) -> None:
    updates = catalog.updates()
    assert len(updates) == UPDATES
    revision_ids = [int(update.get("RevisionId")) for update in updates]
    assert len(set(revision_ids)) == len(revision_ids)
    for update in updates:
        assert update.get("DefaultLanguage") == "en"
        assert update.get("IsLeaf") == "true"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", update.get("CreationDate"))
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", update.get("UpdateId"))


def test_every_file_location_matches_the_served_payload(catalog: Extracted) -> None:
    locations = file_locations(catalog)
    assert locations
    for digest, url in locations.items():
        content = served_path(catalog, url).read_bytes()
        assert sha1_base64(content) == digest, url
        hex_name = re.search(r"_([0-9a-f]{40})\.(cab|msu|exe)$", url)
        if hex_name:
            assert hex_name.group(1) == hashlib.sha1(content).hexdigest()


def test_url_shapes(catalog: Extracted) -> None:
    urls = list(file_locations(catalog).values())
    classic = re.compile(
        r"http://download\.windowsupdate\.com/c/msdownload/update/software/(secu|updt|crup)/\d{4}/\d\d/"
        r"[a-z0-9.\-]+_[0-9a-f]{40}\.(cab|msu|exe)"
    )
    hashless = re.compile(
        r"http://download\.windowsupdate\.com/d/filestreamingservice/files/[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}"
    )
    assert all(classic.fullmatch(url) or hashless.fullmatch(url) for url in urls)
    streamed = sum(1 for url in urls if hashless.fullmatch(url))
    assert 1 <= streamed < len(urls) / 2


def test_categories_and_detectoids_are_updates(catalog: Extracted) -> None:
    by_id = {update.get("UpdateId"): update for update in catalog.updates()}
    expected = {
        "56309036-4c77-4dd9-951a-99ee9c246a94": ("Company", "Microsoft"),
        "6964aab4-c5b5-43bd-a17d-ffb4346a8e1d": ("ProductFamily", "Windows"),
        "b3c75dc1-155f-4be4-b015-3f1a91758e52": ("Product", "Windows 10, version 1903 and later"),
        "72e7624a-5b00-45d2-b92f-e561c0a6a160": ("Product", "Windows 11"),
        "f702a48c-919b-45d6-9aef-ca4248d50397": ("Product", "Windows Server 2019"),
        "71718f13-7324-4c0f-8f6e-0e4ecc7d1a29": ("Product", "Microsoft Server operating system-21H2"),
        "0fa1201d-4330-4fa8-8ae9-b877473b6441": ("UpdateClassification", "Security Updates"),
        "e0789628-ce08-4437-be74-2495b842f43b": ("UpdateClassification", "Definition Updates"),
    }
    for update_id, (category_type, name) in expected.items():
        update = by_id[update_id]
        assert update.get("IsBundle") is None
        assert update.get("IsSoftware") == "false"
        core = catalog.fragment("c", update.get("RevisionId"))
        assert core.find("Properties").get("UpdateType") == "Category"
        assert core.find("HandlerSpecificData").get("type") == "cat:Category"
        assert core.find("HandlerSpecificData/CategoryInformation").get("CategoryType") == category_type
        assert catalog.fragment("l/en", update.get("RevisionId")).findtext("LocalizedProperties/Title") == name
    for update_id, title in (
        ("59653007-e2e9-4f71-8525-2ff588527978", "x64-based Systems"),
        ("aabd43ad-a183-4f0b-8eee-8dbbcd67687f", "x86-based Systems"),
        ("1a7d0b5e-4f6f-4f56-b3f2-0b5a0f2d1e5c", "ARM64-based Systems"),
    ):
        revision_id = by_id[update_id].get("RevisionId")
        assert catalog.fragment("c", revision_id).find("Properties").get("UpdateType") == "Detectoid"
        assert catalog.fragment("l/en", revision_id).findtext("LocalizedProperties/Title") == title


def test_bundles_and_their_children(catalog: Extracted) -> None:
    updates = catalog.updates()
    bundles = [update for update in updates if update.get("IsBundle") == "true"]
    children_of: dict[str, list[etree._Element]] = {}
    for update in updates:
        if update.get("DeploymentAction") == "Bundle":
            parent = update.find("o:BundledBy/o:Revision", NS).get("Id")
            children_of.setdefault(parent, []).append(update)
    assert set(children_of) == {bundle.get("RevisionId") for bundle in bundles}

    locations = file_locations(catalog)
    update_ids = {update.get("UpdateId") for update in updates}
    child_counts = Counter()
    for bundle in bundles:
        categories = {c.get("Type"): c.get("Id") for c in bundle.iterfind("o:Categories/o:Category", NS)}
        assert set(categories) == {"Company", "ProductFamily", "Product", "UpdateClassification"}
        assert set(categories.values()) <= update_ids
        assert bundle.find("o:PayloadFiles", NS) is None
        children = children_of[bundle.get("RevisionId")]
        child_counts[len(children)] += 1
        listed = [
            identity.get("UpdateID")
            for identity in catalog.fragment("c", bundle.get("RevisionId")).iterfind(
                "Relationships/BundledUpdates/UpdateIdentity"
            )
        ]
        assert sorted(listed) == sorted(child.get("UpdateId") for child in children)
        for child in children:
            assert child.find("o:Categories", NS) is None
            detectoid = child.find("o:Prerequisites/o:UpdateId", NS).get("Id")
            assert detectoid in {
                "59653007-e2e9-4f71-8525-2ff588527978",
                "aabd43ad-a183-4f0b-8eee-8dbbcd67687f",
                "1a7d0b5e-4f6f-4f56-b3f2-0b5a0f2d1e5c",
            }
            payload = [file.get("Id") for file in child.iterfind("o:PayloadFiles/o:File", NS)]
            assert payload and all(digest in locations for digest in payload)
            rules = catalog.fragment("c", child.get("RevisionId")).find("ApplicabilityRules/IsInstallable")
            assert rules is not None and rules.find(".//WindowsVersion") is not None
            assert rules.find(".//Processor") is not None
    assert set(child_counts) == {1, 2, 3}


def test_extended_fragments_describe_the_served_files(catalog: Extracted) -> None:
    locations = file_locations(catalog)
    children = [update for update in catalog.updates() if update.get("DeploymentAction") == "Bundle"]
    for child in children:
        extended = catalog.fragment("x", child.get("RevisionId"))
        files = extended.findall("Files/File")
        assert [f.get("Digest") for f in files] == [f.get("Id") for f in child.iterfind("o:PayloadFiles/o:File", NS)]
        for file in files:
            content = served_path(catalog, locations[file.get("Digest")]).read_bytes()
            assert file.get("DigestAlgorithm") == "SHA1"
            assert file.get("Digest") == sha1_base64(content)
            sha256 = file.find("AdditionalDigest[@Algorithm='SHA256']").text
            assert sha256 == base64.b64encode(hashlib.sha256(content).digest()).decode()
            assert int(file.get("Size")) == len(content)
            assert file.get("FileName")


def test_bundle_extended_properties(catalog: Extracted) -> None:
    bundles = [update for update in catalog.updates() if update.get("IsBundle") == "true"]
    severities = Counter()
    without_kb = 0
    for bundle in bundles:
        extended = catalog.fragment("x", bundle.get("RevisionId"))
        properties = extended.find("ExtendedProperties")
        severities[properties.get("MsrcSeverity")] += 1
        assert properties.get("DefaultPropertiesLanguage") == "en"
        assert int(properties.get("MaxDownloadSize")) >= int(properties.get("MinDownloadSize")) > 0
        behavior = properties.find("InstallationBehavior")
        assert behavior.get("RebootBehavior") in {"AlwaysRequiresReboot", "CanRequestReboot", "NeverReboots"}
        kb = extended.findtext("KBArticleID")
        title = catalog.fragment("l/en", bundle.get("RevisionId")).findtext("LocalizedProperties/Title")
        if kb is None:
            without_kb += 1
            assert "(KB" not in title
        else:
            assert kb.isdigit() and f"(KB{kb})" in title
        security = {c.get("Id") for c in bundle.iterfind("o:Categories/o:Category", NS)}
        if "0fa1201d-4330-4fa8-8ae9-b877473b6441" in security:
            assert properties.get("MsrcSeverity") in SEVERITIES
            assert extended.findall("CveID")
        else:
            assert properties.get("MsrcSeverity") is None
    assert set(severities) == SEVERITIES | {None}
    assert without_kb >= 1


def test_fragments_sit_in_the_cab_index_xml_designates(catalog: Extracted) -> None:
    ranges = [(start, name) for name, start in catalog.index if start is not None]
    positions = Counter()
    for update in catalog.updates():
        revision_id = int(update.get("RevisionId"))
        expected = max((start, name) for start, name in ranges if start <= revision_id)[1]
        holders = [name for name, d in catalog.fragment_dirs.items() if (d / "c" / str(revision_id)).exists()]
        assert holders == [expected], revision_id
        assert (catalog.fragment_dirs[expected] / "l" / "en" / str(revision_id)).exists()
        if update.get("IsBundle") == "true" or update.get("DeploymentAction") == "Bundle":
            assert (catalog.fragment_dirs[expected] / "x" / str(revision_id)).exists()
        starts = {start for start, _ in ranges}
        positions["at" if revision_id in starts else "inside"] += 1
    # Revisions exactly at a RANGESTART, and above one (the rest); the last
    # revision of every cab but the last sits just below the next start.
    assert positions["at"] >= 2 and positions["inside"] > positions["at"]


def test_supersedence(catalog: Extracted) -> None:
    updates = catalog.updates()
    by_revision = {update.get("RevisionId"): update for update in updates}
    superseded = [update for update in updates if update.find("o:SupersededBy", NS) is not None]
    assert superseded
    for older in superseded:
        for revision in older.iterfind("o:SupersededBy/o:Revision", NS):
            newer = by_revision[revision.get("Id")]
            assert newer.get("IsBundle") == "true"
            listed = {
                identity.get("UpdateID")
                for identity in catalog.fragment("c", newer.get("RevisionId")).iterfind(
                    "Relationships/SupersededUpdates/UpdateIdentity"
                )
            }
            assert older.get("UpdateId") in listed


def test_cumulative_updates_supersede_the_previous_month(catalog: Extracted) -> None:
    bundles = [update for update in catalog.updates() if update.get("IsBundle") == "true"]
    titles = {
        bundle.get("RevisionId"): catalog.fragment("l/en", bundle.get("RevisionId")).findtext(
            "LocalizedProperties/Title"
        )
        for bundle in bundles
    }
    superseded_by = {
        revision.get("Id"): bundle.get("RevisionId")
        for bundle in bundles
        for revision in bundle.iterfind("o:SupersededBy/o:Revision", NS)
    }
    february = [rid for rid, title in titles.items() if re.match(r"2024-02 Cumulative Update for (?!\.NET)", title)]
    assert len(february) == 4, "one cumulative update per operating system"
    for revision_id in february:
        without_kb = re.sub(r" \(KB\d+\)$", "", titles[revision_id])
        older_title = titles[superseded_by[revision_id]]
        assert re.sub(r" \(KB\d+\)$", "", older_title) == without_kb.replace("2024-02", "2024-01", 1)


def test_special_cases_exist(catalog: Extracted) -> None:
    updates = catalog.updates()
    languages = [update for update in updates if update.find("o:Languages/o:Language[@Name='fr']", NS) is not None]
    assert len(languages) == 1 and languages[0].get("DeploymentAction") == "Bundle"

    locations = file_locations(catalog)
    referenced = Counter(file.get("Id") for update in updates for file in update.iterfind("o:PayloadFiles/o:File", NS))
    assert [digest for digest in locations if digest not in referenced], "expected an unreferenced FileLocation"
    shared = [digest for digest, count in referenced.items() if count > 1]
    assert shared
    owners = {
        update.find("o:BundledBy/o:Revision", NS).get("Id")
        for update in updates
        if update.find(f"o:PayloadFiles/o:File[@Id='{shared[0]}']", NS) is not None
    }
    assert len(owners) == 1, "a shared file belongs to two children of one bundle"


# --- Determinism and generations ----------------------------------------------------


def test_same_seed_gives_the_same_catalog(tmp_path: Path) -> None:
    first = generate(tmp_path / "first", ca=None)
    second = generate(tmp_path / "second", ca=None)
    other = generate(tmp_path / "other", ca=None, seed=SEED + 1)
    assert first.package_xml == second.package_xml
    assert first.cab.read_bytes() == second.cab.read_bytes()
    assert other.package_xml != first.package_xml


def test_unsigned_catalog_fails_verification(tmp_path: Path, lab_ca: LabCA) -> None:
    unsigned = generate(tmp_path, ca=None)
    assert osslsigncode_verify(unsigned.cab, lab_ca.ca_cert).returncode != 0


def test_next_generation_adds_and_revises_updates(catalog: Extracted, next_generation: Extracted) -> None:
    before = {update.get("UpdateId"): update for update in catalog.updates()}
    after = {update.get("UpdateId"): update for update in next_generation.updates()}
    assert len(after) > len(before)
    assert set(before) <= set(after)
    revised = [
        update_id
        for update_id, update in before.items()
        if int(after[update_id].get("RevisionNumber")) > int(update.get("RevisionNumber"))
    ]
    assert revised
    for update_id in revised:
        assert int(after[update_id].get("RevisionId")) > max(int(u.get("RevisionId")) for u in before.values())
    newly_superseded = [
        update_id
        for update_id, update in before.items()
        if update.find("o:SupersededBy", NS) is None and after[update_id].find("o:SupersededBy", NS) is not None
    ]
    assert newly_superseded
    assert next_generation.package.get("CreationDate") > catalog.package.get("CreationDate")


def test_command_line(tmp_path: Path) -> None:
    options = {"--out": tmp_path / "out", "--updates": 70, "--seed": 3, "--ca-dir": tmp_path / "ca"}
    result = subprocess.run(
        [sys.executable, "-m", "wuacache_lab.catalog", *(str(item) for pair in options.items() for item in pair)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["updates"] == 70
    assert osslsigncode_verify(tmp_path / "out" / "wsusscn2.cab", tmp_path / "ca" / "ca.pem").returncode == 0
    extracted = extract(tmp_path / "out", tmp_path / "extracted")
    assert len(extracted.updates()) == 70
