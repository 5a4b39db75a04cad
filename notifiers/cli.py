"""The letters' commands on the ``ccm`` app: contacts, letters plan|batches|preview|approve|discard|deliver|send|log|
cancel|retry|snapshots, schedule run.

Added to the ``ccm`` app by :func:`register`, the letters plugin's cli hook (notifiers/plugin.py). Exit statuses: 0 success; 1 ``letters send`` left a
letter failed (retried later) or rejected (waits for a contact change or ``letters retry``); 2 an
error the user can fix (the message says why).
"""

from __future__ import annotations

import email
import email.policy
import json
import tempfile
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import typer
from rich import box
from rich.console import Console
from rich.markup import escape

from engine.cli.base import daemon_logging, fail, find_in, parse_date, treaties
from engine.core.packs import PackError
from engine.record.textsafe import printable
from engine.runtime.errors import OperationalFailure
from engine.runtime.settings import load_settings

console = Console()
contacts_app = typer.Typer(no_args_is_help=True, help="Where each State's letters go (mission, e-mail, language).")
letters_app = typer.Typer(no_args_is_help=True, help="Reminder notes: plan a batch, preview, approve, send, and the delivery log.")
schedule_app = typer.Typer(no_args_is_help=True, help="The scheduler process: the daily check, then the letters.")
AS_OF_HELP = "Plan as of this date (YYYY-MM-DD); default today (UTC)."
TREATY = typer.Option(None, "--treaty", help="Only this rule pack's letters (a selected one); default: every selected "
                      "pack, each with its own batch.")


def _selected(treaty: str | None = None):
    """The selected packs (engine/registry/treaties.py), or only the one ``--treaty`` names; exit 2 for a pack
    that is not selected."""
    tr = treaties()
    try:
        return tr.only(treaty)
    except PackError as error:
        fail(f"{error}. Letters are written for a selected pack only: select it in config.toml ([engine] pack) or "
             f"with CCM_PACK={','.join((*tr.names, treaty or ''))}")


def _headed(tr, name: str, text: str) -> str:
    """``text``, preceded by the treaty's name when several packs are in play (one pack: as it always was)."""
    return f"{name.upper()}: {text}" if tr.several else text


def Table(*args, **kwargs):
    # lazy: rich's tables load only when this command runs, not on the start-up of ccm
    from rich.table import Table as RichTable
    return RichTable(*args, **kwargs)


def _body(message: EmailMessage, subtype: str) -> str:
    """The text of a stored note's plain or HTML part (every note has both)."""
    part = message.get_body((subtype,))
    if part is None:
        raise ValueError(f"the stored note {message['Message-ID']} has no {subtype} part")
    return str(part.get_content())


def _box():
    return box


def _fitted(title: str | None = None):
    """A table for an 80-column terminal: a rule under the header, one space between columns."""
    return Table(title=title, box=_box().SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))


def _settings():
    # lazy: keeps notifiers.config off the start-up of ccm
    from notifiers.config import load_letters_config

    settings = load_settings()
    return settings, load_letters_config(settings)


def _ready(url: str) -> None:
    # lazy: keeps engine.cli.record off the start-up of ccm
    from engine.cli.record import _ready as ready

    ready(url, create=True)


# ----------------------------------------------------------------------------- contacts

