"""Delivery: outbox files, a real SMTP server (aiosmtpd) on loopback, failures and retries, a kill between send and record."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from engine.record.contacts import set_contacts, validate
from engine.store import database as store
from engine.store.mailing import AttemptRow, ItemRow, LetterRow
from notifiers import batches, delivery
from notifiers.base import message_id
from notifiers.config import load_letters_config
from notifiers.smtp import SmtpNotifier

AS_OF = date(2024, 7, 31)       # the day after South Sudan's initial report fell due
NOW = datetime(2024, 7, 31, 6, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """An aiosmtpd handler that keeps what it received, or answers with a chosen failure."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.reply: str | None = None       # e.g. "451 4.3.0 try later"
        self.delay = 0.0

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.reply:
            return self.reply
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        return "250 OK"

    def ids(self) -> list[str]:
        return [m["Message-ID"] for m in self.messages]


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    handler.controller = controller
    yield handler
    with contextlib.suppress(Exception):  # teardown: a server already stopped must not fail the test
        controller.stop()


@pytest.fixture
def letters_db(tmp_path, monkeypatch, record_evaluator):
    """A SQLite database with contacts for South Sudan (English) and Lebanon (Chinese, for UTF-8 subjects)."""
    url = f"sqlite:///{tmp_path / 'ccm.sqlite'}"
    monkeypatch.setenv("CCM_DATABASE_URL", url)
    monkeypatch.setenv("CCM_OUTPUT_FOLDER", str(tmp_path / "out"))
    config_file = tmp_path / "config.toml"
    # auto_send: these tests are about delivery; tests/test_batches.py reviews mailings before they go.
    config_file.write_text('[smtp]\nsecurity = "none"\ntimeout_seconds = 1\n[letters]\nretry_first_seconds = 60\n'
                           'retry_max_seconds = 3600\nauto_send = true\n')
    monkeypatch.setenv("CCM_CONFIG", str(config_file))
    monkeypatch.setenv("CCM_RECEIPTS_COMPLETE_FROM", "2010-08-01")   # an ISU with its whole record of receipts
    store.upgrade(url)
    set_contacts(url, [validate("SSD", "mission@ssd.example", "en"),
                       validate("LBN", "lb@lebanon.example", "zh", "黎巴嫩常驻联合国日内瓦办事处代表团")])
    yield url
    store.dispose_engines()


def smtp_config(port: int):
    return load_letters_config(overrides={"smtp": {"host": "127.0.0.1", "port": port}, "letters": {"notifier": "smtp", "auto_send": True}})


def rows(url):
    with store.reader_session(url) as session:
        return {r.key: r for r in session.scalars(sa.select(LetterRow))}


def only_ssd(dues):
    return [d for d in dues if d.party in ("SSD", "LBN")]


@pytest.fixture
def dues(record_evaluator):
    return only_ssd(delivery.obligations_as_of(None, record_evaluator, AS_OF))


def test_the_outbox_is_the_default_and_writes_one_eml_file_per_letter(letters_db, record_evaluator, dues, tmp_path):
    config = load_letters_config()
    assert config.notifier == "outbox" and config.outbox == tmp_path / "out" / "outbox"
    result = delivery.send(letters_db, record_evaluator, config, AS_OF, now=NOW, dues=dues)
    files = sorted(config.outbox.glob("*.eml"))
    assert len(files) == len(result.delivery.sent) == result.queued > 0
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert message["Message-ID"].startswith("<ccm-") and message.get_body(("plain",)) is not None


