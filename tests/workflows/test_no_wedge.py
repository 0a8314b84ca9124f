"""No input wedges an engagement: a business failure inside workflow code (an absurd amount
that no Decimal context can round) becomes NEEDS_ATTENTION with the reason, the waiting
caller gets the reason instead of a hang, retry resumes delivery; cancel works in every
stage, including AWAITING_APPROVAL; the view query answers throughout."""

from __future__ import annotations

from decimal import Decimal

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from contracts.engagement import CancelRequest, EngagementCloseInput
from domain.stages import Stage
from tests.workflows import scenario
from tests.workflows.fakes import FakeSystems, good_opportunity
from tests.workflows.test_approvals_and_sagas import engagement, until
from workflows.engagement import EngagementWorkflow


async def no_failing_task(handle) -> None:  # type: ignore[no-untyped-def]
    """Every workflow task of the run completed: nothing failed and waits for a retry."""
    history = await handle.fetch_history()
    failed = [e for e in history.events if e.HasField("workflow_task_failed_event_attributes")]
    assert failed == [], failed


async def test_cancel_while_awaiting_approval_ends_cancelled(env: WorkflowEnvironment) -> None:
    big = good_opportunity("006WEDGE0000000AAA").model_copy(update={"amount": Decimal("300000")})
    big.lines[0].total_price = Decimal("250000")
    async with engagement(env, FakeSystems(big)) as handle:
        await until(handle, Stage.AWAITING_APPROVAL)
        await handle.signal(EngagementWorkflow.cancel, CancelRequest(reason="customer withdrew", by="sam"))
        result = await handle.result()
        assert result.stage is Stage.CANCELLED
        assert "customer withdrew" in result.timeline[-1].note
        await no_failing_task(handle)


async def test_cancel_in_delivery_stops_the_engagement(env: WorkflowEnvironment) -> None:
    async with engagement(env, FakeSystems(good_opportunity("006WEDGE0000001AAA"))) as handle:
        await until(handle, Stage.IN_DELIVERY)
        await handle.signal(EngagementWorkflow.cancel, CancelRequest(reason="contract terminated", by="sam"))
        result = await handle.result()
        assert result.stage is Stage.CANCELLED and "contract terminated" in result.timeline[-1].note
        await no_failing_task(handle)


async def test_an_absurd_amount_in_a_close_needs_attention_and_retry_resumes(env: WorkflowEnvironment) -> None:
    """10^30 hours cannot be rounded to pence in a 28-digit context (decimal.InvalidOperation):
    before, the workflow task failed on every attempt and the engagement answered nothing."""
    fake = FakeSystems(scenario.reference_opportunity("006WEDGE0000002AAA"))
    fake.delivery = scenario.reference_delivery()
    async with engagement(env, fake) as handle:
        view = await until(handle, Stage.IN_DELIVERY)
        delivery = fake.psa_delivery(view.project_id or "")
        poisoned = delivery.model_copy(
            update={"time_entries": [e.model_copy(update={"hours": Decimal("1e30")}) for e in delivery.time_entries]}
        )
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                EngagementWorkflow.close_period, EngagementCloseInput(period="2027-01", delivery=poisoned)
            )
        assert "InvalidOperation" in str(refused.value.cause)
        stuck = await until(handle, Stage.NEEDS_ATTENTION)  # the query answers while it waits
        assert stuck.failure is not None and stuck.failure.startswith("InvalidOperation")
        await no_failing_task(handle)

        await handle.signal(EngagementWorkflow.retry)
        await until(handle, Stage.IN_DELIVERY)  # the bad request was dropped, not retried forever
        closed = await handle.execute_update(
            EngagementWorkflow.close_period, EngagementCloseInput(period="2027-01", delivery=delivery)
        )
        assert closed.period == "2027-01" and closed.invoices
        await no_failing_task(handle)
        await handle.signal(EngagementWorkflow.cancel, CancelRequest(reason="test over"))
        assert (await handle.result()).stage is Stage.CANCELLED
