"""SourceSyncWorkflow on the time-skipping server with its activities faked by name: pages and
their queues, one stage key per run, commit then (optionally) reconcile, the hub-less skip,
and the Schedule's run syncing the previous and the current month as children."""

from __future__ import annotations

import uuid
from decimal import Decimal

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.ids import sync_workflow_id
from contracts.queues import TaskQueues
from contracts.source_sync import SourceSyncInput, SourceSyncResult
from tests.workflows.sync_fakes import FakeSync
from tests.workflows.sync_parent import SyncAsChildParent
from workflows.source_sync import SourceSyncWorkflow, previous_period


def _queues(tag: str) -> TaskQueues:
    return TaskQueues(crm=f"crm-{tag}", psa=f"psa-{tag}", erp=f"erp-{tag}")


async def _run(
    env: WorkflowEnvironment, fake: FakeSync, data: SourceSyncInput, workflow_id: str, parent: type | None = None
) -> SourceSyncResult:
    tag = uuid.uuid4().hex[:8]
    queues = _queues(tag)
    acts = fake.activities()
    by_name = {a.__temporal_activity_definition.name: a for a in acts}  # type: ignore[attr-defined]
    async with (
        Worker(
            env.client,
            task_queue=f"wf-{tag}",
            workflows=[SourceSyncWorkflow, *([parent] if parent else [])],
            activities=[by_name["sync.commit"], by_name["sync.reconcile"]],
        ),
        Worker(env.client, task_queue=queues.psa, activities=[by_name["sync.psa_page"]]),
        Worker(
            env.client, task_queue=queues.erp, activities=[by_name["sync.erp_time_page"], by_name["sync.erp_entity"]]
        ),
        Worker(env.client, task_queue=queues.crm, activities=[by_name["sync.crm_bookings"]]),
    ):
        data = data.model_copy(update={"queues": queues})
        if parent is not None:
            result: SourceSyncResult = await env.client.execute_workflow(
                parent.run, data, id=workflow_id, task_queue=f"wf-{tag}"
            )  # type: ignore[attr-defined]
            return result
        return await env.client.execute_workflow(SourceSyncWorkflow.run, data, id=workflow_id, task_queue=f"wf-{tag}")


async def test_pages_then_commit_then_reconcile(env: WorkflowEnvironment) -> None:
    fake = FakeSync(projects=5)
    wid = sync_workflow_id("US01", "2026-11") + f"-{uuid.uuid4().hex[:6]}"
    result = await _run(
        env, fake, SourceSyncInput(legal_entity="US01", period="2026-11", projects_per_page=2, reconcile=True), wid
    )
    assert result.status == "synced" and result.period == "2026-11"
    p = result.progress
    assert (p.page, p.projects, p.psa_hours, p.erp_time_bill_hours) == (3, 5, Decimal(40), Decimal(40))
    assert [c.after_project for c in fake.psa_calls] == ["", "a0P001", "a0P003"]
    assert [e.project_ids for e in fake.erp_pages] == [["a0P000", "a0P001"], ["a0P002", "a0P003"], ["a0P004"]]
    # one stage key for the whole run, on every step
    keys = {c.sync_key for c in (*fake.psa_calls, *fake.erp_pages, *fake.entity_calls, *fake.crm_calls, *fake.commits)}
    assert keys == {p.sync_key} and p.sync_key.startswith(wid + ":")
    assert len(fake.entity_calls) == 1 and len(fake.commits) == 1
    assert p.erp_entity is not None and p.erp_entity.invoice_totals == {"USD": Decimal("2200.50")}
    assert result.committed == {"psa": 5, "erp": 5}
    assert result.reconciliation is not None and result.reconciliation.status == "clean"
    assert [(r.legal_entity, r.period) for r in fake.reconciled] == [("US01", "2026-11")]
    # the CRM's bookings were extracted on the CRM queue, before the commit
    assert len(fake.crm_calls) == 1 and result.crm is not None and result.crm.booking_totals == {"USD": Decimal(192000)}
    assert any("without a project" in n and "006X" in n for n in result.notes)


async def test_without_reconcile_and_an_exact_last_page(env: WorkflowEnvironment) -> None:
    fake = FakeSync(projects=4)
    result = await _run(
        env,
        fake,
        SourceSyncInput(legal_entity="DE01", period="2026-10", projects_per_page=2),
        f"sync-DE01-2026-10-{uuid.uuid4().hex[:6]}",
    )
    # 4 projects in pages of 2: the third page is empty and ends the run (no ERP page for it)
    assert [len(e.project_ids) for e in fake.erp_pages] == [2, 2]
    assert result.progress.page == 3 and result.reconciliation is None and fake.reconciled == []
    assert len(fake.commits) == 1


async def test_no_hub_on_the_workers_skips(env: WorkflowEnvironment) -> None:
    fake = FakeSync(projects=3, hub=False)
    result = await _run(
        env,
        fake,
        SourceSyncInput(legal_entity="US01", period="2026-11", reconcile=True),
        f"sync-US01-2026-11-{uuid.uuid4().hex[:6]}",
    )
    assert result.status == "skipped" and result.notes
    assert fake.commits == [] and fake.reconciled == [] and fake.erp_pages == []


async def test_runs_as_a_child(env: WorkflowEnvironment) -> None:
    fake = FakeSync(projects=2)
    result = await _run(
        env,
        fake,
        SourceSyncInput(legal_entity="UK01", period="2026-11", reconcile=True),
        f"close-UK01-2026-11-{uuid.uuid4().hex[:6]}",
        parent=SyncAsChildParent,
    )
    assert isinstance(result, SourceSyncResult)
    assert result.workflow_id.startswith("sync-UK01-2026-11-close-")
    assert result.status == "synced" and result.reconciliation is not None


async def test_scheduled_run_syncs_previous_and_current_month(env: WorkflowEnvironment) -> None:
    fake = FakeSync(projects=1)
    entity = f"T{uuid.uuid4().hex[:4]}"
    result = await _run(
        env, fake, SourceSyncInput(legal_entity=entity), f"sync-{entity}-scheduled-{uuid.uuid4().hex[:6]}"
    )
    assert result.status == "scheduled"
    periods = [r.period for r in result.periods]
    assert len(periods) == 2 and periods[0] == previous_period(periods[1])
    assert [r.workflow_id for r in result.periods] == [sync_workflow_id(entity, x) for x in periods]
    assert [c.period for c in fake.commits] == periods


def test_previous_period() -> None:
    assert previous_period("2026-01") == "2025-12" and previous_period("2026-11") == "2026-10"
