"""Plan, queue and deliver letters against the database: the delivery log and its guarantees.

Guarantees (see also notifiers/batches.py):

* An item is planned once: its idempotency key (party, obligation, period, stage) is UNIQUE in
  ``letter_items``; two runs racing insert it once (the loser's insert does nothing). A
  mailing is a batch: one consolidated note per State, queued in ``letters`` when the batch
  is approved (over SMTP by the coordinator, unless ``[letters] auto_send``).
* A note is rendered once, when queued; retries send the stored message, with the same
  Message-ID.
* A letter marked ``sent`` is never sent again. Delivery is at-least-once: a process killed
  after the notifier accepted a message and before the database recorded it sends it again on
  the next run, with the same Message-ID, so that the receiving side can recognise it.
* Transient failures (server down, a timeout, a 4xx answer) are recorded with the error and
  retried with exponential backoff (``retry_first_seconds`` doubling, at most
  ``retry_max_seconds``); such a letter is never given up. When the server cannot be reached, times
  out or refuses the sender, the run stops after that letter: the others stay queued for the
  next run.
* Permanent failures belong to one letter (an address that cannot be mailed, a 5xx refusal, a
  non-ASCII address and a server without SMTPUTF8): the letter is marked ``rejected`` (or
  ``partial`` when other recipients accepted it) and the run goes on with the next one. It is
  re-rendered and queued again when its State's contact changes, or by ``ccm letters retry``.
* The outcome is recorded per recipient (``letter_recipients``): a retry sends only to those
  that have not accepted the letter.
* With several packs selected, a mailing is one batch per pack (each with that pack's dues and
  recorded events), and one delivery run sends every approved note, whatever its pack.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from engine.record.contacts import load_contacts
from engine.registry.treaties import pack_name
from engine.store.database import (
    RecordedEventRow,
    is_sqlite,
    reader_session,
    writer_session,
)
from engine.store.mailing import (
    UNSENT,
    AttemptRow,
    BatchRow,
    ItemRow,
    LetterRow,
    RecipientRow,
)
from notifiers.base import DeliveryError, Notifier
from notifiers.batches import (
    BatchPlan,
    approve,
    notes_of,
    one_pack,
    plan_batch,
    planned_keys,
    refuse_future,
    render_note,
)
from notifiers.config import LettersConfig
from notifiers.dues import Selected, obligations_as_of, treaties_of
from notifiers.outbox import OutboxNotifier
from notifiers.planner import Due, PlannedLetter, plan

if TYPE_CHECKING:
    from email.message import EmailMessage

    from notifiers.batches import Approval


@dataclass
class DeliveryReport:
    sent: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)         # transient: retried later
    rejected: list[tuple[str, str]] = field(default_factory=list)       # permanent, for that letter or recipient
    not_rendered: list[tuple[str, str]] = field(default_factory=list)   # could not be rendered: not queued


def make_plan(url: str, evaluator, config: LettersConfig, as_of: date, dues: list[Due] | None = None,
              home: str | None = None):
    """What a batch of the evaluator's pack planned as of the date would hold (nothing is written): a
    notifiers.batches.BatchPlan. ``home`` owns the recorded events naming no pack (default: this pack)."""
    dues = obligations_as_of(url, evaluator, as_of, home=home) if dues is None else dues
    contacts = load_contacts(url)
    found = plan(dues, planned_keys(url), config.policy, as_of)
    result = BatchPlan(as_of=as_of, batch_id=None, items=[p for p in found if p.party in contacts],
                       pack=one_pack(dues, pack_name(evaluator)))
    for p in found:
        if p.party not in contacts:
            result.no_contact.setdefault(p.party, []).append(p)
    return result


def backoff(attempts: int, config: LettersConfig) -> timedelta:
    """The wait after the n-th failed attempt: first, 2 x first, 4 x first, ..., at most the maximum."""
    return timedelta(seconds=min(config.retry_first_seconds * 2 ** max(attempts - 1, 0), config.retry_max_seconds))


def due_for_delivery(url: str, now: datetime, pack_names: tuple[str, ...] | None = None) -> list[int]:
    with reader_session(url) as session:
        query = sa.select(LetterRow.id).where(LetterRow.status.in_(("queued", "failed")),
                                              sa.or_(LetterRow.next_attempt_at.is_(None), LetterRow.next_attempt_at <= now))
        if pack_names is not None:
            query = query.where(of_packs(pack_names))
        return list(session.scalars(query.order_by(LetterRow.id)))


def addresses_of(message: EmailMessage) -> list[str]:
    """Every To and Cc address of a stored message, in order, once."""
    found: list[str] = []
    for name in ("To", "Cc"):
        for header in message.get_all(name, []):
            try:
                found.extend(a.addr_spec for a in header.addresses)
            except (AttributeError, TypeError, ValueError):
                found.extend(a.strip() for a in str(header).split(",") if a.strip())
    return list(dict.fromkeys(found))


def _record_recipients(session, letter_id: int, outcomes: dict[str, tuple[str, str | None]], now: datetime) -> None:
    existing = {r.address: r for r in session.scalars(sa.select(RecipientRow).where(RecipientRow.letter_id == letter_id))}
    for address, (status, detail) in outcomes.items():
        row = existing.get(address) or RecipientRow(letter_id=letter_id, address=address)
        row.status, row.detail, row.at = status, detail, now
        session.add(row)


def deliver(url: str, notifier: Notifier, config: LettersConfig, now: datetime | None = None,
            after_send: Callable[[str], Any] | None = None, pack_names: tuple[str, ...] | None = None) -> DeliveryReport:
    """Send every letter queued or failed whose next attempt is due (of the batches of ``pack_names``
    when given: ``ccm letters deliver --treaty``); each in its own transaction.

    The row is locked while it is sent (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: the write lock
    of BEGIN IMMEDIATE), so two deliveries running at once never send the same letter twice.
    A letter goes only to its recipients that have not accepted it yet.

    ``after_send(message_id)`` is called when the server accepted a letter, before that is
    recorded (the at-least-once test kills the process there).
    """
    now = now or datetime.now(UTC)
    report = DeliveryReport()
    try:
        for letter_id in due_for_delivery(url, now, pack_names):
            with writer_session(url) as session, session.begin():
                query = sa.select(LetterRow).where(
                    LetterRow.id == letter_id, LetterRow.status.in_(("queued", "failed")),
                    sa.or_(LetterRow.next_attempt_at.is_(None), LetterRow.next_attempt_at <= now))
                if not is_sqlite(url):
                    query = query.with_for_update(skip_locked=True)
                row = session.scalar(query)
                if row is None:
                    continue     # sent meanwhile by another run, or being sent by it
                row.attempts += 1
                done = set(session.scalars(sa.select(RecipientRow.address).where(
                    RecipientRow.letter_id == row.id, RecipientRow.status == "sent")))
                try:
                    message = email.message_from_string(row.message, policy=email.policy.default)
                    pending = [a for a in addresses_of(message) if a not in done]
                    refused = notifier.send(message, pending) if pending else {}
                except DeliveryError as error:
                    stop = _failed(session, row, notifier, config, now, report, str(error), error.transient,
                                   {a: ("refused" if not error.transient else "deferred", t) for a, t in error.refused.items()})
                    if stop and error.connection:
                        break        # server down or not answering: the rest stay queued for the next run
                    continue
                except Exception as error:  # noqa: BLE001 - whatever one letter does, the others go on
                    _failed(session, row, notifier, config, now, report,
                            f"this letter cannot be sent: {error.__class__.__name__}: {error}", False, {})
                    continue
                if after_send is not None:
                    after_send(row.message_id)
                outcomes: dict[str, tuple[str, str | None]] = {a: ("sent", None) for a in pending if a not in refused}
                deferred = {a: t for a, t in refused.items() if t[:1] == "4"}
                outcomes.update({a: ("deferred" if a in deferred else "refused", t) for a, t in refused.items()})
                _record_recipients(session, row.id, outcomes, now)
                if deferred:
                    _failed(session, row, notifier, config, now, report,
                            "deferred for " + "; ".join(f"{a}: {t}" for a, t in deferred.items()), True, {})
                    continue
                row.sent_at, row.next_attempt_at = now, None
                if refused:
                    row.status = "partial"
                    row.last_error = "refused for " + "; ".join(f"{a}: {t}" for a, t in refused.items())
                    report.rejected.append((row.key, row.last_error))
                else:
                    row.status, row.last_error = "sent", None
                    report.sent.append(row.key)
                session.add(AttemptRow(letter_id=row.id, at=now, notifier=notifier.name, outcome=row.status[:10],
                                       error=row.last_error))
    finally:
        notifier.close()
    return report


def _failed(session, row: LetterRow, notifier: Notifier, config: LettersConfig, now: datetime, report: DeliveryReport,
            error: str, transient: bool, outcomes: dict[str, tuple[str, str | None]]) -> bool:
    """Record a failed attempt: transient ones are retried with backoff, permanent ones wait for a
    contact change or ``ccm letters retry``. Returns whether it was transient."""
    if outcomes:
        _record_recipients(session, row.id, outcomes, now)
    row.last_error = error
    if transient:
        row.status, row.next_attempt_at = "failed", now + backoff(row.attempts, config)
        report.failed.append((row.key, error))
    else:
        accepted = session.scalar(sa.select(sa.func.count()).select_from(RecipientRow).where(
            RecipientRow.letter_id == row.id, RecipientRow.status == "sent"))
        row.status, row.next_attempt_at = ("partial" if accepted else "rejected"), None
        report.rejected.append((row.key, error))
    session.add(AttemptRow(letter_id=row.id, at=now, notifier=notifier.name, outcome="failed", error=error))
    return transient


def make_notifier(config: LettersConfig) -> Notifier:
    if config.notifier == "smtp":
        from notifiers.smtp import (
            SmtpNotifier,  # lazy: smtplib and ssl only for the SMTP notifier
        )

        return SmtpNotifier(config.smtp)

    return OutboxNotifier(config.outbox)


@dataclass
class SendResult:
    plans: list[BatchPlan]                   # one per pack, in the packs' order
    approvals: dict[int, Approval]           # by batch id: the batches approved without review
    delivery: DeliveryReport

    @property
    def items(self) -> list[PlannedLetter]:
        return [p for plan_ in self.plans for p in plan_.items]

    @property
    def no_contact(self) -> dict[str, list[PlannedLetter]]:
        found: dict[str, list[PlannedLetter]] = {}
        for plan_ in self.plans:
            for party, items in plan_.no_contact.items():
                found.setdefault(party, []).extend(items)
        return found

    @property
    def batch_ids(self) -> list[int]:
        """The batches planned, in the packs' order."""
        return [p.batch_id for p in self.plans if p.batch_id is not None]

    @property
    def awaiting(self) -> list[int]:
        """The batches planned and not approved (over SMTP without auto_send)."""
        return [b for b in self.batch_ids if b not in self.approvals]

    @property
    def queued(self) -> int:
        return sum(a.notes for a in self.approvals.values())

    @property
    def awaiting_approval(self) -> bool:
        return bool(self.awaiting)


