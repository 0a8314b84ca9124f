"""A one-line US01 T&M deal on the seeded US customer, sold in the CRM, started through the
API and waited for until it is in delivery: the setup the rate and cap tests share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.integration.conftest import Stack, eventually
from tests.integration.test_lifecycle_via_api import AUDITOR, SALES


@dataclass(frozen=True)
class TmDeal:
    opportunity: str
    line: str  # the opportunity line's id: the contract line time is booked against
    engagement: dict[str, Any]  # the engagement view once IN_DELIVERY


async def us_t_and_m_deal_in_delivery(
    stack: Stack, sf: Any, info: dict[str, Any], name: str, line_fields: dict[str, Any]
) -> TmDeal:
    """`line_fields` (Quantity, UnitPrice and any D2R_* term) complete a Consultant T&M line
    billed as delivered, on ADVISORY-TM from 1 Oct 2026 to 31 Mar 2027."""
    seeded = info["opportunities"]["valid"]["us01_fixed_fee_and_tm"]
    account = (await sf.get("Opportunity", seeded))["AccountId"]
    opportunity = await sf.create(
        "Opportunity",
        {
            "Name": name,
            "AccountId": account,
            "StageName": "Negotiation/Review",
            "CloseDate": "2026-10-01",
            "CurrencyIsoCode": "USD",
            "D2R_Legal_Entity__c": "US01",
            "D2R_Billing_Terms__c": "Net 30",
            "D2R_Service_Package__c": "ADVISORY-TM",
            "D2R_Contract_Start__c": "2026-10-01",
            "D2R_Contract_End__c": "2027-03-31",
            "Amount": 0,
        },
    )
    line = await sf.create(
        "OpportunityLineItem",
        {
            "OpportunityId": opportunity,
            "Product2Id": info["products"]["CONS-TM"],
            "D2R_Billing_Model__c": "time_and_materials",
            "D2R_Revenue_Method__c": "as_delivered",
            "D2R_Role__c": "Consultant",
            **line_fields,
        },
    )
    await sf.update("Opportunity", opportunity, {"StageName": "Closed Won"})
    started = await stack.api.post("/v1/engagements", json={"opportunity_id": opportunity}, headers=SALES)
    assert started.status_code in (200, 202, 409), started.text

    async def in_delivery() -> dict[str, Any] | None:
        r = await stack.api.get(f"/v1/engagements/{opportunity}", headers=AUDITOR)
        return r.json() if r.status_code == 200 and r.json()["stage"] == "IN_DELIVERY" else None

    engagement: dict[str, Any] = await eventually(in_delivery, within=60)
    return TmDeal(opportunity=opportunity, line=line, engagement=engagement)
