"""Engagements over HTTP: start (idempotent), read, and the person-in-the-loop signals."""

from __future__ import annotations

import base64
import logging
from datetime import date, timedelta
from typing import Annotated, Any, Literal, NamedTuple

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from api import door, engagement_start, stuck
from api.auth import ANY_ROLE, Principal, require_roles
from api.deps import EngagementReader, authorize_start, engagement_access, entity_filter, visible_entities
from api.engagement_history import view_from_history
from api.engagement_links import (
    AMEND_ROLES,
    CANCEL_ROLES,
    CLOSE_ROLES,
    CREDIT_ROLES,
    DECIDE_ROLES,
    DELIVERED_ROLES,
    RETRY_ROLES,
    REVALIDATE_ROLES,
    START_ROLES,
    EngagementResource,
    href,
    resource,
)
from api.inputs import AmendmentBody, CancelBody, CreditMemoBody, DecisionBody
from api.problems import ProblemError, problems
from api.reports import audit_mutation
from api.resume import resume
from api.settings import ApiSettings
from contracts import messages
from contracts import search_attributes as sa
from contracts.engagement import (
    AmendmentInput,
    CancelRequest,
    ChangeRecord,
    CreditMemoInput,
    DecisionInput,
    EngagementCloseInput,
    EngagementView,
    PeriodResult,
)
from contracts.ids import engagement_workflow_id, opportunity_of
from contracts.memo import VIEW_MEMO
from domain.model import Approval
from domain.stages import Stage
from workflows.engagement import EngagementWorkflow

router = APIRouter(prefix="/v1/engagements", tags=["engagements"])
log = logging.getLogger(__name__)

SALESFORCE_ID = r"^[A-Za-z0-9]{15,18}$"
OpportunityId = Annotated[str, Path(pattern=SALESFORCE_ID, description="the CRM opportunity id")]
# A caller waits on a query: an engagement that cannot answer in this time is reported, not waited for.
QUERY_TIMEOUT = timedelta(seconds=5)
# An ended engagement whose build answers no query within this is read from its history instead.
ENDED_QUERY_TIMEOUT = timedelta(seconds=2)
VIEW_SOURCE_HEADER = "X-D2R-View-Source"
NOT_ANSWERING = (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNAVAILABLE, RPCStatusCode.CANCELLED)


class StartEngagement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opportunity_id: str = Field(pattern=SALESFORCE_ID, description="the CRM opportunity id")


class EngagementAccepted(BaseModel):
    workflow_id: str
    opportunity_id: str
    created: bool = Field(description="false: the engagement existed already (no second workflow is started)")
    href: str = Field(description="where to read the engagement (also the Location header)")


class EngagementSummary(BaseModel):
    workflow_id: str
    opportunity_id: str | None
    stage: str | None
    legal_entity: str | None
    customer_id: str | None = None
    pending_approval: bool = False
    status: str
    href: str | None = Field(default=None, description="the engagement's view")
    problem: str | None = Field(
        default=None, description="with ?problem=true: why it is stuck (failing task, or what it waits for)"
    )


