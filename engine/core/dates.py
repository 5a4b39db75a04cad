"""All calendar arithmetic of the engine, with explicit rounding and a plain-words trace of each step.

Every function returns a :class:`Step`: the resulting date and a sentence saying how it
was reached, so that an explanation can print the arithmetic rather than just the answer.

Edge cases, stated once:

* "N years after" keeps day and month. A 29 February anchor has no single answer in a
  common year; the caller must say how to resolve it (``on_leap_day``): ``"error"``
  (the default, refuse), ``"round_down"`` (28 February) or ``"round_up"`` (1 March).
  python-dateutil's ``relativedelta`` would clamp silently to 28 February, so it is called only
  once the target month is known to have the anchor's day (and on first days of months).
* "N months before/after" keeps the day of the month; a day the target month lacks
  (31 in a 30-day month, 29-31 in February) is resolved by ``on_month_end`` in the same way.
* "N days after" counts calendar days.
* A fixed day of each following year (the annual reports' 30 April) is one date per year; a
  29 February, which common years lack, is refused. (dateutil's ``rrule`` computed it once and
  took three quarters of the reference interpreter's time for a loop of ``date()`` calls.)
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from dateutil.relativedelta import relativedelta

# English names fixed here: calendar.month_name calls strftime on every lookup (it sits on the
# path of every annual report's date) and follows the process's locale, which explanations must not.
_MONTH_NAME = ("", "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December")
_MONTH_ABBR = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
Rounding = Literal["error", "round_down", "round_up"]
ROUNDINGS: tuple[str, ...] = ("error", "round_down", "round_up")


class AmbiguousDateError(ValueError):
    """A date computation has no single answer and the rule did not say how to round."""


@dataclass(frozen=True)
class Step:
    """One computed date and the sentence that explains it."""

    value: date
    text: str


def fmt(value: date) -> str:
    """Format a date for explanations, unambiguous in every language.

    >>> fmt(date(2013, 1, 1))
    '1 Jan 2013'
    """
    return f"{value.day} {_MONTH_ABBR[value.month]} {value.year}"


def _shift(anchor: date, delta: relativedelta, rounding: str, what: str) -> date:
    """``anchor + delta`` keeping the day of the month, or the rule's rounding when the target month lacks it."""
    target = anchor.replace(day=1) + delta        # a first day: nothing to clamp
    last = calendar.monthrange(target.year, target.month)[1]
    if anchor.day <= last:                        # checked first: relativedelta would clamp, silently
        return anchor + delta
    if rounding == "round_down":
        return target.replace(day=last)
    if rounding == "round_up":
        return target.replace(day=last) + timedelta(days=1)
    raise AmbiguousDateError(
        f"{what}: {_MONTH_NAME[target.month]} {target.year} has no day {anchor.day}; "
        "the rule must say whether to round down or up"
    )


def add_years(anchor: date, years: int, on_leap_day: Rounding = "error") -> Step:
    """The same day and month, ``years`` later (negative: earlier).

    >>> add_years(date(2010, 8, 1), 8).value
    datetime.date(2018, 8, 1)
    >>> add_years(date(2012, 2, 29), 10)
    Traceback (most recent call last):
    ...
    engine.core.dates.AmbiguousDateError: 29 Feb 2012 + 10 years: February 2022 has no day 29; the rule must say whether to round down or up
    >>> add_years(date(2012, 2, 29), 10, "round_down").value
    datetime.date(2022, 2, 28)
    >>> add_years(date(2012, 2, 29), 10, "round_up").value
    datetime.date(2022, 3, 1)
    >>> add_years(date(2012, 2, 29), 4).value
    datetime.date(2016, 2, 29)
    """
    _check_rounding(on_leap_day)
    what = f"{fmt(anchor)} {'+' if years >= 0 else '-'} {abs(years)} years"
    value = _shift(anchor, relativedelta(years=years), on_leap_day, what)
    note = "" if value.day == anchor.day else f" (29 February rounded {on_leap_day.split('_')[1]})"
    return Step(value, f"{what} = {fmt(value)}{note}")


def add_months(anchor: date, months: int, on_month_end: Rounding = "error") -> Step:
    """The same day of the month, ``months`` later (negative: earlier).

    >>> add_months(date(2019, 9, 2), -9).value
    datetime.date(2018, 12, 2)
    >>> add_months(date(2021, 11, 30), -9)
    Traceback (most recent call last):
    ...
    engine.core.dates.AmbiguousDateError: 30 Nov 2021 - 9 months: February 2021 has no day 30; the rule must say whether to round down or up
    >>> add_months(date(2021, 11, 30), -9, "round_down").value
    datetime.date(2021, 2, 28)
    >>> add_months(date(2024, 1, 31), 1, "round_down").value
    datetime.date(2024, 2, 29)
    """
    _check_rounding(on_month_end)
    what = f"{fmt(anchor)} {'+' if months >= 0 else '-'} {abs(months)} months"
    value = _shift(anchor, relativedelta(months=months), on_month_end, what)
    note = "" if value.day == anchor.day else f" (month end rounded {on_month_end.split('_')[1]})"
    return Step(value, f"{what} = {fmt(value)}{note}")


