"""Provisioning compensation with the books in Dynamics 365: each D365 step of the saga is
refused for good in turn (the simulator's `reject` fault, a 400 with the infolog), the
earlier steps are undone exactly once and nothing is left in the CRM, PSA or D365 — and a
retry after the fix provisions exactly one project and one sales order.

Each case books its own copy of the seeded UK01 deal on the stack whose UK01 routes to D365
(tests/integration/erps.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connectors.salesforce.client import SalesforceClient, SalesforceConfig
from tests.integration.conftest import Stack, eventually
from tests.integration.erps import d365_simulators_fixture, d365_stack_fixture  # noqa: F401 - fixtures
from tests.integration.test_compensation_simulators import (
    DELIVERY,
    FINANCE,
    LINE_FIELDS,
    OPPORTUNITY_FIELDS,
    ROLE_TOKENS,
    SALES,
    activities_scheduled,
    admin,
    book,
    opportunity,
    psa_left,
    reach,
    refusals,
    refuse,
    view,
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


async def approve_all(stack: Stack, opportunity_id: str, approval_ids: list[str]) -> None:
    approvals = {a["approval_id"]: a for a in (await view(stack, opportunity_id))["approvals"]}
    for approval_id in approval_ids:
        token = ROLE_TOKENS[approvals[approval_id]["approver_roles"][0]]
        decided = await stack.api.post(
            f"/v1/engagements/{opportunity_id}/approvals/{approval_id}", json={"decision": "approve"}, headers=token
        )
        assert decided.status_code == 200, decided.text


async def failed_change(stack: Stack, opportunity_id: str) -> dict[str, Any]:
    async def failed() -> dict[str, Any] | None:
        v = await view(stack, opportunity_id)
        return v if [c["status"] for c in v["changes"]] == ["failed"] else None

    found: dict[str, Any] = await eventually(failed, within=30)
    return found


async def order_lines(stack: Stack, opportunity_id: str) -> list[tuple[str, Decimal]]:
    [order] = await d365_orders(stack, opportunity_id)
    lines = await records(stack, "dynamics", "SalesOrderLines")
    return sorted(
        (x["D2RContractLineId"], Decimal(x["LineAmount"]))
        for x in lines
        if x["SalesOrderNumber"] == order["SalesOrderNumber"]
    )


async def test_an_amendment_whose_crm_write_is_refused_restores_the_d365_order_lines(
    d365_stack: Stack, d365_sf: SalesforceClient
) -> None:
    stack, sf = d365_stack, d365_sf
    opportunity_id = await copy_of_the_uk01_deal(stack, sf, "D365 compensation case amendment")
    await book(stack, sf, opportunity_id)
    engagement = await reach(stack, opportunity_id, "IN_DELIVERY")
    before = await order_lines(stack, opportunity_id)
    [(line_id, amount)] = before
    assert amount == Decimal("45000")  # 300 h x 150
    # Only the new contract value (45,000 -> 50,000), not the undo writing the old one back.
    await refuse(
        stack,
        "salesforce",
        {
            "method": "PATCH",
            "path": f"/sobjects/Opportunity/{opportunity_id}$",
            "body": r'"D2R_Contract_Value__c":\s*"?50000',
        },
    )
    requested = await stack.api.post(
        f"/v1/engagements/{opportunity_id}/amendments",
        headers=SALES,
        json={
            "amendment": {
                "amendment_id": f"AM-{opportunity_id}",
                "effective_date": "2026-12-15",
                "treatment": "prospective",
                "reason": "more advisory hours",
                "changes": [{"contract_line_id": line_id, "price": {"amount": "50000", "currency": "GBP"}}],
            }
        },
    )
    assert requested.status_code == 202, requested.text
    await approve_all(stack, opportunity_id, requested.json()["approval_ids"])
    after = await failed_change(stack, opportunity_id)
    assert "VendorValidationError" in after["changes"][0]["detail"], after["changes"][0]
    assert after["stage"] == "IN_DELIVERY" and after["contract_value"] == engagement["contract_value"]
    # The D365 order's lines were replaced by the amendment, then put back by its undo.
    assert await order_lines(stack, opportunity_id) == before
    scheduled = await activities_scheduled(stack, opportunity_id)
    assert scheduled["erp.update_sales_order"] == 2 and scheduled["erp.post_documents"] == 0, scheduled
    for name in ("salesforce", "dynamics"):
        assert (await admin(stack, name, "GET", "/__admin/duplicates"))["count"] == 0


async def test_a_credit_memo_whose_psa_release_is_refused_is_undone_in_d365(
    d365_stack: Stack, d365_sf: SalesforceClient
) -> None:
    stack, sf = d365_stack, d365_sf
    opportunity_id = await copy_of_the_uk01_deal(stack, sf, "D365 compensation case credit memo")
    await book(stack, sf, opportunity_id)
    engagement = await reach(stack, opportunity_id, "IN_DELIVERY")
    [(line_id, _)] = await order_lines(stack, opportunity_id)
    consultant = next(c for c in (await seed_info(stack))["consultants"] if c["home_legal_entity"] == "UK01")
    await sf.create(
        "pse__Timecard_Header__c",
        {
            "pse__Project__c": engagement["project_id"],
            "pse__Resource__c": consultant["id"],
            "pse__Start_Date__c": "2026-10-05",
            "pse__End_Date__c": "2026-10-11",
            "pse__Monday_Hours__c": 8,
            "pse__Total_Hours__c": 8,
            "pse__Status__c": "Approved",
            "pse__Approved__c": True,
            "pse__Billable__c": True,
            "D2R_Contract_Line_Id__c": line_id,
        },
    )
    closed = await stack.api.post(f"/v1/engagements/{opportunity_id}/periods/2026-10/close", headers=FINANCE)
    assert closed.status_code == 200, closed.text
    invoice = closed.json()["invoices"][0]
    await refuse(
        stack, "salesforce", {"method": "PATCH", "path": "/composite/sobjects$", "body": r'"pse__Billed__c":\s*false'}
    )
    memo_id = f"CM-{opportunity_id}"
    requested = await stack.api.post(
        f"/v1/engagements/{opportunity_id}/credit-memos",
        headers=SALES,
        json={
            "credit_memo": {
                "credit_memo_id": memo_id,
                "invoice_id": invoice["invoice_id"],
                "memo_date": "2026-11-05",
                "reason": "hours booked on the wrong project",
                "lines": [{"invoice_line_id": f"{invoice['invoice_id']}:1", "price_concession": False}],
            }
        },
    )
    assert requested.status_code == 202, requested.text
    await approve_all(stack, opportunity_id, requested.json()["approval_ids"])
    after = await failed_change(stack, opportunity_id)
    assert "VendorValidationError" in after["changes"][0]["detail"], after["changes"][0]
    # D365 keeps posted documents: the credit note was posted and settled against the invoice,
    # then charged back by a free-text invoice for the same amount, once.
    headers = await records(stack, "dynamics", "FreeTextInvoiceHeaders")
    [credit] = [h for h in headers if h["D2RReference"].endswith(f":{memo_id}")]  # d2r's id: cm:<order>:<memo>
    [undo] = [h for h in headers if h["D2RReference"] == f"{credit['D2RReference']}:void"]
    total = Decimal(invoice["total"]["amount"])
    assert (Decimal(credit["TotalInvoiceAmount"]), Decimal(undo["TotalInvoiceAmount"])) == (-total, total)
    transactions = [
        t for t in await records(stack, "dynamics", "CustomerTransactions") if t["D2ROpportunityId"] == opportunity_id
    ]
    assert sum(Decimal(t["RemainingAmountCur"]) for t in transactions) == total  # what the customer owes: unchanged
    scheduled = await activities_scheduled(stack, opportunity_id)
    assert scheduled["erp.void_credit_memo"] == 1, scheduled
    assert Decimal(after["amounts"]["credited"]["amount"]) == 0
    for name in ("salesforce", "dynamics"):
        assert (await admin(stack, name, "GET", "/__admin/duplicates"))["count"] == 0