def _client(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


def _tag(opportunity_id: str, principal: Principal) -> None:
    span = trace.get_current_span()
    span.set_attribute("d2r.opportunity_id", opportunity_id)
    span.set_attribute("d2r.principal", principal.subject)


class EngagementRead(NamedTuple):
    view: EngagementView
    status: WorkflowExecutionStatus
    # where the view came from (the X-D2R-View-Source header): "published" (the memo of a
    # settled run), "query", "result" (completed) or "ended" (a run that ended otherwise)
    source: str


async def _view(client: Client, opportunity_id: str) -> EngagementView:
    return (await read_engagement(client, opportunity_id)).view


async def read_engagement(client: Client, opportunity_id: str) -> EngagementRead:
    """The engagement's view and its workflow's status. A running engagement that has settled
    (it waits for a message, a person or a timer) answers from the view it published in its
    memo; one that is mid-step is asked (a query). One that completed is read from its result,
    and one that ended otherwise (failed, terminated, timed out) from its history when no
    worker answers for it — none of these needs the build it ran on."""
    handle = client.get_workflow_handle(engagement_workflow_id(opportunity_id))
    try:
        described = await handle.describe()
        status = described.status or WorkflowExecutionStatus.RUNNING
        if status == WorkflowExecutionStatus.COMPLETED:
            result = EngagementView.model_validate(await handle.result(rpc_timeout=QUERY_TIMEOUT))
            return EngagementRead(result, status, "result")
        if status != WorkflowExecutionStatus.RUNNING:
            return EngagementRead(await _ended_view(client, handle, described, opportunity_id), status, "ended")
        published = await published_view(described)
        if published is not None:
            return EngagementRead(published, status, "published")
        queried = await handle.query(EngagementWorkflow.view, rpc_timeout=QUERY_TIMEOUT)
        return EngagementRead(queried, status, "query")
    except WorkflowQueryFailedError as error:
        # A failing workflow task (a bug) can make the query fail too: say so, do not 500.
        raise ProblemError(
            503, "Engagement not answering", f"the engagement could not answer: {error}", headers={"Retry-After": "30"}
        ) from error
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise ProblemError(404, "Not Found", f"no engagement for opportunity {opportunity_id}") from error
        if error.status in NOT_ANSWERING:
            raise ProblemError(
                503,
                "Engagement not answering",
                f"engagement {opportunity_id} did not answer within {QUERY_TIMEOUT.seconds} s (is a worker running?)",
                headers={"Retry-After": "30"},
            ) from error
        raise


async def published_view(described: WorkflowExecutionDescription) -> EngagementView | None:
    """The view the run published (`contracts/memo.py`), if it is the one a query would return
    now: nothing is under way — no workflow task (a message arrived, or a step runs), no
    activity, no child — so its state is the one it settled in, and it published that. A
    query instead costs a billed Action and, for a run out of the worker's cache, a replay of
    its history (~30 ms of worker CPU: README, "Figures")."""
    raw = described.raw_description
    if (
        raw.HasField("pending_workflow_task")
        or raw.pending_activities
        or raw.pending_children
        or raw.pending_nexus_operations
    ):
        return None
    try:
        view: EngagementView | None = await described.memo_value(VIEW_MEMO, None, type_hint=EngagementView)
    except ValueError as error:  # not a view this build reads (or not d2r's): ask the workflow
        log.warning("engagement %s: published view unreadable (%s); querying it", described.id, error)
        return None
    return view


async def _ended_view(
    client: Client, handle: WorkflowHandle[Any, Any], described: WorkflowExecutionDescription, opportunity_id: str
) -> EngagementView:
    """Asked of a worker of its build if one answers soon (the view to its last step), else
    rebuilt from its history: an engagement that has ended always answers."""
    try:
        view: EngagementView = await handle.query(EngagementWorkflow.view, rpc_timeout=ENDED_QUERY_TIMEOUT)
        return view
    except WorkflowQueryFailedError:
        pass
    except RPCError as error:
        if error.status not in NOT_ANSWERING:
            raise
    return await view_from_history(client, handle, described, opportunity_id)


@router.post(
    "",
    status_code=202,
    response_model=EngagementAccepted,
    summary="Start the engagement for a closed-won opportunity (idempotent; read it at Location)",
    responses={
        200: {"model": EngagementAccepted, "description": "It was started before: the same engagement"},
        **problems(404),
    },
)
async def start_engagement(
    body: StartEngagement,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_roles(*START_ROLES))],
) -> EngagementAccepted:
    _tag(body.opportunity_id, principal)
    href = f"/v1/engagements/{body.opportunity_id}"
    await authorize_start(request, principal, body.opportunity_id)
    started = await engagement_start.start_engagement(request, body.opportunity_id, principal.subject, "API")
    response.headers["Location"] = href
    if started.created:
        await _audit(request, principal, "engagement.start", body.opportunity_id, {})
    else:
        response.status_code = 200
    return EngagementAccepted(
        workflow_id=started.workflow_id, opportunity_id=body.opportunity_id, created=started.created, href=href
    )


