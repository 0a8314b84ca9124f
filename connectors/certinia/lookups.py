"""Certinia's organisation hierarchies as records: a project's (and a rate card's)
`pse__Region__c`, `pse__Practice__c` and `pse__Group__c` are lookups to pse__Region__c,
pse__Practice__c and pse__Grp__c records, so d2r's codes (the opportunity's delivery
region, the legal entity) are turned into those records' ids, by Name.

Read from the org once per worker process and kept: these tables are small and change
rarely; a code not in the cache reads its table again once (a region added since)."""

from __future__ import annotations

from connectors.salesforce.client import SalesforceClient

# what each lookup field on a project points at (the Group object is pse__Grp__c)
OBJECTS = {"region": "pse__Region__c", "practice": "pse__Practice__c", "group": "pse__Grp__c"}


class CertiniaLookups:
    def __init__(self, client: SalesforceClient) -> None:
        self._sf = client
        self._ids: dict[str, dict[str, str]] = {}
        self._missed: set[tuple[str, str]] = set()  # read again once, not on every call

    async def _read(self, kind: str) -> dict[str, str]:
        rows = await self._sf.query_all(f"SELECT Id, Name FROM {OBJECTS[kind]} ORDER BY Name, Id")
        table: dict[str, str] = {}
        for row in rows:
            table.setdefault(str(row["Name"]).casefold(), str(row["Id"]))  # Name is no unique key: the first wins
        self._ids[kind] = table
        return table

    async def id_of(self, kind: str, code: str | None) -> str | None:
        """The record id of a region / practice / group by its Name; None when there is no
        code or no such record."""
        if not code:
            return None
        key = code.casefold()
        table = self._ids.get(kind)
        if table is None or (key not in table and (kind, key) not in self._missed):
            table = await self._read(kind)
            if key not in table:
                self._missed.add((kind, key))
        return table.get(key)
