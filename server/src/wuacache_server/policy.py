"""Rule sets and per-update decisions: which updates a host may install, and why.

A host's assignment, sent with its scan report as the Ansible inventory sets
it, names the rule sets the host follows and adds its own ``default_allow``,
``allowed_severities``, ``install_delay`` and ``maturities``.
:func:`effective_rules` merges the named rule sets as WAPT's WAPTWUA merges its
rules packages: lists unite, and a rule set whose maturity the host does not
accept is ignored. :func:`decide` then gives every update the host reported a
status and a human-readable reason, the first that applies in this order:

``OK``         installed, even when forbidden: wuacache never uninstalls an update
``PENDING``    installed, but Windows completes it at the host's next restart
``DISCARDED``  held on the host (a :class:`HostRule` hold)
(overridden)   an override on the host allows it, whatever the rules: as allowed below
``DISCARDED``  forbidden, allowed by no rule, or still inside its install delay
``ERROR``      allowed, but its last install attempt failed
``PENDING``    allowed and needed; its files are on the server, being fetched, or it has none
``MISSING``    allowed and needed; its files are not yet on the server

Matching follows Windows Update's identities: UpdateIDs are GUIDs compared
case-insensitively; KBs are numbers (``KB5034122`` and ``5034122`` alike);
products and classifications are named as ``ICategory.Name`` (case-insensitive)
or given by category GUID; severities are the four MSRC ratings. An update
without ``MsrcSeverity`` (every non-security update) matches no severity rule:
"Unspecified" is not a rating, such updates are selected by classification.

Everything here is pure: no database, no I/O and no clock (callers pass ``now``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

SEVERITIES = ("Critical", "Important", "Moderate", "Low")
# Longer than a year is a typo, not a ring; it also keeps deadlines far from datetime's limits.
MAX_INSTALL_DELAY = timedelta(days=365)
# Source label of the entries a host's assignment brings itself.
HOST_ASSIGNMENT = "host assignment"

# What a rule can name, in the order forbidden rules are checked; allowed rules
# check severities before classifications (WAPT's order).
RULE_KINDS = ("updates", "kbs", "products", "classifications", "severities")
_ALLOWED_ORDER = ("updates", "kbs", "products", "severities", "classifications")
# How a matched value reads in a reason: "UpdateID …", "KB5034122", "product …".
_REASON_LABELS = {
    "updates": "UpdateID ",
    "kbs": "",
    "products": "product ",
    "classifications": "classification ",
    "severities": "severity ",
}

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_KB = re.compile(r"(?:KB)?([1-9][0-9]{0,9})", re.IGNORECASE)
_DELAY = re.compile(r"([0-9]{1,12})([mhdw]?)", re.IGNORECASE)
_DELAY_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
# Rule set names travel in URLs and inventory variables; maturities are WAPT's DEV, PREPROD, PROD…
_RULE_SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_MATURITY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
_SEVERITY_BY_KEY = {severity.casefold(): severity for severity in SEVERITIES}
_LATEST = datetime.max.replace(tzinfo=UTC)


class PolicyError(ValueError):
    """Rules, an assignment or update facts that cannot be used as given."""


class Status(StrEnum):
    """The status of one update on one host (the seed's four, plus ERROR)."""

    OK = "OK"
    PENDING = "PENDING"
    MISSING = "MISSING"
    DISCARDED = "DISCARDED"
    ERROR = "ERROR"


class FilesState(StrEnum):
    """Where the server stands with the payload files of an update."""

    AVAILABLE = "available"
    FETCHING = "fetching"
    ABSENT = "absent"
    NONE = "none"  # the update has no payload files of its own


def _shown(value: object) -> str:
    """Quote a rejected value in an error message, cut short: it is untrusted input."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _guid(value: object, field: str) -> str:
    if isinstance(value, str) and _GUID.fullmatch(value.strip()):
        return value.strip().lower()
    raise PolicyError(f"{field}: {_shown(value)} is not a GUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")


def normalise_kb(value: object, field: str | None = None) -> str:
    """Return a KB as its digits: rules, WUA and admins write it with or without the "KB" prefix.

    Raises:
        PolicyError: ``value`` is not a KB number; the message starts with ``field`` when given.
    """
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    match = _KB.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        where = f"{field}: " if field else ""
        raise PolicyError(f"{where}{_shown(value)} is not a KB number (expected e.g. KB5034122 or 5034122)")
    return match[1]


def normalise_update_id(value: object, field: str = "update_id") -> str:
    """Return an UpdateID lowercase; PolicyError when it is not a GUID."""
    return _guid(value, field)


def _severity(value: object, field: str) -> str:
    if isinstance(value, str) and value.strip().casefold() in _SEVERITY_BY_KEY:
        return _SEVERITY_BY_KEY[value.strip().casefold()]
    raise PolicyError(
        f"{field}: {_shown(value)} is not an MSRC severity (expected Critical, Important, Moderate or Low; "
        "updates without a severity are selected by classification)"
    )


def _category(value: object, field: str) -> str:
    """Return a category reference: a GUID (lowercased) or an ``ICategory.Name`` as written."""
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(f"{field}: {_shown(value)} is neither a category name nor a category GUID")
    text = value.strip()
    return text.lower() if _GUID.fullmatch(text) else text


def _rule_set_name(value: object, field: str) -> str:
    if isinstance(value, str) and _RULE_SET_NAME.fullmatch(value):
        return value
    raise PolicyError(
        f"{field}: {_shown(value)} is not a rule set name "
        "(1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit)"
    )


def _maturity(value: object, field: str) -> str:
    if isinstance(value, str) and _MATURITY.fullmatch(value.strip()):
        return value.strip().upper()
    raise PolicyError(f"{field}: {_shown(value)} is not a maturity (e.g. DEV, PREPROD, PROD)")


# How each kind of rule entry is validated and normalised.
_RULE_ITEMS: dict[str, Callable[[object, str], str]] = {
    "updates": _guid,
    "kbs": normalise_kb,
    "products": _category,
    "classifications": _category,
    "severities": _severity,
}


def _normalised(values: object, field: str, item: Callable[[object, str], str]) -> tuple[str, ...]:
    """Validate a list with ``item``, normalise each entry and drop repeats, keeping the order."""
    if isinstance(values, str) or not isinstance(values, list | tuple):
        raise PolicyError(f"{field} must be a list, not {type(values).__name__}")
    return tuple(dict.fromkeys(item(value, field) for value in values))


def _require_boolean(value: object, field: str) -> None:
    if not isinstance(value, bool):
        raise PolicyError(f"{field} must be true or false, not {_shown(value)}")


def _utc(value: object, field: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise PolicyError(f"{field} must be a timezone-aware datetime, not {_shown(value)}")
    return value.astimezone(UTC)


def _checked_keys(data: object, what: str, known: Iterable[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise PolicyError(f"{what} must be an object, not {type(data).__name__}")
    unknown = sorted(str(key) for key in data.keys() - set(known))
    if unknown:
        raise PolicyError(f"{what}: unknown key(s) {', '.join(unknown)}")
    return data


def _listed(value: object) -> object:
    """Split WAPT's comma-separated form ("Critical,Important") into a list; leave lists alone."""
    return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value


def parse_delay(value: str | int) -> timedelta:
    """Parse an install delay in WAPT's period syntax.

    Args:
        value: ``"30m"``, ``"12h"``, ``"7d"`` or ``"2w"``; a bare number (``"15"`` or ``15``) counts days.

    Returns:
        The delay, at most :data:`MAX_INSTALL_DELAY`.

    Raises:
        PolicyError: the value is negative, too long, or not a delay.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise PolicyError(f"install_delay must not be negative, not {value}")
        count, unit = value, "d"
    else:
        match = _DELAY.fullmatch(value.strip()) if isinstance(value, str) else None
        if match is None:
            raise PolicyError(
                f"install_delay: {_shown(value)} is not a delay "
                "(expected a number of days, or a number followed by m, h, d or w, e.g. 7d)"
            )
        count, unit = int(match[1]), (match[2] or "d").lower()
    if count > MAX_INSTALL_DELAY // _DELAY_UNITS[unit]:
        raise PolicyError(f"install_delay: {_shown(value)} is longer than {format_delay(MAX_INSTALL_DELAY)}")
    return count * _DELAY_UNITS[unit]


def format_delay(delay: timedelta) -> str:
    """Say a delay the way people read it: ``"7 days"``, ``"1 day 12 hours"``, ``"30 minutes"``."""
    minutes, seconds = divmod(int(delay.total_seconds()), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute"), (seconds, "second")]
    said = [f"{count} {unit}{'' if count == 1 else 's'}" for count, unit in parts if count]
    return " ".join(said) or "0 minutes"


@dataclass(frozen=True, kw_only=True)
class RuleSet:
    """A named set of rules, as created through the API.

    UpdateIDs are stored lowercase, KBs as digits, severities in MSRC casing,
    category GUIDs lowercase and category names as written; repeats are dropped.
    A rule set without maturity applies to every host.
    """

    name: str
    maturity: str | None = None
    allowed_updates: tuple[str, ...] = ()
    forbidden_updates: tuple[str, ...] = ()
    allowed_kbs: tuple[str, ...] = ()
    forbidden_kbs: tuple[str, ...] = ()
    allowed_products: tuple[str, ...] = ()
    forbidden_products: tuple[str, ...] = ()
    allowed_classifications: tuple[str, ...] = ()
    forbidden_classifications: tuple[str, ...] = ()
    allowed_severities: tuple[str, ...] = ()
    forbidden_severities: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _rule_set_name(self.name, "name"))
        if self.maturity is not None:
            object.__setattr__(self, "maturity", _maturity(self.maturity, "maturity"))
        for kind, item in _RULE_ITEMS.items():
            for field in (f"allowed_{kind}", f"forbidden_{kind}"):
                object.__setattr__(self, field, _normalised(getattr(self, field), field, item))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleSet:
        """Build a rule set from its JSON form; lists that are left out are empty.

        Raises:
            PolicyError: an unknown key, a missing name, or a value of the wrong type or form.
        """
        data = _checked_keys(data, "rule set", (field.name for field in fields(cls)))
        if "name" not in data:
            raise PolicyError("rule set: name is required")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form that :meth:`from_dict` reads back."""
        values = {field.name: getattr(self, field.name) for field in fields(self)}
        return {name: list(value) if isinstance(value, tuple) else value for name, value in values.items()}


@dataclass(frozen=True, kw_only=True)
class Assignment:
    """What a host follows, as its inventory variables send it with each report.

    ``maturities`` are the rule set maturities the host accepts (WAPT's rings);
    rule sets without maturity apply whatever they are.
    """

    rule_sets: tuple[str, ...] = ()
    default_allow: bool = False
    allowed_severities: tuple[str, ...] = ()
    install_delay: timedelta = timedelta(0)
    maturities: tuple[str, ...] = ("PROD",)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rule_sets", _normalised(self.rule_sets, "rule_sets", _rule_set_name))
        _require_boolean(self.default_allow, "default_allow")
        object.__setattr__(
            self, "allowed_severities", _normalised(self.allowed_severities, "allowed_severities", _severity)
        )
        object.__setattr__(self, "maturities", _normalised(self.maturities, "maturities", _maturity))
        delay = self.install_delay
        if not isinstance(delay, timedelta) or not timedelta(0) <= delay <= MAX_INSTALL_DELAY:
            raise PolicyError(f"install_delay must be a duration from 0 to {format_delay(MAX_INSTALL_DELAY)}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Assignment:
        """Build an assignment from its JSON form; keys that are left out take their defaults.

        Lists may also come as comma-separated strings (``"Critical,Important"``),
        ``install_delay`` in :func:`parse_delay`'s syntax, and null means no delay.

        Raises:
            PolicyError: an unknown key, or a value of the wrong type or form.
        """
        values = dict(_checked_keys(data, "assignment", (field.name for field in fields(cls))))
        for key in ("rule_sets", "allowed_severities", "maturities"):
            if key in values:
                values[key] = _listed(values[key])
        if "install_delay" in values:
            delay = values["install_delay"]
            values["install_delay"] = timedelta(0) if delay is None else parse_delay(delay)
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class UpdateFacts:
    """What a host reported about one update, plus where the server stands with its files.

    ``last_hresult`` is stored as an unsigned 32-bit value, since hosts may send
    it signed; an ``msrc_severity`` outside the four ratings is kept as sent and
    matches no severity rule.
    """

    update_id: str
    revision_number: int
    title: str
    kb_ids: tuple[str, ...] = ()
    product_names: tuple[str, ...] = ()
    product_ids: tuple[str, ...] = ()
    classification_names: tuple[str, ...] = ()
    classification_ids: tuple[str, ...] = ()
    msrc_severity: str | None = None
    last_deployment_change_time: datetime
    is_installed: bool = False
    # Installed, completed by the next restart (IUpdate.RebootRequired of an update not yet IsInstalled).
    awaiting_restart: bool = False
    is_hidden: bool = False
    last_install_failed: bool = False
    last_hresult: int | None = None
    files: FilesState

    def __post_init__(self) -> None:
        object.__setattr__(self, "update_id", _guid(self.update_id, "update_id"))
        revision = self.revision_number
        if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
            raise PolicyError(f"revision_number must be a non-negative integer, not {_shown(self.revision_number)}")
        if not isinstance(self.title, str):
            raise PolicyError(f"title must be a string, not {_shown(self.title)}")
        object.__setattr__(self, "kb_ids", _normalised(self.kb_ids, "kb_ids", normalise_kb))
        for kind in ("product", "classification"):
            object.__setattr__(
                self, f"{kind}_names", _normalised(getattr(self, f"{kind}_names"), f"{kind}_names", _category)
            )
            object.__setattr__(self, f"{kind}_ids", _normalised(getattr(self, f"{kind}_ids"), f"{kind}_ids", _guid))
        object.__setattr__(self, "msrc_severity", _reported_severity(self.msrc_severity))
        object.__setattr__(
            self, "last_deployment_change_time", _utc(self.last_deployment_change_time, "last_deployment_change_time")
        )
        for flag in ("is_installed", "awaiting_restart", "is_hidden", "last_install_failed"):
            _require_boolean(getattr(self, flag), flag)
        object.__setattr__(self, "last_hresult", _hresult(self.last_hresult))
        try:
            object.__setattr__(self, "files", FilesState(self.files))
        except ValueError:
            raise PolicyError(f"files: {_shown(self.files)} is not one of {', '.join(FilesState)}") from None


def _reported_severity(value: object) -> str | None:
    """WUA reports an empty MsrcSeverity for non-security updates."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise PolicyError(f"msrc_severity must be a string or null, not {_shown(value)}")
    text = value.strip()
    return _SEVERITY_BY_KEY.get(text.casefold(), text) or None


def _hresult(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**31) <= value < 2**32:
        raise PolicyError(f"last_hresult must be a 32-bit integer, not {_shown(value)}")
    return value & 0xFFFFFFFF


@dataclass(frozen=True, kw_only=True)
class EffectiveRules:
    """The rules one host follows once its rule sets are merged.

    ``allowed`` and ``forbidden`` map each of :data:`RULE_KINDS` to the listed
    values, keyed casefolded, and each value to the sources that listed it
    (``"rule set 'name'"`` or :data:`HOST_ASSIGNMENT`), so that reasons can
    name them. ``ignored`` says which rule sets were left out and why;
    ``unknown`` lists assigned names no rule set has.
    """

    allowed: Mapping[str, Mapping[str, tuple[str, ...]]]
    forbidden: Mapping[str, Mapping[str, tuple[str, ...]]]
    applied: tuple[str, ...]
    ignored: tuple[str, ...]
    unknown: tuple[str, ...]


def effective_rules(assignment: Assignment, rule_sets: Mapping[str, RuleSet]) -> EffectiveRules:
    """Merge the rule sets an assignment names, keeping those of a maturity the host accepts.

    Args:
        assignment: the host's assignment.
        rule_sets: every rule set the server knows, by name.

    Returns:
        The united lists, the host's ``allowed_severities`` among the allowed severities.
    """
    allowed: dict[str, dict[str, tuple[str, ...]]] = {kind: {} for kind in RULE_KINDS}
    forbidden: dict[str, dict[str, tuple[str, ...]]] = {kind: {} for kind in RULE_KINDS}
    applied: list[str] = []
    ignored: list[str] = []
    unknown: list[str] = []
    for name in assignment.rule_sets:
        rule_set = rule_sets.get(name)
        if rule_set is None:
            unknown.append(name)
        elif rule_set.maturity is not None and rule_set.maturity not in assignment.maturities:
            accepted = ", ".join(assignment.maturities) or "none"
            ignored.append(
                f"rule set '{name}' ignored: its maturity {rule_set.maturity} is not among "
                f"the host's maturities ({accepted})"
            )
        else:
            applied.append(name)
            for kind in RULE_KINDS:
                _unite(allowed[kind], getattr(rule_set, f"allowed_{kind}"), f"rule set '{name}'")
                _unite(forbidden[kind], getattr(rule_set, f"forbidden_{kind}"), f"rule set '{name}'")
    _unite(allowed["severities"], assignment.allowed_severities, HOST_ASSIGNMENT)
    return EffectiveRules(
        allowed=allowed, forbidden=forbidden, applied=tuple(applied), ignored=tuple(ignored), unknown=tuple(unknown)
    )


def _unite(entries: dict[str, tuple[str, ...]], values: Iterable[str], source: str) -> None:
    for value in values:
        sources = entries.setdefault(value.casefold(), ())
        if source not in sources:
            entries[value.casefold()] = (*sources, source)


@dataclass(frozen=True, kw_only=True)
class HostRule:
    """A hold (``allow`` false) or an override (``allow`` true) of one update on one
    host, named by UpdateID or KB, that a controller or an admin set: it beats the rules."""

    allow: bool
    update_id: str | None = None
    kb: str | None = None
    reason: str
    by: str
    at: datetime
    until: datetime | None = None

    def applies(self, update: UpdateFacts, now: datetime) -> bool:
        if self.until is not None and now >= self.until:
            return False
        return update.update_id == self.update_id or (self.kb is not None and self.kb in update.kb_ids)

    def describe(self) -> str:
        """``"held on this host by token 3 (ansible) on 2024-02-13 18:00 UTC: breaks the VPN client"``."""
        until = f" until {_when(self.until)}" if self.until is not None else ""
        what = "overridden" if self.allow else "held"
        return f"{what} on this host by {self.by} on {_when(self.at)}{until}: {self.reason}"


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The status of one update on one host, and why.

    ``allowed`` is the rules' verdict (true for an update held back only by its
    install delay); ``matched`` names the rule entries that decided it, e.g.
    ``"rule set 'prod-security': allowed_severities Critical"``.
    """

    status: Status
    reason: str
    allowed: bool
    delayed_until: datetime | None = None
    matched: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Verdict:
    """What the rules alone say about an update, before its state is considered."""

    allowed: bool
    forbidden: bool
    reason: str
    matched: tuple[str, ...]


# The reason's tail for an allowed, needed update, by where its files stand.
FILES_OUTCOMES: Mapping[FilesState, tuple[Status, str]] = {
    FilesState.AVAILABLE: (Status.PENDING, "files available on the server"),
    FilesState.FETCHING: (Status.PENDING, "files being fetched"),
    FilesState.NONE: (Status.PENDING, "no files to download"),
    FilesState.ABSENT: (Status.MISSING, "files not yet on the server"),
}


# The reason of an installed update that Windows completes at the next restart.
AWAITING_RESTART = "installed; the host's next restart completes it"


def decide(
    update: UpdateFacts,
    rules: EffectiveRules,
    assignment: Assignment,
    now: datetime,
    host_rules: Iterable[HostRule] = (),
) -> Decision:
    """Decide the status of one update on a host.

    Args:
        update: the update as the host reported it.
        rules: the host's merged rules, from :func:`effective_rules`.
        assignment: the host's assignment (``default_allow``, ``install_delay``).
        now: the current time, timezone-aware; compared in UTC.
        host_rules: the host's holds and overrides; a hold beats an override.

    Raises:
        PolicyError: ``now`` is naive.
    """
    now = _utc(now, "now")
    verdict = _judge(update, rules, assignment)
    if update.is_installed:
        reason = "installed"
        if verdict.forbidden:
            reason = f"installed although {verdict.reason}; wuacache never uninstalls it"
        return Decision(status=Status.OK, reason=reason, allowed=verdict.allowed, matched=verdict.matched)
    if update.awaiting_restart:
        return Decision(status=Status.PENDING, reason=AWAITING_RESTART, allowed=verdict.allowed, matched=verdict.matched)

    hidden = "; hidden on the host" if update.is_hidden else ""
    applying = sorted((rule for rule in host_rules if rule.applies(update, now)), key=lambda rule: rule.allow)
    if applying and not applying[0].allow:
        return Decision(status=Status.DISCARDED, reason=applying[0].describe() + hidden, allowed=False)
    if applying:
        reason = f"{applying[0].describe()} (the rules: {verdict.reason})"
        return _needed(update, reason, hidden, verdict.matched)
    if not verdict.allowed:
        return Decision(status=Status.DISCARDED, reason=verdict.reason + hidden, allowed=False, matched=verdict.matched)
    if rules.unknown:
        # A misspelt rule set may be one that forbids this update: nothing it could
        # forbid is installed until the assignment names rule sets that exist.
        names = ", ".join(f"'{name}'" for name in rules.unknown)
        reason = f"{verdict.reason}, but unknown rule set {names} is assigned: not installed until it exists"
        return Decision(status=Status.ERROR, reason=reason + hidden, allowed=False, matched=verdict.matched)

    delay = assignment.install_delay
    changed = update.last_deployment_change_time
    deadline = changed + delay if changed <= _LATEST - delay else _LATEST
    if delay and now < deadline:
        reason = (
            f"{verdict.reason}, but delayed until {_when(deadline)} "
            f"(install_delay {format_delay(delay)} from its LastDeploymentChangeTime {_when(changed)})"
        )
        return Decision(
            status=Status.DISCARDED,
            reason=reason + hidden,
            allowed=True,
            delayed_until=deadline,
            matched=verdict.matched,
        )

    return _needed(update, verdict.reason, hidden, verdict.matched)


def _needed(update: UpdateFacts, allowed_because: str, hidden: str, matched: tuple[str, ...]) -> Decision:
    """The decision for an allowed update the host still needs."""
    if update.last_install_failed:
        code = "" if update.last_hresult is None else f" with 0x{update.last_hresult:08X}"
        reason = f"{allowed_because}, but the last install failed{code}"
        return Decision(status=Status.ERROR, reason=reason + hidden, allowed=True, matched=matched)
    status, files = FILES_OUTCOMES[update.files]
    return Decision(status=status, reason=f"{allowed_because}; {files}{hidden}", allowed=True, matched=matched)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _judge(update: UpdateFacts, rules: EffectiveRules, assignment: Assignment) -> _Verdict:
    """Forbidden rules first, then allowed rules in WAPT's order, then ``default_allow``."""
    candidates = _candidates(update)
    found = _first_match(rules.forbidden, RULE_KINDS, candidates)
    if found is not None:
        return _Verdict(False, True, f"forbidden by {_sources_of(*found)}", _matched("forbidden", *found))
    found = _first_match(rules.allowed, _ALLOWED_ORDER, candidates)
    if found is not None:
        return _Verdict(True, False, f"allowed by {_sources_of(*found)}", _matched("allowed", *found))
    if assignment.default_allow:
        return _Verdict(
            True, False, "allowed by default_allow (no rule names it)", (f"{HOST_ASSIGNMENT}: default_allow true",)
        )
    return _Verdict(
        False, False, "no rule allows it and default_allow is false", (f"{HOST_ASSIGNMENT}: default_allow false",)
    )


def _candidates(update: UpdateFacts) -> dict[str, dict[str, str]]:
    """The update's values a rule can name, per kind: matching key → how a reason shows it."""
    return {
        "updates": {update.update_id: update.update_id},
        "kbs": {kb: f"KB{kb}" for kb in update.kb_ids},
        "products": {name.casefold(): name for name in update.product_names} | {id_: id_ for id_ in update.product_ids},
        "classifications": {name.casefold(): name for name in update.classification_names}
        | {id_: id_ for id_ in update.classification_ids},
        "severities": {update.msrc_severity.casefold(): update.msrc_severity} if update.msrc_severity else {},
    }


_Match = tuple[str, list[tuple[str, tuple[str, ...]]]]


def _first_match(
    lists: Mapping[str, Mapping[str, tuple[str, ...]]], order: Iterable[str], candidates: dict[str, dict[str, str]]
) -> _Match | None:
    """Return the first kind in ``order`` whose list names the update, with each value it matched and its sources."""
    for kind in order:
        entries = lists[kind]
        hits = [(shown, entries[key]) for key, shown in candidates[kind].items() if key in entries]
        if hits:
            return kind, hits
    return None


def _sources_of(kind: str, hits: list[tuple[str, tuple[str, ...]]]) -> str:
    return ", ".join(f"{' and '.join(sources)} ({_REASON_LABELS[kind]}{shown})" for shown, sources in hits)


def _matched(side: str, kind: str, hits: list[tuple[str, tuple[str, ...]]]) -> tuple[str, ...]:
    return tuple(f"{source}: {side}_{kind} {shown}" for shown, sources in hits for source in sources)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """A host's plan: a decision per reported update, keyed by (UpdateID, RevisionNumber), in report order."""

    decisions: Mapping[tuple[str, int], Decision]
    counts: Mapping[Status, int]
    rules: EffectiveRules


def plan(
    updates: Iterable[UpdateFacts],
    assignment: Assignment,
    rule_sets: Mapping[str, RuleSet],
    now: datetime,
    host_rules: Iterable[HostRule] = (),
) -> Plan:
    """Decide every update a host reported, its holds and overrides first.

    Raises:
        PolicyError: an update is listed twice, or ``now`` is naive.
    """
    rules = effective_rules(assignment, rule_sets)
    host_rules = tuple(host_rules)
    decisions: dict[tuple[str, int], Decision] = {}
    for update in updates:
        key = (update.update_id, update.revision_number)
        if key in decisions:
            raise PolicyError(f"update {update.update_id} revision {update.revision_number} is listed twice")
        decisions[key] = decide(update, rules, assignment, now, host_rules)
    counts = dict.fromkeys(Status, 0)
    for decision in decisions.values():
        counts[decision.status] += 1
    return Plan(decisions=decisions, counts=counts, rules=rules)
