"""Hostile input (issue 11): the same refusal, as a sentence, on SQLite and PostgreSQL; imports that
are not UTF-8, not CSV or not JSON; a digest folder that cannot be written; exports a spreadsheet
would run; dates nobody means. Every case runs through the real CLI (or API) on both databases."""

from __future__ import annotations

import csv
import json
import sqlite3
from datetime import date

import pytest
import sqlalchemy as sa

from engine.store import database as store

ROW = {"party": "LBN", "kind": "initial", "year": "", "received": "2011-12-01", "symbol": "CCM/LBN/INIT", "source": ""}
HEADER = "party,kind,year,received,symbol,source\n"


def count(url: str, table=store.RecordedEventRow) -> int:
    """Rows in the table (a refusal may have left no database at all: it is created empty to count)."""
    store.upgrade(url)
    with store.reader_session(url) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(table))


def write_csv(path, rows):
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(ROW))
        writer.writeheader()
        writer.writerows(rows)
    return path


# ----------------------------------------------------------------------------- lengths and characters

@pytest.mark.parametrize("args, expected", [
    (["record", "report", "LBN", "--kind", "initial", "--received", "2011-12-01", "--symbol", "S" * 201],
     "symbol: 201 characters, at most 200"),
    (["record", "clarification-request", "LBN", "--received", "2012-01-10", "--id", "R" * 81],
     "id: 81 characters, at most 80"),
    (["record", "report", "LBN", "--kind", "initial", "--received", "2011-12-01", "--symbol", "CCM\x00LBN"],
     "symbol: holds a control character (U+0000)"),
    (["record", "clarification-request", "LBN", "--received", "2012-01-10", "--id", "REQ-1\r\nBcc: x@evil.example"],
     "id: holds a control character (U+000D)"),
    (["record", "report", "LBN", "--kind", "initial", "--received", "2011-12-01", "--source", "https://x\x00y"],
     "source: holds a control character (U+0000)"),
])
def test_over_long_values_and_control_characters_are_refused_the_same_on_both_databases(db_url, ccm, args, expected):
    code, out = ccm(*args)
    assert code == 2 and expected in out and "Traceback" not in out
    assert count(db_url) == 0


def test_a_long_user_name_is_refused_with_the_way_out(db_url, ccm, monkeypatch):
    monkeypatch.delenv("CCM_RECORDED_BY", raising=False)
    monkeypatch.setenv("USER", "u" * 121)
    code, out = ccm("record", "report", "LBN", "--kind", "initial", "--received", "2011-12-01")
    assert code == 2 and "recorded_by: 121 characters, at most 120" in out and "CCM_RECORDED_BY" in out
    assert count(db_url) == 0
    monkeypatch.setenv("CCM_RECORDED_BY", "isu-desk")
    assert ccm("record", "report", "LBN", "--kind", "initial", "--received", "2011-12-01")[0] == 0


