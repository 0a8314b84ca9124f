"""Month-end over HTTP: start a legal entity's period close (idempotent by its id), read its
summary and page through its report (one line per engagement, every exception: in the hub),
approve the lock (finance, four eyes), cancel it before the lock, and start a posting run."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api import door
from api.auth import ANY_ROLE, Principal, require_roles
from api.deps import EntityReader, authorize, path_entity_access
from api.inputs import Comment, IsoDate
from api.problems import ProblemError, problems
from api.reports import audit_mutation
from api.settings import ApiSettings
from contracts.ids import close_workflow_id, posting_workflow_id
from contracts.period_close import CancelClose, CloseStep, LockDecision, PeriodCloseReport, PeriodCloseRequest
from contracts.posting import PostingConfig, PostingInput, PostingProgress
from contracts.queues import TaskQueues
from reporting import close_report
from workflows.period_close import PeriodCloseWorkflow
from workflows.posting import TimeAndExpensePostingWorkflow

router = APIRouter(tags=["period close"])

ENTITY = r"^[A-Z0-9]{2,10}$"
PERIOD = r"^\d{4}-(0[1-9]|1[0-2])$"


class StartClose(BaseModel):
    model_config = ConfigDict(extra="forbid")

    legal_entity: str = Field(pattern=ENTITY)
    period: str = Field(pattern=PERIOD, description="the month to close, e.g. 2026-11")


class ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: str = Field(default="approve", pattern="^(approve|reject)$")
    comment: Comment | None = None
    override_reason: Comment | None = Field(
        default=None, description="required to approve while reconciliation shows differences; kept in the audit log"
    )


class CancelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Comment | None = None


class ReportPage(BaseModel):
    """One page of a close's report; `next_cursor` is None on the last page."""

    report_id: str
    items: list[dict[str, Any]]
    next_cursor: str | None = None


class StartPosting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    legal_entity: str = Field(pattern=ENTITY)
    posting_date: IsoDate | None = Field(default=None, description="default: today")
    cutoff: IsoDate | None = Field(default=None, description="post approved entries dated up to here")
    time_mode: str = Field(default="time_bill", pattern="^(time_bill|journal)$")


class PostingStarted(BaseModel):
    workflow_id: str
    status: str
    progress: PostingProgress | None = None


def _client(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


def _window(settings: ApiSettings) -> door.OpenWindow:
    return door.OpenWindow.around(date.today(), settings.open_period_months_back, settings.open_period_months_forward)


def _queues(settings: ApiSettings) -> TaskQueues:
    return settings.queues()  # with the hub's queue when there is a hub: the month-end writes its facts


async def _report(client: Client, legal_entity: str, period: str) -> PeriodCloseReport:
    handle = client.get_workflow_handle(close_workflow_id(legal_entity, period))
    try:
        return await handle.query(PeriodCloseWorkflow.report)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise ProblemError(404, "Not Found", f"no period close for {legal_entity} {period}") from error
        raise


# A close that ended without locking (cancelled before its lock, or its lock rejected so the
# differences can be fixed) is not the period's close: finance starts it again.
_ENDED_UNLOCKED = {CloseStep.CANCELLED, CloseStep.REJECTED}


async def _reuse_policy(client: Client, wid: str) -> WorkflowIDReusePolicy | None:
    """How a start may reuse the close's id, or None when the close stands and a POST reads it.
    A running close, or one that finished locked (or delegated), stands; a failed or terminated
    one, or one that ended CANCELLED or REJECTED, may start again."""
    handle = client.get_workflow_handle(wid, result_type=PeriodCloseReport)
    try:
        desc = await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
        raise
    if desc.status == WorkflowExecutionStatus.RUNNING:
        return None
    if desc.status != WorkflowExecutionStatus.COMPLETED:
        return WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
    # The result is read from the history (no worker needed, unlike a query).
    ended = await handle.result()
    return WorkflowIDReusePolicy.ALLOW_DUPLICATE if ended.step in _ENDED_UNLOCKED else None


async def _audit(request: Request, principal: Principal, action: str, target: str, detail: dict[str, Any]) -> None:
    if getattr(request.app.state, "hub", None) is not None:
        await audit_mutation(request, principal, action, target, detail)


@router.post(
    "/v1/period-close",
    status_code=201,
    response_model=PeriodCloseReport,
    summary="Start the month-end close of a legal entity (idempotent: an existing close is returned)",
    responses={200: {"model": PeriodCloseReport, "description": "It was started before: the close as it stands"}},
)
async def start_close(
    body: StartClose,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_roles("finance", "integration_admin"))],
) -> PeriodCloseReport:
    client = _client(request)
    settings: ApiSettings = request.app.state.settings
    door.check_legal_entity(body.legal_entity, settings.legal_entities)
    authorize(principal, body.legal_entity, write=True)
    _window(settings).check_period(body.period, "period")
    wid = close_workflow_id(body.legal_entity, body.period)
    response.headers["Location"] = f"/v1/period-close/{body.legal_entity}/{body.period}"
    reuse = await _reuse_policy(client, wid)
    if reuse is None:
        response.status_code = 200
        return await _report(client, body.legal_entity, body.period)
    try:
        await client.start_workflow(
            PeriodCloseWorkflow.run,
            PeriodCloseRequest(
                legal_entity=body.legal_entity,
                period=body.period,
                requested_by=principal.subject,
                queues=_queues(settings),
            ),
            id=wid,
            task_queue=settings.workflow_task_queue,
            # A running close is the close (two POSTs at once start one); what may be
            # started again after a finished one is `_reuse_policy`'s.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=reuse,
            static_summary=f"Month-end close {body.legal_entity} {body.period}",
        )
    except WorkflowAlreadyStartedError:
        response.status_code = 200
    await _audit(request, principal, "period_close.start", f"close/{body.legal_entity}/{body.period}", {})
    return await _report(client, body.legal_entity, body.period)


