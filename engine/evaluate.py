"""Facts and an as-of date in, obligations out: each with its status and the chain that produced it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable, Iterable

from engine.compute import Fact
from engine.dates import fmt
from engine.facts import RecordedEvent, party_facts
from engine.registry import Participant, Registry
from engine.rulebook import Rule, Rulebook

STATUSES = ("pending", "overdue", "fulfilled", "fulfilled_late", "lapsed")
PARTY_STATUSES = ("state_party", "signatory", "former_state_party", "not_party")
BACKENDS = ("durable", "reference")


@dataclass(frozen=True)
class Obligation:
    """One dated obligation of one party: the current due date, the original one, and why."""

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

    @property
    def key(self) -> tuple[str, str]:
        return (self.id, self.period or "")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "article": self.article, "period": self.period, "due": self.due.isoformat(),
                "original_due": self.original_due.isoformat(), "status": self.status, "basis": list(self.basis)}


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
    """Evaluates parties with one rulebook, registry and backend (``durable`` or ``reference``)."""

    def __init__(self, rulebook: Rulebook, registry: Registry, backend: str = "durable"):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
        self.rulebook = rulebook
        self.registry = registry
        self.backend = backend
        self._infer = _inference(rulebook, backend)

    def facts(self, iso3: str, as_of: date, recorded: Iterable[RecordedEvent] = ()) -> list[Fact]:
        return party_facts(self.registry, iso3, as_of, recorded)

    def evaluate(self, iso3: str, as_of: date, recorded: Iterable[RecordedEvent] = ()) -> PartyEvaluation:
        """Evaluate one party as of a date. Raises EvaluationError when a rule cannot be applied."""
        facts = self.facts(iso3, as_of, recorded)
        derived = self._infer(facts)
        return assemble(self.rulebook, self.registry.participant(iso3), as_of, facts, derived)

    def evaluate_all(self, as_of: date, recorded: Iterable[RecordedEvent] = ()) -> list[PartyEvaluation]:
        events = list(recorded)
        return [self.evaluate(iso3, as_of, [e for e in events if e.party == iso3]) for iso3 in sorted(self.registry.participants)]


def _inference(rulebook: Rulebook, backend: str) -> Callable[[list[Fact]], list[Fact]]:
    if backend == "reference":
        from engine import reference
        return lambda facts: reference.infer(rulebook, facts)
    from engine import durable_adapter
    return durable_adapter.backend(rulebook).infer


def assemble(rulebook: Rulebook, participant: Participant, as_of: date, facts: list[Fact],
             derived: list[Fact]) -> PartyEvaluation:
    """Turn derived facts into obligations with statuses; the same for both backends."""
    by_id = {fact["id"]: fact for fact in facts}
    by_kind: dict[str, list[Fact]] = {}
    for fact in facts:
        by_kind.setdefault(fact["k"], []).append(fact)
    dated: dict[str, Fact] = {}
    latest: dict[tuple[str, str, int], Fact] = {}
    # A fixed order, not the order of firing: backends fire in different orders, and two
    # derivations can tie on (due, id, period).
    for fact in sorted(derived, key=lambda f: (f["k"], f.get("period") or "", f.get("deadline_seq", -1), f["seq"])):
        rule = rulebook.rule(fact["k"])
        if rule.produces == "date":
            dated[fact["k"]] = fact
            continue
        key = (fact["k"], fact.get("period") or "", fact.get("deadline_seq", -1))
        if key not in latest or fact["seq"] > latest[key]["seq"]:
            latest[key] = fact
    drafts = [_obligation(rulebook.rule(fact["k"]), fact, by_kind, as_of) for fact in latest.values()]
    obligations = _apply_follows(rulebook, drafts)
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


def _obligation(rule: Rule, fact: Fact, by_kind: dict[str, list[Fact]], as_of: date) -> Obligation:
    due = date.fromisoformat(fact["date"])
    status, reason, evidence = _STATUS[rule.status](rule, fact, due, by_kind, as_of)
    inputs = tuple(fact["inputs"]) + ((evidence,) if evidence and evidence not in fact["inputs"] else ())
    return Obligation(id=rule.id, article=rule.article, period=fact.get("period"), due=due,
                      original_due=date.fromisoformat(fact["original"]), status=status, status_reason=reason,
                      basis=tuple(fact["basis"]), inputs=inputs, steps=tuple(fact["steps"]),
                      evidence=evidence, meeting=fact.get("meeting"))


def _open(due: date, as_of: date, missing: str) -> tuple[str, str, None]:
    if as_of > due:
        return "overdue", f"{missing}; due {fmt(due)}, {(as_of - due).days} days before {fmt(as_of)}", None
    return "pending", f"{missing}; due {fmt(due)}, {(due - as_of).days} days after {fmt(as_of)}", None


def _on_time(due: date, done: date, fact: Fact) -> tuple[str, str, str]:
    if done <= due:
        return "fulfilled", f"{fact['label']} (on or before {fmt(due)})", fact["id"]
    return "fulfilled_late", f"{fact['label']}: {(done - due).days} days after {fmt(due)}", fact["id"]


def _by_completion(rule: Rule, fact: Fact, due: date, by_kind: dict[str, list[Fact]], as_of: date):
    done = by_kind.get(rule.fulfilled_by or "", [])
    if done:
        completion = done[0]
        return _on_time(due, date.fromisoformat(completion["completed_on"]), completion)
    return _open(due, as_of, "no completion recorded")


def _by_receipt(rule: Rule, fact: Fact, due: date, by_kind: dict[str, list[Fact]], as_of: date):
    """A report or a response: the first one received for the obligation's period."""
    period = fact.get("period")
    receipts = [f for f in by_kind.get(rule.fulfilled_by or "", []) if period is None or f.get("period") == period]
    if receipts:
        first = min(receipts, key=lambda f: f["date"])
        return _on_time(due, date.fromisoformat(first["date"]), first)
    return _open(due, as_of, f"no {rule.status} recorded" + (" as received" if rule.status == "report" else ""))


