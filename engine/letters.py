"""Letters rendered from Jinja2 templates (notifiers/templates) with Babel: subject, plain text and HTML, in en, fr, es or zh.

Each letter is a note verbale: the sender (config) presents its compliments to the State's
permanent mission (contacts), the paragraphs of the obligation kind and tone follow, with the
legal basis (article and short quotation) taken from the rule that computed the date, and the
closing formula. Dates are Babel's long format (``en_GB``: "30 April 2025"); country names are
CLDR's. Templates use StrictUndefined: a missing value is an error, never a blank.
"""

from __future__ import annotations

import hashlib
import re
import textwrap
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

LOCALES = {"en": "en_GB", "fr": "fr", "es": "es", "zh": "zh"}
PLACE = {"en": "Geneva", "fr": "Genève", "es": "Ginebra", "zh": "日内瓦"}
LABELS = {
    "en": {"reference": "Ref.", "subject": "Subject: "},
    "fr": {"reference": "Réf.", "subject": "Objet\u00a0: "},
    "es": {"reference": "Ref.", "subject": "Asunto: "},
    "zh": {"reference": "编号", "subject": "事由："},
}
_ZH_DIGITS = "零一二三四五六七八九"


@dataclass(frozen=True)
class RenderedLetter:
    subject: str
    text: str
    html: str
    language: str
    reference: str


@dataclass(frozen=True)
class LetterFacts:
    """Everything a template needs that is not in the planned letter itself."""

    iso3: str
    country: str                 # the CLDR name in the letter's language
    mission: str                 # the addressee, without a leading article
    rule_article: str
    rule_quote: str
    base_article: str | None     # the extended base rule's article, when an exception computed the date
    base_quote: str | None = None
    meeting_code: str | None = None
    meeting_start: date | None = None


# ----------------------------------------------------------------------------- language helpers

def format_day(day: date, language: str) -> str:
    """A date in Babel's long format for the language (en: en_GB).

    >>> format_day(date(2025, 4, 30), "en"), format_day(date(2025, 4, 30), "zh")
    ('30 April 2025', '2025年4月30日')
    """
    text = _format_date(day, LOCALES[language])
    return "1er" + text[1:] if language == "fr" and day.day == 1 else text


@lru_cache(maxsize=4096)
def _format_date(day: date, locale: str) -> str:
    from babel.dates import format_date

    return format_date(day, "long", locale=locale)


def zh_number(n: int) -> str:
    """Chinese numerals up to 99.

    >>> zh_number(7), zh_number(17), zh_number(20)
    ('七', '十七', '二十')
    """
    if n < 10:
        return _ZH_DIGITS[n]
    tens, units = divmod(n, 10)
    return ("" if tens == 1 else _ZH_DIGITS[tens]) + "十" + ("" if units == 0 else _ZH_DIGITS[units])


_ARTICLE = re.compile(r"^(\d+)(?:\((\d+)\)(?:-\((\d+)\))?)?(?:\(([a-z])\))?$")


def under_article(article: str, language: str) -> str:
    """The provision as a phrase ("Article 4, paragraph 1 (a)"), in each language's usual form.

    >>> under_article("4(1)(a)", "en"), under_article("3(3)-(5)", "fr")
    ('Article 4, paragraph 1 (a)', "paragraphes 3 à 5 de l'article 3")
    >>> under_article("7(1)", "es"), under_article("4(1)(a)", "zh")
    ('párrafo 1 del artículo 7', '第四条第1款(a)项')
    """
    match = _ARTICLE.match(article)
    if not match:
        return {"en": f"Article {article}", "fr": f"article {article}", "es": f"artículo {article}",
                "zh": f"第{article}条"}[language]
    art, para, to, sub = match.groups()
    if language == "en":
        text = f"Article {art}"
        if para:
            text += f", paragraphs {para} to {to}" if to else f", paragraph {para}"
        return text + (f" ({sub})" if sub else "")
    if language == "fr":
        text = f"l'article {art}"
        if para:
            text = (f"paragraphes {para} à {to} de " if to else f"paragraphe {para} de ") + text
        return (f"alinéa {sub}) du " + text) if sub else text
    if language == "es":
        text = f"artículo {art}"
        if para:
            text = (f"párrafos {para} a {to} del " if to else f"párrafo {para} del ") + text
        return (f"apartado {sub}) del " + text) if sub else text
    text = f"第{zh_number(int(art))}条"
    if para:
        text += f"第{para}至{to}款" if to else f"第{para}款"
    return text + (f"({sub})项" if sub else "")


