"""The API's routers: each resource's module adds its router here."""

from __future__ import annotations

from fastapi import APIRouter, status

from wuacache_server.api.routes import (
    audit,
    catalog,
    cleanup,
    downloads,
    files,
    health,
    hosts,
    packages,
    rulesets,
    tokens,
)

api_v1 = APIRouter(
    prefix="/api/v1",
    responses={
        status.HTTP_503_SERVICE_UNAVAILABLE: {
            "description": "The database stayed busy too long; nothing changed. Send again after Retry-After seconds."
        }
    },
)
api_v1.include_router(tokens.router)
api_v1.include_router(catalog.router)
api_v1.include_router(hosts.router)
api_v1.include_router(rulesets.router)
api_v1.include_router(downloads.router)
api_v1.include_router(cleanup.router)
api_v1.include_router(packages.router)
api_v1.include_router(audit.router)

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(api_v1)
api_router.include_router(files.router)
