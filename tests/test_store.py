"""The store: schema creation and migration on SQLite and PostgreSQL, models, corrections."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from engine.record import source as record_source
from engine.record.events import NewEvent, load_events, record
from engine.store import database as store


def _tables(url: str) -> set[str]:
    return set(sa.inspect(store.get_engine(url)).get_table_names())


def test_init_creates_every_table_and_stamps_the_schema_version(db_url, ccm):
    code, out = ccm("init")
    assert code == 0, out
    assert "Initialised the database" in out
    assert {"recorded_events", "obligations", "obligation_changes", "check_runs", "alembic_version"} <= _tables(db_url)
    assert store.current_revision(db_url) == store.head_revision()


def test_init_and_upgrade_are_idempotent(db_url, ccm):
    assert ccm("init")[0] == 0
    code, out = ccm("init")
    assert code == 0 and "already initialised" in out
    code, out = ccm("db", "upgrade")
    assert code == 0 and f"Schema already at {store.head_revision()}" in out
    assert store.upgrade(db_url) == (store.head_revision(), store.head_revision())


def test_init_creates_the_sqlite_file_and_its_parent_folders(tmp_path, monkeypatch, ccm):
    path = tmp_path / "a" / "b" / "ccm.sqlite"
    monkeypatch.setenv("CCM_DATABASE_URL", f"sqlite:///{path}")
    try:
        assert ccm("init")[0] == 0
        assert path.exists()
    finally:
        store.dispose_engines()


def test_db_upgrade_refuses_when_there_is_no_database(tmp_path, monkeypatch, ccm):
    monkeypatch.setenv("CCM_DATABASE_URL", f"sqlite:///{tmp_path / 'missing.sqlite'}")
    code, out = ccm("db", "upgrade")
    assert code == 2 and "create it with `ccm init`" in out
    assert not (tmp_path / "missing.sqlite").exists()


def test_the_models_match_the_migrations(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    store.upgrade(db_url)
    with store.get_engine(db_url).connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), store.Base.metadata)
    assert differences == []


def test_the_obligations_table_refuses_two_rows_for_the_same_party_obligation_and_period(db_url):
    store.upgrade(db_url)
    now = store.utcnow()
    row = dict(party="LBN", obligation_id="ccm.art7.initial_report", period="", article="7(1)", due=date(2011, 10, 28),
               original_due=date(2011, 10, 28), status="overdue", status_reason="x", provenance={}, rulebook_hash="h",
               computed_at=now)
    with store.writer_session(db_url) as session, session.begin():
        session.add(store.ObligationRow(**row))
    try:
        with store.writer_session(db_url) as session, session.begin():
            session.add(store.ObligationRow(**row))
        raise AssertionError("a duplicate obligation was accepted")
    except sa.exc.IntegrityError:
        pass


def test_a_correction_is_a_new_row_and_the_old_one_is_kept_as_superseded(db_url, record_evaluator):
    store.upgrade(db_url)
    first, _ = record(db_url, record_evaluator, NewEvent(party="LBN", kind="report:initial", on=date(2011, 12, 1)))
    second, _ = record(db_url, record_evaluator, NewEvent(party="LBN", kind="report:initial", on=date(2011, 11, 1),
                                                          corrects=first))
    with store.reader_session(db_url) as session:
        rows = {r.id: r for r in session.scalars(sa.select(store.RecordedEventRow))}
    assert set(rows) == {first, second}
    assert rows[first].superseded_by == second and rows[second].superseded_by is None
    assert [e.on for e in load_events(db_url, "LBN")] == [date(2011, 11, 1)]


def test_recording_the_same_receipt_twice_writes_one_row(db_url, record_evaluator):
    store.upgrade(db_url)
    event = dict(party="LBN", kind="report:initial", on=date(2011, 12, 1), symbol="CCM/LBN/1")
    first = record(db_url, record_evaluator, NewEvent(**event))
    again = record(db_url, record_evaluator, NewEvent(**event))
    assert first[1] is True and again == (first[0], False)


def test_the_query_commands_read_recorded_events_from_the_database(db_url, record_evaluator):
    store.upgrade(db_url)
    record(db_url, record_evaluator, NewEvent(party="LBN", kind="report:initial", on=date(2011, 12, 1)))
    assert [e.kind for e in record_source.events_for("lbn")] == ["report:initial"]


def test_a_read_only_query_never_creates_a_database(tmp_path, monkeypatch, ccm):
    path = tmp_path / "nothing-here.sqlite"
    monkeypatch.setenv("CCM_DATABASE_URL", f"sqlite:///{path}")
    record_source._url.cache_clear()
    try:
        assert record_source.events_for("LBN") == []
        assert ccm("deadlines", "LBN", "--as-of", "2012-01-01")[0] == 0
        assert ccm("history", "LBN")[0] == 0
        assert ccm("stats", "--as-of", "2012-01-01")[0] == 0
        assert not path.exists()
    finally:
        record_source._url.cache_clear()


def test_the_schema_versions_read_without_alembic_are_alembics(db_url):
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    assert store.head_revision() == ScriptDirectory.from_config(store.alembic_config()).get_current_head()
    assert store.current_revision(db_url) is None
    store.upgrade(db_url)
    with store.get_engine(db_url).connect() as connection:
        assert store.current_revision(db_url) == MigrationContext.configure(connection).get_current_revision()
    assert store.current_revision(db_url) == store.head_revision()


def test_the_head_is_left_to_alembic_when_the_version_files_are_not_plain(tmp_path, monkeypatch):
    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    (versions / "a.py").write_text('revision = "a"\ndown_revision = None\n', encoding="utf-8")
    (versions / "b.py").write_text('revision: str = "b"\ndown_revision: str | None = "a"\n', encoding="utf-8")
    monkeypatch.setattr(store, "MIGRATIONS", tmp_path / "migrations")
    store._head_from_files.cache_clear()
    try:
        assert store._head_from_files() == "b"
        (versions / "c.py").write_text('revision = "c"\ndown_revision = "a"\n', encoding="utf-8")   # two heads
        store._head_from_files.cache_clear()
        assert store._head_from_files() is None
        (versions / "c.py").write_text('revision = make()\ndown_revision = "b"\n', encoding="utf-8")
        store._head_from_files.cache_clear()
        assert store._head_from_files() is None
    finally:
        store._head_from_files.cache_clear()


def test_a_check_on_a_current_database_does_not_load_alembic(db_url):
    import subprocess
    import sys

    store.upgrade(db_url)
    code = ("import sys\nfrom engine.cli.main import app\ntry:\n    app(['check', '--as-of', '2025-06-01'])\n"
            "except SystemExit:\n    pass\nprint('alembic loaded' if 'alembic' in sys.modules else 'no alembic')\n")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().endswith("no alembic"), done.stdout[-500:] + done.stderr[-2000:]
