"""The view an engagement publishes in its memo is the one its `view` query returns, at every
point where it has settled: the API answers GETs from it (api/engagements.py), so a stale
memo would show a person an engagement as it was, not as it is."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from api.engagements import published_view, read_engagement
from contracts.engagement import EngagementInput, EngagementView, MilestoneNotice
from contracts.memo import VIEW_MEMO
from contracts.queues import TaskQueues
from domain.stages import Stage
from tests.conftest import TEST_CONVERTER
from tests.workflows import scenario
from tests.workflows.fakes import FakeSystems
from workflows.engagement import EngagementWorkflow


class Compared:
    """Every settled moment the check saw, and the view it found there."""

    def __init__(self) -> None:
        self.views: list[EngagementView] = []


async def assert_published_is_current(handle: WorkflowHandle[Any, Any], compared: Compared) -> None:
    """Wait until nothing is under way, then: what the memo holds == what the query answers
    (both read between two descriptions of the same history length, so nothing moved)."""
    for _ in range(400):
        before = await handle.describe()
        published = await published_view(before)
        if published is None:
            await handle.query(EngagementWorkflow.view)  # lets the test server run pending tasks
            continue
        queried = await handle.query(EngagementWorkflow.view)
        after = await handle.describe()
        if after.history_length != before.history_length:
            continue
        assert published == queried
        compared.views.append(published)
        return
    raise AssertionError("the engagement never settled with a published view")


class CheckedHandle:
    """The reference year's handle, checking the published view after every message sent."""

    def __init__(self, handle: WorkflowHandle[Any, Any], compared: Compared) -> None:
        self._handle = handle
        self._compared = compared

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    async def execute_update(self, *args: Any, **kwargs: Any) -> Any:
        result = await self._handle.execute_update(*args, **kwargs)
        await assert_published_is_current(self._handle, self._compared)
        return result

    async def signal(self, *args: Any, **kwargs: Any) -> None:
        await self._handle.signal(*args, **kwargs)
        await assert_published_is_current(self._handle, self._compared)


async def test_the_published_view_is_the_queried_view_wherever_the_year_settles(own_env: WorkflowEnvironment) -> None:
    fake = FakeSystems(scenario.reference_opportunity(f"006PUB{uuid.uuid4().hex[:12].upper()}"))
    fake.delivery = scenario.reference_delivery()
    compared = Compared()
    async with scenario.engagement(own_env, fake, with_hub=True, own_id=True) as handle:
        await assert_published_is_current(handle, compared)
        assert compared.views[-1].stage == Stage.IN_DELIVERY

        # A signal that only adds to the timeline wakes nothing: the handler itself publishes.
        await handle.signal(
            EngagementWorkflow.milestone_completed,
            MilestoneNotice(milestone_id="M1", completed_on=date(scenario.YEAR, 3, 20)),
        )
        await assert_published_is_current(handle, compared)
        assert compared.views[-1].timeline[-1].note.startswith("milestone M1 completed")

        await scenario.drive_reference_year(own_env, CheckedHandle(handle, compared), fake)  # type: ignore[arg-type]
        final = await handle.result()
    # month-ends (13), the June amendment, credit memo and decisions, overdue and delivery signals
    assert len(compared.views) >= 20
    assert compared.views[-1].periods_closed == [*scenario.PERIODS, f"{scenario.YEAR + 1}-01"]
    assert final.stage == Stage.CLOSED
    memo = await (await handle.describe()).memo_value(VIEW_MEMO)
    assert EngagementView.model_validate(memo) == final  # the last view published is the result


async def test_a_run_mid_step_is_not_answered_from_the_memo(env: WorkflowEnvironment) -> None:
    """A workflow task pending (here the first: no worker polls the queue) means the run is
    about to move: `published_view` declines, and the API asks the workflow instead. The same
    holds for an activity or child under way (the memo may lag the run)."""
    fake = FakeSystems(scenario.reference_opportunity(f"006MID{uuid.uuid4().hex[:12].upper()}"))
    queue = f"mid-{uuid.uuid4()}"
    handle = await env.client.start_workflow(
        EngagementWorkflow.run,
        EngagementInput(
            opportunity_id=fake.opportunity.opportunity_id,
            queues=TaskQueues(crm=queue, psa=queue, erp=queue),
        ),
        id=f"engagement-{fake.opportunity.opportunity_id}",
        task_queue=queue,
    )
    # no worker polls the queue: the first workflow task is pending, nothing is published
    assert await published_view(await handle.describe()) is None
    await handle.terminate("test over")


async def test_the_api_reads_a_settled_engagement_with_no_worker_running(env: WorkflowEnvironment) -> None:
    """What GET /v1/engagements/{id} does (`api.engagements.read_engagement`): with the worker gone, a
    query could not be answered (the API would wait 5 s, then say 503); the published view
    answers at once, and it is the view the worker last gave."""
    fake = FakeSystems(scenario.reference_opportunity(f"006NOW{uuid.uuid4().hex[:12].upper()}"))
    compared = Compared()
    async with scenario.engagement(env, fake, own_id=True) as handle:
        await assert_published_is_current(handle, compared)
    read = await read_engagement(env.client, fake.opportunity.opportunity_id)
    assert (read.status, read.source) == (WorkflowExecutionStatus.RUNNING, "published")
    assert read.view == compared.views[-1] and read.view.stage == Stage.IN_DELIVERY
    await handle.terminate("test over")


async def test_a_published_view_that_does_not_read_is_not_answered(env: WorkflowEnvironment) -> None:
    """A `d2r_view` that is not a view this build reads (a person set the memo by hand in the
    Web UI, or a later build's shape): `published_view` declines instead of failing the GET
    with a 500, and the API asks the workflow."""
    fake = FakeSystems(scenario.reference_opportunity(f"006JNK{uuid.uuid4().hex[:12].upper()}"))
    compared = Compared()
    async with scenario.engagement(env, fake, own_id=True) as handle:
        await assert_published_is_current(handle, compared)
        described = await handle.describe()
        [junk] = await TEST_CONVERTER.encode([{"stage": "NOT_A_STAGE", "amount": "lots"}])
        described.raw_info.memo.fields[VIEW_MEMO].CopyFrom(junk)
        assert await published_view(described) is None
    await handle.terminate("test over")
