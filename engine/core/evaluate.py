"""Facts and an as-of date in, obligations out: each with its status and the chain that produced it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, NamedTuple

from engine.core import packs, status, wording
from engine.core.compute import EvaluationError, Fact
from engine.core.dates import fmt
from engine.core.facts import RecordedEvent, meetings_fact, party_facts
from engine.core.meetings import project
from engine.core.model import Meeting, Participant, Registry
from engine.core.rulebook import Rule, Rulebook

_VOCABULARY = status.load_vocabulary()
#: The statuses, in display order (rules/common/statuses.toml).
STATUSES = _VOCABULARY.statuses
#: Statuses after which nothing more is owed: a withdrawal does not make them lapse.
DONE = _VOCABULARY.group("done")
PARTY_STATUSES = ("state_party", "signatory", "former_state_party", "not_party")


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


class Outcome(NamedTuple):
    """One party's turn in :meth:`Evaluator.each`: its evaluation, or the error that stopped it."""

    iso3: str
    evaluation: PartyEvaluation | None
    error: EvaluationError | None


class Evaluator:
    """Evaluates parties with one rulebook, registry and inference backend, named ``backend``.

    The backend is chosen in engine/backends (``engine.backends.Evaluator`` takes its name), so
    that the core imports no backend: ``run(facts, finish)`` derives the facts and calls
    ``finish(derived, judge)`` with the backend's reading of the declared status conditions
    (the durable backend keeps its session open for it).

    ``receipts_complete_from``: the day from which the record of receipts is complete (the ISU
    imported every receipt since): a report due on or after it with no receipt is ``overdue``;
    one due before it, that no receipt or observation covers, is ``unknown``.
    """

    def __init__(self, rulebook: Rulebook, registry: Registry, backend: str, run: Runner,
                 receipts_complete_from: date | None = None):
        self.rulebook = rulebook
        self.registry = registry
        self.backend = backend
        self.receipts_complete_from = receipts_complete_from
        self.meetings: tuple[Meeting, ...] = project(registry.meetings, rulebook.calendar)
        self._meetings_fact = meetings_fact(self.meetings)
        self._run = run

    def facts(self, iso3: str, as_of: date, recorded: Iterable[RecordedEvent] = ()) -> list[Fact]:
        return party_facts(self.registry, iso3, as_of, recorded, self._meetings_fact)

    def evaluate(self, iso3: str, as_of: date, recorded: Iterable[RecordedEvent] = ()) -> PartyEvaluation:
        """Evaluate one party as of a date. Raises EvaluationError when a rule cannot be applied."""
        facts = self.facts(iso3, as_of, recorded)
        participant = self.registry.participant(iso3)
        return self._run(facts, lambda derived, judge: assemble(
            self.rulebook, participant, as_of, facts, derived, self.receipts_complete_from, judge))

    def each(self, as_of: date, recorded: Iterable[RecordedEvent] = (),
             parties: Iterable[str] | None = None) -> Iterator[Outcome]:
        """Every participant (or these parties), in ISO3 order, evaluated one at a time with its own
        recorded events: the one "every party" loop the check, the stats, the API and the calendar
        share. One evaluation is alive at a time, so a caller that keeps only what it needs stays
        flat in memory; a party whose rules cannot be applied yields its error instead of stopping
        the others."""
        by_party: dict[str, list[RecordedEvent]] = {}
        for event in recorded:
            by_party.setdefault(event.party, []).append(event)
        for iso3 in sorted(self.registry.participants if parties is None else parties):
            try:
                yield Outcome(iso3, self.evaluate(iso3, as_of, by_party.get(iso3, ())), None)
            except EvaluationError as error:
                yield Outcome(iso3, None, error)

    def evaluate_all(self, as_of: date, recorded: Iterable[RecordedEvent] = ()) -> list[PartyEvaluation]:
        """Every participant's evaluation; raises the first EvaluationError."""
        out = []
        for outcome in self.each(as_of, recorded):
            if outcome.error is not None:
                raise outcome.error
            assert outcome.evaluation is not None   # each() yields an evaluation or an error
            out.append(outcome.evaluation)
        return out

    def next_meeting(self, as_of: date, kinds: Iterable[str] | None = None) -> Meeting | None:
        """The first meeting of these kinds opening after ``as_of``, projected or not; by default
        of the kinds the pack's meeting calendar projects (the meetings that decide)."""
        wanted = set(kinds) if kinds is not None else deciding_kinds(self.rulebook)
        later = [m for m in self.meetings if m.kind in wanted and m.start_date > as_of]
        return min(later, key=lambda m: m.start_date) if later else None


def deciding_kinds(rulebook: Rulebook) -> set[str]:
    """The meeting kinds the pack's [calendar] series project: the meetings that take decisions."""
    return {series.kind for series in rulebook.calendar.series} if rulebook.calendar else set()


#: Runs one party: infers from the facts, then ``finish(derived, judge)`` with the backend's reading
#: of the status conditions (the durable backend keeps its session open for it).
Runner = Callable[[list[Fact], Callable[[list[Fact], "Judge"], "PartyEvaluation"]], "PartyEvaluation"]


