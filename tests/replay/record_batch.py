"""Re-record the posting and period-close histories: `python -m tests.replay.record_batch`.

Like `tests.replay.record`, run it only when a change to these workflows is meant to be
incompatible with runs in flight (and then version the workflow). `--staged-only` records
just the close whose windows keep their facts in the hub (`period_close_staged`,
`period_close_window_staged`), leaving the others as they were recorded."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from pathlib import Path

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.inbound import InboundEvent
from contracts.period_close import CloseStep, LockDecision, PeriodCloseRequest
from contracts.posting import PostingInput
from contracts.psa import ProjectOpportunityInput, ProjectOpportunityResult
from contracts.queues import TaskQueues
from tests.conftest import TEST_CONVERTER, wheel_binary
from tests.workflows.batch_fakes import FakeBatch
from tests.workflows.sync_fakes import FakeSync
from workflows.inbound import InboundEventWorkflow
from workflows.period_close import PeriodCloseWorkflow
from workflows.period_close_window import PeriodCloseWindowWorkflow
from workflows.posting import TimeAndExpensePostingWorkflow
from workflows.source_sync import SourceSyncWorkflow

HERE = Path(__file__).parent / "histories"


async def main(staged_only: bool = False) -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=wheel_binary("temporal-test-server"), data_converter=TEST_CONVERTER
    )
    fake = FakeBatch(pages=3, engagements=25)
    queue = f"rec-{uuid.uuid4()}"
    queues = TaskQueues(crm=queue, psa=queue, erp=queue)
    sync = FakeSync(projects=3)

    @activity.defn(name="psa.project_opportunity")
    async def project_opportunity(data: ProjectOpportunityInput) -> ProjectOpportunityResult:
        return ProjectOpportunityResult(opportunity_id=None)

    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[
            TimeAndExpensePostingWorkflow,
            PeriodCloseWorkflow,
            PeriodCloseWindowWorkflow,
            SourceSyncWorkflow,
            InboundEventWorkflow,
        ],
        activities=[*fake.activities(), *sync.activities(), project_opportunity],
    ):
        if staged_only:
            await _record_staged_close(env, queue, fake)
            await env.shutdown()
            return
        posting = await env.client.start_workflow(
            TimeAndExpensePostingWorkflow.run,
            PostingInput(legal_entity="US01", posting_date=date(2026, 11, 25), queues=queues),
            id="posting-US01-2026-11-25",
            task_queue=queue,
        )
        await posting.result()
        history = await posting.fetch_history()
        (HERE / "posting_run.json").write_text(history.to_json())
        print(f"recorded posting_run: {len(history.events)} events")

        close = await env.client.start_workflow(
            PeriodCloseWorkflow.run,
            PeriodCloseRequest(legal_entity="US01", period="2026-11", requested_by="alice", queues=queues, window=20),
            id="close-US01-2026-11",
            task_queue=queue,
        )
        for _ in range(400):
            if (await close.query(PeriodCloseWorkflow.report)).step == CloseStep.AWAITING_APPROVAL:
                break
            await asyncio.sleep(0.05)
        await close.execute_update(
            PeriodCloseWorkflow.approve_lock, LockDecision(approve=True, by="carol", roles=["finance"])
        )
        await close.result()
        history = await close.fetch_history()
        (HERE / "period_close.json").write_text(history.to_json())
        print(f"recorded period_close: {len(history.events)} events")
        window = await env.client.get_workflow_handle("close-US01-2026-11-w0001").fetch_history()
        (HERE / "period_close_window.json").write_text(window.to_json())
        print(f"recorded period_close_window: {len(window.events)} events")

        # Webhooks: a payment (acknowledged; read from the ERP by the next close) and a
        # milestone on a project no engagement owns.
        for name, event in (
            (
                "inbound_payment",
                InboundEvent(
                    source="netsuite",
                    event_id="evt-pay-1",
                    type="payment.received",
                    queues=queues,
                    data={
                        "payment_id": "901",
                        "currency": "USD",
                        "tran_date": "2026-11-20",
                        "applied": [{"invoice_id": "77", "amount": "1200.00"}],
                    },
                ),
            ),
            (
                "inbound_milestone",
                InboundEvent(
                    source="salesforce",
                    event_id="evt-ms-1",
                    type="milestone.completed",
                    queues=queues,
                    data={"project_id": "a0P000000000001AAA", "milestone_id": "a0M1", "actual_date": "2026-11-20"},
                ),
            ),
        ):
            result = await env.client.execute_workflow(
                InboundEventWorkflow.run, event, id=f"webhook-{name}", task_queue=queue
            )
            history = await env.client.get_workflow_handle(f"webhook-{name}").fetch_history()
            (HERE / f"{name}.json").write_text(history.to_json())
            print(f"recorded {name}: {len(history.events)} events ({result.note})")
        await _record_staged_close(env, queue, fake)
    await env.shutdown()


async def _record_staged_close(env: WorkflowEnvironment, queue: str, fake: FakeBatch) -> None:
    """A close with the hub's queue: its windows pass ids, their facts wait in the (faked) stage."""
    fake.delivery_bytes = 2000
    close = await env.client.start_workflow(
        PeriodCloseWorkflow.run,
        PeriodCloseRequest(
            legal_entity="UK01",
            period="2026-11",
            requested_by="alice",
            queues=TaskQueues(crm=queue, psa=queue, erp=queue, reporting=queue),
            window=20,
        ),
        id="close-UK01-2026-11",
        task_queue=queue,
    )
    for _ in range(400):
        if (await close.query(PeriodCloseWorkflow.report)).step == CloseStep.AWAITING_APPROVAL:
            break
        await asyncio.sleep(0.05)
    await close.execute_update(
        PeriodCloseWorkflow.approve_lock, LockDecision(approve=True, by="carol", roles=["finance"])
    )
    await close.result()
    for name, wid in (
        ("period_close_staged", "close-UK01-2026-11"),
        ("period_close_window_staged", "close-UK01-2026-11-w0001"),
    ):
        history = await env.client.get_workflow_handle(wid).fetch_history()
        (HERE / f"{name}.json").write_text(history.to_json())
        print(f"recorded {name}: {len(history.events)} events")
    fake.delivery_bytes = 0


if __name__ == "__main__":
    import sys

    asyncio.run(main(staged_only="--staged-only" in sys.argv))
