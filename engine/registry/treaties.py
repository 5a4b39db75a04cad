"""Several packs at once: one evaluator per pack, and the every-party loop over (pack, party).

A State party to two treaties has two evaluations, one per pack, each with its own rulebook,
registry and record; nothing is merged inside the engine. The surfaces (CLI, API, check,
calendar, letters) take the packs in the order ``[engine] pack`` names them.

A recorded event belongs to one pack: the one its ``extra["treaty"]`` names, or, when it names
none (every event recorded before packs were keyed), the *home* pack, the first one
``[engine] pack`` selects in the settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Iterable, Iterator, NamedTuple

from engine.core import packs
from engine.core.evaluate import Evaluator, Outcome
from engine.core.facts import RecordedEvent
from engine.core.model import Participant, UnknownPartyError

TREATY_KEY = "treaty"    # the key of a recorded event's extra that names its pack


def pack_name(evaluator: Evaluator) -> str:
    """The pack an evaluator evaluates: the prefix of its rule ids."""
    return packs.pack_of(evaluator.rulebook.rules[0].id)


def event_pack(event: RecordedEvent, home: str) -> str:
    return str((event.extra or {}).get(TREATY_KEY) or home)


class PackOutcome(NamedTuple):
    """One (pack, party) turn of :meth:`Treaties.each`."""

    pack: str
    outcome: Outcome


@dataclass(frozen=True)
class Treaties:
    """The selected packs' evaluators, in the settings' order; ``home`` owns untagged events."""

    evaluators: tuple[Evaluator, ...]
    home: str | None = None

    def __post_init__(self):
        if not self.evaluators:
            raise ValueError("no pack selected")
        if self.home is None:
            object.__setattr__(self, "home", pack_name(self.evaluators[0]))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(pack_name(e) for e in self.evaluators)

    @property
    def primary(self) -> Evaluator:
        return self.evaluators[0]

    @property
    def several(self) -> bool:
        return len(self.evaluators) > 1

    def get(self, name: str) -> Evaluator:
        for evaluator in self.evaluators:
            if pack_name(evaluator) == name:
                return evaluator
        raise packs.PackError(f"the rule pack {name!r} is not selected; the selected packs are: {', '.join(self.names)}")

    def only(self, name: str | None) -> "Treaties":
        """These packs, or only the one ``name`` (``--treaty``, ``?treaty=``) when given."""
        return self if name is None else Treaties((self.get(name),), self.home)

    def owner(self, obligation_id: str) -> str | None:
        """The selected pack an obligation id's prefix names (``<pack>.<article>.<role>``), None for a
        title or a bare role; a prefix naming a rule pack that is not selected raises PackError."""
        if "." not in obligation_id:
            return None
        prefix = packs.pack_of(obligation_id)
        if prefix in self.names:
            return prefix
        if prefix in packs.discover():
            raise packs.PackError(f"{obligation_id!r} is an obligation of the rule pack {prefix!r}, which is not "
                                  f"selected; the selected packs are: {', '.join(self.names)}")
        return None

    def items(self) -> Iterator[tuple[str, Evaluator]]:
        for evaluator in self.evaluators:
            yield pack_name(evaluator), evaluator

    def events(self, name: str, recorded: Iterable[RecordedEvent]) -> list[RecordedEvent]:
        """The recorded events that belong to pack ``name``."""
        home = self.home or name
        return [e for e in recorded if event_pack(e, home) == name]

    def of_party(self, iso3: str) -> list[tuple[str, Evaluator]]:
        """The packs whose registry lists this party, in order."""
        return [(name, ev) for name, ev in self.items() if iso3 in ev.registry.participants]

    def find(self, query: str) -> Participant:
        """The participant an ISO3 code or name means, in the first registry that knows it."""
        first: UnknownPartyError | None = None
        for evaluator in self.evaluators:
            try:
                return evaluator.registry.find(query)
            except UnknownPartyError as error:
                first = first or error
        assert first is not None
        raise first

    def each(self, as_of: date, recorded: Iterable[RecordedEvent] = (),
             parties: Iterable[str] | None = None) -> Iterator[PackOutcome]:
        """Every (pack, party): each pack's own every-party loop, with its own events, pack by pack."""
        recorded = list(recorded)
        wanted = None if parties is None else set(parties)
        for name, evaluator in self.items():
            chosen = None if wanted is None else sorted(wanted & set(evaluator.registry.participants))
            for outcome in evaluator.each(as_of, self.events(name, recorded), chosen):
                yield PackOutcome(name, outcome)
