"""``/api/v1/hosts``: hosts report their scans here and read their plans.

Every token may report and read for hosts: admin and controller tokens for
any host, a host token for its own host only. Only admin and controller
tokens set a host's assignment. After a report is committed, the payload
files it newly needs go to ``app.state.on_new_needs`` (a callable taking their
ids, set by whoever fetches them; none by default), once the answer is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Path, Query, Request, status
from sqlalchemy import exists, func, select

from wuacache_server import policy
from wuacache_server.api.deps import SessionDep, SettingsDep, TokenDep, require_role
from wuacache_server.api.report_schemas import (
    AssignmentBody,
    HostAssignment,
    HostDetail,
    HostPage,
    HostPlan,
    HostReportIn,
    HostRuleBody,
    HostRulePublic,
    HostSummary,
    ReportSummary,
)
from wuacache_server.api.schemas import MAX_OFFSET, IdInPath, Text
from wuacache_server.db.models import Host, HostReport, HostRuleKind, HostUpdate, HostUpdateStatus, TokenRole, utcnow
from wuacache_server.security import actor, may_act_for_host, normalise_host_name
from wuacache_server.services import audit
from wuacache_server.services.host_rules import create_host_rule, list_host_rules, revoke_host_rule
from wuacache_server.services.reports import ReportError, ingest_report, set_host_assignment, status_counts, stored_plan

logger = logging.getLogger(__name__)

router = APIRouter(
    prefix="/hosts",
    tags=["hosts"],
    responses={
        status.HTTP_401_UNAUTHORIZED: {"description": "No valid token."},
        status.HTTP_403_FORBIDDEN: {"description": "A host token of another host."},
    },
)


def current_time() -> datetime:
    """The time decisions are made at (tests override it)."""
    return utcnow()


def host_for_token(name: Annotated[str, Path(max_length=253, description="The host's name.")], token: TokenDep) -> str:
    """The host the URL names, lowercase; 403 for a host token of another host.

    A dependency, so that it runs before the body is read.
    """
    try:
        host_name = normalise_host_name(name)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    if not may_act_for_host(token, host_name):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"this token acts for host {token.host_name}, not {host_name}")
    return host_name


HostNameDep = Annotated[str, Depends(host_for_token)]
NowDep = Annotated[datetime, Depends(current_time)]


def _find_host(session: SessionDep, host_name: HostNameDep) -> Host:
    host = session.scalars(select(Host).where(Host.name == host_name)).one_or_none()
    if host is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no report was ever received for host {host_name}")
    return host


HostDep = Annotated[Host, Depends(_find_host)]


@router.post(
    "/{name}/reports",
    responses={
        status.HTTP_413_CONTENT_TOO_LARGE: {"description": "The report exceeds max_report_bytes."},
        status.HTTP_422_UNPROCESSABLE_CONTENT: {"description": "The report is malformed; nothing was stored."},
    },
)
def post_report(
    report: HostReportIn,
    host_name: HostNameDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    request: Request,
    background: BackgroundTasks,
    token: TokenDep,
) -> HostPlan:
    """Store a host's scan report, and answer with its plan: per update, a status,
    the reason for it, and the server URLs of the files to install it with.

    The report's assignment becomes the host's when an admin or a controller
    sends it; a host token's is ignored: the assignment a controller last set,
    else the server's default assignment, judges the report."""
    try:
        outcome = ingest_report(
            session,
            host_name,
            report,
            base_url=settings.base_url,
            now=now,
            keep_reports=settings.report_history,
            assigned_by=None if token.role is TokenRole.HOST else actor(token),
            default_assignment=settings.default_assignment,
        )
    except ReportError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    session.commit()
    hook = getattr(request.app.state, "on_new_needs", None)
    if hook is not None and outcome.new_needs:
        background.add_task(_announce_needs, hook, outcome.new_needs)
    return outcome.plan


@router.put(
    "/{name}/assignment",
    dependencies=[require_role(TokenRole.CONTROLLER)],
    responses={
        status.HTTP_403_FORBIDDEN: {"description": "A host token: hosts never set their assignment."},
        status.HTTP_422_UNPROCESSABLE_CONTENT: {"description": "The assignment is not valid; nothing was stored."},
    },
)
def set_assignment(
    body: AssignmentBody, host_name: HostNameDep, session: SessionDep, now: NowDep, token: TokenDep
) -> HostAssignment:
    """Set the assignment that judges the host's reports from its next one on;
    a host that never reported is created. A report an admin or a controller
    sends sets it too."""
    values = body.to_dict()
    try:
        policy.Assignment.from_dict(values)
    except policy.PolicyError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"assignment: {exc}") from None
    host = set_host_assignment(session, host_name, values, now=now, by=actor(token))
    audit.record(session, actor(token), "assignment.set", host_name, assignment=values)
    session.commit()
    return HostAssignment.model_validate(host, from_attributes=True)


_CONTROLLER_ONLY = {status.HTTP_403_FORBIDDEN: {"description": "A host token: hosts never set their own policy."}}
_RULE_PATHS = {HostRuleKind.HOLD: "holds", HostRuleKind.OVERRIDE: "overrides"}


