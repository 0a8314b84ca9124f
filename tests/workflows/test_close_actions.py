"""What a month-end costs in Temporal Actions, counted by bench/close_actions.py from the real
histories of a close with two windows (time-skipping server, activities faked by name)."""

from __future__ import annotations

import asyncio
import uuid

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.close_actions import close_actions
from contracts.period_close import CloseStep, LockDecision, PeriodCloseRequest
from tests.workflows.batch_fakes import FakeBatch
from tests.workflows.sync_fakes import FakeSync
from tests.workflows.test_posting_and_close import _queues
from workflows.period_close import PeriodCloseWorkflow
from workflows.period_close_window import PeriodCloseWindowWorkflow
from workflows.posting import TimeAndExpensePostingWorkflow
from workflows.source_sync import SourceSyncWorkflow


async def test_actions_of_a_close_with_two_windows(env: WorkflowEnvironment) -> None:
    """25 engagements, windows of at most 20: windows of 20 and 5.

    The close's own history: 1 start + 2 per child (the posting run, two windows, the
    sync: 4 children = 8) + reconcile + lock + the approval update = 12.
    Each window: find, PSA delivery, ERP receivables, the updates' activity, the ERP
    documents (the fake's outboxes carry only those) = 5 activities + 2 heartbeats (the
    delivery read and the updates' activity heartbeat; one each at this speed) = 7; the
    first window also hands ...03's refused documents back (1 activity + 1 signal).
    Per engagement: its `close_period` update = 1.
    So the windows cost 2 x 7 + 1 = 15 Actions in their histories, the engagements 25 + 1;
    with the posting run's and the sync's own histories, and nothing else."""
    fake = FakeBatch(pages=2, engagements=25)
    queue = f"t-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[PeriodCloseWorkflow, PeriodCloseWindowWorkflow, TimeAndExpensePostingWorkflow, SourceSyncWorkflow],
        activities=[*fake.activities(), *FakeSync(projects=3).activities()],
    ):
        entity = f"T{uuid.uuid4().hex[:6].upper()}"  # its own children's ids: no other test's
        wid = f"close-{entity}-2026-11"
        handle = await env.client.start_workflow(
            PeriodCloseWorkflow.run,
            PeriodCloseRequest(
                legal_entity=entity, period="2026-11", requested_by="alice", queues=_queues(queue), window=20
            ),
            id=wid,
            task_queue=queue,
        )
        for _ in range(200):
            if (await handle.query(PeriodCloseWorkflow.report)).step == CloseStep.AWAITING_APPROVAL:
                break
            await asyncio.sleep(0.05)
        await handle.execute_update(
            PeriodCloseWorkflow.approve_lock, LockDecision(approve=True, by="carol", roles=["finance"])
        )
        report = await handle.result()
        counted = await close_actions(env.client, wid)
    assert report.windows == 2 and [len(w) for w in fake.windows] == [20, 5]
    by_type = counted.by_workflow_type
    assert by_type["PeriodCloseWorkflow"] == 12
    assert by_type["PeriodCloseWindowWorkflow"] == 2 * 7 + 1
    assert counted.by_kind["update sent to an engagement"] == 25
    # the hand-back (1) and the posting run's overdue notice (1, the fake's one engagement)
    assert counted.by_kind["signal sent to an engagement"] == 2
    posting_and_sync = by_type["TimeAndExpensePostingWorkflow"] + by_type["SourceSyncWorkflow"]
    assert counted.total == 12 + 15 + posting_and_sync + 25 + 2
    assert counted.engagements == 25 and counted.engagements_closed == report.engagements_closed == 23
    # per window ~7-8 Actions besides one per engagement: 20-engagement windows cost 1.35 at
    # the margin, the 250 a close widens to cost 1.03 (entity-wide steps come on top, once)
    assert counted.histories == 5  # the close, the posting run, two windows, the sync
    assert 0 < counted.max_payload_bytes < 64 * 1024
    lengths = [
        len((await env.client.get_workflow_handle(w).fetch_history()).events)
        for w in (
            wid,
            f"{wid}-w0001",
            f"{wid}-w0002",
            f"posting-{entity}-2026-11-close",
            f"sync-{entity}-2026-11-close",
        )
    ]
    assert counted.max_history_events == max(lengths)
