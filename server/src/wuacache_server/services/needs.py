"""Which payload files hosts need, and where the server stands with each.

Files come only from the verified catalog, never from what a host reports: a
reported update is matched to the catalog by UpdateID and RevisionNumber, and
its files are those of the bundled children it reported that the catalog
lists among the members of that revision (plus any the revision owns itself).
For every update a host may install (PENDING, MISSING or ERROR) the report
service records those files in ``host_update_files``: the fetcher downloads
the ones the server lacks (:func:`missing_file_ids`), and the cleanup keeps
every one of them (:func:`needed_file_ids`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from wuacache_server.db.batches import chunks
from wuacache_server.db.models import (
    ACTIVE_DOWNLOAD_STATUSES,
    BundleMember,
    ChildFile,
    DownloadTask,
    HostUpdateFile,
    HostUpdateStatus,
    PayloadFile,
    Update,
)
from wuacache_server.policy import FilesState

Identity = tuple[str, int]
"""An update revision as WUA names it: (UpdateID, RevisionNumber)."""

# The statuses of updates a host may install, whose files it needs.
NEEDING_STATUSES = frozenset({HostUpdateStatus.PENDING, HostUpdateStatus.MISSING, HostUpdateStatus.ERROR})

K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class CatalogFile:
    """A payload file an update needs, and whether the server holds it or is fetching it."""

    id: int
    file_name: str
    download_url: str
    sha1: str
    size: int | None
    stored: bool
    fetching: bool


@dataclass(frozen=True, slots=True)
class CatalogMatch:
    """What the catalog says about one reported update."""

    known: bool
    """Whether the catalog has the update's UpdateID and RevisionNumber."""
    files: tuple[CatalogFile, ...]

    @property
    def files_state(self) -> FilesState:
        """An update the catalog does not know has files the server cannot get: absent."""
        return files_state(self.files) if self.known else FilesState.ABSENT


def files_state(files: Collection[CatalogFile]) -> FilesState:
    """``available`` when every file is stored, ``fetching`` when each missing one
    has a waiting or running download, ``absent`` otherwise; ``none`` without files."""
    if not files:
        return FilesState.NONE
    missing = [file for file in files if not file.stored]
    if not missing:
        return FilesState.AVAILABLE
    if all(file.fetching for file in missing):
        return FilesState.FETCHING
    return FilesState.ABSENT


def match_catalog(session: Session, updates: Mapping[Identity, Iterable[Identity]]) -> dict[Identity, CatalogMatch]:
    """Match reported updates to the catalog, in a few queries whatever their number.

    Args:
        updates: each reported update with the bundled children the host reported for it.

    Returns:
        A match for every update of ``updates``. A reported child the catalog
        does not list among the update's members brings no file.
    """
    wanted = {update_id for update, children in updates.items() for update_id, _ in (update, *children)}
    revision_ids = _revision_ids(session, sorted(wanted))
    members = _members(session, sorted({revision_ids[update] for update in updates if update in revision_ids}))
    owners: dict[Identity, list[int]] = {}
    for update, children in updates.items():
        if update in revision_ids:
            own = revision_ids[update]
            reported = (revision_ids.get(child) for child in children)
            owners[update] = [own, *(child for child in reported if child in members[own])]
    files = _owned_files(session, sorted({revision for revisions in owners.values() for revision in revisions}))

    matches = {}
    for update in updates:
        by_id = {file.id: file for revision in owners.get(update, ()) for file in files[revision]}
        matches[update] = CatalogMatch(known=update in owners, files=tuple(by_id.values()))
    return matches


def _revision_ids(session: Session, update_ids: Sequence[str]) -> dict[Identity, int]:
    """The RevisionId of every revision the catalog has of these updates."""
    revision_ids: dict[Identity, int] = {}
    for chunk in chunks(update_ids):
        query = select(Update.update_id, Update.revision_number, Update.revision_id).where(Update.update_id.in_(chunk))
        revision_ids.update(
            ((update_id, number), revision_id) for update_id, number, revision_id in session.execute(query)
        )
    return revision_ids


