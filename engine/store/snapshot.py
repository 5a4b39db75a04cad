"""A snapshot of the registry in the database: one table per registry file, and one row saying
which registry (by its hash) the tables hold.

The registry's files stay the source of truth: the engine reads them, never these tables. The
copy is for SQL users and reports (a join of obligations with participants, a list of
decisions with their sources). ``ccm init`` loads it and every ``ccm check`` refreshes it, in
the check's own transaction, whenever the registry's hash differs from the stored one; when it
is the same, the refresh is one query. Each row keeps its sources, ``' ; '``-joined as in the
files (an item with a title is written ``Title <href>``; :func:`engine.core.model.parse_sources`
reads them back).

The schema is created by the migrations engine/store/migrations/versions/0003_registry_snapshot.py,
0004_registry_record_observations.py and 0009_registry_participants_effective_from.py;
these models must stay equal to it (tests/test_store.py compares them once this module is
imported, which the migration does).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Integer,
    String,
    Text,
    delete,
    insert,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.core.model import SOURCE_SEPARATOR, Registry, Source
from engine.store.database import Base, utcnow

__all__ = [
    "RegistryCompletionRow",
    "RegistryDecisionRow",
    "RegistryDeclarationRow",
    "RegistryMeetingRow",
    "RegistryObservationRow",
    "RegistryParticipantRow",
    "RegistryReceiptRow",
    "RegistryRequestRow",
    "RegistrySnapshotRow",
    "load_snapshot",
    "snapshot_hash",
]


class RegistryParticipantRow(Base):
    """A row of participants.csv."""

    __tablename__ = "registry_participants"

    iso3: Mapped[str] = mapped_column(String(3), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    signature_date: Mapped[date | None] = mapped_column(Date)
    instrument: Mapped[str | None] = mapped_column(String(20))
    deposit_date: Mapped[date | None] = mapped_column(Date)
    provisional_application_date: Mapped[date | None] = mapped_column(Date)
    withdrawal_effective_date: Mapped[date | None] = mapped_column(Date)
    evidence: Mapped[str] = mapped_column(Text)
    notes: Mapped[str] = mapped_column(Text)
    sources: Mapped[str] = mapped_column(Text)
    effective_from: Mapped[date | None] = mapped_column(Date)   # 0009: a succession's stated date of effect


class RegistryMeetingRow(Base):
    """A row of meetings.csv."""

    __tablename__ = "registry_meetings"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(Text)
    city: Mapped[str] = mapped_column(Text)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    date_precision: Mapped[str] = mapped_column(String(10))
    notes: Mapped[str] = mapped_column(Text)
    sources: Mapped[str] = mapped_column(Text)
    announced_start_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), server_default="held")


class RegistryDeclarationRow(Base):
    """A row of declarations.csv: a State's position under one article, or a published finding beside it."""

    __tablename__ = "registry_declarations"

    iso3: Mapped[str] = mapped_column(String(3), primary_key=True)
    article: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    position: Mapped[str] = mapped_column(String(40), primary_key=True)   # a finding stands beside the position (0010)
    end_of_hostilities: Mapped[date | None] = mapped_column(Date)
    quantity: Mapped[str] = mapped_column(Text)
    retains: Mapped[bool | None] = mapped_column(Boolean)          # None: unknown (or not given)
    retention_ended: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str] = mapped_column(Text)
    sources: Mapped[str] = mapped_column(Text)


class RegistryCompletionRow(Base):
    """A row of completions.csv."""

    __tablename__ = "registry_completions"

    iso3: Mapped[str] = mapped_column(String(3), primary_key=True)
    article: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    completed_on: Mapped[date] = mapped_column(Date)
    precision: Mapped[str] = mapped_column(String(10))
    declared_at: Mapped[str | None] = mapped_column(String(40))
    declared_text: Mapped[str] = mapped_column(Text)
    notes: Mapped[str] = mapped_column(Text)
    sources: Mapped[str] = mapped_column(Text)


class RegistryDecisionRow(Base):
    """A row of decisions.csv (e.g. an extension granting a new deadline)."""

    __tablename__ = "registry_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    iso3: Mapped[str] = mapped_column(String(3))
    article: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    meeting: Mapped[str] = mapped_column(String(40))
    decided_on: Mapped[date] = mapped_column(Date)
    decided_precision: Mapped[str] = mapped_column(String(10))
    granted_deadline: Mapped[date] = mapped_column(Date)
    document: Mapped[str] = mapped_column(String(200))
    inferred: Mapped[bool] = mapped_column(Boolean)
    notes: Mapped[str] = mapped_column(Text)
    sources: Mapped[str] = mapped_column(Text)


class RegistryRequestRow(Base):
    """A row of requests.csv: an extension request known to have been submitted for a meeting."""

    __tablename__ = "registry_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    iso3: Mapped[str] = mapped_column(String(3))
    article: Mapped[int] = mapped_column(Integer)
    meeting: Mapped[str] = mapped_column(String(40))
    submitted_on: Mapped[date] = mapped_column(Date)      # the meeting's opening when only "before" it is known
    submitted_precision: Mapped[str] = mapped_column(String(10))
    requested_deadline: Mapped[date | None] = mapped_column(Date)
    document: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str] = mapped_column(Text)
    sources: Mapped[str] = mapped_column(Text)


class RegistryObservationRow(Base):
    """A row of observations.csv: a dated public list of outstanding reports."""

    __tablename__ = "registry_observations"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    observed_on: Mapped[date] = mapped_column(Date)
    observed_until: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(20))
    period: Mapped[str | None] = mapped_column(String(10))
    complete: Mapped[bool] = mapped_column(Boolean)
    outstanding: Mapped[str] = mapped_column(Text)        # ISO3 codes, space separated, as in the file
    observer: Mapped[str] = mapped_column(Text)
    phrase: Mapped[str] = mapped_column(Text)
    notes: Mapped[str] = mapped_column(Text)
    sources: Mapped[str] = mapped_column(Text)


