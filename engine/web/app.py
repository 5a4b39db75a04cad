"""The HTTP surface: a JSON API, calendar feeds and server-rendered pages (FastAPI).

``create_app(settings=None)`` builds the application; nothing happens at import time (no
database, no registry, no network). The rulebook and registry are loaded when the server starts
(or by the first request, without a lifespan), and the database is only read then. The scheduler
is never started here (DESIGN.md: one scheduler process, never inside the web process).

Reads are public: the registry is published data, and a State's deadlines are computed from
it and from the ISU's record. Writes (a report received, a decision) need the ISU's bearer
token, read from the environment variable named by ``[api] isu_token_env`` in config.toml;
a State's read token (``[api] state_tokens_env``, ``"CHE:token1,LAO:token2"``) is refused
with 403, no token or an unknown one with 401.

Caching: evaluations and the JSON bytes sent are cached per (query, as_of, state), the state
being the last check run (id, end) and a fingerprint of the recorded events. The state is read
from the database at most once per ``[api] state_ttl_seconds`` (default 1 s) and at once after a
write through this API; the ETag is derived from it, so ``If-None-Match`` gives 304 until a check
or a recording changes something.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import json
import logging
import os
import threading
import time
import tomllib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib.resources import files
from typing import Any, Literal, TypeVar
from urllib.parse import urlencode

from babel.dates import format_date
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from swagger_ui_bundle import swagger_ui_path

# Only modules that load no database code at import (tests/test_api.py): those that do (the
# store, the record's events, the check, the calendar feeds; SQLAlchemy) are imported where used.
from engine.check.listed import Listed
from engine.core import packs, wording
from engine.core.compute import EvaluationError
from engine.core.explain import explain
from engine.core.model import UnknownPartyError
from engine.core.packs import PackError
from engine.record.textsafe import TextError, parse_day
from engine.registry.names import display_name
from engine.registry.shared import shared_evaluator, shared_treaties
from engine.runtime.plugins import load_plugins
from engine.runtime.schema import check_env
from engine.runtime.settings import Settings, load_settings
from engine.web import timeline

JSON_TYPE = "application/json"
ICS_TYPE = "text/calendar; charset=utf-8"
LANGUAGES = ("en", "fr", "es")
BABEL_LOCALE = {"en": "en_GB", "fr": "fr", "es": "es"}
MAX_QUERY = 120


class ApiError(Exception):
    """A refusal with an HTTP status and a sentence saying why."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


# ----------------------------------------------------------------------------- configuration

@dataclass(frozen=True)
class ApiConfig:
    isu_token_env: str = "CCM_ISU_TOKEN"
    state_tokens_env: str = "CCM_STATE_TOKENS"
    calendar_domain: str = "ccm-deadlines.local"
    alarm_days: tuple[int, ...] = (30, 7)
    state_ttl_seconds: float = 1.0
    cache_size: int = 4096
    base_url: str = ""        # the public address (https://deadlines.example.org): calendar links use it, never Host
    workers: int = 0          # `ccm serve`'s processes; 0: one per CPU core (see server_processes)


def load_api_config(settings: Settings) -> ApiConfig:
    """The ``[api]`` table of config.toml (defaults when absent). Tokens are never in the file."""
    data: dict[str, Any] = settings.file_data.get("api", {})   # type-checked by load_settings
    known = ApiConfig.__dataclass_fields__
    values = {k: v for k, v in data.items() if k in known}
    env, _problems = check_env(dict(os.environ))        # the problems stopped load_settings already
    values.update({key: value for (table, key), value in env.items() if table == "api" and key in known})
    if "alarm_days" in values:
        values["alarm_days"] = tuple(int(d) for d in values["alarm_days"])
    return ApiConfig(**values)


def server_processes(configured: int, cores: int | None = None) -> int:
    """How many processes ``ccm serve`` starts: the configured number, or with 0 one per CPU core, at most
    eight. An evaluation holds the GIL for a millisecond or more, so one process computes one answer at a
    time; each process keeps its own cache and reads the state at most once per ``state_ttl_seconds``.

    >>> server_processes(0, cores=2), server_processes(3, cores=2), server_processes(0, cores=64)
    (2, 3, 8)
    """
    if configured > 0:
        return configured
    return max(1, min(cores if cores is not None else (os.cpu_count() or 1), 8))


# ----------------------------------------------------------------------------- the service

@dataclass(frozen=True)
class State:
    """What the answers depend on besides the query: the last check and the record."""

    check_id: int | None
    check_finished: datetime | None
    check_as_of: date | None
    first_check: bool
    events: tuple[Any, ...]      # (count, last recorded_at, superseded count)

    @property
    def key(self) -> tuple:
        return (self.check_id, self.check_finished.isoformat() if self.check_finished else None, self.events)


NO_STATE = State(None, None, None, True, (0, None, 0))
ANSWER_KINDS = frozenset({"json", "ics", "svg"})      # cache keys whose values are (bytes, etag)
OBJECTS_KEPT = 256


