"""Deployment settings: find config.toml, validate it, apply environment variables, frozen for the process.

Where the file is found, first match wins: ``ccm --config FILE``; ``$CCM_CONFIG``; config.toml in
the current directory; config.toml in the user's config folder (platformdirs: on Linux
``~/.config/ccm-deadlines``). A file named by ``--config`` or ``CCM_CONFIG`` must exist.
Where the data goes when no config sets it: the user's data folder (on Linux
``~/.local/share/ccm-deadlines``), never inside the installed package.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from engine.runtime.schema import SCHEMA, check_env, check_file, normalise_database_url

ENV_CONFIG = "CCM_CONFIG"
APP_NAME = "ccm-deadlines"
DEFAULT_BACKEND = "durable"
DEFAULT_PACKS = ("ccm",)   # the rule packs under rules/ the engine evaluates; engine.core.packs finds them


class SettingsError(ValueError):
    """The configuration (file or environment) is missing a value or holds a wrong one; one sentence a line."""


@dataclass(frozen=True)
class CompleteFrom:
    """``[record] receipts_complete_from`` and its per-pack overrides (``[record.packs.<pack>]``).

    The global day applies to every pack that has no override of its own (see README, "Receipts:
    complete from when"); an override may be empty, saying that pack's record is not complete."""

    default: date | None = None
    packs: tuple[tuple[str, date | None], ...] = ()

    def for_pack(self, name: str) -> date | None:
        return dict(self.packs).get(name, self.default)


@dataclass(frozen=True)
class Settings:
    backend: str = DEFAULT_BACKEND
    packs: tuple[str, ...] = DEFAULT_PACKS
    database_url: str = "sqlite:///var/ccm.sqlite"
    output_folder: Path = Path("var/digests")
    config_path: Path | None = None
    config_found_by: str = "none"                 # --config | CCM_CONFIG | current directory | user config folder | none
    log_level: str | None = None                  # None: WARNING for commands, INFO for the scheduler and the server
    log_format: str = "text"
    receipts_complete_from: date | None = None   # [record]: from this day on, no receipt recorded means overdue
    # [record.packs.<pack>] receipts_complete_from: one pack's own day (None: that pack's record is not complete)
    receipts_complete_from_packs: dict[str, date | None] = field(default_factory=dict, compare=False, hash=False)
    file_data: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)
    sources: dict[str, str] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def complete_from(self) -> CompleteFrom:
        """From which day each pack's record of receipts is complete (what the evaluators are built with)."""
        return CompleteFrom(self.receipts_complete_from, tuple(sorted(self.receipts_complete_from_packs.items())))

    def with_overrides(self, **changes) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


_cli_config: Path | None = None


def use_config(path: Path | None) -> None:
    """The file given with ``ccm --config`` (None: none given); it wins over every other place."""
    global _cli_config
    _cli_config = Path(path) if path is not None else None


def user_config_file() -> Path:
    # lazy: platformdirs load only when this command runs, not on the start-up of ccm
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def user_data_folder() -> Path:
    # lazy: platformdirs load only when this command runs, not on the start-up of ccm
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def locate_config(explicit: Path | None = None) -> tuple[Path | None, str]:
    """(the config file, how it was found). Raises SettingsError when a named file does not exist."""
    explicit = explicit if explicit is not None else _cli_config
    if explicit is not None:
        if not explicit.exists():
            raise SettingsError(f"--config names {explicit}, which does not exist; give an existing config.toml.")
        return explicit, "--config"
    named = os.environ.get(ENV_CONFIG)
    if named:
        path = Path(named)
        if not path.exists():
            raise SettingsError(f"The environment variable {ENV_CONFIG} names {path}, which does not exist; "
                                f"create it, or unset {ENV_CONFIG} to use config.toml in the current directory.")
        return path, ENV_CONFIG
    here = Path.cwd() / "config.toml"
    if here.exists():
        return here, "current directory"
    user = user_config_file()
    if user.exists():
        return user, "user config folder"
    return None, "none"


def read_config_file(path: Path) -> dict[str, Any]:
    """The parsed, validated file. Raises SettingsError naming the file (and the key)."""
    if path.is_dir():
        raise SettingsError(f"{path} is a directory, not a config file; give the path of a config.toml file.")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise SettingsError(f"{path} cannot be read: {error.strerror or error}.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise SettingsError(f"{path} is not valid UTF-8 (byte 0x{raw[error.start]:02x} on line {line}); "
                            "save it as UTF-8.") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path} is not valid TOML: {error}.") from None
    problems = check_file(data, str(path))
    if problems:
        raise SettingsError("\n".join(problems))
    return data


def load_settings(path: Path | None = None) -> Settings:
    """Find and read config.toml, apply environment overrides, validate everything.

    Relative paths (the SQLite file, the output folder) are taken from the config file's folder
    (the current directory for ones given in the environment with no file). Raises
    :class:`SettingsError`, one sentence a problem naming the key and the file (or variable).
    """
    path, found_by = (Path(path), "argument") if path is not None else locate_config()
    data = read_config_file(path) if path is not None else {}
    env, problems = check_env(dict(os.environ))
    if problems:
        raise SettingsError("\n".join(problems))
    where = str(path) if path is not None else None
    base = path.parent.resolve() if path is not None else Path.cwd()
    sources: dict[str, str] = {}

    def pick(table: str, key: str, default: Any) -> Any:
        if (table, key) in env:
            sources[f"{table}.{key}"] = f"env {SCHEMA[table][key].env}"
            return env[(table, key)]
        section = data.get(table, {})
        if key in section:
            sources[f"{table}.{key}"] = f"file {where}"
            return section[key]
        sources[f"{table}.{key}"] = "default"
        return default

    data_folder: Path | None = None

    def data_home() -> Path:
        nonlocal data_folder
        data_folder = data_folder or user_data_folder()
        return data_folder

    backend = pick("engine", "backend", DEFAULT_BACKEND)
    pack_names = tuple(pick("engine", "pack", list(DEFAULT_PACKS)))
    url = pick("database", "url", None)
    if url is None:
        url = f"sqlite:///{data_home() / 'ccm.sqlite'}"
    url = normalise_database_url(url)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
        url = "sqlite:///" + str(base / url[len("sqlite:///"):])
    folder_text = pick("output", "folder", None)
    folder = Path(folder_text) if folder_text is not None else data_home() / "digests"
    if not folder.is_absolute():
        folder = base / folder
    complete_from = pick("record", "receipts_complete_from", None)
    if isinstance(complete_from, str):      # a TOML date stays a date; text was checked by the schema
        complete_from = date.fromisoformat(complete_from) if complete_from else None
    per_pack: dict[str, date | None] = {}
    for name, table in (data.get("record", {}).get("packs") or {}).items():   # checked by the schema
        if "receipts_complete_from" in table:
            value = table["receipts_complete_from"]
            per_pack[name] = (date.fromisoformat(value) if value else None) if isinstance(value, str) else value
            sources[f"record.packs.{name}.receipts_complete_from"] = f"file {where}"
    level = pick("logging", "level", None)
    log_format = pick("logging", "format", "text")
    return Settings(backend=backend, packs=pack_names, database_url=url, output_folder=folder, config_path=path, config_found_by=found_by,
                    log_level=level.upper() if level else None, log_format=log_format.lower(),
                    receipts_complete_from=complete_from, receipts_complete_from_packs=per_pack, file_data=data,
                    sources=sources)
