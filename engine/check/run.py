"""The daily check: evaluate every party with the record, update the obligations table in one
transaction, append to the change log, and write the digest for the ISU; and the counts of
``ccm stats``.

Exit status of ``ccm check`` (see :func:`needs_attention`): 0 when nothing needs attention,
1 when an obligation is overdue, a deadline falls within the next 90 days, an extension
request must be submitted before the next meeting, or a party could not be evaluated.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import delete, insert, update

from engine.core.compute import EvaluationError
from engine.core.dates import fmt
from engine.core.evaluate import Evaluator, Obligation, PartyEvaluation
from engine.core.facts import RecordedEvent
from engine.store.database import (
    ChangeRow,
    CheckRunRow,
    ObligationRow,
    lock_for_check,
    reader_session,
    writer_session,
)
from engine.store.snapshot import load_snapshot

WINDOW_DAYS = 90
MEETING_KINDS = ("MSP", "RC")
PAUSE_ENV = "CCM_TEST_PAUSE_IN_CHECK"   # test hook: seconds to sleep half-way through the writes
TRACKED = ("due", "original_due", "status")
RECEIVED = ("fulfilled", "fulfilled_late", "received")


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
    registry_hash: str | None = None        # the registry files' hash, when it was read from files
    registry_loaded: bool = False           # this check replaced the database's copy of the registry

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

    def with_status(self, status: str, ids: set[str] | None = None) -> list[dict[str, Any]]:
        rows = [o for o in self.obligations if o["status"] == status and (ids is None or o["obligation_id"] in ids)]
        return sorted(rows, key=lambda o: (o["due"], o["party"], o["obligation_id"], o["period"]))

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
                           "evidence": o.evidence, **({"estimated": True} if o.estimated else {})}}


_SLIM = ("party", "obligation_id", "period", "article", "due", "status", "status_reason", "meeting")
_PLAIN = ("article", "due", "original_due", "status", "status_reason", "meeting", "rulebook_hash")
_COMPARED = _PLAIN + ("provenance",)
_STORED = ("id", "party", "obligation_id", "period") + _PLAIN       # and the provenance, as text
CHUNK_PARTIES = 500    # parties whose stored rows are read at once
BATCH_ROWS = 2000      # rows per executemany


def _why(field_name: str, old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    if field_name in ("due", "original_due") and old is not None:
        was, now = old["provenance"], new["provenance"]
        rules = [b for b in now["basis"] if b not in was["basis"]] or now["basis"][-1:]
        inputs = [i for i in now["inputs"] if i not in was["inputs"]]
        steps = [s for s in now["steps"] if s not in was["steps"]] or now["steps"][-1:]
        return (f"rule {', '.join(rules)} applied" + (f" to {', '.join(inputs)}" if inputs else "")
                + (": " + "; ".join(steps) if steps else ""))
    return new["status_reason"]


def _estimated(row: dict[str, Any]) -> bool:
    provenance = row["provenance"]
    if isinstance(provenance, str):
        provenance = json.loads(provenance)
    return bool(provenance.get("estimated"))


def _render(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def diff(old: dict[str, Any] | None, new: dict[str, Any]) -> list[Change]:
    key = (new["party"], new["obligation_id"], new["period"])
    if old is None:
        estimate = " (estimated)" if _estimated(new) else ""
        return [Change(*key, "new", None, f"{new['status']}, due {new['due'].isoformat()}{estimate}", new["status_reason"])]
    changes = []
    for name in TRACKED:
        if old[name] != new[name]:
            changes.append(Change(*key, name, _render(old[name]), _render(new[name]), _why(name, old, new)))
    was, now = _estimated(old), _estimated(new)
    if was != now:
        changes.append(Change(*key, "estimated", "yes" if was else "no", "yes" if now else "no",
                              "the meeting it hangs on is now in the registry" if was else
                              "it now hangs on a projected meeting"))
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
    """The next meeting, from the registry or, past its last one, as the calendar rule projects it."""
    m = evaluator.next_meeting(as_of, MEETING_KINDS)
    if m is None:
        return None
    return {"code": m.code, "name": m.name, "start": m.start_date, "city": m.city, "projected": m.projected}


def run_check(url: str, evaluator: Evaluator, as_of: date, now: datetime | None = None,
              before_commit: Callable[[CheckResult], Any] | None = None, commit: bool = True) -> CheckResult:
    """One check, all of it in one transaction: a crash leaves the previous check's state.

    With ``commit=False`` (a replay of an earlier day) the transaction is rolled back at the
    end: the result is what the check would have stored, and nothing is stored.

    Concurrent checks are serialised (PostgreSQL advisory lock; SQLite BEGIN IMMEDIATE):
    the second one sees the first one's committed state and finds nothing more to change.

    First, in the same transaction, the database's copy of the registry (the registry_* tables,
    engine/store/snapshot.py) is replaced when the registry's hash differs from the stored one,
    so that the database always reflects the registry the check used; when it is the same, that
    costs one query. A registry built in code (no hash) leaves the copy as it is.

    Parties are taken in chunks of :data:`CHUNK_PARTIES` (in ISO3 order): the stored rows of a
    chunk's parties are read, each party is evaluated and compared with its own rows, and the
    inserts, updates, deletions and change-log rows are written in batches of
    :data:`BATCH_ROWS`, all inside the one transaction. Only what the digest needs is kept for
    the whole run (each obligation without its provenance, and the changes); a stored
    provenance is compared by its text, and parsed only when the text differs or a date moved.

    ``before_commit`` gets the result while the transaction is still open (the CLI writes the
    digest there): if it raises, nothing is committed, so no run exists whose digest was lost.
    """
    t0 = time.perf_counter()
    now = now or datetime.now(UTC)
    timings: dict[str, float] = {"engine": 0.0, "write": 0.0}
    with writer_session(url) as session, session.begin():
        lock_for_check(session)
        # the database's copy of the registry becomes the one this check uses (one query when it is)
        registry_hash = getattr(evaluator.registry, "hash", None)
        t = time.perf_counter()
        registry_loaded = registry_hash is not None and load_snapshot(session, evaluator.registry, now)
        timings["write"] += time.perf_counter() - t
        events = load_events_in(session)
        previous_run = session.scalar(sa.select(sa.func.max(CheckRunRow.id)))
        run = CheckRunRow(as_of=as_of, started_at=now, rulebook_hash=evaluator.rulebook.hash, counts={})
        session.add(run)
        session.flush()
        t = time.perf_counter()
        table = ObligationRow.__table__
        stored_parties: dict[str, int] = dict(session.execute(sa.select(table.c.party, sa.func.count()).group_by(table.c.party)).all())
        timings["write"] += time.perf_counter() - t
        by_party: dict[str, list[RecordedEvent]] = {}
        for event in events:
            by_party.setdefault(event.party, []).append(event)
        writes = _Writes(session, run.id, now, timings)
        errors: list[tuple[str, str]] = []
        changes: list[Change] = []
        removed_changes: list[tuple[int, Change]] = []   # (row id, change): logged after every party's changes
        current: list[dict[str, Any]] = []
        kept: list[dict[str, Any]] = []           # stored rows of parties that could not be evaluated
        participants = sorted(evaluator.registry.participants)
        halfway, pause = (len(participants) + 1) // 2, os.environ.get(PAUSE_ENV)
        parties = done = 0
        others = sorted(set(stored_parties) - set(participants))
        chunks = [participants[i:i + CHUNK_PARTIES] for i in range(0, len(participants), CHUNK_PARTIES)]
        for chunk in chunks + ([others] if others else []):
            stored = _stored_rows(session, [p for p in chunk if p in stored_parties], timings)
            for iso3 in chunk:
                if iso3 not in evaluator.registry.participants:     # stored rows of a party no longer in the registry
                    continue
                t = time.perf_counter()
                try:   # keep only the obligations: a party's facts are not needed after its evaluation
                    evaluation = evaluator.evaluate(iso3, as_of, by_party.get(iso3, []))
                except EvaluationError as error:
                    errors.append((iso3, str(error)))
                    kept.extend({**{k: row[k] for k in _SLIM}, "estimated": _estimated(row)}
                                for key, row in stored.items() if key[0] == iso3)
                    for key in [key for key in stored if key[0] == iso3]:
                        del stored[key]
                    continue
                finally:
                    timings["engine"] += time.perf_counter() - t
                    done += 1
                parties += 1
                for o in evaluation.obligations:
                    new = obligation_values(iso3, o, evaluation.rulebook_hash)
                    current.append({**{k: new[k] for k in _SLIM}, "estimated": o.estimated})   # what the digest needs
                    old = stored.pop((iso3, new["obligation_id"], new["period"]), None)
                    if old is None:
                        changes.extend(diff(None, new))
                        writes.insert({**new, "computed_at": now, "check_run_id": run.id})
                        continue
                    moved = [c for c in _PLAIN if old[c] != new[c]]
                    text = json.dumps(new["provenance"])
                    if text != old["provenance"] and json.loads(old["provenance"]) != new["provenance"]:
                        moved.append("provenance")
                    if "due" in moved or "original_due" in moved:   # the reason names the rules and inputs that moved it
                        old = {**old, "provenance": json.loads(old["provenance"])}
                    changes.extend(diff(old, new))
                    if moved:
                        writes.update(old["id"], {**{c: new[c] for c in moved}, "computed_at": now, "check_run_id": run.id})
                if pause and done >= halfway and not writes.paused:
                    writes.pause(pause)
            for key, row in stored.items():   # not derived any more (the failed parties' rows were taken out above)
                removed_changes.append((row["id"], Change(*key, "removed", f"{row['status']}, due {row['due'].isoformat()}",
                                                          None, "no longer derived from the facts (fulfilled elsewhere, "
                                                                "or its basis changed)")))
                writes.delete(row["id"])
            writes.add_changes(changes[writes.changes_logged:])
            writes.flush()
        removed_changes.sort(key=lambda pair: pair[0])     # in the order the rows were stored
        changes.extend(change for _, change in removed_changes)
        writes.add_changes([change for _, change in removed_changes])
        writes.flush()
        counts = {"parties": parties, "errors": len(errors),
                  "obligations": sum(stored_parties.values()) + writes.inserted - writes.removed,
                  "inserted": writes.inserted, "updated": writes.updated, "removed": writes.removed,
                  "changes": len(changes), "recorded_events": len(events)}
        run.counts = {**counts, "registry_hash": registry_hash} if registry_hash else counts
        run.finished_at = datetime.now(UTC)
        current.extend(kept)   # keep what was stored for a party that could not be evaluated
        timings["total"] = time.perf_counter() - t0
        names = {iso3: p.name for iso3, p in evaluator.registry.participants.items()}
        result = CheckResult(run_id=run.id, as_of=as_of, rulebook_hash=evaluator.rulebook.hash,
                             first_check=previous_run is None, obligations=current, changes=changes, errors=errors,
                             counts=counts, names=names, next_meeting=next_meeting(evaluator, as_of), timings=timings,
                             registry_hash=registry_hash, registry_loaded=registry_loaded)
        if before_commit is not None:
            before_commit(result)
        if not commit:
            session.rollback()
    return result


def load_events_in(session) -> list[RecordedEvent]:
    from engine.record.events import to_recorded
    from engine.store.database import RecordedEventRow

    rows = session.scalars(sa.select(RecordedEventRow).where(RecordedEventRow.superseded_by.is_(None))
                           .order_by(RecordedEventRow.on, RecordedEventRow.id))
    return [to_recorded(r) for r in rows]


def _stored_rows(session, parties: list[str], timings: dict[str, float]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The stored obligations of these parties, keyed (party, obligation id, period), with the
    provenance as its stored JSON text."""
    if not parties:
        return {}
    t = time.perf_counter()
    table = ObligationRow.__table__
    query = (sa.select(*(table.c[name] for name in _STORED), sa.cast(table.c.provenance, sa.Text).label("provenance"))
             .where(table.c.party.in_(parties)))
    rows = {(r.party, r.obligation_id, r.period): r._asdict() for r in session.execute(query)}
    timings["write"] += time.perf_counter() - t
    return rows


