"""The floor provisioning is measured against: a bare Temporal workflow that makes the
same vendor calls as an engagement's provisioning (read the opportunity, ERP customer,
PSA project, ERP sales order, CRM write-back), by the same activity names on the same
task queues, so the same workers, connectors and rate limits serve them. It keeps no
view, no search attributes or memo, no approvals and no saga: what is left of the
engagement's cost is d2r's own.

    python -m bench.bare_provisioning <task queue>   # a worker for it (settings from D2R_*)
"""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from contracts.crm import ReadOpportunityInput, WriteLinksInput, WriteLinksResult
    from contracts.erp import (
        CreateSalesOrderInput,
        CreateSalesOrderResult,
        UpsertCustomerInput,
        UpsertCustomerResult,
    )
    from contracts.psa import CreateProjectInput
    from contracts.queues import TaskQueues
    from domain.deal import DealRules, Engagement, OpportunitySnapshot, validate_deal
    from domain.ids import external_id
    from domain.system_records import ProjectRef


class BareInput(BaseModel):
    opportunity_id: str
    queues: TaskQueues
    legal_entities: dict[str, str]


class BareResult(BaseModel):
    project_id: str
    contract_id: str


RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=10)


@workflow.defn(name="BareProvisioningWorkflow")
class BareProvisioningWorkflow:
    @workflow.run
    async def run(self, data: BareInput) -> BareResult:
        wid = workflow.info().workflow_id
        q = data.queues
        snapshot = await self._call(
            "crm.read_opportunity", ReadOpportunityInput(opportunity_id=data.opportunity_id), OpportunitySnapshot, q.crm
        )
        engagement = validate_deal(snapshot, DealRules(legal_entities=data.legal_entities))
        if not isinstance(engagement, Engagement):
            raise ApplicationError(f"bench deal {data.opportunity_id} is invalid: {engagement}", non_retryable=True)
        customer = await self._call(
            "erp.upsert_customer",
            UpsertCustomerInput(engagement=engagement, external_id=f"d2r:customer:{engagement.customer.customer_id}"),
            UpsertCustomerResult,
            q.erp,
        )
        project = await self._call(
            "psa.create_project",
            CreateProjectInput(engagement=engagement, external_id=external_id(wid, "project")),
            ProjectRef,
            q.psa,
        )
        order = await self._call(
            "erp.create_sales_order",
            CreateSalesOrderInput(
                engagement=engagement,
                erp_customer_id=customer.erp_customer_id,
                project_id=project.project_id,
                external_id=external_id(wid, "sales-order"),
            ),
            CreateSalesOrderResult,
            q.erp,
        )
        await self._call(
            "crm.write_links",
            WriteLinksInput(
                opportunity_id=data.opportunity_id,
                project_id=project.project_id,
                contract_id=order.sales_order_id,
                status="In Delivery",
            ),
            WriteLinksResult,
            q.crm,
        )
        return BareResult(project_id=project.project_id, contract_id=order.sales_order_id)

    @staticmethod
    async def _call(name: str, arg: BaseModel, result_type: type, queue: str) -> Any:
        return await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            task_queue=queue,
            start_to_close_timeout=timedelta(seconds=120),
            retry_policy=RETRY,
        )


async def serve(task_queue: str) -> None:
    from workers.settings import WorkerSettings
    from workers.temporal_client import connect

    client = await connect(WorkerSettings())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Worker(client, task_queue=task_queue, workflows=[BareProvisioningWorkflow], max_cached_workflows=2000):
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
