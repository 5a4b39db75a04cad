"""The inference backends and the choice between them: ``Evaluator(rulebook, registry, "durable" | "reference")``."""

from __future__ import annotations

from datetime import date

from engine.backends import reference
from engine.core import evaluate
from engine.core.model import Registry
from engine.core.rulebook import Rulebook

BACKENDS = ("durable", "reference")


def inference(rulebook: Rulebook, backend: str) -> evaluate.Runner:
    """The named backend bound to ``rulebook``, as a runner ``run(facts, finish)``: it infers from the
    facts, then calls ``finish(derived, judge)`` with its reading of the declared status conditions;
    ValueError for a name not in BACKENDS."""
    if backend == "reference":
        return lambda facts, finish: finish(reference.infer(rulebook, facts), evaluate.reference_judge)
    if backend == "durable":
        # lazy: durable_rules (a C extension and its ruleset compilation) loads only when chosen
        from engine.backends import durable
        return durable.backend(rulebook).evaluate
    raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")


class Evaluator(evaluate.Evaluator):
    """:class:`engine.core.evaluate.Evaluator` with its backend chosen by name (``durable`` or ``reference``)."""

    def __init__(self, rulebook: Rulebook, registry: Registry, backend: str = "durable",
                 receipts_complete_from: date | None = None):
        super().__init__(rulebook, registry, backend, inference(rulebook, backend), receipts_complete_from)
