"""With ONE pack selected, every path that evaluates the record takes only that pack's events: an event tagged
for another pack (`ccm record ... --treaty apmbc`, stored while both were selected) never settles a CCM
obligation in the check, its digest, the daily job, deadlines, stats or the API, as the letters never let it
(notifiers/dues.py). Untagged events are the first selected pack's.

Iraq is party to both treaties; its 2024 annual report under the CCM fell due on 30 April 2025
(rules/ccm/art07_transparency.toml). A receipt of the *Mine Ban Convention's* 2024 report is recorded; the
CCM's stays overdue (the db_url fixture sets receipts_complete_from, so no receipt means overdue). The same
receipt recorded untagged (the CCM's own) does settle it: the event is one that would change the status.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from typer.testing import CliRunner

from engine.cli.main import app
from engine.registry.shared import reset
from engine.store import database as store

DAY = "2025-05-01"
REPORT = "ccm.art7.annual_report"


def ccm(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def select(monkeypatch, packs: str) -> None:
    monkeypatch.setenv("CCM_PACK", packs)
    reset()


def iraq_listed(digest: dict) -> bool:
    return any(r["party"] == "IRQ" and r["obligation"] == REPORT and r["period"] == "2024"
               for r in digest["overdue_reports"])


def stored_status(url: str) -> str:
    with store.reader_session(url) as session:
        return session.execute(sa.select(store.ObligationRow.status).where(
            store.ObligationRow.party == "IRQ", store.ObligationRow.obligation_id == REPORT,
            store.ObligationRow.period == "2024")).scalar_one()


def deadline_status() -> str:
    code, out = ccm("deadlines", "IRQ", "--as-of", DAY, "--json")
    assert code in (0, 1), out
    return next(o["status"] for o in json.loads(out)["obligations"]
                if o["id"] == REPORT and o["period"] == "2024")


def test_with_one_pack_an_event_of_another_pack_changes_nothing(db_url, monkeypatch, tmp_path):
    select(monkeypatch, "ccm,apmbc")
    code, out = ccm("record", "report", "IRQ", "--kind", "annual", "--year", "2024", "--received", "2025-04-20",
                    "--treaty", "apmbc")
    assert code == 0, out

    select(monkeypatch, "ccm")
    code, out = ccm("check", "--as-of", DAY, "--json")
    digest = json.loads(out)
    assert iraq_listed(digest) and digest["counts"]["recorded_events"] == 0
    assert stored_status(db_url) == "overdue"
    assert deadline_status() == "overdue"
    code, out = ccm("stats", "--as-of", DAY, "--json")
    assert code in (0, 1), out
    before_stats = json.loads(out)

    from fastapi.testclient import TestClient

    from engine.runtime.settings import load_settings
    from engine.web.app import ApiConfig, create_app

    def api_status() -> str:
        reset()
        with TestClient(create_app(load_settings(), ApiConfig(state_ttl_seconds=0))) as client:
            body = client.get(f"/api/parties/IRQ/obligations?as_of={DAY}").json()
        return next(o["status"] for o in body["obligations"] if o["id"] == REPORT and o["period"] == "2024")

    assert api_status() == "overdue"

    # the daily job takes the same path as ccm check: a later day, the same answer
    from engine.check import scheduler

    result = scheduler.daily_job("2025-05-02")
    assert stored_status(db_url) == "overdue" and result.check_run_id is not None

    # the control: the same receipt as the CCM's own (untagged) settles the report everywhere
    code, out = ccm("record", "report", "IRQ", "--kind", "annual", "--year", "2024", "--received", "2025-04-21")
    assert code == 0, out
    code, out = ccm("check", "--as-of", "2025-05-03", "--json")
    assert not iraq_listed(json.loads(out)) and stored_status(db_url).startswith("fulfilled")
    assert deadline_status().startswith("fulfilled") and api_status().startswith("fulfilled")
    code, out = ccm("stats", "--as-of", DAY, "--json")
    assert json.loads(out) != before_stats
