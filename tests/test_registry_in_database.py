"""The registry and the database: `ccm init` loads and checks the registry before it creates
anything, says what it loaded and the registry's hash; each check run records that hash. The
registry's files stay its source of truth (every row carries its sources); the database holds
what the ISU recorded, and a snapshot of the registry (the registry_* tables) that `ccm init`
loads and every check refreshes, in its own transaction, when the registry's hash changes.

Also: the registry's look-ups are indexed (a check of 10,000 parties asks for every party's
rows); they answer as the scans they replaced did.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.core.model import TREATY_FILE, Registry, _threshold_deposit, parse_sources
from engine.registry.load import (
    COLUMNS,
    default_directory,
    load_registry,
    registry_hash,
)
from engine.store import database as store
from engine.store import snapshot as registry_store


def _copy_registry(tmp_path: Path) -> Path:
    target = tmp_path / "registry-copy"
    shutil.copytree(default_directory(), target)
    return target


def _tables(url: str) -> set[str]:
    return set(sa.inspect(store.get_engine(url)).get_table_names())


def _loaded_line(registry: Registry, where: str = "the embedded registry") -> str:
    return (f"Loaded {where}: {len(registry.participants)} participants, {len(registry.meetings)} meetings, "
            f"{len(registry.declarations)} declarations, {len(registry.completions)} completions, "
            f"{len(registry.decisions)} decisions, {len(registry.requests)} extension requests, "
            f"{len(registry.observations)} observations, {len(registry.receipts)} published receipts "
            f"(registry {registry.hash}).")


# ----------------------------------------------------------------------------- ccm init

def test_init_loads_the_embedded_registry_and_prints_its_counts_and_hash(db_url, ccm):
    registry = load_registry()
    code, out = ccm("init")
    assert code == 0, out
    assert "Initialised the database" in out
    assert _loaded_line(registry) in out
    assert "Loaded the embedded registry: 125 participants, 28 meetings," in out
    assert registry.hash == registry_hash() and len(registry.hash) == 16
    assert store.current_revision(db_url) == store.head_revision()
    code, out = ccm("init")     # again: nothing to create, the registry is loaded and checked again
    assert code == 0 and "already initialised" in out and _loaded_line(registry) in out


def test_init_refuses_a_broken_registry_and_creates_no_database(db_url, ccm, tmp_path):
    directory = _copy_registry(tmp_path)
    path = directory / "participants.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines, start=1) if line.startswith("LBN,"))
    lines[number - 1] = lines[number - 1].replace("LBN,Lebanon,2008-12-03,", "LBN,Lebanon,2008-12-33,", 1)
    path.write_text("".join(lines), encoding="utf-8")

    code, out = ccm("init", "--registry", str(directory))
    assert code == 2
    assert "The registry has 1 problem(s)" in out
    assert f"participants.csv line {number}, field signature_date: '2008-12-33' is not a date (YYYY-MM-DD)" in out
    assert "Nothing was created." in out
    sqlite = store.sqlite_path(db_url)
    if sqlite is not None:
        assert not sqlite.exists() and not sqlite.parent.exists()
    else:
        assert _tables(db_url) == set()
    assert store.current_revision(db_url) is None


def test_init_with_a_copy_of_the_registry_names_its_folder_and_hash(db_url, ccm, tmp_path):
    directory = _copy_registry(tmp_path)
    code, out = ccm("init", "--registry", str(directory))
    assert code == 0, out
    same = load_registry(directory)
    assert same.hash == registry_hash()        # the same bytes, the same hash, wherever they are
    assert " ".join(_loaded_line(same, f"the registry at {directory}").split()) in out
    treaty = directory / TREATY_FILE
    treaty.write_text(treaty.read_text(encoding="utf-8") + "\n# a comment\n", encoding="utf-8")
    code, out = ccm("init", "--registry", str(directory))
    assert code == 0 and f"(registry {registry_hash(directory)})" in out and registry_hash(directory) != same.hash


def test_a_missing_registry_folder_is_refused(tmp_path, monkeypatch, ccm):
    path = tmp_path / "db" / "ccm.sqlite"
    monkeypatch.setenv("CCM_DATABASE_URL", f"sqlite:///{path}")
    code, out = ccm("init", "--registry", str(tmp_path / "no-such-folder"))
    assert code == 2 and "treaty.toml" in out and "the file is missing" in out
    assert not path.parent.exists()


def test_each_check_run_records_the_registry_hash(db_url, ccm):
    ccm("check", "--as-of", "2025-06-01")
    with store.reader_session(db_url) as session:
        runs = session.scalars(sa.select(store.CheckRunRow)).all()
    assert [run.counts["registry_hash"] for run in runs] == [registry_hash()]


# ----------------------------------------------------------------------------- the snapshot in the database

def _edited_copy(tmp_path: Path) -> Path:
    """A copy of the registry with one notes cell edited (Albania's, empty in the files)."""
    directory = _copy_registry(tmp_path)
    path = directory / "participants.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines) if line.startswith("ALB,"))
    assert ",UNTC,," in lines[number]
    lines[number] = lines[number].replace(",UNTC,,", ",UNTC,Edited for a test.,", 1)
    path.write_text("".join(lines), encoding="utf-8")
    return directory


def _snapshot(url: str):
    """(the snapshot row, {table: rows}) as stored."""
    with store.reader_session(url) as session:
        row = session.scalars(sa.select(registry_store.RegistrySnapshotRow)).all()
        tables = {model.__tablename__: session.scalars(sa.select(model)).all()
                  for model in registry_store.TABLES if model is not registry_store.RegistrySnapshotRow}
    assert len(row) <= 1
    return (row[0] if row else None), tables


def _as_stored(registry: Registry) -> dict[str, set[tuple]]:
    """What the snapshot's rows should say, built from the Registry object (sources as Source tuples)."""
    return {
        "registry_participants": {(p.iso3, p.name, p.signature_date, p.instrument, p.deposit_date,
                                   p.provisional_application_date, p.withdrawal_effective_date, p.evidence, p.notes,
                                   p.effective_from, p.sources) for p in registry.participants.values()},
        "registry_meetings": {(m.code, m.kind, m.name, m.city, m.start_date, m.end_date, m.date_precision, m.notes,
                               m.announced_start_date, m.status, m.sources) for m in registry.meetings},
        "registry_declarations": {(d.iso3, d.article, d.position, d.end_of_hostilities, d.quantity, d.retains,
                                   d.retention_ended, d.notes, d.sources) for d in registry.declarations},
        "registry_completions": {(c.iso3, c.article, c.completed_on, c.precision, c.declared_at, c.declared_text,
                                  c.notes, c.sources) for c in registry.completions},
        "registry_decisions": {(d.iso3, d.article, d.kind, d.meeting, d.decided_on, d.decided_precision,
                                d.granted_deadline, d.document, d.inferred, d.notes, d.sources)
                               for d in registry.decisions},
        "registry_requests": {(r.iso3, r.article, r.meeting, r.submitted_on, r.submitted_precision,
                               r.requested_deadline, r.document, r.notes, r.sources) for r in registry.requests},
        "registry_observations": {(o.id, o.observed_on, o.observed_until, o.kind, o.period, o.complete,
                                   " ".join(sorted(o.outstanding)), o.observer, o.phrase, o.notes, o.sources)
                                  for o in registry.observations},
        "registry_receipts": {(r.iso3, r.kind, r.period, r.received_on, r.precision, r.observer, r.phrase, r.notes,
                               r.sources) for r in registry.receipts},
    }


def _stored(tables) -> dict[str, set[tuple]]:
    fields = {
        "registry_participants": ("iso3", "name", "signature_date", "instrument", "deposit_date",
                                  "provisional_application_date", "withdrawal_effective_date", "evidence", "notes",
                                  "effective_from"),
        "registry_meetings": ("code", "kind", "name", "city", "start_date", "end_date", "date_precision", "notes",
                              "announced_start_date", "status"),
        "registry_declarations": ("iso3", "article", "position", "end_of_hostilities", "quantity", "retains",
                                  "retention_ended", "notes"),
        "registry_completions": ("iso3", "article", "completed_on", "precision", "declared_at", "declared_text",
                                 "notes"),
        "registry_decisions": ("iso3", "article", "kind", "meeting", "decided_on", "decided_precision",
                               "granted_deadline", "document", "inferred", "notes"),
        "registry_requests": ("iso3", "article", "meeting", "submitted_on", "submitted_precision", "requested_deadline",
                              "document", "notes"),
        "registry_observations": ("id", "observed_on", "observed_until", "kind", "period", "complete", "outstanding",
                                  "observer", "phrase", "notes"),
        "registry_receipts": ("iso3", "kind", "period", "received_on", "precision", "observer", "phrase", "notes"),
    }
    return {name: {(*(getattr(row, f) for f in fields[name]), parse_sources(row.sources)) for row in rows}
            for name, rows in tables.items()}


def _counts(registry: Registry) -> dict[str, int]:
    return {"participants": len(registry.participants), "meetings": len(registry.meetings),
            "declarations": len(registry.declarations), "completions": len(registry.completions),
            "decisions": len(registry.decisions), "requests": len(registry.requests),
            "observations": len(registry.observations), "receipts": len(registry.receipts)}


def test_init_stores_a_snapshot_of_the_registry_with_its_sources(db_url, ccm):
    registry = load_registry()
    code, out = ccm("init")
    assert code == 0, out
    assert _loaded_line(registry) in out and "Wrote it to the database's registry_* tables." in out
    snapshot, tables = _snapshot(db_url)
    assert snapshot.hash == registry.hash and snapshot.counts == _counts(registry)
    assert {name: len(rows) for name, rows in tables.items()} == {
        f"registry_{name}": count for name, count in _counts(registry).items()}
    assert _stored(tables) == _as_stored(registry)          # every field, sources included
    for rows in tables.values():
        assert all(row.sources for row in rows)              # every registry row has its sources
    with store.reader_session(db_url) as session:            # and an SQL user can read them
        sources = session.execute(sa.text("SELECT sources FROM registry_participants WHERE iso3 = 'LBN'")).scalar()
    assert parse_sources(sources) == registry.participant("LBN").sources


def test_a_second_init_says_already_loaded_and_writes_nothing(db_url, ccm):
    registry = load_registry()
    assert ccm("init")[0] == 0
    before, tables_before = _snapshot(db_url)
    code, out = ccm("init")
    assert code == 0 and _loaded_line(registry) in out
    assert f"is already loaded with registry {registry.hash}; nothing written." in out
    assert "Wrote it" not in out
    after, tables_after = _snapshot(db_url)
    assert (after.hash, after.loaded_at, after.counts) == (before.hash, before.loaded_at, before.counts)
    assert [row.id for row in tables_after["registry_decisions"]] == [row.id for row in tables_before["registry_decisions"]]
    assert _stored(tables_after) == _stored(tables_before)


def test_init_with_another_registry_replaces_the_snapshot_and_a_check_puts_back_the_one_it_used(db_url, ccm, tmp_path):
    embedded = load_registry()
    directory = _edited_copy(tmp_path)
    edited = load_registry(directory)
    assert edited.hash != embedded.hash
    assert ccm("init")[0] == 0
    code, out = ccm("init", "--registry", str(directory))
    assert code == 0 and f"replacing registry {embedded.hash}." in out
    snapshot, tables = _snapshot(db_url)
    assert snapshot.hash == edited.hash and _stored(tables) == _as_stored(edited)
    assert next(r.notes for r in tables["registry_participants"] if r.iso3 == "ALB") == "Edited for a test."

    code, out = ccm("check", "--as-of", "2025-06-01")        # the check uses the embedded registry
    assert code in (0, 1), out
    snapshot, tables = _snapshot(db_url)
    assert snapshot.hash == embedded.hash and _stored(tables) == _as_stored(embedded)
    assert next(r.notes for r in tables["registry_participants"] if r.iso3 == "ALB") == ""
    with store.reader_session(db_url) as session:
        runs = session.scalars(sa.select(store.CheckRunRow)).all()
    assert [run.counts["registry_hash"] for run in runs] == [snapshot.hash]

    loaded_at = snapshot.loaded_at
    assert ccm("check", "--as-of", "2025-06-01")[0] in (0, 1)   # unchanged: nothing rewritten
    assert _snapshot(db_url)[0].loaded_at == loaded_at


def test_a_check_replaces_the_snapshot_in_its_own_transaction(db_url, ccm, tmp_path, record_evaluator, monkeypatch):
    from engine.check.run import run_check

    directory = _edited_copy(tmp_path)
    edited_hash = load_registry(directory).hash
    assert ccm("init", "--registry", str(directory))[0] == 0

    def crash(*_args, **_kwargs):
        raise RuntimeError("killed half-way through the check")

    with monkeypatch.context() as patch:                       # a check that fails after the snapshot was replaced
        patch.setattr(record_evaluator, "evaluate", crash)
        with pytest.raises(RuntimeError, match="killed half-way"):
            run_check(db_url, record_evaluator, date(2025, 6, 1))
    snapshot, tables = _snapshot(db_url)
    assert snapshot.hash == edited_hash                        # rolled back with the rest of the check
    assert next(r.notes for r in tables["registry_participants"] if r.iso3 == "ALB") == "Edited for a test."
    with store.reader_session(db_url) as session:
        assert session.scalars(sa.select(store.CheckRunRow)).all() == []

    result = run_check(db_url, record_evaluator, date(2025, 6, 1))
    assert result.registry_loaded and result.registry_hash == record_evaluator.registry.hash
    snapshot, tables = _snapshot(db_url)
    assert snapshot.hash == record_evaluator.registry.hash and _stored(tables) == _as_stored(record_evaluator.registry)
    again = run_check(db_url, record_evaluator, date(2025, 6, 1))
    assert not again.registry_loaded and _snapshot(db_url)[0].loaded_at == snapshot.loaded_at


def test_the_snapshot_is_loaded_only_when_the_hash_differs(db_url, ccm_registry):
    store.upgrade(db_url)
    with store.writer_session(db_url) as session, session.begin():
        assert registry_store.snapshot_hash(session) is None
        assert registry_store.load_snapshot(session, ccm_registry) is True
        assert registry_store.snapshot_hash(session) == ccm_registry.hash
        assert registry_store.load_snapshot(session, ccm_registry) is False
    built = Registry(treaty=ccm_registry.treaty, participants=ccm_registry.participants, meetings=ccm_registry.meetings,
                     declarations=ccm_registry.declarations, completions=ccm_registry.completions,
                     decisions=ccm_registry.decisions)
    with store.writer_session(db_url) as session, session.begin(), pytest.raises(ValueError, match="has no hash"):
        registry_store.load_snapshot(session, built)


def test_downgrading_0003_drops_the_snapshot_tables_and_upgrading_again_restores_them(db_url, ccm_registry):
    from alembic import command

    snapshot_tables = {model.__tablename__ for model in registry_store.TABLES}
    assert len(snapshot_tables) == 9
    store.upgrade(db_url)
    with store.writer_session(db_url) as session, session.begin():
        registry_store.load_snapshot(session, ccm_registry)
    assert snapshot_tables <= _tables(db_url)
    with store.get_engine(db_url).begin() as connection:
        command.downgrade(store.alembic_config(connection), "0002")
    assert store.current_revision(db_url) == "0002"
    assert not snapshot_tables & _tables(db_url)
    assert {"recorded_events", "obligations", "letters", "contacts"} <= _tables(db_url)
    assert store.upgrade(db_url) == ("0002", store.head_revision())
    assert snapshot_tables <= _tables(db_url)
    with store.writer_session(db_url) as session, session.begin():
        assert registry_store.snapshot_hash(session) is None     # empty until the next init or check
        assert registry_store.load_snapshot(session, ccm_registry) is True


# ----------------------------------------------------------------------------- the hash

@pytest.mark.parametrize("name", sorted((TREATY_FILE, *COLUMNS)))
def test_the_hash_changes_with_every_registry_file(tmp_path, name):
    directory = _copy_registry(tmp_path)
    before = registry_hash(directory)
    path = directory / name
    path.write_bytes(path.read_bytes() + b"\n")
    assert registry_hash(directory) != before


def test_the_hash_ignores_the_readme(tmp_path):
    directory = _copy_registry(tmp_path)
    before = registry_hash(directory)
    (directory / "README.md").write_text("changed\n", encoding="utf-8")
    assert registry_hash(directory) == before


def test_a_registry_built_in_code_has_no_hash(ccm_registry):
    built = Registry(treaty=ccm_registry.treaty, participants=ccm_registry.participants, meetings=ccm_registry.meetings,
                     declarations=ccm_registry.declarations, completions=ccm_registry.completions,
                     decisions=ccm_registry.decisions)
    assert built.hash is None and ccm_registry.hash == registry_hash()


# ----------------------------------------------------------------------------- indexed look-ups

def test_the_indexed_look_ups_answer_as_the_scans_did(ccm_registry):
    r = ccm_registry
    for iso3 in list(r.participants) + ["ZZZ"]:
        assert r.declarations_for(iso3) == tuple(d for d in r.declarations if d.iso3 == iso3)
        assert r.completions_for(iso3) == tuple(c for c in r.completions if c.iso3 == iso3)
        assert r.decisions_for(iso3) == tuple(sorted((d for d in r.decisions if d.iso3 == iso3),
                                                     key=lambda d: d.decided_on))
    assert r.thirtieth_deposit() == _threshold_deposit(r.treaty, r.participants.values())
    assert r.thirtieth_deposit()[0] == date(2010, 2, 16)
    for meeting in r.meetings:
        assert r.meeting(meeting.code) is next(m for m in r.meetings if m.code == meeting.code)
    with pytest.raises(LookupError, match="No meeting has the code 'nope'. Known codes: "):
        r.meeting("nope")
    for participant in r.participants.values():
        for query in (participant.iso3, participant.iso3.lower(), participant.name.upper(),
                      f"  {participant.localized_name('en')} "):
            assert r.find(query) is participant


def test_a_registry_with_too_few_deposits_still_says_so(ccm_registry):
    few = dict(list(ccm_registry.participants.items())[:5])
    registry = Registry(treaty=ccm_registry.treaty, participants=few, meetings=ccm_registry.meetings,
                        declarations=(), completions=(), decisions=())
    for _ in range(2):       # the answer is kept; the error is raised each time
        with pytest.raises(LookupError, match="instruments are deposited; entry into force needs 30"):
            registry.thirtieth_deposit()


def test_the_snapshot_keeps_a_successions_date_of_effect(db_url):
    """participants.csv's optional effective_from (migration 0009): the APMBC registry states South Sudan's."""
    from engine.core import packs
    from engine.core.rulebook import load_rulebook

    pack = packs.find("apmbc")
    registry = load_registry(pack.registry, load_rulebook(pack.directory))
    store.upgrade(db_url)
    with store.writer_session(db_url) as session, session.begin():
        assert registry_store.load_snapshot(session, registry) is True
        stated = dict(session.execute(sa.select(registry_store.RegistryParticipantRow.iso3,
                                                registry_store.RegistryParticipantRow.effective_from)
                                      .where(registry_store.RegistryParticipantRow.effective_from.is_not(None))).all())
    assert stated == {"SSD": date(2011, 7, 9)}


def test_the_snapshot_keeps_a_finding_beside_the_position_and_0010_goes_down_and_up(db_url):
    """declarations.csv may hold a published finding (treaty.toml [findings]) beside a party's position under
    the same article: the APMBC's Greece has `stockpile_at_eif` and `deadline_missed` for Art. 4 (migration 0010
    keys the copy by position). Downgrading clears the copy, which the next load fills again."""
    from engine.core import packs
    from engine.core.rulebook import load_rulebook

    pack = packs.find("apmbc")
    registry = load_registry(pack.registry, load_rulebook(pack.directory))
    store.upgrade(db_url)
    D = registry_store.RegistryDeclarationRow

    def greece(session) -> list[str]:
        return sorted(session.scalars(sa.select(D.position).where(D.iso3 == "GRC", D.article == 4)))

    with store.writer_session(db_url) as session, session.begin():
        assert registry_store.load_snapshot(session, registry) is True
        assert greece(session) == ["deadline_missed", "stockpile_at_eif"]
    from alembic import command

    with store.get_engine(db_url).begin() as connection:
        command.downgrade(store.alembic_config(connection), "0009")
    with store.reader_session(db_url) as session:
        assert registry_store.snapshot_hash(session) is None and greece(session) == []
    store.upgrade(db_url)
    with store.writer_session(db_url) as session, session.begin():
        assert registry_store.load_snapshot(session, registry) is True
        assert greece(session) == ["deadline_missed", "stockpile_at_eif"]
