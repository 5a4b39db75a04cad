"""The letters' commands on the ``ccm`` app: contacts, letters plan|preview|send|log|snapshots, schedule run.

Registered by the last line of engine/cli.py. Exit statuses: 0 success; 1 ``letters send`` left a
letter failed (it will be retried); 2 an error the user can fix (the message says why).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from engine.cli import app, evaluator, fail, find_party, parse_date

console = Console()
contacts_app = typer.Typer(no_args_is_help=True, help="Where each State's letters go (mission, e-mail, language).")
letters_app = typer.Typer(no_args_is_help=True, help="Reminder letters: plan, preview, send, and the delivery log.")
schedule_app = typer.Typer(no_args_is_help=True, help="The scheduler process: the daily check, then the letters.")
app.add_typer(contacts_app, name="contacts")
app.add_typer(letters_app, name="letters")
app.add_typer(schedule_app, name="schedule")
AS_OF_HELP = "Plan as of this date (YYYY-MM-DD); default today (UTC)."


def Table(*args, **kwargs):  # noqa: N802 - rich's Table, imported when a command prints one
    from rich.table import Table as RichTable
    return RichTable(*args, **kwargs)


def _operational_error() -> type[Exception]:
    from sqlalchemy.exc import OperationalError
    return OperationalError


def _settings():
    from engine.settings import SettingsError, load_settings
    from engine.planner import PolicyError
    from notifiers.config import load_letters_config

    try:
        settings = load_settings()
        return settings, load_letters_config(settings)
    except (SettingsError, PolicyError) as error:
        fail(str(error))
        raise


def _ready(url: str) -> None:
    from engine.cli_record import _ready as ready

    ready(url, create=True)


# ----------------------------------------------------------------------------- contacts

@contacts_app.command("set")
def contacts_set(party: str = typer.Argument(..., help="ISO3 code or name."),
                 email: str = typer.Option(..., "--email", help="Address(es), comma-separated."),
                 language: str = typer.Option(..., "--language", help="en, fr, es or zh."),
                 mission: Optional[str] = typer.Option(None, "--mission", help='The addressee without its article, '
                                                       'e.g. "Permanent Mission of Lebanon to the United Nations Office at Geneva".'),
                 cc: Optional[str] = typer.Option(None, "--cc", help="Copied addresses, comma-separated.")) -> None:
    """Set (or replace) the contact of one State."""
    from engine.contacts import ContactError, set_contacts, validate

    settings, _ = _settings()
    iso3 = find_party(evaluator(), party).iso3
    try:
        contact = validate(iso3, email, language, mission, cc)
    except ContactError as error:
        fail(f"{iso3}: {error}")
    _ready(settings.database_url)
    set_contacts(settings.database_url, [contact])
    console.print(f"Contact of {iso3}: {', '.join(contact.email)} in {language}"
                  + (f", addressed to the {contact.mission}" if contact.mission else ""), highlight=False)


@contacts_app.command("import")
def contacts_import(file: Path = typer.Argument(..., exists=True, dir_okay=False,
                                                help="CSV with columns party,email,language,mission,cc.")) -> None:
    """Import contacts from a CSV file: all rows or none."""
    from engine.contacts import ContactError, read_csv, set_contacts

    settings, _ = _settings()
    try:
        contacts = read_csv(file, set(evaluator().registry.participants))
    except ContactError as error:
        fail(str(error))
    _ready(settings.database_url)
    console.print(f"Imported {set_contacts(settings.database_url, contacts)} contact(s).", highlight=False)


@contacts_app.command("list")
def contacts_list() -> None:
    """Every contact."""
    from engine.contacts import load_contacts

    settings, _ = _settings()
    _ready(settings.database_url)
    table = Table("Party", "E-mail", "Language", "Mission", "Cc")
    for c in sorted(load_contacts(settings.database_url).values(), key=lambda c: c.party):
        table.add_row(c.party, ", ".join(c.email), c.language, c.mission or "(default)", ", ".join(c.cc))
    console.print(table)


# ----------------------------------------------------------------------------- letters

def _plan(as_of: Optional[str]):
    from notifiers import delivery

    settings, config = _settings()
    day = parse_date(as_of)
    _ready(settings.database_url)
    return settings, config, day, delivery.make_plan(settings.database_url, evaluator(), config, day)


def _print_no_contact(the_plan) -> None:
    missing = the_plan.no_contact
    if missing:
        console.print(f"[bold red]No contact[/] for {len(missing)} part{'y' if len(missing) == 1 else 'ies'} "
                      f"({sum(len(v) for v in missing.values())} letter(s) not sent; set one with "
                      "`ccm contacts set PARTY --email ... --language ...`):", highlight=False)
        for party, letters in sorted(missing.items()):
            kinds: dict[str, int] = {}
            for p in letters:
                kinds[p.kind] = kinds.get(p.kind, 0) + 1
            console.print(f"  {party}: no contact — {len(letters)} letter(s): "
                          + ", ".join(f"{k} x{n}" if n > 1 else k for k, n in kinds.items()), highlight=False)


@letters_app.command("plan")
def letters_plan(as_of: Optional[str] = typer.Option(None, "--as-of", help=AS_OF_HELP),
                 limit: int = typer.Option(40, "--limit", help="Rows printed (--json prints all)."),
                 json_output: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The letters due as of the date and not yet planned; parties without a contact are listed."""
    _, _, day, the_plan = _plan(as_of)
    if json_output:
        print(json.dumps({"as_of": day.isoformat(), "letters": [
            {"key": p.key, "party": p.party, "obligation": p.obligation_id, "period": p.period, "stage": p.stage,
             "kind": p.kind, "tone": p.tone, "due": p.due.isoformat(), "stage_date": p.stage_date.isoformat(),
             "contact": p.party in the_plan.contacts, "skipped_stages": list(p.skipped)} for p in the_plan.letters]},
            ensure_ascii=False, indent=1))
        return
    table = Table(title=f"Letters due as of {day.isoformat()} ({len(the_plan.letters)})")
    for column in ("Party", "Obligation", "Period", "Stage", "Due", "Contact"):
        table.add_column(column)
    for p in the_plan.letters[:limit]:
        contact = the_plan.contacts.get(p.party)
        table.add_row(p.party, p.obligation_id, p.period, p.stage, p.due.isoformat(),
                      f"{contact.language}: {', '.join(contact.email)}" if contact else "[red]no contact[/]")
    console.print(table)
    if len(the_plan.letters) > limit:
        console.print(f"  ... and {len(the_plan.letters) - limit} more (--limit N, or --json)", highlight=False)
    _print_no_contact(the_plan)


