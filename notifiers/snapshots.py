"""Golden snapshots of the consolidated notes in every language, for real cases of each pack's registry.

``python -m notifiers.snapshots --update`` (or ``ccm letters snapshots --update``) rewrites
tests/snapshots/letters/; without ``--update`` it lists the files that differ. A change to a
template, a rule's quotation, a UN name or a date therefore shows as a diff of words. Each case
is one treaty's note (its pack: its items' obligation ids), rendered with that pack's rules,
registry and wording, and signed as the defaults' ``[letters.packs.<pack>]`` says.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

from engine.backends import Evaluator
from engine.core import packs
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

    @property
    def pack(self) -> str:
        """The rule pack the note is written under: its items' (a case planning everything: the default pack's)."""
        return packs.pack_of(self.items[0][0]) if self.items else packs.DEFAULT[0]


AR, IR, RR = "ccm.art7.annual_report", "ccm.art7.initial_report", "ccm.art3.retention_report"
APMBC_AR, APMBC_IR = "apmbc.art7.annual_report", "apmbc.art7.initial_report"
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
    # The Mine Ban Convention's notes: its Art. 7 reports, its Art. 4 and Art. 5 deadlines and the Art. 5
    # request (timed by the 7MSP's decision), worded from rules/apmbc/wording.toml.
    Case("apmbc-initial-report-overdue-PSE", "PSE", None, ((APMBC_IR, "", "reminder1"),),
         note="the State of Palestine's initial report, 180 days after entry into force, a day late"),
    Case("apmbc-annual-report-courtesy-IRQ-2025", "IRQ", date(2026, 3, 31), ((APMBC_AR, "2025", "courtesy"),),
         note="a State party to both treaties: this note is the Mine Ban Convention's only"),
    Case("apmbc-annual-report-further-IRQ-2025", "IRQ", date(2026, 5, 30), ((APMBC_AR, "2025", "reminder2"),),
         sent=((APMBC_AR, "2025", "APMBC/ISU/2026/IRQ/4D5E6F", date(2026, 5, 1)),),
         note="it follows the Mine Ban Convention's earlier note, by its reference and date"),
    Case("apmbc-clearance-and-request-KHM-22MSP", "KHM", date(2024, 11, 1),
         (("apmbc.art5.extension_request", "22MSP", "advance120"), ("apmbc.art5.clearance", "", "advance365")),
         note="Cambodia's extended clearance deadline and its request, nine months before the 22MSP"),
    Case("apmbc-stockpile-BLR", "BLR", date(2007, 3, 1), (("apmbc.art4.stockpile_destruction", "", "advance365"),),
         note="an Art. 4 deadline the Convention lets no meeting extend: the note says nothing of a request"),
    Case("apmbc-initial-report-overdue-MHL", "MHL", date(2026, 3, 1), ((APMBC_IR, "", "reminder1"),),
         note="a State party to the Mine Ban Convention alone, named as the UN names it: 'the Marshall Islands'"),
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


def _evaluator(pack: str) -> Evaluator:
    folder = packs.find(pack).directory
    return Evaluator(load_rulebook(folder), load_registry(folder / packs.REGISTRY), "reference",
                     receipts_complete_from=RECEIPTS_COMPLETE_FROM)


def render_all(pack: str | None = None) -> dict[str, str]:
    """{relative file name: content} for every case (of ``pack`` only, when given), language and format."""
    letters_table = defaults()["letters"]
    policy = Policy.from_toml(letters_table)
    evaluators: dict[str, Evaluator] = {}
    out: dict[str, str] = {}
    for case in CASES:
        if pack is not None and case.pack != pack:
            continue
        evaluator = evaluators.get(case.pack) or evaluators.setdefault(case.pack, _evaluator(case.pack))
        own = letters_table.get("packs", {}).get(case.pack, {})      # the pack's signer and prefix, as a mailing has them
        signer = Signer(**{part: dict(letters_table["signers"][own.get("signer", "isu")][part])
                           for part in ("sender", "short", "signature")})
        note = case_note(case, evaluator, policy)
        for language in LANGUAGES:
            rendered = letters.render_note(note, evaluator.registry, evaluator.rulebook, language, signer,
                                           own.get("reference_prefix", letters_table["reference_prefix"]),
                                           key=f"{case.party}|note|{case.name}")
            out[f"{case.name}.{language}.txt"] = f"Subject: {rendered.subject}\n\n{rendered.text}"
            out[f"{case.name}.{language}.html"] = rendered.html
    return out


def main(update: bool = False, folder: Path | None = None, pack: str | None = None) -> list[str]:
    """Compare with (or rewrite) the snapshot folder (only ``pack``'s cases when given); returns the names that
    differ (or were written)."""
    folder = folder or snapshot_dir()
    rendered = render_all(pack)
    changed = []
    ours = {f"{c.name}." for c in CASES if pack is None or c.pack == pack}
    existing = ({p.name for p in folder.glob("*") if pack is None or p.name.startswith(tuple(ours))}
                if folder.exists() else set())
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
    parser.add_argument("--treaty", help="only this rule pack's cases")
    arguments = parser.parse_args()
    sys.exit(1 if main(update=arguments.update, pack=arguments.treaty) and not arguments.update else 0)
