"""Golden snapshots of every letter template in every language, for real cases of the registry.

``python -m notifiers.snapshots --update`` (or ``ccm letters snapshots --update``) rewrites
tests/snapshots/letters/; without ``--update`` it lists the files that differ. A change to a
template, a rule's quotation or a date therefore shows as a diff of words.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

from engine.planner import KindPolicy, Stage, dues_from_evaluation, plan

LANGUAGES = ("en", "fr", "es", "zh")

#: (case name, party, obligation id, period, stage name, as_of): real parties and dates of the registry.
CASES = (
    ("initial-report-courtesy-SSD", "SSD", "ccm.art7.initial_report", "", "courtesy", date(2024, 6, 30)),
    ("initial-report-overdue-SSD", "SSD", "ccm.art7.initial_report", "", "reminder1", date(2024, 7, 31)),
    ("initial-report-further-NGA", "NGA", "ccm.art7.initial_report", "", "reminder3", date(2024, 4, 27)),
    ("annual-report-courtesy-LBN-2024", "LBN", "ccm.art7.annual_report", "2024", "courtesy", date(2025, 3, 31)),
    ("annual-report-late-LBN-2024", "LBN", "ccm.art7.annual_report", "2024", "reminder1", date(2025, 5, 1)),
    ("annual-report-further-LBN-2024", "LBN", "ccm.art7.annual_report", "2024", "reminder2", date(2025, 5, 30)),
    ("retention-report-late-DEU-2024", "DEU", "ccm.art3.retention_report", "2024", "reminder1", date(2025, 5, 1)),
    ("extension-request-advance-TCD-3RC", "TCD", "ccm.art4.extension_request", "3RC", "advance120", date(2025, 8, 16)),
    ("extension-request-late-AFG-13MSP", "AFG", "ccm.art4.extension_request", "13MSP", "reminder1", date(2024, 12, 17)),
    ("deadline-extended-LAO-art4", "LAO", "ccm.art4.clearance", "", "advance365", date(2024, 8, 1)),
    ("deadline-PER-art3", "PER", "ccm.art3.stockpile_destruction", "", "advance180", date(2023, 10, 4)),
    ("clarification-late-LBN", "LBN", "ccm.art8.clarification_response", "", "reminder1", None),
)
#: The clarification case needs a recorded request (none is in the registry): received on this date.
CLARIFICATION_REQUEST = date(2025, 3, 3)


def snapshot_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "tests" / "snapshots" / "letters"


def render_all() -> dict[str, str]:
    """{relative file name: content} for every case, language and format."""
    from engine.evaluate import Evaluator
    from engine.facts import RecordedEvent
    from engine.registry import load_registry
    from engine.rulebook import load_rulebook
    from engine import letters
    from notifiers.config import defaults
    from engine.planner import Policy

    evaluator = Evaluator(load_rulebook(), load_registry(), "reference")
    letters_table = defaults()["letters"]
    policy = Policy.from_toml(letters_table)
    from notifiers.config import Signer

    signer = Signer(**{part: dict(letters_table["signers"]["isu"][part]) for part in ("sender", "short", "signature")})
    out: dict[str, str] = {}
    for name, party, obligation_id, period, stage_name, as_of in CASES:
        recorded = []
        if obligation_id == "ccm.art8.clarification_response":
            recorded = [RecordedEvent(kind="clarification_request", party=party, on=CLARIFICATION_REQUEST,
                                      period="REQ-2025-1", id="REQ-2025-1", label="request for clarification")]
        day = as_of
        evaluation = evaluator.evaluate(party, day or date(2025, 6, 1), recorded)
        dues = [d for d in dues_from_evaluation(evaluation) if d.obligation_id == obligation_id
                and (d.period == period or obligation_id == "ccm.art8.clarification_response")]
        if not dues:
            raise LookupError(f"snapshot case {name}: {party} has no {obligation_id} {period}")
        due = dues[0]
        kind = policy.kind_of(obligation_id)
        stage = next(s for s in kind.stages if s.name == stage_name)
        day = day or (due.due + __import__("datetime").timedelta(days=stage.days))
        found = [p for p in plan([replace(due, status="pending" if stage.days <= 0 else "overdue")], [], policy, day)
                 if p.stage_name == stage_name]
        if not found:
            raise LookupError(f"snapshot case {name}: stage {stage_name} is not the one due on {day}")
        planned = found[0]
        for language in LANGUAGES:
            facts = letters.letter_facts(planned, evaluator.registry, evaluator.rulebook, language)
            rendered = letters.render(planned, facts, language, signer, letters_table["reference_prefix"], day)
            out[f"{name}.{language}.txt"] = f"Subject: {rendered.subject}\n\n{rendered.text}"
            out[f"{name}.{language}.html"] = rendered.html
    return out


def main(update: bool = False, folder: Path | None = None) -> list[str]:
    """Compare with (or rewrite) the snapshot folder; returns the names that differ (or were written)."""
    folder = folder or snapshot_dir()
    rendered = render_all()
    changed = []
    existing = {p.name for p in folder.glob("*")} if folder.exists() else set()
    for name, content in sorted(rendered.items()):
        path = folder / name
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            changed.append(name)
            if update:
                folder.mkdir(parents=True, exist_ok=True)
                path.write_text(content, encoding="utf-8")
    stale = sorted(existing - set(rendered))
    for name in stale:
        changed.append(name)
        if update:
            (folder / name).unlink()
    for name in changed:
        print(("updated " if update else "differs ") + name)
    print(f"{len(rendered)} snapshots, {len(changed)} {'updated' if update else 'differing'}.")
    return changed


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="rewrite the snapshots")
    sys.exit(1 if main(update=parser.parse_args().update) and not parser.parse_args().update else 0)
