"""What one month-end close costs in Temporal Actions, read from its histories.

`await close_actions(client, "close-US01-2026-11")` walks the close's runs (back through
continue-as-new), every child (windows, the final posting run, the source sync, and their
own continue-as-new runs), and counts billable Actions the way Temporal Cloud's pricing
page counts them (docs.temporal.io/cloud/actions):

- workflow started: 1 for the client start and each continue-as-new run; a child start is
  2 (its intent and the start attempt), counted at the parent's initiated event;
- activity scheduled: 1, plus 1 per retry (`attempt - 1` on the started event);
- activity heartbeats: not in history. Estimated for every activity scheduled with a
  heartbeat timeout as 1 + one per throttle interval it ran (the SDK sends the first at
  once, then at most one per min(0.8 x timeout, 60 s)) — an upper bound, since an activity
  that never heartbeats costs none;
- timer started, signal received or sent, update accepted, search-attribute upsert: 1 each
  (an upsert of `TemporalChangeVersion` alone, which `patched` writes, is exempt); local
  activities: 1 per workflow task that recorded markers; a memo change is no Action there;
- what the close's activities send to engagements, which lands in the engagements'
  histories: every `close_period` update sent (accepted or refused, both are Actions) and
  every signal sent (`outbox_failed` hand-backs, overdue notices), read from those
  activities' results.

Not counted: queries (no history; a watching CLI or dashboard adds its own), updates an
engagement refused in its validator beyond what the activity reports, and what engagements
do in their own histories while they close: the activities of engagements that close on
their own (no batch memo: they read their own delivery), or an `fx.rates_on` of one that
converts at a rate the window did not hand it (the window hands every delivery the hub's
rates for its cut-off). bench/bench_scale.py's `close_window_actions_per_engagement`
counts every history while the closes ran, and catches those. The payload figure is the
largest `Payloads` (or single `Payload`) of any event, as stored (after the data
converter's codec); the history figure is the longest run.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from bench.bench_engagement_actions import is_action
from contracts.period_close import CloseWindowResult, HandBackResult
from contracts.posting import NotifyOverdueResult

E = EventType
ONE_EACH = {
    E.EVENT_TYPE_TIMER_STARTED: "timer started",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: "signal received",
    E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: "signal sent",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: "update accepted",
    E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: "search attributes upserted",
}
MAX_HEARTBEAT_THROTTLE = timedelta(seconds=60)  # the Python SDK's default cap


@dataclass
class CloseActions:
    total: int = 0
    engagements: int = 0  # in the close's windows (closed or not)
    engagements_closed: int = 0
    max_payload_bytes: int = 0
    max_history_events: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    by_workflow_type: Counter[str] = field(default_factory=Counter)  # Actions in each type's own histories
    histories: int = 0

    @property
    def per_engagement(self) -> float:
        """Actions per engagement of the entity in delivery (closed or not)."""
        return self.total / self.engagements if self.engagements else math.nan


async def close_actions(client: Client, workflow_id: str) -> CloseActions:
    """The close's Actions (its runs, its children, what it sent to engagements), the
    engagements it closed, its largest payload and its longest history."""
    found = CloseActions()
    for run_id in await _runs(client, workflow_id):
        await _walk(client, workflow_id, run_id, found, started_as_child=False)
    found.total = sum(found.by_kind.values())
    return found


async def _runs(client: Client, workflow_id: str) -> list[str]:
    """Every run of the workflow id, oldest first (back from the latest via continue-as-new)."""
    runs: list[str] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        runs.insert(0, run_id or history.run_id)
        if not started.continued_execution_run_id:
            return runs
        run_id = started.continued_execution_run_id


async def _walk(client: Client, workflow_id: str, run_id: str, found: CloseActions, started_as_child: bool) -> None:
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    found.histories += 1
    found.max_history_events = max(found.max_history_events, len(history.events))
    started = history.events[0].workflow_execution_started_event_attributes
    kind = started.workflow_type.name
    counted = Counter[str]()
    if not (started_as_child and not started.continued_execution_run_id):
        counted["continued as new" if started.continued_execution_run_id else "workflow started"] += 1
    scheduled: dict[int, HistoryEvent] = {}
    began: dict[int, HistoryEvent] = {}
    marker_tasks: set[int] = set()
    for event in history.events:
        found.max_payload_bytes = max(found.max_payload_bytes, _largest_payload(event))
        t = event.event_type
        if t in ONE_EACH:
            counted[ONE_EACH[t]] += 1 if is_action(event) else 0
        elif t == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            counted["activity scheduled"] += 1
            scheduled[event.event_id] = event
        elif t == E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            counted["activity retried"] += max(0, attrs.attempt - 1)
            began[attrs.scheduled_event_id] = event
        elif t == E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = event.activity_task_completed_event_attributes
            task = scheduled[done.scheduled_event_id]
            counted["activity heartbeats (estimated)"] += _heartbeats(task, began.get(done.scheduled_event_id), event)
            await _sent(client, task, done.result.payloads, found)
        elif t == E.EVENT_TYPE_MARKER_RECORDED:
            marker_tasks.add(event.marker_recorded_event_attributes.workflow_task_completed_event_id)
        elif t == E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            counted["child workflow started"] += 2
        elif t == E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            child = event.child_workflow_execution_started_event_attributes.workflow_execution
            await _walk(client, child.workflow_id, child.run_id, found, started_as_child=True)
        elif t == E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW and started_as_child:
            new_run = event.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            await _walk(client, workflow_id, new_run, found, started_as_child=True)
    counted["local activities (per workflow task)"] += len(marker_tasks)
    found.by_kind.update(counted)
    found.by_workflow_type[kind] += sum(counted.values())


def _heartbeats(task: HistoryEvent, began: HistoryEvent | None, ended: HistoryEvent) -> int:
    timeout = task.activity_task_scheduled_event_attributes.heartbeat_timeout.ToTimedelta()
    if not timeout or began is None:
        return 0
    interval = min(timeout * 0.8, MAX_HEARTBEAT_THROTTLE)
    ran = ended.event_time.ToDatetime() - began.event_time.ToDatetime()
    return 1 + int(ran / interval)


async def _sent(client: Client, task: HistoryEvent, payloads: Sequence[Payload], found: CloseActions) -> None:
    """Updates and signals a close activity sent to engagements (Actions in their histories)."""
    name = task.activity_task_scheduled_event_attributes.activity_type.name
    if name == "close.close_engagements":
        [window] = await client.data_converter.decode(payloads, [CloseWindowResult])
        found.by_kind["update sent to an engagement"] += window.tally.updates_sent
        found.engagements += window.tally.engagements
        found.engagements_closed += window.tally.closed
    elif name == "close.hand_back":
        [handed] = await client.data_converter.decode(payloads, [HandBackResult])
        found.by_kind["signal sent to an engagement"] += handed.signalled
    elif name == "close.notify_overdue":
        [told] = await client.data_converter.decode(payloads, [NotifyOverdueResult])
        found.by_kind["signal sent to an engagement"] += told.engagements_notified


PAYLOADS, PAYLOAD = "temporal.api.common.v1.Payloads", "temporal.api.common.v1.Payload"


def _largest_payload(message: Message) -> int:
    """The largest Payloads (or lone Payload) anywhere in the message, in bytes as stored."""
    name = message.DESCRIPTOR.full_name
    if name in (PAYLOADS, PAYLOAD):
        return message.ByteSize()
    largest = 0
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        if descriptor.message_type.GetOptions().map_entry:
            items = value.values()
        elif isinstance(value, Message):
            items = [value]
        else:  # a repeated message field
            items = value
        for item in items:
            if isinstance(item, Message):
                largest = max(largest, _largest_payload(item))
    return largest


def _figures(close: str, found: CloseActions) -> str:
    import json

    return json.dumps(
        {
            "close": close,
            "actions": found.total,
            "engagements": found.engagements,
            "engagements_closed": found.engagements_closed,
            "actions_per_engagement": round(found.per_engagement, 3),
            "max_payload_bytes": found.max_payload_bytes,
            "max_history_events": found.max_history_events,
            "histories": found.histories,
            "by_kind": dict(found.by_kind.most_common()),
            "by_workflow_type": dict(found.by_workflow_type),
        }
    )


async def main() -> None:
    """`python -m bench.close_actions close-US01-2026-11`: one JSON line for a close on the
    Temporal the D2R_* settings name (the running `make run` stack by default).

    `python -m bench.close_actions --fake N [--bytes B] [--no-hub]`: a close of N
    engagements on the time-skipping server with the window activities faked by name
    (tests/workflows; every engagement has the batch memo, every outbox carries ERP
    documents, CRM and PSA feedback and the reference deal's hub facts; one in ten
    engagements fails to close, one in a hundred has its ERP documents refused and
    handed back): the Actions the close's shape costs, no vendors. `--bytes B`: each
    project's delivery holds time entries weighing about B bytes (a real month's
    weighs kilobytes). The windows keep their facts in the (faked) hub's stage, as a
    close with a hub does; `--no-hub` carries them in the payloads, windows sized by
    what the last one weighed per engagement."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("close", nargs="?")
    parser.add_argument("--fake", type=int, help="engagements of a faked close on the time-skipping server")
    parser.add_argument("--bytes", type=int, default=0, help="JSON bytes of time entries in each delivery")
    parser.add_argument("--no-hub", action="store_true", help="no hub: the windows' facts travel in their payloads")
    args = parser.parse_args()
    if args.fake is None:
        from workers.settings import TemporalSettings
        from workers.temporal_client import connect

        client = await connect(TemporalSettings())
        print(_figures(args.close, await close_actions(client, args.close)))
        return
    print(await _fake_close(args.fake, args.bytes, hub=not args.no_hub))


