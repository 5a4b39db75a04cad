"""A date of effect the registry states (participants.csv `effective_from`: a succession dated from the
succession of States) and the rule key that reads it (`alternative_to`): the loader's checks, the
column being optional (the CCM registry has none), and the rulebook's checks of an alternative."""

from __future__ import annotations

import csv
import shutil
from datetime import date
from pathlib import Path

import pytest

from engine.core import packs
from engine.core.model import RegistryError
from engine.core.rulebook import RulebookError, load_rulebook
from engine.registry.load import load_registry

APMBC = packs.find("apmbc")
CCM = packs.find("ccm")


def _copy_pack(tmp_path: Path, pack: packs.Pack) -> Path:
    """A copy of the pack's folder (rules, manifest, registry), so that its registry is checked with its rules."""
    target = tmp_path / pack.name
    shutil.copytree(pack.directory, target)
    if not (target / "registry").is_dir():
        shutil.copytree(pack.registry, target / "registry")
    return target


def _set(path: Path, iso3: str, field: str, value: str) -> int:
    """Set one field of the participant's row (adding the column, empty elsewhere, if missing); its line."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    if field not in header:
        header.append(field)
        for row in rows[1:]:
            row.append("")
    line = next(number for number, row in enumerate(rows[1:], start=2) if row[0] == iso3)
    rows[line - 1][header.index(field)] = value
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return line


@pytest.mark.parametrize("iso3, value, words", [
    ("CHE", "1999-01-01", "is given for an instrument of ratification; only a succession states its own date of effect"),
    ("SSD", "2011-07-32", "'2011-07-32' is not a date"),
    ("SSD", "1996-07-09", "1996-07-09 is before the treaty was adopted on 1997-09-18"),
], ids=["not a succession", "not a date", "before adoption"])
def test_a_bad_date_of_effect_is_refused_naming_line_and_field(tmp_path, iso3, value, words):
    pack = _copy_pack(tmp_path, APMBC)
    line = _set(pack / "registry" / "participants.csv", iso3, "effective_from", value)
    with pytest.raises(RegistryError) as caught:
        load_registry(pack / "registry", load_rulebook(pack))
    found = [str(p) for p in caught.value.problems if (p.file, p.row, p.field) == ("participants.csv", line, "effective_from")]
    assert any(words in text for text in found), caught.value.problems


def test_a_withdrawal_must_follow_the_date_of_effect(tmp_path):
    pack = _copy_pack(tmp_path, APMBC)
    line = _set(pack / "registry" / "participants.csv", "SSD", "withdrawal_effective_date", "2011-07-09")
    with pytest.raises(RegistryError) as caught:
        load_registry(pack / "registry", load_rulebook(pack))
    assert any((p.row, p.field) == (line, "withdrawal_effective_date") and "date of effect" in p.message
               for p in caught.value.problems), caught.value.problems


def test_the_column_is_optional_and_the_ccm_registry_reads_the_same_with_it_empty(tmp_path):
    with CCM.registry.joinpath("participants.csv").open(encoding="utf-8") as handle:
        assert "effective_from" not in handle.readline()
    before = load_registry(CCM.registry)
    pack = _copy_pack(tmp_path, CCM)
    _set(pack / "registry" / "participants.csv", "CHE", "effective_from", "")
    after = load_registry(pack / "registry", load_rulebook(pack))
    assert after.participants == before.participants
    assert all(p.effective_from is None for p in after.participants.values())


def test_the_deposit_fact_carries_the_date_and_a_fact_of_its_own_marks_it(tmp_path):
    from engine.core.facts import party_facts
    registry = load_registry(APMBC.registry, load_rulebook(APMBC.directory))
    facts = {f["k"]: f for f in party_facts(registry, "SSD", date(2012, 1, 1))}
    assert facts["deposit"]["date"] == "2011-11-11" and facts["deposit"]["effective_from"] == "2011-07-09"
    assert facts["deposit:effective_from"]["date"] == "2011-07-09"
    assert facts["deposit:effective_from"]["sources"][0] == "https://www.apminebanconvention.org/en/membership/south-sudan"
    assert "deposit" not in {f["k"] for f in party_facts(registry, "SSD", date(2011, 11, 10))}   # not yet notified
    montenegro = {f["k"] for f in party_facts(registry, "MNE", date(2012, 1, 1))}
    assert "deposit" in montenegro and "deposit:effective_from" not in montenegro


# --------------------------------------------------------------------------- alternative_to


def _rule_folder(tmp_path: Path, old: str, new: str) -> Path:
    folder = tmp_path / "rules"
    shutil.copytree(APMBC.directory, folder, ignore=shutil.ignore_patterns("registry", "cases.csv"))
    rule = folder / "art17_entry_into_force.toml"
    text = rule.read_text(encoding="utf-8")
    assert old in text
    rule.write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


@pytest.mark.parametrize("old, new, words", [
    ('unless = ["deposit:effective_from"]', "", "could both fire; the 'unless' of one must name a fact of the other's 'when'"),
    ('alternative_to = "apmbc.art17.entry_into_force"', 'alternative_to = "apmbc.art17.entry_in_force"',
     "points at no rule ('apmbc.art17.entry_in_force')"),
    ('alternative_to = "apmbc.art17.entry_into_force"', 'alternative_to = "apmbc.art5.clearance"',
     "an alternative and its target must both produce a date"),
], ids=["both could fire", "no such rule", "not a date rule"])
def test_a_broken_alternative_is_refused_naming_file_rule_and_key(tmp_path, old, new, words):
    with pytest.raises(RulebookError) as caught:
        load_rulebook(_rule_folder(tmp_path, old, new))
    assert any("art17_entry_into_force.toml: rule apmbc.art17.entry_into_force_on_succession: key 'alternative_to'" in line
               and words in line for line in caught.value.problems), caught.value.problems


def test_rules_reading_the_date_come_after_both_rules_that_derive_it():
    rulebook = load_rulebook(APMBC.directory)
    order = list(rulebook.ids)
    for reader in (r for r in rulebook.rules if "apmbc.art17.entry_into_force" in r.when):
        assert order.index(reader.id) > order.index("apmbc.art17.entry_into_force_on_succession"), reader.id
        assert order.index(reader.id) > order.index("apmbc.art17.entry_into_force"), reader.id
    assert rulebook.rule("apmbc.art17.entry_into_force_on_succession").kind == "apmbc.art17.entry_into_force"