def french_of(country: str) -> str:
    """French "de" with the country's article, by the usual rules (fallback when a contact has no mission name).

    >>> french_of("Liban"), french_of("Albanie"), french_of("France"), french_of("Pays-Bas"), french_of("Mexique")
    ('du Liban', "de l'Albanie", 'de la France', 'des Pays-Bas', 'du Mexique')
    """
    plural = ("Pays-Bas", "Philippines", "Comores", "Maldives", "Seychelles", "Bahamas", "Fidji", "Palaos")
    bare = ("Cuba", "Malte", "Chypre", "Madagascar", "Maurice", "Monaco", "Nauru", "Niue", "Sainte-Lucie",
            "Saint-Marin", "Samoa", "Tonga", "Singapour", "Bahreïn", "Israël", "Haïti", "Oman", "Andorre",
            "Sao Tomé-et-Principe", "Trinité-et-Tobago", "Antigua-et-Barbuda", "Saint-Vincent-et-les-Grenadines",
            "Saint-Christophe-et-Niévès", "Djibouti", "Kiribati", "Tuvalu", "Vanuatu", "Brunéi Darussalam")
    masculine_e = ("Mexique", "Mozambique", "Cambodge", "Zimbabwe", "Belize", "Suriname", "Saint-Siège")
    if country.startswith(("Îles", "États-", "Émirats")) or country in plural:
        return f"des {country}"
    vowel = country[:1] in "AEIOUYÉÈÊÎÔÂ"
    if country in bare:
        return f"d'{country}" if vowel else f"de {country}"
    if vowel:
        return f"de l'{country}"
    if country.endswith("e") and country not in masculine_e:
        return f"de la {country}"
    return f"du {country}"


def spanish_of(country: str) -> str:
    """Spanish "de" with the article United Nations usage gives some names (fallback only).

    >>> spanish_of("Líbano"), spanish_of("Países Bajos"), spanish_of("Chile")
    ('del Líbano', 'de los Países Bajos', 'de Chile')
    """
    masculine = ("Líbano", "Chad", "Perú", "Ecuador", "Paraguay", "Uruguay", "Japón", "Canadá", "Reino Unido",
                 "Iraq", "Irak", "Afganistán", "Camerún", "Senegal", "Níger", "Togo", "Sudán del Sur", "Congo",
                 "Yemen", "Pakistán", "Salvador")
    feminine = ("Argentina", "India", "República Centroafricana", "República Dominicana", "Santa Sede")
    plural_m = ("Países Bajos", "Estados Unidos", "Emiratos Árabes Unidos")
    plural_f = ("Bahamas", "Comoras", "Maldivas", "Filipinas", "Islas Cook", "Seychelles", "Islas Marshall")
    if country in masculine:
        return f"del {country}"
    if country in feminine:
        return f"de la {country}"
    if country in plural_m:
        return f"de los {country}"
    if country in plural_f:
        return f"de las {country}"
    return f"de {country}"


def english_country(country: str) -> str:
    """English country names that take "the".

    >>> english_country("United Kingdom"), english_country("Lebanon")
    ('the United Kingdom', 'Lebanon')
    """
    the = ("United ", "Central African", "Dominican", "Holy See", "Netherlands", "Philippines", "Comoros",
           "Bahamas", "Maldives", "Gambia", "Marshall", "Solomon", "Cook Islands", "Democratic", "Republic")
    return f"the {country}" if country.startswith(the) or "Republic" in country or "Kingdom" in country else country


def default_mission(country: str, language: str) -> str:
    """The addressee when the contact gives none: "Permanent Mission of ... to the United Nations Office at Geneva"."""
    return {
        "en": f"Permanent Mission of {english_country(country)} to the United Nations Office at Geneva",
        "fr": f"Mission permanente {french_of(country)} auprès de l'Office des Nations Unies à Genève",
        "es": f"Misión Permanente {spanish_of(country)} ante la Oficina de las Naciones Unidas en Ginebra",
        "zh": f"{country}常驻联合国日内瓦办事处代表团",
    }[language]


