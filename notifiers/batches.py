"""Mailings reviewed before they go: plan a batch of items, preview its notes, approve it, and only then queue one note per State.

Guarantees:

* An item (party, obligation, period, stage) is planned once: its key is UNIQUE in
  ``letter_items``, whichever batch holds it; a later batch never repeats it.
* Nothing of a batch is queued before it is approved: its notes are rendered at approval,
  dated that day (a note bears the day it is sent), into ``letters`` with who approved it and
  when; the delivery (notifiers.delivery.deliver) only ever sends ``letters`` rows.
* An item settled between planning and approval (a report recorded, a deadline moved) is left
  out of the note: approval evaluates the batch's parties again as of that day.
* A batch is approved once; approving it again is refused with a sentence saying by whom and when.
* Wording follows the log: an item is a "further" reminder only if a note that was *sent*
  already reminded the State of it (notifiers.notes).
* A batch belongs to one rule pack (``letter_batches.pack``): with several packs selected, a
  day's mailing is one batch per pack, each note is about one treaty, worded with that pack's
  wording and signer, and approval re-checks it with that pack's rules and recorded events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage

import sqlalchemy as sa

from engine.core import packs
from engine.record.contacts import Contact, load_contacts
from engine.store.database import is_sqlite, reader_session, writer_session
from engine.store.mailing import BatchRow, ItemRow, LetterRow
from notifiers import letters as letter_text
from notifiers.base import build_message, message_id
from notifiers.config import LettersConfig
from notifiers.dues import Selected, obligations_as_of, treaties_of
from notifiers.notes import Note, SentItem, consolidate
from notifiers.planner import OPEN_STATUSES, Due, PlannedLetter, plan

NOTE_KIND = "note"


class BatchError(ValueError):
    """A batch that cannot be previewed or approved; the message says why and what to do."""


class FutureDateRefused(ValueError):
    """Sending as of a date after today: notes would be dated, and reminders marked sent, before their time."""


@dataclass
class BatchPlan:
    """What planning found: the batch recorded (None when nothing was new), its items, and who has no contact."""

    as_of: date
    batch_id: int | None
    items: list[PlannedLetter]
    no_contact: dict[str, list[PlannedLetter]] = field(default_factory=dict)
    pack: str | None = None          # the rule pack whose items these are (one batch per pack)

    @property
    def parties(self) -> list[str]:
        return sorted({p.party for p in self.items})


@dataclass
class Approval:
    batch_id: int
    approved_by: str
    approved_at: datetime
    notes: int
    items: int
    no_contact: list[str]
    settled: list[str] = field(default_factory=list)    # item keys no longer open on the day of approval
    not_rendered: list[tuple[str, str]] = field(default_factory=list)   # (party, why): its items planned again


def still_open(url: str, evaluator, items: list[ItemRow], today: date, home: str | None = None) -> set[str]:
    """The keys of the items whose obligation is still open on ``today`` with the same due date: a report
    recorded, or a deadline moved, between planning and approval leaves the note. ``evaluator`` is the
    items' pack's; ``home`` owns the recorded events that name no pack (the settings' first pack)."""
    parties = {row.party for row in items}
    current = {(d.party, d.obligation_id, d.period): d
               for d in obligations_as_of(url, evaluator, today, parties, home=home)}
    keep = set()
    for row in items:
        due = current.get((row.party, row.obligation_id, row.period))
        if due is not None and due.status in OPEN_STATUSES and due.due == row.due:
            keep.add(row.key)
    return keep


def refuse_future(as_of: date, today: date) -> None:
    """Raise FutureDateRefused for a send as of a date after today."""
    if as_of > today:
        raise FutureDateRefused(
            f"--as-of {as_of.isoformat()} is after today ({today.isoformat()}): notes are dated the day they are sent "
            "and reminders cannot be sent before their time. Use `ccm letters plan --as-of` or `preview --as-of` "
            "to look ahead; nothing was written.")


def planned_keys(url: str) -> set[str]:
    """Every item key planned before: items of every batch, and the single letters of before batches."""
    with reader_session(url) as session:
        keys = set(session.scalars(sa.select(ItemRow.key)))
        keys |= set(session.scalars(sa.select(LetterRow.key).where(LetterRow.kind != NOTE_KIND)))
    return keys


def sent_items(url: str, parties: set[str] | None = None) -> list[SentItem]:
    """What the delivery log says each State was actually sent: the items of sent notes (and single letters of before batches)."""
    with reader_session(url) as session:
        query = (sa.select(ItemRow.party, ItemRow.obligation_id, ItemRow.period, ItemRow.due, LetterRow.reference,
                           LetterRow.sent_at)
                 .join(LetterRow, LetterRow.id == ItemRow.letter_id).where(LetterRow.status == "sent"))
        legacy = (sa.select(LetterRow.party, LetterRow.obligation_id, LetterRow.period, LetterRow.due,
                            LetterRow.reference, LetterRow.sent_at)
                  .where(LetterRow.status == "sent", LetterRow.kind != NOTE_KIND))
        if parties is not None:
            query = query.where(ItemRow.party.in_(sorted(parties)))
            legacy = legacy.where(LetterRow.party.in_(sorted(parties)))
        rows = list(session.execute(query)) + list(session.execute(legacy))
    return [SentItem(party, obligation, period, due, reference, _as_utc(sent_at).date())
            for party, obligation, period, due, reference, sent_at in rows if sent_at is not None]


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)   # SQLite returns naive UTC


