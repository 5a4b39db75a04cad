"""The planner: stages, catch-up after downtime, idempotency, no letter for what was fulfilled."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from notifiers.config import defaults
from notifiers.planner import Due, KindPolicy, Policy, PolicyError, Stage, plan

POLICY = Policy.from_toml(defaults()["letters"])
STATUSES = ("pending", "overdue", "fulfilled", "fulfilled_late", "lapsed")


def due(party="SSD", obligation="ccm.art7.initial_report", period="", on=date(2024, 7, 30), status="overdue",
        original=None) -> Due:
    return Due(party=party, obligation_id=obligation, period=period, due=on, original_due=original or on, status=status)


def test_south_sudans_initial_report_gets_the_courtesy_notice_thirty_days_before_it_is_due():
    # South Sudan's initial report fell due on 30 July 2024 (180 days after entry into force).
    letters = plan([due(status="pending")], [], POLICY, date(2024, 6, 30))
    assert [(letter.stage, letter.tone, letter.key) for letter in letters] == [
        ("courtesy", "advance", "SSD|ccm.art7.initial_report||courtesy")]


def test_the_day_after_the_due_date_the_first_reminder_is_due():
    letters = plan([due()], ["SSD|ccm.art7.initial_report||courtesy"], POLICY, date(2024, 7, 31))
    assert [(letter.stage, letter.tone) for letter in letters] == [("reminder1", "reminder")]


def test_after_ten_days_down_only_the_latest_stage_is_planned_and_the_missed_one_is_named():
    letters = plan([due()], [], POLICY, date(2024, 8, 9))
    assert [(letter.stage, letter.skipped) for letter in letters] == [("reminder1", ("courtesy",))]


def test_reminders_repeat_every_180_days_after_the_last_stage():
    # reminder3 at +90 days, then +270, +450, ...
    letters = plan([due()], [], POLICY, date(2024, 7, 30) + timedelta(days=451))
    assert letters[0].stage == "repeat2"


def test_a_fulfilled_a_late_fulfilled_and_a_lapsed_obligation_get_no_letter():
    for status in ("fulfilled", "fulfilled_late", "lapsed"):
        assert plan([due(status=status)], [], POLICY, date(2025, 1, 1)) == []


def test_an_extended_deadline_starts_a_new_cycle_of_letters():
    # Lao PDR's clearance deadline of 1 Aug 2020 was extended to 1 Aug 2025 (Art. 4(5)).
    old = plan([due("LAO", "ccm.art4.clearance", on=date(2020, 8, 1), status="pending")], [], POLICY, date(2019, 8, 2))
    new = plan([due("LAO", "ccm.art4.clearance", on=date(2025, 8, 1), original=date(2020, 8, 1), status="pending")],
               [old[0].key], POLICY, date(2024, 8, 1))
    assert old[0].stage == "advance365" and new[0].stage == "advance365@2025-08-01"


def test_obligations_due_before_since_get_no_letters():
    policy = Policy(kinds=POLICY.kinds, since=date(2025, 1, 1))
    assert plan([due(on=date(2024, 7, 30))], [], policy, date(2025, 6, 1)) == []


def test_a_policy_with_two_stages_of_the_same_name_is_refused_naming_the_kind():
    table = {"kinds": {"annual_report": {"obligations": ["x"], "stages": [{"name": "a", "days": 1}, {"name": "a", "days": 2}]}}}
    try:
        Policy.from_toml(table)
        raise AssertionError("accepted")
    except PolicyError as error:
        assert "[letters.kinds.annual_report] stages" in str(error)


obligations = st.lists(st.builds(
    Due, party=st.sampled_from(["AFG", "LBN", "SSD"]),
    obligation_id=st.sampled_from([o for k in POLICY.kinds for o in k.obligations]),
    period=st.sampled_from(["", "2011", "13MSP"]),
    due=st.dates(date(2011, 1, 1), date(2030, 12, 31)), original_due=st.dates(date(2011, 1, 1), date(2030, 12, 31)),
    status=st.sampled_from(STATUSES)), max_size=12, unique_by=lambda d: (d.party, d.obligation_id, d.period))
as_of = st.dates(date(2010, 1, 1), date(2032, 12, 31))


@settings(max_examples=300, deadline=None)
@given(obligations, as_of)
def test_planning_again_after_sending_gives_nothing_new(dues, day):
    first = plan(dues, [], POLICY, day)
    assert plan(dues, [letter.key for letter in first], POLICY, day) == []


@settings(max_examples=300, deadline=None)
@given(obligations, as_of, st.integers(0, 400))
def test_catching_up_after_any_downtime_gives_at_most_one_letter_per_obligation(dues, day, down_days):
    before = plan(dues, [], POLICY, day)
    after = plan(dues, [letter.key for letter in before], POLICY, day + timedelta(days=down_days))
    per_obligation = [(letter.party, letter.obligation_id, letter.period) for letter in after]
    assert len(per_obligation) == len(set(per_obligation))
    assert not {letter.key for letter in after} & {letter.key for letter in before}


@settings(max_examples=300, deadline=None)
@given(obligations, as_of)
def test_no_letter_is_planned_for_a_fulfilled_or_lapsed_obligation(dues, day):
    closed = {(d.party, d.obligation_id, d.period) for d in dues if d.status not in ("pending", "overdue")}
    assert not [letter for letter in plan(dues, [], POLICY, day) if (letter.party, letter.obligation_id, letter.period) in closed]


@settings(max_examples=200, deadline=None)
@given(obligations, as_of)
def test_the_planner_is_a_pure_function(dues, day):
    assert plan(dues, [], POLICY, day) == plan(list(dues), set(), POLICY, day)


def test_the_policy_in_config_toml_is_the_packaged_default():
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).resolve().parent.parent / "config.toml").read_text(encoding="utf-8"))
    for table in ("letters", "smtp", "scheduler"):
        assert config[table] == defaults()[table], f"config.toml [{table}] differs from notifiers/templates/defaults.toml"


def test_kind_policy_stage_dates_lists_the_stages_in_date_order():
    kind = KindPolicy("k", ("x",), (Stage("late", 5), Stage("early", -5)))
    assert [s.name for s, _ in kind.stage_dates(date(2025, 1, 10), date(2025, 2, 1))] == ["early", "late"]
