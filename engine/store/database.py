"""The record's storage: SQLAlchemy 2 typed models, engines and sessions, schema migrations.

SQLite (a file, the default) and PostgreSQL (``CCM_DATABASE_URL=postgresql+psycopg://...``)
are both supported. The schema is owned by Alembic (``engine/store/migrations``), configured here
in code so that it works from an installed package without an ``alembic.ini``.

Tables:

* ``recorded_events``: what the ISU recorded (reports received, requests, decisions, ...).
  Rows are never deleted: a correction is a new row, and the old one's ``superseded_by``
  names it.
* ``obligations``: the materialised result of the last ``ccm check``, one row per
  (party, obligation id, period), with provenance and the rulebook hash.
* ``obligation_changes``: the change log, appended by each check run.
* ``check_runs``: one row per committed ``ccm check`` and pack (several packs: one row each).
* ``scheduler_lock``: who holds the scheduler's lock (the lock itself is advisory or a file lock).
* ``contacts``, ``letter_*``, ``letters``: the letters' contacts, batches and delivery log (models in
  engine/store/mailing.py; the behaviour is in notifiers/).

``obligations``, ``obligation_changes`` and ``check_runs`` carry the rule ``pack``; a check
of one pack reads and writes only that pack's rows.
* ``registry_*``: a copy of the registry's files for SQL users and reports, loaded by
  ``ccm init`` and refreshed by ``ccm check`` (models in engine/store/snapshot.py); the
  engine reads the files, never this copy.
* ``alembic_version``: the schema version (Alembic's own table).
"""

from __future__ import annotations

import ast
import threading
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"   # Alembic's default, as engine/store/migrations/env.py leaves it
#: The key of the PostgreSQL advisory lock that serialises ``ccm check`` runs.
CHECK_LOCK_KEY = 0x43434D01


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}
    # Each mapped class maps a Table (DeclarativeBase types it as any FromClause): insert() and delete() take it.
    __table__: ClassVar[sa.Table]


def _pack_of_row(context) -> str:
    """A row written without its pack takes the prefix of its obligation id (``<pack>.<article>.<role>``)."""
    return str(context.get_current_parameters()["obligation_id"]).split(".", 1)[0]


class RecordedEventRow(Base):
    """One thing the ISU recorded about a party. Never deleted; corrected by superseding."""

    __tablename__ = "recorded_events"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    party: Mapped[str] = mapped_column(String(3), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    on: Mapped[date] = mapped_column(Date)
    period: Mapped[str | None] = mapped_column(String(80))
    symbol: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    recorded_by: Mapped[str | None] = mapped_column(String(120))
    comment: Mapped[str | None] = mapped_column(Text)
    superseded_by: Mapped[str | None] = mapped_column(String(80), ForeignKey("recorded_events.id"))


class ObligationRow(Base):
    """One obligation of one party as the last check computed it."""

    __tablename__ = "obligations"
    __table_args__ = (UniqueConstraint("party", "obligation_id", "period", name="uq_obligation"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    party: Mapped[str] = mapped_column(String(3))
    pack: Mapped[str] = mapped_column(String(40), index=True, default=_pack_of_row)   # the rule pack
    obligation_id: Mapped[str] = mapped_column(String(80))
    period: Mapped[str] = mapped_column(String(80), default="")
    article: Mapped[str] = mapped_column(String(80))
    due: Mapped[date] = mapped_column(Date)
    original_due: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), index=True)
    status_reason: Mapped[str] = mapped_column(Text)
    meeting: Mapped[str | None] = mapped_column(String(40))
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON)
    rulebook_hash: Mapped[str] = mapped_column(String(64))
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    check_run_id: Mapped[int | None] = mapped_column(Integer)


class ChangeRow(Base):
    """What moved in one check: a field of one obligation, from what to what, and why."""

    __tablename__ = "obligation_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    check_run_id: Mapped[int] = mapped_column(ForeignKey("check_runs.id"), index=True)
    party: Mapped[str] = mapped_column(String(3))
    pack: Mapped[str] = mapped_column(String(40), index=True, default=_pack_of_row)   # one treaty's log
    obligation_id: Mapped[str] = mapped_column(String(80))
    period: Mapped[str] = mapped_column(String(80), default="")
    field: Mapped[str] = mapped_column(String(20))          # new | removed | due | original_due | status
    old: Mapped[str | None] = mapped_column(Text)
    new: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CheckRunRow(Base):
    """One committed ``ccm check``."""

    __tablename__ = "check_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    as_of: Mapped[date] = mapped_column(Date)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rulebook_hash: Mapped[str] = mapped_column(String(64))
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    pack: Mapped[str | None] = mapped_column(String(40))          # NULL: a run stored before runs were keyed by pack


