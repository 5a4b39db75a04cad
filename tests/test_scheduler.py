"""The scheduler: catch-up after ten days down, one scheduler per database, two checks racing on PostgreSQL."""

from __future__ import annotations

import email
import email.policy
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from engine.check import scheduler
from engine.record.contacts import set_contacts, validate
from engine.store import database as store
from engine.store.mailing import ItemRow, LetterRow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    def __init__(self):
        self.ids: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.ids.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default)["Message-ID"])
        return "250 OK"


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


def configure(tmp_path, monkeypatch, url: str, smtp_port: int | None = None, auto_send: bool = False) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[smtp]\nsecurity = "none"\ntimeout_seconds = 5\n'
                      + ('[letters]\nauto_send = true\n' if auto_send else ''))
    monkeypatch.setenv("CCM_CONFIG", str(config))
    monkeypatch.setenv("CCM_DATABASE_URL", url)
    monkeypatch.setenv("CCM_OUTPUT_FOLDER", str(tmp_path / "out"))
    if smtp_port:
        monkeypatch.setenv("CCM_NOTIFIER", "smtp")
        monkeypatch.setenv("CCM_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("CCM_SMTP_PORT", str(smtp_port))
    monkeypatch.setenv("CCM_RECEIPTS_COMPLETE_FROM", "2010-08-01")   # an ISU with its whole record of receipts
    store.upgrade(url)
    # South Sudan only: its initial report fell due on 30 July 2024.
    set_contacts(url, [validate("SSD", "mission@ssd.example", "en")])


def letters(url) -> list[ItemRow]:
    """South Sudan's items that went out in a note, in order."""
    with store.reader_session(url) as session:
        return list(session.scalars(sa.select(ItemRow).join(LetterRow, LetterRow.id == ItemRow.letter_id)
                                    .where(ItemRow.party == "SSD").order_by(ItemRow.id)))


def test_down_for_ten_days_the_scheduler_catches_up_with_one_check_and_each_due_letter_once(tmp_path, monkeypatch,
                                                                                            smtp_server):
    url = f"sqlite:///{tmp_path / 'ccm.sqlite'}"
    configure(tmp_path, monkeypatch, url, smtp_server.port, auto_send=True)
    first = scheduler.daily_job("2024-07-25")            # the courtesy notice (due 30 June) goes out
    assert [letter.stage for letter in letters(url)] == ["courtesy"] and first.steps["letters"].no_contact
    # Down from 26 July to 4 August: the first reminder (31 July) is due; sent once, on return.
    back = scheduler.daily_job("2024-08-04")
    assert [letter.stage for letter in letters(url)] == ["courtesy", "reminder1"]
    again = scheduler.daily_job("2024-08-04")
    assert again.steps["letters"].queued == 0 and again.steps["letters"].sent == 0
    assert len(smtp_server.ids) == len(set(smtp_server.ids)) == back.steps["letters"].sent + first.steps["letters"].sent
    with store.reader_session(url) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(store.CheckRunRow)) == 3


def test_a_daily_job_missed_for_ten_days_runs_once_when_the_scheduler_starts(tmp_path, monkeypatch):
    """APScheduler itself: coalesce and the misfire grace turn ten missed runs into one."""
    url = f"sqlite:///{tmp_path / 'ccm.sqlite'}"
    configure(tmp_path, monkeypatch, url)
    from notifiers.config import load_letters_config

    sched = scheduler.build_scheduler(url, load_letters_config(), blocking=False)
    sched.start(paused=True)
    try:
        job = sched.get_job(scheduler.DAILY_JOB_ID)
        assert job.func_ref == scheduler.DAILY_JOB and job.coalesce and job.misfire_grace_time >= 10 * 86400
        job.modify(next_run_time=datetime.now(UTC) - timedelta(days=10))
        sched.resume()
        deadline = time.time() + 60
        while time.time() < deadline:
            with store.reader_session(url) as session:
                runs = session.scalar(sa.select(sa.func.count()).select_from(store.CheckRunRow))
            if runs and sched.get_job(scheduler.DAILY_JOB_ID).next_run_time > datetime.now(UTC):
                break
            time.sleep(0.2)
        time.sleep(1)
        with store.reader_session(url) as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(store.CheckRunRow)) == 1
        assert "apscheduler_jobs" in sa.inspect(store.get_engine(url)).get_table_names()
    finally:
        sched.shutdown(wait=True)
        store.dispose_engines()


def test_jobs_keep_their_fixed_ids_when_the_scheduler_is_built_again(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'ccm.sqlite'}"
    configure(tmp_path, monkeypatch, url)
    from notifiers.config import load_letters_config

    for _ in range(2):
        sched = scheduler.build_scheduler(url, load_letters_config(), blocking=False)
        sched.start(paused=True)
        ids = sorted(j.id for j in sched.get_jobs())
        sched.shutdown(wait=False)
    assert ids == sorted([scheduler.DAILY_JOB_ID, scheduler.RETRY_JOB_ID])
    store.dispose_engines()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_second_scheduler_on_the_same_database_refuses_to_start(tmp_path, monkeypatch, backend, request):
    url = f"sqlite:///{tmp_path / 'ccm.sqlite'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    configure(tmp_path, monkeypatch, url)
    with scheduler.scheduler_lock(url):
        with pytest.raises(scheduler.SchedulerAlreadyRunning, match="another scheduler is already running"), \
                scheduler.scheduler_lock(url):
            pass
        code = "from engine.cli.main import app; app()"
        result = subprocess.run([sys.executable, "-c", code, "schedule", "run"], check=False, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 3           # an operational failure, not a mistake in the input
        assert "another scheduler is already running" in " ".join(result.stderr.split())
        assert "pid" in result.stderr
    with scheduler.scheduler_lock(url):       # released: it can be taken again
        pass
    store.dispose_engines()


@pytest.mark.postgres
def test_two_checks_racing_on_postgresql_send_each_letter_once(tmp_path, monkeypatch, postgres_url, smtp_server):
    configure(tmp_path, monkeypatch, postgres_url, smtp_server.port, auto_send=True)
    set_contacts(postgres_url, [validate("SSD", "mission@ssd.example", "en"), validate("LBN", "lb@lebanon.example", "fr"),
                                validate("TCD", "td@chad.example", "fr")])
    code = "from engine.check.scheduler import daily_job; print(daily_job('2025-08-16'))"
    processes = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    with store.reader_session(postgres_url) as session:
        rows = list(session.scalars(sa.select(LetterRow)))
        runs = session.scalar(sa.select(sa.func.count()).select_from(store.CheckRunRow))
    assert runs == 2 and rows and all(r.status == "sent" for r in rows)
    assert sorted(smtp_server.ids) == sorted(r.message_id for r in rows)       # each letter once
