"""The letters over every selected pack (`CCM_PACK=ccm,apmbc`): one batch per pack per mailing, one note per
State per treaty, each worded, signed and re-checked by its own pack, each pack's items settled by its own
recorded events only. Real databases (SQLite file and PostgreSQL schema) and a real SMTP server (aiosmtpd).

Iraq is party to both treaties: its 2024 annual reports under the CCM (Art. 7(2)) and the Mine Ban
Convention (Art. 7(2)) both fell due on 30 April 2025 (rules/*/art07_transparency.toml), so on 1 May 2025
each treaty's first reminder is due. The ISU's record of receipts is complete (``receipts_complete_from``,
set by the db_url fixture), so a report with no receipt is overdue, not unknown.
"""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from engine.check import scheduler
from engine.cli.main import app
from engine.record.contacts import set_contacts, validate
from engine.registry.shared import reset, shared_treaties
from engine.runtime.settings import load_settings
from engine.store import database as store
from engine.store.mailing import BatchRow, ItemRow, LetterRow
from notifiers import batches, delivery
from notifiers.config import load_letters_config

DAY = date(2025, 5, 1)
CCM_TITLE = "Convention on Cluster Munitions"
APMBC_TITLE = ("Convention on the Prohibition of the Use, Stockpiling, Production and Transfer of Anti-Personnel "
               "Mines and on their Destruction")
APMBC_SIGNER = "The Implementation Support Unit of the Anti-Personnel Mine Ban Convention"


@pytest.fixture
def both(db_url, tmp_path, monkeypatch, smtp_server):
    """Both packs selected, SMTP to the loopback server without auto_send; contacts for Iraq (both treaties, en),
    Cambodia (the Mine Ban Convention only, fr) and Lebanon (the CCM only, fr)."""
    config = tmp_path / "config.toml"
    config.write_text('[smtp]\nsecurity = "none"\ntimeout_seconds = 5\n[letters]\nsince = "2025-01-01"\n')
    monkeypatch.setenv("CCM_CONFIG", str(config))
    monkeypatch.setenv("CCM_PACK", "ccm,apmbc")
    monkeypatch.setenv("CCM_NOTIFIER", "smtp")
    monkeypatch.setenv("CCM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CCM_SMTP_PORT", str(smtp_server.port))
    reset()
    store.upgrade(db_url)
    set_contacts(db_url, [validate("IRQ", "mission@iraq.example", "en"), validate("KHM", "mission@khm.example", "fr"),
                          validate("LBN", "lb@lebanon.example", "fr")])
    yield db_url
    reset()


