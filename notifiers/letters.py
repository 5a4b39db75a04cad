"""Notes verbales rendered from Jinja2 templates (notifiers/templates) with Babel: subject, plain text and HTML, in en, fr, es or zh.

One note per State per mailing (notifiers.notes): the sender (config) presents its compliments to
the State's permanent mission, then the items grouped by article, each with its legal basis
(article and quotation, in the letter's language where the rule file holds the authentic text)
taken from the rule that computed the date, its due date, and its wording on the note's date;
then the closing formula. Dates are Babel's long format (``en_GB``: "30 April 2025"); States are
named by their United Nations names (engine.registry.names). Templates use StrictUndefined: a missing
value is an error, never a blank.
"""

from __future__ import annotations

import hashlib
import re
import textwrap
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources
from typing import Any

from babel.dates import format_date
from jinja2 import Environment, PackageLoader, StrictUndefined

from engine.core import wording
from engine.registry import names

LOCALES = {"en": "en_GB", "fr": "fr", "es": "es", "zh": "zh"}
PLACE: dict[str, str] = wording.load()["letters"]["place"]     # where notes are dated: the pack's ISU seat
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


def meeting_name(code: str, language: str) -> str:
    """The meeting a code names ("13MSP", "3RC"), in the language, as the pack's wording.toml names it.

    >>> meeting_name("13MSP", "en"), meeting_name("3RC", "fr"), meeting_name("13MSP", "zh")
    ('the Thirteenth Meeting of States Parties', "la troisième Conférence d'examen", '第十三次缔约国会议')
    """
    return wording.meeting_name(code, language)


# ----------------------------------------------------------------------------- rendering

def reference(prefix: str, key: str, party: str, as_of: date) -> str:
    """A stable reference number: ``CCM/ISU/2025/LBN/3F9A2C`` (the last part from the idempotency key)."""
    return f"{prefix}/{as_of.year}/{party}/{hashlib.sha256(key.encode()).hexdigest()[:6].upper()}"


@lru_cache(maxsize=2)
def environments():
    """(text environment, HTML environment): StrictUndefined; the HTML one autoescapes."""
    loader = PackageLoader("notifiers", "templates")
    common = dict(loader=loader, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                  keep_trailing_newline=False, auto_reload=False)
    environments = Environment(autoescape=False, **common), Environment(autoescape=True, **common)
    for environment in environments:
        environment.filters["capitalize_first"] = lambda text: text[:1].upper() + text[1:]
    return environments


def template_names(kinds: tuple[str, ...] = ()) -> list[str]:
    root = resources.files("notifiers") / "templates"
    return sorted(f"{lang}/{p.name}" for lang in LOCALES for p in (root / lang).iterdir() if p.name.endswith(".j2"))


def state_names(iso3: str, registry, language: str) -> tuple[str, str, str]:
    """(the State's name in running text, the same after "of"/"de", its mission): the UN names (engine.registry.names);
    for a party the UN list lacks, CLDR's name without article (a fallback, never for a real State Party)."""
    if names.has_official_name(iso3):
        official = names.official_name(iso3, language)
        return official.running, official.of, names.permanent_mission(iso3, language)
    participant = registry.participants.get(iso3)
    country = participant.localized_name(LOCALES[language]) if participant else iso3
    of = {"en": f"of {country}", "fr": f"de {country}", "es": f"de {country}", "zh": country}[language]
    mission = {"en": f"Permanent Mission {of} to the United Nations Office at Geneva",
               "fr": f"Mission permanente {of} auprès de l'Office des Nations Unies à Genève",
               "es": f"Misión Permanente {of} ante la Oficina de las Naciones Unidas en Ginebra",
               "zh": f"{country}常驻联合国日内瓦办事处代表团"}[language]
    return country, of, mission