def add_days(anchor: date, days: int) -> Step:
    """Calendar days after (negative: before).

    >>> add_days(date(2010, 8, 1), 180).value
    datetime.date(2011, 1, 28)
    >>> add_days(date(2015, 11, 1), 180).value   # across 29 February 2016
    datetime.date(2016, 4, 29)
    >>> add_days(date(2019, 7, 1), 180).text
    '1 Jul 2019 + 180 days = 28 Dec 2019'
    """
    value = date.fromordinal(anchor.toordinal() + days)
    return Step(value, f"{fmt(anchor)} {'+' if days >= 0 else '-'} {abs(days)} days = {fmt(value)}")


def first_day_of_month_after(anchor: date, months: int) -> Step:
    """The first day of the month that is ``months`` after the month of ``anchor``.

    This is the depositary's reading of an entry-into-force clause: "the first day of the sixth
    month after" a date is the first day of (that date's month + 6).

    >>> first_day_of_month_after(date(2012, 7, 17), 6).value
    datetime.date(2013, 1, 1)
    >>> first_day_of_month_after(date(2019, 1, 3), 6).value
    datetime.date(2019, 7, 1)
    >>> first_day_of_month_after(date(2010, 9, 7), 6).text
    'first day of the 6th month after September 2010 = 1 Mar 2011'
    """
    value = anchor.replace(day=1) + relativedelta(months=months)
    return Step(
        value,
        f"first day of the {_ordinal(months)} month after "
        f"{_MONTH_NAME[anchor.month]} {anchor.year} = {fmt(value)}",
    )


def day_of_following_year(year: int, month: int, day: int) -> Step:
    """A fixed day and month of the year after ``year`` (e.g. 30 April following a reporting year).

    >>> day_of_following_year(2011, 4, 30).value
    datetime.date(2012, 4, 30)
    >>> day_of_following_year(2011, 4, 30).text
    '30 April of the year following 2011 = 30 Apr 2012'
    """
    return days_of_following_years(year, year, month, day)[0]


def days_of_following_years(first_year: int, last_year: int, month: int, day: int) -> list[Step]:
    """:func:`day_of_following_year` for each year from ``first_year`` to ``last_year``: one yearly recurrence.

    >>> [s.value.isoformat() for s in days_of_following_years(2011, 2013, 4, 30)]
    ['2012-04-30', '2013-04-30', '2014-04-30']
    >>> days_of_following_years(2011, 2010, 4, 30)
    []
    >>> days_of_following_years(2011, 2013, 2, 29)
    Traceback (most recent call last):
    ...
    engine.core.dates.AmbiguousDateError: 29 February of each following year: not every year has it; the rule must name another day
    """
    if month == 2 and day == 29:    # common years lack it: periods would be left without a date
        raise AmbiguousDateError("29 February of each following year: not every year has it; the rule must name another day")
    date(2000, month, day)          # ValueError for a day no month has (31 April)
    if last_year < first_year:
        return []
    name = _MONTH_NAME[month]
    return [Step(value, f"{day} {name} of the year following {year} = {fmt(value)}")
            for year in range(first_year, last_year + 1) for value in (date(year + 1, month, day),)]


def entry_into_force(deposit: date, threshold_deposit: date, months: int = 6) -> Step:
    """First day of the sixth month after the month of deposit, or of the threshold deposit.

    A State that deposited on or before the date of the instrument that brought the
    Convention into force (the threshold deposit) is bound from the Convention's own entry
    into force; a later one from the first day of the sixth month after its own deposit
    (the pack's entry-into-force rule cites the provision).

    >>> entry_into_force(date(2009, 6, 16), date(2010, 2, 16)).value
    datetime.date(2010, 8, 1)
    >>> entry_into_force(date(2010, 2, 16), date(2010, 2, 16)).value
    datetime.date(2010, 8, 1)
    >>> entry_into_force(date(2010, 7, 28), date(2010, 2, 16)).value
    datetime.date(2011, 1, 1)
    >>> entry_into_force(date(2012, 7, 17), date(2010, 2, 16)).text
    'deposit 17 Jul 2012 is after the threshold deposit of 16 Feb 2010: first day of the 6th month after July 2012 = 1 Jan 2013'
    """
    if deposit <= threshold_deposit:
        step = first_day_of_month_after(threshold_deposit, months)
        lead = f"deposit {fmt(deposit)} is on or before the threshold deposit of {fmt(threshold_deposit)}"
    else:
        step = first_day_of_month_after(deposit, months)
        lead = f"deposit {fmt(deposit)} is after the threshold deposit of {fmt(threshold_deposit)}"
    return Step(step.value, f"{lead}: {step.text}")


def end_of_period(value: date, precision: str) -> date:
    """The last day a date known only to a month or a year can stand for.

    >>> end_of_period(date(2023, 6, 1), "month")
    datetime.date(2023, 6, 30)
    >>> end_of_period(date(2017, 1, 1), "year")
    datetime.date(2017, 12, 31)
    >>> end_of_period(date(2020, 7, 10), "day")
    datetime.date(2020, 7, 10)
    """
    if precision == "month":
        return date(value.year, value.month, calendar.monthrange(value.year, value.month)[1])
    if precision == "year":
        return date(value.year, 12, 31)
    return value


def _check_rounding(rounding: str) -> None:
    if rounding not in ROUNDINGS:
        raise ValueError(f"unknown rounding {rounding!r}; use one of {', '.join(ROUNDINGS)}")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
