"""The API's routers: each resource's module adds its router here."""

from __future__ import annotations

from fastapi import APIRouter

from wuacache_server.api.routes import health, tokens

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(tokens.router, prefix="/api/v1")
