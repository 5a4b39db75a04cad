"""A pack's wording (rules/<pack>/wording.toml): meeting names, the citation style, and the
messages of pages and letters that belong to the treaty, so that engine/ and notifiers/ name no
treaty of their own."""

from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from engine.core import packs

_ZH_DIGITS = "零一二三四五六七八九"


class WordingError(ValueError):
    """A pack's wording.toml is malformed; the message names the file and the table."""


@lru_cache(maxsize=8)
def load(directory: Path | None = None) -> dict[str, Any]:
    """The parsed wording of the pack in ``directory`` (the default pack's when None)."""
    folder = Path(directory) if directory is not None else packs.find(packs.DEFAULT[0]).directory
    path = folder / packs.WORDING
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WordingError(f"{folder.name}/{packs.WORDING} is missing; a pack names its meetings and citations there") from None
    except tomllib.TOMLDecodeError as error:
        raise WordingError(f"{folder.name}/{packs.WORDING}: not valid TOML: {error}") from None
    for table in ("meetings", "citation", "messages"):
        if not isinstance(data.get(table), dict):
            raise WordingError(f"{folder.name}/{packs.WORDING}: the [{table}] table is missing")
    return data


def messages(directory: Path | None = None) -> dict[str, dict[str, str]]:
    """The pack's messages by language."""
    return load(directory)["messages"]


def citation(kind: str, article: str, directory: Path | None = None) -> str:
    """A provision cited in the pack's style for ``kind`` (e.g. calendar)."""
    return str(load(directory)["citation"][kind]).format(article=article)


def mission_office(language: str, directory: Path | None = None) -> str:
    """The United Nations office a State's permanent mission is accredited to, as a note's
    addressee names it (the pack's [missions] office, by language)."""
    offices = load(directory).get("missions", {}).get("office", {})
    if language not in offices:
        folder = Path(directory).name if directory is not None else packs.DEFAULT[0]
        raise WordingError(f"{folder}/{packs.WORDING}: [missions.office] has no {language!r} entry")
    return str(offices[language])


def zh_number(n: int) -> str:
    """Chinese numerals up to 99.

    >>> zh_number(7), zh_number(17), zh_number(20)
    ('七', '十七', '二十')
    """
    if n < 10:
        return _ZH_DIGITS[n]
    tens, units = divmod(n, 10)
    return ("" if tens == 1 else _ZH_DIGITS[tens]) + "十" + ("" if units == 0 else _ZH_DIGITS[units])


def meeting_name(code: str, language: str, directory: Path | None = None) -> str:
    """The meeting a code names, in the language, from the pack's [meetings] table; the code
    itself when no kind's pattern matches or its number has no ordinal word."""
    table = load(directory)["meetings"]
    for kind in table.get("kinds", {}).values():
        pattern = "^" + re.escape(kind["code"]).replace(re.escape("{n}"), r"(\d+)")
        match = re.match(pattern, code)
        if not match:
            continue
        n = int(match.group(1))
        words = table.get("ordinals", {}).get(language, [])
        if language != "zh" and not 1 <= n <= len(words) or language == "zh" and n > 99:
            return code
        return kind[language].format(ordinal=words[n - 1] if language != "zh" else "", n_zh=zh_number(n) if n < 100 else n)
    return code


# A provision as rules write it: "4(1)(a)", "3(3)-(5)", "7": the article, a paragraph or a range of
# them, a subparagraph's letter. How each shape is worded is the pack's ([letters.citation]).
_PROVISION = re.compile(r"^(\d+)(?:\((\d+)\)(?:-\((\d+)\))?)?(?:\(([a-z])\))?$")


def letters(directory: Path | None = None) -> dict[str, Any]:
    """The pack's [letters] table: the place notes are dated from, the Convention's name, the
    deadlines' phrases, the citation style; raises WordingError when the table is missing."""
    table = load(directory).get("letters")
    if not isinstance(table, dict):
        folder = Path(directory).name if directory is not None else packs.DEFAULT[0]
        raise WordingError(f"{folder}/{packs.WORDING}: the [letters] table is missing; notes take their wording from it")
    return table


def letters_entry(table: dict[str, Any], key: str, language: str, where: str, directory: Path | None = None) -> str:
    """``table[key][language]``, or a WordingError naming the pack's table and key."""
    entry = table.get(key)
    if not isinstance(entry, dict) or not isinstance(entry.get(language), str):
        folder = Path(directory).name if directory is not None else packs.DEFAULT[0]
        raise WordingError(f"{folder}/{packs.WORDING}: [{where}] has no {key}.{language}")
    return entry[language]


def provision(article: str, language: str, directory: Path | None = None) -> tuple[str, str]:
    """(the provision as the pack's letters cite it, the same after "of"): the rule's ``article``
    read as article, paragraph(s) and subparagraph, worded by [letters.citation.<language>].

    >>> provision("3(3)-(5)", "es"), provision("7(1)", "es")[1], provision("4(1)(a)", "zh")[0]
    (('párrafos 3 a 5 del artículo 3', 'de los párrafos 3 a 5 del artículo 3'), 'del párrafo 1 del artículo 7', '第四条第1款(a)项')
    """
    styles = letters(directory).get("citation", {})
    style = styles.get(language)
    if not isinstance(style, dict) or not isinstance(style.get("of"), dict):
        folder = Path(directory).name if directory is not None else packs.DEFAULT[0]
        raise WordingError(f"{folder}/{packs.WORDING}: [letters.citation.{language}] (with its .of forms) is missing")
    match = _PROVISION.match(article)
    if match:
        art, paragraph, to, sub = match.groups()
        shape = ("paragraphs" if to else "paragraph" if paragraph else "article") + ("_sub" if sub else "")
        values = {"article": art, "article_zh": zh_number(int(art)) if int(art) < 100 else art,
                  "paragraph": paragraph, "to": to, "sub": sub}
    else:
        shape, values = "other", {"raw": article}
    cited = style[shape].format(**values)
    return cited, style["of"][shape].format(cited=cited)


def article_heading(article: int, language: str, directory: Path | None = None) -> str:
    """A note's section title for an article ("Artículo 7", "第七条"), in the pack's citation style."""
    style = letters(directory).get("citation", {}).get(language, {})
    return str(style["heading"]).format(article=article, article_zh=zh_number(article) if article < 100 else article)
