"""The facts of one party as known on a date: plain, JSON-safe dicts built from the registry and the record.

Fact kinds are generic over the registry's columns: ``deposit``, ``deposit:effective_from`` (only
where the registry states a date of effect for the instrument, also the deposit's ``effective_from``
field), ``threshold_deposit``,
``withdrawal``, ``as_of``, ``meetings``, ``declaration:art<N>:<position>``,
``retention:art<N>``, ``completion:art<N>``, ``decision:<kind>:art<N>`` (numbered in the
order decided, ``seq`` 1, 2, ...), and from the record ``report:<kind>``,
``extension_request:art<N>``, ``clarification_request`` and ``clarification_response``; the
registry's known extension requests are ``extension_request:art<N>`` facts too, and its
observations of the record are ``observation:report:<kind>`` facts (one per observation that
speaks of the party: listed as outstanding, or absent from a complete list).

A fact dated after ``as_of`` is not known yet and is left out: a completion, a decision or
a receipt counts from the last day it can stand for (a completion known only to a month
counts from the end of that month). Meetings are scheduled in advance and always included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from engine.core.compute import Fact
from engine.core.dates import fmt
from engine.core.model import Meeting, Registry


@dataclass(frozen=True)
class RecordedEvent:
    """Something the ISU recorded about a party (issue: the record); the registry's facts need none."""

    kind: str                      # e.g. report:initial, report:annual, extension_request:<article key>
    party: str
    on: date                       # received / submitted / effective
    period: str | None = None      # calendar year for reports, meeting code for requests
    id: str | None = None
    label: str = ""
    sources: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def _day(value: date) -> dict[str, Any]:
    return {"date": value.isoformat(), "ord": value.toordinal()}


def meetings_fact(meetings: Iterable[Meeting]) -> Fact:
    """The calendar as one fact: every meeting with its opening (as held, and as announced) and status."""
    listed = [m for m in meetings if m.start_date]
    projected = sum(1 for m in listed if m.projected)
    return {"k": "meetings", "id": "meetings",
            "meetings": [{"code": m.code, "kind": m.kind, "name": m.name, "start": m.start_date.isoformat(),
                          "announced_start": m.opening_as_announced.isoformat(),
                          "end": (m.end_date or m.start_date).isoformat(), "status": m.status}
                         for m in listed],
            "label": (f"the calendar of {len(listed) - projected} meetings in the registry"
                      + (f" and {projected} projected by the calendar rule" if projected else "")),
            "sources": []}


