"""The audit trail: every write to policy and state, with who made it, when and what changed.

:func:`record` adds the event to the caller's transaction, so that a write and
its record commit together; writes that services commit themselves (packages,
downloads, cleanups, cab syncs) are recorded right after, in their own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wuacache_server.db.models import AuditEvent, utcnow

logger = logging.getLogger(__name__)

CLI = "cli"  # the actor of the wuacache-server commands


def record(session: Session, actor: str, action: str, target: str, **details: Any) -> None:
    """Add an event to the session's transaction; the caller commits.

    ``details`` are JSON values saying what changed; never secrets.
    """
    session.add(AuditEvent(at=utcnow(), actor=actor, action=action, target=target[:255], details=details))
    logger.debug("audit: %s %s %s", actor, action, target)


def record_committed(session: Session, actor: str, action: str, target: str, **details: Any) -> None:
    """Record, in a transaction of its own, a write that its service committed already."""
    record(session, actor, action, target, **details)
    session.commit()


def list_events(
    session: Session, *, action: str | None = None, limit: int = 100, offset: int = 0
) -> tuple[int, Sequence[AuditEvent]]:
    """The number of events (of ``action``, when given) and a page of them, newest first."""
    query = select(AuditEvent)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    events = session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit).offset(offset)).all()
    return total, events