class SchedulerLockRow(Base):
    """Who holds the scheduler lock (for the refusal message); the lock itself is an advisory/file lock."""

    __tablename__ = "scheduler_lock"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(Text)
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# ----------------------------------------------------------------------------- engines

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, or None (memory, or not SQLite)."""
    if not is_sqlite(url):
        return None
    database = make_url(url).database
    if not database or database == ":memory:":
        return None
    return Path(database)


def database_exists(url: str) -> bool:
    """For SQLite: the file exists. For a server: assumed (connecting tells)."""
    path = sqlite_path(url)
    return path.exists() if path is not None else True


def get_engine(url: str) -> Engine:
    """One engine per URL per process. SQLite: a 60 s busy timeout and explicit BEGIN so that
    ``begin_immediate`` can take the write lock at the start of a transaction."""
    with _lock:
        if url in _engines:
            return _engines[url]
        if is_sqlite(url):
            engine = sa.create_engine(url, connect_args={"timeout": 60})

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_connection, _record):  # pragma: no cover - driver hook
                dbapi_connection.isolation_level = None     # we emit BEGIN ourselves
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.close()

            @event.listens_for(engine, "begin")
            def _on_begin(connection):  # pragma: no cover - driver hook
                immediate = connection.get_execution_options().get("begin_immediate")
                connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
        else:
            engine = sa.create_engine(url, pool_pre_ping=True)
        _engines[url] = engine
        return engine


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def writer_session(url: str) -> Session:
    """A session for a writing transaction: SQLite takes its write lock at BEGIN."""
    engine = get_engine(url)
    if is_sqlite(url):
        engine = engine.execution_options(begin_immediate=True)
    return Session(engine, expire_on_commit=False)


def reader_session(url: str) -> Session:
    return Session(get_engine(url), expire_on_commit=False)


def lock_for_check(session: Session) -> None:
    """Serialise check runs: PostgreSQL advisory transaction lock (SQLite: BEGIN IMMEDIATE did)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHECK_LOCK_KEY})


# ----------------------------------------------------------------------------- migrations

class DatabaseNotInitialised(RuntimeError):
    """The database has no schema (or an old one); the message says which command fixes it."""


def alembic_config(connection: sa.Connection | None = None):
    # lazy: Alembic is slow to import, and a check on a current database never needs it (tests/test_store.py)
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest schema version: read from the migration files' ``revision`` and
    ``down_revision`` assignments without importing Alembic (a ``ccm check`` needs only this
    and the stored version); Alembic answers when the files are not that simple."""
    head = _head_from_files()
    if head is not None:
        return head
    # lazy: Alembic only when the version files cannot be read as plain constants
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"the migrations in {MIGRATIONS} have no head revision; the package is incomplete")
    return head


@lru_cache(maxsize=1)
def _head_from_files() -> str | None:
    """The single head of the migration graph, if every version file assigns ``revision`` and
    ``down_revision`` plain constants (a string, None, or a tuple of strings); else None."""
    revisions: dict[str, tuple[str, ...]] = {}
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError):
            return None
        found: dict[str, object] = {}
        for node in tree.body:
            target, value = None, None
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                target, value = node.targets[0].id, node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                target, value = node.target.id, node.value
            if target in ("revision", "down_revision") and value is not None:
                try:
                    found[target] = ast.literal_eval(value)
                except ValueError:
                    return None
        revision, down = found.get("revision"), found.get("down_revision", "missing")
        if not isinstance(revision, str) or revision in revisions:
            return None
        if down is None:
            revisions[revision] = ()
        elif isinstance(down, str):
            revisions[revision] = (down,)
        elif isinstance(down, (tuple, list)) and all(isinstance(d, str) for d in down):
            revisions[revision] = tuple(down)
        else:
            return None
    parents = {d for downs in revisions.values() for d in downs}
    if not parents <= set(revisions):
        return None
    heads = [r for r in revisions if r not in parents]
    return heads[0] if len(heads) == 1 else None


def current_revision(url: str) -> str | None:
    """The schema version stored in the database, or None when it has none (or no file).

    Read with one query of Alembic's version table (Alembic itself is slow to import);
    Alembic answers when the table holds more than one version (branches)."""
    if not database_exists(url):
        return None
    with get_engine(url).connect() as connection:
        if not sa.inspect(connection).has_table(VERSION_TABLE):
            return None
        versions = connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
        if len(versions) <= 1:
            return versions[0] if versions else None
        from alembic.runtime.migration import (
            MigrationContext,  # lazy: Alembic is slow to import (see above)
        )

        return MigrationContext.configure(connection).get_current_revision()


def upgrade(url: str) -> tuple[str | None, str]:
    """Create (SQLite: with its parent folders) and migrate the database to the newest schema.

    Idempotent. Returns (revision before, revision after).
    """
    from alembic import command  # lazy: Alembic is slow to import (see alembic_config)

    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    before = current_revision(url)
    engine = get_engine(url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
    return before, head_revision()


_READ = object()


def require_current(url: str, current: str | None | object = _READ) -> None:
    """Raise DatabaseNotInitialised unless the schema is at the newest version (``current``:
    the stored version when the caller has just read it)."""
    if current is _READ:
        current = current_revision(url)
    if current is None:
        raise DatabaseNotInitialised(f"the database {safe_url(url)} is not initialised; run `ccm init`")
    if current != head_revision():
        raise DatabaseNotInitialised(
            f"the database {safe_url(url)} has schema version {current}, this program needs {head_revision()}; "
            "run `ccm db upgrade`")


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # pragma: no cover - unparsable URL
        return url
