"""States' contacts for letters (permanent mission, e-mail, working language): set one, import a CSV, read them all."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from engine.record.addresses import AddressError, check_address
from engine.record.importing import InputError, check_row, csv_rows
from engine.store.database import reader_session, writer_session
from engine.store.mailing import ContactRow

LANGUAGES = ("en", "fr", "es", "zh")
CSV_COLUMNS = ("party", "email", "language", "mission", "cc")
MAX_MISSION = 500


class ContactError(ValueError):
    """A contact refused; the message says which field and why."""


@dataclass(frozen=True)
class Contact:
    party: str
    email: tuple[str, ...]
    language: str
    mission: str | None = None
    cc: tuple[str, ...] = ()


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(a.strip() for a in re.split(r"[,;]", text or "") if a.strip())


def _addresses(text: str | None, field: str) -> tuple[str, ...]:
    """Each address checked (email-validator) and kept as it will be sent: IDNA domain, local part as given."""
    checked = []
    for address in _split(text):
        try:
            checked.append(check_address(address).text)
        except AddressError as error:
            raise ContactError(f"{field}: {error}") from None
    return tuple(dict.fromkeys(checked))


def validate(party: str, email: str, language: str, mission: str | None = None, cc: str | None = None) -> Contact:
    """A Contact, or ContactError naming the field (e-mail, language) that is wrong."""
    emails = _addresses(email, "email")
    if not emails:
        raise ContactError("email: give at least one address")
    language = (language or "").strip().lower()     # EN, Fr: the codes are case-insensitive
    if language not in LANGUAGES:
        raise ContactError(f"language: {language!r} is not one of {', '.join(LANGUAGES)}")
    mission = " ".join((mission or "").split())
    if len(mission) > MAX_MISSION or "\x00" in mission:
        raise ContactError(f"mission: give at most {MAX_MISSION} characters, without NUL")
    return Contact(party=party.upper(), email=emails, language=language, mission=mission or None,
                   cc=_addresses(cc, "cc"))


def set_contacts(url: str, contacts: list[Contact]) -> int:
    """Insert or replace the contacts, all in one transaction. Returns how many were written."""
    now = datetime.now(UTC)
    with writer_session(url) as session, session.begin():
        for c in contacts:
            row = session.get(ContactRow, c.party) or ContactRow(party=c.party)
            row.email, row.language, row.mission = ", ".join(c.email), c.language, c.mission
            row.cc, row.updated_at = ", ".join(c.cc) or None, now
            session.add(row)
    return len(contacts)


def read_csv(path: Path, known_parties) -> list[Contact]:
    """Parse and validate a contacts CSV (columns: party,email,language,mission,cc); all rows or ContactError
    listing every bad row by line number and field (a file that is not UTF-8 or not CSV included)."""
    problems: list[str] = []
    contacts: list[Contact] = []
    try:
        for line, row in csv_rows(path, ("party", "email", "language"), CSV_COLUMNS):
            bad = check_row(row, CSV_COLUMNS)
            if bad:
                problems.extend(f"line {line}, field {fld}: {message}" for fld, message in bad)
                continue
            party = (row.get("party") or "").strip().upper()
            if party not in known_parties:
                problems.append(f"line {line}, field party: {party[:40]!r} is not a participant's ISO3 code")
                continue
            try:
                contacts.append(validate(party, row.get("email") or "", (row.get("language") or "").strip(),
                                         row.get("mission"), row.get("cc")))
            except ContactError as error:
                problems.append(f"line {line}, field {error}")
    except InputError as error:
        raise ContactError(f"{path.name}: {error}") from None
    if problems:
        raise ContactError(f"Nothing was imported: {len(problems)} problem(s) found.\n  " + "\n  ".join(problems[:200]))
    return contacts


def load_contacts(url: str) -> dict[str, Contact]:
    """Every contact by party (empty when the table has none)."""
    with reader_session(url) as session:
        rows = session.scalars(sa.select(ContactRow)).all()
    # Not re-checked here: an address stored before the checks were stricter fails its own
    # letters at delivery (permanently, with the reason), never the whole run.
    return {r.party: Contact(party=r.party, email=_split(r.email), language=r.language,
                             mission=r.mission, cc=_split(r.cc)) for r in rows}