class Service:
    """Evaluations with the configured rulebook, registry, backend and record, cached."""

    def __init__(self, settings: Settings, config: ApiConfig):
        self.settings, self.config = settings, config
        self.url = settings.database_url
        self._evaluator = None
        self._treaties = None
        self._lock = threading.RLock()
        self._state: State | None = None
        self._state_read = 0.0
        self._events: tuple[tuple, dict[str, list]] | None = None
        self._cache: OrderedDict[tuple, Any] = OrderedDict()      # evaluations and other objects
        self._answers: OrderedDict[tuple, Any] = OrderedDict()    # bytes sent: (body, etag)
        self._executor: ThreadPoolExecutor | None = None
        self._reading: Future | None = None           # the state being read, awaited by every request that needs it

    # -- off the event loop
    def _workers(self) -> ThreadPoolExecutor:
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ccm-evaluate")
        return self._executor

    async def run(self, work: Callable[[], Any]) -> Any:
        """``work()`` in the process's one worker thread: an evaluation, a database read or the first
        load of the rulebook takes milliseconds of CPU, during which the event loop would serve no one.
        One thread, not starlette's forty: the GIL lets one compute at a time and the durable backend
        evaluates one party at a time, so a second thread only waited on both, and served about a
        third fewer misses a second (benchmarks/api.py, one process: 518-602 against 363-433 req/s).
        More cores are used by more processes (``[api] workers``)."""
        return await asyncio.get_running_loop().run_in_executor(self._workers(), work)

    async def ready_state(self) -> State:
        """The state, read in a worker thread when it is due (and the engine loaded there the first
        time). The requests that find it due together wait for one read, not one each."""
        state = self._state
        if state is not None and self._evaluator is not None and \
                time.monotonic() - self._state_read < self.config.state_ttl_seconds:
            return state
        with self._lock:
            if self._reading is None:
                self._reading = self._workers().submit(self._read_due_state)
            reading = self._reading
        return await asyncio.wrap_future(reading)

    def _read_due_state(self) -> State:
        try:
            _ = self.evaluator, self.treaties   # loaded here, in the worker thread, the first time
            return self.state()
        finally:
            with self._lock:
                self._reading = None

    # -- the engine
    @property
    def evaluator(self):
        if self._evaluator is None:   # the process's one (engine.registry.shared), as the CLI's and the scheduler's
            self._evaluator = shared_evaluator(self.settings.backend, self.settings.complete_from, self.settings.packs)
        return self._evaluator

    @property
    def treaties(self):
        """The selected packs' evaluators (engine/registry/treaties.py); the first is :attr:`evaluator`."""
        if self._treaties is None:   # kept: shared_treaties selects the packs again on every call, on every hit
            self._treaties = shared_treaties(self.settings.backend, self.settings.complete_from, self.settings.packs)
        return self._treaties

    def evaluate_in(self, pack: str, iso3: str, as_of: date, state: State):
        """One party under one selected pack, with that pack's recorded events; cached as :meth:`evaluate`."""
        tr = self.treaties
        if pack == tr.names[0]:
            return self.evaluate(iso3, as_of, state)
        evaluator = tr.get(pack)

        def compute():
            try:
                return evaluator.evaluate(iso3, as_of, tr.events(pack, self.events(state).get(iso3, [])))
            except EvaluationError as error:
                name = evaluator.registry.participant(iso3).name
                raise ApiError(409, f"{name}'s obligations cannot be computed from the recorded facts: {error}.") from None

        return self.cached(("evaluation", pack, iso3, as_of, state.key), compute)

    def evaluator_of(self, pack: str):
        return self.treaties.get(pack)

    def chosen(self, treaty: str | None) -> list[str]:
        """Every selected pack, or the one ``?treaty=`` names; 404 for a pack that is not selected."""
        try:
            return list(self.treaties.only(treaty).names)
        except PackError as error:
            raise ApiError(404, str(error)) from None

    def evaluate_all_in(self, pack: str, as_of: date, state: State):
        """(evaluations, errors) of every participant of one selected pack; cached as :meth:`evaluate_all`."""
        tr = self.treaties
        if pack == tr.names[0]:
            return self.evaluate_all(as_of, state)
        evaluator = tr.get(pack)

        def compute():
            evaluations, errors = [], []
            events = tr.events(pack, [event for party_events in self.events(state).values() for event in party_events])
            for iso3, evaluation, error in evaluator.each(as_of, events):
                if evaluation is not None:
                    evaluations.append(self.cached(("evaluation", pack, iso3, as_of, state.key), lambda e=evaluation: e))
                else:
                    name = evaluator.registry.participant(iso3).name
                    errors.append((iso3, f"{name}'s obligations cannot be computed from the recorded facts: {error}."))
            return evaluations, errors

        return self.cached(("all", pack, as_of, state.key), compute)

    def packs_of(self, iso3: str, treaty: str | None) -> list[str]:
        """The selected packs (or the one ``?treaty=`` names) whose registry lists the party; 404 for none."""
        tr = self.treaties
        try:
            chosen = tr.only(treaty)
        except PackError as error:
            raise ApiError(404, str(error)) from None
        found = [name for name, _ in chosen.of_party(iso3)]
        if not found:
            raise ApiError(404, f"{iso3} is not a participant of {', '.join(chosen.names)}")
        return found

    # -- the record
    def state(self) -> State:
        now = time.monotonic()
        if self._state is not None and now - self._state_read < self.config.state_ttl_seconds:
            return self._state
        state = self._read_state()
        with self._lock:
            self._state, self._state_read = state, now
        return state

    def invalidate(self) -> None:
        with self._lock:
            self._state = None

    def _read_state(self) -> State:
        # lazy: database code stays off importing the app (tests/test_api.py)
        import sqlalchemy as sa
        import sqlalchemy.exc

        from engine.store import database as store
        if not store.database_exists(self.url):
            return NO_STATE
        try:
            with store.reader_session(self.url) as session:
                run = session.execute(sa.select(store.CheckRunRow.id, store.CheckRunRow.finished_at, store.CheckRunRow.as_of)
                                      .order_by(store.CheckRunRow.id.desc()).limit(1)).first()
                first = session.scalar(sa.select(sa.func.min(store.CheckRunRow.id)))
                R = store.RecordedEventRow
                events = session.execute(sa.select(sa.func.count(R.id), sa.func.max(R.recorded_at),
                                                   sa.func.count(R.superseded_by))).one()
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError):
            return NO_STATE
        finished = run.finished_at if run else None
        return State(check_id=run.id if run else None, check_finished=finished, check_as_of=run.as_of if run else None,
                     first_check=(run is None or run.id == first),
                     events=(events[0], events[1].isoformat() if events[1] else None, events[2]))

    def events(self, state: State) -> dict[str, list]:
        """Live recorded events by party, read once per state."""
        cached = self._events
        if cached is not None and cached[0] == state.key:
            return cached[1]
        by_party: dict[str, list] = {}
        if state is not NO_STATE and state.events[0]:
            # lazy: database code stays off importing the app (tests/test_api.py)
            import sqlalchemy.exc

            from engine.record.events import load_events

            try:
                for event in load_events(self.url):
                    by_party.setdefault(event.party, []).append(event)
            except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError):
                by_party = {}
        self._events = (state.key, by_party)
        return by_party

    # -- caching
    # Answers are bytes, which the garbage collector never scans: ``cache_size`` of them are kept.
    # Evaluations are thousands of small objects each, which every full collection walks: with
    # thousands kept, a collection stalled every request for 100-300 ms on this machine; a few
    # hundred suffice to serve one day's answers from one evaluation.
    def _store(self, key: tuple) -> tuple[OrderedDict, int]:
        if key[0] in ANSWER_KINDS:
            return self._answers, self.config.cache_size
        return self._cache, min(self.config.cache_size, OBJECTS_KEPT)

    def peek(self, key: tuple) -> Any:
        """The cached value, or None (without computing it)."""
        store, _ = self._store(key)
        with self._lock:
            value = store.get(key)
            if value is not None:
                store.move_to_end(key)
            return value

    def cached(self, key: tuple, compute: Callable[[], Any]) -> Any:
        store, size = self._store(key)
        with self._lock:
            if key in store:
                store.move_to_end(key)
                return store[key]
        value = compute()
        with self._lock:
            store[key] = value
            while len(store) > size:
                store.popitem(last=False)
        return value

    def evaluate(self, iso3: str, as_of: date, state: State):
        def compute():
            try:
                return self.evaluator.evaluate(iso3, as_of, self._home_events(self.events(state).get(iso3, [])))
            except EvaluationError as error:
                name = self.evaluator.registry.participant(iso3).name
                raise ApiError(409, f"{name}'s obligations cannot be computed from the recorded facts: {error}.") from None

        return self.cached(("evaluation", iso3, as_of, state.key), compute)

    def _home_events(self, events: list) -> list:
        """The first pack's events: an event tagged for another pack is not its, even when that pack is not
        selected (the letters filter the same way: notifiers/dues.py)."""
        tr = self.treaties
        return tr.events(tr.names[0], events)

    def evaluate_all(self, as_of: date, state: State):
        """(evaluations, errors) of every participant, by the engine's one every-party loop."""
        def compute():
            evaluations, errors = [], []
            events = self._home_events([event for party_events in self.events(state).values() for event in party_events])
            for iso3, evaluation, error in self.evaluator.each(as_of, events):
                if evaluation is not None:   # a page of one party asked next finds it, as when each went through evaluate()
                    evaluations.append(self.cached(("evaluation", iso3, as_of, state.key), lambda e=evaluation: e))
                else:
                    name = self.evaluator.registry.participant(iso3).name
                    errors.append((iso3, f"{name}'s obligations cannot be computed from the recorded facts: {error}."))
            return evaluations, errors

        return self.cached(("all", as_of, state.key), compute)

    # -- parameters
    def party(self, query: str):
        text = (query or "").strip()
        participants = {iso3: p for ev in reversed(self.treaties.evaluators) for iso3, p in ev.registry.participants.items()}
        if text.upper() in participants:
            return participants[text.upper()]
        if not text or len(text) > MAX_QUERY or any(ord(c) < 32 for c in text):
            raise ApiError(404, f"No participant matches {text[:40]!r}. Give an ISO 3166-1 alpha-3 code (e.g. LAO) "
                                "or a country name; /api/parties lists them.")
        try:
            return self.evaluator.registry.find(text)
        except UnknownPartyError as error:
            raise ApiError(404, str(error)) from None

    def as_of(self, text: str | None, name: str = "as_of") -> date:
        if text is None or text == "":
            return datetime.now(UTC).date()
        try:
            day = parse_day(text)
        except TextError:
            day = None
        if day is None:
            raise ApiError(422, f"The parameter {name} {text[:40]!r} is not a date; write it as YYYY-MM-DD, e.g. 2019-06-01.")
        low, high = self.as_of_range()
        if not low <= day <= high:
            raise ApiError(422, f"The parameter {name} {day.isoformat()} is out of range; give a date from "
                                f"{low.isoformat()} (the Convention's adoption) to {high.isoformat()}.")
        return day

    def as_of_range(self) -> tuple[date, date]:
        adopted = self.evaluator.registry.treaty.adopted
        return adopted, date(adopted.year + 100, 12, 31)

    def etag(self, state: State, *parts: Any) -> str:
        raw = repr((state.key, self.evaluator.rulebook.hash, parts)).encode()
        return '"' + hashlib.sha256(raw).hexdigest()[:24] + '"'


