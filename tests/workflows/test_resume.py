"""Retrying an engagement is an update whose validator refuses when nothing waits for a fix:
the caller learns it at once, and no retry is kept (or dropped) unseen for later."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from contracts.engagement import CancelRequest, ResumeRequest
from domain.stages import Stage
from tests.workflows.fakes import FakeSystems, good_opportunity
from tests.workflows.test_engagement_workflow import running, wait_for
from workflows.engagement import EngagementWorkflow


async def test_resume_retries_what_waits_for_a_fix_and_refuses_otherwise(env: WorkflowEnvironment) -> None:
    fake = FakeSystems(good_opportunity("006RES000000001AAA").model_copy(update={"stage": "Negotiation/Review"}))
    async with running(env, fake) as (_, handle):
        await wait_for(handle, lambda v: v.stage == Stage.NEEDS_ATTENTION)
        reads = fake.calls["crm.read_opportunity"]
        note = await handle.execute_update(EngagementWorkflow.resume, ResumeRequest(by="dana", via="retry"))
        assert note == "retry requested by dana"
        # still invalid: read again, and it waits for a fix again
        view = await wait_for(
            handle, lambda v: v.stage == Stage.NEEDS_ATTENTION and fake.calls["crm.read_opportunity"] == reads + 1
        )
        assert any(t.note == "retry requested by dana" for t in view.timeline)

        fake.opportunity = good_opportunity("006RES000000001AAA")
        await handle.execute_update(EngagementWorkflow.resume, ResumeRequest(by="sam", via="revalidate"))
        await wait_for(handle, lambda v: v.stage == Stage.IN_DELIVERY)

        # In delivery nothing waits for a fix: refused at once, naming the state (nothing in history).
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(EngagementWorkflow.resume, ResumeRequest(by="dana"))
        cause = refused.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "Conflict"
        assert "IN_DELIVERY" in cause.message and "waits for no fix" in cause.message
        assert cause.details[0] == {"field": "stage"}
        # A signal cannot be refused: one that finds nothing waiting is noted, not kept for later.
        await handle.signal(EngagementWorkflow.retry)
        view = await wait_for(handle, lambda v: "retry signal ignored" in v.timeline[-1].note)
        assert view.stage == Stage.IN_DELIVERY
        await handle.signal(EngagementWorkflow.cancel, CancelRequest(reason="test over"))
