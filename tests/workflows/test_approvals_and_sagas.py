"""Approvals (roles, four eyes, duplicates, reminder and escalation timers) and the
amendment and credit-memo sagas undoing exactly what they did when a later step fails."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from contracts import search_attributes as sa
from contracts.engagement import (
    AmendmentInput,
    ChangeStatus,
    CreditMemoInput,
    DecisionInput,
    EngagementCloseInput,
    EngagementView,
)
from domain.amendments import Amendment, AmendmentTreatment, LineChange
from domain.credit_memos import CreditLineRequest, CreditMemoRequest
from domain.stages import Stage
from tests.workflows import scenario
from tests.workflows.fakes import FakeSystems, good_opportunity
from tests.workflows.scenario import engagement, gbp
from workflows.engagement import EngagementWorkflow


async def until(handle: WorkflowHandle, stage: Stage) -> EngagementView:
    for _ in range(300):
        view = await handle.query(EngagementWorkflow.view)
        if view.stage == stage:
            return view
    raise AssertionError(f"never reached {stage}: {view.stage}, {view.timeline[-1].note}")


async def refused(handle: WorkflowHandle, arg: DecisionInput) -> str:
    """The validator's reason for refusing a decision (the update never reaches history)."""
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(EngagementWorkflow.decide, arg)
    return str(getattr(caught.value.cause, "message", caught.value.cause))


def decision(approval_id: str, by: str, roles: list[str], approve: bool = True) -> DecisionInput:
    return DecisionInput(approval_id=approval_id, approve=approve, by=by, roles=roles, comment="checked")


async def test_big_deal_waits_for_finance_with_four_eyes_reminder_and_escalation(own_env: WorkflowEnvironment) -> None:
    env = own_env
    big = good_opportunity("006BIG000000000AAA").model_copy(update={"amount": Decimal("300000")})
    big.lines[0].total_price = Decimal("250000")
    fake = FakeSystems(big)
    async with engagement(env, fake) as handle:
        view = await until(handle, Stage.AWAITING_APPROVAL)
        [approval_id] = view.pending_approvals
        assert (await handle.describe()).typed_search_attributes.get(sa.PENDING_APPROVAL) is True
        assert fake.calls["psa.create_project"] == 0

        assert "four eyes" in await refused(handle, decision(approval_id, "dev-sales-ops", ["finance"]))
        assert "roles" in await refused(handle, decision(approval_id, "ops-bob", ["sales_ops"]))

        await env.sleep(timedelta(hours=49))
        assert [n.priority for n in fake.notifications] == ["Normal"]
        assert "Reminder" in fake.notifications[0].subject
        await env.sleep(timedelta(hours=72))
        assert [n.priority for n in fake.notifications] == ["Normal", "High"]
        assert "integration_admin" in fake.notifications[1].audience

        decided = await handle.execute_update(EngagementWorkflow.decide, decision(approval_id, "cfo-omar", ["finance"]))
        assert decided.decided_by == "cfo-omar" and decided.comment == "checked"
        assert "already" in await refused(handle, decision(approval_id, "cfo-2", ["finance"]))
        view = await until(handle, Stage.IN_DELIVERY)
        assert view.pending_approvals == []
        assert (await handle.describe()).typed_search_attributes.get(sa.PENDING_APPROVAL) is False


async def test_rejected_deal_needs_attention_and_can_be_cancelled(env: WorkflowEnvironment) -> None:
    odd = good_opportunity("006ODD000000000AAA").model_copy(update={"billing_terms": "Net 120"})
    fake = FakeSystems(odd)
    async with engagement(env, fake) as handle:
        view = await until(handle, Stage.AWAITING_APPROVAL)
        assert "not standard" in view.timeline[-1].note
        # A plain signal for systems that cannot send updates; an invalid one is ignored.
        await handle.signal(EngagementWorkflow.decision_signal, decision(view.pending_approvals[0], "x", ["auditor"]))
        await handle.signal(
            EngagementWorkflow.decision_signal,
            decision(view.pending_approvals[0], "cfo-omar", ["finance"], approve=False),
        )
        view = await until(handle, Stage.NEEDS_ATTENTION)
        assert any("ignored" in t.note for t in view.timeline)
        assert view.approvals[0].decision.value == "rejected"
        await handle.signal(EngagementWorkflow.cancel, scenario_cancel())
        assert (await handle.result()).stage == Stage.CANCELLED
        assert fake.calls["psa.create_project"] == 0


def scenario_cancel():  # type: ignore[no-untyped-def]
    from contracts.engagement import CancelRequest

    return CancelRequest(reason="terms refused", by="dev-sales-ops")


async def test_one_person_holding_both_roles_cannot_give_both_approvals_of_a_change(
    own_env: WorkflowEnvironment,
) -> None:
    """30,000.00 GBP more on L1 needs delivery and finance (threshold 20,000.00): two people."""
    fake = FakeSystems(scenario.reference_opportunity(f"006FOE{uuid.uuid4().hex[:12].upper()}"))
    fake.delivery = scenario.reference_delivery()
    async with engagement(own_env, fake) as handle:
        await until(handle, Stage.IN_DELIVERY)
        record = await handle.execute_update(
            EngagementWorkflow.request_amendment,
            AmendmentInput(
                amendment=Amendment(
                    amendment_id="AM-4E",
                    effective_date=date(scenario.YEAR, 4, 10),
                    treatment=AmendmentTreatment.CUMULATIVE_CATCH_UP,
                    reason="more scope",
                    changes=[LineChange(contract_line_id="L1", price=gbp("150000"))],
                ),
                requested_by="sam",
            ),
        )
        assert len(record.approval_ids) == 2
        both = ["delivery_ops", "finance"]
        await handle.execute_update(EngagementWorkflow.decide, decision(record.approval_ids[0], "pat", both))
        reason = await refused(handle, decision(record.approval_ids[1], "pat", both))
        assert "four eyes" in reason and "pat already decided" in reason
        second = await handle.execute_update(
            EngagementWorkflow.decide, decision(record.approval_ids[1], "omar", ["finance"])
        )
        assert second.decided_by == "omar"