def test_smtp_delivers_with_the_headers_and_a_utf8_subject(letters_db, record_evaluator, dues, smtp_server):
    result = delivery.send(letters_db, record_evaluator, smtp_config(smtp_server.port), AS_OF, now=NOW, dues=dues)
    assert result.delivery.failed == [] and len(smtp_server.messages) == len(result.delivery.sent) > 1
    by_to = {m["To"]: m for m in smtp_server.messages}
    ssd = by_to["mission@ssd.example"]
    assert ssd["Subject"].startswith("Reminder: initial transparency report")
    assert ssd["From"] and ssd["Date"] and ssd["Content-Language"] == "en"
    assert ssd["Message-ID"] == message_id(ssd["X-CCM-Key"], "clusterconvention.org")
    chinese = [m for m in smtp_server.messages if m["To"] == "lb@lebanon.example"]
    assert chinese and any("集束弹药公约" in m["Subject"] for m in chinese)
    assert "=?utf-8?" in chinese[0].as_string().lower()      # encoded on the wire, decoded here
    assert "黎巴嫩常驻联合国日内瓦办事处代表团" in chinese[0].get_body(("plain",)).get_content()
    assert all(r.status == "sent" and r.attempts == 1 for r in rows(letters_db).values())


@pytest.mark.parametrize("failure", ["down", "451 4.3.0 mailbox busy, try later", "timeout"])
def test_a_failure_is_recorded_retried_later_and_nothing_is_lost_or_sent_twice(letters_db, record_evaluator, dues,
                                                                              smtp_server, failure):
    dues = [d for d in dues if d.party == "SSD"]       # one letter: South Sudan's first reminder
    config = smtp_config(smtp_server.port)
    if failure == "down":
        config = smtp_config(free_port())            # nobody listens there
    elif failure == "timeout":
        smtp_server.delay = 3                          # longer than timeout_seconds = 1
    else:
        smtp_server.reply = failure
    first = delivery.send(letters_db, record_evaluator, config, AS_OF, now=NOW, dues=dues)
    assert first.delivery.sent == [] and len(first.delivery.failed) == first.queued > 0
    log = rows(letters_db)
    assert all(r.status == "failed" and r.attempts == 1 and r.last_error for r in log.values())
    assert all(r.next_attempt_at.replace(tzinfo=UTC) == NOW + timedelta(seconds=60) for r in log.values())
    smtp_server.messages.clear()
    # Too early for the retry: nothing is attempted.
    assert delivery.deliver(letters_db, SmtpNotifier(config.smtp), config, NOW + timedelta(seconds=30)).failed == []
    # The server is back; the retry sends each letter once, and a further run sends nothing.
    smtp_server.reply, smtp_server.delay = None, 0
    config = smtp_config(smtp_server.port)
    retry = delivery.send(letters_db, record_evaluator, config, AS_OF, now=NOW + timedelta(minutes=2), dues=dues)
    assert retry.queued == 0 and len(retry.delivery.sent) == first.queued
    again = delivery.send(letters_db, record_evaluator, config, AS_OF, now=NOW + timedelta(hours=1), dues=dues)
    assert again.queued == 0 and again.delivery.sent == []
    assert sorted(smtp_server.ids()) == sorted({r.message_id for r in rows(letters_db).values()})
    with store.reader_session(letters_db) as session:
        outcomes = [a.outcome for a in session.scalars(sa.select(AttemptRow).order_by(AttemptRow.id))]
    assert outcomes.count("failed") == first.queued and outcomes.count("sent") == first.queued


def test_backoff_doubles_up_to_the_maximum(letters_db):
    config = load_letters_config()
    waits = [delivery.backoff(n, config).total_seconds() for n in range(1, 9)]
    assert waits == [60, 120, 240, 480, 960, 1920, 3600, 3600]


SENT = "sent, not yet recorded: "


def _letters_send_paused(*args: str, env: dict, **popen) -> subprocess.Popen:
    """``ccm letters send ARGS`` in a child process, with a callback injected into deliver: once the
    server accepted a letter, and before the database records it, it says so on stderr and sleeps."""
    code = ("import functools, sys, time\n"
            "from notifiers import delivery\n"
            "def pause(message_id):\n"
            f"    print('{SENT}' + message_id, file=sys.stderr, flush=True)\n"
            "    time.sleep(60)\n"
            "delivery.deliver = functools.partial(delivery.deliver, after_send=pause)\n"
            "from engine.cli.main import app\n"
            "app()\n")
    return subprocess.Popen([sys.executable, "-c", code, "letters", "send", *args], env={**os.environ, **env}, **popen)


