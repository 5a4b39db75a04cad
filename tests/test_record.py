"""Recording: statuses follow the record at the next check, refusals say why, import and export."""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta

import sqlalchemy as sa

from engine.check.run import run_check
from engine.record.events import today_utc
from engine.store import database as store


def _changes(url: str, party: str, obligation_id: str) -> list[store.ChangeRow]:
    with store.reader_session(url) as session:
        return list(session.scalars(sa.select(store.ChangeRow).where(
            store.ChangeRow.party == party, store.ChangeRow.obligation_id == obligation_id).order_by(store.ChangeRow.id)))


def _obligation(url: str, party: str, obligation_id: str, period: str = "") -> store.ObligationRow:
    with store.reader_session(url) as session:
        return session.scalars(sa.select(store.ObligationRow).filter_by(
            party=party, obligation_id=obligation_id, period=period)).one()


def test_a_late_receipt_turns_an_overdue_initial_report_into_fulfilled_late_and_the_change_log_says_so(
        db_url, ccm, record_evaluator):
    assert ccm("init")[0] == 0
    run_check(db_url, record_evaluator, date(2012, 1, 1))
    assert _obligation(db_url, "LBN", "ccm.art7.initial_report").status == "overdue"
    code, out = ccm("record", "report", "LBN", "--kind", "initial", "--received", "2011-12-01",
                    "--symbol", "CCM/LBN/INIT", "--source", "https://example.org/lbn-initial")
    assert code == 0 and "Recorded" in out
    assert _obligation(db_url, "LBN", "ccm.art7.initial_report").status == "overdue"   # not before the next check
    run_check(db_url, record_evaluator, date(2012, 1, 1))
    assert _obligation(db_url, "LBN", "ccm.art7.initial_report").status == "fulfilled_late"
    change = _changes(db_url, "LBN", "ccm.art7.initial_report")[-1]
    assert (change.field, change.old, change.new) == ("status", "overdue", "fulfilled_late")
    assert "34 days after 28 Oct 2011" in change.reason


def test_a_receipt_on_time_makes_the_initial_report_fulfilled(db_url, ccm, record_evaluator):
    assert ccm("init")[0] == 0
    run_check(db_url, record_evaluator, date(2011, 10, 1))
    assert _obligation(db_url, "LBN", "ccm.art7.initial_report").status == "pending"
    assert ccm("record", "report", "Lebanon", "--kind", "initial", "--received", "2011-10-20")[0] == 0
    run_check(db_url, record_evaluator, date(2011, 11, 1))
    assert _obligation(db_url, "LBN", "ccm.art7.initial_report").status == "fulfilled"
    change = _changes(db_url, "LBN", "ccm.art7.initial_report")[-1]
    assert (change.field, change.old, change.new) == ("status", "pending", "fulfilled")


def test_recording_a_decision_moves_the_deadline_and_the_change_log_names_the_rule(db_url, ccm, record_evaluator):
    assert ccm("init")[0] == 0
    run_check(db_url, record_evaluator, date(2025, 10, 1))
    before = _obligation(db_url, "DEU", "ccm.art4.clearance")
    # Germany's request to the 12MSP is known and no decision on it is recorded: the passed
    # deadline reads "decision not recorded" (unknown), not overdue.
    assert (before.due, before.status) == (date(2025, 8, 1), "unknown")
    assert before.status_reason.startswith("decision not recorded")
    code, out = ccm("record", "decision", "DEU", "--article", "4", "--meeting", "13MSP", "--decided", "2025-09-18",
                    "--granted", "2026-12-31", "--document", "CCM/MSP/2025/X")
    assert code == 0, out
    run_check(db_url, record_evaluator, date(2025, 10, 1))
    after = _obligation(db_url, "DEU", "ccm.art4.clearance")
    assert (after.due, after.original_due, after.status) == (date(2026, 12, 31), before.original_due, "pending")
    assert "ccm.art4.extension" in after.provenance["basis"]
    moved = {c.field: c for c in _changes(db_url, "DEU", "ccm.art4.clearance")[-2:]}
    assert (moved["due"].old, moved["due"].new) == ("2025-08-01", "2026-12-31")
    assert "rule ccm.art4.extension applied" in moved["due"].reason
    assert (moved["status"].old, moved["status"].new) == ("unknown", "pending")


