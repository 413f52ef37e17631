"""Rule sets, assignments and the per-update decisions they lead to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from wuacache_server.policy import (
    MAX_INSTALL_DELAY,
    Assignment,
    Decision,
    FilesState,
    HostRule,
    PolicyError,
    RuleSet,
    Status,
    UpdateFacts,
    decide,
    effective_rules,
    format_delay,
    parse_delay,
    plan,
)

UPDATE_ID = "3f1c6a2e-8b4d-4c1e-9a77-0d2b5e6f7a81"
OTHER_UPDATE_ID = "9c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f"
WINDOWS_10_ID = "a3c2375d-0c8a-42f9-bce0-28333e198407"
SECURITY_UPDATES_ID = "0fa1201d-4330-4fa8-8ae9-b877473b6441"
CHANGED = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
LATER = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)


def make_update(**overrides: Any) -> UpdateFacts:
    """A security update for Windows 10, not installed, its files on the server."""
    facts: dict[str, Any] = {
        "update_id": UPDATE_ID,
        "revision_number": 200,
        "title": "2026-11 Cumulative Update for Windows 10 (KB5034122)",
        "kb_ids": ("5034122",),
        "product_names": ("Windows 10",),
        "product_ids": (WINDOWS_10_ID,),
        "classification_names": ("Security Updates",),
        "classification_ids": (SECURITY_UPDATES_ID,),
        "msrc_severity": "Important",
        "last_deployment_change_time": CHANGED,
        "files": FilesState.AVAILABLE,
    }
    return UpdateFacts(**(facts | overrides))


def decide_with(
    *rule_sets: RuleSet, update: UpdateFacts | None = None, now: datetime = LATER, **assignment: Any
) -> Decision:
    """Decide ``update`` for a host assigned all of ``rule_sets`` plus ``assignment``'s settings."""
    host = Assignment(rule_sets=tuple(rule_set.name for rule_set in rule_sets), **assignment)
    rules = effective_rules(host, {rule_set.name: rule_set for rule_set in rule_sets})
    return decide(update or make_update(), rules, host, now)


# --- what rules allow and forbid --------------------------------------------------------------


@pytest.mark.parametrize(
    ("default_allow", "status", "reason", "matched"),
    [
        (True, Status.PENDING, "allowed by default_allow (no rule names it); files available on the server",
         "host assignment: default_allow true"),
        (False, Status.DISCARDED, "no rule allows it and default_allow is false",
         "host assignment: default_allow false"),
    ],
)  # fmt: skip
def test_update_no_rule_names_follows_default_allow(
    default_allow: bool, status: Status, reason: str, matched: str
) -> None:
    other = RuleSet(name="other", allowed_updates=(OTHER_UPDATE_ID,), forbidden_kbs=("1234567",))

    decision = decide_with(other, default_allow=default_allow)

    assert (decision.status, decision.reason, decision.allowed, decision.matched) == (
        status,
        reason,
        default_allow,
        (matched,),
    )


@pytest.mark.parametrize(
    ("forbidding", "shown", "matched"),
    [
        ({"forbidden_updates": (UPDATE_ID.upper(),)}, f"UpdateID {UPDATE_ID}", f"forbidden_updates {UPDATE_ID}"),
        ({"forbidden_kbs": ("KB5034122",)}, "KB5034122", "forbidden_kbs KB5034122"),
        ({"forbidden_products": ("windows 10",)}, "product Windows 10", "forbidden_products Windows 10"),
        ({"forbidden_classifications": (SECURITY_UPDATES_ID,)}, f"classification {SECURITY_UPDATES_ID}",
         f"forbidden_classifications {SECURITY_UPDATES_ID}"),
        ({"forbidden_severities": ("important",)}, "severity Important", "forbidden_severities Important"),
    ],
)  # fmt: skip
def test_forbidden_in_one_rule_set_beats_allowed_in_another(
    forbidding: dict[str, Any], shown: str, matched: str
) -> None:
    allowing = RuleSet(name="pilot", allowed_updates=(UPDATE_ID,), allowed_kbs=("5034122",))
    forbidding_set = RuleSet(name="freeze", **forbidding)

    decision = decide_with(allowing, forbidding_set, default_allow=True)

    assert decision.status is Status.DISCARDED
    assert decision.reason == f"forbidden by rule set 'freeze' ({shown})"
    assert decision.matched == (f"rule set 'freeze': {matched}",)
    assert decision.allowed is False


