"""Load and validate a treaty's registry of dated facts (participants, meetings, declarations, completions,
decisions, extension requests, observations of the record) from CSV and TOML files."""

from __future__ import annotations

import csv
import difflib
import hashlib
import re
import tomllib
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import Iterator

import babel
from babel.core import get_global

from engine import dates

__all__ = [
    "Completion",
    "Decision",
    "Declaration",
    "ExtensionRequest",
    "Meeting",
    "Observation",
    "Participant",
    "PublishedReceipt",
    "Problem",
    "Registry",
    "RegistryError",
    "Source",
    "TreatySettings",
    "UnknownPartyError",
    "load_registry",
    "parse_sources",
    "registry_hash",
]

SOURCE_SEPARATOR = " ; "

# The column schema of each registry file, in file order.
COLUMNS: dict[str, tuple[str, ...]] = {
    "participants.csv": (
        "iso3", "name", "signature_date", "instrument", "deposit_date",
        "provisional_application_date", "withdrawal_effective_date", "evidence", "notes", "sources",
    ),
    "meetings.csv": (
        "code", "kind", "name", "city", "start_date", "end_date", "date_precision",
        "announced_start_date", "status", "notes", "sources",
    ),
    "declarations.csv": (
        "iso3", "article", "position", "end_of_hostilities", "quantity", "retains",
        "retention_ended", "notes", "sources",
    ),
    "completions.csv": (
        "iso3", "article", "completed_on", "precision", "declared_at", "declared_text", "notes", "sources",
    ),
    "decisions.csv": (
        "iso3", "article", "kind", "meeting", "decided_on", "decided_precision", "granted_deadline",
        "document", "inferred", "notes", "sources",
    ),
    "requests.csv": (
        "iso3", "article", "meeting", "submitted_on", "submitted_precision", "requested_deadline",
        "document", "notes", "sources",
    ),
    "observations.csv": (
        "id", "observed_on", "observed_until", "kind", "period", "complete", "outstanding", "observer", "phrase",
        "notes", "sources",
    ),
    "receipts.csv": (
        "iso3", "kind", "period", "received_on", "precision", "observer", "phrase", "notes", "sources",
    ),
}
TREATY_FILE = "treaty.toml"

INSTRUMENT_KINDS = frozenset({"ratification", "acceptance", "approval", "accession"})
MEETING_KINDS = frozenset({"MSP", "RC", "preparatory", "intersessional"})
MEETING_PRECISIONS = frozenset({"day", "month"})
MEETING_STATUSES = frozenset({"held", "announced"})
OBSERVATION_KINDS = frozenset({"initial", "annual", "retention"})
REQUEST_PRECISIONS = frozenset({"day", "month", "year", "before"})
RECEIPT_PRECISIONS = frozenset({"day", "month", "year", "before"})
COMPLETION_PRECISIONS = frozenset({"day", "month", "year", "before"})
DECISION_KINDS = frozenset({"extension"})
DECISION_PRECISIONS = frozenset({"day", "month"})
RETAINS = {"yes": True, "no": False, "unknown": None, "": None}
YES_NO = {"yes": True, "no": False}

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TITLED_SOURCE = re.compile(r"^(?P<title>.+?)\s*<(?P<href>\S+)>$")


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class Problem:
    """One thing wrong in one registry file; `row` is the 1-based line, the header being line 1."""

    file: str
    row: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file} line {self.row}, field {self.field}: {self.message}"


