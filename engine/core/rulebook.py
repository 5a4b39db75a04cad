"""Load and validate a rulebook (a folder of TOML rule files); errors name the file and the key."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.core import compute, packs
from engine.core.dates import ROUNDINGS, Rounding
from engine.core.status import StatusMode, Vocabulary, load_vocabulary, parse_mode

PRODUCES = ("date", "obligation", "exception", "termination")
# The date functions are the table of engine/core/compute.py, read here by name; the status modes
# are declared by each pack ([[status_mode]] in its rule files).
DATE_FUNCTIONS = tuple(compute.DATE_FUNCTIONS)
EFFECTS = ("lapse_after",)
PERIOD_FROM = ("meeting", "fact_id")
MAX_QUOTE_CHARS = 300

_KEYS: dict[str, str] = {
    # key: what it holds (shown in the error for an unknown key)
    "id": "dotted identifier: pack, article, role",
    "title": "a short readable name for tables, e.g. Initial report (the id stays in JSON and explain)",
    "article": "article and paragraph, e.g. 1(2)(a)",
    "quote": "a short quotation of the operative phrase",
    "quote_fr": "the same phrase in the authentic French text",
    "quote_es": "the same phrase in the authentic Spanish text",
    "quote_zh": "the same phrase in the authentic Chinese text",
    "source_fr": "where the French text was taken from (URL)",
    "source_es": "where the Spanish text was taken from (URL)",
    "source_zh": "where the Chinese text was taken from (URL)",
    "sources": "list of { title, href }",
    "produces": "date | obligation | exception | termination",
    "when": "facts that must all be present",
    "unless": "facts whose presence stops the rule",
    "anchor": "the fact whose date the offset counts from",
    "anchor_field": "the anchor fact's field holding the date (default: date)",
    "offset": "{ years | months | days = N }",
    "on_leap_day": "error | round_down | round_up",
    "on_month_end": "error | round_down | round_up",
    "date_function": "a named function of engine/core/compute.py",
    "args": "arguments of the date function",
    "due_from": "the field of the triggering decision that holds the new date",
    "ceiling": "{ years = N }: the longest an exception may extend",
    "exception_to": "the base rule an exception modifies",
    "alternative_to": "the date rule whose fact this one derives instead, where their when/unless exclude each other",
    "follows": "the obligation this one exists for (dropped once that one is fulfilled)",
    "each": "calendar_year: one derivation per period",
    "first_period": "{ anchor, add_years }",
    "last_period": "facts whose year bounds the last period",
    "period_from": "meeting | fact_id",
    "status": "the status mode ([[status_mode]] in a rule file of the pack) that says how the record fulfils it",
    "fulfilled_by": "the recorded fact kind that fulfils it",
    "decided_by": "the fact kind of the decision that settles it (an extension request: the extension decision)",
    "effect": "lapse_after",
    "reading": "the interpretation adopted, in words",
    "not_modelled": "what the rule deliberately leaves out",
    "order": "where the digest and the overdue list put it among obligations of its status mode (lower first; default 0)",
    "stats": "the section of the progress counts (ccm stats) it is counted in",
}
_FILE_KEYS = ("rulebook", "rule", "calendar", "status_mode")
_CALENDAR_KEYS = ("article", "quote", "reading", "sources", "horizon_years", "series")
_SERIES_KEYS = ("kind", "every_years", "code", "name", "estimated_start", "city")


class RulebookError(ValueError):
    """A rule file is malformed; the message names the file and the key."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Source:
    title: str
    href: str


