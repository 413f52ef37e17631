"""``GET /health``: whether the server and its database answer; no token needed."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from wuacache_server.api.deps import SessionDep
from wuacache_server.api.schemas import Health

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": Health, "description": "The database does not answer."}},
)
def health(request: Request, response: Response, session: SessionDep) -> Health:
    try:
        session.execute(text("SELECT 1"))
        database = True
    except SQLAlchemyError as exc:
        logger.warning("health check: the database does not answer: %s", getattr(exc, "orig", exc))
        database = False
    if not database:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(status="ok" if database else "degraded", version=request.app.version, database=database)