class RegistryError(ValueError):
    """The registry files are inconsistent; `.problems` lists every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(
            f"The registry has {len(self.problems)} problem(s); fix them and load it again:\n{lines}"
        )


class UnknownPartyError(LookupError):
    """No participant matches a query; `.suggestions` holds up to five close participants."""

    def __init__(self, query: str, suggestions: tuple["Participant", ...] = ()):
        self.query = query
        self.suggestions = tuple(suggestions)
        message = f"No participant matches {query!r}."
        if self.suggestions:
            names = ", ".join(f"{p.name} ({p.iso3})" for p in self.suggestions)
            message += f" Did you mean: {names}?"
        else:
            message += " Give an ISO 3166-1 alpha-3 code or a country name."
        super().__init__(message)

    def __str__(self) -> str:
        return self.args[0]


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Source:
    """Where a fact comes from: an address and, optionally, a title."""

    href: str
    title: str | None = None


def parse_sources(text: str) -> tuple[Source, ...]:
    """Split a ` ; `-separated list of sources; an item may be `Title <href>`.

    >>> parse_sources("https://a.example/x ; UNTC <https://b.example/y>")
    (Source(href='https://a.example/x', title=None), Source(href='https://b.example/y', title='UNTC'))
    >>> parse_sources("")
    ()
    """
    sources = []
    for item in text.split(SOURCE_SEPARATOR):
        item = item.strip()
        if not item:
            continue
        titled = _TITLED_SOURCE.match(item)
        if titled:
            sources.append(Source(href=titled["href"], title=titled["title"]))
        else:
            sources.append(Source(href=item))
    return tuple(sources)


@dataclass(frozen=True)
class Participant:
    """A signatory or State Party, with its instrument and the dates the depositary records."""

    iso3: str
    name: str
    signature_date: date | None
    instrument: str | None
    deposit_date: date | None
    provisional_application_date: date | None
    withdrawal_effective_date: date | None
    evidence: str
    notes: str
    sources: tuple[Source, ...]

    def localized_name(self, locale: str) -> str:
        """The CLDR name of the territory in `locale` (e.g. 'fr'), or `name` if CLDR has none.

        Raises babel.UnknownLocaleError for a locale CLDR does not know.
        """
        territories = babel.Locale.parse(locale).territories
        for alpha2 in get_global("territory_aliases").get(self.iso3, ()):
            if alpha2 in territories:
                return territories[alpha2]
        return self.name


@dataclass(frozen=True)
class Meeting:
    """A Meeting of States Parties, Review Conference, preparatory or intersessional meeting.

    ``announced_start_date`` is the opening date as convened when it differs from the date the
    meeting actually opened (the 2RC was convened for 23 Nov 2020 and opened on 25 Nov 2020):
    dates counted back from a meeting use it. ``status`` is ``held`` or ``announced`` for a
    registry row and ``projected`` for a meeting the calendar rule estimates.
    """

    code: str
    kind: str
    name: str
    city: str
    start_date: date
    end_date: date | None
    date_precision: str
    notes: str
    sources: tuple[Source, ...]
    announced_start_date: date | None = None
    status: str = "held"

    @property
    def opening_as_announced(self) -> date:
        return self.announced_start_date or self.start_date

    @property
    def projected(self) -> bool:
        return self.status == "projected"


@dataclass(frozen=True)
class ExtensionRequest:
    """A request for more time that a State submitted (or announced) for a meeting to consider."""

    iso3: str
    article: int
    meeting: str
    submitted_on: date
    submitted_precision: str
    requested_deadline: date | None
    document: str
    notes: str
    sources: tuple[Source, ...]

    @property
    def known_by(self) -> date:
        """The latest day it can have been submitted: the end of its month or year, or (no date
        published, precision ``before``) the day the meeting that considered it opened."""
        return dates.end_of_period(self.submitted_on, self.submitted_precision)


@dataclass(frozen=True)
class Observation:
    """A dated public statement of which reports of one kind were outstanding on a day.

    From an observation dated D: a report listed in ``outstanding`` was still outstanding on D;
    when the list is ``complete``, a report of the same kind (and period, if one is given) due
    before D by a State not listed had been received on or before D. An undated copy of a list
    is known only to have been written between ``observed_on`` and ``observed_until``: what it
    lists was outstanding on the first day, what it leaves out was received by the last.
    """

    id: str
    observed_on: date
    observed_until: date
    kind: str
    period: str | None
    complete: bool
    outstanding: frozenset[str]
    observer: str
    phrase: str
    notes: str
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class Declaration:
    """A State's position under one article (e.g. stockpile or contamination at entry into force)."""

    iso3: str
    article: int
    position: str
    end_of_hostilities: date | None
    quantity: str
    retains: bool | None
    retention_ended: int | None
    notes: str
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class Completion:
    """A dated completion of an obligation under one article."""

    iso3: str
    article: int
    completed_on: date
    precision: str
    declared_at: str | None
    declared_text: str
    notes: str
    sources: tuple[Source, ...]

    @property
    def known_by(self) -> date:
        """The latest date the completion can be: end of month or year for those precisions;
        `completed_on` itself for 'day' and 'before' (completed on or before that day)."""
        return dates.end_of_period(self.completed_on, self.precision)


@dataclass(frozen=True)
class Decision:
    """A meeting's decision, e.g. an extension granting a new deadline."""

    iso3: str
    article: int
    kind: str
    meeting: str
    decided_on: date
    decided_precision: str
    granted_deadline: date
    document: str
    inferred: bool
    notes: str
    sources: tuple[Source, ...]

    @property
    def known_by(self) -> date:
        """The latest date the decision can have been taken (end of month for 'month')."""
        return dates.end_of_period(self.decided_on, self.decided_precision)


@dataclass(frozen=True)
class PublishedReceipt:
    """A date of receipt of a report as a public source states it (the ISU's own record wins over it)."""

    iso3: str
    kind: str
    period: str | None
    received_on: date
    precision: str
    observer: str
    phrase: str
    notes: str
    sources: tuple[Source, ...]

    @property
    def known_by(self) -> date:
        """The latest day it can have been received (end of its month or year; the day itself otherwise)."""
        return dates.end_of_period(self.received_on, self.precision)


