"""The Mine Ban Convention's notes read as a diplomat would write them (the golden notes of
tests/snapshots/letters/apmbc-*, which tests/test_letters.py renders and compares byte for byte):

- the request's timing is the Seventh Meeting's decision, cited as such, never "Article 5(3)-(4); 7MSP
  decision of the Convention" (the rule's raw `article`), and the request's basis names what it extends;
- Belarus's Art. 4 sentence has no comma inside its subject ("... or control falls on 1 March 2008");
- French cites "(article 4)", "de l'article 4"; States are named by their UN names with articles
  ("le Bélarus", "du Cambodge"), not CLDR's ("Biélorussie", "de Cambodge").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from notifiers import snapshots

FOLDER = Path(__file__).parent / "snapshots" / "letters"


def note(name: str) -> str:
    return " ".join((FOLDER / name).read_text(encoding="utf-8").split())


@pytest.mark.parametrize("language", ["en", "fr", "es", "zh"])
def test_no_note_shows_a_rules_raw_article(language):
    for path in FOLDER.glob(f"apmbc-*.{language}.txt"):
        text = note(path.name)
        assert "7MSP" not in text and "(3)-(4)" not in text and "decision de" not in text, path.name
        assert "(l'article" not in text and "de Cambodge" not in text and "Biélorussie" not in text, path.name
        assert "Bielorrusia" not in text, path.name


def test_the_request_sentence_cites_the_seventh_meeting_in_every_language():
    expected = {
        "en": "under the decision of the Seventh Meeting of the States Parties on the extension process, requesting "
              "States Parties are encouraged to submit such a request \"no fewer than nine months",
        "fr": "aux termes de la décision de la septième Assemblée des États parties sur le processus de prolongation",
        "es": "en virtud de la decisión de la Séptima Reunión de los Estados Partes sobre el proceso de prórroga",
        "zh": "根据缔约国第七次会议关于延期程序的决定",
    }
    cited = {"en": "(Article 5, paragraphs 3 and 4; decision of the Seventh Meeting of the States Parties)",
             "fr": "(paragraphes 3 et 4 de l'article 5 ; décision de la septième Assemblée des États parties)",
             "es": "(párrafos 3 y 4 del artículo 5; decisión de la Séptima Reunión de los Estados Partes)",
             "zh": "（第五条第3和4款；缔约国第七次会议的决定）"}
    for language, sentence in expected.items():
        text = note(f"apmbc-clearance-and-request-KHM-22MSP.{language}.txt")
        if language == "zh":
            text = text.replace(" ", "")
        assert sentence in text and cited[language] in text, language


def test_belarus_stockpile_sentence_is_grammatical():
    assert ("complete the destruction of all stockpiled anti-personnel mines that it owns or possesses or that are "
            "under its jurisdiction or control falls on 1 March 2008 (Article 4).") in note("apmbc-stockpile-BLR.en.txt")
    fr = note("apmbc-stockpile-BLR.fr.txt")
    assert "Le délai dont dispose le Bélarus" in fr and "expire le 1er mars 2008 (article 4)." in fr
    assert "Mission permanente du Bélarus" in fr
    assert "El plazo de que dispone Belarús" in note("apmbc-stockpile-BLR.es.txt")


def test_the_golden_notes_are_what_the_code_renders():
    # as tests/test_letters.py does for every note: the goldens are the code's output, not edited by hand
    rendered = {name: text for name, text in snapshots.render_all("apmbc").items() if name.startswith("apmbc-")}
    assert rendered and all((FOLDER / name).read_text(encoding="utf-8") == text for name, text in rendered.items())
