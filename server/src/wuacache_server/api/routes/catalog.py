"""``/api/v1/catalog``: the imported catalog, the cab sync runs, and forced syncs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wuacache_server.api.deps import SessionDep, SettingsDep, TokenDep, require_role
from wuacache_server.api.schemas import MAX_OFFSET, IdInPath
from wuacache_server.catalog.importer import current_catalog_version
from wuacache_server.db.models import (
    CabSyncReason,
    CabSyncRun,
    CabSyncStatus,
    Category,
    PayloadFile,
    TokenRole,
    Update,
    UpdateKind,
)
from wuacache_server.security import actor
from wuacache_server.services import audit
from wuacache_server.services.cab import CabSyncBusy, start_cab_sync

router = APIRouter(
    prefix="/catalog",
    tags=["catalog"],
    responses={
        status.HTTP_401_UNAUTHORIZED: {"description": "No valid token."},
        status.HTTP_403_FORBIDDEN: {"description": "The token's role may not do this."},
    },
)


class CatalogVersionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    sha256: str = Field(description="Hex SHA-256 of the wsusscn2.cab the catalog was imported from.")
    package_id: str
    package_version: str
    creation_date: datetime = Field(description="When Microsoft built the catalog.")
    imported_at: datetime


class CatalogCounts(BaseModel):
    updates: int = Field(description="Revisions of every kind: bundles, their children, categories, detectoids.")
    bundles: int = Field(description="Updates hosts install.")
    superseded_bundles: int
    children: int = Field(description="Per-architecture parts of bundles, which own the payload files.")
    categories: int
    payload_files: int
    stored_files: int = Field(description="Payload files held by the server.")
    stored_bytes: int


class CabSyncRunPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    started_at: datetime
    finished_at: datetime | None
    status: CabSyncStatus
    reason: CabSyncReason | None = Field(
        description="Why the cab was (or would have been) downloaded: missing, newer, forced, or unchanged."
    )
    bytes_downloaded: int
    duration_seconds: float | None
    error: str | None
    etag: str | None
    last_modified: datetime | None
    sha256: str | None = Field(description="Hex SHA-256 of the cab published after the run.")
    size: int | None


class CatalogState(BaseModel):
    version: CatalogVersionPublic | None = Field(description="The catalog imported last; null before the first.")
    counts: CatalogCounts
    last_sync: CabSyncRunPublic | None


class CabSyncRunPage(BaseModel):
    items: list[CabSyncRunPublic]
    total: int
    limit: int
    offset: int


class CabSyncStarted(BaseModel):
    run_id: int


@router.get("", dependencies=[require_role(TokenRole.CONTROLLER)])
def catalog_state(session: SessionDep) -> CatalogState:
    """The current catalog: its version, what it holds, and the last sync run."""
    version = current_catalog_version(session)
    last_sync = session.scalars(select(CabSyncRun).order_by(CabSyncRun.id.desc()).limit(1)).first()
    return CatalogState(
        version=CatalogVersionPublic.model_validate(version) if version else None,
        counts=_counts(session),
        last_sync=CabSyncRunPublic.model_validate(last_sync) if last_sync else None,
    )


@router.get("/syncs", dependencies=[require_role(TokenRole.CONTROLLER)])
def list_syncs(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500, description="Runs per page.")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Runs to skip, newest first.")] = 0,
) -> CabSyncRunPage:
    """Cab sync runs, newest first."""
    total = session.scalar(select(func.count()).select_from(CabSyncRun)) or 0
    runs = session.scalars(select(CabSyncRun).order_by(CabSyncRun.id.desc()).limit(limit).offset(offset))
    return CabSyncRunPage(
        items=[CabSyncRunPublic.model_validate(run) for run in runs], total=total, limit=limit, offset=offset
    )


@router.get(
    "/syncs/{run_id}",
    dependencies=[require_role(TokenRole.CONTROLLER)],
    responses={status.HTTP_404_NOT_FOUND: {"description": "No such run."}},
)
def get_sync(run_id: IdInPath, session: SessionDep) -> CabSyncRunPublic:
    """One cab sync run: poll it after starting one."""
    run = session.get(CabSyncRun, run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no cab sync run with id {run_id}")
    return CabSyncRunPublic.model_validate(run)


@router.post(
    "/sync",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[require_role(TokenRole.ADMIN)],
    responses={status.HTTP_409_CONFLICT: {"description": "A cab sync is running already."}},
)
def sync(
    request: Request, settings: SettingsDep, background: BackgroundTasks, session: SessionDep, token: TokenDep
) -> CabSyncStarted:
    """Download the cab again whatever upstream says, verify it, publish it and
    import its catalog, in the background; poll the run it answers with."""
    try:
        job = start_cab_sync(settings, request.app.state.session_factory, force=True)
    except CabSyncBusy as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{exc}: wait for it to finish") from None
    audit.record_committed(session, actor(token), "cab_sync.force", f"cab sync run {job.run_id}")
    background.add_task(job.run)
    return CabSyncStarted(run_id=job.run_id)


def _counts(session: Session) -> CatalogCounts:
    kinds = {kind: count for kind, count in session.execute(select(Update.kind, func.count()).group_by(Update.kind))}
    superseded = session.scalar(
        select(func.count()).select_from(Update).where(Update.kind == UpdateKind.BUNDLE, Update.is_superseded)
    )
    files, stored, stored_bytes = session.execute(
        select(func.count(), func.count(PayloadFile.stored_at), func.sum(PayloadFile.stored_size))
    ).one()
    return CatalogCounts(
        updates=sum(kinds.values()),
        bundles=kinds.get(UpdateKind.BUNDLE, 0),
        superseded_bundles=superseded or 0,
        children=kinds.get(UpdateKind.CHILD, 0),
        categories=session.scalar(select(func.count()).select_from(Category)) or 0,
        payload_files=files,
        stored_files=stored,
        stored_bytes=stored_bytes or 0,
    )
