"""API tokens: bearer secrets shown once, of which only a SHA-256 is stored.

Roles: ``admin`` may do everything; ``controller`` (the Ansible controller)
reports for any host, sets hosts' assignments, manages host tokens and reads;
``host`` acts for one named host only and never sets its own policy.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from wuacache_server.db.models import ApiToken, TokenRole, utcnow

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "wua_"  # makes a leaked token recognisable, to secret scanners too
# Recording every use would turn each API call into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)

# DNS names, and the NetBIOS-style names Windows and Ansible inventories also use.
_HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9_.-]{0,251}[a-z0-9])?")


def normalise_host_name(name: str) -> str:
    """A host name as the server keys hosts: lowercase; ValueError when it is not one."""
    normalised = name.strip().lower()
    if not _HOST_NAME.fullmatch(normalised):
        raise ValueError(f"{name!r} is not a host name")
    return normalised


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    session: Session, name: str, role: TokenRole, host_name: str | None = None, *, expires_at: datetime | None = None
) -> str:
    """Store a new token and return its secret, which nothing can show again.

    A ``host`` token names its host, and expires; the other roles name none,
    and expire only when ``expires_at`` says so. The caller commits.
    """
    return _new_token(session, name, role, host_name, expires_at)[1]


def _new_token(
    session: Session, name: str, role: TokenRole, host_name: str | None, expires_at: datetime | None
) -> tuple[ApiToken, str]:
    name = name.strip()
    if not name:
        raise ValueError("a token needs a name")
    if (role is TokenRole.HOST) != (host_name is not None):
        raise ValueError("a host token names its host, and only a host token does")
    if role is TokenRole.HOST and expires_at is None:
        raise ValueError("a host token needs an expiry")
    if expires_at is not None and expires_at <= utcnow():
        raise ValueError(f"the expiry {expires_at:%Y-%m-%d %H:%M} UTC is past")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(
        name=name,
        role=role,
        host_name=normalise_host_name(host_name) if host_name is not None else None,
        token_hash=hash_token(token),
        expires_at=expires_at,
    )
    session.add(record)
    session.flush()
    logger.info("API token %d %r created, role %s", record.id, record.name, record.role)
    return record, token


def find_token(session: Session, token: str) -> ApiToken | None:
    """The record of a token whose secret is known (just created, say); None if unknown."""
    return session.scalars(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).one_or_none()


def list_tokens(session: Session) -> Sequence[ApiToken]:
    return session.scalars(select(ApiToken).order_by(ApiToken.id)).all()


def revoke_token(session: Session, token_id: int) -> ApiToken | None:
    """Revoke a token for good (the record stays, for the record); None if there is no such token."""
    record = session.get(ApiToken, token_id)
    if record is not None and record.revoked_at is None:
        record.revoked_at = utcnow()
        logger.info("API token %d %r revoked", record.id, record.name)
    return record


def rotate_token(
    session: Session, token_id: int, grace: timedelta, *, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Replace a live token with a new one of the same name, role and host, and
    let the old one live ``grace`` longer (never longer than it would have).

    Returns the new token's record and secret; ``expires_at`` is the new token's
    expiry (required for a host token). The caller commits.

    Raises:
        LookupError: there is no such token.
        ValueError: the token is revoked or expired, or the new expiry is not valid.
    """
    old = session.get(ApiToken, token_id)
    if old is None:
        raise LookupError(f"no token with id {token_id}")
    now = utcnow()
    if not is_live(old, now):
        raise ValueError(f"token {token_id} is revoked or expired: create a new one")
    new, secret = _new_token(session, old.name, old.role, old.host_name, expires_at)
    end_of_grace = now + grace
    if old.expires_at is None or end_of_grace < old.expires_at:
        old.expires_at = end_of_grace
    logger.info("API token %d %r rotated; the old secret expires at %s", old.id, old.name, old.expires_at)
    return new, secret


def is_live(token: ApiToken, now: datetime) -> bool:
    """Whether ``token`` is neither revoked nor expired at ``now``."""
    return token.revoked_at is None and (token.expires_at is None or now < token.expires_at)


def authenticate(session: Session, presented: str) -> ApiToken | None:
    """The live token whose secret was presented, or None. It only reads:
    :func:`record_use` notes the use."""
    if not presented.startswith(TOKEN_PREFIX):
        return None
    presented_hash = hash_token(presented)
    token = find_token(session, presented)
    # The lookup is by hash, so its timing reveals nothing about the secret; the
    # comparison keeps that true whatever the database does with the index.
    if token is None or not hmac.compare_digest(token.token_hash, presented_hash) or not is_live(token, utcnow()):
        return None
    return token


def record_use(session: Session, token: ApiToken) -> None:
    """Note that ``token`` was used, at most once a minute; the caller commits.

    Call it in a transaction of its own that starts with this write: on
    SQLite, a transaction that read before it writes fails when another
    connection wrote in between.
    """
    now = utcnow()
    cutoff = now - LAST_USED_RESOLUTION
    if token.last_used_at is not None and token.last_used_at > cutoff:
        return
    session.execute(
        update(ApiToken)
        .where(ApiToken.id == token.id, or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= cutoff))
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    token.last_used_at = now


def actor(token: ApiToken) -> str:
    """Who acted, as the server records it: the token's id and name."""
    return f"token {token.id} ({token.name})"


def may_act_for_host(token: ApiToken, host_name: str) -> bool:
    """Whether ``token`` may read or write the record of ``host_name``."""
    if token.role is TokenRole.HOST:
        return token.host_name == host_name.lower()
    return True
