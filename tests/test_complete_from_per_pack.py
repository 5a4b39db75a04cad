"""`[record.packs.<pack>] receipts_complete_from`: one pack's record of receipts complete from its own day (or
not at all, when empty), over the global `[record] receipts_complete_from` (CCM_RECEIPTS_COMPLETE_FROM), which
every pack without an override takes. Validated like the other keys (exit 2 naming the key), shown by
`ccm config show`, used by the check (whose digest states each pack's day), deadlines, the API and the letters.

Iraq is party to both treaties; its 2024 annual reports fell due on 30 April 2025 under each
(rules/*/art07_transparency.toml) and none is recorded: overdue where the record is complete, unknown where not.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from engine.cli.main import app
from engine.registry.shared import reset

DAY = "2025-05-01"


def ccm(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def configure(tmp_path, monkeypatch, text: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[engine]\npack = ["ccm", "apmbc"]\n' + text)
    monkeypatch.setenv("CCM_CONFIG", str(config))
    monkeypatch.delenv("CCM_PACK", raising=False)
    reset()


def iraq_2024(out: str, pack: str) -> str:
    entry = next(e for e in json.loads(out) if e["treaty"] == pack)
    return next(o["status"] for o in entry["obligations"] if o["id"] == f"{pack}.art7.annual_report" and o["period"] == "2024")


def test_an_empty_override_leaves_one_packs_record_incomplete(db_url, tmp_path, monkeypatch):
    # the global day comes from CCM_RECEIPTS_COMPLETE_FROM (the db_url fixture); the APMBC's record is not complete
    from engine.store import database as store

    store.upgrade(db_url)
    configure(tmp_path, monkeypatch, '[record.packs.apmbc]\nreceipts_complete_from = ""\n')
    code, out = ccm("deadlines", "IRQ", "--as-of", DAY, "--json")
    assert iraq_2024(out, "ccm") == "overdue" and iraq_2024(out, "apmbc") == "unknown"

    code, out = ccm("check", "--as-of", DAY, "--json")
    digests = {d["treaty"]: d for d in json.loads(out)}
    assert digests["ccm"]["receipts_complete_from"] is not None and digests["apmbc"]["receipts_complete_from"] is None
    assert not any(r["party"] == "IRQ" for r in digests["apmbc"]["overdue_reports"])
    text = (tmp_path / "digests" / f"digest-{DAY}.md").read_text(encoding="utf-8")
    ccm_part, _, apmbc_part = text.partition("# APMBC daily check")
    assert "Record of receipts taken as complete from" in ccm_part
    assert "Record of receipts not taken as complete" in apmbc_part

    code, out = ccm("letters", "plan", "--as-of", DAY, "--treaty", "apmbc", "--json")
    assert code in (0, 1), out
    planned = json.loads(out)        # no contacts: what would be planned is listed under no_contact
    assert planned["items"] == [] and not any("apmbc.art7.annual_report" in key
                                              for keys in planned["no_contact"].values() for key in keys)

    from fastapi.testclient import TestClient

    from engine.runtime.settings import load_settings
    from engine.web.app import ApiConfig, create_app

    reset()
    with TestClient(create_app(load_settings(), ApiConfig(state_ttl_seconds=0))) as client:
        both = client.get(f"/api/parties/IRQ/obligations?as_of={DAY}").json()
    assert iraq_2024(json.dumps(both), "ccm") == "overdue" and iraq_2024(json.dumps(both), "apmbc") == "unknown"


def test_a_pack_without_an_override_takes_the_global_day_and_config_show_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("CCM_RECEIPTS_COMPLETE_FROM", raising=False)
    configure(tmp_path, monkeypatch, '[record]\nreceipts_complete_from = "2011-01-01"\n'
                                     '[record.packs.apmbc]\nreceipts_complete_from = 2020-01-01\n')
    _, out = ccm("config", "show", "--json")
    rows = {r["key"]: r for r in json.loads(out)["settings"]}
    assert rows["record.packs.ccm.receipts_complete_from"]["value"] == "2011-01-01"
    assert rows["record.packs.ccm.receipts_complete_from"]["source"].startswith("[record] receipts_complete_from")
    assert rows["record.packs.apmbc.receipts_complete_from"]["value"] == "2020-01-01"
    assert rows["record.packs.apmbc.receipts_complete_from"]["source"].startswith("file ")
    _, out = ccm("deadlines", "IRQ", "--as-of", DAY, "--json")
    assert iraq_2024(out, "ccm") == "overdue" and iraq_2024(out, "apmbc") == "overdue"


@pytest.mark.parametrize("table, says", [
    ('[record.packs.apmbc]\nreceipts_complete_from = "2011-13-01"\n',
     "[record.packs.apmbc] receipts_complete_from is '2011-13-01'"),
    ('[record.packs.apmbc]\nreceipts_complete_from = 2011\n', "[record.packs.apmbc] receipts_complete_from is 2011"),
    ('[record.packs.APMBC]\nreceipts_complete_from = "2011-01-01"\n', "[record.packs.APMBC] must be named by a rule pack"),
    ('[record]\npacks = 3\n', "[record.packs] must be a table"),
])
def test_a_bad_override_is_refused_naming_the_key(tmp_path, monkeypatch, table, says):
    configure(tmp_path, monkeypatch, table)
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 2 and says in result.output
