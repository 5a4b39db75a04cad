"""The record's commands on the ``ccm`` app: init, db upgrade, record ..., history, import,
export, check, stats. Registered by importing engine/cli/main.py.

Exit statuses (engine/runtime/errors.py): 0 success (for ``check``: nothing needs attention); 1 ``check``
found something that needs attention; 2 a refusal or an error the user can fix; 3 an operational
failure (the database unreachable, the digest folder not writable).

SQLAlchemy, the store, the record and rich's tables are imported inside the commands that use
them: every ``ccm`` command loads this module, and most of them never touch the database.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import typer
from rich import box
from rich.console import Console

from engine.cli.base import TREATY_HELP, app, evaluator, fail, parse_date, treaties
from engine.core.model import RegistryError
from engine.core.packs import PackError
from engine.record.textsafe import TextError, parse_year
from engine.registry.load import load_registry
from engine.runtime.errors import OperationalFailure
from engine.runtime.settings import load_settings

if TYPE_CHECKING:
    from engine.record.events import NewEvent

console = Console()
db_app = typer.Typer(no_args_is_help=True, help="The database's schema.")
record_app = typer.Typer(no_args_is_help=True, help="Record what a State did (or a meeting decided).")
app.add_typer(db_app, name="db")
app.add_typer(record_app, name="record")

AS_OF_HELP = "Evaluate as of this date (YYYY-MM-DD); default today (UTC)."


def _url() -> str:
    return load_settings().database_url


def _ready(url: str, create: bool = False) -> None:
    """Make sure the schema is current; with ``create``, initialise a missing SQLite file."""
    # lazy: Alembic, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from sqlalchemy.exc import OperationalError

    from engine.store import database as store
    try:
        current = store.current_revision(url)
        if create and current is None:   # no file, or a server database without the schema
            store.upgrade(url)
            where = store.sqlite_path(url) or store.safe_url(url)
            Console(stderr=True).print(f"Initialised a new database at {where}.", highlight=False)
            return
        store.require_current(url, current)
    except store.DatabaseNotInitialised as error:
        fail(str(error)[0].upper() + str(error)[1:] + ".")
    except OperationalError as error:
        raise OperationalFailure(f"cannot reach the database {store.safe_url(url)}: "
                                 f"{str(error.orig).strip().splitlines()[0]}") from error


# ----------------------------------------------------------------------------- schema

@app.command()
def init(registry_dir: Path | None = typer.Option(
        None, "--registry", file_okay=False,
        help="Load and check this registry folder instead of the embedded one (e.g. an edited copy)."),
        json_output: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Load and check the registry, then create the database (SQLite file by default, or
    CCM_DATABASE_URL) and bring its schema up to date.

    A registry with a problem is refused before anything is created. The registry is then
    copied into the database's registry_* tables (for SQL users and reports), unless the
    database already holds it (the same hash); every ``ccm check`` refreshes that copy when the
    registry changes. The files stay its source of truth: the engine reads them, and each check
    run records the hash of the files it used.
    """
    # lazy: Alembic, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from engine.store import database as store
    from engine.store.snapshot import load_snapshot, snapshot_hash

    try:
        registry = load_registry(registry_dir)
    except RegistryError as error:
        fail(f"{error}\nNothing was created.")
        return
    url = _url()
    before, after = store.upgrade(url)
    with store.writer_session(url) as session, session.begin():
        store.lock_for_check(session)      # a check refreshes the snapshot too: one at a time
        replaced = snapshot_hash(session)
        loaded = load_snapshot(session, registry)
    where = store.sqlite_path(url) or store.safe_url(url)
    if json_output:
        print(json.dumps({"database": str(where), "schema_before": before, "schema": after,
                          "registry": {"source": "embedded" if registry_dir is None else str(registry_dir),
                                       "hash": registry.hash, "participants": len(registry.participants),
                                       "meetings": len(registry.meetings), "declarations": len(registry.declarations),
                                       "completions": len(registry.completions), "decisions": len(registry.decisions)},
                          "registry_written": bool(loaded), "replaced_registry": replaced}, ensure_ascii=False, indent=1))
        return
    if before == after:
        console.print(f"The database at {where} is already initialised (schema {after}).", highlight=False, soft_wrap=True)
    else:
        console.print(f"Initialised the database at {where} (schema {before or 'none'} -> {after}).", highlight=False,
                      soft_wrap=True)
    console.print(f"Loaded {'the embedded registry' if registry_dir is None else f'the registry at {registry_dir}'}: "
                  f"{len(registry.participants)} participants, {len(registry.meetings)} meetings, "
                  f"{len(registry.declarations)} declarations, {len(registry.completions)} completions, "
                  f"{len(registry.decisions)} decisions, {len(registry.requests)} extension requests, "
                  f"{len(registry.observations)} observations, {len(registry.receipts)} published receipts "
                  f"(registry {registry.hash}).", highlight=False, soft_wrap=True)
    if not loaded:
        console.print(f"The database's copy of the registry (registry_* tables) is already loaded with registry "
                      f"{registry.hash}; nothing written.", highlight=False, soft_wrap=True)
    else:
        console.print("Wrote it to the database's registry_* tables"
                      + (f", replacing registry {replaced}." if replaced else "."), highlight=False, soft_wrap=True)


