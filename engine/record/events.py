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
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from engine.core import wording
from engine.core.compute import EvaluationError
from engine.core.dates import fmt
from engine.core.evaluate import Evaluator
from engine.core.facts import RecordedEvent
from engine.core.model import UnknownPartyError
from engine.record.importing import InputError, check_row
from engine.record.importing import rows as import_rows
from engine.record.textsafe import (
    TextError,
    check_text,
    from_spreadsheet_cell,
    parse_day,
    parse_year,
    printable,
    spreadsheet_cell,
)
from engine.registry.treaties import TREATY_KEY
from engine.store.database import RecordedEventRow, reader_session, writer_session

REPORT_KINDS = ("initial", "annual", "retention")


def extension_articles(rulebook) -> tuple[str, ...]:
    """The articles whose deadlines a meeting can extend: those the pack's exception rules read a
    decision under (``decision:extension:<key>``, the key holding the article's number)."""
    prefix = "decision:extension:"
    found = {re.sub(r"\D", "", kind[len(prefix):]) for rule in rulebook.rules if rule.produces == "exception"
             for kind in rule.when if kind.startswith(prefix)}
    return tuple(sorted((a for a in found if a), key=int))
EXCHANGE_COLUMNS = ("party", "kind", "year", "received", "symbol", "source")


def in_pack(extra: dict[str, Any] | None, pack: str | None, home: str | None) -> bool:
    """Whether a stored event (its ``extra``) belongs to ``pack``; every event when no pack is named.
    An event naming no pack belongs to ``home`` (engine/registry/treaties.py)."""
    return pack is None or str((extra or {}).get(TREATY_KEY) or home or pack) == pack


def pack_tag(pack: str | None, home: str | None) -> dict[str, str]:
    """The ``extra`` that ties a new event to ``pack``: none for the home pack, so an event recorded
    with one pack selected stays as it always was."""
    return {TREATY_KEY: pack} if pack and pack != home else {}


class RecordError(ValueError):
    """A recording refused; the message is a sentence saying why."""


#: An import refused; ``problems`` lists each bad row (line, field, message).
ImportError_ = InputError


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
    return datetime.now(UTC).date()


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


def check_fields(event: NewEvent) -> None:
    """Lengths and characters of every text field, checked the same way for SQLite and PostgreSQL
    (which alone would refuse an over-long symbol or a NUL with a DataError). RecordError names the field."""
    fields = [("id", event.id), ("period", event.period), ("symbol", event.symbol), ("source", event.source),
              ("corrects", event.corrects), ("recorded_by", event.recorded_by)]
    fields += [(f"extra.{k}", v if isinstance(v, str) else None) for k, v in (event.extra or {}).items()]
    try:
        for name, value in fields:
            limit = 120 if name == "recorded_by" else 200 if name.startswith("extra.") else 80 if name == "corrects" else None
            check_text(name, value, limit=limit)
        check_text("comment", event.comment, single_line=False)
    except TextError as error:
        hint = " (set CCM_RECORDED_BY to a shorter name)" if str(error).startswith("recorded_by") else ""
        raise RecordError(f"Refused: {error}{hint}.") from None


def validate(evaluator: Evaluator, event: NewEvent, existing: Iterable[RecordedEvent], today: date | None = None) -> None:
    """Raise RecordError (a sentence) unless ``event`` may be recorded beside ``existing``."""
    today = today or today_utc()
    check_fields(event)
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
    if event.kind == "clarification_response":
        requests = {e.id: e for e in existing if e.kind == "clarification_request" and e.id is not None}
        if event.period not in requests:
            known = ", ".join(sorted(requests)) or "none is recorded"
            raise RecordError(f"Refused: {name} has no recorded request for clarification {event.period!r} to respond "
                              f"to (its requests: {known}); record the request first.")
        if event.on < requests[event.period].on:
            raise RecordError(f"Refused: the response on {event.on.isoformat()} comes before the request it answers "
                              f"({requests[event.period].on.isoformat()}).")
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
    """The event's own id, or one made up: party, kind, date and a random UUID (122 bits: no collision
    in any import; the 24 bits used before collided within a 4,000-row import of one day)."""
    return event.id or f"{event.party}-{event.kind.replace(':', '-')}-{event.on.isoformat()}-{uuid.uuid4().hex}"


