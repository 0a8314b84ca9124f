"""In-memory stand-ins for the CRM, PSA and ERP activities, registered by activity name.

They record every call, so tests can assert what was (and was not) written downstream.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from temporalio import activity
from temporalio.exceptions import ApplicationError

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
from domain.deal import AccountNode, DealRules, OpportunityLineSnapshot, OpportunitySnapshot


def good_opportunity(opportunity_id: str = "006000000000000AAA") -> OpportunitySnapshot:
    return OpportunitySnapshot(
        opportunity_id=opportunity_id, name="Acme ERP rollout", stage="Closed Won",
        amount=Decimal("150000.00"), currency="USD", close_date="2026-11-02", legal_entity="US01",
        billing_terms="Net 30", service_package="IMPL-STD", delivery_region="NA",
        accounts=[AccountNode(account_id="001000000000001AAA", name="Acme Corp US", parent_id="001000000000000AAA"),
                  AccountNode(account_id="001000000000000AAA", name="Acme Holdings")],
        lines=[
            OpportunityLineSnapshot(line_id="00k000000000001AAA", name="Implementation", total_price=Decimal("100000"),
                                    billing_model="fixed_fee", revenue_method="cost_to_cost"),
            OpportunityLineSnapshot(line_id="00k000000000002AAA", name="Advisory", total_price=Decimal("50000"),
                                    billing_model="time_and_materials", role="Senior Consultant",
                                    hours=Decimal("200")),
        ])


class FakeSystems:
    def __init__(self, opportunity: OpportunitySnapshot) -> None:
        self.opportunity = opportunity
        self.calls: Counter[str] = Counter()
        self.fail_step: str | None = None  # activity name that fails for good
        self.projects: set[str] = set()
        self.orders: dict[str, bool] = {}  # external id -> open
        self.links: dict[str, WriteLinksInput] = {}

    def _maybe_fail(self, name: str) -> None:
        self.calls[name] += 1
        if self.fail_step == name:
            raise ApplicationError(f"{name} refused", type="VendorValidationError", non_retryable=True)

    def activities(self) -> list:
        fake = self

        @activity.defn(name="config.deal_rules")
        async def deal_rules(data: DealRulesInput) -> DealRules:
            return DealRules(legal_entities={"US01": "USD", "UK01": "GBP", "JP01": "JPY"})

        @activity.defn(name="crm.read_opportunity")
        async def read_opportunity(data: ReadOpportunityInput) -> OpportunitySnapshot:
            fake._maybe_fail("crm.read_opportunity")
            return fake.opportunity

        @activity.defn(name="crm.write_links")
        async def write_links(data: WriteLinksInput) -> WriteLinksResult:
            fake._maybe_fail("crm.write_links" if data.project_id else "crm.clear_links")
            fake.links[data.opportunity_id] = data
            return WriteLinksResult(opportunity_id=data.opportunity_id, status=data.status)

        @activity.defn(name="erp.upsert_customer")
        async def upsert_customer(data: UpsertCustomerInput) -> UpsertCustomerResult:
            fake._maybe_fail("erp.upsert_customer")
            return UpsertCustomerResult(erp_customer_id="C-" + data.engagement.customer.customer_id[-4:])

        @activity.defn(name="psa.create_project")
        async def create_project(data: CreateProjectInput) -> ProjectRef:
            fake._maybe_fail("psa.create_project")
            fake.projects.add(data.external_id)
            return ProjectRef(project_id="a0P" + data.external_id[-6:])

        @activity.defn(name="psa.remove_project")
        async def remove_project(data: RemoveProjectInput) -> RemoveProjectResult:
            fake.calls["psa.remove_project"] += 1
            existed = data.external_id in fake.projects
            fake.projects.discard(data.external_id)
            return RemoveProjectResult(removed=existed)

        @activity.defn(name="erp.create_sales_order")
        async def create_sales_order(data: CreateSalesOrderInput) -> CreateSalesOrderResult:
            fake._maybe_fail("erp.create_sales_order")
            fake.orders[data.external_id] = True
            return CreateSalesOrderResult(sales_order_id="SO-1")

        @activity.defn(name="erp.cancel_sales_order")
        async def cancel_sales_order(data: CancelSalesOrderInput) -> CancelSalesOrderResult:
            fake.calls["erp.cancel_sales_order"] += 1
            was_open = fake.orders.get(data.external_id, False)
            if data.external_id in fake.orders:
                fake.orders[data.external_id] = False
            return CancelSalesOrderResult(cancelled=was_open)

        return [deal_rules, read_opportunity, write_links, upsert_customer, create_project, remove_project,
                create_sales_order, cancel_sales_order]
