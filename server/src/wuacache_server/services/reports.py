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

from sqlalchemy import delete, func, insert, select
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
from wuacache_server.config import DEFAULT_REPORT_HISTORY
from wuacache_server.db.models import Host, HostReport, HostUpdate, HostUpdateFile, HostUpdateStatus, RuleSet
from wuacache_server.services import audit
from wuacache_server.services.host_rules import active_host_rules
from wuacache_server.services.needs import NEEDING_STATUSES, CatalogFile, CatalogMatch, files_for_host, match_catalog

logger = logging.getLogger(__name__)

BATCH_SIZE = 2_000
INSTALLATION = 1  # IUpdateHistoryEntry.Operation
# OperationResultCode SucceededWithErrors, Failed and Aborted: WAPT's ERROR.
FAILED_RESULT_CODES = frozenset({3, 4, 5})
RULE_SET_FIELDS = tuple(field.name for field in fields(policy.RuleSet))
NOT_IN_CATALOG = "the server's catalog does not know this revision: the server cannot provide its files"


class ReportError(ValueError):
    """A report that cannot be used as sent; the message says why. Nothing was stored."""


@dataclass(frozen=True)
class ReportOutcome:
    plan: HostPlan
    new_needs: tuple[int, ...]
    """Payload files this report needs that the host did not need before and the server does not hold."""


def load_rule_sets(session: Session, names: Iterable[str]) -> dict[str, policy.RuleSet]:
    """The stored rule sets among ``names``, by name, as the policy reads them."""
    records = session.scalars(select(RuleSet).where(RuleSet.name.in_(list(names))))
    return {
        record.name: policy.RuleSet.from_dict({field: getattr(record, field) for field in RULE_SET_FIELDS})
        for record in records
    }


def ingest_report(
    session: Session,
    host_name: str,
    report: HostReportIn,
    *,
    base_url: str,
    now: datetime,
    keep_reports: int = DEFAULT_REPORT_HISTORY,
    assigned_by: str | None = None,
    default_assignment: Mapping[str, Any] | None = None,
) -> ReportOutcome:
    """Store a host's report and decide its updates; the caller commits.

    Args:
        host_name: the host the report is for, as the server names it (lowercase).
        report: the report, already validated by its schema.
        base_url: where hosts reach this server; files are under ``<base_url>/wua/``.
        now: the time of the decisions (timezone-aware).
        keep_reports: how many reports of the host the history keeps.
        assigned_by: who sent the report, when they may set the host's assignment
            (a controller or an admin): the report's assignment is then stored.
            None (a host's own token) leaves the stored assignment alone.
        default_assignment: the assignment of a host that none was set for.

    Raises:
        ReportError: the report names another host, lists an update twice, or
            holds an assignment or a value the policy cannot use.
    """
    if report.hostname != host_name:
        raise ReportError(f"the report is for host {report.hostname!r}, not {host_name!r} as the URL says")
    sent_assignment = report.assignment.to_dict()
    if assigned_by is not None:
        _assignment(sent_assignment)
    if report.error_hresult is not None:
        return _record_failed_scan(
            session,
            host_name,
            report,
            base_url=base_url,
            now=now,
            keep_reports=keep_reports,
            assignment=sent_assignment if assigned_by is not None else None,
            assigned_by=assigned_by,
        )
    # Writing first takes the lock before anything is read: two reports of a host
    # (on SQLite, any two reports) then run one after the other, each on fresh data.
    host_id = _upsert_host(session, host_name, report, now, cab_sha256=report.cab_sha256)
    if assigned_by is not None:
        _store_assignment(session, host_id, sent_assignment, now=now, by=assigned_by)
    assignment, assignment_warnings = _host_assignment(
        session, host_id, ignored=sent_assignment if assigned_by is None else None, default=default_assignment or {}
    )
    previous_needs = set(
        session.scalars(select(HostUpdateFile.payload_file_id).where(HostUpdateFile.host_id == host_id))
    )
    # Before reading which files are stored: the lock on host_update_files
    # keeps a cleanup from deleting one of them until this report commits
    # (services.cleanup).
    session.execute(delete(HostUpdateFile).where(HostUpdateFile.host_id == host_id))
    decided, rules = _decide(session, report, assignment, active_host_rules(session, host_name, now), now)
    session.execute(delete(HostUpdate).where(HostUpdate.host_id == host_id))
    _insert(session, HostUpdate, [{**item.row(), "host_id": host_id, "decided_at": now} for item in decided])
    _insert(
        session,
        HostUpdateFile,
        [
            {"host_id": host_id, "update_id": item.update.update_id, "payload_file_id": file.id}
            for item in decided
            for file in item.files
        ],
    )

    counts = _counts(item.status for item in decided)
    rule_notes = {"applied": list(rules.applied), "ignored": list(rules.ignored), "unknown": list(rules.unknown)}
    warnings = [*assignment_warnings, *_unknown_rule_set_warnings(rules), *_url_warnings(decided)]
    _add_to_history(
        session,
        host_id,
        report,
        now,
        keep_reports,
        update_count=len(decided),
        counts={status.value: count for status, count in counts.items()},
        rule_sets=rule_notes,
        warnings=warnings,
    )

    needed = {file.id: file for item in decided for file in item.files}
    new_needs = tuple(
        sorted(file_id for file_id, file in needed.items() if file_id not in previous_needs and not file.stored)
    )
    logger.info(
        "report of host %s: %d updates (%s); %d files needed, %d of them newly and not stored",
        host_name,
        len(decided),
        ", ".join(f"{count} {status}" for status, count in counts.items() if count) or "none",
        len(needed),
        len(new_needs),
    )
    plan = HostPlan(
        host=host_name,
        decided_at=now,
        counts=counts,
        rule_sets=PlanRuleSets.model_validate(rule_notes),
        warnings=warnings,
        updates=_ordered(_plan_update(item.row(), item.files, base_url) for item in decided),
    )
    return ReportOutcome(plan=plan, new_needs=new_needs)


