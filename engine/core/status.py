"""Status semantics as data: the status vocabulary and the status modes the rule files declare.

A status mode (``[[status_mode]]`` in a rule file) says, for every obligation whose rule names
it in ``status``, which facts can speak of the obligation (its *roles*) and an ordered list of
*cases*: the first case whose conditions hold gives the status. A condition is a role that must
be present (``need``) and comparisons (``test``) between the obligation, the evaluation date
and the role facts. Both backends evaluate the same conditions, independently: the reference
interpreter below, in Python; the durable_rules backend as compiled patterns over ordinal dates.
What is shared is only the data preparation (:func:`subjects`) and the wording of a verdict
(:func:`verdict`), once the backend has said which case holds and with which facts.

Grammar of a test: ``LEFT OP RIGHT`` with OP one of ``< <= > >=`` (dates, compared as
ordinals), ``== !=`` (values), or ``LEFT is set`` / ``LEFT is none``. An operand is ``due``,
``deadline``, ``as_of``, ``record_complete``, ``<role>.<field>``, ``obligation.<field>``, a
quoted literal (``'day'``), ``true`` or ``false``; a field naming a meeting by its code can be
followed by ``.start``, ``.end`` or ``.status`` (that meeting's).
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from itertools import product
from pathlib import Path
from typing import Any

from engine.core.dates import fmt

Fact = dict[str, Any]

DATE_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
VALUE_OPS = {"==": "", "!=": "$neq"}
FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
#: Operands that are not a fact's field: the obligation's own dates and the evaluation's.
SCALARS = {"due": ("obligation", "date"), "deadline": ("obligation", "deadline"),
           "as_of": ("as_of", "date"), "record_complete": ("record", "date")}
MEETING_PARTS = ("start", "end", "status")
PERIODS = ("same", "same_or_none", "any")
PICKS = ("min", "max")
_ROLE_KEYS = ("kind", "period", "pick")
_CASE_KEYS = ("status", "need", "test", "evidence", "received", "received_by", "reason", "note")
_MODE_KEYS = ("name", "reading", "roles", "case", "then")
_THEN_KEYS = ("when", "followed", "becomes", "reason")
_KINDS = ("fulfilled_by", "decided_by", "follows.fulfilled_by")
_TEST = re.compile(r"^\s*(\S+)\s+(<=|>=|==|!=|<|>|is)\s+(\S+)\s*$")


class StatusError(ValueError):
    """A status declaration is malformed (the loader collects these as problems)."""


@dataclass(frozen=True)
class Operand:
    """Where a value comes from: a pattern (obligation, as_of, record, or a role) and a field path."""

    source: str                  # "obligation", "as_of", "record", a role name, or "" for a literal
    path: tuple[str, ...] = ()   # the field, then an optional meeting part
    literal: Any = None

    @property
    def key(self) -> str:
        """The field's name in a durable_rules fact (no dots: the engine would read them as a path)."""
        return "__".join(self.path)


@dataclass(frozen=True)
class Test:
    left: Operand
    op: str                      # < <= > >= == != set none
    right: Operand | None = None
    text: str = ""

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(o.source for o in (self.left, self.right) if o is not None and o.source)


@dataclass(frozen=True)
class Role:
    name: str
    kind: str                    # a template over the rule's keys, e.g. "observation:{fulfilled_by}"
    period: str = "any"
    pick: tuple[str, str] = ("min", "date")


@dataclass(frozen=True)
class Case:
    status: str
    need: tuple[str, ...] = ()
    tests: tuple[Test, ...] = ()
    evidence: str | None = None
    received: Operand | None = None
    received_by: Operand | None = None
    reason: str = ""
    note: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    note_tests: tuple[Test, ...] = ()


@dataclass(frozen=True)
class Then:
    """A status one obligation takes because of another's: ``followed`` obligations of one in
    status ``when`` that stand in status ``becomes``'s predecessor become ``becomes``."""

    when: str
    followed: str
    becomes: str
    reason: str


@dataclass(frozen=True)
class StatusMode:
    name: str
    reading: str
    roles: dict[str, Role]
    cases: tuple[Case, ...]
    file: str
    then: tuple[Then, ...] = ()


@dataclass(frozen=True)
class Vocabulary:
    """The statuses, in display order, and what each means for the check, stats and lapses."""

    statuses: tuple[str, ...]
    meaning: dict[str, str]
    groups: dict[str, frozenset[str]]

    def group(self, name: str) -> frozenset[str]:
        return self.groups.get(name, frozenset())


