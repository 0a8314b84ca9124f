"""Lineage over HTTP: `GET /v1/lineage/{key}` — any id a controller holds (an opportunity,
an account, an ERP customer, invoice, credit memo or journal id, d2r's external id of one,
a PSA project id...) and the whole chain it belongs to, from the hub's key map
(reporting/keymap.py): each record's system and instance, its own id, d2r's external id,
and the workflow that wrote it. Records of legal entities outside the caller's scope are
left out; an id the hub does not know is 404 problem+json."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from api.auth import Principal, require_roles
from api.deps import out_of_scope
from api.problems import ProblemError, problems
from reporting.hub import ReportingHub, money_str

router = APIRouter(tags=["lineage"])

LINEAGE_READERS = ("finance", "delivery_ops", "sales_ops", "auditor", "integration_admin")
lineage_reader = require_roles(*LINEAGE_READERS)

Key = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9:._@\-]+$")]


def _hub(request: Request) -> ReportingHub:
    hub: ReportingHub | None = getattr(request.app.state, "hub", None)
    if hub is None:
        raise ProblemError(503, "Reporting unavailable", "the reporting hub is not configured")
    return hub


def _view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "system": row["system"],
        "instance": row["instance"] or None,
        "record_type": row["record_type"],
        "id": row["record_id"] or row["record_key"],  # the system's own id, else d2r's key for it
        "external_id": row["external_id"],
        "opportunity_id": row["opportunity_id"],
        "project_id": row["project_id"],
        "legal_entity": row["legal_entity"],
        "related": list(row["related"]),
        "workflow_id": row["workflow_id"],
        "recorded_by": row["source"],
        "first_seen_at": row["first_seen_at"],
        "last_seen_at": row["last_seen_at"],
    }


@router.get("/v1/lineage/{key}", summary="Every record, in every system, that an id leads to", responses=problems(404))
async def lineage(request: Request, key: Key, principal: Annotated[Principal, Depends(lineage_reader)]) -> JSONResponse:
    found = await _hub(request).lineage(key)
    if not found["matched"]:
        raise ProblemError(404, "Not Found", f"the hub's key map holds no record with the id {key!r}", key=key)
    seen = [m for m in found["matched"] if principal.sees(m["legal_entity"]) or m["legal_entity"] is None]
    if not seen:
        raise out_of_scope(principal, found["matched"][0]["legal_entity"])
    chain = [r for r in found["records"] if r["legal_entity"] is None or principal.sees(r["legal_entity"])]
    body = {
        "key": key,
        "opportunities": found["opportunities"],
        "matched": [_view(m) for m in seen],
        "chain": [_view(r) for r in chain],
        "truncated": found["truncated"],
        "hidden": len(found["records"]) - len(chain),  # records outside your legal entities
    }
    return JSONResponse(money_str(body))