def test_a_nul_byte_through_the_api_is_a_422_on_both_databases(db_url, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from engine.runtime.settings import Settings
    from engine.web.app import ApiConfig, create_app

    monkeypatch.setenv("CCM_ISU_TOKEN", "isu-token")
    store.upgrade(db_url)
    app = create_app(Settings(database_url=db_url, output_folder=tmp_path), ApiConfig(state_ttl_seconds=0))
    auth = {"Authorization": "Bearer isu-token"}
    with TestClient(app) as client:
        for body in ({"kind": "initial", "received": "2011-12-01", "symbol": "CCM\x00LBN"},
                     {"kind": "initial", "received": "2011-12-01", "source": "https://x/\x00"}):
            response = client.post("/api/parties/LBN/reports", json=body, headers=auth)
            assert response.status_code == 422 and "control character" in response.json()["detail"]
        deep = ("[" * 100_000 + "]" * 100_000).encode()
        response = client.post("/api/parties/LBN/reports", content=deep, headers={**auth, "Content-Type": "application/json"})
        assert response.status_code == 422 and "nests too deeply" in response.json()["detail"]
        ok = client.post("/api/parties/LBN/reports", json={"kind": "initial", "received": "2011-12-01"}, headers=auth)
        assert ok.status_code == 201
    assert count(db_url) == 1


# ----------------------------------------------------------------------------- dates and years

@pytest.mark.parametrize("year", ["99999", "-5", "0000", "２０２４", "20x4"])
def test_a_year_that_is_not_four_ascii_digits_in_range_is_refused(db_url, ccm, year):
    code, out = ccm("record", "report", "LBN", "--kind", "annual", "--year", year, "--received", "2012-04-30")
    assert code == 2 and "--year" in out and ("is not a year" in out or "out of range" in out)
    assert count(db_url) == 0


@pytest.mark.parametrize("day", ["20250429", "2024-W18-1", "２０２４-04-30", "2024-4-30", "9999-12-31", "0001-01-01"])
def test_a_date_not_written_yyyy_mm_dd_or_out_of_range_is_refused(db_url, ccm, day):
    code, out = ccm("record", "report", "LBN", "--kind", "initial", "--received", day)
    assert code == 2 and "--received" in out and ("is not a date" in out or "out of range" in out)
    assert count(db_url) == 0


@pytest.mark.parametrize("command", [
    ["parties"], ["deadlines", "LAO"], ["explain", "LAO", "ccm.art4.clearance"], ["history", "LAO"], ["check"],
    ["stats"], ["letters", "plan"], ["letters", "preview"], ["letters", "send"], ["calendar", "LAO"]])
def test_as_of_9999_12_31_is_refused_by_every_command_without_a_traceback(db_url, ccm, command):
    code, out = ccm(*command, "--as-of", "9999-12-31")
    assert code == 2 and "--as-of 9999-12-31 is out of range" in out


@pytest.mark.parametrize("command", [["parties"], ["check"], ["letters", "plan"], ["stats"]])
def test_as_of_beyond_the_apis_range_is_refused_at_once_as_by_the_api(db_url, ccm, command):
    code, out = ccm(*command, "--as-of", "2500-01-01")
    assert code == 2 and "--as-of 2500-01-01 is out of range; give a date from 2008-05-30" in out


def test_a_response_to_a_request_that_does_not_exist_is_refused(db_url, ccm):
    code, out = ccm("record", "clarification-response", "LBN", "--request", "NO-SUCH-REQUEST", "--submitted", "2012-02-01")
    assert code == 2 and "no recorded request for clarification 'NO-SUCH-REQUEST'" in out
    assert count(db_url) == 0
    assert ccm("record", "clarification-request", "LBN", "--received", "2012-01-10", "--id", "REQ-1")[0] == 0
    code, out = ccm("record", "clarification-response", "LBN", "--request", "REQ-1", "--submitted", "2012-01-05")
    assert code == 2 and "comes before the request" in out
    assert ccm("record", "clarification-response", "LBN", "--request", "REQ-1", "--submitted", "2012-02-01")[0] == 0
    assert count(db_url) == 2


# ----------------------------------------------------------------------------- imports

def _refused(ccm, db_url, path, *expected):
    code, out = ccm("import", str(path))
    assert code == 2 and "Nothing was imported" in out, out
    for text in expected:
        assert text in out, out
    assert count(db_url) == 0


def test_an_import_in_latin_1_names_the_line_and_the_byte(db_url, ccm, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADER + "LBN,initial,,2011-12-01,CCM/LBN,\nCôte d'Ivoire,initial,,2012-01-01,,\n").encode("latin-1"))
    _refused(ccm, db_url, path, "line 3: is not UTF-8 (byte 0xF4 at column 2)")


def test_an_import_in_utf16_with_a_byte_order_mark_is_read(db_url, ccm, tmp_path):
    path = tmp_path / "utf16.csv"
    path.write_bytes((HEADER + "Lebanon,initial,,2011-12-01,CCM/LBN/INIT,\n").encode("utf-16"))
    code, out = ccm("import", str(path))
    assert code == 0 and "Imported 1 receipt(s)" in out
    assert count(db_url) == 1


def test_an_import_in_utf16_without_a_byte_order_mark_is_refused(db_url, ccm, tmp_path):
    path = tmp_path / "utf16le.csv"
    path.write_bytes((HEADER + "LBN,initial,,2011-12-01,,\n").encode("utf-16-le"))
    _refused(ccm, db_url, path, "holds a NUL byte", "UTF-16 without a byte-order mark")


def test_a_csv_field_over_131072_characters_names_its_line(db_url, ccm, tmp_path):
    path = write_csv(tmp_path / "long.csv", [ROW, dict(ROW, symbol="S" * 131_073)])
    _refused(ccm, db_url, path, "line 3", "longer than 131,072 characters")


def test_a_csv_row_with_more_fields_than_the_header_is_refused(db_url, ccm, tmp_path):
    path = tmp_path / "extra.csv"
    path.write_text(HEADER + "LBN,initial,,2011-12-01,,,surplus\n", encoding="utf-8")
    _refused(ccm, db_url, path, "line 2: 7 fields, more than the 6 columns")