@dataclass(frozen=True)
class Rule:
    """One rule as written in its file; see README 'Writing a rule' for each key."""

    id: str
    article: str
    quote: str
    produces: str
    when: tuple[str, ...]
    sources: tuple[Source, ...]
    file: str
    unless: tuple[str, ...] = ()
    anchor: str | None = None
    anchor_field: str = "date"
    offset: tuple[str, int] | None = None
    on_leap_day: Rounding = "error"
    on_month_end: Rounding = "error"
    date_function: str | None = None
    args: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    due_from: str | None = None
    ceiling_years: int | None = None
    exception_to: str | None = None
    alternative_to: str | None = None
    follows: str | None = None
    each: str | None = None
    first_period: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    last_period: tuple[str, ...] = ()
    period_from: str | None = None
    status: str | None = None
    fulfilled_by: str | None = None
    decided_by: str | None = None
    effect: str | None = None
    reading: str = ""
    not_modelled: tuple[str, ...] = ()
    #: {language: (quotation in that authentic text, its source)} for fr, es, zh where found.
    quotes: dict[str, tuple[str, str]] = field(default_factory=dict, hash=False, compare=False)
    title: str = ""      # the readable name tables show ("Initial report"); the id stays in JSON
    order: int = 0       # lower first in the digest's and the overdue list's sections
    stats: str | None = None   # the progress counts' section it is counted in

    def quote_in(self, language: str) -> tuple[str, bool]:
        """(the quotation in the language's authentic text, or the English one, True when it is the English one)."""
        if language in self.quotes:
            return self.quotes[language][0], False
        return self.quote, language != "en"

    @property
    def kind(self) -> str:
        """The kind of fact it derives: its own id, or that of the rule it is an alternative to."""
        return self.alternative_to or self.id

    @property
    def name(self) -> str:
        """The readable name (the title, else the id)."""
        return self.title or self.id

    @property
    def is_obligation(self) -> bool:
        return self.produces == "obligation"


@dataclass(frozen=True)
class MeetingSeries:
    """One kind of meeting the calendar rule projects (e.g. a Meeting of States Parties each year)."""

    kind: str
    every_years: int
    code: str                 # a template with {n}: the meeting's number
    name: str                 # a template with {ordinal}: e.g. "{ordinal} Meeting of States Parties"
    estimated_month: int
    estimated_day: int
    city: str = ""


@dataclass(frozen=True)
class CalendarRule:
    """How meetings are projected past the last one the registry knows (see engine/core/meetings.py).

    The series are in order of precedence: a year has one meeting, of the first series due that year.
    """

    article: str
    quote: str
    reading: str
    sources: tuple[Source, ...]
    horizon_years: int
    series: tuple[MeetingSeries, ...]
    file: str


@dataclass(frozen=True)
class Rulebook:
    """The validated rules in dependency order, and a hash that identifies this exact text."""

    rules: tuple[Rule, ...]
    hash: str
    title: str = ""
    calendar: CalendarRule | None = None
    status_modes: dict[str, StatusMode] = field(default_factory=dict, hash=False, compare=False)
    vocabulary: Vocabulary | None = field(default=None, hash=False, compare=False)

    def rule(self, rule_id: str) -> Rule:
        for candidate in self.rules:
            if candidate.id == rule_id:
                return candidate
        raise KeyError(f"no rule with id {rule_id!r} in the rulebook")

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.rules)

    def name_of(self, rule_id: str) -> str:
        """The readable name of a rule (its id when it has no title or is unknown)."""
        for candidate in self.rules:
            if candidate.id == rule_id:
                return candidate.name
        return rule_id

    def exceptions_to(self, rule_id: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.exception_to == rule_id)


def default_directory() -> Path:
    """The rule folder of the default pack (the first of packs.DEFAULT)."""
    return packs.find(packs.DEFAULT[0]).directory


#: The pack's manifest: the rule files and obligations the folder must hold, no more, no less.
MANIFEST = packs.MANIFEST


def _read_manifest(directory: Path, required: bool) -> dict[str, Any] | None:
    path = directory / MANIFEST
    if not path.exists():
        if required:
            raise RulebookError([(f"{directory}: the rule pack's manifest {MANIFEST} is missing; it lists the rule "
                                  "files and obligations the pack must contain")])
        return None
    try:
        pack = tomllib.loads(path.read_text(encoding="utf-8")).get("pack")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise RulebookError([f"{MANIFEST}: not valid TOML: {error}"]) from None
    if not isinstance(pack, dict) or not all(
            isinstance(pack.get(key), list) and all(isinstance(v, str) for v in pack[key]) for key in ("files", "obligations")):
        raise RulebookError([f"{MANIFEST}: needs a [pack] table with files = [...] and obligations = [...] (lists of names)"])
    return pack


