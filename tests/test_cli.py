"""The `ccm` command as a user runs it: listings, JSON other tools parse, errors as sentences with exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.core.evaluate import STATUSES

PROJECT = Path(__file__).resolve().parent.parent
PARTY_STATUSES = {"state_party", "signatory", "former_state_party", "not_party"}


@pytest.fixture(scope="module")
def ccm(tmp_path_factory):
    """Run the installed `ccm` script (or the same Typer app) from the project folder, on the
    registry's facts alone: the database URL points at a file that does not exist."""
    absent = tmp_path_factory.mktemp("no-record") / "absent.sqlite"
    env = {**os.environ, "CCM_DATABASE_URL": f"sqlite:///{absent}"}
    script = Path(sys.executable).parent / ("ccm.exe" if os.name == "nt" else "ccm")
    command = [str(script)] if script.exists() else [sys.executable, "-c", "from engine.cli.main import app; app()"]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*command, *args], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60)

    return run


def words(text: str) -> str:
    """The text with line wrapping undone (the console wraps long error sentences)."""
    return " ".join(text.split())


# --------------------------------------------------------------------------- ccm parties


def test_ccm_parties_lists_all_125_participants_as_json(ccm):
    result = ccm("parties", "--as-of", "2026-11-28", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["as_of"] == "2026-11-28"
    rows = payload["parties"]
    assert len(rows) == 125
    assert len({row["iso3"] for row in rows}) == 125
    assert [row["iso3"] for row in rows] == sorted(row["iso3"] for row in rows)
    assert {row["status"] for row in rows} <= PARTY_STATUSES
    by_iso3 = {row["iso3"]: row for row in rows}
    assert by_iso3["CHE"]["entry_into_force"] == "2013-01-01"
    assert by_iso3["LTU"]["status"] == "former_state_party"
    assert by_iso3["IDN"]["status"] == "signatory"


# --------------------------------------------------------------------------- ccm deadlines --json


JSON_CASES = [
    # (what, ISO3, as of)
    ("Lao PDR before its 9MSP extension", "LAO", "2019-06-01"),
    ("Lithuania after its withdrawal, with lapsed reports", "LTU", "2026-11-28"),
    ("Peru after completing its extended Article 3 deadline", "PER", "2026-11-28"),
    ("Indonesia, a signatory with no obligations", "IDN", "2026-11-28"),
]


@pytest.mark.parametrize("what, iso3, as_of", JSON_CASES, ids=[row[0] for row in JSON_CASES])
def test_the_deadlines_json_has_the_stable_shape_other_tools_parse(ccm, what, iso3, as_of):
    result = ccm("deadlines", iso3, "--as-of", as_of, "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert set(payload) == {"party", "as_of", "rulebook", "obligations"}
    assert set(payload["party"]) == {"iso3", "name", "status", "entry_into_force", "withdrawal_effective"}
    assert payload["party"]["iso3"] == iso3 and payload["as_of"] == as_of
    assert payload["party"]["status"] in PARTY_STATUSES
    assert len(payload["rulebook"]) == 16
    for obligation in payload["obligations"]:
        fixed = {"id", "article", "period", "due", "original_due", "status", "basis"}
        assert fixed <= set(obligation) <= fixed | OPTIONAL_FIELDS
        assert obligation["status"] in STATUSES
        if "evidence" in obligation:   # what the status rests on, with its sources
            assert set(obligation["evidence"]) == {"fact", "says", "sources"}
        if "estimated" in obligation:
            assert obligation["estimated"] is True
        assert obligation["id"] in obligation["basis"]
        assert obligation["period"] is None or isinstance(obligation["period"], str)
    if iso3 == "LTU":
        assert "lapsed" in {o["status"] for o in payload["obligations"]}
    if iso3 == "IDN":
        assert payload["obligations"] == []


OPTIONAL_FIELDS = {"received", "received_by", "evidence", "estimated"}


def test_the_statuses_the_json_may_carry():
    assert set(STATUSES) == {"pending", "overdue", "unknown", "fulfilled", "fulfilled_late", "received",
                             "awaiting_decision", "not_needed", "missed", "lapsed"}


# --------------------------------------------------------------------------- errors a user can meet


def test_an_unknown_party_name_exits_2_and_suggests_the_close_match(ccm):
    result = ccm("deadlines", "Swizerland", "--as-of", "2026-11-28")
    assert result.returncode == 2
    message = words(result.stderr)
    assert "No participant matches 'Swizerland'" in message
    assert "Did you mean" in message and "Switzerland (CHE)" in message
    assert "Traceback" not in result.stderr and result.stdout == ""


BAD_DATES = [
    # (what, command, the bad value)
    ("a thirteenth month given to deadlines", ["deadlines", "LAO"], "2019-13-01"),
    ("a day-first date given to parties", ["parties"], "28/11/2026"),
    ("a word given to explain", ["explain", "LAO", "ccm.art4.clearance"], "yesterday"),
]


@pytest.mark.parametrize("what, command, value", BAD_DATES, ids=[row[0] for row in BAD_DATES])
def test_a_bad_as_of_date_exits_2_naming_the_value_and_the_format(ccm, what, command, value):
    result = ccm(*command, "--as-of", value)
    assert result.returncode == 2
    message = words(result.stderr)
    assert f"--as-of '{value}' is not a date" in message
    assert "YYYY-MM-DD" in message
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- ccm explain


def test_explain_shows_the_deposit_the_article_the_quote_and_the_arithmetic_of_laos_request_date(ccm):
    result = ccm("explain", "LAO", "ccm.art4.extension_request", "--as-of", "2019-06-01")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    lines = text.splitlines()
    deposit = next(i for i, line in enumerate(lines)
                   if "Lao People's Democratic Republic deposited its instrument of ratification on 18 Mar 2009" in line)
    assert lines[deposit + 1].strip().startswith(("source: http://", "source: https://"))
    assert "Art. 4(6)" in text
    assert ('"a minimum of nine months prior to the Meeting of States Parties or Review Conference '
            'at which it is to be considered"') in text
    assert "2 Sep 2019 - 9 months = 2 Dec 2018" in text
    assert "1 Aug 2010 + 10 years = 1 Aug 2020" in text
    assert "due 2 Dec 2018" in text


def test_explain_of_a_yearly_obligation_without_a_period_exits_2_listing_the_periods(ccm):
    result = ccm("explain", "LAO", "ccm.art7.annual_report", "--as-of", "2013-06-01")
    assert result.returncode == 2
    message = words(result.stderr)
    assert "choose one with --period" in message
    assert "2011, 2012, 2013" in message
    assert result.stdout == ""


def test_explain_with_a_period_explains_that_year(ccm):
    result = ccm("explain", "LAO", "ccm.art7.annual_report", "--period", "2012", "--as-of", "2013-06-01")
    assert result.returncode == 0, result.stderr
    assert "ccm.art7.annual_report (2012)" in result.stdout
    assert "30 April of the year following 2012 = 30 Apr 2013" in result.stdout


def test_explain_of_an_unknown_obligation_exits_2_listing_the_obligations(ccm):
    result = ccm("explain", "LAO", "ccm.art7.initial_reports", "--as-of", "2013-06-01")
    assert result.returncode == 2
    message = words(result.stderr)
    assert "no rule 'ccm.art7.initial_reports'" in message
    assert "ccm.art7.initial_report," in message


# --------------------------------------------------------------------------- the quick path (engine.cli.launch)

QUICK_CASES = [("deadlines", "LAO", "--json", "--as-of", "2019-06-01"), ("deadlines", "lao", "--json", "--backend=reference"),
               ("explain", "CHE", "ccm.art7.annual_report", "--period", "2015", "--as-of", "2020-01-01"),
               ("explain", "LAO", "clearance (art. 4)", "--json", "--as-of", "2020-01-01"),
               # handed to the typer app: its errors and its table
               ("deadlines", "XXX", "--json"), ("deadlines", "LAO", "--json", "--as-of", "2019-13-01"),
               ("explain", "CHE", "ccm.art7.annual_report", "--as-of", "2020-01-01"), ("deadlines", "LAO", "--as-of", "2019-06-01"),
               # two packs: a list with a treaty key, one pack by --treaty, an explanation found in its pack
               ("deadlines", "KHM", "--json", "--as-of", "2020-01-01", "--pack=ccm,apmbc"),
               ("deadlines", "KHM", "--json", "--treaty", "apmbc", "--as-of", "2020-01-01"),
               ("explain", "LAO", "ccm.art4.clearance", "--json", "--as-of", "2020-01-01", "--pack=ccm,apmbc")]


@pytest.mark.parametrize("args", QUICK_CASES, ids=" ".join)
def test_the_entry_point_prints_what_the_typer_app_prints(tmp_path, args):
    """Output, errors and exit status of `ccm` (engine.cli.launch) equal the typer app's, with and
    without a record that holds events of the party."""
    database = tmp_path / "ccm.sqlite"
    env = {**os.environ, "CCM_DATABASE_URL": f"sqlite:///{database}", "CCM_OUTPUT_FOLDER": str(tmp_path / "out")}
    if args[-1].startswith("--pack="):                       # the packs selected, as [engine] pack
        env["CCM_PACK"], args = args[-1].removeprefix("--pack="), args[:-1]

    def both():
        return [subprocess.run([sys.executable, "-c", code, *args], cwd=PROJECT, env=env, capture_output=True, text=True,
                               timeout=120)
                for code in ("from engine.cli.launch import main; main()", "from engine.cli.main import app; app()")]

    quick, typer_app = both()
    assert (quick.returncode, quick.stdout, quick.stderr) == (typer_app.returncode, typer_app.stdout, typer_app.stderr)
    if args[1] != "LAO":
        return
    recorded = subprocess.run([sys.executable, "-c", "from engine.cli.main import app; app()", "record", "report", "LAO",
                               "--kind", "annual", "--year", "2018", "--received", "2019-04-20"],
                              cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    assert recorded.returncode == 0, recorded.stderr
    quick, typer_app = both()
    assert (quick.returncode, quick.stdout, quick.stderr) == (typer_app.returncode, typer_app.stdout, typer_app.stderr)


def test_deadlines_json_imports_neither_the_orm_nor_typer_nor_rich_when_the_record_holds_nothing_for_the_party(tmp_path):
    env = {**os.environ, "CCM_DATABASE_URL": f"sqlite:///{tmp_path / 'absent.sqlite'}"}
    code = ("import sys\nfrom engine.cli.launch import answer\nassert answer(['deadlines', 'LAO', '--json'])\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'typer', 'rich', 'pydantic'}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
