"""Projects as master data on Certinia: `pse__Proj__c` swept by `LastModifiedDate` (keyset
paging: time, then Id), as the ERP's project dimension needs them."""

from __future__ import annotations

from datetime import datetime

from connectors.salesforce.accounts import parse_sf_datetime, soql_datetime
from connectors.salesforce.client import SalesforceClient, soql_quote
from domain.master_data import ProjectPage, PsaProject

FIELDS = "Id, Name, pse__Account__c, D2R_Legal_Entity__c, pse__Is_Active__c, pse__Stage__c, LastModifiedDate"
CLOSED_STAGES = ("Completed", "Closed", "Canceled", "Cancelled")


class CertiniaProjects:
    def __init__(self, client: SalesforceClient) -> None:
        self._sf = client

    async def changed_projects(self, after: tuple[datetime, str] | None, limit: int) -> ProjectPage:
        where = "D2R_Legal_Entity__c != null"
        if after is not None:
            when, last_id = soql_datetime(after[0]), soql_quote(after[1])
            where += f" AND (LastModifiedDate > {when} OR (LastModifiedDate = {when} AND Id > {last_id}))"
        rows = await self._sf.query_all(
            f"SELECT {FIELDS} FROM pse__Proj__c WHERE {where} ORDER BY LastModifiedDate, Id LIMIT {int(limit)}"
        )
        page = ProjectPage(
            projects=[
                PsaProject(
                    project_id=r["Id"],
                    name=r.get("Name") or r["Id"],
                    legal_entity=r["D2R_Legal_Entity__c"],
                    account_id=r.get("pse__Account__c") or None,
                    active=r.get("pse__Is_Active__c") is not False and r.get("pse__Stage__c") not in CLOSED_STAGES,
                    modified_at=parse_sf_datetime(r["LastModifiedDate"]),
                )
                for r in rows
            ]
        )
        if len(rows) == limit:
            page.next_after = (page.projects[-1].modified_at, page.projects[-1].project_id)
        return page