def record(url: str, evaluator: Evaluator, event: NewEvent, today: date | None = None,
           pack: str | None = None, home: str | None = None) -> tuple[str, bool]:
    """Validate and store one event in its own transaction.

    Returns (event id, created). Recording the same event again (same party, kind, date,
    period, symbol, details) creates nothing and returns the existing id. With ``pack``, the
    event is judged beside that pack's events only (``home`` owns the events naming none); the
    caller tags it (:func:`pack_tag`).
    """
    check_fields(event)       # before the write lock, and before the database sees a value it may refuse
    with writer_session(url) as session, session.begin():
        rows = [row for row in session.scalars(sa.select(RecordedEventRow).where(
            RecordedEventRow.party == event.party, RecordedEventRow.superseded_by.is_(None)))
            if in_pack(row.extra, pack, home)]
        corrected: RecordedEventRow | None = None
        if event.corrects:
            corrected = session.get(RecordedEventRow, event.corrects)
            if corrected is None or corrected.party != event.party:
                raise RecordError(f"Refused: there is no recorded event {event.corrects!r} of {event.party} to correct.")
            if corrected.superseded_by:
                raise RecordError(f"Refused: event {corrected.id} was already corrected by {corrected.superseded_by}.")
            rows = [r for r in rows if r.id != corrected.id]
        else:
            for row in rows:
                if row.kind == event.kind and _same(row, event):
                    return row.id, False
        if event.id and session.get(RecordedEventRow, event.id) is not None:
            raise RecordError(f"Refused: an event with the id {event.id!r} is already recorded.")
        validate(evaluator, event, [to_recorded(r) for r in rows], today)
        event_id = new_id(event)
        session.add(_row(event, event_id))
        if corrected is not None:
            session.flush()
            corrected.superseded_by = event_id
        return event_id, True


def _row(event: NewEvent, event_id: str) -> RecordedEventRow:
    return RecordedEventRow(id=event_id, party=event.party, kind=event.kind, on=event.on, period=event.period,
                            symbol=event.symbol, source=event.source, extra=dict(event.extra),
                            recorded_at=datetime.now(UTC), recorded_by=event.recorded_by,
                            comment=event.comment, superseded_by=None)


# ----------------------------------------------------------------------------- history

def history(url: str | None, evaluator: Evaluator, iso3: str, as_of: date, pack: str | None = None,
            home: str | None = None) -> list[dict[str, Any]]:
    """Registry facts and recorded events of a party, dated, with their sources, oldest first
    (with ``pack``: that pack's registry facts and recorded events only)."""
    rows: list[RecordedEventRow] = []
    if url:
        with reader_session(url) as session:
            rows = [row for row in session.scalars(sa.select(RecordedEventRow).where(RecordedEventRow.party == iso3)
                                                   .order_by(RecordedEventRow.on, RecordedEventRow.recorded_at))
                    if in_pack(row.extra, pack, home)]
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
                      "what": wording.load()["history"]["entry_into_force"], "sources": []})
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
    found, where = import_rows(path, ("party", "kind", "received"), EXCHANGE_COLUMNS)
    return list(found), where


def parse_exchange_row(evaluator: Evaluator, row: dict[str, str], today: date) -> tuple[NewEvent | None, list[tuple[str, str]]]:
    """One import row as a report receipt, or the problems with its fields."""
    problems: list[tuple[str, str]] = check_row(row, EXCHANGE_COLUMNS)
    if problems:
        return None, problems
    get = lambda key: from_spreadsheet_cell((row.get(key) or "").strip())  # noqa: E731
    party = None
    try:
        party = evaluator.registry.find(get("party")).iso3 if get("party") else None
        if party is None:
            problems.append(("party", "is empty"))
    except UnknownPartyError as error:
        problems.append(("party", str(error)))
    kind = get("kind")
    if kind not in REPORT_KINDS:
        problems.append(("kind", f"{kind[:40]!r} is not one of {', '.join(REPORT_KINDS)}"))
    year = get("year")
    if kind in ("annual", "retention"):
        try:
            year = str(parse_year(year, ""))
        except TextError as error:
            problems.append(("year", f"{error}; {kind} reports need one"))
    elif kind == "initial" and year:
        problems.append(("year", "an initial report has no year; leave it empty"))
    received = None
    try:
        received = parse_day(get("received"), "")
    except TextError as error:
        problems.append(("received", str(error)))
    if problems or party is None or received is None:
        return None, problems
    return NewEvent(party=party, kind=f"report:{kind}", on=received, period=year if kind != "initial" else None,
                    symbol=get("symbol") or None, source=get("source") or None), []


