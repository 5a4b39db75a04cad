"""Where the query commands get a party's recorded events (reports received, requests, ...).

From the configured database when it exists and has been initialised (``ccm init`` or the
first ``ccm check``); otherwise there is no record and the engine works on the registry's
facts alone. A read-only query never creates a database: a missing SQLite file, a schema
not yet created, or an unreachable server all mean "no record".
"""

from __future__ import annotations

from functools import lru_cache

from engine.core.facts import RecordedEvent
from engine.runtime.settings import load_settings


@lru_cache(maxsize=1)
def _url() -> str:
    return load_settings().database_url


def events_for(iso3: str) -> list[RecordedEvent]:
    """Recorded events of one party; empty when no database has been initialised."""
    # lazy: Alembic, SQLAlchemy load only when this command runs, not on the start-up of ccm
    # lazy: SQLAlchemy loads only when a database is configured and read, not on the start-up of ccm
    from engine.store import database as store
    url = _url()
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
