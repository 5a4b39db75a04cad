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
import time
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy import delete, insert, update

from engine.check.listed import WINDOW_DAYS, Listed
from engine.check.listed import rule_groups as _rule_groups
from engine.core import packs
from engine.core.dates import fmt
from engine.core.evaluate import Evaluator, Obligation
from engine.core.facts import RecordedEvent
from engine.record.contacts import load_contacts
from engine.record.events import to_recorded
from engine.registry.treaties import event_pack
from engine.runtime.logs import get
from engine.store.database import (
    ChangeRow,
    CheckRunRow,
    ObligationRow,
    RecordedEventRow,
    lock_for_check,
    reader_session,
    writer_session,
)
from engine.store.snapshot import load_snapshot

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
    listed: Listed                          # what the digest lists (engine/check/listed.py), not every row
    changes: list[Change]                   # the changes the digest lists: none on the first check (counted only)
    errors: list[tuple[str, str]]           # (party, message)
    counts: dict[str, Any]
    names: dict[str, str]                   # the names of the parties the digest names
    next_meeting: dict[str, Any] | None
    timings: dict[str, float] = field(default_factory=dict)
    registry_hash: str | None = None        # the registry files' hash, when it was read from files
    registry_loaded: bool = False           # this check replaced the database's copy of the registry

    @property
    def obligations(self) -> list[dict[str, Any]]:
        """The obligations a digest section lists (each without its provenance)."""
        return self.listed.rows


