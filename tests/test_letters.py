"""Letters: golden snapshots in four languages, strict templates, escaping, Babel dates and names, contacts."""

from __future__ import annotations

import textwrap
from datetime import date

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifiers import letters, snapshots
from notifiers.config import Signer, defaults
from notifiers.notes import consolidate
from notifiers.planner import Due, Policy, plan

TABLE = defaults()["letters"]
POLICY = Policy.from_toml(TABLE)
SIGNER = Signer(**{part: dict(TABLE["signers"]["isu"][part]) for part in ("sender", "short", "signature")})


def test_every_template_in_every_language_matches_its_golden_snapshot(tmp_path):
    """Regenerate with `python -m notifiers.snapshots --update` (or `ccm letters snapshots --update`)."""
    rendered = snapshots.render_all()
    folder = snapshots.snapshot_dir()
    assert sorted(p.name for p in folder.iterdir()) == sorted(rendered), "snapshot files missing or stale"
    differing = [name for name, text in rendered.items() if (folder / name).read_text(encoding="utf-8") != text]
    assert differing == [], f"run `python -m notifiers.snapshots --update` and review the diff: {differing}"


def test_the_snapshots_cover_every_kind_of_the_policy_in_every_language():
    names = {n.rsplit(".", 2)[0] for n in snapshots.render_all()}
    kinds = {o for c in snapshots.CASES for o, _, _ in c.items}
    assert {o for k in POLICY.kinds for o in k.obligations} - kinds <= {"ccm.art4.clearance_after_eif",
                                                                          "ccm.art3.extension_request"}
    assert len(names) == len(snapshots.CASES)


WORDS = st.sampled_from(["a", "Convention", "Article\u00a07,", "x" * 80, "«\u00a0", "\u00a0", "\u2003", "2025", " ",
                         "  ", "\n", "\t", "self-evident", "y" * 75, "é"])


@settings(max_examples=2000, deadline=None)
@given(st.lists(WORDS, max_size=60).map("".join))
def test_the_letters_line_wrapping_gives_textwraps_lines_for_any_paragraph(paragraph):
    """The fast greedy wrap of letters._wrap against the textwrap call it replaces (long words
    kept whole, no-break spaces never broken, runs of spaces and a lone no-break space as textwrap has them)."""
    expected = textwrap.fill(paragraph, width=76, break_long_words=False, break_on_hyphens=False)
    assert letters._wrap(paragraph) == expected


def test_chinese_paragraphs_are_never_wrapped():
    paragraph = "缔约国" * 60
    assert letters._wrap(paragraph) == paragraph


def _letter(party="SSD", obligation="ccm.art7.initial_report", on=date(2024, 7, 30), as_of=date(2024, 7, 31), period=""):
    return plan([Due(party, obligation, period, on, on, "overdue")], [], POLICY, as_of)[0]


def _note(letter=None, dated=date(2024, 7, 31), sent=()):
    return consolidate([letter or _letter()], list(sent), dated)[0]


def _render(evaluator, note, language="en", mission=None):
    return letters.render_note(note, evaluator.registry, evaluator.rulebook, language, SIGNER, "CCM/ISU", "k",
                               mission=mission)


@pytest.fixture(scope="module")
def evaluator():
    from engine.backends import Evaluator
    from engine.core.rulebook import load_rulebook
    from engine.registry.load import load_registry

    return Evaluator(load_rulebook(), load_registry(), "reference")


def test_english_dates_are_british_and_the_legal_basis_quotes_the_rule_that_computed_the_date(evaluator):
    out = _render(evaluator, _note())
    assert "Geneva, 31 July 2024" in out.text and "was due on 30 July 2024" in out.text
    quote = evaluator.rulebook.rule("ccm.art7.initial_report").quote
    assert f'"{quote}"' in " ".join(out.text.split())
    assert "has the honour" in out.text and "avails itself of this opportunity to renew" in out.text


@pytest.mark.parametrize("language, words", [
    ("fr", ("Mission permanente du Soudan du Sud", "30 juillet 2024", "a l'honneur", "très haute considération")),
    ("es", ("Misión Permanente de Sudán del Sur", "30 de julio de 2024", "tiene el honor",
            "más alta y distinguida consideración")),
    ("zh", ("南苏丹", "2024年7月30日", "致意", "最崇高的敬意", "如贵国已提交该报告，请惠赐副本一份，并请忽略本照会。")),
])
def test_each_language_has_its_country_name_date_and_diplomatic_formulae(evaluator, language, words):
    out = _render(evaluator, _note(), language)
    text = "".join(out.text.split()) if language == "zh" else " ".join(out.text.split())
    for word in words:
        assert (word.replace(" ", "") if language == "zh" else word) in text


def test_the_html_letter_escapes_a_mission_name_with_markup(evaluator):
    out = _render(evaluator, _note(), mission='Mission <b>"A & B"</b>')
    assert "<b>" not in out.html and "&lt;b&gt;" in out.html and "&amp;" in out.html
    assert 'Mission <b>"A & B"</b>' in " ".join(out.text.split())


