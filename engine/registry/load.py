"""Load and validate a treaty's registry of dated facts (participants, meetings, declarations, completions,
decisions, extension requests, observations of the record) from CSV and TOML files."""

from __future__ import annotations

import csv
import hashlib
import re
import tomllib
from collections.abc import Hashable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from babel.core import get_global

from engine.core import packs
from engine.core.model import (
    _ISO_DATE,
    COLUMNS,
    COMPLETION_PRECISIONS,
    DECISION_KINDS,
    DECISION_PRECISIONS,
    INSTRUMENT_KINDS,
    MEETING_PRECISIONS,
    MEETING_STATUSES,
    OBSERVATION_KINDS,
    OPTIONAL_COLUMNS,
    RECEIPT_PRECISIONS,
    REQUEST_PRECISIONS,
    RETAINS,
    TREATY_FILE,
    YES_NO,
    Completion,
    Decision,
    Declaration,
    ExtensionRequest,
    Meeting,
    Observation,
    Participant,
    Problem,
    PublishedReceipt,
    Registry,
    RegistryError,
    Source,
    TreatySettings,
    parse_sources,
)
from engine.core.rulebook import Rulebook, load_rulebook
from engine.registry.consistency import decision_problems

__all__ = ["default_directory", "load_registry", "registry_hash"]

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
    """The registry folder of the default pack."""
    return packs.find(packs.DEFAULT[0]).registry


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
        optional = OPTIONAL_COLUMNS.get(file, frozenset())
        unknown = [c for c in header if c not in expected]
        missing = [c for c in expected if c not in header and c not in optional]
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
            yield first_line, {**dict.fromkeys(optional, ""), **dict(zip(header, record))}


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

    # the pack declares how its tables key an article (article_key, {n} the number)
    key_format = str(data.get("article_key", "{n}"))
    prefix, _, suffix = key_format.partition("{n}")
    key_pattern = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix) + r"(?:_years)?")

    def per_article(table: str) -> dict[int, Any]:
        found = {}
        for key, value in data.get(table, {}).items():
            match = key_pattern.fullmatch(key)
            if not match:
                example = key_format.replace("{n}", "1")
                check.add(TREATY_FILE, 0, f"{table}.{key}", f"keys must look like {example} or {example}_years "
                          f"(article_key = {key_format!r})")
                continue
            found[int(match[1])] = value
        return found

    try:
        return TreatySettings(
            name=data["name"],
            adopted=data["adopted"],
            opened_for_signature=data["opened_for_signature"],
            instruments_for_entry_into_force=int(data["instruments_for_entry_into_force"]),
            positions={k: frozenset(v) for k, v in per_article("positions").items()},
            findings={k: frozenset(v) for k, v in per_article("findings").items()},
            sources=tuple(Source(href=s["href"], title=s.get("title")) for s in data.get("sources", ())),
            meeting_kinds=frozenset(data["meeting_kinds"]),
        )
    except KeyError as error:
        check.add(TREATY_FILE, 0, str(error.args[0]), "missing key")
        return None


def load_registry(directory: Path | None = None, rulebook: Rulebook | None = None) -> Registry:
    """Read and check every registry file in `directory` (default: the packaged registry).

    The rows are checked one by one, then the extension decisions by evaluating them with
    ``rulebook`` (default: the rules of the pack the folder belongs to): the deadlines and their
    ceilings are the rules', computed once.

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
        effective = check.date(file, line, "effective_from", row["effective_from"])
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
        if effective and deposit is None:
            check.add(file, line, "effective_from", "a date of effect needs a deposit_date")
        if effective and instrument is not None and instrument != "succession":
            # Other instruments take effect as the treaty's own rule says; only a succession is
            # dated by the depositary from the succession of States, which no treaty rule computes.
            check.add(file, line, "effective_from", f"is given for an instrument of {instrument}; only a "
                      "succession states its own date of effect")
        if effective and effective < treaty.adopted:
            check.add(file, line, "effective_from", f"{effective} is before the treaty was adopted on {treaty.adopted}")
        if withdrawal and effective and withdrawal <= effective:
            check.add(file, line, "withdrawal_effective_date", f"{withdrawal} is not after the date of effect {effective}")
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
            sources=check.sources(file, line, row["sources"]), effective_from=effective,
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
        kind = check.choice(file, line, "kind", row["kind"].strip(), treaty.meeting_kinds)
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
    seen: set[Hashable] = set()     # the rows' keys, per file
    for line, row in _read_rows(directory, file, check):
        iso3 = row["iso3"].strip()
        known_party(file, line, iso3)
        article = article_of(file, line, row["article"])
        position = row["position"].strip()
        finding = article is not None and position in treaty.findings.get(article, ())
        key: tuple[Hashable, ...] = (iso3, article, position) if finding else (iso3, article)
        if key in seen:
            check.add(file, line, "article", f"duplicate row: {iso3} article {article}"
                      + (f" {position}" if finding else "") + " already appears above")
            continue
        seen.add(key)
        if article is not None:
            check.choice(file, line, "position", position, treaty.positions[article] | treaty.findings.get(article, frozenset()))
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
    registry = Registry(
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
    problems = decision_problems(registry, rulebook or _rulebook_of(directory), {id(d): line for line, d in decisions})
    if problems:
        raise RegistryError(problems)
    return registry


def _rulebook_of(directory: Path) -> Rulebook:
    """The rules a registry folder is checked with: those of the pack it sits in (rules/<pack>/registry),
    else the default pack's (a registry copied out on its own to be edited)."""
    if (directory.parent / packs.MANIFEST).is_file():
        return load_rulebook(directory.parent)
    return load_rulebook(packs.find(packs.DEFAULT[0]).directory)