def one_pack(dues: list[Due], pack: str | None = None) -> str | None:
    """The rule pack of one pack's dues (their obligation ids' prefix), or ``pack`` when given; None for
    no dues. Raises ValueError for dues of two packs: a batch, like a note, is about one treaty."""
    found = {packs.pack_of(d.obligation_id) for d in dues} | ({pack} if pack else set())
    if len(found) > 1:
        raise ValueError(f"a batch holds the items of one rule pack, not {sorted(found)}")
    return found.pop() if found else None


def plan_batch(url: str, config: LettersConfig, as_of: date, dues: list[Due], now: datetime,
               pack: str | None = None) -> BatchPlan:
    """Record a batch of one pack's items due as of the date for the parties with a contact (none if nothing
    is new); ``dues`` are that pack's (``pack``, or their obligation ids' prefix).

    Items of parties without a contact are not recorded: they are planned again once a contact exists.
    Raises ValueError for dues of two packs.
    """
    pack = one_pack(dues, pack)
    contacts = load_contacts(url)
    found = plan(dues, planned_keys(url), config.policy, as_of)
    result = BatchPlan(as_of=as_of, batch_id=None, items=[p for p in found if p.party in contacts], pack=pack)
    for p in found:
        if p.party not in contacts:
            result.no_contact.setdefault(p.party, []).append(p)
    if not result.items:
        return result
    with writer_session(url) as session, session.begin():
        batch = BatchRow(as_of=as_of, created_at=now, status="planned", pack=pack)
        session.add(batch)
        session.flush()
        insert = _insert(session)
        rows = [_item_row(p, batch.id) for p in result.items]
        inserted = session.execute(insert(ItemRow).on_conflict_do_nothing(index_elements=["key"])
                                   .returning(ItemRow.key), rows).scalars().all()
        if not inserted:            # another run planned them meanwhile
            session.delete(batch)
            result.items = []
            return result
        result.items = [p for p in result.items if p.key in set(inserted)]
        result.batch_id = batch.id
    return result


