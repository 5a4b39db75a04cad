"""The letters' routes on the web app: the mailings planned, and their approval by the ISU (the plugin's web hook).

They refuse, parse and answer as the API's own routes do (engine.web.app's helpers): the ISU's
bearer token, a JSON body checked by a model, a sentence for every refusal.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from engine.store import database as store
from engine.web.app import (
    WRITE_ERRORS,
    ApiError,
    Service,
    _body_schema,
    _parse,
    _require_isu,
)
from notifiers import batches
from notifiers.config import load_letters_config


class ApproveIn(BaseModel):
    """Who approves a mailing (recorded in the delivery log with the time)."""

    model_config = ConfigDict(extra="forbid")
    EXAMPLE: ClassVar[str] = '{"by": "J. Smith"}'
    by: str = Field(min_length=1, max_length=200, description="Who approves, e.g. the coordinator's name.")


def register(app: FastAPI, service: Service) -> None:
    """``GET /api/letters/batches`` and ``POST /api/letters/batches/{id}/approve``, both with the ISU's token."""
    config = service.config

    @app.get("/api/letters/batches", responses=WRITE_ERRORS, tags=["letters"],
             summary="The mailings planned, newest first, with who approved them. ISU token.")
    async def get_batches(request: Request):
        _require_isu(request, config)
        rows = await run_in_threadpool(_batches, service)
        return JSONResponse(rows, headers={"Cache-Control": "no-store"})

    @app.post("/api/letters/batches/{batch_id}/approve", responses=WRITE_ERRORS, tags=["letters"],
              openapi_extra=_body_schema(ApproveIn),
              summary="Approve a planned mailing: its notes are dated today and queued for delivery. ISU token.")
    async def approve_batch(request: Request, batch_id: int):
        _require_isu(request, config)
        body = _parse(ApproveIn, await request.body())
        approval = await run_in_threadpool(_approve, service, batch_id, body.by)
        return JSONResponse({"batch": approval.batch_id, "approved_by": approval.approved_by,
                             "approved_at": approval.approved_at.isoformat(), "notes": approval.notes,
                             "items": approval.items, "no_contact": approval.no_contact,
                             "settled": approval.settled},
                            headers={"Cache-Control": "no-store"})


def planned_batches(service: Service) -> list[dict[str, Any]]:
    """The mailings awaiting approval, for the dashboard (none before the letters' tables exist)."""
    if store.current_revision(service.url) != store.head_revision():
        return []
    return [b for b in _batches(service) if b["status"] == "planned"]


def _letters_ready(service: Service) -> None:
    if store.current_revision(service.url) is None:
        raise ApiError(404, "No mailing was planned: the database holds no letters yet (`ccm letters plan`).")
    store.require_current(service.url)


def _batches(service: Service) -> list[dict[str, Any]]:
    _letters_ready(service)
    return [{"batch": b.id, "treaty": b.pack, "as_of": b.as_of.isoformat(), "planned_at": b.created_at.isoformat(), "items": items,
             "states": states, "status": b.status, "approved_by": b.approved_by,
             "approved_at": b.approved_at.isoformat() if b.approved_at else None}
            for b, items, states in batches.list_batches(service.url, 50)]


def _approve(service: Service, batch_id: int, by: str) -> batches.Approval:
    _letters_ready(service)
    try:
        # the batch's own pack's evaluator words and re-checks its notes
        return batches.approve(service.url, batch_id, by, service.treaties,
                               load_letters_config(service.settings), datetime.now(UTC))
    except batches.BatchError as error:
        text = str(error)
        status = 404 if text.startswith("there is no batch") else 409 if "already approved" in text else 422
        raise ApiError(status, text[0].upper() + text[1:] + ".") from None
