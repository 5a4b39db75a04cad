"""Tests of the rulebook loader: the packaged CCM rules, and broken rule folders that must be refused."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest

from engine.core.rulebook import (
    MAX_QUOTE_CHARS,
    RulebookError,
    default_directory,
    load_rulebook,
)

FIXTURES = Path(__file__).parent / "fixtures" / "rulebook"
FILE_ARTICLE = re.compile(r"^art(\d{2})_[a-z0-9_]+\.toml$")


@pytest.fixture(scope="module")
def rulebook():
    return load_rulebook()


def article_number(text: str) -> int:
    """The article a rule's ``article`` key starts with: "4(1)(a)" -> 4, "17(1)-(2)" -> 17."""
    match = re.match(r"^(\d+)\(", text)
    assert match, f"article {text!r} does not start with an article number and a paragraph"
    return int(match.group(1))


# --------------------------------------------------------------------------- the packaged rulebook


def test_the_packaged_ccm_rulebook_loads_with_its_title(rulebook):
    assert rulebook.title == "Convention on Cluster Munitions (Dublin, 30 May 2008)"
    assert {"ccm.art17.entry_into_force", "ccm.art3.stockpile_destruction", "ccm.art4.clearance",
            "ccm.art7.initial_report", "ccm.art7.annual_report", "ccm.art20.withdrawal"} <= set(rulebook.ids)


def test_every_rule_cites_its_article_and_quotes_a_short_operative_phrase(rulebook):
    for rule in rulebook.rules:
        assert rule.article and article_number(rule.article) > 0, rule.id
        assert rule.quote.strip(), rule.id
        assert len(rule.quote) <= MAX_QUOTE_CHARS, rule.id


def test_every_rule_has_sources_with_a_title_and_a_web_address(rulebook):
    for rule in rulebook.rules:
        assert rule.sources, rule.id
        for source in rule.sources:
            assert source.title.strip(), rule.id
            assert re.match(r"^https?://\S+$", source.href), (rule.id, source.href)


def test_every_obligation_says_how_the_record_fulfils_it(rulebook):
    obligations = [r for r in rulebook.rules if r.is_obligation]
    assert obligations
    for rule in obligations:
        assert rule.status in rulebook.status_modes, rule.id
        assert rule.fulfilled_by, rule.id


def test_rule_files_sort_in_treaty_order_and_hold_only_their_own_article(rulebook):
    # the rule files are the ones the manifest lists; wording.toml and pack.toml hold no rules
    manifest = tomllib.loads((default_directory() / "pack.toml").read_text(encoding="utf-8"))
    names = sorted(manifest["pack"]["files"])
    numbers = []
    for name in names:
        match = FILE_ARTICLE.match(name)
        assert match, f"{name} is not named art<NN>_<subject>.toml"
        numbers.append(int(match.group(1)))
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert names[0] == "art03_stockpile_destruction.toml" and names[-1] == "art20_withdrawal.toml"
    for rule in rulebook.rules:
        file_article = int(FILE_ARTICLE.match(rule.file).group(1))
        assert article_number(rule.article) == file_article, (rule.id, rule.file)
        assert rule.id.startswith(f"ccm.art{file_article}."), (rule.id, rule.file)


def test_the_rules_come_in_dependency_order(rulebook):
    seen: set[str] = set()
    ids = set(rulebook.ids)
    for rule in rulebook.rules:
        needs = {w for w in rule.when if w in ids} | ({rule.exception_to} if rule.exception_to else set())
        assert needs - {rule.id} <= seen, f"{rule.id} comes before {needs - seen}"
        seen.add(rule.id)


def test_the_hash_is_the_same_on_every_load_and_for_an_identical_copy(rulebook, tmp_path):
    assert load_rulebook().hash == rulebook.hash
    for path in default_directory().glob("*.toml"):
        shutil.copy(path, tmp_path / path.name)
    assert load_rulebook(tmp_path).hash == rulebook.hash
    assert re.fullmatch(r"[0-9a-f]{16}", rulebook.hash)


def test_the_hash_changes_when_one_rule_file_changes(rulebook, tmp_path):
    for path in default_directory().glob("*.toml"):
        shutil.copy(path, tmp_path / path.name)
    transparency = tmp_path / "art07_transparency.toml"
    text = transparency.read_text(encoding="utf-8")
    assert "add_years = 0" in text
    transparency.write_text(text.replace("add_years = 0", "add_years = 1"), encoding="utf-8")
    edited = load_rulebook(tmp_path)
    assert edited.hash != rulebook.hash
    assert edited.rule("ccm.art7.annual_report").first_period["add_years"] == 1


def test_the_valid_fixture_loads_so_each_broken_copy_fails_for_its_one_change():
    assert load_rulebook(FIXTURES / "valid").ids == ("ccm.art17.entry_into_force", "ccm.art7.initial_report")


# --------------------------------------------------------------------------- broken rule folders


