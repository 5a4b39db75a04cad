"""Every party's obligations as of a day, with the record's events of the pack: what the letters are planned from."""

from __future__ import annotations

from datetime import date

from engine.core.evaluate import Evaluator
from engine.record.events import load_events
from engine.registry.treaties import Treaties, pack_name
from engine.store import database as store
from notifiers.planner import Due, dues_from_evaluation

#: What the letters take to evaluate: one pack's evaluator, or the selected packs' (engine/registry/treaties.py).
Selected = Evaluator | Treaties


def treaties_of(selected: Selected) -> Treaties:
    """The packs given: a Treaties as it is, one evaluator as the only pack (it owns the untagged events)."""
    return selected if isinstance(selected, Treaties) else Treaties((selected,))


def obligations_as_of(url: str | None, evaluator: Evaluator, as_of: date, parties: set[str] | None = None,
                      home: str | None = None) -> list[Due]:
    """Every participant's (or only ``parties``') obligations of the evaluator's pack as of the date, with the
    recorded events of the database (if any) that belong to that pack: an APMBC receipt never closes a CCM
    item. An event naming no pack belongs to ``home``, the settings' first pack (default: this pack)."""
    name = pack_name(evaluator)
    events = []
    if url and store.database_exists(url) and store.current_revision(url):
        events = Treaties((evaluator,), home or name).events(name, load_events(url))
    dues: list[Due] = []
    chosen = [p for p in evaluator.registry.participants if parties is None or p in parties]
    for _iso3, evaluation, error in evaluator.each(as_of, events, chosen):
        if error is not None:
            raise error
        dues.extend(dues_from_evaluation(evaluation))
    return dues
