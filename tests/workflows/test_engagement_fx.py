"""The engagement converts at the hub's rates (the `fx.rates_on` activity), not the reference file's.

The reference engagement (tests/workflows/scenario.py: UK01, GBP, reporting USD) closes
January 2027: 40 h at 150.00 GBP = 6,000.00 GBP net, 20 % VAT, invoice 7,200.00 GBP; revenue
6,000.00 GBP (T&M as delivered). The reference file says GBP→USD 1.27 (1 Jan 2026); the ERP's
synced record in the hub says 1.25 from 15 Jan 2027. Converted at the hub's rate:
invoice 7,200.00 x 1.25 = USD 9,000.00 (the file's rate would give 9,144.00) and revenue
6,000.00 x 1.25 = USD 7,500.00. Without a hub the file's rate stands: USD 9,144.00 and 7,620.00.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.engagement import (
    AmendmentInput,
    ChangeStatus,
    DecisionInput,
    EngagementCloseInput,
    EngagementInput,
    EngagementView,
)
from contracts.memo import BATCH_MEMO
from contracts.queues import TaskQueues
from domain.amendments import Amendment, AmendmentTreatment, LineChange
from domain.billing import Delivery
from domain.fx import ChosenRate, FxLookup, FxRate, FxRateTable
from domain.model import Resource, TimeEntry
from domain.money import Money
from domain.stages import Stage
from tests.workflows import scenario
from tests.workflows.fakes import FakeSystems, good_opportunity
from tests.workflows.test_engagement_workflow import wait_for
from workflows.engagement import EngagementWorkflow

JAN_31 = date(2027, 1, 31)


async def _close_january(env: WorkflowEnvironment, with_hub: bool) -> tuple[FakeSystems, EngagementView]:
    fake = FakeSystems(scenario.reference_opportunity(f"006F{uuid.uuid4().hex[:14].upper()}"))
    fake.delivery = scenario.reference_delivery()
    fake.hub_rates.rates.append(FxRate(base="GBP", quote="USD", rate=Decimal("1.25"), as_of=date(2027, 1, 15)))
    queue = f"q-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[EngagementWorkflow], activities=fake.activities()):
        handle = await env.client.start_workflow(
            EngagementWorkflow.run,
            EngagementInput(
                opportunity_id=fake.opportunity.opportunity_id,
                queues=TaskQueues(crm=queue, psa=queue, erp=queue, reporting=queue if with_hub else None),
            ),
            id=f"engagement-{fake.opportunity.opportunity_id}",
            task_queue=queue,
        )
        await wait_for(handle, lambda v: v.stage == Stage.IN_DELIVERY)
        await handle.execute_update(EngagementWorkflow.close_period, EngagementCloseInput(period="2027-01"))
        view = await handle.query(EngagementWorkflow.view)
        await handle.terminate("test over")
    return fake, view


async def test_a_close_converts_at_the_hubs_rate_for_the_day(env: WorkflowEnvironment) -> None:
    fake, view = await _close_january(env, with_hub=True)
    [invoice] = view.invoices
    assert invoice.total == scenario.gbp("7200.00")
    assert invoice.functional is None  # UK01 books in GBP
    assert invoice.reporting == Money.of("9000.00", "USD")
    [january] = view.revenue
    assert (january.period, january.amount, january.reporting) == (
        "2027-01",
        scenario.gbp("6000.00"),
        Money.of("7500.00", "USD"),
    )
    # One activity for the close, asking only what the run converts: GBP→USD on the cut-off.
    assert fake.calls["fx.rates_on"] == 1
    assert fake.rates_asked == [FxLookup(base="GBP", quote="USD", on=JAN_31)]


async def test_without_a_hub_the_reference_rates_stand(env: WorkflowEnvironment) -> None:
    fake, view = await _close_january(env, with_hub=False)
    [invoice] = view.invoices
    assert invoice.reporting == Money.of("9144.00", "USD")
    assert view.revenue[0].reporting == Money.of("7620.00", "USD")
    assert fake.calls["fx.rates_on"] == 0


async def test_rates_handed_in_with_the_delivery_need_no_call(env: WorkflowEnvironment) -> None:
    """A month-end batch that already holds the hub's rate for the cut-off hands it in: the
    engagement converts at it and asks nothing (no extra Action per engagement)."""

    fake = FakeSystems(scenario.reference_opportunity(f"006G{uuid.uuid4().hex[:14].upper()}"))
    fake.delivery = scenario.reference_delivery()
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
        await wait_for(handle, lambda v: v.stage == Stage.IN_DELIVERY)
        memo = await (await handle.describe()).memo_value(BATCH_MEMO)
        rate = ChosenRate(
            base="GBP", quote="USD", on=JAN_31, rate=Decimal("1.25"), rate_date=date(2027, 1, 15), source="netsuite:x"
        )
        delivery = fake.psa_delivery(memo["project_id"]).model_copy(update={"fx": FxRateTable(chosen=[rate])})
        await handle.execute_update(
            EngagementWorkflow.close_period, EngagementCloseInput(period="2027-01", delivery=delivery, outbox=True)
        )
        view = await handle.query(EngagementWorkflow.view)
        await handle.terminate("test over")
    assert view.invoices[0].reporting == Money.of("9000.00", "USD")
    assert view.invoices[0].lines and view.revenue[0].reporting == Money.of("7500.00", "USD")
    assert fake.calls["fx.rates_on"] == 0


async def test_an_amendments_catch_up_converts_costs_at_the_hubs_rate(env: WorkflowEnvironment) -> None:
    """good_opportunity (US01, USD): FF 100,000.00 cost-to-cost. Alan (UK01, cost 100.00 GBP/h)
    books 100 h on FF on 10 Nov 2026: cost GBP 10,000. An amendment effective 20 Nov sets the
    estimate at completion to USD 50,000 as a cumulative catch-up. The hub says GBP→USD 1.25
    from 1 Nov (the file: 1.27): cost 12,500.00 USD = 25 % → catch-up 25,000.00 USD (at the
    file's rate it would be 12,700 / 50,000 x 100,000 = 25,400.00). One rate lookup: GBP/USD on
    the work date."""

    fake = FakeSystems(good_opportunity(f"006A{uuid.uuid4().hex[:14].upper()}"))
    fake.hub_rates.rates.append(FxRate(base="GBP", quote="USD", rate=Decimal("1.25"), as_of=date(2026, 11, 1)))
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
        ff = "00k000000000001AAA"
        alan = Resource(
            resource_id="R-ALAN",
            name="Alan",
            role="Architect",
            home_legal_entity="UK01",
            cost_rate=Money.of(100, "GBP"),
        )
        fake.delivery = Delivery(
            time_entries=[
                TimeEntry(
                    entry_id="TE-1",
                    resource_id="R-ALAN",
                    project_id=view.project_id or "",
                    contract_line_id=ff,
                    work_date=date(2026, 11, 10),
                    hours=Decimal(100),
                )
            ],
            resources=[alan],
        )
        record = await handle.execute_update(
            EngagementWorkflow.request_amendment,
            AmendmentInput(
                amendment=Amendment(
                    amendment_id="AM-EAC",
                    effective_date=date(2026, 11, 20),
                    treatment=AmendmentTreatment.CUMULATIVE_CATCH_UP,
                    reason="estimate agreed",
                    changes=[LineChange(contract_line_id=ff, estimate_at_completion=Money.of(50000, "USD"))],
                ),
                requested_by="dev-delivery-ops",
            ),
        )
        roles = ["delivery_ops", "finance"]
        for n, approval_id in enumerate(record.approval_ids):
            await handle.execute_update(
                EngagementWorkflow.decide,
                DecisionInput(approval_id=approval_id, approve=True, by=f"person-{n}", roles=[roles[n % 2]]),
            )
        view = await wait_for(handle, lambda v: v.changes[0].status is not ChangeStatus.AWAITING_APPROVAL)
        await handle.terminate("test over")
    assert view.changes[0].status is ChangeStatus.APPLIED, view.changes[0]
    [november] = view.revenue
    assert november.amount == Money.of("25000.00", "USD")
    assert fake.rates_asked == [FxLookup(base="GBP", quote="USD", on=date(2026, 11, 10))]
