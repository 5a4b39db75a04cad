"""Recording what States did: validation, storage, history, bulk import and export.

Every recording is checked before it is written, and refused with a sentence saying why:
a date after today (UTC), an unknown party, a party that was not a State Party on that date,
an unknown meeting, or anything the engine itself rejects once the event is added (a
decision extending a deadline beyond the treaty's ceiling is found by evaluating the party
with the new event, not by re-implementing the ceiling here).
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import sqlalchemy as sa

from engine.compute import EvaluationError
from engine.dates import fmt
from engine.evaluate import Evaluator
from engine.facts import RecordedEvent
from engine.registry import UnknownPartyError
from engine.store import RecordedEventRow, reader_session, writer_session

REPORT_KINDS = ("initial", "annual", "retention")
ARTICLES = ("3", "4")
EXCHANGE_COLUMNS = ("party", "kind", "year", "received", "symbol", "source")


class RecordError(ValueError):
    """A recording refused; the message is a sentence saying why."""


class ImportError_(ValueError):
    """An import refused; ``problems`` lists each bad row (line, field, message)."""

    def __init__(self, problems: list[tuple[int, str, str]], where: str = "line"):
        self.problems = problems
        lines = "\n".join(f"  {where} {line}, field {fld}: {message}" for line, fld, message in problems)
        super().__init__(f"Nothing was imported: {len(problems)} problem(s) found.\n{lines}")


@dataclass
class NewEvent:
    """An event about to be recorded (validated, then stored as a RecordedEventRow)."""

    party: str
    kind: str
    on: date
    period: str | None = None
    symbol: str | None = None
    source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    recorded_by: str | None = None
    comment: str | None = None
    corrects: str | None = None


def today_utc() -> date:
    return datetime.now(timezone.utc).date()


# ----------------------------------------------------------------------------- conversions

def to_recorded(row: RecordedEventRow) -> RecordedEvent:
    """A stored row as the engine's RecordedEvent."""
    label = _label(row.kind, row.on, row.period, row.symbol, row.extra or {})
    return RecordedEvent(kind=row.kind, party=row.party, on=row.on, period=row.period, id=row.id, label=label,
                         sources=tuple(s for s in (row.source,) if s), extra=dict(row.extra or {}))


def _label(kind: str, on: date, period: str | None, symbol: str | None, extra: dict[str, Any]) -> str:
    doc = f" ({symbol})" if symbol else ""
    if kind.startswith("report:"):
        what = kind.split(":")[1]
        year = f" for {period}" if period and what != "initial" else ""
        return f"{what} report{year} received on {fmt(on)}{doc} (recorded)"
    if kind.startswith("extension_request:"):
        return f"Article {kind[-1]} extension request for {period} submitted on {fmt(on)}{doc} (recorded)"
    if kind == "clarification_request":
        return f"request for clarification received on {fmt(on)}{doc} (recorded)"
    if kind == "clarification_response":
        return f"response to request {period} submitted on {fmt(on)}{doc} (recorded)"
    if kind == "withdrawal":
        return f"withdrawal effective {fmt(on)} (recorded)"
    return ""   # decisions and completions: facts.py writes the label


def load_events(url: str, party: str | None = None) -> list[RecordedEvent]:
    """Live (not superseded) recorded events, of one party or all."""
    with reader_session(url) as session:
        query = sa.select(RecordedEventRow).where(RecordedEventRow.superseded_by.is_(None))
        if party:
            query = query.where(RecordedEventRow.party == party)
        return [to_recorded(row) for row in session.scalars(query.order_by(RecordedEventRow.on, RecordedEventRow.id))]


# ----------------------------------------------------------------------------- validation

def resolve_party(evaluator: Evaluator, query: str) -> str:
    try:
        return evaluator.registry.find(query).iso3
    except UnknownPartyError as error:
        raise RecordError(str(error)) from None


def check_meeting(evaluator: Evaluator, code: str) -> None:
    try:
        evaluator.registry.meeting(code)
    except LookupError as error:
        raise RecordError(str(error.args[0])) from None


_WHAT = {"report": "a report received", "extension_request": "an extension request submitted",
         "decision": "a decision", "completion": "a completion", "withdrawal": "a withdrawal",
         "clarification_request": "a request for clarification received",
         "clarification_response": "a response submitted"}