# ----------------------------------------------------------------------------- documented shapes

class Problem(BaseModel):
    detail: str = Field(description="A sentence saying what was wrong and what to do.")


class PartyHead(BaseModel):
    iso3: str
    name: str
    status: Literal["state_party", "signatory", "former_state_party", "not_party"]
    entry_into_force: date | None
    withdrawal_effective: date | None


class ObligationOut(BaseModel):
    id: str
    article: str
    period: str | None
    due: date
    original_due: date
    status: Literal["pending", "overdue", "fulfilled", "fulfilled_late", "lapsed"]
    basis: list[str]


class Deadlines(BaseModel):
    """Exactly the shape of ``ccm deadlines PARTY --json``."""

    party: PartyHead
    as_of: date
    rulebook: str
    obligations: list[ObligationOut]


class PartyList(BaseModel):
    as_of: date
    parties: list[PartyHead]


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["initial", "annual", "retention"]
    year: int | None = Field(None, ge=1900, le=2200, description="The calendar year covered (annual, retention).")
    received: date
    symbol: str | None = Field(None, max_length=200)
    source: str | None = Field(None, max_length=2000)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    article: Literal["3", "4"]
    meeting: str = Field(max_length=40, description="Meeting code, as in the pack's meetings.csv.")
    decided: date
    granted: date = Field(description="The new deadline granted.")
    document: str | None = Field(None, max_length=200)
    source: str | None = Field(None, max_length=2000)


class Recorded(BaseModel):
    id: str
    created: bool
    party: str
    kind: str
    on: date
    message: str


# Typed as FastAPI's `responses` parameter is (dict is invariant in its key).
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": Problem, "description": text} for code, text in (
    (404, "Unknown participant, obligation or address (with close matches)."),
    (422, "A parameter that is not valid (a sentence says which and why)."))}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 401: {"model": Problem, "description": "No token, or not a known token."},
                                                  403: {"model": Problem, "description": "A State's read token: recording is for the ISU."}}
CACHED: dict[int | str, dict[str, Any]] = {304: {"description": "Not modified (If-None-Match matched the ETag)."}}


#: A request body's model: _parse returns the model it is given.
Body = TypeVar("Body", bound=BaseModel)


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {JSON_TYPE: {"schema": model.model_json_schema()}}}}


# ----------------------------------------------------------------------------- the app

#: On every answer: no MIME sniffing, never framed (clickjacking), no address leaked to other sites.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff",
                    "Content-Security-Policy": "frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
                    "Referrer-Policy": "no-referrer"}


