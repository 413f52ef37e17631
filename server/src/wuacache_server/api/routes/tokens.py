"""``/api/v1/tokens``: API tokens.

Admins create and revoke any token; controllers read them all, and create
and revoke host tokens, for the hosts they bring into service.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, status

from wuacache_server.api.deps import SessionDep, require_role
from wuacache_server.api.schemas import TokenCreate, TokenCreated, TokenPublic
from wuacache_server.db.models import ApiToken, TokenRole
from wuacache_server.security import create_token, find_token, list_tokens, revoke_token

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
def create(body: TokenCreate, session: SessionDep, caller: CallerDep) -> TokenCreated:
    """Create a token; the answer holds its secret, which is never shown again."""
    _check_may_manage(caller, body.role)
    secret = create_token(session, body.name, body.role, body.host_name)
    record = find_token(session, secret)
    session.commit()
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
def revoke(token_id: int, session: SessionDep, caller: CallerDep) -> None:
    """Revoke a token: it is refused from now on. Revoking twice changes nothing."""
    record = session.get(ApiToken, token_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no token with id {token_id}")
    _check_may_manage(caller, record.role)
    revoke_token(session, token_id)
    session.commit()