_ORDINALS = {
    "en": ["", "First", "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh", "Eighth", "Ninth", "Tenth",
           "Eleventh", "Twelfth", "Thirteenth", "Fourteenth", "Fifteenth", "Sixteenth", "Seventeenth", "Eighteenth",
           "Nineteenth", "Twentieth"],
    "fr": ["", "première", "deuxième", "troisième", "quatrième", "cinquième", "sixième", "septième", "huitième",
           "neuvième", "dixième", "onzième", "douzième", "treizième", "quatorzième", "quinzième", "seizième",
           "dix-septième", "dix-huitième", "dix-neuvième", "vingtième"],
    "es": ["", "Primera", "Segunda", "Tercera", "Cuarta", "Quinta", "Sexta", "Séptima", "Octava", "Novena",
           "Décima", "Undécima", "Duodécima", "Decimotercera", "Decimocuarta", "Decimoquinta", "Decimosexta",
           "Decimoséptima", "Decimoctava", "Decimonovena", "Vigésima"],
}


def meeting_name(code: str, language: str) -> str:
    """The meeting a code names ("13MSP", "3RC"), in the language.

    >>> meeting_name("13MSP", "en"), meeting_name("3RC", "fr"), meeting_name("13MSP", "zh")
    ('the Thirteenth Meeting of States Parties', "la troisième Conférence d'examen", '第十三次缔约国会议')
    """
    match = re.match(r"^(\d+)(MSP|RC)", code)
    if not match or int(match.group(1)) > 20:
        return code
    n, kind = int(match.group(1)), match.group(2)
    if language == "zh":
        return f"第{zh_number(n)}次" + ("缔约国会议" if kind == "MSP" else "审议会议")
    ordinal = _ORDINALS[language][n]
    if language == "en":
        return f"the {ordinal} " + ("Meeting of States Parties" if kind == "MSP" else "Review Conference")
    if language == "fr":
        return f"la {ordinal} " + ("Assemblée des États parties" if kind == "MSP" else "Conférence d'examen")
    return f"la {ordinal} " + ("Reunión de los Estados Partes" if kind == "MSP" else "Conferencia de Examen")


# ----------------------------------------------------------------------------- rendering

def reference(prefix: str, key: str, party: str, as_of: date) -> str:
    """A stable reference number: ``CCM/ISU/2025/LBN/3F9A2C`` (the last part from the idempotency key)."""
    return f"{prefix}/{as_of.year}/{party}/{hashlib.sha256(key.encode()).hexdigest()[:6].upper()}"


