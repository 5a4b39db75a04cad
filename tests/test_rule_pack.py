"""The rule pack's manifest (rules/ccm/pack.toml, issue 11): a rule file or obligation deleted or
added by mistake is refused with a sentence, and a check then writes nothing."""

from __future__ import annotations

import shutil

import pytest
import sqlalchemy as sa

from engine.core import packs
from engine.core import rulebook as rulebook_module
from engine.core.rulebook import RulebookError, default_directory, load_rulebook
from engine.store import database as store


@pytest.fixture
def pack(tmp_path):
    """A copy of the packaged rule pack, manifest included."""
    folder = tmp_path / "ccm"
    shutil.copytree(default_directory(), folder, ignore=shutil.ignore_patterns("registry"))
    return folder


def test_the_packaged_pack_matches_its_manifest():
    book = load_rulebook()
    assert (default_directory() / "pack.toml").exists() and book.rule("ccm.art20.withdrawal")


@pytest.mark.parametrize("name", sorted(p.name for p in default_directory().glob("art*.toml")))
def test_deleting_any_rule_file_is_refused_with_a_sentence(pack, name):
    (pack / name).unlink()
    with pytest.raises(RulebookError) as refused:
        load_rulebook(pack)
    assert f"pack.toml lists the rule file {name}, which is missing from the pack" in str(refused.value)


def test_an_extra_rule_file_is_refused(pack):
    shutil.copy(pack / "art20_withdrawal.toml", pack / "art21_relations.toml")
    text = (pack / "art21_relations.toml").read_text(encoding="utf-8").replace("ccm.art20.", "ccm.art21.")
    (pack / "art21_relations.toml").write_text(text, encoding="utf-8")
    with pytest.raises(RulebookError, match="art21_relations.toml: a rule file the pack's pack.toml does not list"):
        load_rulebook(pack)


def test_an_obligation_removed_from_a_file_or_added_is_refused(pack):
    path = pack / "art08_clarification.toml"
    original = path.read_text(encoding="utf-8")
    path.write_text(original.replace('produces = "obligation"', 'produces = "date"', 1), encoding="utf-8")
    with pytest.raises(RulebookError, match="lists the obligation ccm.art8.clarification_response, which no rule file produces"):
        load_rulebook(pack)
    manifest = pack / "pack.toml"
    path.write_text(original, encoding="utf-8")
    manifest.write_text(manifest.read_text(encoding="utf-8").replace('    "ccm.art8.clarification_response",\n', ""),
                        encoding="utf-8")
    with pytest.raises(RulebookError, match="the obligation ccm.art8.clarification_response is not listed in pack.toml"):
        load_rulebook(pack)


def test_the_packaged_pack_needs_its_manifest(pack, monkeypatch):
    (pack / "pack.toml").unlink()
    monkeypatch.setattr(rulebook_module, "default_directory", lambda: pack)
    with pytest.raises(RulebookError, match="manifest pack.toml is missing"):
        load_rulebook()
    (pack / "pack.toml").write_text("[pack]\nfiles = 'all'\n", encoding="utf-8")
    with pytest.raises(RulebookError, match=r"needs a \[pack\] table with files"):
        load_rulebook()


def test_a_check_with_a_rule_file_missing_writes_nothing(db_url, ccm, pack, monkeypatch):
    from engine.cli import main as cli
    (pack / "art04_clearance.toml").unlink()
    shutil.copytree(default_directory() / "registry", pack / "registry")
    monkeypatch.setattr(packs, "root", lambda: pack.parent)     # the packs are now this folder's
    cli.reset_evaluators()
    try:
        code, out = ccm("check", "--as-of", "2024-07-31")
    finally:
        cli.reset_evaluators()
    assert code == 2 and "pack.toml lists the rule file art04_clearance.toml, which is missing" in out
    if store.database_exists(db_url) and store.current_revision(db_url):
        with store.reader_session(db_url) as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(store.CheckRunRow)) == 0
