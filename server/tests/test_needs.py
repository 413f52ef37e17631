"""Which files hosts need: matching reported updates to the catalog, and the needs' queries."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session

from wuacache_server.db import batches
from wuacache_server.db.models import (
    BundleMember,
    CatalogVersion,
    ChildFile,
    DownloadTask,
    DownloadTaskStatus,
    Host,
    HostUpdate,
    HostUpdateFile,
    HostUpdateStatus,
    PayloadFile,
    Update,
    UpdateKind,
)
from wuacache_server.policy import FilesState
from wuacache_server.services.needs import (
    CatalogFile,
    files_state,
    files_state_for,
    match_catalog,
    missing_file_ids,
    needed_file_ids,
)

PUBLISHED = datetime(2024, 1, 9, 18, tzinfo=UTC)
BUNDLE = ("11111111-1111-1111-1111-111111111111", 200)
X64 = ("11111111-1111-1111-1111-1111111111a1", 200)
ARM64 = ("11111111-1111-1111-1111-1111111111a2", 200)
OTHER = ("22222222-2222-2222-2222-222222222222", 200)
OTHER_CHILD = ("22222222-2222-2222-2222-2222222222a1", 200)
LEAF = ("33333333-3333-3333-3333-333333333333", 1)
UNKNOWN = ("44444444-4444-4444-4444-444444444444", 1)


@dataclass
class Catalog:
    files: dict[str, PayloadFile]


def _digest(name: str) -> str:
    return base64.b64encode(hashlib.sha1(name.encode()).digest()).decode()


@pytest.fixture
def catalog(session: Session) -> Catalog:
    """Two bundles: one with an x64 and an arm64 child sharing a file, one with
    a single child; and a leaf that owns its file itself."""
    version = CatalogVersion(sha256="0" * 64, package_id=BUNDLE[0], package_version="1.1", creation_date=PUBLISHED)
    session.add(version)
    session.flush()
    revisions = {}
    for revision_id, (identity, kind) in enumerate(
        [
            (BUNDLE, "bundle"),
            (X64, "child"),
            (ARM64, "child"),
            (OTHER, "bundle"),
            (OTHER_CHILD, "child"),
            (LEAF, "other"),
        ],
        start=1000,
    ):
        revisions[identity] = revision_id
        session.add(
            Update(
                update_id=identity[0],
                revision_number=identity[1],
                revision_id=revision_id,
                kind=UpdateKind(kind),
                creation_date=PUBLISHED,
                catalog_version_id=version.id,
            )
        )
    files = {
        name: PayloadFile(
            sha1=_digest(name),
            url=f"http://download.windowsupdate.com/c/msdownload/update/software/secu/2024/01/{name}",
            file_name=name,
            size=len(name),
        )
        for name in ("x64.cab", "shared.cab", "arm64.cab", "other.cab", "leaf.exe")
    }
    session.add_all(files.values())
    session.flush()
    session.add_all(
        [
            BundleMember(bundle_revision_id=revisions[BUNDLE], child_revision_id=revisions[X64], position=0),
            BundleMember(bundle_revision_id=revisions[BUNDLE], child_revision_id=revisions[ARM64], position=1),
            BundleMember(bundle_revision_id=revisions[OTHER], child_revision_id=revisions[OTHER_CHILD], position=0),
        ]
    )
    for owner, names in [
        (X64, ["x64.cab", "shared.cab"]),
        (ARM64, ["arm64.cab", "shared.cab"]),
        (OTHER_CHILD, ["other.cab"]),
        (LEAF, ["leaf.exe"]),
    ]:
        session.add_all(ChildFile(child_revision_id=revisions[owner], payload_file_id=files[name].id) for name in names)
    session.commit()
    return Catalog(files=files)


def names(files: tuple[CatalogFile, ...]) -> list[str]:
    return sorted(file.file_name for file in files)


def test_an_update_needs_the_files_of_the_children_the_host_reported(session: Session, catalog: Catalog) -> None:
    matches = match_catalog(session, {BUNDLE: [X64], OTHER: [OTHER_CHILD], LEAF: []})

    assert names(matches[BUNDLE].files) == ["shared.cab", "x64.cab"]
    assert names(matches[OTHER].files) == ["other.cab"]
    assert names(matches[LEAF].files) == ["leaf.exe"]  # a revision owning files itself
    file = next(file for file in matches[BUNDLE].files if file.file_name == "x64.cab")
    assert (file.id, file.sha1, file.download_url, file.size) == (
        catalog.files["x64.cab"].id,
        _digest("x64.cab"),
        catalog.files["x64.cab"].url,
        7,
    )
    assert all(match.known for match in matches.values())


def test_a_file_shared_by_two_children_is_needed_once(session: Session, catalog: Catalog) -> None:
    match = match_catalog(session, {BUNDLE: [X64, ARM64]})[BUNDLE]

    assert names(match.files) == ["arm64.cab", "shared.cab", "x64.cab"]


@pytest.mark.parametrize(
    "children",
    [[OTHER_CHILD], [(X64[0], X64[1] + 1)], [UNKNOWN], [OTHER]],
    ids=["child-of-another-bundle", "other-revision", "unknown-child", "a-bundle-as-child"],
)
def test_children_the_catalog_does_not_bundle_with_the_update_bring_nothing(
    session: Session, catalog: Catalog, children: list[tuple[str, int]]
) -> None:
    match = match_catalog(session, {BUNDLE: children})[BUNDLE]

    assert match.known
    assert match.files == ()
    assert match.files_state is FilesState.NONE


def test_an_update_the_catalog_does_not_know_has_absent_files(session: Session, catalog: Catalog) -> None:
    matches = match_catalog(session, {UNKNOWN: [X64], (BUNDLE[0], BUNDLE[1] + 1): [X64]})

    for match in matches.values():
        assert not match.known
        assert match.files == ()
        assert match.files_state is FilesState.ABSENT


def test_matching_works_in_chunks(session: Session, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    reported = {BUNDLE: [X64, ARM64], OTHER: [OTHER_CHILD], LEAF: [], UNKNOWN: []}
    whole = match_catalog(session, reported)

    monkeypatch.setattr(batches, "PARAMETERS_PER_STATEMENT", 1)

    assert match_catalog(session, reported) == whole


def _file(*, stored: bool, fetching: bool = False) -> CatalogFile:
    return CatalogFile(
        id=1, file_name="a.cab", download_url="http://x/a.cab", sha1="", size=1, stored=stored, fetching=fetching
    )


@pytest.mark.parametrize(
    ("files", "state"),
    [
        ([], FilesState.NONE),
        ([_file(stored=True), _file(stored=True)], FilesState.AVAILABLE),
        ([_file(stored=True), _file(stored=False, fetching=True)], FilesState.FETCHING),
        ([_file(stored=False, fetching=True), _file(stored=False)], FilesState.ABSENT),
        ([_file(stored=True), _file(stored=False)], FilesState.ABSENT),
    ],
    ids=["none", "available", "fetching", "partly-fetching", "absent"],
)
def test_files_state(files: list[CatalogFile], state: FilesState) -> None:
    assert files_state(files) is state


@pytest.mark.parametrize(
    ("task", "fetching"),
    [
        (DownloadTaskStatus.WAITING, True),
        (DownloadTaskStatus.RUNNING, True),
        (DownloadTaskStatus.FAILED, False),
        (DownloadTaskStatus.COMPLETED, False),
        (None, False),
    ],
)
def test_only_waiting_and_running_downloads_count_as_fetching(
    session: Session, catalog: Catalog, task: DownloadTaskStatus | None, fetching: bool
) -> None:
    if task is not None:
        session.add(DownloadTask(payload_file_id=catalog.files["other.cab"].id, status=task))
        session.commit()

    (file,) = match_catalog(session, {OTHER: [OTHER_CHILD]})[OTHER].files

    assert (file.stored, file.fetching) == (False, fetching)


def _needs(session: Session, host: str, update_id: str, *file_names: str, catalog: Catalog) -> Host:
    record = Host(name=host)
    session.add(record)
    session.flush()
    session.add(HostUpdate(host_id=record.id, update_id=update_id, revision_number=1, status=HostUpdateStatus.MISSING))
    session.flush()
    session.add_all(
        HostUpdateFile(host_id=record.id, update_id=update_id, payload_file_id=catalog.files[name].id)
        for name in file_names
    )
    session.commit()
    return record


def test_needed_and_missing_files_are_those_of_any_host(session: Session, catalog: Catalog) -> None:
    _needs(session, "win10-01", BUNDLE[0], "x64.cab", "shared.cab", catalog=catalog)
    _needs(session, "win10-02", BUNDLE[0], "shared.cab", "arm64.cab", catalog=catalog)
    catalog.files["shared.cab"].stored_at = PUBLISHED
    session.commit()

    ids = {name: file.id for name, file in catalog.files.items()}
    assert needed_file_ids(session) == {ids["x64.cab"], ids["shared.cab"], ids["arm64.cab"]}
    assert missing_file_ids(session) == {ids["x64.cab"], ids["arm64.cab"]}


def test_files_state_for_a_host_is_per_update(session: Session, catalog: Catalog) -> None:
    host = _needs(session, "win10-01", BUNDLE[0], "x64.cab", "shared.cab", catalog=catalog)
    session.add(HostUpdate(host_id=host.id, update_id=OTHER[0], revision_number=1, status=HostUpdateStatus.PENDING))
    session.flush()
    session.add(HostUpdateFile(host_id=host.id, update_id=OTHER[0], payload_file_id=catalog.files["other.cab"].id))
    catalog.files["x64.cab"].stored_at = PUBLISHED
    catalog.files["other.cab"].stored_at = PUBLISHED
    session.add(DownloadTask(payload_file_id=catalog.files["shared.cab"].id))
    session.commit()

    assert files_state_for(session, host.id) == {BUNDLE[0]: FilesState.FETCHING, OTHER[0]: FilesState.AVAILABLE}


def test_a_host_s_needs_go_with_its_decisions(session: Session, catalog: Catalog) -> None:
    host = _needs(session, "win10-01", BUNDLE[0], "x64.cab", catalog=catalog)

    session.execute(delete(HostUpdate).where(HostUpdate.host_id == host.id))
    session.commit()

    assert needed_file_ids(session) == set()
