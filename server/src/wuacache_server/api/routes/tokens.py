"""``/api/v1/tokens``: API tokens, for admins only."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from wuacache_server.api.deps import SessionDep, require_role
from wuacache_server.api.schemas import IdInPath, TokenCreate, TokenCreated, TokenPublic
from wuacache_server.db.models import TokenRole
from wuacache_server.security import create_token, find_token, list_tokens, revoke_token

router = APIRouter(
    prefix="/tokens",
    tags=["tokens"],
    dependencies=[require_role(TokenRole.ADMIN)],
    responses={
        status.HTTP_401_UNAUTHORIZED: {"description": "No valid token."},
        status.HTTP_403_FORBIDDEN: {"description": "Not an admin token."},
    },
)


@router.post("", status_code=status.HTTP_201_CREATED)
def create(body: TokenCreate, session: SessionDep) -> TokenCreated:
    """Create a token; the answer holds its secret, which is never shown again."""
    secret = create_token(session, body.name, body.role, body.host_name)
    record = find_token(session, secret)
    session.commit()
    return TokenCreated.model_validate({**TokenPublic.model_validate(record).model_dump(), "token": secret})


@router.get("")
def list_all(session: SessionDep) -> list[TokenPublic]:
    """Every token, revoked ones included; never their secrets."""
    return [TokenPublic.model_validate(record) for record in list_tokens(session)]


@router.delete(
    "/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={status.HTTP_404_NOT_FOUND: {"description": "No such token."}},
)
def revoke(token_id: IdInPath, session: SessionDep) -> None:
    """Revoke a token: it is refused from now on. Revoking twice changes nothing."""
    if revoke_token(session, token_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no token with id {token_id}")
    session.commit()
