"""EngagementWorkflow: one booked deal, from the CRM's Closed Won to delivery.

VALIDATING -> (AWAITING_APPROVAL) -> PROVISIONING -> IN_DELIVERY -> CLOSING -> CLOSED,
with NEEDS_ATTENTION reachable from any step: the deal then waits for a person.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.config import DealRulesInput
    from activities.crm import ReadOpportunityInput, WriteLinksInput, WriteLinksResult
    from activities.erp import (
        CancelSalesOrderInput,
        CancelSalesOrderResult,
        CreateSalesOrderInput,
        CreateSalesOrderResult,
        UpsertCustomerInput,
        UpsertCustomerResult,
    )
    from activities.psa import CreateProjectInput, RemoveProjectInput, RemoveProjectResult
    from connectors.ports import ProjectRef
    from domain.deal import DealRules, Engagement, OpportunitySnapshot, validate_deal
    from domain.ids import external_id
    from domain.stages import Stage, transition
    from workflows import search_attributes as sa
    from workflows.engagement_models import CancelRequest, EngagementInput, EngagementView, TimelineEntry
    from workflows.saga import Saga

ACTIVITY_TIMEOUT = timedelta(seconds=60)
# Transient vendor trouble retries with backoff for a while; typed business errors
# (non_retryable ApplicationErrors from the activities) stop at once.
VENDOR_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                           maximum_interval=timedelta(seconds=60), maximum_attempts=10)


def _cause(error: BaseException) -> str:
    if isinstance(error, ActivityError) and error.cause is not None:
        cause = error.cause
        kind = cause.type if isinstance(cause, ApplicationError) and cause.type else type(cause).__name__
        return f"{kind}: {cause.message if hasattr(cause, 'message') else cause}"
    return str(error)


@workflow.defn(name="EngagementWorkflow")
class EngagementWorkflow:
    @workflow.init
    def __init__(self, data: EngagementInput) -> None:
        self._input = data
        self._view = EngagementView(workflow_id=workflow.info().workflow_id,
                                    opportunity_id=data.opportunity_id, stage=Stage.VALIDATING)
        self._resume = False
        self._cancel: CancelRequest | None = None
        self._close_requested = False

    # ---- the happy path -------------------------------------------------------------
    @workflow.run
    async def run(self, data: EngagementInput) -> EngagementView:
        self._note(f"engagement started for opportunity {data.opportunity_id}")
        engagement = await self._validated_deal()
        if engagement is None:
            return self._view
        if not await self._provisioned(engagement):
            return self._view
        self._to(Stage.IN_DELIVERY, "project and contract are set up; delivery can start")
        # Delivery, billing and revenue arrive with the lifecycle issue; until then the
        # engagement rests here, findable and queryable, until it is closed.
        await workflow.wait_condition(lambda: self._close_requested or self._cancel is not None)
        return self._view

    # ---- messages ---------------------------------------------------------------------
    @workflow.query(name="view")
    def view(self) -> EngagementView:
        return self._view

    @workflow.signal(name="revalidate")
    def revalidate(self) -> None:
        """The CRM was fixed (or the outside trouble is over): try the waiting step again."""
        self._resume = True

    @workflow.signal(name="retry")
    def retry(self) -> None:
        self._resume = True

    @workflow.signal(name="cancel")
    def cancel(self, request: CancelRequest) -> None:
        self._cancel = request

    # ---- steps ------------------------------------------------------------------------
    async def _validated_deal(self) -> Engagement | None:
        while True:
            self._set_details("Reading the opportunity from the CRM and checking it")
            snapshot: OpportunitySnapshot = await workflow.execute_activity(
                "crm.read_opportunity", ReadOpportunityInput(opportunity_id=self._input.opportunity_id),
                result_type=OpportunitySnapshot, task_queue=self._input.queues.crm,
                start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=VENDOR_RETRY,
                summary=f"Read opportunity {self._input.opportunity_id} with account and lines")
            rules: DealRules = await workflow.execute_local_activity(
                "config.deal_rules", DealRulesInput(opportunity_id=self._input.opportunity_id),
                result_type=DealRules, start_to_close_timeout=timedelta(seconds=10))
            result = validate_deal(snapshot, rules)
            self._view.name = snapshot.name
            if isinstance(result, Engagement):
                self._view.errors = []
                self._adopt(result)
                return result
            self._view.errors = result
            fields = ", ".join(sorted({e.field for e in result}))
            if not await self._needs_attention(f"the deal is invalid ({fields}); fix it in the CRM"):
                return None
            self._to(Stage.VALIDATING, "revalidating after a fix in the CRM")

    async def _provisioned(self, engagement: Engagement) -> bool:
        while True:
            self._to(Stage.PROVISIONING, "setting up customer, project and sales order")
            try:
                await self._provision(engagement)
                return True
            except ActivityError as error:
                self._view.failure = _cause(error)
                if not await self._needs_attention(f"provisioning failed and was undone: {self._view.failure}"):
                    return False

    async def _provision(self, engagement: Engagement) -> None:
        wid = workflow.info().workflow_id
        queues = self._input.queues
        saga = Saga()
        try:
            self._set_details(f"Upserting customer {engagement.customer.name} in the ERP")
            # The customer is shared master data (other deals bill it too): no undo.
            customer: UpsertCustomerResult = await workflow.execute_activity(
                "erp.upsert_customer", UpsertCustomerInput(
                    engagement=engagement, external_id=f"d2r:customer:{engagement.customer.customer_id}"),
                result_type=UpsertCustomerResult, task_queue=queues.erp,
                start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=VENDOR_RETRY,
                summary=f"Upsert ERP customer for account {engagement.customer.customer_id}")
            self._view.erp_customer_id = customer.erp_customer_id

            project_key = external_id(wid, "project")
            saga.on_failure_undo("remove PSA project", lambda: workflow.execute_activity(
                "psa.remove_project", RemoveProjectInput(external_id=project_key),
                result_type=RemoveProjectResult, task_queue=queues.psa,
                start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=VENDOR_RETRY,
                summary="Undo: remove the PSA project"))
            self._set_details(f"Creating the PSA project from service package {engagement.service_package}")
            project: ProjectRef = await workflow.execute_activity(
                "psa.create_project", CreateProjectInput(engagement=engagement, external_id=project_key),
                result_type=ProjectRef, task_queue=queues.psa,
                start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=VENDOR_RETRY,
                summary=f"Create PSA project from template {engagement.service_package}")
            self._view.project_id = project.project_id
            workflow.upsert_search_attributes([sa.PROJECT_ID.value_set(project.project_id)])

            order_key = external_id(wid, "sales-order")
            saga.on_failure_undo("cancel ERP sales order", lambda: workflow.execute_activity(
                "erp.cancel_sales_order", CancelSalesOrderInput(
                    legal_entity=engagement.legal_entity, external_id=order_key),
                result_type=CancelSalesOrderResult, task_queue=queues.erp,
                start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=VENDOR_RETRY,
                summary="Undo: cancel the ERP sales order"))
            self._set_details(f"Creating the ERP sales order for {engagement.contract_value}")
            order: CreateSalesOrderResult = await workflow.execute_activity(
                "erp.create_sales_order", CreateSalesOrderInput(
                    engagement=engagement, erp_customer_id=customer.erp_customer_id,
                    project_id=project.project_id, external_id=order_key),
                result_type=CreateSalesOrderResult, task_queue=queues.erp,
                start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=VENDOR_RETRY,
                summary=f"Create ERP sales order, {engagement.contract_value}")
            self._view.contract_id = order.sales_order_id
            workflow.upsert_search_attributes([sa.CONTRACT_ID.value_set(order.sales_order_id)])

            saga.on_failure_undo("clear CRM links", lambda: workflow.execute_activity(
                "crm.write_links", WriteLinksInput(
                    opportunity_id=engagement.opportunity_id, project_id=None, contract_id=None,
                    status="Provisioning undone"),
                result_type=WriteLinksResult, task_queue=queues.crm,
                start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=VENDOR_RETRY,
                summary="Undo: clear project and contract links on the opportunity"))
            self._set_details("Writing project and contract ids back to the CRM")
            await workflow.execute_activity(
                "crm.write_links", WriteLinksInput(
                    opportunity_id=engagement.opportunity_id, project_id=project.project_id,
                    contract_id=order.sales_order_id, status="In Delivery"),
                result_type=WriteLinksResult, task_queue=queues.crm,
                start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=VENDOR_RETRY,
                summary="Write project and contract ids back to the opportunity")
            self._view.failure = None
        except ActivityError:
            self._set_details("A provisioning step failed for good: undoing the earlier steps")
            failed = await saga.compensate()
            self._view.project_id = None
            self._view.contract_id = None
            workflow.upsert_search_attributes([sa.PROJECT_ID.value_unset(), sa.CONTRACT_ID.value_unset()])
            if failed:
                self._note("some undo steps failed: " + "; ".join(failed))
            raise

    async def _needs_attention(self, reason: str) -> bool:
        """Wait for a person: True to resume, False if the engagement was cancelled."""
        self._to(Stage.NEEDS_ATTENTION, reason)
        self._resume = False
        await workflow.wait_condition(lambda: self._resume or self._cancel is not None)
        if self._cancel is not None:
            self._to(Stage.CANCELLED, f"cancelled by {self._cancel.by or 'unknown'}: {self._cancel.reason}")
            return False
        return True

    # ---- bookkeeping --------------------------------------------------------------------
    def _adopt(self, engagement: Engagement) -> None:
        view = self._view
        view.customer_id = engagement.customer.customer_id
        view.customer_name = engagement.customer.name
        view.legal_entity = engagement.legal_entity
        view.currency = engagement.currency
        view.contract_value = engagement.contract_value
        view.billing_models = [m.value for m in engagement.billing_models]
        workflow.upsert_search_attributes([
            sa.CUSTOMER_ID.value_set(engagement.customer.customer_id),
            sa.LEGAL_ENTITY.value_set(engagement.legal_entity),
            sa.BILLING_MODELS.value_set(view.billing_models),
        ])

    def _to(self, stage: Stage, note: str) -> None:
        if stage != self._view.stage:
            self._view.stage = transition(self._view.stage, stage)
            workflow.upsert_search_attributes([sa.STAGE.value_set(stage.value)])
        self._note(note)

    def _note(self, note: str) -> None:
        self._view.timeline.append(TimelineEntry(at=workflow.now(), stage=self._view.stage, note=note))
        self._set_details(note)

    def _set_details(self, text: str) -> None:
        workflow.set_current_details(f"**{self._view.stage.value}** — {text}")
