"""The calendar of meetings: the registry's, then the meetings a rule pack's calendar rule projects past it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

from engine.core.model import Meeting, Source
from engine.core.rulebook import CalendarRule, MeetingSeries

_UNITS = ("", "First", "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh", "Eighth", "Ninth", "Tenth",
          "Eleventh", "Twelfth", "Thirteenth", "Fourteenth", "Fifteenth", "Sixteenth", "Seventeenth",
          "Eighteenth", "Nineteenth")
_TENS = {2: "Twent", 3: "Thirt", 4: "Fort", 5: "Fift", 6: "Sixt", 7: "Sevent", 8: "Eight", 9: "Ninet"}
_CARDINAL_UNITS = ("", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine")


def ordinal_word(number: int) -> str:
    """The English ordinal word, as meeting names spell it.

    >>> ordinal_word(14), ordinal_word(20), ordinal_word(23)
    ('Fourteenth', 'Twentieth', 'Twenty-Third')
    """
    if not 1 <= number <= 99:
        raise ValueError(f"no ordinal word for {number}")
    if number < 20:
        return _UNITS[number]
    tens, units = divmod(number, 10)
    if units == 0:
        return _TENS[tens] + "ieth"
    return f"{_TENS[tens]}y-{_UNITS[units]}"


def _number_in(code: str, series: MeetingSeries) -> int | None:
    """The meeting's number if its code is of the series' form (a part suffix such as '-2' allowed)."""
    head, _, tail = series.code.partition("{n}")
    match = re.fullmatch(re.escape(head) + r"(\d+)" + re.escape(tail) + r"(?:-\w+)?", code)
    return int(match[1]) if match else None


def project(meetings: Iterable[Meeting], rule: CalendarRule | None) -> tuple[Meeting, ...]:
    """The registry's meetings followed by those the calendar rule projects past the last one.

    Each series continues from the last meeting of its kind in the registry (its number and its
    year); a year gets one meeting, of the first series due that year (the rule's order is its
    precedence). A projected meeting has ``status`` ``projected`` and its estimated opening date.

    >>> from engine.core.rulebook import load_rulebook
    >>> from engine.registry.load import load_registry
    >>> calendar = project(load_registry().meetings, load_rulebook().calendar)
    >>> [m.start_date.isoformat() for m in calendar if m.projected][:3]
    ['2027-09-01', '2028-09-01', '2029-09-01']
    """
    known = tuple(sorted(meetings, key=lambda m: m.start_date))
    if rule is None or not rule.series:
        return known
    codes = {m.code for m in known}
    last: dict[str, tuple[int, int]] = {}       # kind -> (last number, year of the last meeting)
    for series in rule.series:
        numbered = [(n, m.start_date.year) for m in known if m.kind == series.kind
                    and (n := _number_in(m.code, series)) is not None]
        if numbered:
            last[series.kind] = (max(n for n, _ in numbered), max(year for _, year in numbered))
    if not last:
        return known
    first_year = max(year for _, year in last.values()) + 1
    projected: list[Meeting] = []
    for year in range(first_year, first_year + rule.horizon_years):
        for series in rule.series:
            number, previous = last.get(series.kind, (0, first_year - series.every_years - 1))
            if year - previous < series.every_years:
                continue
            code = series.code.format(n=number + 1)
            last[series.kind] = (number + 1, year)
            if code not in codes:
                start = date(year, series.estimated_month, series.estimated_day)
                projected.append(Meeting(
                    code=code, kind=series.kind, name=series.name.format(ordinal=ordinal_word(number + 1)),
                    city=series.city, start_date=start, end_date=None, date_precision="estimated",
                    notes=f"projected by the calendar rule ({rule.file}, Art. {rule.article}); "
                          f"opening estimated as {start.isoformat()}",
                    sources=tuple(Source(href=s.href, title=s.title) for s in rule.sources), status="projected"))
            break
    return known + tuple(projected)
