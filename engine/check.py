"""The daily check: evaluate every party with the record, update the obligations table in one
transaction, append to the change log, and write the digest for the ISU; and the counts of
``ccm stats``.

Exit status of ``ccm check`` (see :func:`needs_attention`): 0 when nothing needs attention,
1 when an obligation is overdue, a deadline falls within the next 90 days, an extension
request must be submitted before the next meeting, or a party could not be evaluated.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy import delete, insert, update

from engine.compute import EvaluationError
from engine.dates import fmt
from engine.evaluate import Evaluator, Obligation, PartyEvaluation
from engine.facts import RecordedEvent
from engine.record import load_events
from engine.store import ChangeRow, CheckRunRow, ObligationRow, lock_for_check, writer_session

WINDOW_DAYS = 90
MEETING_KINDS = ("MSP", "RC")
PAUSE_ENV = "CCM_TEST_PAUSE_IN_CHECK"   # test hook: seconds to sleep half-way through the writes
TRACKED = ("due", "original_due", "status")


@dataclass
class Change:
    party: str
    obligation_id: str
    period: str
    field: str
    old: str | None
    new: str | None
    reason: str


@dataclass
class CheckResult:
    run_id: int
    as_of: date
    rulebook_hash: str
    first_check: bool
    obligations: list[dict[str, Any]]       # the state after the check (stored rows as dicts)
    changes: list[Change]
    errors: list[tuple[str, str]]           # (party, message)
    counts: dict[str, Any]
    names: dict[str, str]
    next_meeting: dict[str, Any] | None
    timings: dict[str, float] = field(default_factory=dict)

    # -- the digest's sections --------------------------------------------------------
    def overdue_reports(self, report_ids: set[str]) -> list[dict[str, Any]]:
        rows = [o for o in self.obligations if o["status"] == "overdue" and o["obligation_id"] in report_ids]
        return sorted(rows, key=lambda o: (o["obligation_id"] != "ccm.art7.initial_report", o["due"], o["party"]))

    def overdue_other(self, report_ids: set[str]) -> list[dict[str, Any]]:
        rows = [o for o in self.obligations if o["status"] == "overdue" and o["obligation_id"] not in report_ids]
        return sorted(rows, key=lambda o: (o["due"], o["party"]))

    def upcoming(self) -> list[dict[str, Any]]:
        end = self.as_of + timedelta(days=WINDOW_DAYS)
        rows = [o for o in self.obligations if o["status"] == "pending" and self.as_of <= o["due"] <= end]
        return sorted(rows, key=lambda o: (o["due"], o["party"]))

    def extension_requests(self, request_ids: set[str]) -> list[dict[str, Any]]:
        """Pending extension requests due for the next meeting (or before it opens)."""
        rows = [o for o in self.obligations if o["status"] == "pending" and o["obligation_id"] in request_ids]
        if self.next_meeting:
            code, start = self.next_meeting["code"], self.next_meeting["start"]
            rows = [o for o in rows if o.get("meeting") == code or o["due"] <= start]
        else:
            rows = []
        return sorted(rows, key=lambda o: (o["due"], o["party"]))


def obligation_values(party: str, o: Obligation, rulebook_hash: str) -> dict[str, Any]:
    return {"party": party, "obligation_id": o.id, "period": o.period or "", "article": o.article, "due": o.due,
            "original_due": o.original_due, "status": o.status, "status_reason": o.status_reason,
            "meeting": o.meeting, "rulebook_hash": rulebook_hash,
            "provenance": {"basis": list(o.basis), "inputs": list(o.inputs), "steps": list(o.steps),
                           "evidence": o.evidence}}


_SLIM = ("party", "obligation_id", "period", "article", "due", "status", "status_reason", "meeting")
_COMPARED = ("article", "due", "original_due", "status", "status_reason", "meeting", "provenance", "rulebook_hash")


def _why(field_name: str, old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    if field_name in ("due", "original_due") and old is not None:
        was, now = old["provenance"], new["provenance"]
        rules = [b for b in now["basis"] if b not in was["basis"]] or now["basis"][-1:]
        inputs = [i for i in now["inputs"] if i not in was["inputs"]]
        steps = [s for s in now["steps"] if s not in was["steps"]] or now["steps"][-1:]
        return (f"rule {', '.join(rules)} applied" + (f" to {', '.join(inputs)}" if inputs else "")
                + (": " + "; ".join(steps) if steps else ""))
    return new["status_reason"]


def diff(old: dict[str, Any] | None, new: dict[str, Any]) -> list[Change]:
    key = (new["party"], new["obligation_id"], new["period"])
    if old is None:
        return [Change(*key, "new", None, f"{new['status']}, due {new['due'].isoformat()}", new["status_reason"])]
    changes = []
    for name in TRACKED:
        if old[name] != new[name]:
            render = (lambda v: v.isoformat() if isinstance(v, date) else v)
            changes.append(Change(*key, name, render(old[name]), render(new[name]), _why(name, old, new)))
    return changes


def evaluate_parties(evaluator: Evaluator, as_of: date, events: Iterable[RecordedEvent],
                     parties: Iterable[str] | None = None) -> tuple[list[PartyEvaluation], list[tuple[str, str]]]:
    by_party: dict[str, list[RecordedEvent]] = {}
    for event in events:
        by_party.setdefault(event.party, []).append(event)
    evaluations, errors = [], []
    for iso3 in sorted(parties if parties is not None else evaluator.registry.participants):
        try:
            evaluations.append(evaluator.evaluate(iso3, as_of, by_party.get(iso3, [])))
        except EvaluationError as error:
            errors.append((iso3, str(error)))
    return evaluations, errors


def next_meeting(evaluator: Evaluator, as_of: date) -> dict[str, Any] | None:
    later = [m for m in evaluator.registry.meetings if m.kind in MEETING_KINDS and m.start_date > as_of]
    if not later:
        return None
    m = min(later, key=lambda m: m.start_date)
    return {"code": m.code, "name": m.name, "start": m.start_date, "city": m.city}


def run_check(url: str, evaluator: Evaluator, as_of: date, now: datetime | None = None) -> CheckResult:
    """One check, all of it in one transaction: a crash leaves the previous check's state.

    Concurrent checks are serialised (PostgreSQL advisory lock; SQLite BEGIN IMMEDIATE):
    the second one sees the first one's committed state and finds nothing more to change.
    """
    t0 = time.perf_counter()
    now = now or datetime.now(timezone.utc)
    timings: dict[str, float] = {}
    with writer_session(url) as session, session.begin():
        lock_for_check(session)
        events = load_events_in(session)
        previous_run = session.scalar(sa.select(sa.func.max(CheckRunRow.id)))
        run = CheckRunRow(as_of=as_of, started_at=now, rulebook_hash=evaluator.rulebook.hash, counts={})
        session.add(run)
        session.flush()
        columns = [getattr(ObligationRow, c) for c in ("id", "party", "obligation_id", "period") + _COMPARED]
        stored = {(r.party, r.obligation_id, r.period): r._asdict() for r in session.execute(sa.select(*columns))}
        by_party: dict[str, list[RecordedEvent]] = {}
        for event in events:
            by_party.setdefault(event.party, []).append(event)
        errors: list[tuple[str, str]] = []
        inserts, updates, changes, seen, current = [], [], [], set(), []
        engine_time, parties = 0.0, 0
        for iso3 in sorted(evaluator.registry.participants):
            t = time.perf_counter()
            try:   # keep only the obligations: a party's facts are not needed after its evaluation
                evaluation = evaluator.evaluate(iso3, as_of, by_party.get(iso3, []))
            except EvaluationError as error:
                errors.append((iso3, str(error)))
                continue
            finally:
                engine_time += time.perf_counter() - t
            parties += 1
            for o in evaluation.obligations:
                new = obligation_values(iso3, o, evaluation.rulebook_hash)
                current.append({k: new[k] for k in _SLIM})   # what the digest needs, without provenance
                key = (iso3, new["obligation_id"], new["period"])
                seen.add(key)
                old = stored.get(key)
                changes.extend(diff(old, new))
                new.update(computed_at=now, check_run_id=run.id)
                if old is None:
                    inserts.append(new)
                elif any(old[c] != new[c] for c in _COMPARED):
                    new["id"] = old["id"]
                    updates.append(new)
        timings["engine"] = engine_time
        failed = {party for party, _ in errors}
        removed = [(key, row) for key, row in stored.items() if key not in seen and key[0] not in failed]
        for key, row in removed:
            changes.append(Change(*key, "removed", f"{row['status']}, due {row['due'].isoformat()}", None,
                                  "no longer derived from the facts (fulfilled elsewhere, or its basis changed)"))
        t = time.perf_counter()
        _write(session, inserts, updates, [row["id"] for _, row in removed])
        if changes:
            session.execute(insert(ChangeRow), [{**c.__dict__, "check_run_id": run.id, "at": now} for c in changes])
        counts = {"parties": parties, "errors": len(errors), "obligations": len(stored) + len(inserts) - len(removed),
                  "inserted": len(inserts), "updated": len(updates), "removed": len(removed), "changes": len(changes),
                  "recorded_events": len(events)}
        run.counts = counts
        run.finished_at = datetime.now(timezone.utc)
        timings["write"] = time.perf_counter() - t
    after = current
    for party in failed:   # keep what was stored for a party that could not be evaluated
        after.extend({**row, "party": key[0], "obligation_id": key[1], "period": key[2]}
                     for key, row in stored.items() if key[0] == party)
    timings["total"] = time.perf_counter() - t0
    names = {iso3: p.name for iso3, p in evaluator.registry.participants.items()}
    return CheckResult(run_id=run.id, as_of=as_of, rulebook_hash=evaluator.rulebook.hash, first_check=previous_run is None,
                       obligations=after, changes=changes, errors=errors, counts=counts, names=names,
                       next_meeting=next_meeting(evaluator, as_of), timings=timings)


def load_events_in(session) -> list[RecordedEvent]:
    from engine.record import to_recorded
    from engine.store import RecordedEventRow

    rows = session.scalars(sa.select(RecordedEventRow).where(RecordedEventRow.superseded_by.is_(None))
                           .order_by(RecordedEventRow.on, RecordedEventRow.id))
    return [to_recorded(r) for r in rows]


def _write(session, inserts: list[dict], updates: list[dict], removed_ids: list[int]) -> None:
    """Write in two halves; the test hook may pause (inside the open transaction) in between."""
    work = [("insert", r) for r in inserts] + [("update", r) for r in updates]
    half = len(work) // 2
    pause = os.environ.get(PAUSE_ENV)
    for index, chunk in enumerate((work[:half], work[half:])):
        batch_inserts = [r for kind, r in chunk if kind == "insert"]
        batch_updates = [r for kind, r in chunk if kind == "update"]
        if batch_inserts:
            session.execute(insert(ObligationRow), batch_inserts)
        if batch_updates:
            session.execute(update(ObligationRow), batch_updates)
        if index == 0 and pause:
            session.flush()
            print(f"{PAUSE_ENV}: wrote {half} of {len(work)} rows, pausing {pause} s", file=sys.stderr, flush=True)
            time.sleep(float(pause))
    for start in range(0, len(removed_ids), 500):
        session.execute(delete(ObligationRow).where(ObligationRow.id.in_(removed_ids[start:start + 500])))


def needs_attention(result: CheckResult, evaluator: Evaluator) -> bool:
    ids = rule_groups(evaluator)
    return bool(result.overdue_reports(ids["report"]) or result.overdue_other(ids["report"]) or result.upcoming()
                or result.extension_requests(ids["extension_request"]) or result.errors)


def rule_groups(evaluator: Evaluator) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = {}
    for rule in evaluator.rulebook.rules:
        if rule.is_obligation:
            groups.setdefault(rule.status or "", set()).add(rule.id)
    return groups


# ----------------------------------------------------------------------------- digest

def digest_context(result: CheckResult, evaluator: Evaluator) -> dict[str, Any]:
    ids = rule_groups(evaluator)
    names = result.names

    def row(o: dict[str, Any]) -> dict[str, Any]:
        late = (result.as_of - o["due"]).days
        return {"party": o["party"], "name": names.get(o["party"], o["party"]), "obligation": o["obligation_id"],
                "article": o["article"], "period": o["period"], "due": o["due"].isoformat(), "due_text": fmt(o["due"]),
                "days_late": late, "days_left": -late, "meeting": o.get("meeting") or "", "reason": o["status_reason"]}

    return {
        "as_of": result.as_of.isoformat(), "as_of_text": fmt(result.as_of), "run_id": result.run_id,
        "rulebook": result.rulebook_hash, "window": WINDOW_DAYS, "first_check": result.first_check,
        "counts": result.counts, "attention": needs_attention(result, evaluator),
        "overdue_reports": [row(o) for o in result.overdue_reports(ids.get("report", set()))],
        "overdue_other": [row(o) for o in result.overdue_other(ids.get("report", set()))],
        "upcoming": [row(o) for o in result.upcoming()],
        "extension_requests": [row(o) for o in result.extension_requests(ids.get("extension_request", set()))],
        "next_meeting": ({**result.next_meeting, "start": result.next_meeting["start"].isoformat(),
                          "start_text": fmt(result.next_meeting["start"])} if result.next_meeting else None),
        "changes": [] if result.first_check else [
            {**c.__dict__, "name": names.get(c.party, c.party)} for c in
            sorted(result.changes, key=lambda c: (c.party, c.obligation_id, c.period, c.field))],
        "errors": [{"party": p, "name": names.get(p, p), "message": m} for p, m in result.errors],
    }


def render_digest(context: dict[str, Any]) -> tuple[str, str]:
    """(Markdown, HTML) of the digest."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("engine", "templates"), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html", "html.j2"]), trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    return env.get_template("digest.md.j2").render(**context), env.get_template("digest.html.j2").render(**context)