def _insert(session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import (
            insert,  # the dialect's own upsert, for the dialect in use
        )
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _item_row(p: PlannedLetter, batch_id: int) -> dict:
    o = p.obligation
    return {"key": p.key, "batch_id": batch_id, "letter_id": None, "party": p.party, "obligation_id": p.obligation_id,
            "period": p.period, "stage": p.stage, "stage_name": p.stage_name, "kind": p.kind, "due": p.due,
            "original_due": o.original_due, "stage_date": p.stage_date, "status": o.status, "article": o.article,
            "basis": " ".join(o.basis), "meeting": o.meeting, "estimated": bool(o.estimated)}


def _planned(row: ItemRow) -> PlannedLetter:
    due = Due(party=row.party, obligation_id=row.obligation_id, period=row.period, due=row.due,
              original_due=row.original_due, status=row.status, article=row.article,
              basis=tuple(row.basis.split()), meeting=row.meeting, estimated=row.estimated)
    return PlannedLetter(key=row.key, party=row.party, obligation_id=row.obligation_id, period=row.period,
                         stage=row.stage, stage_name=row.stage_name, kind=row.kind, tone="", due=row.due,
                         stage_date=row.stage_date, obligation=due)


def get_batch(url: str, batch_id: int) -> tuple[BatchRow, list[ItemRow]]:
    """The batch and its items. Raises BatchError for a batch that does not exist."""
    with reader_session(url) as session:
        batch = session.get(BatchRow, batch_id)
        if batch is None:
            raise BatchError(f"there is no batch {batch_id}; `ccm letters batches` lists them")
        items = list(session.scalars(sa.select(ItemRow).where(ItemRow.batch_id == batch_id).order_by(ItemRow.id)))
    return batch, items


def list_batches(url: str, limit: int = 20, pack_names: tuple[str, ...] | None = None) -> list[tuple[BatchRow, int, int]]:
    """(batch, items, States) newest first (only the batches of ``pack_names`` when given)."""
    with reader_session(url) as session:
        query = (sa.select(BatchRow, sa.func.count(ItemRow.id), sa.func.count(sa.distinct(ItemRow.party)))
                 .join(ItemRow, ItemRow.batch_id == BatchRow.id, isouter=True))
        if pack_names is not None:
            query = query.where(BatchRow.pack.in_(pack_names))
        rows = session.execute(query.group_by(BatchRow.id).order_by(BatchRow.id.desc()).limit(limit)).all()
    return [(batch, items, states) for batch, items, states in rows]


def notes_of(url: str, items: list[ItemRow], dated: date) -> list[Note]:
    """The consolidated notes of a batch's items, as they read on ``dated``."""
    planned = [_planned(row) for row in items]
    return consolidate(planned, sent_items(url, {p.party for p in planned}), dated)


def note_key(party: str, batch_id: int) -> str:
    """``LBN|note|batch-12``: the note's idempotency key in ``letters`` (its Message-ID and reference derive from it)."""
    return f"{party}|{NOTE_KIND}|batch-{batch_id}"


@dataclass
class RenderedNote:
    note: Note
    contact: Contact
    rendered: letter_text.RenderedLetter
    message: EmailMessage
    key: str


def render_note(note: Note, contact: Contact, evaluator, config: LettersConfig, batch_id: int, now: datetime,
                language: str | None = None) -> RenderedNote:
    """The note rendered in the contact's language (or ``language``) and its RFC 5322 message: worded with
    its pack's wording (the evaluator is that pack's), signed and referenced as ``[letters.packs.<pack>]`` says."""
    config = config.for_pack(packs.pack_of(note.items[0].planned.obligation_id))
    kinds = [config.policy.kind_of(item.planned.obligation_id) for item in note.items]
    signer = config.signer_of(next((k.signer for k in kinds if k), None))
    language = language or contact.language
    key = note_key(note.party, batch_id)
    rendered = letter_text.render_note(note, evaluator.registry, evaluator.rulebook, language, signer,
                                       config.reference_prefix, key, mission=contact.mission if language == contact.language else None)
    cc = list(dict.fromkeys([*contact.cc, *config.cc, *(c for k in kinds if k for c in k.cc)]))
    message = build_message(sender=config.sender_address, to=list(contact.email), cc=cc, subject=rendered.subject,
                            text=rendered.text, html=rendered.html, msg_id=message_id(key, config.message_id_domain),
                            key=key, reference=rendered.reference, language=language, date=now,
                            reply_to=config.reply_to)
    return RenderedNote(note=note, contact=contact, rendered=rendered, message=message, key=key)


def approve(url: str, batch_id: int, by: str, selected: Selected, config: LettersConfig, now: datetime) -> Approval:
    """Approve a planned batch: render one note per State dated today and queue it, recording who approved and when.

    The batch's notes are checked again and worded with its own pack's evaluator, taken from ``selected``
    (the selected packs, or one pack's evaluator).

    Raises BatchError for an unknown batch, one already approved, one planned for a date after today,
    one of a pack not among ``selected``, or an empty name.
    """
    tr = treaties_of(selected)
    by = (by or "").strip()
    if not by:
        raise BatchError("say who approves the batch (--by NAME): the delivery log records it")
    today = now.astimezone(UTC).date()
    with writer_session(url) as session, session.begin():
        query = sa.select(BatchRow).where(BatchRow.id == batch_id)
        if not is_sqlite(url):
            query = query.with_for_update()
        batch = session.scalar(query)
        if batch is None:
            raise BatchError(f"there is no batch {batch_id}; `ccm letters batches` lists them")
        if batch.status == "approved":
            on = f" on {_as_utc(batch.approved_at):%Y-%m-%d %H:%M} UTC" if batch.approved_at else ""
            raise BatchError(f"batch {batch_id} was already approved by {batch.approved_by}{on}; "
                             "its notes are in `ccm letters log`")
        if batch.as_of > today:
            raise BatchError(f"batch {batch_id} was planned as of {batch.as_of.isoformat()}, after today "
                             f"({today.isoformat()}); approve it on or after that date")
        evaluator = pack_evaluator(tr, batch)
        items = list(session.scalars(sa.select(ItemRow).where(ItemRow.batch_id == batch_id).order_by(ItemRow.id)))
        keep = still_open(url, evaluator, items, today, tr.home)
        settled = [row.key for row in items if row.key not in keep]
        if settled:                   # settled since planning: not sent, and planned again should they reopen
            session.execute(sa.delete(ItemRow).where(ItemRow.key.in_(settled)))
            items = [row for row in items if row.key in keep]
        contacts = load_contacts(url)
        notes = notes_of(url, items, today)
        rows, missing, not_rendered = [], [], []
        for note in notes:
            contact = contacts.get(note.party)
            if contact is None:       # removed since planning: its items go back to planning
                missing.append(note.party)
                session.execute(sa.delete(ItemRow).where(ItemRow.batch_id == batch_id, ItemRow.party == note.party))
                continue
            try:
                out = render_note(note, contact, evaluator, config, batch_id, now)
            except Exception as error:  # noqa: BLE001 - one note that cannot be rendered never stops the others
                not_rendered.append((note.party, f"{error.__class__.__name__}: {error}"))
                session.execute(sa.delete(ItemRow).where(ItemRow.batch_id == batch_id, ItemRow.party == note.party))
                continue
            rows.append((note, out))
        for note, out in rows:
            first = note.items[0].planned
            letter = LetterRow(
                key=out.key, party=note.party, obligation_id=first.obligation_id if len(note.items) == 1 else "",
                period=first.period if len(note.items) == 1 else "", stage="", kind=NOTE_KIND,
                due=min(i.planned.due for i in note.items), as_of=batch.as_of, language=out.contact.language,
                recipients=", ".join([*out.message.get_all("To", []), *out.message.get_all("Cc", [])]),
                subject=out.rendered.subject, reference=out.rendered.reference, message_id=out.message["Message-ID"],
                message=out.message.as_string(), status="queued", attempts=0, next_attempt_at=None, created_at=now,
                batch_id=batch_id, approved_by=by, approved_at=now)
            session.add(letter)
            session.flush()
            keys = list(note.keys)
            session.execute(sa.update(ItemRow).where(ItemRow.key.in_(keys)).values(letter_id=letter.id))
        batch.status, batch.approved_by, batch.approved_at = "approved", by, now
    return Approval(batch_id=batch_id, approved_by=by, approved_at=now, notes=len(rows),
                    items=sum(len(n.items) for n, _ in rows), no_contact=missing, settled=settled,
                    not_rendered=not_rendered)


def pack_evaluator(tr, batch: BatchRow):
    """The evaluator of the batch's pack. Raises BatchError when that pack is not selected."""
    if batch.pack not in tr.names:
        raise BatchError(f"batch {batch.id} is a mailing of the rule pack {batch.pack!r}, which is not selected "
                         f"(selected: {', '.join(tr.names)}); select it in config.toml ([engine] pack) or with "
                         f"CCM_PACK={','.join((*tr.names, batch.pack))}")
    return tr.get(batch.pack)


def discard(url: str, batch_id: int) -> int:
    """Discard a planned batch: its items are deleted, so the next plan considers them again. Returns how many.

    Raises BatchError for an unknown batch or one already approved (its notes are queued or sent).
    """
    with writer_session(url) as session, session.begin():
        query = sa.select(BatchRow).where(BatchRow.id == batch_id)
        if not is_sqlite(url):
            query = query.with_for_update()
        batch = session.scalar(query)
        if batch is None:
            raise BatchError(f"there is no batch {batch_id}; `ccm letters batches` lists them")
        if batch.status != "planned":
            raise BatchError(f"batch {batch_id} was approved by {batch.approved_by}; its notes cannot be recalled")
        items = len(session.scalars(sa.delete(ItemRow).where(ItemRow.batch_id == batch_id).returning(ItemRow.id)).all())
        session.delete(batch)
    return items


def batch_letters(url: str, batch_id: int) -> list[LetterRow]:
    """The notes an approved batch queued."""
    with reader_session(url) as session:
        return list(session.scalars(sa.select(LetterRow).where(LetterRow.batch_id == batch_id).order_by(LetterRow.party)))
