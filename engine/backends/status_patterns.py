"""The declared status conditions as durable_rules patterns (the durable backend's reading of them).

Each case of a status mode that has a condition becomes one rule per obligation rule using the
mode: a pattern for the ``$obligation`` fact, one per role the case needs, and one for the
evaluation date or the day the record is complete from when a test reads them. Each test is
placed on the last of those patterns it reads and refers to the earlier ones, so the C engine
compares the ordinal dates (``$lt``, ``$lte``...) and the values itself. Rules fire with a cap:
one action per rule and session, with every match. Which case comes first, and the wording,
stay with :mod:`engine.core.status`.

Fields are sent flat (``period__end``: a dot would be read as a path); a date as its ordinal,
absent when the fact has none (a comparison with it then fails, as in the reference); a value
read with ``is set``/``is none`` as ``<field>__set`` 1 or 0; ``None`` as "".
"""

from __future__ import annotations

from datetime import date
from itertools import product
from typing import Any

from engine.core import status
from engine.core.compute import Fact

OBLIGATION, AS_OF, RECORD, WITHDRAWAL = "$obligation", "$as_of", "$record", "$withdrawal"
STATUS = "$status"   # an obligation's status once its case is known, for the [[status_mode.then]] rules
CAP = 10_000   # more matches than one party can have: one firing per rule and session
ROLE = "$role:"   # a role's fact is sent under a kind of its own: the inference rules of the same session never match it


def tagged(kind: str) -> str:
    """The kind a fact is sent under to the status rules (the engine's own kinds start with $)."""
    return kind if kind.startswith("$") else ROLE + kind