@router.get(
    "/{opportunity_id}",
    response_model=EngagementResource,
    summary="The whole engagement view, with its pending approvals and links to the next actions",
    responses=problems(404),
)
async def get_engagement(
    opportunity_id: OpportunityId, request: Request, response: Response, principal: EngagementReader
) -> EngagementResource:
    _tag(opportunity_id, principal)
    read = await read_engagement(_client(request), opportunity_id)
    response.headers[VIEW_SOURCE_HEADER] = read.source
    return resource(read.view, read.status.name)


WAITING_CLAUSES = {
    "approval": "D2RPendingApproval = true",
    "fix": "D2RStage = 'NEEDS_ATTENTION'",
    "period_close": "D2RStage = 'IN_DELIVERY' AND D2RPendingApproval = false",
}


@router.get(
    "",
    response_model=list[EngagementSummary],
    summary="Find engagements by stage, legal entity, what they wait for; ?problem=true lists the stuck ones",
    description=(
        "One page per call: `limit` rows; when there are more, the `Link` header (rel=next) and "
        "`X-Next-Page-Token` give the next page (pass it back as `page_token`)."
    ),
)
async def list_engagements(
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_roles(*ANY_ROLE))],
    stage: Stage | None = None,
    legal_entity: Annotated[str | None, Query(pattern=r"^[A-Z0-9]{2,10}$")] = None,
    waiting_for: Annotated[
        Literal["approval", "fix", "period_close"] | None,
        Query(description="approval: a decision; fix: needs attention; period_close: in delivery, nothing pending"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="rows per page")] = 100,
    page_token: Annotated[str | None, Query(max_length=4000, description="from the previous page's Link")] = None,
    problem: Annotated[
        bool,
        Query(description="only running engagements whose workflow task is failing or that wait for a person"),
    ] = False,
) -> list[EngagementSummary]:
    # One row per engagement: the runs it continued as new from are not engagements of their own.
    clauses = ["WorkflowType = 'EngagementWorkflow'", "ExecutionStatus != 'ContinuedAsNew'"]
    if problem:
        clauses += [stuck.RUNNING, stuck.PROBLEM_CLAUSE]
    if stage:
        clauses.append(f"D2RStage = '{stage.value}'")
    if waiting_for:
        clauses += [stuck.RUNNING, WAITING_CLAUSES[waiting_for]]
    if legal_entity:
        clauses.append(f"D2RLegalEntity = '{entity_filter(principal, legal_entity)}'")  # 403 outside the scope
    scope = visible_entities(principal)
    if scope is not None:  # only the caller's legal entities (entity codes are [A-Z0-9] by the token's parse)
        clauses.append("D2RLegalEntity IN ({})".format(", ".join(f"'{e}'" for e in sorted(scope)) or "''"))
    client = _client(request)
    pages = client.list_workflows(
        " AND ".join(dict.fromkeys(clauses)), page_size=limit, next_page_token=_token_in(page_token)
    )
    try:
        await pages.fetch_next_page()
    except RPCError as error:
        if error.status == RPCStatusCode.INVALID_ARGUMENT and page_token is not None:
            raise door.invalid("page_token", "not a page token from a previous page") from error
        raise
    found: list[EngagementSummary] = []
    for wf in pages.current_page or []:
        attrs = wf.typed_search_attributes
        opportunity_id = attrs.get(sa.OPPORTUNITY_ID) or opportunity_of(wf.id)
        found.append(
            EngagementSummary(
                workflow_id=wf.id,
                opportunity_id=opportunity_id,
                stage=attrs.get(sa.STAGE),
                legal_entity=attrs.get(sa.LEGAL_ENTITY),
                customer_id=attrs.get(sa.CUSTOMER_ID),
                pending_approval=bool(attrs.get(sa.PENDING_APPROVAL)),
                status=(wf.status or WorkflowExecutionStatus.RUNNING).name,
                problem=await stuck.problem_reason(client, wf) if problem else None,
                href=href(opportunity_id),
            )
        )
    if pages.next_page_token:
        token = base64.urlsafe_b64encode(pages.next_page_token).decode()
        response.headers["X-Next-Page-Token"] = token
        response.headers["Link"] = f'<{request.url.include_query_params(page_token=token)}>; rel="next"'
    return found


def _token_in(page_token: str | None) -> bytes | None:
    if page_token is None:
        return None
    try:
        return base64.b64decode(page_token.encode(), altchars=b"-_", validate=True)
    except ValueError as error:
        raise door.invalid("page_token", "not a page token from a previous page") from error