def test_forbidden_update_id_is_cited_before_forbidden_kb() -> None:
    by_kb = RuleSet(name="by-kb", forbidden_kbs=("5034122",))
    by_id = RuleSet(name="by-id", forbidden_updates=(UPDATE_ID,))

    decision = decide_with(by_kb, by_id)

    assert decision.matched == (f"rule set 'by-id': forbidden_updates {UPDATE_ID}",)


def test_value_listed_by_two_rule_sets_names_both() -> None:
    first = RuleSet(name="first", forbidden_kbs=("KB5034122",))
    second = RuleSet(name="second", forbidden_kbs=("5034122",))

    decision = decide_with(first, second)

    assert decision.reason == "forbidden by rule set 'first' and rule set 'second' (KB5034122)"
    assert decision.matched == (
        "rule set 'first': forbidden_kbs KB5034122",
        "rule set 'second': forbidden_kbs KB5034122",
    )


@pytest.mark.parametrize("rule_kb", ["KB5034122", "kb5034122", "5034122", 5034122])
@pytest.mark.parametrize("reported_kb", ["KB5034122", "5034122"])
def test_kb_matches_with_or_without_prefix(rule_kb: str | int, reported_kb: str) -> None:
    by_kb = RuleSet.from_dict({"name": "by-kb", "allowed_kbs": [rule_kb]})

    decision = decide_with(by_kb, update=make_update(kb_ids=(reported_kb,)))

    assert decision.status is Status.PENDING
    assert decision.matched == ("rule set 'by-kb': allowed_kbs KB5034122",)


@pytest.mark.parametrize(
    ("rule", "matched"),
    [
        ({"allowed_products": ("WINDOWS 10",)}, "allowed_products Windows 10"),
        ({"allowed_products": (WINDOWS_10_ID.upper(),)}, f"allowed_products {WINDOWS_10_ID}"),
        ({"allowed_classifications": ("security updates",)}, "allowed_classifications Security Updates"),
        ({"allowed_classifications": (SECURITY_UPDATES_ID,)}, f"allowed_classifications {SECURITY_UPDATES_ID}"),
        ({"allowed_severities": ("IMPORTANT",)}, "allowed_severities Important"),
    ],
)
def test_category_and_severity_rules_match_names_case_insensitively_and_guids(
    rule: dict[str, Any], matched: str
) -> None:
    decision = decide_with(RuleSet(name="r", **rule))

    assert decision.status is Status.PENDING
    assert decision.matched == (f"rule set 'r': {matched}",)


def test_category_rule_ignores_other_products() -> None:
    server_only = RuleSet(name="servers", allowed_products=("Windows Server 2022",))

    assert decide_with(server_only).status is Status.DISCARDED


@pytest.mark.parametrize(
    ("rules", "matched"),
    [
        ({"allowed_kbs": ("5034122",), "allowed_updates": (UPDATE_ID,)}, f"allowed_updates {UPDATE_ID}"),
        ({"allowed_products": ("Windows 10",), "allowed_kbs": ("5034122",)}, "allowed_kbs KB5034122"),
        ({"allowed_severities": ("Important",), "allowed_products": ("Windows 10",)}, "allowed_products Windows 10"),
        ({"allowed_classifications": ("Security Updates",), "allowed_severities": ("Important",)},
         "allowed_severities Important"),
    ],
)  # fmt: skip
def test_allowed_rules_are_cited_in_wapt_order(rules: dict[str, Any], matched: str) -> None:
    decision = decide_with(RuleSet(name="r", **rules))

    assert decision.matched == (f"rule set 'r': {matched}",)


def test_host_allowed_severities_allow_without_rule_set() -> None:
    decision = decide_with(allowed_severities=("Critical", "Important"))

    assert decision.status is Status.PENDING
    assert decision.reason == "allowed by host assignment (severity Important); files available on the server"
    assert decision.matched == ("host assignment: allowed_severities Important",)


def test_host_and_rule_set_severities_unite() -> None:
    critical = RuleSet(name="critical-only", allowed_severities=("Critical",))

    decision = decide_with(critical, update=make_update(msrc_severity="Critical"), allowed_severities=("Critical",))

    assert decision.matched == (
        "rule set 'critical-only': allowed_severities Critical",
        "host assignment: allowed_severities Critical",
    )