# (folder under tests/fixtures/rulebook, words one error line must contain: what was wrong, the file, the key)
BROKEN = [
    ("unknown_key", ["unknown key", "art07_transparency.toml", "'deadline'"]),
    ("missing_quote", ["missing key", "art07_transparency.toml", "'quote'"]),
    ("missing_sources", ["missing key", "art07_transparency.toml", "'sources'"]),
    ("exception_to_no_rule", ["points at no rule", "'ccm.art4.clearance'", "art04_clearance.toml", "'exception_to'"]),
    ("follows_no_rule", ["points at no rule", "'ccm.art4.clearance'", "art04_clearance.toml", "'follows'"]),
    ("unknown_date_function", ["does not define", "'one_hundred_eighty_days_after'", "art07_transparency.toml",
                               "'date_function'"]),
    ("bad_on_leap_day", ["is 'nearest'", "error, round_down, round_up", "art07_transparency.toml", "'on_leap_day'"]),
    ("offset_without_anchor", ["needs an 'anchor'", "art07_transparency.toml", "'offset'"]),
    ("two_ways_of_computing_a_date", ["exactly one of", "art07_transparency.toml", "'offset'", "'date_function'"]),
    ("duplicate_id_across_files", ["repeats the id", "art08_clarification.toml", "art07_transparency.toml", "'id'"]),
    ("cycle", ["cycle", "art07_transparency.toml", "ccm.art7.initial_report", "ccm.art7.annual_report", "'when'"]),
    ("quote_too_long", [f"at most {MAX_QUOTE_CHARS}", "403 characters", "art07_transparency.toml", "'quote'"]),
    ("invalid_toml", ["not valid TOML", "art07_transparency.toml", "line 5"]),
    ("unknown_table", ["unknown table", "art07_transparency.toml", "[deadlines]"]),
    ("obligation_without_status", ["must name a status mode", "for an obligation", "art07_transparency.toml", "'status'"]),
    ("when_names_no_rule", ["looks like a rule id but no rule has it", "'ccm.art17.entry_in_force'",
                            "art07_transparency.toml", "'when'"]),
    ("unless_names_no_rule", ["looks like a rule id but no rule has it", "'ccm.art20.withdrawl'",
                              "art07_transparency.toml", "'unless'"]),
]


@pytest.mark.parametrize("folder, words", BROKEN, ids=[f"{folder} is refused naming file and key" for folder, _ in BROKEN])
def test_a_broken_rule_folder_is_refused_with_an_error_naming_what_file_and_key(folder, words):
    with pytest.raises(RulebookError) as caught:
        load_rulebook(FIXTURES / folder)
    problems = caught.value.problems
    assert problems and str(caught.value) == "\n".join(problems)
    matching = [line for line in problems if all(word in line for word in words)]
    assert matching, f"no error line contains all of {words}; errors were:\n" + "\n".join(problems)


def test_every_broken_fixture_folder_is_in_the_table():
    folders = {path.name for path in FIXTURES.iterdir() if path.is_dir()}
    assert folders == {folder for folder, _ in BROKEN} | {"valid", "many_problems", "broken_rule_used_by_another"}


def test_all_problems_in_a_folder_are_reported_at_once():
    with pytest.raises(RulebookError) as caught:
        load_rulebook(FIXTURES / "many_problems")
    problems = caught.value.problems
    expected = [
        ("art03_stockpile_destruction.toml", "unknown table [stockpiles]"),
        ("art07_transparency.toml", "unknown key 'deadline'"),
        ("art08_clarification.toml", "missing key 'quote'"),
        ("art20_withdrawal.toml", "not valid TOML"),
    ]
    for file, words in expected:
        assert any(line.startswith(file) and words in line for line in problems), (file, words, problems)
    assert len(problems) == len(expected), problems


def test_a_malformed_rule_is_reported_once_and_not_as_missing_from_the_rules_that_use_it():
    # The Article 17 rule lacks its quote; the Article 7 rule that counts from it is correct.
    with pytest.raises(RulebookError) as caught:
        load_rulebook(FIXTURES / "broken_rule_used_by_another")
    assert caught.value.problems == [
        ("art17_entry_into_force.toml: rule ccm.art17.entry_into_force: missing key 'quote' "
         "(a short quotation of the operative phrase)")
    ]


def test_an_empty_folder_is_refused_with_a_sentence(tmp_path):
    with pytest.raises(RulebookError, match=r"no rule files \(\*\.toml\) found"):
        load_rulebook(tmp_path)


def test_a_quotation_in_another_language_needs_its_source(rulebook, tmp_path):
    from engine.core.rulebook import RulebookError

    for path in default_directory().glob("*.toml"):
        shutil.copy(path, tmp_path / path.name)
    transparency = tmp_path / "art07_transparency.toml"
    text = transparency.read_text(encoding="utf-8")
    transparency.write_text(text.replace('source_fr = "', 'unused_source = "', 1), encoding="utf-8")
    with pytest.raises(RulebookError, match="key 'quote_fr' needs 'source_fr'"):
        load_rulebook(tmp_path)