def ccm(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def items_of(url: str, batch_id: int) -> list[ItemRow]:
    with store.reader_session(url) as session:
        return list(session.scalars(sa.select(ItemRow).where(ItemRow.batch_id == batch_id)))


def text_of(message) -> str:
    return " ".join(message.get_body(("plain",)).get_content().split())


def treaties():
    settings = load_settings()
    return shared_treaties(settings.backend, settings.receipts_complete_from, settings.packs)


def test_the_daily_job_plans_one_batch_per_pack_and_a_state_party_to_both_gets_one_note_per_treaty(both, smtp_server):
    url = both
    result = scheduler.daily_job(DAY.isoformat()).steps["letters"]
    assert list(result.batches) == ["ccm", "apmbc"] and result.awaiting_approval
    assert result.sent == 0 and smtp_server.messages == []       # over SMTP nothing goes out unapproved
    assert "in batches" in result.summary() and "(apmbc)" in result.summary()
    ccm_batch, apmbc_batch = result.batches["ccm"], result.batches["apmbc"]
    for pack, batch_id in result.batches.items():
        rows = items_of(url, batch_id)
        assert rows and {r.obligation_id.split(".")[0] for r in rows} == {pack}
        assert "IRQ" in {r.party for r in rows}
    assert "KHM" in {r.party for r in items_of(url, apmbc_batch)}       # a party of the second pack only
    assert "KHM" not in {r.party for r in items_of(url, ccm_batch)}
    with store.reader_session(url) as session:
        assert dict(session.execute(sa.select(BatchRow.id, BatchRow.pack)).all()) == {ccm_batch: "ccm", apmbc_batch: "apmbc"}
    # the same day again: every item of both packs was planned once
    again = scheduler.daily_job(DAY.isoformat()).steps["letters"]
    assert again.batches == {} and again.planned == 0

    code, out = ccm("letters", "batches", "--json")
    assert code == 0 and {(b["batch"], b["treaty"]) for b in json.loads(out)} == {(ccm_batch, "ccm"), (apmbc_batch, "apmbc")}
    code, out = ccm("letters", "batches")
    assert code == 0 and "Treaty" in out and "apmbc" in out

    # the Mine Ban Convention's batch first: its notes are worded and signed under that treaty only
    code, out = ccm("letters", "approve", str(apmbc_batch), "--by", "Coordinator A")
    assert code == 0, out
    assert ccm("letters", "deliver")[0] == 0
    (iraq_apmbc,) = [m for m in smtp_server.messages if m["To"] == "mission@iraq.example"]
    text = text_of(iraq_apmbc)
    assert APMBC_SIGNER in text and APMBC_TITLE in text and "Article 7, paragraph 2" in text
    assert "Cluster" not in text and "Cluster" not in iraq_apmbc["Subject"]
    assert iraq_apmbc["X-CCM-Reference"].startswith("APMBC/ISU/")
    (cambodia,) = [m for m in smtp_server.messages if m["To"] == "mission@khm.example"]
    assert "mines antipersonnel" in text_of(cambodia) and "sous-munitions" not in text_of(cambodia)

    # then the CCM's: Iraq's second note is about the CCM alone, and follows no note of the other treaty
    assert ccm("letters", "approve", str(ccm_batch), "--by", "Coordinator B")[0] == 0
    assert ccm("letters", "deliver")[0] == 0
    iraq = [m for m in smtp_server.messages if m["To"] == "mission@iraq.example"]
    assert len(iraq) == 2
    text = text_of(iraq[1])
    assert CCM_TITLE in text and "Anti-Personnel" not in text and "Mine Ban" not in text
    assert "further to" not in text and iraq_apmbc["X-CCM-Reference"] not in text
    assert iraq[1]["X-CCM-Reference"].startswith("CCM/ISU/")
    with store.reader_session(url) as session:
        notes = list(session.scalars(sa.select(LetterRow).where(LetterRow.party == "IRQ")))
    assert {n.batch_id for n in notes} == {ccm_batch, apmbc_batch} and all(n.status == "sent" for n in notes)
    code, out = ccm("letters", "log", "--treaty", "apmbc", "--json")
    assert code == 0 and {r["batch"] for r in json.loads(out)} == {apmbc_batch}


def test_a_receipt_recorded_for_one_treaty_never_closes_the_other_treatys_item(both):
    url = both
    tr = treaties()
    code, out = ccm("record", "report", "IRQ", "--kind", "annual", "--year", "2024", "--received", "2025-04-20",
                    "--treaty", "apmbc")
    assert code == 0, out

    def iraq_2024(pack: str) -> str:
        dues = delivery.obligations_as_of(url, tr.get(pack), DAY, {"IRQ"}, home=tr.home)
        return next(d.status for d in dues if d.obligation_id == f"{pack}.art7.annual_report" and d.period == "2024")

    assert iraq_2024("apmbc").startswith("fulfilled") and iraq_2024("ccm") == "overdue"
    ccm_plan = delivery.make_plan(url, tr.get("ccm"), load_letters_config(), DAY, home=tr.home)
    apmbc_plan = delivery.make_plan(url, tr.get("apmbc"), load_letters_config(), DAY, home=tr.home)
    assert ("IRQ", "2024") in {(p.party, p.period) for p in ccm_plan.items}
    assert ("IRQ", "2024") not in {(p.party, p.period) for p in apmbc_plan.items if p.kind == "annual_report"}
    # and the other way: the CCM's receipt (recorded without --treaty: the first pack's) leaves the APMBC's item
    code, out = ccm("record", "report", "IRQ", "--kind", "annual", "--year", "2023", "--received", "2024-04-20")
    assert code == 0, out
    dues = delivery.obligations_as_of(url, tr.get("apmbc"), DAY, {"IRQ"}, home=tr.home)
    assert next(d.status for d in dues if d.obligation_id == "apmbc.art7.annual_report" and d.period == "2023") == "overdue"


def test_approval_rechecks_each_batch_with_its_own_pack_and_record(both, smtp_server):
    url = both
    code, out = ccm("letters", "plan", "--as-of", DAY.isoformat(), "--json")
    assert code == 0, out
    planned = json.loads(out)
    assert [p["treaty"] for p in planned] == ["ccm", "apmbc"] and all(p["recorded"] for p in planned)
    ccm_batch, apmbc_batch = (p["batch"] for p in planned)
    # Iraq's APMBC report arrives before approval: that item leaves the APMBC note, the CCM's stays
    assert ccm("record", "report", "IRQ", "--kind", "annual", "--year", "2024", "--received", "2025-04-20",
               "--treaty", "apmbc")[0] == 0
    approval = batches.approve(url, apmbc_batch, "A", treaties(), load_letters_config(), datetime.now(UTC))
    assert "IRQ|apmbc.art7.annual_report|2024|reminder1" in approval.settled
    approval = batches.approve(url, ccm_batch, "A", treaties(), load_letters_config(), datetime.now(UTC))
    assert not [k for k in approval.settled if k.startswith("IRQ|")]
    # one pack's evaluator cannot approve the other pack's batch
    plan = ccm("letters", "plan", "--as-of", "2025-05-31", "--treaty", "apmbc", "--json")
    later = json.loads(plan[1])["batch"]
    with pytest.raises(batches.BatchError, match="rule pack 'apmbc', which is not selected"):
        batches.approve(url, later, "A", treaties().get("ccm"), load_letters_config(), datetime.now(UTC))
    code, out = ccm("letters", "approve", str(later), "--by", "A", "--treaty", "ccm")
    assert code == 2 and "not 'ccm'" in " ".join(out.split())


def test_the_isu_approves_the_mine_ban_batch_over_the_api_with_that_treatys_wording(both, smtp_server, monkeypatch):
    from fastapi.testclient import TestClient

    from engine.web.app import ApiConfig, create_app

    monkeypatch.setenv("CCM_ISU_TOKEN", "isu-secret-token")
    code, out = ccm("letters", "plan", "--as-of", DAY.isoformat(), "--treaty", "apmbc", "--json")
    assert code == 0 and "treaty" not in json.loads(out)        # one pack named: the one-pack object
    apmbc_batch = json.loads(out)["batch"]
    with TestClient(create_app(load_settings(), ApiConfig(state_ttl_seconds=0))) as client:
        token = {"Authorization": "Bearer isu-secret-token"}
        listed = client.get("/api/letters/batches", headers=token).json()
        assert [(b["batch"], b["treaty"]) for b in listed] == [(apmbc_batch, "apmbc")]
        assert f"{apmbc_batch} (APMBC)" in client.get("/").text
        answer = client.post(f"/api/letters/batches/{apmbc_batch}/approve", json={"by": "Coordinator A"}, headers=token)
        assert answer.status_code == 200 and answer.json()["notes"] >= 2
    assert ccm("letters", "deliver")[0] == 0
    (iraq,) = [m for m in smtp_server.messages if m["To"] == "mission@iraq.example"]
    assert APMBC_TITLE in text_of(iraq) and APMBC_SIGNER in text_of(iraq) and "Cluster" not in text_of(iraq)


def test_a_contact_change_renders_each_unsent_note_again_with_its_own_treaty(both):
    url = both
    code, out = ccm("letters", "plan", "--as-of", DAY.isoformat(), "--json")
    for planned in json.loads(out):
        assert ccm("letters", "approve", str(planned["batch"]), "--by", "A")[0] == 0
    code, out = ccm("contacts", "set", "IRQ", "--email", "new@iraq.example", "--language", "fr", "--json")
    assert code == 0 and json.loads(out)["not_rerendered"] == []
    with store.reader_session(url) as session:
        notes = {pack: email.message_from_string(message, policy=email.policy.default)
                 for pack, message in session.execute(
                     sa.select(BatchRow.pack, LetterRow.message).join(BatchRow, BatchRow.id == LetterRow.batch_id)
                     .where(LetterRow.party == "IRQ")).all()}
    assert set(notes) == {"ccm", "apmbc"} and all(n["To"] == "new@iraq.example" for n in notes.values())
    assert "mines antipersonnel" in text_of(notes["apmbc"]) and "sous-munitions" not in text_of(notes["apmbc"])
    assert "sous-munitions" in text_of(notes["ccm"]) and "antipersonnel" not in text_of(notes["ccm"])


def test_letters_refuse_a_pack_that_is_not_selected(both, monkeypatch):
    monkeypatch.setenv("CCM_PACK", "ccm")
    reset()
    code, out = ccm("letters", "plan", "--as-of", DAY.isoformat(), "--treaty", "apmbc")
    assert code == 2 and "'apmbc' is not selected" in out and "CCM_PACK=ccm,apmbc" in " ".join(out.split())
    code, out = ccm("letters", "plan", "--as-of", DAY.isoformat(), "--json")
    assert code == 0 and "treaty" not in json.loads(out)          # one pack: the JSON as it always was
    with store.reader_session(both) as session:
        assert set(session.scalars(sa.select(BatchRow.pack))) == {"ccm"}


def test_migration_0008_keys_each_batch_by_the_pack_of_its_items(db_url):
    from alembic import command

    path = store.sqlite_path(db_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = store.get_engine(db_url)
    with engine.begin() as connection:
        command.upgrade(store.alembic_config(connection), "0007")
    with engine.begin() as connection:
        for batch_id in (1, 2, 3):
            connection.execute(sa.text("INSERT INTO letter_batches (id, as_of, created_at, status) "
                                       "VALUES (:i, '2025-05-01', CURRENT_TIMESTAMP, 'planned')"), {"i": batch_id})
        for batch_id, obligation in ((1, "ccm.art7.annual_report"), (2, "apmbc.art7.annual_report")):
            connection.execute(sa.text(
                "INSERT INTO letter_items (key, batch_id, party, obligation_id, period, stage, stage_name, kind, due, "
                "original_due, stage_date, status, article, basis, estimated) VALUES (:k, :b, 'IRQ', :o, '2024', "
                "'reminder1', 'reminder1', 'annual_report', '2025-04-30', '2025-04-30', '2025-05-01', 'overdue', "
                "'7(2)', '', false)"), {"k": f"IRQ|{obligation}|2024|reminder1", "b": batch_id, "o": obligation})
    store.upgrade(db_url)
    with engine.begin() as connection:
        rows = connection.execute(sa.text("SELECT id, pack FROM letter_batches ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [(1, "ccm"), (2, "apmbc"), (3, "ccm")]    # no item: the earlier default pack
    with engine.begin() as connection:
        command.downgrade(store.alembic_config(connection), "0007")
    with engine.begin() as connection:
        assert "pack" not in {c["name"] for c in sa.inspect(connection).get_columns("letter_batches")}
    assert store.upgrade(db_url) == ("0007", store.head_revision())


def test_without_a_complete_record_an_unknown_mine_ban_report_gets_no_letter(both, monkeypatch):
    """The embedded default: no receipts were collected for the Mine Ban Convention, so a past report with none
    recorded is `unknown`, and the planner writes to no State about it (as for the CCM)."""
    monkeypatch.setenv("CCM_RECEIPTS_COMPLETE_FROM", "")
    reset()
    tr = treaties()
    dues = delivery.obligations_as_of(both, tr.get("apmbc"), DAY, {"IRQ"}, home=tr.home)
    assert next(d.status for d in dues if d.obligation_id == "apmbc.art7.annual_report" and d.period == "2024") == "unknown"
    the_plan = delivery.make_plan(both, tr.get("apmbc"), load_letters_config(), DAY, dues, home=tr.home)
    assert [p for p in the_plan.items if p.party == "IRQ"] == []
    code, out = ccm("letters", "plan", "--as-of", DAY.isoformat(), "--treaty", "apmbc", "--json")
    assert code == 0 and all(item["obligation"] != "apmbc.art7.annual_report" or item["due"] >= DAY.isoformat()
                             for item in json.loads(out)["items"])