def validate(evaluator: Evaluator, event: NewEvent, existing: Iterable[RecordedEvent], today: date | None = None) -> None:
    """Raise RecordError (a sentence) unless ``event`` may be recorded beside ``existing``."""
    today = today or today_utc()
    name = evaluator.registry.participant(event.party).name
    what = _WHAT.get(event.kind.split(":")[0], event.kind)
    if event.on > today:
        raise RecordError(f"Refused: {what} on {event.on.isoformat()} is in the future (today is "
                          f"{today.isoformat()} UTC); record it when it has happened.")
    existing = [e for e in existing if e.party == event.party]
    evaluation = _evaluate(evaluator, event.party, max(event.on, today), existing, name)
    eif, withdrawal = evaluation.entry_into_force, evaluation.withdrawal_effective
    if not event.kind.startswith("completion:"):
        if eif is None or event.on < eif:
            since = (f"the Convention entered into force for it on {eif.isoformat()}" if eif
                     else "it has not deposited an instrument of ratification or accession")
            raise RecordError(f"Refused: {name} was not a State Party on {event.on.isoformat()} ({since}), "
                              f"so {what} on that date cannot count.")
        if event.kind != "withdrawal" and withdrawal and event.on > withdrawal:
            raise RecordError(f"Refused: {name} was no longer a State Party on {event.on.isoformat()} "
                              f"(its withdrawal took effect on {withdrawal.isoformat()}).")
        if event.kind == "withdrawal" and withdrawal:
            raise RecordError(f"Refused: {name}'s withdrawal is already known (effective {withdrawal.isoformat()}).")
    if event.kind.startswith("decision:") and not event.kind.startswith("decision:extension:"):
        raise RecordError(f"Refused: unknown decision kind {event.kind!r}.")
    candidate = RecordedEvent(kind=event.kind, party=event.party, on=event.on, period=event.period,
                              id=event.id or "new", label=_label(event.kind, event.on, event.period, event.symbol, event.extra),
                              sources=tuple(s for s in (event.source,) if s), extra=event.extra)
    _evaluate(evaluator, event.party, max(event.on, today), existing + [candidate], name, refusing=True)


def _evaluate(evaluator: Evaluator, iso3: str, as_of: date, events: list[RecordedEvent], name: str, refusing: bool = False):
    try:
        return evaluator.evaluate(iso3, as_of, events)
    except EvaluationError as error:
        if refusing:
            text = str(error)
            if "beyond the ceiling" in text:
                raise RecordError(f"Refused: the decision extends {name}'s deadline beyond the treaty's ceiling: {text}.") from None
            raise RecordError(f"Refused: with this event the engine cannot compute {name}'s obligations: {text}.") from None
        raise RecordError(f"{name}'s recorded events cannot be evaluated: {error}") from None


# ----------------------------------------------------------------------------- recording

def _same(row: RecordedEventRow, event: NewEvent) -> bool:
    return (row.kind, row.on, row.period or None, row.symbol or None, row.extra or {}) == (
        event.kind, event.on, event.period or None, event.symbol or None, event.extra or {})


def new_id(event: NewEvent) -> str:
    return event.id or f"{event.party}-{event.kind.replace(':', '-')}-{event.on.isoformat()}-{uuid.uuid4().hex[:6]}"


def record(url: str, evaluator: Evaluator, event: NewEvent, today: date | None = None) -> tuple[str, bool]:
    """Validate and store one event in its own transaction.

    Returns (event id, created). Recording the same event again (same party, kind, date,
    period, symbol, details) creates nothing and returns the existing id.
    """
    with writer_session(url) as session, session.begin():
        rows = list(session.scalars(sa.select(RecordedEventRow).where(
            RecordedEventRow.party == event.party, RecordedEventRow.superseded_by.is_(None))))
        if event.corrects:
            old = session.get(RecordedEventRow, event.corrects)
            if old is None or old.party != event.party:
                raise RecordError(f"Refused: there is no recorded event {event.corrects!r} of {event.party} to correct.")
            if old.superseded_by:
                raise RecordError(f"Refused: event {old.id} was already corrected by {old.superseded_by}.")
            rows = [r for r in rows if r.id != old.id]
        else:
            for row in rows:
                if row.kind == event.kind and _same(row, event):
                    return row.id, False
        if event.id and session.get(RecordedEventRow, event.id) is not None:
            raise RecordError(f"Refused: an event with the id {event.id!r} is already recorded.")
        validate(evaluator, event, [to_recorded(r) for r in rows], today)
        event_id = new_id(event)
        session.add(_row(event, event_id))
        if event.corrects:
            session.flush()
            session.get(RecordedEventRow, event.corrects).superseded_by = event_id
        return event_id, True


