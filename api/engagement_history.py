"""The view of an engagement whose workflow ended without a result to read (failed, terminated,
cancelled in Temporal, timed out), when no worker can answer its query (its pinned build may
be stopped): rebuilt from what the server keeps without a worker — the last run's input (the
state carried over at its last continue-as-new), the search attributes and memo it published,
and its close event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle, WorkflowHistoryEventFilterType
from temporalio.common import TypedSearchAttributes

from contracts import search_attributes as sa
from contracts.engagement import EngagementInput, EngagementState, EngagementView, TimelineEntry
from contracts.memo import BATCH_MEMO
from domain.stages import Stage
from workflows.engagement_view import readable


async def view_from_history(
    client: Client, handle: WorkflowHandle[Any, Any], described: WorkflowExecutionDescription, opportunity_id: str
) -> EngagementView:
    state = await _carried(client, handle) or EngagementState(
        view=EngagementView(workflow_id=handle.id, opportunity_id=opportunity_id, stage=Stage.VALIDATING)
    )
    view = readable(state)
    _published(view, described.typed_search_attributes, await described.memo())
    ended = described.status.name if described.status else "CLOSED"
    why = await _close_reason(client, handle)
    view.waiting_for = None  # it waits for nothing any more
    view.failure = f"the workflow ended {ended}" + (f": {why}" if why else "")
    if described.close_time is not None:
        note = f"{view.failure} (read from its history: no worker of its version answers)"
        view.timeline.append(TimelineEntry(at=described.close_time, stage=view.stage, note=note))
    return view


async def _carried(client: Client, handle: WorkflowHandle[Any, Any]) -> EngagementState | None:
    """The state the last run started with (None: it is the first run)."""
    async for event in handle.fetch_history_events(page_size=1):
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        if not payloads:
            return None
        (data,) = await client.data_converter.decode(payloads, [EngagementInput])
        return data.carried if isinstance(data, EngagementInput) else None
    return None


def _published(view: EngagementView, attrs: TypedSearchAttributes, memo: Mapping[str, Any]) -> None:
    """What the workflow published after its input: its stage and lineage keys."""
    stage = attrs.get(sa.STAGE)
    if stage is not None and stage in Stage.__members__:
        view.stage = Stage(stage)
    view.customer_id = attrs.get(sa.CUSTOMER_ID) or view.customer_id
    view.project_id = attrs.get(sa.PROJECT_ID) or view.project_id
    view.contract_id = attrs.get(sa.CONTRACT_ID) or view.contract_id
    view.legal_entity = attrs.get(sa.LEGAL_ENTITY) or view.legal_entity
    view.billing_models = list(attrs.get(sa.BILLING_MODELS) or view.billing_models)
    batch = memo.get(BATCH_MEMO)
    if isinstance(batch, dict):
        view.erp_customer_id = batch.get("erp_customer_id") or view.erp_customer_id


async def _close_reason(client: Client, handle: WorkflowHandle[Any, Any]) -> str | None:
    async for event in handle.fetch_history_events(event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT):
        return await _reason(client, event)
    return None


async def _reason(client: Client, event: HistoryEvent) -> str | None:
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
        failure = event.workflow_execution_failed_event_attributes.failure
        return str(await client.data_converter.decode_failure(failure))  # the message may be sealed
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
        attrs = event.workflow_execution_terminated_event_attributes
        return f"{attrs.reason} (by {attrs.identity})" if attrs.identity else attrs.reason or None
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
        return "cancelled through Temporal (not by d2r's cancel)"
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
        return "its execution timeout passed"
    return None
