"""Reporting reads over HTTP: KPIs, reconciliation, exceptions, audit, and the dashboard.

The hub is `request.app.state.hub` (a `reporting.hub.ReportingHub`, set by the app
factory). Retrying an exception needs the Temporal client: the app factory may set
`request.app.state.exception_retrier`, a callable taking the exception (a dict) and who
asks, which asks the waiting workflow to retry (sync or async). Without it, retry answers 503.
Every mutation here writes an audit row (who, what, target, from where).
"""

from __future__ import annotations

import inspect
import pathlib
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, require_roles
from api.deps import authorize, entity_filter, visible_entities
from api.door import check_legal_entity
from api.inputs import Comment, Filter, IsoDate, IsoDateTime
from api.problems import ProblemError, problems
from reporting.hub import ExceptionNotFoundError, ReportingHub, money_str, recon_status
from reporting.kpis import GROUPS, KPI_NAMES, KpiError, KpiQuery

router = APIRouter(tags=["reporting"])

REPORT_READERS = ("finance", "delivery_ops", "sales_ops", "auditor")
EXCEPTION_READERS = ("integration_admin", "finance", "delivery_ops", "sales_ops", "auditor")
EXCEPTION_WRITERS = ("integration_admin", "finance")
AUDIT_READERS = ("auditor", "finance")
RECON_READERS = ("finance", "delivery_ops", "auditor", "integration_admin")
RECON_RUNNERS = ("finance", "integration_admin")

# Module-level dependencies, so an app (or a test) can override them by identity.
reports_reader = require_roles(*REPORT_READERS)
exceptions_reader = require_roles(*EXCEPTION_READERS)
exceptions_writer = require_roles(*EXCEPTION_WRITERS)
audit_reader = require_roles(*AUDIT_READERS)
recon_reader = require_roles(*RECON_READERS)
recon_runner = require_roles(*RECON_RUNNERS)

STATIC = pathlib.Path(__file__).with_name("static")
PERIOD = r"^\d{4}-(0[1-9]|1[0-2])$"
ENTITY = r"^[A-Z0-9]{2,10}$"
ExceptionId = Annotated[int, Path(ge=1, le=2**63 - 1)]  # the hub's bigint ids


def _hub(request: Request) -> ReportingHub:
    hub: ReportingHub | None = getattr(request.app.state, "hub", None)
    if hub is None:
        raise ProblemError(503, "Reporting unavailable", "the reporting hub is not configured")
    return hub


def _json(body: Any, status: int = 200) -> JSONResponse:
    """Decimals as strings (never floats), dates in ISO form."""
    return JSONResponse(money_str(body), status_code=status)


async def audit_mutation(
    request: Request, principal: Principal, action: str, target: str | None, detail: dict[str, Any] | None = None
) -> None:
    """Append one audit row for an API mutation (usable by other routers too)."""
    hub = _hub(request)
    await hub.record_audit(
        actor=principal.subject,
        role=",".join(sorted(principal.roles)),
        action=action,
        target=target,
        detail=detail or {},
        source_ip=request.client.host if request.client else None,
    )


# ---------------------------------------------------------------------------- KPIs
@router.get("/v1/reports", summary="The KPIs and how they can be grouped")
async def list_reports(_: Annotated[Principal, Depends(reports_reader)]) -> dict[str, Any]:
    return {"kpis": list(KPI_NAMES), "group_by": list(GROUPS), "currency": ["reporting", "functional"]}


@router.get("/v1/reports/{kpi}", summary="One KPI, grouped and filtered", responses=problems(404))
async def report(
    request: Request,
    kpi: Annotated[str, Path(max_length=100)],
    principal: Annotated[Principal, Depends(reports_reader)],
    group_by: Filter = "none",
    period: Annotated[str | None, Query(pattern=PERIOD, description="one month")] = None,
    period_from: Annotated[str | None, Query(pattern=PERIOD)] = None,
    period_to: Annotated[str | None, Query(pattern=PERIOD)] = None,
    as_of: IsoDate | None = None,
    currency: Literal["reporting", "functional"] = "reporting",
    legal_entity: Annotated[str | None, Query(pattern=ENTITY)] = None,
    customer_id: Filter | None = None,
    project_id: Filter | None = None,
    consultant_id: Filter | None = None,
    service_line: Filter | None = None,
    geography: Filter | None = None,
    dso_days: Annotated[int, Query(ge=1, le=365)] = 90,
) -> JSONResponse:
    if kpi not in KPI_NAMES:
        raise ProblemError(404, "Unknown KPI", f"{kpi!r} is not one of {', '.join(KPI_NAMES)}")
    legal_entity = entity_filter(principal, legal_entity)
    query = KpiQuery(
        group_by=group_by,
        period_from=period_from or period,
        period_to=period_to or period,
        as_of=as_of,
        currency=currency,
        legal_entity=legal_entity,
        customer_id=customer_id,
        project_id=project_id,
        consultant_id=consultant_id,
        service_line=service_line,
        geography=geography,
        dso_days=dso_days,
    )
    try:
        result = await _hub(request).kpi(kpi, query)
    except KpiError as exc:
        raise ProblemError(422, "Unsupported report query", str(exc)) from exc
    return _json(
        {
            "kpi": result.kpi,
            "group_by": result.group_by,
            "unit": result.unit,
            "currency_basis": result.currency_basis,
            "as_of": result.as_of,
            "period_from": query.period_from,
            "period_to": query.period_to,
            "rows": result.rows,
        }
    )


