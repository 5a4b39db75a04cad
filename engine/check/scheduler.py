"""The scheduler process (APScheduler 3.x): the daily check, then the letters, at the configured UTC time.

One BlockingScheduler with a SQLAlchemyJobStore on the configured database; fixed job ids,
jobs referenced by text ("engine.check.scheduler:daily_job"), replace_existing, coalesce and a long
misfire grace, so a scheduler that was down for days runs the daily job once when it comes back
(and the planner, working "as of" today, sends each due letter once). A lock held while it runs
(a PostgreSQL advisory lock, or a lock file beside a SQLite database) makes a second scheduler on
the same database refuse to start. Nothing here runs at import.
"""

from __future__ import annotations

import fcntl
import functools
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from engine.check.run import check_and_digest
from engine.check.treaties import check_treaties
from engine.core import packs
from engine.registry.shared import shared_evaluator, shared_treaties
from engine.runtime.errors import OperationalFailure
from engine.runtime.logs import get
from engine.runtime.plugins import DailyRun, StepResult, load_plugins
from engine.runtime.settings import load_settings
from engine.store import database as store
from engine.store.database import SchedulerLockRow, safe_url

DAILY_JOB_ID = "ccm-daily"
RETRY_JOB_ID = "ccm-retry-deliveries"
DAILY_JOB = "engine.check.scheduler:daily_job"
RETRY_JOB = "engine.check.scheduler:retry_job"
SCHEDULER_LOCK_KEY = 0x434D02
JOBS_TABLE = "apscheduler_jobs"


class SchedulerAlreadyRunning(OperationalFailure):
    """Another scheduler holds the lock on this database; the message says who (exit status 3)."""


@dataclass
class DailyResult:
    as_of: date
    check_run_id: int
    attention: bool = False              # the check found something that needs attention
    digest: tuple[Path, Path] | None = None
    steps: dict[str, StepResult] = field(default_factory=dict)     # each plugin's daily step, by plugin name
    check_runs: dict[str, int] | None = None   # with several packs: each pack's check run, in the packs' order


@dataclass
class PeriodicResult:
    steps: dict[str, StepResult] = field(default_factory=dict)     # each plugin's periodic step, by plugin name


def _logged(job: str):
    """Log the job's start, its end with its outcome, or its failure with the traceback (then re-raise,
    so APScheduler records the failure too)."""
    def wrap(function):
        @functools.wraps(function)
        def run(*args, **kwargs):
            log = get("scheduler")
            log.info("job %s started", job, extra={"event": "job_start", "job": job})
            started = time.perf_counter()
            try:
                result = function(*args, **kwargs)
            except Exception as error:
                log.exception("job %s failed after %.1f s", job, time.perf_counter() - started,
                              extra={"event": "job_end", "job": job, "outcome": "failed", "error": str(error)})
                raise
            outcome = _outcome(result)
            log.info("job %s finished in %.1f s: %s", job, time.perf_counter() - started, outcome,
                     extra={"event": "job_end", "job": job, "outcome": "ok", "result": outcome})
            return result
        return run
    return wrap


def _outcome(result: DailyResult | PeriodicResult) -> str:
    steps = "; ".join(step.summary() for step in result.steps.values())
    if isinstance(result, DailyResult):
        return (f"check run {result.check_run_id} as of {result.as_of.isoformat()}"
                f" ({'needs attention' if result.attention else 'nothing needs attention'}), digest "
                f"{result.digest[0] if result.digest else 'not written'}" + (f"; {steps}" if steps else ""))
    return steps or "no periodic step"


@_logged("daily")
def daily_job(as_of: str | None = None) -> DailyResult:
    """The daily check with its digest files (as ``ccm check``: with several packs, every selected
    pack's check in one transaction, one digest), then each plugin's daily step with every selected
    pack's evaluator (the letters: plan a batch per pack and, unless they await the coordinator's
    approval, queue and deliver their notes), as of ``as_of`` (YYYY-MM-DD; default today, UTC)."""
    settings = load_settings()
    day = date.fromisoformat(as_of) if as_of else datetime.now(UTC).date()
    url = settings.database_url
    if store.current_revision(url) != store.head_revision():
        store.upgrade(url)
    evaluator = _evaluator(settings.backend, settings.complete_from, settings.packs)
    tr = shared_treaties(settings.backend, settings.complete_from, settings.packs)
    if tr.several:   # every selected pack's check in one transaction, one digest (as ``ccm check``)
        checks, contexts, paths = check_treaties(url, tr, day, settings.output_folder)
        check = checks[0]
        context = {"attention": any(c["attention"] for c in contexts)}
        runs = {c["treaty"]: result.run_id for c, result in zip(contexts, checks)}
    else:
        check, context, paths = check_and_digest(url, evaluator, day, settings.output_folder)
        runs = None
    run = DailyRun(url=url, settings=settings, treaties=tr, as_of=day)
    steps = {plugin.name: plugin.daily(run) for plugin in load_plugins() if plugin.daily is not None}
    return DailyResult(as_of=day, check_run_id=check.run_id, attention=context["attention"], digest=paths, steps=steps,
                       check_runs=runs)


