"""Posting runs and period close on the time-skipping server, activities faked by name."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.period_close import CloseStep, LockDecision, PeriodCloseRequest
from contracts.posting import PostingInput
from contracts.queues import TaskQueues
from tests.workflows.batch_fakes import FakeBatch
from tests.workflows.sync_fakes import FakeSync
from workflows.period_close import PeriodCloseWorkflow
from workflows.period_close_window import PeriodCloseWindowWorkflow
from workflows.posting import TimeAndExpensePostingWorkflow
from workflows.source_sync import SourceSyncWorkflow


def _queues(queue: str) -> TaskQueues:
    return TaskQueues(crm=queue, psa=queue, erp=queue)


async def test_posting_pages_and_notifies_once(env: WorkflowEnvironment) -> None:
    fake = FakeBatch(pages=3)
    queue = f"t-{uuid.uuid4()}"
    async with Worker(
        env.client, task_queue=queue, workflows=[TimeAndExpensePostingWorkflow], activities=fake.activities()
    ):
        handle = await env.client.start_workflow(
            TimeAndExpensePostingWorkflow.run,
            PostingInput(legal_entity="US01", posting_date=date(2026, 11, 25), queues=_queues(queue)),
            id="posting-US01-2026-11-25",
            task_queue=queue,
        )
        result = await handle.result()
    p = result.progress
    assert [c.page for c in fake.page_calls] == [0, 1, 2]
    assert [c.after_project for c in fake.page_calls] == ["", "a0P000", "a0P001"]
    assert all(c.run_id == "posting-US01-2026-11-25" and c.cutoff == date(2026, 11, 25) for c in fake.page_calls)
    assert (p.time_entries, p.expenses, p.exceptions_total) == (300, 6, 1)
    assert p.exceptions[0].code == "USER_ERROR"  # the poison record; the other pages went on
    # counts only: nothing per project travels in the run's result (the hub has the time facts)
    assert "totals" not in result.model_dump() and "totals" not in p.model_dump()
    assert p.pages_by_worker == {"w0": 2, "w1": 1}
    history = await handle.fetch_history()
    scheduled = [e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")]
    # 3 pages and the receivables sweep (the ERP read, one signalling activity): never one
    # per record, and no signal to every engagement with time that day
    assert len(scheduled) == 5
    assert "posting.notify_engagements" not in {
        e.activity_task_scheduled_event_attributes.activity_type.name for e in scheduled
    }
    # the day's sweep looks at invoices that fell due the day before the posting date
    assert [(x.legal_entity, x.due_from, x.due_to) for x in fake.swept] == [
        ("US01", date(2026, 11, 24), date(2026, 11, 24))
    ]
    assert p.overdue_invoices == 1
    assert [sorted(n.invoices) for n in fake.overdue_notices] == [["006A"]]


async def test_period_close_windows_approval_and_lock(env: WorkflowEnvironment) -> None:
    fake = FakeBatch(pages=2, engagements=25)
    queue = f"t-{uuid.uuid4()}"
    sync = FakeSync(projects=3)
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[PeriodCloseWorkflow, PeriodCloseWindowWorkflow, TimeAndExpensePostingWorkflow, SourceSyncWorkflow],
        activities=[*fake.activities(), *sync.activities()],
    ):
        handle = await env.client.start_workflow(
            PeriodCloseWorkflow.run,
            PeriodCloseRequest(
                legal_entity="US01", period="2026-11", requested_by="alice", queues=_queues(queue), window=20
            ),
            id="close-US01-2026-11",
            task_queue=queue,
        )
        for _ in range(200):
            report = await handle.query(PeriodCloseWorkflow.report)
            if report.step == CloseStep.AWAITING_APPROVAL:
                break
            await asyncio.sleep(0.05)
        assert report.step == CloseStep.AWAITING_APPROVAL
        assert [len(w) for w in fake.windows] == [20, 5]  # bounded windows
        assert report.posting is not None and report.posting.workflow_id == "posting-US01-2026-11-close"
        assert report.cutoff == date(2026, 11, 30)
        assert not fake.locked  # nothing locks before a person approves
        # four eyes, and only finance
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(
                PeriodCloseWorkflow.approve_lock, LockDecision(approve=True, by="alice", roles=["finance"])
            )
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(
                PeriodCloseWorkflow.approve_lock, LockDecision(approve=True, by="bob", roles=["sales_ops"])
            )
        await handle.execute_update(
            PeriodCloseWorkflow.approve_lock, LockDecision(approve=True, by="carol", roles=["finance"], comment="ok")
        )
        report = await handle.result()
    assert report.step == CloseStep.CLOSED and report.locked
    assert fake.locked == [fake.locked[0]] and fake.locked[0].period == "2026-11"
    # two windows, each a child workflow; the report is a summary, its lines are in the hub
    run_id = (await handle.describe()).run_id
    assert report.report_id == f"close-US01-2026-11/{run_id}" and fake.report_ids == {report.report_id}
    assert report.windows == 2 and report.engagements_total == 25 and report.lines_in_hub
    assert report.engagements_failed == 2  # ...07 and ...17 failed and became exceptions
    ok = 25 - report.engagements_failed
    assert report.engagements_closed == ok and report.engagements_batched == len(fake.batched)
    assert report.totals.billed == {"USD": 100 * ok} and report.totals.deferred == {"USD": 20 * ok}
    assert report.totals.invoices == ok
    codes = {e.code for e in report.exceptions}
    assert "USER_ERROR" in codes and any(c.startswith("ENGAGEMENT_NOT_CLOSED") for c in codes)
    assert report.exceptions_total == 1 + 2  # the posting run's poison record, the two not closed
    # batched engagements: delivery (PSA) and receivables (ERP, receipts and open items in one
    # read) once per window, the documents their closes handed back written per window, a
    # refusal handed back (and its line says why)
    assert fake.reads == ["psa.read_deliveries", "erp.receivables_window"] * 2
    assert fake.writes["erp"] == sorted(fake.batched)
    assert fake.handed_back == [w for w in sorted(fake.batched) if w.endswith("03")]
    assert report.handed_back == 1
    assert fake.lines[fake.engagement_ids[3]].outbox_error == "VendorValidationError: refused"
    children = [
        e.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id
        async for e in handle.fetch_history_events()
        if e.HasField("child_workflow_execution_started_event_attributes")
    ]
    assert children == [
        "posting-US01-2026-11-close",
        "close-US01-2026-11-w0001",
        "close-US01-2026-11-w0002",
        "sync-US01-2026-11-close",
    ]
    assert report.approval is not None and report.approval.decided_by == "carol"
    # the PSA and ERP totals were extracted for this entity and period right before reconciling
    assert report.sync is not None and report.sync.workflow_id == "sync-US01-2026-11-close"
    assert [c.period for c in sync.commits] == ["2026-11"] and sync.psa_calls[0].legal_entity == "US01"


async def test_with_the_hub_a_window_keeps_its_facts_there_and_passes_ids(env: WorkflowEnvironment) -> None:
    """With a reporting queue the windows keep delivery and outboxes in the hub's stage
    (faked here): the widest window from the first (20 + 5 of 25 at window=20, whatever a
    delivery weighs: 40 time entries each, ~7 kB), the same reads and writes per window, no
    delivery or outbox in any window payload, each writer given the staged ids of its
    system, ...03's refused documents handed back from the stage."""
    fake = FakeBatch(pages=1, engagements=25, every_system=True)
    fake.delivery_bytes = 7000
    queue = f"t-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[PeriodCloseWorkflow, PeriodCloseWindowWorkflow, TimeAndExpensePostingWorkflow, SourceSyncWorkflow],
        activities=[*fake.activities(), *FakeSync(projects=1).activities()],
    ):
        queues = TaskQueues(crm=queue, psa=queue, erp=queue, reporting=queue)
        wid = f"close-S{uuid.uuid4().hex[:6].upper()}-2026-11"
        handle = await env.client.start_workflow(
            PeriodCloseWorkflow.run,
            PeriodCloseRequest(
                legal_entity=wid.split("-")[1], period="2026-11", requested_by="alice", queues=queues, window=20
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
        assert (await handle.result()).step == CloseStep.CLOSED
    assert [len(w) for w in fake.windows] == [20, 5]
    batched = sorted(fake.batched)
    assert fake.writes["erp"] == batched
    assert (
        fake.writes["crm"] == fake.writes["psa"] == fake.writes["hub"] == [w for w in batched if not w.endswith("03")]
    )
    assert fake.handed_back == [w for w in batched if w.endswith("03")]
    for window in (f"{wid}-w0001", f"{wid}-w0002"):
        history = await env.client.get_workflow_handle(window).fetch_history()
        largest = max(len(p.data) for e in history.events for p in _payloads(e))
        assert largest < 20 * 1024, window  # by value a window of 20 would carry ~140 kB of deliveries


def _payloads(event: Any) -> list[Any]:
    for name in (
        "activity_task_scheduled_event_attributes",
        "activity_task_completed_event_attributes",
        "workflow_execution_started_event_attributes",
        "workflow_execution_completed_event_attributes",
    ):
        if event.HasField(name):
            attrs = getattr(event, name)
            holder = attrs.input if hasattr(attrs, "input") else attrs.result
            return list(holder.payloads)
    return []


async def test_scheduled_close_delegates_to_the_period_business_id(env: WorkflowEnvironment) -> None:
    fake = FakeBatch(pages=1, engagements=0)
    queue = f"t-{uuid.uuid4()}"
    sync = FakeSync(projects=3)
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[PeriodCloseWorkflow, PeriodCloseWindowWorkflow, TimeAndExpensePostingWorkflow, SourceSyncWorkflow],
        activities=[*fake.activities(), *sync.activities()],
    ):
        handle = await env.client.start_workflow(
            PeriodCloseWorkflow.run,
            PeriodCloseRequest(legal_entity="DE01", queues=_queues(queue)),
            id=f"close-DE01-{uuid.uuid4()}",
            task_queue=queue,
        )
        report = await handle.result()
        assert report.step == CloseStep.DELEGATED and report.period
        child = env.client.get_workflow_handle(f"close-DE01-{report.period}")
        assert (await child.describe()).id == f"close-DE01-{report.period}"
        await child.terminate("test over")