class FirstRunRefused(RuntimeError):
    """A mass mailing on a record that holds no report receipt: almost surely not what is meant."""


def guard_first_run(url: str, config: LettersConfig, letters_to_send: int) -> None:
    """Refuse to mail more than ``first_run_limit`` letters over SMTP while no receipt is recorded.

    With no report receipt in the database every report since entry into force counts as
    outstanding, so the first run would chase every State for years of reports. The outbox
    (files) is never refused; ``[letters] since`` or recorded receipts lift the guard.

    Raises :class:`FirstRunRefused` with a sentence saying what to do.
    """
    if config.notifier != "smtp" or config.policy.since is not None or letters_to_send <= config.first_run_limit:
        return
    with reader_session(url) as session:
        receipts = session.scalar(sa.select(sa.func.count()).select_from(RecordedEventRow)
                                  .where(RecordedEventRow.kind.like("report:%")))
    if not receipts:
        raise FirstRunRefused(
            f"{letters_to_send} letters would be mailed, but no report receipt is recorded yet, so every report "
            "since entry into force counts as outstanding. Import the receipts first (ccm import FILE), or set "
            '[letters] since = "YYYY-MM-DD" in config.toml to chase only obligations due from that date.')


def send(url: str, selected: Selected, config: LettersConfig, as_of: date, notifier: Notifier | None = None,
         now: datetime | None = None, dues: list[Due] | None = None) -> SendResult:
    """Plan one batch per pack as of the date (each pack's dues, with its own recorded events), approve each
    unless it needs review (SMTP without auto_send), then deliver every approved note due.

    ``selected`` is the selected packs (or one pack's evaluator); ``dues``, when given, replace the
    evaluation (each pack takes those of its own obligation ids).

    Raises notifiers.batches.FutureDateRefused for a date after today and :class:`FirstRunRefused`
    (see :func:`guard_first_run`), both before anything is written.
    """
    now = now or datetime.now(UTC)
    refuse_future(as_of, now.astimezone(UTC).date())
    tr = treaties_of(selected)
    each = {name: (obligations_as_of(url, ev, as_of, home=tr.home) if dues is None
                   else [d for d in dues if d.obligation_id.partition(".")[0] == name])
            for name, ev in tr.items()}
    guard_first_run(url, config, sum(len(make_plan(url, ev, config, as_of, each[name]).items) for name, ev in tr.items()))
    plans, approvals = [], {}
    for name in tr.names:
        batch = plan_batch(url, config, as_of, each[name], now, pack=name)
        plans.append(batch)
        if batch.batch_id is not None and not config.needs_approval:
            approvals[batch.batch_id] = approve(
                url, batch.batch_id, "auto_send" if config.notifier == "smtp" else "outbox (no review)", tr, config, now)
    report = deliver(url, notifier or make_notifier(config), config, now)
    report.not_rendered = [n for a in approvals.values() for n in a.not_rendered]
    return SendResult(plans=plans, approvals=approvals, delivery=report)


