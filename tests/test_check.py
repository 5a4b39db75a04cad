"""The daily check: one transaction, a change log, the digest, exit statuses, and the stats."""

from __future__ import annotations

import json
from datetime import date

import sqlalchemy as sa

from engine.check.run import run_check
from engine.store import database as store


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
    from engine.check.run import digest_context

    store.upgrade(db_url)
    context = digest_context(run_check(db_url, record_evaluator, date(2013, 6, 1)), record_evaluator)
    kinds = [r["obligation"] for r in context["overdue_reports"]]
    initial = kinds.count("ccm.art7.initial_report")
    assert initial > 0 and kinds[:initial] == ["ccm.art7.initial_report"] * initial
    late = [r["days_late"] for r in context["overdue_reports"][:initial]]
    assert late == sorted(late, reverse=True)


def test_the_digest_lists_extension_requests_due_before_the_next_meeting(db_url, record_evaluator):
    from engine.check.run import digest_context

    store.upgrade(db_url)
    context = digest_context(run_check(db_url, record_evaluator, date(2019, 11, 1)), record_evaluator)
    assert context["next_meeting"]["code"] == "2RC-1"
    listed = {(r["party"], r["obligation"], r["due"]) for r in context["extension_requests"]}
    # nine months before the opening as convened (23 Nov 2020), not as held (25 Nov 2020, virtually)
    assert ("LBN", "ccm.art4.extension_request", "2020-02-23") in listed
    assert ("PER", "ccm.art3.extension_request", "2020-02-23") in listed
    assert all(r["meeting"] == "2RC-1" for r in context["extension_requests"])


def test_exit_status_is_0_when_nothing_needs_attention_and_1_when_something_does(db_url, ccm):
    code, out = ccm("check", "--as-of", "2009-06-01")
    assert code == 0 and "Nothing needs attention (exit status 0)." in out
    code, out = ccm("check", "--as-of", "2012-01-01")
    assert code == 1 and "Needs attention (exit status 1)." in out


def test_a_recorded_receipt_appears_in_the_digest_as_a_change(db_url, ccm, tmp_path):
    ccm("check", "--as-of", "2012-01-01")
    ccm("record", "report", "LBN", "--kind", "initial", "--received", "2011-12-01")
    _code, out = ccm("check", "--as-of", "2012-01-01", "--json")
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
    # On the embedded data alone: two receipts published with their dates (Sierra Leone, Malawi),
    # two reports a source lists as still outstanding, and 35 with no record either way
    # (docs/published-aggregates.md sets these beside the Beirut Progress Report's 32 of 47).
    assert counts["initial_reports"] == {"due": 39, "received": 2, "received_late": 0, "received_date_unknown": 0,
                                         "outstanding": 2, "unknown": 35, "not_yet_due": 13}
    assert counts["article_3"]["states_with_obligation"] == 15 and counts["article_3"]["completed"] == 3
    assert counts["article_4"]["states_with_obligation"] == 9
    assert counts["extension_requests_decided"]["total"] == 0


def test_stats_count_recorded_receipts_and_late_ones(db_url, ccm):
    before = json.loads(ccm("stats", "--as-of", "2012-01-01", "--json")[1])["initial_reports"]
    ccm("record", "report", "LBN", "--kind", "initial", "--received", "2011-12-01")
    ccm("record", "report", "NOR", "--kind", "initial", "--received", "2011-01-20")
    after = json.loads(ccm("stats", "--as-of", "2012-01-01", "--json")[1])["initial_reports"]
    assert after["received"] - before["received"] == 2 and after["received_late"] - before["received_late"] == 1
    assert before["outstanding"] - after["outstanding"] == 2   # the record is complete (db_url): no receipt was overdue


# ----------------------------------------------------------------------------- the check streams party by party

def _stored(url: str):
    """The obligations table as (party, id, period) -> the values a check writes."""
    with store.reader_session(url) as session:
        rows = session.execute(sa.select(store.ObligationRow)).scalars().all()
        return {(r.party, r.obligation_id, r.period): (r.article, r.due, r.original_due, r.status, r.status_reason,
                                                       r.meeting, r.provenance, r.rulebook_hash) for r in rows}


