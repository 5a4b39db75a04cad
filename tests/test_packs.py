"""Rule packs are found as folders under rules/ with a pack.toml, selected by [engine] pack (CCM_PACK)."""

from __future__ import annotations

import shutil

import pytest

from engine.core import packs
from engine.runtime.schema import SCHEMA, check_env, check_file


def test_the_packaged_packs_are_found_and_ccm_is_the_default():
    found = packs.discover()
    assert "ccm" in found and packs.DEFAULT == ("ccm",)
    ccm = packs.find("ccm")
    assert (ccm.directory / "pack.toml").is_file() and ccm.registry.is_dir()
    assert ccm.wording_file.is_file() and ccm.cases.is_file()


def test_a_second_pack_is_a_second_folder(tmp_path):
    shutil.copytree(packs.find("ccm").directory, tmp_path / "ccm")
    second = tmp_path / "demo"
    second.mkdir()
    (second / "pack.toml").write_text('[pack]\nname = "demo"\nfiles = []\nobligations = []\n', encoding="utf-8")
    (tmp_path / "notes").mkdir()               # a folder without a manifest is not a pack
    assert list(packs.discover(tmp_path)) == ["ccm", "demo"]
    assert [p.name for p in packs.select(["demo", "ccm"], tmp_path)] == ["demo", "ccm"]


def test_an_unknown_pack_names_the_folders_that_exist():
    with pytest.raises(packs.PackError) as refused:
        packs.select(["ccm", "apmbcx"])
    assert "unknown rule pack 'apmbcx'" in str(refused.value) and "the packs there are: apmbc, ccm" in str(refused.value)


def test_a_manifest_must_carry_its_folders_name(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "pack.toml").write_text('[pack]\nname = "other"\n', encoding="utf-8")
    with pytest.raises(packs.PackError, match="must be the folder's name 'demo'"):
        packs.find("demo", tmp_path)


def test_two_packs_at_once_are_refused_for_one_evaluator_with_a_sentence(tmp_path):
    shutil.copytree(packs.find("ccm").directory, tmp_path / "ccm")
    shutil.copytree(packs.find("ccm").directory, tmp_path / "demo")
    text = (tmp_path / "demo" / "pack.toml").read_text(encoding="utf-8").replace('name = "ccm"', 'name = "demo"')
    (tmp_path / "demo" / "pack.toml").write_text(text, encoding="utf-8")
    with pytest.raises(packs.PackError, match="evaluates one pack at a time"):
        packs.single(["ccm", "demo"], tmp_path)
    assert packs.single(["demo"], tmp_path).directory == tmp_path / "demo"


def test_the_setting_is_a_list_in_the_file_and_comma_separated_in_the_environment():
    assert SCHEMA["engine"]["pack"].env == "CCM_PACK"
    values, problems = check_env({"CCM_PACK": "ccm, apmbc"})
    assert values[("engine", "pack")] == ["ccm", "apmbc"] and not problems
    assert check_file({"engine": {"pack": ["ccm"]}}, "config.toml") == []
    assert "must name at least one rule pack" in check_file({"engine": {"pack": []}}, "config.toml")[0]
    assert "must be a list of strings" in check_file({"engine": {"pack": "ccm"}}, "config.toml")[0]


def test_ccm_refuses_an_unknown_pack_with_exit_status_2(ccm, monkeypatch):
    from engine.cli import main as cli

    monkeypatch.setenv("CCM_PACK", "nosuch")
    cli.reset_evaluators()
    try:
        code, out = ccm("deadlines", "CHE", "--as-of", "2024-01-01")
    finally:
        cli.reset_evaluators()
    assert code == 2 and "unknown rule pack 'nosuch'" in out and "ccm" in out
