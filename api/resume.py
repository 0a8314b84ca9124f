"""Asking a waiting engagement to retry its step: the `resume` update, whose validator refuses
(409 naming the state) when the engagement waits for no fix, so no retry is dropped unseen.

An engagement pinned to a build from before that update answers "no such update"; for it the
API checks the stage itself and signals, as it did then."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from temporalio.client import Client, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api import door
from api.problems import ProblemError
from contracts import messages
from contracts.engagement import EngagementView, ResumeRequest
from domain.stages import Stage

ENGAGEMENT = "EngagementWorkflow"
# A caller waits for the validator's answer this long at most.
ANSWER_WITHIN = timedelta(seconds=30)


async def resume(client: Client, workflow_id: str, by: str, via: Literal["retry", "revalidate"]) -> str:
    """What the engagement noted (e.g. "retry requested by dana"); a refusal is a ProblemError."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        note: str = await handle.execute_update(
            messages.RESUME, ResumeRequest(by=by, via=via), result_type=str, rpc_timeout=ANSWER_WITHIN
        )
        return note
    except WorkflowUpdateFailedError as error:
        if not _unknown_update(error):
            raise door.refusal_problem(error) from error
    except WorkflowUpdateRPCTimeoutOrCancelledError as error:
        # e.g. its workflow task fails (a bug): the update waits for a task that succeeds
        why = (
            f"{workflow_id} did not answer within {ANSWER_WITHIN.seconds} s (a failing workflow task? "
            "GET /v1/engagements?problem=true); the retry applies if it answers later and still waits for a fix"
        )
        raise ProblemError(503, "Engagement not answering", why, headers={"Retry-After": "30"}) from error
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise ProblemError(404, "Not Found", f"no running workflow {workflow_id}") from error
        raise
    return await _resume_by_signal(client, workflow_id, via)


def _unknown_update(error: WorkflowUpdateFailedError) -> bool:
    """The workflow's build has no `resume` handler (an older engagement, or another workflow)."""
    cause = error.cause
    return isinstance(cause, ApplicationError) and "expected but not found" in cause.message


async def _resume_by_signal(client: Client, workflow_id: str, via: Literal["retry", "revalidate"]) -> str:
    handle = client.get_workflow_handle(workflow_id)
    described = await handle.describe()
    if described.workflow_type != ENGAGEMENT:
        why = f"{workflow_id} is a {described.workflow_type}: it waits for no retry (start it again instead)"
        raise ProblemError(409, "Nothing to retry", why, errors=[{"field": "workflow_id", "message": why}])
    view: EngagementView = await handle.query(messages.VIEW, result_type=EngagementView)
    if view.stage != Stage.NEEDS_ATTENTION:
        why = f"the engagement is {view.stage}: it waits for no fix to retry"
        raise ProblemError(
            409, "Refused by the engagement", why, type_=door.REFUSED, errors=[{"field": "stage", "message": why}]
        )
    await handle.signal(messages.REVALIDATE if via == "revalidate" else messages.RETRY)
    return f"{via} signalled"
