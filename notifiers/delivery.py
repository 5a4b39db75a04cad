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
* Failures (server down, 4xx, 5xx, timeout) are recorded with the error and retried with
  exponential backoff (``retry_first_seconds`` doubling, at most ``retry_max_seconds``); a letter is
  never given up. When the server cannot be reached or times out, the run stops after that
  letter: the others stay queued for the next run.
"""

from __future__ import annotations

import email
import email.policy
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import sqlalchemy as sa

from engine.contacts import load_contacts
from engine.planner import Due, dues_from_evaluation, plan
from engine.store import is_sqlite, reader_session, writer_session
from notifiers.base import DeliveryError, Notifier
from notifiers.config import LettersConfig
from notifiers.log import AttemptRow, LetterRow

if TYPE_CHECKING:
    from notifiers.batches import Approval, BatchPlan

PAUSE_AFTER_SEND_ENV = "CCM_TEST_PAUSE_AFTER_SEND"   # test hook: seconds to sleep after a send, before recording it


@dataclass
class DeliveryReport:
    sent: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def obligations_as_of(url: str | None, evaluator, as_of: date, parties: set[str] | None = None) -> list[Due]:
    """Every participant's (or only ``parties``') obligations as of the date, with the recorded events of the
    database (if any)."""
    events = []
    if url:
        from engine import store
        from engine.record import load_events

        if store.database_exists(url) and store.current_revision(url):
            events = load_events(url)
    by_party: dict[str, list] = {}
    for event in events:
        by_party.setdefault(event.party, []).append(event)
    dues: list[Due] = []
    for iso3 in sorted(evaluator.registry.participants):
        if parties is not None and iso3 not in parties:
            continue
        dues.extend(dues_from_evaluation(evaluator.evaluate(iso3, as_of, by_party.get(iso3, []))))
    return dues


def make_plan(url: str, evaluator, config: LettersConfig, as_of: date, dues: list[Due] | None = None):
    """What a batch planned as of the date would hold (nothing is written): a notifiers.batches.BatchPlan."""
    from notifiers.batches import BatchPlan, planned_keys

    dues = obligations_as_of(url, evaluator, as_of) if dues is None else dues
    contacts = load_contacts(url)
    found = plan(dues, planned_keys(url), config.policy, as_of)
    result = BatchPlan(as_of=as_of, batch_id=None, items=[p for p in found if p.party in contacts])
    for p in found:
        if p.party not in contacts:
            result.no_contact.setdefault(p.party, []).append(p)
    return result


def backoff(attempts: int, config: LettersConfig) -> timedelta:
    """The wait after the n-th failed attempt: first, 2 x first, 4 x first, ..., at most the maximum."""
    return timedelta(seconds=min(config.retry_first_seconds * 2 ** max(attempts - 1, 0), config.retry_max_seconds))


def due_for_delivery(url: str, now: datetime) -> list[int]:
    with reader_session(url) as session:
        return list(session.scalars(
            sa.select(LetterRow.id).where(LetterRow.status.in_(("queued", "failed")),
                                          sa.or_(LetterRow.next_attempt_at.is_(None), LetterRow.next_attempt_at <= now))
            .order_by(LetterRow.id)))


def deliver(url: str, notifier: Notifier, config: LettersConfig, now: datetime | None = None) -> DeliveryReport:
    """Send every letter queued or failed whose next attempt is due; each in its own transaction.

    The row is locked while it is sent (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: the write lock
    of BEGIN IMMEDIATE), so two deliveries running at once never send the same letter twice.
    """
    now = now or datetime.now(timezone.utc)
    report = DeliveryReport()
    pause = os.environ.get(PAUSE_AFTER_SEND_ENV)
    try:
        for letter_id in due_for_delivery(url, now):
            with writer_session(url) as session, session.begin():
                query = sa.select(LetterRow).where(
                    LetterRow.id == letter_id, LetterRow.status.in_(("queued", "failed")),
                    sa.or_(LetterRow.next_attempt_at.is_(None), LetterRow.next_attempt_at <= now))
                if not is_sqlite(url):
                    query = query.with_for_update(skip_locked=True)
                row = session.scalar(query)
                if row is None:
                    continue     # sent meanwhile by another run, or being sent by it
                message = email.message_from_string(row.message, policy=email.policy.default)
                row.attempts += 1
                try:
                    notifier.send(message)
                except DeliveryError as error:
                    row.status, row.last_error = "failed", str(error)
                    row.next_attempt_at = now + backoff(row.attempts, config)
                    session.add(AttemptRow(letter_id=row.id, at=now, notifier=notifier.name, outcome="failed",
                                           error=str(error)))
                    report.failed.append((row.key, str(error)))
                    if error.connection:
                        break        # server down or not answering: the rest stay queued for the next run
                    continue
                if pause:
                    print(f"{PAUSE_AFTER_SEND_ENV}: sent {row.message_id}, pausing {pause} s", file=sys.stderr, flush=True)
                    time.sleep(float(pause))
                row.status, row.sent_at, row.last_error, row.next_attempt_at = "sent", now, None, None
                session.add(AttemptRow(letter_id=row.id, at=now, notifier=notifier.name, outcome="sent", error=None))
                report.sent.append(row.key)
    finally:
        notifier.close()
    return report


def make_notifier(config: LettersConfig) -> Notifier:
    if config.notifier == "smtp":
        from notifiers.smtp import SmtpNotifier

        return SmtpNotifier(config.smtp)
    from notifiers.outbox import OutboxNotifier

    return OutboxNotifier(config.outbox)


@dataclass
class SendResult:
    plan: "BatchPlan"
    approval: "Approval | None"
    delivery: DeliveryReport

    @property
    def queued(self) -> int:
        return self.approval.notes if self.approval else 0

    @property
    def awaiting_approval(self) -> bool:
        return self.plan.batch_id is not None and self.approval is None


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
    from engine.store import RecordedEventRow
    with reader_session(url) as session:
        receipts = session.scalar(sa.select(sa.func.count()).select_from(RecordedEventRow)
                                  .where(RecordedEventRow.kind.like("report:%")))
    if not receipts:
        raise FirstRunRefused(
            f"{letters_to_send} letters would be mailed, but no report receipt is recorded yet, so every report "
            "since entry into force counts as outstanding. Import the receipts first (ccm import FILE), or set "
            '[letters] since = "YYYY-MM-DD" in config.toml to chase only obligations due from that date.')


def send(url: str, evaluator, config: LettersConfig, as_of: date, notifier: Notifier | None = None,
         now: datetime | None = None, dues: list[Due] | None = None) -> SendResult:
    """Plan a batch as of the date, approve it unless it needs review (SMTP without auto_send), then deliver
    every approved note due.

    Raises notifiers.batches.FutureDateRefused for a date after today and :class:`FirstRunRefused`
    (see :func:`guard_first_run`), both before anything is written.
    """
    from notifiers.batches import approve, plan_batch, refuse_future

    now = now or datetime.now(timezone.utc)
    refuse_future(as_of, now.astimezone(timezone.utc).date())
    dues = obligations_as_of(url, evaluator, as_of) if dues is None else dues
    guard_first_run(url, config, len(make_plan(url, evaluator, config, as_of, dues).items))
    batch = plan_batch(url, config, as_of, dues, now)
    approval = None
    if batch.batch_id is not None and not config.needs_approval:
        approval = approve(url, batch.batch_id, "auto_send" if config.notifier == "smtp" else "outbox (no review)",
                           evaluator, config, now)
    report = deliver(url, notifier or make_notifier(config), config, now)
    return SendResult(plan=batch, approval=approval, delivery=report)


def log_rows(url: str, party: str | None = None, status: str | None = None, limit: int = 50) -> list[LetterRow]:
    with reader_session(url) as session:
        query = sa.select(LetterRow).order_by(LetterRow.id.desc()).limit(limit)
        if party:
            query = query.where(LetterRow.party == party)
        if status:
            query = query.where(LetterRow.status == status)
        return list(session.scalars(query))
