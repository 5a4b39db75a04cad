"""The ``ccm`` command line: query parties, deadlines and explanations; the other commands come from their modules and plugins.

The app itself and what every command shares are in engine/cli/base.py; importing this module
registers the record's, the web's and the operations' commands, then each plugin's (the letters,
through the ``ccm_deadlines.plugins`` entry point: engine/runtime/plugins.py).
"""

from __future__ import annotations

import json
import sys
from datetime import date
from difflib import get_close_matches

import typer
from rich import box

from engine.cli import ops as cli_ops  # noqa: F401  (status and config show)
from engine.cli import record as cli_record  # noqa: F401  (the record and the daily check)
from engine.cli import web as cli_web  # noqa: F401  (the HTTP API, pages and calendar feeds)
from engine.cli.base import (  # noqa: F401
    AS_OF_HELP,
    STATUS_STYLE,
    TREATY_HELP,
    app,
    console,
    evaluations_of,
    evaluator,
    fail,
    find_in,
    find_party,
    parse_date,
    reset_evaluators,
    treaties,
)
from engine.core import packs
from engine.core.compute import EvaluationError
from engine.core.dates import fmt
from engine.core.evaluate import Evaluator, PartyEvaluation
from engine.core.explain import explain
from engine.record import source as record_source
from engine.runtime.plugins import load_plugins
from engine.runtime.settings import load_settings


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
    # lazy: rich's tables load only when this command runs, not on the start-up of ccm
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
    # lazy: rich's tables load only when this command runs, not on the start-up of ccm
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
    looked up in each pack the party is listed by, in order. An id of a pack that is not selected
    names its treaty as --treaty would."""
    if treaty is None:
        treaty = packs.unselected_owner(obligation_id, load_settings().packs)
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
    obligations = [r for r in ev.rulebook.rules if r.is_obligation]
    for rule in obligations:
        if given == rule.id or given.casefold() in (rule.id.casefold(), rule.name.casefold()):
            return rule.id
    names = {rule.id: rule.id for rule in obligations} | {rule.name.casefold(): rule.id for rule in obligations}
    close = get_close_matches(given.casefold(), list(names), n=3, cutoff=0.6)
    suggestion = list(dict.fromkeys(names[c] for c in close))     # best match first
    hint = f" Did you mean: {', '.join(suggestion)}?" if suggestion else ""
    fail(f"no rule {given!r}.{hint} Obligations are: {', '.join(r.id for r in obligations)}")


def _recorded(iso3: str):
    """Recorded events for a party; the record (database) adds them when it exists."""
    return record_source.events_for(iso3)


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)



for _plugin in load_plugins():
    if _plugin.cli is not None:
        _plugin.cli(app)