@letters_app.command("preview")
def letters_preview(as_of: Optional[str] = typer.Option(None, "--as-of", help=AS_OF_HELP),
                    party: Optional[str] = typer.Option(None, "--party", help="Only this party."),
                    language: Optional[str] = typer.Option(None, "--language", help="Render in this language instead."),
                    html: bool = typer.Option(False, "--html", help="Print the HTML instead of the text."),
                    limit: int = typer.Option(3, "--limit", help="At most this many letters.")) -> None:
    """Print the letters as they would be sent (nothing is written)."""
    from engine.contacts import Contact
    from notifiers import delivery

    settings, config, day, the_plan = _plan(as_of)
    iso3 = find_party(evaluator(), party).iso3 if party else None
    chosen = [p for p in the_plan.letters if iso3 is None or p.party == iso3][:limit]
    now = datetime.now(timezone.utc)
    for p in chosen:
        contact = the_plan.contacts.get(p.party) or Contact(p.party, ("no-contact@invalid.example",), language or "en")
        if language:
            contact = Contact(contact.party, contact.email, language, None, contact.cc)
        out = delivery.render_letter(p, contact, evaluator(), config, day, now)
        print(f"# {p.key}" + ("" if p.party in the_plan.contacts else "  (no contact)"))
        print(f"Subject: {out.rendered.subject}\nMessage-ID: {out.message['Message-ID']}\n")
        print(out.rendered.html if html else out.rendered.text)
    if not chosen:
        console.print("No letters due.", highlight=False)


