"""The Mine Ban Convention pack (rules/apmbc/): it loads, its published cases reproduce through the
JSON of `ccm deadlines` run with CCM_PACK=apmbc, Cambodia's extended Art. 5 deadline and its chain
show as the issue asks, and every participant's entry into force follows Art. 17 or, for a succession
with a stated date of effect (South Sudan), that date."""

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
from engine.core.rulebook import load_rulebook
from engine.registry.load import load_registry

PROJECT = Path(__file__).resolve().parent.parent
PACK = packs.find("apmbc")
CASES = list(csv.DictReader(PACK.cases.open(encoding="utf-8", newline="")))


@pytest.fixture(scope="module")
def rulebook():
    return load_rulebook(PACK.directory)


@pytest.fixture(scope="module")
def registry(rulebook):
    return load_registry(PACK.registry, rulebook)


@pytest.fixture(scope="module")
def evaluator(rulebook, registry):
    return Evaluator(rulebook, registry, "reference")


def ccm_command() -> list[str]:
    """The installed `ccm` script beside this interpreter, else the same Typer app run by it (as tests/test_cases.py)."""
    script = Path(sys.executable).parent / ("ccm.exe" if os.name == "nt" else "ccm")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from engine.cli.main import app; app()"]


def run_ccm(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`ccm ARGS` with the apmbc pack selected and a database file that does not exist (no record read)."""
    env = {**os.environ, "CCM_PACK": "apmbc", "CCM_DATABASE_URL": f"sqlite:///{tmp_path / 'absent.sqlite'}"}
    return subprocess.run([*ccm_command(), *args], check=False, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)


def test_the_pack_is_found_and_its_obligations_are_the_manifests(rulebook):
    assert "apmbc" in packs.discover()
    assert {r.id for r in rulebook.rules if r.is_obligation} == {
        "apmbc.art4.stockpile_destruction", "apmbc.art5.clearance", "apmbc.art5.extension_request",
        "apmbc.art7.initial_report", "apmbc.art7.annual_report"}
    assert all(rule.id.startswith("apmbc.") and rule.quote and rule.sources for rule in rulebook.rules)
    # Art. 4 has no extension mechanism: no exception modifies the stockpile deadline.
    assert rulebook.exceptions_to("apmbc.art4.stockpile_destruction") == ()
    assert rulebook.rule("apmbc.art5.extension").ceiling_years == 10


def test_the_registry_loads_with_every_participant_and_the_2025_withdrawals(registry):
    assert len(registry.participants) == 165
    assert {iso3: p.withdrawal_effective_date for iso3, p in registry.participants.items() if p.withdrawal_effective_date} == {
        "EST": date(2025, 12, 27), "LVA": date(2025, 12, 27), "LTU": date(2025, 12, 27),
        "FIN": date(2026, 1, 10), "POL": date(2026, 2, 20)}
    threshold, first = registry.thirtieth_deposit()
    assert threshold == date(1998, 9, 16) and "BFA" in {p.iso3 for p in first}


# quantity in rules/apmbc/cases.csv -> how to read it from the JSON of `ccm deadlines`
def _one(payload: dict[str, Any], obligation_id: str) -> dict[str, Any]:
    (found,) = [o for o in payload["obligations"] if o["id"] == obligation_id]
    return found


QUANTITIES: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "entry_into_force": lambda p: p["party"]["entry_into_force"],
    "art4_deadline": lambda p: _one(p, "apmbc.art4.stockpile_destruction")["due"],
    "art4_status": lambda p: _one(p, "apmbc.art4.stockpile_destruction")["status"],
    "art5_original_deadline": lambda p: _one(p, "apmbc.art5.clearance")["original_due"],
    "art5_current_deadline": lambda p: _one(p, "apmbc.art5.clearance")["due"],
}


@pytest.fixture(scope="module")
def deadlines_json(tmp_path_factory) -> dict[tuple[str, str], dict[str, Any]]:
    folder = tmp_path_factory.mktemp("apmbc-no-record")
    keys = sorted({(row["iso3"], row["as_of"]) for row in CASES} | {("KHM", "2021-01-01")})
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        results = dict(zip(keys, pool.map(lambda key: run_ccm(folder, "deadlines", key[0], "--as-of", key[1], "--json"), keys)))
    assert not (folder / "absent.sqlite").exists(), "a read-only query created the database"
    payloads = {}
    for key, result in results.items():
        assert result.returncode == 0, f"ccm deadlines {key} exited {result.returncode}: {result.stderr}"
        payloads[key] = json.loads(result.stdout)
    return payloads


def test_the_case_table_names_a_source_and_a_known_quantity_on_every_row():
    assert len(CASES) >= 20
    for row in CASES:
        assert row["name"].strip() and row["source"].strip() and row["quantity"] in QUANTITIES, row


@pytest.mark.parametrize("case", CASES, ids=[row["name"] for row in CASES])
def test_published_case(case, deadlines_json):
    payload = deadlines_json[(case["iso3"], case["as_of"])]
    assert QUANTITIES[case["quantity"]](payload) == case["expected"], f"source: {case['source']}"


def test_cambodias_art5_deadline_as_extended_with_the_first_ten_year_date_as_original(deadlines_json):
    payload = deadlines_json[("KHM", "2021-01-01")]
    assert payload["party"]["entry_into_force"] == "2000-01-01"
    clearance = _one(payload, "apmbc.art5.clearance")
    assert (clearance["due"], clearance["original_due"]) == ("2025-12-31", "2010-01-01")
    assert clearance["basis"][-1] == "apmbc.art5.extension"


def test_explain_shows_cambodias_chain(tmp_path):
    result = run_ccm(tmp_path, "explain", "KHM", "apmbc.art5.clearance", "--as-of", "2021-01-01")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    chain = ["first day of the 6th month after July 1999 = 1 Jan 2000", "1 Jan 2000 + 10 years = 1 Jan 2010",
             "deadline 1 Jan 2010 -> 1 Jan 2020", "deadline 1 Jan 2020 -> 31 Dec 2025"]
    positions = [text.index(step) for step in chain]
    assert positions == sorted(positions)
    assert "Art. 5(3)-(6)" in text and "Art. 17(1)-(2)" in text


def test_an_extension_decided_after_the_deadline_had_passed_is_applied(evaluator, rulebook, registry):
    """Uganda: deadline 1 Aug 2009, extended to 1 Aug 2012 by the 2RC (4 Dec 2009). Between the two the
    deadline has passed: overdue where the ISU's record is complete for it, else unknown (the registry's
    extensions and completions come from public sources and are not known to be complete)."""
    between = evaluator.evaluate("UGA", date(2009, 10, 1))
    (clearance,) = between.find("apmbc.art5.clearance")
    assert (clearance.due, clearance.status) == (date(2009, 8, 1), "unknown")
    assert "not complete for 1 Aug 2009" in clearance.status_reason
    complete = Evaluator(rulebook, registry, "reference", receipts_complete_from=date(2009, 1, 1))
    (clearance,) = complete.evaluate("UGA", date(2009, 10, 1)).find("apmbc.art5.clearance")
    assert (clearance.due, clearance.status) == (date(2009, 8, 1), "overdue")
    after = evaluator.evaluate("UGA", date(2010, 6, 1))
    (clearance,) = after.find("apmbc.art5.clearance")
    assert (clearance.due, clearance.original_due) == (date(2012, 8, 1), date(2009, 8, 1))


def test_a_missed_art4_deadline_is_never_moved_by_a_decision(evaluator):
    evaluation = evaluator.evaluate("GRC", date(2026, 11, 28))
    (stockpile,) = evaluation.find("apmbc.art4.stockpile_destruction")
    assert stockpile.due == stockpile.original_due == date(2008, 3, 1)
    assert stockpile.status == "overdue"          # on the ISU's published finding (declarations.csv), not on silence
    assert "a published statement says the deadline was missed" in stockpile.status_reason
    assert "stockpile-destruction" in " ".join(stockpile.evidence_sources)


def test_a_passed_deadline_with_nothing_on_record_is_unknown_not_overdue(evaluator, rulebook, registry):
    """Latvia declared stocks (Zagreb Progress Report) and the registry holds no completion: silence in a
    registry gathered from public sources is not a missed deadline."""
    (stockpile,) = evaluator.evaluate("LVA", date(2026, 11, 28)).find("apmbc.art4.stockpile_destruction")
    assert stockpile.status == "unknown" and "not complete for 1 Jan 2010" in stockpile.status_reason
    complete = Evaluator(rulebook, registry, "reference", receipts_complete_from=date(2005, 1, 1))
    (stockpile,) = complete.evaluate("LVA", date(2026, 11, 28)).find("apmbc.art4.stockpile_destruction")
    assert stockpile.status == "overdue"
    requests = [o for o in evaluator.evaluate("GBR", date(2026, 11, 28)).obligations
                if o.id == "apmbc.art5.extension_request" and o.status in ("missed", "unknown")]
    assert requests and all(o.status == "unknown" for o in requests)


def test_ukraines_announced_suspension_moves_no_deadline(evaluator, registry):
    assert [d.position for d in registry.declarations_for("UKR") if d.article == 20] == ["suspension_announced"]
    evaluation = evaluator.evaluate("UKR", date(2026, 11, 28))
    assert evaluation.status == "state_party" and evaluation.withdrawal_effective is None
    assert all(o.status != "lapsed" for o in evaluation.obligations)


def test_a_withdrawal_makes_the_later_obligations_lapse(evaluator):
    evaluation = evaluator.evaluate("FIN", date(2027, 6, 1))
    assert evaluation.status == "former_state_party"
    lapsed = {o.period for o in evaluation.obligations if o.status == "lapsed"}
    assert "2025" in lapsed   # the report for 2025 falls due 30 Apr 2026, after 10 Jan 2026


def test_the_initial_report_is_due_180_days_after_entry_into_force(evaluator):
    (initial,) = evaluator.evaluate("CHE", date(2026, 11, 28)).find("apmbc.art7.initial_report")
    assert initial.due == date(1999, 8, 28)   # 1 Mar 1999 + 180 days


def _article_17(deposit: date, fortieth: date) -> date:
    """Art. 17 written out independently of engine/core/dates.py: the first day of the sixth month
    after the month of the 40th deposit (17(1)) or of the State's own deposit (17(2))."""
    month = max(deposit, fortieth)
    index = month.year * 12 + month.month - 1 + 6
    return date(index // 12, index % 12 + 1, 1)


def test_every_participants_entry_into_force_follows_article_17_or_its_stated_date_of_effect(evaluator, registry):
    """Art. 17 from the deposit, except where the registry states the instrument's date of effect
    (a succession dated from the succession of States): that date, as published."""
    fortieth = date(1998, 9, 16)
    stated = {iso3: p.effective_from for iso3, p in registry.participants.items() if p.effective_from}
    assert stated == {"SSD": date(2011, 7, 9)}   # ISU: "became effective for South Sudan on 9 July 2011"
    for iso3, participant in sorted(registry.participants.items()):
        evaluation = evaluator.evaluate(iso3, date(2026, 11, 28))
        expected = stated.get(iso3) or _article_17(participant.deposit_date, fortieth)
        assert evaluation.entry_into_force == expected, iso3
    # The instruments deposited after the 40th but in September 1998 take 1 March 1999 by 17(2) too.
    for iso3 in ("BEN", "HND", "SEN", "NAM", "JPN"):
        assert registry.participant(iso3).deposit_date > fortieth
        assert evaluator.evaluate(iso3, date(2000, 1, 1)).entry_into_force == date(1999, 3, 1), iso3


def test_south_sudan_is_bound_from_independence_once_its_succession_is_known(evaluator):
    # Before the notification of 11 Nov 2011 nothing is known of it; after, it is bound from 9 Jul 2011.
    assert evaluator.evaluate("SSD", date(2011, 11, 10)).status == "not_party"
    known = evaluator.evaluate("SSD", date(2011, 11, 11))
    assert (known.status, known.entry_into_force) == ("state_party", date(2011, 7, 9))
    assert known.derived_dates["apmbc.art17.entry_into_force"]["rule"] == "apmbc.art17.entry_into_force_on_succession"
    (initial,) = known.find("apmbc.art7.initial_report")
    assert initial.due == date(2012, 1, 5)   # 9 Jul 2011 + 180 days
    (clearance,) = evaluator.evaluate("SSD", date(2020, 1, 1)).find("apmbc.art5.clearance")
    assert (clearance.due, clearance.basis) == (date(2021, 7, 9), ("apmbc.art17.entry_into_force_on_succession",
                                                                   "apmbc.art5.clearance"))


def test_montenegros_succession_states_no_date_of_effect_and_follows_article_17(evaluator, registry):
    assert registry.participant("MNE").effective_from is None
    evaluation = evaluator.evaluate("MNE", date(2026, 11, 28))
    assert evaluation.entry_into_force == date(2007, 4, 1)
    assert evaluation.derived_dates["apmbc.art17.entry_into_force"]["rule"] == "apmbc.art17.entry_into_force"


def test_explain_shows_south_sudans_date_of_succession_and_its_source(tmp_path):
    result = run_ccm(tmp_path, "explain", "SSD", "apmbc.art5.clearance", "--as-of", "2020-01-01")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "due 9 Jul 2021; status pending" in text
    assert "South Sudan deposited its instrument of succession on 11 Nov 2011, with effect from 9 Jul 2011" in text
    assert "the depositary gives South Sudan's instrument of succession (deposited 11 Nov 2011) effect from 9 Jul 2011" in text
    assert "source: https://www.apminebanconvention.org/en/membership/south-sudan" in text
    assert "apmbc.art17.entry_into_force_on_succession, Art. 17; succession of States" in text
    assert text.index("9 Jul 2011 + 0 days = 9 Jul 2011") < text.index("9 Jul 2011 + 10 years = 9 Jul 2021")


def test_the_backends_agree_on_the_pack(rulebook, registry):
    durable = Evaluator(rulebook, registry, "durable")
    reference = Evaluator(rulebook, registry, "reference")
    for iso3 in ("KHM", "UGA", "BLR", "GRC", "FIN", "BIH", "ZWE", "MHL", "SSD", "MNE"):
        for as_of in (date(2009, 10, 1), date(2011, 11, 11), date(2021, 1, 1), date(2026, 11, 28)):
            assert durable.evaluate(iso3, as_of).to_json() == reference.evaluate(iso3, as_of).to_json(), (iso3, as_of)


def test_a_decision_beyond_the_ten_year_ceiling_is_refused(rulebook, registry, tmp_path):
    import shutil
    copy = tmp_path / "registry"
    shutil.copytree(PACK.registry, copy)
    decisions = copy / "decisions.csv"
    text = decisions.read_text(encoding="utf-8").replace(",2030-12-31,", ",2036-01-01,", 1)
    decisions.write_text(text, encoding="utf-8")
    from engine.core.model import RegistryError
    with pytest.raises(RegistryError, match="beyond the ceiling of 10 years"):
        load_registry(copy, rulebook)


def test_a_notification_of_succession_is_an_instrument(registry):
    """engine/core/model.py INSTRUMENT_KINDS: a successor State's notification (Montenegro, South Sudan)."""
    assert {registry.participant(iso3).instrument for iso3 in ("MNE", "SSD")} == {"succession"}


def test_the_calendar_projects_yearly_meetings_and_a_sixth_review_conference_in_2029(evaluator):
    projected = [(m.code, m.start_date) for m in evaluator.meetings if m.projected][:5]
    assert projected == [("23MSP", date(2026, 11, 20)), ("24MSP", date(2027, 11, 20)), ("25MSP", date(2028, 11, 20)),
                         ("6RC", date(2029, 11, 20)), ("26MSP", date(2030, 11, 20))]