# ----------------------------------------------------------------------------- loading

def vocabulary_path() -> Path:
    return Path(str(resources.files("rules") / "common" / "statuses.toml"))


def load_vocabulary(path: Path | None = None) -> Vocabulary:
    document = tomllib.loads((path or vocabulary_path()).read_text(encoding="utf-8"))
    statuses: list[str] = []
    meaning: dict[str, str] = {}
    groups: dict[str, set[str]] = {}
    for entry in document.get("status", []):
        statuses.append(entry["name"])
        meaning[entry["name"]] = entry.get("meaning", "")
        for group in entry.get("groups", []):
            groups.setdefault(group, set()).add(entry["name"])
    return Vocabulary(tuple(statuses), meaning, {k: frozenset(v) for k, v in groups.items()})


def _operand(text: str, roles: Iterable[str]) -> Operand:
    if text in SCALARS:
        source, name = SCALARS[text]
        return Operand(source, (name,))
    if text in ("true", "false"):
        return Operand("", literal=text == "true")
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return Operand("", literal=text[1:-1])
    head, _, rest = text.partition(".")
    if head != "obligation" and head not in roles:
        raise StatusError(f"{text!r} is neither due, deadline, as_of, record_complete, obligation.FIELD nor a role's field")
    path = tuple(rest.split(".")) if rest else ()
    if not path or len(path) > 2 or (len(path) == 2 and path[1] not in MEETING_PARTS):
        raise StatusError(f"{text!r}: write ROLE.FIELD, or ROLE.FIELD.start|end|status for the meeting a field names")
    return Operand(head, path)


def parse_test(text: str, roles: Iterable[str]) -> Test:
    match = _TEST.match(text)
    if not match:
        raise StatusError(f"test {text!r}: write LEFT OP RIGHT (OP: < <= > >= == !=) or LEFT is set|none")
    left, op, right = match.groups()
    roles = list(roles)
    if op == "is":
        if right not in ("set", "none"):
            raise StatusError(f"test {text!r}: 'is' takes set or none")
        return Test(_operand(left, roles), right, None, text)
    left_operand, right_operand = _operand(left, roles), _operand(right, roles)
    if op in DATE_OPS and (not left_operand.source or not right_operand.source):
        raise StatusError(f"test {text!r}: {op} compares two dates")
    if not left_operand.source:
        return Test(right_operand, FLIPPED[op], left_operand, text)
    return Test(left_operand, op, right_operand, text)


