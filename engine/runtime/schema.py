"""The schema of config.toml: each table's keys with their type, allowed values and environment variable.

:func:`check_file` returns one sentence per wrong value, naming the key and the file;
:func:`check_env` does the same for the environment variables that override a key. Unknown
keys are accepted (a newer config on an older install keeps working); known keys must hold
the right type. Pure Python, no import beyond the standard library: every command reads it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LANGUAGES = ("en", "fr", "es", "zh")
_URL = re.compile(r"^(?P<dialect>[A-Za-z][A-Za-z0-9]*)(?:\+(?P<driver>[A-Za-z0-9_]+))?://(?P<rest>.*)$", re.DOTALL)
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Key:
    """One key: ``kind`` is str, int, number, bool, date (a TOML date or YYYY-MM-DD text), list[str] or list[int]."""

    kind: str
    env: str | None = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    check: Callable[[Any], str | None] | None = None   # returns what is wrong, or None
    secret: bool = False
    fold_case: bool = False


def _date_or_empty(value: Any) -> str | None:
    if value == "" or isinstance(value, date):
        return None
    try:
        date.fromisoformat(value)
    except ValueError:
        return "is not a date; write it as YYYY-MM-DD, or leave it empty"
    return None


def _pack_names(value: list[str]) -> str | None:
    # Whether each named pack exists is checked where packs are found (engine.core.packs), which
    # names the folders that do; here only the shape.
    if not value:
        return "must name at least one rule pack, e.g. [\"ccm\"]"
    if not all(re.fullmatch(r"[a-z][a-z0-9_]*", v) for v in value):
        return "must list rule pack names (folder names under rules/: lower-case letters, digits, _)"
    return None


def _time(value: str) -> str | None:
    return None if _TIME.match(value) else "is not a time; write it as HH:MM (UTC), e.g. 06:00"


def _not_blank(value: str) -> str | None:
    return "is empty; give a value" if not value.strip() else None


def database_url_problem(value: str) -> str | None:
    """What is wrong with a database URL (None when SQLite or PostgreSQL).

    >>> database_url_problem("mysql://u@h/db")
    'uses mysql, which ccm does not support; use SQLite (sqlite:///path/to/ccm.sqlite) or PostgreSQL (postgresql+psycopg://user@host/database)'
    >>> database_url_problem("sqlite:///var/ccm.sqlite") is None
    True
    """
    hint = "SQLite (sqlite:///path/to/ccm.sqlite) or PostgreSQL (postgresql+psycopg://user@host/database)"
    match = _URL.match(value)
    if not match:
        return f"is not a database URL; give {hint}"
    dialect, driver, rest = match.group("dialect").lower(), (match.group("driver") or "").lower(), match.group("rest")
    if dialect in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            return f"names the driver {driver!r}, which is not installed; write postgresql+psycopg://..."
        if not rest.strip("/"):
            return "names no PostgreSQL server or database; write postgresql+psycopg://user@host/database"
        return None
    if dialect == "sqlite":
        if driver not in ("", "pysqlite"):
            return f"names the driver {driver!r}, which is not installed; write sqlite:///path/to/ccm.sqlite"
        if rest and not rest.startswith("/"):
            return "is not a SQLite URL; write sqlite:///relative/path.sqlite or sqlite:////absolute/path.sqlite"
        return None
    return f"uses {dialect}, which ccm does not support; use {hint}"


def normalise_database_url(value: str) -> str:
    """postgres:// and postgresql:// (SQLAlchemy's default driver is not installed) become postgresql+psycopg://.

    >>> normalise_database_url("postgres://u@h/db")
    'postgresql+psycopg://u@h/db'
    """
    match = _URL.match(value)
    if match and match.group("dialect").lower() in ("postgresql", "postgres") and not match.group("driver"):
        return "postgresql+psycopg://" + match.group("rest")
    return value


SCHEMA: dict[str, dict[str, Key]] = {
    "engine": {"backend": Key("str", env="CCM_BACKEND", choices=("durable", "reference")),
               "pack": Key("list[str]", env="CCM_PACK", check=_pack_names)},
    "database": {"url": Key("str", env="CCM_DATABASE_URL", check=database_url_problem, secret=True)},
    "output": {"folder": Key("str", env="CCM_OUTPUT_FOLDER", check=_not_blank)},
    "record": {"receipts_complete_from": Key("date", env="CCM_RECEIPTS_COMPLETE_FROM", check=_date_or_empty)},
    "logging": {"level": Key("str", env="CCM_LOG_LEVEL", choices=LOG_LEVELS, fold_case=True),
                "format": Key("str", env="CCM_LOG_FORMAT", choices=("text", "json"), fold_case=True)},
    "api": {"isu_token_env": Key("str"), "state_tokens_env": Key("str"), "calendar_domain": Key("str", check=_not_blank),
            "alarm_days": Key("list[int]", minimum=0), "state_ttl_seconds": Key("number", minimum=0),
            "cache_size": Key("int", minimum=0), "workers": Key("int", env="CCM_API_WORKERS", minimum=0, maximum=64)},
    "letters": {"notifier": Key("str", env="CCM_NOTIFIER", choices=("outbox", "smtp")),
                "outbox": Key("str", env="CCM_OUTBOX_FOLDER", check=_not_blank), "from": Key("str", check=_not_blank),
                "reply_to": Key("str"), "cc": Key("list[str]"), "reference_prefix": Key("str"),
                "message_id_domain": Key("str", check=_not_blank), "since": Key("str", check=_date_or_empty),
                "retry_first_seconds": Key("int", minimum=1), "retry_max_seconds": Key("int", minimum=1),
                "first_run_limit": Key("int", minimum=0)},
    "smtp": {"host": Key("str", env="CCM_SMTP_HOST"), "port": Key("int", env="CCM_SMTP_PORT", minimum=1, maximum=65535),
             "security": Key("str", choices=("starttls", "tls", "none")), "user": Key("str"),
             "password_env": Key("str"), "timeout_seconds": Key("number", minimum=0.001)},
    "scheduler": {"time": Key("str", check=_time), "retry_every_minutes": Key("int", minimum=1),
                  "misfire_grace_days": Key("number", minimum=0)},
}

_KIND_WORDS = {"str": "a string in quotes", "int": "a whole number", "number": "a number", "bool": "true or false",
               "list[str]": "a list of strings", "list[int]": "a list of whole numbers"}


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _range_words(key: Key) -> str:
    if key.minimum is not None and key.maximum is not None:
        return f" from {key.minimum:g} to {key.maximum:g}"
    if key.minimum is not None:
        return f" of at least {key.minimum:g}"
    return ""


def problem(key: Key, value: Any) -> str | None:
    """What is wrong with ``value`` for ``key`` (a phrase after "<key> is <value>"), or None."""
    kind = key.kind
    if kind == "date":
        if not isinstance(value, (str, date)) or isinstance(value, datetime):
            return "must be a date (YYYY-MM-DD), or empty"
        return key.check(value) if key.check else None
    if kind == "str" and not isinstance(value, str) or kind == "bool" and not isinstance(value, bool) \
            or kind == "int" and not _is_int(value) \
            or kind == "number" and not (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return f"must be {_KIND_WORDS[kind]}{_range_words(key) if kind in ('int', 'number') else ''}"
    if kind.startswith("list["):
        inner = kind[5:-1]
        if not isinstance(value, list) or not all(isinstance(v, str) if inner == "str" else _is_int(v) for v in value):
            return f"must be {_KIND_WORDS[kind]}"
        if inner == "int" and key.minimum is not None and any(v < key.minimum for v in value):
            return f"must list whole numbers of at least {key.minimum:g}"
        return key.check(value) if key.check else None
    if kind in ("int", "number"):
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number{_range_words(key)}"
        if key.minimum is not None and value < key.minimum or key.maximum is not None and value > key.maximum:
            return f"must be {_KIND_WORDS[kind]}{_range_words(key)}"
    if key.choices:
        probe = value.upper() if key.fold_case and key.choices[0].isupper() else value.lower() if key.fold_case else value
        if probe not in key.choices:
            return f"must be one of {', '.join(key.choices)}"
    if key.check is not None:
        return key.check(value)
    return None


def check_file(data: dict[str, Any], where: str) -> list[str]:
    """One sentence per wrong value in the parsed file ``where``."""
    problems: list[str] = []
    for table, keys in SCHEMA.items():
        if table not in data:
            continue
        section = data[table]
        if not isinstance(section, dict):
            problems.append(f"{where}: [{table}] must be a table (a [{table}] header with keys under it), "
                            f"not {_show(section)}.")
            continue
        for name, key in keys.items():
            if name in section:
                wrong = problem(key, section[name])
                if wrong:
                    problems.append(f"{where}: [{table}] {name} is {_show(section[name])}; it {wrong}.")
    record = data.get("record")
    if isinstance(record, dict):
        problems += _check_record_packs(record.get("packs"), where)
    letters = data.get("letters")
    if isinstance(letters, dict):
        problems += _check_signers(letters.get("signers"), where) + _check_kinds(letters.get("kinds"), where)
    smtp = data.get("smtp")
    if isinstance(smtp, dict) and "password" in smtp:
        problems.append(f"{where}: [smtp] password must not be written in the file; put it in the environment "
                        f"variable named by password_env ({smtp.get('password_env', 'CCM_SMTP_PASSWORD')}).")
    return problems


def _check_record_packs(tables: Any, where: str) -> list[str]:
    """``[record.packs.<pack>] receipts_complete_from``: a pack name and a date, or empty (not complete)."""
    if tables is None:
        return []
    if not isinstance(tables, dict):
        return [f"{where}: [record.packs] must be a table of packs ([record.packs.apmbc] with its keys)."]
    problems = []
    key = SCHEMA["record"]["receipts_complete_from"]
    for name, table in tables.items():
        at = f"{where}: [record.packs.{name}]"
        if _pack_names([name]):
            problems.append(f"{at} must be named by a rule pack (lower-case letters, digits, _).")
        elif not isinstance(table, dict):
            problems.append(f"{at} must be a table with receipts_complete_from.")
        elif "receipts_complete_from" in table:
            wrong = problem(Key(key.kind, check=key.check), table["receipts_complete_from"])
            if wrong:
                problems.append(f"{at} receipts_complete_from is {_show(table['receipts_complete_from'])}; it {wrong}.")
    return problems


def _check_signers(signers: Any, where: str) -> list[str]:
    if signers is None:
        return []
    if not isinstance(signers, dict):
        return [f"{where}: [letters.signers] must be a table of signers."]
    problems = []
    for name, table in signers.items():
        if not isinstance(table, dict):
            problems.append(f"{where}: [letters.signers.{name}] must be a table with sender, short and signature.")
            continue
        for part in ("sender", "short", "signature"):
            texts = table.get(part)
            if texts is None:
                continue
            if not isinstance(texts, dict) or not all(isinstance(v, str) for v in texts.values()):
                problems.append(f"{where}: [letters.signers.{name}] {part} must give a text per language "
                                f"({part}.en = \"...\"), not {_show(texts)}.")
    return problems


def _check_kinds(kinds: Any, where: str) -> list[str]:
    if kinds is None:
        return []
    if not isinstance(kinds, dict):
        return [f"{where}: [letters.kinds] must be a table of letter kinds."]
    problems = []
    for name, kind in kinds.items():
        at = f"{where}: [letters.kinds.{name}]"
        if not isinstance(kind, dict):
            problems.append(f"{at} must be a table with obligations and stages.")
            continue
        obligations = kind.get("obligations")
        if not isinstance(obligations, list) or not obligations or not all(isinstance(o, str) for o in obligations):
            problems.append(f"{at} obligations must be a non-empty list of obligation ids, not {_show(obligations)}.")
        stages = kind.get("stages")
        if not isinstance(stages, list) or not stages or not all(
                isinstance(s, dict) and isinstance(s.get("name"), str) and s["name"] and _is_int(s.get("days"))
                for s in stages):
            problems.append(f"{at} stages must be a non-empty list of {{ name = \"...\", days = N }}, not {_show(stages)}.")
        for key, check in (("repeat_every_days", lambda v: _is_int(v) and v > 0), ("signer", lambda v: isinstance(v, str)),
                           ("cc", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v))):
            if key in kind and not check(kind[key]):
                words = {"repeat_every_days": "a whole number of days above 0", "signer": "a signer's name in quotes",
                         "cc": "a list of addresses"}[key]
                problems.append(f"{at} {key} is {_show(kind[key])}; it must be {words}.")
    return problems


def env_value(key: Key, raw: str) -> Any:
    """The typed value of an environment variable for ``key``; raises ValueError with the reason."""
    if key.kind == "int":
        try:
            value: Any = int(raw.strip())
        except ValueError:
            raise ValueError(f"must be {_KIND_WORDS['int']}{_range_words(key)}") from None
    elif key.kind == "number":
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"must be {_KIND_WORDS['number']}{_range_words(key)}") from None
    elif key.kind == "list[str]":     # a list in one variable: comma-separated, e.g. CCM_PACK=ccm,apmbc
        value = [part.strip() for part in raw.split(",") if part.strip()]
    else:
        value = raw
    wrong = problem(key, value)
    if wrong:
        raise ValueError(wrong)
    return value


def check_env(environ: dict[str, str]) -> tuple[dict[tuple[str, str], Any], list[str]]:
    """The environment overrides that are set (non-empty), typed, and one sentence per wrong one."""
    values: dict[tuple[str, str], Any] = {}
    problems: list[str] = []
    for table, keys in SCHEMA.items():
        for name, key in keys.items():
            raw = environ.get(key.env) if key.env else None
            if not raw:
                continue
            try:
                values[(table, name)] = env_value(key, raw)
            except ValueError as error:
                problems.append(f"The environment variable {key.env} (for [{table}] {name}) is {_show(raw)}; it {error}.")
    return values, problems
