"""Mailings reviewed before they go: batches, approval (CLI, API), one note per State, wording from the log, no sending ahead of time.

Real databases (SQLite file and PostgreSQL schema) and a real SMTP server (aiosmtpd) on loopback.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from engine.check import scheduler
from engine.record.contacts import set_contacts, validate
from engine.store import database as store
from engine.store.mailing import BatchRow, ItemRow, LetterRow
from notifiers import batches, delivery
from notifiers.config import load_letters_config

TODAY = datetime.now(UTC).date()


@pytest.fixture
def mailing_db(db_url, tmp_path, monkeypatch, smtp_server):
    """SQLite or PostgreSQL, SMTP to the loopback server, no auto_send; contacts for Lebanon (fr) and South Sudan (en)."""
    config = tmp_path / "config.toml"
    # The ISU's record of receipts is complete: a report due with none recorded is overdue (not unknown).
    config.write_text('[smtp]\nsecurity = "none"\ntimeout_seconds = 5\n[letters]\nsince = "2024-01-01"\n'
                      '[record]\nreceipts_complete_from = "2011-01-01"\n')
    monkeypatch.setenv("CCM_CONFIG", str(config))
    monkeypatch.setenv("CCM_NOTIFIER", "smtp")
    monkeypatch.setenv("CCM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CCM_SMTP_PORT", str(smtp_server.port))
    store.upgrade(db_url)
    set_contacts(db_url, [validate("LBN", "lb@lebanon.example", "fr"), validate("SSD", "mission@ssd.example", "en")])
    return db_url


def engine_evaluator():
    """The evaluator the scheduler uses with the test's settings."""
    from engine.runtime.settings import load_settings

    return scheduler._evaluator("reference", load_settings().receipts_complete_from)


def table_counts(url) -> dict[str, int]:
    with store.reader_session(url) as session:
        return {model.__tablename__: session.scalar(sa.select(sa.func.count()).select_from(model))
                for model in (BatchRow, ItemRow, LetterRow)}


def test_an_unapproved_batch_is_never_delivered_and_approving_it_delivers_each_note_once(mailing_db, smtp_server):
    url = mailing_db
    day = date(2025, 5, 1)                   # Lebanon's 2024 report is a day late; South Sudan's are outstanding
    result = scheduler.daily_job(day.isoformat()).steps["letters"]
    assert result.batch_id is not None and result.awaiting_approval and result.queued == 0 and result.sent == 0
    assert scheduler.retry_job().steps["letters"].sent == 0
    assert scheduler.daily_job(day.isoformat()).steps["letters"].sent == 0
    assert smtp_server.messages == [] and table_counts(url)["letters"] == 0
    with store.reader_session(url) as session:
        parties = sorted(set(session.scalars(sa.select(ItemRow.party).where(ItemRow.batch_id == result.batch_id))))
    assert parties == ["LBN", "SSD"]

    approval = batches.approve(url, result.batch_id, "Coordinator A", engine_evaluator(),
                               load_letters_config(), datetime.now(UTC))
    assert approval.notes == 2 and approval.approved_by == "Coordinator A"
    assert scheduler.retry_job().steps["letters"].sent == 2 and scheduler.retry_job().steps["letters"].sent == 0
    assert sorted(m["To"] for m in smtp_server.messages) == ["lb@lebanon.example", "mission@ssd.example"]
    with store.reader_session(url) as session:
        notes = list(session.scalars(sa.select(LetterRow)))
    assert all(n.status == "sent" and n.approved_by == "Coordinator A" and n.approved_at is not None for n in notes)
    assert {m["Message-ID"] for m in smtp_server.messages} == {n.message_id for n in notes}
    with pytest.raises(batches.BatchError, match="already approved by Coordinator A"):
        batches.approve(url, result.batch_id, "B", engine_evaluator(), load_letters_config(),
                        datetime.now(UTC))


def test_a_state_gets_one_note_listing_every_outstanding_item(mailing_db, smtp_server, ccm):
    url = mailing_db
    with store.writer_session(url) as session, session.begin():
        session.execute(sa.text("DELETE FROM contacts WHERE party <> 'LBN'"))
    code, out = ccm("letters", "plan", "--as-of", "2026-05-01")
    assert code == 0 and "Recorded as batch 1" in out
    with store.reader_session(url) as session:
        items = session.scalar(sa.select(sa.func.count()).select_from(ItemRow))
    assert items > 2                                            # several reports and the Art. 4 items
    code, out = ccm("letters", "approve", "1", "--by", "Coordinator A")
    assert code == 0 and "1 note(s) (" in out                   # (the Art. 4 deadline may have passed since)
    code, out = ccm("letters", "deliver")
    assert code == 0 and len(smtp_server.messages) == 1
    text = smtp_server.messages[0].get_body(("plain",)).get_content()
    assert "Mission permanente du Liban" in text and "les obligations suivantes du Liban" in " ".join(text.split())
    assert " ".join(text.split()).count("portant sur l'année civile") >= 2


