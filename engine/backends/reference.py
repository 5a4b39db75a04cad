"""A plain-Python interpreter of the rulebook: the oracle the durable_rules backend is tested against.

It reads the same rules and calls the same arithmetic (:mod:`engine.core.compute`); only the
matching is different: rules run in dependency order, each over every combination of the
facts its ``when`` names, and an obligation's exceptions are chained right after it.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import product

from engine.core.compute import Fact, apply_exception, fire, optional_kinds
from engine.core.rulebook import Rule, Rulebook

#: Per rulebook: the rules that fire, each with its optional kinds and the exceptions chained to
#: what it derives, read once (looking them up per derived fact was a tenth of the inference).
Plan = tuple[list[tuple[Rule, tuple[str, ...], tuple[Rule, ...]]], frozenset[str]]
_PLANS: dict[str, Plan] = {}


def _plan(rulebook: Rulebook) -> Plan:
    """The rules that fire, each with its optional kinds and exceptions; and every optional kind."""
    plan = _PLANS.get(rulebook.hash)
    if plan is None:
        rules = [(rule, optional_kinds(rule), tuple(rulebook.exceptions_to(rule.id))) for rule in rulebook.rules
                 if rule.produces not in ("exception", "termination")]
        plan = _PLANS[rulebook.hash] = (rules, frozenset(k for _, optional, _ in rules for k in optional))
    return plan


def infer(rulebook: Rulebook, facts: list[Fact]) -> list[Fact]:
    """All facts the rulebook derives from ``facts`` (input facts are not returned).

    Raises :class:`engine.core.compute.EvaluationError` as the rules do.
    """
    by_kind: dict[str, list[Fact]] = defaultdict(list)
    for fact in facts:
        by_kind[fact["k"]].append(fact)
    rules, optional_anywhere = _plan(rulebook)
    # An optional kind binds only when the party has exactly one such fact (read before any derivation).
    singletons = {kind: by_kind[kind][0] for kind in optional_anywhere if len(by_kind.get(kind, ())) == 1}
    derived: list[Fact] = []
    for rule, optional, exceptions in rules:
        if any(by_kind.get(kind) for kind in rule.unless):
            continue
        candidates = [by_kind.get(kind) or [] for kind in rule.when]
        if not all(candidates):
            continue
        for combination in product(*candidates):
            binding = dict(zip(rule.when, combination))
            for kind in optional:
                if kind in singletons:
                    binding[kind] = singletons[kind]
            for new in fire(rule, binding):
                derived.append(new)
                by_kind[new["k"]].append(new)
                if exceptions:
                    derived.extend(_chain_exceptions(exceptions, new, by_kind))
    return derived


def _chain_exceptions(exceptions: tuple[Rule, ...], base: Fact, by_kind: dict[str, list[Fact]]) -> list[Fact]:
    chained: list[Fact] = []
    current = base
    progressed = True
    while progressed:
        progressed = False
        for exception in exceptions:
            for decision in by_kind.get(exception.when[0], []):
                if decision.get("seq") == current["seq"] + 1:
                    current = apply_exception(exception, current, decision)
                    chained.append(current)
                    by_kind[current["k"]].append(current)
                    progressed = True
                    break
            if progressed:
                break
    return chained