@pytest.mark.parametrize("reported", [None, "", "  "])
def test_update_without_severity_matches_no_severity_rule(reported: str | None) -> None:
    every_severity = RuleSet(name="all", allowed_severities=("Critical", "Important", "Moderate", "Low"))
    no_severity = make_update(msrc_severity=reported, classification_names=("Updates",), classification_ids=())

    assert decide_with(every_severity, update=no_severity).status is Status.DISCARDED


def test_unknown_reported_severity_matches_no_severity_rule() -> None:
    every_severity = RuleSet(name="all", allowed_severities=("Critical", "Important", "Moderate", "Low"))
    odd = make_update(msrc_severity="Urgent")

    assert odd.msrc_severity == "Urgent"
    assert decide_with(every_severity, update=odd).status is Status.DISCARDED


# --- maturities and rule set names ----------------------------------------------------------------


PREPROD_SET = RuleSet(name="pilot", maturity="PREPROD", allowed_updates=(UPDATE_ID,))
EVERYWHERE_SET = RuleSet(name="baseline", forbidden_kbs=("1111111",))


def test_preprod_rule_set_is_ignored_for_a_prod_host() -> None:
    host = Assignment(rule_sets=("pilot", "baseline"))

    rules = effective_rules(host, {"pilot": PREPROD_SET, "baseline": EVERYWHERE_SET})

    assert rules.applied == ("baseline",)
    assert rules.ignored == (
        "rule set 'pilot' ignored: its maturity PREPROD is not among the host's maturities (PROD)",
    )
    assert decide(make_update(), rules, host, LATER).status is Status.DISCARDED


def test_preprod_rule_set_applies_to_a_preprod_host() -> None:
    host = Assignment(rule_sets=("pilot", "baseline"), maturities=("preprod",))

    rules = effective_rules(host, {"pilot": PREPROD_SET, "baseline": EVERYWHERE_SET})

    assert host.maturities == ("PREPROD",)
    assert (rules.applied, rules.ignored) == (("pilot", "baseline"), ())
    assert decide(make_update(), rules, host, LATER).status is Status.PENDING


def test_host_accepting_no_maturity_keeps_only_rule_sets_without_one() -> None:
    host = Assignment(rule_sets=("pilot", "baseline"), maturities=())

    rules = effective_rules(host, {"pilot": PREPROD_SET, "baseline": EVERYWHERE_SET})

    assert rules.applied == ("baseline",)
    assert rules.ignored == (
        "rule set 'pilot' ignored: its maturity PREPROD is not among the host's maturities (none)",
    )


def test_unknown_rule_set_is_reported_not_raised() -> None:
    host = Assignment(rule_sets=("baseline", "typo-set"))

    rules = effective_rules(host, {"baseline": EVERYWHERE_SET})

    assert (rules.applied, rules.unknown) == (("baseline",), ("typo-set",))


# --- install delay --------------------------------------------------------------------------------

PARIS_WINTER = timezone(timedelta(hours=2))
DEADLINE = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def test_update_is_delayed_until_the_deadline_in_utc() -> None:
    just_before = datetime(2026, 12, 4, 11, 59, 59, tzinfo=PARIS_WINTER)

    decision = decide_with(default_allow=True, install_delay=timedelta(days=7), now=just_before)

    assert decision.status is Status.DISCARDED
    assert decision.allowed is True
    assert decision.delayed_until == DEADLINE
    assert decision.reason == (
        "allowed by default_allow (no rule names it), but delayed until 2026-12-04 10:00 UTC "
        "(install_delay 7 days from its LastDeploymentChangeTime 2026-11-27 10:00 UTC)"
    )


def test_update_is_no_longer_delayed_exactly_at_the_deadline() -> None:
    at_deadline = datetime(2026, 12, 4, 12, 0, tzinfo=PARIS_WINTER)

    decision = decide_with(default_allow=True, install_delay=timedelta(days=7), now=at_deadline)

    assert (decision.status, decision.delayed_until) == (Status.PENDING, None)


def test_change_time_reported_with_an_offset_counts_in_utc() -> None:
    changed_in_new_york = datetime(2026, 11, 27, 5, 0, tzinfo=timezone(timedelta(hours=-5)))
    update = make_update(last_deployment_change_time=changed_in_new_york)

    decision = decide_with(update=update, default_allow=True, install_delay=timedelta(hours=12), now=CHANGED)

    assert update.last_deployment_change_time == CHANGED
    assert decision.delayed_until == datetime(2026, 11, 27, 22, 0, tzinfo=UTC)
    assert "install_delay 12 hours" in decision.reason


