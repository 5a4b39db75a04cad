"""The whole calendar as a reviewable file: every obligation, date and status the embedded
registry produces on a few fixed days, one CSV per day under ``tests/snapshots/calendar/``.

A change to a rule, to the registry or to the engine that moves any date or status anywhere
shows as a diff of these files in the change that made it (as python-holidays commits the
holidays it computes). ``tests/test_calendar_snapshot.py`` compares them on both backends.

    python -m engine.registry.calendar_snapshot            # compare; exit status 1 if any differs
    python -m engine.registry.calendar_snapshot --update   # rewrite them after a reviewed change

The record's settings are the shipped defaults (no recorded events, ``receipts_complete_from``
unset), so the files say what ``ccm deadlines PARTY --as-of DAY --json`` says for every party.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from datetime import date
from pathlib import Path

from engine.backends import Evaluator
from engine.core.rulebook import load_rulebook
from engine.registry.load import load_registry

#: Before the first Review Conference, at the first clearance deadlines, and after the projected meetings begin.
DAYS = (date(2015, 1, 1), date(2020, 6, 30), date(2026, 11, 30))
COLUMNS = ("party", "obligation", "period", "due", "status", "original_due", "estimated")


def snapshot_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "tests" / "snapshots" / "calendar"


def render(evaluator, day: date) -> str:
    """The CSV of every participant's obligations as of ``day``, sorted."""
    rows = []
    for iso3, evaluation, error in evaluator.each(day):
        if error is not None:   # the snapshot must not hide a party the engine cannot evaluate
            raise ValueError(f"{iso3} cannot be evaluated as of {day.isoformat()}: {error}")
        for o in evaluation.obligations:
            rows.append((iso3, o.id, o.period or "", o.due.isoformat(), o.status, o.original_due.isoformat(),
                         "yes" if o.estimated else ""))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(sorted(rows))
    return out.getvalue()


def render_all(backend: str = "reference", registry=None) -> dict[str, str]:
    """{file name: content} for every day in :data:`DAYS`."""
    evaluator = Evaluator(load_rulebook(), registry or load_registry(), backend)
    return {f"{day.isoformat()}.csv": render(evaluator, day) for day in DAYS}


def main(update: bool = False, folder: Path | None = None) -> list[str]:
    """Compare with (or rewrite) the snapshot folder; returns the names that differ (or were written)."""
    folder = folder or snapshot_dir()
    rendered = render_all()
    changed = []
    for name, content in sorted(rendered.items()):
        path = folder / name
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            changed.append(name)
            if update:
                folder.mkdir(parents=True, exist_ok=True)
                path.write_text(content, encoding="utf-8")
    stale = sorted({p.name for p in folder.glob("*.csv")} - set(rendered)) if folder.exists() else []
    for name in stale:
        changed.append(name)
        if update:
            (folder / name).unlink()
    for name in changed:
        print(("updated " if update else "differs ") + name)
    print(f"{len(rendered)} calendar snapshots, {len(changed)} {'updated' if update else 'differing'}.")
    return changed


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="rewrite the snapshots")
    arguments = parser.parse_args()
    sys.exit(1 if main(update=arguments.update) and not arguments.update else 0)
