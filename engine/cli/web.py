"""``ccm serve`` (the HTTP API, calendar feeds and pages) and ``ccm calendar PARTY``.
Registered by importing engine/cli/main.py. FastAPI and uvicorn are imported only when
``ccm serve`` runs, so the other commands stay fast.
"""

from __future__ import annotations

import sys

import typer

from engine.cli.base import (
    TREATY_HELP,
    app,
    daemon_logging,
    fail,
    find_in,
    parse_date,
    treaties,
)
from engine.core import packs
from engine.core.compute import EvaluationError
from engine.runtime.settings import load_settings


@app.command()
def serve(host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
          port: int = typer.Option(8000, "--port", help="TCP port."),
          workers: int | None = typer.Option(None, "--workers", min=0,
                                             help="Server processes; 0: one per CPU core. Default: [api] workers."),
          log_level: str = typer.Option("info", "--log-level", help="uvicorn's log level.")) -> None:
    """Serve the HTTP API (/api, /openapi.json), the calendar feeds and the pages (/ and /parties/ISO3).

    Reads are public; recording needs the ISU's bearer token (see [api] in config.toml).
    The scheduler is not started here: it runs in its own process.
    """
    # lazy: uvicorn and the web app load only when this command runs, not on the start-up of ccm
    import uvicorn

    from engine.web.app import load_api_config, server_processes

    settings = load_settings()
    daemon_logging(settings)
    processes = server_processes(load_api_config(settings).workers if workers is None else workers)
    uvicorn.run("engine.web.app:create_app", factory=True, host=host, port=port, log_level=log_level, log_config=None,
                workers=processes)


@app.command()
def calendar(party: str | None = typer.Argument(None, help="ISO3 code or name; leave out with --all."),
             all_parties: bool = typer.Option(False, "--all", help="Every party's deadlines (the ISU's feed)."),
             as_of: str | None = typer.Option(None, "--as-of", help="Evaluate as of this date (YYYY-MM-DD); default today (UTC)."),
             treaty: str | None = typer.Option(None, "--treaty", help=TREATY_HELP),
             ) -> None:
    """Print an iCalendar feed of a party's deadlines (or all parties' with --all): `ccm calendar LAO > lao.ics`.

    With several packs selected, one feed holds every selected treaty's deadlines (UIDs start with the pack)."""
    # lazy: Alembic, APScheduler, Babel, email-validator, FastAPI, Jinja2, Pydantic, SQLAlchemy, Starlette load only when this command runs, not on the start-up of ccm
    from engine.web import calendar as calendar_feed
    from engine.web.app import load_api_config

    if bool(party) == all_parties:
        fail("give a PARTY (ISO3 code or name), or --all for every party, not both")
    tr = treaties(None, treaty)
    day = parse_date(as_of, within=tr)
    settings = load_settings()
    config = load_api_config(settings)
    events = _events(settings.database_url)
    label = " + ".join(name.upper() for name in tr.names)
    items = []
    try:
        if all_parties or not party:        # (one of the two, checked above)
            for pack, (_iso3, evaluation, error) in tr.each(day, events):
                if error is not None:
                    raise error
                assert evaluation is not None   # each() yields an evaluation or an error
                items.append((evaluation, tr.get(pack).rulebook, _folder(packs, pack, tr)))
            name = f"{label} deadlines: all parties"
        else:
            participant = find_in(tr, party)
            mine = [e for e in events if e.party == participant.iso3]
            for pack, ev in tr.of_party(participant.iso3):
                items.append((ev.evaluate(participant.iso3, day, tr.events(pack, mine)), ev.rulebook, _folder(packs, pack, tr)))
            name = f"{label} deadlines: {participant.name}"
    except EvaluationError as error:
        fail(str(error))
        return
    stamp = calendar_feed.dtstamp(calendar_feed.last_check_finished(settings.database_url), day)
    body = calendar_feed.build_treaties(items, name=name, stamp=stamp, domain=config.calendar_domain,
                                        alarm_days=config.alarm_days)
    sys.stdout.buffer.write(body)
    sys.stdout.flush()


def _folder(packs, pack: str, tr):
    """The pack's folder for its wording; None for the default pack (as a one-pack feed reads it)."""
    return None if pack == packs.DEFAULT[0] else packs.find(pack).directory


def _events(url: str):
    """Every live recorded event; none when no database was initialised (a read never creates one)."""
    # lazy: Alembic, SQLAlchemy load only when this command runs, not on the start-up of ccm
    import sqlalchemy.exc

    from engine.store import database as store
    if not store.database_exists(url):
        return []
    try:
        # lazy: the ORM only once a database exists
        from engine.record.events import load_events

        return load_events(url)
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError):
        return []
