"""The CRM's bookings, curated for the hub's reconciliation: closed-won deals of a legal
entity in a period, per the project d2r provisioned for each (the opportunity's primary
project), at the deal's current contract value (`D2R_Contract_Value__c` once an amendment
changed it, else the opportunity's amount)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from connectors.salesforce.client import SalesforceClient, soql_quote
from domain.extracts import Bookings, ProjectTotal


class SalesforceBookingsExtract:
    def __init__(self, client: SalesforceClient) -> None:
        self._sf = client

    async def bookings(self, legal_entity: str, start: date, end: date) -> Bookings:
        rows = await self._sf.query_all(
            "SELECT Id, Amount, D2R_Contract_Value__c, CurrencyIsoCode, pse__Primary_Project__c, D2R_Project_Id__c "
            "FROM Opportunity "
            f"WHERE StageName = 'Closed Won' AND D2R_Legal_Entity__c = {soql_quote(legal_entity)} "
            f"AND CloseDate >= {start.isoformat()} AND CloseDate <= {end.isoformat()} ORDER BY Id"
        )
        totals: dict[str, ProjectTotal] = {}
        unlinked = []
        for row in rows:
            project = row.get("pse__Primary_Project__c") or row.get("D2R_Project_Id__c")
            value = row.get("D2R_Contract_Value__c")
            if value is None:
                value = row.get("Amount")
            if not project or value is None:
                unlinked.append(str(row["Id"]))
                continue
            total = totals.setdefault(str(project), ProjectTotal(project_id=str(project), hours=Decimal(0)))
            total.booking_total = (total.booking_total or Decimal(0)) + Decimal(str(value))
            total.currency = total.currency or row.get("CurrencyIsoCode")
            total.add_record(str(row["Id"]))
        return Bookings(totals=[totals[k].finish() for k in sorted(totals)], unlinked=unlinked)
