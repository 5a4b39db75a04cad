"""Deployment settings: config.toml, then environment variables, frozen for the process."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

ENV_CONFIG = "CCM_CONFIG"


class SettingsError(ValueError):
    """The configuration file is missing a value or holds a wrong one."""


@dataclass(frozen=True)
class Settings:
    backend: str = "durable"
    database_url: str = "sqlite:///var/ccm.sqlite"
    output_folder: Path = Path("var/digests")
    config_path: Path | None = None
    receipts_complete_from: date | None = None

    def with_overrides(self, **changes) -> "Settings":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _default_config() -> Path:
    """config.toml in the working directory, else the one beside the installed project."""
    here = Path.cwd() / "config.toml"
    if here.exists():
        return here
    return Path(__file__).resolve().parent.parent / "config.toml"


def load_settings(path: Path | None = None) -> Settings:
    """Read config.toml (or ``$CCM_CONFIG``), apply environment overrides.

    Relative paths (the SQLite file, the output folder) are taken from the config file's folder.
    Raises :class:`SettingsError` for an unreadable file or an unknown backend.
    """
    path = Path(path or os.environ.get(ENV_CONFIG) or _default_config())
    data: dict = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise SettingsError(f"{path}: not valid TOML: {error}") from error
    base = path.parent.resolve()
    backend = os.environ.get("CCM_BACKEND") or data.get("engine", {}).get("backend", "durable")
    if backend not in ("durable", "reference"):
        raise SettingsError(f"{path}: [engine] backend is {backend!r}; use durable or reference")
    url = os.environ.get("CCM_DATABASE_URL") or data.get("database", {}).get("url", "sqlite:///var/ccm.sqlite")
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
        url = "sqlite:///" + str(base / url[len("sqlite:///"):])
    folder = Path(os.environ.get("CCM_OUTPUT_FOLDER") or data.get("output", {}).get("folder", "var/digests"))
    if not folder.is_absolute():
        folder = base / folder
    complete_from = os.environ.get("CCM_RECEIPTS_COMPLETE_FROM") or data.get("record", {}).get("receipts_complete_from", "")
    if isinstance(complete_from, date):
        complete_day: date | None = complete_from
    elif not complete_from:
        complete_day = None
    else:
        try:
            complete_day = date.fromisoformat(str(complete_from))
        except ValueError:
            raise SettingsError(f"{path}: [record] receipts_complete_from is {complete_from!r}; "
                                f"give a date as YYYY-MM-DD, or leave it empty") from None
    return Settings(backend=backend, database_url=url, output_folder=folder, config_path=path if path.exists() else None,
                    receipts_complete_from=complete_day)
