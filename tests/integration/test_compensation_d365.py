"""Provisioning compensation with the books in Dynamics 365: each D365 step of the saga is
refused for good in turn (the simulator's `reject` fault, a 400 with the infolog), the
earlier steps are undone exactly once and nothing is left in the CRM, PSA or D365 — and a
retry after the fix provisions exactly one project and one sales order.

Each case books its own copy of the seeded UK01 deal on the stack whose UK01 routes to D365
(tests/integration/erps.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from connectors.salesforce.client import SalesforceClient, SalesforceConfig
from tests.integration.conftest import Stack
from tests.integration.erps import d365_simulators_fixture, d365_stack_fixture  # noqa: F401 - fixtures
from tests.integration.test_compensation_simulators import (
    DELIVERY,
    LINE_FIELDS,
    OPPORTUNITY_FIELDS,
    activities_scheduled,
    admin,
    book,
    opportunity,
    psa_left,
    reach,
    refusals,
    refuse,
)
from tests.integration.test_engagement_path import records, seed_info

pytestmark = pytest.mark.integration


@pytest.fixture
async def d365_sf(d365_stack: Stack) -> AsyncIterator[SalesforceClient]:
    client = SalesforceClient(
        SalesforceConfig(
            base_url=d365_stack.sims["salesforce"].url, client_id="d2r-dev", client_secret="d2r-dev-secret"
        )
    )
    yield client
    await client.aclose()
    for sim in d365_stack.sims.values():  # a failed case must not refuse calls of the next test
        async with httpx.AsyncClient(base_url=sim.url) as http:
            await http.post("/__admin/faults", json={"reject": []})


async def copy_of_the_uk01_deal(stack: Stack, sf: SalesforceClient, name: str) -> str:
    template = (await seed_info(stack))["valid_closed_won"][1]  # Globex UK, UK01, GBP, T&M
    source = next(o for o in await records(stack, "salesforce", "Opportunity") if o["Id"] == template)
    assert source["D2R_Legal_Entity__c"] == "UK01"
    # its own customer too, so the customer step writes (creates) in every case
    account = next(a for a in await records(stack, "salesforce", "Account") if a["Id"] == source["AccountId"])
    account_id = await sf.create(
        "Account", {"Name": f"{account['Name']} ({name})", "BillingCountry": account.get("BillingCountry") or "GB"}
    )
    opportunity_id = await sf.create(
        "Opportunity",
        {
            **{k: source.get(k) for k in OPPORTUNITY_FIELDS},
            "AccountId": account_id,
            "Name": name,
            "StageName": "Negotiation/Review",
        },
    )
    for line in [
        x for x in await records(stack, "salesforce", "OpportunityLineItem") if x["OpportunityId"] == template
    ]:
        await sf.create(
            "OpportunityLineItem", {**{k: line.get(k) for k in LINE_FIELDS}, "OpportunityId": opportunity_id}
        )
    return opportunity_id


async def d365_orders(stack: Stack, opportunity_id: str) -> list[dict[str, Any]]:
    return [
        o
        for o in await records(stack, "dynamics", "SalesOrderHeadersV2")
        if o.get("D2ROpportunityId") == opportunity_id
    ]


# step refused -> (simulator, reject rule, undos expected once each)
CASES: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    # the first step: nothing before it to undo (the customer is master data, kept)
    "erp.upsert_customer": ("dynamics", {"method": "POST", "path": r"^/data/CustomersV3$"}, []),
    # the order and its lines are one $batch change set: refused whole
    "erp.create_sales_order": (
        "dynamics",
        {"method": "POST", "path": r"/data/\$batch", "body": "SalesOrderHeadersV2"},
        ["erp.cancel_sales_order", "psa.remove_project"],
    ),
    # after the order: its undo deletes the un-invoiced D365 order with its lines
    "crm.write_links": (
        "salesforce",
        {
            "method": "PATCH",
            "path": "/sobjects/Opportunity/{opp}$",
            "body": r'"D2R_Engagement_Status__c":\s*"In Delivery"',
        },
        ["crm.write_links", "erp.cancel_sales_order", "psa.remove_project"],
    ),
}


@pytest.mark.parametrize("step", list(CASES))
async def test_a_d365_provisioning_step_refused_for_good_is_undone_and_a_retry_provisions_once(
    d365_stack: Stack, d365_sf: SalesforceClient, step: str
) -> None:
    stack, sf = d365_stack, d365_sf
    system, rule, undos = CASES[step]
    opportunity_id = await copy_of_the_uk01_deal(stack, sf, f"D365 compensation case {step}")
    await refuse(stack, system, {k: v.replace("{opp}", opportunity_id) for k, v in rule.items()})
    await book(stack, sf, opportunity_id)

    stuck = await reach(stack, opportunity_id, "NEEDS_ATTENTION")
    assert "VendorValidationError" in (stuck["failure"] or ""), stuck["failure"]
    assert "refused by the test" in stuck["failure"]
    assert await refusals(stack, system) == [1]  # a validation error is not retried

    assert await psa_left(stack, opportunity_id) == {
        "projects": [],
        "pse__Milestone__c": [],
        "pse__Resource_Request__c": [],
    }
    assert await d365_orders(stack, opportunity_id) == []  # never written, or deleted by the undo
    numbers = {o["SalesOrderNumber"] for o in await records(stack, "dynamics", "SalesOrderHeadersV2")}
    orphans = [x for x in await records(stack, "dynamics", "SalesOrderLines") if x["SalesOrderNumber"] not in numbers]
    assert orphans == []  # an undone order takes its lines with it
    opp = await opportunity(stack, opportunity_id)
    assert opp.get("pse__Primary_Project__c") is None and opp.get("D2R_Contract_Id__c") is None
    for name in ("salesforce", "dynamics"):
        assert (await admin(stack, name, "GET", "/__admin/duplicates"))["count"] == 0
    scheduled = await activities_scheduled(stack, opportunity_id)
    for undo in ("psa.remove_project", "erp.cancel_sales_order"):
        assert scheduled[undo] == (1 if undo in undos else 0), (undo, scheduled)

    # The fix: lift the refusal and retry. Exactly one project and one D365 sales order.
    await admin(stack, system, "POST", "/__admin/faults", {"reject": []})
    retried = await stack.api.post(f"/v1/engagements/{opportunity_id}/retry", headers=DELIVERY)
    assert retried.status_code == 202, retried.text
    done = await reach(stack, opportunity_id, "IN_DELIVERY")
    assert (await psa_left(stack, opportunity_id))["projects"] == [done["project_id"]]
    [order] = await d365_orders(stack, opportunity_id)
    assert done["contract_id"] == f"uk01:{order['SalesOrderNumber']}" and order["SalesOrderStatus"] == "Backorder"
    lines = [
        x
        for x in await records(stack, "dynamics", "SalesOrderLines")
        if x["SalesOrderNumber"] == order["SalesOrderNumber"]
    ]
    assert len(lines) == 1  # the T&M line, once
    customers = [
        c for c in await records(stack, "dynamics", "CustomersV3") if c.get("D2RCrmAccountId") == opp["AccountId"]
    ]
    assert len(customers) == 1
    for name in ("salesforce", "dynamics"):
        assert (await admin(stack, name, "GET", "/__admin/duplicates"))["count"] == 0
