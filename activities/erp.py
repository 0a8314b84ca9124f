"""ERP activities: customer master and sales orders, in the legal entity's ERP instance."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity

from activities.errors import translating_errors
from connectors.erp_netsuite import ErpRouter
from domain.deal import Engagement


class UpsertCustomerInput(BaseModel):
    engagement: Engagement
    external_id: str


class UpsertCustomerResult(BaseModel):
    erp_customer_id: str


class CreateSalesOrderInput(BaseModel):
    engagement: Engagement
    erp_customer_id: str
    project_id: str
    external_id: str


class CreateSalesOrderResult(BaseModel):
    sales_order_id: str


class CancelSalesOrderInput(BaseModel):
    legal_entity: str
    external_id: str


class CancelSalesOrderResult(BaseModel):
    cancelled: bool


class ErpActivities:
    def __init__(self, router: ErpRouter) -> None:
        self._router = router

    @activity.defn(name="erp.upsert_customer")
    @translating_errors
    async def upsert_customer(self, data: UpsertCustomerInput) -> UpsertCustomerResult:
        erp = self._router.for_entity(data.engagement.legal_entity)
        return UpsertCustomerResult(
            erp_customer_id=await erp.upsert_customer(data.engagement, data.external_id))

    @activity.defn(name="erp.create_sales_order")
    @translating_errors
    async def create_sales_order(self, data: CreateSalesOrderInput) -> CreateSalesOrderResult:
        erp = self._router.for_entity(data.engagement.legal_entity)
        return CreateSalesOrderResult(sales_order_id=await erp.create_sales_order(
            data.engagement, data.erp_customer_id, data.project_id, data.external_id))

    @activity.defn(name="erp.cancel_sales_order")
    @translating_errors
    async def cancel_sales_order(self, data: CancelSalesOrderInput) -> CancelSalesOrderResult:
        erp = self._router.for_entity(data.legal_entity)
        return CancelSalesOrderResult(cancelled=await erp.cancel_sales_order(data.external_id))
