"""Per-host holds and overrides: one update, by UpdateID or KB, kept off or let onto one host.

They beat the rule sets and the assignment, and apply from the host's next
report on. Each records who set it, why and when; a revoked one is kept, for
the record.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from wuacache_server import policy
from wuacache_server.db.models import HostRuleKind, HostUpdateRule

logger = logging.getLogger(__name__)


def create_host_rule(
    session: Session,
    host_name: str,
    kind: HostRuleKind,
    *,
    update_id: str | None,
    kb: str | None,
    reason: str,
    by: str,
    now: datetime,
    expires_at: datetime | None = None,
) -> HostUpdateRule:
    """Store a hold or an override; the caller commits.

    Raises:
        ValueError: neither or both of ``update_id`` and ``kb``, an empty reason,
            or an expiry that is past.
    """
    if (update_id is None) == (kb is None):
        raise ValueError("name the update by update_id or by kb, not both")
    if not reason.strip():
        raise ValueError("say why: the reason is shown in the host's plan")
    if expires_at is not None and expires_at <= now:
        raise ValueError(f"the expiry {expires_at:%Y-%m-%d %H:%M} UTC is past")
    try:
        update_id = policy.normalise_update_id(update_id) if update_id is not None else None
        kb = policy.normalise_kb(kb, "kb") if kb is not None else None
    except policy.PolicyError as exc:
        raise ValueError(str(exc)) from None
    record = HostUpdateRule(
        host_name=host_name,
        kind=kind,
        update_id=update_id,
        kb=kb,
        reason=reason.strip(),
        created_by=by,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(record)
    session.flush()
    logger.info("%s %d of host %s created by %s", kind, record.id, host_name, by)
    return record


def list_host_rules(session: Session, host_name: str, kind: HostRuleKind) -> Sequence[HostUpdateRule]:
    """The host's holds or overrides, revoked and expired ones included, oldest first."""
    query = select(HostUpdateRule).where(HostUpdateRule.host_name == host_name, HostUpdateRule.kind == kind)
    return session.scalars(query.order_by(HostUpdateRule.id)).all()


def revoke_host_rule(
    session: Session, host_name: str, kind: HostRuleKind, rule_id: int, *, by: str, now: datetime
) -> HostUpdateRule | None:
    """Revoke a hold or an override; None if the host has no such one. Revoking twice changes nothing."""
    record = session.get(HostUpdateRule, rule_id)
    if record is None or record.host_name != host_name or record.kind is not kind:
        return None
    if record.revoked_at is None:
        record.revoked_at = now
        record.revoked_by = by
        logger.info("%s %d of host %s revoked by %s", kind, record.id, host_name, by)
    return record


def active_host_rules(session: Session, host_name: str, now: datetime) -> list[policy.HostRule]:
    """The holds and overrides that apply to the host at ``now``, as the policy reads them."""
    records = session.scalars(
        select(HostUpdateRule).where(
            HostUpdateRule.host_name == host_name,
            HostUpdateRule.revoked_at.is_(None),
            or_(HostUpdateRule.expires_at.is_(None), HostUpdateRule.expires_at > now),
        )
    )
    return [
        policy.HostRule(
            allow=record.kind is HostRuleKind.OVERRIDE,
            update_id=record.update_id,
            kb=record.kb,
            reason=record.reason,
            by=record.created_by,
            at=record.created_at,
            until=record.expires_at,
        )
        for record in records
    ]