class _Writes:
    """The check's writes, buffered and sent in batches (executemany) inside the open transaction.

    Updates carry only the columns that moved (and ``computed_at``, ``check_run_id``), grouped
    by that set of columns: the stored row ends up the same as a full update would leave it.
    """

    def __init__(self, session, run_id: int, now: datetime, timings: dict[str, float]):
        self.session, self.run_id, self.now, self.timings = session, run_id, now, timings
        self.inserts: list[dict[str, Any]] = []
        self.updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        self.deletes: list[int] = []
        self.changes: list[dict[str, Any]] = []
        self.pending = self.written = 0
        self.inserted = self.updated = self.removed = 0
        self.changes_logged = 0
        self.paused = False
        self._statements: dict[tuple[str, ...], Any] = {}

    def insert(self, row: dict[str, Any]) -> None:
        self.inserts.append(row)
        self.inserted += 1
        self._count()

    def update(self, row_id: int, values: dict[str, Any]) -> None:
        columns = tuple(sorted(values))
        self.updates.setdefault(columns, []).append({"b_id": row_id, **{f"b_{c}": v for c, v in values.items()}})
        self.updated += 1
        self._count()

    def delete(self, row_id: int) -> None:
        self.deletes.append(row_id)
        self.removed += 1
        self._count()

    def add_changes(self, changes: list[Change]) -> None:
        self.changes.extend({**c.__dict__, "check_run_id": self.run_id, "at": self.now} for c in changes)
        self.changes_logged += len(changes)
        if len(self.changes) >= BATCH_ROWS:
            self.flush()

    def _count(self) -> None:
        self.pending += 1
        if self.pending >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not (self.pending or self.changes):
            return
        t = time.perf_counter()
        session = self.session
        if self.inserts:
            session.execute(insert(ObligationRow.__table__), self.inserts)
        for columns, rows in self.updates.items():
            session.execute(self._update(columns), rows)
        for start in range(0, len(self.deletes), 500):
            session.execute(delete(ObligationRow.__table__).where(ObligationRow.__table__.c.id.in_(self.deletes[start:start + 500])))
        if self.changes:
            session.execute(insert(ChangeRow.__table__), self.changes)
        self.written += self.pending
        self.inserts, self.updates, self.deletes, self.changes, self.pending = [], {}, [], [], 0
        self.timings["write"] += time.perf_counter() - t

    def _update(self, columns: tuple[str, ...]):
        if columns not in self._statements:
            table = ObligationRow.__table__
            self._statements[columns] = (update(table).where(table.c.id == sa.bindparam("b_id"))
                                         .values({c: sa.bindparam(f"b_{c}") for c in columns}))
        return self._statements[columns]

    def pause(self, seconds: str) -> None:
        """The test hook: half-way through the parties, once some rows are written, sleep inside
        the open transaction (a kill then must leave the previous check's state)."""
        self.flush()
        if not self.written:
            return
        self.session.flush()
        self.paused = True
        print(f"{PAUSE_ENV}: wrote {self.written} rows, pausing {seconds} s", file=sys.stderr, flush=True)
        time.sleep(float(seconds))