def party_facts(registry: Registry, iso3: str, as_of: date, recorded: Iterable[RecordedEvent] = (),
                meetings: Fact | None = None) -> list[Fact]:
    """Every fact about ``iso3`` known on ``as_of``, each with an ``id``, a ``label`` and ``sources``.

    ``meetings`` is the calendar fact (:func:`meetings_fact`, projected meetings included);
    without it, the registry's meetings alone."""
    participant = registry.participant(iso3)
    name = participant.name
    hrefs = [s.href for s in participant.sources]
    facts: list[Fact] = [{"k": "as_of", "id": "as_of", **_day(as_of), "label": f"evaluated as of {fmt(as_of)}", "sources": []}]
    if participant.deposit_date and participant.deposit_date <= as_of:
        instrument = participant.instrument or "instrument"
        deposit: Fact = {"k": "deposit", "id": "deposit", **_day(participant.deposit_date), "instrument": instrument,
                         "label": f"{name} deposited its instrument of {instrument} on {fmt(participant.deposit_date)}",
                         "sources": hrefs}
        facts.append(deposit)
        effective = participant.effective_from
        if effective:
            # The date of effect the registry states (a succession dated from the succession of States):
            # a field of the deposit for a rule to anchor on, and a fact of its own for `when`/`unless`.
            deposit["effective_from"] = effective.isoformat()
            deposit["label"] += f", with effect from {fmt(effective)}"
            facts.append({"k": "deposit:effective_from", "id": "deposit:effective_from", **_day(effective),
                          "instrument": instrument,
                          "label": (f"the depositary gives {name}'s instrument of {instrument} (deposited "
                                    f"{fmt(participant.deposit_date)}) effect from {fmt(effective)}"),
                          "sources": hrefs})
        threshold, first_parties = registry.thirtieth_deposit()
        count = registry.treaty.instruments_for_entry_into_force
        facts.append({"k": "threshold_deposit", "id": "threshold_deposit", **_day(threshold),
                      "parties": [p.iso3 for p in first_parties],
                      "label": (f"the instrument that brought the number deposited to {count} was deposited on "
                                f"{fmt(threshold)} ({', '.join(p.name for p in first_parties)})"),
                      "sources": sorted({s.href for p in first_parties for s in p.sources})})
    if participant.withdrawal_effective_date and participant.withdrawal_effective_date <= as_of:
        effective = participant.withdrawal_effective_date
        facts.append({"k": "withdrawal", "id": "withdrawal", **_day(effective),
                      "label": f"{name}'s withdrawal took effect on {fmt(effective)}", "sources": hrefs})
    facts.append(meetings if meetings is not None else meetings_fact(registry.meetings))
    for declaration in registry.declarations_for(iso3):
        article = f"art{declaration.article}"
        kind = f"declaration:{article}:{declaration.position}"
        fact: Fact = {"k": kind, "id": kind, "article": declaration.article, "position": declaration.position,
                "label": f"Article {declaration.article} position: {declaration.position.replace('_', ' ')}"
                         + (f" ({declaration.quantity})" if declaration.quantity else ""),
                "sources": [s.href for s in declaration.sources]}
        if declaration.end_of_hostilities:
            fact["end_of_hostilities"] = declaration.end_of_hostilities.isoformat()
        facts.append(fact)
        if declaration.retains:
            ended = declaration.retention_ended
            facts.append({"k": f"retention:{article}", "id": f"retention:{article}", "end_year": ended,
                          "label": "retains cluster munitions for training and development"
                                   + (f" (until {ended})" if ended else ""),
                          "sources": [s.href for s in declaration.sources]})
    events = [e for e in recorded if e.party == iso3 and e.on <= as_of]
    completions: dict[str, Fact] = {}
    for completion in registry.completions_for(iso3):
        if completion.known_by > as_of:
            continue
        kind = f"completion:art{completion.article}"
        completions[kind] = {"k": kind, "id": kind, **_day(completion.known_by),
                             "completed_on": completion.completed_on.isoformat(), "precision": completion.precision,
                             "declared_at": completion.declared_at, "label": _completion_label(completion),
                             "sources": [s.href for s in completion.sources]}
    for event in events:
        if event.kind.startswith("completion:"):
            # A recorded completion supersedes the registry's: it is the later word (a reopened obligation).
            completions[event.kind] = {"k": event.kind, "id": event.id or event.kind, **_day(event.on),
                                       "completed_on": event.on.isoformat(), "precision": "day",
                                       "declared_at": event.extra.get("declared_at"),
                                       "label": event.label or f"{event.kind.split(':')[1]} obligation completed on {fmt(event.on)} (recorded)",
                                       "sources": list(event.sources)}
    facts.extend(completions.values())
    decisions: list[tuple[date, Fact]] = []
    for decision in registry.decisions_for(iso3):
        if decision.known_by > as_of:
            continue
        kind = f"decision:{decision.kind}:art{decision.article}"
        decisions.append((decision.known_by, {
            "k": kind, **_day(decision.known_by), "meeting": decision.meeting,
            "granted_deadline": decision.granted_deadline.isoformat(), "document": decision.document,
            "inferred": decision.inferred,
            "label": (f"{decision.meeting} decided {_when(decision.decided_on, decision.decided_precision)} to extend "
                      f"the Article {decision.article} deadline to {fmt(decision.granted_deadline)}"
                      + (" [decision inferred from the sources]" if decision.inferred else "")),
            "sources": [s.href for s in decision.sources]}))
    for event in events:
        if event.kind.startswith("decision:"):
            decisions.append((event.on, {
                "k": event.kind, **_day(event.on), "meeting": event.extra.get("meeting") or event.period,
                "granted_deadline": event.extra["granted_deadline"], "document": event.extra.get("document"),
                "inferred": False,
                "label": event.label or (f"{event.extra.get('meeting') or event.period} decided on {fmt(event.on)} to extend "
                                         f"the deadline to {event.extra['granted_deadline']} (recorded)"),
                "sources": list(event.sources)}))
    seq: dict[str, int] = {}
    decisions.sort(key=lambda pair: (pair[0], pair[1]["granted_deadline"]))
    for _known, fact in decisions:
        seq[fact["k"]] = seq.get(fact["k"], 0) + 1
        facts.append({**fact, "id": f"{fact['k']}#{seq[fact['k']]}", "seq": seq[fact["k"]]})
    facts.extend(_requests(registry, iso3, as_of))
    facts.extend(_published_receipts(registry, iso3, as_of))
    facts.extend(_observations(registry, iso3, as_of))
    has_withdrawal = any(f["k"] == "withdrawal" for f in facts)
    for event in sorted(events, key=lambda e: (e.kind, e.on, e.period or "")):
        if event.kind.startswith(("completion:", "decision:")):
            continue
        if event.kind == "withdrawal":
            if has_withdrawal:
                continue
            has_withdrawal = True
        fact_id = event.id or f"{event.kind}#{event.period or event.on.isoformat()}"
        facts.append({"k": event.kind, "id": fact_id, **_day(event.on), "period": event.period,
                      "label": event.label or f"{event.kind} on {fmt(event.on)}", "sources": list(event.sources),
                      **event.extra})
    return facts


