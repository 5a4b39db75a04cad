"""The process's evaluator: one per backend and record setting, built on the rulebook and the
registry read once, and shared by every surface that runs in the process (the CLI's commands,
the API, the scheduler's jobs). Building one reads and checks every rule and registry file and
compiles the durable_rules ruleset, so a second copy costs start-up time and memory for nothing.
"""

from __future__ import annotations

import threading
from datetime import date

from engine.core import packs
from engine.core.evaluate import Evaluator

_lock = threading.Lock()     # the API builds it from a worker thread on first use
_evaluators: dict[tuple[str, date | None, tuple[str, ...]], Evaluator] = {}


def shared_evaluator(backend: str, receipts_complete_from: date | None = None,
                     pack_names: tuple[str, ...] = packs.DEFAULT) -> Evaluator:
    """The evaluator for this backend, ``[record] receipts_complete_from`` and ``[engine] pack``; built on first use."""
    key = (backend, receipts_complete_from, tuple(pack_names))
    found = _evaluators.get(key)
    if found is not None:
        return found
    with _lock:
        if key not in _evaluators:
            from engine.core.rulebook import load_rulebook
            from engine.registry.load import load_registry

            # another backend's evaluator of the same packs: the same files, read once
            same = next((ev for k, ev in _evaluators.items() if k[2] == key[2]), None)
            if same:
                rulebook, registry = same.rulebook, same.registry
            else:
                pack = packs.single(key[2])
                rulebook = load_rulebook(pack.directory)
                registry = load_registry(pack.registry, rulebook)
            _evaluators[key] = Evaluator(rulebook, registry, backend, receipts_complete_from=receipts_complete_from)
        return _evaluators[key]


def reset() -> None:
    """Forget the evaluators (a command run with another --config reads the files again)."""
    with _lock:
        _evaluators.clear()
