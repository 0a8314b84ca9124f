"""A T&M line's not-to-exceed cap from the CRM is enforced when billing, through the whole
system: the opportunity line carries `D2R_Not_To_Exceed__c`, time is approved in the PSA,
the period is closed through the API, the invoice lands in the ERP (issue 15, item 6).

Figures (hand-computed): Consultant at 200 USD/h, no amount on the line (booked value 0, not
an invented one), cap 2,000.00 USD. Hedy books 12.5 h
approved: 12.5 x 200 = 2,500.00 delivered, 2,000.00 billed (10 h), 2.5 h (500.00) left
unbilled and visible as a `not_to_exceed_reached` warning; the timecard is not marked billed
in the PSA (its remaining hours stay billable for a change order that raises the cap).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.integration.conftest import Stack, eventually
from tests.integration.test_engagement_path import records, seed_info
from tests.integration.test_lifecycle_via_api import FINANCE, netsuite, salesforce
from tests.integration.tm_deals import us_t_and_m_deal_in_delivery

pytestmark = pytest.mark.integration


async def test_a_t_and_m_cap_bills_up_to_it_and_leaves_the_rest_visible(stack: Stack) -> None:
    info = await seed_info(stack)
    hedy = next(c for c in info["consultants"] if c["name"] == "Hedy Lamarr")
    sf, ns = salesforce(stack), netsuite(stack)
    try:
        deal = await us_t_and_m_deal_in_delivery(
            stack,
            sf,
            info,
            "Capped T&M",
            {"Quantity": 0, "UnitPrice": 200, "D2R_Not_To_Exceed__c": 2000},  # no amount: books nothing undelivered
        )
        opportunity, line, engagement = deal.opportunity, deal.line, deal.engagement
        assert Decimal(engagement["contract_value"]["amount"]) == 0  # nothing invented as booked value
        timecard = await sf.create(
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
        assert Decimal(result["billed"]["amount"]) == Decimal("2000.00")
        [warning] = [x for x in result["exceptions"] if x["code"] == "not_to_exceed_reached"]
        assert warning["severity"] == "warning" and "2.5" in warning["message"]
        (invoice,) = result["invoices"]
        record = await ns.get_by_external_id("invoice", invoice["invoice_id"])
        assert record is not None and Decimal(str(record["total"])) == Decimal("2000.00")  # US01: no sales tax

        async def fed_back() -> dict[str, Any] | None:
            # the PSA feedback (billing status and marks) has run: the project shows the billing
            [project] = [
                p for p in await records(stack, "salesforce", "pse__Proj__c") if p["Id"] == engagement["project_id"]
            ]
            return project if Decimal(str(project.get("pse__Billings__c") or 0)) == Decimal("2000") else None

        await eventually(fed_back, within=60)
        [card] = [c for c in await records(stack, "salesforce", "pse__Timecard_Header__c") if c["Id"] == timecard]
        assert not card.get("pse__Billed__c")  # 2.5 h of it are still to bill
    finally:
        await sf.aclose()
        await ns.aclose()