def parse_mode(file: str, entry: Any, statuses: tuple[str, ...]) -> tuple[StatusMode | None, list[str]]:
    """One ``[[status_mode]]`` table; returns (mode or None, problems)."""
    problems: list[str] = []
    name = entry.get("name") if isinstance(entry, dict) else None
    where = f"{file}: status_mode {name or '?'}"
    if not isinstance(entry, dict) or not name:
        return None, [f"{where}: needs a name"]
    for key in entry:
        if key not in _MODE_KEYS:
            problems.append(f"{where}: unknown key '{key}' (known: {', '.join(_MODE_KEYS)})")
    roles: dict[str, Role] = {}
    for role_name, spec in (entry.get("roles") or {}).items():
        if not isinstance(spec, dict) or not isinstance(spec.get("kind"), str):
            problems.append(f"{where}: role {role_name} needs a kind")
            continue
        unknown = [k for k in spec if k not in _ROLE_KEYS]
        if unknown:
            problems.append(f"{where}: role {role_name}: unknown key(s) {', '.join(unknown)} (known: {', '.join(_ROLE_KEYS)})")
        if role_name in ("obligation", "as_of", "record"):
            problems.append(f"{where}: role name {role_name!r} is reserved")
        period = spec.get("period", "any")
        if period not in PERIODS:
            problems.append(f"{where}: role {role_name}: period must be one of {', '.join(PERIODS)}")
        pick = tuple(spec.get("pick", ("min", "date")))
        if len(pick) != 2 or pick[0] not in PICKS:
            problems.append(f"{where}: role {role_name}: pick must be [min|max, FIELD]")
            pick = ("min", "date")
        for reference in re.findall(r"\{([^}]*)\}", spec["kind"]):
            if reference not in _KINDS:
                problems.append(f"{where}: role {role_name}: kind refers to {{{reference}}}; use {', '.join(_KINDS)}")
        roles[role_name] = Role(role_name, spec["kind"], period, (str(pick[0]), str(pick[1])))
    cases = []
    for index, raw in enumerate(entry.get("case") or [], start=1):
        here = f"{where} case #{index}"
        unknown = [k for k in raw if k not in _CASE_KEYS]
        if unknown:
            problems.append(f"{here}: unknown key(s) {', '.join(unknown)} (known: {', '.join(_CASE_KEYS)})")
        if raw.get("status") not in statuses:
            problems.append(f"{here}: status {raw.get('status')!r} is not in the status vocabulary ({', '.join(statuses)})")
        need = tuple(raw.get("need", ()))
        for role in need:
            if role not in roles:
                problems.append(f"{here}: need names {role!r}, which is not a role of the mode")
        try:
            tests = tuple(parse_test(t, roles) for t in raw.get("test", ()))
            for test in tests:
                missing = [s for s in test.sources if s in roles and s not in need]
                if missing:
                    raise StatusError(f"test {test.text!r} reads {', '.join(missing)}: add it to need")
            received = _operand(raw["received"], need) if raw.get("received") else None
            received_by = _operand(raw["received_by"], need) if raw.get("received_by") else None
            note = dict(raw.get("note") or {})
            note_role = note.get("need")
            note_tests = tuple(parse_test(t, list(need) + [note_role]) for t in note.get("test", ())) if note else ()
            if note and note_role not in roles:
                raise StatusError(f"note: need names {note_role!r}, which is not a role of the mode")
        except StatusError as error:
            problems.append(f"{here}: {error}")
            continue
        evidence = raw.get("evidence")
        if evidence is not None and evidence not in need:
            problems.append(f"{here}: evidence {evidence!r} must be one of need")
        if not raw.get("reason"):
            problems.append(f"{here}: a case needs a reason (its wording, with {{...}} fields)")
        cases.append(Case(str(raw.get("status")), need, tests, evidence, received, received_by, str(raw.get("reason", "")),
                          note, note_tests))
    if cases and (cases[-1].need or cases[-1].tests):
        problems.append(f"{where}: the last case must have no condition (it is what holds when nothing else does)")
    thens = []
    for raw in entry.get("then") or []:
        if set(raw) != set(_THEN_KEYS) or not all(raw[k] in statuses for k in ("when", "followed", "becomes")):
            problems.append(f"{where}: a [[status_mode.then]] needs when, followed, becomes (statuses) and reason")
            continue
        thens.append(Then(raw["when"], raw["followed"], raw["becomes"], raw["reason"]))
    if problems:
        return None, problems
    return StatusMode(name, str(entry.get("reading", "")).strip(), roles, tuple(cases), file, tuple(thens)), []


def role_kind(role: Role, rule: Any, follows: Any) -> str:
    """The fact kind a role stands for, for one rule."""
    return _kind(role.kind, rule.fulfilled_by or "", rule.decided_by or "",
                 (follows.fulfilled_by or "") if follows is not None else "")


@functools.lru_cache(maxsize=1024)
def _kind(template: str, fulfilled_by: str, decided_by: str, follows_fulfilled_by: str) -> str:
    # cached: every evaluation asks it for every obligation and role, always of the same few rules
    values = {"fulfilled_by": fulfilled_by, "decided_by": decided_by, "follows.fulfilled_by": follows_fulfilled_by}
    return re.sub(r"\{([^}]*)\}", lambda m: values[m.group(1)], template)


# ----------------------------------------------------------------------------- subjects

@dataclass
class Subject:
    """One obligation to judge: its derived fact, the values the conditions read, and the facts
    that may play each role (by kind only: the conditions do the rest)."""

    key: str
    rule: Any
    mode: StatusMode
    fact: Fact
    values: dict[str, Any]            # obligation fields: date, deadline, period, next_seq, ...
    candidates: dict[str, list[Fact]]
    periodic: bool


@dataclass
class Context:
    as_of: date
    record_complete: date | None
    meetings: dict[str, dict[str, Any]]
    withdrawal: Fact | None