@dataclass(frozen=True)
class TreatySettings:
    """The treaty's own dated constants, read from treaty.toml."""

    name: str
    adopted: date
    opened_for_signature: date
    instruments_for_entry_into_force: int
    entry_into_force_months: int
    original_deadline_years: dict[int, int]
    extension_ceiling_years: dict[int, int]
    positions: dict[int, frozenset[str]]
    sources: tuple[Source, ...]


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Registry:
    """Every registry fact, indexed for look-ups by ISO3 code and meeting code.

    The look-ups are indexed once, on first use (a registry is not changed after it is built):
    a check of 10,000 parties asks for each party's rows and the threshold deposit every time.
    ``hash`` identifies the files it was read from (see :func:`registry_hash`); a registry
    built in code has none.
    """

    treaty: TreatySettings
    participants: dict[str, Participant]
    meetings: tuple[Meeting, ...]
    declarations: tuple[Declaration, ...]
    completions: tuple[Completion, ...]
    decisions: tuple[Decision, ...]
    hash: str | None = None
    requests: tuple[ExtensionRequest, ...] = ()
    observations: tuple[Observation, ...] = ()
    receipts: tuple[PublishedReceipt, ...] = ()

    def participant(self, iso3: str) -> Participant:
        """The participant with this ISO3 code; raises UnknownPartyError."""
        try:
            return self.participants[iso3.upper()]
        except KeyError:
            raise UnknownPartyError(iso3, self._suggest(iso3)) from None

    def meeting(self, code: str) -> Meeting:
        """The meeting with this code (e.g. '9MSP'); raises LookupError."""
        try:
            return self._meetings_by_code[code]
        except (KeyError, TypeError):
            known = ", ".join(m.code for m in self.meetings)
            raise LookupError(f"No meeting has the code {code!r}. Known codes: {known}.") from None

    def declarations_for(self, iso3: str) -> tuple[Declaration, ...]:
        return self._declarations_by_party.get(iso3, ())

    def completions_for(self, iso3: str) -> tuple[Completion, ...]:
        return self._completions_by_party.get(iso3, ())

    def decisions_for(self, iso3: str) -> tuple[Decision, ...]:
        """The participant's decisions, oldest first."""
        return self._decisions_by_party.get(iso3, ())

    def requests_for(self, iso3: str) -> tuple[ExtensionRequest, ...]:
        return self._requests_by_party.get(iso3, ())

    def receipts_for(self, iso3: str) -> tuple[PublishedReceipt, ...]:
        return self._receipts_by_party.get(iso3, ())

    def thirtieth_deposit(self) -> tuple[date, tuple[Participant, ...]]:
        """The date of the deposit that brought the treaty into force (the 30th for the CCM,
        read from treaty.toml) and the participants that deposited on that date.

        Raises LookupError if fewer instruments have been deposited.
        """
        found = self._threshold
        if isinstance(found, LookupError):
            raise LookupError(*found.args)
        return found

    def find(self, query: str) -> Participant:
        """The participant named by an ISO3 code, its registry name or its CLDR English name,
        ignoring case; raises UnknownPartyError with up to five close matches."""
        found = self._by_label.get(query.strip().casefold())
        if found is not None:
            return found
        raise UnknownPartyError(query, self._suggest(query))

    def _suggest(self, query: str) -> tuple[Participant, ...]:
        by_label: dict[str, Participant] = {}
        for participant in self.participants.values():
            for label in (participant.name, participant.localized_name("en"), participant.iso3):
                by_label.setdefault(label.casefold(), participant)
        matches = difflib.get_close_matches(query.strip().casefold(), list(by_label), n=15, cutoff=0.6)
        suggestions: list[Participant] = []
        for label in matches:
            if by_label[label] not in suggestions:
                suggestions.append(by_label[label])
        return tuple(suggestions[:5])

    # -- indexes, built on first use --------------------------------------------------------

    @cached_property
    def _meetings_by_code(self) -> dict[str, Meeting]:
        index: dict[str, Meeting] = {}
        for meeting in self.meetings:
            index.setdefault(meeting.code, meeting)      # the first one, as a scan would find
        return index

    @cached_property
    def _declarations_by_party(self) -> dict[str, tuple[Declaration, ...]]:
        return _by_party(self.declarations)

    @cached_property
    def _completions_by_party(self) -> dict[str, tuple[Completion, ...]]:
        return _by_party(self.completions)

    @cached_property
    def _decisions_by_party(self) -> dict[str, tuple[Decision, ...]]:
        # a stable sort of each party's rows in file order: what sorting the filtered tuple gave
        return {iso3: tuple(sorted(rows, key=lambda d: d.decided_on))
                for iso3, rows in _by_party(self.decisions).items()}

    @cached_property
    def _receipts_by_party(self) -> dict[str, tuple[PublishedReceipt, ...]]:
        return _by_party(self.receipts)

    @cached_property
    def _requests_by_party(self) -> dict[str, tuple[ExtensionRequest, ...]]:
        return _by_party(self.requests)

    @cached_property
    def _threshold(self) -> tuple[date, tuple[Participant, ...]] | LookupError:
        try:
            return _threshold_deposit(self.treaty, self.participants.values())
        except LookupError as error:
            return error

    @cached_property
    def _by_label(self) -> dict[str, Participant]:
        """ISO3 code, registry name and CLDR English name, case-folded; the first participant
        (in registry order) to carry a label keeps it, as the scan it replaces did."""
        index: dict[str, Participant] = {}
        for participant in self.participants.values():
            for label in (participant.iso3, participant.name, participant.localized_name("en")):
                index.setdefault(label.casefold(), participant)
        return index