def _lifespan(service: Service):
    """While the server runs: the engine loaded before the first request, then every object alive
    (rulebook, registry, durable_rules, the framework) moved out of the garbage collector's reach
    with ``gc.freeze``. A full collection otherwise walks them all, and on this 2-core machine
    stalled every request in flight for 70-180 ms each time; they live as long as the process.
    ``gc.unfreeze`` at shutdown makes them collectable again (tests start and stop many apps)."""
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        with suppress(Exception):   # a broken rulebook is reported by the first request, as before
            await service.run(lambda: (service.evaluator, service.treaties))
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()

    return lifespan


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every answer that lacks them. A plain ASGI middleware, not
    ``@app.middleware("http")``, whose per-request task and stream cost about as much as a cached answer."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name.lower().encode("latin-1"), value.encode("latin-1"))
                         for name, value in SECURITY_HEADERS.items() if name.lower().encode("latin-1") not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: Settings | None = None, config: ApiConfig | None = None) -> FastAPI:
    """The application. ``settings`` default to config.toml and the environment."""
    if settings is None:
        settings = load_settings()
    config = config or load_api_config(settings)
    service = Service(settings, config)
    app = FastAPI(title="CCM deadlines", version="1", docs_url=None, redoc_url=None, lifespan=_lifespan(service),
                  description="Deadlines of the Convention on Cluster Munitions for each State Party, with the "
                              "legal basis of each date. Reads are public; recording needs the ISU's bearer token.")
    app.state.service = service
    _register_operations(app, service)

    app.add_middleware(SecurityHeaders)

    # -- errors: always a sentence, never a stack trace
    def problem(request: Request, status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
        if _is_page(request.url.path):
            return HTMLResponse(_render_error(request, status, detail), status_code=status, headers=headers)
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError):
        return problem(request, error.status, error.detail, error.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError):
        return problem(request, 422, _sentence(error.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException):
        if error.status_code == 404:
            detail = "There is nothing at this address; the API is described at /openapi.json (and /docs)."
        elif error.status_code == 405:
            detail = f"The method {request.method} is not allowed at this address; see /openapi.json."
        else:
            detail = str(error.detail) if isinstance(error.detail, str) else "The request was refused."
        return problem(request, error.status_code, detail, getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception):  # pragma: no cover - a bug; logged by the server
        logging.getLogger("engine.web.app").exception("unexpected error on %s", request.url.path)
        return problem(request, 500, "The server failed on this request; the error was logged.")

    # -- helpers
    async def answer(request: Request, state: State, key: tuple, build: Callable[[], Any]) -> Response:
        """The JSON of ``build()``: from the cache in the loop, else computed in a worker thread."""
        def compute():
            body = json.dumps(build(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            return body, service.etag(state, key)

        cache_key = ("json",) + key + (state.key,)
        found = service.peek(cache_key)
        body, etag = found if found is not None else await service.run(lambda: service.cached(cache_key, compute))
        return _conditional(request, body, etag, JSON_TYPE)

    # -- reads
    @app.get("/api/parties", response_model=PartyList, responses={**ERRORS, **CACHED}, tags=["read"],
             summary="Every participant: ISO3, name, status, entry into force (as `ccm parties --json`).")
    async def list_parties(request: Request, as_of: str | None = Query(None, description="YYYY-MM-DD; default today (UTC).")):
        state = await service.ready_state()
        day = service.as_of(as_of)

        def build():
            evaluations, _errors = service.evaluate_all(day, state)
            return {"as_of": day.isoformat(), "parties": [e.to_json()["party"] for e in evaluations]}

        return await answer(request, state, ("parties", day), build)

    @app.get("/api/parties/{iso3}", responses={**ERRORS, **CACHED}, tags=["read"],
             summary="One participant: status, entry into force, names in English, French and Spanish, links.")
    async def get_party(request: Request, iso3: str, as_of: str | None = Query(None, description="YYYY-MM-DD; default today.")):
        state = await service.ready_state()
        participant = service.party(iso3)
        day = service.as_of(as_of)

        home = service.packs_of(participant.iso3, None)[0]   # a party of the second pack only is found there

        def build():
            evaluation = service.evaluate_in(home, participant.iso3, day, state)
            code = participant.iso3
            return {"party": evaluation.to_json()["party"], "as_of": day.isoformat(),
                    "names": {lang: display_name(code, lang, participant.localized_name(lang)) for lang in LANGUAGES},
                    "obligations": len(evaluation.obligations),
                    "overdue": sum(1 for o in evaluation.obligations if o.status == "overdue"),
                    "links": {"obligations": f"/api/parties/{code}/obligations", "calendar": f"/parties/{code}/calendar.ics",
                              "page": f"/parties/{code}", "history": f"/api/parties/{code}/history"}}

        return await answer(request, state, ("party", participant.iso3, day), build)

    @app.get("/api/parties/{iso3}/obligations", response_model=Deadlines, responses={**ERRORS, **CACHED}, tags=["read"],
             summary="A party's obligations as of a date: exactly the JSON of `ccm deadlines PARTY --json`.")
    async def obligations(request: Request, iso3: str, as_of: str | None = Query(None, description="YYYY-MM-DD; default today."),
                          treaty: str | None = Query(None, description="Only this rule pack (e.g. apmbc); default every "
                                                        "selected pack. With several, a list of these objects, each with a `treaty` key.")):
        state = await service.ready_state()
        participant = service.party(iso3)
        day = service.as_of(as_of)
        chosen = service.packs_of(participant.iso3, treaty)
        if treaty is None and not service.treaties.several:
            return await answer(request, state, ("obligations", participant.iso3, day),
                                lambda: service.evaluate(participant.iso3, day, state).to_json())
        if treaty is not None:
            return await answer(request, state, ("obligations", treaty, participant.iso3, day),
                                lambda: service.evaluate_in(treaty, participant.iso3, day, state).to_json())
        return await answer(request, state, ("obligations", "*", participant.iso3, day),
                            lambda: [{"treaty": pack, **service.evaluate_in(pack, participant.iso3, day, state).to_json()}
                                     for pack in chosen])

    @app.get("/api/parties/{iso3}/obligations/{obligation_id}/explain", responses={**ERRORS, **CACHED}, tags=["read"],
             summary="The chain behind one date (as `ccm explain --json`): facts with sources, rules with quotations, arithmetic.")
    async def explain_obligation(request: Request, iso3: str, obligation_id: str,
                                 period: str | None = Query(None, max_length=MAX_QUERY, description="Year or meeting code (as in the pack's meetings.csv)."),
                                 as_of: str | None = Query(None, description="YYYY-MM-DD; default today."),
                                 treaty: str | None = Query(None, description="The rule pack; default the one the "
                                                               "obligation id's prefix names (<pack>.<article>.<role>).")):
        state = await service.ready_state()
        participant = service.party(iso3)
        day = service.as_of(as_of)
        try:
            named = treaty or service.treaties.owner(obligation_id)
        except PackError as error:
            raise ApiError(404, str(error) + ".") from None
        pack = service.packs_of(participant.iso3, named)[0]
        rulebook = service.evaluator_of(pack).rulebook
        obligation = await service.run(lambda: _one_obligation(
            service, service.evaluate_in(pack, participant.iso3, day, state), obligation_id, period or None, rulebook))

        def build():
            return explain(service.evaluate_in(pack, participant.iso3, day, state), rulebook, obligation).to_json()

        return await answer(request, state, ("explain", participant.iso3, obligation.id, obligation.period, day), build)

    @app.get("/api/parties/{iso3}/history", responses={**ERRORS, **CACHED}, tags=["read"],
             summary="Registry facts and recorded events, dated, with sources (who recorded an event: ISU token only).")
    async def party_history(request: Request, iso3: str, as_of: str | None = Query(None, description="YYYY-MM-DD; default today."),
                            treaty: str | None = Query(None, description="Only this rule pack (e.g. apmbc); default every selected pack. "
                                                        "With several, a list of these objects, each with a `treaty` key.")):
        state = await service.ready_state()
        participant = service.party(iso3)
        day = service.as_of(as_of)
        isu = _token_role(request, config) == ("isu", None)
        chosen = service.packs_of(participant.iso3, treaty)

        def one(pack: str) -> dict[str, Any]:
            items = _history(service, state, participant.iso3, day, pack)
            if not isu:
                items = [{k: v for k, v in item.items() if k not in ("recorded_by",)} for item in items]
            return {"party": participant.iso3, "as_of": day.isoformat(), "history": items}

        if treaty is not None or not service.treaties.several:
            return await answer(request, state, ("history", participant.iso3, day, isu) + ((treaty,) if treaty else ()),
                          lambda: one(chosen[0]))
        return await answer(request, state, ("history", "*", participant.iso3, day, isu),
                      lambda: [{"treaty": pack, **one(pack)} for pack in chosen])

    @app.get("/api/overdue", responses={**ERRORS, **CACHED}, tags=["read"],
             summary="Every obligation overdue as of a date, reports first (in the rules' order), most days late first.")
    async def overdue(request: Request, as_of: str | None = Query(None, description="YYYY-MM-DD; default today."),
                      treaty: str | None = Query(None, description="Only this rule pack (e.g. apmbc); default every selected pack. "
                                                        "With several, a list of these objects, each with a `treaty` key.")):
        state = await service.ready_state()
        day = service.as_of(as_of)
        chosen = service.chosen(treaty)

        def build_in(pack: str):
            evaluations, errors = service.evaluate_all_in(pack, day, state)
            rows = [{"party": e.participant.iso3, "name": e.participant.name, **o.to_json(), "days_late": (day - o.due).days}
                    for e in evaluations for o in e.obligations if o.status == "overdue"]
            rules = service.evaluator_of(pack).rulebook.rules
            reports = {r.id for r in rules if r.is_obligation and r.status == "report"}
            order = {r.id: r.order for r in rules}     # the rules' `order` key
            rows.sort(key=lambda r: (r["id"] not in reports, order.get(r["id"], 0), -r["days_late"], r["party"]))
            return {"as_of": day.isoformat(), "count": len(rows), "overdue": rows,
                    "errors": [{"party": p, "message": m} for p, m in errors]}

        if treaty is None and not service.treaties.several:
            return await answer(request, state, ("overdue", day), lambda: build_in(chosen[0]))
        if treaty is not None:
            return await answer(request, state, ("overdue", treaty, day), lambda: build_in(treaty))
        return await answer(request, state, ("overdue", "*", day), lambda: [{"treaty": p, **build_in(p)} for p in chosen])

    @app.get("/api/stats", responses={**ERRORS, **CACHED}, tags=["read"],
             summary="Counts like the Meetings of States Parties' progress reports (as `ccm stats --json`).")
    async def get_stats(request: Request, as_of: str | None = Query(None, description="YYYY-MM-DD; default today."),
                        treaty: str | None = Query(None, description="Only this rule pack (e.g. apmbc); default every selected pack. "
                                                        "With several, a list of these objects, each with a `treaty` key.")):
        state = await service.ready_state()
        day = service.as_of(as_of)
        chosen = service.chosen(treaty)

        def build_in(pack: str):
            from engine.check.run import (
                stats,  # lazy: the check's module loads the store (SQLAlchemy)
            )

            tr = service.treaties
            events = [e for party in service.events(state).values() for e in party]
            return stats(tr.get(pack), day, tr.events(pack, events))

        if treaty is None and not service.treaties.several:
            return await answer(request, state, ("stats", day), lambda: build_in(chosen[0]))
        if treaty is not None:
            return await answer(request, state, ("stats", treaty, day), lambda: build_in(treaty))
        return await answer(request, state, ("stats", "*", day), lambda: [{"treaty": p, **build_in(p)} for p in chosen])

    # -- writes (the ISU only)
    @app.post("/api/parties/{iso3}/reports", status_code=201, response_model=Recorded, responses=WRITE_ERRORS,
              tags=["write"], openapi_extra=_body_schema(ReportIn),
              summary="Record a report received (initial, annual or retention). ISU token.")
    async def post_report(request: Request, iso3: str):
        who = _require_isu(request, config)
        body = _parse(ReportIn, await request.body())
        participant = service.party(iso3)
        if body.kind != "initial" and body.year is None:
            raise ApiError(422, f"A {body.kind} report covers a calendar year; give it as \"year\": YYYY.")
        if body.kind == "initial" and body.year is not None:
            raise ApiError(422, "An initial report has no year; leave out \"year\".")
        from engine.record.events import (
            NewEvent,  # lazy: the record's module loads the store (SQLAlchemy)
        )

        event = NewEvent(party=participant.iso3, kind=f"report:{body.kind}", on=body.received,
                         period=str(body.year) if body.year is not None else None, symbol=body.symbol,
                         source=body.source, recorded_by=who)
        return await _write(service, event)

    @app.post("/api/parties/{iso3}/decisions", status_code=201, response_model=Recorded, responses=WRITE_ERRORS,
              tags=["write"], openapi_extra=_body_schema(DecisionIn),
              summary="Record a meeting's decision extending a deadline (checked against the ceiling). ISU token.")
    async def post_decision(request: Request, iso3: str):
        who = _require_isu(request, config)
        body = _parse(DecisionIn, await request.body())
        participant = service.party(iso3)
        try:
            service.evaluator.registry.meeting(body.meeting)
        except LookupError as error:
            raise ApiError(422, str(error.args[0])) from None
        from engine.record.events import (
            NewEvent,  # lazy: the record's module loads the store (SQLAlchemy)
        )

        event = NewEvent(party=participant.iso3, kind=f"decision:extension:art{body.article}", on=body.decided,
                         period=body.meeting, symbol=body.document, source=body.source, recorded_by=who,
                         extra={"granted_deadline": body.granted.isoformat(), "meeting": body.meeting,
                                "document": body.document})
        return await _write(service, event)

    # -- plugins' routes (the letters: mailings reviewed before they go)
    for plugin in load_plugins():
        if plugin.web is not None:
            plugin.web(app, service)

    # -- calendars
    @app.get("/parties/{iso3}/calendar.ics", responses={**ERRORS, **CACHED, 200: {"content": {"text/calendar": {}}}},
             response_class=Response, tags=["calendar"],
             summary="A party's deadlines as an iCalendar feed (all-day events, alarms, legal basis).")
    async def party_calendar(request: Request, iso3: str, as_of: str | None = Query(None, description="YYYY-MM-DD; default today."),
                             treaty: str | None = Query(None, description="Only this rule pack; default every selected pack.")):
        state = await service.ready_state()
        participant = service.party(iso3)
        day = service.as_of(as_of)
        if treaty is None and not service.treaties.several:
            return await service.run(lambda: _calendar(request, service, state, day, [participant.iso3],
                                                       f"CCM deadlines: {participant.name}", ("ics", participant.iso3, day)))
        chosen = service.packs_of(participant.iso3, treaty)
        return await service.run(lambda: _treaty_calendar(request, service, state, day, participant.iso3, chosen,
                                                          f"{' + '.join(p.upper() for p in chosen)} deadlines: {participant.name}"))

    @app.get("/calendar.ics", responses={**ERRORS, **CACHED, 200: {"content": {"text/calendar": {}}}},
             response_class=Response, tags=["calendar"], summary="The ISU's feed: every party's deadlines.")
    async def all_calendar(request: Request, as_of: str | None = Query(None, description="YYYY-MM-DD; default today.")):
        state = await service.ready_state()
        day = service.as_of(as_of)
        return await service.run(lambda: _calendar(request, service, state, day, None, "CCM deadlines: all parties",
                                                   ("ics-all", day)))

    _register_pages(app, service)
    return app


# ----------------------------------------------------------------------------- helpers

def _register_operations(app: FastAPI, service: Service) -> None:
    """/healthz, /api/status, and /docs with the Swagger UI served from this server (no CDN)."""
    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} - API",
                                   swagger_js_url="/docs/assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/assets/swagger-ui.css",
                                   swagger_favicon_url="/docs/assets/favicon-32x32.png")

    @app.get("/healthz", tags=["operations"], summary="200 when the database answers, else 503")
    async def healthz():
        from engine.check.status import (
            database_state,  # lazy: the status reads the database (SQLAlchemy)
        )

        state = await run_in_threadpool(database_state, service.url)
        ok = state["reachable"]
        return JSONResponse({"status": "ok" if ok else "unavailable", "database": "reachable" if ok else state["error"]},
                            status_code=200 if ok else 503, headers={"Cache-Control": "no-store"})

    @app.get("/api/status", tags=["operations"],
             summary="Last check and its outcome, next run, letters, scheduler lock, rulebook and registry hashes")
    async def api_status():
        from engine.check.status import (
            gather,  # lazy: the status reads the database (SQLAlchemy)
        )

        body = await run_in_threadpool(gather, service.settings, service.evaluator)
        return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _is_page(path: str) -> bool:
    return not path.startswith("/api") and not path.endswith((".ics", ".json", ".svg", ".css")) and path != "/docs"


def _conditional(request: Request, body: bytes, etag: str, media_type: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    match = request.headers.get("if-none-match")
    if match and (match.strip() == "*" or etag in [m.strip().removeprefix("W/") for m in match.split(",")]):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def _one_obligation(service: Service, evaluation, obligation_id: str, period: str | None, rulebook=None):
    rulebook = rulebook or service.evaluator.rulebook
    name = evaluation.participant.name
    if obligation_id not in rulebook.ids or not rulebook.rule(obligation_id).is_obligation:
        known = ", ".join(r.id for r in rulebook.rules if r.is_obligation)
        raise ApiError(404, f"There is no obligation {obligation_id[:80]!r}; the obligations are: {known}.")
    found = evaluation.find(obligation_id, period)
    if not found:
        periods = sorted({o.period or "" for o in evaluation.find(obligation_id)})
        hint = f"; its periods are: {', '.join(periods)}" if any(periods) else ""
        raise ApiError(404, f"{name} has no {obligation_id}" + (f" for period {period[:40]!r}" if period else "")
                       + f" as of {evaluation.as_of.isoformat()}{hint}.")
    if len(found) > 1:
        raise ApiError(422, f"The obligation {obligation_id} has {len(found)} periods for {name}; choose one with ?period=: "
                       + ", ".join(o.period or "" for o in found) + ".")
    return found[0]


def _history(service: Service, state: State, iso3: str, day: date, pack: str | None = None) -> list[dict[str, Any]]:
    """One pack's history of the party (the first selected pack's by default)."""
    from engine.record.events import (  # lazy: the record's module loads the store (SQLAlchemy)
        RecordError,
        history,
    )

    tr = service.treaties
    pack = pack or tr.names[0]

    def compute():
        url = service.url if state is not NO_STATE and state.events[0] else None
        scope = {"pack": pack, "home": tr.home} if tr.several or pack != tr.names[0] else {}
        try:
            return history(url, tr.get(pack), iso3, day, **scope)
        except RecordError as error:
            raise ApiError(409, str(error)) from None

    return service.cached(("history", pack, iso3, day, state.key), compute)


def _calendar(request: Request, service: Service, state: State, day: date, parties: list[str] | None,
              name: str, key: tuple) -> Response:
    from engine.web import (
        calendar as calendar_feed,  # lazy: the feeds read the database's check runs (SQLAlchemy)
    )
    def compute():
        if parties is None:
            evaluations, _errors = service.evaluate_all(day, state)
        else:
            evaluations = [service.evaluate(p, day, state) for p in parties]
        stamp = calendar_feed.dtstamp(state.check_finished, day)
        body = calendar_feed.build(evaluations, service.evaluator.rulebook, name=name, stamp=stamp,
                                   domain=service.config.calendar_domain, alarm_days=service.config.alarm_days,
                                   url_for_party=_party_link(service.config.base_url))
        return body, service.etag(state, key, service.config.base_url)

    body, etag = service.cached(("ics",) + key + (state.key, service.config.base_url), compute)
    return _conditional(request, body, etag, ICS_TYPE)


def _treaty_calendar(request: Request, service: Service, state: State, day: date, iso3: str, chosen: list[str],
                     name: str) -> Response:
    """One party's feed under these packs (each obligation cited in its own pack's style)."""
    from engine.web import (
        calendar as calendar_feed,  # lazy: the feeds read the database's check runs (SQLAlchemy)
    )

    key = ("ics-treaties", iso3, tuple(chosen), day)

    def compute():
        tr = service.treaties
        items = [(service.evaluate_in(pack, iso3, day, state), tr.get(pack).rulebook,
                  None if pack == packs.DEFAULT[0] else packs.find(pack).directory) for pack in chosen]
        body = calendar_feed.build_treaties(items, name=name, stamp=calendar_feed.dtstamp(state.check_finished, day),
                                            domain=service.config.calendar_domain, alarm_days=service.config.alarm_days,
                                            url_for_party=_party_link(service.config.base_url))
        return body, service.etag(state, key, service.config.base_url)

    body, etag = service.cached(key + (state.key, service.config.base_url), compute)
    return _conditional(request, body, etag, ICS_TYPE)


def _party_link(base_url: str):
    """Links to the party pages from ``[api] base_url``; none without it. The request's Host header
    is the client's to choose, so a link built from it could point anywhere."""
    base = base_url.strip().rstrip("/")
    if not base.startswith(("https://", "http://")):
        return None
    return lambda iso3: f"{base}/parties/{iso3}"


def _state_tokens(config: ApiConfig) -> list[tuple[str, str]]:
    pairs = []
    for item in (os.environ.get(config.state_tokens_env) or "").split(","):
        party, sep, token = item.strip().partition(":")
        if sep and party.strip() and token.strip():
            pairs.append((party.strip().upper(), token.strip()))
    return pairs


def _token_role(request: Request, config: ApiConfig) -> tuple[str, str | None] | None:
    """("isu", None), ("state", ISO3), ("unknown", None), or None without a bearer token."""
    header = request.headers.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    given = token.strip().encode("utf-8", "surrogateescape")
    isu = os.environ.get(config.isu_token_env) or ""
    if isu and hmac.compare_digest(given, isu.encode()):
        return ("isu", None)
    for party, secret in _state_tokens(config):
        if hmac.compare_digest(given, secret.encode()):
            return ("state", party)
    return ("unknown", None)


def _require_isu(request: Request, config: ApiConfig) -> str:
    role = _token_role(request, config)
    challenge = {"WWW-Authenticate": "Bearer"}
    if role is None:
        raise ApiError(401, "Recording needs the ISU's token: send the header 'Authorization: Bearer <token>'.", challenge)
    if role[0] == "state":
        raise ApiError(403, f"This is {role[1]}'s read token: States can read their deadlines, only the ISU records events.")
    if role[0] != "isu":
        raise ApiError(401, "The bearer token is not one this server knows; recording needs the ISU's token.", challenge)
    return "isu (api)"


def _parse(model: type[Body], raw: bytes) -> Body:
    try:
        data = json.loads(raw or b"null")
    except RecursionError:
        raise ApiError(422, "The request body nests too deeply; send a flat object such as " + _example(model) + ".") from None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(422, "The request body is not valid JSON; send an object such as "
                            + _example(model) + ".") from None
    if not isinstance(data, dict):
        raise ApiError(422, "The request body must be a JSON object such as " + _example(model) + ".")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ApiError(422, _sentence(error.errors())) from None


def _example(model: type[BaseModel]) -> str:
    example = getattr(model, "EXAMPLE", None)
    if isinstance(example, str):     # a plugin's body model says its own
        return example
    if model is ReportIn:
        return '{"kind": "annual", "year": 2024, "received": "2025-04-30"}'
    return str(wording.load()["api"]["decision_example"])   # names an article and a meeting: the pack's


def _sentence(errors: Sequence[Mapping[str, Any]]) -> str:
    """Pydantic's error list as one sentence."""
    parts = []
    for e in errors[:5]:
        where = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(where) or "the request"
        message = str(e.get("msg", "is not valid"))
        if e.get("type") == "missing":
            message = "is required"
        elif e.get("type") == "extra_forbidden":
            message = "is not a known field"
        parts.append(f"'{field}' {message[0].lower() + message[1:] if message else message}")
    return "The request is not valid: " + "; ".join(parts) + "."


async def _write(service: Service, event) -> Response:
    # lazy: database code stays off importing the app (tests/test_api.py)
    from engine.record.events import RecordError, record
    from engine.store import database as store

    def run():
        # lazy: database code stays off importing the app (tests/test_api.py)
        import sqlalchemy.exc

        try:
            if store.current_revision(service.url) is None:
                store.upgrade(service.url)
            store.require_current(service.url)
            return record(service.url, service.evaluator, event)
        except store.DatabaseNotInitialised as error:
            raise ApiError(503, str(error)[0].upper() + str(error)[1:] + ".") from None
        except sqlalchemy.exc.OperationalError as error:
            raise ApiError(503, f"The database cannot be reached: {str(error.orig).strip().splitlines()[0]}.") from None
        except RecordError as error:
            raise ApiError(422, str(error)) from None

    event_id, created = await run_in_threadpool(run)
    service.invalidate()
    name = service.evaluator.registry.participant(event.party).name
    message = (f"Recorded {event_id}: {event.kind} of {name} on {event.on.isoformat()}." if created
               else f"Already recorded as {event_id}; nothing written.")
    payload = {"id": event_id, "created": created, "party": event.party, "kind": event.kind,
               "on": event.on.isoformat(), "message": message}
    return JSONResponse(payload, status_code=201 if created else 200,
                        headers={"Location": f"/api/parties/{event.party}/history"})



# ----------------------------------------------------------------------------- pages

_JINJA = None
_MESSAGES: dict[str, dict[str, str]] | None = None


def messages() -> dict[str, dict[str, str]]:
    """The pages' message catalogue (engine/web/messages.toml), by language."""
    global _MESSAGES
    if _MESSAGES is None:
        catalogue = tomllib.loads((files("engine") / "web" / "messages.toml").read_text(encoding="utf-8"))
        pack = packs.select(load_settings().packs)[0]
        for lang, texts in wording.messages(pack.directory).items():   # the treaty's own messages win
            catalogue.setdefault(lang, {}).update(texts)
        _MESSAGES = catalogue
    return _MESSAGES


def translator(lang: str) -> Callable[..., str]:
    catalogue, english = messages().get(lang, {}), messages()["en"]

    def t(key: str, **values: Any) -> str:
        text = catalogue.get(key) or english.get(key) or key
        return text.format(**values) if values else text

    return t


def _jinja():
    global _JINJA
    if _JINJA is None:
        env = Environment(loader=PackageLoader("engine.web", "templates"), undefined=StrictUndefined,
                          autoescape=select_autoescape(["html", "html.j2", "j2"]), trim_blocks=True, lstrip_blocks=True)
        env.filters["safe_href"] = lambda href: href if str(href).startswith(("https://", "http://")) else "#"
        _JINJA = env
    return _JINJA


def _lang(request: Request) -> str:
    lang = request.query_params.get("lang", "en").lower()     # ?lang=FR as ?lang=fr
    return lang if lang in LANGUAGES else "en"


def _page_context(request: Request, lang: str) -> dict[str, Any]:
    t = translator(lang)
    locale = BABEL_LOCALE[lang]

    def fmt_date(value: Any) -> str:
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value[:10])
            except ValueError:
                return value
        return format_date(value, format="long", locale=locale)

    def ob(obligation_id: str) -> str:
        return t("ob_" + obligation_id.rsplit(".", 1)[-1])

    languages = []
    for code in LANGUAGES:
        params = dict(request.query_params)
        params["lang"] = code
        languages.append((code, messages()[code]["lang_name"], f"{request.url.path}?{urlencode(params)}"))
    return {"t": t, "lang": lang, "fmt_date": fmt_date, "ob": ob, "languages": languages}


def _render_error(request: Request, status: int, detail: str) -> str:
    lang = _lang(request)
    return _jinja().get_template("error.html.j2").render(status=status, detail=detail, **_page_context(request, lang))


def _pack_checks(service: Service, state: State) -> dict[str, dict[str, Any]]:
    """Each selected pack's last check run, and whether it was that pack's first: a run without a
    pack (stored before runs had one) counts for the first pack, as its events do."""
    if state.check_id is None:
        return {}

    def compute() -> dict[str, dict[str, Any]]:
        # lazy: database code stays off importing the app (tests/test_api.py)
        import sqlalchemy as sa

        from engine.store import database as store
        names = service.treaties.names
        R = store.CheckRunRow
        with store.reader_session(service.url) as session:
            rows = session.execute(sa.select(R.pack, sa.func.min(R.id), sa.func.max(R.id)).group_by(R.pack)).all()
            spans: dict[str, list[int]] = {}
            for pack, low, high in rows:
                span = spans.setdefault(pack or names[0], [low, high])
                span[0], span[1] = min(span[0], low), max(span[1], high)
            as_of = dict(session.execute(sa.select(R.id, R.as_of).where(R.id.in_([h for _, h in spans.values()]))).all())
        return {pack: {"id": high, "as_of": as_of[high], "first": high == low}
                for pack, (low, high) in spans.items() if pack in names}

    return service.cached(("pack_checks", state.key), compute)


def _last_check(service: Service, state: State, pack: str | None = None) -> dict[str, Any] | None:
    """The last check run of ``pack`` (default: the first selected pack)."""
    return _pack_checks(service, state).get(pack or service.treaties.names[0])


def _changes(service: Service, state: State, pack: str | None = None) -> list[dict[str, Any]]:
    """The change log of ``pack``'s last check run (default: the first selected pack's)."""
    check = _last_check(service, state, pack)
    if check is None or check["first"]:
        return []

    def compute():
        # lazy: database code stays off importing the app (tests/test_api.py)
        import sqlalchemy as sa

        from engine.store import database as store
        registry = service.treaties.get(pack).registry if pack else service.evaluator.registry
        names = {iso3: p.name for iso3, p in registry.participants.items()}
        C = store.ChangeRow
        with store.reader_session(service.url) as session:
            rows = session.execute(sa.select(C.party, C.obligation_id, C.period, C.field, C.old, C.new, C.reason)
                                   .where(C.check_run_id == check["id"])
                                   .order_by(C.party, C.obligation_id, C.period, C.field)).all()
        return [{**r._asdict(), "name": names.get(r.party, r.party)} for r in rows]

    return service.cached(("changes", pack, check["id"], state.key), compute)


def dashboard_context(service: Service, state: State, day: date) -> dict[str, Any]:
    """The dashboard's sections (the daily digest's, computed live as of ``day``) and the timeline."""
    from engine.check.run import (  # lazy: the check's module loads the store (SQLAlchemy)
        digest_sections,
        next_meeting,
    )

    def compute():
        evaluations, errors = service.evaluate_all(day, state)
        listed = Listed(service.evaluator.rulebook, day, next_meeting(service.evaluator, day))
        for evaluation in evaluations:
            listed.add_evaluation(evaluation)
        names = {iso3: p.name for iso3, p in service.evaluator.registry.participants.items()}
        check = _last_check(service, state)
        context = {**digest_sections(listed, service.evaluator, names, errors), "run_id": state.check_id or 0,
                   "first_check": check["first"] if check else True, "counts": {}, "changes": [], "no_contact": None}
        rows = timeline.rows(evaluations, service.evaluator.rulebook)
        context["timeline_rows"] = rows
        context["parties"] = [{"iso3": e.participant.iso3, "name": e.participant.name} for e in evaluations]
        return context

    return service.cached(("dashboard", day, state.key), compute)


def treaty_context(service: Service, state: State, day: date, pack: str) -> dict[str, Any]:
    """A selected pack's dashboard section beside the first's: its digest sections as of ``day``,
    its rows named by its own rulebook, its last check and that check's changes."""
    from engine.check.run import (  # lazy: the check's module loads the store (SQLAlchemy)
        digest_sections,
        next_meeting,
    )

    def compute():
        evaluator = service.treaties.get(pack)
        evaluations, errors = service.evaluate_all_in(pack, day, state)
        listed = Listed(evaluator.rulebook, day, next_meeting(evaluator, day))
        for evaluation in evaluations:
            listed.add_evaluation(evaluation)
        names = {iso3: p.name for iso3, p in evaluator.registry.participants.items()}
        sections = digest_sections(listed, evaluator, names, errors)
        for key in ("overdue_reports", "overdue_other", "unknown_other", "upcoming", "extension_requests", "decisions_to_record",
                    "missed"):
            for row in sections[key]:
                row["label"] = evaluator.rulebook.name_of(row["obligation"])
        changes = _changes(service, state, pack)
        for change in changes:
            change["label"] = evaluator.rulebook.name_of(change["obligation_id"])
        return {**sections, "treaty": pack, "title": evaluator.rulebook.title,
                "check": _last_check(service, state, pack), "changes": changes}

    return service.cached(("treaty_dashboard", pack, day, state.key), compute)


def _register_pages(app: FastAPI, service: Service) -> None:
    @app.get("/", response_class=HTMLResponse, tags=["pages"], responses=ERRORS,
             summary="The ISU dashboard: overdue reports, deadlines ahead, extension requests, changes, timeline.")
    async def dashboard(request: Request, as_of: str | None = Query(None, description="YYYY-MM-DD; default today."),
                        lang: str | None = Query(None, description="en, fr or es.")):
        state = await service.ready_state()
        day = service.as_of(as_of)
        lang = _lang(request)
        page = _page_context(request, lang)

        def render() -> str:
            context = dashboard_context(service, state, day)
            svg = timeline.render(context["timeline_rows"], day, title=page["t"]("timeline"), date_format=page["fmt_date"],
                                  labels={"as_of": page["t"]("as_of")})
            names = service.treaties.names
            others = [treaty_context(service, state, day, pack) for pack in names[1:]]   # the first is the page's main part
            attention = context["attention"] or any(other["attention"] for other in others)
            sections: dict[str, Any] = {"mailings": []}     # plugins fill theirs (the letters: mailings to approve)
            for plugin in load_plugins():
                if plugin.dashboard is not None:
                    sections.update(plugin.dashboard(service))
            return _jinja().get_template("dashboard.html.j2").render(
                **{k: v for k, v in context.items() if k not in ("as_of", "changes", "attention")}, **page, as_of=day,
                svg=svg, attention=attention, check=_last_check(service, state), changes=_changes(service, state),
                other_treaties=others, title=service.evaluator.rulebook.title if len(names) > 1 else None, **sections)

        return HTMLResponse(await service.run(render), headers={"Cache-Control": "no-cache"})

    @app.get("/timeline.svg", tags=["pages"], responses={**ERRORS, 200: {"content": {"image/svg+xml": {}}}},
             response_class=Response, summary="The timeline of the extendable deadlines and their extensions alone, as SVG.")
    async def timeline_svg(request: Request, as_of: str | None = Query(None, description="YYYY-MM-DD; default today.")):
        state = await service.ready_state()
        day = service.as_of(as_of)

        def compute():
            context = dashboard_context(service, state, day)
            body = timeline.render(context["timeline_rows"], day).encode("utf-8")
            return body, service.etag(state, ("timeline", day))

        key = ("svg", day, state.key)
        body, etag = service.peek(key) or await service.run(lambda: service.cached(key, compute))
        return _conditional(request, body, etag, "image/svg+xml")

    @app.get("/parties/{iso3}", response_class=HTMLResponse, tags=["pages"], responses=ERRORS,
             summary="A State's page: status, deadlines with their explanation, history; ?lang=en|fr|es.")
    async def party_page(request: Request, iso3: str, as_of: str | None = Query(None, description="YYYY-MM-DD; default today."),
                         lang: str | None = Query(None, description="en, fr or es.")):
        state = await service.ready_state()
        participant = service.party(iso3)
        day = service.as_of(as_of)
        lang = _lang(request)
        listed = service.packs_of(participant.iso3, None)   # every selected treaty the party is listed by
        page = _page_context(request, lang)

        def render() -> str:
            evaluation = service.evaluate_in(listed[0], participant.iso3, day, state)
            rulebook = service.evaluator_of(listed[0]).rulebook
            items = [{"obligation": o, "explanation": explain(evaluation, rulebook, o)}
                     for o in evaluation.obligations]
            others = []
            for pack in listed[1:]:   # the first is the page's main section, as with one pack
                other, its_rules = service.evaluate_in(pack, participant.iso3, day, state), service.evaluator_of(pack).rulebook
                others.append({"treaty": pack, "title": its_rules.title, "party": other.to_json()["party"],
                               "obligations": [{"obligation": o, "name": its_rules.name_of(o.id),
                                                "explanation": explain(other, its_rules, o)} for o in other.obligations],
                               "history": _history(service, state, participant.iso3, day, pack)})
            return _jinja().get_template("party.html.j2").render(
                **page, iso3=participant.iso3, name=display_name(participant.iso3, lang, participant.localized_name(lang)),
                registry_name=participant.name,
                party=evaluation.to_json()["party"], as_of=day, obligations=items,
                history=_history(service, state, participant.iso3, day, listed[0]),
                treaty=listed[0] if len(service.treaties.names) > 1 else None,
                title=rulebook.title if len(service.treaties.names) > 1 else None, other_treaties=others)

        return HTMLResponse(await service.run(render), headers={"Cache-Control": "no-cache"})

    @app.get("/static/style.css", include_in_schema=False)
    async def style():
        return Response((files("engine") / "web" / "static" / "style.css").read_bytes(), media_type="text/css",
                        headers={"Cache-Control": "max-age=3600"})
