"""Calendar feeds (engine/web/calendar.py): parsed back with icalendar. Stable UIDs across
generations, SEQUENCE growing when a deadline moves (a decision in the registry, then one
recorded), alarms before open deadlines, the legal basis in the description, a deterministic
DTSTAMP; the same feed from the HTTP API and from ``ccm calendar``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

CHECKED = datetime(2025, 1, 2, 6, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def evaluator():
    from engine.backends import Evaluator
    from engine.core.rulebook import load_rulebook
    from engine.registry.load import load_registry

    return Evaluator(load_rulebook(), load_registry(), "durable")


@pytest.fixture
def db(tmp_path, evaluator, monkeypatch):
    """An initialised SQLite database, set as CCM_DATABASE_URL for the CLI."""
    from engine.record import source as record_source
    from engine.store import database as store
    url = f"sqlite:///{tmp_path / 'ccm.sqlite'}"
    store.upgrade(url)
    monkeypatch.setenv("CCM_DATABASE_URL", url)
    monkeypatch.setenv("CCM_OUTPUT_FOLDER", str(tmp_path / "digests"))
    record_source._url.cache_clear()
    yield url
    record_source._url.cache_clear()
    store.dispose_engines()


def feed(evaluator, iso3s, as_of, events=(), stamp=None) -> bytes:
    from engine.web import calendar as calendar_feed
    evaluations = [evaluator.evaluate(iso3, as_of, [e for e in events if e.party == iso3]) for iso3 in iso3s]
    return calendar_feed.build(evaluations, evaluator.rulebook, name="test", domain="example.org",
                               stamp=calendar_feed.dtstamp(stamp, as_of))


def vevents(ics: bytes) -> dict[str, object]:
    from icalendar import Calendar

    calendar = Calendar.from_ical(ics)
    events = {str(e["UID"]): e for e in calendar.walk("VEVENT")}
    assert len(events) == len(calendar.walk("VEVENT")), "UIDs must be unique"
    return events


CLEARANCE = "LAO/ccm.art4.clearance/-@example.org"


def test_uids_are_stable_and_the_feed_deterministic(evaluator):
    first = feed(evaluator, ["LAO", "CHE"], date(2019, 6, 1))
    second = feed(evaluator, ["LAO", "CHE"], date(2019, 6, 1))
    assert first == second
    later = vevents(feed(evaluator, ["LAO", "CHE"], date(2019, 9, 5)))
    events = vevents(first)
    assert CLEARANCE in events and "CHE/ccm.art7.initial_report/-@example.org" in events
    assert "LAO/ccm.art7.annual_report/2012@example.org" in events
    assert set(events) <= set(later)           # nothing renamed when time passes
    for event in events.values():
        assert event["DTSTART"].params.get("VALUE") == "DATE"
        start = event.decoded("DTSTART")
        assert type(start) is date and event.decoded("DTEND") == start + timedelta(days=1)
        assert event.decoded("DTSTAMP") == datetime(2019, 6, 1, tzinfo=UTC)


def test_sequence_counts_the_extensions(evaluator, db):
    """Lao PDR's clearance deadline: 1 Aug 2020, moved by 9MSP (registry) to 1 Aug 2025, then by
    a decision recorded in the database to 1 Aug 2030: SEQUENCE 0, 1, 2 under one UID."""
    from engine.record.events import NewEvent, load_events, record

    before = vevents(feed(evaluator, ["LAO"], date(2019, 6, 1)))[CLEARANCE]
    assert (before.decoded("DTSTART"), int(before["SEQUENCE"])) == (date(2020, 8, 1), 0)
    after = vevents(feed(evaluator, ["LAO"], date(2019, 9, 5)))[CLEARANCE]
    assert (after.decoded("DTSTART"), int(after["SEQUENCE"])) == (date(2025, 8, 1), 1)
    assert "Originally due 1 Aug 2020" in str(after["DESCRIPTION"])

    record(db, evaluator, NewEvent(party="LAO", kind="decision:extension:art4", on=date(2024, 9, 13), period="12MSP",
                                   extra={"granted_deadline": "2030-08-01", "meeting": "12MSP", "document": None}))
    recorded = vevents(feed(evaluator, ["LAO"], date(2025, 1, 1), load_events(db)))[CLEARANCE]
    assert (recorded.decoded("DTSTART"), int(recorded["SEQUENCE"])) == (date(2030, 8, 1), 2)
    unmoved = vevents(feed(evaluator, ["LAO"], date(2025, 1, 1), load_events(db)))["LAO/ccm.art7.initial_report/-@example.org"]
    assert int(unmoved["SEQUENCE"]) == 0


def test_alarms_before_open_deadlines_only(evaluator):
    events = vevents(feed(evaluator, ["LAO", "SWE"], date(2019, 6, 1)))
    clearance = events[CLEARANCE]                     # pending on 1 Jun 2019
    alarms = clearance.walk("VALARM")
    assert sorted(a.decoded("TRIGGER") for a in alarms) == [timedelta(days=-30), timedelta(days=-7)]
    assert all(str(a["ACTION"]) == "DISPLAY" and "1 Aug 2020" in str(a["DESCRIPTION"]) for a in alarms)
    done = events["SWE/ccm.art3.stockpile_destruction/-@example.org"]   # Sweden completed it in 2015
    assert "fulfilled" in str(done["DESCRIPTION"]) and not done.walk("VALARM")


def test_description_gives_the_legal_basis(evaluator):
    event = vevents(feed(evaluator, ["LAO"], date(2019, 6, 1)))["LAO/ccm.art4.extension_request/9MSP@example.org"]
    text = str(event["DESCRIPTION"])
    assert "Art. 4(1)(a)" in text and "not later than ten years" in text
    assert "Art. 4(6)" in text and "nine months" in text
    assert "2 Sep 2019 - 9 months = 2 Dec 2018" in text
    assert event.decoded("DTSTART") == date(2018, 12, 2)


def test_api_feeds(db, evaluator, tmp_path):
    from fastapi.testclient import TestClient

    from engine.check.run import run_check
    from engine.runtime.settings import Settings
    from engine.web.app import ApiConfig, create_app
    from engine.web.calendar import last_check_finished

    run_check(db, evaluator, date(2025, 1, 2), now=CHECKED)
    finished = last_check_finished(db).replace(tzinfo=UTC, microsecond=0)
    app = create_app(Settings(database_url=db, output_folder=tmp_path), ApiConfig(calendar_domain="example.org",
                                                                                   base_url="https://deadlines.example.org/"))
    with TestClient(app) as client:
        response = client.get("/parties/lao/calendar.ics?as_of=2019-06-01")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/calendar")
        events = vevents(response.content)
        assert events[CLEARANCE].decoded("DTSTAMP") == finished         # when the last check finished
        assert str(events[CLEARANCE]["URL"]) == "https://deadlines.example.org/parties/LAO"     # [api] base_url
        again = client.get("/parties/LAO/calendar.ics?as_of=2019-06-01")
        assert again.content == response.content
        isu = vevents(client.get("/calendar.ics?as_of=2019-06-01").content)
        parties = {uid.split("/")[0] for uid in isu}
        assert {"LAO", "CHE", "DEU", "LTU"} <= parties and len(parties) > 90
        assert set(events) <= set(isu)
        missing = client.get("/parties/Atlantis/calendar.ics")
        assert missing.status_code == 404 and "No participant" in missing.json()["detail"]


def test_cli_calendar(db, evaluator):
    from typer.testing import CliRunner

    from engine.cli.main import app

    runner = CliRunner()
    result = runner.invoke(app, ["calendar", "LAO", "--as-of", "2019-06-01"])
    assert result.exit_code == 0, result.output
    events = vevents(result.stdout_bytes)
    assert CLEARANCE.replace("example.org", "ccm-deadlines.local") in events or any(
        uid.startswith("LAO/ccm.art4.clearance/-@") for uid in events)
    expected = vevents(feed(evaluator, ["LAO"], date(2019, 6, 1)))
    assert sorted(u.split("@")[0] for u in events) == sorted(u.split("@")[0] for u in expected)
    assert runner.invoke(app, ["calendar", "LAO", "--as-of", "2019-06-01"]).stdout_bytes == result.stdout_bytes
    everyone = runner.invoke(app, ["calendar", "--all", "--as-of", "2019-06-01"])
    assert everyone.exit_code == 0 and len(vevents(everyone.stdout_bytes)) > len(events)
    neither = runner.invoke(app, ["calendar"])
    assert neither.exit_code == 2 and "--all" in neither.output
    unknown = runner.invoke(app, ["calendar", "Atlantis"])
    assert unknown.exit_code == 2 and "No participant" in unknown.output
