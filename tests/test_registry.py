"""Tests of the registry loader: the packaged CCM facts, and broken copies that must be rejected."""

from __future__ import annotations

import csv
import shutil
from datetime import date
from pathlib import Path

import pytest

from engine.core import packs
from engine.core.model import RegistryError, UnknownPartyError
from engine.registry.load import COLUMNS, default_directory, load_registry

REGISTRY_DIR = default_directory()
CASES_CSV = packs.find("ccm").cases   # a pack carries its published cases (rules/ccm/cases.csv)


@pytest.fixture(scope="module")
def registry():
    return load_registry()


# --------------------------------------------------------------------------- the packaged facts


def test_the_registry_lists_125_participants(registry):
    assert len(registry.participants) == 125


def test_112_states_parties_one_withdrawn_and_12_signatories(registry):
    parties = [p for p in registry.participants.values() if p.deposit_date and not p.withdrawal_effective_date]
    withdrawn = [p.iso3 for p in registry.participants.values() if p.withdrawal_effective_date]
    signatories = [p for p in registry.participants.values() if p.instrument is None]
    assert len(parties) == 112
    assert withdrawn == ["LTU"]
    assert registry.participant("LTU").withdrawal_effective_date == date(2025, 3, 6)
    assert len(signatories) == 12
    assert all(p.deposit_date is None and p.signature_date for p in signatories)


def test_the_thirtieth_instrument_was_deposited_on_16_february_2010_by_burkina_faso_and_moldova(registry):
    deposited_on, depositors = registry.thirtieth_deposit()
    assert deposited_on == date(2010, 2, 16)
    assert sorted(p.iso3 for p in depositors) == ["BFA", "MDA"]


def test_treaty_settings_come_from_treaty_toml(registry):
    assert registry.treaty.opened_for_signature == date(2008, 12, 3)
    assert registry.treaty.adopted == date(2008, 5, 30)
    assert registry.treaty.instruments_for_entry_into_force == 30


def test_perus_extension_granted_1_april_2024_by_silence_procedure(registry):
    (decision,) = registry.decisions_for("PER")
    assert decision.article == 3
    assert decision.granted_deadline == date(2024, 4, 1)
    assert decision.meeting == "2RC-1"
    assert decision.decided_precision == "month"
    assert decision.known_by == date(2021, 2, 28)


def test_bulgarias_three_extensions_end_on_31_december_2023(registry):
    decisions = registry.decisions_for("BGR")
    assert [d.meeting for d in decisions] == ["9MSP", "2RC-1", "10MSP"]
    assert [d.granted_deadline for d in decisions] == [date(2021, 4, 1), date(2022, 10, 1), date(2023, 12, 31)]
    assert [d.decided_on for d in decisions] == sorted(d.decided_on for d in decisions)


def test_decisions_match_the_published_granted_dates(registry):
    granted = {(d.iso3, d.article, d.meeting): d.granted_deadline for d in registry.decisions}
    assert granted == {
        ("BGR", 3, "9MSP"): date(2021, 4, 1),
        ("BGR", 3, "2RC-1"): date(2022, 10, 1),
        ("BGR", 3, "10MSP"): date(2023, 12, 31),
        ("PER", 3, "2RC-1"): date(2024, 4, 1),
        ("BIH", 4, "2RC-1"): date(2022, 9, 1),
        ("BIH", 4, "10MSP"): date(2023, 9, 1),
        ("TCD", 4, "10MSP"): date(2024, 10, 1),
        ("TCD", 4, "12MSP"): date(2026, 10, 1),
        ("CHL", 4, "2RC-1"): date(2022, 6, 1),
        ("CHL", 4, "2RC-2"): date(2023, 6, 1),
        ("CHL", 4, "10MSP"): date(2026, 6, 1),
        ("DEU", 4, "9MSP"): date(2025, 8, 1),
        ("LAO", 4, "9MSP"): date(2025, 8, 1),
        # Moved from the 2RC's second part (Sept 2021, after the 1 May 2021 deadline it extends had
        # expired) to its first part's silence procedure (Feb 2021): see the row's notes.
        ("LBN", 4, "2RC-1"): date(2026, 5, 1),
        ("AFG", 4, "2RC-2"): date(2026, 3, 1),
        ("IRQ", 4, "11MSP"): date(2028, 11, 1),
    }
    inferred = sorted((d.iso3, d.meeting) for d in registry.decisions if d.inferred)
    assert ("BIH", "10MSP") in inferred and ("CHL", "2RC-1") in inferred and ("LBN", "2RC-1") in inferred
    assert ("IRQ", "11MSP") in inferred


