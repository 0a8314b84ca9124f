"""Consultants as master data on Certinia: the org's resource Contacts
(`pse__Is_Resource__c`), swept by `LastModifiedDate` with keyset paging (time, then Id),
as the canonical `Resource` posting reads (home entity, role, cost rate, transfers)."""

from __future__ import annotations

from datetime import datetime

from connectors.certinia.posting import RESOURCE_FIELDS, _transfers
from connectors.certinia.psa import _resource
from connectors.salesforce.accounts import parse_sf_datetime, soql_datetime
from connectors.salesforce.client import SalesforceClient, soql_quote
from domain.master_data import ResourcePage


class CertiniaResources:
    def __init__(self, client: SalesforceClient) -> None:
        self._sf = client

    async def changed_resources(self, after: tuple[datetime, str] | None, limit: int) -> ResourcePage:
        where = "pse__Is_Resource__c = true"
        if after is not None:
            when, last_id = soql_datetime(after[0]), soql_quote(after[1])
            where += f" AND (LastModifiedDate > {when} OR (LastModifiedDate = {when} AND Id > {last_id}))"
        rows = await self._sf.query_all(
            f"SELECT {RESOURCE_FIELDS}, LastModifiedDate FROM Contact WHERE {where} "
            f"ORDER BY LastModifiedDate, Id LIMIT {int(limit)}"
        )
        page = ResourcePage()
        for row in rows:
            resource = _resource(row)
            try:
                resource.transfers = _transfers(row.get("D2R_Transfers__c"))
            except (ValueError, KeyError, TypeError):
                resource.transfers = []  # posting reports the unreadable transfers; the home entity still hires
            page.resources.append(resource)
        if len(rows) == limit:
            page.next_after = (parse_sf_datetime(rows[-1]["LastModifiedDate"]), rows[-1]["Id"])
        return page