def write_digest(folder: Path, context: dict[str, Any]) -> tuple[Path, Path]:
    markdown, html = render_digest(context)
    folder.mkdir(parents=True, exist_ok=True)
    md_path, html_path = folder / f"digest-{context['as_of']}.md", folder / f"digest-{context['as_of']}.html"
    md_path.write_text(markdown, encoding="utf-8")
    html_path.write_text(html, encoding="utf-8")
    return md_path, html_path


# ----------------------------------------------------------------------------- stats

def stats(evaluator: Evaluator, as_of: date, events: Iterable[RecordedEvent]) -> dict[str, Any]:
    """Counts like the progress reports of the Meetings of States Parties, as of a date."""
    evaluations, errors = evaluate_parties(evaluator, as_of, events)
    parties = [e for e in evaluations if e.status == "state_party"]
    initial = [o for e in parties for o in e.obligations if o.id == "ccm.art7.initial_report"]
    due = [o for o in initial if o.due <= as_of or o.status in ("fulfilled", "fulfilled_late")]

    def article(ids: tuple[str, ...], request_id: str) -> dict[str, int]:
        per_party: dict[str, list[Obligation]] = {}
        for e in parties:
            found = [o for o in e.obligations if o.id in ids]
            if found:
                per_party[e.participant.iso3] = found
        return {
            "states_with_obligation": len(per_party),
            "completed": sum(all(o.status in ("fulfilled", "fulfilled_late") for o in os_) for os_ in per_party.values()),
            "extended": sum(any(o.due != o.original_due for o in os_) for os_ in per_party.values()),
            "deadline_passed_outstanding": sum(any(o.status == "overdue" for o in os_) for os_ in per_party.values()),
            "extension_requests_overdue": sum(1 for e in parties for o in e.obligations
                                              if o.id == request_id and o.status == "overdue"),
        }

    decided = Counter()
    for e in evaluations:
        for key in e.facts:
            if key.startswith("decision:extension:"):
                decided[key.split(":")[2].split("#")[0]] += 1
    return {
        "as_of": as_of.isoformat(),
        "states_parties": len(parties),
        "signatories": sum(1 for e in evaluations if e.status == "signatory"),
        "former_states_parties": sum(1 for e in evaluations if e.status == "former_state_party"),
        "initial_reports": {
            "due": len(due),
            "received": sum(1 for o in due if o.status in ("fulfilled", "fulfilled_late")),
            "received_late": sum(1 for o in due if o.status == "fulfilled_late"),
            "outstanding": sum(1 for o in due if o.status == "overdue"),
            "not_yet_due": len(initial) - len(due),
        },
        "annual_reports": {
            "due": sum(1 for e in parties for o in e.obligations if o.id == "ccm.art7.annual_report" and o.due <= as_of),
            "outstanding": sum(1 for e in parties for o in e.obligations if o.id == "ccm.art7.annual_report" and o.status == "overdue"),
        },
        "article_3": article(("ccm.art3.stockpile_destruction",), "ccm.art3.extension_request"),
        "article_4": article(("ccm.art4.clearance", "ccm.art4.clearance_after_eif"), "ccm.art4.extension_request"),
        "extension_requests_decided": {"art3": decided.get("art3", 0), "art4": decided.get("art4", 0),
                                       "total": sum(decided.values())},
        "recorded_events": sum(1 for _ in events) if isinstance(events, list) else None,
        "errors": [{"party": p, "message": m} for p, m in errors],
    }