def _item_context(item, dated: date, registry, rulebook, language: str) -> dict[str, Any]:
    days = lambda d: format_day(d, language)  # noqa: E731
    planned = item.planned
    rule, base = computing_rules(rulebook, planned.obligation)
    quote, quote_english = rule.quote_in(language)
    base_quote, base_english = base.quote_in(language) if base else ("", False)
    meeting_code = planned.obligation.meeting or (planned.period if planned.kind == "extension_request" else None)
    meeting_start = None
    if meeting_code:
        try:
            meeting_start = registry.meeting(meeting_code).start_date
        except (KeyError, LookupError):
            meeting_start = None
    provision = under_article(rule.article, language)
    base_provision = under_article(base.article, language) if base else ""
    return {
        "kind": planned.kind, "wording": item.wording, "period": planned.period,
        "obligation_id": planned.obligation_id, "rule_id": rule.id, "base_id": base.id if base else "",
        "art3": planned.obligation_id.startswith("ccm.art3."),
        "due": days(planned.due), "estimated": item.estimated,
        "provision": provision, "of_provision": _provision(provision, language),
        "extended": base is not None, "base_provision": base_provision,
        # the provision that sets the obligation (a deadline's base rule, not the extension that moved it)
        "subject_provision": base_provision if base and planned.kind == "deadline" else provision,
        "of_base_provision": _provision(base_provision, language) if base else "",
        "quote": quote, "quote_english": quote_english, "base_quote": base_quote, "base_english": base_english,
        "meeting": meeting_name(meeting_code, language) if meeting_code else "",
        "meeting_start": days(meeting_start) if meeting_start else "",
        "meeting_past": bool(meeting_start and meeting_start <= dated),
        "earlier": ({"reference": item.earlier.reference, "date": days(item.earlier.sent_on)}
                    if item.earlier else None),
    }


def note_context(note, registry, rulebook, language: str, signer, ref: str, mission: str | None = None) -> dict[str, Any]:
    """The template variables of one consolidated note (notifiers.notes.Note)."""
    country, country_of, default_mission = state_names(note.party, registry, language)
    groups = []
    for article, items in note.groups():
        contexts = [_item_context(item, note.dated, registry, rulebook, language) for item in items]
        bases, seen = [], set()
        for c in contexts:
            if (c["kind"], c["rule_id"], c["base_id"]) not in seen:
                seen.add((c["kind"], c["rule_id"], c["base_id"]))
                bases.append(c)
        groups.append({"article": article, "article_zh": f"第{zh_number(article)}条", "entries": contexts, "bases": bases})
    every = [c for g in groups for c in g["entries"]]
    wordings = {c["wording"] for c in every}
    reports = [c for c in every if c["kind"] in ("initial_report", "annual_report", "retention_report")]
    return {
        "lang": language, "iso3": note.party, "country": country, "country_of": country_of,
        "plural": country.startswith(("les ", "los ", "las ")),
        "mission": mission or default_mission,
        "sender": signer.sender[language], "sender_short": signer.short[language],
        "sender_mid": _mid(signer.short[language], language),
        "date": format_day(note.dated, language), "reference": ref,
        "groups": groups, "items": every, "single": len(every) == 1,
        "tone": "further" if "further" in wordings else "reminder" if "reminder" in wordings else "forthcoming",
        "kinds": sorted({c["kind"] for c in every}),
        "reports": reports, "reports_late": [c for c in reports if c["wording"] != "forthcoming"],
        "follows": ({"reference": note.follows.reference, "date": format_day(note.follows.sent_on, language)}
                    if note.follows else None),
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


def render_note(note, registry, rulebook, language: str, signer, prefix: str, key: str,
                mission: str | None = None) -> RenderedLetter:
    """Subject, plain text and HTML of a consolidated note (notifiers.notes.Note), dated ``note.dated``.

    ``key`` identifies the note (its reference derives from it). Raises jinja2.UndefinedError for a
    template that uses a value the context lacks.
    """
    text_env, html_env = environments()
    ref = reference(prefix, key, note.party, note.dated)
    ctx = note_context(note, registry, rulebook, language, signer, ref, mission)
    body = text_env.get_template(f"{language}/note.j2").render(ctx)
    subject_part, _, text = body.partition("\n===\n")
    subject = _typography(" ".join(subject_part.split()), language)
    blocks = []
    for paragraph in _paragraphs(text):
        heading = paragraph.startswith("# ")
        blocks.append({"heading": heading, "text": _typography(paragraph[2:] if heading else paragraph, language)})
    page = {"lang": language, "reference": ref, "reference_label": LABELS[language]["reference"],
            "subject_label": LABELS[language]["subject"], "place_date": _place_date(language, note.dated),
            "subject": subject, "blocks": blocks, "signature": signer.signature[language].splitlines()}
    plain = text_env.get_template("letter.txt.j2").render(page, wrap=_wrap)
    html = html_env.get_template("letter.html.j2").render(page)
    return RenderedLetter(subject=subject, text=plain + "\n", html=html + "\n", language=language, reference=ref)

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


