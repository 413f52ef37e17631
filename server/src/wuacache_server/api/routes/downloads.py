"""``/api/v1/downloads``: the download tasks, and forced downloads of chosen updates."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import func, select

from wuacache_server.api.deps import SessionDep, TokenDep, require_role
from wuacache_server.api.schemas import MAX_OFFSET, IdInPath
from wuacache_server.db.models import DownloadTask, DownloadTaskStatus, PayloadFile, TokenRole
from wuacache_server.security import actor
from wuacache_server.services import audit
from wuacache_server.services.fetching import FetchService, UpdatesNotDownloadable

MAX_PAGE_SIZE = 1000
MAX_FORCED_UPDATES = 1000

UpdateId = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    ),
]


class DownloadTaskPublic(BaseModel):
    """One download of an update file from Microsoft."""

    id: int
    status: DownloadTaskStatus
    forced: bool = Field(description="Asked for by an administrator, rather than needed by a host.")
    file_name: str = Field(description="The name the file is served under, at /wua/<file_name>.")
    url: str = Field(description="Where the catalog says Microsoft serves it.")
    sha1: str = Field(description="Base64 SHA-1 of the file, its catalog FileLocation Id.")
    size: int | None = Field(description="Its size in bytes, when the catalog gives it.")
    bytes_done: int = Field(description="Bytes received so far.")
    bytes_total: int | None = Field(description="Bytes to receive in all, once known.")
    attempts: int = Field(description="How many times the download was started.")
    error: str | None = Field(description="Why the last attempt failed; kept while the task is retried.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class DownloadTaskPage(BaseModel):
    items: list[DownloadTaskPublic]
    total: int = Field(description="Tasks matching the filters, on every page.")
    limit: int
    offset: int


class ForcedDownload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    update_ids: list[UpdateId] = Field(
        min_length=1,
        max_length=MAX_FORCED_UPDATES,
        description="UpdateIDs whose files to download (those of their latest revision in the catalog).",
    )


class DownloadsQueued(BaseModel):
    task_ids: list[int] = Field(description="The tasks downloading the files, newly queued or already queued.")


def get_fetch_service(request: Request) -> FetchService:
    service: FetchService | None = getattr(request.app.state, "fetch_service", None)
    if service is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "downloads are not running on this server")
    return service


router = APIRouter(
    prefix="/downloads",
    tags=["downloads"],
    responses={
        status.HTTP_401_UNAUTHORIZED: {"description": "No valid token."},
        status.HTTP_403_FORBIDDEN: {"description": "A token without the role this needs."},
    },
)

_TASKS = select(DownloadTask, PayloadFile).join(PayloadFile, PayloadFile.id == DownloadTask.payload_file_id)


def _public(task: DownloadTask, file: PayloadFile) -> DownloadTaskPublic:
    return DownloadTaskPublic(
        id=task.id,
        status=task.status,
        forced=task.forced,
        file_name=file.file_name,
        url=file.url,
        sha1=file.sha1,
        size=file.size,
        bytes_done=task.bytes_done,
        bytes_total=task.bytes_total,
        attempts=task.attempts,
        error=task.error,
        created_at=task.created_at,
        started_at=task.started_at,
        finished_at=task.finished_at,
    )


@router.get("", dependencies=[require_role(TokenRole.CONTROLLER)])
def list_tasks(
    session: SessionDep,
    status_filter: Annotated[
        list[DownloadTaskStatus] | None, Query(alias="status", description="Only tasks in these states.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> DownloadTaskPage:
    """The download tasks, newest first."""
    where = [DownloadTask.status.in_(status_filter)] if status_filter else []
    total = session.scalar(select(func.count()).select_from(DownloadTask).where(*where)) or 0
    rows = session.execute(_TASKS.where(*where).order_by(DownloadTask.id.desc()).limit(limit).offset(offset))
    return DownloadTaskPage(items=[_public(*row) for row in rows], total=total, limit=limit, offset=offset)


@router.get(
    "/{task_id}",
    dependencies=[require_role(TokenRole.CONTROLLER)],
    responses={status.HTTP_404_NOT_FOUND: {"description": "No such task."}},
)
def get_task(task_id: IdInPath, session: SessionDep) -> DownloadTaskPublic:
    row = session.execute(_TASKS.where(DownloadTask.id == task_id)).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no download task with id {task_id}")
    return _public(*row)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[require_role(TokenRole.ADMIN)],
    responses={
        status.HTTP_422_UNPROCESSABLE_CONTENT: {"description": "An UpdateID the catalog lacks, or without files."},
        status.HTTP_503_SERVICE_UNAVAILABLE: {"description": "This server runs no downloads."},
    },
)
def force_download(
    body: ForcedDownload,
    service: Annotated[FetchService, Depends(get_fetch_service)],
    session: SessionDep,
    token: TokenDep,
) -> DownloadsQueued:
    """Download the files of chosen updates now, ahead of the others, whether hosts need them or not."""
    try:
        task_ids = service.force(body.update_ids)
    except UpdatesNotDownloadable as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    audit.record_committed(
        session, actor(token), "download.force", "updates", update_ids=list(body.update_ids), task_ids=task_ids
    )
    return DownloadsQueued(task_ids=task_ids)