@contacts_app.command("set")
def contacts_set(party: str = typer.Argument(..., help="ISO3 code or name."),
                 email: str = typer.Option(..., "--email", help="Address(es), comma-separated."),
                 language: str = typer.Option(..., "--language", help="en, fr, es or zh."),
                 mission: str | None = typer.Option(None, "--mission", help='The addressee without its article, '
                                                       'e.g. "Permanent Mission of Lebanon to the United Nations Office at Geneva".'),
                 cc: str | None = typer.Option(None, "--cc", help="Copied addresses, comma-separated."),
                 json_output: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Set (or replace) the contact of one State."""
    # lazy: Alembic, email-validator, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from engine.record.contacts import ContactError, set_contacts, validate

    settings, _ = _settings()
    iso3 = find_in(_selected(), party).iso3       # a party of any selected treaty
    try:
        contact = validate(iso3, email, language, mission, cc)
    except ContactError as error:
        fail(f"{iso3}: {error}")
    _ready(settings.database_url)
    set_contacts(settings.database_url, [contact])
    problems = _rerender([iso3], quiet=json_output)
    if json_output:
        print(json.dumps({"party": iso3, "email": list(contact.email), "language": contact.language,
                          "mission": contact.mission, "cc": list(contact.cc),
                          "not_rerendered": [{"letter": k, "why": p} for k, p in problems]}, ensure_ascii=False))
        return
    console.print(f"Contact of {iso3}: {', '.join(contact.email)} in {contact.language}"
                  + (f", addressed to the {contact.mission}" if contact.mission else ""), highlight=False)


def _rerender(parties: list[str], quiet: bool = False) -> list[tuple[str, str]]:
    """A contact changed: its State's unsent letters are rendered again for it (and rejected ones queued again)."""
    # lazy: Alembic, Babel, email-validator, Jinja2, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from notifiers import delivery

    settings, config = _settings()
    problems = delivery.rerender_for_parties(settings.database_url, _selected(), config, parties)
    if not quiet:
        for key, problem in problems:
            console.print(f"[yellow]not re-rendered:[/] {key}: {problem}", highlight=False)
    return problems


@contacts_app.command("import")
def contacts_import(file: Path = typer.Argument(..., exists=True, dir_okay=False,
                                                help="CSV with columns party,email,language,mission,cc."),
                    json_output: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Import contacts from a CSV file: all rows or none."""
    # lazy: Alembic, email-validator, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from engine.record.contacts import ContactError, read_csv, set_contacts

    settings, _ = _settings()
    try:
        contacts = read_csv(file, {iso3 for ev in _selected().evaluators for iso3 in ev.registry.participants})
    except ContactError as error:
        fail(str(error))
    _ready(settings.database_url)
    imported = set_contacts(settings.database_url, contacts)
    problems = _rerender([c.party for c in contacts], quiet=json_output)
    if json_output:
        print(json.dumps({"imported": imported, "parties": [c.party for c in contacts],
                          "not_rerendered": [{"letter": k, "why": p} for k, p in problems]}, ensure_ascii=False))
        return
    console.print(f"Imported {imported} contact(s).", highlight=False)


@contacts_app.command("list")
def contacts_list(json_output: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every contact."""
    # lazy: Alembic, email-validator, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from engine.record.contacts import load_contacts

    settings, _ = _settings()
    _ready(settings.database_url)
    contacts = sorted(load_contacts(settings.database_url).values(), key=lambda c: c.party)
    if json_output:
        print(json.dumps([{"party": c.party, "email": list(c.email), "language": c.language, "mission": c.mission,
                           "cc": list(c.cc)} for c in contacts], ensure_ascii=False, indent=1))
        return
    table = _fitted()
    table.add_column("Party", no_wrap=True)
    table.add_column("Lang.", no_wrap=True)
    for column in ("E-mail", "Mission", "Cc"):
        table.add_column(column, overflow="fold")
    for c in contacts:
        table.add_row(c.party, c.language, ", ".join(c.email), c.mission or "(default)", ", ".join(c.cc))
    console.print(table)


# ----------------------------------------------------------------------------- letters

def _plans(tr, as_of: str | None):
    """(settings, config, day, [(pack, evaluator, its dues, what its batch would hold)]) in the packs' order."""
    # lazy: Alembic, Babel, email-validator, Jinja2, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from notifiers import delivery

    settings, config = _settings()
    day = parse_date(as_of, within=tr)
    _ready(settings.database_url)
    url = settings.database_url
    found = []
    for name, ev in tr.items():
        dues = delivery.obligations_as_of(url, ev, day, home=tr.home)
        found.append((name, ev, dues, delivery.make_plan(url, ev, config, day, dues, home=tr.home)))
    return settings, config, day, found


def _print_no_contact(no_contact) -> None:
    if no_contact:
        console.print(f"[bold red]No contact[/] for {len(no_contact)} part{'y' if len(no_contact) == 1 else 'ies'} "
                      f"({sum(len(v) for v in no_contact.values())} item(s) not planned; set one with "
                      "`ccm contacts set PARTY --email ... --language ...`):", highlight=False)
        for party, letters in sorted(no_contact.items()):
            kinds: dict[str, int] = {}
            for p in letters:
                kinds[p.kind] = kinds.get(p.kind, 0) + 1
            console.print(f"  {party}: no contact — {len(letters)} item(s): "
                          + ", ".join(f"{k} x{n}" if n > 1 else k for k, n in kinds.items()), highlight=False)


def _today():
    return datetime.now(UTC).date()


@letters_app.command("plan")
def letters_plan(as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
                 limit: int = typer.Option(40, "--limit", help="Rows printed (--json prints all)."),
                 json_output: bool = typer.Option(False, "--json", help="Print JSON (with several packs, a list: one "
                                                  "object per pack, with its \"treaty\")."),
                 treaty: str | None = TREATY) -> None:
    """Plan a mailing: record a batch of the items due and not yet planned (one note per State), to preview and approve.

    With several packs selected, one batch per pack: a note is about one treaty.
    A date after today only shows what would be planned (nothing is recorded).
    """
    # lazy: Alembic, Babel, email-validator, Jinja2, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from notifiers import batches

    tr = _selected(treaty)
    settings, config, day, found = _plans(tr, as_of)
    now = datetime.now(UTC)
    future = day > now.date()
    shown = []
    for name, ev, dues, the_plan in found:
        if not future and the_plan.items:
            the_plan = batches.plan_batch(settings.database_url, config, day, dues, now, pack=name)
        shown.append({**({"treaty": name} if tr.several else {}), "as_of": day.isoformat(), "batch": the_plan.batch_id,
                      "recorded": the_plan.batch_id is not None, "items": [
            {"key": p.key, "party": p.party, "obligation": p.obligation_id, "period": p.period, "stage": p.stage,
             "kind": p.kind, "due": p.due.isoformat(), "stage_date": p.stage_date.isoformat(),
             "skipped_stages": list(p.skipped)} for p in the_plan.items],
            "no_contact": {party: [p.key for p in ps] for party, ps in the_plan.no_contact.items()}})
        if not json_output:
            _print_plan(tr, name, ev, the_plan, day, future, limit)
    if json_output:
        print(json.dumps(shown if tr.several else shown[0], ensure_ascii=False, indent=1))


def _print_plan(tr, name: str, ev, the_plan, day, future: bool, limit: int) -> None:
    title = _headed(tr, name, (f"Batch {the_plan.batch_id}: " if the_plan.batch_id else "") +
                    f"items due as of {day.isoformat()} ({len(the_plan.items)} in {len(the_plan.parties)} note(s))")
    table = _fitted(title)
    for column in ("Party", "Obligation", "Period", "Stage", "Due"):    # names wrap; the rest never does
        table.add_column(column, no_wrap=column != "Obligation", overflow="fold", ratio=1 if column == "Obligation" else None,
                         min_width=14 if column == "Obligation" else None)
    names = ev.rulebook.name_of
    for p in the_plan.items[:limit]:
        table.add_row(p.party, names(p.obligation_id), p.period, p.stage, p.due.isoformat())
    console.print(table)
    if len(the_plan.items) > limit:
        console.print(f"  ... and {len(the_plan.items) - limit} more (--limit N, or --json)", highlight=False)
    if the_plan.batch_id:
        console.print(f"Recorded as batch {the_plan.batch_id}, awaiting review: `ccm letters preview {the_plan.batch_id}` "
                      f"then `ccm letters approve {the_plan.batch_id} --by NAME`.", highlight=False)
    elif future:
        console.print(f"{day.isoformat()} is after today: shown only, no batch recorded.", highlight=False)
    else:
        console.print(_headed(tr, name, "Nothing new to plan."), highlight=False)
    _print_no_contact(the_plan.no_contact)


@letters_app.command("batches")
def letters_batches(limit: int = typer.Option(20, "--limit"), json_output: bool = typer.Option(False, "--json", help="Print JSON."),
                    treaty: str | None = typer.Option(None, "--treaty", help="Only this rule pack's batches.")) -> None:
    """The mailings planned, newest first: the treaty of each, items, States, and who approved them."""
    # lazy: Alembic, Babel, email-validator, Jinja2, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from notifiers import batches

    settings, _ = _settings()
    _ready(settings.database_url)
    tr = _selected(treaty)
    # every batch by default (one of a pack no longer selected too); --treaty: that pack's
    found = batches.list_batches(settings.database_url, limit, (treaty,) if treaty else None)
    if json_output:
        print(json.dumps([{"batch": batch.id, "treaty": batch.pack, "as_of": batch.as_of.isoformat(), "planned_at": batch.created_at.isoformat(),
                           "items": items, "states": states, "status": batch.status, "approved_by": batch.approved_by,
                           "approved_at": batch.approved_at.isoformat() if batch.approved_at else None}
                          for batch, items, states in found],
                         ensure_ascii=False, indent=1))
        return
    table = _fitted("Batches")
    # the treaty's column when more than one can appear (one pack, and only its batches: as it always was)
    treaty_column = tr.several or any(batch.pack != tr.names[0] for batch, _, _ in found)
    # 80 columns hold every header whole with the Treaty column: the two "Approved" headers take two lines,
    # the times wrap at their space (date over time), the approver's name folds; no column is narrower
    # than its header's longest word, so none is squeezed out
    wraps = ("Planned", "Approved\nby", "Approved\nat")
    table.padding = (0, 0, 0, 0)     # the box's own separator leaves one space between columns
    for column in ("Batch", *(("Treaty",) if treaty_column else ()), "As of", "Planned", "Items", "States", "Status",
                   "Approved\nby", "Approved\nat"):
        table.add_column(column, no_wrap=column not in wraps, overflow="fold",
                         min_width=max(10 if column in ("Planned", "Approved\nat") else 0,
                                       *(len(word) for word in column.split())))
    for batch, items, states in found:
        table.add_row(str(batch.id), *((batch.pack,) if treaty_column else ()), batch.as_of.isoformat(),
                      f"{batch.created_at:%Y-%m-%d %H:%M}", str(items), str(states), batch.status, batch.approved_by or "",
                      f"{batch.approved_at:%Y-%m-%d %H:%M}" if batch.approved_at else "")
    console.print(table)


@letters_app.command("preview")
def letters_preview(batch: int | None = typer.Argument(None, help="The batch (from `ccm letters plan`); "
                                                          "without it, the notes a batch planned as of --as-of would hold."),
                    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP + " Without BATCH only."),
                    party: str | None = typer.Option(None, "--party", help="Only this party."),
                    language: str | None = typer.Option(None, "--language", help="Render in this language instead."),
                    html: bool = typer.Option(False, "--html", help="Print the HTML instead of the text."),
                    pdf: Path | None = typer.Option(None, "--pdf", help="Write the notes to this PDF file, one per page, "
                                                       "with room for the letterhead."),
                    limit: int = typer.Option(0, "--limit", help="At most this many notes (0: all)."),
                    json_output: bool = typer.Option(False, "--json", help="Print JSON: each note's recipient, "
                                                     "subject, text and HTML."),
                    treaty: str | None = TREATY) -> None:
    """Show the notes as they would be sent today: dated today, one per State per treaty, in each contact's language."""
    # lazy: Alembic, Babel, email-validator, Jinja2, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from engine.record.contacts import Contact, load_contacts
    from notifiers import batches
    from notifiers.notes import consolidate

    language = language.lower() if language else language     # EN as en
    if language and language not in ("en", "fr", "es", "zh"):
        fail(f"--language {language}: use en, fr, es or zh")
    if json_output and pdf is not None:
        fail("--json and --pdf: choose one")
    settings, config = _settings()
    _ready(settings.database_url)
    url = settings.database_url
    now = datetime.now(UTC)
    tr = _selected(treaty)
    iso3 = find_in(tr, party).iso3 if party else None
    if batch is not None:
        if as_of:
            fail("--as-of applies without BATCH only: a batch's notes are dated the day they are approved")
        try:
            row, items = batches.get_batch(url, batch)
            _batch_of(tr, row, treaty)
        except batches.BatchError as error:
            fail(str(error))
            return
        if row.status == "approved":
            _preview_sent(url, batch, iso3, html, pdf, limit, json_output)
            return
        # the batch's notes, worded by its own pack
        each = [(row.pack, tr.get(row.pack), batches.notes_of(url, items, max(now.date(), row.as_of)))]
        batch_id = batch
    else:
        _, _, day, found = _plans(tr, as_of)
        each = [(name, ev, consolidate(the_plan.items + [p for ps in the_plan.no_contact.values() for p in ps],
                                       batches.sent_items(url), max(day, now.date())))
                for name, ev, _, the_plan in found]
        batch_id = 0
    contacts = load_contacts(url)
    chosen = [(name, ev, n) for name, ev, notes in each for n in notes if iso3 is None or n.party == iso3]
    if limit:
        chosen = chosen[:limit]
    notes = [n for _, _, n in chosen]
    rendered = []
    shown = []
    for name, ev, note in chosen:
        contact = contacts.get(note.party) or Contact(note.party, ("no-contact@invalid.example",), language or "en")
        out = batches.render_note(note, contact, ev, config, batch_id, now, language)
        rendered.append(out.rendered)
        if json_output:
            shown.append({"party": note.party, **({"treaty": name} if tr.several else {}), "items": len(note.items),
                          "contact": note.party in contacts,
                          "batch": batch, "language": language or contact.language, "to": out.message["To"],
                          "subject": out.rendered.subject, "text": out.rendered.text, "html": out.rendered.html})
        elif pdf is None:
            print(f"# {_headed(tr, name, note.party)}: {len(note.items)} item(s)" + ("" if note.party in contacts else "  (no contact)")
                  + (f", batch {batch}" if batch is not None else " (not recorded)"))
            print(f"To: {out.message['To']}\nSubject: {out.rendered.subject}\n")
            print(out.rendered.html if html else out.rendered.text)
    if json_output:
        print(json.dumps({"batch": batch, "notes": shown}, ensure_ascii=False, indent=1))
        return
    if pdf is not None:
        _write_pdf(pdf, rendered)
    if not notes:
        console.print("No notes.", highlight=False)


def _batch_of(tr, row, treaty: str | None) -> None:
    """Raise BatchError for a batch of another pack than ``--treaty``, or of a pack not selected."""
    # lazy: as the commands that call it
    from notifiers import batches

    if treaty and row.pack != treaty:
        raise batches.BatchError(f"batch {row.id} is a mailing of the rule pack {row.pack!r}, not {treaty!r}")
    batches.pack_evaluator(tr, row)


def _preview_sent(url, batch_id, iso3, html, pdf, limit, json_output=False) -> None:
    """An approved batch: its notes as queued (and sent), from the log."""
    # lazy: Alembic, Babel, email-validator, Jinja2, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from notifiers import batches

    rows = [r for r in batches.batch_letters(url, batch_id) if iso3 is None or r.party == iso3]
    if limit:
        rows = rows[:limit]
    pages = []
    if json_output:
        notes = []
        for row in rows:
            message = email.message_from_string(row.message, policy=email.policy.default)
            notes.append({"party": row.party, "status": row.status, "approved_by": row.approved_by, "to": row.recipients,
                          "subject": row.subject, "text": _body(message, "plain"), "html": _body(message, "html")})
        print(json.dumps({"batch": batch_id, "notes": notes}, ensure_ascii=False, indent=1))
        return
    for row in rows:
        message = email.message_from_string(row.message, policy=email.policy.default)
        pages.append(_body(message, "html" if (html or pdf) else "plain"))
        if pdf is None:
            print(f"# {row.party}: {row.status}, approved by {row.approved_by}\nTo: {row.recipients}\nSubject: {row.subject}\n")
            print(pages[-1])
    if pdf is not None:
        from notifiers import pdf as pdf_notes  # lazy: WeasyPrint only for --pdf

        pdf_notes.write_html_pages(pdf, pages)
        console.print(f"Wrote {len(pages)} note(s) to {pdf}.", highlight=False)


def _write_pdf(path: Path, rendered) -> None:
    # lazy: keeps notifiers.pdf off the start-up of ccm
    from notifiers import pdf as pdf_notes

    try:
        pdf_notes.write_notes(path, rendered)
    except pdf_notes.PdfUnavailable as error:
        fail(str(error))
    console.print(f"Wrote {len(rendered)} note(s) to {path}.", highlight=False)


@letters_app.command("approve")
def letters_approve(batch: int = typer.Argument(..., help="The batch to approve."),
                    by: str = typer.Option(..., "--by", help="Who approves (recorded in the delivery log)."),
                    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
                    treaty: str | None = typer.Option(None, "--treaty", help="Refuse the batch unless it is this "
                                                      "rule pack's mailing.")) -> None:
    """Approve a batch: render its notes dated today, worded by its own treaty's pack, and queue them; the scheduler
    (or `ccm letters deliver`) sends them."""
    # lazy: Alembic, Babel, email-validator, Jinja2, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from notifiers import batches

    settings, config = _settings()
    _ready(settings.database_url)
    tr = _selected(treaty)
    try:
        if treaty:
            _batch_of(tr, batches.get_batch(settings.database_url, batch)[0], treaty)
        approval = batches.approve(settings.database_url, batch, by, tr, config, datetime.now(UTC))
    except batches.BatchError as error:
        fail(str(error))
        return
    if json_output:
        print(json.dumps({"batch": batch, "approved_by": approval.approved_by, "approved_at": approval.approved_at.isoformat(),
                          "notes": approval.notes, "items": approval.items, "settled": approval.settled,
                          "no_contact": approval.no_contact,
                          "not_rendered": [{"party": p, "why": w} for p, w in approval.not_rendered]}, ensure_ascii=False))
        return
    console.print(f"Batch {batch} approved by {approval.approved_by}: {approval.notes} note(s) ({approval.items} item(s)) "
                  "queued; `ccm letters deliver` sends them now, the scheduler within "
                  f"{config.scheduler.retry_every_minutes} min.", highlight=False)
    if approval.settled:
        console.print(f"{len(approval.settled)} item(s) settled since planning (a report recorded, a deadline moved) "
                      "were left out.", highlight=False)
    if approval.no_contact:
        console.print(f"[red]No contact any more[/] for {', '.join(approval.no_contact)}: their items were returned "
                      "to planning.", highlight=False)


@letters_app.command("discard")
def letters_discard(batch: int = typer.Argument(..., help="The planned batch to discard."), json_output: bool = typer.Option(False, "--json", help="Print JSON."),
                    treaty: str | None = typer.Option(None, "--treaty", help="Refuse the batch unless it is this "
                                                      "rule pack's mailing.")) -> None:
    """Discard a batch not yet approved: nothing of it is sent, and its items are planned again next time."""
    # lazy: Alembic, Babel, email-validator, Jinja2, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from notifiers import batches

    settings, _ = _settings()
    _ready(settings.database_url)
    try:
        if treaty:
            _batch_of(_selected(treaty), batches.get_batch(settings.database_url, batch)[0], treaty)
        items = batches.discard(settings.database_url, batch)
    except batches.BatchError as error:
        fail(str(error))
        return
    if json_output:
        print(json.dumps({"batch": batch, "discarded": True, "items_returned": items}))
        return
    console.print(f"Batch {batch} discarded: {items} item(s) return to planning.", highlight=False)


@letters_app.command("deliver")
def letters_deliver(json_output: bool = typer.Option(False, "--json", help="Print JSON."),
                    treaty: str | None = typer.Option(None, "--treaty", help="Only this rule pack's notes; default: "
                                                      "every approved note.")) -> None:
    """Deliver the approved notes that are queued or due for a retry (plans nothing)."""
    # lazy: Alembic, Babel, email-validator, Jinja2, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from notifiers import delivery

    settings, config = _settings()
    _ready(settings.database_url)
    only = _selected(treaty).names if treaty else None
    report = delivery.deliver(settings.database_url, delivery.make_notifier(config), config, pack_names=only)
    if json_output:
        print(json.dumps({"sent": report.sent, "failed": [{"letter": k, "why": e} for k, e in report.failed],
                          "rejected": [{"letter": k, "why": e} for k, e in report.rejected]}, ensure_ascii=False))
        raise typer.Exit(1 if report.failed or report.rejected else 0)
    console.print(f"{len(report.sent)} sent, {len(report.failed)} failed (retried later), {len(report.rejected)} "
                  "rejected (not retried: fix the contact, or `ccm letters retry`).", highlight=False)
    for label, items in (("failed", report.failed), ("rejected", report.rejected)):
        for key, error in items:
            console.print(f"[red]{label}:[/] {_terminal(key)}: {_terminal(error)}", highlight=False)
    raise typer.Exit(1 if report.failed or report.rejected else 0)


@letters_app.command("send")
def letters_send(as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP + " Not after today."),
                 dry_run: bool = typer.Option(False, "--dry-run", help="Plan and render, write and send nothing."),
                 json_output: bool = typer.Option(False, "--json", help="Print JSON."),
                 treaty: str | None = TREATY) -> None:
    """Plan a batch (one per selected pack) and, unless it needs review (SMTP without auto_send), queue and deliver
    its notes."""
    # lazy: Alembic, Babel, email-validator, Jinja2, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from notifiers import batches, delivery

    settings, config = _settings()
    tr = _selected(treaty)
    day = parse_date(as_of, within=tr)
    now = datetime.now(UTC)
    try:
        batches.refuse_future(day, now.date())
    except batches.FutureDateRefused as error:
        fail(str(error))
        return
    _ready(settings.database_url)
    url = settings.database_url
    if dry_run:
        # lazy: the contacts' store and the notes only for a dry run
        from engine.record.contacts import load_contacts
        from notifiers.notes import consolidate

        contacts = load_contacts(url)
        sent = batches.sent_items(url)
        would, notes = [], []
        no_contact: dict[str, list] = {}
        for name, ev in tr.items():
            the_plan = delivery.make_plan(url, ev, config, day, home=tr.home)
            for party, ps in the_plan.no_contact.items():
                no_contact.setdefault(party, []).extend(ps)
            for note in consolidate(the_plan.items, sent, now.date()):
                notes.append(note)
                out = batches.render_note(note, contacts[note.party], ev, config, 0, now)
                would.append({"party": note.party, **({"treaty": name} if tr.several else {}), "items": len(note.items),
                              "to": out.message["To"], "subject": out.rendered.subject,
                              "needs_approval": config.needs_approval})
                if json_output:
                    continue
                console.print(f"would {'await approval for' if config.needs_approval else 'send'} a note to "
                              f"{_headed(tr, name, note.party)} ({len(note.items)} item(s)) to {out.message['To']}: "
                              f"{out.rendered.subject}", highlight=False)
        waiting = delivery.due_for_delivery(url, now, tr.names if treaty else None)
        if json_output:
            print(json.dumps({"as_of": day.isoformat(), "dry_run": True, "would_send": would,
                              "queued_or_failed_waiting": len(waiting),
                              "no_contact": {party: len(ps) for party, ps in sorted(no_contact.items())}},
                             ensure_ascii=False, indent=1))
            return
        console.print(f"Dry run: {len(notes)} new note(s), {len(waiting)} queued or failed note(s) "
                      "would be delivered; nothing was written.", highlight=False)
        _print_no_contact(no_contact)
        return
    _require_delivery(config)
    try:
        result = delivery.send(url, tr, config, day, now=now, dues=None)
    except (delivery.FirstRunRefused, batches.FutureDateRefused, batches.BatchError) as error:
        fail(str(error))
        return
    where = config.outbox if config.notifier == "outbox" else f"{config.smtp.host}:{config.smtp.port}"
    d = result.delivery
    if tr.several:   # each pack's batch; the delivery is one run over every approved note
        planned: dict = {"batches": [{"treaty": p.pack, "batch": p.batch_id, "items_planned": len(p.items),
                                      "queued": result.approvals[p.batch_id].notes if p.batch_id in result.approvals else 0,
                                      "awaiting_approval": p.batch_id in result.awaiting} for p in result.plans]}
    else:
        planned = {"batch": result.plans[0].batch_id}
    if json_output:
        print(json.dumps({"as_of": day.isoformat(), "dry_run": False, **planned,
                          "items_planned": len(result.items), "queued": result.queued,
                          "awaiting_approval": result.awaiting_approval, "notifier": config.notifier, "where": str(where),
                          "sent": list(d.sent),
                          "failed": [{"key": key, "error": error} for key, error in d.failed],
                          "rejected": [{"key": key, "error": error} for key, error in d.rejected],
                          "not_rendered": [{"key": key, "error": error} for key, error in d.not_rendered],
                          "no_contact": {party: len(ps) for party, ps in sorted(result.no_contact.items())}},
                         ensure_ascii=False, indent=1))
        raise typer.Exit(1 if d.failed or d.rejected or d.not_rendered else 0)
    if tr.several:
        where_planned = (" in batches " + ", ".join(f"{p.batch_id} ({p.pack})" for p in result.plans if p.batch_id)
                         if result.batch_ids else "")
    else:
        where_planned = f" in batch {result.plans[0].batch_id}" if result.plans[0].batch_id else ""
    console.print(f"Letters as of {day.isoformat()}: {len(result.items)} item(s) planned" + where_planned
                  + f", {result.queued} note(s) queued, {len(d.sent)} sent ({config.notifier}: {where}), "
                  f"{len(d.failed)} failed (retried later), {len(d.rejected)} rejected (not retried: fix the contact, "
                  "or `ccm letters retry`).", highlight=False)
    for waiting_batch in result.awaiting:
        console.print(f"Batch {waiting_batch} awaits review: `ccm letters preview {waiting_batch}`, then "
                      f"`ccm letters approve {waiting_batch} --by NAME` ([letters] auto_send is false).",
                      highlight=False)
    for label, items in (("failed", d.failed), ("rejected", d.rejected), ("not rendered", d.not_rendered)):
        for key, problem in items:
            console.print(f"[red]{label}:[/] {_terminal(key)}: {_terminal(problem)}", highlight=False)
    _print_no_contact(result.no_contact)
    raise typer.Exit(1 if d.failed or d.rejected or d.not_rendered else 0)


