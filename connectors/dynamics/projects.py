"""The ERP's project dimension on Dynamics 365: one `Projects` record per PSA project in the
company of its legal entity, keyed by a ProjectID derived from the PSA id (keys.py), under
the customer d2r keeps for the project's CRM account. Read before write; only what differs
is patched."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from connectors.dynamics.client import AlreadyExistsError, DynamicsClient, key
from connectors.dynamics.keys import company_of, natural_key, qualified
from connectors.errors import VendorValidationError
from domain.master_data import ProjectOutcome, PsaProject

NAME_LENGTH = 60


class DynamicsProjects:
    def __init__(self, client: DynamicsClient, concurrency: int = 4) -> None:
        self._c = client
        self._gate = asyncio.Semaphore(concurrency)

    async def upsert_projects(self, projects: Sequence[PsaProject]) -> list[ProjectOutcome]:
        return list(await asyncio.gather(*(self._one(p) for p in projects)))

    async def _one(self, project: PsaProject) -> ProjectOutcome:
        outcome = ProjectOutcome(project_id=project.project_id)
        if not project.account_id:
            return outcome.model_copy(update={"error": "the PSA project names no customer account"})
        company = company_of(project.legal_entity)
        number = natural_key("P-", project.project_id)
        record = key(dataAreaId=company, ProjectID=number)
        wanted: dict[str, Any] = {
            "ProjectName": project.name[:NAME_LENGTH],
            "CustomerAccount": natural_key("C-", project.account_id),
            "ProjectStage": "InProcess" if project.active else "Completed",
            "D2RReference": f"d2r:project:{project.project_id}",
        }
        async with self._gate:
            try:
                existing = await self._c.get("Projects", record)
                if existing is None:
                    try:
                        await self._c.create("Projects", {"dataAreaId": company, "ProjectID": number, **wanted})
                        return outcome.model_copy(update={"record_id": qualified(company, number), "written": True})
                    except AlreadyExistsError:  # an earlier attempt's create landed
                        existing = await self._c.get("Projects", record)
                        if existing is None:
                            raise
                changed = {k: v for k, v in wanted.items() if existing.get(k) != v}
                if changed:
                    await self._c.patch("Projects", record, changed, etag=existing.get("@odata.etag"))
            except VendorValidationError as error:
                return outcome.model_copy(update={"error": str(error)})
        return outcome.model_copy(update={"record_id": qualified(company, number), "written": bool(changed)})