@pytest.mark.parametrize("body, expected", [
    ("[" + "[" * 50_000 + "]" * 50_000 + "]", "entry 1: nests too deeply"),
    ('[{"party": "LBN", "kind": "initial", "received": "2011-12-01", "symbol": {"a": 1}}]',
     "entry 1, field symbol: must be text or a number"),
    ('[{"party": "LBN", "kind": "initial", "received": "2011-12-01", "symbol": "\\ud800"}]',
     "entry 1, field symbol: holds a lone surrogate (U+D800)"),
    ('[{"party": "LBN", "kind": "initial", "received": "2011-12-01"} {"party": "LBN"}]',
     "entry 1: the list is not closed properly"),
    ('{"party": "LBN"}', "must hold a list of objects"),
])
def test_bad_json_names_the_entry_and_why(db_url, ccm, tmp_path, body, expected):
    path = tmp_path / "bad.json"
    path.write_text(body, encoding="utf-8")
    _refused(ccm, db_url, path, expected)


def test_a_contacts_import_that_is_not_utf8_is_refused_with_its_line(db_url, ccm, tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_bytes("party,email,language\nCHE,genève@mission.example,fr\n".encode("latin-1"))
    code, out = ccm("contacts", "import", str(path))
    assert code == 2 and "line 2: is not UTF-8" in out
    from engine.store.mailing import ContactRow
    store.upgrade(db_url)
    assert count(db_url, ContactRow) == 0


def test_a_refused_import_never_takes_the_write_lock(tmp_path, monkeypatch, ccm):
    """A concurrent writer holds SQLite's lock: a bad file is refused at once, naming its line."""
    path = tmp_path / "db.sqlite"
    url = f"sqlite:///{path}"
    monkeypatch.setenv("CCM_DATABASE_URL", url)
    (tmp_path / "none.toml").write_text("")       # an empty config: CCM_CONFIG must name a file that exists
    monkeypatch.setenv("CCM_CONFIG", str(tmp_path / "none.toml"))
    store.upgrade(url)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        bad = write_csv(tmp_path / "bad.csv", [ROW, dict(ROW, received="2011-13-01")])
        code, out = ccm("import", str(bad))
        assert code == 2 and "line 3, field received" in out
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        store.dispose_engines()


def test_4000_receipts_of_one_party_on_one_day_get_distinct_ids(db_url, ccm, tmp_path):
    """The made-up ids had 24 random bits: within 4,000 rows of the same party, kind and day they collided."""
    rows = [dict(ROW, kind="annual", year=str(2011 + i % 13), received="2024-04-30", symbol=f"CCM/LBN/{i}")
            for i in range(4000)]
    code, out = ccm("import", str(write_csv(tmp_path / "many.csv", rows)))
    assert code == 0 and "Imported 4000 receipt(s)" in out
    with store.reader_session(db_url) as session:
        ids = list(session.scalars(sa.select(store.RecordedEventRow.id)))
    assert len(ids) == len(set(ids)) == 4000


# ----------------------------------------------------------------------------- export

FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "'quoted"]


def test_export_neutralises_formulas_and_round_trips_through_import(db_url, ccm, tmp_path, monkeypatch):
    years = iter(range(2012, 2030))
    for symbol in FORMULAS:
        code, out = ccm("record", "report", "LBN", "--kind", "annual", "--year", str(next(years)),
                        "--received", "2024-04-30", "--symbol", symbol)
        assert code == 0, out
    exported = tmp_path / "receipts.csv"
    assert ccm("export", "--output", str(exported))[0] == 0
    cells = [row["symbol"] for row in csv.DictReader(exported.open(encoding="utf-8"))]
    assert sorted(cells) == sorted("'" + s for s in FORMULAS)          # none starts with = + - @
    as_json = tmp_path / "receipts.json"
    assert ccm("export", "--format", "json", "--output", str(as_json))[0] == 0
    assert sorted(r["symbol"] for r in json.loads(as_json.read_text(encoding="utf-8"))) == sorted(FORMULAS)
    # Into a fresh database: the same symbols come back, from CSV and from JSON.
    for source, name in ((exported, "csv"), (as_json, "json")):
        fresh = f"sqlite:///{tmp_path / f'fresh-{name}.sqlite'}"
        monkeypatch.setenv("CCM_DATABASE_URL", fresh)
        code, out = ccm("import", str(source))
        assert code == 0 and f"Imported {len(FORMULAS)} receipt(s)" in out
        with store.reader_session(fresh) as session:
            assert sorted(session.scalars(sa.select(store.RecordedEventRow.symbol))) == sorted(FORMULAS)
    store.dispose_engines()