def set_host_assignment(
    session: Session, host_name: str, assignment: Mapping[str, Any], *, now: datetime, by: str
) -> Host:
    """Set a host's assignment, creating the host if it never reported; the caller commits."""
    values = {"assignment": dict(assignment), "assignment_set_at": now, "assignment_set_by": by}
    statement = _dialect_insert(session)(Host).values(name=host_name, **values)
    statement = statement.on_conflict_do_update(index_elements=[Host.name], set_=values).returning(Host.id)
    host_id = session.execute(statement).scalar_one()
    return session.get_one(Host, host_id, populate_existing=True)


def stored_plan(session: Session, host: Host, *, base_url: str) -> HostPlan:
    """The host's plan as its last successful report decided it, with the files' state now."""
    reports = select(HostReport).where(HostReport.host_id == host.id)
    newest_first = (HostReport.received_at.desc(), HostReport.id.desc())
    latest = session.scalars(reports.order_by(*newest_first).limit(1)).first()
    decided = latest
    if latest is not None and latest.error is not None:
        decided = session.scalars(reports.where(HostReport.error.is_(None)).order_by(*newest_first).limit(1)).first()
    files = files_for_host(session, host.id)
    records = session.scalars(select(HostUpdate).where(HostUpdate.host_id == host.id))
    entries = [
        _plan_update(
            {column: getattr(record, column) for column in _PLAN_COLUMNS}, files.get(record.update_id, ()), base_url
        )
        for record in records
    ]
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
        updates=_ordered(entries),
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


# The columns of host_updates a plan shows.
_PLAN_COLUMNS = ("update_id", "revision_number", "title", "status", "reason", "allowed", "delayed_until")