def test_no_install_delay_does_not_hold_back_an_update_changed_after_now() -> None:
    future_change = make_update(last_deployment_change_time=LATER + timedelta(days=1))

    assert decide_with(update=future_change, default_allow=True).status is Status.PENDING


def test_deadline_past_the_last_representable_time_stays_delayed() -> None:
    far_future = make_update(last_deployment_change_time=datetime(9999, 12, 30, tzinfo=UTC))

    decision = decide_with(update=far_future, default_allow=True, install_delay=timedelta(days=7))

    assert decision.status is Status.DISCARDED
    assert decision.delayed_until == datetime.max.replace(tzinfo=UTC)


def test_forbidden_update_is_not_reported_as_delayed() -> None:
    freeze = RuleSet(name="freeze", forbidden_updates=(UPDATE_ID,))

    decision = decide_with(freeze, install_delay=timedelta(days=7), now=CHANGED)

    assert (decision.reason, decision.delayed_until) == (f"forbidden by rule set 'freeze' (UpdateID {UPDATE_ID})", None)


# --- installed, failed, hidden, files ---------------------------------------------------------------


def test_installed_update_is_ok() -> None:
    decision = decide_with(default_allow=True, update=make_update(is_installed=True, last_install_failed=True))

    assert (decision.status, decision.reason, decision.allowed) == (Status.OK, "installed", True)


def test_installed_forbidden_update_is_ok_and_never_uninstalled() -> None:
    freeze = RuleSet(name="freeze", forbidden_kbs=("KB5034122",))

    decision = decide_with(freeze, update=make_update(is_installed=True))

    assert decision.status is Status.OK
    assert decision.allowed is False
    assert (
        decision.reason == "installed although forbidden by rule set 'freeze' (KB5034122); wuacache never uninstalls it"
    )


def test_update_awaiting_a_restart_is_pending_with_nothing_to_do_but_restart() -> None:
    freeze = RuleSet(name="freeze", forbidden_kbs=("KB5034122",))

    for rule_sets in ((), (freeze,)):
        decision = decide_with(*rule_sets, default_allow=True, update=make_update(awaiting_restart=True))
        assert (decision.status, decision.reason) == (Status.PENDING, "installed; the host's next restart completes it")


@pytest.mark.parametrize(
    ("hresult", "reason_end"),
    [
        (0x80240022, "but the last install failed with 0x80240022"),
        (-2145124318, "but the last install failed with 0x80240022"),
        (None, "but the last install failed"),
    ],
)
def test_failed_install_of_an_allowed_update_is_an_error(hresult: int | None, reason_end: str) -> None:
    failed = make_update(last_install_failed=True, last_hresult=hresult)

    decision = decide_with(update=failed, default_allow=True)

    assert decision.status is Status.ERROR
    assert decision.reason == f"allowed by default_allow (no rule names it), {reason_end}"


def test_failed_install_of_an_update_not_allowed_is_discarded() -> None:
    failed = make_update(last_install_failed=True, last_hresult=0x80240022)

    assert decide_with(update=failed, default_allow=False).status is Status.DISCARDED


def test_failed_install_of_a_delayed_update_is_discarded() -> None:
    failed = make_update(last_install_failed=True)

    decision = decide_with(update=failed, default_allow=True, install_delay=timedelta(days=7), now=CHANGED)

    assert (decision.status, decision.delayed_until) == (Status.DISCARDED, DEADLINE)


@pytest.mark.parametrize(
    ("files", "status", "files_reason"),
    [
        ("available", Status.PENDING, "files available on the server"),
        ("fetching", Status.PENDING, "files being fetched"),
        ("none", Status.PENDING, "no files to download"),
        ("absent", Status.MISSING, "files not yet on the server"),
    ],
)
def test_allowed_update_status_follows_its_files(files: str, status: Status, files_reason: str) -> None:
    decision = decide_with(update=make_update(files=files), allowed_severities=("Important",))

    assert decision.status is status
    assert decision.reason == f"allowed by host assignment (severity Important); {files_reason}"


def test_hidden_allowed_update_is_still_decided_and_says_it_is_hidden() -> None:
    decision = decide_with(update=make_update(is_hidden=True, files="absent"), default_allow=True)

    assert decision.status is Status.MISSING
    assert decision.reason.endswith("files not yet on the server; hidden on the host")


