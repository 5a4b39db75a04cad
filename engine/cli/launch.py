"""The ``ccm`` entry point: ``deadlines PARTY --json`` and ``explain`` answered without typer and rich, the rest by engine.cli.main.

Scripts run these two queries in loops, and typer, rich and their imports took most of each run.
The quick path answers only a command line it fully understands and a query that succeeds; any
other option, a global option, ``--help``, an unknown party, a bad date, an ambiguous obligation
or any exception hands the same command line to the typer app, which gives the usual answer or
error. Printing happens last, so a hand-over never repeats output. The answer is the one the
typer commands print: the same settings, evaluator, recorded events and JSON.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC

# Options of the commands answered here: True when the option takes a value.
_OPTIONS = {"deadlines": {"--as-of": True, "--json": False, "--backend": True, "--treaty": True},
            "explain": {"--as-of": True, "--json": False, "--period": True, "--treaty": True}}
_ARGUMENTS = {"deadlines": 1, "explain": 2}


def main() -> None:  # pragma: no cover - console entry point (tests run it as the `ccm` script)
    try:
        text = answer(sys.argv[1:])
    except KeyboardInterrupt:
        sys.exit(130)
    if text is None:
        # typer, rich and every command are imported only for a command line answered there
        from engine.cli.main import main as typer_main

        typer_main()
        return
    print(text)


def parse(argv: list[str]) -> tuple[str, list[str], dict[str, str | bool]] | None:
    """(command, arguments, options) of a command line the quick path answers, else None.

    >>> parse(["deadlines", "LAO", "--json", "--as-of=2020-01-01"])
    ('deadlines', ['LAO'], {'--json': True, '--as-of': '2020-01-01'})
    >>> parse(["--debug", "deadlines", "LAO", "--json"]), parse(["deadlines", "LAO", "--help"])
    (None, None)
    """
    if not argv or argv[0] not in _OPTIONS:
        return None
    command = argv[0]
    arguments: list[str] = []
    options: dict[str, str | bool] = {}
    tokens = iter(argv[1:])
    for token in tokens:
        if not token.startswith("-"):
            arguments.append(token)
            continue
        name, equals, inline = token.partition("=")
        takes_value = _OPTIONS[command].get(name)
        if takes_value is None or (equals and not takes_value):
            return None
        value = inline if equals else next(tokens, None) if takes_value else ""
        if value is None:
            return None
        options[name] = value if takes_value else True
    if len(arguments) != _ARGUMENTS[command] or (command == "deadlines" and not options.get("--json")):
        return None                                         # the table is rich's
    return command, arguments, options


def answer(argv: list[str]) -> str | None:
    """The text ``ccm`` prints for this command line, or None to hand it to the typer app."""
    if any(name.startswith("_") and name.endswith("_COMPLETE") for name in os.environ):
        return None                                         # shell completion is typer's
    parsed = parse(argv)
    if parsed is None:
        return None
    try:
        return _answer(*parsed)
    except Exception:   # noqa: BLE001 - the typer app runs the same command line and reports the failure
        return None


def _answer(command: str, arguments: list[str], options: dict) -> str | None:
    # the engine is imported only once the command line is known to be answered here
    import json
    from datetime import date, datetime

    from engine.core import packs
    from engine.core.model import UnknownPartyError
    from engine.record import source as record_source
    from engine.record.textsafe import TextError, parse_day
    from engine.registry.shared import shared_treaties
    from engine.runtime import logs
    from engine.runtime.settings import load_settings

    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format, verbosity=0)
    # the packs as engine.cli.main.treaties selects them
    treaty = options.get("--treaty") or None
    if treaty is None and command == "explain":             # an id of an unselected pack names it
        treaty = packs.unselected_owner(arguments[1], settings.packs)
    names = tuple(settings.packs) + ((treaty,) if treaty and treaty not in settings.packs else ())
    backend = (options.get("--backend") or None) if command == "deadlines" else None
    tr = shared_treaties(str(backend or settings.backend), settings.complete_from, names).only(treaty)
    text = options.get("--as-of")
    if not text:
        day = datetime.now(UTC).date()
    else:
        try:
            day = parse_day(text, "--as-of")
        except TextError:
            return None
        adopted = min(ev.registry.treaty.adopted for ev in tr.evaluators)
        if not adopted <= day <= date(adopted.year + 100, 12, 31):
            return None
    try:
        participant = tr.find(arguments[0])
    except UnknownPartyError:
        return None
    recorded = record_source.events_for(participant.iso3)
    if command == "deadlines":
        evaluated = [(name, ev.evaluate(participant.iso3, day, tr.events(name, recorded)))
                     for name, ev in tr.of_party(participant.iso3)]
        if tr.several:
            return json.dumps([{"treaty": name, **evaluation.to_json()} for name, evaluation in evaluated],
                              ensure_ascii=False, indent=1)
        return json.dumps(evaluated[0][1].to_json(), ensure_ascii=False, indent=1)

    given, period = arguments[1], options.get("--period")

    def matching(ev) -> str | None:                         # engine.cli.main._matching_rule
        return next((r.id for r in ev.rulebook.rules if r.is_obligation and (
            given == r.id or given.casefold() in (r.id.casefold(), r.name.casefold()))), None)

    listed = tr.of_party(participant.iso3)
    if tr.several:
        tr = tr.only(next(((n, e) for n, e in listed if matching(e)), listed[0])[0])
    ev, name = tr.primary, tr.names[0]
    evaluation = ev.evaluate(participant.iso3, day, tr.events(name, recorded))
    obligation_id = matching(ev)
    if obligation_id is None:
        return None                                         # "Did you mean" is the typer command's
    found = evaluation.find(obligation_id, period)
    if not found or (len(found) > 1 and period is None):
        return None
    from engine.core.explain import explain  # only explain needs it

    explanation = explain(evaluation, ev.rulebook, found[0])
    return json.dumps(explanation.to_json(), ensure_ascii=False, indent=1) if options.get("--json") else explanation.to_text()