# --------------------------------------------------------------------------- refusals

def test_a_receipt_dated_in_the_future_is_refused_with_a_sentence(db_url, ccm):
    tomorrow = (today_utc() + timedelta(days=1)).isoformat()
    code, out = ccm("record", "report", "LBN", "--kind", "annual", "--year", "2020", "--received", tomorrow)
    assert code == 2
    assert f"Refused: a report received on {tomorrow} is in the future" in out


def test_a_receipt_before_entry_into_force_is_refused_because_the_party_was_not_a_state_party(db_url, ccm):
    code, out = ccm("record", "report", "LBN", "--kind", "initial", "--received", "2011-04-30")
    assert code == 2
    assert ("Refused: Lebanon was not a State Party on 2011-04-30 (the Convention entered into force for it on "
            "2011-05-01), so a report received on that date cannot count.") in out


def test_a_receipt_after_the_withdrawal_took_effect_is_refused(db_url, ccm):
    code, out = ccm("record", "report", "LTU", "--kind", "annual", "--year", "2024", "--received", "2025-04-30")
    assert code == 2
    assert "Refused: Lithuania was no longer a State Party on 2025-04-30 (its withdrawal took effect on 2025-03-06)." in out


def test_a_decision_beyond_the_treatys_ceiling_is_refused_by_the_engines_own_rule(db_url, ccm):
    code, out = ccm("record", "decision", "LAO", "--article", "4", "--meeting", "13MSP", "--decided", "2025-09-18",
                    "--granted", "2040-08-01")
    assert code == 2
    assert "Refused: the decision extends Lao People's Democratic Republic's deadline beyond the treaty's ceiling" in out
    assert "beyond the ceiling of 5 years (1 Aug 2025 + 5 years = 1 Aug 2030)" in out


def test_an_unknown_party_and_an_unknown_meeting_are_refused_with_suggestions(db_url, ccm):
    code, out = ccm("record", "report", "Lebanonn", "--kind", "initial", "--received", "2011-10-20")
    assert code == 2 and "No participant matches 'Lebanonn'. Did you mean: Lebanon (LBN)?" in out
    code, out = ccm("record", "extension-request", "LAO", "--article", "4", "--meeting", "99MSP", "--submitted", "2025-03-01")
    assert code == 2 and "No meeting has the code '99MSP'" in out


def test_a_refused_recording_writes_nothing(db_url, ccm):
    ccm("record", "report", "LBN", "--kind", "initial", "--received", "2011-04-30")
    with store.reader_session(db_url) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(store.RecordedEventRow)) == 0


# --------------------------------------------------------------------------- import / export

ROWS = [
    {"party": "LBN", "kind": "initial", "year": "", "received": "2011-12-01", "symbol": "CCM/LBN/1", "source": "https://example.org/1"},
    {"party": "LBN", "kind": "annual", "year": "2011", "received": "2012-04-30", "symbol": "", "source": ""},
    {"party": "NOR", "kind": "annual", "year": "2011", "received": "2012-05-02", "symbol": "CCM/NOR/2012", "source": ""},
]


