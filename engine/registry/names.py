"""The United Nations' official names of States (UNTERM) in English, French, Spanish and Chinese, from rules/common/un_names.csv.

Diplomatic text (letters, page headings, calendars) names a State as the United Nations does: the
short name with its article ("le Liban", "el Líbano", "the Congo"), or the formal name where the
short one carries a parenthesis ("Bolivia (Plurinational State of)" becomes "the Plurinational
State of Bolivia"). The French and Spanish "de" contracts with the stored article ("du Liban",
"de l'Iraq", "del Líbano", "de los Países Bajos"), never by guessing from the spelling. CLDR names
(Babel) remain for non-diplomatic text only.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from engine.core import wording

LANGUAGES = ("en", "fr", "es", "zh")
COLUMNS = ("iso3", "en_short", "en_article", "en_formal", "fr_short", "fr_article", "fr_formal", "es_short",
           "es_article", "es_formal", "zh_short", "zh_formal", "observer", "source", "notes")
ARTICLES = {"en": ("", "the"), "fr": ("", "le", "la", "l'", "les"), "es": ("", "el", "la", "los", "las")}
#: "de" + article: French and Spanish contractions.
_OF = {"fr": {"le": "du ", "la": "de la ", "l'": "de l'", "les": "des "},
       "es": {"el": "del ", "la": "de la ", "los": "de los ", "las": "de las "}}


class NamesError(ValueError):
    """rules/common/un_names.csv is malformed; the message names the line and column."""


@dataclass(frozen=True)
class OfficialName:
    """One State's names in one language: the short name, its article, the formal name (with its article)."""

    iso3: str
    language: str
    short: str
    article: str
    formal: str
    observer: bool = False

    @property
    def running(self) -> str:
        """The name in running text, with its article: "le Liban", "the Congo", "l'État plurinational de Bolivie".

        >>> official_name("LBN", "fr").running, official_name("COG", "en").running, official_name("BOL", "es").running
        ('le Liban', 'the Congo', 'el Estado Plurinacional de Bolivia')
        """
        # A short name with a qualifier in parentheses ("Bolivia (Plurinational State of)", "刚果（布）") is a list
        # form, not a name for running text.
        if "(" in self.short or "（" in self.short:
            return self.formal
        if self.language == "zh" or not self.article:
            return self.short
        return f"{self.article}{self.short}" if self.article.endswith("'") else f"{self.article} {self.short}"

    @property
    def of(self) -> str:
        """The name after "of" / "de": "du Liban", "de l'Iraq", "de la République démocratique populaire lao",
        "del Líbano", "of the Holy See".

        >>> [official_name(c, "fr").of for c in ("LBN", "IRQ", "LAO", "HTI", "CUB", "NLD")]
        ['du Liban', "de l'Iraq", 'de la République démocratique populaire lao', "d'Haïti", 'de Cuba', 'du Royaume des Pays-Bas']
        >>> [official_name(c, "es").of for c in ("LBN", "VAT", "PSE", "CHL", "COM")]
        ['del Líbano', 'de la Santa Sede', 'del Estado de Palestina', 'de Chile', 'de las Comoras']
        """
        text = self.running
        if self.language == "en":
            return f"of {text}"
        if self.language == "zh":
            return text
        article, rest = _split_article(text, self.language)
        if article:
            return _OF[self.language][article] + rest
        if self.language == "fr" and rest[:1].lower() in "aeiouyéèêîôâh":
            return f"d'{rest}"
        return f"de {rest}"


def _split_article(text: str, language: str) -> tuple[str, str]:
    for article in sorted(_OF[language], key=len, reverse=True):
        if article.endswith("'") and text.startswith(article):
            return article, text[len(article):]
        if text.startswith(article + " "):
            return article, text[len(article) + 1:]
    return "", text


@lru_cache(maxsize=1)
def load_names() -> dict[str, dict[str, OfficialName]]:
    """{iso3: {language: OfficialName}}. Raises NamesError naming the line and column of a bad row."""
    path = resources.files("rules") / "common" / "un_names.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise NamesError(f"rules/common/un_names.csv: the header must be {','.join(COLUMNS)}")
        names: dict[str, dict[str, OfficialName]] = {}
        for line, row in enumerate(reader, start=2):
            where = f"rules/common/un_names.csv line {line}"
            iso3 = row["iso3"]
            if iso3 in names:
                raise NamesError(f"{where}: {iso3} appears twice")
            for column in ("en_short", "en_formal", "fr_short", "fr_formal", "es_short", "es_formal", "zh_short",
                           "zh_formal", "source"):
                if not row[column].strip():
                    raise NamesError(f"{where}: {column} is empty")
            for language, allowed in ARTICLES.items():
                if row[f"{language}_article"] not in allowed:
                    raise NamesError(f"{where}: {language}_article {row[f'{language}_article']!r} is not one of "
                                     f"{', '.join(repr(a) for a in allowed)}")
            observer = row["observer"] == "yes"
            names[iso3] = {language: OfficialName(iso3, language, row[f"{language}_short"],
                                                  row.get(f"{language}_article", "") or "", row[f"{language}_formal"],
                                                  observer)
                           for language in LANGUAGES}
    return names


def official_name(iso3: str, language: str) -> OfficialName:
    """The UN name of the State in the language. Raises KeyError for a State the file lacks."""
    return load_names()[iso3][language]


def has_official_name(iso3: str) -> bool:
    return iso3 in load_names()


def permanent_mission(iso3: str, language: str, pack: Path | None = None) -> str:
    """The addressee of a note (without its leading article): the State's permanent mission, or permanent
    observer mission, to the United Nations office the pack's wording names ([missions] office).

    >>> permanent_mission("LAO", "fr").startswith("Mission permanente de la République démocratique populaire lao auprès de ")
    True
    >>> permanent_mission("PSE", "en").startswith("Permanent Observer Mission of the State of Palestine to the United Nations")
    True
    >>> permanent_mission("VAT", "zh").startswith("罗马教廷常驻"), permanent_mission("VAT", "zh").endswith("观察员代表团")
    (True, True)
    """
    name = official_name(iso3, language)
    office = wording.mission_office(language, pack)
    if language == "zh":
        return f"{name.running}{office}{'观察员' if name.observer else ''}代表团"
    kind = {"en": ("Permanent Mission", "Permanent Observer Mission"),
            "fr": ("Mission permanente", "Mission permanente d'observation"),
            "es": ("Misión Permanente", "Misión Permanente de Observación")}[language][name.observer]
    return f"{kind} {name.of} {office}"


def display_name(iso3: str, language: str, fallback: str) -> str:
    """The UN short name for a heading or a calendar ("Liban", "État de Palestine", "教廷"); ``fallback`` (e.g. the
    CLDR name) for a party the UN list lacks.

    >>> display_name("VAT", "fr", "Cité du Vatican"), display_name("XXX", "fr", "Fallback")
    ('Saint-Siège', 'Fallback')
    """
    return official_name(iso3, language).short if has_official_name(iso3) else fallback