def _members(session: Session, bundle_revision_ids: Sequence[int]) -> defaultdict[int, set[int]]:
    """The children of each bundle, by RevisionId."""
    members: defaultdict[int, set[int]] = defaultdict(set)
    for chunk in chunks(bundle_revision_ids):
        query = select(BundleMember.bundle_revision_id, BundleMember.child_revision_id).where(
            BundleMember.bundle_revision_id.in_(chunk)
        )
        for bundle, child in session.execute(query):
            members[bundle].add(child)
    return members


def _owned_files(session: Session, revision_ids: Sequence[int]) -> defaultdict[int, list[CatalogFile]]:
    """The payload files of each revision."""
    files: defaultdict[int, list[CatalogFile]] = defaultdict(list)
    for chunk in chunks(revision_ids):
        query = (
            select(ChildFile.child_revision_id, PayloadFile)
            .join(PayloadFile, PayloadFile.id == ChildFile.payload_file_id)
            .where(ChildFile.child_revision_id.in_(chunk))
        )
        rows = [(revision, file) for revision, file in session.execute(query)]
        for revision, file in _with_state(session, rows):
            files[revision].append(file)
    return files


def files_for_host(session: Session, host_id: int) -> dict[str, tuple[CatalogFile, ...]]:
    """The files the host needs, by UpdateID, for the updates it may install."""
    query = (
        select(HostUpdateFile.update_id, PayloadFile)
        .join(PayloadFile, PayloadFile.id == HostUpdateFile.payload_file_id)
        .where(HostUpdateFile.host_id == host_id)
        .order_by(HostUpdateFile.update_id, PayloadFile.file_name)
    )
    files: defaultdict[str, list[CatalogFile]] = defaultdict(list)
    rows = [(update_id, file) for update_id, file in session.execute(query)]
    for update_id, file in _with_state(session, rows):
        files[update_id].append(file)
    return {update_id: tuple(update_files) for update_id, update_files in files.items()}


def files_state_for(session: Session, host_id: int) -> dict[str, FilesState]:
    """Where the server stands now with the files of each update the host may install, by UpdateID."""
    return {update_id: files_state(files) for update_id, files in files_for_host(session, host_id).items()}


def needed_file_ids(session: Session) -> set[int]:
    """The payload files at least one host needs, stored or not: what the cleanup must keep."""
    return set(session.scalars(select(HostUpdateFile.payload_file_id).distinct()))


def missing_file_ids(session: Session) -> set[int]:
    """The payload files at least one host needs that the server does not hold: what the fetcher gets."""
    query = (
        select(HostUpdateFile.payload_file_id)
        .join(PayloadFile, PayloadFile.id == HostUpdateFile.payload_file_id)
        .where(PayloadFile.stored_at.is_(None))
        .distinct()
    )
    return set(session.scalars(query))


def _with_state(session: Session, rows: Sequence[tuple[K, PayloadFile]]) -> Iterator[tuple[K, CatalogFile]]:
    """Pair each key with its file and the file's state: one more query for the running downloads."""
    fetching: set[int] = set()
    for chunk in chunks(sorted({file.id for _, file in rows if file.stored_at is None})):
        query = select(DownloadTask.payload_file_id).where(
            DownloadTask.payload_file_id.in_(chunk), DownloadTask.status.in_(ACTIVE_DOWNLOAD_STATUSES)
        )
        fetching.update(session.scalars(query))
    for key, file in rows:
        yield (
            key,
            CatalogFile(
                id=file.id,
                file_name=file.file_name,
                download_url=file.url,
                sha1=file.sha1,
                size=file.size,
                stored=file.stored_at is not None,
                fetching=file.id in fetching,
            ),
        )


