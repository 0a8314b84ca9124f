"""What an engagement tells a person without opening a payload: what it waits for (whose
approval, which fix, which period) and since when, in its view and in the Web UI's current
details; the ids the next request names (contract lines from validation on, invoices with
their lines and what is still creditable); and a rejection that leaves nothing pending."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from contracts import search_attributes as sa
from contracts.engagement import AmendmentInput, ChangeStatus, CreditMemoInput, EngagementCloseInput, WaitKind
from domain.amendments import Amendment, AmendmentTreatment, LineChange
from domain.credit_memos import CreditLineRequest, CreditMemoRequest
from domain.model import ApprovalDecision
from domain.stages import Stage
from tests.workflows import scenario
from tests.workflows.fakes import FakeSystems, good_opportunity
from tests.workflows.scenario import gbp
from tests.workflows.test_approvals_and_sagas import decision, engagement, until
from workflows.engagement import EngagementWorkflow


async def current_details(handle: WorkflowHandle) -> str:
    """What the Web UI shows as the workflow's current details (the SDK's metadata query)."""
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return metadata.current_details


async def test_a_deal_awaiting_approval_says_whose_decision_and_lists_its_lines(own_env: WorkflowEnvironment) -> None:
    big = good_opportunity("006STY000000000AAA").model_copy(update={"amount": Decimal("300000")})
    big.lines[0].total_price = Decimal("250000")
    fake = FakeSystems(big)
    async with engagement(own_env, fake) as handle:
        view = await until(handle, Stage.AWAITING_APPROVAL)
        [approval_id] = view.pending_approvals
        assert view.waiting_for is not None and view.waiting_for.kind is WaitKind.APPROVAL
        assert view.waiting_for.approval_ids == [approval_id]
        assert "finance to decide deal" in view.waiting_for.what and "not dev-sales-ops" in view.waiting_for.what
        assert view.stage_since is not None and view.waiting_for.since >= view.stage_since
        # The booked lines, with their ids, before anything is provisioned or billed.
        assert [ln.line_id for ln in view.contract_lines] == [ln.line_id for ln in big.lines]
        assert view.lines == [] and view.invoices == []

        details = await current_details(handle)
        assert details.startswith("**AWAITING_APPROVAL** since ")
        assert "**Waiting for:** finance to decide deal" in details and approval_id in details

        await handle.execute_update(EngagementWorkflow.decide, decision(approval_id, "cfo-omar", ["finance"]))
        view = await until(handle, Stage.IN_DELIVERY)
        assert view.waiting_for is not None and view.waiting_for.kind is WaitKind.PERIOD_CLOSE
        assert view.waiting_for.period is not None and view.waiting_for.period in view.waiting_for.what
        assert f"the {view.waiting_for.period} month-end close" in await current_details(handle)


async def test_an_invalid_deal_waits_for_a_fix(env: WorkflowEnvironment) -> None:
    lost = good_opportunity("006STY000000001AAA").model_copy(update={"stage": "Negotiation/Review"})
    async with engagement(env, FakeSystems(lost)) as handle:
        view = await until(handle, Stage.NEEDS_ATTENTION)
        assert view.waiting_for is not None and view.waiting_for.kind is WaitKind.FIX
        assert "StageName" in view.waiting_for.what and "revalidate" in view.waiting_for.what
        assert "**NEEDS_ATTENTION** since" in await current_details(handle)


async def test_a_rejected_amendment_leaves_no_approval_pending_and_no_reminder(own_env: WorkflowEnvironment) -> None:
    """30,000.00 GBP more on L1 needs delivery and finance; delivery rejects: the finance
    approval is withdrawn, nothing is pending, and no reminder goes out two days later."""
    fake = FakeSystems(scenario.reference_opportunity(f"006REJ{uuid.uuid4().hex[:12].upper()}"))
    fake.delivery = scenario.reference_delivery()
    async with engagement(own_env, fake) as handle:
        await until(handle, Stage.IN_DELIVERY)
        record = await handle.execute_update(
            EngagementWorkflow.request_amendment,
            AmendmentInput(
                amendment=Amendment(
                    amendment_id="AM-R",
                    effective_date=date(scenario.YEAR, 4, 10),
                    treatment=AmendmentTreatment.CUMULATIVE_CATCH_UP,
                    reason="more scope",
                    changes=[LineChange(contract_line_id="L1", price=gbp("150000"))],
                ),
                requested_by="sam",
            ),
        )
        assert len(record.approval_ids) == 2
        view = await handle.query(EngagementWorkflow.view)
        assert view.waiting_for is not None and view.waiting_for.kind is WaitKind.APPROVAL
        assert view.waiting_for.approval_ids == record.approval_ids

        await handle.execute_update(
            EngagementWorkflow.decide, decision(record.approval_ids[0], "pm-jane", ["delivery_ops"], approve=False)
        )
        for _ in range(100):
            view = await handle.query(EngagementWorkflow.view)
            if next(c for c in view.changes if c.change_id == "AM-R").status is ChangeStatus.REJECTED:
                break
        decisions = {a.approval_id: a.decision for a in view.approvals}
        assert decisions == {record.approval_ids[0]: ApprovalDecision.REJECTED, record.approval_ids[1]: "withdrawn"}
        assert view.pending_approvals == []
        assert (await handle.describe()).typed_search_attributes.get(sa.PENDING_APPROVAL) is False
        assert view.waiting_for is not None and view.waiting_for.kind is WaitKind.PERIOD_CLOSE

        await own_env.sleep(timedelta(hours=130))  # past the reminder (48 h) and the escalation (120 h)
        assert not [n for n in fake.notifications if "AM-R" in n.subject], fake.notifications


async def test_invoices_list_their_lines_and_what_is_still_creditable(own_env: WorkflowEnvironment) -> None:
    fake = FakeSystems(scenario.reference_opportunity(f"006INV{uuid.uuid4().hex[:12].upper()}"))
    fake.delivery = scenario.reference_delivery()
    async with engagement(own_env, fake) as handle:
        await until(handle, Stage.IN_DELIVERY)
        await scenario.advance_to(own_env, scenario.month_after("2027-01"))
        jan = await handle.execute_update(EngagementWorkflow.close_period, EngagementCloseInput(period="2027-01"))
        view = await handle.query(EngagementWorkflow.view)
        [invoice] = [i for i in view.invoices if i.invoice_id == jan.invoices[0].invoice_id]
        assert invoice.period == "2027-01" and invoice.open == invoice.total
        line = invoice.lines[0]
        assert line.credited.is_zero() and line.creditable == line.net

        # A memo awaiting approval already takes its part of what is creditable.
        await handle.execute_update(
            EngagementWorkflow.request_credit_memo,
            CreditMemoInput(
                request=CreditMemoRequest(
                    credit_memo_id="CM-V",
                    invoice_id=invoice.invoice_id,
                    memo_date=date(2027, 2, 3),
                    reason="goodwill",
                    lines=[CreditLineRequest(invoice_line_id=line.invoice_line_id, amount=gbp("100"))],
                ),
                requested_by="dev-delivery-ops",
            ),
        )
        view = await handle.query(EngagementWorkflow.view)
        after = next(i for i in view.invoices if i.invoice_id == invoice.invoice_id).lines[0]
        assert after.creditable == line.net - gbp("100") and after.credited.is_zero()
        # Shown in the currency's minor unit, as a person reads it: "0.00", not "0".
        assert str(after.credited.amount) == "0.00" and after.creditable.amount.as_tuple().exponent == -2
