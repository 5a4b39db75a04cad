"""Several packs at once (`[engine] pack = ["ccm", "apmbc"]`, CCM_PACK=ccm,apmbc): a State party to
both treaties sees both in `ccm deadlines`, the API and its calendar; `--treaty` / `?treaty=`
narrows to one pack and keeps the one-pack JSON; the check over both packs keeps each pack's
rows and change log apart, on SQLite and PostgreSQL; migration 0007 backfills the pack."""

from __future__ import annotations

import json
from datetime import date

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from engine.cli.main import app
from engine.registry.shared import reset, shared_treaties

BOTH = "ccm,apmbc"


def run(monkeypatch, packs: str | None, *args: str) -> tuple[int, str]:
    if packs is None:
        monkeypatch.delenv("CCM_PACK", raising=False)
    else:
        monkeypatch.setenv("CCM_PACK", packs)
    reset()
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.mark.parametrize("party", ["AFG", "IRQ"])
def test_a_party_to_both_sees_both_treaties_in_deadlines(monkeypatch, party):
    code, out = run(monkeypatch, BOTH, "deadlines", party, "--as-of", "2021-01-01", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [entry["treaty"] for entry in listed] == ["ccm", "apmbc"]
    for entry in listed:   # each entry is the one-pack object plus its treaty
        assert {o["id"].split(".")[0] for o in entry["obligations"]} == {entry["treaty"]}
        code, alone = run(monkeypatch, entry["treaty"], "deadlines", party, "--as-of", "2021-01-01", "--json")
        assert {k: v for k, v in entry.items() if k != "treaty"} == json.loads(alone)
    code, text = run(monkeypatch, BOTH, "deadlines", party, "--as-of", "2021-01-01")
    assert "Convention on Cluster Munitions" in text and "Anti-Personnel Mine Ban Convention" in text


def test_treaty_option_keeps_the_one_pack_shape_and_reads_an_unselected_pack(monkeypatch):
    code, out = run(monkeypatch, None, "deadlines", "KHM", "--treaty", "apmbc", "--as-of", "2021-01-01", "--json")
    assert code == 0
    body = json.loads(out)
    clearance = next(o for o in body["obligations"] if o["id"] == "apmbc.art5.clearance")
    assert clearance["due"] != clearance["original_due"] == "2010-01-01"
    code, out = run(monkeypatch, BOTH, "deadlines", "AFG", "--treaty", "ccm", "--as-of", "2021-01-01", "--json")
    assert isinstance(json.loads(out), dict)
    code, out = run(monkeypatch, BOTH, "explain", "AFG", "apmbc.art5.clearance", "--as-of", "2021-01-01")
    assert code == 0 and out.startswith("apmbc.art5.clearance for Afghanistan")


def test_the_default_output_is_unchanged_by_the_treaties_machinery(monkeypatch):
    """One pack selected: the JSON is the evaluator's own, not a list."""
    code, out = run(monkeypatch, None, "deadlines", "LAO", "--as-of", "2021-01-01", "--json")
    assert code == 0
    treaties = shared_treaties("durable", None, ("ccm",))
    assert json.loads(out)["obligations"] == treaties.primary.evaluate("LAO", date(2021, 1, 1)).to_json()["obligations"]


def test_the_calendar_of_a_party_to_both_holds_both_with_each_pack_cited_in_its_style(monkeypatch):
    code, out = run(monkeypatch, BOTH, "calendar", "AFG", "--as-of", "2021-01-01")
    assert code == 0
    uids = [line for line in out.splitlines() if line.startswith("UID:")]
    assert any(u.startswith("UID:AFG/ccm.") for u in uids) and any(u.startswith("UID:AFG/apmbc.") for u in uids)
    assert "APMBC Art. 5" in out and "X-WR-CALNAME:CCM + APMBC deadlines: Afghanistan" in out


def test_the_api_lists_both_treaties_and_narrows_to_one(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from engine.runtime.settings import Settings
    from engine.web.app import ApiConfig, create_app

    reset()
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'none.sqlite'}", output_folder=tmp_path / "digests",
                        packs=("ccm", "apmbc"))
    with TestClient(create_app(settings, ApiConfig(state_ttl_seconds=0))) as client:
        both = client.get("/api/parties/AFG/obligations?as_of=2021-01-01").json()
        assert [entry["treaty"] for entry in both] == ["ccm", "apmbc"]
        one = client.get("/api/parties/AFG/obligations?as_of=2021-01-01&treaty=apmbc").json()
        assert one == {k: v for k, v in both[1].items() if k != "treaty"}
        assert client.get("/api/parties/KHM/obligations?treaty=ccm").status_code == 404
        assert client.get("/api/parties/AFG/obligations?treaty=nosuch").status_code == 404
        feed = client.get("/parties/AFG/calendar.ics?as_of=2021-01-01").text
        assert "UID:AFG/apmbc.art5.clearance/-@" in feed and "UID:AFG/ccm.art4.clearance/-@" in feed


