"""The deal's negotiated rate reaches the invoice through the whole system: an opportunity
sold in the CRM at 200 USD/h for a Consultant (the US rate card says 180), time in the PSA,
a period close through the API, the invoice in the ERP."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.salesforce.client import soql_quote
from tests.integration.conftest import Stack
from tests.integration.test_engagement_path import seed_info
from tests.integration.test_lifecycle_via_api import FINANCE, netsuite, salesforce
from tests.integration.tm_deals import us_t_and_m_deal_in_delivery

pytestmark = pytest.mark.integration


async def test_t_and_m_bills_at_the_opportunity_lines_rate_not_the_cards(stack: Stack) -> None:
    """100 h x 200 USD = 20,000 sold. Hedy (Consultant, US01) books 12.5 h approved:
    billed 12.5 x 200 = 2,500.00 USD (at the card's 180 it would be 2,250.00)."""
    info = await seed_info(stack)
    hedy = next(c for c in info["consultants"] if c["name"] == "Hedy Lamarr")
    sf, ns = salesforce(stack), netsuite(stack)
    try:
        card = await sf.query_all(
            "SELECT pse__Suggested_Bill_Rate__c FROM pse__Rate_Card__c "
            "WHERE pse__Role__c = 'Consultant' AND CurrencyIsoCode = 'USD'"
        )
        assert {Decimal(str(c["pse__Suggested_Bill_Rate__c"])) for c in card} == {Decimal(180)}
        deal = await us_t_and_m_deal_in_delivery(
            stack, sf, info, "Negotiated rate T&M", {"Quantity": 100, "UnitPrice": 200, "D2R_Hours__c": 100}
        )
        opportunity, line, engagement = deal.opportunity, deal.line, deal.engagement
        await sf.create(
            "pse__Timecard_Header__c",
            {
                "pse__Project__c": engagement["project_id"],
                "pse__Resource__c": hedy["id"],
                "pse__Start_Date__c": "2026-10-05",
                "pse__End_Date__c": "2026-10-11",
                "pse__Total_Hours__c": 12.5,
                "pse__Status__c": "Approved",
                "pse__Approved__c": True,
                "pse__Billable__c": True,
                "D2R_Contract_Line_Id__c": line,
            },
        )
        closed = await stack.api.post(f"/v1/engagements/{opportunity}/periods/2026-10/close", headers=FINANCE)
        assert closed.status_code == 200, closed.text
        result = closed.json()
        assert Decimal(result["billed"]["amount"]) == Decimal("2500.00")
        (invoice,) = result["invoices"]
        record = await ns.get_by_external_id("invoice", invoice["invoice_id"])
        assert record is not None
        assert Decimal(str(record["total"])) == Decimal(invoice["total"]["amount"])
        assert Decimal(invoice["total"]["amount"]) - Decimal(invoice["tax"]["amount"]) == Decimal("2500.00")
        rows = await sf.query_all(f"SELECT Id FROM OpportunityLineItem WHERE OpportunityId = {soql_quote(opportunity)}")
        assert [r["Id"] for r in rows] == [line]
    finally:
        await sf.aclose()
        await ns.aclose()
