"""Customers as master data on Dynamics 365: the `CustomersV3` record of each company that
holds a CRM account (`D2RCrmAccountId`), its owned fields and the agreement d2r last
synced (`D2RAgreed`, an entity extension like the other `D2R...` fields), written with the
record's ETag so an edit made in between is not overwritten."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.dynamics.client import DynamicsClient, key, literal
from connectors.dynamics.keys import natural_key, qualified, split
from domain.master_data import ErpCustomer, agreed_json, normalized_tax_id, parse_agreed

AGREED = "D2RAgreed"
CUSTOMER_FIELD = {"name": "OrganizationName", "parent_id": "D2RCrmParentId", "tax_id": "TaxExemptNumber"}
MAX_LENGTH = {"name": 100, "parent_id": 30, "tax_id": 25}
SELECT = ("dataAreaId", "CustomerAccount", "D2RCrmAccountId", AGREED, *CUSTOMER_FIELD.values())
IN_CHUNK = 50


def agreement(values: dict[str, str | None]) -> dict[str, str]:
    return {AGREED: agreed_json(values)}


def _customer(row: dict[str, Any]) -> ErpCustomer:
    return ErpCustomer(
        record_key=qualified(str(row["dataAreaId"]), str(row["CustomerAccount"])),
        account_id=str(row.get("D2RCrmAccountId") or ""),
        values={k: (str(row[f]) if row.get(f) not in (None, "") else None) for k, f in CUSTOMER_FIELD.items()},
        agreed=parse_agreed(row.get(AGREED)),
    )


class DynamicsCustomers:
    def __init__(self, client: DynamicsClient) -> None:
        self._c = client

    async def customers(self, account_ids: Sequence[str]) -> list[ErpCustomer]:
        ids = sorted(set(account_ids))
        out: list[ErpCustomer] = []
        for start in range(0, len(ids), IN_CHUNK):
            condition = " or ".join(f"D2RCrmAccountId eq {literal(i)}" for i in ids[start : start + IN_CHUNK])
            out += [_customer(r) async for r in self._c.query("CustomersV3", condition, select=SELECT)]
        return out

    async def write_customer(
        self, record_key: str, values: dict[str, str | None], agreed: dict[str, str | None]
    ) -> None:
        company, account = split(record_key)
        record = key(dataAreaId=company, CustomerAccount=account)
        body: dict[str, Any] = {CUSTOMER_FIELD[k]: (v or "")[: MAX_LENGTH[k]] for k, v in values.items()}
        if "parent_id" in values:  # the hierarchy as D365's own key too
            body["D2RParentCustomerAccount"] = natural_key("C-", values["parent_id"]) if values["parent_id"] else ""
        current = await self._c.get("CustomersV3", record)
        await self._c.patch(
            "CustomersV3", record, {**body, **agreement(agreed)}, etag=(current or {}).get("@odata.etag")
        )

    async def customers_with_tax_id(self, tax_id: str) -> list[ErpCustomer]:
        forms = sorted({tax_id, normalized_tax_id(tax_id) or tax_id})
        condition = " or ".join(f"TaxExemptNumber eq {literal(f[:25])}" for f in forms)
        return [_customer(r) async for r in self._c.query("CustomersV3", condition, select=SELECT)]