def _terminal(text: object) -> str:
    return printable(text)


def _require_delivery(config) -> None:
    """An outbox folder that cannot be written, or SMTP chosen but not usable as configured: an
    operational failure (exit 3) before anything is written."""
    if config.notifier == "outbox":
        config.outbox.mkdir(parents=True, exist_ok=True)      # OSError: exit 3, naming the folder
        with tempfile.TemporaryFile(dir=config.outbox):
            pass
        return
    if config.notifier != "smtp":
        return
    if not config.smtp.host.strip():
        raise OperationalFailure("SMTP is not configured: [smtp] host is empty (or set CCM_SMTP_HOST); "
                                 "no letter was sent.")
    if config.smtp.user and not config.smtp.password():
        raise OperationalFailure(f"SMTP is not configured: [smtp] user is {config.smtp.user!r} but the environment "
                                 f"variable {config.smtp.password_env or '(password_env is empty)'} holding its password "
                                 "is not set; no letter was sent.")


@letters_app.command("log")
def letters_log(party: str | None = typer.Option(None, "--party"),
                status: str | None = typer.Option(None, "--status",
                                                     help="queued, sent, failed, rejected, partial or cancelled."),
                limit: int = typer.Option(50, "--limit"),
                json_output: bool = typer.Option(False, "--json", help="Print JSON."),
                treaty: str | None = typer.Option(None, "--treaty", help="Only this rule pack's notes.")) -> None:
    """The delivery log, newest first: what was sent, to whom (the outcome per recipient), when; failures with their error."""
    # lazy: Alembic, Babel, email-validator, Jinja2, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from engine.store.mailing import STATUSES
    from notifiers import delivery

    if status and status not in STATUSES:
        fail(f"--status {status!r}: give one of {', '.join(STATUSES)}")
    settings, _ = _settings()
    _ready(settings.database_url)
    tr = _selected(treaty)
    iso3 = find_in(tr, party).iso3 if party else None
    rows = delivery.log_rows(settings.database_url, iso3, status, limit, tr.names if treaty else None)
    outcomes = delivery.recipients_of(settings.database_url, [r.id for r in rows])
    if json_output:
        print(json.dumps([{"id": r.id, "key": r.key, "reference": r.reference, "message_id": r.message_id,
                           "to": r.recipients, "language": r.language, "subject": r.subject, "status": r.status,
                           "attempts": r.attempts, "created_at": str(r.created_at),
                           "sent_at": str(r.sent_at) if r.sent_at else None,
                           "next_attempt_at": str(r.next_attempt_at) if r.next_attempt_at else None,
                           "error": r.last_error, "batch": r.batch_id, "approved_by": r.approved_by,
                           "approved_at": str(r.approved_at) if r.approved_at else None,
                           "recipients": [{"address": o.address, "status": o.status, "detail": o.detail}
                                          for o in outcomes.get(r.id, [])]} for r in rows], ensure_ascii=False, indent=1))
        return
    table = _fitted(f"Delivery log ({len(rows)})")
    # 80 columns: the id, reference, status, tries and time never wrap; the note's cell holds to
    # whom (the outcome per recipient), who approved it and the error, and wraps.
    table.add_column("Id", no_wrap=True)
    table.add_column("Reference", no_wrap=True)
    table.add_column("Note", overflow="fold", ratio=1)
    for column in ("Status", "Tries", "Sent or next"):
        table.add_column(column, no_wrap=True)
    for r in rows:
        when = r.sent_at if r.status in ("sent", "partial") else r.next_attempt_at
        per = outcomes.get(r.id)
        to = ", ".join(f"{o.address} ({o.status})" for o in per) if per else r.recipients
        lines = [f"{r.party} to {escape(_terminal(to))}"]
        if r.approved_at:
            lines.append(f"approved by {escape(_terminal(r.approved_by or ''))}, {r.approved_at:%Y-%m-%d %H:%M}")
        if r.last_error:
            lines.append(f"[red]{escape(_terminal(r.last_error))}[/]")
        table.add_row(str(r.id), _terminal(r.reference), "\n".join(lines), r.status, str(r.attempts),
                      f"{when:%Y-%m-%d %H:%M}" if when else "")
    console.print(table)
    for r in rows:
        for o in outcomes.get(r.id, []):
            if o.status != "sent":
                console.print(f"  letter {r.id}: {_terminal(o.address)}: {o.status}"
                              + (f" ({_terminal(o.detail)})" if o.detail else ""), highlight=False, soft_wrap=True)