@_logged("retry")
def retry_job() -> PeriodicResult:
    """Each plugin's periodic step, between daily runs (the letters: deliver the approved notes whose
    next attempt is due, and those approved since the last run)."""
    settings = load_settings()
    return PeriodicResult({plugin.name: plugin.periodic(settings) for plugin in load_plugins()
                           if plugin.periodic is not None})


def _evaluator(backend: str, receipts_complete_from=None, pack_names: tuple[str, ...] | None = None):
    return shared_evaluator(backend, receipts_complete_from, pack_names or packs.DEFAULT)


def _holder() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}"


@contextmanager
def scheduler_lock(url: str) -> Iterator[None]:
    """Hold the scheduler lock for the block, or raise SchedulerAlreadyRunning.

    PostgreSQL: a session advisory lock on a connection kept open while the block runs (released
    when the process dies). SQLite: an exclusive lock on ``<database>.scheduler-lock`` (likewise).
    The ``scheduler_lock`` row records who holds it, for the message.
    """
    engine = store.get_engine(url)
    connection = None
    handle = None
    got = False
    try:
        if store.is_sqlite(url):
            path = store.sqlite_path(url)
            lock_path = Path(f"{path}.scheduler-lock") if path else Path(".ccm-scheduler-lock")
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(lock_path, "a+")  # noqa: SIM115 - held for as long as the lock, closed in finally
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                handle = None
                raise SchedulerAlreadyRunning(_refusal(url)) from None
        else:
            connection = engine.connect()
            # Keyed by the schema too: two deployments in one PostgreSQL database do not exclude each other.
            got = bool(connection.execute(sa.text("SELECT pg_try_advisory_lock(:k, hashtext(current_schema()))"),
                                          {"k": SCHEDULER_LOCK_KEY}).scalar())
            connection.commit()
            if not got:
                raise SchedulerAlreadyRunning(_refusal(url))
        with store.writer_session(url) as session, session.begin():
            row = session.get(SchedulerLockRow, "scheduler") or SchedulerLockRow(name="scheduler")
            row.holder, row.acquired_at = _holder(), datetime.now(UTC)
            session.add(row)
        yield
    finally:
        if connection is not None and got:
            connection.execute(sa.text("SELECT pg_advisory_unlock(:k, hashtext(current_schema()))"),
                               {"k": SCHEDULER_LOCK_KEY})
            connection.commit()
        if connection is not None:
            connection.close()      # (a process that dies loses its session, and the lock with it)
        if handle is not None:
            handle.close()


def _refusal(url: str) -> str:
    try:
        with store.reader_session(url) as session:
            row = session.get(SchedulerLockRow, "scheduler")
        who = f" ({row.holder}, since {row.acquired_at:%Y-%m-%d %H:%M} UTC)" if row else ""
    except sa.exc.SQLAlchemyError:      # the holder is a detail: the refusal stands without it
        who = ""
    return (f"another scheduler is already running on the database {store.safe_url(url)}{who}; "
            "only one may run at a time. Stop it first, or use it: it runs the daily check and sends the letters.")


def build_scheduler(url: str, config, blocking: bool = True):
    """The scheduler with its two jobs (not started). ``config`` has a ``scheduler`` with its hour,
    minute, retry interval and misfire grace (notifiers.config.LettersConfig reads them)."""
    cls = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = cls(jobstores={"default": SQLAlchemyJobStore(engine=store.get_engine(url), tablename=JOBS_TABLE)},
                    job_defaults={"coalesce": True, "max_instances": 1,
                                  "misfire_grace_time": config.scheduler.misfire_grace_seconds},
                    timezone=UTC)
    scheduler.add_job(DAILY_JOB, CronTrigger(hour=config.scheduler.hour, minute=config.scheduler.minute,
                                             timezone=UTC),
                      id=DAILY_JOB_ID, name="daily check, then letters", replace_existing=True)
    scheduler.add_job(RETRY_JOB, IntervalTrigger(minutes=config.scheduler.retry_every_minutes, timezone=UTC),
                      id=RETRY_JOB_ID, name="retry failed deliveries", replace_existing=True)
    return scheduler


def run(url: str, config) -> None:
    """Start the blocking scheduler under the lock (raises SchedulerAlreadyRunning)."""
    log = get("scheduler")
    with scheduler_lock(url):
        scheduler = build_scheduler(url, config)
        log.info("scheduler started (%s) on %s: daily check and letters at %02d:%02d UTC, retries every %d min",
                 _holder(), safe_url(url), config.scheduler.hour, config.scheduler.minute,
                 config.scheduler.retry_every_minutes, extra={"event": "scheduler_start"})
        try:
            scheduler.start()
        finally:
            log.info("scheduler stopped", extra={"event": "scheduler_stop"})
