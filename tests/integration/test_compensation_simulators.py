"""Compensation against the real simulators: a provisioning or amendment step whose vendor
call is refused for good (the simulators' `reject` fault, a 400 validation error) undoes
the earlier steps exactly once, leaves nothing behind in the CRM, PSA or ERP, and a retry
after the fix provisions exactly one project and one sales order.

Each case books its own fresh opportunity (a copy of the seeded US01 fixed fee + T&M deal,
written through the Salesforce API), so the cases and the other integration tests never
share an engagement or a vendor record."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connectors.salesforce.client import SalesforceClient, SalesforceConfig
from tests.integration.conftest import Stack, eventually
from tests.integration.test_engagement_path import records, seed_info

pytestmark = pytest.mark.integration

SALES = {"Authorization": "Bearer dev-sales-ops"}
DELIVERY = {"Authorization": "Bearer dev-delivery-ops"}
FINANCE = {"Authorization": "Bearer dev-finance"}
AUDITOR = {"Authorization": "Bearer dev-auditor"}
OPPORTUNITY_FIELDS = (
    "AccountId",
    "CloseDate",
    "CurrencyIsoCode",
    "Type",
    "D2R_Legal_Entity__c",
    "D2R_Billing_Terms__c",
    "D2R_Delivery_Region__c",
    "D2R_Service_Package__c",
    "D2R_Contract_Start__c",
    "D2R_Contract_End__c",
)
LINE_FIELDS = (
    "Product2Id",
    "Quantity",
    "UnitPrice",
    "D2R_Billing_Model__c",
    "D2R_Revenue_Method__c",
    "D2R_Role__c",
    "D2R_Hours__c",
    "Description",
)


@pytest.fixture
async def sf(stack: Stack) -> AsyncIterator[SalesforceClient]:
    client = SalesforceClient(
        SalesforceConfig(base_url=stack.sims["salesforce"].url, client_id="d2r-dev", client_secret="d2r-dev-secret")
    )
    yield client
    await client.aclose()


@pytest.fixture(autouse=True)
async def no_faults_left(stack: Stack) -> AsyncIterator[None]:
    yield
    for sim in stack.sims.values():  # a failed case must not refuse calls of the next test
        async with httpx.AsyncClient(base_url=sim.url) as http:
            await http.post("/__admin/faults", json={"reject": []})


async def copy_of_the_us01_deal(stack: Stack, sf: SalesforceClient, name: str) -> tuple[str, dict[str, str]]:
    """A new opportunity, still in negotiation, with the seeded US01 deal's terms and lines;
    returns its id and its line ids by billing model."""
    template = (await seed_info(stack))["opportunities"]["valid"]["us01_fixed_fee_and_tm"]
    source = next(o for o in await records(stack, "salesforce", "Opportunity") if o["Id"] == template)
    opportunity_id = await sf.create(
        "Opportunity",
        {**{k: source.get(k) for k in OPPORTUNITY_FIELDS}, "Name": name, "StageName": "Negotiation/Review"},
    )
    lines = {}
    for line in [
        x for x in await records(stack, "salesforce", "OpportunityLineItem") if x["OpportunityId"] == template
    ]:
        line_id = await sf.create(
            "OpportunityLineItem", {**{k: line.get(k) for k in LINE_FIELDS}, "OpportunityId": opportunity_id}
        )
        lines[line["D2R_Billing_Model__c"]] = line_id
    return opportunity_id, lines


async def book(stack: Stack, sf: SalesforceClient, opportunity_id: str) -> None:
    """Closed Won (only now that its lines exist, so the closed-won webhook never starts an
    engagement on a deal without lines), and the engagement started."""
    await sf.update("Opportunity", opportunity_id, {"StageName": "Closed Won"})
    started = await stack.api.post("/v1/engagements", json={"opportunity_id": opportunity_id}, headers=SALES)
    assert started.status_code in (200, 202), started.text  # 200: the closed-won webhook was first


async def admin(stack: Stack, system: str, method: str, path: str, body: Any = None) -> Any:
    async with httpx.AsyncClient(base_url=stack.sims[system].url) as http:
        response = await http.request(method, path, json=body)
        response.raise_for_status()
        return response.json()


async def refuse(stack: Stack, system: str, rule: dict[str, Any]) -> None:
    await admin(stack, system, "POST", "/__admin/faults", {"reject": [{**rule, "message": "refused by the test"}]})


async def refusals(stack: Stack, system: str) -> list[int]:
    counts: list[int] = (await admin(stack, system, "GET", "/__admin/faults"))["rejected"]
    return counts


async def view(stack: Stack, opportunity_id: str) -> dict[str, Any]:
    response = await stack.api.get(f"/v1/engagements/{opportunity_id}", headers=AUDITOR)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def in_stage(stack: Stack, opportunity_id: str, stage: str) -> dict[str, Any] | None:
    response = await stack.api.get(f"/v1/engagements/{opportunity_id}", headers=AUDITOR)
    if response.status_code != 200:
        return None
    body: dict[str, Any] = response.json()
    return body if body["stage"] == stage else None


async def reach(stack: Stack, opportunity_id: str, stage: str, within: float = 30) -> dict[str, Any]:
    try:
        found: dict[str, Any] = await eventually(lambda: in_stage(stack, opportunity_id, stage), within=within)
    except AssertionError:
        response = await stack.api.get(f"/v1/engagements/{opportunity_id}", headers=AUDITOR)
        raise AssertionError(f"not {stage} within {within}s: {response.status_code} {response.text[:3000]}") from None
    return found


async def activities_scheduled(stack: Stack, opportunity_id: str) -> Counter[str]:
    """How often the engagement scheduled each activity (a retry of an activity is not a
    new scheduling: a compensation that ran once is scheduled once)."""
    history = await stack.client.get_workflow_handle(f"engagement-{opportunity_id}").fetch_history()
    return Counter(
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    )


async def psa_left(stack: Stack, opportunity_id: str) -> dict[str, list[str]]:
    """Every PSA record provisioning writes for the opportunity: the project (found by its
    opportunity) and its milestones and resource requests (found by their external ids)."""
    key = f"d2r:engagement-{opportunity_id}:project"
    out = {
        "projects": [
            p["Id"]
            for p in await records(stack, "salesforce", "pse__Proj__c")
            if p.get("pse__Opportunity__c") == opportunity_id
        ]
    }
    for child in ("pse__Milestone__c", "pse__Resource_Request__c"):
        out[child] = [
            r["Id"]
            for r in await records(stack, "salesforce", child)
            if str(r.get("D2R_External_Id__c") or "").startswith(key) or r.get("pse__Project__c") in out["projects"]
        ]
    return out


async def sales_orders(stack: Stack, opportunity_id: str) -> list[dict[str, Any]]:
    return [
        o
        for o in await records(stack, "netsuite", "salesOrder")
        if o.get("custbody_d2r_opportunity_id") == opportunity_id
    ]


async def opportunity(stack: Stack, opportunity_id: str) -> dict[str, Any]:
    return next(o for o in await records(stack, "salesforce", "Opportunity") if o["Id"] == opportunity_id)


async def no_duplicates(stack: Stack) -> None:
    for system in ("salesforce", "netsuite"):
        found = await admin(stack, system, "GET", "/__admin/duplicates")
        assert found["count"] == 0, (system, found)


def status_name(record: dict[str, Any]) -> str:
    status = record.get("status")
    return str(status.get("refName") if isinstance(status, dict) else status)


# step refused -> (simulator, reject rule, undos expected once each)
PROVISIONING_CASES: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    # The last write of the PSA step (a resource request): the project and its milestones
    # already exist when it is refused, so the undo has something to remove.
    "psa.create_project": (
        "salesforce",
        {"method": "PATCH", "path": "/sobjects/pse__Resource_Request__c/D2R_External_Id__c/d2r:engagement-{opp}:"},
        ["psa.remove_project"],
    ),
    "erp.create_sales_order": (
        "netsuite",
        {"method": "PUT", "path": "/salesOrder/eid:d2r:engagement-{opp}:"},
        ["erp.cancel_sales_order", "psa.remove_project"],
    ),
    # Only the forward write-back ("In Delivery"), not the undo that clears the links.
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


@pytest.mark.parametrize("step", list(PROVISIONING_CASES))
async def test_a_provisioning_step_refused_for_good_is_undone_and_a_retry_provisions_once(
    stack: Stack, sf: SalesforceClient, step: str
) -> None:
    system, rule, undos = PROVISIONING_CASES[step]
    opportunity_id, _ = await copy_of_the_us01_deal(stack, sf, f"Compensation case {step}")
    await refuse(
        stack, system, {k: (v.replace("{opp}", opportunity_id) if isinstance(v, str) else v) for k, v in rule.items()}
    )
    await book(stack, sf, opportunity_id)

    stuck = await reach(stack, opportunity_id, "NEEDS_ATTENTION")
    assert "VendorValidationError" in (stuck["failure"] or ""), stuck["failure"]
    assert "refused by the test" in stuck["failure"]
    assert stuck["project_id"] is None and stuck["contract_id"] is None
    # Refused once: a validation error is not retried.
    assert await refusals(stack, system) == [1]

    # Nothing of the earlier steps is left behind.
    assert await psa_left(stack, opportunity_id) == {
        "projects": [],
        "pse__Milestone__c": [],
        "pse__Resource_Request__c": [],
    }
    orders = await sales_orders(stack, opportunity_id)
    if "erp.cancel_sales_order" in undos and step != "erp.create_sales_order":
        # The order existed: the undo closes it (NetSuite keeps transactions; nothing bills from it).
        assert len(orders) == 1
        assert status_name(orders[0]) == "Closed" and orders[0].get("custbody_d2r_cancelled") is True
    else:
        assert orders == []
    opp = await opportunity(stack, opportunity_id)
    assert opp.get("pse__Primary_Project__c") is None and opp.get("D2R_Contract_Id__c") is None
    if step == "crm.write_links":
        assert opp.get("D2R_Engagement_Status__c") == "Provisioning undone"
    await no_duplicates(stack)

    # Each undo ran exactly once; undos of steps that never started did not run.
    scheduled = await activities_scheduled(stack, opportunity_id)
    for undo in ("psa.remove_project", "erp.cancel_sales_order"):
        assert scheduled[undo] == (1 if undo in undos else 0), (undo, scheduled)
    assert scheduled["crm.write_links"] == (2 if step == "crm.write_links" else 0), scheduled
    if step != "crm.write_links":  # (that one's undo is the same activity, counted above)
        assert scheduled[step] == 1, scheduled

    # The fix: lift the refusal and retry. Exactly one project and one sales order.
    await admin(stack, system, "POST", "/__admin/faults", {"reject": []})
    retried = await stack.api.post(f"/v1/engagements/{opportunity_id}/retry", headers=DELIVERY)
    assert retried.status_code == 202, retried.text
    done = await reach(stack, opportunity_id, "IN_DELIVERY")
    left = await psa_left(stack, opportunity_id)
    assert left["projects"] == [done["project_id"]]
    assert left["pse__Milestone__c"] and len(left["pse__Resource_Request__c"]) == 1, left
    orders = await sales_orders(stack, opportunity_id)
    assert [str(o["id"]) for o in orders] == [done["contract_id"]]
    opp = await opportunity(stack, opportunity_id)
    assert opp["pse__Primary_Project__c"] == done["project_id"]
    assert opp["D2R_Contract_Id__c"] == done["contract_id"]
    assert opp["D2R_Engagement_Status__c"] == "In Delivery"
    await no_duplicates(stack)
    # The order the engagement bills from is open again (the undo had closed it).
    assert status_name(orders[0]) != "Closed" and not orders[0].get("custbody_d2r_cancelled")


ROLE_TOKENS = {"delivery_ops": DELIVERY, "finance": FINANCE}


async def test_an_amendment_whose_crm_write_is_refused_restores_the_psa_budget_and_the_order_lines(
    stack: Stack, sf: SalesforceClient
) -> None:
    opportunity_id, lines = await copy_of_the_us01_deal(stack, sf, "Compensation case amendment")
    await book(stack, sf, opportunity_id)
    engagement = await reach(stack, opportunity_id, "IN_DELIVERY")
    project_before = next(
        p for p in await records(stack, "salesforce", "pse__Proj__c") if p["Id"] == engagement["project_id"]
    )
    order_before = (await sales_orders(stack, opportunity_id))[0]
    # Only the new contract value (T&M 50,000 -> 60,000: 170,000 -> 180,000), not the undo writing the old one back.
    await refuse(
        stack,
        "salesforce",
        {
            "method": "PATCH",
            "path": f"/sobjects/Opportunity/{opportunity_id}$",
            "body": r'"D2R_Contract_Value__c":\s*"?180000',
        },
    )
    amendment_id = f"AM-{opportunity_id}"
    requested = await stack.api.post(
        f"/v1/engagements/{opportunity_id}/amendments",
        headers=SALES,
        json={
            "amendment": {
                "amendment_id": amendment_id,
                "effective_date": "2026-12-15",
                "treatment": "prospective",
                "reason": "more migration hours",
                "changes": [
                    {"contract_line_id": lines["time_and_materials"], "price": {"amount": "60000", "currency": "USD"}}
                ],
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

    async def failed() -> dict[str, Any] | None:
        v = await view(stack, opportunity_id)
        return v if [c["status"] for c in v["changes"]] == ["failed"] else None

    after = await eventually(failed, within=30)
    change = after["changes"][0]
    assert "VendorValidationError" in change["detail"] and "undo failures" not in change["detail"], change
    assert after["stage"] == "IN_DELIVERY" and after["contract_value"] == engagement["contract_value"]
    assert await refusals(stack, "salesforce") == [1]

    # The PSA budget and end date, the sales order lines and the CRM value are as before.
    project = next(p for p in await records(stack, "salesforce", "pse__Proj__c") if p["Id"] == engagement["project_id"])
    assert Decimal(str(project["D2R_Budget__c"])) == Decimal("170000")
    assert project["D2R_Last_Change_Id__c"] == f"{amendment_id}:undo"
    assert project["pse__End_Date__c"] == project_before["pse__End_Date__c"]
    order = (await sales_orders(stack, opportunity_id))[0]

    def order_lines(record: dict[str, Any]) -> list[tuple[str, Decimal]]:
        items = record["item"]["items"] if isinstance(record.get("item"), dict) else record["item"]
        return sorted((i["custcol_d2r_contract_line_id"], Decimal(str(i["amount"]))) for i in items)

    assert order_lines(order) == order_lines(order_before)
    assert Decimal(str(order_lines(order)[0][1] + order_lines(order)[1][1])) == Decimal("170000")
    assert Decimal(str((await opportunity(stack, opportunity_id))["D2R_Contract_Value__c"])) == Decimal("170000")
    await no_duplicates(stack)

    # Each forward step ran once and each undo once; nothing was posted to the ledger.
    scheduled = await activities_scheduled(stack, opportunity_id)
    assert scheduled["psa.apply_change"] == 2, scheduled
    assert scheduled["erp.update_sales_order"] == 2, scheduled
    assert scheduled["crm.set_contract_value"] == 2, scheduled
    assert scheduled["erp.post_documents"] == 0 and scheduled["erp.reverse_journal"] == 0, scheduled


async def test_a_credit_memo_whose_psa_release_is_refused_is_voided_in_the_erp(
    stack: Stack, sf: SalesforceClient
) -> None:
    opportunity_id, lines = await copy_of_the_us01_deal(stack, sf, "Compensation case credit memo")
    await book(stack, sf, opportunity_id)
    engagement = await reach(stack, opportunity_id, "IN_DELIVERY")
    # A consultant's approved week on the T&M line, billed by the engagement's own close.
    consultant = next(c for c in (await seed_info(stack))["consultants"] if c["home_legal_entity"] == "US01")
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
            "D2R_Contract_Line_Id__c": lines["time_and_materials"],
        },
    )
    closed = await stack.api.post(f"/v1/engagements/{opportunity_id}/periods/2026-10/close", headers=FINANCE)
    assert closed.status_code == 200, closed.text
    invoice = closed.json()["invoices"][0]
    erp_invoice = next(
        i for i in await records(stack, "netsuite", "invoice") if i.get("externalId") == invoice["invoice_id"]
    )

    # A billing correction credits the whole line and releases its time for re-billing;
    # the PSA refuses the release (pse__Billed__c back to false).
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
    for approval_id in requested.json()["approval_ids"]:
        decided = await stack.api.post(
            f"/v1/engagements/{opportunity_id}/approvals/{approval_id}", json={"decision": "approve"}, headers=FINANCE
        )
        assert decided.status_code == 200, decided.text

    async def failed() -> dict[str, Any] | None:
        v = await view(stack, opportunity_id)
        return v if [c["status"] for c in v["changes"]] == ["failed"] else None

    after = await eventually(failed, within=30)
    assert "VendorValidationError" in after["changes"][0]["detail"], after["changes"][0]
    assert await refusals(stack, "salesforce") == [1]
    # The ERP credit memo was posted, then voided: none left, the invoice open in full again.
    assert [m for m in await records(stack, "netsuite", "creditMemo") if m.get("externalId") == memo_id] == []
    again = next(i for i in await records(stack, "netsuite", "invoice") if i["id"] == erp_invoice["id"])
    assert Decimal(str(again["amountRemaining"])) == Decimal(str(erp_invoice["total"]))
    # The time stays billed in the PSA; the engagement's books show no credit.
    cards = [
        c
        for c in await records(stack, "salesforce", "pse__Timecard_Header__c")
        if c.get("pse__Project__c") == engagement["project_id"]
    ]
    assert cards and all(c["pse__Billed__c"] for c in cards)
    assert Decimal(after["amounts"]["credited"]["amount"]) == 0
    scheduled = await activities_scheduled(stack, opportunity_id)
    assert scheduled["erp.void_credit_memo"] == 1, scheduled
    await no_duplicates(stack)
