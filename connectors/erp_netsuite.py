"""ERP on NetSuite: customers and sales orders, routed to the legal entity's instance."""

from __future__ import annotations

from typing import Any

from connectors.errors import ConfigurationError
from connectors.netsuite import SYSTEM, NetSuiteClient
from connectors.ports import ErpPort
from domain.deal import Engagement
from domain.money import Money


def _amount(money: Money) -> str:
    # NetSuite takes plain JSON numbers; a string keeps the Decimal exact on the wire.
    return str(money.rounded().amount)


class NetSuiteErp:
    """One NetSuite account; `ErpRouter` picks the instance by legal entity."""

    def __init__(self, client: NetSuiteClient) -> None:
        self._ns = client

    async def upsert_customer(self, engagement: Engagement, external_id: str) -> str:
        customer = engagement.customer
        body: dict[str, Any] = {
            "companyName": customer.name,
            "isPerson": False,
            "subsidiary": {"externalId": engagement.legal_entity},
            "currency": {"refName": engagement.currency},
            "custentity_d2r_crm_account_id": customer.customer_id,
        }
        if customer.parent_id:
            body["custentity_d2r_crm_parent_id"] = customer.parent_id
        if customer.tax_id:
            body["vatRegNumber"] = customer.tax_id
        return await self._ns.upsert("customer", external_id, body)

    async def create_sales_order(self, engagement: Engagement, customer_id: str,
                                 project_id: str, external_id: str) -> str:
        body = {
            "entity": {"id": customer_id},
            "subsidiary": {"externalId": engagement.legal_entity},
            "currency": {"refName": engagement.currency},
            "tranDate": engagement.close_date.isoformat(),
            "memo": engagement.name[:200],
            "custbody_d2r_opportunity_id": engagement.opportunity_id,
            "custbody_d2r_project_id": project_id,
            "custbody_d2r_legal_entity": engagement.legal_entity,
            "custbody_d2r_billing_terms": engagement.billing_terms,
            "item": {"items": [{
                "description": f"{line.name} ({line.billing_model.value}, {line.revenue_method.value})",
                "quantity": 1,
                "rate": _amount(line.amount),
                "amount": _amount(line.amount),
                "custcol_d2r_contract_line_id": line.line_id,
                "custcol_d2r_billing_model": line.billing_model.value,
            } for line in engagement.lines]},
        }
        return await self._ns.upsert("salesOrder", external_id, body)

    async def cancel_sales_order(self, external_id: str) -> bool:
        """Compensation: close the order so nothing bills from it. Safe to repeat."""
        record = await self._ns.get_by_external_id("salesOrder", external_id)
        if record is None:
            return False
        await self._ns.patch("salesOrder", str(record["id"]), {"status": "Closed",
                                                               "custbody_d2r_cancelled": True})
        return True


class ErpRouter:
    """The legal entity decides which NetSuite instance holds its books."""

    def __init__(self, instances: dict[str, ErpPort], routing: dict[str, str],
                 default: str | None = None) -> None:
        self._instances = instances
        self._routing = routing
        self._default = default

    def for_entity(self, legal_entity: str) -> ErpPort:
        name = self._routing.get(legal_entity, self._default)
        if name is None or name not in self._instances:
            raise ConfigurationError(
                f"no ERP instance is configured for legal entity {legal_entity!r}", system=SYSTEM)
        return self._instances[name]
