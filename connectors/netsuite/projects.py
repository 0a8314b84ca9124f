"""The ERP's project dimension on NetSuite: one `job` per PSA project (externalId
`d2r:project:<project id>`) under the customer of the project's CRM account, in the
subsidiary of its legal entity. Read before write: a job already as it should be is left
alone, so a sweep that re-reads a page writes nothing twice."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from connectors.errors import NotFoundError, VendorValidationError
from connectors.netsuite.client import NetSuiteClient
from connectors.netsuite.customers import customer_external_id
from domain.master_data import ProjectOutcome, PsaProject

NAME_LENGTH = 83  # NetSuite's entity name length


def project_external_id(project_id: str) -> str:
    return f"d2r:project:{project_id}"


class NetSuiteProjects:
    def __init__(self, client: NetSuiteClient, concurrency: int = 8) -> None:
        self._ns = client
        self._gate = asyncio.Semaphore(concurrency)

    async def upsert_projects(self, projects: Sequence[PsaProject]) -> list[ProjectOutcome]:
        return list(await asyncio.gather(*(self._one(p) for p in projects)))

    async def _one(self, project: PsaProject) -> ProjectOutcome:
        outcome = ProjectOutcome(project_id=project.project_id)
        if not project.account_id:
            return outcome.model_copy(update={"error": "the PSA project names no customer account"})
        async with self._gate:
            customer = await self._ns.get_by_external_id("customer", customer_external_id(project.account_id))
            if customer is None:
                return outcome.model_copy(update={"error": f"no NetSuite customer for account {project.account_id}"})
            wanted: dict[str, Any] = {
                "companyName": project.name[:NAME_LENGTH],
                "isInactive": not project.active,
                "custentity_d2r_psa_project_id": project.project_id,
            }
            existing = await self._ns.get_by_external_id("job", project_external_id(project.project_id))
            if existing is not None and all(existing.get(k) == v for k, v in wanted.items()):
                return outcome.model_copy(update={"record_id": str(existing["id"])})
            body = {**wanted, "parent": {"id": str(customer["id"])}, "subsidiary": {"externalId": project.legal_entity}}
            try:
                record_id = await self._ns.upsert("job", project_external_id(project.project_id), body)
            except (VendorValidationError, NotFoundError) as error:
                return outcome.model_copy(update={"error": str(error)})
        return outcome.model_copy(update={"record_id": record_id, "written": True})
