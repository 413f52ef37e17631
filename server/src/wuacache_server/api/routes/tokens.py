"""``/api/v1/tokens``: API tokens.

Admins create and revoke any token; controllers read them all, and create
and revoke host tokens, for the hosts they bring into service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, status
from sqlalchemy.orm import Session

from wuacache_server.api.deps import SessionDep, SettingsDep, require_role
from wuacache_server.api.schemas import IdInPath, TokenCreate, TokenCreated, TokenPublic, TokenRotate
from wuacache_server.config import Settings
from wuacache_server.db.models import ApiToken, TokenRole, utcnow
from wuacache_server.security import actor, create_token, find_token, list_tokens, revoke_token, rotate_token
from wuacache_server.services import audit

router = APIRouter(
    prefix="/tokens",
    tags=["tokens"],
    responses={
        status.HTTP_401_UNAUTHORIZED: {"description": "No valid token."},
        status.HTTP_403_FORBIDDEN: {
            "description": "A host token; or a controller token, for a token other than a host token."
        },
    },
)
CallerDep = Annotated[ApiToken, require_role(TokenRole.CONTROLLER)]


def _check_may_manage(caller: ApiToken, role: TokenRole) -> None:
    if caller.role is TokenRole.CONTROLLER and role is not TokenRole.HOST:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a controller token manages host tokens only")


@router.post("", status_code=status.HTTP_201_CREATED)
def create(body: TokenCreate, session: SessionDep, settings: SettingsDep, caller: CallerDep) -> TokenCreated:
    """Create a token; the answer holds its secret, which is never shown again."""
    _check_may_manage(caller, body.role)
    expires_at = body.expires_at
    if expires_at is None and body.role is TokenRole.HOST:
        expires_at = utcnow() + settings.host_token_lifetime
    try:
        secret = create_token(session, body.name, body.role, body.host_name, expires_at=expires_at)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    record = find_token(session, secret)
    created = _created(record, secret)
    _audit(session, caller, "token.create", created)
    session.commit()
    return created


@router.post(
    "/{token_id}/rotate",
    status_code=status.HTTP_201_CREATED,
    responses={
        status.HTTP_404_NOT_FOUND: {"description": "No such token."},
        status.HTTP_409_CONFLICT: {"description": "The token is revoked or expired."},
    },
)
def rotate(
    token_id: IdInPath, body: TokenRotate, session: SessionDep, settings: SettingsDep, caller: CallerDep
) -> TokenCreated:
    """Replace a token with a new one of the same name, role and host; the old
    secret keeps working for the grace period. The answer holds the new secret."""
    record = session.get(ApiToken, token_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no token with id {token_id}")
    _check_may_manage(caller, record.role)
    try:
        new, secret = rotate_token(session, token_id, body.grace, expires_at=_renewed_expiry(record, settings))
    except ValueError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    created = _created(new, secret)
    _audit(session, caller, "token.rotate", created, replaces=token_id, grace=body.grace.total_seconds())
    session.commit()
    return created


def _renewed_expiry(record: ApiToken, settings: Settings) -> datetime | None:
    """A rotated host token lives a new lifetime; other tokens keep not expiring."""
    return utcnow() + settings.host_token_lifetime if record.role is TokenRole.HOST else None


def _audit(session: Session, caller: ApiToken, action: str, token: TokenPublic, **details: object) -> None:
    """Record a token write: the token as listed, never its secret."""
    listed = token.model_dump(mode="json", include=set(TokenPublic.model_fields))
    audit.record(session, actor(caller), action, f"token {token.id} ({token.name})", **listed, **details)


def _created(record: ApiToken | None, secret: str) -> TokenCreated:
    return TokenCreated.model_validate({**TokenPublic.model_validate(record).model_dump(), "token": secret})


@router.get("", dependencies=[require_role(TokenRole.CONTROLLER)])
def list_all(session: SessionDep) -> list[TokenPublic]:
    """Every token, revoked ones included; never their secrets."""
    return [TokenPublic.model_validate(record) for record in list_tokens(session)]


@router.delete(
    "/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={status.HTTP_404_NOT_FOUND: {"description": "No such token."}},
)
def revoke(token_id: IdInPath, session: SessionDep, caller: CallerDep) -> None:
    """Revoke a token: it is refused from now on. Revoking twice changes nothing."""
    record = session.get(ApiToken, token_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no token with id {token_id}")
    _check_may_manage(caller, record.role)
    revoke_token(session, token_id)
    _audit(session, caller, "token.revoke", TokenPublic.model_validate(record))
    session.commit()