@letters_app.command("send")
def letters_send(as_of: Optional[str] = typer.Option(None, "--as-of", help=AS_OF_HELP),
                 dry_run: bool = typer.Option(False, "--dry-run", help="Plan and render, write and send nothing.")) -> None:
    """Plan, render, record and deliver the letters due (outbox files by default, or SMTP)."""
    from notifiers import delivery

    settings, config, day, the_plan = _plan(as_of)
    url = settings.database_url
    now = datetime.now(timezone.utc)
    if dry_run:
        for p in the_plan.with_contact:
            out = delivery.render_letter(p, the_plan.contacts[p.party], evaluator(), config, day, now)
            console.print(f"would send {p.key} to {out.message['To']}: {out.rendered.subject}", highlight=False)
        waiting = delivery.due_for_delivery(url, now)
        console.print(f"Dry run: {len(the_plan.with_contact)} new letter(s), {len(waiting)} queued or failed letter(s) "
                      "would be delivered; nothing was written.", highlight=False)
        _print_no_contact(the_plan)
        return
    try:
        result = delivery.send(url, evaluator(), config, day, now=now, dues=None)
    except delivery.FirstRunRefused as error:
        fail(str(error))
        return
    except _operational_error() as error:
        fail(f"the letters could not be recorded: {str(error.orig).strip().splitlines()[0]}")
        return
    where = config.outbox if config.notifier == "outbox" else f"{config.smtp.host}:{config.smtp.port}"
    console.print(f"Letters as of {day.isoformat()}: {len(result.plan.letters)} due, {result.queued} queued, "
                  f"{len(result.delivery.sent)} sent ({config.notifier}: {where}), {len(result.delivery.failed)} failed "
                  "(retried later).", highlight=False)
    for key, error in result.delivery.failed:
        console.print(f"[red]failed:[/] {key}: {error}", highlight=False)
    _print_no_contact(result.plan)
    raise typer.Exit(1 if result.delivery.failed else 0)


@letters_app.command("log")
def letters_log(party: Optional[str] = typer.Option(None, "--party"),
                status: Optional[str] = typer.Option(None, "--status", help="queued, sent or failed."),
                limit: int = typer.Option(50, "--limit"),
                json_output: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The delivery log, newest first: what was sent, to whom, when; failures with their error."""
    from notifiers import delivery

    settings, _ = _settings()
    _ready(settings.database_url)
    iso3 = find_party(evaluator(), party).iso3 if party else None
    rows = delivery.log_rows(settings.database_url, iso3, status, limit)
    if json_output:
        print(json.dumps([{"key": r.key, "reference": r.reference, "message_id": r.message_id, "to": r.recipients,
                           "language": r.language, "subject": r.subject, "status": r.status, "attempts": r.attempts,
                           "created_at": str(r.created_at), "sent_at": str(r.sent_at) if r.sent_at else None,
                           "next_attempt_at": str(r.next_attempt_at) if r.next_attempt_at else None,
                           "error": r.last_error} for r in rows], ensure_ascii=False, indent=1))
        return
    table = Table(title=f"Delivery log ({len(rows)})")
    for column in ("Reference", "Key", "To", "Status", "Attempts", "Sent / next attempt", "Error"):
        table.add_column(column)
    for r in rows:
        when = r.sent_at if r.status == "sent" else r.next_attempt_at
        table.add_row(r.reference, r.key, r.recipients, r.status, str(r.attempts),
                      f"{when:%Y-%m-%d %H:%M}" if when else "", r.last_error or "")
    console.print(table)


@letters_app.command("snapshots")
def letters_snapshots(update: bool = typer.Option(False, "--update", help="Rewrite tests/snapshots/letters.")) -> None:
    """Compare (or with --update rewrite) the golden snapshots of every template in every language."""
    from notifiers import snapshots

    changed = snapshots.main(update=update)
    raise typer.Exit(1 if changed and not update else 0)


# ----------------------------------------------------------------------------- scheduler

@schedule_app.command("run")
def schedule_run() -> None:
    """Run the scheduler in the foreground: the daily check then the letters, at [scheduler] time (UTC)."""
    from engine import scheduler

    settings, config = _settings()
    _ready(settings.database_url)
    console.print(f"Scheduler on {settings.database_url.split('@')[-1]}: daily check and letters at "
                  f"{config.scheduler.hour:02d}:{config.scheduler.minute:02d} UTC, failed deliveries retried every "
                  f"{config.scheduler.retry_every_minutes} min. Ctrl-C stops it.", highlight=False)
    try:
        scheduler.run(settings.database_url, config)
    except scheduler.SchedulerAlreadyRunning as error:
        fail(str(error))
    except (KeyboardInterrupt, SystemExit):
        pass
