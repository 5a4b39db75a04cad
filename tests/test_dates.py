"""Property tests and published cases for engine/core/dates.py: every calendar step the engine takes."""

from __future__ import annotations

import calendar
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.core.dates import (
    AmbiguousDateError,
    Step,
    add_days,
    add_months,
    add_years,
    day_of_following_year,
    entry_into_force,
    first_day_of_month_after,
    fmt,
)

# The thirtieth instrument (Burkina Faso, Republic of Moldova), Art. 17(1).
THIRTIETH_DEPOSIT = date(2010, 2, 16)
CONVENTION_IN_FORCE = date(2010, 8, 1)

# Dates far enough from year 1 and 9999 that +-60 years and +-1200 months stay in range.
anchors = st.dates(min_value=date(1700, 1, 1), max_value=date(2300, 12, 31))
year_counts = st.integers(min_value=-60, max_value=60)
month_counts = st.integers(min_value=-1200, max_value=1200)
roundings = st.sampled_from(["round_down", "round_up"])


def is_leap_day(value: date) -> bool:
    return (value.month, value.day) == (2, 29)


def month_index(value: date) -> int:
    return value.year * 12 + value.month - 1


# --------------------------------------------------------------------------- "N years after" (Art. 3(2), 4(1))


@given(anchor=anchors.filter(lambda d: not is_leap_day(d)), years=year_counts)
def test_adding_years_keeps_the_day_and_the_month_of_any_date_but_29_february(anchor, years):
    step = add_years(anchor, years)
    assert (step.value.year, step.value.month, step.value.day) == (anchor.year + years, anchor.month, anchor.day)


@given(anchor=anchors.filter(lambda d: not is_leap_day(d)), years=year_counts)
def test_adding_then_subtracting_the_same_years_returns_the_anchor(anchor, years):
    assert add_years(add_years(anchor, years).value, -years).value == anchor


@given(leap_year=st.integers(min_value=1700, max_value=2300).filter(calendar.isleap), years=year_counts)
def test_29_february_plus_years_refuses_in_a_common_year_and_rounds_only_when_told(leap_year, years):
    anchor = date(leap_year, 2, 29)
    target_year = leap_year + years
    if calendar.isleap(target_year):
        for rounding in ("error", "round_down", "round_up"):
            assert add_years(anchor, years, rounding).value == date(target_year, 2, 29)
        return
    with pytest.raises(AmbiguousDateError, match=rf"29 Feb {leap_year} .* February {target_year} has no day 29"):
        add_years(anchor, years, "error")
    with pytest.raises(AmbiguousDateError):
        add_years(anchor, years)  # the default refuses too
    assert add_years(anchor, years, "round_down").value == date(target_year, 2, 28)
    assert add_years(anchor, years, "round_up").value == date(target_year, 3, 1)
    assert "29 February rounded" in add_years(anchor, years, "round_down").text


def test_the_ambiguous_date_error_is_a_value_error_so_callers_can_catch_either():
    with pytest.raises(ValueError, match="the rule must say whether to round down or up"):
        add_years(date(2012, 2, 29), 10)


ANNIVERSARIES = [
    # (what, anchor, years, expected)
    ("Art. 3(2): EIF 1 Aug 2010 + 8 years is the published 1 Aug 2018", date(2010, 8, 1), 8, date(2018, 8, 1)),
    ("Art. 4(1)(a): EIF 1 Aug 2010 + 10 years is the published 1 Aug 2020", date(2010, 8, 1), 10, date(2020, 8, 1)),
    ("Art. 4(1)(a): Bosnia and Herzegovina, EIF 1 Mar 2011 -> 1 Mar 2021", date(2011, 3, 1), 10, date(2021, 3, 1)),
    ("Art. 3(2): Bulgaria, EIF 1 Oct 2011 -> 1 Oct 2019", date(2011, 10, 1), 8, date(2019, 10, 1)),
]


