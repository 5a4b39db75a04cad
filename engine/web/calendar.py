"""Calendar feeds (iCalendar, RFC 5545): every deadline of a party, or of all parties, as an
all-day event that calendars can subscribe to.

Everything in a feed follows from its inputs, so two generations from the same record give
the same bytes:

* ``UID``: ``PARTY/OBLIGATION_ID/PERIOD@DOMAIN`` (``-`` for no period; the domain comes from
  ``[api] calendar_domain`` in config.toml). No randomness, no clock.
* ``SEQUENCE``: how many times the deadline moved, i.e. the number of extension decisions
  applied to it (the decision facts among the obligation's inputs). A calendar that already
  holds the event replaces it when the number grows.
* ``DTSTAMP``: when the last ``ccm check`` finished, or midnight UTC of ``as_of`` when no
  check has run.
* ``VALARM``: a display alarm N days before the date (``[api] alarm_days``, default 30 and 7)
  for obligations still open (pending or overdue).
* ``DESCRIPTION``: the status, the legal basis (each rule's article and quotation) and the
  arithmetic, taken from the same explanation ``ccm explain`` prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import sqlalchemy as sa
import sqlalchemy.exc
from icalendar import Alarm, Calendar, Event

from engine.core import wording
from engine.core.dates import fmt
from engine.core.evaluate import Obligation, PartyEvaluation
from engine.core.explain import explain
from engine.core.rulebook import Rulebook
from engine.registry.names import display_name
from engine.store import database as store

DEFAULT_DOMAIN = "ccm-deadlines.local"
DEFAULT_ALARM_DAYS = (30, 7)
PRODID = "-//ccm-deadlines//CCM deadlines//EN"
OPEN = ("pending", "overdue")


def title(obligation_id: str) -> str:
    """A short English title from the rule id.

    >>> title("pack.extension_request")
    'extension request'
    """
    return obligation_id.rsplit(".", 1)[-1].replace("_", " ")


def uid(iso3: str, obligation: Obligation, domain: str = DEFAULT_DOMAIN) -> str:
    """The event's stable identifier.

    >>> from engine.core.evaluate import Obligation
    >>> o = Obligation("pack.clearance", "1(1)", None, date(2020, 8, 1), date(2020, 8, 1), "pending", "", (), (), ())
    >>> uid("LAO", o, "example.org")
    'LAO/pack.clearance/-@example.org'
    """
    return f"{iso3}/{obligation.id}/{obligation.period or '-'}@{domain}"


def times_moved(evaluation: PartyEvaluation, obligation: Obligation) -> int:
    """The number of extension decisions applied to this deadline (its SEQUENCE)."""
    seqs = [evaluation.facts[i].get("seq", 0) for i in obligation.inputs
            if i in evaluation.facts and str(evaluation.facts[i].get("k", "")).startswith("decision:")]
    return max(seqs, default=0)


def description(evaluation: PartyEvaluation, rulebook: Rulebook, obligation: Obligation) -> str:
    """Status, legal basis (article and quotation of each rule), arithmetic."""
    e = explain(evaluation, rulebook, obligation)
    lines = [f"Status as of {fmt(evaluation.as_of)}: {obligation.status.replace('_', ' ')} ({e.status_reason})."]
    if obligation.due != obligation.original_due:
        lines.append(f"Originally due {fmt(obligation.original_due)}; extended to {fmt(obligation.due)}.")
    lines.append("")
    lines.append(f"Legal basis ({rulebook.title.split(' (')[0]}):")
    for rule in e.rules:
        lines.append(f"- Art. {rule['article']}: \"{rule['quote']}\" ({rule['id']})")
    lines.append("")
    lines.append("Arithmetic:")
    lines += [f"{n}. {step}" for n, step in enumerate(e.steps, start=1)]
    return "\n".join(lines)


def dtstamp(last_check_finished: datetime | None, as_of: date) -> datetime:
    """The last check's end (UTC), else midnight UTC of ``as_of``: never the clock.

    >>> dtstamp(None, date(2019, 6, 1))
    datetime.datetime(2019, 6, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    if last_check_finished is not None:
        if last_check_finished.tzinfo is None:
            last_check_finished = last_check_finished.replace(tzinfo=UTC)
        return last_check_finished.astimezone(UTC).replace(microsecond=0)
    return datetime.combine(as_of, time(0, 0), tzinfo=UTC)


def build(evaluations: Iterable[PartyEvaluation], rulebook: Rulebook, *, name: str, stamp: datetime,
          domain: str = DEFAULT_DOMAIN, alarm_days: Sequence[int] = DEFAULT_ALARM_DAYS,
          url_for_party=None) -> bytes:
    """The VCALENDAR of the evaluations' obligations, one all-day VEVENT each."""
    return build_treaties(((e, rulebook, None) for e in evaluations), name=name, stamp=stamp, domain=domain,
                          alarm_days=alarm_days, url_for_party=url_for_party)


def build_treaties(items: Iterable[tuple[PartyEvaluation, Rulebook, Path | None]], *, name: str, stamp: datetime,
                   domain: str = DEFAULT_DOMAIN, alarm_days: Sequence[int] = DEFAULT_ALARM_DAYS,
                   url_for_party=None) -> bytes:
    """One VCALENDAR of evaluations under several packs: each (evaluation, its pack's rulebook, its
    pack's folder for the citation style; None for the default pack). The UIDs cannot collide:
    obligation ids start with the pack."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)

    for evaluation, rulebook, folder in items:
        party = evaluation.participant
        party_name = display_name(party.iso3, "en", party.name)     # the UN short name
        for obligation in evaluation.obligations:
            event = Event()
            event.add("uid", uid(party.iso3, obligation, domain))
            event.add("dtstamp", stamp)
            event.add("dtstart", obligation.due)
            event.add("dtend", obligation.due + timedelta(days=1))
            event.add("sequence", times_moved(evaluation, obligation))
            period = f" ({obligation.period})" if obligation.period else ""
            cited = wording.citation("calendar", obligation.article, folder)
            event.add("summary", f"{party_name}: {title(obligation.id)}{period} due, {cited}")
            event.add("description", description(evaluation, rulebook, obligation))
            event.add("categories", [cited, obligation.status])
            event.add("transp", "TRANSPARENT")
            event.add("status", "CANCELLED" if obligation.status == "lapsed" else "CONFIRMED")
            if url_for_party is not None:
                event.add("url", url_for_party(party.iso3))
            if obligation.status in OPEN:
                for days in alarm_days:
                    alarm = Alarm()
                    alarm.add("action", "DISPLAY")
                    alarm.add("description", f"{party_name}: {title(obligation.id)}{period} due in {days} days "
                                             f"({fmt(obligation.due)})")
                    alarm.add("trigger", timedelta(days=-int(days)))
                    event.add_component(alarm)
            calendar.add_component(event)
    return calendar.to_ical()


def last_check_finished(url: str | None) -> datetime | None:
    """When the last ``ccm check`` of the database finished; None without a database or check."""
    if not url:
        return None

    if not store.database_exists(url):
        return None
    try:
        with store.reader_session(url) as session:
            return session.scalar(sa.select(store.CheckRunRow.finished_at).order_by(store.CheckRunRow.id.desc()).limit(1))
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError):
        return None