@db_app.command("upgrade")
def db_upgrade(json_output: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Migrate an existing database to the newest schema."""
    # lazy: Alembic, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from engine.store import database as store
    url = _url()
    if not store.database_exists(url):
        fail(f"there is no database at {store.sqlite_path(url)}; create it with `ccm init`")
    before, after = store.upgrade(url)
    if json_output:
        print(json.dumps({"before": before, "after": after, "migrated": before != after}))
        return
    console.print(f"Schema {before or 'none'} -> {after}." if before != after else f"Schema already at {after}.")


# ----------------------------------------------------------------------------- recording

def recorded_by() -> str | None:
    return os.environ.get("CCM_RECORDED_BY") or os.environ.get("USER")


#: The pack the running command records for, set by :func:`_use` first thing in each command.
_scope: tuple[str, str, object] | None = None


def _use(treaty: str | None) -> None:
    """Record for the pack ``--treaty`` names (a selected one), or the settings' first pack."""
    global _scope
    tr = treaties()
    home = tr.home
    assert home is not None      # Treaties sets it to its first pack
    try:
        name = treaty or home
        _scope = (name, home, tr.get(name))
    except PackError as error:
        fail(f"{error}. Events are recorded for a selected pack only: select it in config.toml "
             f"([engine] pack) or with CCM_PACK={','.join((*tr.names, treaty or ''))}")


def _pack_evaluator():
    return _scope[2] if _scope else evaluator()


class _PackArgs(TypedDict, total=False):
    """The keywords that tie a recorded event to its pack (none: the home pack of the settings)."""

    pack: str
    home: str


def _pack_args() -> _PackArgs:
    return {"pack": _scope[0], "home": _scope[1]} if _scope else {}


def _record(event: NewEvent, corrects: str | None, json_output: bool = False) -> None:
    # lazy: Alembic, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from engine.record.events import RecordError, pack_tag, record

    url = _url()
    _ready(url, create=True)
    event.corrects = corrects
    event.recorded_by = recorded_by()
    event.extra = {**event.extra, **pack_tag(**_pack_args())}
    try:
        event_id, created = record(url, _pack_evaluator(), event, **_pack_args())
    except RecordError as error:
        fail(str(error))
        return
    if json_output:
        print(json.dumps({"id": event_id, "created": created, "party": event.party, "kind": event.kind,
                          "on": event.on.isoformat(), "period": event.period, "corrects": corrects},
                         ensure_ascii=False, indent=1))
        return
    name = _pack_evaluator().registry.participant(event.party).name
    if created:
        console.print(f"Recorded {event_id}: {event.kind} of {name} on {event.on.isoformat()}"
                      + (f" ({event.period})" if event.period else "") + ". It counts from the next `ccm check`.",
                      highlight=False)
    else:
        console.print(f"Already recorded as {event_id}; nothing written.", highlight=False)


def _party(query: str) -> str:
    # lazy: Alembic, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from engine.record.events import RecordError, resolve_party

    try:
        return resolve_party(_pack_evaluator(), query)
    except RecordError as error:
        fail(str(error))
        raise


def _article(value: str, kind: str = "decision:extension:art") -> str:
    """An article under which the pack's rules know this kind of event (extensions, completions)."""
    rules = _pack_evaluator().rulebook.rules
    known = sorted({k[len(kind):] for r in rules for k in (r.fulfilled_by, r.decided_by) if k and k.startswith(kind)},
                   key=lambda a: (len(a), a))
    if value not in known:
        what = "extensions exist" if kind.startswith("decision:") else "completions are recorded"
        fail(f"--article {value!r}: {what} under Article {' or '.join(known)}; give {' or '.join(known)}")
    return value


def _meeting(code: str) -> str:
    # lazy: Alembic, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from engine.record.events import RecordError, check_meeting

    try:
        check_meeting(_pack_evaluator(), code)
    except RecordError as error:
        fail(f"Refused: {error}")
    return code


CORRECTS = typer.Option(None, "--corrects", help="Id of a recorded event this one corrects (it is kept, marked superseded).")
COMMENT = typer.Option(None, "--comment", help="A note kept with the record.")
JSON_OUTPUT = typer.Option(False, "--json", help="Print JSON: the event's id and whether it was written.")
TREATY = typer.Option(None, "--treaty", help="The rule pack the event belongs to (a selected one; default: the first "
                      "[engine] pack).")


@record_app.command("report")
def record_report(party: str = typer.Argument(..., help="ISO3 code or name."),
                  kind: str = typer.Option(..., "--kind", help="initial | annual | retention"),
                  year: str | None = typer.Option(None, "--year", help="The calendar year reported on (annual, retention), YYYY."),
                  received: str = typer.Option(..., "--received", help="Date received, YYYY-MM-DD."),
                  symbol: str | None = typer.Option(None, "--symbol", help="Document symbol."),
                  source: str | None = typer.Option(None, "--source", help="URL of the report."),
                  comment: str | None = COMMENT, corrects: str | None = CORRECTS,
                  json_output: bool = JSON_OUTPUT, treaty: str | None = TREATY) -> None:
    """A transparency report or a retention report received."""
    _use(treaty)
    # lazy: Alembic, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from engine.record.events import REPORT_KINDS, NewEvent

    if kind not in REPORT_KINDS:
        fail(f"--kind {kind!r}: give one of {', '.join(REPORT_KINDS)}")
    if kind != "initial" and year is None:
        fail(f"a {kind} report covers a calendar year; give it with --year YYYY")
    if kind == "initial" and year is not None:
        fail("an initial report has no year; leave out --year")
    if year is not None:
        try:
            year = str(parse_year(year, "--year"))
        except TextError as error:
            fail(str(error))
    _record(NewEvent(party=_party(party), kind=f"report:{kind}", on=parse_date(received, "--received"),
                     period=str(year) if year is not None else None, symbol=symbol, source=source, comment=comment), corrects, json_output)


@record_app.command("extension-request")
def record_extension_request(party: str = typer.Argument(..., help="ISO3 code or name."),
                             article: str = typer.Option(..., "--article", help="The article number, one the pack's rules know for this event."),
                             meeting: str = typer.Option(..., "--meeting", help="Meeting code, as in the pack's meetings.csv."),
                             submitted: str = typer.Option(..., "--submitted", help="Date submitted, YYYY-MM-DD."),
                             symbol: str | None = typer.Option(None, "--symbol", help="Document symbol."),
                             source: str | None = typer.Option(None, "--source", help="URL."),
                             comment: str | None = COMMENT, corrects: str | None = CORRECTS,
                  json_output: bool = JSON_OUTPUT, treaty: str | None = TREATY) -> None:
    """An extension request submitted for a meeting (under an article whose deadline can be extended)."""
    _use(treaty)
    # lazy: Alembic, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from engine.record.events import NewEvent

    _record(NewEvent(party=_party(party), kind=f"extension_request:art{_article(article)}",
                     on=parse_date(submitted, "--submitted"), period=_meeting(meeting), symbol=symbol, source=source,
                     comment=comment), corrects, json_output)


@record_app.command("decision")
def record_decision(party: str = typer.Argument(..., help="ISO3 code or name."),
                    article: str = typer.Option(..., "--article", help="The article number, one the pack's rules know for this event."),
                    meeting: str = typer.Option(..., "--meeting", help="Meeting code, as in the pack's meetings.csv."),
                    decided: str = typer.Option(..., "--decided", help="Date decided, YYYY-MM-DD."),
                    granted: str = typer.Option(..., "--granted", help="The new deadline granted, YYYY-MM-DD."),
                    document: str | None = typer.Option(None, "--document", help="Symbol of the decision."),
                    source: str | None = typer.Option(None, "--source", help="URL."),
                    comment: str | None = COMMENT, corrects: str | None = CORRECTS,
                  json_output: bool = JSON_OUTPUT, treaty: str | None = TREATY) -> None:
    """A meeting's decision granting an extension (checked against the treaty's ceiling)."""
    _use(treaty)
    # lazy: Alembic, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from engine.record.events import NewEvent

    code = _meeting(meeting)
    granted_day = parse_date(granted, "--granted")
    _record(NewEvent(party=_party(party), kind=f"decision:extension:art{_article(article)}",
                     on=parse_date(decided, "--decided"), period=code, symbol=document, source=source, comment=comment,
                     extra={"granted_deadline": granted_day.isoformat(), "meeting": code, "document": document}), corrects, json_output)


@record_app.command("completion")
def record_completion(party: str = typer.Argument(..., help="ISO3 code or name."),
                      article: str = typer.Option(..., "--article", help="The article number, one the pack's rules know for this event."),
                      completed: str = typer.Option(..., "--completed", help="Date completed, YYYY-MM-DD."),
                      declared_at: str | None = typer.Option(None, "--declared-at", help="Meeting code where compliance was declared."),
                      source: str | None = typer.Option(None, "--source", help="URL."),
                      comment: str | None = COMMENT, corrects: str | None = CORRECTS,
                  json_output: bool = JSON_OUTPUT, treaty: str | None = TREATY) -> None:
    """Stockpile destruction or clearance completed."""
    _use(treaty)
    # lazy: Alembic, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from engine.record.events import NewEvent

    if declared_at:
        _meeting(declared_at)
    _record(NewEvent(party=_party(party), kind=f"completion:art{_article(article, 'completion:art')}",
                     on=parse_date(completed, "--completed"), source=source, comment=comment,
                     extra={"declared_at": declared_at} if declared_at else {}), corrects, json_output)


@record_app.command("withdrawal")
def record_withdrawal(party: str = typer.Argument(..., help="ISO3 code or name."),
                      effective: str = typer.Option(..., "--effective", help="Date the withdrawal takes effect, YYYY-MM-DD."),
                      source: str | None = typer.Option(None, "--source", help="URL (depositary notification)."),
                      comment: str | None = COMMENT, corrects: str | None = CORRECTS,
                  json_output: bool = JSON_OUTPUT, treaty: str | None = TREATY) -> None:
    """A withdrawal taking effect."""
    _use(treaty)
    # lazy: Alembic, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from engine.record.events import NewEvent

    _record(NewEvent(party=_party(party), kind="withdrawal", on=parse_date(effective, "--effective"), source=source,
                     comment=comment), corrects, json_output)


@record_app.command("clarification-request")
def record_clarification_request(party: str = typer.Argument(..., help="ISO3 code or name of the State asked."),
                                 received: str = typer.Option(..., "--received", help="Date the State received it, YYYY-MM-DD."),
                                 request_id: str | None = typer.Option(None, "--id", help="An id for the request (default: made up)."),
                                 symbol: str | None = typer.Option(None, "--symbol", help="Document symbol."),
                                 source: str | None = typer.Option(None, "--source", help="URL."),
                                 comment: str | None = COMMENT, corrects: str | None = CORRECTS,
                  json_output: bool = JSON_OUTPUT, treaty: str | None = TREATY) -> None:
    """A request for clarification received by a State; its id names the response's period."""
    _use(treaty)
    # lazy: Alembic, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from engine.record.events import NewEvent

    iso3 = _party(party)
    day = parse_date(received, "--received")
    _record(NewEvent(party=iso3, kind="clarification_request", on=day, symbol=symbol, source=source, comment=comment,
                     id=request_id or f"{iso3}-clarification-{day.isoformat()}"), corrects, json_output)


@record_app.command("clarification-response")
def record_clarification_response(party: str = typer.Argument(..., help="ISO3 code or name."),
                                  request: str = typer.Option(..., "--request", help="Id of the request answered."),
                                  submitted: str = typer.Option(..., "--submitted", help="Date submitted, YYYY-MM-DD."),
                                  symbol: str | None = typer.Option(None, "--symbol", help="Document symbol."),
                                  source: str | None = typer.Option(None, "--source", help="URL."),
                                  comment: str | None = COMMENT, corrects: str | None = CORRECTS,
                  json_output: bool = JSON_OUTPUT, treaty: str | None = TREATY) -> None:
    """A State's response to a request for clarification."""
    _use(treaty)
    # lazy: Alembic, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from engine.record.events import NewEvent

    _record(NewEvent(party=_party(party), kind="clarification_response", on=parse_date(submitted, "--submitted"),
                     period=request, symbol=symbol, source=source, comment=comment), corrects, json_output)


@app.command()
def history(party: str = typer.Argument(..., help="ISO3 code or name."),
            as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
            json_output: bool = typer.Option(False, "--json", help="Print JSON."),
            treaty: str | None = TREATY) -> None:
    """A party's dated history: registry facts and recorded events, with their sources (one pack's:
    --treaty, or the first [engine] pack)."""
    # lazy: Alembic, rich's tables, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from rich.table import Table

    from engine.record.events import RecordError
    from engine.record.events import history as build
    from engine.store import database as store

    _use(treaty)
    url = _url()
    iso3 = _party(party)
    day = parse_date(as_of)
    use = url if store.database_exists(url) and store.current_revision(url) else None
    try:
        items = build(use, _pack_evaluator(), iso3, day, **_pack_args())
    except RecordError as error:
        fail(str(error))
        return
    if json_output:
        print(json.dumps({"party": iso3, "as_of": day.isoformat(), "history": items}, ensure_ascii=False, indent=1))
        return
    table = Table(title=f"{_pack_evaluator().registry.participant(iso3).name} ({iso3}): history as of {day.isoformat()}")
    for column in ("Date", "Origin", "What", "Sources"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(item["date"] or "", item["origin"], item["what"], "\n".join(item["sources"]))
    console.print(table)


# ----------------------------------------------------------------------------- import / export

@app.command(name="import")
def import_command(file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A .csv or .json file of report receipts."),
                   json_output: bool = typer.Option(False, "--json", help="Print JSON."),
                   treaty: str | None = TREATY) -> None:
    """Import report receipts (columns party,kind,year,received,symbol,source): all rows or none;
    every row is a receipt under the pack --treaty names (default: the first [engine] pack)."""
    # lazy: Alembic, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from engine.record.events import ImportError_, import_file

    _use(treaty)
    url = _url()
    _ready(url, create=True)
    try:
        created, skipped = import_file(url, _pack_evaluator(), file, recorded_by=recorded_by(), **_pack_args())
    except ImportError_ as error:
        fail(str(error))
        return
    if json_output:
        print(json.dumps({"file": file.name, "imported": created, "already_recorded": skipped}))
        return
    console.print(f"Imported {created} receipt(s) from {file.name}" + (f"; {skipped} already recorded" if skipped else "")
                  + ". They count from the next `ccm check`.", highlight=False)


@app.command()
def export(fmt_name: str = typer.Option("csv", "--format", help="csv or json."),
           output: Path | None = typer.Option(None, "--output", help="File to write (default: standard output)."),
           treaty: str | None = typer.Option(None, "--treaty", help="Only this pack's receipts (a selected one); "
                                                "default: every receipt recorded.")) -> None:
    """Export the recorded report receipts in the import format (one pack's with --treaty, which
    `ccm import --treaty` takes back)."""
    # lazy: Alembic, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from engine.record.events import export_rows, format_export
    from engine.store import database as store

    if fmt_name not in ("csv", "json"):
        fail(f"--format {fmt_name!r}: give csv or json")
    args: _PackArgs = {}
    if treaty is not None:
        _use(treaty)
        args = _pack_args()
    url = _url()
    rows = export_rows(url, **args) if store.database_exists(url) and store.current_revision(url) else []
    text = format_export(rows, fmt_name, terminal=output is None and sys.stdout.isatty())
    if output:
        output.write_text(text, encoding="utf-8")
        Console(stderr=True).print(f"Wrote {len(rows)} receipt(s) to {output}.", highlight=False)
    else:
        sys.stdout.write(text)


# ----------------------------------------------------------------------------- the check

NO_WRAP = {"party", "period", "due", "days_late", "days_left", "field", "meeting", "items"}


def _show(title: str, rows: list[dict], columns: list[tuple[str, str]], limit: int) -> None:
    """A digest section as a table that fits 80 columns: names wrap, dates and numbers never do."""
    # lazy: rich's tables load only when this command runs, not on the start-up of ccm
    from rich.table import Table

    console.print(f"[bold]{title} ({len(rows)})[/]", highlight=False)
    if not rows:
        console.print("  none", highlight=False)
        return
    names = evaluator().rulebook.name_of
    table = Table(show_header=True, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    for header, key in columns:
        table.add_column(header, no_wrap=key in NO_WRAP, overflow="fold")
    for row in rows[:limit]:
        table.add_row(*(names(str(row[key])) if key in ("obligation", "obligation_id") else str(row[key])
                        for _, key in columns))
    console.print(table)
    if len(rows) > limit:
        console.print(f"  ... and {len(rows) - limit} more (see the digest files)", highlight=False)


@app.command()
def check(as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
          limit: int = typer.Option(20, "--limit", help="Rows printed per section (the files have all)."),
          store_replay: bool = typer.Option(False, "--store", help="With an --as-of before the last stored check: "
                                            "store this run anyway (it becomes the latest state)."),
          json_output: bool = typer.Option(False, "--json", help="Print the digest as JSON instead.")) -> None:
    """The daily check: evaluate every party, store obligations and changes, write and print the digest.

    An --as-of before the last stored check is a replay: the digest is printed, nothing is stored
    and no digest file is written, unless --store is given.

    Exit status 0: nothing needs attention; 1: something does (an obligation overdue, a deadline
    within 90 days, an extension request due before the next meeting, a party not evaluated);
    2: a mistake in the input; 3: the database or the digest folder cannot be used.
    """
    # lazy: Alembic, email-validator, Jinja2, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from engine.check.run import check_and_digest, last_check_as_of
    from engine.check.treaties import check_treaties, label

    url = _url()
    day = parse_date(as_of)
    folder = load_settings().output_folder
    _ready(url, create=True)
    last = last_check_as_of(url)
    replay = last is not None and day < last and not store_replay
    tr = treaties()
    if tr.several:   # one transaction, one digest with a section per treaty; --json: a list, one object per treaty
        results, contexts, files = check_treaties(url, tr, day, folder, commit=not replay)
        if json_output:
            print(json.dumps(contexts, ensure_ascii=False, indent=1, default=str))
        else:
            for number, (result, context) in enumerate(zip(results, contexts)):
                _print_check(result, context, files if number == len(contexts) - 1 else None, day, last, replay, limit,
                             label(context["treaty"]), conclude=False)
        attention = any(context["attention"] for context in contexts)
        if not json_output:
            console.print("Needs attention (exit status 1)." if attention else "Nothing needs attention (exit status 0).",
                          highlight=False)
        raise typer.Exit(1 if attention else 0)
    result, context, paths = check_and_digest(url, evaluator(), day, folder, commit=not replay)
    if json_output:
        print(json.dumps(context, ensure_ascii=False, indent=1, default=str))
    else:
        _print_check(result, context, paths, day, last, replay, limit, tr.names[0].upper())
    raise typer.Exit(1 if context["attention"] else 0)


def _print_check(result, context, paths, day, last, replay: bool, limit: int, label: str, conclude: bool = True) -> None:
    """One pack's digest on the terminal; with several packs, one after the other (``conclude``: the last)."""
    if replay:
        console.print(f"[bold]Replay[/] as of {day.isoformat()}, before the last stored check ({last.isoformat()}): "
                      "nothing is stored and no digest file is written (--store to store it).", highlight=False)
    c = context["counts"]
    console.print(f"[bold]{label} daily check as of {context['as_of_text']}[/] — "
                  + ("replay: " if replay else f"run {result.run_id}: ") +
                  f"{c['parties']} participants, {c['obligations']} obligations, {c['changes']} change(s) "
                  f"({c['inserted']} new, {c['updated']} updated, {c['removed']} removed).", highlight=False)
    for e in context["errors"]:
        console.print(f"[red]not evaluated:[/] {e['name']} ({e['party']}): {e['message']}", highlight=False)
    _show("Reports overdue", context["overdue_reports"],
          [("Party", "party"), ("Report", "obligation"), ("Period", "period"), ("Due", "due"), ("Days late", "days_late")], limit)
    unknown = context["unknown_reports"]
    if unknown["total"]:
        console.print(f"[bold]Reports with no record of receipt ({unknown['total']})[/]: of {unknown['parties']} parties; "
                      "status unknown, not overdue. Import the ISU's receipts (ccm import) and set "
                      "receipts_complete_from.", highlight=False)
    _show("Other obligations overdue", context["overdue_other"],
          [("Party", "party"), ("Obligation", "obligation"), ("Period", "period"), ("Due", "due"), ("Days late", "days_late")], limit)
    _show("Decisions to record (a request was considered, no decision is recorded)", context["decisions_to_record"],
          [("Party", "party"), ("Request", "obligation"), ("Meeting", "meeting"), ("Was due", "due")], limit)
    _show("Extension requests missed, the deadline still open",
          [{**r, "deadline_due": r["deadline"]["due"], "deadline_status": r["deadline"]["status"]} for r in context["missed"]],
          [("Party", "party"), ("Request", "obligation"), ("For", "meeting"), ("Was due", "due"),
           ("Deadline", "deadline_due"), ("Its status", "deadline_status")], limit)
    _show(f"Deadlines in the next {context['window']} days", context["upcoming"],
          [("Party", "party"), ("Obligation", "obligation"), ("Period", "period"), ("Due", "due_label"), ("Days left", "days_left")], limit)
    meeting = context["next_meeting"]
    _show("Extension requests before the next meeting"
          + (f" ({meeting['code']}, {meeting['start']}{', projected: dates not yet set' if meeting['projected'] else ''})"
             if meeting else " (none scheduled)"),
          context["extension_requests"], [("Party", "party"), ("Request", "obligation"), ("For", "meeting"), ("Due", "due_label")], limit)
    if context["no_contact"]:
        _show("Needing attention, with no contact for letters (ccm contacts set)", context["no_contact"],
              [("Party", "party"), ("Name", "name"), ("Items", "items")], limit)
    if context["first_check"]:
        console.print(f"[bold]Changed since the previous check[/]: first check, {c['inserted']} obligations stored.",
                      highlight=False)
    else:
        _show(f"Different from the stored check as of {last.isoformat()}" if replay else "Changed since the previous check",
              context["changes"],
              [("Party", "party"), ("Obligation", "obligation_id"), ("Period", "period"), ("Field", "field"),
               ("From", "old"), ("To", "new"), ("Why", "reason")], limit)
    if paths:
        console.print(f"Digest written to {paths[0]} and {paths[1].name}.", highlight=False)
    if conclude:
        console.print("Needs attention (exit status 1)." if context["attention"] else "Nothing needs attention (exit status 0).",
                      highlight=False)


@app.command()
def stats(as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
          json_output: bool = typer.Option(False, "--json", help="Print JSON."),
          treaty: str | None = typer.Option(None, "--treaty", help=TREATY_HELP)) -> None:
    """Counts like the progress reports of the Meetings of States Parties, as of a date.

    With several packs selected (and no --treaty), one table per treaty; --json then prints a
    list of the one-pack objects, each with a "treaty" key."""
    # lazy: Alembic, email-validator, Jinja2, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from sqlalchemy.exc import OperationalError

    from engine.check.run import stats as compute
    from engine.record.events import load_events
    from engine.store import database as store

    url = _url()
    day = parse_date(as_of)
    events = []
    if store.database_exists(url):
        try:
            events = load_events(url) if store.current_revision(url) else []
        except OperationalError:
            events = []
    tr = treaties(None, treaty)
    listed = [(name, ev, compute(ev, day, tr.events(name, events))) for name, ev in tr.items()]
    if json_output:
        body = [{"treaty": name, **counts} for name, _, counts in listed] if tr.several else listed[0][2]
        print(json.dumps(body, ensure_ascii=False, indent=1))
        return
    for name, ev, counts in listed:
        if tr.several:
            console.print(f"[bold underline]{ev.rulebook.title}[/] ({name})", highlight=False)
        _print_stats(counts, day, ev.rulebook, name)


def _print_stats(counts: dict, day, rulebook, pack: str) -> None:
    """One pack's counts as a table: the sections of its rules, the labels of its wording."""
    # lazy: Alembic, email-validator, Jinja2, rich's tables, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from rich.table import Table

    from engine.check.run import stats_sections
    from engine.core import packs, wording

    table = Table(title=f"States Parties' progress as of {day.isoformat()} ({counts['recorded_events']} recorded events)")
    table.add_column("Measure")
    table.add_column("Count", justify="right")

    labels = wording.load(packs.find(pack).directory).get("stats", {})
    rows = [("States Parties", counts["states_parties"]), ("Signatories (not yet bound)", counts["signatories"]),
            ("Former States Parties", counts["former_states_parties"])]
    for name, section in stats_sections(rulebook).items():   # the rules' `stats` sections
        a, label = counts[name], labels.get("sections", {}).get(name, name)
        if section["shape"] == "deadline":
            rows += [(f"{label}: States with the obligation", a["states_with_obligation"]), ("  completed", a["completed"]),
                     ("  extended", a["extended"]), ("  deadline passed, outstanding", a["deadline_passed_outstanding"]),
                     ("  deadline passed, decision not recorded", a["deadline_passed_decision_not_recorded"]),
                     ("  extension request awaiting a recorded decision", a["extension_requests_awaiting_decision"]),
                     ("  extension request missed", a["extension_requests_missed"])]
            continue
        rows += [(f"{label} due", a["due"]), ("  received", a["received"])]
        if section["shape"] == "once":
            rows += [("    of which late", a["received_late"]), ("    of which on a date not recorded", a["received_date_unknown"])]
        rows += [("  outstanding (recorded or observed)", a["outstanding"]), ("  no record of receipt (unknown)", a["unknown"])]
        if section["shape"] == "once":
            rows.append((f"{label} not yet due", a["not_yet_due"]))
    decided = counts["extension_requests_decided"]
    rows += [(labels.get("decided", {}).get(key, f"Extension requests decided ({key})"), value)
             for key, value in decided.items() if key != "total"]
    for label, value in rows:
        table.add_row(label, str(value))
    console.print(table)
    for e in counts["errors"]:
        console.print(f"[red]not evaluated:[/] {e['party']}: {e['message']}", highlight=False)
