"""Locking a period over reconciliation differences needs an explicit override with a reason."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.period_close import CloseStep, LockDecision, PeriodCloseRequest
from tests.workflows.batch_fakes import FakeBatch
from tests.workflows.sync_fakes import FakeSync
from tests.workflows.test_posting_and_close import _queues
from workflows.period_close import PeriodCloseWorkflow
from workflows.period_close_window import PeriodCloseWindowWorkflow
from workflows.posting import TimeAndExpensePostingWorkflow
from workflows.source_sync import SourceSyncWorkflow


async def test_a_lock_over_differences_needs_a_reason(env: WorkflowEnvironment) -> None:
    """The close's reconciliation finds 3 differences. Carol (finance, not the requester)
    approving plainly, or with a blank reason, is refused and nothing locks; approving with
    a reason locks, and the timeline says it went over 3 differences and why."""
    fake = FakeBatch(pages=1, engagements=3)
    fake.reconcile_differences = 3
    queue = f"t-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[PeriodCloseWorkflow, PeriodCloseWindowWorkflow, TimeAndExpensePostingWorkflow, SourceSyncWorkflow],
        activities=[*fake.activities(), *FakeSync(projects=1).activities()],
    ):
        handle = await env.client.start_workflow(
            PeriodCloseWorkflow.run,
            PeriodCloseRequest(legal_entity="US01", period="2026-11", requested_by="alice", queues=_queues(queue)),
            id=f"close-US01-2026-11-{uuid.uuid4().hex[:6]}",
            task_queue=queue,
        )
        for _ in range(200):
            report = await handle.query(PeriodCloseWorkflow.report)
            if report.step == CloseStep.AWAITING_APPROVAL:
                break
            await asyncio.sleep(0.05)
        assert report.reconciliation is not None and report.reconciliation.differences == 3
        for reason in (None, "  "):
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(
                    PeriodCloseWorkflow.approve_lock,
                    LockDecision(approve=True, by="carol", roles=["finance"], override_reason=reason),
                )
            assert "3 difference(s)" in str(refused.value.cause)
        assert not fake.locked
        # rejecting needs no reason; it is not what is asked here, so approve with one
        await handle.execute_update(
            PeriodCloseWorkflow.approve_lock,
            LockDecision(
                approve=True, by="carol", roles=["finance"], override_reason="timing: ERP invoice posted on the 1st"
            ),
        )
        report = await handle.result()
    assert report.step == CloseStep.CLOSED and report.locked and len(fake.locked) == 1
    assert any(
        "over 3 reconciliation difference(s) (timing: ERP invoice posted on the 1st)" in t for t in report.timeline
    )
