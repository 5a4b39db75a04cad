"""The registry's data model: the dated facts of a treaty (participants, meetings, declarations,
completions, decisions, extension requests, observations of the record) as the rules read them.
Loading and validating them from files is engine.registry.load."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Protocol, TypeVar

import babel
from babel.core import get_global

from engine.core import dates

__all__ = [
    "Completion",
    "Decision",
    "Declaration",
    "ExtensionRequest",
    "Meeting",
    "Observation",
    "Participant",
    "Problem",
    "PublishedReceipt",
    "Registry",
    "RegistryError",
    "Source",
    "TreatySettings",
    "UnknownPartyError",
    "parse_sources",
]

SOURCE_SEPARATOR = " ; "

# The column schema of each registry file, in file order.
COLUMNS: dict[str, tuple[str, ...]] = {
    "participants.csv": (
        "iso3", "name", "signature_date", "instrument", "deposit_date", "effective_from",
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
#: Columns a file may leave out (read as empty): a registry written before they existed stays valid.
OPTIONAL_COLUMNS: dict[str, frozenset[str]] = {"participants.csv": frozenset({"effective_from"})}
TREATY_FILE = "treaty.toml"

# A notification of succession binds a successor State as an instrument does (Vienna Convention on
# Succession of States in respect of Treaties, 1978); the depositary lists it beside the others.
INSTRUMENT_KINDS = frozenset({"ratification", "acceptance", "approval", "accession", "succession"})
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

    def __init__(self, query: str, suggestions: tuple[Participant, ...] = ()):
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
        return str(self.args[0])


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
    #: The date from which the depositary says the instrument took effect, where it states one that
    #: the treaty's own rule would not give (a notification of succession effective from the date of
    #: the succession of States); None for every other instrument. The pack's rules decide its use.
    effective_from: date | None = None

    def localized_name(self, locale: str) -> str:
        """The CLDR name of the territory in `locale` (e.g. 'fr'), or `name` if CLDR has none.

        Raises babel.UnknownLocaleError for a locale CLDR does not know.
        """
        territories = babel.Locale.parse(locale).territories
        for alpha2 in get_global("territory_aliases").get(self.iso3, ()):
            if alpha2 in territories:
                return str(territories[alpha2])
        return self.name


@dataclass(frozen=True)
class Meeting:
    """A Meeting of States Parties, Review Conference, preparatory or intersessional meeting.

    ``announced_start_date`` is the opening date as convened when it differs from the date the
    meeting actually opened (a meeting convened for 23 Nov 2020 may open on 25 Nov 2020):
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
    positions: dict[int, frozenset[str]]
    sources: tuple[Source, ...]
    meeting_kinds: frozenset[str] = frozenset()   # what meetings.csv's `kind` may say
    # Per article, declarations.csv positions that are published findings about a party (e.g. that a
    # deadline was missed): a row of one may stand beside the row giving the party's position.
    findings: dict[int, frozenset[str]] = field(default_factory=dict)


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
        """The meeting with this code (as in meetings.csv); raises LookupError."""
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
            raise LookupError(*found.args)  # noqa: TRY004 - the stored error, raised afresh, not a type check
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


class _PartyRow(Protocol):
    @property
    def iso3(self) -> str: ...


_Row = TypeVar("_Row", bound=_PartyRow)


def _by_party(rows: Iterable[_Row]) -> dict[str, tuple[_Row, ...]]:
    grouped: dict[str, list[_Row]] = {}
    for row in rows:
        grouped.setdefault(row.iso3, []).append(row)
    return {iso3: tuple(items) for iso3, items in grouped.items()}


def _threshold_deposit(treaty: TreatySettings, participants: Iterable[Participant]) -> tuple[date, tuple[Participant, ...]]:
    deposited = sorted(((p.deposit_date, p) for p in participants if p.deposit_date), key=lambda pair: pair[0])
    needed = treaty.instruments_for_entry_into_force
    if len(deposited) < needed:
        raise LookupError(f"Only {len(deposited)} instruments are deposited; entry into force needs {needed}.")
    threshold = deposited[needed - 1][0]
    return threshold, tuple(p for day, p in deposited if day == threshold)


# --------------------------------------------------------------------------- loading