# ---------------------------------------------------------------------------- FX rates
CURRENCY = r"^[A-Z]{3}$"


@router.get("/v1/fx-rates", summary="The dated FX rates the hub converts with (from the ERP)")
async def fx_rates(
    request: Request,
    _: Annotated[Principal, Depends(reports_reader)],
    from_currency: Annotated[str | None, Query(alias="from", pattern=CURRENCY)] = None,
    to_currency: Annotated[str | None, Query(alias="to", pattern=CURRENCY)] = None,
    on: Annotated[IsoDate | None, Query(description="only the rate in force on this day, per pair")] = None,
    since: IsoDate | None = None,
) -> JSONResponse:
    rates = await _hub(request).fx_rates(from_currency, to_currency, on, since)
    return _json({"on": on, "rates": rates})


# ---------------------------------------------------------------------------- reconciliation
class ReconcileBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: str = Field(pattern=PERIOD)
    legal_entity: str = Field(pattern=ENTITY)


@router.get("/v1/reconciliation", summary="Latest reconciliation per legal entity and period")
async def reconciliation(
    request: Request,
    principal: Annotated[Principal, Depends(recon_reader)],
    period: Annotated[str | None, Query(pattern=PERIOD)] = None,
    legal_entity: Annotated[str | None, Query(pattern=ENTITY)] = None,
) -> JSONResponse:
    legal_entity = entity_filter(principal, legal_entity)
    hub = _hub(request)
    runs = await hub.latest_reconciliation(period, legal_entity)
    for run in runs:
        run["status"] = recon_status(run["projects_checked"], run["differences"])
        run["difference_details"] = await hub.reconciliation_differences(run["run_id"])
    return _json({"period": period, "legal_entity": legal_entity, "runs": runs})


@router.post("/v1/reconciliation/run", summary="Reconcile PSA, ERP and hub for one scope")
async def run_reconciliation(
    request: Request,
    body: ReconcileBody,
    principal: Annotated[Principal, Depends(recon_runner)],
) -> JSONResponse:
    settings = getattr(request.app.state, "settings", None)
    if settings is not None:
        check_legal_entity(body.legal_entity, settings.legal_entities)
    authorize(principal, body.legal_entity, write=True)
    result = await _hub(request).reconcile(body.period, body.legal_entity)
    await audit_mutation(
        request,
        principal,
        "reconciliation.run",
        f"{body.legal_entity}/{body.period}",
        {"run_id": result["run_id"], "differences": len(result["differences"])},
    )
    return _json(result)


# ---------------------------------------------------------------------------- exceptions
class ResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Comment | None = None


