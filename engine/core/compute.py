"""What one rule derives from one binding of facts: the arithmetic both inference backends share.

A *binding* maps each fact kind in a rule's ``when`` to one fact (a plain dict). The
backends (durable_rules and the reference interpreter) differ only in how they find
bindings and chain derived facts; the dates, periods and provenance of a derivation are
computed here, once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from engine.core import dates
from engine.core.dates import AmbiguousDateError, Step

if TYPE_CHECKING:     # the rulebook reads this module's tables; a Rule is only a type here
    from engine.core.rulebook import Rule

Fact = dict[str, Any]


class EvaluationError(ValueError):
    """A rule could not be applied to a party's facts; the message names the rule and the fact."""


def fact_date(fact: Fact, field: str = "date") -> date:
    value = fact.get(field)
    if not value:
        raise EvaluationError(f"fact {fact.get('id')!r} ({fact.get('k')}) has no {field!r} date")
    return date.fromisoformat(value)


def derived_fact(rule: Rule, kind: str, due: date, *, seq: int = 0, period: str | None = None,
                 basis: list[str], inputs: list[str], steps: list[str], original: date | None = None,
                 extra: dict[str, Any] | None = None) -> Fact:
    """A derived fact in the shape every backend asserts: JSON-safe, ISO dates plus ordinals."""
    fact: Fact = {
        "k": kind,
        "id": f"{kind}#{seq}#{period or ''}",
        "rule": rule.id,
        "date": due.isoformat(),
        "ord": due.toordinal(),
        "seq": seq,
        "period": period,
        "original": (original or due).isoformat(),
        "basis": basis,
        "inputs": inputs,
        "steps": steps,
        "derived": True,
    }
    if extra:
        fact.update(extra)
        if "deadline_seq" in extra:  # one request per deadline: two deadlines can share a meeting
            fact["id"] += f"#d{extra['deadline_seq']}"
    return fact


def optional_kinds(rule: Rule) -> tuple[str, ...]:
    """Facts a rule reads when present without needing them (the bounds of its last period)."""
    return tuple(kind for kind in rule.last_period if kind not in rule.when)


def fire(rule: Rule, binding: dict[str, Fact]) -> list[Fact]:
    """Apply a date or obligation rule to one binding; return the facts it derives.

    ``binding`` holds one fact per kind in ``rule.when``, plus any of
    :func:`optional_kinds` the party has.

    Raises :class:`EvaluationError` when a date cannot be computed (an ambiguous
    29 February, a missing meeting), naming the rule.
    """
    try:
        if rule.each == "calendar_year":
            return _fire_periodic(rule, binding)
        step, period, extra = _compute(rule, binding)
    except AmbiguousDateError as error:
        raise EvaluationError(f"rule {rule.id} ({rule.file}): {error}") from error
    if step is None:
        return []
    basis, inputs, steps = _provenance(rule, binding)
    return [derived_fact(rule, rule.kind, step.value, period=period, basis=basis, inputs=inputs,
                         steps=steps + [step.text], extra=extra)]


def apply_exception(rule: Rule, base: Fact, decision: Fact) -> Fact:
    """An exception (an extension decision) moves the base obligation's date; checks the ceiling.

    Raises :class:`EvaluationError` when the decided date exceeds the rule's ceiling or
    precedes the deadline it extends.
    """
    current = fact_date(base)
    granted = fact_date(decision, rule.due_from or "date")
    where = f"rule {rule.id} ({rule.file}), decision {decision.get('id')}"
    if granted <= current:
        raise EvaluationError(f"{where}: the decided deadline {dates.fmt(granted)} does not extend {dates.fmt(current)}")
    steps = [f"{decision.get('label', 'decision')}: deadline {dates.fmt(current)} -> {dates.fmt(granted)}"]
    if rule.ceiling_years is not None:
        try:
            ceiling = dates.add_years(current, rule.ceiling_years, rule.on_leap_day)
        except AmbiguousDateError as error:
            raise EvaluationError(f"{where}: {error}") from error
        if granted > ceiling.value:
            raise EvaluationError(
                f"{where}: the decided deadline {dates.fmt(granted)} is beyond the ceiling of "
                f"{rule.ceiling_years} years ({ceiling.text})"
            )
        steps.append(f"within the ceiling: {ceiling.text}")
    return derived_fact(
        rule, base["k"], granted, seq=base["seq"] + 1, period=base.get("period"),
        basis=_merge(base["basis"], [rule.id]), inputs=_merge(base["inputs"], [decision["id"]]),
        steps=base["steps"] + steps, original=date.fromisoformat(base["original"]),
        extra={"rule": rule.id, "decision": decision["id"], "decided": decision["date"]},
    )


