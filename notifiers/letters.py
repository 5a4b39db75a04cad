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
from pathlib import Path
from typing import Any

from babel.dates import format_date
from jinja2 import Environment, PackageLoader, StrictUndefined

from engine.core import packs, wording
from engine.registry import names

LOCALES = {"en": "en_GB", "fr": "fr", "es": "es", "zh": "zh"}
LABELS = {
    "en": {"reference": "Ref.", "subject": "Subject: "},
    "fr": {"reference": "Réf.", "subject": "Objet\u00a0: "},
    "es": {"reference": "Ref.", "subject": "Asunto: "},
    "zh": {"reference": "编号", "subject": "事由："},
}

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


def under_article(article: str, language: str, pack: Path | None = None) -> str:
    """The provision as a phrase ("párrafo 1 del artículo 7"), in the citation style of the pack's
    wording ([letters.citation]; the default pack's when None).

    >>> under_article("7(1)", "es"), under_article("4(1)(a)", "zh")
    ('párrafo 1 del artículo 7', '第四条第1款(a)项')
    """
    return wording.provision(article, language, pack)[0]


def meeting_name(code: str, language: str, pack: Path | None = None) -> str:
    """The meeting a code names, in the language, as the pack's wording.toml names it (its code
    when the pack names no such meeting)."""
    return wording.meeting_name(code, language, pack)


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


def state_names(iso3: str, registry, language: str, pack: Path | None = None) -> tuple[str, str, str]:
    """(the State's name in running text, the same after "of"/"de", its mission): the UN names (engine.registry.names);
    for a party the UN list lacks, CLDR's name without article (a fallback, never for a real State Party)."""
    if names.has_official_name(iso3):
        official = names.official_name(iso3, language)
        return official.running, official.of, names.permanent_mission(iso3, language, pack)
    participant = registry.participants.get(iso3)
    country = participant.localized_name(LOCALES[language]) if participant else iso3
    of = {"en": f"of {country}", "fr": f"de {country}", "es": f"de {country}", "zh": country}[language]
    office = wording.mission_office(language, pack)
    mission = {"en": f"Permanent Mission {of} {office}", "fr": f"Mission permanente {of} {office}",
               "es": f"Misión Permanente {of} {office}", "zh": f"{country}{office}代表团"}[language]
    return country, of, mission


def pack_of(note) -> Path:
    """The folder of the pack a note's obligations belong to (their ids start with the pack's name),
    whose wording the note takes."""
    names = {item.planned.obligation_id.partition(".")[0] for item in note.items}
    if len(names) != 1:
        raise ValueError(f"a note's items come from one rule pack, not {sorted(names)}")
    return packs.find(names.pop()).directory


def _article_number(article: str) -> str:
    match = re.match(r"\d+", article)
    return match.group() if match else article


def _deadline(rule, rulebook, language: str, pack: Path) -> dict[str, Any] | None:
    """The pack's phrases for the deadline an item is about: a deadline's own, or the one a request
    to extend it follows; None for other items."""
    deadline_id = rule.id if rule.follows is None else rule.follows
    for entry in wording.letters(pack).get("deadlines", []):
        if deadline_id in entry.get("obligations", ()):
            phrases = {key: wording.letters_entry(entry, key, language, "[letters.deadlines]", pack)
                       for key in ("title", "task", "own")}
            deadline_rule = rulebook.rule(deadline_id)
            cited = wording.provision(_article_number(deadline_rule.article), language, pack)
            return {**phrases, "extensible": bool(entry.get("extensible", False)),
                    "article": cited[0], "of_article": cited[1]}
    raise wording.WordingError(f"{pack.name}/{packs.WORDING}: no [[letters.deadlines]] entry lists {deadline_id}")


def _request(obligation_id: str, language: str, pack: Path) -> dict[str, str] | None:
    """The pack's own wording of a request whose timing is not the treaty's ([[letters.requests]]: the
    APMBC's comes from a decision of the States Parties): how an item cites it, how a subject names its
    provision, and the legal basis ({quote} the rule's quotation); None when the pack gives none."""
    for entry in wording.letters(pack).get("requests", []):
        if obligation_id in entry.get("obligations", ()):
            return {key: wording.letters_entry(entry, key, language, "[letters.requests]", pack)
                    for key in ("cited", "provision", "of", "basis")}
    return None