@pytest.mark.parametrize("what, anchor, years, expected", ANNIVERSARIES, ids=[row[0] for row in ANNIVERSARIES])
def test_published_anniversary_deadlines(what, anchor, years, expected):
    assert add_years(anchor, years).value == expected


# --------------------------------------------------------------------------- "N months before/after" (Art. 3(5), 4(6))


@given(anchor=anchors.filter(lambda d: d.day <= 28), months=month_counts)
def test_adding_months_keeps_the_day_and_lands_in_the_month_index_anchor_plus_n(anchor, months):
    value = add_months(anchor, months).value
    assert value.day == anchor.day
    assert month_index(value) == month_index(anchor) + months


@given(year=st.integers(min_value=1700, max_value=2300))
def test_31_january_plus_one_month_refuses_and_rounds_to_the_end_of_february_only_when_told(year):
    anchor = date(year, 1, 31)
    with pytest.raises(AmbiguousDateError, match=f"February {year} has no day 31"):
        add_months(anchor, 1)
    last_of_february = 29 if calendar.isleap(year) else 28
    assert add_months(anchor, 1, "round_down").value == date(year, 2, last_of_february)
    assert add_months(anchor, 1, "round_up").value == date(year, 3, 1)


@given(anchor=anchors, months=month_counts, rounding=roundings)
def test_a_rounded_month_step_is_the_last_day_of_the_target_month_or_the_day_after(anchor, months, rounding):
    value = add_months(anchor, months, rounding).value
    target = month_index(anchor) + months
    year, month0 = divmod(target, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    if anchor.day <= last:
        assert value == date(year, month0 + 1, anchor.day)
    elif rounding == "round_down":
        assert value == date(year, month0 + 1, last)
    else:
        assert value == date(year, month0 + 1, last) + timedelta(days=1)


def test_a_request_nine_months_before_the_9msp_is_due_2_december_2018():
    step = add_months(date(2019, 9, 2), -9)
    assert step.value == date(2018, 12, 2)
    assert step.text == "2 Sep 2019 - 9 months = 2 Dec 2018"


# --------------------------------------------------------------------------- "180 days after" (Art. 7(1)), "28 days" (Art. 8(2))


INITIAL_REPORTS = [
    # (what, entry_into_force, expected due date of the initial report)
    ("EIF 1 Aug 2010 -> 28 Jan 2011 (the first States Parties, e.g. Niger)", date(2010, 8, 1), date(2011, 1, 28)),
    ("EIF 1 Nov 2015 -> 29 Apr 2016, across 29 February 2016", date(2015, 11, 1), date(2016, 4, 29)),
    ("EIF 1 Jul 2019 -> 28 Dec 2019", date(2019, 7, 1), date(2019, 12, 28)),
    ("Comoros: EIF 1 Jan 2011 -> 30 Jun 2011 (CMC list, June 2015)", date(2011, 1, 1), date(2011, 6, 30)),
    ("Fiji: EIF 1 Nov 2010 -> 30 Apr 2011 (CMC list, June 2015)", date(2010, 11, 1), date(2011, 4, 30)),
]


@pytest.mark.parametrize("what, eif, expected", INITIAL_REPORTS, ids=[row[0] for row in INITIAL_REPORTS])
def test_an_initial_report_is_due_180_calendar_days_after_entry_into_force(what, eif, expected):
    step = add_days(eif, 180)
    assert step.value == expected
    assert step.text == f"{fmt(eif)} + 180 days = {fmt(expected)}"


@given(anchor=anchors, days=st.integers(min_value=-40000, max_value=40000))
def test_adding_days_is_exactly_adding_a_timedelta(anchor, days):
    assert add_days(anchor, days).value == anchor + timedelta(days=days)


# --------------------------------------------------------------------------- "first day of the sixth month after" (Art. 17)


@given(anchor=anchors, months=st.integers(min_value=1, max_value=1200))
def test_the_first_day_of_the_nth_month_after_is_a_first_strictly_after_the_anchor_in_month_anchor_plus_n(anchor, months):
    value = first_day_of_month_after(anchor, months).value
    assert value.day == 1
    assert value > anchor
    assert month_index(value) == month_index(anchor) + months


@given(deposit=st.dates(min_value=date(2008, 12, 3), max_value=THIRTIETH_DEPOSIT))
def test_every_instrument_deposited_up_to_the_thirtieth_binds_from_1_august_2010(deposit):
    step = entry_into_force(deposit, THIRTIETH_DEPOSIT)
    assert step.value == CONVENTION_IN_FORCE
    assert "on or before the threshold deposit" in step.text


@given(deposit=st.dates(min_value=THIRTIETH_DEPOSIT + timedelta(days=1), max_value=date(2100, 12, 31)))
def test_a_later_instrument_binds_from_the_first_day_of_the_deposit_month_plus_six(deposit):
    value = entry_into_force(deposit, THIRTIETH_DEPOSIT).value
    assert value.day == 1
    assert month_index(value) == month_index(deposit) + 6


ENTRIES_INTO_FORCE = [
    # (what, deposit, expected entry into force, source)
    ("Albania deposited 16 Jun 2009, before the thirtieth: 1 Aug 2010",
     date(2009, 6, 16), date(2010, 8, 1), "Trb. 2011 68"),
    ("Burkina Faso and Moldova deposited the 29th and 30th on 16 Feb 2010: 1 Aug 2010",
     date(2010, 2, 16), date(2010, 8, 1), "UN Treaty Collection XXVI-6"),
    ("the United Kingdom deposited 4 May 2010: 1 Nov 2010",
     date(2010, 5, 4), date(2010, 11, 1), "Monitor; CMC"),
    ("Comoros deposited 28 Jul 2010: 1 Jan 2011",
     date(2010, 7, 28), date(2011, 1, 1), "Trb. 2011 68"),
    ("a deposit of 7 Sep 2010: 1 Mar 2011",
     date(2010, 9, 7), date(2011, 3, 1), "TREATY brief, Art. 17(2)"),
    ("Switzerland deposited 17 Jul 2012: 1 Jan 2013",
     date(2012, 7, 17), date(2013, 1, 1), "SR 0.515.093"),
    ("a deposit of 3 Jan 2019: 1 Jul 2019",
     date(2019, 1, 3), date(2019, 7, 1), "TREATY brief, Art. 17(2)"),
]


@pytest.mark.parametrize("what, deposit, expected, source", ENTRIES_INTO_FORCE,
                         ids=[row[0] for row in ENTRIES_INTO_FORCE])
def test_published_entries_into_force(what, deposit, expected, source):
    assert entry_into_force(deposit, THIRTIETH_DEPOSIT).value == expected


# --------------------------------------------------------------------------- every step explains itself


@st.composite
def steps(draw) -> Step:
    anchor = draw(anchors)
    kind = draw(st.sampled_from(["years", "months", "days", "first_day", "eif", "following_year"]))
    if kind == "years":
        return add_years(anchor, draw(year_counts), draw(roundings))
    if kind == "months":
        return add_months(anchor, draw(month_counts), draw(roundings))
    if kind == "days":
        return add_days(anchor, draw(st.integers(min_value=-40000, max_value=40000)))
    if kind == "first_day":
        return first_day_of_month_after(anchor, draw(st.integers(min_value=1, max_value=1200)))
    if kind == "eif":
        return entry_into_force(anchor, THIRTIETH_DEPOSIT)
    return day_of_following_year(anchor.year, anchor.month, min(anchor.day, 28))


@given(step=steps())
def test_every_steps_text_ends_with_the_date_it_produced(step):
    assert fmt(step.value) in step.text
    assert f"= {fmt(step.value)}" in step.text


@pytest.mark.parametrize("function", [add_years, add_months], ids=["add_years", "add_months"])
def test_an_unknown_rounding_is_refused_even_when_no_rounding_is_needed(function):
    with pytest.raises(ValueError, match="unknown rounding 'nearest'; use one of error, round_down, round_up"):
        function(date(2010, 8, 1), 8, "nearest")
