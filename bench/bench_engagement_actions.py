"""Temporal Actions and history size of the reference 12-month engagement.

Runs tests/workflows/scenario.py's year (provisioning, 12 period closes plus January's,
which brings December's receipt, an amendment with two approvals, a credit memo, 12
payments, a late invoice, close-out) on the time-skipping test server, the way production
runs it: each month-end is the entity's batch (delivery and receipts passed in one
`close_period` update, the returned outbox written by the batch), overdue invoices come
from the daily receivables sweep. Counts billable Actions from the history, per Temporal
Cloud's definition (docs.temporal.io/cloud/actions): workflow started, activity scheduled
(+ each retry), timer started, signal received or sent, update accepted, search-attribute
upsert (not one that only sets `TemporalChangeVersion`, which `patched` writes: exempt),
marker (local activity, and the `patched` marker, counted to be safe) recorded, child
workflow started, continue-as-new. A memo change is no Action on that page: the view the
engagement publishes for the API is counted apart. Queries are Actions too but leave no
history: the driver's own queries are not counted (the API no longer queries a settled
engagement: it reads the published view). The month-end window's own Actions (its child start, 2; one page
of visibility, the PSA delivery, the ERP receipts and open items in one read, the
updates, the ERP/CRM/PSA writes and the hub's: 8 activities, 7 without a hub; about 2
heartbeats) are shared by the window's engagements — 250 with the hub (the window's
facts wait there), fewer without one, as the payload budget allows — and printed apart.
The entity-wide steps (final posting run, source sync, reconcile, lock) and what a real
close measures are bench/close_actions.py's.

    .venv/bin/python -m bench.bench_engagement_actions [--with-hub]

--with-hub counts the reporting activity too (`make run` configures a hub).
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter

from temporalio.api.enums.v1 import EventType, IndexedValueType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from contracts import search_attributes as sa
from contracts.period_close import DEFAULT_WINDOW
from tests.conftest import TEST_CONVERTER, wheel_binary
from tests.workflows import scenario

# a month-end window: its child start (2), find (a page), psa.read_deliveries,
# erp.receivables_window, close.close_engagements, the erp/crm/psa writes (+ the hub's with
# a hub) and ~2 heartbeats (the delivery read's and the updates')
WINDOW_ACTIONS = 2 + 7 + 2

BILLABLE = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: "workflow started",
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "activity scheduled",
    EventType.EVENT_TYPE_TIMER_STARTED: "timer started",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: "signal received",
    EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: "signal sent",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: "update accepted",
    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: "search attributes upserted",
    EventType.EVENT_TYPE_MARKER_RECORDED: "marker (local activity) recorded",
    EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED: "child workflow started",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued as new",
}
# In history, not billed (printed apart so the count can be checked against the page).
NOT_BILLED = {EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED: "memo modified (the published view; no Action)"}
VERSION_ATTRIBUTE = "TemporalChangeVersion"


def is_action(event: HistoryEvent) -> bool:
    """Whether the event is a billed Action (retries of an activity start are counted apart)."""
    if event.event_type not in BILLABLE:
        return False
    if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        return set(fields) != {VERSION_ATTRIBUTE}
    return True


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=wheel_binary("temporal-test-server"), data_converter=TEST_CONVERTER
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={k.name: IndexedValueType.ValueType(k.indexed_value_type.value) for k in sa.ALL},
        )
    )
    with_hub = "--with-hub" in sys.argv
    run = await scenario.run_reference_year(env, with_hub=with_hub)
    final, history = run.final, run.history
    await env.shutdown()

    kinds: Counter[str] = Counter()
    activities: Counter[str] = Counter()
    retries = 0
    apart: Counter[str] = Counter()
    for event in history.events:
        if is_action(event):
            kinds[BILLABLE[event.event_type]] += 1
        elif event.event_type in NOT_BILLED:
            apart[NOT_BILLED[event.event_type]] += 1
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            activities[event.activity_task_scheduled_event_attributes.activity_type.name] += 1
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            retries += max(0, event.activity_task_started_event_attributes.attempt - 1)
    total = sum(kinds.values()) + retries
    size = len(history.to_json().encode())
    print(f"reference 12-month engagement: final stage {final.stage.value}, {len(final.periods_closed)} periods closed")
    print(f"history: {len(history.events)} events, {size:,} bytes (JSON)")
    print(f"Temporal Actions: {total} (goal <= 50)")
    closes = len(final.periods_closed)
    per_window = WINDOW_ACTIONS + (1 if with_hub else 0)
    print(
        f"  + share of the month-end windows: {closes} closes x {per_window} / {DEFAULT_WINDOW} per window = "
        f"{closes * per_window / DEFAULT_WINDOW:.2f} (entity-wide steps - posting, sync, reconcile, lock - are "
        "per entity: bench.close_actions counts them)"
    )
    for name, count in kinds.most_common():
        print(f"  {count:4d}  {name}")
    print(f"  {retries:4d}  activity retries")
    for name, count in apart.items():
        print(f"  not counted: {count} {name}")
    print("activities by type:")
    for name, count in activities.most_common():
        print(f"  {count:4d}  {name}")


if __name__ == "__main__":
    asyncio.run(main())
