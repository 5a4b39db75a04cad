"""Faults: a check killed half-way leaves the previous state; two checks at once leave one result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date

import sqlalchemy as sa

from engine.check.run import run_check
from engine.record.events import NewEvent, record
from engine.store import database as store


def _state(url: str):
    with store.reader_session(url) as session:
        obligations = sorted(tuple(r) for r in session.execute(sa.select(
            store.ObligationRow.party, store.ObligationRow.obligation_id, store.ObligationRow.period,
            store.ObligationRow.due, store.ObligationRow.status, store.ObligationRow.status_reason,
            store.ObligationRow.check_run_id)))
        changes = sorted(tuple(r) for r in session.execute(sa.select(
            store.ChangeRow.check_run_id, store.ChangeRow.party, store.ChangeRow.obligation_id,
            store.ChangeRow.period, store.ChangeRow.field)))
        runs = [tuple(r) for r in session.execute(sa.select(store.CheckRunRow.id, store.CheckRunRow.as_of))]
    return obligations, changes, runs


PAUSED = "half way: wrote "


def _paused_check(seconds: float, *args: str, **popen) -> subprocess.Popen:
    """``ccm check ARGS`` in a child process, with a callback injected into run_check: half-way
    through the parties, its rows partly written inside the open transaction, it says so on
    stderr and sleeps (the test kills it, or starts a second check, then)."""
    code = ("import functools, sys, time\n"
            "from engine.check import run\n"
            "def pause(written):\n"
            f"    print(f'{PAUSED}{{written}} rows, pausing', file=sys.stderr, flush=True)\n"
            f"    time.sleep({seconds})\n"
            "run.run_check = functools.partial(run.run_check, half_way=pause)\n"
            "from engine.cli.main import app\n"
            "app()\n")
    return subprocess.Popen([sys.executable, "-c", code, "check", *args], env=dict(os.environ), **popen)


def _wait_for_pause(process: subprocess.Popen, timeout: float = 60) -> str:
    """Read the child's stderr until the test hook says it paused inside the transaction."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if PAUSED in line:
            return line
    raise AssertionError(f"the check never paused; it said: {''.join(seen)!r} (exit {process.poll()})")


def test_killing_a_check_half_way_through_its_writes_leaves_the_previous_check_intact(db_url, record_evaluator):
    store.upgrade(db_url)
    run_check(db_url, record_evaluator, date(2012, 1, 1))
    record(db_url, record_evaluator, NewEvent(party="LBN", kind="report:initial", on=date(2011, 12, 1)))
    before = _state(db_url)
    child = _paused_check(60, "--as-of", "2013-06-01", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        said = _wait_for_pause(child)
        assert int(said.split(PAUSED)[1].split()[0]) > 0
        assert _state(db_url) == before            # other readers see only committed state
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    assert _state(db_url) == before
    # and the database is usable: the next check completes and records the receipt
    result = run_check(db_url, record_evaluator, date(2013, 6, 1))
    assert any(c.party == "LBN" and c.new == "fulfilled_late" for c in result.changes)
    assert len(_state(db_url)[2]) == len(before[2]) + 1


def test_two_checks_at_once_on_postgresql_leave_one_consistent_result(postgres_url, ccm_process, record_evaluator, expected_obligations):
    ccm_subprocess = ccm_process
    store.upgrade(postgres_url)
    first = _paused_check(3, "--as-of", "2025-06-01", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_pause(first)     # the first check holds the lock, its rows half written
        second = ccm_subprocess("check", "--as-of", "2025-06-01", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        _out, err = second.communicate(timeout=120)
        first.wait(timeout=120)
    finally:
        for child in (first,):
            if child.poll() is None:
                child.kill()
    assert (first.returncode, second.returncode) == (1, 1), err
    obligations, changes, runs = _state(postgres_url)
    expected = expected_obligations(record_evaluator, date(2025, 6, 1))
    assert len(runs) == 2 and len(obligations) == expected
    assert len({o[:3] for o in obligations}) == len(obligations)
    per_run = {run_id: sum(1 for c in changes if c[0] == run_id) for run_id, _ in runs}
    assert sorted(per_run.values()) == [0, expected], per_run    # one check stored everything; the other found no change


def test_two_checks_at_once_on_sqlite_are_serialised_too(tmp_path, monkeypatch, ccm_process, record_evaluator, expected_obligations):
    ccm_subprocess = ccm_process
    url = f"sqlite:///{tmp_path / 'ccm.sqlite'}"
    monkeypatch.setenv("CCM_DATABASE_URL", url)
    monkeypatch.setenv("CCM_OUTPUT_FOLDER", str(tmp_path / "digests"))
    try:
        store.upgrade(url)
        first = _paused_check(2, "--as-of", "2025-06-01", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _wait_for_pause(first)
        second = ccm_subprocess("check", "--as-of", "2025-06-01", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _out, err = second.communicate(timeout=120)
        first.wait(timeout=120)
        assert (first.returncode, second.returncode) == (1, 1), err
        obligations, changes, runs = _state(url)
        expected = expected_obligations(record_evaluator, date(2025, 6, 1))
        assert len(runs) == 2 and len(obligations) == expected and len(changes) == expected
    finally:
        store.dispose_engines()
