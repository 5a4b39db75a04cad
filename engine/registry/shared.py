"""The process's evaluators: one per pack, backend and record setting, built on the pack's
rulebook and registry read once, and shared by every surface that runs in the process (the CLI's
commands, the API, the scheduler's jobs). Building one reads and checks every rule and registry
file and compiles the durable_rules ruleset, so a second copy costs start-up time and memory for
nothing. Several packs selected (``[engine] pack = [...]``) give one evaluator each, gathered by
:func:`shared_treaties`.
"""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

from engine.backends import Evaluator
from engine.core import packs
from engine.core.rulebook import load_rulebook
from engine.registry.load import load_registry
from engine.registry.treaties import Treaties

_lock = threading.Lock()     # the API builds it from a worker thread on first use
_evaluators: dict[tuple[str, date | None, str], Evaluator] = {}


def _day(receipts_complete_from: Any, name: str) -> date | None:
    """One pack's day: a date (every pack), or the settings' CompleteFrom, which knows each pack's."""
    for_pack = getattr(receipts_complete_from, "for_pack", None)
    return for_pack(name) if for_pack is not None else receipts_complete_from


def shared_evaluator(backend: str, receipts_complete_from: Any = None,
                     pack_names: tuple[str, ...] = packs.DEFAULT) -> Evaluator:
    """The evaluator of the first pack ``[engine] pack`` selects (the only one, by default); built on first use."""
    name = packs.single(tuple(pack_names)).name
    return _pack_evaluator(backend, _day(receipts_complete_from, name), name)


def shared_treaties(backend: str, receipts_complete_from: Any = None,
                    pack_names: tuple[str, ...] = packs.DEFAULT) -> Treaties:
    """One evaluator per selected pack, in the order ``[engine] pack`` names them."""
    selected = packs.select(tuple(pack_names))
    return Treaties(tuple(_pack_evaluator(backend, _day(receipts_complete_from, p.name), p.name) for p in selected))


def _pack_evaluator(backend: str, receipts_complete_from: date | None, name: str) -> Evaluator:
    key = (backend, receipts_complete_from, name)
    found = _evaluators.get(key)
    if found is not None:
        return found
    with _lock:
        if key not in _evaluators:
            # another backend's evaluator of the same pack: the same files, read once
            same = next((ev for k, ev in _evaluators.items() if k[2] == name), None)
            if same:
                rulebook, registry = same.rulebook, same.registry
            else:
                pack = packs.find(name)
                rulebook = load_rulebook(pack.directory)
                registry = load_registry(pack.registry, rulebook)
            _evaluators[key] = Evaluator(rulebook, registry, backend, receipts_complete_from=receipts_complete_from)
        return _evaluators[key]


def reset() -> None:
    """Forget the evaluators (a command run with another --config reads the files again)."""
    with _lock:
        _evaluators.clear()
