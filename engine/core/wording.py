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
    found: dict[str, dict[str, str]] = load(directory)["messages"]    # checked by load()
    return found


def citation(kind: str, article: str, directory: Path | None = None) -> str:
    """A provision cited in the pack's style for ``kind`` (e.g. calendar)."""
    return str(load(directory)["citation"][kind]).format(article=article)


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
        return str(kind[language]).format(ordinal=words[n - 1] if language != "zh" else "", n_zh=zh_number(n) if n < 100 else n)
    return code