def _by_party(rows) -> dict[str, tuple]:
    grouped: dict[str, list] = {}
    for row in rows:
        grouped.setdefault(row.iso3, []).append(row)
    return {iso3: tuple(items) for iso3, items in grouped.items()}


def _threshold_deposit(treaty: TreatySettings, participants) -> tuple[date, tuple[Participant, ...]]:
    deposited = sorted((p for p in participants if p.deposit_date), key=lambda p: p.deposit_date)
    needed = treaty.instruments_for_entry_into_force
    if len(deposited) < needed:
        raise LookupError(f"Only {len(deposited)} instruments are deposited; entry into force needs {needed}.")
    threshold = deposited[needed - 1].deposit_date
    return threshold, tuple(p for p in deposited if p.deposit_date == threshold)


# --------------------------------------------------------------------------- loading


def _alpha3_codes() -> frozenset[str]:
    """The ISO 3166-1 alpha-3 codes CLDR maps to exactly one current region, leaving out the
    user-assigned ranges (AA, QM-QZ, XA-XZ, ZZ) and deprecated codes split into several regions."""
    user_assigned = re.compile(r"AA|Q[M-Z]|X[A-Z]|ZZ")
    return frozenset(
        code for code, regions in get_global("territory_aliases").items()
        if len(code) == 3 and code.isalpha() and code.isupper() and len(regions) == 1
        and len(regions[0]) == 2 and not user_assigned.fullmatch(regions[0])
    )


def default_directory() -> Path:
    """The packaged registry directory (rules/ccm/registry)."""
    return Path(str(files("rules") / "ccm" / "registry"))


def registry_hash(directory: Path | None = None) -> str:
    """A hash that identifies the exact text of the registry's files (treaty.toml and the CSV
    files), computed like the rulebook's: sha256 over each file's name and bytes, in name
    order, first 16 hex digits. A missing file counts as empty (loading reports it)."""
    directory = Path(directory) if directory is not None else default_directory()
    digest = hashlib.sha256()
    for name in sorted((TREATY_FILE, *COLUMNS)):
        path = directory / name
        raw = path.read_bytes() if path.is_file() else b""
        digest.update(name.encode() + b"\0" + raw + b"\0")
    return digest.hexdigest()[:16]


class _Checker:
    """Collects problems while rows are converted."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, file: str, row: int, field: str, message: str) -> None:
        self.problems.append(Problem(file, row, field, message))

    def date(self, file: str, row: int, field: str, text: str, required: bool = False) -> date | None:
        text = text.strip()
        if not text:
            if required:
                self.add(file, row, field, "is empty; a date (YYYY-MM-DD) is required")
            return None
        if _ISO_DATE.fullmatch(text):
            try:
                return date.fromisoformat(text)
            except ValueError:
                pass
        self.add(file, row, field, f"{text!r} is not a date (YYYY-MM-DD)")
        return None

    def choice(self, file: str, row: int, field: str, text: str, allowed) -> str | None:
        if text in allowed:
            return text
        options = ", ".join(sorted(a for a in allowed if a)) or "(none)"
        self.add(file, row, field, f"{text!r} is not one of: {options}")
        return None

    def integer(self, file: str, row: int, field: str, text: str, required: bool = True) -> int | None:
        text = text.strip()
        if not text and not required:
            return None
        if re.fullmatch(r"\d+", text):
            return int(text)
        self.add(file, row, field, f"{text!r} is not a whole number")
        return None

    def sources(self, file: str, row: int, text: str) -> tuple[Source, ...]:
        sources = parse_sources(text)
        if not sources:
            self.add(file, row, "sources", "is empty; every fact needs at least one source")
        for source in sources:
            if not re.match(r"https?://\S+$", source.href):
                self.add(file, row, "sources", f"{source.href!r} is not an http(s) address")
        return sources


def _read_rows(directory: Path, file: str, check: _Checker) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (first line number, row) for each record; reports bad headers and missing files."""
    path = directory / file
    if not path.is_file():
        check.add(file, 0, "-", "the file is missing")
        return
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            check.add(file, 1, "-", "the file is empty; it needs a header line")
            return
        expected = COLUMNS[file]
        unknown = [c for c in header if c not in expected]
        missing = [c for c in expected if c not in header]
        for column in unknown:
            check.add(file, 1, column, f"unknown column; expected columns: {', '.join(expected)}")
        for column in missing:
            check.add(file, 1, column, "missing column")
        if missing:
            return
        last_line = reader.line_num
        for record in reader:
            first_line = last_line + 1
            last_line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != len(header):
                check.add(file, first_line, "-", f"has {len(record)} fields, the header has {len(header)}")
                continue
            yield first_line, dict(zip(header, record))