def test_a_first_letter_is_never_a_further_reminder_and_a_later_one_cites_the_note_sent(mailing_db, smtp_server):
    url = mailing_db
    evaluator, config = engine_evaluator(), load_letters_config()
    ssd = [d for d in delivery.obligations_as_of(url, evaluator, date(2024, 8, 30)) if d.party == "SSD"]
    # 30 days after South Sudan's initial report fell due: the policy's second reminder stage.
    first = batches.plan_batch(url, config, date(2024, 8, 30), ssd, datetime.now(UTC))
    assert [p.stage for p in first.items] == ["reminder2"]
    batches.approve(url, first.batch_id, "A", evaluator, config, datetime.now(UTC))
    delivery.deliver(url, delivery.make_notifier(config), config)
    text = " ".join(smtp_server.messages[0].get_body(("plain",)).get_content().split())
    assert smtp_server.messages[0]["Subject"].startswith("Reminder: initial transparency report")
    assert "earlier correspondence" not in text and "further to" not in text and "Further" not in text
    reference = smtp_server.messages[0]["X-CCM-Reference"]

    later = [d for d in delivery.obligations_as_of(url, evaluator, date(2024, 10, 29)) if d.party == "SSD"]
    second = batches.plan_batch(url, config, date(2024, 10, 29), later, datetime.now(UTC))
    assert [p.stage for p in second.items] == ["reminder3"]
    (note,) = batches.notes_of(url, batches.get_batch(url, second.batch_id)[1], TODAY)
    assert note.items[0].wording == "further" and note.follows.reference == reference


def test_sending_as_of_a_future_date_is_refused_and_writes_nothing(mailing_db, ccm, tmp_path, monkeypatch):
    monkeypatch.setenv("CCM_NOTIFIER", "outbox")
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    code, out = ccm("letters", "send", "--as-of", tomorrow)
    assert code == 2 and f"--as-of {tomorrow} is after today" in out and "nothing was written" in out
    assert table_counts(mailing_db) == {"letter_batches": 0, "letter_items": 0, "letters": 0}
    assert not (tmp_path / "digests" / "outbox").exists()
    with pytest.raises(batches.FutureDateRefused):
        delivery.send(mailing_db, engine_evaluator(), load_letters_config(), TODAY + timedelta(days=1))
    assert table_counts(mailing_db) == {"letter_batches": 0, "letter_items": 0, "letters": 0}
    # Planning and previewing may look ahead; they record nothing.
    code, out = ccm("letters", "plan", "--as-of", "2099-05-01")
    assert code == 0 and "shown only, no batch recorded" in out
    code, out = ccm("letters", "preview", "--as-of", "2099-05-01", "--party", "LBN")
    assert code == 0 and "Mission permanente du Liban" in out and "(not recorded)" in out
    assert table_counts(mailing_db) == {"letter_batches": 0, "letter_items": 0, "letters": 0}


def test_the_outbox_sends_without_review_and_records_who_approved(mailing_db, monkeypatch, tmp_path, ccm):
    monkeypatch.setenv("CCM_NOTIFIER", "outbox")
    code, out = ccm("letters", "send", "--as-of", "2025-05-01")
    assert code == 0 and "2 note(s) queued, 2 sent (outbox" in out
    code, out = ccm("letters", "log", "--json")
    assert '"approved_by": "outbox (no review)"' in out and '"batch": 1' in out


def test_approve_errors_are_sentences(mailing_db, ccm):
    code, out = ccm("letters", "approve", "7", "--by", "A")
    assert code == 2 and "there is no batch 7" in out


def test_the_preview_writes_a_pdf_ready_for_letterhead_with_a_chinese_font(mailing_db, ccm, tmp_path):
    set_contacts(mailing_db, [validate("LBN", "lb@lebanon.example", "zh")])
    assert ccm("letters", "plan", "--as-of", "2025-05-01")[0] == 0
    target = tmp_path / "batch1.pdf"
    code, out = ccm("letters", "preview", "1", "--pdf", str(target))
    assert code == 0 and "Wrote 2 note(s)" in out
    data = target.read_bytes()
    assert data.startswith(b"%PDF")
    fonts, pages = pdf_fonts_and_pages(data)
    assert {"DejaVu-Serif", "Noto-Serif-CJK-SC"} <= fonts and pages >= 2      # the Chinese note drawn in a CJK font