def test_the_check_over_both_packs_keeps_their_rows_and_change_logs_apart(db_url, monkeypatch, tmp_path):
    from engine.store import database as store

    code, _ = run(monkeypatch, None, "check", "--as-of", "2024-01-01")
    assert code in (0, 1)
    code, out = run(monkeypatch, BOTH, "check", "--as-of", "2024-01-02")
    assert code in (0, 1), out
    with store.reader_session(db_url) as session:
        by_pack = dict(session.execute(sa.select(store.ObligationRow.pack, sa.func.count()).group_by(store.ObligationRow.pack)).all())
        assert set(by_pack) == {"ccm", "apmbc"}
        mixed = session.scalar(sa.select(sa.func.count()).select_from(store.ChangeRow)
                               .where(~store.ChangeRow.obligation_id.startswith(store.ChangeRow.pack + ".")))
        assert mixed == 0
        runs = session.execute(sa.select(store.CheckRunRow.pack).order_by(store.CheckRunRow.id)).scalars().all()
        assert runs == ["ccm", "ccm", "apmbc"]
        apmbc_new = session.scalar(sa.select(sa.func.count()).select_from(store.ChangeRow)
                                   .where(store.ChangeRow.pack == "apmbc", store.ChangeRow.field == "new"))
        assert apmbc_new == by_pack["apmbc"]
    # a later check of the first pack alone leaves the second pack's rows as they were
    code, _ = run(monkeypatch, None, "check", "--as-of", "2024-01-03")
    with store.reader_session(db_url) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(store.ObligationRow)
                              .where(store.ObligationRow.pack == "apmbc")) == by_pack["apmbc"]
        assert session.scalar(sa.select(sa.func.count()).select_from(store.ChangeRow)
                              .where(store.ChangeRow.field == "removed")) == 0
    digest = (tmp_path / "digests" / "digest-2024-01-02.md").read_text(encoding="utf-8")
    assert digest.startswith("# CCM daily check") and "\n# APMBC daily check" in digest
    code, out = run(monkeypatch, BOTH, "check", "--as-of", "2024-01-04", "--json")
    assert [c["treaty"] for c in json.loads(out)] == ["ccm", "apmbc"]


def test_migration_0007_backfills_the_pack_from_the_obligation_id(db_url):
    from alembic import command

    from engine.store import database as store

    path = store.sqlite_path(db_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = store.get_engine(db_url)
    with engine.begin() as connection:
        command.upgrade(store.alembic_config(connection), "0006")
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO check_runs (as_of, started_at, rulebook_hash, counts) "
                                   "VALUES ('2024-01-01', CURRENT_TIMESTAMP, 'h', '{}')"))
        for party, obligation in (("AFG", "ccm.art4.clearance"), ("AFG", "apmbc.art5.clearance")):
            connection.execute(sa.text(
                "INSERT INTO obligations (party, obligation_id, period, article, due, original_due, status, status_reason, "
                "provenance, rulebook_hash, computed_at) VALUES (:p, :o, '', '4', '2024-01-01', '2024-01-01', 'pending', "
                "'x', '{}', 'h', CURRENT_TIMESTAMP)"), {"p": party, "o": obligation})
            connection.execute(sa.text(
                "INSERT INTO obligation_changes (check_run_id, party, obligation_id, period, field, reason, at) "
                "VALUES (1, :p, :o, '', 'new', 'x', CURRENT_TIMESTAMP)"), {"p": party, "o": obligation})
    store.upgrade(db_url)
    with engine.begin() as connection:
        for table in ("obligations", "obligation_changes"):
            rows = connection.execute(sa.text(f"SELECT obligation_id, pack FROM {table} ORDER BY obligation_id")).all()
            assert [tuple(r) for r in rows] == [("apmbc.art5.clearance", "apmbc"), ("ccm.art4.clearance", "ccm")]
        assert connection.execute(sa.text("SELECT pack FROM check_runs")).scalar() is None