def assemble(rulebook: Rulebook, participant: Participant, as_of: date, facts: list[Fact],
             derived: list[Fact], receipts_complete_from: date | None = None,
             judge: Judge | None = None) -> PartyEvaluation:
    """Turn derived facts into obligations with statuses.

    ``judge`` is the backend's reading of the declared status conditions (the reference
    interpreter's when not given); the wording of each verdict is shared."""
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
    termination = next((r for r in rulebook.rules if r.produces == "termination" and by_kind.get(r.anchor or "")), None)
    withdrawal_fact = by_kind[termination.anchor][0] if termination and termination.anchor else None
    context = status.Context(as_of, receipts_complete_from, meetings, withdrawal_fact)
    subjects = status.subjects(rulebook, latest.values(), by_kind)
    decided, lapsing, thens = (judge or reference_judge)(subjects, context)
    obligations = {s.key: _obligation(s, decided, context, by_id) for s in subjects}
    obligations = _apply_thens(subjects, obligations, thens)
    if termination is not None and withdrawal_fact is not None:
        obligations = _apply_lapse(rulebook, termination, withdrawal_fact, obligations, lapsing)
    ordered = sorted(obligations.values(), key=lambda o: (o.due, o.id, o.period or ""))
    eif_fact = next((f for f in dated.values() if rulebook.rule(f["k"]).id.endswith("entry_into_force")), None)
    eif = date.fromisoformat(eif_fact["date"]) if eif_fact else None
    withdrawal = date.fromisoformat(by_kind["withdrawal"][0]["date"]) if by_kind.get("withdrawal") else None
    return PartyEvaluation(participant=participant, as_of=as_of, status=_party_status(participant, as_of, eif, withdrawal),
                           entry_into_force=eif, withdrawal_effective=withdrawal, rulebook_hash=rulebook.hash,
                           obligations=tuple(ordered), facts=by_id, derived_dates=dated)


#: A backend's reading of the status conditions: (subject key -> (first case that holds, its
#: bindings), keys of the obligations falling due after the withdrawal took effect, the
#: [[status_mode.then]] that hold given those cases' statuses, in subject order).
Judgement = tuple[dict[str, tuple[int, list[dict[str, Fact]]]], set[str], list[status.ThenMatch]]
Judge = Callable[[list[status.Subject], status.Context], Judgement]


def reference_judge(subjects: list[status.Subject], context: status.Context) -> Judgement:
    decided = status.judge(subjects, context)
    return decided, status.lapses(subjects, context), status.thens(subjects, decided)


def _party_status(participant: Participant, as_of: date, eif: date | None, withdrawal: date | None) -> str:
    if withdrawal and withdrawal <= as_of:
        return "former_state_party"
    if eif and eif <= as_of:
        return "state_party"
    if participant.signature_date and participant.signature_date <= as_of:
        return "signatory"
    return "not_party"


def _obligation(subject: status.Subject, decided: dict[str, tuple[int, list[dict[str, Fact]]]],
                context: status.Context, facts: dict[str, Fact]) -> Obligation:
    rule, fact = subject.rule, subject.fact
    due = date.fromisoformat(fact["date"])
    index, bindings = decided.get(subject.key, (len(subject.mode.cases) - 1, [{}]))
    case = subject.mode.cases[index]
    verdict = status.verdict(case, subject, status.chosen(case, subject, bindings), context)
    evidence = verdict.evidence
    inputs = tuple(fact["inputs"]) + ((evidence,) if evidence and evidence not in fact["inputs"] else ())
    evidence_fact = facts.get(evidence or "") or next((b[case.evidence] for b in bindings if case.evidence), None)
    return Obligation(id=rule.id, article=rule.article, period=fact.get("period"), due=due,
                      original_due=date.fromisoformat(fact["original"]), status=verdict.status,
                      status_reason=verdict.reason, basis=tuple(fact["basis"]), inputs=inputs,
                      steps=tuple(fact["steps"]), evidence=evidence, meeting=fact.get("meeting"),
                      received=verdict.received, received_by=verdict.received_by,
                      estimated=bool(fact.get("estimated")),
                      evidence_label=evidence_fact["label"] if evidence_fact else None,
                      evidence_sources=tuple(evidence_fact.get("sources", ())) if evidence_fact else ())


def _apply_thens(subjects: list[status.Subject], obligations: dict[str, Obligation],
                 thens: list[status.ThenMatch]) -> dict[str, Obligation]:
    """The statuses one obligation takes because of another's (declared as [[status_mode.then]]),
    where the backend found the then to hold; only the wording is built here."""
    by_key = {s.key: s for s in subjects}
    result = dict(obligations)
    for request_key, followed_key, number in thens:
        then = by_key[request_key].mode.then[number]
        request, obligation = obligations[request_key], obligations[followed_key]
        reason = then.reason.replace("{request.reason}", request.status_reason).replace("{due}", fmt(obligation.due))
        result[followed_key] = replace(result[followed_key], status=then.becomes, status_reason=reason,
                                       inputs=obligation.inputs + tuple(i for i in request.inputs[-1:] if i not in obligation.inputs))
    return result


def _citation(rule: Rule) -> str:
    """The rule's provision cited as its own pack cites one in a status's reason (its wording's
    ``[citation] reason``; its calendar style when it declares none). The pack is the rule id's
    first part; a rulebook outside the packs folder is worded by the default pack."""
    try:
        directory = packs.find(rule.id.split(".", 1)[0]).directory
    except packs.PackError:
        directory = None
    styles = wording.load(directory)["citation"]
    return str(styles.get("reason", styles["calendar"])).format(article=rule.article)


def _apply_lapse(rulebook: Rulebook, rule: Rule, event: Fact, obligations: dict[str, Obligation],
                 lapsing: set[str]) -> dict[str, Obligation]:
    done = rulebook.vocabulary.group("done") if rulebook.vocabulary else frozenset()
    result = dict(obligations)
    for key, obligation in obligations.items():
        if key in lapsing and obligation.status not in done:
            result[key] = replace(obligation, status="lapsed",
                                  status_reason=f"{event['label']}, before it fell due ({_citation(rule)})",
                                  basis=obligation.basis + (rule.id,), inputs=obligation.inputs + (event["id"],))
    return result