@letters_app.command("cancel")
def letters_cancel(letter_id: int | None = typer.Argument(None, help="The letter's id (ccm letters log)."),
                   party: str | None = typer.Option(None, "--party", help="Every unsent letter of this party."),
                   json_output: bool = typer.Option(False, "--json", help="Print JSON."),
                   treaty: str | None = typer.Option(None, "--treaty", help="Only this rule pack's letters (a selected "
                                                     "one); a letter id of another pack is refused.")) -> None:
    """Cancel an unsent letter (or every unsent letter of a party): it is never sent."""
    # lazy: Alembic, Babel, email-validator, Jinja2, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from notifiers import delivery

    if (letter_id is None) == (party is None):
        fail("give a letter id or --party PARTY (one of them)")
    settings, _ = _settings()
    _ready(settings.database_url)
    selected = _selected(treaty)
    iso3 = find_in(selected, party).iso3 if party else None
    try:
        keys = delivery.cancel(settings.database_url, letter_id, iso3, selected.names if treaty else None)
    except delivery.LetterNotFound as error:
        fail(str(error))
        return
    if json_output:
        print(json.dumps({"cancelled": keys}, ensure_ascii=False))
        return
    console.print(f"Cancelled {len(keys)} letter(s)" + (f" of {iso3}" if iso3 else "") + ".", highlight=False)
    for key in keys:
        console.print(f"  {_terminal(key)}", highlight=False)