def _item_context(item, dated: date, registry, rulebook, language: str, pack: Path) -> dict[str, Any]:
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
    provision, of_provision = wording.provision(rule.article, language, pack)
    base_provision, of_base_provision = wording.provision(base.article, language, pack) if base else ("", "")
    own = rulebook.rule(planned.obligation_id)
    request = _request(planned.obligation_id, language, pack) if planned.kind == "extension_request" else None
    if request:      # cited as the pack words it, not from the rule's `article` (which may name a decision)
        provision, of_provision = request["cited"], request["of"]
    context = {
        "kind": planned.kind, "wording": item.wording, "period": planned.period,
        "obligation_id": planned.obligation_id, "rule_id": rule.id, "base_id": base.id if base else "",
        "deadline": (_deadline(own, rulebook, language, pack)
                     if planned.kind in ("deadline", "extension_request") else None),
        "article": under_article(_article_number(own.article), language, pack),
        "due": days(planned.due), "estimated": item.estimated,
        "provision": provision, "of_provision": of_provision,
        "extended": base is not None, "base_provision": base_provision,
        # the provision that sets the obligation (a deadline's base rule, not the extension that moved it)
        "subject_provision": base_provision if base and planned.kind == "deadline" else provision,
        "of_subject_provision": of_base_provision if base and planned.kind == "deadline" else of_provision,
        "of_base_provision": of_base_provision,
        "quote": quote, "quote_english": quote_english, "base_quote": base_quote, "base_english": base_english,
        "meeting": meeting_name(meeting_code, language, pack) if meeting_code else "",
        "meeting_start": days(meeting_start) if meeting_start else "",
        "meeting_past": bool(meeting_start and meeting_start <= dated),
        "earlier": ({"reference": item.earlier.reference, "date": days(item.earlier.sent_on)}
                    if item.earlier else None),
        "request_basis": request["basis"] if request else "",
    }
    if request:
        context["subject_provision"], context["of_subject_provision"] = request["provision"], request["of"]
    return context


def note_context(note, registry, rulebook, language: str, signer, ref: str, mission: str | None = None) -> dict[str, Any]:
    """The template variables of one consolidated note (notifiers.notes.Note); what names the treaty
    comes from the wording of the pack the note's obligations belong to."""
    pack = pack_of(note)
    country, country_of, default_mission = state_names(note.party, registry, language, pack)
    groups = []
    for article, items in note.groups():
        contexts = [_item_context(item, note.dated, registry, rulebook, language, pack) for item in items]
        bases, seen = [], set()
        for c in contexts:
            if (c["kind"], c["rule_id"], c["base_id"]) not in seen:
                seen.add((c["kind"], c["rule_id"], c["base_id"]))
                bases.append(c)
        groups.append({"article": article, "heading": wording.article_heading(article, language, pack),
                       "entries": contexts, "bases": bases})
    every = [c for g in groups for c in g["entries"]]
    table = wording.letters(pack)
    phrase = lambda key, entry: wording.letters_entry(table.get(key, {}), entry, language, f"letters.{key}", pack)  # noqa: E731
    kinds = {c["kind"] for c in every}
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
        "kinds": sorted(kinds),
        "convention": {"name": phrase("convention", "name"), "of": phrase("convention", "of")},
        # a deadline the Convention lets extend: the note recalls when a request is due
        "extension_timing": (phrase("extension", "timing")
                             if any(c["deadline"]["extensible"] for c in every if c["kind"] == "deadline") else ""),
        "extension_contents": phrase("extension", "contents") if "extension_request" in kinds else "",
        "retention": ({"title": phrase("retention_report", "title"), "basis": phrase("retention_report", "basis")}
                      if "retention_report" in kinds else {}),
        "reports": reports, "reports_late": [c for c in reports if c["wording"] != "forthcoming"],
        "follows": ({"reference": note.follows.reference, "date": format_day(note.follows.sent_on, language)}
                    if note.follows else None),
    }