def _by_extension_request(rule: Rule, fact: Fact, due: date, by_kind: dict[str, list[Fact]], as_of: date):
    requests = [f for f in by_kind.get(rule.fulfilled_by or "", []) if f.get("period") == fact.get("period")]
    if requests:
        first = min(requests, key=lambda f: f["date"])
        return _on_time(due, date.fromisoformat(first["date"]), first)
    article = (rule.fulfilled_by or "").split(":")[-1]
    for decision in by_kind.get(f"decision:extension:{article}", []):
        if decision.get("seq") == fact.get("deadline_seq", -1) + 1:
            return "fulfilled", f"a request was made: {decision['label']}", decision["id"]
    return _open(due, as_of, "no extension request recorded")


def _by_declaration(rule: Rule, fact: Fact, due: date, by_kind: dict[str, list[Fact]], as_of: date):
    completion = (by_kind.get(rule.fulfilled_by or "") or [None])[0]
    if completion and completion.get("declared_at"):
        declared_at = completion["declared_at"]
        if declared_at == fact.get("period"):
            return "fulfilled", f"compliance declared at {declared_at}", completion["id"]
        meetings = {m["code"]: m for m in by_kind["meetings"][0]["meetings"]}
        start = meetings.get(declared_at, {}).get("start")
        if start and date.fromisoformat(start) > due:
            return "fulfilled_late", f"compliance declared at {declared_at}, after {fact.get('period')}", completion["id"]
        return "fulfilled", f"compliance declared: {completion['label']}", completion["id"]
    return _open(due, as_of, "no declaration of compliance recorded")


_STATUS = {
    "completion": _by_completion,
    "report": _by_receipt,
    "response": _by_receipt,
    "extension_request": _by_extension_request,
    "declaration": _by_declaration,
}


def _apply_follows(rulebook: Rulebook, drafts: list[Obligation]) -> list[Obligation]:
    """Drop what is no longer owed: a request for more time once the obligation was met in time."""
    met = {o.id for o in drafts if o.status == "fulfilled"}
    kept = []
    for obligation in drafts:
        rule = rulebook.rule(obligation.id)
        if rule.follows and rule.follows in met and obligation.status not in ("fulfilled", "fulfilled_late"):
            continue
        kept.append(obligation)
    return kept


def _apply_terminations(rulebook: Rulebook, obligations: list[Obligation], by_kind: dict[str, list[Fact]]) -> list[Obligation]:
    result = list(obligations)
    for rule in rulebook.rules:
        if rule.produces != "termination" or not by_kind.get(rule.anchor or ""):
            continue
        event = by_kind[rule.anchor][0]
        effective = date.fromisoformat(event["date"])
        for index, obligation in enumerate(result):
            if obligation.due > effective and obligation.status not in ("fulfilled", "fulfilled_late"):
                result[index] = Obligation(
                    **{**obligation.__dict__, "status": "lapsed",
                       "status_reason": f"{event['label']}, before it fell due (Art. {rule.article})",
                       "basis": obligation.basis + (rule.id,), "inputs": obligation.inputs + (event["id"],)})
    return result
