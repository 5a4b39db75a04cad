"""What an operator asks first (``ccm status``, ``/api/status``, ``/healthz``): is the database there, when
did the check last run and how did it end, when is the next run, what letters wait, who holds the
scheduler lock, which rulebook and registry are in use. Reads only; never creates a database.
"""

from __future__ import annotations

import fcntl
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from engine.check.scheduler import DAILY_JOB_ID, JOBS_TABLE, SCHEDULER_LOCK_KEY
from engine.store import database as store


def database_state(url: str) -> dict[str, Any]:
    """{"url", "created", "reachable", "schema", "schema_current", "error"}; an absent SQLite file is
    not created (and not reachable)."""
    state: dict[str, Any] = {"url": store.safe_url(url), "created": True, "reachable": False, "schema": None,
                             "schema_current": False, "error": None}
    if not store.database_exists(url):
        state["created"] = False
        state["error"] = f"no database file at {store.sqlite_path(url)}; create it with `ccm init`"
        return state
    try:
        with store.get_engine(url).connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        state["reachable"] = True
        state["schema"] = store.current_revision(url)
        state["schema_current"] = state["schema"] == store.head_revision()
        if state["schema"] is None:
            state["error"] = "the database has no schema; run `ccm init`"
        elif not state["schema_current"]:
            state["error"] = f"schema {state['schema']} is not the newest ({store.head_revision()}); run `ccm db upgrade`"
    except sa.exc.SQLAlchemyError as error:
        orig = getattr(error, "orig", None) or error
        lines = [line for line in str(orig).strip().splitlines() if line.strip()]
        state["error"] = lines[0].strip() if lines else type(error).__name__
    return state


def last_check(url: str, window_days: int = 90) -> dict[str, Any] | None:
    """The last committed check run: when, as of which day, its counts, and how many obligations
    it left overdue or due within ``window_days``."""
    with store.reader_session(url) as session:
        run = session.scalars(sa.select(store.CheckRunRow).order_by(store.CheckRunRow.id.desc()).limit(1)).first()
        if run is None:
            return None
        rows = store.ObligationRow
        overdue = session.scalar(sa.select(sa.func.count()).where(rows.status == "overdue"))
        upcoming = session.scalar(sa.select(sa.func.count()).where(
            rows.status == "pending", rows.due >= run.as_of, rows.due <= run.as_of + timedelta(days=window_days)))
    counts = dict(run.counts or {})
    errors = int(counts.get("errors", 0))
    return {"run_id": run.id, "as_of": run.as_of.isoformat(), "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at),
            "outcome": ("completed" if not errors else f"completed, {errors} part{'y' if errors == 1 else 'ies'} not evaluated"),
            "counts": {k: v for k, v in counts.items() if k != "registry_hash"}, "overdue": overdue,
            f"due_within_{window_days}_days": upcoming, "rulebook_hash": run.rulebook_hash,
            "registry_hash": counts.get("registry_hash")}


def next_run(url: str, hour: int, minute: int, now: datetime | None = None) -> dict[str, Any]:
    """The daily job's next run: from the scheduler's job store when it holds the job, else the next
    [scheduler] time (UTC) after ``now``."""
    now = now or datetime.now(UTC)
    try:
        with store.reader_session(url) as session:
            if sa.inspect(session.get_bind()).has_table(JOBS_TABLE):
                stamp = session.execute(sa.text(f"SELECT next_run_time FROM {JOBS_TABLE} WHERE id = :id"),
                                        {"id": DAILY_JOB_ID}).scalar()
                if stamp is not None:
                    return {"at": _iso(datetime.fromtimestamp(float(stamp), UTC)), "from": "scheduler job store"}
    except sa.exc.SQLAlchemyError:
        pass
    at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if at <= now:
        at += timedelta(days=1)
    return {"at": _iso(at), "from": "[scheduler] time"}


def letters(url: str) -> dict[str, int]:
    """How many letters are in each delivery status (every status present, plus queued, failed, sent)."""
    counts = {"queued": 0, "failed": 0, "sent": 0}
    with store.reader_session(url) as session:
        tables = set(sa.inspect(session.get_bind()).get_table_names())
        if "letters" not in tables:
            return counts
        for status, count in session.execute(sa.text("SELECT status, count(*) FROM letters GROUP BY status")):
            counts[status] = count
        if {"letter_batches", "letter_items"} <= tables:     # planned mailings wait for the coordinator's approval
            batches, notes = session.execute(sa.text(
                "SELECT count(DISTINCT b.id), count(DISTINCT i.batch_id || ':' || i.party) FROM letter_batches b "
                "LEFT JOIN letter_items i ON i.batch_id = b.id WHERE b.status = 'planned'")).one()
            counts["awaiting_approval"] = notes
            counts["batches_awaiting_approval"] = batches
    return counts