def test_meetings_are_sorted_by_start_and_carry_their_dates_as_announced(registry):
    starts = [m.start_date for m in registry.meetings]
    assert starts == sorted(starts)
    assert len(registry.meetings) == 28
    im2011 = registry.meeting("IM2011")
    assert (im2011.start_date, im2011.end_date, im2011.date_precision) == (date(2011, 6, 27), date(2011, 6, 30), "day")
    second_rc = registry.meeting("2RC-1")   # convened for 23 Nov 2020, opened virtually on 25 Nov 2020
    assert (second_rc.announced_start_date, second_rc.start_date, second_rc.opening_as_announced) == (
        date(2020, 11, 23), date(2020, 11, 25), date(2020, 11, 23))
    assert registry.meeting("3RC").status == "announced" and registry.meeting("13MSP").status == "held"
    assert registry.meeting("2RC-1").name == "Second Review Conference (part 1)"
    assert registry.meeting("9MSP").end_date == date(2019, 9, 4)
    with pytest.raises(LookupError, match="No meeting has the code '14MSP'"):
        registry.meeting("14MSP")


def test_completion_known_by_follows_its_precision(registry):
    completions = {(c.iso3, c.article): c for c in registry.completions}
    assert completions["AUT", 3].known_by == date(2010, 11, 8)
    assert completions["BGR", 3].completed_on == date(2023, 6, 1)
    assert completions["BGR", 3].known_by == date(2023, 6, 30)
    assert completions["CUB", 3].known_by == date(2017, 12, 31)
    assert completions["HND", 3].precision == "before"
    assert completions["HND", 3].known_by == date(2007, 12, 1)
    assert completions["MRT", 4].declared_at == "5MSP"
    # Slovenia: the final completion, still before its deadline. The UK: the 2013 completion of
    # the stockpile held at entry into force; stocks found in 2020 reopen it (not modelled).
    assert completions["SVN", 3].completed_on == date(2018, 4, 1)
    assert completions["GBR", 3].completed_on == date(2013, 12, 17)


def test_declaration_positions(registry):
    positions = {(d.iso3, d.article): d.position for d in registry.declarations}
    assert len(positions) == 64
    assert positions["AUT", 3] == positions["ESP", 3] == "stockpile_at_eif"
    assert positions["NGA", 3] == positions["GNB", 3] == "none_at_eif"
    assert positions["GIN", 3] == positions["COG", 3] == "uncertain"
    assert positions["DEU", 4] == "contaminated_at_eif"
    assert positions["ALB", 4] == positions["ZMB", 4] == "cleared_before_eif"
    assert positions["GBR", 4] == "uncertain"
    retention = {(d.iso3): d.retention_ended for d in registry.declarations if d.retention_ended}
    assert retention["CZE"] == retention["NLD"] == retention["SVK"] == 2020
    assert registry.declarations_for("BEL")[0].retains is True


def test_every_fact_has_at_least_one_source(registry):
    records = [*registry.participants.values(), *registry.meetings, *registry.declarations,
               *registry.completions, *registry.decisions, *registry.requests, *registry.observations,
               *registry.receipts]
    assert len(records) == 125 + 28 + 64 + 46 + 16 + len(registry.requests) + len(registry.observations) + len(registry.receipts)
    assert len(registry.requests) >= 20 and len(registry.observations) >= 90 and len(registry.receipts) >= 40
    for record in records:
        assert record.sources, record
        assert all(s.href.startswith(("http://", "https://")) for s in record.sources), record


def test_cldr_names_by_locale(registry):
    assert registry.participant("CHE").localized_name("fr") == "Suisse"
    assert registry.participant("LAO").localized_name("fr") == "Laos"
    assert registry.participant("CIV").localized_name("es") == "Côte d’Ivoire"
    assert registry.participant("DEU").localized_name("zh") == "德国"


@pytest.mark.parametrize("query, iso3", [
    ("switzerland", "CHE"),
    ("che", "CHE"),
    ("Lao People's Democratic Republic", "LAO"),
    ("Laos", "LAO"),          # CLDR English name
    ("  czechia ", "CZE"),
])
def test_find_by_code_or_name(registry, query, iso3):
    assert registry.find(query).iso3 == iso3