def _add_host_rule_routes(kind: HostRuleKind) -> None:
    """Create, list and revoke the host's holds (or overrides): admins and controllers only."""
    path = f"/{{name}}/{_RULE_PATHS[kind]}"
    summary = {HostRuleKind.HOLD: "a hold, keeping", HostRuleKind.OVERRIDE: "an override, letting"}[kind]
    where = {HostRuleKind.HOLD: "off the host whatever", HostRuleKind.OVERRIDE: "onto the host whatever"}[kind]

    def create(body: HostRuleBody, host_name: HostNameDep, session: SessionDep, now: NowDep, token: TokenDep) -> Any:
        try:
            rule = create_host_rule(
                session, host_name, kind, **body.model_dump(), by=actor(token), now=now
            )
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        created = HostRulePublic.model_validate(rule)
        audit.record(session, actor(token), f"{kind}.create", host_name, **created.model_dump(mode="json"))
        session.commit()
        return created

    def list_all(host_name: HostNameDep, session: SessionDep) -> Any:
        return [HostRulePublic.model_validate(record) for record in list_host_rules(session, host_name, kind)]

    def revoke(rule_id: IdInPath, host_name: HostNameDep, session: SessionDep, now: NowDep, token: TokenDep) -> None:
        if revoke_host_rule(session, host_name, kind, rule_id, by=actor(token), now=now) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"host {host_name} has no {kind} with id {rule_id}")
        audit.record(session, actor(token), f"{kind}.revoke", host_name, id=rule_id)
        session.commit()

    create.__doc__ = (
        f"Create {summary} one update (by UpdateID or KB) {where} the rules say, "
        "from the host's next report on; the plan's reason names it."
    )
    list_all.__doc__ = f"The host's {_RULE_PATHS[kind]}, revoked and expired ones included."
    revoke.__doc__ = f"Revoke a {kind}: it no longer applies from the host's next report on."
    admitted = [require_role(TokenRole.CONTROLLER)]
    router.add_api_route(
        path,
        create,
        methods=["POST"],
        status_code=status.HTTP_201_CREATED,
        dependencies=admitted,
        response_model=HostRulePublic,
        responses={**_CONTROLLER_ONLY, status.HTTP_422_UNPROCESSABLE_CONTENT: {"description": "Not valid."}},
        name=f"create_{kind}",
    )
    router.add_api_route(
        path,
        list_all,
        methods=["GET"],
        dependencies=admitted,
        response_model=list[HostRulePublic],
        responses=_CONTROLLER_ONLY,
        name=f"list_{_RULE_PATHS[kind]}",
    )
    router.add_api_route(
        f"{path}/{{rule_id}}",
        revoke,
        methods=["DELETE"],
        status_code=status.HTTP_204_NO_CONTENT,
        dependencies=admitted,
        responses={**_CONTROLLER_ONLY, status.HTTP_404_NOT_FOUND: {"description": f"No such {kind}."}},
        name=f"revoke_{kind}",
    )


for _kind in HostRuleKind:
    _add_host_rule_routes(_kind)


def _announce_needs(hook: Callable[[Sequence[int]], object], file_ids: Sequence[int]) -> None:
    # The report is stored whatever the hook does; the scheduled fetch catches up.
    try:
        hook(file_ids)
    except Exception:
        logger.exception("announcing %d newly needed files failed", len(file_ids))


@router.get("")
def list_hosts(
    session: SessionDep,
    token: TokenDep,
    name_prefix: Annotated[Text | None, Query(max_length=253, description="Hosts whose name starts so.")] = None,
    status_: Annotated[
        HostUpdateStatus | None, Query(alias="status", description="Hosts with at least one update in this status.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HostPage:
    """Hosts by name, with their updates per status. A host token sees its own host only."""
    query = select(Host)
    if token.role is TokenRole.HOST:
        query = query.where(Host.name == token.host_name)
    if name_prefix:
        query = query.where(Host.name.startswith(name_prefix.lower(), autoescape=True))
    if status_ is not None:
        query = query.where(exists().where(HostUpdate.host_id == Host.id, HostUpdate.status == status_))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    hosts = session.scalars(query.order_by(Host.name).limit(limit).offset(offset)).all()
    counts = status_counts(session, [host.id for host in hosts])
    return HostPage(
        total=total,
        items=[HostSummary.model_validate({**_fields(host), "counts": counts[host.id]}) for host in hosts],
    )


@router.get("/{name}", responses={status.HTTP_404_NOT_FOUND: {"description": "No such host."}})
def get_host(host: HostDep, session: SessionDep) -> HostDetail:
    """A host as its last report describes it, with that report's summary."""
    last = session.scalars(
        select(HostReport)
        .where(HostReport.host_id == host.id)
        .order_by(HostReport.received_at.desc(), HostReport.id.desc())
        .limit(1)
    ).first()
    return HostDetail.model_validate(
        {
            **_fields(host),
            "counts": status_counts(session, [host.id])[host.id],
            **HostAssignment.model_validate(host, from_attributes=True).model_dump(),
            "last_report": ReportSummary.model_validate(last) if last is not None else None,
        }
    )


@router.get("/{name}/plan", responses={status.HTTP_404_NOT_FOUND: {"description": "No such host."}})
def get_plan(host: HostDep, session: SessionDep, settings: SettingsDep) -> HostPlan:
    """The host's plan as its last successful report decided it, with whether
    each file is on the server now."""
    return stored_plan(session, host, base_url=settings.base_url)


def _fields(host: Host) -> dict[str, object]:
    return {field: getattr(host, field) for field in HostSummary.model_fields if field != "counts"}