@lru_cache(maxsize=2)
def environments():
    """(text environment, HTML environment): StrictUndefined; the HTML one autoescapes."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    loader = PackageLoader("notifiers", "templates")
    common = dict(loader=loader, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                  keep_trailing_newline=False, auto_reload=False)
    return Environment(autoescape=False, **common), Environment(autoescape=True, **common)


def template_names(kinds: tuple[str, ...] = ()) -> list[str]:
    from importlib import resources

    root = resources.files("notifiers") / "templates"
    return sorted(f"{lang}/{p.name}" for lang in LOCALES for p in (root / lang).iterdir() if p.name.endswith(".j2"))


def context(letter, facts: LetterFacts, language: str, signer, ref: str, as_of: date) -> dict[str, Any]:
    """The template variables of one letter."""
    days = lambda d: format_day(d, language)  # noqa: E731
    late = (as_of - letter.due).days
    return {
        "lang": language, "iso3": facts.iso3, "country": facts.country,
        "country_of": (french_of(facts.country) if language == "fr" else spanish_of(facts.country) if language == "es"
                       else facts.country),
        "country_en": english_country(facts.country) if language == "en" else facts.country,
        "mission": facts.mission, "sender": signer.sender[language], "sender_short": signer.short[language],
        "kind": letter.kind, "tone": letter.tone, "stage": letter.stage_name, "period": letter.period,
        "obligation_id": letter.obligation_id,
        "due": days(letter.due), "date": days(as_of), "days_late": late, "days_left": -late,
        "extended": facts.base_article is not None,
        "provision": _provision(under_article(facts.rule_article, language), language),
        "base_provision": _provision(under_article(facts.base_article, language), language) if facts.base_article else "",
        "sender_mid": _mid(signer.short[language], language),
        "quote": facts.rule_quote, "base_quote": facts.base_quote or "",
        "meeting": meeting_name(facts.meeting_code, language) if facts.meeting_code else "",
        "meeting_code": facts.meeting_code or "",
        "meeting_start": days(facts.meeting_start) if facts.meeting_start else "",
        "reference": ref,
    }


def _provision(text: str, language: str) -> str:
    """The provision as the templates use it: English sets a paragraph off with commas ("Article 7,
    paragraph 1, of the Convention"); French and Spanish take the contracted "de" ("du paragraphe 1
    de l'article 7", "del párrafo 1 del artículo 7")."""
    if language == "en":
        return text + "," if "," in text else text
    if language == "fr":
        if text.startswith("alinéa"):
            return "de l'" + text
        return ("des " if text.startswith("paragraphes") else "du " if text.startswith("paragraphe") else "de ") + text
    if language == "es":
        return ("de los " if text.startswith("párrafos") else "del ") + text
    return text


def _mid(text: str, language: str) -> str:
    """The sender's short name inside a sentence: "the Implementation Support Unit"."""
    return text[:1].lower() + text[1:] if language in ("en", "fr", "es") else text


def _paragraphs(text: str) -> list[str]:
    """Blank lines separate paragraphs; inside one, line breaks join with a space (none in Chinese)."""
    return [re.sub(r"\s*\n\s*", "" if _cjk(p) else " ", p.strip()) for p in re.split(r"\n\s*\n", text.strip())
            if p.strip()]


def _cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def render(letter, facts: LetterFacts, language: str, signer, prefix: str, as_of: date) -> RenderedLetter:
    """Subject, plain text and HTML of a planned letter (engine.planner.PlannedLetter).

    Raises jinja2.UndefinedError for a template that uses a value the context lacks.
    """
    text_env, html_env = environments()
    ref = reference(prefix, letter.key, letter.party, as_of)
    ctx = context(letter, facts, language, signer, ref, as_of)
    body = text_env.get_template(f"{language}/{letter.kind}.j2").render(ctx)
    subject_part, _, note = body.partition("\n===\n")
    subject = _typography(" ".join(subject_part.split()), language)
    paragraphs = [_typography(p, language) for p in _paragraphs(note)]
    page = {"lang": language, "reference": ref, "reference_label": LABELS[language]["reference"],
            "subject_label": LABELS[language]["subject"], "place_date": _place_date(language, as_of),
            "subject": subject, "paragraphs": paragraphs,
            "signature": signer.signature[language].splitlines()}
    text = text_env.get_template("letter.txt.j2").render(page, wrap=_wrap)
    html = html_env.get_template("letter.html.j2").render(page)
    return RenderedLetter(subject=subject, text=text + "\n", html=html + "\n", language=language, reference=ref)


def _typography(text: str, language: str) -> str:
    """French spacing: a no-break space inside guillemets and before a colon or semicolon."""
    if language != "fr":
        return text
    return text.replace("« ", "«\u00a0").replace(" »", "\u00a0»").replace(" : ", "\u00a0: ").replace(" ; ", "\u00a0; ")


def _place_date(language: str, day: date) -> str:
    return f"{PLACE[language]}{'，' if language == 'zh' else ', '}{format_day(day, language)}"


def _wrap(paragraph: str) -> str:
    return paragraph if _cjk(paragraph) else textwrap.fill(paragraph, width=76, break_long_words=False,
                                                            break_on_hyphens=False)


def computing_rules(rulebook, obligation) -> tuple[Any, Any | None]:
    """(the rule that computed the due date, the base rule it extended or None).

    The obligation's own rule, unless its date moved (``due`` differs from ``original_due``): then
    the exception to it that appears in the obligation's basis (e.g. ccm.art4.extension).
    """
    rule = rulebook.rule(obligation.obligation_id)
    if obligation.due != obligation.original_due:
        for exception in rulebook.exceptions_to(rule.id):
            if exception.id in obligation.basis or not obligation.basis:
                return exception, rule
    return rule, None


def letter_facts(letter, registry, rulebook, language: str, mission: str | None = None) -> LetterFacts:
    """The facts a template needs: country name (CLDR), addressee, legal basis, meeting."""
    participant = registry.participant(letter.party)
    country = participant.localized_name(LOCALES[language])
    rule, base = computing_rules(rulebook, letter.obligation)
    meeting_code = letter.obligation.meeting or (letter.period if letter.kind == "extension_request" else None)
    meeting_start = None
    if meeting_code:
        try:
            meeting_start = registry.meeting(meeting_code).start_date
        except (KeyError, LookupError):
            meeting_start = None
    return LetterFacts(iso3=letter.party, country=country, mission=mission or default_mission(country, language),
                       rule_article=rule.article, rule_quote=rule.quote,
                       base_article=base.article if base else None, base_quote=base.quote if base else None,
                       meeting_code=meeting_code, meeting_start=meeting_start)