def _row(event: NewEvent, event_id: str) -> RecordedEventRow:
    return RecordedEventRow(id=event_id, party=event.party, kind=event.kind, on=event.on, period=event.period,
                            symbol=event.symbol, source=event.source, extra=dict(event.extra),
                            recorded_at=datetime.now(timezone.utc), recorded_by=event.recorded_by,
                            comment=event.comment, superseded_by=None)


# ----------------------------------------------------------------------------- history

def history(url: str | None, evaluator: Evaluator, iso3: str, as_of: date) -> list[dict[str, Any]]:
    """Registry facts and recorded events of a party, dated, with their sources, oldest first."""
    rows: list[RecordedEventRow] = []
    if url:
        with reader_session(url) as session:
            rows = list(session.scalars(sa.select(RecordedEventRow).where(RecordedEventRow.party == iso3)
                                        .order_by(RecordedEventRow.on, RecordedEventRow.recorded_at)))
    live = [to_recorded(r) for r in rows if r.superseded_by is None]
    evaluation = evaluator.evaluate(iso3, as_of, live)
    recorded_ids = {r.id for r in rows}
    items: list[dict[str, Any]] = []
    for fact in evaluation.facts.values():
        if fact["k"] in ("as_of", "meetings") or fact["id"] in recorded_ids:
            continue
        items.append({"date": fact.get("date"), "origin": "registry", "what": fact.get("label", fact["k"]),
                      "sources": list(fact.get("sources", []))})
    if evaluation.entry_into_force:
        items.append({"date": evaluation.entry_into_force.isoformat(), "origin": "engine",
                      "what": "entry into force for this State (Art. 17)", "sources": []})
    for row in rows:
        text = _label(row.kind, row.on, row.period, row.symbol, row.extra or {}) or _describe(row)
        if row.superseded_by:
            text += f" — superseded by {row.superseded_by}"
        items.append({"date": row.on.isoformat(), "origin": f"recorded {row.id}", "what": text,
                      "sources": [row.source] if row.source else [],
                      "recorded_at": row.recorded_at.isoformat() if row.recorded_at else None,
                      "recorded_by": row.recorded_by})
    items.sort(key=lambda item: (item["date"] or "9999", item["origin"]))
    return items


def _describe(row: RecordedEventRow) -> str:
    extra = row.extra or {}
    if row.kind.startswith("decision:"):
        doc = f" ({extra['document']})" if extra.get("document") else ""
        return (f"{extra.get('meeting') or row.period} decided on {fmt(row.on)} to extend the Article "
                f"{row.kind[-1]} deadline to {extra.get('granted_deadline')}{doc} (recorded)")
    if row.kind.startswith("completion:"):
        declared = f", declared at {extra['declared_at']}" if extra.get("declared_at") else ""
        return f"Article {row.kind[-1]} obligation completed on {fmt(row.on)}{declared} (recorded)"
    return f"{row.kind} on {fmt(row.on)}"


# ----------------------------------------------------------------------------- import / export

