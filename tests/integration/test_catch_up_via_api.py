"""A cumulative catch-up recognized in the same period is in that period's close, through
the API and the simulators: the CRM deal carries its estimate at completion, the PSA its
cost, the amendment is approved over HTTP, and the November close says what the ERP's
November journal holds."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from connectors.salesforce import SalesforceClient
from tests.integration.conftest import Stack, eventually
from tests.integration.test_compensation_simulators import (
    FINANCE,
    ROLE_TOKENS,
    SALES,
    book,
    copy_of_the_us01_deal,
    reach,
    sf,  # noqa: F401  (the fixture)
    view,
)
from tests.integration.test_engagement_path import seed_info

pytestmark = pytest.mark.integration


async def test_a_catch_up_in_the_period_is_in_the_periods_close(stack: Stack, sf: SalesforceClient) -> None:  # noqa: F811
    """FF 120,000 USD, cost-to-cost, estimate at completion 80,000 (from the CRM line).

    October: Ada (Architect, cost 175/h) books 40 h on FF = 7,000 of 80,000 = 8.75 %:
    recognized 10,500.00. An amendment effective 2026-11-02 raises FF to 150,000, as a
    cumulative catch-up: 8.75 % x 150,000 = 13,125 -> 2,625.00 recognized on Nov 2.
    November has no new cost, so its close recognizes exactly the catch-up: 2,625.00
    (it said 0 before).
    """
    opportunity_id, lines = await copy_of_the_us01_deal(stack, sf, "Catch-up in the period")
    ff = lines["fixed_fee"]
    await sf.update("OpportunityLineItem", ff, {"D2R_Estimate_At_Completion__c": 80000})
    await book(stack, sf, opportunity_id)
    engagement = await reach(stack, opportunity_id, "IN_DELIVERY", within=60)
    ada = next(c for c in (await seed_info(stack))["consultants"] if c["name"] == "Ada Lovelace")
    assert Decimal(str(ada["cost_rate"])) == Decimal(175)
    await sf.create(
        "pse__Timecard_Header__c",
        {
            "pse__Project__c": engagement["project_id"],
            "pse__Resource__c": ada["id"],
            "pse__Start_Date__c": "2026-10-05",
            "pse__End_Date__c": "2026-10-11",
            "pse__Total_Hours__c": 40,
            "pse__Status__c": "Approved",
            "pse__Approved__c": True,
            "pse__Billable__c": True,
            "D2R_Contract_Line_Id__c": ff,
        },
    )
    october = await stack.api.post(f"/v1/engagements/{opportunity_id}/periods/2026-10/close", headers=FINANCE)
    assert october.status_code == 200, october.text
    assert Decimal(october.json()["recognized"]["amount"]) == Decimal("10500.00")

    requested = await stack.api.post(
        f"/v1/engagements/{opportunity_id}/amendments",
        headers=SALES,
        json={
            "amendment": {
                "amendment_id": f"AM-CU-{opportunity_id}",
                "effective_date": "2026-11-02",
                "treatment": "cumulative_catch_up",
                "reason": "scope extension",
                "changes": [{"contract_line_id": ff, "price": {"amount": "150000", "currency": "USD"}}],
            }
        },
    )
    assert requested.status_code == 202, requested.text
    approvals = {a["approval_id"]: a for a in (await view(stack, opportunity_id))["approvals"]}
    for approval_id in requested.json()["approval_ids"]:
        token = ROLE_TOKENS[approvals[approval_id]["approver_roles"][0]]
        decided = await stack.api.post(
            f"/v1/engagements/{opportunity_id}/approvals/{approval_id}", json={"decision": "approve"}, headers=token
        )
        assert decided.status_code == 200, decided.text

    async def applied() -> dict[str, Any] | None:
        v = await view(stack, opportunity_id)
        return v if [c["status"] for c in v["changes"]] == ["applied"] else None

    await eventually(applied, within=60)
    november = await stack.api.post(f"/v1/engagements/{opportunity_id}/periods/2026-11/close", headers=FINANCE)
    assert november.status_code == 200, november.text
    assert Decimal(november.json()["recognized"]["amount"]) == Decimal("2625.00")
    final = await view(stack, opportunity_id)
    assert Decimal(final["amounts"]["recognized"]["amount"]) == Decimal("13125.00")
    assert any("2026-11 closed" in t["note"] and "recognized 2625.00 USD" in t["note"] for t in final["timeline"])
