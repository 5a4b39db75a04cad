"""United Nations official names (rules/common/un_names.csv): every participant, articles and contractions, addressees."""

from __future__ import annotations

import pytest

from engine.registry import names


def _rows() -> list[dict[str, str]]:
    import csv
    from importlib import resources

    with (resources.files("rules") / "common" / "un_names.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


#: How a row's notes begin when it was checked cell by cell against UNTERM, or (its short names) against M49.
CHECKED_AGAINST_UNTERM = "short names, articles and formal names (en, fr, es, zh) as in UNTERM"
SHORT_NAMES_FROM_M49 = "short names as in M49"


def _verified(row: dict[str, str]) -> bool:
    """A row whose names in running text were read in a UN source: every cell as in UNTERM, or the short names
    as in M49 where the mirrored UNTERM file is stale (its notes say so). Cells its notes call "not verified" may
    only be formal names that running text never shows (the short name has no parenthesis)."""
    notes = row["notes"]
    if notes.startswith(CHECKED_AGAINST_UNTERM):
        return "not verified" not in notes
    if notes.startswith(SHORT_NAMES_FROM_M49) and "stale" in notes:
        shows_formal = any("(" in row[f"{lang}_short"] or "（" in row[f"{lang}_short"] for lang in names.LANGUAGES)
        return "not verified" not in notes or not shows_formal
    return False


def test_every_participant_of_every_pack_has_a_verified_row():
    # Each pack's registry, not only the default one: a State party to one treaty alone (Cambodia, Belarus, the
    # Marshall Islands to the Mine Ban Convention) must not fall back to a CLDR name in a note verbale.
    from engine.core import packs
    from engine.registry.load import load_registry

    verified = {row["iso3"] for row in _rows() if _verified(row)}
    found = packs.discover()
    assert len(found) >= 2
    for pack in found.values():
        participants = set(load_registry(pack.registry).participants)
        assert participants, pack.name
        assert sorted(participants - set(names.load_names())) == [], f"{pack.name}: no UN names row"
        assert sorted(participants - verified) == [], f"{pack.name}: a row not verified against UNTERM or M49"


def test_an_unverified_row_or_a_missing_one_would_fail_the_check():
    # The check above is not vacuous: a row written from memory, or one left "not verified", does not pass.
    row = next(r for r in _rows() if r["iso3"] == "KHM")
    assert _verified(row)
    assert not _verified({**row, "notes": "written from the UNGEGN list; not checked against UNTERM"})
    assert not _verified({**row, "notes": CHECKED_AGAINST_UNTERM + "; zh formal name not verified"})
    parenthesised = next(r for r in _rows() if r["iso3"] == "VEN")
    assert not _verified({**parenthesised, "notes": SHORT_NAMES_FROM_M49 + ": stale; formal names not verified"})


@pytest.mark.parametrize("iso3, language, of", [
    # The brief's cases: the article stored with the name gives the contraction.
    ("LAO", "fr", "de la République démocratique populaire lao"),
    ("LBN", "fr", "du Liban"),
    ("IRQ", "fr", "de l'Iraq"),
    ("LBN", "es", "del Líbano"),
    ("COG", "fr", "du Congo"),
    ("VAT", "fr", "du Saint-Siège"),
    ("PSE", "fr", "de l'État de Palestine"),
    ("MDA", "fr", "de la République de Moldova"),
    ("PHL", "fr", "des Philippines"),
    ("NLD", "es", "del Reino de los Países Bajos"),
    ("BOL", "en", "of the Plurinational State of Bolivia"),
    ("GBR", "es", "del Reino Unido de Gran Bretaña e Irlanda del Norte"),
    ("MEX", "fr", "du Mexique"),
    ("CUB", "fr", "de Cuba"),
])
def test_de_contracts_with_the_stored_article(iso3, language, of):
    assert names.official_name(iso3, language).of == of


@pytest.mark.parametrize("iso3, language, mission", [
    ("PSE", "fr", "Mission permanente d'observation de l'État de Palestine auprès de l'Office des Nations Unies à Genève"),
    ("VAT", "es", "Misión Permanente de Observación de la Santa Sede ante la Oficina de las Naciones Unidas en Ginebra"),
    ("COG", "en", "Permanent Mission of the Congo to the United Nations Office at Geneva"),
    ("MDA", "zh", "摩尔多瓦共和国常驻联合国日内瓦办事处代表团"),
    ("PSE", "zh", "巴勒斯坦国常驻联合国日内瓦办事处观察员代表团"),
])
def test_the_addressee_is_the_permanent_or_observer_mission(iso3, language, mission):
    assert names.permanent_mission(iso3, language) == mission


def test_the_state_of_palestine_and_the_holy_see_have_their_own_entries():
    assert [names.official_name("PSE", lang).short for lang in names.LANGUAGES] == [
        "State of Palestine", "État de Palestine", "Estado de Palestina", "巴勒斯坦国"]
    assert [names.official_name("VAT", lang).short for lang in names.LANGUAGES] == [
        "Holy See", "Saint-Siège", "Santa Sede", "罗马教廷"]


def test_every_row_names_its_source_and_a_valid_article():
    import csv
    from importlib import resources

    with (resources.files("rules") / "common" / "un_names.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert all(row["source"].startswith("UN Protocol and Liaison Service, UNTERM") for row in rows)
    assert all(row["fr_article"] in names.ARTICLES["fr"] and row["es_article"] in names.ARTICLES["es"] for row in rows)


def test_state_pages_and_calendars_use_the_un_names(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from engine.runtime.settings import Settings
    from engine.store import database as store
    from engine.web.app import ApiConfig, create_app

    url = f"sqlite:///{tmp_path / 'ccm.sqlite'}"
    store.upgrade(url)
    try:
        app = create_app(Settings(database_url=url, output_folder=tmp_path / "out"), ApiConfig(state_ttl_seconds=0))
        with TestClient(app) as client:
            page = client.get("/parties/VAT?lang=fr").text
            assert '<h2 id="party-name">Saint-Siège (VAT)</h2>' in page and "Cité du Vatican" not in page
            assert "État de Palestine (PSE)" in client.get("/parties/PSE?lang=fr").text
            assert client.get("/api/parties/MDA").json()["names"]["es"] == "República de Moldova"
            feed = client.get("/parties/CZE/calendar.ics").text
            assert "SUMMARY:Czechia:" in feed
    finally:
        store.dispose_engines()


def test_names_checked_against_unterms_list_follow_its_articles_and_forms():
    # UNTERM gives "Cabo Verde" and "Vanuatu" without an article, "Trinité-et-Tobago (la)", and "刚果（布）",
    # a list form whose running text is the formal name.
    assert [names.official_name(c, "fr").of for c in ("CPV", "VUT", "TTO")] == [
        "de Cabo Verde", "de Vanuatu", "de la Trinité-et-Tobago"]
    assert names.permanent_mission("COG", "zh") == "刚果共和国常驻联合国日内瓦办事处代表团"
    assert names.official_name("LIE", "fr").formal == "la Principauté du Liechtenstein"


def test_every_row_says_what_it_was_checked_against():
    rows = _rows()
    checked = [row["iso3"] for row in rows if row["notes"].startswith(CHECKED_AGAINST_UNTERM)]
    # Two rows follow M49 rather than UNTERM for their short names, and their notes say why: the mirrored
    # UNTERM file still reads "Netherlands (the)" and "Turkey".
    by_m49 = {row["iso3"]: row for row in rows if row["notes"].startswith(SHORT_NAMES_FROM_M49)}
    assert set(by_m49) == {"NLD", "TUR"}
    assert "formal names match UNTERM" in by_m49["NLD"]["notes"] and "stale" in by_m49["NLD"]["notes"]
    assert len(checked) == len(rows) - 2
    # Only Türkiye's en/fr/es formal names (the stale file's "the Republic of Turkey") are not verified, and
    # running text never shows them.
    assert [row["iso3"] for row in rows if "not verified" in row["notes"]] == ["TUR"]
    assert [names.official_name("TUR", lang).running for lang in names.LANGUAGES] == [
        "Türkiye", "la Türkiye", "Türkiye", "土耳其"]
    assert all("Turk" not in names.permanent_mission("TUR", lang) for lang in names.LANGUAGES)


def test_rows_taken_from_both_unterm_files_say_so():
    # The Mine Ban Convention's own States (added from UNTERM's row-by-row conversion, a09b84a, which the joined
    # file of caa72d1 agrees with cell for cell), with the M49 download they were compared with.
    rows = {row["iso3"]: row for row in _rows()}
    for iso3 in ("KHM", "BLR", "MHL", "VEN"):
        assert "data/unterm_names.csv (commit a09b84a" in rows[iso3]["source"]
        assert "commit 25c1991" in rows[iso3]["source"]


@pytest.mark.parametrize("iso3, language, of", [
    # States party to the Mine Ban Convention only: the article UNTERM gives, contracted.
    ("KHM", "fr", "du Cambodge"),
    ("KHM", "es", "de Camboya"),
    ("BLR", "fr", "du Bélarus"),
    ("BLR", "es", "de Belarús"),
    ("MHL", "en", "of the Marshall Islands"),
    ("MHL", "fr", "des Îles Marshall"),
    ("MHL", "es", "de las Islas Marshall"),
    ("SDN", "es", "del Sudán"),
    ("UKR", "fr", "de l'Ukraine"),
    ("SLB", "en", "of Solomon Islands"),
    ("VEN", "fr", "de la République bolivarienne du Venezuela"),
    ("TUR", "fr", "de la Türkiye"),
])
def test_the_mine_ban_conventions_own_states_contract_with_unterms_article(iso3, language, of):
    assert names.official_name(iso3, language).of == of


def test_the_marshall_islands_mission_has_its_article():
    assert names.permanent_mission("MHL", "en").startswith("Permanent Mission of the Marshall Islands to ")
    assert names.permanent_mission("KHM", "zh").startswith("柬埔寨常驻")
