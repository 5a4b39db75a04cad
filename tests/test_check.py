"""The daily check: one transaction, a change log, the digest, exit statuses, and the stats."""

from __future__ import annotations

import json
from datetime import date

import sqlalchemy as sa

from engine import store
from engine.check import run_check


def _snapshot(url: str):
    with store.reader_session(url) as session:
        obligations = sorted(tuple(r) for r in session.execute(sa.select(
            store.ObligationRow.party, store.ObligationRow.obligation_id, store.ObligationRow.period,
            store.ObligationRow.due, store.ObligationRow.status, store.ObligationRow.status_reason,
            store.ObligationRow.computed_at)))
        changes = session.scalar(sa.select(sa.func.count()).select_from(store.ChangeRow))
        runs = session.scalar(sa.select(sa.func.count()).select_from(store.CheckRunRow))
    return obligations, changes, runs


def test_the_first_check_on_a_new_machine_initialises_the_database_and_prints_a_digest(tmp_path, monkeypatch, ccm,
                                                                                      record_evaluator, expected_obligations):
    path = tmp_path / "fresh" / "ccm.sqlite"
    monkeypatch.setenv("CCM_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("CCM_OUTPUT_FOLDER", str(tmp_path / "digests"))
    try:
        code, out = ccm("check", "--as-of", "2025-06-01")
    finally:
        store.dispose_engines()
    assert path.exists()
    assert f"Initialised a new database at {path}." in out
    assert "Reports overdue" in out and "Deadlines in the next 90 days" in out
    assert f"first check, {expected_obligations(record_evaluator, date(2025, 6, 1))} obligations stored" in out
    assert code == 1 and "Needs attention (exit status 1)." in out
    assert (tmp_path / "digests" / "digest-2025-06-01.md").exists()
    assert (tmp_path / "digests" / "digest-2025-06-01.html").exists()


def test_a_check_twice_on_the_same_day_changes_nothing_the_second_time(db_url, record_evaluator, expected_obligations):
    store.upgrade(db_url)
    first = run_check(db_url, record_evaluator, date(2025, 6, 1))
    before = _snapshot(db_url)
    second = run_check(db_url, record_evaluator, date(2025, 6, 1))
    after = _snapshot(db_url)
    assert first.counts["inserted"] == expected_obligations(record_evaluator, date(2025, 6, 1)) and first.first_check
    assert second.changes == [] and second.counts["updated"] == 0 and not second.first_check
    assert after[0] == before[0] and after[1] == before[1] and after[2] == before[2] + 1


def test_the_next_day_updates_reasons_but_logs_only_what_moved(db_url, record_evaluator):
    store.upgrade(db_url)
    run_check(db_url, record_evaluator, date(2012, 4, 30))
    result = run_check(db_url, record_evaluator, date(2012, 5, 1))
    moved = {(c.party, c.obligation_id, c.period, c.field, c.old, c.new) for c in result.changes}
    assert ("LBN", "ccm.art7.annual_report", "2011", "status", "pending", "overdue") in moved
    assert all(c.field in ("status", "due", "original_due", "new", "removed") for c in result.changes)


def test_the_digest_lists_initial_reports_first_then_by_days_late(db_url, record_evaluator):
    from engine.check import digest_context

    store.upgrade(db_url)
    context = digest_context(run_check(db_url, record_evaluator, date(2013, 6, 1)), record_evaluator)
    kinds = [r["obligation"] for r in context["overdue_reports"]]
    initial = kinds.count("ccm.art7.initial_report")
    assert initial > 0 and kinds[:initial] == ["ccm.art7.initial_report"] * initial
    late = [r["days_late"] for r in context["overdue_reports"][:initial]]
    assert late == sorted(late, reverse=True)


def test_the_digest_lists_extension_requests_due_before_the_next_meeting(db_url, record_evaluator):
    from engine.check import digest_context

    store.upgrade(db_url)
    context = digest_context(run_check(db_url, record_evaluator, date(2019, 11, 1)), record_evaluator)
    assert context["next_meeting"]["code"] == "2RC-1"
    listed = {(r["party"], r["obligation"], r["due"]) for r in context["extension_requests"]}
    assert ("LBN", "ccm.art4.extension_request", "2020-02-25") in listed
    assert ("PER", "ccm.art3.extension_request", "2020-02-25") in listed
    assert all(r["meeting"] == "2RC-1" for r in context["extension_requests"])


def test_exit_status_is_0_when_nothing_needs_attention_and_1_when_something_does(db_url, ccm):
    code, out = ccm("check", "--as-of", "2009-06-01")
    assert code == 0 and "Nothing needs attention (exit status 0)." in out
    code, out = ccm("check", "--as-of", "2012-01-01")
    assert code == 1 and "Needs attention (exit status 1)." in out


def test_a_recorded_receipt_appears_in_the_digest_as_a_change(db_url, ccm, tmp_path):
    ccm("check", "--as-of", "2012-01-01")
    ccm("record", "report", "LBN", "--kind", "initial", "--received", "2011-12-01")
    code, out = ccm("check", "--as-of", "2012-01-01", "--json")
    changes = json.loads(out)["changes"]
    assert [(c["party"], c["field"], c["old"], c["new"]) for c in changes] == [("LBN", "status", "overdue", "fulfilled_late")]
    markdown = (tmp_path / "digests" / "digest-2012-01-01.md").read_text(encoding="utf-8")
    assert "| Lebanon (LBN) | ccm.art7.initial_report |  | status | overdue | fulfilled_late |" in markdown
    html = (tmp_path / "digests" / "digest-2012-01-01.html").read_text(encoding="utf-8")
    assert "<td>fulfilled_late</td>" in html


def test_stats_on_the_beirut_progress_report_cut_off_date(tmp_path, monkeypatch, ccm):
    monkeypatch.setenv("CCM_DATABASE_URL", f"sqlite:///{tmp_path / 'none.sqlite'}")
    code, out = ccm("stats", "--as-of", "2011-08-20", "--json")
    counts = json.loads(out)
    assert code == 0
    assert counts["states_parties"] == 52
    assert counts["initial_reports"] == {"due": 39, "received": 0, "received_late": 0, "outstanding": 39, "not_yet_due": 13}
    assert counts["article_3"]["states_with_obligation"] == 15 and counts["article_3"]["completed"] == 3
    assert counts["article_4"]["states_with_obligation"] == 9
    assert counts["extension_requests_decided"]["total"] == 0


def test_stats_count_recorded_receipts_and_late_ones(db_url, ccm):
    ccm("record", "report", "LBN", "--kind", "initial", "--received", "2011-12-01")
    ccm("record", "report", "NOR", "--kind", "initial", "--received", "2011-01-20")
    counts = json.loads(ccm("stats", "--as-of", "2012-01-01", "--json")[1])
    assert counts["initial_reports"]["received"] == 2 and counts["initial_reports"]["received_late"] == 1
