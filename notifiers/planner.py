"""Which reminder letters are due as of a date: a pure function of obligations, letters already planned, policy and date.

A letter is identified by its idempotency key (party, obligation, period, stage). The planner
never reads the clock or a database: the same inputs give the same letters, so any past day can
be replayed, and planning again after the letters were recorded gives nothing new.

The rules, in words:

* Only open obligations (``pending`` or ``overdue``) get letters: a fulfilled (on time or late)
  or lapsed obligation gets none, whatever its stages say.
* Each obligation kind has stages at fixed days from the due date (negative: before it), then,
  optionally, a stage every ``repeat_every_days`` after the last one while it stays open.
* Catch-up: of the stages that are due on ``as_of`` (stage date on or before it), only the
  latest is planned, and only if it was not planned before. After ten days of downtime, an
  obligation whose courtesy notice and first reminder both fell due gets the first reminder
  only, once.
* A deadline that moved (an extension: ``due`` differs from ``original_due``) starts a new
  cycle: its stages are keyed with the new date (``reminder1@2026-03-01``), so the letters
  about the old date do not silence those about the new one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Iterable, Mapping

OPEN_STATUSES = ("pending", "overdue")
KEY_SEPARATOR = "|"


class PolicyError(ValueError):
    """The [letters] policy in config.toml is malformed; the message names the key."""


@dataclass(frozen=True)
class Stage:
    """A named point relative to the due date (``days`` < 0: before it)."""

    name: str
    days: int


@dataclass(frozen=True)
class KindPolicy:
    """The stages of one obligation kind, who signs its letters and who is copied."""

    kind: str
    obligations: tuple[str, ...]
    stages: tuple[Stage, ...]
    repeat_every_days: int | None = None
    signer: str = "isu"
    cc: tuple[str, ...] = ()

    def stage_dates(self, due: date, until: date) -> list[tuple[Stage, date]]:
        """Every stage of an obligation due on ``due`` dated on or before ``until``, in date order.

        >>> k = KindPolicy("annual_report", ("x",), (Stage("reminder1", 1), Stage("reminder2", 30)), 180)
        >>> [(s.name, d.isoformat()) for s, d in k.stage_dates(date(2025, 4, 30), date(2025, 12, 1))]
        [('reminder1', '2025-05-01'), ('reminder2', '2025-05-30'), ('repeat1', '2025-11-26')]
        """
        found = [(s, due + timedelta(days=s.days)) for s in self.stages]
        found = [(s, d) for s, d in found if d <= until]
        if self.repeat_every_days and self.stages:
            last, every = max(s.days for s in self.stages), self.repeat_every_days
            repeats = ((until - due).days - last) // every       # counted, not stepped date by date
            found.extend((Stage(f"repeat{n}", last + n * every), due + timedelta(days=last + n * every))
                         for n in range(1, repeats + 1))
        return sorted(found, key=lambda pair: pair[1])

    def tone(self, stage: Stage) -> str:
        """``advance`` (on or before the due date), ``reminder`` (the first stage after it), ``further``."""
        if stage.days <= 0:
            return "advance"
        after = sorted(s.days for s in self.stages if s.days > 0)
        return "reminder" if after and stage.days == after[0] else "further"


@dataclass(frozen=True)
class Policy:
    """The reminder policy: one KindPolicy per obligation kind, and the date letters start from."""

    kinds: tuple[KindPolicy, ...]
    since: date | None = None          # obligations due before this date get no letters

    def kind_of(self, obligation_id: str) -> KindPolicy | None:
        for kind in self.kinds:
            if obligation_id in kind.obligations:
                return kind
        return None

    @classmethod
    def from_toml(cls, letters: Mapping[str, Any]) -> "Policy":
        """Build from the ``[letters]`` table of config.toml. Raises PolicyError naming the key."""
        kinds = []
        for name, table in (letters.get("kinds") or {}).items():
            where = f"[letters.kinds.{name}]"
            try:
                stages = tuple(Stage(str(s["name"]), int(s["days"])) for s in table.get("stages", []))
                obligations = tuple(table["obligations"])
            except (KeyError, TypeError, ValueError) as error:
                raise PolicyError(f"{where}: each stage needs a name and days, and the kind needs obligations ({error})") from error
            if len({s.name for s in stages}) != len(stages):
                raise PolicyError(f"{where} stages: two stages have the same name")
            repeat = table.get("repeat_every_days")
            if repeat is not None and int(repeat) <= 0:
                raise PolicyError(f"{where} repeat_every_days: must be a positive number of days")
            kinds.append(KindPolicy(kind=name, obligations=obligations, stages=stages,
                                    repeat_every_days=int(repeat) if repeat else None,
                                    signer=str(table.get("signer", "isu")), cc=tuple(table.get("cc", ()))))
        seen: dict[str, str] = {}
        for kind in kinds:
            for obligation in kind.obligations:
                if obligation in seen:
                    raise PolicyError(f"[letters.kinds.{kind.kind}] obligations: {obligation} is already in "
                                      f"[letters.kinds.{seen[obligation]}]")
                seen[obligation] = kind.kind
        since = letters.get("since") or None
        try:
            since_date = date.fromisoformat(str(since)) if since else None
        except ValueError as error:
            raise PolicyError(f"[letters] since: {since!r} is not a date (YYYY-MM-DD)") from error
        return cls(kinds=tuple(kinds), since=since_date)


@dataclass(frozen=True)
class Due:
    """What the planner needs of one obligation (from an evaluation or the obligations table)."""

    party: str
    obligation_id: str
    period: str
    due: date
    original_due: date
    status: str
    article: str = ""
    basis: tuple[str, ...] = ()
    meeting: str | None = None
    estimated: bool = False          # the date hangs on a projected meeting whose dates are not yet set


@dataclass(frozen=True)
class PlannedLetter:
    """A letter due as of a date: the obligation, the stage, and its idempotency key."""

    key: str
    party: str
    obligation_id: str
    period: str
    stage: str              # the stage name as keyed (with @DUE after an extension)
    stage_name: str
    kind: str
    tone: str
    due: date
    stage_date: date
    obligation: Due = field(repr=False, compare=False)
    skipped: tuple[str, ...] = ()      # earlier stages not sent (catch-up)


def idempotency_key(party: str, obligation_id: str, period: str, stage: str) -> str:
    """``LBN|ccm.art7.annual_report|2024|reminder1``."""
    return KEY_SEPARATOR.join((party, obligation_id, period or "", stage))


def stage_key(stage: Stage, obligation: Due) -> str:
    return stage.name if obligation.due == obligation.original_due else f"{stage.name}@{obligation.due.isoformat()}"


def plan(obligations: Iterable[Due], already: Iterable[str], policy: Policy, as_of: date) -> list[PlannedLetter]:
    """The letters due on ``as_of`` that are not among ``already`` (idempotency keys planned before).

    Fulfilled and lapsed obligations get none; of the stages due, only the latest is planned
    (at most one letter per obligation), and none once a stage of the same cycle at or after
    it was planned.
    """
    planned_keys = set(already)
    letters = []
    for obligation in obligations:
        if obligation.status not in OPEN_STATUSES:
            continue
        if policy.since and obligation.due < policy.since:
            continue
        kind = policy.kind_of(obligation.obligation_id)
        if kind is None:
            continue
        due_stages = kind.stage_dates(obligation.due, as_of)
        if not due_stages:
            continue
        keys = [idempotency_key(obligation.party, obligation.obligation_id, obligation.period,
                                stage_key(s, obligation)) for s, _ in due_stages]
        latest = len(due_stages) - 1
        if any(k in planned_keys for k in keys[latest:]):
            continue
        stage, day = due_stages[latest]
        letters.append(PlannedLetter(
            key=keys[latest], party=obligation.party, obligation_id=obligation.obligation_id,
            period=obligation.period, stage=stage_key(stage, obligation), stage_name=stage.name, kind=kind.kind,
            tone=kind.tone(stage), due=obligation.due, stage_date=day, obligation=obligation,
            skipped=tuple(s.name for s, _ in due_stages[:latest] if idempotency_key(
                obligation.party, obligation.obligation_id, obligation.period, stage_key(s, obligation)) not in planned_keys)))
    letters.sort(key=lambda letter: (letter.party, letter.due, letter.obligation_id, letter.period))
    return letters


def dues_from_evaluation(evaluation) -> list[Due]:
    """The planner's view of an engine.core.evaluate.PartyEvaluation."""
    iso3 = evaluation.participant.iso3
    return [Due(party=iso3, obligation_id=o.id, period=o.period or "", due=o.due, original_due=o.original_due,
                status=o.status, article=o.article, basis=tuple(o.basis), meeting=o.meeting,
                # read softly: obligations gain ``estimated`` with projected meetings
                estimated=bool(getattr(o, "estimated", False)))
            for o in evaluation.obligations]