def test_find_suggests_close_names(registry):
    with pytest.raises(UnknownPartyError) as caught:
        registry.find("Swizerland")
    assert "No participant matches 'Swizerland'" in str(caught.value)
    assert "Switzerland (CHE)" in str(caught.value)
    assert caught.value.suggestions[0].iso3 == "CHE"
    assert len(caught.value.suggestions) <= 5


def test_cases_table_names_known_participants(registry):
    with CASES_CSV.open(encoding="utf-8", newline="") as handle:
        cases = list(csv.DictReader(handle))
    assert len(cases) >= 40
    assert {c["iso3"] for c in cases} <= set(registry.participants)


def test_registry_files_have_one_line_per_record():
    # The line numbers in error messages (and the helper below) rely on this.
    for file in COLUMNS:
        with (REGISTRY_DIR / file).open(encoding="utf-8", newline="") as handle:
            records = list(csv.reader(handle))
        with (REGISTRY_DIR / file).open(encoding="utf-8") as handle:
            assert len(records) == len(handle.readlines()), file


# --------------------------------------------------------------------------- broken registries


def _copy_registry(tmp_path: Path) -> Path:
    target = tmp_path / "registry"
    shutil.copytree(REGISTRY_DIR, target)
    return target


def _edit(directory: Path, file: str, match: dict[str, str], field: str, value: str) -> int:
    """Set `field` to `value` in the first row matching `match`; return its line number."""
    path = directory / file
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    for index, row in enumerate(rows[1:], start=1):
        if all(row[header.index(k)] == v for k, v in match.items()):
            row[header.index(field)] = value
            break
    else:
        raise AssertionError(f"no row matches {match}")
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return index + 1


def _duplicate(directory: Path, file: str, match: dict[str, str]) -> int:
    """Append a copy of the first row matching `match`; return the new line number."""
    path = directory / file
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    row = next(r for r in rows[1:] if all(r[header.index(k)] == v for k, v in match.items()))
    rows.append(list(row))
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return len(rows)


def _rename_column(directory: Path, file: str, old: str, new: str) -> int:
    path = directory / file
    lines = path.read_text(encoding="utf-8").split("\n")
    header = lines[0].split(",")
    lines[0] = ",".join(new if c == old else c for c in header)
    path.write_text("\n".join(lines), encoding="utf-8")
    return 1


def _edit_treaty(directory: Path, old: str, new: str) -> int:
    path = directory / "treaty.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    return 0


CHE = {"iso3": "CHE"}
PER_DECISION = {"iso3": "PER", "meeting": "2RC-1"}