def _write_csv(path, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["party", "kind", "year", "received", "symbol", "source"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def _count(url):
    with store.reader_session(url) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(store.RecordedEventRow))


def test_an_import_with_one_bad_row_writes_nothing_and_names_the_line_and_field(db_url, ccm, tmp_path):
    bad = dict(ROWS[2], received="2012-13-45")
    code, out = ccm("import", str(_write_csv(tmp_path / "receipts.csv", ROWS[:2] + [bad])))
    assert code == 2
    assert "Nothing was imported: 1 problem(s) found. line 4, field received: '2012-13-45' is not a date" in out
    assert _count(db_url) == 0


def test_an_import_reports_every_bad_row_including_refusals(db_url, ccm, tmp_path):
    rows = [dict(ROWS[0], party="Atlantis"), ROWS[1], dict(ROWS[2], kind="annual", year="20x1"),
            dict(ROWS[0], received="2011-04-01")]
    code, out = ccm("import", str(_write_csv(tmp_path / "receipts.csv", rows)))
    assert code == 2
    assert "line 2, field party: No participant matches 'Atlantis'" in out
    assert "line 4, field year: '20x1' is not a year" in out
    assert "line 5, field received: Refused: Lebanon was not a State Party on 2011-04-01" in out
    assert _count(db_url) == 0


def test_a_json_import_names_the_bad_entry(db_url, ccm, tmp_path):
    path = tmp_path / "receipts.json"
    path.write_text(json.dumps([ROWS[0], dict(ROWS[1], kind="quarterly")]), encoding="utf-8")
    code, out = ccm("import", str(path))
    assert code == 2 and "entry 2, field kind: 'quarterly' is not one of initial, annual, retention" in out
    assert _count(db_url) == 0


def test_export_then_import_gives_back_the_same_receipts_in_csv_and_json(db_url, ccm, tmp_path, monkeypatch):
    code, out = ccm("import", str(_write_csv(tmp_path / "in.csv", ROWS)))
    assert code == 0 and "Imported 3 receipt(s)" in out
    for fmt in ("csv", "json"):
        exported = tmp_path / f"out.{fmt}"
        assert ccm("export", "--format", fmt, "--output", str(exported))[0] == 0
        if fmt == "csv":
            assert list(csv.DictReader(exported.open(encoding="utf-8"))) == sorted(ROWS, key=lambda r: (r["party"], r["kind"]))
        else:
            assert json.loads(exported.read_text(encoding="utf-8")) == sorted(ROWS, key=lambda r: (r["party"], r["kind"]))
        # into an empty database: the same rows come back out
        monkeypatch.setenv("CCM_DATABASE_URL", f"sqlite:///{tmp_path / f'copy-{fmt}.sqlite'}")
        assert ccm("import", str(exported))[0] == 0
        again = tmp_path / f"again.{fmt}"
        assert ccm("export", "--format", fmt, "--output", str(again))[0] == 0
        assert again.read_text(encoding="utf-8") == exported.read_text(encoding="utf-8")
        monkeypatch.setenv("CCM_DATABASE_URL", db_url)
    code, out = ccm("import", str(tmp_path / "in.csv"))
    assert code == 0 and "Imported 0 receipt(s) from in.csv; 3 already recorded" in out


def test_history_lists_registry_facts_and_recorded_events_with_their_sources(db_url, ccm):
    ccm("record", "report", "LBN", "--kind", "initial", "--received", "2011-12-01", "--source", "https://example.org/lbn")
    code, out = ccm("history", "LBN", "--json")
    assert code == 0
    items = json.loads(out)["history"]
    recorded = [i for i in items if i["origin"].startswith("recorded")]
    assert recorded[0]["what"].startswith("initial report received on 1 Dec 2011")
    assert recorded[0]["sources"] == ["https://example.org/lbn"]
    assert any(i["origin"] == "registry" and "deposited" in i["what"] and i["sources"] for i in items)
    dated = [i["date"] for i in items if i["date"]]
    assert dated == sorted(dated)


def test_a_clarification_request_creates_a_response_obligation_named_by_its_id(db_url, ccm, record_evaluator):
    assert ccm("record", "clarification-request", "NOR", "--received", "2020-03-01", "--id", "REQ-1")[0] == 0
    run_check(db_url, record_evaluator, date(2020, 3, 15))
    assert _obligation(db_url, "NOR", "ccm.art8.clarification_response", "REQ-1").status == "pending"
    assert ccm("record", "clarification-response", "NOR", "--request", "REQ-1", "--submitted", "2020-03-20")[0] == 0
    run_check(db_url, record_evaluator, date(2020, 4, 1))
    assert _obligation(db_url, "NOR", "ccm.art8.clarification_response", "REQ-1").status == "fulfilled"
