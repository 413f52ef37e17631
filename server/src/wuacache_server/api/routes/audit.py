"""``/api/v1/audit``: the audit trail, for admins and controllers to read."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict

from wuacache_server.api.deps import SessionDep, require_role
from wuacache_server.api.schemas import MAX_OFFSET, Text
from wuacache_server.db.models import TokenRole
from wuacache_server.services.audit import list_events

router = APIRouter(
    prefix="/audit",
    tags=["audit"],
    dependencies=[require_role(TokenRole.CONTROLLER)],
    responses={
        status.HTTP_401_UNAUTHORIZED: {"description": "No valid token."},
        status.HTTP_403_FORBIDDEN: {"description": "A host token."},
    },
)


class AuditEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEventPublic]
    total: int
    limit: int
    offset: int


@router.get("")
def list_all(
    session: SessionDep,
    action: Annotated[Text | None, Query(max_length=64, description="Only events of this action.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> AuditPage:
    """Every write to policy and state, newest first: who, when, what and what changed."""
    total, events = list_events(session, action=action, limit=limit, offset=offset)
    return AuditPage(
        items=[AuditEventPublic.model_validate(event) for event in events], total=total, limit=limit, offset=offset
    )
