"""Starting an engagement: one path for the API's POST and the CRM's Closed Won webhook.

The door reads the opportunity from the CRM (404 when it has none, 503 when it cannot
answer), so the start already knows the customer, the deal and its value: they become the
workflow's static summary and details, and the same search attributes are set whichever
door started it. The start does not wait for the worker (the caller reads the view later,
at the Location it is given); the same opportunity always maps to the same workflow id, so
a repeated or concurrent start joins the engagement instead of starting a second one.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api import door
from api.settings import ApiSettings
from contracts.engagement import EngagementInput
from contracts.ids import engagement_workflow_id
from contracts.story import start_details, start_search_attributes, start_summary
from workflows.engagement import EngagementWorkflow


@dataclass(frozen=True)
class Started:
    workflow_id: str
    created: bool  # False: the engagement existed (running, or ended and never restarted)


async def exists(client: Client, opportunity_id: str) -> bool:
    try:
        await client.get_workflow_handle(engagement_workflow_id(opportunity_id)).describe()
        return True
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise


async def start_engagement(request: Request, opportunity_id: str, requested_by: str, origin: str) -> Started:
    """Start (or find) the engagement for `opportunity_id`; never waits on a worker."""
    client: Client = request.app.state.temporal
    settings: ApiSettings = request.app.state.settings
    wid = engagement_workflow_id(opportunity_id)
    if await exists(client, opportunity_id):
        return Started(workflow_id=wid, created=False)
    snapshot = await door.read_opportunity(getattr(request.app.state, "crm", None), opportunity_id)
    try:
        await client.start_workflow(
            EngagementWorkflow.run,
            EngagementInput(opportunity_id=opportunity_id, requested_by=requested_by, queues=settings.queues()),
            id=wid,
            task_queue=settings.workflow_task_queue,
            # A concurrent duplicate joins the running engagement instead of failing or
            # starting a second one; a closed engagement is never restarted.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=start_search_attributes(opportunity_id, snapshot),
            static_summary=start_summary(opportunity_id, snapshot),
            static_details=start_details(opportunity_id, snapshot, f"{requested_by} ({origin})"),
        )
    except WorkflowAlreadyStartedError:
        return Started(workflow_id=wid, created=False)  # it ended between the describe and the start
    return Started(workflow_id=wid, created=True)