def test_a_template_that_uses_a_missing_value_fails_instead_of_leaving_a_blank(evaluator):
    text_env, _ = letters.environments()
    context = letters.note_context(_note(), evaluator.registry, evaluator.rulebook, "en", SIGNER, "REF")
    del context["groups"][0]["entries"][0]["due"]
    with pytest.raises(jinja2.UndefinedError):
        text_env.get_template("en/note.j2").render(context)


def test_the_reference_number_is_stable_for_the_same_letter():
    assert letters.reference("CCM/ISU", "k", "LBN", date(2025, 5, 1)) == letters.reference("CCM/ISU", "k", "LBN", date(2025, 5, 1))


def test_contacts_set_and_import_and_a_party_without_a_contact_is_reported(tmp_path, monkeypatch, ccm):
    from engine.store import database as store
    monkeypatch.setenv("CCM_DATABASE_URL", f"sqlite:///{tmp_path / 'ccm.sqlite'}")
    monkeypatch.setenv("CCM_OUTPUT_FOLDER", str(tmp_path / "out"))
    (tmp_path / "none.toml").write_text("")
    monkeypatch.setenv("CCM_CONFIG", str(tmp_path / "none.toml"))
    try:
        code, out = ccm("contacts", "set", "Lebanon", "--email", "lb@example.org", "--language", "fr")
        assert code == 0 and "Contact of LBN" in out
        code, out = ccm("contacts", "set", "LBN", "--email", "not-an-address", "--language", "fr")
        assert code == 2 and "email" in out
        bad = tmp_path / "contacts.csv"
        bad.write_text("party,email,language,mission,cc\nSSD,ssd@example.org,en,,\nXXX,a@b.org,en,,\nCHE,ch@example.org,de,,\n")
        code, out = ccm("contacts", "import", str(bad))
        assert code == 2 and "line 3, field party" in out and "line 4, field language" in out
        good = tmp_path / "good.csv"
        good.write_text("party,email,language,mission,cc\nSSD,ssd@example.org,en,,\n")
        assert ccm("contacts", "import", str(good))[0] == 0
        code, out = ccm("letters", "plan", "--as-of", "2024-07-31")
        # Burundi's annual reports are listed as outstanding (the Monitor, 2020): letters are due, no contact.
        assert code == 0 and "no contact" in out and "BDI: no contact" in out
        assert "SSD: no contact" not in out
    finally:
        store.dispose_engines()


def test_a_french_note_quotes_the_authentic_french_text_and_others_mark_the_english(evaluator):
    rule = evaluator.rulebook.rule("ccm.art7.initial_report")
    french, source = rule.quotes["fr"]
    assert source.startswith("https://")
    fr = " ".join(_render(evaluator, _note(), "fr").text.split())
    assert f"« {french} »" in fr and "texte anglais" not in fr
    es = " ".join(_render(evaluator, _note(), "es").text.split())
    assert "(texto en inglés): «as soon as practicable" in es


def test_one_french_citation_style_within_a_note(evaluator):
    """Every provision reads "paragraphe N de l'article M", never "article M, paragraphe N"."""
    import re

    for name, text in snapshots.render_all().items():
        if name.endswith(".fr.txt"):
            assert not re.search(r"article \d+, paragraphe", " ".join(text.split())), name


@pytest.mark.parametrize("snapshot, french_rules, english_left", [
    ("deadline-PER-art3.fr.txt", ("ccm.art3.stockpile_destruction", "ccm.art3.extension"), False),
    ("deadline-extended-LAO-art4.fr.txt", ("ccm.art4.clearance",), True),
])
def test_french_notes_quote_the_authentic_french_text_where_the_rule_holds_it(evaluator, snapshot, french_rules,
                                                                              english_left):
    """Art. 3(2), 3(3) and 4(1)(a) have their authentic French text (the ICRC's reproduction); Art. 4(5) has not,
    so its English stays, marked."""
    text = " ".join(snapshots.render_all()[snapshot].split())
    for rule_id in french_rules:
        french, source = evaluator.rulebook.rule(rule_id).quotes["fr"]
        assert source.startswith("https://www.icrc.org/") and f"« {french} »" in text
    assert ("texte anglais" in text) is english_left


def test_a_meeting_is_named_in_the_tense_true_on_the_notes_date(evaluator):
    # Chad's request for the Third Review Conference (14 Sep 2026): a note dated before it says the
    # meeting "opens", one dated after it "opened". No golden snapshot claims a request was not
    # received: the engine never sends a reminder for an extension request (it is optional), and the
    # German and Lao requests to the 12MSP were received (the registry knows them).
    policy = Policy.from_toml(defaults()["letters"])
    case = next(c for c in snapshots.CASES if c.name == "extension-request-advance-TCD-3RC")
    before = snapshots.case_note(case, evaluator, policy)
    after = snapshots.case_note(snapshots.Case(**{**case.__dict__, "dated": date(2026, 10, 1)}), evaluator, policy)
    assert "which opens on 14 September 2026" in " ".join(_render(evaluator, before).text.split())
    assert "which opened on 14 September 2026" in " ".join(_render(evaluator, after).text.split())
    assert all("none has been received" not in (snapshot_dir_file.read_text(encoding="utf-8"))
               for snapshot_dir_file in snapshots.snapshot_dir().glob("extension-request-*.en.txt"))
