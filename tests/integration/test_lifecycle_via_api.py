"""A deal's delivery through the API, over the real vendor protocols: time in the PSA, a
period close that invoices in the ERP, a payment in the ERP that the next close reads back
(CRM "Collected"), and a closed-won webhook that starts an engagement with no manual call."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from decimal import Decimal
from typing import Any

import pytest

from api.webhooks import DEV_WEBHOOK_SECRET
from connectors.netsuite.client import NetSuiteClient, NetSuiteConfig
from connectors.salesforce.client import SalesforceClient, SalesforceConfig, soql_quote
from contracts import search_attributes as sa
from simulators.devkeys import DEV_KEY_ID
from tests.integration.conftest import Stack, eventually
from tests.integration.erps import (  # noqa: F401 - the fixtures the ERP parameter needs
    ErpStack,
    d365_simulators_fixture,
    d365_stack_fixture,
    erp_stack_fixture,
)
from tests.integration.test_engagement_path import seed_info
from tests.vendor_auth import private_key_pem

pytestmark = pytest.mark.integration

SALES = {"Authorization": "Bearer dev-sales-ops"}
FINANCE = {"Authorization": "Bearer dev-finance"}
AUDITOR = {"Authorization": "Bearer dev-auditor"}
UK_TM = "006Dd0000000002IAA"  # seeded: UK01, GBP, T&M
ALAN = "003Dd0000000003IAA"  # seeded consultant: Senior Consultant, UK01


def salesforce(stack: Stack) -> SalesforceClient:
    return SalesforceClient(
        SalesforceConfig(base_url=stack.sims["salesforce"].url, client_id="d2r-dev", client_secret="d2r-dev-secret")
    )


def netsuite(stack: Stack) -> NetSuiteClient:
    return NetSuiteClient(
        NetSuiteConfig(
            base_url=stack.sims["netsuite"].url,
            client_id="d2r-dev",
            certificate_id=DEV_KEY_ID,
            private_key=private_key_pem(),
        )
    )


async def view(stack: Stack, opportunity_id: str) -> dict[str, Any]:
    response = await stack.api.get(f"/v1/engagements/{opportunity_id}", headers=AUDITOR)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_time_is_invoiced_in_the_erp_and_the_payment_reaches_the_engagement(erp_stack: ErpStack) -> None:
    """The UK01 deal on NetSuite, then on Dynamics 365 (its entity routed there by
    configuration): the same API calls, the same figures, each ERP read in its own protocol."""
    stack, erp = erp_stack.stack, erp_stack.probe
    started = await stack.api.post("/v1/engagements", json={"opportunity_id": UK_TM}, headers=SALES)
    assert started.status_code in (200, 202), started.text

    async def in_delivery() -> dict[str, Any] | None:
        v = await view(stack, UK_TM)
        return v if v["stage"] == "IN_DELIVERY" else None

    engagement = await eventually(in_delivery)
    sf = salesforce(stack)
    try:
        line = (
            await sf.query_all(
                f"SELECT Id, D2R_Role__c FROM OpportunityLineItem WHERE OpportunityId = {soql_quote(UK_TM)}"
            )
        )[0]
        project = await sf.get("pse__Proj__c", engagement["project_id"])
        # The view hands out the line ids (before any close) and the next actions' links.
        assert line["Id"] in {ln["line_id"] for ln in engagement["contract_lines"]}
        assert engagement["lines"] == [] and engagement["invoices"] == []
        assert engagement["waiting_for"]["kind"] == "period_close"
        next_close = engagement["links"]["close_period"]
        assert next_close["href"] == f"/v1/engagements/{UK_TM}/periods/{engagement['waiting_for']['period']}/close"
        assert "finance" in next_close["roles"] and "credit_memos" not in engagement["links"]
        # The consultant's own role on the day, and the project's region, pick the rate.
        alan = await sf.get("Contact", ALAN)
        cards = await sf.query_all(
            "SELECT pse__Suggested_Bill_Rate__c, pse__Region__c FROM pse__Rate_Card__c "
            f"WHERE pse__Role__c = {soql_quote(alan['pse__Resource_Role__c'])} AND CurrencyIsoCode = 'GBP'"
        )
        regional = [c for c in cards if c.get("pse__Region__c") == project.get("pse__Region__c")]
        rate = (regional or [c for c in cards if not c.get("pse__Region__c")])[0]
        # A consultant's approved week in the PSA, as Certinia holds it.
        await sf.create(
            "pse__Timecard_Header__c",
            {
                "pse__Project__c": engagement["project_id"],
                "pse__Resource__c": ALAN,
                "pse__Start_Date__c": "2026-10-05",
                "pse__End_Date__c": "2026-10-11",
                "pse__Total_Hours__c": 12.5,
                "pse__Status__c": "Approved",
                "pse__Approved__c": True,
                "pse__Billable__c": True,
                "D2R_Contract_Line_Id__c": line["Id"],
            },
        )

        closed = await stack.api.post(f"/v1/engagements/{UK_TM}/periods/2026-10/close", headers=FINANCE)
        assert closed.status_code == 200, closed.text
        result = closed.json()
        expected_net = Decimal("12.5") * Decimal(str(rate["pse__Suggested_Bill_Rate__c"]))
        assert Decimal(result["billed"]["amount"]) == expected_net
        assert len(result["invoices"]) == 1
        invoice = result["invoices"][0]
        # The ERP holds exactly that invoice, keyed by d2r's id, with the same total, and the
        # sales order provisioning wrote for the deal.
        total = await erp.invoice_total(invoice["invoice_id"], invoice["erp_invoice_id"])
        assert total == Decimal(invoice["total"]["amount"])
        assert await erp.order_of(UK_TM) is not None

        # The invoice, its lines and what may still be credited, by the ids a credit memo names.
        closed_view = await view(stack, UK_TM)
        [listed] = [i for i in closed_view["invoices"] if i["invoice_id"] == invoice["invoice_id"]]
        assert listed["erp_invoice_id"] == invoice["erp_invoice_id"] and listed["lines"]
        assert all(ln["creditable"] == ln["net"] for ln in listed["lines"])
        assert closed_view["links"]["credit_memos"]["href"] == f"/v1/engagements/{UK_TM}/credit-memos"

        # Re-closing the period is harmless: same result, nothing posted twice.
        again = await stack.api.post(f"/v1/engagements/{UK_TM}/periods/2026-10/close", headers=FINANCE)
        assert again.json()["invoices"] == result["invoices"]

        async def psa_marked_billed() -> bool:
            rows = await sf.query_all(
                "SELECT Id, pse__Billed__c FROM pse__Timecard_Header__c "
                f"WHERE pse__Project__c = {soql_quote(engagement['project_id'])}"
            )
            return bool(rows) and all(r["pse__Billed__c"] for r in rows)

        assert await eventually(psa_marked_billed)

        # The customer pays in the ERP (NetSuite's webhook reaches d2r and is noted; D365 sends
        # none); the receipt reaches the engagement with the next close, which reads the ERP.
        await erp.pay(invoice["erp_invoice_id"], total, "2026-11-20")
        november = await stack.api.post(f"/v1/engagements/{UK_TM}/periods/2026-11/close", headers=FINANCE)
        assert november.status_code == 200, november.text

        async def collected() -> dict[str, Any] | None:
            v = await view(stack, UK_TM)
            amounts = v.get("amounts") or {}
            return v if Decimal((amounts.get("collected") or {}).get("amount", "0")) > 0 else None

        paid = await eventually(collected, within=60)
        assert Decimal(paid["amounts"]["collected"]["amount"]) == Decimal(invoice["total"]["amount"])
        assert Decimal(paid["amounts"]["outstanding"]["amount"]) == 0

        async def crm_says_collected() -> bool:
            rows = await sf.query_all(
                f"SELECT D2R_Billing_Status__c, D2R_Collected_Amount__c FROM Opportunity WHERE Id = {soql_quote(UK_TM)}"
            )
            return rows[0].get("D2R_Billing_Status__c") == "Collected"

        assert await eventually(crm_says_collected)
    finally:
        await sf.aclose()
        await erp.aclose()


def signed(event: dict[str, Any], event_id: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event).encode()
    ts = str(int(time.time()))
    secret = base64.b64decode(DEV_WEBHOOK_SECRET.removeprefix("whsec_"))
    mac = hmac.new(secret, f"{event_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return body, {
        "webhook-id": event_id,
        "webhook-timestamp": ts,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
        "content-type": "application/json",
    }


async def test_closed_won_in_the_crm_starts_the_engagement_without_a_manual_call(stack: Stack) -> None:
    sf = salesforce(stack)
    try:
        opportunity_id = (await seed_info(stack))["opportunities"]["pipeline"][0]
        await sf.update("Opportunity", opportunity_id, {"StageName": "Closed Won"})
    finally:
        await sf.aclose()

    async def started() -> dict[str, Any] | None:
        response = await stack.api.get(f"/v1/engagements/{opportunity_id}", headers=AUDITOR)
        return response.json() if response.status_code == 200 else None

    engagement = await eventually(started, within=60)
    assert engagement["workflow_id"] == f"engagement-{opportunity_id}"
    # Found by the same filters as an engagement the API started (issue 20: it was not).
    listed = [wf async for wf in stack.client.list_workflows(f"D2ROpportunityId = '{opportunity_id}'")]
    assert [wf.id for wf in listed] == [f"engagement-{opportunity_id}"]
    described = await stack.client.get_workflow_handle(f"engagement-{opportunity_id}").describe()
    assert described.typed_search_attributes.get(sa.STAGE) is not None
    assert "Closed Won webhook" in (await described.static_details() or "")


async def test_webhooks_are_verified_and_a_replay_is_a_duplicate(stack: Stack) -> None:
    event = {
        "type": "milestone.completed",
        "id": "evt-replay-1",
        "data": {"milestone_id": "a0M-x", "project_id": "a0P-none"},
    }
    body, headers = signed(event, "evt-replay-1")
    first = await stack.api.post("/v1/webhooks/salesforce", content=body, headers=headers)
    assert first.status_code == 202 and first.json()["status"] == "accepted"
    second = await stack.api.post("/v1/webhooks/salesforce", content=body, headers=headers)
    assert second.json()["status"] == "duplicate"
    forged = await stack.api.post("/v1/webhooks/salesforce", content=body.replace(b"a0M-x", b"a0M-y"), headers=headers)
    assert forged.status_code == 401