async def _signal(request: Request, opportunity_id: str, name: str, arg: Any = None) -> dict[str, str]:
    handle = _client(request).get_workflow_handle(engagement_workflow_id(opportunity_id))
    try:
        if arg is None:
            await handle.signal(name)
        else:
            await handle.signal(name, arg)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise ProblemError(404, "Not Found", f"no running engagement for {opportunity_id}") from error
        raise
    return {"status": "accepted", "signal": name}


@router.post(
    "/{opportunity_id}/revalidate",
    status_code=202,
    summary="Re-read and re-check the deal after it was fixed in the CRM (409 unless it waits for a fix)",
    responses=problems(404, 409),
)
async def revalidate(
    opportunity_id: OpportunityId,
    request: Request,
    principal: Annotated[Principal, Depends(engagement_access(*REVALIDATE_ROLES, write=True))],
) -> dict[str, str]:
    _tag(opportunity_id, principal)
    note = await resume(_client(request), engagement_workflow_id(opportunity_id), principal.subject, "revalidate")
    await _audit(request, principal, "engagement.revalidate", opportunity_id, {})
    return {"status": "accepted", "update": messages.RESUME, "note": note}


@router.post(
    "/{opportunity_id}/retry",
    status_code=202,
    summary="Retry the step that needs attention (409 unless it waits for a fix)",
    responses=problems(404, 409),
)
async def retry(
    opportunity_id: OpportunityId,
    request: Request,
    principal: Annotated[Principal, Depends(engagement_access(*RETRY_ROLES, write=True))],
) -> dict[str, str]:
    _tag(opportunity_id, principal)
    # Refused (409) unless the engagement waits for a fix; a failing workflow task is a bug,
    # which retries by itself once fixed code is deployed.
    note = await resume(_client(request), engagement_workflow_id(opportunity_id), principal.subject, "retry")
    await _audit(request, principal, "engagement.retry", opportunity_id, {})
    return {"status": "accepted", "update": messages.RESUME, "note": note}


@router.post(
    "/{opportunity_id}/cancel",
    status_code=202,
    summary="Cancel an engagement in any stage before it is closed (in delivery: d2r stops; issued documents stay)",
    responses=problems(404, 409),
)
async def cancel(
    opportunity_id: OpportunityId,
    body: CancelBody,
    request: Request,
    principal: Annotated[Principal, Depends(engagement_access(*CANCEL_ROLES, write=True))],
) -> dict[str, str]:
    _tag(opportunity_id, principal)
    view = await _view(_client(request), opportunity_id)
    if view.stage in (Stage.CLOSED, Stage.CANCELLED):
        why = f"the engagement is {view.stage}"
        raise ProblemError(409, "Already ended", why, errors=[{"field": "stage", "message": why}])
    await _audit(request, principal, "engagement.cancel", opportunity_id, {"reason": body.reason})
    return await _signal(request, opportunity_id, "cancel", CancelRequest(reason=body.reason, by=principal.subject))


# ---- people deciding, changes, period close ----------------------------------------------------


async def _update(request: Request, opportunity_id: str, update: Any, arg: Any) -> Any:
    handle = _client(request).get_workflow_handle(engagement_workflow_id(opportunity_id))
    try:
        return await handle.execute_update(update, arg)
    except WorkflowUpdateFailedError as error:
        raise door.refusal_problem(error) from error
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise ProblemError(404, "Not Found", f"no running engagement for {opportunity_id}") from error
        raise


@router.post(
    "/{opportunity_id}/approvals/{approval_id}",
    response_model=Approval,
    summary="Approve or reject a pending approval (role and four-eyes checked by the engagement)",
    responses=problems(404, 409),
)
async def decide(
    opportunity_id: OpportunityId,
    approval_id: Annotated[str, Path(min_length=1, max_length=200)],
    body: DecisionBody,
    request: Request,
    principal: Annotated[Principal, Depends(engagement_access(*DECIDE_ROLES, write=True))],
) -> Approval:
    _tag(opportunity_id, principal)
    approval: Approval = await _update(
        request,
        opportunity_id,
        EngagementWorkflow.decide,
        DecisionInput(
            approval_id=approval_id,
            approve=body.decision == "approve",
            comment=body.comment,
            by=principal.subject,
            roles=sorted(principal.roles),
        ),
    )
    await _audit(
        request,
        principal,
        f"approval.{body.decision}",
        opportunity_id,
        {"approval_id": approval_id, "comment": body.comment},
    )
    return approval