# -- date computations -------------------------------------------------------------------

#: What a date computation gives: the step (None: nothing is due), the period, extra fields.
Computed = tuple[Step | None, str | None, dict[str, Any]]


def _anchor(rule: Rule) -> str:
    """The rule's anchor, which the rulebook requires of an offset and of the date functions that read it."""
    if rule.anchor is None:
        raise EvaluationError(f"rule {rule.id} ({rule.file}) has no anchor to count from")
    return rule.anchor


def _compute(rule: Rule, binding: dict[str, Fact]) -> Computed:
    if rule.offset:
        anchor = fact_date(binding[_anchor(rule)], rule.anchor_field)
        unit, amount = rule.offset
        step = _OFFSETS[unit](anchor, amount, rule)
        period = binding[_anchor(rule)]["id"] if rule.period_from == "fact_id" else None
        return step, period, {}
    function = DATE_FUNCTIONS[rule.date_function or ""].single
    if function is None:
        raise EvaluationError(f"rule {rule.id} ({rule.file}): {rule.date_function} gives one date per period; "
                              "it needs each = \"calendar_year\"")
    return function(rule, binding)


_OFFSETS: dict[str, Callable[[date, int, Rule], Step]] = {
    "years": lambda anchor, n, rule: dates.add_years(anchor, n, rule.on_leap_day),
    "months": lambda anchor, n, rule: dates.add_months(anchor, n, rule.on_month_end),
    "days": lambda anchor, n, rule: dates.add_days(anchor, n),
}


def _entry_into_force(rule: Rule, binding: dict[str, Fact]) -> Computed:
    deposit = fact_date(binding[_anchor(rule)])
    threshold = fact_date(binding[rule.args["threshold"]])
    return dates.entry_into_force(deposit, threshold, rule.args.get("months", 6)), None, {}


def _request_before_last_meeting(rule: Rule, binding: dict[str, Fact]) -> Computed:
    """The last meeting that opens before the deadline (and after the decision that set it, if
    one did: a meeting cannot be asked to extend a deadline it has not yet decided), counted
    back from its opening as announced. None when no meeting falls between the two."""
    deadline_fact = binding[rule.args["deadline"]]
    deadline = fact_date(deadline_fact)
    kinds = set(rule.args["kinds"])
    set_on = deadline_fact.get("decided") or ""
    before = [m for m in binding["meetings"]["meetings"]
              if m["kind"] in kinds and set_on < m["start"] < deadline.isoformat()]
    if not before:
        if set_on:
            return None, None, {}
        raise EvaluationError(f"rule {rule.id}: no meeting of kind {', '.join(sorted(kinds))} starts before the deadline {dates.fmt(deadline)}")
    meeting = max(before, key=lambda m: m["start"])
    opening = date.fromisoformat(meeting.get("announced_start") or meeting["start"])
    step = dates.add_months(opening, -rule.args["months"], rule.args.get("on_month_end", rule.on_month_end))
    projected = meeting.get("status") == "projected"
    as_announced = "" if opening.isoformat() == meeting["start"] else f" (convened for {dates.fmt(opening)}; opened {dates.fmt(date.fromisoformat(meeting['start']))})"
    text = (f"last meeting before the deadline of {dates.fmt(deadline)}"
            + (f" and after the decision of {dates.fmt(date.fromisoformat(set_on))} that set it" if set_on else "")
            + f": {meeting['name']} ({meeting['code']}), "
            + (f"projected, opening estimated as {dates.fmt(opening)}" if projected else f"opening {dates.fmt(opening)}{as_announced}")
            + f"; {step.text}" + (" (estimated: the meeting's dates are not yet set)" if projected else ""))
    extra = {"meeting": meeting["code"], "deadline_seq": deadline_fact["seq"], "deadline": deadline.isoformat()}
    if projected:
        extra["estimated"] = True
    return Step(step.value, text), meeting["code"], extra


