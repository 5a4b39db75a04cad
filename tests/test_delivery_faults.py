"""Delivery under bad addresses and bad records (issue 11): a permanent failure fails one letter
and the run goes on; outcomes per recipient; contact changes re-render; cancel and retry.

A real aiosmtpd server on loopback, with or without SMTPUTF8, refusing chosen recipients; each
test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from engine.record.contacts import ContactError, set_contacts, validate
from engine.store import database as store
from engine.store.mailing import LetterRow, RecipientRow
from notifiers import delivery
from notifiers.config import load_letters_config

AS_OF = date(2024, 7, 31)   # SSD's initial report fell due the day before, Togo's long ago (a bad SSD letter goes first)
NOW = datetime(2024, 7, 31, 6, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """An aiosmtpd handler keeping each message with its envelope; refuses the recipients in ``refuse``."""

    def __init__(self):
        self.received: list[tuple[list[str], list[str], email.message.EmailMessage]] = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((list(envelope.rcpt_tos), list(envelope.mail_options),
                              email.message_from_bytes(envelope.original_content, policy=email.policy.default)))
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for rcpt, _, m in self.received if address in rcpt]


def start_server(smtputf8: bool):
    from aiosmtpd.controller import Controller

    handler = Server()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=smtputf8)
    controller.start()
    handler.port, handler.controller = controller.port, controller
    return handler


@pytest.fixture
def server():
    handler = start_server(smtputf8=False)
    yield handler
    handler.controller.stop()


@pytest.fixture
def utf8_server():
    handler = start_server(smtputf8=True)
    yield handler
    handler.controller.stop()


@pytest.fixture
def url(db_url, tmp_path, monkeypatch):
    config_file = tmp_path / "config.toml"
    config_file.write_text('[smtp]\nsecurity = "none"\ntimeout_seconds = 2\n[letters]\nretry_first_seconds = 60\n')
    monkeypatch.setenv("CCM_CONFIG", str(config_file))
    monkeypatch.setenv("CCM_RECEIPTS_COMPLETE_FROM", "2010-08-01")   # an ISU with its whole record of receipts
    store.upgrade(db_url)
    return db_url


def smtp_config(port: int):
    return load_letters_config(overrides={"smtp": {"host": "127.0.0.1", "port": port},
                                          "letters": {"notifier": "smtp", "auto_send": True}})


def queue_notes(url, evaluator, config, *parties) -> None:
    """Plan a batch for the parties and approve it: its notes are queued, nothing is delivered."""
    from notifiers.batches import approve, plan_batch

    batch = plan_batch(url, config, AS_OF, dues_of(evaluator, url, *parties), NOW)
    approve(url, batch.batch_id, "test", evaluator, config, NOW)


def dues_of(evaluator, url, *parties):
    """One letter per party: the initial report (plus a clarification response once one is requested)."""
    return [d for d in delivery.obligations_as_of(url, evaluator, AS_OF) if d.party in parties
            and d.obligation_id in ("ccm.art7.initial_report", "ccm.art8.clarification_response")]


def letters(url) -> dict[str, LetterRow]:
    with store.reader_session(url) as session:
        return {r.party: r for r in session.scalars(sa.select(LetterRow).order_by(LetterRow.id))}


def by_key(url) -> dict[str, LetterRow]:
    with store.reader_session(url) as session:
        return {r.key: r for r in session.scalars(sa.select(LetterRow))}


def outcomes(url, letter_id: int) -> dict[str, str]:
    with store.reader_session(url) as session:
        return {r.address: r.status for r in session.scalars(sa.select(RecipientRow).where(RecipientRow.letter_id == letter_id))}


def store_contact_unchecked(url, party: str, address: str) -> None:
    """A contact as an older version accepted it (no e-mail check): the delivery must cope."""
    with store.writer_session(url) as session, session.begin():
        session.execute(sa.text("DELETE FROM contacts WHERE party = :p"), {"p": party})
        session.execute(sa.text("INSERT INTO contacts (party, email, language, updated_at) VALUES (:p, :e, 'en', :t)"),
                        {"p": party, "e": address, "t": NOW})


# ----------------------------------------------------------------------------- addresses

def test_contact_addresses_are_checked_and_an_international_domain_is_kept_in_ascii(url):
    contact = validate("CHE", "user@exämple.org, zürich@exämple.org", "fr")
    assert contact.email == ("user@xn--exmple-cua.org", "zürich@xn--exmple-cua.org")
    for bad in ("a@b", "x@@example.org", "mission@example.org\r\nBcc: x@evil.example", "no-at-sign"):
        with pytest.raises(ContactError, match="email: "):
            validate("CHE", bad, "en")


def test_a_non_ascii_address_without_smtputf8_fails_that_letter_only_and_the_run_goes_on(url, record_evaluator, server):
    """The reported case: one such contact stopped every run at its letter and 563 letters stayed queued."""
    store_contact_unchecked(url, "SSD", "zürich@exämple.org")
    set_contacts(url, [validate("TGO", "mission@togo.example", "en")])
    result = delivery.send(url, record_evaluator, smtp_config(server.port), AS_OF, now=NOW,
                           dues=dues_of(record_evaluator, url, "SSD", "TGO"))
    rows = letters(url)
    assert rows["SSD"].status == "rejected" and "SMTPUTF8" in rows["SSD"].last_error
    assert rows["SSD"].next_attempt_at is None                      # not retried by itself
    assert rows["TGO"].status == "sent" and len(server.to("mission@togo.example")) == 1
    assert [k for k, _ in result.delivery.rejected] == [rows["SSD"].key] and result.delivery.failed == []
    # The next run does not try it again, and does not stop on it.
    again = delivery.deliver(url, delivery.make_notifier(smtp_config(server.port)), smtp_config(server.port),
                             NOW + timedelta(days=1))
    assert again.rejected == [] and again.sent == [] and len(server.received) == 1


def test_a_non_ascii_local_part_is_sent_with_smtputf8_when_the_server_has_it(url, record_evaluator, utf8_server):
    set_contacts(url, [validate("SSD", "zürich@exämple.org", "en")])
    result = delivery.send(url, record_evaluator, smtp_config(utf8_server.port), AS_OF, now=NOW,
                           dues=dues_of(record_evaluator, url, "SSD"))
    assert result.delivery.rejected == [] and len(result.delivery.sent) == 1
    rcpt, options, message = utf8_server.received[0]
    assert rcpt == ["zürich@xn--exmple-cua.org"] and "SMTPUTF8" in options
    assert message["To"].addresses[0].username == "zürich"


def test_correcting_the_contact_re_renders_and_requeues_the_rejected_letter(url, record_evaluator, server, ccm):
    store_contact_unchecked(url, "SSD", "zürich@exämple.org")
    config = smtp_config(server.port)
    delivery.send(url, record_evaluator, config, AS_OF, now=NOW, dues=dues_of(record_evaluator, url, "SSD"))
    rejected = letters(url)["SSD"]
    assert rejected.status == "rejected"
    code, out = ccm("contacts", "set", "SSD", "--email", "mission@ssd.example", "--language", "fr")
    assert code == 0, out
    again = letters(url)["SSD"]
    assert again.status == "queued" and again.recipients == "mission@ssd.example" and again.language == "fr"
    assert again.message_id == rejected.message_id                   # the same letter
    report = delivery.deliver(url, delivery.make_notifier(config), config, NOW + timedelta(minutes=5))
    assert report.sent == [rejected.key]
    (message,) = server.to("mission@ssd.example")
    assert message["Message-ID"] == rejected.message_id and message["Content-Language"] == "fr"


def test_a_queued_letter_follows_a_contact_change_before_it_is_sent(url, record_evaluator, server):
    set_contacts(url, [validate("SSD", "old@ssd.example", "en")])
    config = smtp_config(server.port)
    queue_notes(url, record_evaluator, config, "SSD")
    set_contacts(url, [validate("SSD", "new@ssd.example", "es")])
    assert delivery.rerender_for_parties(url, record_evaluator, config, ["SSD"]) == []
    delivery.deliver(url, delivery.make_notifier(config), config, NOW)
    assert server.to("old@ssd.example") == [] and server.to("new@ssd.example")[0]["Content-Language"] == "es"


# ----------------------------------------------------------------------------- per recipient

def test_a_partial_refusal_is_recorded_per_recipient_and_not_as_sent_for_both(url, record_evaluator, server, ccm):
    set_contacts(url, [validate("SSD", "mission@ssd.example, gone@ssd.example", "en")])
    server.refuse = {"gone@ssd.example": "550 5.1.1 no such user"}
    config = smtp_config(server.port)
    result = delivery.send(url, record_evaluator, config, AS_OF, now=NOW, dues=dues_of(record_evaluator, url, "SSD"))
    row = letters(url)["SSD"]
    assert row.status == "partial" and "gone@ssd.example: 550 5.1.1 no such user" in row.last_error
    assert outcomes(url, row.id) == {"mission@ssd.example": "sent", "gone@ssd.example": "refused"}
    assert result.delivery.sent == [] and len(result.delivery.rejected) == 1
    code, out = ccm("letters", "log", "--json")
    assert code == 0
    (logged,) = json.loads(out)
    assert logged["status"] == "partial" and {(r["address"], r["status"]) for r in logged["recipients"]} == {
        ("mission@ssd.example", "sent"), ("gone@ssd.example", "refused")}
    code, out = ccm("letters", "log")
    assert code == 0 and f"letter {row.id}: gone@ssd.example: refused (550 5.1.1 no such user)" in out
    # Retried: only the refused recipient gets it, once the server accepts it.
    server.refuse = {}
    code, out = ccm("letters", "retry", str(row.id))
    assert code == 0 and "Queued 1 letter(s) again" in out
    delivery.deliver(url, delivery.make_notifier(config), config, NOW + timedelta(hours=1))
    assert len(server.to("mission@ssd.example")) == 1 and len(server.to("gone@ssd.example")) == 1
    assert letters(url)["SSD"].status == "sent"


def test_every_recipient_refused_fails_that_letter_and_the_run_goes_on(url, record_evaluator, server):
    set_contacts(url, [validate("SSD", "gone@ssd.example", "en"), validate("TGO", "mission@togo.example", "en")])
    server.refuse = {"gone@ssd.example": "550 5.1.1 no such user"}
    delivery.send(url, record_evaluator, smtp_config(server.port), AS_OF, now=NOW,
                  dues=dues_of(record_evaluator, url, "SSD", "TGO"))
    rows = letters(url)
    assert rows["SSD"].status == "rejected" and rows["TGO"].status == "sent"
    assert outcomes(url, rows["SSD"].id) == {"gone@ssd.example": "refused"}


def test_a_4xx_for_one_recipient_is_retried_later_for_that_recipient_only(url, record_evaluator, server):
    set_contacts(url, [validate("SSD", "mission@ssd.example, busy@ssd.example", "en")])
    server.refuse = {"busy@ssd.example": "451 4.2.0 mailbox busy"}
    config = smtp_config(server.port)
    delivery.send(url, record_evaluator, config, AS_OF, now=NOW, dues=dues_of(record_evaluator, url, "SSD"))
    row = letters(url)["SSD"]
    assert row.status == "failed" and row.next_attempt_at is not None
    assert outcomes(url, row.id) == {"mission@ssd.example": "sent", "busy@ssd.example": "deferred"}
    server.refuse = {}
    delivery.deliver(url, delivery.make_notifier(config), config, NOW + timedelta(hours=2))
    assert len(server.to("mission@ssd.example")) == 1 and len(server.to("busy@ssd.example")) == 1
    assert letters(url)["SSD"].status == "sent"


def test_a_5xx_for_the_message_fails_that_letter_only(url, record_evaluator, server):
    set_contacts(url, [validate("SSD", "mission@ssd.example", "en"), validate("TGO", "mission@togo.example", "en")])

    async def refuse_ssd(srv, session, envelope):
        if "mission@ssd.example" in envelope.rcpt_tos:
            return "554 5.7.1 message refused"
        server.received.append((list(envelope.rcpt_tos), [], None))
        return "250 OK"

    server.handle_DATA = refuse_ssd
    delivery.send(url, record_evaluator, smtp_config(server.port), AS_OF, now=NOW,
                  dues=dues_of(record_evaluator, url, "SSD", "TGO"))
    rows = letters(url)
    assert rows["SSD"].status == "rejected" and "554" in rows["SSD"].last_error and rows["TGO"].status == "sent"


# ----------------------------------------------------------------------------- recorded text in headers

def test_a_line_break_in_a_recorded_request_id_never_reaches_a_header_and_stops_nothing(url, record_evaluator, server):
    """The reported case: a CR/LF in a clarification-request id crashed the whole letters run."""
    set_contacts(url, [validate("SSD", "mission@ssd.example", "en"), validate("TGO", "mission@togo.example", "en")])
    with store.writer_session(url) as session, session.begin():      # as recorded before ids were checked
        session.add(store.RecordedEventRow(id="REQ-1\r\nBcc: evil@attacker.example", party="SSD",
                                           kind="clarification_request", on=date(2024, 6, 1), extra={},
                                           recorded_at=NOW))
    result = delivery.send(url, record_evaluator, smtp_config(server.port), AS_OF, now=NOW,
                           dues=dues_of(record_evaluator, url, "SSD", "TGO"))
    assert result.delivery.failed == [] and result.delivery.rejected == [] and result.delivery.not_rendered == []
    assert len(server.received) == 2                                          # both notes went out
    from engine.store.mailing import ItemRow
    with store.reader_session(url) as session:                                # and SSD's carried the bad item
        carried = session.scalar(sa.select(ItemRow).where(ItemRow.obligation_id == "ccm.art8.clarification_response"))
    assert carried is not None and carried.period.startswith("REQ-1\r\n") and carried.letter_id is not None
    for rcpt, _, message in server.received:
        assert "evil@attacker.example" not in rcpt and message["Bcc"] is None
        assert all("\r" not in str(v) and "\n" not in str(v) for v in message.values())
    assert server.to("mission@togo.example")


# ----------------------------------------------------------------------------- cancel and retry

def test_cancel_by_id_and_by_party_and_retry_failed(url, record_evaluator, server, ccm):
    store_contact_unchecked(url, "SSD", "zürich@exämple.org")
    set_contacts(url, [validate("TGO", "mission@togo.example", "en")])
    config = smtp_config(server.port)
    queue_notes(url, record_evaluator, config, "SSD", "TGO")
    rows = letters(url)
    code, out = ccm("letters", "cancel", str(rows["TGO"].id))
    assert code == 0 and "Cancelled 1 letter(s)" in out
    code, out = ccm("letters", "cancel", str(rows["TGO"].id))
    assert code == 2 and "is cancelled" in out
    code, out = ccm("letters", "cancel", "999999")
    assert code == 2 and "there is no letter 999999" in out
    code, out = ccm("letters", "cancel")
    assert code == 2 and "give a letter id or --party" in out
    delivery.deliver(url, delivery.make_notifier(config), config, NOW)
    assert server.received == [] and letters(url)["SSD"].status == "rejected"
    code, out = ccm("letters", "retry", "--failed")          # the contact is still wrong: rejected again on delivery
    assert code == 0 and "Queued 1 letter(s) again" in out and letters(url)["SSD"].status == "queued"
    code, out = ccm("letters", "cancel", "--party", "SSD")
    assert code == 0 and "Cancelled 1 letter(s) of SSD" in out
    assert {r.status for r in letters(url).values()} == {"cancelled"}
    delivery.deliver(url, delivery.make_notifier(config), config, NOW + timedelta(days=1))
    assert server.received == []
    code, out = ccm("letters", "log", "--status", "bogus")
    assert code == 2 and "--status 'bogus'" in out