def read_exchange(path: Path) -> tuple[list[tuple[int, dict[str, str]]], str]:
    """Rows of a CSV (line numbers, header = line 1) or JSON file (entry numbers from 1)."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ImportError_([(error.lineno, "-", f"not valid JSON: {error.msg}")]) from None
        if not isinstance(data, list):
            raise ImportError_([(1, "-", "the JSON file must hold a list of objects")])
        rows = []
        for number, item in enumerate(data, start=1):
            if not isinstance(item, dict):
                raise ImportError_([(number, "-", "is not an object")], where="entry")
            rows.append((number, {k: "" if v is None else str(v) for k, v in item.items()}))
        return rows, "entry"
    if path.suffix.lower() != ".csv":
        raise ImportError_([(0, "file", f"{path.name}: give a .csv or .json file")])
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("party", "kind", "received") if c not in (reader.fieldnames or [])]
    if missing:
        raise ImportError_([(1, c, "column missing from the header") for c in missing])
    return [(reader.line_num, dict(row)) for row in reader], "line"


def parse_exchange_row(evaluator: Evaluator, row: dict[str, str], today: date) -> tuple[NewEvent | None, list[tuple[str, str]]]:
    """One import row as a report receipt, or the problems with its fields."""
    problems: list[tuple[str, str]] = []
    get = lambda key: (row.get(key) or "").strip()  # noqa: E731
    party = None
    try:
        party = evaluator.registry.find(get("party")).iso3 if get("party") else None
        if party is None:
            problems.append(("party", "is empty"))
    except UnknownPartyError as error:
        problems.append(("party", str(error)))
    kind = get("kind")
    if kind not in REPORT_KINDS:
        problems.append(("kind", f"{kind!r} is not one of {', '.join(REPORT_KINDS)}"))
    year = get("year")
    if kind in ("annual", "retention"):
        if not year.isdigit() or len(year) != 4:
            problems.append(("year", f"{year!r} is not a year (YYYY); {kind} reports need one"))
    elif kind == "initial" and year:
        problems.append(("year", "an initial report has no year; leave it empty"))
    received = None
    try:
        received = date.fromisoformat(get("received"))
    except ValueError:
        problems.append(("received", f"{get('received')!r} is not a date (YYYY-MM-DD)"))
    if problems or party is None or received is None:
        return None, problems
    return NewEvent(party=party, kind=f"report:{kind}", on=received, period=year if kind != "initial" else None,
                    symbol=get("symbol") or None, source=get("source") or None), []


def import_file(url: str, evaluator: Evaluator, path: Path, today: date | None = None,
                recorded_by: str | None = None) -> tuple[int, int]:
    """Validate every row, then write all of them in one transaction, or none.

    Returns (created, already recorded). Raises ImportError_ naming each bad row and field.
    """
    today = today or today_utc()
    rows, where = read_exchange(path)
    with writer_session(url) as session, session.begin():
        stored = list(session.scalars(sa.select(RecordedEventRow).where(RecordedEventRow.superseded_by.is_(None))))
        existing: dict[str, list[RecordedEvent]] = {}
        for row in stored:
            existing.setdefault(row.party, []).append(to_recorded(row))
        problems: list[tuple[int, str, str]] = []
        accepted: list[NewEvent] = []
        skipped = 0
        for line, raw in rows:
            event, bad = parse_exchange_row(evaluator, raw, today)
            if bad:
                problems.extend((line, fld, message) for fld, message in bad)
                continue
            assert event is not None
            event.recorded_by = recorded_by
            if any(r.party == event.party and r.kind == event.kind and _same(r, event) for r in stored) or any(
                    e.party == event.party and e.kind == event.kind and _same_new(e, event) for e in accepted):
                skipped += 1
                continue
            try:
                validate(evaluator, event, existing.get(event.party, []), today)
            except RecordError as error:
                problems.append((line, "received", str(error)))
                continue
            accepted.append(event)
            existing.setdefault(event.party, []).append(RecordedEvent(
                kind=event.kind, party=event.party, on=event.on, period=event.period, id=f"import-{line}"))
        if problems:
            raise ImportError_(problems, where)
        session.add_all(_row(event, new_id(event)) for event in accepted)
    return len(accepted), skipped


def _same_new(a: NewEvent, b: NewEvent) -> bool:
    return (a.kind, a.on, a.period, a.symbol, a.extra) == (b.kind, b.on, b.period, b.symbol, b.extra)


def export_rows(url: str) -> list[dict[str, str]]:
    """Live report receipts in the import format, ordered by party, kind, year, date."""
    with reader_session(url) as session:
        rows = session.scalars(sa.select(RecordedEventRow).where(
            RecordedEventRow.superseded_by.is_(None), RecordedEventRow.kind.like("report:%")))
        out = [{"party": r.party, "kind": r.kind.split(":", 1)[1], "year": r.period or "",
                "received": r.on.isoformat(), "symbol": r.symbol or "", "source": r.source or ""} for r in rows]
    out.sort(key=lambda r: (r["party"], r["kind"], r["year"], r["received"]))
    return out


def format_export(rows: list[dict[str, str]], fmt_name: str) -> str:
    if fmt_name == "json":
        return json.dumps(rows, ensure_ascii=False, indent=1) + "\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXCHANGE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
