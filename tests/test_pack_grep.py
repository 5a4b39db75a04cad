"""Nothing in engine/ (Python, templates, TOML) names a treaty: no rule id of a pack, article
number, "nine months", "Geneva" or meeting code. The law lives in rules/<pack>/; a second
treaty is a second folder. A hit fails naming file:line."""

from __future__ import annotations

import re
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "engine"

FORBIDDEN = re.compile(
    r"\bccm\.(?!sqlite\b|<name>)[a-z]"          # a CCM rule id (ccm.sqlite and the ccm.<name> loggers are the tool's own name)
    r"|\bArt(?:icle)?s?\.? ?\d"                 # an article number: Art. 3, Article 4
    r"|\barticle_\d|\bart\d"                    # article_3, art4 (keys and kinds)
    r"|nine months|Geneva|Genève|Ginebra|日内瓦"
    r"|\b\d*(?:MSP|RC)\b",                      # a meeting code or kind: 9MSP, 3RC, MSP
    re.IGNORECASE)

# Paths allowed to name a treaty, each with why: none. Keep it empty; a path added here needs a
# reason the treaty's knowledge cannot be pack data.
ALLOWED: dict[str, str] = {}


def hits() -> list[str]:
    found = []
    for path in sorted(ENGINE.rglob("*")):
        if path.suffix not in (".py", ".j2", ".toml") or "migrations" in path.parts:
            continue
        relative = path.relative_to(ENGINE.parent).as_posix()
        if relative in ALLOWED:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if FORBIDDEN.search(line):
                found.append(f"{relative}:{number}: {line.strip()}")
    return found


def test_engine_names_no_treaty():
    found = hits()
    assert not found, "treaty wording in engine/ (move it into rules/<pack>/):\n" + "\n".join(found)


def test_the_grep_catches_what_it_is_for():
    for text in ('o.id == "ccm.art7.initial_report"', "CCM Art. 4", "no later than nine months before",
                 "the 9MSP", 'kinds = ("MSP", "RC")', "at Geneva", '"article_3"'):
        assert FORBIDDEN.search(text), text
    for text in ("sqlite:///var/ccm.sqlite", 'logger ``ccm.<name>``', "artifact", "ARCHIVE"):
        assert not FORBIDDEN.search(text), text


def test_every_allowed_path_exists_and_still_needs_it():
    for relative in ALLOWED:
        path = ENGINE.parent / relative
        assert path.exists(), relative
        assert any(FORBIDDEN.search(line) for line in path.read_text(encoding="utf-8").splitlines()), \
            f"{relative} no longer names a treaty: remove it from ALLOWED"
