"""Ports: what the workflows need from each system, independent of the vendor.

A new vendor (Kantata for PSA, Dynamics for ERP...) is one new module implementing
one of these protocols, registered in the worker's composition root.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

from domain.deal import Engagement, OpportunitySnapshot


class ProjectRef(BaseModel):
    project_id: str
    milestone_ids: list[str] = []
    resource_request_ids: list[str] = []


class CrmLinks(BaseModel):
    project_id: str | None
    contract_id: str | None
    status: str


class CrmPort(Protocol):
    async def read_opportunity(self, opportunity_id: str) -> OpportunitySnapshot: ...

    async def write_links(self, opportunity_id: str, links: CrmLinks) -> None: ...


class PsaPort(Protocol):
    async def create_project(self, engagement: Engagement, external_id: str) -> ProjectRef: ...

    async def remove_project(self, external_id: str) -> bool: ...


class ErpPort(Protocol):
    async def upsert_customer(self, engagement: Engagement, external_id: str) -> str: ...

    async def create_sales_order(self, engagement: Engagement, customer_id: str,
                                 project_id: str, external_id: str) -> str: ...

    async def cancel_sales_order(self, external_id: str) -> bool: ...
