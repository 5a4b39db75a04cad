"""The letters as an engine plugin: the ``ccm letters`` commands, the daily mailing, retries, the dashboard's approval.

Named by the entry point ``ccm_deadlines.plugins: letters`` in pyproject.toml; the engine finds it
there (engine/runtime/plugins.py) and never imports this package. Importing this module is cheap:
each hook imports what it runs when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import typer

from engine.runtime.plugins import DailyRun, Plugin
from engine.runtime.settings import Settings
from notifiers.config import defaults, load_letters_config


@dataclass
class DailyLetters:
    """The letters' part of one daily job."""

    planned: int
    queued: int
    sent: int
    failed: int
    no_contact: dict[str, int]
    batch_id: int | None = None          # the mailing planned today (the first pack's, when several planned one)
    awaiting_approval: bool = False      # over SMTP without auto_send: `ccm letters approve BATCH` sends it
    rejected: int = 0          # refused for good (bad address, 5xx): they wait for a contact change or a retry
    batches: dict[str, int] = field(default_factory=dict)   # each pack's batch planned today, in the packs' order

    def summary(self) -> str:
        waiting = " (awaiting approval)" if self.awaiting_approval else ""
        if len(self.batches) > 1:
            where = " in batches " + ", ".join(f"{b} ({pack})" for pack, b in self.batches.items()) + waiting
        else:
            where = f" in batch {self.batch_id}{waiting}" if self.batch_id else ""
        return (f"letters: {self.planned} item(s) planned{where}"
                + f", {self.queued} note(s) queued, {self.sent} sent, {self.failed} failed, "
                f"{len(self.no_contact)} part{'y' if len(self.no_contact) == 1 else 'ies'} without a contact")


@dataclass
class Retried:
    """The letters' part of one retry job: how many notes were delivered."""

    sent: int

    def summary(self) -> str:
        return f"{self.sent} letter(s) sent"


def _cli(app: typer.Typer) -> None:
    # lazy: the commands' module is imported only by the ccm command line, not by the scheduler or the web
    from notifiers import cli

    cli.register(app)


def _daily(run: DailyRun) -> DailyLetters:
    # lazy: SQLAlchemy, the templates and SMTP load when the daily job runs, not when ccm starts
    from notifiers import delivery

    result = delivery.send(run.url, run.treaties, load_letters_config(run.settings), run.as_of)
    planned = {p.pack or "": p.batch_id for p in result.plans if p.batch_id is not None}
    return DailyLetters(planned=len(result.items), queued=result.queued, sent=len(result.delivery.sent),
                        failed=len(result.delivery.failed),
                        no_contact={p: len(ls) for p, ls in result.no_contact.items()},
                        batch_id=next(iter(planned.values()), None), awaiting_approval=result.awaiting_approval,
                        rejected=len(result.delivery.rejected), batches=planned)


def _periodic(settings: Settings) -> Retried:
    # lazy: as _daily
    from notifiers import delivery

    config = load_letters_config(settings)
    return Retried(len(delivery.deliver(settings.database_url, delivery.make_notifier(config), config).sent))


def _web(app: Any, service: Any) -> None:
    # lazy: FastAPI loads with the web app only
    from notifiers import web

    web.register(app, service)


def _dashboard(service: Any) -> dict[str, Any]:
    # lazy: as _web
    from notifiers import web

    return {"mailings": web.planned_batches(service)}


def _defaults() -> dict[str, Any]:
    # lazy: the policy's module loads only for `ccm config show`
    return defaults()


PLUGIN = Plugin(name="letters", cli=_cli, daily=_daily, periodic=_periodic, web=_web, dashboard=_dashboard,
                defaults=_defaults)

__all__ = ["PLUGIN", "DailyLetters", "Retried"]
