"""A host's scan report: decide every update, store the decisions, answer with the plan.

A report replaces the host's decisions wholesale (``host_updates`` and the
files they need) and is appended to its history (``host_reports``), in the
caller's transaction: a report refused for any reason changes nothing. A
failed scan (``error_hresult``) is recorded, but the decisions of the last
successful scan stay. Everything is read and written in a few statements,
whatever the number of updates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import Insert, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from wuacache_server import policy
from wuacache_server.api.report_schemas import (
    HistoryEntry,
    HostPlan,
    HostReportIn,
    PlanFile,
    PlanRuleSets,
    PlanUpdate,
    ReportedUpdate,
)
from wuacache_server.db.models import Host, HostReport, HostUpdate, HostUpdateFile, HostUpdateStatus, RuleSet
from wuacache_server.services.needs import NEEDING_STATUSES, CatalogFile, CatalogMatch, files_for_host, match_catalog

logger = logging.getLogger(__name__)

BATCH_SIZE = 2_000
INSTALLATION = 1  # IUpdateHistoryEntry.Operation
# OperationResultCode SucceededWithErrors, Failed and Aborted: WAPT's ERROR.
FAILED_RESULT_CODES = frozenset({3, 4, 5})
RULE_SET_FIELDS = tuple(field.name for field in fields(policy.RuleSet))


class ReportError(ValueError):
    """A report that cannot be used as sent; the message says why. Nothing was stored."""


@dataclass(frozen=True)
class ReportOutcome:
    plan: HostPlan
    new_needs: tuple[int, ...]
    """Payload files this report needs that the host did not need before and the server does not hold."""


def load_rule_sets(session: Session, names: Iterable[str] | None = None) -> dict[str, policy.RuleSet]:
    """The stored rule sets named ``names`` (every one when None), by name."""
    query = select(RuleSet)
    if names is not None:
        query = query.where(RuleSet.name.in_(list(names)))
    return {record.name: policy_rule_set(record) for record in session.scalars(query)}


def policy_rule_set(record: RuleSet) -> policy.RuleSet:
    return policy.RuleSet.from_dict({field: getattr(record, field) for field in RULE_SET_FIELDS})


def ingest_report(
    session: Session, host_name: str, report: HostReportIn, *, base_url: str, now: datetime
) -> ReportOutcome:
    """Store a host's report and decide its updates; the caller commits.

    Args:
        host_name: the host the report is for, as the server names it (lowercase).
        report: the report, already validated by its schema.
        base_url: where hosts reach this server; files are under ``<base_url>/wua/``.
        now: the time of the decisions (timezone-aware).

    Raises:
        ReportError: the report names another host, lists an update twice, or
            holds an assignment or a value the policy cannot use.
    """
    if report.hostname != host_name:
        raise ReportError(f"the report is for host {report.hostname!r}, not {host_name!r} as the URL says")
    if report.error_hresult is not None:
        return _record_failed_scan(session, host_name, report, base_url=base_url, now=now)

    seen: set[str] = set()
    for update in report.updates:
        if update.update_id in seen:
            raise ReportError(f"update {update.update_id} is listed twice")
        seen.add(update.update_id)
    try:
        assignment = policy.Assignment.from_dict(report.assignment.to_dict())
    except policy.PolicyError as exc:
        raise ReportError(f"assignment: {exc}") from None
    rule_sets = load_rule_sets(session, assignment.rule_sets)
    matches = match_catalog(
        session,
        {
            (update.update_id, update.revision_number): [
                (child.update_id, child.revision_number) for child in update.bundled
            ]
            for update in report.updates
        },
    )
    installs = _last_installs(report.history)
    facts = [_facts(update, matches[_identity(update)], installs.get(update.update_id)) for update in report.updates]
    decided = policy.plan(facts, assignment, rule_sets, now)

    host_id = _upsert_host(
        session, host_name, report, now, cab_sha256=report.cab_sha256, assignment=report.assignment.to_dict()
    )
    previous_needs = set(
        session.scalars(select(HostUpdateFile.payload_file_id).where(HostUpdateFile.host_id == host_id))
    )
    session.execute(delete(HostUpdateFile).where(HostUpdateFile.host_id == host_id))
    session.execute(delete(HostUpdate).where(HostUpdate.host_id == host_id))

    rows: list[dict[str, Any]] = []
    needs: list[dict[str, Any]] = []
    entries: list[PlanUpdate] = []
    ignored_urls = ignoring_updates = 0
    for update in report.updates:
        match = matches[_identity(update)]
        decision = decided.decisions[_identity(update)]
        status = HostUpdateStatus(decision.status)
        reason = decision.reason
        needed = status in NEEDING_STATUSES
        if needed and not match.known:
            reason += "; the server's catalog does not know this revision: the server cannot provide its files"
        catalog_urls = {file.download_url for file in match.files}
        reported = set(update.download_urls).union(*(child.download_urls for child in update.bundled))
        unknown_urls = sorted(reported - catalog_urls)
        if unknown_urls:
            ignored_urls += len(unknown_urls)
            ignoring_updates += 1
        failure = installs.get(update.update_id)
        rows.append(
            {
                "host_id": host_id,
                "update_id": update.update_id,
                "revision_number": update.revision_number,
                "title": update.title,
                "is_installed": update.is_installed,
                "is_hidden": update.is_hidden,
                "is_downloaded": update.is_downloaded,
                "last_result_code": failure.result_code if failure else None,
                "last_hresult": failure.hresult & 0xFFFFFFFF if failure else None,
                "status": status,
                "reason": reason,
                "allowed": decision.allowed,
                "delayed_until": decision.delayed_until,
                "reported_urls": unknown_urls,
                "decided_at": now,
            }
        )
        files = match.files if needed else ()
        needs.extend({"host_id": host_id, "update_id": update.update_id, "payload_file_id": file.id} for file in files)
        entries.append(_plan_update(rows[-1], files, base_url))
    _insert(session, HostUpdate, rows)
    _insert(session, HostUpdateFile, needs)

    warnings = []
    if ignored_urls:
        warnings.append(
            f"{ignored_urls} download URL(s) reported for {ignoring_updates} update(s) are not the catalog's "
            "and are ignored: the server only fetches the files of its verified catalog"
        )
    counts = {status.value: count for status, count in decided.counts.items()}
    rule_notes = {
        "applied": list(decided.rules.applied),
        "ignored": list(decided.rules.ignored),
        "unknown": list(decided.rules.unknown),
    }
    session.add(
        HostReport(
            host_id=host_id,
            received_at=now,
            cab_sha256=report.cab_sha256,
            cab_date=report.cab_date,
            scan_duration_seconds=report.scan_duration_seconds,
            wuauserv_state=report.wuauserv_state,
            update_count=len(report.updates),
            counts=counts,
            rule_sets=rule_notes,
            warnings=warnings,
        )
    )
    session.flush()

    stored = {file.id for match in matches.values() for file in match.files if file.stored}
    new_needs = tuple(sorted({row["payload_file_id"] for row in needs} - previous_needs - stored))
    logger.info(
        "report of host %s: %d updates (%s), %d files needed, %d newly and not stored, %d unknown URLs ignored",
        host_name,
        len(report.updates),
        ", ".join(f"{count} {status}" for status, count in counts.items() if count),
        len({row["payload_file_id"] for row in needs}),
        len(new_needs),
        ignored_urls,
    )
    plan = HostPlan(
        host=host_name,
        decided_at=now,
        counts={HostUpdateStatus(status): count for status, count in decided.counts.items()},
        rule_sets=PlanRuleSets.model_validate(rule_notes),
        warnings=warnings,
        updates=sorted(entries, key=_plan_order),
    )
    return ReportOutcome(plan=plan, new_needs=new_needs)


def stored_plan(session: Session, host: Host, *, base_url: str) -> HostPlan:
    """The host's plan as its last successful report decided it, with the files' state now."""
    query = select(HostReport).where(HostReport.host_id == host.id)
    latest = session.scalars(query.order_by(HostReport.received_at.desc(), HostReport.id.desc()).limit(1)).first()
    decided = latest
    if latest is not None and latest.error is not None:
        decided = session.scalars(
            query.where(HostReport.error.is_(None))
            .order_by(HostReport.received_at.desc(), HostReport.id.desc())
            .limit(1)
        ).first()
    files = files_for_host(session, host.id)
    records = session.scalars(select(HostUpdate).where(HostUpdate.host_id == host.id))
    entries = [_plan_update(_columns(record), files.get(record.update_id, ()), base_url) for record in records]
    warnings = list(decided.warnings) if decided is not None else []
    if latest is not None and latest.error is not None:
        kept = "" if decided is None else f" of {decided.received_at:%Y-%m-%d %H:%M} UTC"
        warnings.insert(0, f"the last scan failed ({latest.error}): this is the plan of the last successful scan{kept}")
    return HostPlan(
        host=host.name,
        decided_at=decided.received_at if decided is not None else None,
        counts=_counts(entry.status for entry in entries),
        rule_sets=PlanRuleSets.model_validate(decided.rule_sets if decided is not None else {}),
        warnings=warnings,
        updates=sorted(entries, key=_plan_order),
    )


def status_counts(session: Session, host_ids: Sequence[int]) -> dict[int, dict[HostUpdateStatus, int]]:
    """Each host's updates per status, in one query."""
    counts = {host_id: _counts(()) for host_id in host_ids}
    query = (
        select(HostUpdate.host_id, HostUpdate.status, func.count())
        .where(HostUpdate.host_id.in_(host_ids))
        .group_by(HostUpdate.host_id, HostUpdate.status)
    )
    for host_id, status, count in session.execute(query):
        counts[host_id][status] = count
    return counts