def needs_attention(result: CheckResult, evaluator: Evaluator) -> bool:
    """Something the ISU must act on: an obligation overdue, a deadline near, a request to submit,
    a decision to record, a missed request putting an open deadline at risk, a party not evaluated.
    Reports with no record of receipt are counted apart and are not, by themselves, attention."""
    ids = rule_groups(evaluator)
    return bool(result.overdue_reports(ids.get("report", set())) or result.overdue_other(ids.get("report", set()))
                or result.upcoming() or result.extension_requests(ids.get("extension_request", set()))
                or result.with_status("awaiting_decision") or _missed_at_risk(result, evaluator) or result.errors)


OPEN_DEADLINE = ("pending", "overdue", "unknown")


def _missed_at_risk(result: CheckResult, evaluator: Evaluator) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(missed request, the deadline it would have extended) where that deadline is still open."""
    follows = {r.id: r.follows for r in evaluator.rulebook.rules if r.follows}
    by_key = {(o["party"], o["obligation_id"]): o for o in result.obligations if o["period"] == ""}
    pairs = []
    for request in result.with_status("missed"):
        deadline = by_key.get((request["party"], follows.get(request["obligation_id"], "")))
        if deadline is not None and deadline["status"] in OPEN_DEADLINE:
            pairs.append((request, deadline))
    return pairs


def rule_groups(evaluator: Evaluator) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = {}
    for rule in evaluator.rulebook.rules:
        if rule.is_obligation:
            groups.setdefault(rule.status or "", set()).add(rule.id)
    return groups


# ----------------------------------------------------------------------------- digest

def digest_context(result: CheckResult, evaluator: Evaluator, contacts: dict[str, Any] | None = None) -> dict[str, Any]:
    """The digest's sections. With ``contacts`` (party -> contact), it also lists the parties that
    have something needing attention but no one to write to, so none is silently left out."""
    ids = rule_groups(evaluator)
    names = result.names

    def row(o: dict[str, Any]) -> dict[str, Any]:
        late = (result.as_of - o["due"]).days
        return {"party": o["party"], "name": names.get(o["party"], o["party"]), "obligation": o["obligation_id"],
                "article": o["article"], "period": o["period"], "due": o["due"].isoformat(), "due_text": fmt(o["due"]),
                "estimated": bool(o.get("estimated")), "status": o["status"],
                "due_label": o["due"].isoformat() + (" (estimated)" if o.get("estimated") else ""),
                "days_late": late, "days_left": -late, "meeting": o.get("meeting") or "", "reason": o["status_reason"]}

    return {
        "as_of": result.as_of.isoformat(), "as_of_text": fmt(result.as_of), "run_id": result.run_id,
        "rulebook": result.rulebook_hash, "window": WINDOW_DAYS, "first_check": result.first_check,
        "counts": result.counts, "attention": needs_attention(result, evaluator),
        "overdue_reports": [row(o) for o in result.overdue_reports(ids.get("report", set()))],
        "overdue_other": [row(o) for o in result.overdue_other(ids.get("report", set()))],
        "upcoming": [row(o) for o in result.upcoming()],
        "extension_requests": [row(o) for o in result.extension_requests(ids.get("extension_request", set()))],
        "unknown_reports": _unknown_counts(result, ids.get("report", set())),
        "unknown_other": [row(o) for o in result.with_status("unknown") if o["obligation_id"] not in ids.get("report", set())],
        "decisions_to_record": [row(o) for o in result.with_status("awaiting_decision")],
        "missed": [{**row(request), "deadline": row(deadline)} for request, deadline in _missed_at_risk(result, evaluator)],
        "receipts_complete_from": (evaluator.receipts_complete_from.isoformat()
                                   if evaluator.receipts_complete_from else None),
        "next_meeting": ({**result.next_meeting, "start": result.next_meeting["start"].isoformat(),
                          "start_text": fmt(result.next_meeting["start"])} if result.next_meeting else None),
        "changes": [] if result.first_check else [
            {**c.__dict__, "name": names.get(c.party, c.party)} for c in
            sorted(result.changes, key=lambda c: (c.party, c.obligation_id, c.period, c.field))],
        "errors": [{"party": p, "name": names.get(p, p), "message": m} for p, m in result.errors],
        "no_contact": _without_contact(result, ids, contacts),
    }


def _unknown_counts(result: CheckResult, report_ids: set[str]) -> dict[str, Any]:
    """How many reports past due have no record of receipt, by obligation: counted, never listed as overdue."""
    by_id = Counter(o["obligation_id"] for o in result.obligations if o["status"] == "unknown" and o["obligation_id"] in report_ids)
    return {"total": sum(by_id.values()), "by_obligation": dict(sorted(by_id.items())),
            "parties": len({o["party"] for o in result.obligations if o["status"] == "unknown" and o["obligation_id"] in report_ids})}


def _without_contact(result: CheckResult, ids: dict[str, set[str]], contacts: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    if contacts is None:
        return None
    items: dict[str, int] = {}
    for o in (*result.overdue_reports(ids.get("report", set())), *result.overdue_other(ids.get("report", set())),
              *result.upcoming(), *result.extension_requests(ids.get("extension_request", set()))):
        if o["party"] not in contacts:
            items[o["party"]] = items.get(o["party"], 0) + 1
    return [{"party": party, "name": result.names.get(party, party), "items": count} for party, count in sorted(items.items())]


def markdown_text(value: Any) -> Any:
    """A value as Markdown text that renders as itself: recorded text (a symbol, a reason) may hold
    ``<script>`` or a ``|`` that a Markdown viewer would run as HTML or read as a table cell.

    >>> markdown_text("<script>alert(1)</script> | x\\ny")
    '&lt;script&gt;alert(1)&lt;/script&gt; \\\\| x y'
    """
    if not isinstance(value, str):
        return value
    text = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
    return " ".join(text.split()) if "\n" in text or "\r" in text else text


def render_digest(context: dict[str, Any]) -> tuple[str, str]:
    """(Markdown, HTML) of the digest; every value is escaped for its format."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    options: dict[str, Any] = dict(loader=PackageLoader("engine.check", "templates"), undefined=StrictUndefined, trim_blocks=True,
                                   lstrip_blocks=True, keep_trailing_newline=True)
    html_env = Environment(autoescape=select_autoescape(["html", "html.j2"]), **options)
    md_env = Environment(autoescape=False, finalize=markdown_text, **options)
    return md_env.get_template("digest.md.j2").render(**context), html_env.get_template("digest.html.j2").render(**context)


