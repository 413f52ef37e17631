"""The API's routers: each resource's module adds its router here."""

from __future__ import annotations

from fastapi import APIRouter

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

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(tokens.router, prefix="/api/v1")
api_router.include_router(catalog.router, prefix="/api/v1")
api_router.include_router(hosts.router, prefix="/api/v1")
api_router.include_router(rulesets.router, prefix="/api/v1")
api_router.include_router(downloads.router, prefix="/api/v1")
api_router.include_router(cleanup.router, prefix="/api/v1")
api_router.include_router(packages.router, prefix="/api/v1")
api_router.include_router(audit.router, prefix="/api/v1")
api_router.include_router(files.router)