def _next_meeting_after(rule: Rule, binding: dict[str, Fact]) -> Computed:
    after_fact = binding[rule.args["after"]]
    after = fact_date(after_fact)
    kinds = set(rule.args["kinds"])
    later = [m for m in binding["meetings"]["meetings"] if m["kind"] in kinds and m["start"] > after.isoformat()]
    if not later:
        return None, None, {}  # no meeting scheduled yet: nothing is due until one is
    meeting = min(later, key=lambda m: m["start"])
    start = date.fromisoformat(meeting["start"])
    projected = meeting.get("status") == "projected"
    text = (f"next meeting after {dates.fmt(after)}: {meeting['name']} ({meeting['code']}), "
            + (f"projected, opening estimated as {dates.fmt(start)} (estimated: the meeting's dates are not yet set)"
               if projected else f"opening {dates.fmt(start)}"))
    return Step(start, text), meeting["code"], {"meeting": meeting["code"], **({"estimated": True} if projected else {})}


@dataclass(frozen=True)
class DateFunction:
    """A date function a rule may name in ``date_function``: exactly one of ``single`` (one date
    from a binding) or ``per_period`` (one date per period of an ``each = "calendar_year"`` rule, for
    the periods from the first year to the last, in order)."""

    summary: str
    args: str
    single: Callable[[Rule, dict[str, Fact]], tuple[Step | None, str | None, dict[str, Any]]] | None = None
    per_period: Callable[[Rule, int, int], list[Step]] | None = None


def _days_of_following_years(rule: Rule, first_year: int, last_year: int) -> list[Step]:
    return dates.days_of_following_years(first_year, last_year, rule.args["month"], rule.args["day"])


#: The one table of date functions: the rulebook loader validates names against it, both
#: backends compute through it (fire), the README's table of rule keys is generated from it.
DATE_FUNCTIONS: dict[str, DateFunction] = {
    "entry_into_force": DateFunction(
        "first day of the Nth month after the later of the deposit and the threshold deposit",
        "threshold, months", single=_entry_into_force),
    "day_of_following_year": DateFunction(
        "a fixed day of the year after each period (a periodic rule)", "month, day", per_period=_days_of_following_years),
    "request_before_last_meeting": DateFunction(
        "N months before the last meeting that opens before the deadline", "deadline, kinds, months", single=_request_before_last_meeting),
    "next_meeting_after": DateFunction(
        "the opening of the first meeting after a date", "after, kinds", single=_next_meeting_after),
}



def _fire_periodic(rule: Rule, binding: dict[str, Fact]) -> list[Fact]:
    first_anchor = binding[rule.first_period["anchor"]]
    first_year = fact_date(first_anchor).year + int(rule.first_period.get("add_years", 0))
    bounds = []
    for kind in rule.last_period:
        fact = binding.get(kind)
        if fact is None:
            continue
        if fact.get("end_year") is not None:
            bounds.append(int(fact["end_year"]))
        elif fact.get("date"):
            bounds.append(fact_date(fact).year)
    last_year = min(bounds)
    per_period = DATE_FUNCTIONS[rule.date_function or ""].per_period
    if per_period is None:
        raise EvaluationError(f"rule {rule.id} ({rule.file}): a periodic rule needs a date function that gives "
                              "one date per period")
    basis, inputs, steps = _provenance(rule, binding)
    derived = []
    for year, step in zip(range(first_year, last_year + 1), per_period(rule, first_year, last_year), strict=True):
        lead = f"first period {first_year} (year of {first_anchor['k']} + {rule.first_period.get('add_years', 0)}); period {year}"
        derived.append(derived_fact(rule, rule.kind, step.value, period=str(year), basis=basis, inputs=inputs,
                                    steps=steps + [f"{lead}: {step.text}"]))
    return derived


def _provenance(rule: Rule, binding: dict[str, Fact]) -> tuple[list[str], list[str], list[str]]:
    basis: list[str] = []
    inputs: list[str] = []
    steps: list[str] = []
    for kind in rule.when:
        fact = binding.get(kind)
        if fact is None:
            continue
        if fact.get("derived"):
            basis = _merge(basis, fact["basis"])
            inputs = _merge(inputs, fact["inputs"])
            steps = _merge(steps, fact["steps"])
        else:
            inputs = _merge(inputs, [fact["id"]])
    return _merge(basis, [rule.id]), inputs, steps


def _merge(first: list[str], second: list[str]) -> list[str]:
    return first + [item for item in second if item not in first]
