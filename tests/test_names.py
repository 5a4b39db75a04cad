"""United Nations official names (rules/common/un_names.csv): every participant, articles and contractions, addressees."""

from __future__ import annotations

import pytest

from engine.registry import names


def test_every_participant_of_the_registry_has_its_un_names(ccm_registry):
    missing = sorted(set(ccm_registry.participants) - set(names.load_names()))
    assert missing == []


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
    import csv
    from importlib import resources

    with (resources.files("rules") / "common" / "un_names.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    checked = [row["iso3"] for row in rows if row["notes"].startswith("short names, articles and formal names")]
    # One row follows M49 rather than UNTERM for its short names, and its notes say why.
    by_m49 = {row["iso3"]: row for row in rows if row["notes"].startswith("short names as in M49")}
    assert set(by_m49) == {"NLD"}
    assert "formal names match UNTERM" in by_m49["NLD"]["notes"] and "stale" in by_m49["NLD"]["notes"]
    assert len(checked) == len(rows) - 1
    assert not [row["iso3"] for row in rows if "not verified" in row["notes"]]
