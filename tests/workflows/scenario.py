"""The reference 12-month engagement, shared by the lifecycle test, the replay recorder and
the Temporal-Actions benchmark.

UK01 (GBP) sells "Globex UK" an implementation: L1 fixed fee 120,000.00 GBP billed and
recognized on milestones M1/M2/M3 (weights 30/40/30, done in Mar, Jul, Nov 2027) and L2 T&M
advisory (Senior Consultant at 150.00 GBP/h, 40 h every month = 6,000.00). UK VAT 20 %,
reporting currency USD. In June an amendment raises L1 to 150,000.00 (cumulative catch-up),
and a 1,000.00 goodwill credit (a price concession) is issued on May's T&M line. August's
invoice is paid late.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.engagement import (
    AmendmentInput,
    CreditMemoInput,
    DecisionInput,
    EngagementCloseInput,
    EngagementInput,
    EngagementView,
    OverdueInvoice,
    OverdueNotice,
    PaymentNotice,
    PeriodResult,
)
from contracts.erp import InvoiceStatusInput
from contracts.memo import BATCH_MEMO
from contracts.queues import TaskQueues
from domain.amendments import Amendment, AmendmentTreatment, LineChange
from domain.billing import Delivery
from domain.credit_memos import CreditLineRequest, CreditMemoRequest
from domain.deal import AccountNode, OpportunityLineSnapshot, OpportunitySnapshot
from domain.model import Milestone, RateCard, RateCardEntry, Resource, TimeEntry
from domain.money import Money
from domain.periods import period_end
from tests.workflows.fakes import FakeSystems
from workflows.engagement import EngagementWorkflow

YEAR = 2027
PERIODS = [f"{YEAR}-{m:02d}" for m in range(1, 13)]
GBP = "GBP"


def gbp(amount: str) -> Money:
    return Money.of(amount, GBP)


def reference_opportunity(opportunity_id: str = "006REF000000001AAA") -> OpportunitySnapshot:
    return OpportunitySnapshot(
        opportunity_id=opportunity_id,
        name="Globex UK implementation",
        stage="Closed Won",
        amount=Decimal("192000"),
        currency=GBP,
        close_date=date(YEAR - 1, 11, 20),
        legal_entity="UK01",
        billing_terms="Net 30",
        service_package="IMPL-STD",
        delivery_region="EMEA",
        contract_start=date(YEAR, 1, 1),
        contract_end=date(YEAR, 12, 31),
        accounts=[
            AccountNode(
                account_id="001REF000000002AAA",
                name="Globex UK Ltd",
                country="GB",
                tax_id="GB123456789",
                parent_id="001REF000000001AAA",
            ),
            AccountNode(account_id="001REF000000001AAA", name="Globex Holdings", country="US"),
        ],
        lines=[
            OpportunityLineSnapshot(
                line_id="L1",
                name="Implementation",
                total_price=Decimal("120000"),
                billing_model="fixed_fee",
                revenue_method="milestone",
            ),
            OpportunityLineSnapshot(
                line_id="L2",
                name="Advisory",
                total_price=Decimal("72000"),
                billing_model="time_and_materials",
                role="Senior Consultant",
                hours=Decimal("480"),
            ),
        ],
    )


def reference_delivery() -> Delivery:
    """The whole year as the PSA will hold it; each run only sees what is dated by its cut-off."""
    alan = Resource(
        resource_id="R-ALAN", name="Alan", role="Senior Consultant", home_legal_entity="UK01", cost_rate=gbp("110")
    )
    time_entries = [
        TimeEntry(
            entry_id=f"TC-{p}",
            resource_id="R-ALAN",
            project_id="P",
            contract_line_id="L2",
            work_date=date(YEAR, int(p[5:]), 15),
            hours=Decimal(40),
        )
        for p in PERIODS
    ]
    milestones = [
        Milestone(
            milestone_id="M1",
            name="Design sign-off",
            contract_line_id="L1",
            weight=Decimal(30),
            due_date=date(YEAR, 3, 31),
            completed_on=date(YEAR, 3, 20),
        ),
        Milestone(
            milestone_id="M2",
            name="UAT complete",
            contract_line_id="L1",
            weight=Decimal(40),
            due_date=date(YEAR, 7, 31),
            completed_on=date(YEAR, 7, 20),
        ),
        Milestone(
            milestone_id="M3",
            name="Go-live",
            contract_line_id="L1",
            weight=Decimal(30),
            due_date=date(YEAR, 11, 30),
            completed_on=date(YEAR, 11, 20),
        ),
    ]
    card = RateCard(
        rate_card_id="RC-UK",
        currency=GBP,
        entries=[
            RateCardEntry(role="Senior Consultant", bill_rate=Decimal("150.00"), effective_from=date(YEAR - 1, 1, 1))
        ],
    )
    return Delivery(time_entries=time_entries, milestones=milestones, resources=[alan], rate_card=card)


AMENDMENT = Amendment(
    amendment_id="AM-1",
    effective_date=date(YEAR, 6, 15),
    treatment=AmendmentTreatment.CUMULATIVE_CATCH_UP,
    reason="extended scope: two more markets",
    changes=[LineChange(contract_line_id="L1", price=gbp("150000"))],
)


@asynccontextmanager
async def engagement(
    env: WorkflowEnvironment, fake: FakeSystems, *, with_hub: bool = False, own_id: bool = False
) -> AsyncIterator[WorkflowHandle]:
    """The engagement of `fake`'s opportunity, with a worker for as long as the block runs.
    Its workflow id gets a random suffix, so a test can start the same deal again, unless
    `own_id`: then it is the id the API reads (`engagement-<opportunity id>`)."""
    queue = f"q-{uuid.uuid4()}"
    opportunity_id = fake.opportunity.opportunity_id
    workflow_id = f"engagement-{opportunity_id}" + ("" if own_id else f"-{uuid.uuid4().hex[:6]}")
    async with Worker(env.client, task_queue=queue, workflows=[EngagementWorkflow], activities=fake.activities()):
        yield await env.client.start_workflow(
            EngagementWorkflow.run,
            EngagementInput(
                opportunity_id=opportunity_id,
                requested_by="dev-sales-ops",
                queues=TaskQueues(crm=queue, psa=queue, erp=queue, reporting=queue if with_hub else None),
            ),
            id=workflow_id,
            task_queue=queue,
        )


async def advance_to(env: WorkflowEnvironment, moment: datetime) -> None:
    now = await env.get_current_time()
    if moment > now:
        await env.sleep(moment - now)


def month_after(period: str) -> datetime:
    """A few hours into the day after the period ends: when a month-end close runs."""
    return datetime.combine(period_end(period) + timedelta(days=1), datetime.min.time(), tzinfo=UTC) + timedelta(
        hours=6
    )


async def decide(handle: WorkflowHandle, approval_id: str, by: str, roles: list[str], approve: bool = True) -> None:
    await handle.execute_update(
        EngagementWorkflow.decide,
        DecisionInput(approval_id=approval_id, approve=approve, by=by, roles=roles, comment="ok"),
    )


async def month_end(handle: WorkflowHandle, fake: FakeSystems, period: str) -> PeriodResult:
    """What the entity's PeriodCloseWorkflow batch does for this engagement: read its delivery
    (project from the engagement's memo) and the ERP's receipts up to the cut-off, close the
    period through one update, then write the returned outbox (ERP, CRM, PSA, hub)."""
    cutoff = period_end(period)
    memo = await (await handle.describe()).memo_value(BATCH_MEMO)
    receipts = [p for p in fake.erp_payments if p.received_on <= cutoff]
    result: PeriodResult = await handle.execute_update(
        EngagementWorkflow.close_period,
        EngagementCloseInput(
            period=period,
            requested_by="dev-finance",
            delivery=fake.psa_delivery(memo["project_id"]),
            payments=receipts,
            outbox=True,
        ),
    )
    assert result.outbox is not None
    await fake.write_outbox(result.outbox)
    return result


async def drive_reference_year(
    env: WorkflowEnvironment, handle: WorkflowHandle, fake: FakeSystems
) -> dict[str, PeriodResult]:
    """Month by month: close the period; its invoice is paid ten days later (August's late),
    and the receipt reaches the engagement with the next month-end. In mid-June, amend the
    contract and credit May's disputed T&M line; May is then paid net of the credit.
    January 2028's close brings December's receipt. Returns each period's close result."""
    results: dict[str, PeriodResult] = {}
    late: PeriodResult | None = None
    for period in [*PERIODS, f"{YEAR + 1}-01"]:
        if period == "2027-06":
            await advance_to(env, datetime(YEAR, 6, 16, 9, tzinfo=UTC))
            await run_june_changes(handle, results["2027-05"])
            may = results["2027-05"].invoices[0]
            fake.erp_payments.append(
                PaymentNotice(
                    payment_id="PAY-MAY",
                    invoice_id=may.invoice_id,
                    amount=may.total - gbp("1200.00"),
                    received_on=date(YEAR, 6, 20),
                )
            )
        await advance_to(env, month_after(period))
        await overdue_sweep(handle, fake, month_after(period).date())
        if period == "2027-12":
            await handle.signal(EngagementWorkflow.delivery_complete)
        result = await month_end(handle, fake, period)
        results[period] = result
        if period == "2027-08":
            late = result
            continue
        if period in ("2027-05", f"{YEAR + 1}-01"):
            continue  # May is disputed: paid in June, net of the agreed credit
        pay(fake, result, received_on=period_end(period) + timedelta(days=10))
        if period == "2027-09" and late is not None:
            pay(fake, late, received_on=date(YEAR, 10, 5))
    return results


async def overdue_sweep(handle: WorkflowHandle, fake: FakeSystems, as_of: date) -> None:
    """What the entity's daily receivables sweep reports: invoices the ERP holds unpaid past due."""
    status = {getattr(a, "__temporal_activity_definition").name: a for a in fake.activities()}["erp.invoice_status"]
    late = []
    for invoice in fake.invoices.values():
        if invoice.due_date >= as_of or invoice.invoice_id in fake.reported_overdue:
            continue
        held = await status(InvoiceStatusInput(legal_entity="UK01", invoice_id=invoice.invoice_id))
        if held is not None and held.amount_remaining.is_positive():
            late.append(
                OverdueInvoice(
                    invoice_id=invoice.invoice_id, due_date=invoice.due_date, amount_remaining=held.amount_remaining
                )
            )
            fake.reported_overdue.add(invoice.invoice_id)
    if late:
        await handle.signal(EngagementWorkflow.invoices_overdue, OverdueNotice(as_of=as_of, invoices=late))


def pay(fake: FakeSystems, result: PeriodResult, received_on: date) -> None:
    for invoice in result.invoices:
        fake.erp_payments.append(
            PaymentNotice(
                payment_id=f"PAY-{invoice.invoice_id}",
                invoice_id=invoice.invoice_id,
                amount=invoice.total,
                received_on=received_on,
            )
        )


async def run_june_changes(handle: WorkflowHandle, may: PeriodResult) -> None:
    amendment = await handle.execute_update(
        EngagementWorkflow.request_amendment, AmendmentInput(amendment=AMENDMENT, requested_by="dev-delivery-ops")
    )
    # delivery approves through the update, finance through the plain signal
    await decide(handle, amendment.approval_ids[0], "pm-jane", ["delivery_ops"])
    await handle.signal(
        EngagementWorkflow.decision_signal,
        DecisionInput(
            approval_id=amendment.approval_ids[1], approve=True, by="cfo-omar", roles=["finance"], comment="agreed"
        ),
    )
    may_invoice = may.invoices[0].invoice_id
    memo = await handle.execute_update(
        EngagementWorkflow.request_credit_memo,
        CreditMemoInput(
            request=CreditMemoRequest(
                credit_memo_id="CM-1",
                invoice_id=may_invoice,
                memo_date=date(YEAR, 6, 20),
                reason="goodwill: delayed workshop",
                lines=[
                    CreditLineRequest(invoice_line_id=f"{may_invoice}:1", amount=gbp("1000"), price_concession=True)
                ],
            ),
            requested_by="dev-delivery-ops",
        ),
    )
    await decide(handle, memo.approval_ids[0], "controller-kim", ["finance"])


@dataclass
class ReferenceRun:
    fake: FakeSystems
    results: dict[str, PeriodResult]
    final: EngagementView
    history: WorkflowHistory


async def run_reference_year(
    env: WorkflowEnvironment, opportunity_id: str = "006REF000000001AAA", *, with_hub: bool = False
) -> ReferenceRun:
    """The whole year on `env` against fakes, to the end: what the test, the replay
    recorder and the Actions benchmark all drive."""
    fake = FakeSystems(reference_opportunity(opportunity_id))
    fake.delivery = reference_delivery()
    queue = f"ref-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[EngagementWorkflow], activities=fake.activities()):
        handle = await env.client.start_workflow(
            EngagementWorkflow.run,
            EngagementInput(
                opportunity_id=opportunity_id,
                requested_by="dev-sales-ops",
                queues=TaskQueues(crm=queue, psa=queue, erp=queue, reporting=queue if with_hub else None),
            ),
            id=f"engagement-{opportunity_id}",
            task_queue=queue,
        )
        results = await drive_reference_year(env, handle, fake)
        final = await handle.result()
        history = await handle.fetch_history()
    return ReferenceRun(fake=fake, results=results, final=final, history=history)


async def view(handle: WorkflowHandle) -> EngagementView:
    return await handle.query(EngagementWorkflow.view)
