"""A note about Mine Ban Convention items renders with the apmbc pack's wording (rules/apmbc/wording.toml
[letters]): its title, deadlines, citation style and the 7MSP's request timing, never the CCM's words."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import date, timedelta

import pytest

from engine.core import packs
from notifiers import letters
from notifiers.config import Signer, defaults
from notifiers.notes import consolidate
from notifiers.planner import Policy, dues_from_evaluation, plan

LANGUAGES = ("en", "fr", "es", "zh")
TABLE = defaults()["letters"]
# the signer is the deployment's configuration ([letters.signers]): here the APMBC's ISU
SIGNER = Signer(
    sender={"en": "The Implementation Support Unit of the Anti-Personnel Mine Ban Convention",
            "fr": "L'Unité d'appui à l'application de la Convention sur l'interdiction des mines antipersonnel",
            "es": "La Dependencia de Apoyo a la Aplicación de la Convención sobre la prohibición de las minas antipersonal",
            "zh": "《禁止杀伤人员地雷公约》执行支助股"},
    short={"en": "The Implementation Support Unit", "fr": "L'Unité d'appui à l'application",
           "es": "La Dependencia de Apoyo a la Aplicación", "zh": "执行支助股"},
    signature={"en": "Implementation Support Unit\nGeneva", "fr": "Unité d'appui à l'application\nGenève",
               "es": "Dependencia de Apoyo a la Aplicación\nGinebra", "zh": "执行支助股\n日内瓦"})
CCM_WORDS = ("cluster", "Cluster", "sous-munitions", "Racimo", "racimo", "集束")
TITLE = {"en": "Anti-Personnel Mines and on their Destruction", "fr": "des mines antipersonnel et sur leur destruction",
         "es": "minas antipersonal y sobre su destrucción", "zh": "《关于禁止使用、储存、生产和转让杀伤人员地雷及销毁此种地雷的公约》"}


@pytest.fixture(scope="module")
def evaluator():
    from engine.backends import Evaluator
    from engine.core.rulebook import load_rulebook
    from engine.registry.load import load_registry

    folder = packs.find("apmbc").directory
    return Evaluator(load_rulebook(folder), load_registry(folder / packs.REGISTRY), "reference")


@pytest.fixture(scope="module")
def policy():
    # an ISU's [letters.kinds] for this Convention: its own obligation ids, the stages of the defaults
    table = copy.deepcopy(TABLE)
    kinds = table["kinds"]
    kinds["initial_report"]["obligations"] = ["apmbc.art7.initial_report"]
    kinds["annual_report"]["obligations"] = ["apmbc.art7.annual_report"]
    kinds["deadline"]["obligations"] = ["apmbc.art4.stockpile_destruction", "apmbc.art5.clearance"]
    kinds["extension_request"]["obligations"] = ["apmbc.art5.extension_request"]
    for kind in ("retention_report", "clarification_response"):
        del kinds[kind]
    return Policy.from_toml(table)


def _note(evaluator, policy, party, as_of, wanted):
    """The note a State gets for the (obligation, period, stage) items, each planned on its stage's own date."""
    dues = dues_from_evaluation(evaluator.evaluate(party, as_of, []))
    planned = []
    for obligation_id, period, stage_name in wanted:
        due = next(d for d in dues if d.obligation_id == obligation_id and d.period == period)
        stage = next(s for s in policy.kind_of(obligation_id).stages if s.name == stage_name)
        day = due.due + timedelta(days=stage.days)
        planned += [p for p in plan([replace(due, status="pending" if stage.days <= 0 else "overdue")], [], policy, day)
                    if p.stage_name == stage_name]
    return consolidate(planned, [], as_of)[0]


def _render(evaluator, note, language):
    rendered = letters.render_note(note, evaluator.registry, evaluator.rulebook, language, SIGNER, "APMBC/ISU", "k")
    text = rendered.subject + "\n" + rendered.text
    return text if language == "zh" else " ".join(text.split())     # the plain text is wrapped at 76 columns


def test_cambodias_clearance_and_request_note_names_the_mine_ban_convention_in_every_language(evaluator, policy):
    note = _note(evaluator, policy, "KHM", date(2024, 11, 1),
                 [("apmbc.art5.extension_request", "22MSP", "advance120"), ("apmbc.art5.clearance", "", "advance365")])
    expected = {
        "en": ["the destruction of all anti-personnel mines in mined areas under its jurisdiction or control",
               "falls on 31 December 2025 (Article 5, paragraph 1, extended under Article 5, paragraphs 3 to 6)",
               "the Twenty-Second Meeting of the States Parties", "at their Seventh Meeting",
               "humanitarian, social, economic and environmental implications",
               "Under Article 5, paragraph 1, of the Convention, this obligation is to be fulfilled \"as soon as possible"],
        "fr": ["la destruction de toutes les mines antipersonnel dans les zones minées sous sa juridiction",
               "(paragraphe 1 de l'article 5, délai prolongé en vertu des paragraphes 3 à 6 de l'article 5)",
               "la vingt-deuxième Assemblée des États parties", "à leur septième Assemblée"],
        "es": ["la destrucción de todas las minas antipersonal colocadas en las zonas minadas",
               "(párrafo 1 del artículo 5, plazo prorrogado en virtud de los párrafos 3 a 6 del artículo 5)",
               "la Vigésima Segunda Reunión de los Estados Partes", "en su Séptima Reunión"],
        "zh": ["销毁其管辖或控制下雷区内的所有杀伤人员地雷", "第五条第1款，并根据第五条第3至6款延期", "第二十二次缔约国会议",
               "缔约国第七次会议鼓励"],
    }
    for language in LANGUAGES:
        text = _render(evaluator, note, language)
        assert TITLE[language] in text, language
        for phrase in expected[language]:
            assert phrase in text, (language, phrase)
        assert not [w for w in CCM_WORDS if w in text], (language, text)


def test_a_stockpile_deadline_without_an_extension_mechanism_says_nothing_of_requests(evaluator, policy):
    note = _note(evaluator, policy, "BLR", date(2007, 3, 1), [("apmbc.art4.stockpile_destruction", "", "advance365")])
    for language, says, never in (
            ("en", "completion of the destruction of stockpiled anti-personnel mines (Article 4 of the Convention on the Prohibition",
             "nine months"),
            ("fr", "achèvement de la destruction des stocks de mines antipersonnel (article 4 de la Convention sur l'interdiction",
             "neuf mois"),
            ("es", "conclusión de la destrucción de las existencias de minas antipersonal (artículo 4 de la Convención", "nueve meses"),
            ("zh", "完成销毁储存的杀伤人员地雷（《关于禁止使用", "九个月")):
        text = _render(evaluator, note, language)
        assert says in " ".join(text.split()), (language, text)
        assert never not in text and "extension" not in text and not [w for w in CCM_WORDS if w in text], language


def test_the_ccm_pack_keeps_its_own_wording_for_the_same_kind_of_item():
    from engine.core import wording

    ccm, apmbc = packs.find("ccm").directory, packs.find("apmbc").directory
    assert wording.letters(ccm)["convention"]["name"]["en"] == "the Convention on Cluster Munitions"
    assert "Anti-Personnel Mines" in wording.letters(apmbc)["convention"]["name"]["en"]
    assert wording.provision("5(3)-(6)", "fr", apmbc) == wording.provision("5(3)-(6)", "fr", ccm)
