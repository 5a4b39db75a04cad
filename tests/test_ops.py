"""Operations: exit statuses by class, the scheduler's logs and digest files, ccm status and /api/status, replays, CLI conventions."""

from __future__ import annotations

import io
import json
import logging
import socket
from datetime import UTC, date

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from engine.check import scheduler
from engine.cli.main import app
from engine.runtime import logs
from engine.store import database as store


def run(*args: str):
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def words(text: str) -> str:
    return " ".join(text.split())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- exit statuses

def test_exit_0_when_nothing_needs_attention_and_1_when_something_does(db_url):
    # 1 Jun 2008: the Convention was adopted (30 May) but binds no one yet; nothing is due.
    code, out, _ = run("check", "--as-of", "2008-06-01")
    assert code == 0 and "Nothing needs attention (exit status 0)." in words(out)
    code, out, _ = run("check", "--as-of", "2025-01-01")
    assert code == 1 and "Needs attention (exit status 1)." in words(out)


def test_exit_2_for_a_mistake_in_the_input(db_url):
    code, _out, err = run("deadlines", "Atlantis")
    assert code == 2 and "No participant matches 'Atlantis'" in words(err) and "Traceback" not in err


@pytest.mark.parametrize("command", [["check"], ["init"], ["export"], ["record", "report", "LAO", "--kind", "initial",
                                                                      "--received", "2011-01-27"]],
                         ids=lambda c: c[0])
def test_exit_3_when_the_database_cannot_be_reached_with_one_sentence_and_no_traceback(monkeypatch, tmp_path, command):
    monkeypatch.setenv("CCM_DATABASE_URL", f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/none")
    monkeypatch.setenv("CCM_OUTPUT_FOLDER", str(tmp_path / "out"))
    code, out, err = run(*command)
    assert code == 3, (out, err)
    assert "database" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1


def test_the_traceback_is_printed_only_with_debug(monkeypatch, tmp_path):
    monkeypatch.setenv("CCM_DATABASE_URL", f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/none")
    code, _, err = run("--debug", "check")
    assert code == 3 and "Traceback (most recent call last)" in err and "error:" in err


def test_exit_3_when_the_digest_folder_cannot_be_written_and_nothing_is_stored(db_url, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CCM_OUTPUT_FOLDER", str(blocker / "digests"))
    code, _, err = run("check", "--as-of", "2025-01-01")
    assert code == 3 and str(blocker) in err and "Traceback" not in err
    with store.reader_session(db_url) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(store.CheckRunRow)) == 0


def test_exit_3_when_smtp_is_chosen_but_its_password_is_not_set(db_url, tmp_path, monkeypatch):
    config = tmp_path / "smtp.toml"
    config.write_text('[smtp]\nhost = "127.0.0.1"\nuser = "isu"\npassword_env = "CCM_TEST_NO_SUCH_PASSWORD"\n')
    monkeypatch.setenv("CCM_CONFIG", str(config))
    monkeypatch.setenv("CCM_NOTIFIER", "smtp")
    monkeypatch.delenv("CCM_TEST_NO_SUCH_PASSWORD", raising=False)
    code, _, err = run("letters", "send", "--as-of", "2025-01-01")
    assert code == 3 and "SMTP is not configured" in words(err) and "CCM_TEST_NO_SUCH_PASSWORD" in err


# --------------------------------------------------------------------------- the scheduler's job

@pytest.fixture
def json_log():
    buffer = io.StringIO()
    logs.configure("INFO", "json", stream=buffer)
    yield buffer
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "ccm"]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)


def test_one_days_scheduler_job_writes_the_digest_files_and_logs_its_start_and_outcome(db_url, tmp_path, json_log):
    store.upgrade(db_url)
    result = scheduler.daily_job("2025-01-01")
    folder = tmp_path / "digests"
    md, html = folder / "digest-2025-01-01.md", folder / "digest-2025-01-01.html"
    assert md.is_file() and html.is_file() and result.digest == (md, html)
    assert "2025" in md.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    lines = [line for line in lines if line["logger"].startswith("ccm.")]     # (Alembic logs its migrations too)
    events = [(line.get("event"), line.get("job"), line.get("outcome")) for line in lines]
    assert events[0] == ("job_start", "daily", None)
    assert ("check", None, None) in events and events[-1] == ("job_end", "daily", "ok")
    check = next(line for line in lines if line.get("event") == "check")
    assert check["run_id"] == result.check_run_id and check["digest"] == str(md) and check["as_of"] == "2025-01-01"
    assert f"check run {result.check_run_id} as of 2025-01-01" in lines[-1]["message"]
    assert all(line["level"] == "INFO" for line in lines)


