"""Two worker versions side by side on the dev server (Temporal Worker Deployments).

The real EngagementWorkflow runs on two builds of one deployment, v1 and v2, each a worker
with the CRM/PSA/ERP faked by activity name (tests/workflows/fakes.py) so each build's
fakes record which build did the work. An engagement started on v1 stays pinned to v1 and
finishes there after v2 becomes current, while new engagements start on v2; an engagement
in delivery moves to v2 at its next continue-as-new (after a month-end close on v1), and
v1 drains. The workflows' declared behaviours are the ones asserted here.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

import httpx
import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import ContinueAsNewVersioningBehavior, VersionDrainageStatus
from temporalio.api.workflowservice.v1 import DescribeWorkerDeploymentVersionRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.settings import ApiSettings
from contracts import search_attributes as sa
from contracts.engagement import CancelRequest, EngagementCloseInput, EngagementInput
from contracts.ids import engagement_workflow_id
from contracts.queues import TaskQueues
from domain.deal import OpportunitySnapshot
from domain.stages import Stage
from tests.conftest import TEST_CONVERTER, wheel_binary
from tests.integration.conftest import TEST_DYNAMIC_CONFIG, eventually
from tests.workflows.fakes import FakeSystems, good_opportunity
from workers.deployment import deployment_config, promote
from workers.devstack import dynamic_config_flags
from workflows.engagement import EngagementWorkflow

pytestmark = pytest.mark.integration


def test_the_engagement_these_tests_drive_is_pinned() -> None:
    # Every workflow's declared behaviour is checked in tests/unit/test_worker_versioning.py.
    assert workflow._Definition.must_from_class(EngagementWorkflow).versioning_behavior is VersioningBehavior.PINNED


@pytest.fixture(scope="module")
async def versions_env() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server of its own: the deployment's routing changes propagate through the
    server's system workflows, which the session server's other tests keep busy."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=wheel_binary("temporal"),
        search_attributes=sa.ALL,
        data_converter=TEST_CONVERTER,
        dev_server_log_level="error",
        dev_server_extra_args=dynamic_config_flags(TEST_DYNAMIC_CONFIG),
    )
    yield env
    await env.shutdown()


async def make_current(client: Client, deployment: str, build_id: str) -> None:
    """As `make run` does (policy `always`), with room for a loaded machine."""
    assert await promote(client, deployment, build_id, "always", within=180)


@asynccontextmanager
async def build(
    client: Client, deployment: str, build_id: str, queue: str, deal: OpportunitySnapshot
) -> AsyncIterator[FakeSystems]:
    """One worker version: the engagement and its (faked) activities, polling as deployment/build_id."""
    fake = FakeSystems(deal)
    async with Worker(
        client,
        task_queue=queue,
        workflows=[EngagementWorkflow],
        activities=fake.activities(),
        deployment_config=deployment_config(deployment, build_id),
    ):
        yield fake


async def start_engagement(client: Client, queue: str, opportunity_id: str) -> WorkflowHandle:
    return await client.start_workflow(
        EngagementWorkflow.run,
        EngagementInput(opportunity_id=opportunity_id, queues=TaskQueues(crm=queue, psa=queue, erp=queue)),
        id=engagement_workflow_id(opportunity_id),
        task_queue=queue,
    )


async def pinned_to(handle: WorkflowHandle) -> tuple[str, str]:
    """(behaviour, build id) the server holds for the workflow's run."""
    info = (await handle.describe()).raw_description.workflow_execution_info.versioning_info
    return VersioningBehavior(info.behavior).name, info.deployment_version.build_id


async def builds_that_ran(handle: WorkflowHandle) -> set[str]:
    """Every build that completed a workflow task of this run, from its history."""
    return {
        event.workflow_task_completed_event_attributes.deployment_version.build_id
        async for event in handle.fetch_history_events()
        if event.HasField("workflow_task_completed_event_attributes")
    }


async def stage_is(handle: WorkflowHandle, stage: Stage) -> bool:
    return (await handle.query(EngagementWorkflow.view)).stage == stage


async def drainage(client: Client, deployment: str, build_id: str) -> str:
    described = await client.workflow_service.describe_worker_deployment_version(
        DescribeWorkerDeploymentVersionRequest(
            namespace=client.namespace,
            deployment_version=WorkerDeploymentVersion(deployment, build_id)._to_proto(),
        )
    )
    return VersionDrainageStatus.Name(described.worker_deployment_version_info.drainage_info.status)


def names(prefix: str) -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"{prefix}-{tag}", f"{prefix}-q-{tag}"  # deployment, task queue


