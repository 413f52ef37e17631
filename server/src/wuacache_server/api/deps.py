"""FastAPI dependencies: the settings, a database session per request, the caller's token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from wuacache_server.config import Settings
from wuacache_server.db.models import ApiToken, TokenRole

# Their only write, record_use, begins its transaction: it waits for the lock as it should.
_READING_METHODS = frozenset({"GET", "HEAD"})


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """A session for the request. One that may change something writes at the
    start of its transactions (see make_engine); a GET reads, beside the writer."""
    if request.method in _READING_METHODS:
        factory = request.app.state.read_session_factory
    else:
        factory = request.app.state.session_factory
    with factory() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="An API token, sent as `Authorization: Bearer wua_...`.")


# Shared with the Authentication middleware, which answers most 401s.
UNAUTHENTICATED_DETAIL = "a valid API token is required (Authorization: Bearer <token>)"
UNAUTHENTICATED_HEADERS = {"WWW-Authenticate": "Bearer"}
TOKEN_SCOPE_KEY = "api_token"


def get_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> ApiToken:
    """The caller's live token, which the Authentication middleware looked up
    from the headers before the body was read; 401 when there is none.

    ``credentials`` is unused here: it documents the bearer scheme in the OpenAPI description.
    """
    token: ApiToken | None = request.scope.get("state", {}).get(TOKEN_SCOPE_KEY)
    if token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, UNAUTHENTICATED_DETAIL, headers=UNAUTHENTICATED_HEADERS)
    return token


TokenDep = Annotated[ApiToken, Depends(get_token)]


def require_role(*roles: TokenRole) -> Any:
    """A dependency admitting tokens of ``roles`` (admin tokens always): 403 for others.

    ``token: Annotated[ApiToken, require_role(TokenRole.CONTROLLER)]`` in an
    endpoint, or ``dependencies=[require_role(...)]`` on a router.
    """
    allowed = {TokenRole.ADMIN, *roles}

    def check_role(token: TokenDep) -> ApiToken:
        if token.role not in allowed:
            needed = " or ".join(sorted(allowed))
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs a token with role {needed}")
        return token

    return Depends(check_role)