def _identity(kind: str, on: date, period: str | None, symbol: str | None) -> tuple:
    """What makes two report receipts the same (an import of the same row again creates nothing)."""
    return (kind, on, period or None, symbol or None)


def import_file(url: str, evaluator: Evaluator, path: Path, today: date | None = None,
                recorded_by: str | None = None, pack: str | None = None, home: str | None = None) -> tuple[int, int]:
    """Validate every row, then write all of them in one transaction, or none.

    The file is read and every row checked (fields, then each party evaluated once with all its
    new receipts) before the database's write lock is taken: a large import holds the lock only
    to write, and a refused one never takes it. Returns (created, already recorded). Raises
    ImportError_ naming each bad row and field. With ``pack``, the receipts are that pack's
    (tagged as :func:`record` does) and judged beside its events only.
    """
    today = today or today_utc()
    tag = pack_tag(pack, home)
    found, where = import_rows(path, ("party", "kind", "received"), EXCHANGE_COLUMNS)
    with reader_session(url) as session:
        stored = [row for row in session.scalars(sa.select(RecordedEventRow).where(RecordedEventRow.superseded_by.is_(None)))
                  if in_pack(row.extra, pack, home)]
    existing: dict[str, list[RecordedEvent]] = {}
    known: set[tuple] = set()
    for row in stored:
        existing.setdefault(row.party, []).append(to_recorded(row))
        if row.kind.startswith("report:") and not {k: v for k, v in (row.extra or {}).items() if k != TREATY_KEY}:
            known.add((row.party, *_identity(row.kind, row.on, row.period, row.symbol)))
    del stored
    problems: list[tuple[int, str, str]] = []
    accepted: dict[str, list[tuple[int, NewEvent]]] = {}
    standing: dict[str, tuple[date | None, date | None, str]] = {}
    skipped = 0
    for line, raw in found:
        event, bad = parse_exchange_row(evaluator, raw, today)
        if bad:
            problems.extend((line, fld, message) for fld, message in bad)
            if len(problems) >= MAX_PROBLEMS:
                break
            continue
        assert event is not None
        event.recorded_by = recorded_by
        event.extra = dict(tag)
        identity = (event.party, *_identity(event.kind, event.on, event.period, event.symbol))
        if identity in known:
            skipped += 1
            continue
        known.add(identity)
        try:
            check_fields(event)
            _check_standing(evaluator, event, existing, standing, today)
        except RecordError as error:
            problems.append((line, "received", str(error)))
            continue
        accepted.setdefault(event.party, []).append((line, event))
    if not problems:
        for party, items in accepted.items():
            problems.extend(_check_party(evaluator, party, items, existing.get(party, []), today))
    if problems:
        raise ImportError_(sorted(problems)[:MAX_PROBLEMS], where)
    events = [event for items in accepted.values() for _, event in items]
    if events:
        _write_new(url, events, pack=pack, home=home)
    return len(events), skipped


#: An import stops reading after this many problems (they are listed; the rest would be noise).
MAX_PROBLEMS = 200


def _check_standing(evaluator: Evaluator, event: NewEvent, existing: dict[str, list[RecordedEvent]],
                    standing: dict[str, tuple[date | None, date | None, str]], today: date) -> None:
    """Refuse a receipt dated in the future or when the party was not (or no longer) a State Party;
    one evaluation per party, however many rows."""
    if event.party not in standing:
        name = evaluator.registry.participant(event.party).name
        evaluation = _evaluate(evaluator, event.party, today, existing.get(event.party, []), name)
        standing[event.party] = (evaluation.entry_into_force, evaluation.withdrawal_effective, name)
    eif, withdrawal, name = standing[event.party]
    what = _WHAT["report"]
    if event.on > today:
        raise RecordError(f"Refused: {what} on {event.on.isoformat()} is in the future (today is "
                          f"{today.isoformat()} UTC); record it when it has happened.")
    if eif is None or event.on < eif:
        since = (f"the Convention entered into force for it on {eif.isoformat()}" if eif
                 else "it has not deposited an instrument of ratification or accession")
        raise RecordError(f"Refused: {name} was not a State Party on {event.on.isoformat()} ({since}), "
                          f"so {what} on that date cannot count.")
    if withdrawal and event.on > withdrawal:
        raise RecordError(f"Refused: {name} was no longer a State Party on {event.on.isoformat()} "
                          f"(its withdrawal took effect on {withdrawal.isoformat()}).")


