"""EngagementWorkflow on the time-skipping test server, with the systems faked by activity name."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts import search_attributes as sa
from contracts.engagement import CancelRequest, EngagementInput, EngagementView
from contracts.queues import TaskQueues
from domain.money import Money
from domain.stages import Stage
from tests.workflows.fakes import FakeSystems, good_opportunity
from workflows.engagement import EngagementWorkflow


@asynccontextmanager
async def running(env: WorkflowEnvironment, fake: FakeSystems) -> AsyncIterator[tuple[str, WorkflowHandle]]:
    queue = f"q-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[EngagementWorkflow], activities=fake.activities()):
        opportunity_id = fake.opportunity.opportunity_id
        handle = await env.client.start_workflow(
            EngagementWorkflow.run,
            EngagementInput(opportunity_id=opportunity_id, queues=TaskQueues(crm=queue, psa=queue, erp=queue)),
            id=f"engagement-{opportunity_id}-{uuid.uuid4().hex[:6]}",
            task_queue=queue,
        )
        yield queue, handle


async def wait_for(handle: WorkflowHandle, predicate: Callable[[EngagementView], bool]) -> EngagementView:
    for _ in range(200):
        view = await handle.query(EngagementWorkflow.view)
        if predicate(view):
            return view
        await handle.query(EngagementWorkflow.view)  # lets the test server run pending tasks
    raise AssertionError(f"condition never met; last view: {view}")


async def test_happy_path_reaches_in_delivery_with_every_lineage_key(env: WorkflowEnvironment) -> None:
    fake = FakeSystems(good_opportunity())
    async with running(env, fake) as (_, handle):
        view = await wait_for(handle, lambda v: v.stage == Stage.IN_DELIVERY)
        assert view.customer_id == "001000000000001AAA"
        assert view.erp_customer_id == "C-1AAA"
        assert view.project_id is not None and view.project_id.startswith("a0P")
        assert view.contract_id == "SO-1"
        assert view.legal_entity == "US01"
        assert view.contract_value == Money.of("150000.00", "USD")
        assert view.billing_models == ["fixed_fee", "time_and_materials"]
        assert fake.links[fake.opportunity.opportunity_id].project_id == view.project_id
        desc = await handle.describe()
        assert desc.typed_search_attributes.get(sa.STAGE) == "IN_DELIVERY"
        assert desc.typed_search_attributes.get(sa.PROJECT_ID) == view.project_id
        assert desc.typed_search_attributes.get(sa.LEGAL_ENTITY) == "US01"
        # Each write happened once, and nothing was undone.
        assert fake.calls["psa.create_project"] == 1
        assert fake.calls["erp.create_sales_order"] == 1
        assert fake.calls["psa.remove_project"] == 0
        await handle.signal(EngagementWorkflow.cancel, CancelRequest(reason="test over"))


async def test_invalid_deal_waits_with_field_errors_and_builds_nothing(env: WorkflowEnvironment) -> None:
    broken = good_opportunity("006000000000009AAA").model_copy(update={"legal_entity": None, "lines": []})
    fake = FakeSystems(broken)
    async with running(env, fake) as (_, handle):
        view = await wait_for(handle, lambda v: v.stage == Stage.NEEDS_ATTENTION)
        fields = {e.field for e in view.errors}
        assert {"D2R_Legal_Entity__c", "OpportunityLineItems"} <= fields
        assert fake.calls["erp.upsert_customer"] == 0
        assert fake.calls["psa.create_project"] == 0
        assert fake.calls["erp.create_sales_order"] == 0

        # A person fixes the CRM and asks for revalidation: the deal is then provisioned.
        fake.opportunity = good_opportunity("006000000000009AAA")
        await handle.signal(EngagementWorkflow.revalidate)
        view = await wait_for(handle, lambda v: v.stage == Stage.IN_DELIVERY)
        assert view.errors == []
        assert [t.stage for t in view.timeline].count(Stage.NEEDS_ATTENTION) >= 1
        await handle.signal(EngagementWorkflow.cancel, CancelRequest(reason="test over"))


async def test_cancelled_invalid_deal_ends_cancelled(env: WorkflowEnvironment) -> None:
    fake = FakeSystems(good_opportunity("006000000000008AAA").model_copy(update={"stage": "Negotiation/Review"}))
    async with running(env, fake) as (_, handle):
        view = await wait_for(handle, lambda v: v.stage == Stage.NEEDS_ATTENTION)
        assert [e.code for e in view.errors] == ["wrong_stage"]
        await handle.signal(EngagementWorkflow.cancel, CancelRequest(reason="lost deal", by="dev-sales-ops"))
        result = await handle.result()
        assert result.stage == Stage.CANCELLED
        assert "lost deal" in result.timeline[-1].note


async def test_sales_order_failure_undoes_the_project_once_then_retry_succeeds(env: WorkflowEnvironment) -> None:
    fake = FakeSystems(good_opportunity("006000000000007AAA"))
    fake.fail_step = "erp.create_sales_order"
    async with running(env, fake) as (_, handle):
        view = await wait_for(handle, lambda v: v.stage == Stage.NEEDS_ATTENTION)
        assert view.failure is not None and "VendorValidationError" in view.failure
        assert fake.calls["psa.remove_project"] == 1
        assert fake.projects == set()
        assert view.project_id is None and view.contract_id is None
        # The cancel compensation was registered before the step ran (its response could
        # have been lost), so it ran too — harmlessly, as nothing was created.
        assert fake.calls["erp.cancel_sales_order"] == 1
        assert all(not still_open for still_open in fake.orders.values())

        fake.fail_step = None
        await handle.signal(EngagementWorkflow.retry)
        view = await wait_for(handle, lambda v: v.stage == Stage.IN_DELIVERY)
        assert view.contract_id == "SO-1"
        assert len(fake.projects) == 1
        await handle.signal(EngagementWorkflow.cancel, CancelRequest(reason="test over"))


async def test_crm_write_back_failure_undoes_order_and_project(env: WorkflowEnvironment) -> None:
    fake = FakeSystems(good_opportunity("006000000000006AAA"))
    fake.fail_step = "crm.write_links"
    async with running(env, fake) as (_, handle):
        view = await wait_for(handle, lambda v: v.stage == Stage.NEEDS_ATTENTION)
        assert fake.calls["erp.cancel_sales_order"] == 1
        assert fake.calls["psa.remove_project"] == 1
        assert fake.projects == set()
        assert all(not still_open for still_open in fake.orders.values())
        assert fake.links[fake.opportunity.opportunity_id].project_id is None
        assert view.stage == Stage.NEEDS_ATTENTION
        await handle.signal(EngagementWorkflow.cancel, CancelRequest(reason="test over"))


@pytest.mark.parametrize(
    ("failing", "undone"),
    [
        ("erp.upsert_customer", []),  # nothing was registered yet: nothing to undo
        ("psa.create_project", ["psa.remove_project"]),  # its own undo runs: the response may have been lost
        ("erp.create_sales_order", ["erp.cancel_sales_order", "psa.remove_project"]),
        ("crm.write_links", ["crm.clear_links", "erp.cancel_sales_order", "psa.remove_project"]),
    ],
)
async def test_each_provisioning_step_failing_undoes_the_earlier_ones_once(
    env: WorkflowEnvironment, failing: str, undone: list[str]
) -> None:
    fake = FakeSystems(good_opportunity(f"006F{uuid.uuid4().hex[:14].upper()}"))
    fake.fail_step = failing
    async with running(env, fake) as (_, handle):
        view = await wait_for(handle, lambda v: v.stage == Stage.NEEDS_ATTENTION)
        assert view.failure is not None and "VendorValidationError" in view.failure
        for undo in ["psa.remove_project", "erp.cancel_sales_order", "crm.clear_links"]:
            assert fake.calls[undo] == (1 if undo in undone else 0), undo
        # Nothing is left behind: no project, no open sales order, no links on the opportunity.
        assert fake.projects == set()
        assert not any(fake.orders.values())
        links = fake.links.get(fake.opportunity.opportunity_id)
        assert links is None or links.project_id is None
        await handle.signal(EngagementWorkflow.cancel, CancelRequest(reason="test over"))


async def test_a_wait_for_a_person_is_one_hub_exception_until_its_step_passes(env: WorkflowEnvironment) -> None:
    broken = good_opportunity("006HUB000000001AAA").model_copy(update={"legal_entity": None})
    fake = FakeSystems(broken)
    queue = f"q-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[EngagementWorkflow], activities=fake.activities()):
        handle = await env.client.start_workflow(
            EngagementWorkflow.run,
            EngagementInput(
                opportunity_id=broken.opportunity_id,
                queues=TaskQueues(crm=queue, psa=queue, erp=queue, reporting=queue),
            ),
            id=f"engagement-{broken.opportunity_id}",
            task_queue=queue,
        )
        await wait_for(handle, lambda v: v.stage == Stage.NEEDS_ATTENTION)
        for _ in range(100):
            if fake.hub_exceptions:
                break
            await handle.query(EngagementWorkflow.view)
        [raised] = fake.hub_exceptions.values()
        assert raised.workflow_id == f"engagement-{broken.opportunity_id}" and raised.incident == 1
        assert raised.error_type == "InvalidDeal" and "D2R_Legal_Entity__c" in raised.detail
        assert fake.hub_resolved == []
        # Retried while the deal is still invalid: the same exception, open again, not resolved
        # and replaced by a new one.
        await handle.signal(EngagementWorkflow.revalidate)
        await wait_for(handle, lambda v: len([t for t in v.timeline if t.stage == Stage.NEEDS_ATTENTION]) == 2)
        await wait_for(handle, lambda v: fake.hub_retrying == [1] and v.stage == Stage.NEEDS_ATTENTION)
        assert list(fake.hub_exceptions) == [1] and fake.hub_resolved == []
        # Fixed, then retried: resolved once the step passed.
        fake.opportunity = good_opportunity("006HUB000000001AAA")
        await handle.signal(EngagementWorkflow.revalidate)
        await wait_for(handle, lambda v: v.stage == Stage.IN_DELIVERY)
        assert fake.hub_retrying == [1, 1] and fake.hub_resolved == [1]


async def test_batched_close_hands_back_its_writes_and_takes_back_refused_ones(env: WorkflowEnvironment) -> None:
    """The month-end batch path: delivery and receipts in, writes out (nothing written by the
    engagement); a write the batch could not make comes back and the engagement makes it."""
    from contracts.engagement import EngagementCloseInput, OutboxFailure
    from contracts.memo import BATCH_MEMO
    from tests.workflows import scenario

    fake = FakeSystems(scenario.reference_opportunity(f"006B{uuid.uuid4().hex[:14].upper()}"))
    fake.delivery = scenario.reference_delivery()
    async with running(env, fake) as (_, handle):
        await wait_for(handle, lambda v: v.stage == Stage.IN_DELIVERY)
        memo = await (await handle.describe()).memo_value(BATCH_MEMO)
        assert memo["project_id"] and [ln["line_id"] for ln in memo["lines"]] == ["L1", "L2"]
        result = await handle.execute_update(
            EngagementWorkflow.close_period,
            EngagementCloseInput(period="2027-01", delivery=fake.psa_delivery(memo["project_id"]), outbox=True),
        )
        outbox = result.outbox
        assert outbox is not None and outbox.erp is not None and outbox.crm is not None and outbox.psa is not None
        assert [i.total for i in outbox.erp.invoices] == [scenario.gbp("7200.00")]
        assert outbox.psa.mark is not None and outbox.psa.mark.time_entry_ids == ["TC-2027-01"]
        assert fake.calls["erp.post_documents"] == 0 and fake.calls["crm.write_billing_status"] == 0
        assert not fake.invoices  # the engagement wrote nothing itself
        # asked again (a retried window), the same writes come back
        again = await handle.execute_update(
            EngagementWorkflow.close_period, EngagementCloseInput(period="2027-01", outbox=True)
        )
        assert again.outbox is not None and again.outbox.erp == outbox.erp

        await handle.signal(
            EngagementWorkflow.outbox_failed,
            OutboxFailure(period="2027-01", outbox=outbox, error="VendorValidationError: refused"),
        )
        view = await wait_for(
            handle, lambda v: any("could not write" in t.note for t in v.timeline) and bool(fake.billed_entries)
        )
        assert list(fake.invoices) == [outbox.erp.invoices[0].invoice_id]
        assert fake.crm_status is not None and fake.crm_status.status == "Billed"
        assert fake.billed_entries == {"TC-2027-01"}
        assert view.stage == Stage.IN_DELIVERY


async def test_a_closes_exceptions_reach_the_hub_not_only_the_view(env: WorkflowEnvironment) -> None:
    """good_opportunity's fixed-fee line is cost-to-cost with no estimate at completion, and
    300 approved hours of cost are on it: revenue cannot be computed. The error-severity
    revenue_not_computable is in the close result and the view, and is sent to the hub (so
    /v1/exceptions and the dashboard list it), once: closing again sends nothing new."""
    from contracts.engagement import EngagementCloseInput
    from domain.billing import Delivery
    from domain.model import Resource, TimeEntry

    fake = FakeSystems(good_opportunity(f"006X{uuid.uuid4().hex[:14].upper()}"))
    queue = f"q-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[EngagementWorkflow], activities=fake.activities()):
        handle = await env.client.start_workflow(
            EngagementWorkflow.run,
            EngagementInput(
                opportunity_id=fake.opportunity.opportunity_id,
                queues=TaskQueues(crm=queue, psa=queue, erp=queue, reporting=queue),
            ),
            id=f"engagement-{fake.opportunity.opportunity_id}",
            task_queue=queue,
        )
        view = await wait_for(handle, lambda v: v.stage == Stage.IN_DELIVERY)
        ff = fake.opportunity.lines[0].line_id
        fake.delivery = Delivery(
            time_entries=[
                TimeEntry(
                    entry_id="E1",
                    resource_id="R1",
                    project_id=view.project_id or "",
                    contract_line_id=ff,
                    work_date=fake.opportunity.close_date,  # type: ignore[arg-type]
                    hours=300,
                )
            ],
            resources=[
                Resource(
                    resource_id="R1",
                    name="Ada",
                    role="Architect",
                    home_legal_entity="US01",
                    cost_rate=Money.of("100", "USD"),
                )
            ],
        )
        result = await handle.execute_update(EngagementWorkflow.close_period, EngagementCloseInput(period="2026-11"))
        assert ("revenue_not_computable", "error") in [(x.code, x.severity.value) for x in result.exceptions]
        view = await handle.query(EngagementWorkflow.view)
        assert "revenue_not_computable" in [x.code for x in view.exceptions]
        # the hub write follows the close (after the CRM/PSA feedback)
        await wait_for(handle, lambda _: bool(fake.hub_business_exceptions))
        # every one of the close's exceptions (FF has no milestones to bill either)
        sent = [(x.code, x.severity.value) for x in result.exceptions]
        assert fake.hub_business_exceptions == sent
        assert sent == [("no_billing_milestones", "error"), ("revenue_not_computable", "error")]
        again = await handle.execute_update(EngagementWorkflow.close_period, EngagementCloseInput(period="2026-11"))
        assert again.period == "2026-11"
        for _ in range(5):  # let any follow-up work run
            await handle.query(EngagementWorkflow.view)
        assert fake.hub_business_exceptions == sent  # already in the hub: not sent again
        await handle.signal(EngagementWorkflow.cancel, CancelRequest(reason="test over"))