# ----------------------------------------------------------------------------- contact changes, cancel, retry

class LetterNotFound(LookupError):
    """No letter with that id (or none in a state the command acts on); the message says which."""


def rerender(url: str, selected: Selected, config: LettersConfig, where, now: datetime | None = None,
             requeue: tuple[str, ...] = ("rejected", "partial")) -> list[tuple[str, str]]:
    """Render the unsent notes selected by ``where`` again with their State's current contact.

    A note is rebuilt from the items it carries (``letter_items``), as dated when it was approved,
    with its batch's pack's evaluator (taken from ``selected``: the selected packs, or one evaluator).
    Notes with status in ``requeue`` are queued again (due at once). The Message-ID is kept, so a
    receiver that already has the note recognises it. Returns (key, problem) for the notes that
    could not be re-rendered (left as they were).
    """
    now = now or datetime.now(UTC)
    tr = treaties_of(selected)
    contacts = load_contacts(url)
    problems: list[tuple[str, str]] = []
    with writer_session(url) as session, session.begin():
        rows = list(session.scalars(sa.select(LetterRow).where(where, LetterRow.status.in_(UNSENT))))
        pack_of_batch = dict(session.execute(sa.select(BatchRow.id, BatchRow.pack)).all())
        for row in rows:
            contact = contacts.get(row.party)
            if contact is None:
                problems.append((row.key, f"{row.party} has no contact"))
                continue
            try:
                items = list(session.scalars(sa.select(ItemRow).where(ItemRow.letter_id == row.id).order_by(ItemRow.id)))
                if not items or row.batch_id is None:
                    problems.append((row.key, ("it carries no planned items to render again; cancel it with "
                                               "`ccm letters cancel`")))
                    continue
                pack = pack_of_batch.get(row.batch_id)
                if pack not in tr.names:
                    why = (f"its batch is a mailing of the rule pack {pack!r}, which is not selected "
                           f"(selected: {', '.join(tr.names)})")
                    problems.append((row.key, why))
                    continue
                dated = (row.approved_at or row.created_at).date()
                notes = notes_of(url, items, dated)
                if len(notes) != 1:
                    problems.append((row.key, "its items no longer make one note; cancel it with `ccm letters cancel`"))
                    continue
                out = render_note(notes[0], contact, tr.get(pack), config, row.batch_id, now)
            except Exception as error:  # noqa: BLE001 - one note never stops the others
                problems.append((row.key, f"{error.__class__.__name__}: {error}"))
                continue
            row.language, row.subject, row.reference = contact.language, out.rendered.subject, out.rendered.reference
            row.recipients = ", ".join([*out.message.get_all("To", []), *out.message.get_all("Cc", [])])
            row.message = out.message.as_string()
            if row.status in requeue:
                row.status, row.next_attempt_at = "queued", None
    return problems