@letters_app.command("retry")
def letters_retry(letter_id: int | None = typer.Argument(None, help="The letter's id (ccm letters log)."),
                  failed: bool = typer.Option(False, "--failed", help="Every failed, rejected or partial letter."),
                  json_output: bool = typer.Option(False, "--json", help="Print JSON."),
                  treaty: str | None = typer.Option(None, "--treaty", help="With --failed: only this rule pack's "
                                                    "letters.")) -> None:
    """Queue a letter again, re-rendered with its State's current contact; the next `letters send` delivers it."""
    # lazy: Alembic, Babel, email-validator, Jinja2, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from notifiers import delivery

    if (letter_id is None) == (not failed):
        fail("give a letter id or --failed (one of them)")
    settings, config = _settings()
    _ready(settings.database_url)
    try:
        keys, problems = delivery.retry(settings.database_url, _selected(treaty), config, letter_id)
    except delivery.LetterNotFound as error:
        fail(str(error))
        return
    if json_output:
        print(json.dumps({"queued": keys, "not_queued": [{"letter": k, "why": p} for k, p in problems]}, ensure_ascii=False))
        raise typer.Exit(2 if problems and not keys else 0)
    console.print(f"Queued {len(keys)} letter(s) again; `ccm letters send` (or the scheduler) delivers them.",
                  highlight=False)
    for key, problem in problems:
        console.print(f"[yellow]not queued:[/] {_terminal(key)}: {_terminal(problem)}", highlight=False)
    raise typer.Exit(2 if problems and not keys else 0)


