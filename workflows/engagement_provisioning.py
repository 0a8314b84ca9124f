"""PROVISIONING as a saga: ERP customer -> PSA project -> ERP sales order -> CRM links."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts import search_attributes as sa
    from contracts.crm import WriteLinksInput, WriteLinksResult
    from contracts.erp import (
        CancelSalesOrderInput,
        CancelSalesOrderResult,
        CreateSalesOrderInput,
        CreateSalesOrderResult,
        UpsertCustomerInput,
        UpsertCustomerResult,
    )
    from contracts.psa import CreateProjectInput, RemoveProjectInput, RemoveProjectResult
    from domain.contract import open_contract
    from domain.deal import Engagement
    from domain.ids import external_id
    from domain.stages import Stage
    from domain.system_records import ProjectRef
    from workflows.engagement_support import EngagementBase
    from workflows.failures import STEP_FAILURES, failure_reason
    from workflows.saga import Saga


def activity_error_cause(error: BaseException) -> str:
    if isinstance(error, ActivityError) and error.cause is not None:
        cause = error.cause
        kind = cause.type if isinstance(cause, ApplicationError) and cause.type else type(cause).__name__
        return f"{kind}: {getattr(cause, 'message', cause)}"
    return str(error)


class ProvisioningSteps(EngagementBase):
    async def _provisioned(self, engagement: Engagement) -> bool:
        while True:
            self._to(Stage.PROVISIONING, "setting up customer, project and sales order")
            try:
                await self._provision(engagement)
                await self._incident_passed()
                return True
            except STEP_FAILURES as error:
                self._s.view.failure = failure_reason(error)
                if not await self._needs_attention(f"provisioning failed and was undone: {self._s.view.failure}"):
                    return False

    async def _provision(self, engagement: Engagement) -> None:
        wid = workflow.info().workflow_id
        queues = self._input.queues
        view = self._s.view
        saga = Saga()
        try:
            self._set_details(f"Upserting customer {engagement.customer.name} in the ERP")
            # The customer is shared master data (other deals bill it too): no undo.
            customer: UpsertCustomerResult = await self._call(
                "erp.upsert_customer",
                UpsertCustomerInput(
                    engagement=engagement, external_id=f"d2r:customer:{engagement.customer.customer_id}"
                ),
                UpsertCustomerResult,
                queues.erp,
                f"Upsert ERP customer for account {engagement.customer.customer_id}",
            )
            view.erp_customer_id = customer.erp_customer_id

            project_key = external_id(wid, "project")
            saga.on_failure_undo(
                "remove PSA project",
                lambda: self._call(
                    "psa.remove_project",
                    RemoveProjectInput(external_id=project_key, legal_entity=engagement.legal_entity),
                    RemoveProjectResult,
                    queues.psa,
                    "Undo: remove the PSA project",
                ),
            )
            self._set_details(f"Creating the PSA project from service package {engagement.service_package}")
            project: ProjectRef = await self._call(
                "psa.create_project",
                CreateProjectInput(engagement=engagement, external_id=project_key),
                ProjectRef,
                queues.psa,
                f"Create PSA project from template {engagement.service_package}",
            )
            view.project_id = project.project_id

            order_key = external_id(wid, "sales-order")
            saga.on_failure_undo(
                "cancel ERP sales order",
                lambda: self._call(
                    "erp.cancel_sales_order",
                    CancelSalesOrderInput(legal_entity=engagement.legal_entity, external_id=order_key),
                    CancelSalesOrderResult,
                    queues.erp,
                    "Undo: cancel the ERP sales order",
                ),
            )
            self._set_details(f"Creating the ERP sales order for {engagement.contract_value}")
            order: CreateSalesOrderResult = await self._call(
                "erp.create_sales_order",
                CreateSalesOrderInput(
                    engagement=engagement,
                    erp_customer_id=customer.erp_customer_id,
                    project_id=project.project_id,
                    external_id=order_key,
                ),
                CreateSalesOrderResult,
                queues.erp,
                f"Create ERP sales order, {engagement.contract_value}",
            )
            view.contract_id = order.sales_order_id

            saga.on_failure_undo(
                "clear CRM links",
                lambda: self._call(
                    "crm.write_links",
                    WriteLinksInput(
                        opportunity_id=engagement.opportunity_id,
                        project_id=None,
                        contract_id=None,
                        status="Provisioning undone",
                    ),
                    WriteLinksResult,
                    queues.crm,
                    "Undo: clear project and contract links on the opportunity",
                ),
            )
            self._set_details("Writing project and contract ids back to the CRM")
            await self._call(
                "crm.write_links",
                WriteLinksInput(
                    opportunity_id=engagement.opportunity_id,
                    project_id=project.project_id,
                    contract_id=order.sales_order_id,
                    status="In Delivery",
                ),
                WriteLinksResult,
                queues.crm,
                "Write project and contract ids back to the opportunity",
            )
        except STEP_FAILURES:
            self._set_details("A provisioning step failed for good: undoing the earlier steps")
            failed = await saga.compensate()
            view.project_id = None
            view.contract_id = None
            if failed:
                self._note("some undo steps failed: " + "; ".join(failed))
            raise
        view.failure = None
        self._search(sa.PROJECT_ID.value_set(project.project_id), sa.CONTRACT_ID.value_set(order.sales_order_id))
        self._s.contract = open_contract(engagement, project_id=project.project_id, contract_id=order.sales_order_id)
        self._describe_for_batches()