def rerender_for_parties(url: str, selected: Selected, config: LettersConfig, parties: list[str]) -> list[tuple[str, str]]:
    """After a contact change: the State's unsent letters (of every selected pack) go to the new addresses, in its language."""
    return rerender(url, selected, config, LetterRow.party.in_(parties))


def cancel(url: str, letter_id: int | None = None, party: str | None = None,
           pack_names: tuple[str, ...] | None = None) -> list[str]:
    """Cancel one unsent letter, or every unsent letter of a party (with ``pack_names``: of those packs'
    batches only, ``--treaty``); returns the keys cancelled."""
    with writer_session(url) as session, session.begin():
        query = sa.select(LetterRow).where(LetterRow.status.in_(UNSENT))
        query = query.where(LetterRow.id == letter_id) if letter_id is not None else query.where(LetterRow.party == party)
        if pack_names is not None:
            query = query.where(of_packs(pack_names))
        rows = list(session.scalars(query))
        if letter_id is not None and not rows:
            found = session.get(LetterRow, letter_id)
            if found is not None and found.status in UNSENT:     # unsent, so left out by --treaty: another pack's
                raise LetterNotFound(f"letter {letter_id} is not a letter of {', '.join(pack_names or ())}; "
                                     "cancel it without --treaty or with its own")
            raise LetterNotFound(f"there is no letter {letter_id}" if found is None else
                                 f"letter {letter_id} is {found.status}; only a queued, failed, rejected or partial "
                                 "letter can be cancelled")
        for row in rows:
            row.status, row.next_attempt_at = "cancelled", None
        return [r.key for r in rows]


