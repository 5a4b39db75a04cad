"""Facts and an as-of date in, obligations out: each with its status and the chain that produced it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from engine.core.compute import Fact
from engine.core.dates import fmt
from engine.core.facts import RecordedEvent, meetings_fact, party_facts
from engine.core.meetings import project
from engine.core.model import Meeting, Participant, Registry
from engine.core.rulebook import Rule, Rulebook

STATUSES = ("pending", "overdue", "unknown", "fulfilled", "fulfilled_late", "received", "awaiting_decision",
            "not_needed", "missed", "lapsed")
#: Statuses after which nothing more is owed: a withdrawal does not make them lapse.
DONE = frozenset({"fulfilled", "fulfilled_late", "received", "not_needed"})
PARTY_STATUSES = ("state_party", "signatory", "former_state_party", "not_party")
BACKENDS = ("durable", "reference")


@dataclass(frozen=True)
class Obligation:
    """One dated obligation of one party: the current due date, the original one, and why.

    ``received`` is the day a receipt was recorded; ``received_by`` the day by which a published
    observation shows it had been received (its own date unknown). ``estimated`` marks a date
    that hangs on a projected meeting.
    """

    id: str
    article: str
    period: str | None
    due: date
    original_due: date
    status: str
    status_reason: str
    basis: tuple[str, ...]
    inputs: tuple[str, ...]
    steps: tuple[str, ...]
    evidence: str | None = None
    meeting: str | None = None
    received: date | None = None
    received_by: date | None = None
    estimated: bool = False
    evidence_label: str | None = None
    evidence_sources: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.id, self.period or "")

    def to_json(self) -> dict[str, Any]:
        """The fixed shape, plus the optional fields that are set (documented in the README)."""
        out: dict[str, Any] = {"id": self.id, "article": self.article, "period": self.period, "due": self.due.isoformat(),
                               "original_due": self.original_due.isoformat(), "status": self.status,
                               "basis": list(self.basis)}
        if self.estimated:
            out["estimated"] = True
        if self.received:
            out["received"] = self.received.isoformat()
        if self.received_by:
            out["received_by"] = self.received_by.isoformat()
        if self.evidence and self.evidence_label:
            out["evidence"] = {"fact": self.evidence, "says": self.evidence_label, "sources": list(self.evidence_sources)}
        return out


@dataclass(frozen=True)
class PartyEvaluation:
    """Everything the engine says about one party as of one date."""

    participant: Participant
    as_of: date
    status: str
    entry_into_force: date | None
    withdrawal_effective: date | None
    rulebook_hash: str
    obligations: tuple[Obligation, ...]
    facts: dict[str, Fact] = field(repr=False)
    derived_dates: dict[str, Fact] = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """The shape ``ccm deadlines --json`` prints (other tools parse it: keep it stable)."""
        return {
            "party": {"iso3": self.participant.iso3, "name": self.participant.name, "status": self.status,
                      "entry_into_force": self.entry_into_force.isoformat() if self.entry_into_force else None,
                      "withdrawal_effective": self.withdrawal_effective.isoformat() if self.withdrawal_effective else None},
            "as_of": self.as_of.isoformat(),
            "rulebook": self.rulebook_hash,
            "obligations": [o.to_json() for o in self.obligations],
        }

    def find(self, obligation_id: str, period: str | None = None) -> list[Obligation]:
        return [o for o in self.obligations if o.id == obligation_id and (period is None or o.period == period)]


class Evaluator:
    """Evaluates parties with one rulebook, registry and backend (``durable`` or ``reference``).

    ``receipts_complete_from``: the day from which the record of receipts is complete (the ISU
    imported every receipt since): a report due on or after it with no receipt is ``overdue``;
    one due before it, that no receipt or observation covers, is ``unknown``.
    """

    def __init__(self, rulebook: Rulebook, registry: Registry, backend: str = "durable",
                 receipts_complete_from: date | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
        self.rulebook = rulebook
        self.registry = registry
        self.backend = backend
        self.receipts_complete_from = receipts_complete_from
        self.meetings: tuple[Meeting, ...] = project(registry.meetings, rulebook.calendar)
        self._meetings_fact = meetings_fact(self.meetings)
        self._infer = _inference(rulebook, backend)

    def facts(self, iso3: str, as_of: date, recorded: Iterable[RecordedEvent] = ()) -> list[Fact]:
        return party_facts(self.registry, iso3, as_of, recorded, self._meetings_fact)

    def evaluate(self, iso3: str, as_of: date, recorded: Iterable[RecordedEvent] = ()) -> PartyEvaluation:
        """Evaluate one party as of a date. Raises EvaluationError when a rule cannot be applied."""
        facts = self.facts(iso3, as_of, recorded)
        derived = self._infer(facts)
        return assemble(self.rulebook, self.registry.participant(iso3), as_of, facts, derived,
                        self.receipts_complete_from)

    def evaluate_all(self, as_of: date, recorded: Iterable[RecordedEvent] = ()) -> list[PartyEvaluation]:
        events = list(recorded)
        return [self.evaluate(iso3, as_of, [e for e in events if e.party == iso3]) for iso3 in sorted(self.registry.participants)]

    def next_meeting(self, as_of: date, kinds: Iterable[str] = ("MSP", "RC")) -> Meeting | None:
        """The first meeting of these kinds opening after ``as_of``, projected or not."""
        wanted = set(kinds)
        later = [m for m in self.meetings if m.kind in wanted and m.start_date > as_of]
        return min(later, key=lambda m: m.start_date) if later else None


def _inference(rulebook: Rulebook, backend: str) -> Callable[[list[Fact]], list[Fact]]:
    if backend == "reference":
        from engine.backends import reference
        return lambda facts: reference.infer(rulebook, facts)
    from engine.backends import durable as durable_adapter
    return durable_adapter.backend(rulebook).infer


def assemble(rulebook: Rulebook, participant: Participant, as_of: date, facts: list[Fact],
             derived: list[Fact], receipts_complete_from: date | None = None) -> PartyEvaluation:
    """Turn derived facts into obligations with statuses; the same for both backends."""
    by_id = {fact["id"]: fact for fact in facts}
    by_kind: dict[str, list[Fact]] = {}
    for fact in facts:
        by_kind.setdefault(fact["k"], []).append(fact)
    dated: dict[str, Fact] = {}
    latest: dict[tuple[str, str], Fact] = {}
    # A fixed order, not the order of firing: backends fire in different orders, and two
    # derivations can tie on (due, id, period). One obligation per (id, period): the latest
    # derivation, and of two deadlines that name the same meeting, the later deadline.
    for fact in sorted(derived, key=lambda f: (f["k"], f.get("period") or "", f.get("deadline_seq", -1), f["seq"])):
        rule = rulebook.rule(fact["k"])
        if rule.produces == "date":
            dated[fact["k"]] = fact
            continue
        latest[(fact["k"], fact.get("period") or "")] = fact
    meetings = {m["code"]: m for m in (by_kind.get("meetings") or [{"meetings": []}])[0]["meetings"]}
    context = _Context(rulebook, as_of, receipts_complete_from, meetings, by_id)
    obligations = [_obligation(rulebook.rule(fact["k"]), fact, by_kind, context) for fact in latest.values()]
    obligations = _apply_pending_decisions(rulebook, obligations)
    obligations = _apply_terminations(rulebook, obligations, by_kind)
    obligations.sort(key=lambda o: (o.due, o.id, o.period or ""))
    eif_fact = next((f for f in dated.values() if rulebook.rule(f["k"]).id.endswith("entry_into_force")), None)
    eif = date.fromisoformat(eif_fact["date"]) if eif_fact else None
    withdrawal = date.fromisoformat(by_kind["withdrawal"][0]["date"]) if by_kind.get("withdrawal") else None
    return PartyEvaluation(participant=participant, as_of=as_of, status=_party_status(participant, as_of, eif, withdrawal),
                           entry_into_force=eif, withdrawal_effective=withdrawal, rulebook_hash=rulebook.hash,
                           obligations=tuple(obligations), facts=by_id, derived_dates=dated)


def _party_status(participant: Participant, as_of: date, eif: date | None, withdrawal: date | None) -> str:
    if withdrawal and withdrawal <= as_of:
        return "former_state_party"
    if eif and eif <= as_of:
        return "state_party"
    if participant.signature_date and participant.signature_date <= as_of:
        return "signatory"
    return "not_party"


@dataclass(frozen=True)
class _Context:
    rulebook: Rulebook
    as_of: date
    receipts_complete_from: date | None
    meetings: dict[str, dict[str, Any]]
    facts: dict[str, Fact]


@dataclass(frozen=True)
class _Verdict:
    status: str
    reason: str
    evidence: str | None = None
    received: date | None = None
    received_by: date | None = None


def _obligation(rule: Rule, fact: Fact, by_kind: dict[str, list[Fact]], context: _Context) -> Obligation:
    due = date.fromisoformat(fact["date"])
    verdict = _STATUS[rule.status or ""](rule, fact, due, by_kind, context)
    evidence = verdict.evidence
    inputs = tuple(fact["inputs"]) + ((evidence,) if evidence and evidence not in fact["inputs"] else ())
    evidence_fact = context.facts.get(evidence or "")
    return Obligation(id=rule.id, article=rule.article, period=fact.get("period"), due=due,
                      original_due=date.fromisoformat(fact["original"]), status=verdict.status,
                      status_reason=verdict.reason, basis=tuple(fact["basis"]), inputs=inputs,
                      steps=tuple(fact["steps"]), evidence=evidence, meeting=fact.get("meeting"),
                      received=verdict.received, received_by=verdict.received_by,
                      estimated=bool(fact.get("estimated")),
                      evidence_label=evidence_fact["label"] if evidence_fact else None,
                      evidence_sources=tuple(evidence_fact.get("sources", ())) if evidence_fact else ())


def _open(due: date, as_of: date, missing: str) -> _Verdict:
    if as_of > due:
        return _Verdict("overdue", f"{missing}; due {fmt(due)}, {(as_of - due).days} days before {fmt(as_of)}")
    return _Verdict("pending", f"{missing}; due {fmt(due)}, {(due - as_of).days} days after {fmt(as_of)}")


def _unknown(due: date, context: _Context, missing: str, what: str) -> _Verdict:
    """Past due with nothing on record: overdue only where the record is complete for that day."""
    complete_from = context.receipts_complete_from
    if context.as_of <= due or (complete_from is not None and due >= complete_from):
        suffix = f" (the record is complete from {fmt(complete_from)})" if complete_from and context.as_of > due else ""
        return _open(due, context.as_of, missing + suffix)
    return _Verdict("unknown", f"{missing}, and the record of {what} is not complete for {fmt(due)}: "
                               f"whether it was received is not known")


def _on_time(due: date, done: date, fact: Fact) -> _Verdict:
    if done <= due:
        return _Verdict("fulfilled", f"{fact['label']} (on or before {fmt(due)})", fact["id"], received=done)
    return _Verdict("fulfilled_late", f"{fact['label']}: {(done - due).days} days after {fmt(due)}", fact["id"], received=done)


def _submitted(due: date, fact: Fact) -> _Verdict:
    """Timeliness of a submission known to a day, a month, a year, or only as "on or before" a day."""
    latest = date.fromisoformat(fact["date"])
    precision = fact.get("precision", "day")
    if precision == "day" or "submitted_on" not in fact:
        return _on_time(due, date.fromisoformat(fact.get("submitted_on") or fact["date"]), fact)
    earliest = None if precision == "before" else date.fromisoformat(fact["submitted_on"])
    if latest <= due:
        return _Verdict("fulfilled", f"{fact['label']} (on or before {fmt(due)})", fact["id"], received_by=latest)
    if earliest is not None and earliest > due:
        return _Verdict("fulfilled_late", f"{fact['label']}: after {fmt(due)}", fact["id"], received_by=latest)
    return _Verdict("received", f"{fact['label']}; its exact date is not recorded, so whether it was made by "
                                f"{fmt(due)} is not known", fact["id"], received_by=latest)


def _by_completion(rule: Rule, fact: Fact, due: date, by_kind: dict[str, list[Fact]], context: _Context) -> _Verdict:
    done = by_kind.get(rule.fulfilled_by or "", [])
    if done:
        completion = done[0]
        return _on_time(due, date.fromisoformat(completion["completed_on"]), completion)
    return _open(due, context.as_of, "no completion recorded")


def _by_receipt(rule: Rule, fact: Fact, due: date, by_kind: dict[str, list[Fact]], context: _Context) -> _Verdict:
    """A report or a response: the first one received for the obligation's period; for a report
    with none recorded, what published observations say of it."""
    period = fact.get("period")
    receipts = [f for f in by_kind.get(rule.fulfilled_by or "", []) if period is None or f.get("period") == period]
    recorded = [f for f in receipts if not f.get("published")]
    if recorded:   # the ISU's own record wins over what a source says
        first = min(recorded, key=lambda f: f["date"])
        return _on_time(due, date.fromisoformat(first["date"]), first)
    if receipts:
        return _submitted(due, min(receipts, key=lambda f: f["date"]))
    if rule.status == "response":   # the request is in the record, and so is the answer to it
        return _open(due, context.as_of, "no response recorded")
    if context.as_of > due:
        observed = _observed(rule, fact, due, by_kind)
        if observed:
            return observed
    return _unknown(due, context, "no receipt recorded", "receipts")


def _observed(rule: Rule, fact: Fact, due: date, by_kind: dict[str, list[Fact]]) -> _Verdict | None:
    """What the observations dated after the due date say of one report (None: nothing)."""
    period = fact.get("period")
    relevant = sorted((o for o in by_kind.get(f"observation:{rule.fulfilled_by}", [])
                       if o["date"] > fact["date"] and (o.get("period") in (None, period))),
                      key=lambda o: (o["date"], o["id"]))
    received = sorted((o for o in relevant if not o["outstanding"]), key=lambda o: (o.get("until") or o["date"], o["id"]))
    outstanding = [o for o in relevant if o["outstanding"]]
    if received:
        first = received[0]
        seen = date.fromisoformat(first.get("until") or first["date"])
        before = [o for o in outstanding if o["date"] < first["date"]]
        later = [o for o in outstanding if o["date"] > (first.get("until") or first["date"])]
        note = (f" (a later list, {later[-1]['observer']} as of {fmt(date.fromisoformat(later[-1]['date']))}, "
                f"still names it: the sources disagree)") if later else ""
        if before:
            last = date.fromisoformat(before[-1]["date"])
            return _Verdict("fulfilled_late", f"received after {fmt(last)}, when {before[-1]['observer']} still listed it "
                                              f"as outstanding, and on or before {fmt(seen)}, when {first['observer']} did "
                                              f"not; the date of receipt is not recorded{note}", first["id"], received_by=seen)
        return _Verdict("received", f"received on or before {fmt(seen)}: not among the outstanding reports listed by "
                                    f"{first['observer']} as of that day; the date of receipt is not recorded, so whether "
                                    f"it was on time is not known{note}", first["id"], received_by=seen)
    if outstanding:
        latest = outstanding[-1]
        return _Verdict("overdue", f"due {fmt(due)}; still outstanding on {fmt(date.fromisoformat(latest['date']))} "
                                   f"according to {latest['observer']}; no receipt recorded since", latest["id"])
    return None


def _by_extension_request(rule: Rule, fact: Fact, due: date, by_kind: dict[str, list[Fact]], context: _Context) -> _Verdict:
    """A request is optional: never overdue. Decided, submitted, awaiting a decision, not needed, pending or missed."""
    period = fact.get("period")
    article = (rule.fulfilled_by or "").split(":")[-1]
    requests = sorted((f for f in by_kind.get(rule.fulfilled_by or "", []) if f.get("period") == period),
                      key=lambda f: f["date"])
    decision = next((d for d in by_kind.get(f"decision:extension:{article}", [])
                     if d.get("seq") == fact.get("deadline_seq", -1) + 1), None)
    if decision is not None:
        if requests:
            return _submitted(due, requests[0])
        return _Verdict("fulfilled", f"a request was made: {decision['label']}", decision["id"])
    if requests:
        first = requests[0]
        meeting = context.meetings.get(period or "")
        if meeting and meeting["status"] != "projected" and meeting["end"] < context.as_of.isoformat():
            return _Verdict("awaiting_decision", f"{first['label']}; the {period} met ({fmt(date.fromisoformat(meeting['start']))}"
                                                 f" to {fmt(date.fromisoformat(meeting['end']))}) and no decision on it is recorded",
                            first["id"])
        return _submitted(due, first)
    deadline = date.fromisoformat(fact.get("deadline") or fact["date"])
    followed = context.rulebook.rule(rule.follows) if rule.follows else None
    completions = by_kind.get(followed.fulfilled_by or "", []) if followed else []
    if completions:
        completed = date.fromisoformat(completions[0]["completed_on"])
        if completed <= deadline:
            return _Verdict("not_needed", f"not needed: {completions[0]['label']}, on or before the deadline of "
                                          f"{fmt(deadline)}", completions[0]["id"])
    if context.as_of <= due:
        return _Verdict("pending", f"no extension request recorded; a request is optional; due {fmt(due)}, "
                                   f"{(due - context.as_of).days} days after {fmt(context.as_of)}")
    return _Verdict("missed", f"no extension request recorded by {fmt(due)}, and the deadline of {fmt(deadline)} "
                              f"was then still open")


def _by_declaration(rule: Rule, fact: Fact, due: date, by_kind: dict[str, list[Fact]], context: _Context) -> _Verdict:
    completions = by_kind.get(rule.fulfilled_by or "")
    completion = completions[0] if completions else None
    if completion and completion.get("declared_at"):
        declared_at = completion["declared_at"]
        if declared_at == fact.get("period"):
            return _Verdict("fulfilled", f"compliance declared at {declared_at}", completion["id"])
        start = context.meetings.get(declared_at, {}).get("start")
        if start and date.fromisoformat(start) > due:
            return _Verdict("fulfilled_late", f"compliance declared at {declared_at}, after {fact.get('period')}", completion["id"])
        return _Verdict("fulfilled", f"compliance declared: {completion['label']}", completion["id"])
    return _unknown(due, context, "no declaration of compliance recorded", "declarations")


_STATUS = {
    "completion": _by_completion,
    "report": _by_receipt,
    "response": _by_receipt,
    "extension_request": _by_extension_request,
    "declaration": _by_declaration,
}


def _apply_pending_decisions(rulebook: Rulebook, obligations: list[Obligation]) -> list[Obligation]:
    """A deadline past with a request to extend it that awaits a recorded decision is not known to be
    missed: it reads "decision not recorded" (unknown), not overdue."""
    awaiting = {rulebook.rule(o.id).follows: o for o in obligations if o.status == "awaiting_decision"}
    result = []
    for obligation in obligations:
        request = awaiting.get(obligation.id)
        if request is not None and obligation.status == "overdue":
            obligation = replace(obligation, status="unknown",
                                 status_reason=f"decision not recorded: {request.status_reason}; due {fmt(obligation.due)} "
                                               f"unless that meeting extended it",
                                 inputs=obligation.inputs + tuple(i for i in request.inputs[-1:] if i not in obligation.inputs))
        result.append(obligation)
    return result


def _apply_terminations(rulebook: Rulebook, obligations: list[Obligation], by_kind: dict[str, list[Fact]]) -> list[Obligation]:
    result = list(obligations)
    for rule in rulebook.rules:
        if rule.produces != "termination" or rule.anchor is None or not by_kind.get(rule.anchor):
            continue
        event = by_kind[rule.anchor][0]
        effective = date.fromisoformat(event["date"])
        for index, obligation in enumerate(result):
            if obligation.due > effective and obligation.status not in DONE:
                result[index] = replace(
                    obligation, status="lapsed",
                    status_reason=f"{event['label']}, before it fell due (Art. {rule.article})",
                    basis=obligation.basis + (rule.id,), inputs=obligation.inputs + (event["id"],))
    return result
