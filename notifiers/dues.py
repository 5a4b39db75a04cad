"""Every party's obligations as of a day, with the record's events: what the letters are planned from."""

from __future__ import annotations

from datetime import date

from engine.record.events import load_events
from engine.store import database as store
from notifiers.planner import Due, dues_from_evaluation


def obligations_as_of(url: str | None, evaluator, as_of: date, parties: set[str] | None = None) -> list[Due]:
    """Every participant's (or only ``parties``') obligations as of the date, with the recorded events of the
    database (if any)."""
    events = []
    if url and store.database_exists(url) and store.current_revision(url):
        events = load_events(url)
    dues: list[Due] = []
    chosen = [p for p in evaluator.registry.participants if parties is None or p in parties]
    for _iso3, evaluation, error in evaluator.each(as_of, events, chosen):
        if error is not None:
            raise error
        dues.extend(dues_from_evaluation(evaluation))
    return dues