# (case id, how to break the copy, file, field, words the message must contain)
BROKEN = [
    ("unknown column", lambda d: _rename_column(d, "meetings.csv", "notes", "note"),
     "meetings.csv", "note", "unknown column"),
    ("missing column", lambda d: _rename_column(d, "meetings.csv", "notes", "note"),
     "meetings.csv", "notes", "missing column"),
    ("unknown ISO3 code", lambda d: _edit(d, "participants.csv", {"iso3": "AGO"}, "iso3", "ZZZ"),
     "participants.csv", "iso3", "'ZZZ' is not an ISO 3166-1 alpha-3 code"),
    ("impossible date", lambda d: _edit(d, "participants.csv", CHE, "deposit_date", "2012-02-30"),
     "participants.csv", "deposit_date", "'2012-02-30' is not a date (YYYY-MM-DD)"),
    ("not ISO date format", lambda d: _edit(d, "participants.csv", CHE, "signature_date", "3 Dec 2008"),
     "participants.csv", "signature_date", "'3 Dec 2008' is not a date"),
    ("deposit before opening", lambda d: _edit(d, "participants.csv", CHE, "deposit_date", "2008-12-02"),
     "participants.csv", "deposit_date", "2008-12-02 is before the treaty opened for signature on 2008-12-03"),
    ("signature before opening", lambda d: _edit(d, "participants.csv", CHE, "signature_date", "2008-05-30"),
     "participants.csv", "signature_date", "before the treaty opened for signature"),
    ("withdrawal before deposit",
     lambda d: _edit(d, "participants.csv", CHE, "withdrawal_effective_date", "2012-07-01"),
     "participants.csv", "withdrawal_effective_date", "2012-07-01 is not after the deposit on 2012-07-17"),
    ("unknown instrument", lambda d: _edit(d, "participants.csv", CHE, "instrument", "ratified"),
     "participants.csv", "instrument", "'ratified' is not one of: acceptance, accession, approval, ratification"),
    ("duplicate participant", lambda d: _duplicate(d, "participants.csv", CHE),
     "participants.csv", "iso3", "duplicate row: 'CHE'"),
    ("duplicate meeting", lambda d: _duplicate(d, "meetings.csv", {"code": "9MSP"}),
     "meetings.csv", "code", "duplicate row: '9MSP'"),
    ("duplicate declaration", lambda d: _duplicate(d, "declarations.csv", {"iso3": "CHE", "article": "3"}),
     "declarations.csv", "article", "duplicate row: CHE article 3"),
    ("duplicate completion", lambda d: _duplicate(d, "completions.csv", {"iso3": "AUT", "article": "3"}),
     "completions.csv", "article", "duplicate row: AUT article 3"),
    ("duplicate decision", lambda d: _duplicate(d, "decisions.csv", PER_DECISION),
     "decisions.csv", "meeting", "duplicate row: PER article 3 extension at 2RC-1"),
    ("declaration of a non-participant",
     lambda d: _edit(d, "declarations.csv", {"iso3": "CHE", "article": "3"}, "iso3", "USA"),
     "declarations.csv", "iso3", "'USA' is not in participants.csv"),
    ("completion of a non-participant",
     lambda d: _edit(d, "completions.csv", {"iso3": "AUT", "article": "3"}, "iso3", "USA"),
     "completions.csv", "iso3", "'USA' is not in participants.csv"),
    ("decision for a non-participant", lambda d: _edit(d, "decisions.csv", PER_DECISION, "iso3", "USA"),
     "decisions.csv", "iso3", "'USA' is not in participants.csv"),
    ("completion declared at an unknown meeting",
     lambda d: _edit(d, "completions.csv", {"iso3": "AUT", "article": "3"}, "declared_at", "1MSPX"),
     "completions.csv", "declared_at", "'1MSPX' is not a meeting code in meetings.csv"),
    ("decision at an unknown meeting", lambda d: _edit(d, "decisions.csv", PER_DECISION, "meeting", "2RC-3"),
     "decisions.csv", "meeting", "'2RC-3' is not a meeting code in meetings.csv"),
    ("unknown position",
     lambda d: _edit(d, "declarations.csv", {"iso3": "CHE", "article": "3"}, "position", "contaminated_at_eif"),
     "declarations.csv", "position", "'contaminated_at_eif' is not one of: none_at_eif, stockpile_at_eif"),
    ("unknown decision kind", lambda d: _edit(d, "decisions.csv", PER_DECISION, "kind", "prolongation"),
     "decisions.csv", "kind", "'prolongation' is not one of: extension"),
    ("unknown completion precision",
     lambda d: _edit(d, "completions.csv", {"iso3": "AUT", "article": "3"}, "precision", "about"),
     "completions.csv", "precision", "'about' is not one of: before, day, month, year"),
    ("unknown meeting kind", lambda d: _edit(d, "meetings.csv", {"code": "9MSP"}, "kind", "summit"),
     "meetings.csv", "kind", "'summit' is not one of"),
    ("unknown article", lambda d: _edit(d, "declarations.csv", {"iso3": "CHE", "article": "3"}, "article", "5"),
     "declarations.csv", "article", "5 is not an article the registry covers"),
    ("extension beyond the four-year ceiling",
     lambda d: _edit(d, "decisions.csv", PER_DECISION, "granted_deadline", "2025-03-02"),
     "decisions.csv", "granted_deadline",
     "the decided deadline 2 Mar 2025 is beyond the ceiling of 4 years (1 Mar 2021 + 4 years = 1 Mar 2025)"),
    ("second extension beyond the ceiling counted from the previous extension",
     lambda d: _edit(d, "decisions.csv", {"iso3": "BGR", "meeting": "2RC-1"}, "granted_deadline", "2025-04-02"),
     "decisions.csv", "granted_deadline", "beyond the ceiling of 4 years (1 Apr 2021 + 4 years"),
    ("extension beyond the five-year ceiling",
     lambda d: _edit(d, "decisions.csv", {"iso3": "LAO", "meeting": "9MSP"}, "granted_deadline", "2025-08-02"),
     "decisions.csv", "granted_deadline", "beyond the ceiling of 5 years (1 Aug 2020 + 5 years"),
    ("extension earlier than the deadline it extends",
     lambda d: _edit(d, "decisions.csv", PER_DECISION, "granted_deadline", "2021-02-28"),
     "decisions.csv", "granted_deadline", "the decided deadline 28 Feb 2021 does not extend 1 Mar 2021"),
    ("a decision with an impossible date",
     lambda d: _edit(d, "decisions.csv", PER_DECISION, "decided_on", "2021-02-29"),
     "decisions.csv", "decided_on", "'2021-02-29' is not a date"),
    ("a row without sources", lambda d: _edit(d, "meetings.csv", {"code": "9MSP"}, "sources", ""),
     "meetings.csv", "sources", "every fact needs at least one source"),
    ("month precision not on the 1st",
     lambda d: _edit(d, "completions.csv", {"iso3": "BGR", "article": "3"}, "completed_on", "2023-06-15"),
     "completions.csv", "completed_on", "should be the 1st of the month"),
]