def _load_treaty(directory: Path, check: _Checker) -> TreatySettings | None:
    path = directory / TREATY_FILE
    if not path.is_file():
        check.add(TREATY_FILE, 0, "-", "the file is missing")
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        check.add(TREATY_FILE, 0, "-", f"is not valid TOML ({error})")
        return None

    def per_article(table: str) -> dict[int, object]:
        found = {}
        for key, value in data.get(table, {}).items():
            match = re.fullmatch(r"art(\d+)(?:_years)?", key)
            if not match:
                check.add(TREATY_FILE, 0, f"{table}.{key}", "keys must look like art3_years or art3")
                continue
            found[int(match[1])] = value
        return found

    try:
        return TreatySettings(
            name=data["name"],
            adopted=data["adopted"],
            opened_for_signature=data["opened_for_signature"],
            instruments_for_entry_into_force=int(data["instruments_for_entry_into_force"]),
            entry_into_force_months=int(data["entry_into_force_months"]),
            original_deadline_years={k: int(v) for k, v in per_article("original_deadline").items()},
            extension_ceiling_years={k: int(v) for k, v in per_article("extension_ceiling").items()},
            positions={k: frozenset(v) for k, v in per_article("positions").items()},
            sources=tuple(Source(href=s["href"], title=s.get("title")) for s in data.get("sources", ())),
        )
    except KeyError as error:
        check.add(TREATY_FILE, 0, str(error.args[0]), "missing key")
        return None


