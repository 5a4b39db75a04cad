"""The ``ccm`` app and what its commands share: the error-to-exit-status group, options, the evaluator, ``fail``.

Every command runs inside :class:`CcmGroup`, the one place that turns an exception into an exit
status and a sentence on standard error (engine/runtime/errors.py says which status means what); the
traceback is printed only with ``ccm --debug``.
"""

from __future__ import annotations

import traceback
from datetime import UTC, date, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from engine.core.compute import EvaluationError
from engine.core.evaluate import Evaluator, PartyEvaluation
from engine.core.model import Participant, UnknownPartyError
from engine.record import source as record_source
from engine.record.textsafe import TextError, parse_day
from engine.registry.shared import reset as reset_evaluators
from engine.registry.shared import shared_evaluator, shared_treaties
from engine.registry.treaties import Treaties
from engine.runtime import logs
from engine.runtime.errors import CcmError, exit_for
from engine.runtime.settings import load_settings, use_config

OPTIONS = {"debug": False, "verbose": False}   # the global options of the command being run


class CcmGroup(TyperGroup):
    """The ``ccm`` group: maps whatever a command raises to its exit status (engine.runtime.errors.exit_for)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Exception as error:
            if type(error).__module__.split(".")[0] in ("typer", "click"):   # Exit, Abort, usage errors
                raise
            code, message = exit_for(error, _configured_database)
            if OPTIONS["debug"]:
                traceback.print_exc()
            err = Console(stderr=True)
            err.print(f"[bold red]error:[/] {escape(message or type(error).__name__)}", highlight=False, soft_wrap=True)
            raise typer.Exit(code) from None
        finally:   # the --config of this run ends with it (tests and embedders run several in one process)
            use_config(None)


app = typer.Typer(cls=CcmGroup, no_args_is_help=True, add_completion=True,
                  help="Deadlines of the Convention on Cluster Munitions, computed from declarative rules.")
console = Console()
AS_OF_HELP = "Evaluate as of this date (YYYY-MM-DD); default today (UTC)."
TREATY_HELP = "Only this rule pack (e.g. apmbc), selected or not; default: every pack [engine] pack selects."
STATUS_STYLE = {"overdue": "bold red", "pending": "yellow", "fulfilled": "green", "fulfilled_late": "dark_orange",
                "lapsed": "dim", "unknown": "magenta", "received": "green", "awaiting_decision": "cyan",
                "not_needed": "dim", "missed": "red"}


def _configured_database() -> str:
    """The configured database's URL without its password, or "" when the settings cannot say."""
    # lazy: SQLAlchemy stays off the start-up of commands that never touch the database
    from engine.store.database import safe_url

    try:
        return safe_url(load_settings().database_url)
    except Exception:  # noqa: BLE001 - only a detail of the message
        return ""


def _version(value: bool) -> None:
    if value:
        try:
            print(f"ccm-deadlines {version('ccm-deadlines')}")
        except PackageNotFoundError:   # run from a source tree that was never installed
            print("ccm-deadlines (not installed)")
        raise typer.Exit(0)


@app.callback()
def main_options(config: Path | None = typer.Option(None, "--config", help="The config file to use (default: $CCM_CONFIG, "
                                                       "./config.toml, then the user's config folder).", show_default=False),
                 debug: bool = typer.Option(False, "--debug", help="Log everything, and print the traceback of an error."),
                 verbose: bool = typer.Option(False, "-v", "--verbose", help="Log what the command does (INFO)."),
                 version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                              help="Print the version and exit.")) -> None:
    """Deadlines of the Convention on Cluster Munitions, computed from declarative rules."""
    OPTIONS.update(debug=debug, verbose=verbose)
    use_config(config)
    record_source._url.cache_clear()
    reset_evaluators()
    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format, verbosity=2 if debug else 1 if verbose else 0)


def daemon_logging(settings) -> None:
    """Logging for a long-running command: INFO unless the config or -v/--debug says otherwise."""
    logs.configure(settings.log_level, settings.log_format, daemon=True,
                   verbosity=2 if OPTIONS["debug"] else 1 if OPTIONS["verbose"] else 0)


class UserError(CcmError):
    """An error the user can fix; printed as a sentence, exit status 2."""


def fail(message: str, code: int = 2) -> NoReturn:
    """Stop the command: ``message`` on stderr (by :class:`CcmGroup`), exit status ``code``."""
    raise CcmError(message, code)


def parse_date(text: str | None, what: str = "--as-of", within: Treaties | None = None) -> date:
    if not text:
        return datetime.now(UTC).date()
    try:
        day = parse_day(text, what)
    except TextError as error:
        fail(str(error))
    if what == "--as-of":
        # The API's range: far-future dates are refused at once rather than evaluated for minutes
        # (thousands of annual reports per State).
        adopted = min(ev.registry.treaty.adopted for ev in (within or treaties()).evaluators)
        high = date(adopted.year + 100, 12, 31)
        if not adopted <= day <= high:
            fail(f"--as-of {day.isoformat()} is out of range; give a date from {adopted.isoformat()} (the "
                 f"Convention's adoption) to {high.isoformat()}")
    return day


def evaluator(backend: str | None = None) -> Evaluator:
    """The process's evaluator for the settings in force (engine.registry.shared: the API and the
    scheduler started by ``ccm serve`` and ``ccm scheduler`` use the same one)."""
    settings = load_settings()
    return shared_evaluator(backend or settings.backend, settings.complete_from, settings.packs)


def treaties(backend: str | None = None, treaty: str | None = None) -> Treaties:
    """The evaluators of the packs ``[engine] pack`` selects, or of the one ``--treaty`` names (a
    pack the settings leave out is read for this command; untagged recorded events stay with the
    settings' first pack)."""
    settings = load_settings()
    names = tuple(settings.packs) + ((treaty,) if treaty and treaty not in settings.packs else ())
    return shared_treaties(backend or settings.backend, settings.complete_from, names).only(treaty)


def find_in(tr: Treaties, query: str) -> Participant:
    """The participant in the first selected registry that knows it; exit 2 naming the query otherwise."""
    try:
        return tr.find(query)
    except UnknownPartyError as error:
        fail(str(error))


def evaluations_of(tr: Treaties, iso3: str, day: date, recorded) -> list[tuple[str, Evaluator, PartyEvaluation]]:
    """(pack, evaluator, evaluation) for each selected pack whose registry lists the party."""
    out = []
    for name, ev in tr.of_party(iso3):
        try:
            out.append((name, ev, ev.evaluate(iso3, day, tr.events(name, recorded))))
        except EvaluationError as error:
            fail(f"{ev.registry.participant(iso3).name}: {error}")
    return out


def find_party(ev: Evaluator, query: str) -> Participant:
    try:
        return ev.registry.find(query)
    except UnknownPartyError as error:
        fail(str(error))