def _candidate(event: NewEvent, number: int) -> RecordedEvent:
    return RecordedEvent(kind=event.kind, party=event.party, on=event.on, period=event.period, id=f"import-{number}",
                         label=_label(event.kind, event.on, event.period, event.symbol, event.extra),
                         sources=tuple(s for s in (event.source,) if s), extra=event.extra)


def _check_party(evaluator: Evaluator, party: str, items: list[tuple[int, NewEvent]], existing: list[RecordedEvent],
                 today: date) -> list[tuple[int, str, str]]:
    """Evaluate the party once with all its new receipts; only if the engine refuses, row by row to name the culprit."""
    name = evaluator.registry.participant(party).name
    as_of = max([today, *(e.on for _, e in items)])
    try:
        _evaluate(evaluator, party, as_of, existing + [_candidate(e, n) for n, e in items], name, refusing=True)
        return []
    except RecordError:
        pass
    problems, kept = [], list(existing)
    for line, event in items:
        try:
            _evaluate(evaluator, party, as_of, kept + [_candidate(event, line)], name, refusing=True)
            kept.append(_candidate(event, line))
        except RecordError as error:
            problems.append((line, "received", str(error)))
    return problems


def _write_new(url: str, events: list[NewEvent], batch: int = 2000, pack: str | None = None,
               home: str | None = None) -> None:
    """Insert the accepted receipts in one transaction, in batches; a row recorded meanwhile by
    someone else (the same receipt) is not inserted twice."""
    now = datetime.now(UTC)
    table = RecordedEventRow.__table__
    with writer_session(url) as session, session.begin():
        parties = sorted({e.party for e in events})
        recorded = {(r.party, *_identity(r.kind, r.on, r.period, r.symbol)) for r in session.execute(
            sa.select(table.c.party, table.c.kind, table.c.on, table.c.period, table.c.symbol, table.c.extra).where(
                table.c.party.in_(parties), table.c.superseded_by.is_(None), table.c.kind.like("report:%")))
            if in_pack(r.extra, pack, home)}
        rows = []
        for event in events:
            if (event.party, *_identity(event.kind, event.on, event.period, event.symbol)) in recorded:
                continue
            rows.append({"id": new_id(event), "party": event.party, "kind": event.kind, "on": event.on,
                         "period": event.period, "symbol": event.symbol, "source": event.source, "extra": dict(event.extra),
                         "recorded_at": now, "recorded_by": event.recorded_by, "comment": None,
                         "superseded_by": None})
            if len(rows) >= batch:
                session.execute(sa.insert(table), rows)
                rows = []
        if rows:
            session.execute(sa.insert(table), rows)


def export_rows(url: str, pack: str | None = None, home: str | None = None) -> list[dict[str, str]]:
    """Live report receipts in the import format, ordered by party, kind, year, date (with ``pack``:
    that pack's only, so that ``ccm import --treaty`` of the file gives them back)."""
    with reader_session(url) as session:
        rows = session.scalars(sa.select(RecordedEventRow).where(
            RecordedEventRow.superseded_by.is_(None), RecordedEventRow.kind.like("report:%")))
        out = [{"party": r.party, "kind": r.kind.split(":", 1)[1], "year": r.period or "",
                "received": r.on.isoformat(), "symbol": r.symbol or "", "source": r.source or ""} for r in rows
               if in_pack(r.extra, pack, home)]
    out.sort(key=lambda r: (r["party"], r["kind"], r["year"], r["received"]))
    return out


def format_export(rows: list[dict[str, str]], fmt_name: str, terminal: bool = False) -> str:
    """The rows as CSV or JSON. CSV cells a spreadsheet would run as a formula (= + - @ tab CR first)
    get a leading apostrophe (OWASP); ``ccm import`` takes it off again. For a terminal, control
    characters are shown as escapes."""
    if terminal:
        rows = [{k: printable(v) for k, v in row.items()} for row in rows]
    if fmt_name == "json":
        return json.dumps(rows, ensure_ascii=False, indent=1) + "\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXCHANGE_COLUMNS, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writeheader()
    writer.writerows({k: spreadsheet_cell(v) for k, v in row.items()} for row in rows)
    return buffer.getvalue()
