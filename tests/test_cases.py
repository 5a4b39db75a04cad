"""The published cases of rules/ccm/cases.csv, each checked through the JSON of `ccm deadlines`.

Also the cases where a secondary source publishes another date than the treaty gives: the
engine keeps the treaty's date and its explanation shows the chain, so a reader sees why.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from engine.backends import Evaluator
from engine.core import packs
from engine.core.dates import fmt
from engine.core.explain import explain
from engine.core.rulebook import load_rulebook
from engine.registry.load import load_registry

PROJECT = Path(__file__).resolve().parent.parent
CASES_CSV = packs.find("ccm").cases   # a pack carries its published cases (rules/ccm/cases.csv)


def read_cases() -> list[dict[str, str]]:
    with CASES_CSV.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


CASES = read_cases()


def ccm_command() -> list[str]:
    """The installed `ccm` script beside this interpreter, else the same Typer app run by it."""
    script = Path(sys.executable).parent / ("ccm.exe" if os.name == "nt" else "ccm")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from engine.cli.main import app; app()"]


@pytest.fixture(scope="module")
def deadlines_json(tmp_path_factory) -> dict[tuple[str, str], dict[str, Any]]:
    """`ccm deadlines ISO3 --as-of AS_OF --json` for every distinct (party, date) of the table, run
    side by side, on the registry's facts alone: the database URL names a file that does not exist,
    so no local record is read."""
    absent = tmp_path_factory.mktemp("no-record") / "absent.sqlite"
    env = {**os.environ, "CCM_DATABASE_URL": f"sqlite:///{absent}"}

    def run(key: tuple[str, str]) -> subprocess.CompletedProcess:
        iso3, as_of = key
        return subprocess.run([*ccm_command(), "deadlines", iso3, "--as-of", as_of, "--json"],
                              cwd=PROJECT, env=env, check=False, capture_output=True, text=True, timeout=120)

    keys = sorted({(row["iso3"], row["as_of"]) for row in CASES})
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        results = dict(zip(keys, pool.map(run, keys)))
    assert not absent.exists(), "a read-only query created the database"
    payloads = {}
    for (iso3, as_of), result in results.items():
        assert result.returncode == 0, f"ccm deadlines {iso3} --as-of {as_of} exited {result.returncode}: {result.stderr}"
        payloads[(iso3, as_of)] = json.loads(result.stdout)
    return payloads


def obligations(payload: dict[str, Any], obligation_id: str) -> list[dict[str, Any]]:
    found = [o for o in payload["obligations"] if o["id"] == obligation_id]
    assert found, f"{payload['party']['iso3']} has no {obligation_id} as of {payload['as_of']}"
    return found


def single(payload: dict[str, Any], obligation_id: str) -> dict[str, Any]:
    (obligation,) = obligations(payload, obligation_id)
    return obligation


# quantity in cases.csv -> how to read it from the JSON of `ccm deadlines`
QUANTITIES: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "entry_into_force": lambda p: p["party"]["entry_into_force"],
    "art7_initial_report_due": lambda p: single(p, "ccm.art7.initial_report")["due"],
    "art7_first_annual_report_due": lambda p: min(o["due"] for o in obligations(p, "ccm.art7.annual_report")),
    "art3_original_deadline": lambda p: single(p, "ccm.art3.stockpile_destruction")["original_due"],
    "art3_current_deadline": lambda p: single(p, "ccm.art3.stockpile_destruction")["due"],
    "art4_original_deadline": lambda p: single(p, "ccm.art4.clearance")["original_due"],
    "art4_deadline_after_9msp": lambda p: single(p, "ccm.art4.clearance")["due"],
    "art4_current_deadline": lambda p: single(p, "ccm.art4.clearance")["due"],
    "art4_decision_granted": lambda p: single(p, "ccm.art4.clearance")["due"],
    "art7_initial_report_status": lambda p: _report_status(single(p, "ccm.art7.initial_report")["status"]),
}
# quantity prefix -> reader of a request's due date for the meeting named after the prefix
# (e.g. art4_extension_request_due_2RC-1)
REQUEST_QUANTITIES = {"art3_extension_request_due_": "ccm.art3.extension_request",
                      "art4_extension_request_due_": "ccm.art4.extension_request"}


def _report_status(status: str) -> str:
    """A published case says a report was received, or still outstanding, on a day."""
    return "received" if status in ("fulfilled", "fulfilled_late", "received") else status


def _request_due(payload: dict[str, Any], obligation_id: str, meeting: str) -> str:
    found = [o for o in obligations(payload, obligation_id) if o["period"] == meeting]
    assert len(found) == 1, f"{payload['party']['iso3']}: {len(found)} {obligation_id} for {meeting}"
    return found[0]["due"]


def test_the_case_table_has_cases_and_every_row_names_its_source():
    assert len(CASES) >= 16
    for row in CASES:
        assert row["name"].strip() and row["source"].strip(), row
        assert len(row["iso3"]) == 3 and row["iso3"].isupper(), row
        assert date.fromisoformat(row["as_of"])
        if row["quantity"].endswith("_status"):
            assert row["expected"] in ("received", "overdue", "unknown"), row
        else:
            assert date.fromisoformat(row["expected"]), row


def read_quantity(case: dict[str, str], payload: dict[str, Any]) -> str | None:
    """The value a row of cases.csv names; a quantity this file cannot read fails the case."""
    for prefix, obligation_id in REQUEST_QUANTITIES.items():
        if case["quantity"].startswith(prefix):
            return _request_due(payload, obligation_id, case["quantity"][len(prefix):])
    if case["quantity"] not in QUANTITIES:
        pytest.fail(f"cases.csv names the quantity {case['quantity']!r}, which this test cannot read; "
                    f"known: {', '.join(QUANTITIES)}")
    return QUANTITIES[case["quantity"]](payload)


@pytest.mark.parametrize("case", CASES, ids=[row["name"] for row in CASES])
def test_published_case(case, deadlines_json):
    payload = deadlines_json[(case["iso3"], case["as_of"])]
    assert payload["party"]["iso3"] == case["iso3"]
    assert read_quantity(case, payload) == case["expected"], f"source: {case['source']}"


def test_a_row_naming_an_unknown_quantity_fails_rather_than_being_skipped(deadlines_json):
    row = {**CASES[0], "quantity": "art5_victim_assistance_due"}
    with pytest.raises(pytest.fail.Exception, match="'art5_victim_assistance_due', which this test cannot read"):
        read_quantity(row, deadlines_json[(row["iso3"], row["as_of"])])


# --------------------------------------------------------------------------- secondary sources that disagree


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator(load_rulebook(), load_registry(), "reference")


# (what, ISO3, deposit, entry into force, the treaty's due date, the date the secondary source published)
# Deposits: UN Treaty Collection XXVI-6 (Cabo Verde), Monitor (Guinea); published dates: CMC list of
# overdue initial reports (2015). See the TREATY brief, "Readings that are decided".
CONTRADICTED = [
    ("Cabo Verde's initial report was due 28 Sep 2011, not 28 Oct 2011 as a 2015 campaign list said",
     "CPV", date(2010, 10, 19), date(2011, 4, 1), date(2011, 9, 28), date(2011, 10, 28)),
    ("Guinea's initial report was due 28 Sep 2015, not 19 Apr 2015 as a 2015 campaign list said",
     "GIN", date(2014, 10, 21), date(2015, 4, 1), date(2015, 9, 28), date(2015, 4, 19)),
]


@pytest.mark.parametrize("what, iso3, deposit, eif, treaty_due, published_due", CONTRADICTED,
                         ids=[row[0] for row in CONTRADICTED])
def test_the_engine_keeps_the_treaty_date_where_a_secondary_source_differs(evaluator, what, iso3, deposit, eif,
                                                                            treaty_due, published_due):
    evaluation = evaluator.evaluate(iso3, date(2026, 11, 28))
    assert evaluation.entry_into_force == eif
    (initial,) = evaluation.find("ccm.art7.initial_report")
    assert initial.due == treaty_due != published_due

    explanation = explain(evaluation, evaluator.rulebook, initial)
    participant = evaluator.registry.participant(iso3)
    deposit_fact = next(f for f in explanation.facts if f["id"] == "deposit")
    assert f"deposited its instrument of {participant.instrument} on {fmt(deposit)}" in deposit_fact["label"]
    assert deposit_fact["sources"] and all(href.startswith(("http://", "https://")) for href in deposit_fact["sources"])
    assert [rule["id"] for rule in explanation.rules] == ["ccm.art17.entry_into_force", "ccm.art7.initial_report"]
    assert [rule["article"] for rule in explanation.rules] == ["17(1)-(2)", "7(1)"]
    text = explanation.to_text()
    assert "Art. 17(1)-(2)" in text and "Art. 7(1)" in text
    assert f"first day of the 6th month after {deposit:%B %Y} = {fmt(eif)}" in text
    assert f"{fmt(eif)} + 180 days = {fmt(treaty_due)}" in text
    assert fmt(published_due) not in text
