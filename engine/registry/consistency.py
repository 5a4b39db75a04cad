"""A registry checked by evaluating it with its pack's rulebook: the deadlines and ceilings an
extension decision is measured against are the rules' own (written once, in rules/<pack>/),
never a second computation here.

Each State's decisions are replayed in the order they became known; the first one the rules
refuse (an extended date beyond the ceiling, or not later than the deadline it extends) is
reported on its row of decisions.csv, and that State's later ones are not (they extend a
deadline that is already wrong).
"""

from __future__ import annotations

from datetime import date

from engine.backends import Evaluator
from engine.core.compute import EvaluationError
from engine.core.model import Decision, Problem, Registry
from engine.core.rulebook import Rulebook

DECISIONS = "decisions.csv"


def decision_problems(registry: Registry, rulebook: Rulebook, lines: dict[int, int]) -> list[Problem]:
    """One problem per State whose decisions the rules refuse; ``lines`` maps id(decision) to its line."""
    evaluator = Evaluator(rulebook, registry, "reference")   # plain Python: no rule engine to start
    problems: list[Problem] = []
    by_party: dict[str, list[Decision]] = {}
    for decision in registry.decisions:
        if registry.participants[decision.iso3].deposit_date is not None:
            by_party.setdefault(decision.iso3, []).append(decision)
    for iso3, decisions in sorted(by_party.items()):
        known_days = sorted({d.known_by for d in decisions})
        if _refusal(evaluator, iso3, known_days[-1]) is None:
            continue     # the usual case: one evaluation per State
        for day in known_days:
            error = _refusal(evaluator, iso3, day)
            if error is None:
                continue
            culprit = max((d for d in decisions if d.known_by == day), key=lambda d: d.granted_deadline)
            field = "granted_deadline" if ", decision " in error else "-"
            problems.append(Problem(DECISIONS, lines.get(id(culprit), 0), field,
                                    f"refused by the rules when {iso3}'s decisions are evaluated: {error}"))
            break
    return problems


def _refusal(evaluator: Evaluator, iso3: str, as_of: date) -> str | None:
    try:
        evaluator.evaluate(iso3, as_of)
    except EvaluationError as error:
        return str(error)
    return None
