"""The HTTP API (engine/web/app.py) through FastAPI's TestClient, on a temporary SQLite database
initialised by a check: shapes identical to the CLI's JSON, explanations, ETag and 304,
authorisation of writes, refusals as sentences, and property-based fuzzing (no 500 for any
input, no file reachable through a path, a State's token never writes)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

ISU = "isu-secret-token"
STATES = "CHE:che-read-token,LAO:lao-read-token"
PARTIES = ("LAO", "CHE", "DEU", "BGR", "LTU", "AFG", "IDN", "FRA")
DATES = (date(2011, 8, 20), date(2019, 6, 1), date(2023, 1, 1))


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """A SQLite database with its schema and one check run as of 1 Jun 2019."""
    from engine.backends import Evaluator
    from engine.check.run import run_check
    from engine.core.rulebook import load_rulebook
    from engine.registry.load import load_registry
    from engine.store import database as store

    folder = tmp_path_factory.mktemp("api")
    url = f"sqlite:///{folder / 'ccm.sqlite'}"
    store.upgrade(url)
    evaluator = Evaluator(load_rulebook(), load_registry(), "durable")
    run_check(url, evaluator, date(2019, 6, 1), now=datetime(2019, 6, 1, 6, 0, tzinfo=UTC))
    yield url, evaluator, folder
    store.dispose_engines()


@pytest.fixture(scope="module")
def client(db):
    import os

    from fastapi.testclient import TestClient

    from engine.runtime.settings import Settings
    from engine.web.app import ApiConfig, create_app

    url, _evaluator, folder = db
    os.environ["CCM_ISU_TOKEN"] = ISU
    os.environ["CCM_STATE_TOKENS"] = STATES
    app = create_app(Settings(database_url=url, output_folder=folder / "digests"), ApiConfig(state_ttl_seconds=0))
    with TestClient(app) as test_client:
        yield test_client
    os.environ.pop("CCM_ISU_TOKEN", None)
    os.environ.pop("CCM_STATE_TOKENS", None)


def events(url):
    from engine.record.events import load_events

    return load_events(url)


def sentence(response) -> str:
    body = response.json()
    assert set(body) == {"detail"}, body
    detail = body["detail"]
    assert isinstance(detail, str) and detail[0].isupper() and detail.rstrip().endswith((".", "?")), detail
    return detail


# ----------------------------------------------------------------------------- reads

@pytest.mark.parametrize("iso3", PARTIES)
def test_obligations_have_exactly_the_cli_json(client, db, iso3):
    url, evaluator, _ = db
    recorded = [e for e in events(url) if e.party == iso3]
    for day in DATES:
        response = client.get(f"/api/parties/{iso3}/obligations", params={"as_of": day.isoformat()})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == json.loads(json.dumps(evaluator.evaluate(iso3, day, recorded).to_json()))


def test_obligations_equal_the_cli_output(client, db, monkeypatch):
    from typer.testing import CliRunner

    from engine.cli.main import app
    from engine.record import source as record_source

    url, _, _ = db
    monkeypatch.setenv("CCM_DATABASE_URL", url)
    record_source._url.cache_clear()
    try:
        result = CliRunner().invoke(app, ["deadlines", "LAO", "--as-of", "2019-06-01", "--json"])
    finally:
        record_source._url.cache_clear()
    assert result.exit_code == 0, result.output
    assert client.get("/api/parties/lao/obligations?as_of=2019-06-01").json() == json.loads(result.output)


def test_party_list_party_and_names(client, db):
    _, evaluator, _ = db
    body = client.get("/api/parties?as_of=2019-06-01").json()
    assert body["as_of"] == "2019-06-01"
    assert [p["iso3"] for p in body["parties"]] == sorted(evaluator.registry.participants)
    lao = next(p for p in body["parties"] if p["iso3"] == "LAO")
    assert lao == {"iso3": "LAO", "name": "Lao People's Democratic Republic", "status": "state_party",
                   "entry_into_force": "2010-08-01", "withdrawal_effective": None}
    one = client.get("/api/parties/Laos?as_of=2019-06-01").json()      # a CLDR name works too
    assert one["party"] == lao and one["names"]["fr"] == "République démocratique populaire lao"   # the UN name
    assert one["links"]["obligations"] == "/api/parties/LAO/obligations"


def test_explain_is_the_cli_explanation(client, db):
    from engine.core.explain import explain

    url, evaluator, _ = db
    evaluation = evaluator.evaluate("LAO", date(2019, 6, 1), [e for e in events(url) if e.party == "LAO"])
    obligation = evaluation.find("ccm.art4.extension_request")[0]
    response = client.get("/api/parties/LAO/obligations/ccm.art4.extension_request/explain?as_of=2019-06-01")
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(explain(evaluation, evaluator.rulebook, obligation).to_json()))
    assert any("9 months" in step for step in response.json()["arithmetic"])
    annual = client.get("/api/parties/LAO/obligations/ccm.art7.annual_report/explain?as_of=2019-06-01&period=2012")
    assert annual.json()["obligation"]["period"] == "2012"


def test_explain_refusals_are_sentences(client):
    ambiguous = client.get("/api/parties/LAO/obligations/ccm.art7.annual_report/explain?as_of=2019-06-01")
    assert ambiguous.status_code == 422 and "choose one with ?period=" in sentence(ambiguous)
    unknown = client.get("/api/parties/LAO/obligations/ccm.art99.nothing/explain?as_of=2019-06-01")
    assert unknown.status_code == 404 and "ccm.art4.clearance" in sentence(unknown)
    missing = client.get("/api/parties/CHE/obligations/ccm.art4.clearance/explain?as_of=2019-06-01")
    assert missing.status_code == 404 and "has no ccm.art4.clearance" in sentence(missing)
    period = client.get("/api/parties/LAO/obligations/ccm.art7.annual_report/explain?as_of=2019-06-01&period=1999")
    assert period.status_code == 404 and "its periods are" in sentence(period)


def test_overdue_and_stats(client, db):
    from engine.check.run import stats

    url, evaluator, _ = db
    overdue = client.get("/api/overdue?as_of=2011-08-20").json()
    assert overdue["count"] == len(overdue["overdue"]) > 0
    assert all(row["status"] == "overdue" and row["days_late"] > 0 for row in overdue["overdue"])
    assert overdue["overdue"][0]["id"] == "ccm.art7.initial_report"
    body = client.get("/api/stats?as_of=2011-08-20").json()
    assert body == json.loads(json.dumps(stats(evaluator, date(2011, 8, 20), events(url))))


def test_unknown_party_bad_dates_and_addresses(client):
    unknown = client.get("/api/parties/Lao Peoples Democratic Republik/obligations")
    assert unknown.status_code == 404 and "Did you mean" in sentence(unknown) and "(LAO)" in unknown.json()["detail"]
    bad = client.get("/api/parties/LAO/obligations?as_of=1-6-2019")
    assert bad.status_code == 422 and "YYYY-MM-DD" in sentence(bad)
    impossible = client.get("/api/parties/LAO/obligations?as_of=2019-02-30")
    assert impossible.status_code == 422 and "not a date" in sentence(impossible)
    for day in ("1999-12-31", "2500-01-01"):
        early = client.get(f"/api/overdue?as_of={day}")
        assert early.status_code == 422 and "out of range" in sentence(early)
    nowhere = client.get("/api/nothing")
    assert nowhere.status_code == 404 and "/openapi.json" in sentence(nowhere)
    wrong_method = client.delete("/api/parties/LAO")
    assert wrong_method.status_code == 405 and sentence(wrong_method)


def test_reading_never_creates_a_database(tmp_path):
    from fastapi.testclient import TestClient

    from engine.runtime.settings import Settings
    from engine.web.app import create_app

    path = tmp_path / "missing" / "ccm.sqlite"
    app = create_app(Settings(database_url=f"sqlite:///{path}", output_folder=tmp_path))
    assert not path.exists()
    with TestClient(app) as test_client:
        assert test_client.get("/api/parties/LAO/obligations?as_of=2019-06-01").status_code == 200
        assert test_client.get("/").status_code == 200
    assert not path.parent.exists()


def test_import_does_nothing_and_no_scheduler_starts(tmp_path):
    """Importing and creating the app opens no database and starts no scheduler or thread."""
    code = (
        "import sys, threading\n"
        "import engine.web.app\n"
        "assert 'sqlalchemy' not in sys.modules, 'database code imported at import time'\n"
        "from engine.runtime.settings import Settings\n"
        f"app = engine.web.app.create_app(Settings(database_url='sqlite:///{tmp_path / 'x.sqlite'}'))\n"
        "from fastapi.testclient import TestClient\n"
        "with TestClient(app) as c: assert c.get('/api/parties/LAO').status_code == 200\n"
        "print(sorted(m for m in sys.modules if 'apscheduler' in m or m == 'engine.check.scheduler'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert not (tmp_path / "x.sqlite").exists()


# ----------------------------------------------------------------------------- ETag

def test_etag_and_304(client):
    first = client.get("/api/parties/LAO/obligations?as_of=2019-06-01")
    etag = first.headers["etag"]
    assert etag.startswith('"') and first.headers["cache-control"] == "no-cache"
    again = client.get("/api/parties/LAO/obligations?as_of=2019-06-01", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    listed = client.get("/api/parties/LAO/obligations?as_of=2019-06-01", headers={"If-None-Match": f'"x", W/{etag}'})
    assert listed.status_code == 304
    other_day = client.get("/api/parties/LAO/obligations?as_of=2019-06-02", headers={"If-None-Match": etag})
    assert other_day.status_code == 200 and other_day.headers["etag"] != etag
    ics = client.get("/parties/LAO/calendar.ics?as_of=2019-06-01")
    assert client.get("/parties/LAO/calendar.ics?as_of=2019-06-01",
                      headers={"If-None-Match": ics.headers["etag"]}).status_code == 304


def test_recording_changes_the_etag_and_the_status(client):
    url = "/api/parties/CHE/obligations?as_of=2019-06-01"
    before = client.get(url)
    initial = next(o for o in before.json()["obligations"] if o["id"] == "ccm.art7.initial_report")
    assert initial["status"] == "unknown"   # the embedded data has no record of it, and no list names it
    posted = client.post("/api/parties/CHE/reports", json={"kind": "initial", "received": "2013-06-28", "symbol": "CCM/CHE/2013"},
                         headers={"Authorization": f"Bearer {ISU}"})
    assert posted.status_code == 201, posted.text
    assert posted.json()["created"] is True and posted.json()["party"] == "CHE"
    after = client.get(url, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    assert next(o for o in after.json()["obligations"] if o["id"] == "ccm.art7.initial_report")["status"] == "fulfilled"
    repeated = client.post("/api/parties/CHE/reports", json={"kind": "initial", "received": "2013-06-28", "symbol": "CCM/CHE/2013"},
                           headers={"Authorization": f"Bearer {ISU}"})
    assert repeated.status_code == 200 and repeated.json()["created"] is False


# ----------------------------------------------------------------------------- writes

REPORT = {"kind": "annual", "year": 2012, "received": "2013-04-29"}


def test_writes_need_the_isu_token(client, db):
    url, _, _ = db
    count = len(events(url))
    none = client.post("/api/parties/LAO/reports", json=REPORT)
    assert none.status_code == 401 and none.headers["www-authenticate"] == "Bearer" and "Authorization" in sentence(none)
    wrong = client.post("/api/parties/LAO/reports", json=REPORT, headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401 and sentence(wrong)
    state = client.post("/api/parties/LAO/reports", json=REPORT, headers={"Authorization": "Bearer lao-read-token"})
    assert state.status_code == 403 and "only the ISU" in sentence(state)
    other = client.post("/api/parties/LAO/decisions", json={}, headers={"Authorization": "Bearer che-read-token"})
    assert other.status_code == 403
    assert len(events(url)) == count
    ok = client.post("/api/parties/LAO/reports", json=REPORT, headers={"Authorization": f"Bearer {ISU}"})
    assert ok.status_code == 201 and ok.json()["kind"] == "report:annual"
    assert len(events(url)) == count + 1
    history = client.get("/api/parties/LAO/history?as_of=2019-06-01")
    assert "recorded_by" not in json.dumps(history.json())
    isu_history = client.get("/api/parties/LAO/history?as_of=2019-06-01", headers={"Authorization": f"Bearer {ISU}"})
    assert any(item.get("recorded_by") == "isu (api)" for item in isu_history.json()["history"])


def test_write_refusals_are_the_records_sentences(client):
    auth = {"Authorization": f"Bearer {ISU}"}
    future = client.post("/api/parties/LAO/reports", json={"kind": "annual", "year": 2030, "received": "2099-01-01"}, headers=auth)
    assert future.status_code == 422 and "in the future" in sentence(future)
    early = client.post("/api/parties/LAO/reports", json={"kind": "initial", "received": "2009-01-01"}, headers=auth)
    assert early.status_code == 422 and "was not a State Party" in sentence(early)
    no_year = client.post("/api/parties/LAO/reports", json={"kind": "annual", "received": "2013-01-01"}, headers=auth)
    assert no_year.status_code == 422 and "year" in sentence(no_year)
    bad_kind = client.post("/api/parties/LAO/reports", json={"kind": "weekly", "received": "2013-01-01"}, headers=auth)
    assert bad_kind.status_code == 422 and "'kind'" in sentence(bad_kind)
    not_json = client.post("/api/parties/LAO/reports", content=b"{kind", headers=auth)
    assert not_json.status_code == 422 and "not valid JSON" in sentence(not_json)
    extra = client.post("/api/parties/LAO/reports", json={**REPORT, "admin": True}, headers=auth)
    assert extra.status_code == 422 and "not a known field" in sentence(extra)
    ceiling = client.post("/api/parties/LAO/decisions", json={"article": "4", "meeting": "12MSP", "decided": "2024-09-13",
                                                              "granted": "2031-08-01"}, headers=auth)
    assert ceiling.status_code == 422 and "ceiling" in sentence(ceiling)
    meeting = client.post("/api/parties/LAO/decisions", json={"article": "4", "meeting": "99MSP", "decided": "2024-09-13",
                                                              "granted": "2030-08-01"}, headers=auth)
    assert meeting.status_code == 422 and "99MSP" in sentence(meeting)
    unknown = client.post("/api/parties/ATL/reports", json=REPORT, headers=auth)
    assert unknown.status_code == 404 and sentence(unknown)


# ----------------------------------------------------------------------------- OpenAPI

def test_openapi_is_valid_and_documents_every_path(client):
    from fastapi.routing import APIRoute

    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = json.loads(response.text)
    routes = [r for r in client.app.routes if isinstance(r, APIRoute) and r.include_in_schema]
    for route in routes:
        assert route.path in spec["paths"], route.path
        for method in route.methods:
            assert method.lower() in spec["paths"][route.path]
    for path in ("/api/parties", "/api/parties/{iso3}", "/api/parties/{iso3}/obligations",
                 "/api/parties/{iso3}/obligations/{obligation_id}/explain", "/api/overdue", "/api/stats",
                 "/api/parties/{iso3}/reports", "/api/parties/{iso3}/decisions", "/parties/{iso3}/calendar.ics",
                 "/calendar.ics", "/", "/parties/{iso3}"):
        assert path in spec["paths"], path
    body = spec["paths"]["/api/parties/{iso3}/reports"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"kind", "received"}
    try:
        from openapi_spec_validator import validate
    except ImportError:   # optional: validated when installed
        return
    validate(spec)


# ----------------------------------------------------------------------------- fuzzing

SEGMENT = st.text(min_size=1, max_size=40)
QUERY = st.one_of(st.none(), st.text(max_size=30), st.dates().map(date.isoformat))
FUZZ = hsettings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(party=SEGMENT, as_of=QUERY, lang=st.one_of(st.none(), st.text(max_size=8)),
       endpoint=st.sampled_from(["/api/parties/{p}", "/api/parties/{p}/obligations", "/parties/{p}/calendar.ics",
                                 "/parties/{p}", "/api/parties/{p}/history"]))
def test_no_input_gives_a_500(client, party, as_of, lang, endpoint):
    params = {k: v for k, v in (("as_of", as_of), ("lang", lang)) if v is not None}
    response = client.get(endpoint.format(p=quote(party, safe="")), params=params)
    assert response.status_code < 500, (party, as_of, response.text[:300])
    if response.status_code >= 400 and endpoint.startswith("/api"):
        assert isinstance(response.json()["detail"], str)


@FUZZ
@given(obligation=SEGMENT, period=st.one_of(st.none(), st.text(max_size=20)), as_of=QUERY)
def test_no_explain_input_gives_a_500(client, obligation, period, as_of):
    params = {k: v for k, v in (("period", period), ("as_of", as_of)) if v is not None}
    response = client.get(f"/api/parties/LAO/obligations/{quote(obligation, safe='')}/explain", params=params)
    assert response.status_code < 500, response.text[:300]


TRAVERSALS = ["..", "%2e%2e", "..%2f..%2fconfig.toml", "%2e%2e%2f%2e%2e%2fpyproject.toml", "..%5c..%5cconfig.toml",
              "%252e%252e%252fconfig.toml", "....//....//config.toml", "%00", "LAO%00.ics", "LAO%2f..%2f..%2fCHE"]
SECRETS = ("[engine]", "[project]", "isu_token_env", "import ", "root:")


@pytest.mark.parametrize("segment", TRAVERSALS)
def test_path_segments_never_reach_files(client, segment):
    for template in ("/api/parties/{s}", "/api/parties/{s}/obligations", "/parties/{s}/calendar.ics", "/parties/{s}",
                     "/static/{s}", "/static/../{s}", "/api/parties/LAO/obligations/{s}/explain"):
        response = client.get(template.format(s=segment))
        if response.status_code == 200:   # the client itself resolved a literal '..' to another, public, address
            assert "/.." not in response.request.url.raw_path.decode() and segment == "..", (template, segment)
        else:
            assert response.status_code in (404, 422), (template, segment, response.status_code)
        assert not any(secret in response.text for secret in SECRETS), (template, segment)


@FUZZ
@given(party=st.sampled_from(PARTIES + ("XXX", "..")), token=st.sampled_from(["che-read-token", "lao-read-token"]),
       path=st.sampled_from(["reports", "decisions"]),
       body=st.one_of(st.dictionaries(st.sampled_from(["kind", "year", "received", "article", "meeting", "decided", "granted",
                                                       "symbol", "source", "x"]),
                                      st.one_of(st.text(max_size=12), st.integers(), st.none(), st.dates().map(date.isoformat)),
                                      max_size=6),
                      st.just({"kind": "annual", "year": 2012, "received": "2013-04-29"})))
def test_a_state_token_never_writes(client, db, party, token, path, body):
    url, _, _ = db
    count = len(events(url))
    response = client.post(f"/api/parties/{quote(party, safe='')}/{path}", json=body,
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (403, 404), response.text   # 404: the address itself does not exist
    assert len(events(url)) == count


@FUZZ
@given(token=st.text(max_size=40).filter(lambda t: t.strip() not in (ISU, "che-read-token", "lao-read-token")))
def test_any_other_token_is_unauthorised(client, token):
    response = client.post("/api/parties/LAO/reports", json=REPORT,
                           headers={"Authorization": f"Bearer {token}".encode()})
    assert response.status_code == 401, response.text
