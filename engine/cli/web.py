"""``ccm serve`` (the HTTP API, calendar feeds and pages) and ``ccm calendar PARTY``.
Registered by the last line of engine/cli/main.py. FastAPI and uvicorn are imported only when
``ccm serve`` runs, so the other commands stay fast.
"""

from __future__ import annotations

import sys

import typer

from engine.cli.main import app, evaluator, fail, find_party, parse_date


@app.command()
def serve(host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
          port: int = typer.Option(8000, "--port", help="TCP port."),
          log_level: str = typer.Option("info", "--log-level", help="uvicorn's log level.")) -> None:
    """Serve the HTTP API (/api, /openapi.json), the calendar feeds and the pages (/ and /parties/ISO3).

    Reads are public; recording needs the ISU's bearer token (see [api] in config.toml).
    The scheduler is not started here: it runs in its own process.
    """
    import uvicorn

    from engine.cli.main import daemon_logging
    from engine.runtime.settings import load_settings

    daemon_logging(load_settings())
    uvicorn.run("engine.web.app:create_app", factory=True, host=host, port=port, log_level=log_level, log_config=None)


@app.command()
def calendar(party: str | None = typer.Argument(None, help="ISO3 code or name; leave out with --all."),
             all_parties: bool = typer.Option(False, "--all", help="Every party's deadlines (the ISU's feed)."),
             as_of: str | None = typer.Option(None, "--as-of", help="Evaluate as of this date (YYYY-MM-DD); default today (UTC)."),
             ) -> None:
    """Print an iCalendar feed of a party's deadlines (or all parties' with --all): `ccm calendar LAO > lao.ics`."""
    from engine.core.compute import EvaluationError
    from engine.runtime.settings import load_settings
    from engine.web import calendar as calendar_feed
    from engine.web.app import load_api_config

    if bool(party) == all_parties:
        fail("give a PARTY (ISO3 code or name), or --all for every party, not both")
    ev, day = evaluator(), parse_date(as_of)
    settings = load_settings()
    config = load_api_config(settings)
    events = _events(settings.database_url)
    try:
        if all_parties or not party:        # (one of the two, checked above)
            iso3s = sorted(ev.registry.participants)
            name = "CCM deadlines: all parties"
        else:
            participant = find_party(ev, party)
            iso3s = [participant.iso3]
            name = f"CCM deadlines: {participant.name}"
        evaluations = [ev.evaluate(iso3, day, [e for e in events if e.party == iso3]) for iso3 in iso3s]
    except EvaluationError as error:
        fail(str(error))
        return
    stamp = calendar_feed.dtstamp(calendar_feed.last_check_finished(settings.database_url), day)
    body = calendar_feed.build(evaluations, ev.rulebook, name=name, stamp=stamp, domain=config.calendar_domain,
                               alarm_days=config.alarm_days)
    sys.stdout.buffer.write(body)
    sys.stdout.flush()


def _events(url: str):
    """Every live recorded event; none when no database was initialised (a read never creates one)."""
    import sqlalchemy.exc

    from engine.store import database as store
    if not store.database_exists(url):
        return []
    try:
        from engine.record.events import load_events

        return load_events(url)
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError):
        return []
