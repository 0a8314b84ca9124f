"""Accounts as master data on Salesforce: the sweep by `LastModifiedDate` (keyset paging:
modification time, then Id, so a page boundary inside one millisecond loses nothing),
reads by Id, the duplicate look-up by tax id or website domain, and the write-back of a
value a person accepted from a downstream system."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.salesforce.client import SalesforceClient, soql_quote
from domain.master_data import CrmAccount, CrmAccountPage, normalized_domain, normalized_tax_id

FIELDS = "Id, Name, ParentId, D2R_Tax_Id__c, Website, LastModifiedDate"
# canonical customer field -> Account field (domain/master_data.customer_fields)
ACCOUNT_FIELD = {"name": "Name", "parent_id": "ParentId", "tax_id": "D2R_Tax_Id__c"}
IN_CHUNK = 200


def soql_datetime(value: datetime) -> str:
    """A SOQL datetime literal in UTC with milliseconds (what `LastModifiedDate` holds)."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_sf_datetime(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("+0000", "+00:00").replace("Z", "+00:00"))


def _account(row: dict[str, Any]) -> CrmAccount:
    return CrmAccount(
        account_id=row["Id"],
        name=row.get("Name") or "",
        parent_id=row.get("ParentId") or None,
        tax_id=row.get("D2R_Tax_Id__c") or None,
        domain=normalized_domain(row.get("Website")),
        modified_at=parse_sf_datetime(row["LastModifiedDate"]),
    )


class SalesforceAccounts:
    def __init__(self, client: SalesforceClient) -> None:
        self._sf = client

    async def changed_accounts(self, after: tuple[datetime, str] | None, limit: int) -> CrmAccountPage:
        where = ""
        if after is not None:
            when, last_id = soql_datetime(after[0]), soql_quote(after[1])
            where = f"WHERE LastModifiedDate > {when} OR (LastModifiedDate = {when} AND Id > {last_id}) "
        rows = await self._sf.query_all(
            f"SELECT {FIELDS} FROM Account {where}ORDER BY LastModifiedDate, Id LIMIT {int(limit)}"
        )
        accounts = [_account(r) for r in rows]
        last = accounts[-1] if len(accounts) == limit else None
        return CrmAccountPage(accounts=accounts, next_after=(last.modified_at, last.account_id) if last else None)

    async def accounts(self, account_ids: Sequence[str]) -> list[CrmAccount]:
        ids = sorted(set(account_ids))
        out: list[CrmAccount] = []
        for start in range(0, len(ids), IN_CHUNK):
            chunk = ", ".join(soql_quote(i) for i in ids[start : start + IN_CHUNK])
            out += [
                _account(r) for r in await self._sf.query_all(f"SELECT {FIELDS} FROM Account WHERE Id IN ({chunk})")
            ]
        return out

    async def accounts_like(self, tax_ids: Sequence[str], domains: Sequence[str]) -> list[CrmAccount]:
        conditions = []
        if tax_ids:
            conditions.append(f"D2R_Tax_Id__c IN ({', '.join(soql_quote(t) for t in sorted(set(tax_ids)))})")
        conditions += [f"Website LIKE {soql_quote('%' + d + '%')}" for d in sorted(set(domains))]
        if not conditions:
            return []
        rows = await self._sf.query_all(f"SELECT {FIELDS} FROM Account WHERE {' OR '.join(conditions)} ORDER BY Id")
        wanted_tax = {normalized_tax_id(t) for t in tax_ids} - {None}
        wanted_domains = set(domains)
        # LIKE is wider than a domain match (globex.com.au contains globex.com): compare exactly
        return [
            a
            for a in (_account(r) for r in rows)
            if normalized_tax_id(a.tax_id) in wanted_tax or (a.domain is not None and a.domain in wanted_domains)
        ]

    async def write_account(self, account_id: str, values: dict[str, str | None]) -> None:
        await self._sf.update("Account", account_id, {ACCOUNT_FIELD[k]: v for k, v in values.items()})