def test_a_failing_job_logs_its_failure_with_the_traceback(tmp_path, monkeypatch, json_log):
    monkeypatch.setenv("CCM_DATABASE_URL", f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/none")
    with pytest.raises(sa.exc.OperationalError):
        scheduler.daily_job("2025-01-01")
    last = json.loads(json_log.getvalue().splitlines()[-1])
    assert last["event"] == "job_end" and last["outcome"] == "failed" and last["level"] == "ERROR"
    assert "Traceback" in last["exception"]


def test_text_log_lines_carry_time_level_and_logger(db_url):
    buffer = io.StringIO()
    logs.configure(None, "text", daemon=True, stream=buffer)
    try:
        store.upgrade(db_url)
        scheduler.retry_job()
    finally:
        logging.getLogger().handlers[:] = [h for h in logging.getLogger().handlers if h.get_name() != "ccm"]
        logging.getLogger().setLevel(logging.WARNING)
    text = buffer.getvalue()
    assert " INFO ccm.scheduler: job retry started" in text and "job retry finished" in text


# --------------------------------------------------------------------------- status

def test_status_reports_the_last_check_the_letters_the_lock_and_the_hashes(db_url):
    from fastapi.testclient import TestClient

    from engine.web.app import create_app

    code, out, _ = run("status", "--json")
    before = json.loads(out)
    assert code == 1 and before["database"]["created"] is (not db_url.startswith("sqlite"))
    assert run("check", "--as-of", "2025-01-01")[0] == 1
    with scheduler.scheduler_lock(db_url):
        code, out, err = run("status", "--json")
        status = json.loads(out)
        assert code == 1 and status["attention"] == ["the last check is as of 2025-01-01, more than a day ago"], err
        with TestClient(create_app()) as client:
            api = client.get("/api/status").json()
            health = client.get("/healthz")
    assert status["database"]["reachable"] and status["database"]["schema_current"]
    check = status["last_check"]
    assert check["as_of"] == "2025-01-01" and check["outcome"] == "completed" and check["overdue"] > 0
    assert status["scheduler_lock"]["held"] is True and "pid" in status["scheduler_lock"]["holder"]
    assert status["letters"] == {"queued": 0, "failed": 0, "sent": 0, "awaiting_approval": 0, "batches_awaiting_approval": 0}
    assert status["next_run"]["from"] == "[scheduler] time"
    assert len(status["rulebook_hash"]) == 16 and status["registry_hash"] == check["registry_hash"]
    assert api["last_check"] == check and api["scheduler_lock"]["held"] is True
    assert health.status_code == 200 and health.json()["status"] == "ok"
    after = json.loads(run("status", "--json")[1])
    assert after["scheduler_lock"]["held"] is False and after["scheduler_lock"]["last_holder"]


def test_status_reads_the_next_run_from_the_scheduler_job_store(db_url, tmp_path, monkeypatch):
    from engine.runtime.settings import load_settings
    from notifiers.config import load_letters_config

    store.upgrade(db_url)
    config = load_letters_config(load_settings())
    sched = scheduler.build_scheduler(db_url, config, blocking=False)
    sched.start(paused=True)
    try:
        stored = sched.get_job(scheduler.DAILY_JOB_ID).next_run_time
    finally:
        sched.shutdown(wait=False)
    status = json.loads(run("status", "--json")[1])
    assert status["next_run"]["from"] == "scheduler job store"
    assert status["next_run"]["at"] == stored.isoformat(timespec="seconds")


def test_status_and_healthz_say_when_the_database_cannot_be_reached(monkeypatch):
    from fastapi.testclient import TestClient

    from engine.web.app import create_app

    monkeypatch.setenv("CCM_DATABASE_URL", f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/none")
    code, out, _ = run("status", "--json")
    assert code == 3 and json.loads(out)["database"]["reachable"] is False
    with TestClient(create_app()) as client:
        health = client.get("/healthz")
    assert health.status_code == 503 and health.json()["status"] == "unavailable"


# --------------------------------------------------------------------------- replay

def test_a_check_as_of_a_day_before_the_last_one_is_a_replay_that_stores_nothing(db_url, tmp_path):
    assert run("check", "--as-of", "2025-06-01")[0] == 1

    def state():
        with store.reader_session(db_url) as session:
            runs = session.scalars(sa.select(store.CheckRunRow.as_of).order_by(store.CheckRunRow.id)).all()
            rows = session.execute(sa.select(store.ObligationRow.party, store.ObligationRow.obligation_id,
                                             store.ObligationRow.period, store.ObligationRow.status,
                                             store.ObligationRow.computed_at)).all()
        return runs, sorted(rows)

    before = state()
    _code, out, _ = run("check", "--as-of", "2012-01-01", "--json")
    digest = json.loads(out)
    assert digest["as_of"] == "2012-01-01" and digest["replay"] is True
    _code, out, _ = run("check", "--as-of", "2012-01-01")
    assert "Replay as of 2012-01-01, before the last stored check (2025-06-01)" in words(out)
    assert state() == before
    assert not (tmp_path / "digests" / "digest-2012-01-01.md").exists()
    run("check", "--as-of", "2012-01-01", "--store")
    runs, _ = state()
    assert runs == [date(2025, 6, 1), date(2012, 1, 1)]
    assert (tmp_path / "digests" / "digest-2012-01-01.md").exists()


# --------------------------------------------------------------------------- conventions

def test_version_and_shell_completion():
    from importlib.metadata import version

    code, out, _ = run("--version")
    assert code == 0 and out.strip() == f"ccm-deadlines {version('ccm-deadlines')}"
    code, out, _ = run("--help")
    assert "--install-completion" in out and "--show-completion" in out


def test_the_api_docs_work_offline_from_locally_served_assets():
    from fastapi.testclient import TestClient

    from engine.web.app import create_app

    with TestClient(create_app()) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert "/docs/assets/swagger-ui-bundle.js" in page.text and "/docs/assets/swagger-ui.css" in page.text
        assert "cdn" not in page.text.lower() and "https://" not in page.text
        script = client.get("/docs/assets/swagger-ui-bundle.js")
        css = client.get("/docs/assets/swagger-ui.css")
        assert script.status_code == 200 and len(script.content) > 100_000 and "SwaggerUIBundle" in script.text
        assert css.status_code == 200 and ".swagger-ui" in css.text
        assert client.get("/openapi.json").json()["openapi"].startswith("3.1")


# --------------------------------------------------------------------------- 80 columns, --json, names

DATE = r"\d{4}-\d{2}-\d{2}"


@pytest.mark.parametrize("command", [["deadlines", "LAO", "--as-of", "2026-01-01"], ["deadlines", "CHE", "--as-of", "2026-01-01"],
                                     ["parties", "--as-of", "2026-01-01"]], ids=lambda c: " ".join(c[:2]))
def test_tables_fit_80_columns_without_cutting_dates_or_statuses(monkeypatch, command):
    import re

    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run(*command)
    assert code == 0 and all(len(line) <= 80 for line in out.splitlines())
    assert "…" not in out
    code, js, _ = run(*command, "--json")
    data = json.loads(js)
    if command[0] == "deadlines":
        expected_dates = sum(1 + (o["original_due"] != o["due"]) for o in data["obligations"])
        assert len(re.findall(DATE, out)) == expected_dates + 1        # (+1: the "Explain one" hint's --as-of)
        for o in data["obligations"]:
            assert re.search(rf"{o['due']}.*\b{o['status']}\b", out)
        assert "Initial report" in out and "ccm.art7.initial_report" not in out
    else:
        assert len(re.findall(DATE, out)) == sum(1 for p in data["parties"] if p["entry_into_force"])


def test_the_check_digest_fits_80_columns_with_readable_names(db_url, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run("check", "--as-of", "2025-03-01", "--limit", "5")
    assert code == 1 and all(len(line) <= 80 for line in out.splitlines()) and "…" not in out
    assert "Initial report" in out and "Annual report" in out


def test_rules_have_titles_and_the_id_stays_in_json_and_explain():
    from engine.core.rulebook import load_rulebook

    rulebook = load_rulebook()
    assert all(rule.title for rule in rulebook.rules)
    assert rulebook.name_of("ccm.art4.clearance") == "Clearance (Art. 4)"
    code, out, _ = run("deadlines", "LAO", "--as-of", "2026-01-01", "--json")
    assert "ccm.art4.clearance" in out
    code, out, _ = run("explain", "LAO", "Clearance (Art. 4)", "--as-of", "2026-01-01")
    assert code == 0 and out.startswith("ccm.art4.clearance for Lao")


def test_an_unknown_obligation_id_gets_a_did_you_mean():
    code, _, err = run("explain", "LAO", "ccm.art4.clearence", "--as-of", "2026-01-01")
    assert code == 2 and "Did you mean: ccm.art4.clearance" in words(err)
    code, _, err = run("explain", "LAO", "initial reprt", "--as-of", "2026-01-01")
    assert code == 2 and "Did you mean: ccm.art7.initial_report" in words(err)


def test_language_codes_are_case_insensitive(db_url):
    code, out, _ = run("contacts", "set", "LAO", "--email", "mission@lao.example", "--language", "EN")
    assert code == 0 and "in en" in out
    code, out, _ = run("contacts", "list", "--json")
    assert json.loads(out) == [{"party": "LAO", "email": ["mission@lao.example"], "language": "en", "mission": None,
                                "cc": []}]
    code, out, _ = run("letters", "preview", "--as-of", "2025-01-01", "--party", "LAO", "--language", "FR", "--json")
    notes = json.loads(out)["notes"]
    assert code == 0 and notes and all(note["language"] == "fr" and note["party"] == "LAO" for note in notes)
    assert "compliments" in notes[0]["text"] and notes[0]["to"] == "mission@lao.example"


def test_json_on_init_record_and_letters_send(db_url):
    code, out, _ = run("init", "--json")
    init = json.loads(out)
    assert code == 0 and init["schema"] == store.head_revision() and init["registry"]["participants"] > 100
    code, out, _ = run("record", "report", "LAO", "--kind", "initial", "--received", "2011-01-27", "--json")
    recorded = json.loads(out)
    assert code == 0 and recorded["created"] is True and recorded["party"] == "LAO"
    code, out, _ = run("record", "report", "LAO", "--kind", "initial", "--received", "2011-01-27", "--json")
    assert json.loads(out) == {**recorded, "created": False}
    run("contacts", "set", "SSD", "--email", "mission@ssd.example", "--language", "en")
    code, out, _ = run("letters", "send", "--as-of", "2024-08-04", "--dry-run", "--json")
    dry = json.loads(out)
    assert code == 0 and dry["dry_run"] and [(w["party"], w["to"]) for w in dry["would_send"]] == [
        ("SSD", "mission@ssd.example")]
    code, out, _ = run("letters", "send", "--as-of", "2024-08-04", "--json")
    sent = json.loads(out)
    assert code == 0 and len(sent["sent"]) == 1 and sent["sent"][0].startswith("SSD|") and sent["failed"] == []
    assert sent["batch"] and sent["awaiting_approval"] is False


@pytest.mark.parametrize("unit", ["ccm-scheduler.service", "ccm-serve.service"])
def test_the_systemd_units_run_commands_that_exist(unit):
    import configparser
    import shlex
    from pathlib import Path

    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read(Path(__file__).resolve().parent.parent / "deploy" / "systemd" / unit)
    argv = shlex.split(parser["Service"]["ExecStart"])
    assert Path(argv[0]).name == "ccm" and parser["Service"]["User"] == "ccm"
    code, out, _ = run(*argv[1:], "--help")
    assert code == 0 and "Usage" in out
    assert parser["Service"]["RestartPreventExitStatus"] == "2"      # a config mistake: restarting will not help


def test_exit_for_maps_each_class_of_failure():
    from engine.core.model import UnknownPartyError
    from engine.runtime.errors import exit_for
    from engine.runtime.settings import SettingsError

    cases = [(SettingsError("config.toml: [smtp] port is 'x'."), 2), (UnknownPartyError("No participant matches 'X'."), 2),
             (sa.exc.DataError("INSERT", {}, Exception("value too long for type character varying(3)")), 2),
             (sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused")), 3),
             (PermissionError(13, "Permission denied", "/srv/digests"), 3),
             (IsADirectoryError(21, "Is a directory", "/srv/out"), 3), (KeyError("surprise"), 3)]
    for error, code in cases:
        got, message = exit_for(error)
        assert got == code and message and "\n" not in message, (error, got, message)
    assert "run it again with --debug" in exit_for(KeyError("surprise"))[1]
    assert exit_for(PermissionError(13, "Permission denied", "/srv/digests"))[1] == \
        "cannot write /srv/digests: permission denied"


def test_the_pages_take_the_language_code_in_any_case():
    from fastapi.testclient import TestClient

    from engine.web.app import create_app

    with TestClient(create_app()) as client:
        upper, lower = client.get("/parties/CHE?lang=FR"), client.get("/parties/CHE?lang=fr")
    assert upper.status_code == 200 and 'lang="fr"' in upper.text and upper.text == lower.text


def test_verbose_and_the_configured_level_and_format_log_the_check(db_url, tmp_path, monkeypatch):
    code, _, err = run("-v", "check", "--as-of", "2025-01-01")
    assert code == 1 and "INFO ccm.check: check run 1 as of 2025-01-01" in err
    code, _, err = run("check", "--as-of", "2025-01-02")
    assert "ccm.check" not in err                       # commands log warnings only by default
    config = tmp_path / "logging.toml"
    config.write_text('[logging]\nlevel = "info"\nformat = "json"\n')
    monkeypatch.setenv("CCM_CONFIG", str(config))
    code, _, err = run("check", "--as-of", "2025-01-03")
    entries = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    check = [e for e in entries if e.get("event") == "check"]
    assert code == 1 and check and check[0]["run_id"] == 3 and check[0]["attention"] is True


def test_exit_3_when_the_outbox_folder_cannot_be_written_and_no_letter_is_recorded(db_url, tmp_path, monkeypatch):
    from engine.store.mailing import LetterRow

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("CCM_OUTBOX_FOLDER", str(blocker / "outbox"))
    run("contacts", "set", "SSD", "--email", "mission@ssd.example", "--language", "en")
    code, _, err = run("letters", "send", "--as-of", "2024-08-04")
    assert code == 3 and str(blocker) in err and "Traceback" not in err
    with store.reader_session(db_url) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(LetterRow)) == 0


def test_the_database_failure_names_the_configured_database_without_its_password(monkeypatch):
    port = closed_port()
    monkeypatch.setenv("CCM_DATABASE_URL", f"postgresql+psycopg://isu:s3cret@127.0.0.1:{port}/none")
    code, _, err = run("check")
    assert code == 3 and f"postgresql+psycopg://isu:***@127.0.0.1:{port}/none" in words(err) and "s3cret" not in err


def test_status_says_when_the_stored_next_run_is_past(db_url):
    from datetime import datetime, timedelta

    from engine.runtime.settings import load_settings
    from notifiers.config import load_letters_config

    store.upgrade(db_url)
    sched = scheduler.build_scheduler(db_url, load_letters_config(load_settings()), blocking=False)
    sched.start(paused=True)
    sched.shutdown(wait=False)
    past = (datetime.now(UTC) - timedelta(days=2)).timestamp()
    with store.get_engine(db_url).begin() as connection:
        connection.execute(sa.text("UPDATE apscheduler_jobs SET next_run_time = :t WHERE id = :id"),
                           {"t": past, "id": scheduler.DAILY_JOB_ID})
    code, out, _ = run("status", "--json")
    assert code == 1 and any("is the scheduler running?" in item for item in json.loads(out)["attention"])


def test_the_letters_plan_and_log_fit_80_columns_with_whole_references_and_times(db_url, monkeypatch):
    import re

    monkeypatch.setenv("COLUMNS", "80")
    run("contacts", "set", "SSD", "--email", "mission@ssd.example", "--language", "en")
    run("contacts", "set", "LAO", "--email", "mission@lao.example", "--language", "en")
    assert run("letters", "send", "--as-of", "2024-08-04")[0] == 0
    code, out, _ = run("letters", "plan", "--as-of", "2025-01-01", "--limit", "2000")
    assert code == 0 and all(len(line) <= 80 for line in out.splitlines()) and "…" not in out
    rows = [line.strip() for line in out.splitlines() if re.match(r"^\s?(LAO|SSD)\s", line)]
    assert rows and all(re.search(r"\s\d{4}-\d{2}-\d{2}\s*$", row) for row in rows)     # each due date whole
    assert any(re.match(r"^LAO\s+Annual report\s", row) for row in rows)
    code, out, _ = run("letters", "log")
    logged = json.loads(run("letters", "log", "--json")[1])
    assert code == 0 and logged and all(len(line) <= 80 for line in out.splitlines())
    for letter in logged:
        assert re.search(re.escape(letter["reference"]) + r"\s.*\ssent\s+1\s+\d{4}-\d{2}-\d{2} \d{2}:\d{2}", out)


def test_status_counts_the_notes_awaiting_approval(db_url):
    run("contacts", "set", "SSD", "--email", "mission@ssd.example", "--language", "en")
    run("contacts", "set", "LAO", "--email", "mission@lao.example", "--language", "en")
    code, out, _ = run("letters", "plan", "--as-of", "2025-01-01", "--json")
    planned = json.loads(out)
    assert code == 0 and planned["recorded"]
    code, out, _ = run("status", "--json")
    status = json.loads(out)
    parties = {item["party"] for item in planned["items"]}
    assert status["letters"]["batches_awaiting_approval"] == 1
    assert status["letters"]["awaiting_approval"] == len(parties) == 2
    assert code == 1 and any("await approval" in item for item in status["attention"])
    assert "2 note(s) awaiting approval in 1 batch(es)" in words(run("status")[1])


def test_json_on_contacts_import_batches_approve_deliver_cancel_retry_and_db_upgrade(db_url, tmp_path):
    code, out, _ = run("contacts", "set", "SSD", "--email", "mission@ssd.example", "--language", "en", "--json")
    assert code == 0 and json.loads(out)["email"] == ["mission@ssd.example"]
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("party,email,language,mission,cc\nLAO,mission@lao.example,fr,,\n", encoding="utf-8")
    code, out, _ = run("contacts", "import", str(contacts), "--json")
    assert code == 0 and json.loads(out)["imported"] == 1 and json.loads(out)["parties"] == ["LAO"]
    receipts = tmp_path / "receipts.csv"
    receipts.write_text("party,kind,year,received,symbol,source\nLAO,initial,,2011-01-27,,\n", encoding="utf-8")
    code, out, _ = run("import", str(receipts), "--json")
    assert code == 0 and json.loads(out) == {"file": "receipts.csv", "imported": 1, "already_recorded": 0}
    code, out, _ = run("db", "upgrade", "--json")
    assert code == 0 and json.loads(out) == {"before": store.head_revision(), "after": store.head_revision(),
                                             "migrated": False}
    code, out, _ = run("letters", "plan", "--as-of", "2024-08-04", "--json")
    batch = json.loads(out)["batch"]
    listed = json.loads(run("letters", "batches", "--json")[1])
    assert [(b["batch"], b["status"]) for b in listed] == [(batch, "planned")]
    code, out, _ = run("letters", "approve", str(batch), "--by", "The coordinator", "--json")
    approval = json.loads(out)
    assert code == 0 and approval["batch"] == batch and approval["approved_by"] == "The coordinator" and approval["notes"]
    code, out, _ = run("letters", "cancel", "--party", "SSD", "--json")
    assert code == 0 and all(key.startswith("SSD|") for key in json.loads(out)["cancelled"])
    code, out, _ = run("letters", "deliver", "--json")
    delivered = json.loads(out)
    assert code == 0 and delivered["failed"] == [] and not any(k.startswith("SSD|") for k in delivered["sent"])
    code, out, _ = run("letters", "retry", "--failed", "--json")
    assert json.loads(out) == {"queued": [], "not_queued": []}
