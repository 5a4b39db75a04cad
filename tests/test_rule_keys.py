"""The README's table of rule keys is generated from the tables the loader and both backends read."""

from __future__ import annotations

from pathlib import Path

from engine.core import compute, rule_keys, rulebook

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_table_is_the_generated_one():
    text = README.read_text(encoding="utf-8")
    assert rule_keys.replace_in(text) == text, "README.md's table of rule keys is stale: run python -m engine.core.rule_keys --write"


def test_every_key_the_loader_accepts_has_a_row_and_no_row_names_an_unknown_key():
    documented = [key for keys, _ in rule_keys.ROWS for key in keys]
    assert sorted(documented) == sorted(rulebook._KEYS)


def test_the_loader_and_compute_read_one_table_and_the_declared_modes_are_listed():
    assert rulebook.DATE_FUNCTIONS == tuple(compute.DATE_FUNCTIONS)
    for name, function in compute.DATE_FUNCTIONS.items():
        assert (function.single is None) != (function.per_period is None), name
        assert f"`{name}`" in rule_keys.markdown()
    for name in rulebook.load_rulebook().status_modes:
        assert f"`{name}`" in rule_keys.markdown()


def test_every_date_function_a_packaged_rule_names_is_computed():
    book = rulebook.load_rulebook()
    named = {r.date_function for r in book.rules if r.date_function}
    assert named == {"entry_into_force", "day_of_following_year", "request_before_last_meeting", "next_meeting_after"}
    assert named <= set(compute.DATE_FUNCTIONS)