@pytest.mark.parametrize("failing", ["psa.apply_change", "erp.update_sales_order", "crm.set_contract_value"])
async def test_amendment_step_failure_undoes_the_earlier_steps(own_env: WorkflowEnvironment, failing: str) -> None:
    env = own_env
    fake = FakeSystems(scenario.reference_opportunity(f"006AMD{uuid.uuid4().hex[:12].upper()}"))
    fake.delivery = scenario.reference_delivery()
    async with engagement(env, fake) as handle:
        await until(handle, Stage.IN_DELIVERY)
        await scenario.advance_to(env, datetime(scenario.YEAR, 4, 1, 6, tzinfo=UTC))
        await handle.execute_update(EngagementWorkflow.close_period, EngagementCloseInput(period="2027-03"))
        fake.fail_step = failing
        fake.fail_times = 1  # the step fails for good; its undo (the same call, old values) works
        record = await handle.execute_update(
            EngagementWorkflow.request_amendment,
            AmendmentInput(
                amendment=Amendment(
                    amendment_id="AM-X",
                    effective_date=date(scenario.YEAR, 4, 10),
                    treatment=AmendmentTreatment.CUMULATIVE_CATCH_UP,
                    reason="more scope",
                    changes=[LineChange(contract_line_id="L1", price=gbp("150000"))],
                ),
                requested_by="dev-delivery-ops",
            ),
        )
        for n, (who, role) in enumerate([("pm-jane", "delivery_ops"), ("cfo-omar", "finance")]):
            await handle.execute_update(EngagementWorkflow.decide, decision(record.approval_ids[n], who, [role]))
        for _ in range(100):
            view = await handle.query(EngagementWorkflow.view)
            change = next(c for c in view.changes if c.change_id == "AM-X")
            if change.status is not ChangeStatus.AWAITING_APPROVAL:
                break
        assert change.status is ChangeStatus.FAILED
        assert change.detail is not None and f"{failing} refused" in change.detail
        # Every undo registered before its step ran has run exactly once, newest first, so
        # each system is back at the old terms (an undo of a step that failed is harmless).
        assert fake.calls["psa.undo"] == 1
        assert fake.psa_budget == gbp("192000")
        if failing == "psa.apply_change":
            assert fake.order_lines == [] and fake.crm_contract_value is None
        else:
            assert [ln.amount for ln in fake.order_lines] == [gbp("120000"), gbp("72000")]
        if failing == "crm.set_contract_value":
            assert fake.calls["crm.undo"] == 1 and fake.crm_contract_value == gbp("192000")
            assert fake.calls["erp.reverse_journal"] == 1
        else:
            assert fake.crm_contract_value is None
        # The catch-up journal (9,000.00 on M1's 30 %) was reversed if it had been posted.
        assert not any(line.memo == "L1 catch_up" for j in fake.journals.values() for line in j.lines)
        # The books did not move: the contract still says 120,000.00 for L1.
        assert view.amounts is not None and view.amounts.contract_value == gbp("192000")
        assert view.stage == Stage.IN_DELIVERY


async def test_credit_memo_release_failure_voids_the_memo(own_env: WorkflowEnvironment) -> None:
    env = own_env
    fake = FakeSystems(scenario.reference_opportunity(f"006CMF{uuid.uuid4().hex[:12].upper()}"))
    fake.delivery = scenario.reference_delivery()
    async with engagement(env, fake) as handle:
        await until(handle, Stage.IN_DELIVERY)
        await scenario.advance_to(env, scenario.month_after("2027-01"))
        jan = await handle.execute_update(EngagementWorkflow.close_period, EngagementCloseInput(period="2027-01"))
        invoice_id = jan.invoices[0].invoice_id
        fake.fail_step = "psa.feedback.release"
        record = await handle.execute_update(
            EngagementWorkflow.request_credit_memo,
            CreditMemoInput(
                request=CreditMemoRequest(
                    credit_memo_id="CM-X",
                    invoice_id=invoice_id,
                    memo_date=date(2027, 2, 3),
                    reason="wrong rate: credit and re-bill",
                    lines=[CreditLineRequest(invoice_line_id=f"{invoice_id}:1", price_concession=False)],
                ),
                requested_by="dev-delivery-ops",
            ),
        )
        await handle.execute_update(EngagementWorkflow.decide, decision(record.approval_ids[0], "ctl-kim", ["finance"]))
        for _ in range(100):
            view = await handle.query(EngagementWorkflow.view)
            change = next(c for c in view.changes if c.change_id == "CM-X")
            if change.status is not ChangeStatus.AWAITING_APPROVAL:
                break
        assert change.status is ChangeStatus.FAILED
        assert fake.credit_memos == {}  # posted, then voided by the undo
        assert fake.calls["erp.void_credit_memo"] == 1
        assert view.amounts is not None and view.amounts.credited.is_zero()
        assert fake.billed_entries == {"TC-2027-01"}  # still billed: nothing was released