class RegistryReceiptRow(Base):
    """A row of receipts.csv: a date of receipt a public source states."""

    __tablename__ = "registry_receipts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    iso3: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(20))
    period: Mapped[str | None] = mapped_column(String(10))
    received_on: Mapped[date] = mapped_column(Date)
    precision: Mapped[str] = mapped_column(String(10))
    observer: Mapped[str] = mapped_column(Text)
    phrase: Mapped[str] = mapped_column(Text)
    notes: Mapped[str] = mapped_column(Text)
    sources: Mapped[str] = mapped_column(Text)


class RegistrySnapshotRow(Base):
    """Which registry the tables hold: its hash, when it was loaded and how many rows of each."""

    __tablename__ = "registry_snapshot"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)


#: The snapshot's tables, children first (the order rows are deleted in).
TABLES: tuple[type[Base], ...] = (
    RegistryReceiptRow, RegistryObservationRow, RegistryRequestRow, RegistryDecisionRow, RegistryCompletionRow,
    RegistryDeclarationRow, RegistryMeetingRow, RegistryParticipantRow, RegistrySnapshotRow)


def join_sources(sources: Iterable[Source]) -> str:
    """The sources as the registry files write them: ``' ; '``-joined, ``Title <href>`` for a titled one."""
    return SOURCE_SEPARATOR.join(f"{s.title} <{s.href}>" if s.title else s.href for s in sources)


def snapshot_hash(session: Session) -> str | None:
    """The hash of the registry the database holds, or None when none is loaded (one query)."""
    return session.scalar(sa.select(RegistrySnapshotRow.hash).limit(1))


def snapshot_rows(registry: Registry) -> dict[type[Base], list[dict[str, Any]]]:
    """The rows of each table for a registry (the snapshot row excepted)."""
    return {
        RegistryParticipantRow: [dict(
            iso3=p.iso3, name=p.name, signature_date=p.signature_date, instrument=p.instrument,
            deposit_date=p.deposit_date, provisional_application_date=p.provisional_application_date,
            withdrawal_effective_date=p.withdrawal_effective_date, evidence=p.evidence, notes=p.notes,
            sources=join_sources(p.sources), effective_from=p.effective_from) for p in registry.participants.values()],
        RegistryMeetingRow: [dict(
            code=m.code, kind=m.kind, name=m.name, city=m.city, start_date=m.start_date, end_date=m.end_date,
            date_precision=m.date_precision, notes=m.notes, sources=join_sources(m.sources),
            announced_start_date=m.announced_start_date, status=m.status) for m in registry.meetings],
        RegistryDeclarationRow: [dict(
            iso3=d.iso3, article=d.article, position=d.position, end_of_hostilities=d.end_of_hostilities,
            quantity=d.quantity, retains=d.retains, retention_ended=d.retention_ended, notes=d.notes,
            sources=join_sources(d.sources)) for d in registry.declarations],
        RegistryCompletionRow: [dict(
            iso3=c.iso3, article=c.article, completed_on=c.completed_on, precision=c.precision,
            declared_at=c.declared_at, declared_text=c.declared_text, notes=c.notes,
            sources=join_sources(c.sources)) for c in registry.completions],
        RegistryDecisionRow: [dict(
            iso3=d.iso3, article=d.article, kind=d.kind, meeting=d.meeting, decided_on=d.decided_on,
            decided_precision=d.decided_precision, granted_deadline=d.granted_deadline, document=d.document,
            inferred=d.inferred, notes=d.notes, sources=join_sources(d.sources)) for d in registry.decisions],
        RegistryRequestRow: [dict(
            iso3=r.iso3, article=r.article, meeting=r.meeting, submitted_on=r.submitted_on,
            submitted_precision=r.submitted_precision, requested_deadline=r.requested_deadline, document=r.document,
            notes=r.notes, sources=join_sources(r.sources)) for r in registry.requests],
        RegistryObservationRow: [dict(
            id=o.id, observed_on=o.observed_on, observed_until=o.observed_until, kind=o.kind, period=o.period,
            complete=o.complete, outstanding=" ".join(sorted(o.outstanding)), observer=o.observer, phrase=o.phrase,
            notes=o.notes, sources=join_sources(o.sources)) for o in registry.observations],
        RegistryReceiptRow: [dict(
            iso3=r.iso3, kind=r.kind, period=r.period, received_on=r.received_on, precision=r.precision,
            observer=r.observer, phrase=r.phrase, notes=r.notes, sources=join_sources(r.sources)) for r in registry.receipts],
    }


def load_snapshot(session: Session, registry: Registry, now: datetime | None = None) -> bool:
    """Make the database hold this registry, in the caller's transaction: when its hash differs
    from the stored one, delete every snapshot row and insert the registry's. Returns whether it
    wrote anything (False: the database already held this registry; one query was made).

    Raises ValueError for a registry built in code (it has no hash to identify it by).
    """
    if registry.hash is None:
        raise ValueError("a registry built in code has no hash; only a registry read from files is stored")
    if snapshot_hash(session) == registry.hash:
        return False
    for model in TABLES:
        session.execute(delete(model.__table__))
    rows = snapshot_rows(registry)
    for model, values in rows.items():
        if values:
            session.execute(insert(model.__table__), values)
    counts = {model.__tablename__.removeprefix("registry_"): len(values) for model, values in rows.items()}
    session.execute(insert(RegistrySnapshotRow.__table__),
                    [dict(hash=registry.hash, loaded_at=now or utcnow(), counts=counts)])
    return True
