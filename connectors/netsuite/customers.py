"""Customers as master data on NetSuite: the `customer` d2r keeps for each CRM account
(externalId `d2r:customer:<account id>`, as provisioning writes it), its owned fields,
and the agreement d2r last synced (`custentity_d2r_agreed`: JSON of the values both
systems held), so an edit made directly in NetSuite is told from the CRM's change."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from connectors.netsuite.client import NetSuiteClient
from domain.master_data import ErpCustomer, agreed_json, normalized_tax_id, parse_agreed

AGREED = "custentity_d2r_agreed"
# canonical customer field -> NetSuite customer field (domain/master_data.customer_fields)
CUSTOMER_FIELD = {"name": "companyName", "parent_id": "custentity_d2r_crm_parent_id", "tax_id": "vatRegNumber"}


def customer_external_id(account_id: str) -> str:
    return f"d2r:customer:{account_id}"


def agreement(values: dict[str, str | None]) -> dict[str, str]:
    """The agreement field of a customer d2r writes with these values (provisioning too)."""
    return {AGREED: agreed_json(values)}


def _customer(record: dict[str, Any], account_id: str) -> ErpCustomer:
    modified = record.get("lastModifiedDate")
    return ErpCustomer(
        record_key=str(record["id"]),
        account_id=account_id,
        values={k: (str(record[f]) if record.get(f) not in (None, "") else None) for k, f in CUSTOMER_FIELD.items()},
        agreed=parse_agreed(record.get(AGREED)),
        modified_at=datetime.fromisoformat(modified.replace("Z", "+00:00")) if modified else None,
    )


class NetSuiteCustomers:
    def __init__(self, client: NetSuiteClient, concurrency: int = 8) -> None:
        self._ns = client
        self._gate = asyncio.Semaphore(concurrency)

    async def customers(self, account_ids: Sequence[str]) -> list[ErpCustomer]:
        async def one(account_id: str) -> ErpCustomer | None:
            async with self._gate:
                record = await self._ns.get_by_external_id("customer", customer_external_id(account_id))
            return _customer(record, account_id) if record is not None else None

        found = await asyncio.gather(*(one(a) for a in sorted(set(account_ids))))
        return [c for c in found if c is not None]

    async def write_customer(
        self, record_key: str, values: dict[str, str | None], agreed: dict[str, str | None]
    ) -> None:
        body: dict[str, Any] = {CUSTOMER_FIELD[k]: v if v is not None else "" for k, v in values.items()}
        await self._ns.patch("customer", record_key, {**body, **agreement(agreed)})

    async def customers_with_tax_id(self, tax_id: str) -> list[ErpCustomer]:
        forms = sorted({tax_id, normalized_tax_id(tax_id) or tax_id})
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in forms)
        out = []
        async for row in self._ns.suiteql(
            f"SELECT id, custentity_d2r_crm_account_id FROM customer WHERE vatregnumber IN ({listed})"
        ):
            record = await self._ns.get("customer", str(row["id"]))
            out.append(_customer(record, str(record.get("custentity_d2r_crm_account_id") or "")))
        return out