def subjects(rulebook: Any, chosen: Iterable[Fact], by_kind: dict[str, list[Fact]]) -> list[Subject]:
    out = []
    for fact in chosen:
        rule = rulebook.rule(fact["k"])
        mode = rulebook.status_modes[rule.status or ""]
        follows = rulebook.rule(rule.follows) if rule.follows else None
        values = {"date": fact["date"], "deadline": fact.get("deadline") or fact["date"], "period": fact.get("period"),
                  "next_seq": fact.get("deadline_seq", -1) + 1, "meeting": fact.get("meeting")}
        candidates = {name: by_kind.get(role_kind(role, rule, follows), []) for name, role in mode.roles.items()}
        out.append(Subject(f"{fact['k']}|{fact.get('period') or ''}", rule, mode, fact, values, candidates,
                           bool(rule.each or rule.period_from)))
    return out


def resolve(value_of: dict[str, Any], path: tuple[str, ...], context: Context) -> Any:
    """A field of a fact (or of the obligation), or of the meeting a field names."""
    value = value_of.get(path[0])
    if len(path) == 2:
        meeting = context.meetings.get(value or "")
        return meeting.get(path[1]) if meeting else None
    return value


def _value(operand: Operand, subject: Subject, binding: dict[str, Fact], context: Context) -> Any:
    if not operand.source:
        return operand.literal
    if operand.source == "obligation":
        return resolve(subject.values, operand.path, context)
    if operand.source == "as_of":
        return context.as_of.isoformat()
    if operand.source == "record":
        return context.record_complete.isoformat() if context.record_complete else None
    return resolve(binding[operand.source], operand.path, context)


def holds(test: Test, subject: Subject, binding: dict[str, Fact], context: Context) -> bool:
    """The reference reading of one test."""
    left = _value(test.left, subject, binding, context)
    if test.op == "set":
        return bool(left)
    if test.op == "none":
        return not left
    assert test.right is not None
    right = _value(test.right, subject, binding, context)
    if test.op in DATE_OPS:
        if not left or not right:
            return False
        a, b = date.fromisoformat(left).toordinal(), date.fromisoformat(right).toordinal()
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[test.op]
    equal = _norm(left) == _norm(right)
    return equal if test.op == "==" else not equal


def _norm(value: Any) -> Any:
    return "" if value is None else value


def in_period(role: Role, subject: Subject, fact: Fact) -> bool:
    """The reference reading of a role's period condition."""
    period = subject.values["period"]
    if role.period == "same":
        return not subject.periodic or fact.get("period") == period
    if role.period == "same_or_none":
        return fact.get("period") in (None, period)
    return True


def matches(case: Case, subject: Subject, context: Context) -> list[dict[str, Fact]]:
    """Every binding of the case's roles to facts under which all its tests hold (reference)."""
    pools = []
    for name in case.need:
        role = subject.mode.roles[name]
        pools.append([f for f in subject.candidates[name] if in_period(role, subject, f)])
    found = []
    for combination in product(*pools):
        binding = dict(zip(case.need, combination))
        if all(holds(t, subject, binding, context) for t in case.tests):
            found.append(binding)
    return found


def judge(subjects_: list[Subject], context: Context) -> dict[str, tuple[int, list[dict[str, Fact]]]]:
    """The reference interpreter: for each subject, the first case that holds and its bindings."""
    out = {}
    for subject in subjects_:
        for index, case in enumerate(subject.mode.cases):
            found = matches(case, subject, context)
            if found:
                out[subject.key] = (index, found)
                break
    return out


def statuses(subjects_: list[Subject], decided: dict[str, tuple[int, list[dict[str, Fact]]]]) -> dict[str, str]:
    """Each subject's status by the case a backend decided (the last case when none held)."""
    return {s.key: s.mode.cases[decided.get(s.key, (len(s.mode.cases) - 1, []))[0]].status for s in subjects_}


#: One [[status_mode.then]] that holds: (the key of the obligation whose status triggers it, the
#: key of the obligation it follows and whose status changes, the number of the then in its mode).
ThenMatch = tuple[str, str, int]


def thens(subjects_: list[Subject], decided: dict[str, tuple[int, list[dict[str, Fact]]]]) -> list[ThenMatch]:
    """The reference reading of the [[status_mode.then]] rules, in subject order: an obligation
    in status ``when`` whose rule ``follows`` another, and an obligation of that other rule in
    status ``followed``."""
    status_of = statuses(subjects_, decided)
    found = []
    for subject in subjects_:
        for number, then in enumerate(subject.mode.then):
            if status_of[subject.key] != then.when or not subject.rule.follows:
                continue
            for other in subjects_:
                if other.rule.id == subject.rule.follows and status_of[other.key] == then.followed:
                    found.append((subject.key, other.key, number))
    return found


