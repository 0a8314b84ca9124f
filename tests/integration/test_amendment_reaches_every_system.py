"""A price amendment reaches every system, through the API and the simulators as processes:
the PSA's milestones, the ERP's sales order and the CRM's contract value all show the amended
contract (issue 15, item 2: the PSA milestones once kept summing to the old price).

Figures (hand-computed): a copy of the seeded US01 deal, FF 120,000.00 USD (cost-to-cost,
estimate at completion 80,000) + T&M 50,000.00 = 170,000.00. An amendment effective 15 Dec
2026 raises FF to 150,000.00 (prospective): the FF line's PSA milestones sum to 150,000.00,
each keeping its share of the line (scaled by 150/120); the sales order lines are 150,000.00
and 50,000.00; the CRM's contract value is 200,000.00.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from connectors.salesforce import SalesforceClient
from tests.integration.conftest import Stack, eventually
from tests.integration.test_compensation_simulators import (
    ROLE_TOKENS,
    SALES,
    book,
    copy_of_the_us01_deal,
    opportunity,
    reach,
    sales_orders,
    sf,  # noqa: F401  (the fixture)
    view,
)
from tests.integration.test_engagement_path import records

pytestmark = pytest.mark.integration


async def test_a_price_amendment_reaches_the_psa_milestones_the_sales_order_and_the_crm(
    stack: Stack,
    sf: SalesforceClient,  # noqa: F811
) -> None:
    opportunity_id, lines = await copy_of_the_us01_deal(stack, sf, "Amendment reaches every system")
    ff = lines["fixed_fee"]
    await sf.update("OpportunityLineItem", ff, {"D2R_Estimate_At_Completion__c": 80000})  # cost-to-cost needs one
    await book(stack, sf, opportunity_id)
    engagement = await reach(stack, opportunity_id, "IN_DELIVERY", within=60)

    async def milestones() -> list[dict[str, Any]]:
        return [
            m
            for m in await records(stack, "salesforce", "pse__Milestone__c")
            if m.get("pse__Project__c") == engagement["project_id"]
        ]

    before = {m["Id"]: Decimal(str(m["pse__Milestone_Amount__c"])) for m in await milestones()}
    assert before and sum(before.values()) == Decimal("120000")

    requested = await stack.api.post(
        f"/v1/engagements/{opportunity_id}/amendments",
        headers=SALES,
        json={
            "amendment": {
                "amendment_id": f"AM-PRICE-{opportunity_id}",
                "effective_date": "2026-12-15",
                "treatment": "prospective",
                "reason": "two more markets",
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

    try:
        after = await eventually(applied, within=60)
    except AssertionError:
        raise AssertionError(f"not applied: {(await view(stack, opportunity_id))['changes']}") from None
    assert Decimal(after["contract_value"]["amount"]) == Decimal("200000")

    # The PSA: the FF line's milestones sum to the new price, each keeping its share.
    now = {m["Id"]: Decimal(str(m["pse__Milestone_Amount__c"])) for m in await milestones()}
    assert set(now) == set(before)
    assert sum(now.values()) == Decimal("150000")
    assert {k: v * Decimal(150) / Decimal(120) for k, v in before.items()} == now

    # The ERP: the sales order's lines are the amended contract.
    [order] = await sales_orders(stack, opportunity_id)
    items = order["item"]["items"] if isinstance(order.get("item"), dict) else order["item"]
    assert sorted((i["custcol_d2r_contract_line_id"], Decimal(str(i["amount"]))) for i in items) == sorted(
        [(ff, Decimal("150000")), (lines["time_and_materials"], Decimal("50000"))]
    )
    # The CRM: the opportunity's contract value.
    assert Decimal(str((await opportunity(stack, opportunity_id))["D2R_Contract_Value__c"])) == Decimal("200000")