def _check_manifest(pack: dict[str, Any], files: list[Path], rules: list[Rule], problems: list[str]) -> None:
    """A file or obligation missing from the folder, or present but not declared, is a problem."""
    present, declared = {p.name for p in files}, set(pack["files"])
    for name in sorted(declared - present):
        problems.append(f"{MANIFEST} lists the rule file {name}, which is missing from the pack")
    for name in sorted(present - declared):
        problems.append(f"{name}: a rule file the pack's {MANIFEST} does not list; add it to files = [...] or remove it")
    produced, expected = {r.id for r in rules if r.is_obligation}, set(pack["obligations"])
    for rule_id in sorted(expected - produced):
        problems.append(f"{MANIFEST} lists the obligation {rule_id}, which no rule file produces")
    for rule_id in sorted(produced - expected):
        problems.append(f"the obligation {rule_id} is not listed in {MANIFEST}; add it to obligations = [...]")


def load_rulebook(directory: Path | None = None) -> Rulebook:
    """Read every ``*.toml`` rule file in ``directory`` (the CCM rulebook by default).

    The folder's manifest ``pack.toml`` (required for the packaged rulebook, checked whenever
    present) lists the rule files and the obligations they must produce: a file or obligation
    missing or not declared is refused.

    Raises :class:`RulebookError` listing every problem found, each naming file and key.
    """
    # A packaged pack, or the default one, must have its manifest; a bare folder (tests, drafts) need not.
    required = not directory or Path(directory).parent == packs.root()
    directory = Path(directory) if directory else default_directory()
    pack = _read_manifest(directory, required=required)
    files = sorted(p for p in directory.glob("*.toml") if p.name not in packs.NOT_RULES)
    problems: list[str] = []
    if not files:
        raise RulebookError([f"{directory}: no rule files (*.toml) found"])
    digest = hashlib.sha256()
    rules: list[Rule] = []
    written_ids: set[str] = set()
    title = ""
    calendar: CalendarRule | None = None
    vocabulary = load_vocabulary()
    modes: dict[str, StatusMode] = {}
    for path in files:
        raw = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + raw + b"\0")
        try:
            document = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            problems.append(f"{path.name}: not valid TOML: {error}")
            continue
        for key in document:
            if key not in _FILE_KEYS:
                problems.append(f"{path.name}: unknown table [{key}]; a rule file holds [rulebook], [calendar], "
                                "[[status_mode]] and [[rule]] only")
        title = title or document.get("rulebook", {}).get("title", "")
        if "calendar" in document:
            if calendar is not None:
                problems.append(f"{path.name}: a second [calendar] table; {calendar.file} already has one")
            else:
                calendar = _parse_calendar(path.name, document["calendar"], problems)
        for entry in document.get("status_mode", []):
            mode, found = parse_mode(path.name, entry, vocabulary.statuses)
            problems.extend(found)
            if mode is not None:
                if mode.name in modes:
                    problems.append(f"{path.name}: status_mode {mode.name} is already declared in {modes[mode.name].file}")
                modes[mode.name] = mode
        for index, entry in enumerate(document.get("rule", []), start=1):
            if isinstance(entry.get("id"), str):
                written_ids.add(entry["id"])
            rule = _parse_rule(path.name, index, entry, problems)
            if rule:
                rules.append(rule)
    _check_references(rules, written_ids, problems)
    for rule in rules:
        if rule.is_obligation and rule.status not in modes:
            problems.append(f"{rule.file}: rule {rule.id}: key 'status' names {rule.status!r}, which no [[status_mode]] "
                            f"of the pack declares (declared: {', '.join(sorted(modes)) or 'none'})")
    if pack is not None:
        _check_manifest(pack, files, rules, problems)
    if problems:
        raise RulebookError(problems)
    ordered = _dependency_order(rules, problems)
    if problems:
        raise RulebookError(problems)
    return Rulebook(rules=tuple(ordered), hash=digest.hexdigest()[:16], title=title, calendar=calendar,
                    status_modes=modes, vocabulary=vocabulary)