def _mid(text: str, language: str) -> str:
    """The sender's short name inside a sentence: "the Implementation Support Unit"."""
    return text[:1].lower() + text[1:] if language in ("en", "fr", "es") else text


def _paragraphs(text: str) -> list[str]:
    """Blank lines separate paragraphs; inside one, line breaks join with a space (none in Chinese)."""
    return [re.sub(r"\s*\n\s*", "" if _cjk(p) else " ", p.strip()) for p in re.split(r"\n\s*\n", text.strip())
            if p.strip()]


def _cjk(text: str) -> bool:
    return _CJK.search(text) is not None


_CJK = re.compile("[\u4e00-\u9fff]")       # one regex scan, not a Python loop over every character


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
            "subject_label": LABELS[language]["subject"], "place_date": _place_date(language, note.dated, pack_of(note)),
            "subject": subject, "blocks": blocks, "signature": signer.signature[language].splitlines()}
    plain = text_env.get_template("letter.txt.j2").render(page, wrap=_wrap)
    html = html_env.get_template("letter.html.j2").render(page)
    return RenderedLetter(subject=subject, text=plain + "\n", html=html + "\n", language=language, reference=ref)

def _typography(text: str, language: str) -> str:
    """French spacing: a no-break space inside guillemets and before a colon or semicolon."""
    if language != "fr":
        return text
    return text.replace("« ", "«\u00a0").replace(" »", "\u00a0»").replace(" : ", "\u00a0: ").replace(" ; ", "\u00a0; ")


def _place_date(language: str, day: date, pack: Path) -> str:
    """Where and when a note is dated: the seat of the pack's Implementation Support Unit."""
    place = wording.letters_entry(wording.letters(pack), "place", language, "letters", pack)
    return f"{place}{'，' if language == 'zh' else ', '}{format_day(day, language)}"


def _wrap(paragraph: str, width: int = 76) -> str:
    """``textwrap.fill(paragraph, width, break_long_words=False, break_on_hyphens=False)``, the
    same lines; Chinese is never wrapped. When single spaces separate the words (every paragraph
    the templates make), each line ends at the last space that fits, found by ``str.rfind``: the
    same greedy choice as textwrap's, without its loop over every word."""
    if _cjk(paragraph):
        return paragraph
    if ("  " in paragraph or paragraph[:1] == " " or paragraph[-1:] == " "
            or (_OTHER_SPACE.search(paragraph) and _NOT_SIMPLE.search(paragraph))):
        return textwrap.fill(paragraph, width=width, break_long_words=False, break_on_hyphens=False)
    lines, start, end_of_text = [], 0, len(paragraph)
    while end_of_text - start > width:
        end = paragraph.rfind(" ", start, start + width + 1)
        if end < 0:                      # a word longer than the line: alone on its line, never broken
            end = paragraph.find(" ", start)
            if end < 0:
                break
        lines.append(paragraph[start:end])
        start = end + 1
    lines.append(paragraph[start:])
    return "\n".join(lines)


# What textwrap treats otherwise than single spaces between words: runs of spaces (kept inside a
# line) and a space at either end (tested above), other ASCII whitespace (replaced by spaces), and a
# word that is all Unicode whitespace (a lone no-break space), which textwrap drops at a line's ends.
# _OTHER_SPACE, a plain scan, rules out the slower pattern for most paragraphs.
_OTHER_SPACE = re.compile(r"[^\S ]")
_NOT_SIMPLE = re.compile(r"[\t\n\x0b\x0c\r]|(?:^| )[^\S ]+(?: |$)")


def computing_rules(rulebook, obligation) -> tuple[Any, Any | None]:
    """(the rule that computed the due date, the base rule it extended or None).

    The obligation's own rule, unless its date moved (``due`` differs from ``original_due``): then
    the exception to it that appears in the obligation's basis (the pack's extension rule).
    """
    rule = rulebook.rule(obligation.obligation_id)
    if obligation.due != obligation.original_due:
        for exception in rulebook.exceptions_to(rule.id):
            if exception.id in obligation.basis or not obligation.basis:
                return exception, rule
    return rule, None