def test_a_process_killed_between_sending_and_recording_sends_the_same_message_id_again(
        letters_db, record_evaluator, smtp_server, monkeypatch):
    """At-least-once: the server got the letter, the log did not record it; the re-run sends it again, same Message-ID."""
    set_contacts(letters_db, [validate("LBN", "lb@lebanon.example", "en")])
    with store.writer_session(letters_db) as session, session.begin():
        session.execute(sa.text("DELETE FROM contacts WHERE party <> 'SSD'"))
    env = {"CCM_NOTIFIER": "smtp", "CCM_SMTP_HOST": "127.0.0.1", "CCM_SMTP_PORT": str(smtp_server.port)}
    process = _letters_send_paused("--as-of", AS_OF.isoformat(), env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        while SENT not in line:
            line = process.stderr.readline()
            assert line or process.poll() is None, "the child ended before sending"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    first_id = smtp_server.ids()[0]
    assert all(r.status == "queued" for r in rows(letters_db).values())     # the send was not recorded
    monkeypatch.setenv("CCM_NOTIFIER", "smtp")
    config = smtp_config(smtp_server.port)
    delivery.deliver(letters_db, SmtpNotifier(config.smtp), config, datetime.now(UTC))
    assert smtp_server.ids().count(first_id) == 2                              # the same Message-ID, twice
    assert all(r.status == "sent" for r in rows(letters_db).values())
    count = len(smtp_server.messages)
    delivery.deliver(letters_db, SmtpNotifier(config.smtp), config, datetime.now(UTC))
    assert len(smtp_server.messages) == count                                  # sent is never sent again


def test_an_item_is_planned_once_and_the_unique_key_refuses_a_second_row(letters_db, record_evaluator, dues):
    config = load_letters_config()
    first = batches.plan_batch(letters_db, config, AS_OF, dues, NOW)
    assert first.batch_id is not None and first.items
    again = batches.plan_batch(letters_db, config, AS_OF, dues, NOW)
    assert again.batch_id is None and again.items == []
    with pytest.raises(sa.exc.IntegrityError), store.writer_session(letters_db) as session, session.begin():
        with store.reader_session(letters_db) as reader:
            row = reader.scalars(sa.select(ItemRow)).first()
        session.add(ItemRow(**{c.name: getattr(row, c.name) for c in ItemRow.__table__.columns if c.name != "id"}))


def test_send_dry_run_writes_nothing_and_log_lists_what_was_sent(letters_db, ccm, tmp_path):
    code, out = ccm("letters", "send", "--as-of", AS_OF.isoformat(), "--dry-run")
    assert code == 0 and "would send a note to SSD (1 item(s))" in out and "nothing was written" in out
    assert rows(letters_db) == {}
    code, out = ccm("letters", "send", "--as-of", AS_OF.isoformat())
    assert code == 0 and "sent (outbox" in out and "no contact" in out.lower()
    code, out = ccm("letters", "log", "--party", "SSD", "--json")
    assert code == 0 and '"status": "sent"' in out


def test_a_first_mass_mailing_over_smtp_with_no_receipt_recorded_is_refused_and_writes_nothing(
        letters_db, record_evaluator, smtp_server):
    # Every party gets a contact: with nothing recorded, years of reports count as outstanding.
    set_contacts(letters_db, [validate(iso3, f"{iso3.lower()}@mission.example", "en")
                              for iso3 in record_evaluator.registry.participants])
    config = smtp_config(smtp_server.port)
    with pytest.raises(delivery.FirstRunRefused, match="no report receipt is recorded yet"):
        delivery.send(letters_db, record_evaluator, config, AS_OF, now=NOW)
    assert rows(letters_db) == {} and smtp_server.messages == []
    # `since` lifts the guard: only obligations due from that date are chased.
    since = load_letters_config(overrides={"smtp": {"host": "127.0.0.1", "port": smtp_server.port},
                                           "letters": {"notifier": "smtp", "since": AS_OF.isoformat(),
                                                       "auto_send": True}})
    result = delivery.send(letters_db, record_evaluator, since, AS_OF, now=NOW)
    assert result.delivery.failed == [] and len(smtp_server.messages) == len(result.delivery.sent)
    assert all(r.status == "sent" for r in rows(letters_db).values())