@router.get("/v1/exceptions", summary="Exceptions (open by default)")
async def list_exceptions(
    request: Request,
    principal: Annotated[Principal, Depends(exceptions_reader)],
    status: Literal["open", "retrying", "resolved", "all"] = "open",
    kind: Filter | None = None,
    legal_entity: Annotated[str | None, Query(pattern=ENTITY)] = None,
    project_id: Filter | None = None,
    opportunity_id: Filter | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    items = await _hub(request).list_exceptions(
        status=None if status == "all" else status,
        kind=kind,
        legal_entity=entity_filter(principal, legal_entity),
        project_id=project_id,
        opportunity_id=opportunity_id,
        limit=limit,
        offset=offset,
    )
    return _json({"items": items, "limit": limit, "offset": offset})


async def _exception(request: Request, exception_id: int, principal: Principal, *, write: bool) -> dict[str, Any]:
    try:
        found = await _hub(request).get_exception(exception_id)
    except ExceptionNotFoundError as exc:
        raise ProblemError(404, "Not found", f"no exception {exception_id}") from exc
    authorize(principal, found.get("legal_entity"), write=write)
    return found


@router.get("/v1/exceptions/{exception_id}", summary="One exception", responses=problems(404))
async def get_exception(
    request: Request,
    exception_id: ExceptionId,
    principal: Annotated[Principal, Depends(exceptions_reader)],
) -> JSONResponse:
    return _json(await _exception(request, exception_id, principal, write=False))


@router.post(
    "/v1/exceptions/{exception_id}/resolve", summary="Mark an exception resolved", responses=problems(404, 409)
)
async def resolve_exception(
    request: Request,
    exception_id: ExceptionId,
    principal: Annotated[Principal, Depends(exceptions_writer)],
    body: ResolveBody | None = None,
) -> JSONResponse:
    await _exception(request, exception_id, principal, write=True)
    note = body.note if body else None
    done = await _hub(request).resolve_exception(exception_id, resolved_by=principal.subject, note=note)
    await audit_mutation(
        request,
        principal,
        "exception.resolve",
        f"exception/{exception_id}",
        {"note": note, "workflow_id": done.get("workflow_id")},
    )
    return _json(done)


@router.post(
    "/v1/exceptions/{exception_id}/retry",
    summary="Ask the waiting workflow to retry (needs the Temporal client)",
    responses=problems(404, 409),
)
async def retry_exception(
    request: Request,
    exception_id: ExceptionId,
    principal: Annotated[Principal, Depends(exceptions_writer)],
) -> JSONResponse:
    exception = await _exception(request, exception_id, principal, write=True)
    if exception["status"] == "resolved":
        raise ProblemError(409, "Already resolved", f"exception {exception_id} is resolved")
    retrier = getattr(request.app.state, "exception_retrier", None)
    if retrier is None:
        raise ProblemError(
            503,
            "Retry unavailable",
            "retry is unavailable: this API has no Temporal client wired for "
            "exceptions (app.state.exception_retrier is not set)",
        )
    # Marked before the signal: the workflow may reopen it (its step failed again) before
    # this request would get to mark it, which must not leave it `retrying` for good.
    hub = _hub(request)
    updated = await hub.mark_exception_retrying(exception_id)
    try:
        outcome = retrier(exception, principal.subject)
        if inspect.isawaitable(outcome):
            outcome = await outcome
    except BaseException:
        await hub.reopen_exception(exception_id, exception["status"])
        raise
    await audit_mutation(
        request,
        principal,
        "exception.retry",
        f"exception/{exception_id}",
        {"workflow_id": exception.get("workflow_id")},
    )
    return _json(updated, status=202)


# ---------------------------------------------------------------------------- operations
def links(request: Request, row: dict[str, Any]) -> dict[str, Any]:
    """Where a person goes from a row: the engagement in the API, its history in the Web UI."""
    settings = getattr(request.app.state, "settings", None)
    ui = getattr(settings, "ui_base_url", "http://127.0.0.1:8233").rstrip("/")
    namespace = getattr(settings, "temporal_namespace", "default")
    workflow_id = row.get("workflow_id")
    opportunity = row.get("opportunity_id")
    row["api_href"] = f"/v1/engagements/{opportunity}" if opportunity else None
    row["ui_href"] = row.get("workflow_link") or (
        f"{ui}/namespaces/{namespace}/workflows/{workflow_id}" if workflow_id is not None else None
    )
    return row


@router.get("/v1/operations", summary="What needs a person: the dashboard's operations panel")
async def operations_panel(
    request: Request,
    principal: Annotated[Principal, Depends(exceptions_reader)],
    legal_entity: Annotated[str | None, Query(pattern=ENTITY)] = None,
    posting_delay_days: Annotated[
        int, Query(ge=0, le=90, description="approved time not posted this many days after its period")
    ] = 3,
) -> JSONResponse:
    panel = await _hub(request).operations(
        legal_entity=entity_filter(principal, legal_entity),
        posting_delay_days=posting_delay_days,
        today=date.today(),
    )
    for part in ("failed_provisioning", "delayed_postings", "invoice_mismatches", "master_data_conflicts"):
        panel[part]["items"] = [links(request, row) for row in panel[part]["items"]]
    panel["web_ui"] = links(request, {"workflow_id": ""})["ui_href"]  # + a workflow id: its page
    return _json(panel)


# ---------------------------------------------------------------------------- audit
@router.get("/v1/audit", summary="The append-only audit log, newest first")
async def audit_log(
    request: Request,
    principal: Annotated[Principal, Depends(audit_reader)],
    actor: Filter | None = None,
    action: Filter | None = None,
    since: Annotated[IsoDateTime | None, Query(description="ISO 8601, e.g. 2026-11-30T00:00:00Z")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    if visible_entities(principal) is not None:  # the log spans every entity: not for a scoped reader
        raise ProblemError(403, "Forbidden", "the audit log spans every legal entity: it needs an all-entity scope")
    items = await _hub(request).list_audit(actor=actor, action=action, since=since, limit=limit, offset=offset)
    return _json({"items": items, "limit": limit, "offset": offset})


# ---------------------------------------------------------------------------- dashboard
@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
async def dashboard() -> HTMLResponse:
    """The page is public; its data calls need a token (`?token=` in dev, see docs)."""
    return HTMLResponse((STATIC / "dashboard.html").read_text(encoding="utf-8"), headers={"Cache-Control": "no-store"})
