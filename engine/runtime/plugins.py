"""The hooks by which a package above the engine (the letters, in notifiers/) plugs into it, found through an entry point.

The engine never imports such a package. A plugin is a :class:`Plugin` named in the entry-point
group ``ccm_deadlines.plugins`` of an installed distribution's metadata; this project's own
pyproject.toml declares ``letters = "notifiers.plugin:PLUGIN"``. Each hook is optional:

* ``cli(app)`` adds commands to the ``ccm`` Typer app (``ccm letters ...``);
* ``daily(run)`` is a step of the daily job, run after the check and its digest;
* ``periodic(settings)`` runs between daily runs (the scheduler's retry job);
* ``web(app, service)`` adds routes to the FastAPI app (``engine.web.app.Service`` gives the
  settings, the evaluator and the database);
* ``dashboard(service)`` adds values to the dashboard page's context;
* ``defaults()`` gives the default values of the plugin's config tables (``ccm config show``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

from engine.runtime.settings import Settings

if TYPE_CHECKING:   # types only: the engine's lower layers never import Typer or FastAPI
    from fastapi import FastAPI
    from typer import Typer

    from engine.core.evaluate import Evaluator
    from engine.registry.treaties import Treaties

ENTRY_POINT_GROUP = "ccm_deadlines.plugins"


class StepResult(Protocol):
    """What a daily or periodic step returns: its outcome, said in the scheduler's log line."""

    def summary(self) -> str: ...


@dataclass(frozen=True)
class DailyRun:
    """What the daily job hands each plugin's step, after the check of ``as_of`` was committed: every
    selected pack's evaluator (``treaties``, in the settings' order), so that a step covers each pack."""

    url: str
    settings: Settings
    treaties: Treaties
    as_of: date

    @property
    def evaluator(self) -> Evaluator:
        """The first selected pack's evaluator (the only one, by default)."""
        return self.treaties.primary


@dataclass(frozen=True)
class Plugin:
    """One plugin's hooks; ``None`` where it has none."""

    name: str
    cli: Callable[[Typer], None] | None = None
    daily: Callable[[DailyRun], StepResult] | None = None
    periodic: Callable[[Settings], StepResult] | None = None
    web: Callable[[FastAPI, Any], None] | None = None
    dashboard: Callable[[Any], dict[str, Any]] | None = None
    defaults: Callable[[], dict[str, Any]] | None = None


class PluginError(TypeError):
    """An entry point of the group that does not name a Plugin."""


@lru_cache(maxsize=1)
def load_plugins() -> tuple[Plugin, ...]:
    """The installed plugins, sorted by name (loaded once per process).

    Raises PluginError when an entry point of the group names something else than a Plugin.
    """
    found = []
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        plugin = point.load()
        if not isinstance(plugin, Plugin):
            raise PluginError(f"the entry point {point.name} = {point.value!r} of the group {ENTRY_POINT_GROUP} "
                              f"names a {type(plugin).__name__}, not an engine.runtime.plugins.Plugin")
        found.append(plugin)
    return tuple(found)
