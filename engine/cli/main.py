"""The ``ccm`` command line: query parties, deadlines and explanations (the record's commands are added by their modules).

Every command runs inside :class:`CcmGroup`, the one place that turns an exception into an exit
status and a sentence on standard error (engine/runtime/errors.py says which status means what); the
traceback is printed only with ``ccm --debug``.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, date
from pathlib import Path

import typer
from rich.console import Console
from typer.core import TyperGroup

from engine.core import packs
from engine.core.compute import EvaluationError
from engine.core.dates import fmt
from engine.core.evaluate import Evaluator, PartyEvaluation
from engine.core.model import UnknownPartyError
from engine.registry.shared import reset as reset_evaluators
from engine.registry.shared import shared_evaluator, shared_treaties
from engine.registry.treaties import Treaties
from engine.runtime.errors import CcmError, exit_for
from engine.runtime.settings import load_settings

OPTIONS = {"debug": False, "verbose": False}   # the global options of the command being run


class CcmGroup(TyperGroup):
    """The ``ccm`` group: maps whatever a command raises to its exit status (engine.runtime.errors.exit_for)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Exception as error:
            if type(error).__module__.split(".")[0] in ("typer", "click"):   # Exit, Abort, usage errors
                raise
            code, message = exit_for(error)
            if OPTIONS["debug"]:
                import traceback

                traceback.print_exc()
            from rich.markup import escape

            err = Console(stderr=True)
            err.print(f"[bold red]error:[/] {escape(message or type(error).__name__)}", highlight=False, soft_wrap=True)
            raise typer.Exit(code) from None
        finally:   # the --config of this run ends with it (tests and embedders run several in one process)
            from engine.runtime.settings import use_config

            use_config(None)


app = typer.Typer(cls=CcmGroup, no_args_is_help=True, add_completion=True,
                  help="Deadlines of the Convention on Cluster Munitions, computed from declarative rules.")
console = Console()
AS_OF_HELP = "Evaluate as of this date (YYYY-MM-DD); default today (UTC)."
TREATY_HELP = "Only this rule pack (e.g. apmbc), selected or not; default: every pack [engine] pack selects."
STATUS_STYLE = {"overdue": "bold red", "pending": "yellow", "fulfilled": "green", "fulfilled_late": "dark_orange",
                "lapsed": "dim", "unknown": "magenta", "received": "green", "awaiting_decision": "cyan",
                "not_needed": "dim", "missed": "red"}


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

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
    from engine.record import source as record_source
    from engine.runtime import logs
    from engine.runtime.settings import use_config

    OPTIONS.update(debug=debug, verbose=verbose)
    use_config(config)
    record_source._url.cache_clear()
    reset_evaluators()
    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format, verbosity=2 if debug else 1 if verbose else 0)


def daemon_logging(settings) -> None:
    """Logging for a long-running command: INFO unless the config or -v/--debug says otherwise."""
    from engine.runtime import logs
    logs.configure(settings.log_level, settings.log_format, daemon=True,
                   verbosity=2 if OPTIONS["debug"] else 1 if OPTIONS["verbose"] else 0)


class UserError(CcmError):
    """An error the user can fix; printed as a sentence, exit status 2."""


def fail(message: str, code: int = 2) -> None:
    """Stop the command: ``message`` on stderr (by :class:`CcmGroup`), exit status ``code``."""
    raise CcmError(message, code)


def parse_date(text: str | None, what: str = "--as-of", within: Treaties | None = None) -> date:
    if not text:
        from datetime import datetime
        return datetime.now(UTC).date()
    from engine.record.textsafe import TextError, parse_day

    try:
        day = parse_day(text, what)
    except TextError as error:
        fail(str(error))
        raise  # unreachable
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
    return shared_evaluator(backend or settings.backend, settings.receipts_complete_from, settings.packs)


def treaties(backend: str | None = None, treaty: str | None = None) -> Treaties:
    """The evaluators of the packs ``[engine] pack`` selects, or of the one ``--treaty`` names (a
    pack the settings leave out is read for this command; untagged recorded events stay with the
    settings' first pack)."""
    settings = load_settings()
    names = tuple(settings.packs) + ((treaty,) if treaty and treaty not in settings.packs else ())
    return shared_treaties(backend or settings.backend, settings.receipts_complete_from, names).only(treaty)


