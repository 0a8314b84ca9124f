"""Master data over HTTP: who owns what, a sweep on demand, and a person's decision on a
conflict (keep the owner's value downstream, or accept the other system's value back into
the owner). The decision runs as `ConflictResolutionWorkflow`, one per conflict, which
writes the systems, resolves the hub's exception and appends the audit record."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from api.auth import ANY_ROLE, Principal, require_roles
from api.deps import authorize
from api.inputs import Comment
from api.problems import ProblemError, problems
from api.settings import ApiSettings
from contracts.master_data import (
    ConsultantSyncInput,
    CustomerSyncInput,
    ResolveConflictInput,
    ResolveConflictResult,
    conflict_resolution_workflow_id,
)
from domain.master_data import CONFLICT_KIND
from workflows.master_data import ConflictResolutionWorkflow, ConsultantSyncWorkflow, CustomerSyncWorkflow

router = APIRouter(tags=["master data"])

RESOLVERS = ("finance", "integration_admin")
ExceptionId = Annotated[int, Path(ge=1, le=2**63 - 1)]

ownership_reader = require_roles(*ANY_ROLE)
conflict_resolver = require_roles(*RESOLVERS)
sync_runner = require_roles(*RESOLVERS)


class ResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keep: Literal["owner", "other"] = Field(
        description="owner: write the owner's value to the other system; other: accept the other system's value "
        "back into the owner"
    )
    note: Comment | None = None


class ConsultantSyncBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    psa_instance: str = Field(default="default", pattern=r"^[A-Za-z0-9_-]{1,40}$")


def _settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def _every_entity(principal: Principal) -> None:
    """A sweep touches every entity's customers: only a principal of all entities starts one."""
    if principal.entities is not None:
        raise ProblemError(403, "Forbidden", "a master-data sweep spans every legal entity; yours are scoped")


@router.get("/v1/master-data/ownership", summary="Which system owns which master-data field")
async def ownership(request: Request, _: Annotated[Principal, Depends(ownership_reader)]) -> dict[str, Any]:
    table = _settings(request).ownership()
    return {"fields": table.fields, "derived": table.derived}


@router.post(
    "/v1/master-data/customers/sync",
    status_code=202,
    summary="Sweep CRM accounts into every ERP now (the daily Schedule does it too)",
)
async def sync_customers(
    request: Request, response: Response, principal: Annotated[Principal, Depends(sync_runner)]
) -> dict[str, str]:
    _every_entity(principal)
    settings = _settings(request)
    handle = await request.app.state.temporal.start_workflow(
        CustomerSyncWorkflow.run,
        CustomerSyncInput(queues=settings.queues()),
        id="master-data-customers-now",
        task_queue=settings.workflow_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        static_summary=f"Customer sweep asked for by {principal.subject}",
    )
    response.headers["Location"] = f"/v1/master-data/runs/{handle.id}"
    return {"workflow_id": handle.id}


@router.post(
    "/v1/master-data/consultants/sync",
    status_code=202,
    summary="Sweep a PSA's consultants into ERP employees now",
    responses=problems(422),
)
async def sync_consultants(
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(sync_runner)],
    body: ConsultantSyncBody | None = None,
) -> dict[str, str]:
    _every_entity(principal)
    settings = _settings(request)
    psa = (body or ConsultantSyncBody()).psa_instance
    handle = await request.app.state.temporal.start_workflow(
        ConsultantSyncWorkflow.run,
        ConsultantSyncInput(psa_instance=psa, queues=settings.queues()),
        id=f"master-data-consultants-{psa}-now",
        task_queue=settings.workflow_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        static_summary=f"Consultant sweep of PSA {psa} asked for by {principal.subject}",
    )
    response.headers["Location"] = f"/v1/master-data/runs/{handle.id}"
    return {"workflow_id": handle.id}


@router.post(
    "/v1/master-data/conflicts/{exception_id}/resolve",
    summary="Resolve a master_data.conflict: keep the owner's value, or accept the change back into the owner",
    responses=problems(404, 409, 503),
)
async def resolve_conflict(
    request: Request,
    exception_id: ExceptionId,
    body: ResolveBody,
    principal: Annotated[Principal, Depends(conflict_resolver)],
) -> dict[str, Any]:
    hub = getattr(request.app.state, "hub", None)
    if hub is None:
        raise ProblemError(503, "Reporting unavailable", "conflicts live in the reporting hub, which is not configured")
    try:
        found = await hub.get_exception(exception_id)
    except LookupError as error:
        raise ProblemError(404, "Not found", f"no exception {exception_id}") from error
    authorize(principal, found.get("legal_entity"), write=True)
    if found.get("kind") != CONFLICT_KIND:
        raise ProblemError(409, "Not a conflict", f"exception {exception_id} is a {found.get('kind')}, not a conflict")
    if found.get("status") == "resolved":
        raise ProblemError(
            409, "Already resolved", f"exception {exception_id} was resolved by {found.get('resolved_by')}"
        )
    settings = _settings(request)
    handle = await request.app.state.temporal.start_workflow(
        ConflictResolutionWorkflow.run,
        ResolveConflictInput(
            exception_id=exception_id,
            keep=body.keep,
            resolved_by=principal.subject,
            note=body.note,
            queues=settings.queues(),
        ),
        id=conflict_resolution_workflow_id(exception_id),
        task_queue=settings.workflow_task_queue,
        # a second request while the first runs joins it; after it, the hub says resolved (409 above)
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"Resolve master-data conflict {exception_id} ({body.keep}) for {principal.subject}",
    )
    try:
        result: ResolveConflictResult = await handle.result()
    except WorkflowFailureError as error:
        cause = getattr(error.cause, "cause", None) or error.cause
        raise ProblemError(409, "Conflict not resolved", str(getattr(cause, "message", cause))) from error
    return result.model_dump(mode="json")