def load_registry(directory: Path | None = None) -> Registry:
    """Read and check every registry file in `directory` (default: the packaged registry).

    Raises RegistryError listing every problem found (file, line, field), not only the first.
    """
    directory = Path(directory) if directory is not None else default_directory()
    check = _Checker()
    treaty = _load_treaty(directory, check)
    if treaty is None:
        raise RegistryError(check.problems)
    alpha3_codes = _alpha3_codes()

    # participants
    file = "participants.csv"
    participants: dict[str, Participant] = {}
    for line, row in _read_rows(directory, file, check):
        iso3 = row["iso3"].strip()
        if iso3 not in alpha3_codes:
            check.add(file, line, "iso3", f"{iso3!r} is not an ISO 3166-1 alpha-3 code known to CLDR")
        if iso3 in participants:
            check.add(file, line, "iso3", f"duplicate row: {iso3!r} already appears above")
            continue
        signature = check.date(file, line, "signature_date", row["signature_date"])
        deposit = check.date(file, line, "deposit_date", row["deposit_date"])
        provisional = check.date(file, line, "provisional_application_date", row["provisional_application_date"])
        withdrawal = check.date(file, line, "withdrawal_effective_date", row["withdrawal_effective_date"])
        instrument = row["instrument"].strip() or None
        if instrument is not None:
            check.choice(file, line, "instrument", instrument, INSTRUMENT_KINDS)
        opened = treaty.opened_for_signature
        if signature and signature < opened:
            check.add(file, line, "signature_date",
                      f"{signature} is before the treaty opened for signature on {opened}")
        if deposit and deposit < opened:
            check.add(file, line, "deposit_date",
                      f"{deposit} is before the treaty opened for signature on {opened}")
        if deposit and instrument is None:
            check.add(file, line, "instrument", "is empty but a deposit_date is given")
        if instrument is not None and deposit is None and row["deposit_date"].strip() == "":
            check.add(file, line, "deposit_date", f"is empty but the instrument is {instrument!r}")
        if withdrawal and deposit is None:
            check.add(file, line, "withdrawal_effective_date", "a withdrawal needs a deposit_date")
        if withdrawal and deposit and withdrawal <= deposit:
            check.add(file, line, "withdrawal_effective_date",
                      f"{withdrawal} is not after the deposit on {deposit}")
        if not row["name"].strip():
            check.add(file, line, "name", "is empty")
        participants[iso3] = Participant(
            iso3=iso3, name=row["name"].strip(), signature_date=signature, instrument=instrument,
            deposit_date=deposit, provisional_application_date=provisional,
            withdrawal_effective_date=withdrawal, evidence=row["evidence"], notes=row["notes"],
            sources=check.sources(file, line, row["sources"]),
        )

    def known_party(file: str, line: int, iso3: str) -> bool:
        if iso3 in participants:
            return True
        check.add(file, line, "iso3", f"{iso3!r} is not in participants.csv")
        return False

    def article_of(file: str, line: int, text: str) -> int | None:
        article = check.integer(file, line, "article", text)
        if article is not None and article not in treaty.positions:
            known = ", ".join(str(a) for a in sorted(treaty.positions))
            check.add(file, line, "article", f"{article} is not an article the registry covers ({known})")
            return None
        return article

    # meetings
    file = "meetings.csv"
    meetings: dict[str, Meeting] = {}
    for line, row in _read_rows(directory, file, check):
        code = row["code"].strip()
        if not code:
            check.add(file, line, "code", "is empty")
        if code in meetings:
            check.add(file, line, "code", f"duplicate row: {code!r} already appears above")
            continue
        kind = check.choice(file, line, "kind", row["kind"].strip(), MEETING_KINDS)
        precision = check.choice(file, line, "date_precision", row["date_precision"].strip(), MEETING_PRECISIONS)
        start = check.date(file, line, "start_date", row["start_date"], required=True)
        end = check.date(file, line, "end_date", row["end_date"], required=(precision == "day"))
        if start and end and end < start:
            check.add(file, line, "end_date", f"{end} is before the start_date {start}")
        if precision == "month" and start and start.day != 1:
            check.add(file, line, "start_date", f"{start} should be the 1st of the month for precision 'month'")
        announced = check.date(file, line, "announced_start_date", row["announced_start_date"])
        status = check.choice(file, line, "status", row["status"].strip(), MEETING_STATUSES)
        meetings[code] = Meeting(
            code=code, kind=kind or "", name=row["name"].strip(), city=row["city"].strip(),
            start_date=start or date.min, end_date=end, date_precision=precision or "",
            notes=row["notes"], sources=check.sources(file, line, row["sources"]),
            announced_start_date=announced, status=status or "held",
        )

    def known_meeting(file: str, line: int, field: str, code: str) -> bool:
        if code in meetings:
            return True
        check.add(file, line, field, f"{code!r} is not a meeting code in meetings.csv")
        return False

    # declarations
    file = "declarations.csv"
    declarations: list[Declaration] = []
    seen: set[tuple] = set()
    for line, row in _read_rows(directory, file, check):
        iso3 = row["iso3"].strip()
        known_party(file, line, iso3)
        article = article_of(file, line, row["article"])
        key = (iso3, article)
        if key in seen:
            check.add(file, line, "article", f"duplicate row: {iso3} article {article} already appears above")
            continue
        seen.add(key)
        position = row["position"].strip()
        if article is not None:
            check.choice(file, line, "position", position, treaty.positions[article])
        retains_text = row["retains"].strip()
        if retains_text not in RETAINS:
            check.add(file, line, "retains", f"{retains_text!r} is not one of: yes, no, unknown (or empty)")
        retention_ended = check.integer(file, line, "retention_ended", row["retention_ended"], required=False)
        declarations.append(Declaration(
            iso3=iso3, article=article or 0, position=position,
            end_of_hostilities=check.date(file, line, "end_of_hostilities", row["end_of_hostilities"]),
            quantity=row["quantity"], retains=RETAINS.get(retains_text), retention_ended=retention_ended,
            notes=row["notes"], sources=check.sources(file, line, row["sources"]),
        ))

    # completions
    file = "completions.csv"
    completions: list[Completion] = []
    seen = set()
    for line, row in _read_rows(directory, file, check):
        iso3 = row["iso3"].strip()
        known_party(file, line, iso3)
        article = article_of(file, line, row["article"])
        key = (iso3, article)
        if key in seen:
            check.add(file, line, "article", f"duplicate row: {iso3} article {article} already appears above")
            continue
        seen.add(key)
        precision = check.choice(file, line, "precision", row["precision"].strip(), COMPLETION_PRECISIONS)
        completed_on = check.date(file, line, "completed_on", row["completed_on"], required=True)
        if completed_on and precision == "month" and completed_on.day != 1:
            check.add(file, line, "completed_on", f"{completed_on} should be the 1st of the month for precision 'month'")
        if completed_on and precision == "year" and (completed_on.month, completed_on.day) != (1, 1):
            check.add(file, line, "completed_on", f"{completed_on} should be 1 January for precision 'year'")
        declared_at = row["declared_at"].strip() or None
        if declared_at is not None:
            known_meeting(file, line, "declared_at", declared_at)
        completions.append(Completion(
            iso3=iso3, article=article or 0, completed_on=completed_on or date.min,
            precision=precision or "", declared_at=declared_at, declared_text=row["declared_text"],
            notes=row["notes"], sources=check.sources(file, line, row["sources"]),
        ))

    # decisions
    file = "decisions.csv"
    decisions: list[tuple[int, Decision]] = []
    seen = set()
    for line, row in _read_rows(directory, file, check):
        iso3 = row["iso3"].strip()
        party_known = known_party(file, line, iso3)
        article = article_of(file, line, row["article"])
        kind = check.choice(file, line, "kind", row["kind"].strip(), DECISION_KINDS)
        meeting = row["meeting"].strip()
        meeting_known = known_meeting(file, line, "meeting", meeting)
        key = (iso3, article, kind, meeting)
        if key in seen:
            check.add(file, line, "meeting",
                      f"duplicate row: {iso3} article {article} {kind} at {meeting} already appears above")
            continue
        seen.add(key)
        precision = check.choice(file, line, "decided_precision", row["decided_precision"].strip(),
                                 DECISION_PRECISIONS)
        decided_on = check.date(file, line, "decided_on", row["decided_on"], required=True)
        granted = check.date(file, line, "granted_deadline", row["granted_deadline"], required=True)
        inferred_text = row["inferred"].strip()
        if inferred_text not in YES_NO:
            check.add(file, line, "inferred", f"{inferred_text!r} is not one of: yes, no")
        if decided_on and precision == "month" and decided_on.day != 1:
            check.add(file, line, "decided_on", f"{decided_on} should be the 1st of the month for precision 'month'")
        if decided_on and meeting_known and precision == "day":
            start = meetings[meeting].start_date
            if decided_on < start:
                check.add(file, line, "decided_on", f"{decided_on} is before {meeting} began on {start}")
        if party_known and article is not None and participants[iso3].deposit_date is None:
            check.add(file, line, "iso3", f"{iso3} has no deposit_date, so it has no deadline to extend")
        if decided_on and granted:
            decisions.append((line, Decision(
                iso3=iso3, article=article or 0, kind=kind or "", meeting=meeting, decided_on=decided_on,
                decided_precision=precision or "", granted_deadline=granted, document=row["document"].strip(),
                inferred=YES_NO.get(inferred_text, False), notes=row["notes"],
                sources=check.sources(file, line, row["sources"]),
            )))

    _check_extensions(treaty, participants, decisions, check)

    # extension requests
    file = "requests.csv"
    requests: list[ExtensionRequest] = []
    seen = set()
    for line, row in _read_rows(directory, file, check):
        iso3 = row["iso3"].strip()
        known_party(file, line, iso3)
        article = article_of(file, line, row["article"])
        meeting = row["meeting"].strip()
        known_meeting(file, line, "meeting", meeting)
        key = (iso3, article, meeting)
        if key in seen:
            check.add(file, line, "meeting", f"duplicate row: {iso3} article {article} request to {meeting} already appears above")
            continue
        seen.add(key)
        submitted_text = row["submitted_on"].strip()
        if submitted_text:
            precision = check.choice(file, line, "submitted_precision", row["submitted_precision"].strip(), REQUEST_PRECISIONS)
            submitted = check.date(file, line, "submitted_on", submitted_text, required=True)
            if submitted and precision == "month" and submitted.day != 1:
                check.add(file, line, "submitted_on", f"{submitted} should be the 1st of the month for precision 'month'")
            if submitted and precision == "year" and (submitted.month, submitted.day) != (1, 1):
                check.add(file, line, "submitted_on", f"{submitted} should be 1 January for precision 'year'")
        else:   # listed for the meeting, its date not published: submitted before the meeting opened
            if row["submitted_precision"].strip():
                check.add(file, line, "submitted_precision", "is given but submitted_on is empty")
            precision = "before"
            submitted = meetings[meeting].start_date if meeting in meetings else None
        if submitted:
            requests.append(ExtensionRequest(
                iso3=iso3, article=article or 0, meeting=meeting, submitted_on=submitted,
                submitted_precision=precision or "",
                requested_deadline=check.date(file, line, "requested_deadline", row["requested_deadline"]),
                document=row["document"].strip(), notes=row["notes"], sources=check.sources(file, line, row["sources"]),
            ))

    # observations of the record
    file = "observations.csv"
    observations: list[Observation] = []
    seen = set()
    for line, row in _read_rows(directory, file, check):
        obs_id = row["id"].strip()
        if not obs_id:
            check.add(file, line, "id", "is empty")
        if obs_id in seen:
            check.add(file, line, "id", f"duplicate row: {obs_id!r} already appears above")
            continue
        seen.add(obs_id)
        kind = check.choice(file, line, "kind", row["kind"].strip(), OBSERVATION_KINDS)
        observed_on = check.date(file, line, "observed_on", row["observed_on"], required=True)
        observed_until = check.date(file, line, "observed_until", row["observed_until"]) or observed_on
        if observed_on and observed_until and observed_until < observed_on:
            check.add(file, line, "observed_until", f"{observed_until} is before observed_on {observed_on}")
        period = row["period"].strip() or None
        if period is not None and not re.fullmatch(r"\d{4}", period):
            check.add(file, line, "period", f"{period!r} is not a calendar year (YYYY) or empty")
        complete_text = row["complete"].strip()
        if complete_text not in YES_NO:
            check.add(file, line, "complete", f"{complete_text!r} is not one of: yes, no")
        outstanding = frozenset(row["outstanding"].split())
        for iso3 in sorted(outstanding):
            known_party(file, line, iso3)
        if not row["phrase"].strip():
            check.add(file, line, "phrase", "is empty; quote the source's words")
        if observed_on:
            observations.append(Observation(
                id=obs_id, observed_on=observed_on, observed_until=observed_until or observed_on, kind=kind or "",
                period=period,
                complete=YES_NO.get(complete_text, False), outstanding=outstanding, observer=row["observer"].strip(),
                phrase=row["phrase"].strip(), notes=row["notes"], sources=check.sources(file, line, row["sources"]),
            ))

    # published receipts
    file = "receipts.csv"
    receipts: list[PublishedReceipt] = []
    for line, row in _read_rows(directory, file, check):
        iso3 = row["iso3"].strip()
        known_party(file, line, iso3)
        kind = check.choice(file, line, "kind", row["kind"].strip(), OBSERVATION_KINDS)
        period = row["period"].strip() or None
        if period is not None and not re.fullmatch(r"\d{4}", period):
            check.add(file, line, "period", f"{period!r} is not a calendar year (YYYY) or empty")
        if kind in ("annual", "retention") and period is None:
            check.add(file, line, "period", f"a {kind} report needs the calendar year it covers")
        precision = check.choice(file, line, "precision", row["precision"].strip(), RECEIPT_PRECISIONS)
        received_on = check.date(file, line, "received_on", row["received_on"], required=True)
        if received_on and precision == "month" and received_on.day != 1:
            check.add(file, line, "received_on", f"{received_on} should be the 1st of the month for precision 'month'")
        if received_on and precision == "year" and (received_on.month, received_on.day) != (1, 1):
            check.add(file, line, "received_on", f"{received_on} should be 1 January for precision 'year'")
        if not row["phrase"].strip():
            check.add(file, line, "phrase", "is empty; quote the source's words")
        if received_on:
            receipts.append(PublishedReceipt(
                iso3=iso3, kind=kind or "", period=period, received_on=received_on, precision=precision or "",
                observer=row["observer"].strip(), phrase=row["phrase"].strip(), notes=row["notes"],
                sources=check.sources(file, line, row["sources"])))

    if check.problems:
        raise RegistryError(check.problems)
    return Registry(
        hash=registry_hash(directory),
        treaty=treaty,
        participants=participants,
        meetings=tuple(sorted(meetings.values(), key=lambda m: m.start_date)),
        declarations=tuple(declarations),
        completions=tuple(completions),
        decisions=tuple(sorted((d for _, d in decisions), key=lambda d: (d.iso3, d.article, d.decided_on))),
        requests=tuple(sorted(requests, key=lambda r: (r.iso3, r.article, r.submitted_on))),
        observations=tuple(sorted(observations, key=lambda o: (o.observed_on, o.id))),
        receipts=tuple(sorted(receipts, key=lambda r: (r.iso3, r.kind, r.period or "", r.received_on))),
    )