@router.get(
    "/v1/period-close/{legal_entity}/{period}",
    response_model=PeriodCloseReport,
    summary="Where the close stands, and its report (billed, recognized, deferred, exceptions)",
    responses=problems(404),
)
async def get_close(
    legal_entity: Annotated[str, Path(pattern=ENTITY)],
    period: Annotated[str, Path(pattern=PERIOD)],
    request: Request,
    principal: EntityReader,
) -> PeriodCloseReport:
    return await _report(_client(request), legal_entity, period)


@router.post(
    "/v1/period-close/{legal_entity}/{period}/approve",
    response_model=PeriodCloseReport,
    summary="Approve (or reject) locking the period — finance, and not whoever started the close",
    responses=problems(404, 409),
)
async def approve_close(
    legal_entity: Annotated[str, Path(pattern=ENTITY)],
    period: Annotated[str, Path(pattern=PERIOD)],
    request: Request,
    principal: Annotated[Principal, Depends(path_entity_access("finance", write=True))],
    body: Annotated[ApproveBody | None, Body()] = None,
) -> PeriodCloseReport:
    body = body or ApproveBody()  # no body: approve, without a comment
    handle = _client(request).get_workflow_handle(close_workflow_id(legal_entity, period))
    try:
        report: PeriodCloseReport = await handle.execute_update(
            PeriodCloseWorkflow.approve_lock,
            LockDecision(
                approve=body.decision == "approve",
                by=principal.subject,
                roles=sorted(principal.roles),
                comment=body.comment,
                override_reason=body.override_reason,
            ),
        )
    except WorkflowUpdateFailedError as error:
        raise door.refusal_problem(error) from error
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise ProblemError(404, "Not Found", f"no running period close for {legal_entity} {period}") from error
        raise
    detail: dict[str, Any] = {"comment": body.comment}
    rec = report.reconciliation
    if body.decision == "approve" and rec is not None and rec.status == "differences":
        # the lock went over known differences: who, why and how many, in the audit log
        detail.update(override_reason=body.override_reason, differences_overridden=rec.differences)
    await _audit(request, principal, f"period_close.{body.decision}", f"close/{legal_entity}/{period}", detail)
    return report


@router.post(
    "/v1/period-close/{legal_entity}/{period}/cancel",
    response_model=PeriodCloseReport,
    summary="Cancel the close before its lock — finance (the requester too) or the integration admin",
    responses=problems(404, 409),
)
async def cancel_close(
    legal_entity: Annotated[str, Path(pattern=ENTITY)],
    period: Annotated[str, Path(pattern=PERIOD)],
    request: Request,
    principal: Annotated[Principal, Depends(path_entity_access("finance", "integration_admin", write=True))],
    body: Annotated[CancelBody | None, Body()] = None,
) -> PeriodCloseReport:
    reason = body.reason if body else None
    handle = _client(request).get_workflow_handle(close_workflow_id(legal_entity, period))
    try:
        report: PeriodCloseReport = await handle.execute_update(
            PeriodCloseWorkflow.cancel_close,
            CancelClose(by=principal.subject, roles=sorted(principal.roles), reason=reason),
        )
    except WorkflowUpdateFailedError as error:
        raise door.refusal_problem(error) from error
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise ProblemError(404, "Not Found", f"no running period close for {legal_entity} {period}") from error
        raise
    await _audit(request, principal, "period_close.cancel", f"close/{legal_entity}/{period}", {"reason": reason})
    return report