@dataclass(frozen=True)
class _Decided:
    """One reported update, its catalog match, and the policy's decision."""

    update: ReportedUpdate
    match: CatalogMatch
    decision: policy.Decision
    last_install: HistoryEntry | None

    @property
    def status(self) -> HostUpdateStatus:
        return HostUpdateStatus(self.decision.status)

    @property
    def needs_files(self) -> bool:
        """Whether the host is to install the update, which it has not done yet."""
        return self.status in NEEDING_STATUSES and self.decision.allowed and not self.update.reboot_required

    @property
    def files(self) -> tuple[CatalogFile, ...]:
        """The files the host needs: those of an update it is to install."""
        return self.match.files if self.needs_files else ()

    @property
    def ignored_urls(self) -> list[str]:
        """The download URLs reported for the update that are not its catalog files'."""
        reported = set(self.update.download_urls).union(*(child.download_urls for child in self.update.bundled))
        return sorted(reported - {file.download_url for file in self.match.files})

    def row(self) -> dict[str, Any]:
        """The update's row of ``host_updates``, but for its host and time."""
        reason = self.decision.reason
        if self.needs_files and not self.match.known:
            reason = f"{reason}; {NOT_IN_CATALOG}"
        last = self.last_install
        return {
            "update_id": self.update.update_id,
            "revision_number": self.update.revision_number,
            "title": self.update.title,
            "status": self.status,
            "reason": reason,
            "allowed": self.decision.allowed,
            "delayed_until": self.decision.delayed_until,
            "is_installed": self.update.is_installed,
            "is_hidden": self.update.is_hidden,
            "is_downloaded": self.update.is_downloaded,
            "last_result_code": last.result_code if last is not None else None,
            "last_hresult": last.hresult & 0xFFFFFFFF if last is not None else None,
            "reported_urls": self.ignored_urls,
        }


def _assignment(values: Mapping[str, Any]) -> policy.Assignment:
    try:
        return policy.Assignment.from_dict(values)
    except policy.PolicyError as exc:
        raise ReportError(f"assignment: {exc}") from None


def _store_assignment(session: Session, host_id: int, assignment: dict[str, Any], *, now: datetime, by: str) -> None:
    """Make ``assignment`` the host's, recording who set it when it changes."""
    host = session.get_one(Host, host_id)
    if host.assignment_set_at is not None and host.assignment == assignment:
        return
    host.assignment, host.assignment_set_at, host.assignment_set_by = assignment, now, by
    session.flush()
    audit.record(session, by, "assignment.set", host.name, assignment=assignment, through="report")


def _host_assignment(
    session: Session, host_id: int, *, ignored: Mapping[str, Any] | None, default: Mapping[str, Any]
) -> tuple[policy.Assignment, list[str]]:
    """The assignment that judges the host's report, and the warnings to give about it.

    ``ignored`` is the assignment a host sent itself, which never counts.
    """
    stored, set_at = session.execute(select(Host.assignment, Host.assignment_set_at).where(Host.id == host_id)).one()
    followed = "the assignment a controller set" if set_at is not None else "the server's default assignment"
    warnings = []
    if ignored:
        warnings.append(
            f"the assignment in the report is ignored: only a controller or an admin sets a host's; "
            f"this plan follows {followed}"
        )
    return _assignment(stored if set_at is not None else default), warnings


def _unknown_rule_set_warnings(rules: policy.EffectiveRules) -> list[str]:
    if not rules.unknown:
        return []
    names = ", ".join(f"'{name}'" for name in rules.unknown)
    return [
        f"the assignment names unknown rule set(s) {names}: the updates the other rules allow are held "
        "in ERROR until it names rule sets that exist"
    ]


def _decide(
    session: Session,
    report: HostReportIn,
    assignment: policy.Assignment,
    host_rules: Sequence[policy.HostRule],
    now: datetime,
) -> tuple[list[_Decided], policy.EffectiveRules]:
    """Decide every reported update; ReportError for what the policy cannot use."""
    seen: set[str] = set()
    for update in report.updates:
        if update.update_id in seen:
            raise ReportError(f"update {update.update_id} is listed twice")
        seen.add(update.update_id)
    keyed = [((update.update_id, update.revision_number), update) for update in report.updates]
    matches = match_catalog(
        session,
        {key: [(child.update_id, child.revision_number) for child in update.bundled] for key, update in keyed},
    )
    installs = _last_installs(report.history)
    facts = [_facts(update, matches[key], installs.get(update.update_id)) for key, update in keyed]
    plan = policy.plan(facts, assignment, load_rule_sets(session, assignment.rule_sets), now, host_rules)
    decided = [
        _Decided(update, matches[key], plan.decisions[key], installs.get(update.update_id)) for key, update in keyed
    ]
    return decided, plan.rules