def _keys(rows):
    return {(o["party"], o["obligation_id"], o["period"]) for o in rows}


def _listable(stored, day, listed):
    """The stored rows a digest section can list, by the sections' own definitions, written out
    again here rather than asked of engine/check/listed.py: overdue, awaiting a decision, missed,
    pending within the window or an extension request, unknown other than a report, and the open
    deadline a missed request put at risk."""
    from datetime import timedelta

    end = day + timedelta(days=90)
    missed = {(k[0], listed.follows.get(k[1])) for k, v in stored.items() if v[3] == "missed"}
    keys = set()
    for key, (_article, due, _original, status, *_rest) in stored.items():
        if (status in ("overdue", "awaiting_decision", "missed")
                or (status == "unknown" and key[1] not in listed.report_ids)
                or (status == "pending" and (day <= due <= end or key[1] in listed.request_ids))
                or (key[2] == "" and (key[0], key[1]) in missed and status in ("pending", "overdue", "unknown"))):
            keys.add(key)
    return keys


def _expected(evaluator, day, events=()):
    from engine.check.run import obligation_values

    expected = {}
    for iso3 in sorted(evaluator.registry.participants):
        evaluation = evaluator.evaluate(iso3, day, [e for e in events if e.party == iso3])
        for o in evaluation.obligations:
            v = obligation_values(iso3, o, evaluation.rulebook_hash)
            expected[(iso3, v["obligation_id"], v["period"])] = (v["article"], v["due"], v["original_due"], v["status"],
                                                                v["status_reason"], v["meeting"], v["provenance"],
                                                                v["rulebook_hash"])
    return expected


def test_in_small_chunks_and_batches_the_table_holds_what_the_engine_says(db_url, record_evaluator, monkeypatch):
    from engine.check import run as check
    from engine.record.events import NewEvent, load_events, record

    monkeypatch.setattr(check, "CHUNK_PARTIES", 7)    # 18 chunks of the 125 participants
    monkeypatch.setattr(check, "BATCH_ROWS", 50)      # many executemany batches inside the one transaction
    store.upgrade(db_url)
    seen = 0
    for day in (date(2012, 1, 1), "record", date(2013, 6, 1), date(2013, 6, 1), date(2010, 6, 1), date(2025, 6, 1)):
        if day == "record":
            record(db_url, record_evaluator, NewEvent(party="LBN", kind="report:initial", on=date(2011, 12, 1)))
            continue
        result = run_check(db_url, record_evaluator, day)
        stored = _stored(db_url)
        assert stored == _expected(record_evaluator, day, load_events(db_url))
        assert result.counts["obligations"] == len(stored)
        assert _keys(result.obligations) == _listable(stored, day, result.listed)   # kept: what the digest lists
        with store.reader_session(db_url) as session:
            logged = session.scalar(sa.select(sa.func.count()).select_from(store.ChangeRow)
                                    .where(store.ChangeRow.check_run_id == result.run_id))
        assert logged == result.counts["changes"]
        assert len(result.changes) == (0 if result.first_check else logged)   # a first digest lists no change
        seen += logged
    assert seen > 2000      # new rows, statuses moved, rows removed when the clock went back


def test_a_check_in_chunks_moves_and_logs_what_one_pass_does(db_url, record_evaluator, monkeypatch):
    from engine.check import run as check
    store.upgrade(db_url)
    run_check(db_url, record_evaluator, date(2013, 6, 1))
    whole = run_check(db_url, record_evaluator, date(2019, 11, 1))
    monkeypatch.setattr(check, "CHUNK_PARTIES", 10)
    monkeypatch.setattr(check, "BATCH_ROWS", 7)
    chunked = run_check(db_url, record_evaluator, date(2013, 6, 1))
    back = run_check(db_url, record_evaluator, date(2019, 11, 1))

    def moved(result):
        return sorted((c.party, c.obligation_id, c.period, c.field, c.old, c.new, c.reason) for c in result.changes)

    assert moved(back) == moved(whole) and back.counts == whole.counts
    assert chunked.counts["removed"] > 0 and back.counts["inserted"] > 0      # the clock went back, then forward
    assert sorted(map(repr, back.obligations)) == sorted(map(repr, whole.obligations))