async def test_a_pinned_engagement_finishes_on_v1_while_new_ones_start_on_v2(versions_env: WorkflowEnvironment) -> None:
    client = versions_env.client
    deployment, queue = names("it-pinned")
    lost_deal = good_opportunity("006VER00000000AAAA").model_copy(update={"stage": "Negotiation/Review"})
    async with AsyncExitStack() as builds:
        v1 = await builds.enter_async_context(build(client, deployment, "v1", queue, lost_deal))
        await make_current(client, deployment, "v1")
        old = await start_engagement(client, queue, lost_deal.opportunity_id)
        await eventually(lambda: stage_is(old, Stage.NEEDS_ATTENTION), within=90)
        assert await pinned_to(old) == ("PINNED", "v1")

        # v2 is deployed beside v1 and made current: new engagements start on v2.
        v2 = await builds.enter_async_context(
            build(client, deployment, "v2", queue, good_opportunity("006VER00000001AAAA"))
        )
        await make_current(client, deployment, "v2")
        new = await start_engagement(client, queue, "006VER00000001AAAA")
        await eventually(lambda: stage_is(new, Stage.IN_DELIVERY), within=90)
        assert await pinned_to(new) == ("PINNED", "v2")
        assert (v2.calls["psa.create_project"], v1.calls["psa.create_project"]) == (1, 0)

        # The old engagement keeps its build, activities included: a revalidation reads the
        # CRM through v1's worker, then the deal is cancelled and the run ends on v1.
        await old.signal(EngagementWorkflow.revalidate)

        async def read_again_on_v1() -> bool:
            return v1.calls["crm.read_opportunity"] == 2

        await eventually(read_again_on_v1, within=90)
        await old.signal(EngagementWorkflow.cancel, CancelRequest(reason="lost deal", by="dev-sales-ops"))
        assert (await old.result()).stage == Stage.CANCELLED
        assert await builds_that_ran(old) == {"v1"}
        assert v2.calls["crm.read_opportunity"] == 1  # the new engagement's read, nothing of the old one
        assert await builds_that_ran(new) == {"v2"}

        # Nothing is pinned to v1 any more: the server reports it drained, so it can be stopped.
        async def v1_drained() -> bool:
            return await drainage(client, deployment, "v1") == "VERSION_DRAINAGE_STATUS_DRAINED"

        await eventually(v1_drained, within=90)
        await new.terminate("test over")


async def test_an_engagement_in_delivery_moves_to_v2_at_its_continue_as_new(versions_env: WorkflowEnvironment) -> None:
    client = versions_env.client
    deployment, queue = names("it-moves")
    deal = good_opportunity("006VER00000002AAAA")
    async with AsyncExitStack() as builds:
        v1 = await builds.enter_async_context(build(client, deployment, "v1", queue, deal))
        await make_current(client, deployment, "v1")
        first = await start_engagement(client, queue, deal.opportunity_id)
        await eventually(lambda: stage_is(first, Stage.IN_DELIVERY), within=90)
        before = await first.query(EngagementWorkflow.view)
        first_run = (await first.describe()).run_id

        v2 = await builds.enter_async_context(build(client, deployment, "v2", queue, deal))
        await make_current(client, deployment, "v2")

        # November's close runs on v1 (the run is pinned); the run then continues as new,
        # and the next run starts on the current version and pins itself there.
        await first.execute_update(EngagementWorkflow.close_period, EngagementCloseInput(period="2026-11"))
        assert (v1.calls["psa.read_delivery"], v2.calls["psa.read_delivery"]) == (1, 0)
        latest = client.get_workflow_handle(first.id)

        async def continued_onto_v2() -> bool:
            # The new run starts auto-upgrading; it pins itself once its first task completes.
            return (await latest.describe()).run_id != first_run and await pinned_to(latest) == ("PINNED", "v2")

        await eventually(continued_onto_v2, within=90)
        assert await builds_that_ran(client.get_workflow_handle(first.id, run_id=first_run)) == {"v1"}
        # ...because the continue-as-new asked for it (a pinned run otherwise continues on its build).
        started = (await latest.describe()).raw_description.workflow_execution_info.versioning_info
        assert (
            started.continue_as_new_initial_versioning_behavior
            == ContinueAsNewVersioningBehavior.CONTINUE_AS_NEW_VERSIONING_BEHAVIOR_AUTO_UPGRADE
        )

        # The engagement carried its state across, and December's close runs on v2.
        after = await latest.query(EngagementWorkflow.view)
        assert (after.stage, after.project_id, after.contract_id) == (
            Stage.IN_DELIVERY,
            before.project_id,
            before.contract_id,
        )
        await latest.execute_update(EngagementWorkflow.close_period, EngagementCloseInput(period="2026-12"))
        assert (v1.calls["psa.read_delivery"], v2.calls["psa.read_delivery"]) == (1, 1)
        assert await builds_that_ran(latest) == {"v2"}
        await latest.terminate("test over")