def lapses(subjects_: list[Subject], context: Context) -> set[str]:
    """The obligations falling due after the withdrawal took effect (reference)."""
    if context.withdrawal is None:
        return set()
    effective = date.fromisoformat(context.withdrawal["date"])
    return {s.key for s in subjects_ if date.fromisoformat(s.fact["date"]) > effective}


# ----------------------------------------------------------------------------- wording

@dataclass(frozen=True)
class Verdict:
    status: str
    reason: str
    evidence: str | None = None
    received: date | None = None
    received_by: date | None = None


def _pick_key(role: Role) -> Callable[[Fact], tuple[Any, Any]]:
    field_name = role.pick[1]
    return lambda f: (f.get(field_name) or f.get("date") or "", f.get("id") or "")


def chosen(case: Case, subject: Subject, bindings: list[dict[str, Fact]]) -> dict[str, Fact]:
    """One binding for the wording: each role in turn, the fact its ``pick`` prefers."""
    remaining = list(bindings)
    binding: dict[str, Fact] = {}
    for name in case.need:
        role = subject.mode.roles[name]
        options = [b[name] for b in remaining]
        best = (min if role.pick[0] == "min" else max)(options, key=_pick_key(role))
        binding[name] = best
        remaining = [b for b in remaining if b[name] is best]
    return binding


_FIELD = re.compile(r"\{([^{}]+)\}")


@functools.lru_cache(maxsize=1024)
def _pieces(template: str) -> tuple[tuple[bool, str], ...]:
    """A reason's text cut into (False, literal) and (True, expression) pieces, once per template:
    every evaluation renders the same few templates.

    >>> _pieces("due {date(deadline)}, {days(as_of, deadline)} days")
    ((False, 'due '), (True, 'date(deadline)'), (False, ', '), (True, 'days(as_of, deadline)'), (False, ' days'))
    """
    pieces: list[tuple[bool, str]] = []
    at = 0
    for match in _FIELD.finditer(template):
        if match.start() > at:
            pieces.append((False, template[at:match.start()]))
        pieces.append((True, match.group(1).strip()))
        at = match.end()
    if at < len(template):
        pieces.append((False, template[at:]))
    return tuple(pieces)


def _date(text: Any) -> date:
    return date.fromisoformat(str(text))


def verdict(case: Case, subject: Subject, binding: dict[str, Fact], context: Context) -> Verdict:
    def value(text: str) -> Any:
        return _value_in(text, binding)

    def render(template: str, extra: dict[str, Fact]) -> str:
        scope = {**binding, **extra}

        def one(expression: str) -> str:
            if expression.startswith("days(") and expression.endswith(")"):
                a, b = (part.strip() for part in expression[5:-1].split(","))
                return str((_date(_value_in(a, scope)) - _date(_value_in(b, scope))).days * -1)
            if expression.startswith("date(") and expression.endswith(")"):
                return fmt(_date(_value_in(expression[5:-1].strip(), scope)))
            if expression in SCALARS:
                return fmt(_date(_value_in(expression, scope)))
            return str(_value_in(expression, scope))
        return "".join(one(part) if is_field else part for is_field, part in _pieces(template))

    def _value_in(text: str, scope: dict[str, Fact]) -> Any:
        if text in SCALARS:
            source, name = SCALARS[text]
            return _value(Operand(source, (name,)), subject, scope, context)
        return _value(_operand(text, scope), subject, scope, context)

    note = ""
    if case.note:
        role = subject.mode.roles[case.note["need"]]
        options = [f for f in subject.candidates[role.name] if in_period(role, subject, f)
                   and all(holds(t, subject, {**binding, role.name: f}, context) for t in case.note_tests)]
        if options:
            pick = (min if role.pick[0] == "min" else max)(options, key=_pick_key(role))
            note = render(case.note["text"], {role.name: pick})
    reason = render(case.reason, {}).replace("{note}", note) if "{note}" not in case.reason else \
        render(case.reason.replace("{note}", "\0"), {}).replace("\0", note)
    evidence = binding[case.evidence]["id"] if case.evidence else None
    received = _date(value(".".join((case.received.source,) + case.received.path))) if case.received else None
    received_by = _date(value(".".join((case.received_by.source,) + case.received_by.path))) if case.received_by else None
    return Verdict(case.status, reason, evidence, received, received_by)
