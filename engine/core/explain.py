"""An obligation's explanation: the facts with their sources, the rules with their articles and quotations, the arithmetic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.core.dates import fmt
from engine.core.evaluate import Obligation, PartyEvaluation
from engine.core.rulebook import Rulebook


@dataclass(frozen=True)
class Explanation:
    obligation: Obligation
    party: str
    as_of: str
    rulebook_hash: str
    facts: tuple[dict[str, Any], ...]
    rules: tuple[dict[str, Any], ...]
    steps: tuple[str, ...]
    status_reason: str

    def to_json(self) -> dict[str, Any]:
        return {"party": self.party, "as_of": self.as_of, "rulebook": self.rulebook_hash,
                "obligation": self.obligation.to_json(), "facts": list(self.facts), "rules": list(self.rules),
                "arithmetic": list(self.steps), "status_reason": self.status_reason}

    def to_text(self) -> str:
        o = self.obligation
        lines = [f"{o.id}" + (f" ({o.period})" if o.period else "") + f" for {self.party}, as of {self.as_of}",
                 f"  due {fmt(o.due)}" + (f" (originally {fmt(o.original_due)})" if o.due != o.original_due else "")
                 + f"; status {o.status}", "", "Facts:"]
        for fact in self.facts:
            lines.append(f"  - {fact['label']}")
            for href in fact["sources"]:
                lines.append(f"      source: {href}")
        lines += ["", "Rules:"]
        for rule in self.rules:
            lines.append(f"  - {rule['id']}, Art. {rule['article']} ({rule['file']}): \"{rule['quote']}\"")
            if rule["reading"]:
                lines.append(f"      reading: {' '.join(rule['reading'].split())}")
            for item in rule["not_modelled"]:
                lines.append(f"      not modelled: {item}")
        lines += ["", "Arithmetic:"] + [f"  {i}. {step}" for i, step in enumerate(self.steps, start=1)]
        lines += ["", f"Status: {o.status}: {self.status_reason}", f"Rulebook: {self.rulebook_hash}"]
        return "\n".join(lines)


def explain(evaluation: PartyEvaluation, rulebook: Rulebook, obligation: Obligation) -> Explanation:
    facts = tuple(
        {"id": fid, "label": evaluation.facts[fid].get("label", fid), "sources": list(evaluation.facts[fid].get("sources", []))}
        for fid in obligation.inputs if fid in evaluation.facts
    )
    rules = tuple(
        {"id": r.id, "article": r.article, "quote": r.quote, "file": r.file, "reading": r.reading,
         "not_modelled": list(r.not_modelled), "sources": [{"title": s.title, "href": s.href} for s in r.sources]}
        for r in (rulebook.rule(rid) for rid in obligation.basis)
    )
    return Explanation(obligation=obligation, party=f"{evaluation.participant.name} ({evaluation.participant.iso3})",
                       as_of=evaluation.as_of.isoformat(), rulebook_hash=evaluation.rulebook_hash, facts=facts,
                       rules=rules, steps=obligation.steps, status_reason=obligation.status_reason)