def _record_failed_scan(
    session: Session,
    host_name: str,
    report: HostReportIn,
    *,
    base_url: str,
    now: datetime,
    keep_reports: int,
    assignment: dict[str, Any] | None,
    assigned_by: str | None,
) -> ReportOutcome:
    host_id = _upsert_host(session, host_name, report, now)
    if assignment is not None and assigned_by is not None:
        _store_assignment(session, host_id, assignment, now=now, by=assigned_by)
    hresult = (report.error_hresult or 0) & 0xFFFFFFFF
    _add_to_history(session, host_id, report, now, keep_reports, error=f"the scan failed with 0x{hresult:08X}")
    logger.info("report of host %s: the scan failed with 0x%08X; its plan is kept", host_name, hresult)
    return ReportOutcome(plan=stored_plan(session, session.get_one(Host, host_id), base_url=base_url), new_needs=())


def _add_to_history(
    session: Session, host_id: int, report: HostReportIn, now: datetime, keep: int, **outcome: Any
) -> None:
    """Append the report to the host's history and drop what falls beyond the ``keep`` newest."""
    session.add(
        HostReport(
            host_id=host_id,
            received_at=now,
            cab_sha256=report.cab_sha256,
            cab_date=report.cab_date,
            scan_duration_seconds=report.scan_duration_seconds,
            wuauserv_state=report.wuauserv_state,
            **outcome,
        )
    )
    session.flush()
    newest = select(HostReport.id).where(HostReport.host_id == host_id).order_by(HostReport.id.desc()).limit(keep)
    session.execute(
        delete(HostReport).where(HostReport.host_id == host_id, HostReport.id.not_in(newest.scalar_subquery()))
    )


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
            awaiting_restart=update.reboot_required and not update.is_installed,
            is_hidden=update.is_hidden,
            last_install_failed=failed,
            last_hresult=last_install.hresult if failed and last_install is not None else None,
            files=match.files_state,
        )
    except policy.PolicyError as exc:
        raise ReportError(f"update {update.update_id}: {exc}") from None


def _url_warnings(decided: Sequence[_Decided]) -> list[str]:
    ignored = [len(item.ignored_urls) for item in decided if item.ignored_urls]
    if not ignored:
        return []
    return [
        f"{sum(ignored)} download URL(s) reported for {len(ignored)} update(s) are not the catalog's "
        "and are ignored: the server only fetches the files of its verified catalog"
    ]


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
    statement = _dialect_insert(session)(Host).values(name=name, **values)
    statement = statement.on_conflict_do_update(
        index_elements=[Host.name], set_={key: statement.excluded[key] for key in values}
    ).returning(Host.id)
    host_id: int = session.execute(statement).scalar_one()
    return host_id


def _dialect_insert(session: Session) -> Callable[..., Any]:
    """The INSERT with ON CONFLICT of the session's database."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _insert(session: Session, model: type[HostUpdate | HostUpdateFile], rows: Sequence[dict[str, Any]]) -> None:
    # render_nulls: rows that leave different columns empty still make one
    # executemany, instead of one statement per combination of empty columns.
    statement = insert(model).execution_options(render_nulls=True)
    for start in range(0, len(rows), BATCH_SIZE):
        session.execute(statement, rows[start : start + BATCH_SIZE])


def _plan_update(columns: dict[str, Any], files: Iterable[CatalogFile], base_url: str) -> PlanUpdate:
    return PlanUpdate(
        **{column: columns[column] for column in _PLAN_COLUMNS},
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


def _ordered(entries: Iterable[PlanUpdate]) -> list[PlanUpdate]:
    return sorted(entries, key=lambda entry: (entry.title, entry.update_id))


def _counts(statuses: Iterable[HostUpdateStatus]) -> dict[HostUpdateStatus, int]:
    counts = dict.fromkeys(HostUpdateStatus, 0)
    for status in statuses:
        counts[status] += 1
    return counts
