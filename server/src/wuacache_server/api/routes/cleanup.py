"""``/api/v1/cleanup``: the cleanup runs, and cleanups on demand."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, computed_field
from sqlalchemy import func, select

from wuacache_server.api.deps import SessionDep, SettingsDep, TokenDep, require_role
from wuacache_server.api.schemas import MAX_OFFSET
from wuacache_server.db.models import CleanupRun, TokenRole, utcnow
from wuacache_server.security import actor
from wuacache_server.services import audit
from wuacache_server.services.cleanup import CleanupBusy, run_cleanup

router = APIRouter(
    prefix="/cleanup",
    tags=["cleanup"],
    responses={
        status.HTTP_401_UNAUTHORIZED: {"description": "No valid token."},
        status.HTTP_403_FORBIDDEN: {"description": "The token's role may not do this."},
    },
)


class CleanupRunPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    started_at: datetime
    finished_at: datetime | None = Field(description="Null while the run goes on, or when its process died.")
    files_removed: int = Field(description="Update files deleted from the repository.")
    bytes_freed: int = Field(description="Bytes of the files and partial downloads deleted.")
    error: str | None = Field(description="Why the run stopped short.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration_seconds(self) -> float | None:
        return (self.finished_at - self.started_at).total_seconds() if self.finished_at else None


class CleanupDone(BaseModel):
    run: CleanupRunPublic
    partials_removed: int = Field(description="Partial downloads deleted: of files no host needs, held by no download.")
    message: str = Field(description="What the run did, in one line.")


class CleanupRunPage(BaseModel):
    items: list[CleanupRunPublic]
    total: int
    limit: int
    offset: int


@router.get("", dependencies=[require_role(TokenRole.CONTROLLER)])
def list_runs(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500, description="Runs per page.")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Runs to skip, newest first.")] = 0,
) -> CleanupRunPage:
    """Cleanup runs, newest first: the nightly ones and those asked for."""
    total = session.scalar(select(func.count()).select_from(CleanupRun)) or 0
    runs = session.scalars(select(CleanupRun).order_by(CleanupRun.id.desc()).limit(limit).offset(offset))
    return CleanupRunPage(
        items=[CleanupRunPublic.model_validate(run) for run in runs], total=total, limit=limit, offset=offset
    )


@router.post(
    "",
    dependencies=[require_role(TokenRole.CONTROLLER)],
    responses={status.HTTP_409_CONFLICT: {"description": "Cleanup is turned off, or a cleanup is running already."}},
)
def clean_up(request: Request, session: SessionDep, settings: SettingsDep, token: TokenDep) -> CleanupDone:
    """Delete now the update files no host needs, as the nightly cleanup does, and say what went."""
    try:
        result = run_cleanup(settings, request.app.state.session_factory, utcnow())
    except CleanupBusy as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{exc}: wait for it to finish") from None
    if result.run_id is None:  # cleanup_kbs = false
        raise HTTPException(status.HTTP_409_CONFLICT, result.message)
    audit.record_committed(session, actor(token), "cleanup.run", f"cleanup run {result.run_id}", message=result.message)
    return CleanupDone(
        run=CleanupRunPublic.model_validate(session.get_one(CleanupRun, result.run_id)),
        partials_removed=result.partials_removed,
        message=result.message,
    )