def _check_extensions(treaty: TreatySettings, participants: dict[str, Participant],
                      decisions: list[tuple[int, Decision]], check: _Checker) -> None:
    """Each extension must not end before, nor more than the ceiling after, the deadline it extends."""
    file = "decisions.csv"
    try:
        threshold, _ = _threshold_deposit(treaty, participants.values())
    except LookupError:
        return
    chains: dict[tuple[str, int], list[tuple[int, Decision]]] = {}
    for line, decision in decisions:
        if decision.kind == "extension" and decision.iso3 in participants:
            chains.setdefault((decision.iso3, decision.article), []).append((line, decision))
    for (iso3, article), chain in chains.items():
        deposit = participants[iso3].deposit_date
        ceiling_years = treaty.extension_ceiling_years.get(article)
        original_years = treaty.original_deadline_years.get(article)
        if deposit is None or ceiling_years is None or original_years is None:
            continue
        eif = dates.entry_into_force(deposit, threshold, treaty.entry_into_force_months).value
        extended = dates.add_years(eif, original_years, "round_up").value
        for line, decision in sorted(chain, key=lambda item: (item[1].decided_on, item[1].granted_deadline)):
            granted = decision.granted_deadline
            ceiling = dates.add_years(extended, ceiling_years, "round_up").value  # a leap day never rejects a decision
            if granted < extended:
                check.add(file, line, "granted_deadline",
                          f"{granted} is earlier than the deadline it extends ({extended})")
            elif granted > ceiling:
                check.add(file, line, "granted_deadline",
                          f"{granted} is more than {ceiling_years} years after the deadline it extends "
                          f"({extended}); the ceiling is {ceiling}")
            extended = granted
