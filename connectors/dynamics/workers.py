"""ERP employees on Dynamics 365 Finance, derived from the PSA's consultants: an
`Employees` record (shared across companies) whose `D2RReference` is the PSA resource id,
as hour journals look their Worker up. Its PersonnelNumber is derived from that id
(connectors/dynamics/keys.py), so a retry after a lost response or two racing pages find
the same record instead of hiring the consultant twice."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from connectors.dynamics.client import AlreadyExistsError, DynamicsClient, key, literal
from connectors.dynamics.keys import company_of, natural_key
from connectors.errors import VendorValidationError
from domain.master_data import Employee, EmployeeOutcome

PERSONNEL_NUMBER_LENGTH = 25


class DynamicsWorkers:
    def __init__(self, client: DynamicsClient, concurrency: int = 4) -> None:
        self._c = client
        self._gate = asyncio.Semaphore(concurrency)
        self._known: dict[str, str] = {}  # resource id -> PersonnelNumber, seen by this process

    async def ensure_employees(self, employees: Sequence[Employee]) -> list[EmployeeOutcome]:
        chosen: dict[str, Employee] = {}
        for employee in employees:
            chosen.setdefault(employee.employee_id, employee)  # workers are shared by the companies
        return list(await asyncio.gather(*(self._ensure(e) for e in chosen.values())))

    async def _ensure(self, employee: Employee) -> EmployeeOutcome:
        outcome = EmployeeOutcome(employee_id=employee.employee_id, legal_entity=employee.legal_entity)
        if (known := self._known.get(employee.employee_id)) is not None:
            return outcome.model_copy(update={"record_id": known})
        async with self._gate:
            found = await self._c.first(
                "Employees", f"D2RReference eq {literal(employee.employee_id)}", select=("PersonnelNumber",)
            )
            if found is not None:
                self._known[employee.employee_id] = str(found["PersonnelNumber"])
                return outcome.model_copy(update={"record_id": str(found["PersonnelNumber"])})
            number = natural_key("D2R", employee.employee_id, PERSONNEL_NUMBER_LENGTH)
            created = True
            try:
                await self._c.create("Employees", _body(employee, number))
            except AlreadyExistsError:
                created = False  # an earlier attempt's create landed: the same number is the same person
                if await self._c.get("Employees", key(PersonnelNumber=number)) is None:
                    raise
            except VendorValidationError as error:
                return outcome.model_copy(update={"error": str(error)})
        self._known[employee.employee_id] = number
        return outcome.model_copy(update={"record_id": number, "created": created})


def _body(employee: Employee, number: str) -> dict[str, Any]:
    return {
        "PersonnelNumber": number,
        "Name": employee.name[:100],
        "FirstName": employee.first_name[:25],
        "LastName": employee.last_name[:25],
        "EmploymentLegalEntityId": company_of(employee.legal_entity).upper(),
        "D2RReference": employee.employee_id,
        "D2RRole": employee.role[:60],
    }