@router.post(
    "/{opportunity_id}/amendments",
    status_code=202,
    response_model=ChangeRecord,
    summary="Request a change order; it applies after delivery (and finance, above a threshold) approve",
    responses=problems(404, 409),
)
async def request_amendment(
    opportunity_id: OpportunityId,
    body: AmendmentBody,
    request: Request,
    principal: Annotated[Principal, Depends(engagement_access(*AMEND_ROLES, write=True))],
) -> ChangeRecord:
    _tag(opportunity_id, principal)
    _window(request).check_date(body.amendment.effective_date, "amendment.effective_date")
    record: ChangeRecord = await _update(
        request,
        opportunity_id,
        EngagementWorkflow.request_amendment,
        AmendmentInput(amendment=body.amendment.domain(), requested_by=principal.subject),
    )
    await _audit(request, principal, "amendment.request", opportunity_id, {"amendment_id": record.change_id})
    return record


@router.post(
    "/{opportunity_id}/credit-memos",
    status_code=202,
    response_model=ChangeRecord,
    summary="Request a credit memo; it is issued after finance approves",
    responses=problems(404, 409),
)
async def request_credit_memo(
    opportunity_id: OpportunityId,
    body: CreditMemoBody,
    request: Request,
    principal: Annotated[Principal, Depends(engagement_access(*CREDIT_ROLES, write=True))],
) -> ChangeRecord:
    _tag(opportunity_id, principal)
    _window(request).check_date(body.credit_memo.memo_date, "credit_memo.memo_date")
    record: ChangeRecord = await _update(
        request,
        opportunity_id,
        EngagementWorkflow.request_credit_memo,
        CreditMemoInput(request=body.credit_memo.domain(), requested_by=principal.subject),
    )
    await _audit(request, principal, "credit_memo.request", opportunity_id, {"credit_memo_id": record.change_id})
    return record


@router.post(
    "/{opportunity_id}/periods/{period}/close",
    response_model=PeriodResult,
    summary="Billing and revenue run of one period for this engagement (idempotent)",
    responses=problems(404, 409),
)
async def close_engagement_period(
    opportunity_id: OpportunityId,
    period: Annotated[str, Path(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM inside the open window")],
    request: Request,
    principal: Annotated[Principal, Depends(engagement_access(*CLOSE_ROLES, write=True))],
) -> PeriodResult:
    _tag(opportunity_id, principal)
    _window(request).check_period(period, "period")
    result: PeriodResult = await _update(
        request,
        opportunity_id,
        EngagementWorkflow.close_period,
        EngagementCloseInput(period=period, requested_by=principal.subject),
    )
    await _audit(request, principal, "period.close", opportunity_id, {"period": period})
    return result


@router.post(
    "/{opportunity_id}/delivery-complete",
    status_code=202,
    summary="Report delivery complete: the next period close recognizes the remainder, then close-out",
    responses=problems(404),
)
async def delivery_complete(
    opportunity_id: OpportunityId,
    request: Request,
    principal: Annotated[Principal, Depends(engagement_access(*DELIVERED_ROLES, write=True))],
) -> dict[str, str]:
    _tag(opportunity_id, principal)
    await _audit(request, principal, "engagement.delivery_complete", opportunity_id, {})
    return await _signal(request, opportunity_id, "delivery_complete")


def _window(request: Request) -> door.OpenWindow:
    settings: ApiSettings = request.app.state.settings
    return door.OpenWindow.around(date.today(), settings.open_period_months_back, settings.open_period_months_forward)


async def _audit(request: Request, principal: Principal, action: str, target: str, detail: dict[str, Any]) -> None:
    """Every API mutation lands in the hub's append-only audit log, when a hub is configured."""
    if getattr(request.app.state, "hub", None) is not None:
        await audit_mutation(request, principal, action, f"engagement/{target}", detail)