def _record_failed_scan(
    session: Session, host_name: str, report: HostReportIn, *, base_url: str, now: datetime
) -> ReportOutcome:
    host_id = _upsert_host(session, host_name, report, now)
    hresult = report.error_hresult & 0xFFFFFFFF if report.error_hresult is not None else 0
    session.add(
        HostReport(
            host_id=host_id,
            received_at=now,
            cab_sha256=report.cab_sha256,
            cab_date=report.cab_date,
            scan_duration_seconds=report.scan_duration_seconds,
            wuauserv_state=report.wuauserv_state,
            error=f"the scan failed with 0x{hresult:08X}",
        )
    )
    session.flush()
    logger.info("report of host %s: the scan failed with 0x%08X; its plan is kept", host_name, hresult)
    return ReportOutcome(plan=stored_plan(session, session.get_one(Host, host_id), base_url=base_url), new_needs=())


def _identity(update: ReportedUpdate) -> tuple[str, int]:
    return update.update_id, update.revision_number


def _last_installs(history: Iterable[HistoryEntry]) -> dict[str, HistoryEntry]:
    """The newest install attempt of each update; WUA lists its history newest first,
    so of two attempts with the same date the first listed wins."""
    newest: dict[str, HistoryEntry] = {}
    for entry in history:
        if entry.operation == INSTALLATION:
            known = newest.get(entry.update_id)
            if known is None or entry.date > known.date:
                newest[entry.update_id] = entry
    return newest