Limit = Annotated[int, Query(ge=1, le=500, description="items per page")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page")]


@router.get(
    "/v1/period-close/{legal_entity}/{period}/engagements",
    response_model=ReportPage,
    summary="The close report, one line per engagement, page by page (from the reporting hub)",
    responses=problems(400, 404, 503),
)
async def close_engagements(
    legal_entity: Annotated[str, Path(pattern=ENTITY)],
    period: Annotated[str, Path(pattern=PERIOD)],
    request: Request,
    principal: EntityReader,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> ReportPage:
    return await _report_page(request, legal_entity, period, limit, cursor, close_report.page_lines, "workflow_id")


@router.get(
    "/v1/period-close/{legal_entity}/{period}/exceptions",
    response_model=ReportPage,
    summary="Every exception the close raised, page by page (from the reporting hub)",
    responses=problems(400, 404, 503),
)
async def close_exceptions(
    legal_entity: Annotated[str, Path(pattern=ENTITY)],
    period: Annotated[str, Path(pattern=PERIOD)],
    request: Request,
    principal: EntityReader,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> ReportPage:
    return await _report_page(
        request, legal_entity, period, limit, cursor, close_report.page_exceptions, "exception_id"
    )


async def _report_page(
    request: Request, legal_entity: str, period: str, limit: int, cursor: str | None, read: Any, key: str
) -> ReportPage:
    """Keyset paging over the hub's rows of the close's current run; the cursor names the run
    and the last key, so a cursor of an earlier run (a close started again) is refused."""
    hub = getattr(request.app.state, "hub", None)
    if hub is None:
        raise ProblemError(
            503, "Service Unavailable", "the close report is kept in the reporting hub; none is configured"
        )
    report = await _report(_client(request), legal_entity, period)
    after = _after(cursor, report.report_id)
    items: list[dict[str, Any]] = await read(hub.pool, report.report_id, after, limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return ReportPage(
        report_id=report.report_id,
        items=items,
        next_cursor=_cursor(report.report_id, items[-1][key]) if more else None,
    )


def _cursor(report_id: str, after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"r": report_id, "a": after}).encode()).decode()


def _after(cursor: str | None, report_id: str) -> str:
    if cursor is None:
        return ""
    try:
        found = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        run, after = found["r"], found["a"]
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise _bad_cursor("not a cursor this API handed out") from error
    if run != report_id or not isinstance(after, str):
        raise _bad_cursor("it belongs to another run of this close; start again without a cursor")
    return after


def _bad_cursor(message: str) -> ProblemError:
    return ProblemError(400, "Bad Request", f"cursor: {message}", errors=[{"field": "cursor", "message": message}])


@router.post(
    "/v1/postings",
    status_code=202,
    response_model=PostingStarted,
    summary="Start a time & expense posting run for a legal entity now (idempotent per day)",
)
async def start_posting(
    body: StartPosting,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_roles("finance", "integration_admin", "delivery_ops"))],
) -> PostingStarted:
    client = _client(request)
    settings: ApiSettings = request.app.state.settings
    door.check_legal_entity(body.legal_entity, settings.legal_entities)
    authorize(principal, body.legal_entity, write=True)
    window = _window(settings)
    day = window.check_date(body.posting_date or date.today(), "posting_date")
    if body.cutoff is not None:
        window.check_date(body.cutoff, "cutoff")
        if body.cutoff > day:
            raise door.invalid("cutoff", f"the cutoff {body.cutoff} is after the posting date {day}")
    wid = posting_workflow_id(body.legal_entity, day)
    handle = await client.start_workflow(
        TimeAndExpensePostingWorkflow.run,
        PostingInput(
            legal_entity=body.legal_entity,
            posting_date=day,
            cutoff=body.cutoff,
            config=PostingConfig(time_mode=body.time_mode),
            queues=_queues(settings),
        ),
        id=wid,
        task_queue=settings.workflow_task_queue,
        # A running run is joined; a finished one may run again (it posts only what is new).
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        static_summary=f"Time & expense posting {body.legal_entity} {day}",
    )
    response.headers["Location"] = f"/v1/postings/{wid}"
    await _audit(request, principal, "posting.start", wid, {"cutoff": str(body.cutoff) if body.cutoff else None})
    desc = await handle.describe()
    return PostingStarted(workflow_id=wid, status=(desc.status.name if desc.status else "RUNNING"))


@router.get(
    "/v1/postings/{workflow_id}",
    response_model=PostingStarted,
    summary="A posting run's progress",
    responses=problems(404),
)
async def get_posting(
    workflow_id: Annotated[str, Path(pattern=r"^posting-[A-Za-z0-9-]+$")],
    request: Request,
    principal: Annotated[Principal, Depends(path_entity_access(*ANY_ROLE, write=False, param="workflow_id"))],
) -> PostingStarted:
    handle = _client(request).get_workflow_handle(workflow_id)
    try:
        desc = await handle.describe()
        progress = await handle.query(TimeAndExpensePostingWorkflow.progress)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise ProblemError(404, "Not Found", f"no posting run {workflow_id}") from error
        raise
    return PostingStarted(
        workflow_id=workflow_id, status=desc.status.name if desc.status else "RUNNING", progress=progress
    )