def _parse_calendar(file: str, entry: Any, problems: list[str]) -> CalendarRule | None:
    where = f"{file}: [calendar]"
    before = len(problems)
    if not isinstance(entry, dict):
        problems.append(f"{where} must be a table")
        return None
    for key in entry:
        if key not in _CALENDAR_KEYS:
            problems.append(f"{where}: unknown key '{key}' (known: {', '.join(_CALENDAR_KEYS)})")
    for key in ("article", "quote", "reading", "sources", "series"):
        if not entry.get(key):
            problems.append(f"{where}: missing key '{key}'")
    horizon = entry.get("horizon_years", 20)
    if not isinstance(horizon, int) or not 1 <= horizon <= 100:
        problems.append(f"{where}: key 'horizon_years' must be a whole number of years from 1 to 100")
    sources = []
    for source in entry.get("sources", []):
        if not isinstance(source, dict) or not source.get("href") or not source.get("title"):
            problems.append(f"{where}: key 'sources' needs entries with a title and an href")
        else:
            sources.append(Source(source["title"], source["href"]))
    series = []
    for index, item in enumerate(entry.get("series", []), start=1):
        here = f"{where} series #{index}"
        if not isinstance(item, dict):
            problems.append(f"{here} must be a table")
            continue
        for key in item:
            if key not in _SERIES_KEYS:
                problems.append(f"{here}: unknown key '{key}' (known: {', '.join(_SERIES_KEYS)})")
        start = item.get("estimated_start")
        if not isinstance(start, dict) or set(start) != {"month", "day"}:
            problems.append(f"{here}: key 'estimated_start' must be {{ month = M, day = D }}")
            start = {"month": 1, "day": 1}
        if "{n}" not in str(item.get("code", "")):
            problems.append(f"{here}: key 'code' must be a template with {{n}} (the meeting's number)")
        if not isinstance(item.get("every_years"), int) or item["every_years"] < 1:
            problems.append(f"{here}: key 'every_years' must be a whole number of years, at least 1")
        if not item.get("kind") or not item.get("name"):
            problems.append(f"{here}: keys 'kind' and 'name' are needed")
        if len(problems) == before:
            series.append(MeetingSeries(kind=item["kind"], every_years=item["every_years"], code=item["code"],
                                        name=item["name"], estimated_month=start["month"], estimated_day=start["day"],
                                        city=item.get("city", "")))
    if len(problems) > before:
        return None
    return CalendarRule(article=entry["article"], quote=entry["quote"], reading=entry["reading"].strip(),
                        sources=tuple(sources), horizon_years=horizon, series=tuple(series), file=file)