# ----------------------------------------------------------------------------- the record per treaty

def test_record_takes_treaty_tags_the_event_and_only_that_pack_reads_it(db_url, monkeypatch):
    from engine.record import source as record_source
    from engine.record.events import load_events

    code, out = run(monkeypatch, BOTH, "record", "completion", "AFG", "--article", "5", "--completed", "2020-06-01")
    assert code == 2 and "extensions exist" not in out and "Article 3 or 4" in out   # art. 5: not the first pack's
    code, out = run(monkeypatch, None, "record", "completion", "AFG", "--article", "5", "--completed", "2020-06-01",
                    "--treaty", "apmbc")
    assert code == 2 and "'apmbc' is not selected" in out and "CCM_PACK=ccm,apmbc" in out
    code, out = run(monkeypatch, BOTH, "record", "completion", "AFG", "--article", "5", "--completed", "2020-06-01",
                    "--treaty", "apmbc", "--json")
    assert code == 0, out
    [event] = load_events(db_url, "AFG")
    assert event.kind == "completion:art5" and event.extra == {"treaty": "apmbc"}
    record_source._url.cache_clear()
    code, out = run(monkeypatch, BOTH, "deadlines", "AFG", "--as-of", "2021-01-01", "--json")
    ccm, apmbc = json.loads(out)
    assert next(o for o in apmbc["obligations"] if o["id"] == "apmbc.art5.clearance")["status"].startswith("fulfilled")
    code, alone = run(monkeypatch, "ccm", "deadlines", "AFG", "--as-of", "2021-01-01", "--json")
    assert {k: v for k, v in ccm.items() if k != "treaty"} == json.loads(alone)   # the CCM evaluation ignores it
    code, out = run(monkeypatch, BOTH, "history", "AFG", "--treaty", "apmbc", "--as-of", "2021-01-01", "--json")
    assert any(item["origin"].startswith("recorded ") for item in json.loads(out)["history"])
    code, out = run(monkeypatch, BOTH, "history", "AFG", "--as-of", "2021-01-01", "--json")
    assert not any(item["origin"].startswith("recorded ") for item in json.loads(out)["history"])


def test_import_and_export_per_treaty(db_url, monkeypatch, tmp_path):
    from engine.record.events import load_events

    sheet = tmp_path / "receipts.csv"
    sheet.write_text("party,kind,year,received,symbol,source\nKHM,annual,2019,2020-04-30,,\n", encoding="utf-8")
    code, out = run(monkeypatch, BOTH, "import", str(sheet))
    assert code == 2 and "KHM" in out   # Cambodia is no CCM participant: the default pack refuses the row
    code, out = run(monkeypatch, BOTH, "import", str(sheet), "--treaty", "apmbc", "--json")
    assert code == 0 and json.loads(out)["imported"] == 1, out
    code, out = run(monkeypatch, BOTH, "import", str(sheet), "--treaty", "apmbc", "--json")
    assert json.loads(out) == {"file": "receipts.csv", "imported": 0, "already_recorded": 1}
    [event] = load_events(db_url, "KHM")
    assert event.extra == {"treaty": "apmbc"}
    code, mine = run(monkeypatch, BOTH, "export", "--treaty", "apmbc", "--format", "json")
    assert [row["party"] for row in json.loads(mine)] == ["KHM"]
    code, theirs = run(monkeypatch, BOTH, "export", "--treaty", "ccm", "--format", "json")
    assert json.loads(theirs) == []
    code, out = run(monkeypatch, "ccm", "import", str(sheet), "--treaty", "apmbc")
    assert code == 2 and "not selected" in out