def test_a_party_that_cannot_be_evaluated_keeps_what_was_stored(db_url, record_evaluator):
    from engine.backends import Evaluator
    from engine.core.compute import EvaluationError

    class Failing(Evaluator):
        def evaluate(self, iso3, as_of, recorded=()):
            if iso3 == "LBN":
                raise EvaluationError("no rule applies (test)")
            return super().evaluate(iso3, as_of, recorded)

    store.upgrade(db_url)
    run_check(db_url, record_evaluator, date(2012, 1, 1))
    before = {k: v for k, v in _stored(db_url).items() if k[0] == "LBN"}
    failing = Failing(record_evaluator.rulebook, record_evaluator.registry, "durable")
    result = run_check(db_url, failing, date(2013, 6, 1))
    assert result.errors == [("LBN", "no rule applies (test)")]
    assert {k: v for k, v in _stored(db_url).items() if k[0] == "LBN"} == before and before
    assert not any(c.party == "LBN" for c in result.changes)
    kept = [o for o in result.obligations if o["party"] == "LBN"]     # the digest still lists its stored rows
    assert _keys(kept) == _listable(before, date(2013, 6, 1), result.listed) and kept
    assert all((o["status"], o["due"]) == (before[(o["party"], o["obligation_id"], o["period"])][3],
                                           before[(o["party"], o["obligation_id"], o["period"])][1]) for o in kept)


def test_the_rows_of_a_party_no_longer_in_the_registry_are_removed_and_logged(db_url, record_evaluator):
    from dataclasses import replace

    from engine.backends import Evaluator

    store.upgrade(db_url)
    run_check(db_url, record_evaluator, date(2025, 6, 1))
    threshold, _ = record_evaluator.registry.thirtieth_deposit()
    late = [iso3 for iso3, p in sorted(record_evaluator.registry.participants.items())
            if p.deposit_date and p.deposit_date > threshold]
    gone = {late[0], late[-1]}     # parties that did not bring the treaty into force: nobody else's dates move
    registry = replace(record_evaluator.registry,
                       participants={k: v for k, v in record_evaluator.registry.participants.items() if k not in gone})
    stored = {k for k in _stored(db_url) if k[0] in gone}
    result = run_check(db_url, Evaluator(record_evaluator.rulebook, registry, "durable",
                                         receipts_complete_from=record_evaluator.receipts_complete_from), date(2025, 6, 1))
    assert stored and not {k for k in _stored(db_url) if k[0] in gone}
    assert {(c.party, c.obligation_id, c.period) for c in result.changes if c.field == "removed"} == stored
    assert result.counts["removed"] == len(stored) and result.counts["changes"] == len(stored)


def test_the_digest_names_the_parties_needing_attention_that_have_no_contact_for_letters(tmp_path, monkeypatch, ccm):
    # Issue 4: a party without a contact is reported in the digest, not silently skipped.
    url = f"sqlite:///{tmp_path / 'ccm.sqlite'}"
    monkeypatch.setenv("CCM_DATABASE_URL", url)
    monkeypatch.setenv("CCM_OUTPUT_FOLDER", str(tmp_path / "digests"))
    try:
        assert ccm("contacts", "set", "LAO", "--email", "mission@lao.example", "--language", "fr")[0] == 0
        code, out = ccm("check", "--as-of", "2025-06-01")
    finally:
        store.dispose_engines()
    assert code == 1
    digest = (tmp_path / "digests" / "digest-2025-06-01.md").read_text(encoding="utf-8")
    section = digest.split("## Needing attention, with no contact for letters")[1].split("\n## ")[0]
    # Sierra Leone's annual reports are listed as outstanding by the Monitor (an observation in the
    # registry); Lao PDR's request awaits a recorded decision, and Lao PDR has a contact.
    assert "| Sierra Leone (SLE) |" in section and "(LAO)" not in section
    assert "Needing attention, with no contact for letters" in out