async def _fake_close(engagements: int, delivery_bytes: int, hub: bool) -> str:
    import uuid

    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from contracts.period_close import CloseStep, LockDecision, PeriodCloseRequest
    from contracts.queues import TaskQueues
    from tests.conftest import TEST_CONVERTER, wheel_binary
    from tests.workflows.batch_fakes import FakeBatch
    from tests.workflows.sync_fakes import FakeSync
    from workflows.period_close import PeriodCloseWorkflow
    from workflows.period_close_window import PeriodCloseWindowWorkflow
    from workflows.posting import TimeAndExpensePostingWorkflow
    from workflows.source_sync import SourceSyncWorkflow

    workflows = [PeriodCloseWorkflow, PeriodCloseWindowWorkflow, TimeAndExpensePostingWorkflow, SourceSyncWorkflow]
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=wheel_binary("temporal-test-server"), data_converter=TEST_CONVERTER
    )
    # one project per engagement, paged as the close's final posting run pages them; outboxes
    # for all four systems
    per_page = PeriodCloseRequest(legal_entity="US01").posting.projects_per_page
    fake = FakeBatch(pages=max(1, engagements // per_page), engagements=engagements, every_system=True)
    fake.batched = set(fake.engagement_ids)
    fake.payload_bytes_per_engagement = None  # measured, as the real activity does
    fake.delivery_bytes = delivery_bytes
    fake.hub_facts = hub
    queue = f"bench-{uuid.uuid4()}"
    try:
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=workflows,
            activities=[*fake.activities(), *FakeSync(projects=3).activities()],
            max_concurrent_activities=50,
        ):
            wid = "close-US01-2026-11"
            handle = await env.client.start_workflow(
                PeriodCloseWorkflow.run,
                PeriodCloseRequest(
                    legal_entity="US01",
                    period="2026-11",
                    requested_by="bench",
                    queues=TaskQueues(crm=queue, psa=queue, erp=queue, reporting=queue if hub else None),
                ),
                id=wid,
                task_queue=queue,
            )
            for _ in range(6000):  # the fake close reaches the approval in seconds
                if (await handle.query(PeriodCloseWorkflow.report)).step == CloseStep.AWAITING_APPROVAL:
                    break
                await asyncio.sleep(0.1)
            await handle.execute_update(
                PeriodCloseWorkflow.approve_lock, LockDecision(approve=True, by="carol", roles=["finance"])
            )
            report = await handle.result()
            found = await close_actions(env.client, wid)
        windows = ",".join(str(len(w)) for w in fake.windows)
        return _figures(f"{wid} (faked: {report.windows} windows of {windows})", found)
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