class DigestError(OSError):
    """The digest could not be written (folder not writable, disk full); the message says where and why."""


def digest_paths(folder: Path, as_of: str) -> tuple[Path, Path]:
    return folder / f"digest-{as_of}.md", folder / f"digest-{as_of}.html"


def check_digest_folder(folder: Path) -> None:
    """Create the folder and prove it writable before a check spends minutes and a transaction on it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".ccm-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise DigestError(f"the digest folder {folder} cannot be written ({error.strerror or error}); nothing was "
                          "checked or committed. Make it writable, or set [output] folder (CCM_OUTPUT_FOLDER) to "
                          "one that is, and run the check again") from None


def write_digest(folder: Path, context: dict[str, Any]) -> tuple[Path, Path]:
    """Write both files, each atomically (a temporary file renamed): a reader never sees half a digest.

    Raises DigestError with a sentence; files already written by this call are removed."""
    markdown, html = render_digest(context)
    paths = digest_paths(folder, context["as_of"])
    written: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path, text in zip(paths, (markdown, html)):
            temporary = path.with_name(path.name + ".tmp")
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, path)
            written.append(path)
    except OSError as error:
        for path in (*written, *(p.with_name(p.name + ".tmp") for p in paths)):
            path.unlink(missing_ok=True)
        raise DigestError(f"the digest cannot be written to {folder} ({error.strerror or error}); the check was not "
                          "committed. Make the folder writable, or set [output] folder (CCM_OUTPUT_FOLDER), and run "
                          "the check again") from None
    return paths


def last_check_as_of(url: str) -> date | None:
    """The latest day a stored check was run as of (None before the first check)."""
    with reader_session(url) as session:
        return session.scalar(sa.select(sa.func.max(CheckRunRow.as_of)))


def check_and_digest(url: str, evaluator: Evaluator, as_of: date, folder: Path, now: datetime | None = None,
                     commit: bool = True) -> tuple[CheckResult, dict[str, Any], tuple[Path, Path] | None]:
    """The daily check and its digest, as ``ccm check`` and the scheduler's daily job both run it.

    The digest files are written inside the check's transaction (a digest that cannot be written
    leaves the run uncommitted: DigestError). Returns the result, the digest's context and the
    paths of the Markdown and HTML files (None with ``commit=False``: a replay stores nothing,
    files included).
    """
    from engine.runtime.logs import get
    from engine.store.contacts import load_contacts

    log = get("check")
    if commit:   # a folder that cannot take the digest stops the check before it spends anything
        check_digest_folder(folder)
    contacts = load_contacts(url)
    written: dict[str, Any] = {}

    def digest(result: CheckResult) -> None:
        written["context"] = digest_context(result, evaluator, contacts)
        if commit:
            written["paths"] = write_digest(folder, written["context"])

    result = run_check(url, evaluator, as_of, now, before_commit=digest, commit=commit)
    context, paths = written["context"], written.get("paths")
    context["replay"] = not commit
    c = result.counts
    log.info("check %s as of %s: %s participants, %s obligations, %s change(s), %s not evaluated; %s%s",
             f"run {result.run_id}" if commit else "replay (not stored)", as_of.isoformat(), c["parties"],
             c["obligations"], c["changes"], c["errors"], "needs attention" if context["attention"] else "nothing needs attention",
             f"; digest {paths[0]}" if paths else "",
             extra={"event": "check", "run_id": result.run_id if commit else None, "as_of": as_of.isoformat(),
                    "attention": context["attention"], "counts": c, "stored": commit,
                    "digest": str(paths[0]) if paths else None})
    return result, context, paths


# ----------------------------------------------------------------------------- stats

def stats(evaluator: Evaluator, as_of: date, events: Iterable[RecordedEvent]) -> dict[str, Any]:
    """Counts like the progress reports of the Meetings of States Parties, as of a date.

    Counted party by party: no party's evaluation is kept once it is counted."""
    by_party: dict[str, list[RecordedEvent]] = {}
    for event in events:
        by_party.setdefault(event.party, []).append(event)
    errors: list[tuple[str, str]] = []
    statuses: Counter = Counter()
    initial_counts: Counter = Counter()
    annual: Counter = Counter()
    decided: Counter = Counter()
    articles = {"article_3": (("ccm.art3.stockpile_destruction",), "ccm.art3.extension_request"),
                "article_4": (("ccm.art4.clearance", "ccm.art4.clearance_after_eif"), "ccm.art4.extension_request")}
    per_article: dict[str, Counter[str]] = {name: Counter() for name in articles}
    for iso3 in sorted(evaluator.registry.participants):
        try:
            e = evaluator.evaluate(iso3, as_of, by_party.get(iso3, []))
        except EvaluationError as error:
            errors.append((iso3, str(error)))
            continue
        statuses[e.status] += 1
        for key in e.facts:
            if key.startswith("decision:extension:"):
                decided[key.split(":")[2].split("#")[0]] += 1
        if e.status != "state_party":
            continue
        for o in e.obligations:
            if o.id == "ccm.art7.initial_report":
                initial_counts["all"] += 1
                if o.due <= as_of or o.status in RECEIVED:
                    initial_counts["due"] += 1
                    initial_counts["received"] += o.status in RECEIVED
                    initial_counts["received_late"] += o.status == "fulfilled_late"
                    initial_counts["received_date_unknown"] += o.status == "received"
                    initial_counts["outstanding"] += o.status == "overdue"
                    initial_counts["unknown"] += o.status == "unknown"
            elif o.id == "ccm.art7.annual_report":
                annual["due"] += o.due <= as_of
                annual["received"] += o.status in RECEIVED
                annual["outstanding"] += o.status == "overdue"
                annual["unknown"] += o.status == "unknown"
        for name, (ids, request_id) in articles.items():
            counts = per_article[name]
            found = [o for o in e.obligations if o.id in ids]
            if found:
                counts["states_with_obligation"] += 1
                counts["completed"] += all(o.status in ("fulfilled", "fulfilled_late") for o in found)
                counts["extended"] += any(o.due != o.original_due for o in found)
                counts["deadline_passed_outstanding"] += any(o.status == "overdue" for o in found)
                counts["deadline_passed_decision_not_recorded"] += any(o.status == "unknown" for o in found)
            for o in e.obligations:
                if o.id == request_id and o.status in ("awaiting_decision", "missed"):
                    counts[f"extension_requests_{o.status}"] += 1
    fields = ("states_with_obligation", "completed", "extended", "deadline_passed_outstanding",
              "deadline_passed_decision_not_recorded", "extension_requests_awaiting_decision", "extension_requests_missed")
    return {
        "as_of": as_of.isoformat(),
        "states_parties": statuses["state_party"],
        "signatories": statuses["signatory"],
        "former_states_parties": statuses["former_state_party"],
        "initial_reports": {
            "due": initial_counts["due"],
            "received": initial_counts["received"],
            "received_late": initial_counts["received_late"],
            "received_date_unknown": initial_counts["received_date_unknown"],
            "outstanding": initial_counts["outstanding"],
            "unknown": initial_counts["unknown"],
            "not_yet_due": initial_counts["all"] - initial_counts["due"],
        },
        "annual_reports": {"due": annual["due"], "received": annual["received"], "outstanding": annual["outstanding"],
                           "unknown": annual["unknown"]},
        "article_3": {f: per_article["article_3"][f] for f in fields},
        "article_4": {f: per_article["article_4"][f] for f in fields},
        "extension_requests_decided": {"art3": decided.get("art3", 0), "art4": decided.get("art4", 0),
                                       "total": sum(decided.values())},
        "recorded_events": sum(1 for _ in events) if isinstance(events, list) else None,
        "errors": [{"party": p, "message": m} for p, m in errors],
    }
