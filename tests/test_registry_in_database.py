"""The registry and the database: `ccm init` loads and checks the registry before it creates
anything, says what it loaded and the registry's hash; each check run records that hash. The
registry's files stay its source of truth (every row carries its sources); the database holds
what the ISU recorded.

Also: the registry's look-ups are indexed (a check of 10,000 parties asks for every party's
rows); they answer as the scans they replaced did.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine import store
from engine.registry import (COLUMNS, TREATY_FILE, Registry, _threshold_deposit, default_directory, load_registry,
                             registry_hash)


def _copy_registry(tmp_path: Path) -> Path:
    target = tmp_path / "registry-copy"
    shutil.copytree(default_directory(), target)
    return target


def _tables(url: str) -> set[str]:
    return set(sa.inspect(store.get_engine(url)).get_table_names())


def _loaded_line(registry: Registry, where: str = "the embedded registry") -> str:
    return (f"Loaded {where}: {len(registry.participants)} participants, {len(registry.meetings)} meetings, "
            f"{len(registry.declarations)} declarations, {len(registry.completions)} completions, "
            f"{len(registry.decisions)} decisions (registry {registry.hash}).")


# ----------------------------------------------------------------------------- ccm init

def test_init_loads_the_embedded_registry_and_prints_its_counts_and_hash(db_url, ccm):
    registry = load_registry()
    code, out = ccm("init")
    assert code == 0, out
    assert "Initialised the database" in out
    assert _loaded_line(registry) in out
    assert "Loaded the embedded registry: 125 participants, 24 meetings," in out
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