def pdf_fonts_and_pages(data: bytes) -> tuple[set[str], int]:
    """The font names and the number of pages of a PDF, read from its (compressed) object streams."""
    import re
    import zlib

    objects = data
    for match in re.finditer(rb"stream\r?\n", data):
        try:
            objects += zlib.decompressobj().decompress(data[match.end():])
        except zlib.error:
            continue
    fonts = {name.decode().split("+", 1)[-1] for name in re.findall(rb"/BaseFont\s*/([A-Za-z0-9+\-_]+)", objects)}
    return fonts, len(re.findall(rb"/Type\s*/Page[^s]", objects))


def test_the_isu_approves_a_batch_over_the_api_and_the_dashboard_offers_it(mailing_db, smtp_server, monkeypatch):
    from fastapi.testclient import TestClient

    from engine.runtime.settings import load_settings
    from engine.web.app import ApiConfig, create_app

    monkeypatch.setenv("CCM_ISU_TOKEN", "isu-secret-token")
    result = scheduler.daily_job("2025-05-01").steps["letters"]
    assert result.awaiting_approval
    with TestClient(create_app(load_settings(), ApiConfig(state_ttl_seconds=0))) as client:
        page = client.get("/")
        assert page.status_code == 200 and f'data-batch="{result.batch_id}"' in page.text
        url = f"/api/letters/batches/{result.batch_id}/approve"
        assert client.post(url, json={"by": "Coordinator A"}).status_code == 401
        assert client.post(url, json={"by": ""}, headers={"Authorization": "Bearer isu-secret-token"}).status_code == 422
        answer = client.post(url, json={"by": "Coordinator A"}, headers={"Authorization": "Bearer isu-secret-token"})
        assert answer.status_code == 200 and answer.json()["notes"] == 2
        again = client.post(url, json={"by": "B"}, headers={"Authorization": "Bearer isu-secret-token"})
        assert again.status_code == 409 and "already approved by Coordinator A" in again.json()["detail"]
        listed = client.get("/api/letters/batches", headers={"Authorization": "Bearer isu-secret-token"}).json()
        assert listed[0]["approved_by"] == "Coordinator A" and f'data-batch="{result.batch_id}"' not in client.get("/").text
    assert scheduler.retry_job().steps["letters"].sent == 2 and len(smtp_server.messages) == 2


def test_a_discarded_batch_sends_nothing_and_its_items_are_planned_again(mailing_db, smtp_server, ccm):
    assert ccm("letters", "plan", "--as-of", "2025-05-01")[0] == 0
    planned = table_counts(mailing_db)["letter_items"]
    code, out = ccm("letters", "discard", "1")
    assert code == 0 and f"{planned} item(s) return to planning" in out
    assert table_counts(mailing_db) == {"letter_batches": 0, "letter_items": 0, "letters": 0}
    code, out = ccm("letters", "plan", "--as-of", "2025-05-01")
    assert code == 0 and "Recorded as batch" in out and table_counts(mailing_db)["letter_items"] == planned
    batch_id = batches.list_batches(mailing_db)[0][0].id
    assert ccm("letters", "approve", str(batch_id), "--by", "A")[0] == 0
    code, out = ccm("letters", "discard", str(batch_id))
    assert code == 2 and "cannot be recalled" in out


def test_an_item_settled_between_planning_and_approval_is_left_out_of_the_note(mailing_db, smtp_server, ccm):
    assert ccm("letters", "plan", "--as-of", "2025-05-01")[0] == 0
    # Lebanon's 2024 annual report arrives before the coordinator approves the mailing.
    code, out = ccm("record", "report", "LBN", "--kind", "annual", "--year", "2024", "--received", "2025-05-02")
    assert code == 0, out
    code, out = ccm("letters", "approve", "1", "--by", "Coordinator A")
    assert code == 0 and "item(s) settled since planning" in out
    assert ccm("letters", "deliver")[0] == 0
    (lebanon,) = [m for m in smtp_server.messages if m["To"] == "lb@lebanon.example"]
    text = " ".join(lebanon.get_body(("plain",)).get_content().split())
    assert "l'année civile 2024" not in text and "l'année civile 2023" in text      # 2023 is still outstanding
    with store.reader_session(mailing_db) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ItemRow)
                              .where(ItemRow.party == "LBN", ItemRow.obligation_id == "ccm.art7.annual_report",
                                     ItemRow.period == "2024")) == 0      # planned again, should it reopen