def scheduler_lock(url: str) -> dict[str, Any]:
    """Who last took the scheduler lock, and whether it is held now."""
    held: bool | None = None
    if store.is_sqlite(url):
        path = store.sqlite_path(url)
        lock_path = path.with_name(path.name + ".scheduler-lock") if path else None
        held = False
        if lock_path is not None and lock_path.exists():
            with open(lock_path, "a+") as handle:
                try:   # a shared lock is refused while the scheduler holds its exclusive one
                    fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    fcntl.flock(handle, fcntl.LOCK_UN)
                except BlockingIOError:
                    held = True
    with store.reader_session(url) as session:
        if held is None:
            held = bool(session.execute(sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = :k "
                "AND objid = hashtext(current_schema())::oid AND objsubid = 2 AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"), {"k": SCHEDULER_LOCK_KEY}).scalar())
        row = None
        if sa.inspect(session.get_bind()).has_table("scheduler_lock"):
            row = session.execute(sa.text("SELECT holder, acquired_at FROM scheduler_lock WHERE name = 'scheduler'")).first()
    return {"held": held, "holder": row[0] if row and held else None,
            "last_holder": row[0] if row else None, "since": _iso(row[1]) if row and held else None}


DEFAULT_TIME = "06:00"     # as notifiers/templates/defaults.toml


def gather(settings, evaluator) -> dict[str, Any]:
    """The status as ``ccm status --json`` prints it and ``/api/status`` serves it."""
    hour, _, minute = str(settings.file_data.get("scheduler", {}).get("time", DEFAULT_TIME)).partition(":")
    return collect(settings, int(hour), int(minute or 0), evaluator.rulebook.hash, evaluator.registry.hash)


def collect(settings, hour: int, minute: int, rulebook_hash: str, registry_hash: str) -> dict[str, Any]:
    """The whole status; the database parts are None when it cannot be read."""
    url = settings.database_url
    database = database_state(url)
    status: dict[str, Any] = {
        "database": database, "config": str(settings.config_path) if settings.config_path else None,
        "rulebook_hash": rulebook_hash, "registry_hash": registry_hash,
        "last_check": None, "next_run": None, "letters": None, "scheduler_lock": None,
    }
    if database["reachable"] and database["schema"] is not None:
        status["last_check"] = last_check(url)
        status["letters"] = letters(url)
        status["scheduler_lock"] = scheduler_lock(url)
        status["next_run"] = next_run(url, hour, minute)
    else:
        at = datetime.now(UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)
        at += timedelta(days=1) if at <= datetime.now(UTC) else timedelta(0)
        status["next_run"] = {"at": _iso(at), "from": "[scheduler] time"}
    check = status["last_check"]
    status["stale_registry"] = bool(check and check["registry_hash"] and check["registry_hash"] != registry_hash)
    status["stale_rulebook"] = bool(check and check["rulebook_hash"] != rulebook_hash)
    status["attention"] = attention(status)
    return status


def attention(status: dict[str, Any]) -> list[str]:
    """What an operator should look at, one phrase each (empty: all well)."""
    items = []
    database = status["database"]
    if not database["reachable"] or database["error"]:
        items.append(f"database: {database['error']}")
        return items
    check = status["last_check"]
    if check is None:
        items.append("no check has run yet")
    else:
        if check["counts"].get("errors"):
            items.append(f"the last check could not evaluate {check['counts']['errors']} part(ies)")
        if date.fromisoformat(check["as_of"]) < datetime.now(UTC).date() - timedelta(days=1):
            items.append(f"the last check is as of {check['as_of']}, more than a day ago")
    run = status["next_run"]
    if run and run["from"] == "scheduler job store" and datetime.fromisoformat(run["at"]) < datetime.now(UTC):
        items.append(f"the scheduler's next run ({run['at']}) is past: is the scheduler running?")
    if status["letters"] and status["letters"].get("failed"):
        items.append(f"{status['letters']['failed']} letter(s) failed to be delivered")
    if status["letters"] and status["letters"].get("batches_awaiting_approval"):
        items.append(f"{status['letters']['batches_awaiting_approval']} batch(es) of letters await approval "
                     "(ccm letters preview BATCH, then ccm letters approve BATCH --by NAME)")
    if status["stale_rulebook"] or status["stale_registry"]:
        items.append("the rulebook or registry changed since the last check")
    return items


def _iso(value: datetime | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):    # SQLite, read with plain SQL, hands back the stored text
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:      # SQLite hands back naive datetimes; they were stored in UTC
        value = value.replace(tzinfo=UTC)
    return value.isoformat(timespec="seconds")