def test_decide_refuses_a_naive_now() -> None:
    with pytest.raises(PolicyError, match="now must be a timezone-aware datetime"):
        decide_with(now=datetime(2027, 1, 1))


# --- plan ---------------------------------------------------------------------------------------------


def test_plan_decides_every_update_and_counts_statuses() -> None:
    freeze = RuleSet(name="freeze", forbidden_kbs=("1111111",))
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(6)]
    updates = [
        make_update(update_id=ids[0], is_installed=True),
        make_update(update_id=ids[1], files="available"),
        make_update(update_id=ids[2], files="fetching"),
        make_update(update_id=ids[3], files="absent"),
        make_update(update_id=ids[4], kb_ids=("KB1111111",)),
        make_update(update_id=ids[5], last_install_failed=True),
    ]
    host = Assignment(rule_sets=("freeze",), default_allow=True)

    result = plan(updates, host, {"freeze": freeze}, LATER)

    assert [result.decisions[(update_id, 200)].status for update_id in ids] == [
        Status.OK,
        Status.PENDING,
        Status.PENDING,
        Status.MISSING,
        Status.DISCARDED,
        Status.ERROR,
    ]
    assert result.counts == {Status.OK: 1, Status.PENDING: 2, Status.MISSING: 1, Status.DISCARDED: 1, Status.ERROR: 1}
    assert result.rules.unknown == ()


def test_an_unknown_rule_set_holds_what_the_other_rules_allow_in_error() -> None:
    """A misspelt forbidding rule set must not let default_allow through what it would forbid."""
    freeze = RuleSet(name="freeze", forbidden_kbs=("1111111",))
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(4)]
    updates = [
        make_update(update_id=ids[0], is_installed=True),
        make_update(update_id=ids[1], files="available"),
        make_update(update_id=ids[2], kb_ids=("KB1111111",)),
        make_update(update_id=ids[3], last_install_failed=True),
    ]
    host = Assignment(rule_sets=("freeze", "secruity-freeze"), default_allow=True)

    result = plan(updates, host, {"freeze": freeze}, LATER)

    decisions = [result.decisions[(update_id, 200)] for update_id in ids]
    assert [decision.status for decision in decisions] == [Status.OK, Status.ERROR, Status.DISCARDED, Status.ERROR]
    assert [decision.allowed for decision in decisions] == [True, False, False, False]
    assert decisions[1].reason == (
        "allowed by default_allow (no rule names it), but unknown rule set 'secruity-freeze' is assigned: "
        "not installed until it exists"
    )
    assert result.rules.unknown == ("secruity-freeze",)


def test_plan_keys_revisions_apart_and_refuses_a_repeated_one() -> None:
    host = Assignment(default_allow=True)
    revisions = [make_update(revision_number=200), make_update(revision_number=201)]

    assert list(plan(revisions, host, {}, LATER).decisions) == [(UPDATE_ID, 200), (UPDATE_ID, 201)]
    with pytest.raises(PolicyError, match=f"update {UPDATE_ID} revision 200 is listed twice"):
        plan([*revisions, make_update(revision_number=200)], host, {}, LATER)


