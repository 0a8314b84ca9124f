"""Re-record the committed histories: `python -m tests.replay.record`.

Run it only on purpose, when a workflow change is *meant* to be incompatible (and then
version the workflow); the replay test fails whenever workflow code stops replaying them.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.engagement import EngagementInput
from contracts.ids import engagement_workflow_id
from contracts.queues import TaskQueues
from domain.stages import Stage
from tests.conftest import TEST_CONVERTER, wheel_binary
from tests.workflows import scenario
from tests.workflows.fakes import FakeSystems, good_opportunity
from workflows.engagement import EngagementWorkflow

HERE = Path(__file__).parent / "histories"


async def _until(handle: WorkflowHandle, stage: Stage) -> None:
    for _ in range(200):
        if (await handle.query(EngagementWorkflow.view)).stage == stage:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"never reached {stage}")


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=wheel_binary("temporal-test-server"), data_converter=TEST_CONVERTER
    )
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    from contracts import search_attributes as sa

    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={k.name: IndexedValueType.ValueType(k.indexed_value_type.value) for k in sa.ALL},
        )
    )
    scenarios = {
        "engagement_happy_path": (good_opportunity("006000000000001AAA"), None),
        "engagement_invalid_then_fixed": (
            good_opportunity("006000000000002AAA").model_copy(update={"legal_entity": None}),
            None,
        ),
        "engagement_compensated_then_retried": (good_opportunity("006000000000003AAA"), "erp.create_sales_order"),
        # with a reporting hub: the wait for a person is a hub exception, resolved on resume
        "engagement_hub_incident": (
            good_opportunity("006000000000004AAA").model_copy(update={"legal_entity": None}),
            None,
        ),
    }
    HERE.mkdir(exist_ok=True)
    for name, (opportunity, fail) in scenarios.items():
        fake = FakeSystems(opportunity)
        fake.fail_step = fail
        queue = f"rec-{uuid.uuid4()}"
        async with Worker(env.client, task_queue=queue, workflows=[EngagementWorkflow], activities=fake.activities()):
            handle = await env.client.start_workflow(
                EngagementWorkflow.run,
                EngagementInput(
                    opportunity_id=opportunity.opportunity_id,
                    queues=TaskQueues(
                        crm=queue, psa=queue, erp=queue, reporting=queue if name == "engagement_hub_incident" else None
                    ),
                ),
                id=engagement_workflow_id(opportunity.opportunity_id),
                task_queue=queue,
            )
            if name in ("engagement_invalid_then_fixed", "engagement_hub_incident"):
                await _until(handle, Stage.NEEDS_ATTENTION)
                fake.opportunity = good_opportunity(opportunity.opportunity_id)
                await handle.signal(EngagementWorkflow.revalidate)
            if name == "engagement_compensated_then_retried":
                await _until(handle, Stage.NEEDS_ATTENTION)
                fake.fail_step = None
                await handle.signal(EngagementWorkflow.retry)
            await _until(handle, Stage.IN_DELIVERY)
            history = await handle.fetch_history()
            (HERE / f"{name}.json").write_text(history.to_json())
            print(f"recorded {name}: {len(history.events)} events")
    # The whole reference year: approvals, period closes, amendment, credit memo, payments,
    # an overdue invoice, continue-as-new if suggested, close-out.
    history = (await scenario.run_reference_year(env)).history
    (HERE / "engagement_reference_year.json").write_text(history.to_json())
    print(f"recorded engagement_reference_year: {len(history.events)} events")
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
