"""Where the query commands get a party's recorded events (reports received, requests, ...).

From the configured database when it exists and has been initialised (``ccm init`` or the
first ``ccm check``); otherwise there is no record and the engine works on the registry's
facts alone. A read-only query never creates a database: a missing SQLite file, a schema
not yet created, or an unreachable server all mean "no record".
"""

from __future__ import annotations

import sqlite3
from functools import lru_cache
from pathlib import Path

from engine.core.facts import RecordedEvent
from engine.runtime.settings import load_settings


@lru_cache(maxsize=1)
def _url() -> str:
    return load_settings().database_url


def events_for(iso3: str) -> list[RecordedEvent]:
    """Recorded events of one party; empty when no database has been initialised."""
    url = _url()
    if _surely_none(url, iso3.upper()):
        return []
    # lazy: SQLAlchemy (a fifth of a second to import) only when the record may hold the party's events
    from engine.store import database as store

    if not store.database_exists(url):
        return []
    try:
        from engine.record.events import load_events  # lazy: as the store above

        return load_events(url, iso3.upper())
    except Exception as error:  # no schema yet, or server down: say so once, work on the registry
        import sqlalchemy.exc  # lazy: as the store above

        if isinstance(error, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError)):
            return []
        raise


def _surely_none(url: str, party: str) -> bool:
    """True when a plain SQLite file URL names a missing file, or a file whose recorded_events
    table holds no live event of ``party``, asked with the standard library's sqlite3, read-only.
    False for anything else (a server, an unusual URL, any error): the ORM then decides as before."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or any(c in url for c in "?%") or url[len(prefix):] in ("", ":memory:"):
        return False
    path = Path(url[len(prefix):])
    if not path.exists():
        return True
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
        try:
            row = connection.execute("SELECT 1 FROM recorded_events WHERE party = ? AND superseded_by IS NULL LIMIT 1",
                                     (party,)).fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return False
    return row is None
