"""Operations commands on the ``ccm`` app: ``status`` and ``config show``. Registered by importing engine/cli/main.py."""

from __future__ import annotations

import json
import os
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from engine.cli.base import app, evaluator
from engine.runtime.plugins import load_plugins
from engine.runtime.schema import SCHEMA, env_value
from engine.runtime.settings import load_settings

console = Console()
config_app = typer.Typer(no_args_is_help=True, help="The effective configuration.")
app.add_typer(config_app, name="config")


def gather_status(settings=None) -> dict[str, Any]:
    """The status as ``ccm status --json`` prints it and ``/api/status`` serves it."""
    # lazy: the status reads the database and the scheduler's job store (SQLAlchemy, APScheduler)
    from engine.check import status

    settings = settings or load_settings()
    return status.gather(settings, evaluator(settings.backend))


@app.command("status")
def status_command(json_output: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Is it running well? Database, last check, next run, letters, scheduler lock, hashes.

    The database (reachable, schema current), the last check and its outcome, the next scheduled
    run, letters queued and failed, who holds the scheduler lock, the rulebook and registry in use.
    Exit status 0: all well; 1: something needs attention (listed); 3: the database cannot be used.
    """
    result = gather_status()
    if json_output:
        print(json.dumps(result, ensure_ascii=False, indent=1, default=str))
    else:
        _print_status(result)
    database = result["database"]
    raise typer.Exit(3 if database["created"] and not database["reachable"] else 1 if result["attention"] else 0)


def _print_status(s: dict[str, Any]) -> None:
    db = s["database"]
    lines = [("Database", f"{db['url']}: " + ("reachable" if db["reachable"] else "NOT reachable")
              + (f", schema {db['schema']}" if db["schema"] else "") + (f" ({db['error']})" if db["error"] else ""))]
    lines.append(("Config", s["config"] or "none found (defaults)"))
    check = s["last_check"]
    if check:
        c = check["counts"]
        lines.append(("Last check", (f"run {check['run_id']} as of {check['as_of']}, finished {check['finished_at']}: "
                       f"{check['outcome']}; {c.get('obligations', 0)} obligations, {check['overdue']} overdue, "
                       f"{check['due_within_90_days']} due within 90 days")))
    else:
        lines.append(("Last check", "none yet" if db["reachable"] else "unknown"))
    run = s["next_run"]
    lines.append(("Next run", f"{run['at']} (from the {run['from']})"))
    if s["letters"] is not None:
        letters = dict(s["letters"])
        waiting, batches = letters.pop("awaiting_approval", None), letters.pop("batches_awaiting_approval", None)
        text = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in letters.items())
        if waiting is not None:
            text += f"; {waiting} note(s) awaiting approval in {batches} batch(es)"
        lines.append(("Letters", text))
    lock = s["scheduler_lock"]
    if lock is not None:
        lines.append(("Scheduler", f"running ({lock['holder']}, since {lock['since']})" if lock["held"] else
                      "not running" + (f" (last: {lock['last_holder']})" if lock["last_holder"] else "")))
    lines.append(("Rulebook", s["rulebook_hash"] + (" (changed since the last check)" if s["stale_rulebook"] else "")))
    lines.append(("Registry", s["registry_hash"] + (" (changed since the last check)" if s["stale_registry"] else "")))
    for label, text in lines:
        console.print(f"[bold]{label + ':':<11}[/] {escape(text)}", highlight=False)
    if s["attention"]:
        console.print("Needs attention: " + "; ".join(s["attention"]) + ".", highlight=False)
    else:
        console.print("All well.", highlight=False)


@config_app.command("show")
def config_show(json_output: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The effective settings and where each came from (default, the file, or an environment
    variable); secrets (passwords in URLs) masked, tokens never read."""
    settings = load_settings()
    rows = effective(settings)
    if json_output:
        print(json.dumps({"config": str(settings.config_path) if settings.config_path else None,
                          "found_by": settings.config_found_by, "settings": rows}, ensure_ascii=False, indent=1))
        return
    print(f"# config file: {settings.config_path or 'none'} (found by: {settings.config_found_by})")
    for row in rows:    # TOML-like lines that fit any terminal: the value, then where it came from
        print(f"{row['key']} = {json.dumps(row['value'], ensure_ascii=False)}    # {row['source']}")


def effective(settings) -> list[dict[str, Any]]:
    """Every known setting: its key, effective value and source (default | file PATH | env NAME)."""
    from engine.store.database import (
        safe_url,  # lazy: SQLAlchemy only for `config show`
    )

    base: dict[str, Any] = {}
    for plugin in load_plugins():      # the defaults of the plugins' tables ([letters], [smtp], [scheduler])
        if plugin.defaults is not None:
            base.update(plugin.defaults())
    resolved = {"engine.backend": settings.backend, "engine.pack": list(settings.packs), "database.url": safe_url(settings.database_url),
                "output.folder": str(settings.output_folder), "logging.level": settings.log_level,
                "logging.format": settings.log_format}
    rows = []
    for table, keys in SCHEMA.items():
        for name, key in keys.items():
            dotted = f"{table}.{name}"
            if dotted in resolved:
                value, source = resolved[dotted], settings.sources.get(dotted, "default")
            elif key.env and os.environ.get(key.env):
                value, source = env_value(key, os.environ[key.env]), f"env {key.env}"
            elif name in settings.file_data.get(table, {}):
                value, source = settings.file_data[table][name], f"file {settings.config_path}"
            else:
                value, source = base.get(table, {}).get(name, _api_default(table, name)), "default"
            if key.secret and isinstance(value, str):
                value = safe_url(value) if "://" in value else "***"
            rows.append({"key": dotted, "value": value, "source": source})
    # each selected pack's day (and any other pack's override): its own, or the global one it takes
    complete = settings.complete_from
    for name in dict.fromkeys((*settings.packs, *settings.receipts_complete_from_packs)):
        dotted = f"record.packs.{name}.receipts_complete_from"
        day = complete.for_pack(name)
        source = settings.sources.get(dotted) or f"[record] receipts_complete_from ({settings.sources.get('record.receipts_complete_from', 'default')})"
        rows.append({"key": dotted, "value": day.isoformat() if day else None, "source": source})
    for table in ("letters",):
        for sub in ("signers", "kinds"):
            names = sorted(settings.file_data.get(table, {}).get(sub) or base.get(table, {}).get(sub, {}))
            source = f"file {settings.config_path}" if sub in settings.file_data.get(table, {}) else "default"
            rows.append({"key": f"{table}.{sub}", "value": names, "source": source})
    return rows


def _api_default(table: str, name: str) -> Any:
    if table != "api":
        return None
    from engine.web.app import ApiConfig  # lazy: FastAPI only for the [api] defaults

    value = getattr(ApiConfig(), name, None)
    return list(value) if isinstance(value, tuple) else value