# --- delays ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "delay"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("2w", timedelta(weeks=2)),
        ("15", timedelta(days=15)),
        (" 3D ", timedelta(days=3)),
        ("0", timedelta(0)),
        (15, timedelta(days=15)),
        ("365d", MAX_INSTALL_DELAY),
    ],
)
def test_parse_delay(text: str | int, delay: timedelta) -> None:
    assert parse_delay(text) == delay


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1d", "is not a delay"),
        (-1, "must not be negative"),
        ("7 days", "is not a delay"),
        ("", "is not a delay"),
        ("1y", "is not a delay"),
        ("1.5d", "is not a delay"),
        (1.5, "is not a delay"),
        (True, "is not a delay"),
        ("366d", "is longer than 365 days"),
        ("53w", "is longer than 365 days"),
        (10**30, "is longer than 365 days"),
    ],
)
def test_parse_delay_refuses(value: object, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_delay(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("delay", "said"),
    [
        (timedelta(days=1, hours=12), "1 day 12 hours"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(weeks=2), "14 days"),
    ],
)
def test_format_delay(delay: timedelta, said: str) -> None:
    assert format_delay(delay) == said


# --- rule sets, assignments and update facts from JSON -----------------------------------------------


def test_rule_set_from_dict_normalises_and_round_trips() -> None:
    data = {
        "name": "prod-security",
        "maturity": " prod ",
        "allowed_updates": [UPDATE_ID.upper(), UPDATE_ID],
        "forbidden_kbs": ["KB5034122", 5034122, "kb999"],
        "allowed_products": [" Windows 10 ", WINDOWS_10_ID.upper()],
        "allowed_severities": ["critical"],
    }

    rule_set = RuleSet.from_dict(data)

    assert rule_set.maturity == "PROD"
    assert rule_set.allowed_updates == (UPDATE_ID,)
    assert rule_set.forbidden_kbs == ("5034122", "999")
    assert rule_set.allowed_products == ("Windows 10", WINDOWS_10_ID)
    assert rule_set.allowed_severities == ("Critical",)
    assert rule_set.forbidden_classifications == ()
    assert RuleSet.from_dict(rule_set.to_dict()) == rule_set


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["name", "x"], "rule set must be an object, not list"),
        ({"name": "x", "allowed_update": []}, "unknown key\\(s\\) allowed_update"),
        ({"allowed_updates": []}, "name is required"),
        ({"name": "has space"}, "name: 'has space' is not a rule set name"),
        ({"name": 7}, "name: 7 is not a rule set name"),
        ({"name": "x", "maturity": 5}, "maturity: 5 is not a maturity"),
        ({"name": "x", "allowed_updates": UPDATE_ID}, "allowed_updates must be a list, not str"),
        ({"name": "x", "forbidden_updates": [f"{{{UPDATE_ID}}}"]}, "forbidden_updates: .* is not a GUID"),
        ({"name": "x", "allowed_updates": ["3f1c6a2e-8b4d-4c1e-9a77"]}, "allowed_updates: .* is not a GUID"),
        ({"name": "x", "allowed_updates": [42]}, "allowed_updates: 42 is not a GUID"),
        ({"name": "x", "allowed_kbs": ["KBx"]}, "allowed_kbs: 'KBx' is not a KB number"),
        ({"name": "x", "allowed_kbs": [0]}, "allowed_kbs: 0 is not a KB number"),
        ({"name": "x", "allowed_kbs": ["KB05034122"]}, "allowed_kbs: 'KB05034122' is not a KB number"),
        ({"name": "x", "allowed_kbs": [True]}, "allowed_kbs: True is not a KB number"),
        ({"name": "x", "allowed_products": [""]}, "allowed_products: '' is neither a category name"),
        ({"name": "x", "forbidden_classifications": [None]}, "forbidden_classifications: None is neither"),
        ({"name": "x", "allowed_severities": ["Unspecified"]}, "'Unspecified' is not an MSRC severity"),
        ({"name": "x", "forbidden_severities": [""]}, "forbidden_severities: '' is not an MSRC severity"),
    ],
)
def test_rule_set_from_dict_refuses(data: Any, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        RuleSet.from_dict(data)


def test_refusal_quotes_untrusted_values_cut_short() -> None:
    with pytest.raises(PolicyError) as refused:
        RuleSet.from_dict({"name": "x", "allowed_kbs": ["K" * 10_000]})

    assert len(str(refused.value)) < 200


def test_assignment_from_dict_reads_inventory_forms() -> None:
    host = Assignment.from_dict(
        {
            "rule_sets": "prod-security, drivers",
            "default_allow": True,
            "allowed_severities": "Critical,important",
            "install_delay": "3d",
            "maturities": ["prod", "PREPROD"],
        }
    )

    assert host == Assignment(
        rule_sets=("prod-security", "drivers"),
        default_allow=True,
        allowed_severities=("Critical", "Important"),
        install_delay=timedelta(days=3),
        maturities=("PROD", "PREPROD"),
    )


def test_assignment_from_dict_defaults() -> None:
    host = Assignment.from_dict({"install_delay": None})

    assert (host.rule_sets, host.default_allow, host.allowed_severities, host.install_delay, host.maturities) == (
        (),
        False,
        (),
        timedelta(0),
        ("PROD",),
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rule_set": ["x"]}, "unknown key\\(s\\) rule_set"),
        ({"default_allow": "yes"}, "default_allow must be true or false"),
        ({"install_delay": "-3d"}, "is not a delay"),
        ({"install_delay": [7]}, "is not a delay"),
        ({"maturities": ["PROD", "not ok"]}, "maturities: 'not ok' is not a maturity"),
        ({"allowed_severities": ["Severe"]}, "allowed_severities: 'Severe' is not an MSRC severity"),
        ({"rule_sets": [["nested"]]}, "rule_sets: \\['nested'\\] is not a rule set name"),
        ({"rule_sets": 3}, "rule_sets must be a list, not int"),
    ],
)
def test_assignment_from_dict_refuses(data: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        Assignment.from_dict(data)


@pytest.mark.parametrize("delay", [timedelta(seconds=-1), MAX_INSTALL_DELAY + timedelta(minutes=1), 7])
def test_assignment_refuses_delay_out_of_range(delay: object) -> None:
    with pytest.raises(PolicyError, match="install_delay must be a duration from 0 to 365 days"):
        Assignment(install_delay=delay)  # type: ignore[arg-type]


def test_update_facts_normalise() -> None:
    update = make_update(
        update_id=UPDATE_ID.upper(),
        kb_ids=("KB5034122", "5034122"),
        product_ids=(WINDOWS_10_ID.upper(),),
        msrc_severity="critical",
        last_hresult=-2145124318,
        files="fetching",
    )

    assert (update.update_id, update.kb_ids, update.product_ids) == (UPDATE_ID, ("5034122",), (WINDOWS_10_ID,))
    assert (update.msrc_severity, update.last_hresult, update.files) == ("Critical", 0x80240022, FilesState.FETCHING)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"update_id": "not-a-guid"}, "update_id: 'not-a-guid' is not a GUID"),
        ({"revision_number": -1}, "revision_number must be a non-negative integer"),
        ({"revision_number": True}, "revision_number must be a non-negative integer"),
        ({"title": None}, "title must be a string"),
        ({"kb_ids": ("KB",)}, "kb_ids: 'KB' is not a KB number"),
        ({"classification_ids": ("Security Updates",)}, "classification_ids: .* is not a GUID"),
        ({"msrc_severity": 3}, "msrc_severity must be a string or null"),
        ({"last_deployment_change_time": datetime(2026, 11, 27)}, "last_deployment_change_time must be .*aware"),
        ({"last_deployment_change_time": "2026-11-27T10:00:00Z"}, "last_deployment_change_time must be .*aware"),
        ({"is_hidden": 1}, "is_hidden must be true or false"),
        ({"last_hresult": 2**32}, "last_hresult must be a 32-bit integer"),
        ({"last_hresult": "0x80240022"}, "last_hresult must be a 32-bit integer"),
        ({"files": "partial"}, "files: 'partial' is not one of available, fetching, absent, none"),
    ],
)
def test_update_facts_refuse(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        make_update(**overrides)


# --- holds and overrides ------------------------------------------------------------------------------


def test_a_hold_beats_every_rule_and_an_override_beats_the_rest() -> None:
    allowing = Assignment(default_allow=True)
    at = datetime(2024, 2, 1, tzinfo=UTC)
    hold = HostRule(allow=False, kb="5034441", reason="breaks VPN", by="token 1 (ansible)", at=at)
    override = HostRule(allow=True, update_id=UPDATE_ID, reason="needed", by="token 1 (ansible)", at=at)
    expired = HostRule(allow=False, update_id=UPDATE_ID, reason="old", by="cli", at=at, until=at)
    held = make_update(kb_ids=("KB5034441",), files="available")
    rules = effective_rules(allowing, {})

    decision = decide(held, rules, allowing, LATER, [hold, override])
    assert (decision.status, decision.allowed) == (Status.DISCARDED, False)
    assert decision.reason == "held on this host by token 1 (ansible) on 2024-02-01 00:00 UTC: breaks VPN"
    assert decide(make_update(is_installed=True, kb_ids=("KB5034441",)), rules, allowing, LATER, [hold]).status == (
        Status.OK
    )

    forbidding = Assignment(default_allow=False, rule_sets=("missing",))
    overridden = decide(make_update(files="available"), effective_rules(forbidding, {}), forbidding, LATER, [override])
    assert (overridden.status, overridden.allowed) == (Status.PENDING, True)
    assert overridden.reason.startswith("overridden on this host by token 1 (ansible)")

    assert decide(make_update(files="available"), rules, allowing, LATER, [expired]).status == Status.PENDING