def _parse_rule(file: str, index: int, entry: dict[str, Any], problems: list[str]) -> Rule | None:
    where = f"{file}: rule {entry.get('id', f'#{index}')!s}"
    before = len(problems)

    def need(key: str) -> Any:
        if key not in entry or entry[key] in ("", [], None):
            problems.append(f"{where}: missing key '{key}' ({_KEYS[key]})")
            return None
        return entry[key]

    for key in entry:
        if key not in _KEYS:
            problems.append(f"{where}: unknown key '{key}'")
    rule_id, article, quote, produces = need("id"), need("article"), need("quote"), need("produces")
    when, sources = need("when"), need("sources")
    if quote and len(quote) > MAX_QUOTE_CHARS:
        problems.append(f"{where}: key 'quote' is {len(quote)} characters; quote the operative phrase only (at most {MAX_QUOTE_CHARS})")
    quotes: dict[str, tuple[str, str]] = {}
    for language in ("fr", "es", "zh"):
        text, source = entry.get(f"quote_{language}"), entry.get(f"source_{language}")
        if text and not source:
            problems.append(f"{where}: key 'quote_{language}' needs 'source_{language}' (where the authentic text was taken from)")
        elif source and not text:
            problems.append(f"{where}: key 'source_{language}' without 'quote_{language}'")
        elif text:
            if len(text) > MAX_QUOTE_CHARS:
                problems.append(f"{where}: key 'quote_{language}' is {len(text)} characters (at most {MAX_QUOTE_CHARS})")
            quotes[language] = (str(text), str(source))
    if produces and produces not in PRODUCES:
        problems.append(f"{where}: key 'produces' is {produces!r}; use one of {', '.join(PRODUCES)}")
    parsed_sources: list[Source] = []
    for source in sources or []:
        if not isinstance(source, dict) or not source.get("href") or not source.get("title"):
            problems.append(f"{where}: key 'sources' needs entries with a title and an href")
        else:
            parsed_sources.append(Source(source["title"], source["href"]))
    for key in ("on_leap_day", "on_month_end"):
        if key in entry and entry[key] not in ROUNDINGS:
            problems.append(f"{where}: key '{key}' is {entry[key]!r}; use one of {', '.join(ROUNDINGS)}")
    offset = entry.get("offset")
    offset_pair = None
    if offset is not None:
        if not isinstance(offset, dict) or len(offset) != 1 or next(iter(offset)) not in ("years", "months", "days") \
                or not isinstance(next(iter(offset.values())), int):
            problems.append(f"{where}: key 'offset' must be one of {{ years = N }}, {{ months = N }}, {{ days = N }}")
        else:
            offset_pair = next(iter(offset.items()))
    function = entry.get("date_function")
    if function is not None and function not in DATE_FUNCTIONS:
        problems.append(f"{where}: key 'date_function' names {function!r}, which engine/core/compute.py does not define "
                        f"(known: {', '.join(DATE_FUNCTIONS)})")
    if produces in ("date", "obligation"):
        ways = [k for k in ("offset", "date_function", "due_from") if k in entry]
        if len(ways) != 1:
            problems.append(f"{where}: give exactly one of 'offset', 'date_function' or 'due_from' to say how the date is computed")
        if "offset" in entry and "anchor" not in entry:
            problems.append(f"{where}: key 'offset' needs an 'anchor' to count from")
    if produces == "obligation" and not isinstance(entry.get("status"), str):
        problems.append(f"{where}: key 'status' must name a status mode for an obligation")
    if produces == "exception":
        for key in ("exception_to", "due_from"):
            need(key)
    if produces == "termination" and entry.get("effect") not in EFFECTS:
        problems.append(f"{where}: key 'effect' must be one of {', '.join(EFFECTS)} for a termination rule")
    if function in compute.DATE_FUNCTIONS and ("each" in entry) != (compute.DATE_FUNCTIONS[function].per_period is not None):
        problems.append(f"{where}: key 'date_function' names {function!r}, which gives "
                        + ("one date per period: it needs each = \"calendar_year\"" if "each" not in entry
                           else "one date, not one per period: a rule with 'each' needs a per-period function"))
    if "each" in entry:
        if entry["each"] != "calendar_year":
            problems.append(f"{where}: key 'each' supports 'calendar_year' only")
        if not isinstance(entry.get("first_period"), dict) or "anchor" not in entry["first_period"]:
            problems.append(f"{where}: key 'first_period' must give an anchor for a periodic rule")
        if not entry.get("last_period"):
            problems.append(f"{where}: key 'last_period' must list the facts that bound the last period")
    if "period_from" in entry and entry["period_from"] not in PERIOD_FROM:
        problems.append(f"{where}: key 'period_from' must be one of {', '.join(PERIOD_FROM)}")
    ceiling = entry.get("ceiling")
    if ceiling is not None and (not isinstance(ceiling, dict) or set(ceiling) != {"years"}):
        problems.append(f"{where}: key 'ceiling' must be {{ years = N }}")
    if not isinstance(entry.get("order", 0), int):
        problems.append(f"{where}: key 'order' must be a whole number")
    if "stats" in entry and (not isinstance(entry["stats"], str) or not entry["stats"]):
        problems.append(f"{where}: key 'stats' must name a section of the progress counts")
    if len(problems) > before:
        return None
    return Rule(
        id=rule_id, article=article, quote=quote, produces=produces, when=tuple(when),
        sources=tuple(parsed_sources), file=file, unless=tuple(entry.get("unless", ())),
        anchor=entry.get("anchor"), anchor_field=entry.get("anchor_field", "date"), offset=offset_pair,
        on_leap_day=entry.get("on_leap_day", "error"), on_month_end=entry.get("on_month_end", "error"),
        date_function=function, args=dict(entry.get("args", {})), due_from=entry.get("due_from"),
        ceiling_years=(ceiling or {}).get("years"), exception_to=entry.get("exception_to"),
        alternative_to=entry.get("alternative_to"),
        follows=entry.get("follows"), each=entry.get("each"), first_period=dict(entry.get("first_period", {})),
        last_period=tuple(entry.get("last_period", ())), period_from=entry.get("period_from"),
        status=entry.get("status"), fulfilled_by=entry.get("fulfilled_by"), decided_by=entry.get("decided_by"), effect=entry.get("effect"),
        reading=entry.get("reading", "").strip(), not_modelled=tuple(entry.get("not_modelled", ())),
        quotes=quotes,
        title=str(entry.get("title", "")).strip(),
        order=entry.get("order", 0), stats=entry.get("stats"),
    )