def test_an_obligation_id_of_a_pack_not_selected_names_its_treaty(monkeypatch):
    code, out = run(monkeypatch, None, "explain", "AFG", "apmbc.art5.clearance", "--as-of", "2021-01-01")
    assert code == 0 and out.startswith("apmbc.art5.clearance for Afghanistan")
    code, named = run(monkeypatch, None, "explain", "AFG", "apmbc.art5.clearance", "--treaty", "apmbc", "--as-of", "2021-01-01")
    assert code == 0 and named == out
    code, out = run(monkeypatch, None, "explain", "AFG", "nosuch.art5.clearance", "--as-of", "2021-01-01")
    assert code == 2 and "nosuch.art5.clearance" in out


def test_stats_per_treaty(monkeypatch, tmp_path):
    monkeypatch.setenv("CCM_DATABASE_URL", f"sqlite:///{tmp_path / 'none.sqlite'}")
    code, out = run(monkeypatch, BOTH, "stats", "--as-of", "2021-01-01", "--json")
    listed = json.loads(out)
    assert [entry["treaty"] for entry in listed] == ["ccm", "apmbc"]
    for entry in listed:
        code, alone = run(monkeypatch, entry["treaty"], "stats", "--as-of", "2021-01-01", "--json")
        assert {k: v for k, v in entry.items() if k != "treaty"} == json.loads(alone)
    assert listed[0]["states_parties"] != listed[1]["states_parties"]
    code, out = run(monkeypatch, BOTH, "stats", "--as-of", "2021-01-01", "--treaty", "apmbc", "--json")
    assert json.loads(out) == {k: v for k, v in listed[1].items() if k != "treaty"}
    code, text = run(monkeypatch, BOTH, "stats", "--as-of", "2021-01-01")
    assert code == 0 and "Convention on Cluster Munitions" in text and "Anti-Personnel Mine Ban Convention" in text


# ----------------------------------------------------------------------------- the API and pages per treaty

def _client(tmp_path, packs=("ccm", "apmbc")):
    from fastapi.testclient import TestClient

    from engine.runtime.settings import Settings
    from engine.web.app import ApiConfig, create_app

    reset()
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'none.sqlite'}", output_folder=tmp_path / "digests",
                        packs=packs)
    return TestClient(create_app(settings, ApiConfig(state_ttl_seconds=0)))


def test_the_api_explain_overdue_history_and_stats_serve_every_pack(tmp_path):
    with _client(tmp_path) as client:
        chain = client.get("/api/parties/AFG/obligations/apmbc.art5.clearance/explain?as_of=2021-01-01")
        assert chain.status_code == 200 and chain.json()["obligation"]["id"] == "apmbc.art5.clearance"
        assert client.get("/api/parties/AFG/obligations/ccm.art4.clearance/explain?as_of=2021-01-01").status_code == 200
        overdue = client.get("/api/overdue?as_of=2021-01-01").json()
        assert [entry["treaty"] for entry in overdue] == ["ccm", "apmbc"]
        assert all(row["id"].startswith(entry["treaty"] + ".") for entry in overdue for row in entry["overdue"])
        one = client.get("/api/overdue?as_of=2021-01-01&treaty=apmbc").json()
        assert one == {k: v for k, v in overdue[1].items() if k != "treaty"} and one["count"] > 0
        stats = client.get("/api/stats?as_of=2021-01-01").json()
        assert [entry["treaty"] for entry in stats] == ["ccm", "apmbc"]
        assert client.get("/api/stats?as_of=2021-01-01&treaty=apmbc").json() == {
            k: v for k, v in stats[1].items() if k != "treaty"}
        history = client.get("/api/parties/AFG/history?as_of=2021-01-01").json()
        assert [entry["treaty"] for entry in history] == ["ccm", "apmbc"] and history[0]["history"] != history[1]["history"]
        assert client.get("/api/overdue?treaty=nosuch").status_code == 404
    with _client(tmp_path, ("ccm",)) as client:
        refused = client.get("/api/parties/AFG/obligations/apmbc.art5.clearance/explain?as_of=2021-01-01")
        assert refused.status_code == 404 and "'apmbc', which is not selected" in refused.json()["detail"]
        assert isinstance(client.get("/api/overdue?as_of=2021-01-01").json(), dict)   # one pack: the shape is unchanged