async def test_an_engagement_that_ended_on_a_stopped_version_is_still_read_through_the_api(
    versions_env: WorkflowEnvironment,
) -> None:
    """A query goes to the build the run was pinned to; once v1's workers are gone, the API
    reads an engagement that ended there from its result instead (it answered 503)."""
    client = versions_env.client
    deployment, queue = names("it-stopped")
    lost_deal = good_opportunity("006VER00000003AAAA").model_copy(update={"stage": "Negotiation/Review"})
    async with build(client, deployment, "v1", queue, lost_deal):
        await make_current(client, deployment, "v1")
        handle = await start_engagement(client, queue, lost_deal.opportunity_id)
        await eventually(lambda: stage_is(handle, Stage.NEEDS_ATTENTION), within=90)
        await handle.signal(EngagementWorkflow.cancel, CancelRequest(reason="lost deal", by="dev-sales-ops"))
        assert (await handle.result()).stage == Stage.CANCELLED
    # v1 is stopped: no worker polls its queue any more.
    app = create_app(ApiSettings(profile="dev", static_tokens=True), temporal=client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as api:
        response = await api.get(
            f"/v1/engagements/{lost_deal.opportunity_id}", headers={"Authorization": "Bearer dev-auditor"}
        )
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["stage"] == "CANCELLED" and "lost deal" in view["timeline"][-1]["note"]


# not sandboxed: this test module imports the API, which the sandbox refuses
@workflow.defn(name="EngagementWorkflow", versioning_behavior=VersioningBehavior.PINNED, sandboxed=False)
class BrokenEngagement:
    """A build whose engagement fails on purpose (the real one fails only by a bug), and which
    answers no `view` query: the API must read the failure from the history alone."""

    @workflow.run
    async def run(self, data: EngagementInput) -> None:
        raise ApplicationError(f"the ledger of {data.opportunity_id} broke", type="LedgerBroken", non_retryable=True)


async def read(client: Client, opportunity_id: str) -> httpx.Response:
    app = create_app(ApiSettings(profile="dev", static_tokens=True), temporal=client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as api:
        return await api.get(f"/v1/engagements/{opportunity_id}", headers={"Authorization": "Bearer dev-auditor"})


async def test_engagements_that_failed_or_were_terminated_on_a_stopped_version_still_answer(
    versions_env: WorkflowEnvironment,
) -> None:
    """Terminated, cancelled through Temporal, timed out, failed: once their build is stopped no
    worker answers their query, and the API rebuilds the view from the history (stage and keys
    as last published, how it ended), never 503."""
    client = versions_env.client
    deployment, queue = names("it-ended")
    deals = {
        kind: good_opportunity(f"006VER0000000{n}AAAA").model_copy(update={"stage": "Negotiation/Review"})
        for n, kind in enumerate(("terminated", "cancelled", "timed_out"), 4)
    }
    async with build(client, deployment, "v1", queue, deals["terminated"]):
        await make_current(client, deployment, "v1")
        terminated = await start_engagement(client, queue, deals["terminated"].opportunity_id)
        cancelled = await start_engagement(client, queue, deals["cancelled"].opportunity_id)
        for handle in (terminated, cancelled):
            await eventually(lambda h=handle: stage_is(h, Stage.NEEDS_ATTENTION), within=90)
        await terminated.terminate(reason="booked twice by mistake")
        await cancelled.cancel()
        await eventually(lambda: status_is(cancelled, WorkflowExecutionStatus.CANCELED), within=60)
        timed_out = await client.start_workflow(
            EngagementWorkflow.run,
            EngagementInput(opportunity_id=deals["timed_out"].opportunity_id, queues=TaskQueues(crm=queue)),
            id=engagement_workflow_id(deals["timed_out"].opportunity_id),
            task_queue=queue,
            execution_timeout=timedelta(seconds=2),
        )
        await eventually(lambda: status_is(timed_out, WorkflowExecutionStatus.TIMED_OUT), within=60)
    broken_deployment, broken_queue = names("it-broken")
    failed_id = "006VER00000007AAAA"
    async with Worker(
        client,
        task_queue=broken_queue,
        workflows=[BrokenEngagement],
        deployment_config=deployment_config(broken_deployment, "v1"),
    ):
        await make_current(client, broken_deployment, "v1")
        failed = await client.start_workflow(
            "EngagementWorkflow",
            EngagementInput(opportunity_id=failed_id),
            id=engagement_workflow_id(failed_id),
            task_queue=broken_queue,
        )
        await eventually(lambda: status_is(failed, WorkflowExecutionStatus.FAILED), within=60)
    # Both builds are stopped: no worker polls either queue any more.
    answers = {
        kind: await read(client, opp)
        for kind, opp in [*((k, d.opportunity_id) for k, d in deals.items()), ("failed", failed_id)]
    }
    assert {k: r.status_code for k, r in answers.items()} == dict.fromkeys(answers, 200), answers
    views = {k: r.json() for k, r in answers.items()}
    assert {k: v["status"] for k, v in views.items()} == {
        "terminated": "TERMINATED",
        "cancelled": "CANCELED",
        "timed_out": "TIMED_OUT",
        "failed": "FAILED",
    }
    assert views["terminated"]["stage"] == "NEEDS_ATTENTION"  # where it stood, as it last published
    assert "booked twice by mistake" in views["terminated"]["failure"]
    assert "the ledger of 006VER00000007AAAA broke" in views["failed"]["failure"]
    assert all(
        v["links"] == {"self": {"href": f"/v1/engagements/{v['opportunity_id']}", "method": "GET", "roles": []}}
        for v in views.values()
    )
    assert all(v["waiting_for"] is None and "ended" in v["timeline"][-1]["note"] for v in views.values())


async def status_is(handle: WorkflowHandle, status: WorkflowExecutionStatus) -> bool:
    return (await handle.describe()).status == status