def retry(url: str, selected: Selected, config: LettersConfig, letter_id: int | None = None,
          now: datetime | None = None) -> tuple[list[str], list[tuple[str, str]]]:
    """Queue again one letter (failed, rejected, partial or cancelled) or, without an id, every failed,
    rejected or partial one of the selected packs' batches, re-rendered with the current contact.
    Returns (keys queued, problems)."""
    tr = treaties_of(selected)
    statuses = ("failed", "rejected", "partial", "cancelled") if letter_id is not None else ("failed", "rejected", "partial")
    with reader_session(url) as session:
        query = sa.select(LetterRow.id, LetterRow.key).where(LetterRow.status.in_(statuses))
        if letter_id is not None:
            query = query.where(LetterRow.id == letter_id)
        else:      # --failed: the selected packs' letters only (--treaty)
            query = query.where(of_packs(tr.names))
        chosen = dict(session.execute(query).all())
        if letter_id is not None and not chosen:
            found = session.get(LetterRow, letter_id)
            raise LetterNotFound(f"there is no letter {letter_id}" if found is None else
                                 f"letter {letter_id} is {found.status}; only a failed, rejected, partial or "
                                 "cancelled letter can be retried")
    if not chosen:
        return [], []
    with writer_session(url) as session, session.begin():
        for row in session.scalars(sa.select(LetterRow).where(LetterRow.id.in_(chosen))):
            if row.status == "cancelled":
                row.status = "rejected"       # so that rerender queues it again
    problems = rerender(url, tr, config, LetterRow.id.in_(chosen), now, requeue=("failed", "rejected", "partial"))
    failed_keys = {k for k, _ in problems}
    return [k for k in chosen.values() if k not in failed_keys], problems


def recipients_of(url: str, letter_ids: list[int]) -> dict[int, list[RecipientRow]]:
    with reader_session(url) as session:
        found: dict[int, list[RecipientRow]] = {}
        for r in session.scalars(sa.select(RecipientRow).where(RecipientRow.letter_id.in_(letter_ids))
                                 .order_by(RecipientRow.id)):
            found.setdefault(r.letter_id, []).append(r)
        return found


def of_packs(pack_names: tuple[str, ...]):
    """The condition on ``letters`` rows: a note of a batch of one of these packs (a letter of before
    batches, with no batch, was the one pack then selected: kept with every selection)."""
    return sa.or_(LetterRow.batch_id.is_(None),
                  LetterRow.batch_id.in_(sa.select(BatchRow.id).where(BatchRow.pack.in_(pack_names))))


def log_rows(url: str, party: str | None = None, status: str | None = None, limit: int = 50,
             pack_names: tuple[str, ...] | None = None) -> list[LetterRow]:
    with reader_session(url) as session:
        query = sa.select(LetterRow).order_by(LetterRow.id.desc()).limit(limit)
        if pack_names is not None:
            query = query.where(of_packs(pack_names))
        if party:
            query = query.where(LetterRow.party == party)
        if status:
            query = query.where(LetterRow.status == status)
        return list(session.scalars(query))