@letters_app.command("snapshots")
def letters_snapshots(update: bool = typer.Option(False, "--update", help="Rewrite tests/snapshots/letters."),
                      treaty: str | None = typer.Option(None, "--treaty", help="Only this rule pack's cases (any pack: "
                                                        "the snapshots read the packs' files, not the settings).")) -> None:
    """Compare (or with --update rewrite) the golden snapshots of every template in every language."""
    # lazy: Babel, Jinja2 load only when this command runs, not on the start-up of ccm
    from engine.core import packs
    from notifiers import snapshots

    if treaty is not None and treaty not in packs.discover():
        fail(f"--treaty {treaty}: no such rule pack; the packs are {', '.join(sorted(packs.discover()))}")
    changed = snapshots.main(update=update, pack=treaty)
    raise typer.Exit(1 if changed and not update else 0)


# ----------------------------------------------------------------------------- scheduler

@schedule_app.command("run")
def schedule_run() -> None:
    """Run the scheduler in the foreground: the daily check then the letters, at [scheduler] time (UTC)."""
    # lazy: Alembic, APScheduler, email-validator, Jinja2, SQLAlchemy load only when this command runs, not on the start-up of ccm
    from engine.check import scheduler

    settings, config = _settings()
    daemon_logging(settings)
    _ready(settings.database_url)
    console.print(f"Scheduler on {settings.database_url.split('@')[-1]}: daily check and letters at "
                  f"{config.scheduler.hour:02d}:{config.scheduler.minute:02d} UTC, failed deliveries retried every "
                  f"{config.scheduler.retry_every_minutes} min. Ctrl-C stops it.", highlight=False)
    try:
        scheduler.run(settings.database_url, config)
    except (KeyboardInterrupt, SystemExit):
        pass


def register(app: typer.Typer) -> None:
    """Add the contacts, letters and schedule commands to the ``ccm`` app (the letters plugin's cli hook)."""
    app.add_typer(contacts_app, name="contacts")
    app.add_typer(letters_app, name="letters")
    app.add_typer(schedule_app, name="schedule")