def test_a_party_of_the_second_pack_only_works_everywhere(tmp_path):
    with _client(tmp_path) as client:
        assert client.get("/api/parties/KHM?as_of=2021-01-01").json()["party"]["iso3"] == "KHM"
        assert client.get("/api/parties/KHM/obligations?as_of=2021-01-01").status_code == 200
        chain = client.get("/api/parties/KHM/obligations/apmbc.art5.clearance/explain?as_of=2021-01-01")
        assert chain.status_code == 200
        [history] = client.get("/api/parties/KHM/history?as_of=2021-01-01").json()
        assert history["treaty"] == "apmbc" and history["history"]
        page = client.get("/parties/KHM?as_of=2021-01-01")
        assert page.status_code == 200 and "apmbc.art5.clearance" in page.text
        feed = client.get("/parties/KHM/calendar.ics?as_of=2021-01-01").text
        assert "UID:KHM/apmbc.art5.clearance/-@" in feed


def test_the_party_page_of_a_party_to_both_shows_both_treaties(tmp_path):
    with _client(tmp_path) as client:
        page = client.get("/parties/AFG?as_of=2021-01-01").text
        assert "Convention on Cluster Munitions" in page and "Anti-Personnel Mine Ban Convention" in page
        assert 'id="treaty-apmbc"' in page and "apmbc.art5.clearance" in page and "ccm.art4.clearance" in page
        assert "/parties/AFG/calendar.ics?treaty=apmbc" in page and "/parties/AFG/calendar.ics?treaty=ccm" in page
    with _client(tmp_path, ("ccm",)) as client:
        page = client.get("/parties/AFG?as_of=2021-01-01").text
        assert "treaty-apmbc" not in page and "calendar.ics?treaty=" not in page


# ----------------------------------------------------------------------------- the scheduler

def test_the_daily_job_checks_every_selected_pack(db_url, monkeypatch, tmp_path):
    from engine.check import scheduler
    from engine.store import database as store

    monkeypatch.setenv("CCM_PACK", BOTH)
    reset()
    store.upgrade(db_url)
    result = scheduler.daily_job("2025-01-01")
    assert list(result.check_runs) == ["ccm", "apmbc"] and result.check_run_id == result.check_runs["ccm"]
    with store.reader_session(db_url) as session:
        assert session.execute(sa.select(store.CheckRunRow.pack).order_by(store.CheckRunRow.id)).scalars().all() == [
            "ccm", "apmbc"]
    digest = (tmp_path / "digests" / "digest-2025-01-01.md").read_text(encoding="utf-8")
    assert "# APMBC daily check" in digest


# ----------------------------------------------------------------------------- the dashboard per treaty

def _sqlite(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'db' / 'ccm.sqlite'}"
    monkeypatch.setenv("CCM_DATABASE_URL", url)
    monkeypatch.setenv("CCM_OUTPUT_FOLDER", str(tmp_path / "digests"))
    (tmp_path / "no-config.toml").write_text("")
    monkeypatch.setenv("CCM_CONFIG", str(tmp_path / "no-config.toml"))
    return url


def _dashboard(url, tmp_path, packs, as_of="2024-01-02") -> str:
    from fastapi.testclient import TestClient

    from engine.runtime.settings import Settings
    from engine.web.app import ApiConfig, create_app

    reset()
    settings = Settings(database_url=url, output_folder=tmp_path / "digests", packs=packs)
    with TestClient(create_app(settings, ApiConfig(state_ttl_seconds=0))) as client:
        response = client.get(f"/?as_of={as_of}")
        assert response.status_code == 200, response.text
        return response.text


