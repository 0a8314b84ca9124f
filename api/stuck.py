"""Stuck work, findable: engagements whose workflow task is failing (a bug: Temporal reports
it as `TemporalReportedProblems`) or that wait for a person (NEEDS_ATTENTION, or a pending
approval), each with the reason a person needs to act on it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecution, WorkflowQueryFailedError
from temporalio.service import RPCError

from domain.stages import Stage
from workflows.engagement import EngagementWorkflow

REPORTED_PROBLEMS = "TemporalReportedProblems"
PROBLEM_CLAUSE = (
    f"({REPORTED_PROBLEMS} IS NOT NULL OR D2RStage = '{Stage.NEEDS_ATTENTION.value}' OR D2RPendingApproval = true)"
)
RUNNING = "ExecutionStatus = 'Running'"
QUERY_TIMEOUT = timedelta(seconds=2)


def reported_problems(wf: WorkflowExecution) -> list[str]:
    """Temporal's own words for a failing workflow task, e.g. `category=WorkflowTaskFailed`."""
    raw: Any = wf.search_attributes.get(REPORTED_PROBLEMS) or []
    return [str(p) for p in raw]


async def problem_reason(client: Client, wf: WorkflowExecution) -> str:
    problems = reported_problems(wf)
    if problems:
        return "workflow task failing (a bug; fix and deploy, the task then retries by itself): " + ", ".join(problems)
    try:
        view = await client.get_workflow_handle(wf.id).query(EngagementWorkflow.view, rpc_timeout=QUERY_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError) as error:
        return f"waits for a person; its view could not be read: {error}"
    if view.stage == Stage.NEEDS_ATTENTION:
        why = next((e.note for e in reversed(view.timeline) if e.stage == Stage.NEEDS_ATTENTION), view.failure)
        return f"needs attention: {why}"
    return "waits for approval: " + ", ".join(view.pending_approvals)
