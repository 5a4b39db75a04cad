"""Each hazard of durable_rules 2.0.28 reproduced on the raw engine, then shown handled by the adapter.

The raw reproductions use ``durable.engine`` directly with a Host whose polling threads are
disabled, so that every action runs inside the call that triggered it. A reproduction that
can kill the interpreter (the C engine segfaults) runs in a child process.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import date

import pytest
from durable import engine as durable_engine

from engine.backends import Evaluator, reference
from engine.backends import durable as durable_adapter
from engine.backends.durable import (
    DurableBackend,
    HashCollisionError,
    _Session,
    fnv1a32,
)
from engine.core.compute import EvaluationError
from engine.core.rulebook import load_rulebook

AS_OF = date(2026, 11, 28)


class QuietHost(durable_engine.Host):
    """A raw Host without the two polling Timer threads: actions run inside assert_fact/post."""

    def _run(self) -> None:
        return None


def raw_host(ruleset: str, rules: dict) -> QuietHost:
    host = QuietHost()
    host.register_rulesets({ruleset: rules})
    return host


# The C engine frees pointers it never initialised when a session is deleted too early. Whether
# that crashes depends on what the heap held before: it does on Python 3.11, by luck not on 3.12
# or 3.13. glibc's MALLOC_PERTURB_ fills every fresh allocation with one non-zero byte, so the
# stray pointer is garbage, and the crash certain, on every Python version.
PERTURBED_HEAP = {**os.environ, "MALLOC_PERTURB_": "165"}


def run_child(code: str) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter (same venv, same working directory, perturbed heap): it may segfault."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=False, capture_output=True, text=True,
                          timeout=120, env=PERTURBED_HEAP)


LEAP_RULE = '''
[[rule]]
id = "test.leap.ten_years"
article = "1(1)"
quote = "not later than ten years after the event"
produces = "date"
when = ["event"]
anchor = "event"
offset = { years = 10 }
on_leap_day = "error"
sources = [{ title = "test", href = "https://example.org/leap" }]
'''


def event_on(day: date) -> dict:
    return {"k": "event", "id": "event", "date": day.isoformat(), "ord": day.toordinal(), "label": "the event", "sources": []}


@pytest.fixture(scope="module")
def leap_rulebook(tmp_path_factory):
    folder = tmp_path_factory.mktemp("leap_rulebook")
    (folder / "leap.toml").write_text(LEAP_RULE, encoding="utf-8")
    return load_rulebook(folder)


@pytest.fixture(scope="module")
def leap_backend(leap_rulebook):
    return DurableBackend(leap_rulebook)


# --------------------------------------------------------------------------- a. exceptions in actions


def test_raw_durable_rules_swallows_an_exception_raised_in_an_action_into_the_session_state():
    def boom(c):
        raise ValueError("boom in the action")

    host = raw_host("swallow", {"r": {"all": [{"m": {"t": "x"}}], "run": boom}})
    # The call returns normally: nothing tells the caller the action failed...
    host.assert_fact("swallow", {"sid": "1", "id": "a", "t": "x"})
    # ...except the text left in the session state.
    assert "boom in the action" in host.get_state("swallow", "1")["exception"]


def test_the_adapter_raises_an_evaluation_error_naming_the_rule_for_an_ambiguous_29_february(leap_rulebook, leap_backend):
    facts = [event_on(date(2012, 2, 29))]
    with pytest.raises(EvaluationError, match=r"test\.leap\.ten_years"):
        leap_backend.infer(facts)
    # The oracle refuses the same input with the same error class.
    with pytest.raises(EvaluationError, match=r"test\.leap\.ten_years"):
        reference.infer(leap_rulebook, facts)


def test_the_adapter_still_evaluates_normally_after_an_action_failed(leap_backend):
    # A failed session must not poison the next one (its state is deleted, its errors dropped).
    with pytest.raises(EvaluationError):
        leap_backend.infer([event_on(date(2012, 2, 29))])
    derived = leap_backend.infer([event_on(date(2012, 3, 1))])
    assert [(f["k"], f["date"]) for f in derived] == [("test.leap.ten_years", "2022-03-01")]
    assert leap_backend.live_sessions() == 0


# --------------------------------------------------------------------------- b. facts no rule matches


def test_raw_durable_rules_loses_a_fact_asserted_from_an_action_when_no_rule_matches_it():
    raised = []

    def derive(c):
        try:
            c.assert_fact({"id": "d", "t": "orphan"})
        except durable_engine.MessageNotHandledException as error:
            raised.append(error)
            raise

    host = raw_host("orphan", {"r": {"all": [{"m": {"t": "x"}}], "run": derive}})
    host.assert_fact("orphan", {"sid": "1", "id": "a", "t": "x"})  # returns normally
    assert len(raised) == 1  # the engine refused it inside the action...
    assert host.get_facts("orphan", "1") == [{"sid": "1", "id": "a", "t": "x"}]  # ...and it is gone


def test_the_adapter_returns_a_derived_fact_that_no_rule_consumes(leap_rulebook, leap_backend):
    # The leap rulebook has one rule and nothing reads what it derives: raw, that fact is lost.
    derived = leap_backend.infer([event_on(date(2010, 8, 1))])
    assert [(f["k"], f["date"]) for f in derived] == [("test.leap.ten_years", "2020-08-01")]
    assert derived == reference.infer(leap_rulebook, [event_on(date(2010, 8, 1))])


def test_a_registry_party_gets_its_annual_reports_which_no_rule_consumes(ccm_rulebook, ccm_registry):
    consumers = [r.id for r in ccm_rulebook.rules if "ccm.art7.annual_report" in (*r.when, *r.unless)]
    assert consumers == []  # so only the sink keeps these facts alive in durable_rules
    facts = Evaluator(ccm_rulebook, ccm_registry, "durable").facts("PER", AS_OF)
    periods = sorted(f["period"] for f in durable_adapter.backend(ccm_rulebook).infer(facts)
                     if f["k"] == "ccm.art7.annual_report")
    # Peru: entry into force 1 Mar 2013, one update per calendar year 2013..2026.
    assert periods == [str(year) for year in range(2013, 2027)]


# --------------------------------------------------------------------------- c. 32-bit hash collisions

# The adapter names facts "<sid>/<n>". Session s2260 is one whose natural ids collide early
# (picked by an offline search over sessions); the search below finds the pair by itself.
COLLIDING_SID = "s2260"


def birthday_collision(prefix: str, limit: int = 400_000) -> tuple[str, str]:
    seen: dict[int, str] = {}
    for n in range(limit):
        text = f"{prefix}{n}"
        value = fnv1a32(text)
        if value in seen:
            return seen[value], text
        seen[value] = text
    raise AssertionError(f"no FNV-1a collision among {limit} ids {prefix}N")


@pytest.fixture(scope="module")
def colliding_pair() -> tuple[str, str]:
    return birthday_collision(f"{COLLIDING_SID}/")


def test_the_birthday_search_finds_two_distinct_ids_with_one_fnv1a_hash(colliding_pair):
    first, second = colliding_pair
    assert first != second
    assert fnv1a32(first) == fnv1a32(second)


def test_raw_durable_rules_rejects_a_distinct_fact_whose_id_shares_a_hash(colliding_pair):
    first, second = colliding_pair
    host = raw_host("collide", {"r": {"all": [{"m": {"t": "x"}}], "run": lambda c: None}})
    host.assert_fact("collide", {"sid": "1", "id": first, "t": "x"})
    with pytest.raises(durable_engine.MessageObservedException):
        host.assert_fact("collide", {"sid": "1", "id": second, "t": "x"})
    assert [f["id"] for f in host.get_facts("collide", "1")] == [first]


def test_raw_durable_rules_accepts_distinct_ids_whose_hashes_differ(colliding_pair):
    # The control: the rejection above is the hash, not anything else about the second id.
    first, _ = colliding_pair
    other = first + "0"
    assert fnv1a32(other) != fnv1a32(first)
    host = raw_host("control", {"r": {"all": [{"m": {"t": "x"}}], "run": lambda c: None}})
    host.assert_fact("control", {"sid": "1", "id": first, "t": "x"})
    host.assert_fact("control", {"sid": "1", "id": other, "t": "x"})
    assert sorted(f["id"] for f in host.get_facts("control", "1")) == sorted([first, other])


def test_slim_gives_every_fact_of_a_session_an_id_with_a_hash_of_its_own(colliding_pair):
    first, second = colliding_pair
    count = int(second.rsplit("/", 1)[1]) + 1  # enough facts to reach the colliding natural id
    session = _Session(COLLIDING_SID, [])
    facts = [{"k": "x", "id": first}, {"k": "x", "id": second}]
    facts += [{"k": "x", "id": f"f{n}"} for n in range(count - 2)]
    ids = [session.slim(fact)["id"] for fact in facts]
    assert len({fnv1a32(i) for i in ids}) == len(ids) == count
    assert first in ids and second not in ids  # the second natural id had to be salted


def _padding(count: int) -> list[dict]:
    # Facts of a consumed kind that complete no rule (no base deadline for a seq-99 decision):
    # they only push the session's fact counter up to the colliding id.
    return [{"k": "decision:extension:art4", "id": f"pad{n}", "seq": 99, "date": "2020-01-01", "ord": 737425,
             "granted_deadline": "2030-01-01", "label": "padding", "sources": []} for n in range(count)]


def test_an_evaluation_in_the_colliding_session_agrees_with_the_reference(ccm_rulebook, ccm_registry, colliding_pair):
    backend = DurableBackend(ccm_rulebook)
    backend._counter = itertools.count(int(COLLIDING_SID[1:]))  # the next session is s2260
    second = int(colliding_pair[1].rsplit("/", 1)[1])
    facts = _padding(second) + Evaluator(ccm_rulebook, ccm_registry, "reference").facts("PER", AS_OF)
    derived = backend.infer(facts)
    assert sorted(f["id"] for f in derived) == sorted(f["id"] for f in reference.infer(ccm_rulebook, facts))
    assert len(derived) == 20


def _naive_slim(self, fact):
    """slim without the salting: the id the adapter would use if it trusted the hash."""
    key = f"{self.sid}/{len(self.payload)}"
    self.payload[key] = fact
    slim = {"id": key, "sid": self.sid, "k": fact["k"]}
    if "seq" in fact:
        slim["seq"] = fact["seq"]
    return slim


def test_a_duplicate_on_a_derived_fact_surfaces_as_a_hash_collision_error(ccm_rulebook, ccm_registry, colliding_pair,
                                                                         monkeypatch):
    backend = DurableBackend(ccm_rulebook)
    facts = Evaluator(ccm_rulebook, ccm_registry, "reference").facts("PER", AS_OF)
    inputs = sum(1 for f in facts if f["k"] in backend.consumed_kinds) + 1  # + the session marker
    second = int(colliding_pair[1].rsplit("/", 1)[1])
    # Pad so that the colliding natural id falls on the second derived fact, not on an input.
    padded = _padding(second - inputs - 1) + facts
    monkeypatch.setattr(_Session, "slim", _naive_slim)
    backend._counter = itertools.count(int(COLLIDING_SID[1:]))
    with pytest.raises(HashCollisionError, match="derived fact"):
        backend.infer(padded)
    monkeypatch.undo()
    assert backend.live_sessions() == 0
    assert len(backend.infer(facts)) == 20  # the next session is unaffected


RAW_PENDING_DELETE = '''
from durable import engine as de
class Host(de.Host):
    def _run(self):
        pass
host = Host()
host.register_rulesets({"t": {"r": {"all": [{"m": {"k": "x"}}], "run": lambda c: None}}})
ruleset = host.get_ruleset("t")
ruleset.assert_facts([{"id": "1", "sid": "s1", "k": "x"}])   # an action is now pending, not run
ruleset.delete_state("s1")
print("deleted")
'''


def test_raw_durable_rules_crashes_deleting_a_session_whose_action_is_still_pending():
    result = run_child(RAW_PENDING_DELETE)
    assert result.returncode < 0, (result.returncode, result.stdout, result.stderr)
    assert "deleted" not in result.stdout


ADAPTER_INPUT_COLLISION = '''
import itertools
from datetime import date
from engine.backends import durable as da
from engine.backends import Evaluator
from engine.registry.load import load_registry
from engine.core.rulebook import load_rulebook
rulebook = load_rulebook()
facts = Evaluator(rulebook, load_registry(), "reference").facts("PER", date(2026, 11, 28))
padding = [{"k": "decision:extension:art4", "id": f"pad{n}", "seq": 99, "date": "2020-01-01",
            "granted_deadline": "2030-01-01"} for n in range(SECOND)]

def naive_slim(self, fact):
    key = f"{self.sid}/{len(self.payload)}"
    self.payload[key] = fact
    slim = {"id": key, "sid": self.sid, "k": fact["k"]}
    if "seq" in fact:
        slim["seq"] = fact["seq"]
    return slim

da._Session.slim = naive_slim
backend = da.DurableBackend(rulebook)
backend._counter = itertools.count(SID)
try:
    backend.infer(padding + facts)      # the first PER fact gets the colliding id
except da.HashCollisionError as error:
    print("HashCollisionError", error)
print("alive", backend.live_sessions())
'''


def test_a_duplicate_among_the_input_facts_surfaces_as_a_hash_collision_error_not_a_crash(colliding_pair):
    # The batch assert raises after the accepted facts made actions pending; the adapter then
    # deletes the session without draining them, which segfaults the C engine (see above).
    second = int(colliding_pair[1].rsplit("/", 1)[1])
    code = ADAPTER_INPUT_COLLISION.replace("SECOND", str(second)).replace("SID", COLLIDING_SID[1:])
    result = run_child(code)
    assert result.returncode == 0, f"the process died with {result.returncode}: {result.stderr[-500:]}"
    assert "HashCollisionError" in result.stdout
    assert "alive 0" in result.stdout


# --------------------------------------------------------------------------- d. polling threads


def test_a_plain_durable_rules_host_starts_two_polling_timer_threads():
    before = set(threading.enumerate())
    host = durable_engine.Host()
    try:
        started = [t for t in threading.enumerate() if t not in before]
        assert len(started) == 2 and all(isinstance(t, threading.Timer) for t in started)
    finally:
        # The timers re-arm themselves: cancel until the chain is broken, so no thread leaks.
        for _ in range(100):
            host._d_timer.cancel()
            host._t_timer.cancel()
            if not any(isinstance(t, threading.Timer) and t not in before for t in threading.enumerate()):
                break
            time.sleep(0.02)


def test_the_adapter_starts_no_thread_to_build_a_backend_or_to_evaluate(ccm_rulebook, ccm_registry):
    before = threading.active_count()
    backend = DurableBackend(ccm_rulebook)
    facts = Evaluator(ccm_rulebook, ccm_registry, "reference").facts("PER", AS_OF)
    derived = backend.infer(facts)
    assert len(derived) == 20  # the evaluation ran: its actions were drained in this thread
    assert threading.active_count() == before


# --------------------------------------------------------------------------- e. sessions and memory


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_2000_evaluations_leave_no_session_on_either_side(ccm_rulebook, ccm_registry, monkeypatch):
    evaluator = Evaluator(ccm_rulebook, ccm_registry, "durable")
    backend = durable_adapter.backend(ccm_rulebook)
    deleted: list[str] = []
    delete = backend._ruleset.delete_state

    def spy(sid):
        deleted.append(sid)
        return delete(sid)

    monkeypatch.setattr(backend._ruleset, "delete_state", spy)
    parties = sorted(ccm_registry.participants)
    for n in range(2000):
        evaluator.evaluate(parties[n % len(parties)], AS_OF)
    assert backend.live_sessions() == 0
    # Every evaluation had its own session, one (the statuses are judged in it too), deleted
    # once: far more than the 1,024 the C engine holds at once.
    assert len(deleted) == len(set(deleted)) == 2000
    # The C engine forgot them: asking for an old session's state is an error (code 309).
    for sid in (deleted[0], deleted[1500], deleted[-1]):
        with pytest.raises(durable_engine.durable_rules_engine.error, match="309"):
            backend._ruleset.get_state(sid)


def test_memory_stays_flat_from_500_to_3000_evaluations(ccm_rulebook, ccm_registry):
    evaluator = Evaluator(ccm_rulebook, ccm_registry, "durable")
    parties = sorted(ccm_registry.participants)
    for n in range(500):
        evaluator.evaluate(parties[n % len(parties)], AS_OF)
    after_500 = _rss_bytes()
    for n in range(500, 3000):
        evaluator.evaluate(parties[n % len(parties)], AS_OF)
    growth = _rss_bytes() - after_500
    # A leak check, not a measurement: a leaked session (dozens of facts) per evaluation
    # would show as tens of megabytes over 2,500 evaluations.
    assert growth < 20 * 1024 * 1024, f"RSS grew by {growth / 1e6:.1f} MB over 2,500 evaluations"


# --------------------------------------------------------------------------- f. threads


def test_four_threads_on_one_backend_give_the_same_json_as_sequential_evaluation(ccm_rulebook, ccm_registry):
    evaluator = Evaluator(ccm_rulebook, ccm_registry, "durable")
    parties = sorted(ccm_registry.participants)
    sequential = {iso3: evaluator.evaluate(iso3, AS_OF).to_json() for iso3 in parties}
    concurrent: dict[str, dict] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def work(share: list[str]) -> None:
        try:
            barrier.wait()  # start together, so the evaluations really overlap
            for _ in range(3):
                for iso3 in share:
                    concurrent[iso3] = evaluator.evaluate(iso3, AS_OF).to_json()
        except BaseException as error:  # noqa: BLE001 - a thread's failure must fail the test, not vanish
            errors.append(error)

    threads = [threading.Thread(target=work, args=(parties[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert concurrent == sequential
    assert durable_adapter.backend(ccm_rulebook).live_sessions() == 0