class StatusPatterns:
    """Compiles the rulebook's status modes; knows which fields each kind of fact must carry."""

    def __init__(self, rulebook: Any):
        self.rulebook = rulebook
        # (rule name in the ruleset) -> (subject rule id, case index, role names by pattern)
        self.cases: dict[str, tuple[str, int]] = {}
        # fact kind -> {slim key: (path, how)} where how is "date", "set" or "value"
        self.fields: dict[str, dict[str, tuple[tuple[str, ...], str]]] = {}
        self.kinds_of: dict[str, dict[str, str]] = {}   # rule id -> role -> fact kind
        self.related: set[str] = set()   # rule ids whose obligations a [[status_mode.then]] reads

    # -- compilation -----------------------------------------------------------------

    def compile(self, backend: Any) -> dict[str, Any]:
        definition: dict[str, Any] = {}
        for index, rule in enumerate(self.rulebook.rules):
            if not rule.is_obligation:
                continue
            mode = self.rulebook.status_modes[rule.status]
            follows = self.rulebook.rule(rule.follows) if rule.follows else None
            kinds = {name: status.role_kind(role, rule, follows) for name, role in mode.roles.items()}
            self.kinds_of[rule.id] = kinds
            periodic = bool(rule.each or rule.period_from)
            for number, case in enumerate(mode.cases):
                if not case.need and not case.tests:
                    continue
                # "same or none" is two patterns (an $or mixing a reference and a literal never matches the literal)
                either = [n for n in case.need if mode.roles[n].period == "same_or_none"]
                for variant in product(("same", "none"), repeat=len(either)):
                    name = f"status{index}_{number}" + "".join(f"_{v}" for v in variant)
                    self.cases[name] = (rule.id, number)
                    definition[name] = {"all": self._patterns(rule, mode, case, kinds, periodic, dict(zip(either, variant))),
                                        "cap": CAP, "act": self._action(name, case)}
        self._need(OBLIGATION, ("date",), "date")
        definition["status_lapse"] = {
            "all": [{"o": {"k": OBLIGATION}},
                    {"w": {"$and": [{"k": WITHDRAWAL}, {"$lt": {"date": {"o": "date"}}}]}}],
            "cap": CAP, "act": self._lapse_action()}
        self._need(WITHDRAWAL, ("date",), "date")
        # [[status_mode.then]]: an obligation in status `when` and one of the rule it follows in
        # status `followed`, joined on the rule the first names (a second round of facts, sent
        # once the cases are known, only for the rules a then reads).
        for index, rule in enumerate(self.rulebook.rules):
            if not rule.is_obligation or not rule.follows:
                continue
            for number, then in enumerate(self.rulebook.status_modes[rule.status].then):
                self.related.update((rule.id, rule.follows))
                definition[f"status_then{index}_{number}"] = {
                    "all": [{"q": {"$and": [{"k": STATUS}, {"rule": rule.id}, {"status": then.when}]}},
                            {"f": {"$and": [{"k": STATUS}, {"rule": {"q": "follows"}}, {"status": then.followed}]}}],
                    "cap": CAP, "act": self._then_action(number)}
        # A fact that fails every literal test is rejected by durable_rules, and rejections
        # corrupt the engine's memory over a few thousand sessions (a segfault, found here): one
        # capped rule accepts every fact sent, firing once per session.
        sent = sorted({tagged(k) for kinds in self.kinds_of.values() for k in kinds.values()} | {AS_OF, RECORD, STATUS})
        definition["status_accept"] = {"all": [{"x": {"$or": [{"k": kind} for kind in sent]}}], "cap": CAP,
                                       "act": lambda session, matches: None}
        return definition

    def _need(self, kind: str, path: tuple[str, ...], how: str) -> str:
        key = "__".join(path) + ("__set" if how == "set" else "")
        self.fields.setdefault(kind, {})[key] = (path, how)
        return key

    def _patterns(self, rule: Any, mode: status.StatusMode, case: status.Case, kinds: dict[str, str],
                  periodic: bool, variant: dict[str, str]) -> list[dict[str, Any]]:
        order = ["obligation", *case.need]
        reads = {s for t in case.tests for s in t.sources}
        order += [s for s in ("as_of", "record") if s in reads]
        kind_of = {"obligation": OBLIGATION, "as_of": AS_OF, "record": RECORD, **{n: kinds[n] for n in case.need}}
        alias = {"obligation": "o", "as_of": "a", "record": "r", **{n: f"p_{n}" for n in case.need}}
        constraints: dict[str, list[dict[str, Any]]] = {name: [{"k": tagged(kind_of[name])}] for name in order}
        constraints["obligation"].append({"rule": rule.id})
        for name in case.need:
            period = mode.roles[name].period
            if period == "same" and periodic:
                constraints[name].append({"period": {"o": "period"}})
                self._need(kind_of[name], ("period",), "value")
            elif period == "same_or_none":
                constraints[name].append({"period": {"o": "period"}} if variant[name] == "same" else {"period": ""})
                self._need(kind_of[name], ("period",), "value")
            if period != "any":
                self._need(OBLIGATION, ("period",), "value")
        for test in case.tests:
            place = max((order.index(s) for s in test.sources), default=0)
            here = order[place]
            left, op, right = test.left, test.op, test.right
            if left.source != here:
                left, right, op = right, left, status.FLIPPED[op]
            assert left is not None
            if op in ("set", "none"):
                key = self._need(kind_of[here], left.path, "set")
                constraints[here].append({key: 1 if op == "set" else 0})
                continue
            assert right is not None
            how = "date" if op in status.DATE_OPS else "value"
            key = self._need(kind_of[here], left.path, how)
            if right.source:
                other = self._need(kind_of[right.source], right.path, how)
                value: Any = {alias[right.source]: other}
            else:
                value = right.literal
            if op == "==":
                constraints[here].append({key: value})
            else:
                constraints[here].append({(status.DATE_OPS.get(op) or status.VALUE_OPS[op]): {key: value}})
        return [{alias[name]: (parts[0] if len(parts) == 1 else {"$and": parts})} for name, parts in constraints.items()]

    # -- actions ---------------------------------------------------------------------

    def _action(self, name: str, case: status.Case):
        number = self.cases[name][1]
        roles = [(role, f"p_{role}") for role in case.need]

        def action(session: Any, matches: list[dict[str, Any]]) -> None:
            payload = session.payload
            for frame in matches:
                subject = payload[frame["o"]["id"]]["key"]
                binding = {role: payload[frame[alias]["id"]]["id"] for role, alias in roles}
                session.verdicts.setdefault(subject, {}).setdefault(number, []).append(binding)
        return action

    def _lapse_action(self):
        def action(session: Any, matches: list[dict[str, Any]]) -> None:
            for frame in matches:
                session.lapsing.add(session.payload[frame["o"]["id"]]["key"])
        return action

    def _then_action(self, number: int):
        def action(session: Any, matches: list[dict[str, Any]]) -> None:
            for frame in matches:
                session.thens.append((session.payload[frame["q"]["id"]]["key"], session.payload[frame["f"]["id"]]["key"],
                                      number))
        return action

    # -- facts -----------------------------------------------------------------------

    def _slim(self, session: Any, kind: str, fact: Fact, values: dict[str, Any], context: status.Context) -> dict[str, Any]:
        slim = session.slim(fact)
        slim["k"] = tagged(kind)
        slim.pop("seq", None)
        for key, (path, how) in self.fields.get(kind, {}).items():
            if how == "date" and path == ("date",) and "ord" in values:
                slim[key] = values["ord"]   # the inference's own ordinal of the date
                continue
            value = status.resolve(values, path, context)
            if how == "date":
                if value:
                    slim[key] = date.fromisoformat(value).toordinal()
            elif how == "set":
                slim[key] = 1 if value else 0
            else:
                slim[key] = "" if value is None else value
        return slim

    def judge(self, backend: Any, subjects: list[status.Subject], context: status.Context):
        """The verdicts from a session of their own (the tests' way in; evaluations use :meth:`judge_in`)."""
        if not subjects:
            return {}, set(), []
        return backend.run_session([s.fact for s in subjects], lambda session, facts: [],
                                   lambda session: self.judge_in(backend, session, subjects, context))

    def judge_in(self, backend: Any, session: Any, subjects: list[status.Subject], context: status.Context):
        """Assert the status facts into an open session, drain it, and read the verdicts; then,
        where a [[status_mode.then]] may hold, the statuses those verdicts give, and read the
        thens that hold."""
        if not subjects:
            return {}, set(), []
        backend.assert_all(session, self._slims(session, subjects, context), batch=True)
        by_id = {f["id"]: f for s in subjects for c in s.candidates.values() for f in c}
        decided = {}
        for subject in subjects:
            found = session.verdicts.get(subject.key, {})
            # A case with no condition always holds: the patterns leave it out.
            free = next(i for i, c in enumerate(subject.mode.cases) if not c.need and not c.tests)
            number = min([*found, free])
            bindings = found.get(number, [{}])
            decided[subject.key] = (number, [{role: by_id[i] for role, i in b.items()} for b in bindings])
        related = [s for s in subjects if s.rule.id in self.related]
        if related:
            status_of = status.statuses(related, decided)
            backend.assert_all(session, [self._status_slim(session, s, status_of[s.key]) for s in related], batch=True)
        order = {s.key: n for n, s in enumerate(subjects)}
        # The order the reference finds them in (the last change to an obligation wins).
        thens = sorted(session.thens, key=lambda t: (order[t[0]], t[2], order[t[1]]))
        return decided, set(session.lapsing), thens

    def _status_slim(self, session: Any, subject: status.Subject, status_: str) -> dict[str, Any]:
        slim = session.slim({"k": STATUS, "key": subject.key, "id": subject.key})
        slim.pop("seq", None)
        slim.update(rule=subject.rule.id, follows=subject.rule.follows or "", status=status_)
        return slim

    def _slims(self, session: Any, subjects: list[status.Subject], context: status.Context) -> list[dict[str, Any]]:
        slims = []
        roles: dict[tuple[str, str], Fact] = {}   # (kind, fact id): each role fact sent once
        for subject in subjects:
            slim = self._slim(session, OBLIGATION, {"k": OBLIGATION, "key": subject.key, "id": subject.key},
                              {**subject.values, "ord": subject.fact["ord"]}, context)
            slim["rule"] = subject.rule.id
            slims.append(slim)
            for name, candidates in subject.candidates.items():
                kind = self.kinds_of[subject.rule.id][name]
                for fact in candidates:
                    roles.setdefault((kind, fact["id"]), fact)
        for (kind, _), fact in roles.items():
            slims.append(self._slim(session, kind, fact, fact, context))
        slims.append(self._slim(session, AS_OF, {"k": AS_OF, "id": AS_OF}, {"date": context.as_of.isoformat()}, context))
        if context.record_complete is not None:
            slims.append(self._slim(session, RECORD, {"k": RECORD, "id": RECORD}, {"date": context.record_complete.isoformat()},
                                    context))
        if context.withdrawal is not None:
            slims.append(self._slim(session, WITHDRAWAL, context.withdrawal, context.withdrawal, context))
        return slims