def _requests(registry: Registry, iso3: str, as_of: date) -> list[Fact]:
    """The registry's known extension requests, in the shape of a recorded one."""
    facts = []
    for request in registry.requests_for(iso3):
        if request.known_by > as_of:
            continue
        kind = f"extension_request:art{request.article}"
        if request.submitted_precision == "before":
            said = (f"an Article {request.article} extension request was submitted for the {request.meeting} "
                    f"on or before {fmt(request.submitted_on)} (the day it was first submitted is not published)")
        else:
            said = (f"an Article {request.article} extension request for the {request.meeting} was submitted "
                    f"{_when(request.submitted_on, request.submitted_precision)}")
        said += (f" ({request.document})" if request.document else "")
        said += (f", asking for {fmt(request.requested_deadline)}" if request.requested_deadline else "")
        facts.append({"k": kind, "id": f"{kind}#{request.meeting}", **_day(request.known_by), "period": request.meeting,
                      "submitted_on": request.submitted_on.isoformat(), "precision": request.submitted_precision,
                      "label": said,
                      "sources": [s.href for s in request.sources]})
    return facts


def _published_receipts(registry: Registry, iso3: str, as_of: date) -> list[Fact]:
    """Dates of receipt that public sources state; ``published`` tells them from the ISU's recorded ones."""
    facts = []
    for receipt in registry.receipts_for(iso3):
        if receipt.known_by > as_of:
            continue
        kind = f"report:{receipt.kind}"
        what = f"{receipt.kind} report" + (f" for {receipt.period}" if receipt.period else "")
        facts.append({"k": kind, "id": f"published:{kind}#{receipt.period or ''}#{receipt.received_on.isoformat()}",
                      **_day(receipt.known_by), "period": receipt.period, "published": True,
                      "submitted_on": receipt.received_on.isoformat(), "precision": receipt.precision,
                      "label": (f"{what} received {_when(receipt.received_on, receipt.precision)}, according to "
                                f"{receipt.observer} (\"{receipt.phrase}\")"),
                      "sources": [s.href for s in receipt.sources]})
    return facts


def _observations(registry: Registry, iso3: str, as_of: date) -> list[Fact]:
    """Each published observation known on ``as_of`` that says something of this party's reports."""
    facts = []
    for observation in registry.observations:
        if observation.observed_until > as_of:
            continue
        listed = iso3 in observation.outstanding
        if not listed and not observation.complete:
            continue
        kind = f"observation:report:{observation.kind}"
        what = f"{observation.kind} report" + (f" for {observation.period}" if observation.period else "")
        verdict = ("listed as outstanding" if listed else "not listed (the list is complete)")
        undated = observation.observed_until != observation.observed_on
        when = (f"in a copy written between {fmt(observation.observed_on)} and {fmt(observation.observed_until)}"
                if undated else f"as of {fmt(observation.observed_on)}")
        facts.append({"k": kind, "id": f"observation:{observation.id}", **_day(observation.observed_on),
                      "until": observation.observed_until.isoformat(),
                      "period": observation.period, "outstanding": listed, "observer": observation.observer,
                      "phrase": observation.phrase,
                      "label": (f"{observation.observer}, {when}: "
                                f"\"{observation.phrase}\" — {what}: {verdict}"),
                      "sources": [s.href for s in observation.sources]})
    return facts


def _when(value: date, precision: str) -> str:
    return {"day": f"on {fmt(value)}", "month": f"in {value.strftime('%B %Y')}", "year": f"in {value.year}",
            "before": f"on or before {fmt(value)}"}.get(precision, f"on {fmt(value)}")


def _completion_label(completion: Any) -> str:
    text = f"Article {completion.article} obligation completed {_when(completion.completed_on, completion.precision)}"
    if completion.declared_at:
        text += f", declared at {completion.declared_at}"
    return text