@pytest.mark.parametrize("breaker, file, field, words", [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_a_broken_registry_names_file_line_and_field(tmp_path, breaker, file, field, words):
    directory = _copy_registry(tmp_path)
    line = breaker(directory)
    with pytest.raises(RegistryError) as caught:
        load_registry(directory)
    message = str(caught.value)
    expected_prefix = f"{file} line {line}, field {field}: "
    matching = [str(p) for p in caught.value.problems if (p.file, p.row, p.field) == (file, line, field)]
    assert matching, f"no problem for {expected_prefix!r} in:\n{message}"
    assert any(words in m for m in matching), f"{words!r} not in {matching}"
    assert f"{expected_prefix}" in message and words in message


def test_ceilings_are_read_from_the_rules(tmp_path):
    """The ceilings live once, in the rules: the registry of a pack is checked with its own rule files."""
    pack = tmp_path / "ccm"
    shutil.copytree(REGISTRY_DIR.parent, pack)
    rule = pack / "art03_stockpile_destruction.toml"
    text = rule.read_text(encoding="utf-8")
    assert "ceiling = { years = 4 }" in text
    rule.write_text(text.replace("ceiling = { years = 4 }", "ceiling = { years = 3 }"), encoding="utf-8")
    with pytest.raises(RegistryError) as caught:
        load_registry(pack / "registry")
    # Peru's extension (1 Mar 2021 -> 1 Apr 2024) exceeds a three-year ceiling.
    assert "beyond the ceiling of 3 years (1 Mar 2021 + 3 years" in str(caught.value)
    assert "decisions.csv line " in str(caught.value) and "field granted_deadline" in str(caught.value)


def test_opening_for_signature_is_read_from_treaty_toml(tmp_path):
    directory = _copy_registry(tmp_path)
    _edit_treaty(directory, "opened_for_signature = 2008-12-03", "opened_for_signature = 2008-12-04")
    with pytest.raises(RegistryError) as caught:
        load_registry(directory)
    assert "field signature_date: 2008-12-03 is before the treaty opened for signature on 2008-12-04" in str(caught.value)


def test_all_problems_are_reported_at_once(tmp_path):
    directory = _copy_registry(tmp_path)
    first = _edit(directory, "participants.csv", CHE, "deposit_date", "2012-02-30")
    second = _edit(directory, "meetings.csv", {"code": "9MSP"}, "start_date", "2019-13-01")
    with pytest.raises(RegistryError) as caught:
        load_registry(directory)
    assert [(p.file, p.row, p.field) for p in caught.value.problems] == [
        ("participants.csv", first, "deposit_date"),
        ("meetings.csv", second, "start_date"),
    ]
    assert "2 problem(s)" in str(caught.value)


def test_a_missing_file_is_reported(tmp_path):
    directory = _copy_registry(tmp_path)
    (directory / "decisions.csv").unlink()
    with pytest.raises(RegistryError, match="decisions.csv line 0, field -: the file is missing"):
        load_registry(directory)


def test_registry_error_is_a_value_error():
    assert issubclass(RegistryError, ValueError)
