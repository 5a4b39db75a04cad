"""Where the query commands get a party's recorded events (reports received, requests, ...).

Until a database has been initialised (``ccm init``) there is no record, and the engine
works on the registry's facts alone.
"""

from __future__ import annotations

from engine.facts import RecordedEvent


def events_for(iso3: str) -> list[RecordedEvent]:
    """Recorded events of one party; empty when no database has been initialised."""
    return []