def obligation_values(party: str, o: Obligation, rulebook_hash: str) -> dict[str, Any]:
    return {"party": party, "pack": packs.pack_of(o.id), "obligation_id": o.id, "period": o.period or "", "article": o.article, "due": o.due,
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


def next_meeting(evaluator: Evaluator, as_of: date) -> dict[str, Any] | None:
    """The next meeting, from the registry or, past its last one, as the calendar rule projects it."""
    m = evaluator.next_meeting(as_of)
    if m is None:
        return None
    return {"code": m.code, "name": m.name, "start": m.start_date, "city": m.city, "projected": m.projected}


def run_check(url: str, evaluator: Evaluator, as_of: date, now: datetime | None = None,
              before_commit: Callable[[CheckResult], Any] | None = None, commit: bool = True,
              session: Any = None, snapshot: bool = True, events: list[RecordedEvent] | None = None,
              half_way: Callable[[int], Any] | None = None) -> CheckResult:
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
    :data:`BATCH_ROWS`, all inside the one transaction. Only what the digest lists is kept for
    the whole run (engine/check/listed.py: the rows its sections list, counts for the rest, and
    the changes after the first check), so memory follows the digest, not the number of parties;
    a stored provenance is compared by its text, and parsed only when the text differs or a date
    moved.

    ``before_commit`` gets the result while the transaction is still open (the CLI writes the
    digest there): if it raises, nothing is committed, so no run exists whose digest was lost.

    The check reads and writes only the rows of the evaluator's pack. Several packs are checked
    in one transaction by engine/check/treaties.py, which passes its open ``session`` (then
    this function neither commits nor rolls back), the pack's recorded ``events``, and
    ``snapshot=False`` for every pack but the first (the registry_* tables hold one registry).

    ``half_way`` is called once, half-way through the parties, after the rows buffered so far were
    sent to the database, with their number, the transaction still open (the fault tests kill or
    race the check there; nothing is flushed early without it).
    """
    t0 = time.perf_counter()
    outer = session is not None
    now = now or datetime.now(UTC)
    timings: dict[str, float] = {"engine": 0.0, "write": 0.0}
    pack = packs.pack_of(evaluator.rulebook.rules[0].id)
    with _transaction(url, session) as work:
        lock_for_check(work)
        # the database's copy of the registry becomes the one this check uses (one query when it is)
        registry_hash = getattr(evaluator.registry, "hash", None)
        t = time.perf_counter()
        registry_loaded = snapshot and registry_hash is not None and load_snapshot(work, evaluator.registry, now)
        timings["write"] += time.perf_counter() - t
        # with no events given (one pack checked alone), only this pack's: an event tagged for another pack
        # never settles one of its obligations (untagged events are the first, here the only, pack's)
        events = own_events(load_events_in(work), pack) if events is None else events
        t = time.perf_counter()
        table = ObligationRow.__table__
        stored_parties = dict(work.execute(sa.select(table.c.party, sa.func.count()).where(table.c.pack == pack)
                                           .group_by(table.c.party)).all())
        # a pack's first check: no run of it yet, and none of its rows stored by a run from before runs had a pack
        previous_run = work.scalar(sa.select(sa.func.max(CheckRunRow.id)).where(CheckRunRow.pack == pack))
        first_check = previous_run is None and not stored_parties
        timings["write"] += time.perf_counter() - t
        run = CheckRunRow(as_of=as_of, started_at=now, rulebook_hash=evaluator.rulebook.hash, counts={}, pack=pack)
        work.add(run)
        work.flush()
        writes = _Writes(work, run.id, now, timings)
        meeting = next_meeting(evaluator, as_of)
        listed = Listed(evaluator.rulebook, as_of, meeting)
        errors: list[tuple[str, str]] = []
        changes: list[Change] = []                # kept for the digest, which lists none on the first check
        removed_changes: list[tuple[int, Change]] = []   # (row id, change): logged after every party's changes
        participants = sorted(evaluator.registry.participants)
        outcomes = evaluator.each(as_of, events)  # the parties in the same (ISO3) order as the chunks
        halfway = (len(participants) + 1) // 2
        parties = done = changed = 0
        others = sorted(set(stored_parties) - set(participants))
        chunks = [participants[i:i + CHUNK_PARTIES] for i in range(0, len(participants), CHUNK_PARTIES)]
        for chunk in chunks + ([others] if others else []):
            stored = _stored_rows(work, [p for p in chunk if p in stored_parties], timings, pack)
            found: list[Change] = []
            for iso3 in chunk:
                if iso3 not in evaluator.registry.participants:     # stored rows of a party no longer in the registry
                    continue
                t = time.perf_counter()
                outcome = next(outcomes)
                timings["engine"] += time.perf_counter() - t
                done += 1
                evaluation = outcome.evaluation
                if evaluation is None:   # an error stopped it: keep what was stored for it, and say so
                    errors.append((iso3, str(outcome.error)))
                    listed.add_party({**{k: row[k] for k in _SLIM}, "estimated": _estimated(row)}
                                     for key, row in stored.items() if key[0] == iso3)
                    for key in [key for key in stored if key[0] == iso3]:
                        del stored[key]
                    continue
                parties += 1
                slim_rows = []
                for o in evaluation.obligations:
                    new = obligation_values(iso3, o, evaluation.rulebook_hash)
                    slim_rows.append({**{k: new[k] for k in _SLIM}, "estimated": o.estimated})
                    old = stored.pop((iso3, new["obligation_id"], new["period"]), None)
                    if old is None:
                        found.extend(diff(None, new))
                        writes.insert({**new, "computed_at": now, "check_run_id": run.id})
                        continue
                    moved = [c for c in _PLAIN if old[c] != new[c]]
                    text = json.dumps(new["provenance"])
                    if text != old["provenance"] and json.loads(old["provenance"]) != new["provenance"]:
                        moved.append("provenance")
                    if "due" in moved or "original_due" in moved:   # the reason names the rules and inputs that moved it
                        old = {**old, "provenance": json.loads(old["provenance"])}
                    found.extend(diff(old, new))
                    if moved:
                        writes.update(old["id"], {**{c: new[c] for c in moved}, "computed_at": now, "check_run_id": run.id})
                listed.add_party(slim_rows)
                if half_way is not None and done >= halfway and not writes.reached_half_way:
                    writes.half_way(half_way)
            for key, row in stored.items():   # not derived any more (the failed parties' rows were taken out above)
                removed_changes.append((row["id"], Change(*key, "removed", f"{row['status']}, due {row['due'].isoformat()}",
                                                          None, "no longer derived from the facts (fulfilled elsewhere, "
                                                                "or its basis changed)")))
                writes.delete(row["id"])
            writes.add_changes(found)
            changed += len(found)
            if not first_check:
                changes.extend(found)
            writes.flush()
        removed_changes.sort(key=lambda pair: pair[0])     # in the order the rows were stored
        changed += len(removed_changes)
        if not first_check:
            changes.extend(change for _, change in removed_changes)
        writes.add_changes([change for _, change in removed_changes])
        writes.flush()
        counts = {"parties": parties, "errors": len(errors),
                  "obligations": sum(stored_parties.values()) + writes.inserted - writes.removed,
                  "inserted": writes.inserted, "updated": writes.updated, "removed": writes.removed,
                  "changes": changed, "recorded_events": len(events)}
        run.counts = {**counts, "registry_hash": registry_hash} if registry_hash else counts
        run.finished_at = datetime.now(UTC)
        timings["total"] = time.perf_counter() - t0
        named = {o["party"] for o in listed.rows} | {c.party for c in changes} | {p for p, _ in errors}
        result = CheckResult(run_id=run.id, as_of=as_of, rulebook_hash=evaluator.rulebook.hash,
                             first_check=first_check, listed=listed, changes=changes, errors=errors,
                             counts=counts, names=_names(evaluator, named), next_meeting=meeting, timings=timings,
                             registry_hash=registry_hash, registry_loaded=registry_loaded)
        if before_commit is not None:
            before_commit(result)
        if not commit and not outer:
            work.rollback()
    return result


@contextmanager
def _transaction(url: str, session: Any):
    """A writer session's transaction of its own; or the caller's open ``session``, left open."""
    if session is not None:
        yield session
        return
    with writer_session(url) as own, own.begin():
        yield own


def _names(evaluator: Evaluator, parties: Iterable[str]) -> dict[str, str]:
    known = evaluator.registry.participants
    return {p: known[p].name for p in parties if p in known}


def own_events(events: Iterable[RecordedEvent], pack: str) -> list[RecordedEvent]:
    """The events of ``pack`` when it is checked alone: those tagged for it and the untagged ones."""
    return [e for e in events if event_pack(e, pack) == pack]


def load_events_in(session) -> list[RecordedEvent]:
    rows = session.scalars(sa.select(RecordedEventRow).where(RecordedEventRow.superseded_by.is_(None))
                           .order_by(RecordedEventRow.on, RecordedEventRow.id))
    return [to_recorded(r) for r in rows]


def _stored_rows(session, parties: list[str], timings: dict[str, float],
                 pack: str | None = None) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The stored obligations of these parties, keyed (party, obligation id, period), with the
    provenance as its stored JSON text."""
    if not parties:
        return {}
    t = time.perf_counter()
    table = ObligationRow.__table__
    query = (sa.select(*(table.c[name] for name in _STORED), sa.cast(table.c.provenance, sa.Text).label("provenance"))
             .where(table.c.party.in_(parties)))
    if pack is not None:
        query = query.where(table.c.pack == pack)
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
        self.reached_half_way = False
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
        self.changes.extend({**c.__dict__, "pack": packs.pack_of(c.obligation_id), "check_run_id": self.run_id,
                             "at": self.now} for c in changes)
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

    def half_way(self, callback: Callable[[int], Any]) -> None:
        """Send the buffered rows and call ``callback(rows written)`` inside the open transaction;
        not before some rows are written (a kill must find a half-written check to roll back)."""
        self.flush()
        if not self.written:
            return
        self.session.flush()
        self.reached_half_way = True
        callback(self.written)


def needs_attention(result: CheckResult, evaluator: Evaluator | None = None) -> bool:
    """See :meth:`engine.check.listed.Listed.needs_attention`."""
    return result.listed.needs_attention(result.errors)


def rule_groups(evaluator: Evaluator) -> dict[str, set[str]]:
    return _rule_groups(evaluator.rulebook)


# ----------------------------------------------------------------------------- digest

def digest_context(result: CheckResult, evaluator: Evaluator, contacts: dict[str, Any] | None = None) -> dict[str, Any]:
    """The digest's sections. With ``contacts`` (party -> contact), it also lists the parties that
    have something needing attention but no one to write to, so none is silently left out."""
    names = result.names
    return {
        **digest_sections(result.listed, evaluator, names, result.errors),
        "run_id": result.run_id, "rulebook": result.rulebook_hash, "first_check": result.first_check,
        "counts": result.counts,
        "changes": [] if result.first_check else [
            {**c.__dict__, "name": names.get(c.party, c.party)} for c in
            sorted(result.changes, key=lambda c: (c.party, c.obligation_id, c.period, c.field))],
        "no_contact": _without_contact(result.listed, names, contacts),
    }


def digest_sections(listed: Listed, evaluator: Evaluator, names: dict[str, str],
                    errors: list[tuple[str, str]]) -> dict[str, Any]:
    """The sections the digest and the dashboard share, from what :class:`Listed` gathered."""
    as_of, meeting = listed.as_of, listed.next_meeting

    def row(o: dict[str, Any]) -> dict[str, Any]:
        late = (as_of - o["due"]).days
        return {"party": o["party"], "name": names.get(o["party"], o["party"]), "obligation": o["obligation_id"],
                "article": o["article"], "period": o["period"], "due": o["due"].isoformat(), "due_text": fmt(o["due"]),
                "estimated": bool(o.get("estimated")), "status": o["status"],
                "due_label": o["due"].isoformat() + (" (estimated)" if o.get("estimated") else ""),
                "days_late": late, "days_left": -late, "meeting": o.get("meeting") or "", "reason": o["status_reason"]}

    return {
        "as_of": as_of.isoformat(), "as_of_text": fmt(as_of), "rulebook": evaluator.rulebook.hash,
        "window": WINDOW_DAYS, "attention": listed.needs_attention(errors),
        "overdue_reports": [row(o) for o in listed.overdue_reports()],
        "overdue_other": [row(o) for o in listed.overdue_other()],
        "upcoming": [row(o) for o in listed.upcoming()],
        "extension_requests": [row(o) for o in listed.extension_requests()],
        "unknown_reports": listed.unknown_counts(),
        "unknown_other": [row(o) for o in listed.unknown_other()],
        "decisions_to_record": [row(o) for o in listed.with_status("awaiting_decision")],
        "missed": [{**row(request), "deadline": row(deadline)} for request, deadline in listed.missed_at_risk()],
        "receipts_complete_from": (evaluator.receipts_complete_from.isoformat()
                                   if evaluator.receipts_complete_from else None),
        # each pack's digest says from which day its record of receipts is taken as complete
        "receipts_complete_from_text": (fmt(evaluator.receipts_complete_from)
                                        if evaluator.receipts_complete_from else None),
        "next_meeting": ({**meeting, "start": meeting["start"].isoformat(), "start_text": fmt(meeting["start"])}
                         if meeting else None),
        "errors": [{"party": p, "name": names.get(p, p), "message": m} for p, m in errors],
    }


def _without_contact(listed: Listed, names: dict[str, str], contacts: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    if contacts is None:
        return None
    items: dict[str, int] = {}
    for o in (*listed.overdue_reports(), *listed.overdue_other(), *listed.upcoming(), *listed.extension_requests()):
        if o["party"] not in contacts:
            items[o["party"]] = items.get(o["party"], 0) + 1
    return [{"party": party, "name": names.get(party, party), "items": count} for party, count in sorted(items.items())]


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
    options: dict[str, Any] = dict(loader=PackageLoader("engine.check", "templates"), undefined=StrictUndefined,
                                   trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
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
    log = get("check")
    if commit:   # a folder that cannot take the digest stops the check before it spends anything
        check_digest_folder(folder)
    contacts = load_contacts(url)
    written: dict[str, Any] = {}

    def digest(result: CheckResult) -> None:
        written["context"] = digest_context(result, evaluator, contacts)
        if commit:
            # the heading names the pack; the context (and so --json) keeps its one-pack shape
            label = packs.pack_of(evaluator.rulebook.rules[0].id).upper()
            written["paths"] = write_digest(folder, {**written["context"], "treaty_label": label})

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

def stats_sections(rulebook) -> dict[str, dict[str, Any]]:
    """The progress counts' sections, from the rules' ``stats`` keys: a report counted once
    (``once``) or per period (``periodic``), or a deadline with the extension requests that
    follow it (``deadline``). Reports first, in rule order; then the deadlines, by name."""
    grouped: dict[str, list[Any]] = {}
    for rule in rulebook.rules:
        if rule.is_obligation and rule.stats:
            grouped.setdefault(rule.stats, []).append(rule)
    reports, deadlines = {}, {}
    for name, rules in grouped.items():
        ids = {r.id for r in rules}
        if all(r.status == "report" for r in rules):
            reports[name] = {"shape": "periodic" if any(r.each or r.period_from for r in rules) else "once", "ids": ids}
        else:
            deadlines[name] = {"shape": "deadline", "ids": {r.id for r in rules if r.follows not in ids},
                               "requests": {r.id for r in rules if r.follows in ids}}
    return {**reports, **dict(sorted(deadlines.items()))}


def decided_keys(rulebook) -> list[str]:
    """The keys of ``extension_requests_decided``: the article keys of the decisions the pack's
    exception rules read (``decision:extension:<key>``)."""
    prefix = "decision:extension:"
    return sorted({kind[len(prefix):] for rule in rulebook.rules if rule.produces == "exception"
                   for kind in rule.when if kind.startswith(prefix)})


def stats(evaluator: Evaluator, as_of: date, events: Iterable[RecordedEvent]) -> dict[str, Any]:
    """Counts like the progress reports of the Meetings of States Parties, as of a date.

    The sections come from the rules' ``stats`` keys (:func:`stats_sections`); what counts as
    received or completed from the status vocabulary's groups. Counted party by party: no
    party's evaluation is kept once it is counted."""
    vocabulary = evaluator.rulebook.vocabulary
    assert vocabulary is not None     # load_rulebook always reads one
    received, completed = vocabulary.group("received"), vocabulary.group("fulfilled")
    sections = stats_sections(evaluator.rulebook)
    errors: list[tuple[str, str]] = []
    statuses: Counter = Counter()
    decided: Counter = Counter()
    counted: dict[str, Counter] = {name: Counter() for name in sections}
    for iso3, e, error in evaluator.each(as_of, events):
        if e is None:
            errors.append((iso3, str(error)))
            continue
        statuses[e.status] += 1
        for key in e.facts:
            if key.startswith("decision:extension:"):
                decided[key.split(":")[2].split("#")[0]] += 1
        if e.status != "state_party":
            continue
        for name, section in sections.items():
            counts = counted[name]
            if section["shape"] == "once":
                for o in e.obligations:
                    if o.id not in section["ids"]:
                        continue
                    counts["all"] += 1
                    if o.due <= as_of or o.status in received:
                        counts["due"] += 1
                        counts["received"] += o.status in received
                        counts["received_late"] += o.status == "fulfilled_late"
                        counts["received_date_unknown"] += o.status == "received"
                        counts["outstanding"] += o.status == "overdue"
                        counts["unknown"] += o.status == "unknown"
            elif section["shape"] == "periodic":
                for o in e.obligations:
                    if o.id in section["ids"]:
                        counts["due"] += o.due <= as_of
                        counts["received"] += o.status in received
                        counts["outstanding"] += o.status == "overdue"
                        counts["unknown"] += o.status == "unknown"
            else:
                found = [o for o in e.obligations if o.id in section["ids"]]
                if found:
                    counts["states_with_obligation"] += 1
                    counts["completed"] += all(o.status in completed for o in found)
                    counts["extended"] += any(o.due != o.original_due for o in found)
                    counts["deadline_passed_outstanding"] += any(o.status == "overdue" for o in found)
                    counts["deadline_passed_decision_not_recorded"] += any(o.status == "unknown" for o in found)
                for o in e.obligations:
                    if o.id in section["requests"] and o.status in ("awaiting_decision", "missed"):
                        counts[f"extension_requests_{o.status}"] += 1
    fields = {"once": ("due", "received", "received_late", "received_date_unknown", "outstanding", "unknown"),
              "periodic": ("due", "received", "outstanding", "unknown"),
              "deadline": ("states_with_obligation", "completed", "extended", "deadline_passed_outstanding",
                           "deadline_passed_decision_not_recorded", "extension_requests_awaiting_decision",
                           "extension_requests_missed")}
    out: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "states_parties": statuses["state_party"],
        "signatories": statuses["signatory"],
        "former_states_parties": statuses["former_state_party"],
    }
    for name, section in sections.items():
        counts = counted[name]
        out[name] = {f: counts[f] for f in fields[section["shape"]]}
        if section["shape"] == "once":
            out[name]["not_yet_due"] = counts["all"] - counts["due"]
    keys = decided_keys(evaluator.rulebook)
    out["extension_requests_decided"] = {**{k: decided.get(k, 0) for k in keys}, "total": sum(decided.values())}
    out["recorded_events"] = sum(1 for _ in events) if isinstance(events, list) else None
    out["errors"] = [{"party": p, "message": m} for p, m in errors]
    return out
