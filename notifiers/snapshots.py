"""Golden snapshots of the consolidated notes in every language, for real cases of the registry.

``python -m notifiers.snapshots --update`` (or ``ccm letters snapshots --update``) rewrites
tests/snapshots/letters/; without ``--update`` it lists the files that differ. A change to a
template, a rule's quotation, a UN name or a date therefore shows as a diff of words.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

from engine.backends import Evaluator
from engine.core.facts import RecordedEvent
from engine.core.rulebook import load_rulebook
from engine.registry.load import load_registry
from notifiers import letters
from notifiers.config import Signer, defaults
from notifiers.notes import SentItem, consolidate
from notifiers.planner import Policy, dues_from_evaluation, plan

LANGUAGES = ("en", "fr", "es", "zh")


@dataclass(frozen=True)
class Case:
    """One note: the party, the items (obligation, period, stage) or all it has outstanding, the note's date,
    and the notes sent before (obligation, period, reference, sent on)."""

    name: str
    party: str
    as_of: date | None                                   # planning date (None: the stage's own date)
    items: tuple[tuple[str, str, str], ...] = ()         # empty: everything the planner plans as of as_of
    dated: date | None = None                            # the note's date (default: as_of)
    sent: tuple[tuple[str, str, str, date], ...] = ()
    note: str = ""


AR, IR, RR = "ccm.art7.annual_report", "ccm.art7.initial_report", "ccm.art3.retention_report"
CASES = (
    Case("initial-report-courtesy-SSD", "SSD", date(2024, 6, 30), ((IR, "", "courtesy"),)),
    Case("initial-report-overdue-SSD", "SSD", date(2024, 7, 31), ((IR, "", "reminder1"),)),
    Case("first-letter-NGA-reminder3", "NGA", date(2024, 4, 27), ((IR, "", "reminder3"),),
         note="the third reminder stage, but nothing was ever sent: a first reminder, no 'earlier correspondence'"),
    Case("annual-report-courtesy-LBN-2024", "LBN", date(2025, 3, 31), ((AR, "2024", "courtesy"),)),
    Case("annual-report-late-LBN-2024", "LBN", date(2025, 5, 1), ((AR, "2024", "reminder1"),)),
    Case("annual-report-further-LBN-2024", "LBN", date(2025, 5, 30), ((AR, "2024", "reminder2"),),
         sent=((AR, "2024", "CCM/ISU/2025/LBN/1A2B3C", date(2025, 5, 1)),)),
    Case("past-forthcoming-LBN-2024", "LBN", date(2025, 3, 31), ((AR, "2024", "courtesy"),), dated=date(2025, 5, 6),
         note="a courtesy notice planned for 31 March, sent after the due date: no 'forthcoming deadline'"),
    Case("retention-report-late-DEU-2024", "DEU", date(2025, 5, 1), ((RR, "2024", "reminder1"),)),
    Case("extension-request-advance-TCD-3RC", "TCD", date(2025, 8, 16), (("ccm.art4.extension_request", "3RC", "advance120"),)),
    Case("extension-request-estimated-IRQ-15MSP", "IRQ", date(2027, 8, 3),
         (("ccm.art4.extension_request", "15MSP", "advance120"),),
         note="the Fifteenth Meeting is projected: the engine marks the request's date estimated, and the note says so"),
    Case("deadline-extended-LAO-art4", "LAO", date(2024, 8, 1), (("ccm.art4.clearance", "", "advance365"),)),
    Case("deadline-PER-art3", "PER", date(2023, 10, 4), (("ccm.art3.stockpile_destruction", "", "advance180"),)),
    Case("clarification-late-LBN", "LBN", None, (("ccm.art8.clarification_response", "", "reminder1"),)),
    Case("consolidated-LBN", "LBN", date(2026, 5, 1), dated=date(2026, 5, 1),
         sent=((AR, "2024", "CCM/ISU/2025/LBN/1A2B3C", date(2025, 5, 1)),),
         note="every outstanding report in one note; one of them was reminded before"),
    Case("annual-reports-PSE", "PSE", date(2026, 5, 1), ((IR, "", "reminder3"), (AR, "2024", "reminder1"),
                                                          (AR, "2025", "reminder1"))),
    Case("annual-reports-VAT", "VAT", date(2026, 5, 1), ((AR, "2025", "reminder1"),)),
    Case("annual-reports-COG", "COG", date(2026, 5, 1), ((AR, "2024", "reminder1"), (AR, "2025", "reminder1"))),
    Case("annual-reports-LAO", "LAO", date(2026, 5, 1), ((AR, "2025", "reminder1"),)),
    Case("annual-reports-MDA", "MDA", date(2026, 5, 1), ((AR, "2025", "reminder1"),)),
)
#: The clarification case needs a recorded request (none is in the registry): received on this date.
CLARIFICATION_REQUEST = date(2025, 3, 3)
#: The cases are evaluated as by an ISU whose record of receipts is complete from this day (with none recorded
#: for these reports): a report due with no receipt is then overdue, not unknown.
RECEIPTS_COMPLETE_FROM = date(2011, 1, 1)


def snapshot_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "tests" / "snapshots" / "letters"


def case_note(case: Case, evaluator, policy):
    """The notifiers.notes.Note of a case."""
    recorded = []
    if any(o == "ccm.art8.clarification_response" for o, _, _ in case.items):
        recorded = [RecordedEvent(kind="clarification_request", party=case.party, on=CLARIFICATION_REQUEST,
                                  period="REQ-2025-1", id="REQ-2025-1", label="request for clarification")]
    evaluation = evaluator.evaluate(case.party, case.as_of or date(2025, 6, 1), recorded)
    dues = dues_from_evaluation(evaluation)
    if not case.items:
        if case.as_of is None:
            raise ValueError(f"snapshot case {case.name}: a case without items needs the date to plan as of")
        planned = plan(dues, [], policy, case.as_of)
    else:
        planned = []
        for obligation_id, period, stage_name in case.items:
            found = [d for d in dues if d.obligation_id == obligation_id
                     and (d.period == period or obligation_id == "ccm.art8.clarification_response")]
            if not found:
                raise LookupError(f"snapshot case {case.name}: {case.party} has no {obligation_id} {period}")
            due = found[0]
            stage = next(s for s in policy.kind_of(obligation_id).stages if s.name == stage_name)
            day = due.due + timedelta(days=stage.days)     # planned on the stage's own date
            chosen = [p for p in plan([replace(due, status="pending" if stage.days <= 0 else "overdue")], [], policy, day)
                      if p.stage_name == stage_name]
            if not chosen:
                raise LookupError(f"snapshot case {case.name}: stage {stage_name} is not the one due on {day}")
            planned.append(chosen[0])
    dated = case.dated or case.as_of or planned[0].stage_date
    sent = [SentItem(case.party, o, p, next(d.due for d in dues if d.obligation_id == o and d.period == p), ref, on)
            for o, p, ref, on in case.sent]
    return consolidate(planned, sent, dated)[0]


def render_all() -> dict[str, str]:
    """{relative file name: content} for every case, language and format."""
    evaluator = Evaluator(load_rulebook(), load_registry(), "reference", receipts_complete_from=RECEIPTS_COMPLETE_FROM)
    letters_table = defaults()["letters"]
    policy = Policy.from_toml(letters_table)
    signer = Signer(**{part: dict(letters_table["signers"]["isu"][part]) for part in ("sender", "short", "signature")})
    out: dict[str, str] = {}
    for case in CASES:
        note = case_note(case, evaluator, policy)
        for language in LANGUAGES:
            rendered = letters.render_note(note, evaluator.registry, evaluator.rulebook, language, signer,
                                           letters_table["reference_prefix"], key=f"{case.party}|note|{case.name}")
            out[f"{case.name}.{language}.txt"] = f"Subject: {rendered.subject}\n\n{rendered.text}"
            out[f"{case.name}.{language}.html"] = rendered.html
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
    arguments = parser.parse_args()
    sys.exit(1 if main(update=arguments.update) and not arguments.update else 0)
