"""Configuration: where config.toml is found, where the data goes, and every bad setting is one sentence with exit status 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from engine.cli.main import app
from engine.runtime.errors import exit_for
from engine.runtime.schema import SCHEMA
from engine.runtime.settings import SettingsError, load_settings

REPO = Path(__file__).resolve().parent.parent


def run(*args: str):
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """No CCM_* variable, and the current directory an empty folder (no config.toml)."""
    for name in list(os.environ):
        if name.startswith("CCM_"):
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


# --------------------------------------------------------------------------- discovery

def test_with_no_config_anywhere_the_data_goes_to_the_users_data_folder(clean_env, tmp_path):
    settings = load_settings()
    data = tmp_path / "xdg-data" / "ccm-deadlines"
    assert settings.config_path is None and settings.config_found_by == "none"
    assert settings.database_url == f"sqlite:///{data / 'ccm.sqlite'}"
    assert settings.output_folder == data / "digests"
    assert settings.sources["database.url"] == "default"


def test_the_current_directory_wins_over_the_user_config_folder(clean_env, tmp_path):
    user = tmp_path / "xdg-config" / "ccm-deadlines"
    user.mkdir(parents=True)
    (user / "config.toml").write_text('[database]\nurl = "sqlite:///user.sqlite"\n')
    assert load_settings().database_url == f"sqlite:///{user / 'user.sqlite'}"
    assert load_settings().config_found_by == "user config folder"
    (clean_env / "config.toml").write_text('[database]\nurl = "sqlite:///here.sqlite"\n')
    assert load_settings().database_url == f"sqlite:///{clean_env / 'here.sqlite'}"
    assert load_settings().config_found_by == "current directory"


def test_ccm_config_wins_over_the_current_directory_and_config_option_over_both(clean_env, tmp_path, monkeypatch):
    (clean_env / "config.toml").write_text('[output]\nfolder = "here"\n')
    named = tmp_path / "named.toml"
    named.write_text('[output]\nfolder = "named"\n')
    option = tmp_path / "option.toml"
    option.write_text('[output]\nfolder = "option"\n')
    monkeypatch.setenv("CCM_CONFIG", str(named))
    code, out, _ = run("config", "show", "--json")
    shown = {row["key"]: row for row in json.loads(out)["settings"]}
    assert code == 0 and shown["output.folder"]["value"] == str(tmp_path / "named")
    assert shown["output.folder"]["source"] == f"file {named}"
    code, out, _ = run("--config", str(option), "config", "show", "--json")
    assert json.loads(out)["found_by"] == "--config"
    assert {row["key"]: row["value"] for row in json.loads(out)["settings"]}["output.folder"] == str(tmp_path / "option")


def test_config_show_names_the_source_of_each_setting_and_masks_the_database_password(clean_env, tmp_path, monkeypatch):
    config = tmp_path / "c.toml"
    config.write_text('[smtp]\nport = 2525\n')
    monkeypatch.setenv("CCM_CONFIG", str(config))
    monkeypatch.setenv("CCM_DATABASE_URL", "postgresql+psycopg://isu:s3cret@db.example/ccm")
    code, out, _ = run("config", "show")
    assert code == 0
    assert "smtp.port = 2525    # file " + str(config) in out
    assert "database.url = \"postgresql+psycopg://isu:***@db.example/ccm\"    # env CCM_DATABASE_URL" in out
    assert "smtp.security = \"starttls\"    # default" in out
    assert "s3cret" not in out


def test_the_readme_command_run_from_the_repository_uses_the_repositorys_config(monkeypatch):
    for name in list(os.environ):
        if name.startswith("CCM_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(REPO)
    settings = load_settings()
    assert settings.config_path == REPO / "config.toml"
    assert settings.database_url == f"sqlite:///{REPO / 'var' / 'ccm.sqlite'}"


# --------------------------------------------------------------------------- bad settings: exit 2, one sentence

BAD_FILES = [
    # (what, file bytes, words the message must contain)
    ("a TOML syntax error", b"[database\nurl = 1\n", ["is not valid TOML", "line 1"]),
    ("a number as the database URL", b"[database]\nurl = 123\n", ["[database] url is 123", "must be a string"]),
    ("a word as the SMTP port", b'[smtp]\nport = "abc"\n', ["[smtp] port is 'abc'", "whole number from 1 to 65535"]),
    ("invalid UTF-8", b'[letters]\nfrom = "ISU \xff"\n', ["is not valid UTF-8", "line 2"]),
    ("a MySQL URL", b'[database]\nurl = "mysql://u@h/db"\n', ["[database] url", "uses mysql, which ccm does not support"]),
    ("an unknown backend", b'[engine]\nbackend = "drools"\n', ["[engine] backend is 'drools'", "durable, reference"]),
    ("a table that is a string", b'smtp = "localhost"\n', ["[smtp] must be a table"]),
    ("a bad scheduler time", b'[scheduler]\ntime = "6h"\n', ["[scheduler] time is '6h'", "HH:MM"]),
    ("stages that are not a list", b'[letters.kinds.x]\nobligations = ["a"]\nstages = "soon"\n',
     ["[letters.kinds.x] stages must be a non-empty list"]),
]
COMMANDS = [["init"], ["check", "--as-of", "2025-01-01"], ["import", "receipts.csv"], ["export"], ["db", "upgrade"],
            ["status"], ["parties"], ["letters", "plan"], ["contacts", "list"], ["config", "show"]]


@pytest.mark.parametrize("what, content, words", BAD_FILES, ids=[row[0] for row in BAD_FILES])
@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_a_bad_config_file_is_exit_2_with_a_sentence_naming_the_file_in_every_command(clean_env, tmp_path, monkeypatch,
                                                                                       what, content, words, command):
    config = tmp_path / "config.toml"
    config.write_bytes(content)
    (clean_env / "receipts.csv").write_text("party,kind,year,received\n")
    monkeypatch.setenv("CCM_CONFIG", str(config))
    code, out, err = run(*command)
    assert code == 2, (out, err)
    assert str(config) in err and all(w in " ".join(err.split()) for w in words), err
    assert "Traceback" not in err and out == ""
    assert not (tmp_path / "xdg-data").exists()           # nothing created


BAD_ENV = [
    ("CCM_DATABASE_URL", "not a url", "is not a database URL"),
    ("CCM_DATABASE_URL", "mysql://u@h/db", "uses mysql"),
    ("CCM_SMTP_PORT", "abc", "whole number"),
    ("CCM_BACKEND", "drools", "one of durable, reference"),
    ("CCM_LOG_LEVEL", "LOUD", "one of DEBUG"),
    ("CCM_API_WORKERS", "-1", "from 0 to 64"),
]


@pytest.mark.parametrize("variable, value, words", BAD_ENV, ids=[f"{v}={x}" for v, x, _ in BAD_ENV])
@pytest.mark.parametrize("command", [["init"], ["check"], ["export"], ["status"]], ids=lambda c: c[0])
def test_a_bad_environment_variable_is_exit_2_naming_the_variable(clean_env, monkeypatch, variable, value, words, command):
    monkeypatch.setenv(variable, value)
    code, _out, err = run(*command)
    message = " ".join(err.split())
    assert code == 2 and f"The environment variable {variable}" in message and words in message, err
    assert "Traceback" not in err


def test_ccm_config_naming_a_missing_file_is_an_error_not_an_empty_first_run(clean_env, tmp_path, monkeypatch):
    monkeypatch.setenv("CCM_CONFIG", str(tmp_path / "typo.toml"))
    code, _, err = run("check")
    assert code == 2 and f"CCM_CONFIG names {tmp_path / 'typo.toml'}, which does not exist" in " ".join(err.split())
    assert not (tmp_path / "xdg-data").exists()


def test_config_toml_that_is_a_directory_is_an_error(clean_env):
    (clean_env / "config.toml").mkdir()
    code, _, err = run("init")
    assert code == 2 and f"{clean_env / 'config.toml'} is a directory, not a config file" in " ".join(err.split())


def test_config_option_naming_a_missing_file_is_an_error(clean_env, tmp_path):
    code, _, err = run("--config", str(tmp_path / "nope.toml"), "parties")
    assert code == 2 and "--config names" in err and "does not exist" in " ".join(err.split())


# --------------------------------------------------------------------------- the loader, fuzzed

def _load_everything():
    from engine.web.app import load_api_config
    from notifiers.config import load_letters_config

    settings = load_settings()
    load_letters_config(settings)
    load_api_config(settings)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


scalars = st.one_of(st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=12), st.sampled_from(["durable", "smtp", "06:00", "25:99", "sqlite:///x.sqlite",
                                                           "postgresql://h/db", "mysql://h", "", "json", "DEBUG"]))
values = st.one_of(scalars, st.lists(scalars, max_size=3),
                   st.dictionaries(st.sampled_from(["name", "days", "en"]), scalars, max_size=2))
known_keys = st.sampled_from([(table, key) for table, keys in SCHEMA.items() for key in keys]
                             + [("letters.kinds.initial_report", "stages"), ("letters.kinds.x", "obligations"),
                                ("letters.signers.isu", "sender"), ("smtp", "password"), ("engine", "other")])


@hyp_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(st.tuples(known_keys, values), max_size=6))
def test_any_structured_config_loads_or_is_an_input_error_with_sentences(tmp_path_factory, entries):
    folder = tmp_path_factory.mktemp("fuzz")
    tables: dict[str, dict] = {}
    for (table, key), value in entries:
        tables.setdefault(table, {})[key] = value
    text = "".join(f"[{table}]\n" + "".join(f"{json.dumps(k)} = {_toml_value(v)}\n" for k, v in keys.items())
                   for table, keys in tables.items())
    _assert_loads_or_exit_2(folder, text.encode("utf-8"))


@hyp_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(st.binary(max_size=200),
                     st.text(alphabet=st.sampled_from(list('[]="\n.smtpportdatabaseurl 0123456789ab\\\'#{}')), max_size=120)
                     .map(lambda t: t.encode("utf-8"))))
def test_any_bytes_as_config_load_or_are_an_input_error_with_sentences(tmp_path_factory, raw):
    _assert_loads_or_exit_2(tmp_path_factory.mktemp("fuzz"), raw)


def _assert_loads_or_exit_2(folder: Path, raw: bytes) -> None:
    config = folder / "config.toml"
    config.write_bytes(raw)
    previous = os.environ.get("CCM_CONFIG")
    os.environ["CCM_CONFIG"] = str(config)
    try:
        _load_everything()
    except Exception as error:  # noqa: BLE001 - the point: what the command line would make of any error
        code, message = exit_for(error)
        assert code == 2, f"{type(error).__name__}: {error}"
        assert message.strip() and all(line.strip().endswith((".", ")")) or "line" in line
                                       for line in message.splitlines()), message
    finally:
        if previous is None:
            del os.environ["CCM_CONFIG"]
        else:
            os.environ["CCM_CONFIG"] = previous


def test_load_settings_raises_settings_error_for_each_problem_on_its_own_line(clean_env, tmp_path, monkeypatch):
    config = tmp_path / "c.toml"
    config.write_text('[smtp]\nport = "x"\nsecurity = "ssl"\n')
    monkeypatch.setenv("CCM_CONFIG", str(config))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    lines = str(caught.value).splitlines()
    assert len(lines) == 2 and "[smtp] port" in lines[0] and "[smtp] security" in lines[1]


# --------------------------------------------------------------------------- a real installation

def test_a_non_editable_install_keeps_its_data_outside_site_packages(tmp_path):
    """pip install . (a wheel, not the source tree): with no config, the database and the digests go
    to the user's data folder, and nothing is written inside the installed package."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # The dependencies come from this environment (they are not what is tested, and durable_rules compiles).
    here = subprocess.run([sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (site / "zz_test_dependencies.pth").write_text(here + "\n")
    # Built from a copy of the tree: setuptools writes build/ beside the sources, and one left by an
    # earlier build (of other migration files, say) would be packaged instead of what is tested.
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv*", "build", "*.egg-info", "__pycache__",
                                                                ".pytest_cache", ".hypothesis", "artifacts", "var"))
    build = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(source)],
                           check=False, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    home = tmp_path / "home"
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CCM_", "XDG_", "PYTHONPATH"))}
    env.update(HOME=str(home), PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    located = subprocess.run([str(python), "-c", "import engine; print(engine.__file__)"], capture_output=True,
                             text=True, cwd=work, env=env, check=True).stdout.strip()
    assert located.startswith(str(site)), located          # the installed copy, not the source tree
    for command in (["init"], ["check", "--as-of", "2025-01-01"]):
        result = subprocess.run([str(venv / "bin" / "ccm"), *command], check=False, capture_output=True, text=True, cwd=work,
                                env=env, timeout=600)
        assert result.returncode in (0, 1), result.stderr
    data = home / ".local" / "share" / "ccm-deadlines"
    assert (data / "ccm.sqlite").is_file() and (data / "digests" / "digest-2025-01-01.md").is_file()
    written = [p for p in site.rglob("*") if p.suffix in (".sqlite", ".md", ".html") and "digest" in p.name
               or p.suffix == ".sqlite"]
    assert written == []
    assert not (site / "var").exists()


ENV_NAMES = sorted({key.env for keys in SCHEMA.values() for key in keys.values() if key.env})


@hyp_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(env=st.dictionaries(st.sampled_from(ENV_NAMES),
                           st.one_of(st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
                                             max_size=20),
                                     st.sampled_from(["0", "-1", "65536", "25", "smtp", "SMTP", "json", "info", "postgres://h/db",
                                                      "sqlite:///x", "mysql://h/db", "not a url", "1e400"])),
                           max_size=4))
def test_any_environment_loads_or_is_an_input_error_naming_the_variable(tmp_path_factory, env):
    folder = tmp_path_factory.mktemp("fuzz-env")
    saved = {name: os.environ.get(name) for name in ENV_NAMES}
    try:
        for name in ENV_NAMES:
            os.environ.pop(name, None)
        os.environ.update(env)
        _assert_loads_or_exit_2(folder, b"")
        try:
            _load_everything()
        except SettingsError as error:
            assert all(line.startswith("The environment variable ") for line in str(error).splitlines()), error
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
