"""The durable_rules backend: compiles the rulebook to one ruleset and evaluates one party per session.

This is the only module that imports durable_rules. It handles the hazards of
durable_rules 2.0.28 (each reproduced in tests/test_durable_hazards.py):

* an exception raised in an action is swallowed into the session state: every action
  records it here too, and :meth:`DurableBackend.infer` raises it after the evaluation;
* a fact that matches no rule is rejected (``MessageNotHandledException``) and, asserted
  from an action, silently lost: facts no rule reads (input or derived) stay on the Python
  side and are never sent to the engine; the one rule that matches nothing else is the
  session marker's;
* facts are told apart by a 32-bit FNV-1a hash of their id, with no comparison of the ids
  themselves: each fact gets an id whose hash is unused in its session, and a duplicate
  reported for a fact never asserted is raised as :class:`HashCollisionError`;
* there is no truth maintenance: each evaluation uses a fresh session id, deleted after;
* deleting a session in which no action ever ran, or whose actions are still pending,
  crashes the process (``delete_state``; found here, not in DESIGN.md): every session
  asserts a marker fact that a no-op rule fires on, and is drained before it is deleted;
  a session in which the engine rejected a duplicate cannot be deleted at all and is left
  in place (ids are chosen so that this cannot happen; if it does, it is raised);
* ``Host`` starts polling threads: this host disables them and drains pending actions
  itself; the C engine caps live sessions at 1,024 and first use is not thread-safe, so
  evaluations are serialised by one lock.
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any, Callable, TypeVar

from durable import engine as durable_engine

from engine.core import status
from engine.core.compute import EvaluationError, Fact, apply_exception, fire, optional_kinds
from engine.core.rulebook import Rule, Rulebook
from engine.backends.status_patterns import StatusPatterns

RULESET = "ccm_deadlines"
SESSION_MARKER = "$session"  # asserted into a session where no action ran, so that one runs before the delete
_FNV_OFFSET, _FNV_PRIME = 0x811C9DC5, 16777619
T = TypeVar("T")


class HashCollisionError(RuntimeError):
    """durable_rules took two distinct facts for one (their ids share a 32-bit hash)."""


def fnv1a32(text: str) -> int:
    """The hash durable_rules keys stored facts by.

    >>> hex(fnv1a32("a"))
    '0xe40c292c'
    """
    return _fnv1a32_from(_FNV_OFFSET, text)


def _fnv1a32_from(value: int, text: str) -> int:
    """FNV-1a continued over ``text`` from the hash ``value`` of what precedes it."""
    for byte in text.encode("utf-8"):
        value = ((value ^ (byte if byte < 128 else byte - 256)) * _FNV_PRIME) & 0xFFFFFFFF
    return value


class _Host(durable_engine.Host):
    """A Host without the polling timer threads; actions are drained by the caller."""

    def _run(self) -> None:  # the base class starts two threading.Timer loops here
        return None


class _Session:
    """The Python side of one durable_rules session: full facts by id, errors, derivations."""

    def __init__(self, sid: str, facts: list[Fact]):
        self.sid = sid
        self.prefix = f"{sid}/"
        self.prefix_hash = fnv1a32(self.prefix)
        self.payload: dict[str, Fact] = {}
        self.hashes: set[int] = set()
        self.derived: list[Fact] = []
        self.errors: list[BaseException] = []
        self.verdicts: dict[str, dict[int, list[dict[str, str]]]] = {}   # status session: subject -> case -> bindings
        self.lapsing: set[str] = set()
        self.thens: list[tuple[str, str, int]] = []   # status session: (request key, followed key, then number)
        self.poisoned = False   # saw a rejected duplicate: delete_state would crash
        self.acted = False      # an action ran: the session can be deleted without the marker
        by_kind: dict[str, list[Fact]] = {}
        for fact in facts:
            by_kind.setdefault(fact["k"], []).append(fact)
        self.singletons = {kind: found[0] for kind, found in by_kind.items() if len(found) == 1}

    def slim(self, fact: Fact) -> dict[str, Any]:
        """The part of a fact the C engine matches on, under a short id whose hash is unused here."""
        number = str(len(self.payload))
        key = self.prefix + number
        salt = 0
        hashed = _fnv1a32_from(self.prefix_hash, number)   # the prefix's hash is kept: FNV-1a runs left to right
        while hashed in self.hashes:
            salt += 1
            key = f"{self.sid}/{len(self.payload)}~{salt}"
            hashed = fnv1a32(key)
        self.hashes.add(hashed)
        self.payload[key] = fact
        slim = {"id": key, "sid": self.sid, "k": fact["k"]}
        if "seq" in fact:
            slim["seq"] = fact["seq"]
        return slim


class DurableBackend:
    """Evaluates parties on durable_rules; one instance per process (see :func:`backend`)."""

    def __init__(self, rulebook: Rulebook):
        self.rulebook = rulebook
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._counter = itertools.count(1)
        self._host = _Host()
        self._consumed = self.consumed_kinds
        self._status = StatusPatterns(rulebook)
        definition = {**self._compile(), **self._status.compile(self)}
        # The drain calls these itself, with the session and the match (see _drain); durable_rules
        # only needs a callable to register a rule.
        self._runs: dict[str, Callable[[_Session, Any], None]] = {name: rule.pop("act") for name, rule in definition.items()}
        for rule in definition.values():
            rule["run"] = _unused
        self._host.register_rulesets({RULESET: definition})
        self._ruleset = self._host.get_ruleset(RULESET)

    # -- compilation ---------------------------------------------------------------------

    def _compile(self) -> dict[str, Any]:
        definition: dict[str, Any] = {}
        for index, rule in enumerate(self.rulebook.rules):
            if rule.produces == "termination":
                continue
            if rule.produces == "exception":
                definition[f"r{index}"] = {
                    "all": [
                        {"base": {"k": rule.exception_to}},
                        {"decision": {"$and": [{"k": rule.when[0]},
                                               {"seq": {"$add": {"$l": {"base": "seq"}, "$r": 1}}}]}},
                    ],
                    "act": self._exception_action(rule),
                }
                continue
            patterns: list[dict[str, Any]] = [{f"f{i}": {"k": kind}} for i, kind in enumerate(rule.when)]
            patterns += [{f"n{i}$not": {"k": kind}} for i, kind in enumerate(rule.unless)]
            definition[f"r{index}"] = {"all": patterns, "act": self._rule_action(rule)}
        # Facts no rule reads are never sent to the engine (see consumed_kinds and
        # _assert_derived): a sink for them fired on most derivations and cost 40 % of the time.
        # The session marker still needs a rule of its own (see SESSION_MARKER).
        definition["marker"] = {"all": [{"m": {"k": SESSION_MARKER}}], "act": _ignore}
        return definition

    @property
    def consumed_kinds(self) -> set[str]:
        """Fact kinds some rule pattern matches on."""
        kinds: set[str] = set()
        for rule in self.rulebook.rules:
            if rule.produces == "termination":
                continue
            kinds.update(rule.when)
            kinds.update(rule.unless)
            if rule.exception_to:
                kinds.add(rule.exception_to)
        return kinds

    def _rule_action(self, rule: Rule):
        when, optional = rule.when, optional_kinds(rule)

        def action(session: _Session, matched: dict[str, Any]) -> None:
            payload = session.payload
            binding = {kind: payload[matched[f"f{i}"]["id"]] for i, kind in enumerate(when)}
            for kind in optional:
                if kind in session.singletons:
                    binding[kind] = session.singletons[kind]
            for new in fire(rule, binding):
                self._assert_derived(session, new)
        return action

    def _exception_action(self, rule: Rule):
        def action(session: _Session, matched: dict[str, Any]) -> None:
            base = session.payload[matched["base"]["id"]]
            decision = session.payload[matched["decision"]["id"]]
            self._assert_derived(session, apply_exception(rule, base, decision))
        return action

    def _assert_derived(self, session: _Session, fact: Fact) -> None:
        session.derived.append(fact)
        if fact["k"] not in self._consumed:   # no rule reads it: it stays on the Python side
            return
        slim = session.slim(fact)
        try:
            self._ruleset.assert_fact(slim)
        except durable_engine.MessageObservedException as error:
            raise HashCollisionError(
                f"durable_rules rejected derived fact {fact['id']} as a duplicate of another fact in session {session.sid}"
            ) from error

    # -- evaluation ----------------------------------------------------------------------

    def infer(self, facts: list[Fact]) -> list[Fact]:
        """All facts the rulebook derives from ``facts``, in the order durable_rules fired them.

        Raises :class:`EvaluationError` (from a rule), :class:`HashCollisionError`, or
        RuntimeError for any other failure inside durable_rules.
        """
        session: _Session = self.run_session(facts, self._inputs)
        return list(session.derived)

    def _inputs(self, session: _Session, facts: list[Fact]) -> list[dict[str, Any]]:
        consumed = self._consumed
        return [session.slim(fact) for fact in facts if fact["k"] in consumed]

    def evaluate(self, facts: list[Fact], finish: Callable[[list[Fact], Any], T]) -> T:
        """Inference and the status conditions in one session: the facts are inferred from,
        then ``finish(derived, judge)`` runs while the session is still open, and ``judge``
        asserts the status facts into that same session (a second session per party cost
        more than the matching itself). The status facts carry kinds of their own, so no
        inference rule fires on them."""
        def then(session: _Session) -> T:
            def judge(subjects: list[status.Subject], context: status.Context):
                return self._status.judge_in(self, session, subjects, context)
            return finish(list(session.derived), judge)

        return self.run_session(facts, self._inputs, then)

    def run_session(self, facts: list[Fact], build, then: Callable[[_Session], Any] | None = None) -> Any:
        """Run one fresh session: assert the slims ``build(session, facts)`` returns, one by one,
        drain the actions, raise what they raised; then ``then(session)`` (which may assert
        more, see :meth:`assert_all`) and delete the session. Returns what ``then`` returns, or
        the session. The session marker is asserted only into a session where no action ran by
        then: deleting such a session would crash the process, and one more action per
        evaluation cost 8 % of it."""
        with self._lock:
            sid = f"s{next(self._counter)}"
            session = _Session(sid, facts)
            self._sessions[sid] = session
            try:
                self.assert_all(session, build(session, facts))
                return then(session) if then is not None else session
            finally:
                try:
                    if not session.poisoned and not session.acted:
                        self._ruleset.assert_fact(session.slim({"k": SESSION_MARKER, "id": SESSION_MARKER}))
                    self._drain(session)
                except BaseException:  # already failing; the drain only makes the delete safe
                    pass
                self._sessions.pop(sid, None)
                try:
                    if not session.poisoned:
                        self._ruleset.delete_state(sid)
                except BaseException:  # a session that never got state has nothing to delete
                    pass

    def assert_all(self, session: _Session, slims: list[dict[str, Any]], batch: bool = False) -> None:
        """Assert facts into an open session, drain the actions, and raise what they raised.

        One by one unless ``batch``: the batch call corrupts memory on a duplicate, so it is
        only for facts whose ids :meth:`_Session.slim` chose in this session (never a
        duplicate) and that some rule accepts (the status rules' accept-all rule)."""
        collision = None
        if batch and slims:
            try:
                self._ruleset.assert_facts(slims)
            except durable_engine.MessageObservedException as error:
                collision = error
        for slim in () if batch else slims:
            try:
                self._ruleset.assert_fact(slim)
            except durable_engine.MessageObservedException as error:
                collision = error
                break
        self._drain(session)  # always: deleting a session with pending actions crashes the process
        if collision is not None:
            session.poisoned = True   # a session that saw a rejected duplicate crashes delete_state: left in place
            raise HashCollisionError(f"durable_rules rejected an input fact as a duplicate in session {session.sid}") from collision
        if session.errors:
            raise session.errors[0]

    def _drain(self, session: _Session) -> None:
        """Run every pending action now (no polling thread will).

        durable_rules' own loop (``Ruleset._flush_actions``) wraps each match in Closure and
        Content objects and posts the session state back after every action, which runs it
        through the whole network again; no rule here reads or changes that state, so the
        actions are called directly and completed. An exception in an action is kept on its
        session (durable_rules would swallow it into the state) and raised by the caller after
        the drain, which goes on: deleting a session with pending actions crashes."""
        engine, handle, runs = durable_engine.durable_rules_engine, self._ruleset._handle, self._runs
        while True:
            result = engine.start_action(handle)
            if not result:
                break
            owner = self._sessions.get(json.loads(result[0])["sid"])
            message, offset = json.loads(result[1]), result[2]
            while message:
                name, match = next(iter(message.items()))
                if owner is not None:
                    owner.acted = True
                    try:
                        runs[name](owner, match)
                    except BaseException as error:  # noqa: BLE001 - kept and raised after the drain: it must complete
                        owner.errors.append(error)
                following = engine.complete_and_start_action(handle, offset)
                message = json.loads(following) if following else None

    def judge(self, subjects: list[status.Subject], context: status.Context):
        """The declared status conditions, matched by durable_rules in a session of their own.

        Sent: one ``$obligation`` fact per obligation, the facts that can play a role, the
        evaluation date, the day the record is complete from, and the withdrawal; each carries
        the fields the conditions read, dates as ordinals. Returns what
        :func:`engine.core.status.judge` and :func:`~engine.core.status.lapses` return.
        """
        return self._status.judge(self, subjects, context)

    def live_sessions(self) -> int:
        """Sessions still held on the Python side (0 between evaluations)."""
        return len(self._sessions)


def _unused(c: Any) -> None:
    raise AssertionError("the adapter drains actions itself (DurableBackend._drain)")


def _ignore(session: _Session, match: Any) -> None:
    return None


_BACKENDS: dict[str, DurableBackend] = {}
_BACKENDS_LOCK = threading.Lock()


def backend(rulebook: Rulebook) -> DurableBackend:
    """The process's backend for this rulebook (one Host per process and rulebook)."""
    with _BACKENDS_LOCK:
        if rulebook.hash not in _BACKENDS:
            _BACKENDS[rulebook.hash] = DurableBackend(rulebook)
        return _BACKENDS[rulebook.hash]
