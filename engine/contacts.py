"""States' contacts for letters (permanent mission, e-mail, working language): set one, import a CSV, read them all."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from engine.store import reader_session, writer_session

LANGUAGES = ("en", "fr", "es", "zh")
CSV_COLUMNS = ("party", "email", "language", "mission", "cc")
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")


class ContactError(ValueError):
    """A contact refused; the message says which field and why."""


@dataclass(frozen=True)
class Contact:
    party: str
    email: tuple[str, ...]
    language: str
    mission: str | None = None
    cc: tuple[str, ...] = ()


def _addresses(text: str | None, field: str) -> tuple[str, ...]:
    items = tuple(a.strip() for a in re.split(r"[,;]", text or "") if a.strip())
    for address in items:
        if not _EMAIL.match(address):
            raise ContactError(f"{field}: {address!r} is not an e-mail address")
    return items


def validate(party: str, email: str, language: str, mission: str | None = None, cc: str | None = None) -> Contact:
    """A Contact, or ContactError naming the field (e-mail, language) that is wrong."""
    emails = _addresses(email, "email")
    if not emails:
        raise ContactError("email: give at least one address")
    if language not in LANGUAGES:
        raise ContactError(f"language: {language!r} is not one of {', '.join(LANGUAGES)}")
    return Contact(party=party.upper(), email=emails, language=language, mission=(mission or "").strip() or None,
                   cc=_addresses(cc, "cc"))


def set_contacts(url: str, contacts: list[Contact]) -> int:
    """Insert or replace the contacts, all in one transaction. Returns how many were written."""
    from notifiers.log import ContactRow

    now = datetime.now(timezone.utc)
    with writer_session(url) as session, session.begin():
        for c in contacts:
            row = session.get(ContactRow, c.party) or ContactRow(party=c.party)
            row.email, row.language, row.mission = ", ".join(c.email), c.language, c.mission
            row.cc, row.updated_at = ", ".join(c.cc) or None, now
            session.add(row)
    return len(contacts)


def read_csv(path: Path, known_parties) -> list[Contact]:
    """Parse and validate a contacts CSV (columns: party,email,language,mission,cc); all rows or ContactError
    listing every bad row by line number and field."""
    problems, contacts = [], []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("party", "email", "language") if c not in (reader.fieldnames or [])]
        if missing:
            raise ContactError(f"{path.name}: the header lacks the column(s) {', '.join(missing)} "
                               f"(expected {','.join(CSV_COLUMNS)})")
        for line, row in enumerate(reader, start=2):
            party = (row.get("party") or "").strip().upper()
            if party not in known_parties:
                problems.append(f"line {line}, field party: {party!r} is not a participant's ISO3 code")
                continue
            try:
                contacts.append(validate(party, row.get("email") or "", (row.get("language") or "").strip(),
                                         row.get("mission"), row.get("cc")))
            except ContactError as error:
                problems.append(f"line {line}, field {error}")
    if problems:
        raise ContactError(f"Nothing was imported: {len(problems)} problem(s) found.\n  " + "\n  ".join(problems))
    return contacts


def load_contacts(url: str) -> dict[str, Contact]:
    """Every contact by party (empty when the table has none)."""
    from notifiers.log import ContactRow

    with reader_session(url) as session:
        rows = session.scalars(sa.select(ContactRow)).all()
    return {r.party: Contact(party=r.party, email=_addresses(r.email, "email"), language=r.language,
                             mission=r.mission, cc=_addresses(r.cc, "cc")) for r in rows}
