"""Nothing in engine/ (Python, templates, TOML) names a treaty: no rule id of a pack, article
number, "nine months", "Geneva" or meeting code. The law lives in rules/<pack>/; a second
treaty is a second folder. A hit fails naming file:line."""

from __future__ import annotations

import re
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "engine"
NOTIFIERS = ENGINE.parent / "notifiers"

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


# notifiers/ words its notes from the pack too: its templates and Python name no treaty, and no treaty's
# subject matter (the pack's wording.toml [letters] holds it). The deployment's defaults
# (templates/defaults.toml: signer, obligation ids per letter kind) are configuration, not greped.
TREATY_WORDS = re.compile(
    r"cluster munition|sous-munitions|municiones en racimo|集束|anti-?personnel|antipersonal|地雷"
    r"|Convention on |Convention sur |Convención sobre ", re.IGNORECASE)

# Paths of notifiers/ allowed to name a treaty, each with why.
NOTIFIERS_ALLOWED: dict[str, str] = {
    "notifiers/snapshots.py": "the golden snapshot cases are CCM cases, named by their obligation ids",
    "notifiers/base.py": "a doctest's idempotency key (an obligation id) whose hash it shows",
    "notifiers/notes.py": "a doctest's obligation id, a plain string to the function",
    "notifiers/planner.py": "the idempotency key's example in a docstring",
    "notifiers/cli.py": "the --mission option's help shows a mission's full name as an example",
}


def notifier_hits() -> list[str]:
    found = []
    for path in sorted(NOTIFIERS.rglob("*")):
        if path.suffix not in (".py", ".j2"):
            continue
        relative = path.relative_to(NOTIFIERS.parent).as_posix()
        if relative in NOTIFIERS_ALLOWED:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if FORBIDDEN.search(line) or TREATY_WORDS.search(line):
                found.append(f"{relative}:{number}: {line.strip()}")
    return found


def test_notifiers_name_no_treaty():
    found = notifier_hits()
    assert not found, "treaty wording in notifiers/ (move it into rules/<pack>/wording.toml [letters]):\n" + "\n".join(found)


def test_the_notifiers_grep_catches_treaty_words():
    for text in ("the destruction of stockpiled cluster munitions", "armes à sous-munitions", "《集束弹药公约》",
                 "anti-personnel mines", 'if i.art3 else "4"', 'startswith("ccm.art3.")'):
        assert FORBIDDEN.search(text) or TREATY_WORDS.search(text), text
    for text in ("{{ convention.name }}", "{{ i.deadline.task }}", "the Convention requires"):
        assert not (FORBIDDEN.search(text) or TREATY_WORDS.search(text)), text


def test_every_allowed_notifiers_path_exists_and_still_needs_it():
    for relative in NOTIFIERS_ALLOWED:
        path = NOTIFIERS.parent / relative
        assert path.exists(), relative
        assert any(FORBIDDEN.search(line) or TREATY_WORDS.search(line)
                   for line in path.read_text(encoding="utf-8").splitlines()), \
            f"{relative} no longer names a treaty: remove it from NOTIFIERS_ALLOWED"