def _facts(update: ReportedUpdate, match: CatalogMatch, last_install: HistoryEntry | None) -> policy.UpdateFacts:
    def categories(kind: str) -> list[tuple[str, str]]:
        return [(category.id, category.name) for category in update.categories if category.type.casefold() == kind]

    products = categories("product")
    classifications = categories("updateclassification")
    failed = last_install is not None and last_install.result_code in FAILED_RESULT_CODES
    try:
        return policy.UpdateFacts(
            update_id=update.update_id,
            revision_number=update.revision_number,
            title=update.title,
            kb_ids=tuple(update.kb_ids),
            product_names=tuple(name for _, name in products if name.strip()),
            product_ids=tuple(category_id for category_id, _ in products),
            classification_names=tuple(name for _, name in classifications if name.strip()),
            classification_ids=tuple(category_id for category_id, _ in classifications),
            msrc_severity=update.msrc_severity,
            last_deployment_change_time=update.last_deployment_change_time,
            is_installed=update.is_installed,
            is_hidden=update.is_hidden,
            last_install_failed=failed,
            last_hresult=last_install.hresult if failed and last_install is not None else None,
            files=match.files_state,
        )
    except policy.PolicyError as exc:
        raise ReportError(f"update {update.update_id}: {exc}") from None


def _upsert_host(session: Session, name: str, report: HostReportIn, now: datetime, **decided: Any) -> int:
    """Create or update the host from the report's envelope; return its id.

    An upsert, so that two first reports of a host racing each other both land.
    """
    values = {
        "os_caption": report.os.caption,
        "os_build": report.os.build,
        "os_architecture": report.os.architecture,
        "wua_version": report.wua_version,
        "reboot_pending": report.reboot_required,
        "last_report_at": now,
        **decided,
    }
    dialect_insert = _dialect_insert(session)
    statement = dialect_insert(Host).values(name=name, **values)
    statement = statement.on_conflict_do_update(
        index_elements=[Host.name], set_={key: statement.excluded[key] for key in values}
    ).returning(Host.id)
    host_id: int = session.execute(statement).scalar_one()
    return host_id


def _dialect_insert(session: Session) -> Callable[..., Any]:
    """The INSERT with ON CONFLICT of the session's database."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _insert(session: Session, model: type[Any], rows: Sequence[dict[str, Any]]) -> None:
    statement: Insert = insert(model)
    for start in range(0, len(rows), BATCH_SIZE):
        session.execute(statement, rows[start : start + BATCH_SIZE])


def _columns(record: HostUpdate) -> dict[str, Any]:
    return {
        "update_id": record.update_id,
        "revision_number": record.revision_number,
        "title": record.title,
        "status": record.status,
        "reason": record.reason,
        "allowed": record.allowed,
        "delayed_until": record.delayed_until,
    }


def _plan_update(row: Mapping[str, Any], files: Iterable[CatalogFile], base_url: str) -> PlanUpdate:
    return PlanUpdate(
        update_id=row["update_id"],
        revision_number=row["revision_number"],
        title=row["title"],
        status=row["status"],
        reason=row["reason"],
        allowed=row["allowed"],
        delayed_until=row["delayed_until"],
        files=[
            PlanFile(
                file_name=file.file_name,
                url=f"{base_url}/wua/{quote(file.file_name)}",
                download_url=file.download_url,
                sha1=file.sha1,
                size=file.size,
                available=file.stored,
            )
            for file in sorted(files, key=lambda file: file.file_name)
        ],
    )


def _plan_order(entry: PlanUpdate) -> tuple[str, str]:
    return entry.title, entry.update_id


def _counts(statuses: Iterable[HostUpdateStatus]) -> dict[HostUpdateStatus, int]:
    counts = dict.fromkeys(HostUpdateStatus, 0)
    for status in statuses:
        counts[status] += 1
    return counts