def find_in(tr: Treaties, query: str):
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


def find_party(ev: Evaluator, query: str):
    try:
        return ev.registry.find(query)
    except UnknownPartyError as error:
        fail(str(error))


@app.command()
def parties(as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
            json_output: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List every participant: ISO3, name, status and entry into force."""
    ev, day = evaluator(), parse_date(as_of)
    rows = []
    for iso3 in sorted(ev.registry.participants):
        evaluation = ev.evaluate(iso3, day)
        rows.append(evaluation.to_json()["party"])
    if json_output:
        print(json.dumps({"as_of": day.isoformat(), "parties": rows}, ensure_ascii=False, indent=1))
        return
    from rich import box
    from rich.table import Table

    table = Table(title=f"Participants as of {fmt(day)}", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column("ISO3", no_wrap=True)
    table.add_column("Name", overflow="fold", ratio=1)
    table.add_column("Status", no_wrap=True)
    table.add_column("Entry into force", no_wrap=True)
    for row in rows:
        table.add_row(row["iso3"], row["name"], row["status"], row["entry_into_force"] or "")
    console.print(table)


@app.command()
def deadlines(party: str = typer.Argument(..., help="ISO3 code or name, case-insensitive."),
              as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
              json_output: bool = typer.Option(False, "--json", help="Print the JSON other tools parse."),
              backend: str | None = typer.Option(None, help="durable or reference (default: config.toml)."),
              treaty: str | None = typer.Option(None, "--treaty", help=TREATY_HELP)) -> None:
    """A party's obligations as of a date: due dates, original dates, statuses.

    With several packs selected (and no --treaty), one table per treaty the party is listed by;
    --json then prints a list of the one-pack objects, each with a "treaty" key."""
    tr = treaties(backend, treaty)
    day = parse_date(as_of, within=tr)
    participant = find_in(tr, party)
    found = evaluations_of(tr, participant.iso3, day, _recorded(participant.iso3))
    if json_output:
        if tr.several:
            print(json.dumps([{"treaty": name, **evaluation.to_json()} for name, _, evaluation in found],
                             ensure_ascii=False, indent=1))
        else:
            print(json.dumps(found[0][2].to_json(), ensure_ascii=False, indent=1))
        return
    for name, ev, evaluation in found:
        if tr.several:
            console.print(f"[bold underline]{ev.rulebook.title}[/] ({name})", highlight=False)
        _print_deadlines(ev, evaluation, day)


def _print_deadlines(ev: Evaluator, evaluation: PartyEvaluation, day: date) -> None:
    participant = evaluation.participant
    head = evaluation.to_json()["party"]
    console.print(f"[bold]{participant.name}[/] ({participant.iso3}) — {head['status'].replace('_', ' ')}"
                  + (f", bound since {fmt(evaluation.entry_into_force)}" if evaluation.entry_into_force else "")
                  + (f", withdrawal effective {fmt(evaluation.withdrawal_effective)}" if evaluation.withdrawal_effective else ""),
                  highlight=False)
    from rich import box
    from rich.table import Table

    table = Table(title=f"Obligations as of {fmt(day)} (rulebook {evaluation.rulebook_hash})", box=box.SIMPLE_HEAD,
                  pad_edge=False, padding=(0, 1, 0, 0))
    # 80 columns: the name wraps; the article, period, dates and status never do.
    table.add_column("Obligation", overflow="fold", ratio=1, min_width=12)
    for column in ("Art.", "Period", "Due", "Original", "Status"):
        table.add_column(column, no_wrap=True)
    for o in evaluation.obligations:
        table.add_row(ev.rulebook.name_of(o.id), o.article, o.period or "", o.due.isoformat() + (" (est.)" if o.estimated else ""),
                      "" if o.original_due == o.due else o.original_due.isoformat(),
                      f"[{STATUS_STYLE.get(o.status, 'default')}]{o.status}[/]")
    console.print(table)
    if any(o.estimated for o in evaluation.obligations):
        console.print("(est.) estimated: the meeting's dates are not yet set; the date counts from the projected opening.")
    if not evaluation.obligations:
        console.print("No obligations: the Convention does not bind this participant on that date.")
    console.print(f"Explain one: ccm explain {participant.iso3} 'OBLIGATION (id or title)' [--period P] --as-of {day.isoformat()}")


@app.command(name="explain")
def explain_command(party: str = typer.Argument(..., help="ISO3 code or name."),
                    obligation_id: str = typer.Argument(..., help="Its id or title, as `ccm deadlines PARTY` lists them."),
                    period: str | None = typer.Option(None, "--period", help="Year or meeting code (as in the pack's meetings.csv)."),
                    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
                    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
                    treaty: str | None = typer.Option(None, "--treaty", help=TREATY_HELP)) -> None:
    """The chain behind one date: facts with sources, rules with articles and quotations, the arithmetic.

    With several packs, the obligation's id names its pack (<pack>.<article>.<role>); a title is
    looked up in each pack the party is listed by, in order."""
    tr = treaties(None, treaty)
    day = parse_date(as_of, within=tr)
    participant = find_in(tr, party)
    listed = tr.of_party(participant.iso3)
    try:
        named = tr.owner(obligation_id)
    except packs.PackError as error:
        fail(f"{error}; give --treaty {packs.pack_of(obligation_id)} or select it ([engine] pack, CCM_PACK)")
    if named is not None and tr.several:
        listed = [(n, e) for n, e in listed if n == named] or listed
    if not listed:
        fail(f"{participant.name} is not a participant of {', '.join(tr.names)}")
    if tr.several:   # the pack whose rulebook knows the id or title
        owner = next(((n, e) for n, e in listed if _matching_rule(e, obligation_id)), listed[0])
        tr = tr.only(owner[0])
    ev, name = tr.primary, tr.names[0]
    try:
        evaluation = ev.evaluate(participant.iso3, day, tr.events(name, _recorded(participant.iso3)))
    except EvaluationError as error:
        fail(f"{participant.name}: {error}")
    obligation_id = _obligation_id(ev, obligation_id)
    found = evaluation.find(obligation_id, period)
    if not found:
        periods = sorted({o.period or "" for o in evaluation.find(obligation_id)})
        hint = f"; its periods are: {', '.join(periods)}" if any(periods) else ""
        fail(f"{participant.name} has no {obligation_id}" + (f" for period {period}" if period else "")
             + f" as of {day.isoformat()}{hint}")
    if len(found) > 1 and period is None:
        fail(f"{obligation_id} has {len(found)} periods for {participant.name}; choose one with --period: "
             + ", ".join(o.period or "" for o in found))
    from engine.core.explain import explain

    explanation = explain(evaluation, ev.rulebook, found[0])
    if json_output:
        print(json.dumps(explanation.to_json(), ensure_ascii=False, indent=1))
    else:
        print(explanation.to_text())


def _matching_rule(ev: Evaluator, given: str) -> str | None:
    """The obligation's id if this rulebook has one with this id or title (any case)."""
    for rule in ev.rulebook.rules:
        if rule.is_obligation and (given == rule.id or given.casefold() in (rule.id.casefold(), rule.name.casefold())):
            return rule.id
    return None


def _obligation_id(ev: Evaluator, given: str) -> str:
    """The obligation's id from its id or its title (any case); else exit 2 with "Did you mean"."""
    from difflib import get_close_matches

    obligations = [r for r in ev.rulebook.rules if r.is_obligation]
    for rule in obligations:
        if given == rule.id or given.casefold() in (rule.id.casefold(), rule.name.casefold()):
            return rule.id
    names = {rule.id: rule.id for rule in obligations} | {rule.name.casefold(): rule.id for rule in obligations}
    close = get_close_matches(given.casefold(), list(names), n=3, cutoff=0.6)
    suggestion = list(dict.fromkeys(names[c] for c in close))     # best match first
    hint = f" Did you mean: {', '.join(suggestion)}?" if suggestion else ""
    fail(f"no rule {given!r}.{hint} Obligations are: {', '.join(r.id for r in obligations)}")
    raise AssertionError  # unreachable


def _recorded(iso3: str):
    """Recorded events for a party; the record (database) adds them when it exists."""
    from engine.record import source as record_source
    return record_source.events_for(iso3)


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


from engine.cli import ops as cli_ops  # noqa: E402,F401  (status and config show)
from engine.cli import record as cli_record  # noqa: E402,F401  (the record and the daily check)
from engine.cli import web as cli_web  # noqa: E402,F401  (the HTTP API, pages and calendar feeds)
from notifiers import cli as cli_letters  # noqa: E402,F401  (reminder letters, contacts, the scheduler)
