"""The whole calendar (every obligation, date and status of the embedded registry on fixed days)
is the committed one in tests/snapshots/calendar/, on both backends; a change to the registry
shows there as a diff. Regenerate after a reviewed change:
``python -m engine.registry.calendar_snapshot --update``."""

from __future__ import annotations

import difflib
from dataclasses import replace

import pytest

from engine.registry import calendar_snapshot

UPDATE = "python -m engine.registry.calendar_snapshot --update"


@pytest.mark.parametrize("backend", ["reference", "durable"])
def test_every_date_and_status_is_the_committed_snapshot(backend):
    folder = calendar_snapshot.snapshot_dir()
    rendered = calendar_snapshot.render_all(backend)
    assert sorted(rendered) == sorted(p.name for p in folder.glob("*.csv"))
    for name, content in rendered.items():
        committed = (folder / name).read_text(encoding="utf-8")
        if content != committed:
            diff = "".join(list(difflib.unified_diff(committed.splitlines(True), content.splitlines(True),
                                                     f"committed/{name}", f"{backend}/{name}"))[:60])
            pytest.fail(f"the calendar as of {name[:-4]} moved; review the diff and, if it is right, run "
                        f"`{UPDATE}`:\n{diff}")


def test_a_registry_change_shows_as_a_diff_of_that_party_only(ccm_registry):
    """Dropping Lao PDR's first Art. 4 extension decision moves Lao rows and no other."""
    lao = [d for d in ccm_registry.decisions if d.iso3 == "LAO" and d.article == 4]
    assert lao
    first = min(lao, key=lambda d: d.decided_on)
    changed = replace(ccm_registry, decisions=tuple(d for d in ccm_registry.decisions if d is not first))
    committed = calendar_snapshot.snapshot_dir() / "2026-11-30.csv"
    rendered = calendar_snapshot.render_all("reference", changed)["2026-11-30.csv"]
    moved = [line for line in difflib.ndiff(committed.read_text(encoding="utf-8").splitlines(), rendered.splitlines())
             if line[:1] in "+-"]
    assert moved and all(line[2:].startswith("LAO,") for line in moved)
