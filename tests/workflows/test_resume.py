"""Retrying an engagement is an update whose validator refuses when nothing waits for a fix:
the caller learns it at once, and no retry is kept (or dropped) unseen for later."""

from __future__ import annotations

import uuid

import pytest
from temporalio import workflow
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.problems import ProblemError
from api.resume import resume
from contracts import messages
from contracts.engagement import CancelRequest, EngagementView, ResumeRequest
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


# An engagement on a build from before the `resume` update: it has the signal and the view.
@workflow.defn(name="EngagementWorkflow", sandboxed=False)
class EngagementBeforeResume:
    def __init__(self) -> None:
        self.retries = 0

    @workflow.run
    async def run(self, stage: Stage) -> int:
        self.stage = stage
        await workflow.wait_condition(lambda: self.retries > 0)
        return self.retries

    @workflow.signal(name=messages.RETRY)
    def retry(self) -> None:
        self.retries += 1

    @workflow.query(name=messages.VIEW)
    def view(self) -> EngagementView:
        return EngagementView(workflow_id=workflow.info().workflow_id, opportunity_id="006OLD", stage=self.stage)


@workflow.defn(name="SomethingElseWorkflow", sandboxed=False)
class SomethingElse:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


async def test_an_engagement_on_an_older_build_is_retried_by_signal_only_when_it_needs_attention(
    env: WorkflowEnvironment,
) -> None:
    queue = f"q-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[EngagementBeforeResume, SomethingElse]):
        busy = await env.client.start_workflow(
            "EngagementWorkflow", Stage.IN_DELIVERY, id=f"old-{uuid.uuid4()}", task_queue=queue
        )
        with pytest.raises(ProblemError) as refused:
            await resume(env.client, busy.id, "dana", "retry")
        assert refused.value.status == 409 and "IN_DELIVERY" in refused.value.detail
        other = await env.client.start_workflow("SomethingElseWorkflow", id=f"other-{uuid.uuid4()}", task_queue=queue)
        with pytest.raises(ProblemError) as not_an_engagement:
            await resume(env.client, other.id, "dana", "retry")
        assert not_an_engagement.value.status == 409 and "SomethingElseWorkflow" in not_an_engagement.value.detail
        waiting = await env.client.start_workflow(
            "EngagementWorkflow", Stage.NEEDS_ATTENTION, id=f"old-{uuid.uuid4()}", task_queue=queue
        )
        assert await resume(env.client, waiting.id, "dana", "retry") == "retry signalled"
        assert await waiting.result() == 1
        for handle in (busy, other):
            await handle.terminate(reason="test over")
