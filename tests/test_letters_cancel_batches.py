"""`ccm letters cancel --treaty` (like the other letters commands) and `ccm letters batches` at 80 columns with
the Treaty column: every header stays whole and readable. Real SQLite file and PostgreSQL schema (db_url)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import sqlalchemy as sa
from typer.testing import CliRunner

from engine.cli.main import app
from engine.registry.shared import reset
from engine.store import database as store
from engine.store.mailing import BatchRow, LetterRow

HEADERS = ("Batch", "Treaty", "As of", "Planned", "Items", "States", "Status", "Approved by", "Approved at")


def ccm(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False, env=env)
    return result.exit_code, result.output


def _batches_and_letters(url: str) -> dict[str, int]:
    """One approved batch per pack, each with one queued note to Iraq (as `letters approve` leaves them)."""
    store.upgrade(url)
    now = datetime(2025, 5, 1, 9, 30, tzinfo=UTC)
    letters = {}
    with store.writer_session(url) as session, session.begin():
        for pack in ("ccm", "apmbc"):
            batch = BatchRow(pack=pack, as_of=date(2025, 5, 1), created_at=now, status="approved",
                             approved_by="Jane Coordinator, Transparency", approved_at=now)
            session.add(batch)
            session.flush()
            letter = LetterRow(key=f"IRQ|note|batch-{batch.id}", party="IRQ", batch_id=batch.id, status="queued",
                               language="en", subject="s", message="m", message_id=f"<m{batch.id}@x>",
                               reference=f"{pack.upper()}/ISU/2025/IRQ/{batch.id}", recipients="mission@iraq.example",
                               stage="note", kind="note", obligation_id="", period="", due=date(2025, 4, 30),
                               as_of=date(2025, 5, 1), attempts=0, created_at=now)
            session.add(letter)
            session.flush()
            letters[pack] = letter.id
    return letters


def test_cancel_takes_treaty_and_refuses_another_packs_letter(db_url, monkeypatch):
    monkeypatch.setenv("CCM_PACK", "ccm,apmbc")
    reset()
    letters = _batches_and_letters(db_url)
    code, out = ccm("letters", "cancel", str(letters["apmbc"]), "--treaty", "ccm")
    assert code == 2 and "not a letter of ccm" in out
    code, out = ccm("letters", "cancel", "--party", "IRQ", "--treaty", "apmbc", "--json")
    assert code == 0 and len(json.loads(out)["cancelled"]) == 1, out
    with store.reader_session(db_url) as session:
        statuses = dict(session.execute(sa.select(LetterRow.id, LetterRow.status)).all())
    assert statuses == {letters["ccm"]: "queued", letters["apmbc"]: "cancelled"}
    code, out = ccm("letters", "cancel", "--party", "IRQ", "--treaty", "nosuch")
    assert code == 2 and "CCM_PACK" in out


def test_batches_at_80_columns_keeps_every_header_whole(db_url, monkeypatch):
    monkeypatch.setenv("CCM_PACK", "ccm,apmbc")
    reset()
    _batches_and_letters(db_url)
    code, out = ccm("letters", "batches", env={"COLUMNS": "80"})
    assert code == 0, out
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    rule = next(n for n, line in enumerate(lines) if line.strip().startswith("─"))
    header_words = " ".join(lines[:rule]).split()
    assert all(word in header_words for h in HEADERS for word in h.split()), "\n".join(lines)
    body = "\n".join(lines[rule + 1:])
    for whole in ("apmbc", "ccm", "2025-05-01", "approved", "09:30"):    # no cell cut short either
        assert whole in body, "\n".join(lines)
    assert "Jane" in body, "\n".join(lines)
