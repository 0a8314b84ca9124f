"""A tiny workflow that calls one activity per system queue, for the isolation test."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from contracts.crm import ReadOpportunityInput
    from contracts.erp import InvoiceStatusInput
    from contracts.psa import RemoveProjectInput, RemoveProjectResult
    from domain.deal import OpportunitySnapshot
    from domain.system_records import InvoiceStatus

FAST = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=1))


@workflow.defn(name="ConnectorIsolationProbe")
class IsolationProbe:
    def __init__(self) -> None:
        self.done: list[str] = []

    @workflow.run
    async def run(self, queues: list[str]) -> list[str]:
        crm, psa, erp = queues
        erp_call = workflow.start_activity(
            "erp.invoice_status",
            InvoiceStatusInput(legal_entity="US01", invoice_id="INV-probe"),
            task_queue=erp,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=FAST,
            result_type=InvoiceStatus,
        )
        await workflow.execute_activity(
            "crm.read_opportunity",
            ReadOpportunityInput(opportunity_id="006Dd0000000001IAA"),
            task_queue=crm,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=FAST,
            result_type=OpportunitySnapshot,
        )
        self.done.append("crm")
        await workflow.execute_activity(
            "psa.remove_project",
            RemoveProjectInput(external_id="probe:none"),
            task_queue=psa,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=FAST,
            result_type=RemoveProjectResult,
        )
        self.done.append("psa")
        await erp_call
        self.done.append("erp")
        return self.done

    @workflow.query
    def progress(self) -> list[str]:
        return list(self.done)