def test_the_dashboard_has_a_section_per_treaty_and_each_its_own_first_check(tmp_path, monkeypatch):
    url = _sqlite(tmp_path, monkeypatch)
    assert run(monkeypatch, None, "check", "--as-of", "2024-01-01")[0] in (0, 1)     # run 1: the CCM's first
    assert run(monkeypatch, BOTH, "check", "--as-of", "2024-01-02")[0] in (0, 1)     # runs 2 (CCM), 3 (APMBC's first)
    page = _dashboard(url, tmp_path, ("ccm", "apmbc"))
    main, _, apmbc = page.partition('id="treaty-apmbc"')
    assert apmbc, "no APMBC section"
    assert "Convention on Cluster Munitions" in main and "Anti-Personnel Mine Ban Convention" in apmbc
    # the CCM's last run (2) was not its first; the APMBC's (3) was, whatever the lowest run id is
    assert "Check run 2 as of" in main and "was the first one" not in main
    assert "Check run 3 as of" in apmbc and "The last check (run 3) was the first one" in apmbc
    # the APMBC section lists its own obligations, named by its rulebook; no CCM one (Art. 3 is the CCM's stockpile)
    section = apmbc.partition('id="timeline"')[0]
    assert "Clearance (Art. 5)" in section and "Stockpile destruction (Art. 4)" in section
    # Greece's Art. 4 is overdue on the ISU's published finding; a passed Art. 5 deadline with nothing on
    # record (Yemen's, 1 Mar 2015) is listed as not known, with the reason
    overdue = section.partition('id="apmbc-overdue-other"')[2].partition('id="apmbc-unknown-other"')[0]
    unknown = section.partition('id="apmbc-unknown-other"')[2].partition('id="apmbc-decisions-to-record"')[0]
    assert "(GRC)" in overdue and "(YEM)" not in overdue
    assert "the record is not complete for" in unknown
    assert "(Art. 3)" not in section and '<a href="/parties/' in section
    # a second APMBC check: its flag turns off and its changes (none the same day) are its own
    assert run(monkeypatch, BOTH, "check", "--as-of", "2024-01-02")[0] in (0, 1)     # runs 4 (CCM), 5 (APMBC)
    apmbc = _dashboard(url, tmp_path, ("ccm", "apmbc")).partition('id="treaty-apmbc"')[2]
    assert "Check run 5 as of" in apmbc and "was the first one" not in apmbc


def test_the_one_pack_dashboard_reads_its_own_pack_s_runs(tmp_path, monkeypatch):
    url = _sqlite(tmp_path, monkeypatch)
    assert run(monkeypatch, BOTH, "check", "--as-of", "2024-01-01")[0] in (0, 1)     # runs 1 (CCM), 2 (APMBC)
    page = _dashboard(url, tmp_path, ("ccm",))
    assert "treaty-apmbc" not in page and "treaty-title" not in page
    assert "The last check (run 1) was the first one" in page        # the CCM's run, not the APMBC's later one
    page = _dashboard(url, tmp_path, ("apmbc",))
    assert "The last check (run 2) was the first one" in page


def test_explain_takes_the_pack_an_unselected_id_names(monkeypatch):
    """With the default selection (ccm only), an apmbc id names its treaty as --treaty would:
    Cambodia, a party of the Mine Ban Convention only, gets its extended Art. 5 chain."""
    code, out = run(monkeypatch, None, "explain", "KHM", "apmbc.art5.clearance", "--as-of", "2021-01-01")
    assert code == 0, out
    assert "due 31 Dec 2025 (originally 1 Jan 2010)" in out and "4RC decided on 29 Nov 2019" in out
    code, named = run(monkeypatch, None, "explain", "KHM", "apmbc.art5.clearance", "--as-of", "2021-01-01",
                      "--treaty", "apmbc")
    assert named == out


def test_the_quick_entry_point_explains_an_unselected_pack_alike(monkeypatch):
    from engine.cli import launch

    args = ["explain", "KHM", "apmbc.art5.clearance", "--as-of", "2021-01-01", "--json"]
    code, typer_out = run(monkeypatch, None, *args)
    assert code == 0 and json.loads(typer_out)["obligation"]["due"] == "2025-12-31"
    reset()
    quick = launch.answer(args)          # None would mean: handed to the typer app
    assert quick is not None and json.loads(quick) == json.loads(typer_out)
