"""Truthful by default: what the embedded registry says today is backed by a fact with its source.

A report that no receipt and no published observation covers is ``unknown``, never ``overdue``;
an extension request is optional and never overdue; a date that hangs on a projected meeting
says it is an estimate; a passed deadline with a request awaiting a recorded decision reads
"decision not recorded".
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from engine.backends import Evaluator
from engine.check.run import digest_context, run_check
from engine.core.model import Meeting
from engine.core.rulebook import load_rulebook
from engine.registry.load import load_registry
from engine.store import database as store

TODAY = date(2026, 11, 30)
PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def embedded(registry):
    """The embedded default: no record of receipts is complete for any day."""
    return Evaluator(load_rulebook(), registry, "durable")


def _only(evaluation, obligation_id, period=None):
    found = evaluation.find(obligation_id, period)
    assert len(found) == 1, [(o.id, o.period) for o in found]
    return found[0]


# ----------------------------------------------------------------------------- the daily check on the embedded data

@pytest.fixture(scope="module")
def todays_check(tmp_path_factory):
    """`ccm check --as-of 2026-11-30` on the embedded registry, as a new user runs it."""
    import os
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("today")
    env = {**os.environ, "CCM_DATABASE_URL": f"sqlite:///{folder / 'ccm.sqlite'}", "CCM_OUTPUT_FOLDER": str(folder)}
    env.pop("CCM_RECEIPTS_COMPLETE_FROM", None)
    env.pop("CCM_CONFIG", None)
    result = subprocess.run([sys.executable, "-c", "from engine.cli.main import app; app()", "check", "--as-of",
                             TODAY.isoformat(), "--json"], cwd=PROJECT, env=env, check=False, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1, result.stderr
    return json.loads(result.stdout), folder


def test_every_overdue_item_of_todays_digest_is_backed_by_the_registry(todays_check, embedded, registry):
    context, _ = todays_check
    observations = {f"observation:{o.id}": o for o in registry.observations}
    for row in context["overdue_reports"]:
        evaluation = embedded.evaluate(row["party"], TODAY)
        obligation = _only(evaluation, row["obligation"], row["period"] or None)
        # An overdue report rests on a published list that names it, dated after it fell due.
        observation = observations[obligation.evidence]
        assert row["party"] in observation.outstanding and observation.sources
        assert observation.observed_on > obligation.due
        assert observation.observer in obligation.status_reason
    for row in context["overdue_other"]:
        evaluation = embedded.evaluate(row["party"], TODAY)
        obligation = _only(evaluation, row["obligation"], row["period"] or None)
        # An overdue deadline rests on the registry's declaration of the obligation and on no
        # completion, request or decision that would move or meet it.
        assert evaluation.rulebook_hash and any(i.startswith("declaration:") for i in obligation.inputs)
        assert not any(k.startswith(("completion:", "extension_request:")) for k in evaluation.facts
                       if k.endswith(row["article"].split("(")[0]))
    assert not [r for r in context["overdue_other"] if r["obligation"].endswith("extension_request")]


def test_todays_digest_counts_reports_with_no_record_apart_and_lists_decisions_to_record(todays_check):
    context, folder = todays_check
    unknown = context["unknown_reports"]
    assert unknown["total"] > 1000 > len(context["overdue_reports"])
    assert {(r["party"], r["meeting"]) for r in context["decisions_to_record"]} >= {
        ("DEU", "12MSP"), ("LAO", "12MSP"), ("AFG", "13MSP"), ("CHL", "13MSP"), ("LBN", "13MSP"), ("SOM", "13MSP")}
    initial = {r["party"] for r in context["overdue_reports"] if r["obligation"] == "ccm.art7.initial_report"}
    # The ISU's late-2021 list less Niue (received December 2021): no other initial report is claimed late.
    assert initial == {"CPV", "COM", "COG", "GIN", "MDG", "RWA", "STP", "TGO"}
    markdown = (folder / f"digest-{TODAY.isoformat()}.md").read_text(encoding="utf-8")
    assert f"## Reports with no record of receipt ({unknown['total']})" in markdown
    assert "status is `unknown`, not overdue" in markdown
    assert "## Decisions to record (" in markdown
    assert "projected by the calendar rule: its dates are not yet set" in markdown


def test_the_readme_shows_todays_headline_counts(todays_check):
    context, _ = todays_check
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    expected = (f"{len(context['overdue_reports'])} reports overdue, {len(context['overdue_other'])} other obligation overdue, "
                f"{context['unknown_reports']['total']} reports with no record of receipt, "
                f"{len(context['decisions_to_record'])} decisions to record, "
                f"{len(context['missed'])} extension request missed")
    assert expected in readme


# ----------------------------------------------------------------------------- reports: receipts and observations

def test_a_report_named_by_a_published_list_is_overdue_with_the_list_as_evidence(embedded):
    comoros = embedded.evaluate("COM", TODAY)
    initial = _only(comoros, "ccm.art7.initial_report")
    assert initial.status == "overdue" and initial.evidence.startswith("observation:")
    assert initial.to_json()["evidence"]["sources"]


def test_a_report_left_out_of_a_complete_list_was_received_by_the_last_day_the_list_can_speak_for(embedded):
    # The ISU's list of 2021 (written between 20 Sep and 31 Dec 2021) names nine States; Switzerland is not one.
    switzerland = embedded.evaluate("CHE", TODAY)
    initial = _only(switzerland, "ccm.art7.initial_report")
    assert (initial.status, initial.received, initial.received_by) == ("received", None, date(2019, 6, 11))
    payload = initial.to_json()
    assert payload["received_by"] == "2019-06-11" and "received" not in payload
    assert "whether it was on time is not known" in initial.status_reason


def test_listed_then_left_out_means_received_late(embedded, registry):
    # Madagascar is on the 2018-19 ISU list: its report was late; on a later complete list it would be received late.
    later = replace(registry.observations[-1], id="test-later", observed_on=date(2023, 1, 1),
                    observed_until=date(2023, 1, 1), kind="initial", period=None, complete=True,
                    outstanding=frozenset({"COM"}))
    evaluator = Evaluator(embedded.rulebook, replace(registry, observations=registry.observations + (later,)), "reference")
    initial = _only(evaluator.evaluate("MDG", TODAY), "ccm.art7.initial_report")
    assert (initial.status, initial.received_by) == ("fulfilled_late", date(2023, 1, 1))


def test_a_receipt_recorded_by_the_isu_wins_over_an_observation(embedded):
    from engine.core.facts import RecordedEvent

    receipt = RecordedEvent(kind="report:initial", party="COM", on=date(2012, 1, 5), label="received (recorded)")
    initial = _only(embedded.evaluate("COM", TODAY, [receipt]), "ccm.art7.initial_report")
    assert (initial.status, initial.received) == ("fulfilled_late", date(2012, 1, 5))


def test_no_receipt_and_no_observation_is_unknown_until_the_record_is_complete(embedded, registry):
    vanuatu = _only(embedded.evaluate("VUT", TODAY), "ccm.art7.initial_report")
    assert vanuatu.status == "unknown" and "not known" in vanuatu.status_reason
    complete = Evaluator(embedded.rulebook, registry, "reference", receipts_complete_from=date(2026, 1, 1))
    assert _only(complete.evaluate("VUT", TODAY), "ccm.art7.initial_report").status == "overdue"
    # A report due before the record is complete stays unknown.
    assert _only(complete.evaluate("LAO", TODAY), "ccm.art7.annual_report", "2015").status == "unknown"


def test_explain_shows_the_observation_and_its_source(ccm):
    code, out = ccm("explain", "COM", "ccm.art7.initial_report", "--as-of", TODAY.isoformat())
    assert code == 0, out
    assert "Cluster Munition Monitor 2022" in out and "still outstanding" in out
    assert re.search(r"source: https?://\S*monitor", out)


# ----------------------------------------------------------------------------- extension requests are optional

def test_extension_requests_are_never_overdue(embedded, registry):
    statuses = set()
    for iso3 in registry.participants:
        for obligation in embedded.evaluate(iso3, TODAY).obligations:
            if obligation.id.endswith("extension_request"):
                statuses.add(obligation.status)
    assert "overdue" not in statuses
    assert {"not_needed", "missed", "awaiting_decision", "pending"} <= statuses


def test_the_request_statuses_on_real_cases(embedded):
    lao = embedded.evaluate("LAO", TODAY)
    assert _only(lao, "ccm.art4.extension_request", "12MSP").status == "awaiting_decision"
    clearance = _only(lao, "ccm.art4.clearance")
    assert clearance.status == "unknown" and clearance.status_reason.startswith("decision not recorded")
    bulgaria = embedded.evaluate("BGR", TODAY)
    assert _only(bulgaria, "ccm.art3.extension_request", "11MSP").status == "not_needed"
    chad = embedded.evaluate("TCD", TODAY)
    assert _only(chad, "ccm.art4.extension_request", "3RC").status == "missed"


def test_bosnia_has_one_request_per_meeting_none_before_the_decision_that_set_its_deadline(ccm):
    code, out = ccm("deadlines", "BIH", "--as-of", "2023-06-01", "--json")
    assert code == 0
    obligations = json.loads(out)["obligations"]
    keys = [(o["id"], o["period"]) for o in obligations]
    assert len(keys) == len(set(keys))
    requests = [o for o in obligations if o["id"] == "ccm.art4.extension_request"]
    assert [(o["period"], o["due"]) for o in requests] == [("2RC-1", "2020-02-23"), ("10MSP", "2021-11-30")]


# ----------------------------------------------------------------------------- meetings: known and projected

def test_south_sudans_request_points_at_a_projected_meeting_and_says_it_is_an_estimate(ccm):
    _code, out = ccm("deadlines", "SSD", "--as-of", TODAY.isoformat(), "--json")
    request = next(o for o in json.loads(out)["obligations"] if o["id"] == "ccm.art4.extension_request")
    assert (request["period"], request["due"], request.get("estimated")) == ("19MSP", "2032-12-01", True)
    _code, text = ccm("deadlines", "SSD", "--as-of", TODAY.isoformat())
    assert "(est.)" in text and "the meeting's dates are not yet set" in text
    _code, text = ccm("explain", "SSD", "ccm.art4.extension_request", "--as-of", TODAY.isoformat())
    assert "projected, opening estimated as 1 Sep 2033" in text


def test_recording_the_real_meeting_replaces_the_projection_and_the_check_reports_it(tmp_path, embedded, registry):
    url = f"sqlite:///{tmp_path / 'ccm.sqlite'}"
    store.upgrade(url)
    run_check(url, embedded, TODAY)
    announced = Meeting(code="19MSP", kind="MSP", name="Nineteenth Meeting of States Parties", city="Geneva",
                        start_date=date(2033, 9, 12), end_date=date(2033, 9, 15), date_precision="day", notes="test",
                        sources=registry.meetings[-1].sources, status="announced")
    with_meeting = Evaluator(embedded.rulebook, replace(registry, meetings=registry.meetings + (announced,)), "durable")
    result = run_check(url, with_meeting, TODAY)
    moved = {(c.party, c.field): c for c in result.changes if c.obligation_id == "ccm.art4.extension_request"}
    assert (moved[("SSD", "due")].old, moved[("SSD", "due")].new) == ("2032-12-01", "2032-12-12")
    assert (moved[("SSD", "estimated")].old, moved[("SSD", "estimated")].new) == ("yes", "no")
    store.dispose_engines()


def test_a_request_counts_from_the_opening_as_announced(embedded):
    # The 2RC was convened for 23 Nov 2020 and opened virtually on 25 Nov 2020.
    bosnia = embedded.evaluate("BIH", date(2020, 6, 1))
    request = _only(bosnia, "ccm.art4.extension_request", "2RC-1")
    assert request.due == date(2020, 2, 23)
    assert "convened for 23 Nov 2020; opened 25 Nov 2020" in request.steps[-1]


def test_the_digest_marks_requests_for_a_projected_meeting_as_estimated(tmp_path, embedded):
    url = f"sqlite:///{tmp_path / 'ccm.sqlite'}"
    store.upgrade(url)
    day = date(2032, 10, 1)      # South Sudan's request for the projected 19MSP is due 1 Dec 2032
    context = digest_context(run_check(url, embedded, day), embedded)
    rows = [r for r in context["upcoming"] if r["party"] == "SSD" and r["obligation"] == "ccm.art4.extension_request"]
    assert rows and rows[0]["estimated"] and rows[0]["due_label"] == "2032-12-01 (estimated)"
    store.dispose_engines()


# ----------------------------------------------------------------------------- published aggregates

def _aggregates_table() -> list[dict[str, str]]:
    text = (PROJECT / "docs" / "published-aggregates.md").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| Published")]
    header = ["figure", "by", "as_of", "measure", "value", "why"]
    return [dict(zip(header, (cell.strip() for cell in line.strip("|").split(" | ")))) for line in lines]


def test_the_published_aggregates_table_matches_ccm_stats(ccm, tmp_path, monkeypatch):
    monkeypatch.setenv("CCM_DATABASE_URL", f"sqlite:///{tmp_path / 'none.sqlite'}")
    monkeypatch.delenv("CCM_RECEIPTS_COMPLETE_FROM", raising=False)
    rows = _aggregates_table()
    assert len(rows) >= 5
    for row in rows:
        code, out = ccm("stats", "--as-of", row["as_of"], "--json")
        assert code == 0, out
        value = json.loads(out)
        for key in row["measure"].strip("`").split("."):
            value = value[key]
        assert str(value) == row["value"], row
        assert row["why"], row
    published = (PROJECT / "tests" / "cases" / "aggregates.csv").read_text(encoding="utf-8")
    assert "beirut-2011-initial-submitted" in published and "isu-lap-initial-late" in published
