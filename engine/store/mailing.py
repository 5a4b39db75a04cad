"""The letters' tables on engine.store.database.Base: contacts, batches and their items, the delivery log (one row per idempotency key), attempts, recipients.

The schema is created by the migrations engine/store/migrations/versions/0002_letters.py,
0005_letter_batches.py (batches, their items, and each note's batch and approver), 0006 (each
recipient's outcome) and 0008 (each batch's rule pack); these models
must stay equal to it (tests/test_store.py compares them once this module is imported).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.database import Base

#: Delivery statuses. ``queued``: planned, rendered, not yet delivered; ``sent``: the notifier
#: accepted it for every recipient (never sent again); ``failed``: the last attempt failed for a
#: transient reason, retried at ``next_attempt_at``; ``rejected``: refused for good (bad address,
#: 5xx, no SMTPUTF8), not retried until the contact changes or ``ccm letters retry``;
#: ``partial``: accepted by some recipients, refused for good by the others; ``cancelled``: by
#: ``ccm letters cancel``, never sent.
STATUSES = ("queued", "sent", "failed", "rejected", "partial", "cancelled")
#: Letters that were not delivered to every recipient and are not cancelled.
UNSENT = ("queued", "failed", "rejected", "partial")
#: Per recipient: accepted, refused for good, or refused for now (4xx, retried).
RECIPIENT_STATUSES = ("sent", "refused", "deferred")


class ContactRow(Base):
    """Where a State's letters go: its permanent mission's address and working language."""

    __tablename__ = "contacts"

    party: Mapped[str] = mapped_column(String(3), primary_key=True)
    email: Mapped[str] = mapped_column(Text)                 # one or more addresses, comma-separated
    language: Mapped[str] = mapped_column(String(5))          # en | fr | es | zh
    mission: Mapped[str | None] = mapped_column(Text)      # the addressee, in the letter's language
    cc: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LetterRow(Base):
    """One letter: planned once (the unique key), rendered once, delivered at least once."""

    __tablename__ = "letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(240), unique=True)
    party: Mapped[str] = mapped_column(String(3), index=True)
    obligation_id: Mapped[str] = mapped_column(String(80))
    period: Mapped[str] = mapped_column(String(80))
    stage: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(40))
    due: Mapped[date] = mapped_column(Date)
    as_of: Mapped[date] = mapped_column(Date)
    language: Mapped[str] = mapped_column(String(5))
    recipients: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    reference: Mapped[str] = mapped_column(String(80))
    message_id: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)               # the RFC 5322 message as rendered once
    status: Mapped[str] = mapped_column(String(10), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    batch_id: Mapped[int | None] = mapped_column(Integer, index=True)      # the approved batch (none: before 0004)
    approved_by: Mapped[str | None] = mapped_column(Text)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


#: Batch statuses. ``planned``: awaiting review, nothing queued; ``approved``: its notes were rendered and queued.
BATCH_STATUSES = ("planned", "approved")


class BatchRow(Base):
    """A mailing of one rule pack: its items planned on one day, reviewed as a whole and approved before any note
    is queued. With several packs selected, a day's mailing is one batch per pack (migration 0008)."""

    __tablename__ = "letter_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pack: Mapped[str] = mapped_column(String(40), index=True)   # the pack whose obligations, wording and rules it takes
    as_of: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(12), index=True)
    approved_by: Mapped[str | None] = mapped_column(Text)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ItemRow(Base):
    """One planned item (party, obligation, period, stage): unique, so an item is never planned twice; the note
    that carried it once its batch was approved."""

    __tablename__ = "letter_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(240), unique=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("letter_batches.id"), index=True)
    letter_id: Mapped[int | None] = mapped_column(ForeignKey("letters.id"), index=True)
    party: Mapped[str] = mapped_column(String(3), index=True)
    obligation_id: Mapped[str] = mapped_column(String(80))
    period: Mapped[str] = mapped_column(String(80))
    stage: Mapped[str] = mapped_column(String(80))
    stage_name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(40))
    due: Mapped[date] = mapped_column(Date)
    original_due: Mapped[date] = mapped_column(Date)
    stage_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))          # the obligation's status when planned
    article: Mapped[str] = mapped_column(String(40))
    basis: Mapped[str] = mapped_column(Text)                 # the obligation's basis (rule ids), space-separated
    meeting: Mapped[str | None] = mapped_column(String(40))
    estimated: Mapped[bool] = mapped_column(Boolean)


class AttemptRow(Base):
    """One delivery attempt of one letter and its outcome."""

    __tablename__ = "letter_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    notifier: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(10))          # sent | failed
    error: Mapped[str | None] = mapped_column(Text)


class RecipientRow(Base):
    """The outcome of one letter for one address (migration 0006)."""

    __tablename__ = "letter_recipients"
    __table_args__ = (UniqueConstraint("letter_id", "address", name="uq_letter_recipient"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id"), index=True)
    address: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))         # sent | refused | deferred
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