def _check_references(rules: list[Rule], written_ids: set[str], problems: list[str]) -> None:
    """References are checked against every id written, so one broken rule is reported once."""
    ids: dict[str, Rule] = {}
    for rule in rules:
        if rule.id in ids:
            problems.append(f"{rule.file}: rule {rule.id}: key 'id' repeats the id of a rule in {ids[rule.id].file}")
        ids[rule.id] = rule
    for rule in rules:
        where = f"{rule.file}: rule {rule.id}"
        if rule.exception_to and rule.exception_to not in written_ids:
            problems.append(f"{where}: key 'exception_to' points at no rule ({rule.exception_to!r})")
        elif rule.exception_to in ids and ids[rule.exception_to].produces != "obligation":
            problems.append(f"{where}: key 'exception_to' points at {rule.exception_to!r}, which is not an obligation")
        if rule.alternative_to and (rule.alternative_to in ids or rule.alternative_to not in written_ids):
            _check_alternative(rule, ids.get(rule.alternative_to), problems)   # a broken target is reported once
        if rule.follows and rule.follows not in written_ids:
            problems.append(f"{where}: key 'follows' points at no rule ({rule.follows!r})")
        for key, references in (("when", rule.when), ("unless", rule.unless)):
            for reference in references:
                if reference.count(".") >= 2 and reference not in written_ids:
                    problems.append(f"{where}: key '{key}' names {reference!r}, which looks like a rule id but no rule has it")
        if rule.anchor and rule.anchor not in rule.when:
            problems.append(f"{where}: key 'anchor' ({rule.anchor!r}) must be one of the facts in 'when'")


def _check_alternative(rule: Rule, target: Rule | None, problems: list[str]) -> None:
    """An alternative derives its target's fact in the cases the target does not: both are date
    rules, and one's ``unless`` names a fact of the other's ``when``, so that at most one fires."""
    where = f"{rule.file}: rule {rule.id}: key 'alternative_to'"
    if target is None:
        problems.append(f"{where} points at no rule ({rule.alternative_to!r})")
        return
    if rule.produces != "date" or target.produces != "date":
        problems.append(f"{where}: an alternative and its target must both produce a date")
    if target.alternative_to:
        problems.append(f"{where} points at {target.id}, itself an alternative to {target.alternative_to}; name that rule")
    if not (set(rule.when) & set(target.unless) or set(target.when) & set(rule.unless)):
        problems.append(f"{where}: {rule.id} and {target.id} could both fire; the 'unless' of one must name a fact "
                        "of the other's 'when'")


def _dependency_order(rules: list[Rule], problems: list[str]) -> list[Rule]:
    # A rule needs every rule deriving a kind it reads: an alternative derives its target's kind too.
    producers: dict[str, set[str]] = {}
    for rule in rules:
        producers.setdefault(rule.kind, set()).add(rule.id)
    ordered: list[Rule] = []
    placed: set[str] = set()
    pending = list(rules)
    while pending:
        progress = False
        for rule in list(pending):
            needs = {p for w in rule.when for p in producers.get(w, ())} | ({rule.exception_to} if rule.exception_to else set())
            needs.discard(rule.id)
            if needs <= placed:
                ordered.append(rule)
                placed.add(rule.id)
                pending.remove(rule)
                progress = True
        if not progress:
            links = []
            for rule in pending:
                for key, targets in (("when", rule.when), ("exception_to", (rule.exception_to,) if rule.exception_to else ())):
                    for target in targets:
                        if target in {p.id for p in pending} and target != rule.id:
                            links.append(f"{rule.file}: rule {rule.id}: key '{key}' names {target}")
            problems.append("rules depend on each other in a cycle: " + "; ".join(links))
            break
    return ordered