def test_export_for_a_terminal_shows_control_characters_as_escapes():
    from engine.record.events import format_export

    row = {"party": "LBN", "kind": "initial", "year": "", "received": "2011-12-01",
           "symbol": "CCM\x1b[2J\x1b]0;owned\x07", "source": ""}
    shown = format_export([row], "csv", terminal=True)
    assert "\x1b" not in shown and "\x07" not in shown and "\\x1b[2J" in shown
    assert "\x1b" in format_export([row], "csv")          # a file keeps the value as recorded


# ----------------------------------------------------------------------------- the check's digest

def test_a_check_whose_digest_folder_cannot_be_written_commits_nothing_and_says_so(db_url, ccm, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    monkeypatch.setenv("CCM_OUTPUT_FOLDER", str(blocker / "digests"))
    code, out = ccm("check", "--as-of", "2024-07-31")
    assert code == 3 and "the digest folder" in out and "nothing was checked or committed" in out
    assert count(db_url, store.CheckRunRow) == 0 and count(db_url, store.ObligationRow) == 0
    monkeypatch.setenv("CCM_OUTPUT_FOLDER", str(tmp_path / "digests"))
    code, out = ccm("check", "--as-of", "2024-07-31")
    assert code in (0, 1) and (tmp_path / "digests" / "digest-2024-07-31.md").exists()
    assert count(db_url, store.CheckRunRow) == 1


def test_a_digest_that_fails_while_writing_rolls_the_check_back(db_url, ccm, tmp_path, monkeypatch):
    folder = tmp_path / "digests"
    (folder / "digest-2024-07-31.html").mkdir(parents=True)     # the folder is writable, that one file is not
    monkeypatch.setenv("CCM_OUTPUT_FOLDER", str(folder))
    code, out = ccm("check", "--as-of", "2024-07-31")
    assert code == 3 and "the check was not committed" in out
    assert count(db_url, store.CheckRunRow) == 0 and count(db_url, store.ChangeRow) == 0
    assert not (folder / "digest-2024-07-31.md").exists()          # no digest of a run that does not exist
    (folder / "digest-2024-07-31.html").rmdir()
    code, out = ccm("check", "--as-of", "2024-07-31")
    assert code in (0, 1) and count(db_url, store.CheckRunRow) == 1


def test_the_markdown_digest_escapes_recorded_html(db_url, ccm, tmp_path, record_evaluator):
    from engine.check.run import run_check

    assert ccm("init")[0] == 0
    run_check(db_url, record_evaluator, date(2012, 1, 1))
    code, out = ccm("record", "report", "LBN", "--kind", "initial", "--received", "2011-12-01",
                    "--symbol", "<script>alert(1)</script>")
    assert code == 0, out
    code, out = ccm("check", "--as-of", "2012-01-01")
    markdown = (tmp_path / "digests" / "digest-2012-01-01.md").read_text(encoding="utf-8")
    html = (tmp_path / "digests" / "digest-2012-01-01.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown and "<script>" not in markdown
    assert "<script>" not in html


# ----------------------------------------------------------------------------- API headers and links

def test_security_headers_and_calendar_links_from_the_configured_base_url_never_the_host(db_url, tmp_path):
    from fastapi.testclient import TestClient
    from icalendar import Calendar

    from engine.runtime.settings import Settings
    from engine.web.app import ApiConfig, create_app

    store.upgrade(db_url)
    settings = Settings(database_url=db_url, output_folder=tmp_path)
    configured = create_app(settings, ApiConfig(base_url="https://deadlines.example.org"))
    with TestClient(configured) as client:
        for path in ("/api/parties?as_of=2019-06-01", "/parties/LAO?as_of=2019-06-01", "/parties/LAO/calendar.ics?as_of=2019-06-01",
                     "/no/such/page"):
            response = client.get(path, headers={"Host": "evil.example"})
            assert response.headers["X-Content-Type-Options"] == "nosniff", path
            assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], path
            assert response.headers["Referrer-Policy"] == "no-referrer", path
        feed = client.get("/parties/LAO/calendar.ics?as_of=2019-06-01", headers={"Host": "evil.example"})
        links = {str(e["URL"]) for e in Calendar.from_ical(feed.content).walk("VEVENT")}
        assert links == {"https://deadlines.example.org/parties/LAO"}
    with TestClient(create_app(settings, ApiConfig())) as client:       # no base_url: no link at all
        feed = client.get("/parties/LAO/calendar.ics?as_of=2019-06-01", headers={"Host": "evil.example"})
        assert feed.status_code == 200 and b"evil.example" not in feed.content and b"\nURL" not in feed.content
