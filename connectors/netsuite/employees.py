"""ERP employees on NetSuite, derived from the PSA's consultants: an `employee` record
keyed by externalId = the PSA resource id (what time bills name), created in the
subsidiary of the entity that employs them. Read before create, then an externalId
upsert, so a retry or two pages racing still make one record."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from connectors.errors import NotFoundError, VendorValidationError
from connectors.netsuite.client import NetSuiteClient
from domain.master_data import Employee, EmployeeOutcome


class NetSuiteEmployees:
    def __init__(self, client: NetSuiteClient, concurrency: int = 8) -> None:
        self._ns = client
        self._gate = asyncio.Semaphore(concurrency)
        # employees seen in this account by this process: a posting page asks once, not per page
        self._known: dict[str, str] = {}

    async def ensure_employees(self, employees: Sequence[Employee]) -> list[EmployeeOutcome]:
        # One account holds one employee per person (externalId is unique): the first entity wins.
        chosen: dict[str, Employee] = {}
        for employee in employees:
            chosen.setdefault(employee.employee_id, employee)
        return list(await asyncio.gather(*(self._ensure(e) for e in chosen.values())))

    async def _ensure(self, employee: Employee) -> EmployeeOutcome:
        outcome = EmployeeOutcome(employee_id=employee.employee_id, legal_entity=employee.legal_entity)
        known = self._known.get(employee.employee_id)
        if known is not None:
            return outcome.model_copy(update={"record_id": known})
        async with self._gate:
            found = await self._ns.get_by_external_id("employee", employee.employee_id)
            if found is not None:
                self._known[employee.employee_id] = str(found["id"])
                return outcome.model_copy(update={"record_id": str(found["id"])})
            try:
                record_id = await self._ns.upsert("employee", employee.employee_id, _body(employee))
            except (VendorValidationError, NotFoundError) as error:
                return outcome.model_copy(update={"error": str(error)})
        self._known[employee.employee_id] = record_id
        return outcome.model_copy(update={"record_id": record_id, "created": True})


def _body(employee: Employee) -> dict[str, Any]:
    body: dict[str, Any] = {
        "firstName": employee.first_name,
        "lastName": employee.last_name,
        "title": employee.role,
        "subsidiary": {"externalId": employee.legal_entity},
        "custentity_d2r_psa_resource_id": employee.employee_id,
    }
    if employee.currency:
        body["currency"] = {"refName": employee.currency}
    if employee.cost_rate is not None:
        body["laborCost"] = str(employee.cost_rate)
    return body
