"""A careless or hostile caller, over the real API against the dev server and simulators.

Every case from issue 13 (and the ones found on the way) is refused at the door with a
4xx problem+json that names the field, and afterwards: no workflow task is failing, no
document in the ERP simulator is dated outside the open window, and every engagement
the cases touched still answers GET within a second.

The engagement under attack is a fresh copy of the seeded US01 deal, in delivery, with one
invoice (a consultant's week closed in 2026-10), so its credit memos have a real line to
overreach."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest

from api.door import OpenWindow
from connectors.salesforce.client import SalesforceClient, SalesforceConfig
from tests.integration.conftest import Stack, eventually
from tests.integration.test_compensation_simulators import book, copy_of_the_us01_deal, reach
from tests.integration.test_engagement_path import records, seed_info
from tests.integration.test_lifecycle_via_api import signed
from tests.reporting.test_dashboard_browser import run_chromium

pytestmark = pytest.mark.integration

SALES = {"Authorization": "Bearer dev-sales-ops"}
DELIVERY = {"Authorization": "Bearer dev-delivery-ops"}
FINANCE = {"Authorization": "Bearer dev-finance"}
AUDITOR = {"Authorization": "Bearer dev-auditor"}
MISSING_OPPORTUNITY = "006ZZZZZZZZZZZZZZZ"
TOUCHED: set[str] = set()  # every engagement a case aimed at, checked at the end


def problem(response: httpx.Response, status: int, field: str) -> dict[str, Any]:
    """The refusal is `status`, problem+json, and names `field` (a suffix of a reported field)."""
    assert response.status_code == status, f"{response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    fields = [e["field"] for e in body.get("errors", [])]
    assert any(f == field or f.endswith("." + field) for f in fields), (field, body)
    assert body["title"] and body["status"] == status
    return body


@pytest.fixture(scope="module")
async def target(stack: Stack) -> AsyncIterator[dict[str, Any]]:
    """A fresh engagement in delivery with one invoice of 8 hours (period 2026-10)."""
    sf = SalesforceClient(
        SalesforceConfig(base_url=stack.sims["salesforce"].url, client_id="d2r-dev", client_secret="d2r-dev-secret")
    )
    try:
        opportunity_id, lines = await copy_of_the_us01_deal(stack, sf, "Bad input target")
        await book(stack, sf, opportunity_id)
        engagement = await reach(stack, opportunity_id, "IN_DELIVERY")
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
    finally:
        await sf.aclose()
    closed = await stack.api.post(f"/v1/engagements/{opportunity_id}/periods/2026-10/close", headers=FINANCE)
    assert closed.status_code == 200, closed.text
    invoice = closed.json()["invoices"][0]
    TOUCHED.add(opportunity_id)
    yield {"opportunity_id": opportunity_id, "invoice": invoice, "lines": lines}


async def view(stack: Stack, opportunity_id: str) -> dict[str, Any]:
    response = await stack.api.get(f"/v1/engagements/{opportunity_id}", headers=AUDITOR)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# ---- engagements and periods --------------------------------------------------------------------
async def test_a_missing_opportunity_is_404_with_the_crms_answer_and_starts_nothing(stack: Stack) -> None:
    response = await stack.api.post("/v1/engagements", json={"opportunity_id": MISSING_OPPORTUNITY}, headers=SALES)
    body = problem(response, 404, "opportunity_id")
    assert "does not exist" in body["crm_answer"], body
    listed = [w async for w in stack.client.list_workflows(f"WorkflowId = 'engagement-{MISSING_OPPORTUNITY}'")]
    assert listed == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"opportunity_id": "006Dd0000000002IAA", "stage": "CLOSED"}, "stage"),  # unknown field
        ({"opportunity_id": "not an id"}, "opportunity_id"),
        ({}, "opportunity_id"),
    ],
)
async def test_a_bad_start_body_is_422(stack: Stack, body: dict[str, Any], field: str) -> None:
    problem(await stack.api.post("/v1/engagements", json=body, headers=SALES), 422, field)


@pytest.mark.parametrize("period", ["2026-13", "2026-00", "0000-01", "2099-12", "1130-01", "9081-06"])
async def test_an_engagement_period_outside_the_open_window_is_422(
    stack: Stack, target: dict[str, Any], period: str
) -> None:
    response = await stack.api.post(
        f"/v1/engagements/{target['opportunity_id']}/periods/{period}/close", headers=FINANCE
    )
    problem(response, 422, "period")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"legal_entity": "DE01", "period": "2099-12"}, "period"),
        ({"legal_entity": "US01", "period": "0000-01"}, "period"),
        ({"legal_entity": "US01", "period": "2026-13"}, "period"),
        ({"legal_entity": "ZZ99", "period": "2026-11"}, "legal_entity"),
        ({"legal_entity": "XX01", "period": "2026-11"}, "legal_entity"),
        ({"legal_entity": "US01", "period": "2026-11", "force": True}, "force"),
    ],
)
async def test_a_month_end_close_outside_the_window_or_for_an_unknown_entity_is_422(
    stack: Stack, body: dict[str, Any], field: str
) -> None:
    problem(await stack.api.post("/v1/period-close", json=body, headers=FINANCE), 422, field)
    entity, period = body["legal_entity"], body["period"]
    started = [w async for w in stack.client.list_workflows(f"WorkflowId = 'close-{entity}-{period}'")]
    assert started == [] or body.get("force"), started


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"legal_entity": "ZZ99"}, "legal_entity"),
        ({"legal_entity": "US01", "posting_date": "2099-12-31"}, "posting_date"),
        ({"legal_entity": "US01", "posting_date": "2026-11-30", "cutoff": "1130-01-01"}, "cutoff"),
        ({"legal_entity": "US01", "posting_date": "2026-11-02", "cutoff": "2026-11-30"}, "cutoff"),
        ({"legal_entity": "US01", "posting_date": "not-a-date"}, "posting_date"),
    ],
)
async def test_a_bad_posting_run_is_422(stack: Stack, body: dict[str, Any], field: str) -> None:
    problem(await stack.api.post("/v1/postings", json=body, headers=FINANCE), 422, field)


# ---- credit memos and amendments ----------------------------------------------------------------
def memo(target: dict[str, Any], n: int, **line: Any) -> dict[str, Any]:
    invoice = target["invoice"]
    return {
        "credit_memo": {
            "credit_memo_id": f"CM-BAD-{n}",
            "invoice_id": invoice["invoice_id"],
            "memo_date": "2026-11-05",
            "reason": "testing the door",
            "lines": [{"invoice_line_id": f"{invoice['invoice_id']}:1", **line}],
        }
    }


def money(amount: str, currency: str = "USD") -> dict[str, str]:
    return {"amount": amount, "currency": currency}


@pytest.mark.parametrize(
    ("case", "status", "field"),
    [
        ({"amount": money("-10.00")}, 422, "amount.amount"),
        ({"amount": money("0")}, 422, "amount.amount"),
        ({"amount": money("1e30")}, 422, "amount.amount"),
        ({"amount": money("NaN")}, 422, "amount.amount"),
        ({"amount": money("10.005")}, 422, "amount"),  # 3 decimals of a 2-decimal currency
        ({"amount": money("10.00", "XXX")}, 422, "amount.currency"),  # not a currency
        ({"amount": money("10.00", "EUR")}, 422, "amount.currency"),  # not the invoice's
        ({"amount": money("999999.00")}, 422, "amount.amount"),  # more than the line has left
        ({"invoice_line_id": "no-such-line"}, 422, "invoice_line_id"),
        ({"amount": money("10.00"), "discount": "yes"}, 422, "discount"),  # unknown field
    ],
)
async def test_a_credit_memo_that_could_not_be_issued_is_refused_and_opens_no_approval(
    stack: Stack, target: dict[str, Any], case: dict[str, Any], status: int, field: str
) -> None:
    before = await view(stack, target["opportunity_id"])
    body = memo(target, len(before["approvals"]), **case)
    response = await stack.api.post(
        f"/v1/engagements/{target['opportunity_id']}/credit-memos", json=body, headers=SALES
    )
    problem(response, status, field)
    after = await view(stack, target["opportunity_id"])
    assert after["approvals"] == before["approvals"] and after["changes"] == before["changes"]


async def test_a_credit_memo_for_an_unknown_invoice_or_outside_the_window_is_refused(
    stack: Stack, target: dict[str, Any]
) -> None:
    unknown = memo(target, 90)
    unknown["credit_memo"]["invoice_id"] = "inv-that-never-was"
    url = f"/v1/engagements/{target['opportunity_id']}/credit-memos"
    problem(await stack.api.post(url, json=unknown, headers=SALES), 422, "invoice_id")
    dated = memo(target, 91)
    dated["credit_memo"]["memo_date"] = "2099-12-31"
    problem(await stack.api.post(url, json=dated, headers=SALES), 422, "memo_date")
    garbled = memo(target, 92)
    garbled["credit_memo"]["memo_date"] = "the 5th"
    problem(await stack.api.post(url, json=garbled, headers=SALES), 422, "memo_date")


async def test_a_second_memo_may_not_take_what_a_waiting_one_already_claims(
    stack: Stack, target: dict[str, Any]
) -> None:
    """Two memos of the line's whole amount: the first opens an approval, the second would
    fail once the first is issued, so it is refused now."""
    url = f"/v1/engagements/{target['opportunity_id']}/credit-memos"
    first = await stack.api.post(url, json=memo(target, 100), headers=SALES)
    assert first.status_code == 202, first.text
    problem(await stack.api.post(url, json=memo(target, 101), headers=SALES), 422, "amount")
    rejected = await stack.api.post(
        f"/v1/engagements/{target['opportunity_id']}/approvals/{first.json()['approval_ids'][0]}",
        json={"decision": "reject", "comment": "only testing"},
        headers=FINANCE,
    )
    assert rejected.status_code == 200, rejected.text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"contract_line_id": "no-such-line", "price": money("1000.00")}, "contract_line_id"),
        ({"contract_line_id": "LINE", "prcie": money("1000.00")}, "prcie"),  # misspelled field
        ({"contract_line_id": "LINE", "price": money("1000.00", "EUR")}, "price.currency"),
        ({"contract_line_id": "LINE", "price": money("-5.00")}, "price.amount"),
        ({"contract_line_id": "LINE", "replace": {}}, "replace"),  # d2r's own (compensation) field
    ],
)
async def test_an_amendment_with_unknown_lines_or_fields_is_refused_and_opens_no_approval(
    stack: Stack, target: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    line_id = target["lines"]["time_and_materials"]
    before = await view(stack, target["opportunity_id"])
    body = {
        "amendment": {
            "amendment_id": f"AM-BAD-{len(before['changes'])}-{field.replace('.', '-')}",
            "effective_date": "2026-11-01",
            "treatment": "prospective",
            "reason": "testing the door",
            "changes": [{**change, "contract_line_id": line_id if change["contract_line_id"] == "LINE" else "nope"}],
        }
    }
    url = f"/v1/engagements/{target['opportunity_id']}/amendments"
    problem(await stack.api.post(url, json=body, headers=DELIVERY), 422, field)
    after = await view(stack, target["opportunity_id"])
    assert after["approvals"] == before["approvals"] and after["changes"] == before["changes"]


async def test_an_amendment_dated_outside_the_window_is_422(stack: Stack, target: dict[str, Any]) -> None:
    body = {
        "amendment": {
            "amendment_id": "AM-BAD-DATE",
            "effective_date": "1718-03-01",
            "treatment": "prospective",
            "reason": "testing the door",
            "changes": [{"contract_line_id": target["lines"]["time_and_materials"], "price": money("1000.00")}],
        }
    }
    url = f"/v1/engagements/{target['opportunity_id']}/amendments"
    problem(await stack.api.post(url, json=body, headers=DELIVERY), 422, "effective_date")


# ---- webhooks ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "event", "field"),
    [
        ("salesforce", [1, 2], "body"),
        ("salesforce", {"data": "zzz"}, "type"),
        ("netsuite", {"type": "payment.received", "data": "zzz"}, "data"),
        (
            "salesforce",
            {"type": "milestone.completed", "data": {"milestone_id": "a1", "project_id": "p1", "actual_date": "soon"}},
            "data.actual_date",
        ),
        ("salesforce", {"type": "opportunity.closed_won", "data": {"opportunity_id": "x"}}, "data.opportunity_id"),
        # bound to their source: the CRM's event on the ERP's URL and the other way round
        ("netsuite", {"type": "opportunity.closed_won", "data": {"opportunity_id": "006Dd0000000002IAA"}}, "type"),
        ("salesforce", {"type": "payment.received", "data": {"payment_id": "1"}}, "type"),
    ],
)
async def test_a_malformed_or_misrouted_signed_webhook_is_400(
    stack: Stack, source: str, event: Any, field: str
) -> None:
    body, headers = signed(event, f"evt_bad_{source}_{abs(hash(str(event)))}")
    response = await stack.api.post(f"/v1/webhooks/{source}", content=body, headers=headers)
    problem(response, 400, field)


async def test_a_closed_won_webhook_for_a_missing_opportunity_starts_nothing(stack: Stack) -> None:
    event = {"type": "opportunity.closed_won", "data": {"opportunity_id": MISSING_OPPORTUNITY}}
    body, headers = signed(event, "evt_missing_opportunity")
    problem(await stack.api.post("/v1/webhooks/salesforce", content=body, headers=headers), 404, "opportunity_id")
    listed = [w async for w in stack.client.list_workflows(f"WorkflowId = 'engagement-{MISSING_OPPORTUNITY}'")]
    assert listed == []


# ---- stuck work: found, retried, cancelled --------------------------------------------------------
async def fresh_copy(stack: Stack, name: str, **fields: Any) -> str:
    sf = SalesforceClient(
        SalesforceConfig(base_url=stack.sims["salesforce"].url, client_id="d2r-dev", client_secret="d2r-dev-secret")
    )
    try:
        opportunity_id, _ = await copy_of_the_us01_deal(stack, sf, name)
        if fields:
            await sf.update("Opportunity", opportunity_id, fields)
        if fields.get("StageName") != "Negotiation/Review":
            await book(stack, sf, opportunity_id)
    finally:
        await sf.aclose()
    TOUCHED.add(opportunity_id)
    return opportunity_id


async def test_a_deal_waiting_for_approval_can_be_cancelled(stack: Stack) -> None:
    opportunity_id = await fresh_copy(stack, "Cancel while awaiting approval", D2R_Billing_Terms__c="Net 120")
    await reach(stack, opportunity_id, "AWAITING_APPROVAL")

    async def listed_as_stuck() -> list[dict[str, Any]]:
        # Started by the Closed Won webhook: listed by the same attributes as an API start.
        listed = await stack.api.get("/v1/engagements", params={"problem": "true"}, headers=AUDITOR)
        assert listed.status_code == 200, listed.text
        return [e for e in listed.json() if e["opportunity_id"] == opportunity_id]  # visibility lags a little

    mine = await eventually(listed_as_stuck)
    assert mine[0]["problem"].startswith("waits for approval"), mine
    url = f"/v1/engagements/{opportunity_id}/cancel"
    cancelled = await stack.api.post(url, json={"reason": "the customer withdrew"}, headers=SALES)
    assert cancelled.status_code == 202, cancelled.text
    ended = await reach(stack, opportunity_id, "CANCELLED")
    assert "the customer withdrew" in ended["timeline"][-1]["note"]
    problem(await stack.api.post(url, json={"reason": "once more"}, headers=SALES), 409, "stage")


async def test_stuck_work_is_listed_with_its_reason_and_retry_only_resumes_what_waits(
    stack: Stack, target: dict[str, Any]
) -> None:
    opportunity_id = await fresh_copy(stack, "Invalid, then cancelled", StageName="Negotiation/Review")
    started = await stack.api.post("/v1/engagements", json={"opportunity_id": opportunity_id}, headers=SALES)
    assert started.status_code == 202, started.text
    await reach(stack, opportunity_id, "NEEDS_ATTENTION")
    listed = await stack.api.get("/v1/engagements", params={"problem": "true"}, headers=AUDITOR)
    mine = [e for e in listed.json() if e["opportunity_id"] == opportunity_id]
    assert mine and "StageName" in mine[0]["problem"], mine
    assert target["opportunity_id"] not in {e["opportunity_id"] for e in listed.json()}  # in delivery, not stuck
    # retry is for what waits for a fix; an engagement in delivery refuses it (the engagement's
    # update validator: 409 naming its state), never takes it in to drop it
    for action, headers in (("retry", DELIVERY), ("revalidate", SALES)):
        refused = problem(
            await stack.api.post(f"/v1/engagements/{target['opportunity_id']}/{action}", headers=headers), 409, "stage"
        )
        assert "IN_DELIVERY" in refused["detail"] and "waits for no fix" in refused["detail"], refused
    again = await stack.api.post(f"/v1/engagements/{opportunity_id}/retry", headers=DELIVERY)
    assert again.status_code == 202, again.text
    assert again.json()["note"] == "retry requested by dev-delivery-ops"
    await reach(stack, opportunity_id, "NEEDS_ATTENTION")  # re-read, still invalid: waits again
    seen = await stack.api.get(f"/v1/engagements/{opportunity_id}", headers=AUDITOR)
    assert "retry requested by dev-delivery-ops" in [t["note"] for t in seen.json()["timeline"]]
    cancelled = await stack.api.post(
        f"/v1/engagements/{opportunity_id}/cancel", json={"reason": "lost deal"}, headers=SALES
    )
    assert cancelled.status_code == 202, cancelled.text
    await reach(stack, opportunity_id, "CANCELLED")


@pytest.mark.browser
async def test_the_dashboard_counts_the_stuck_engagements_the_api_lists(stack: Stack) -> None:
    opportunity_id = await fresh_copy(stack, "Stuck, on the dashboard", StageName="Negotiation/Review")
    started = await stack.api.post("/v1/engagements", json={"opportunity_id": opportunity_id}, headers=SALES)
    assert started.status_code == 202, started.text
    await reach(stack, opportunity_id, "NEEDS_ATTENTION")
    listed = (await stack.api.get("/v1/engagements", params={"problem": "true"}, headers=AUDITOR)).json()
    url = str(stack.api.base_url.join("/dashboard?token=dev-auditor"))
    page = await stack.api.get(url)
    assert page.status_code == 200, (url, page.status_code, page.text[:300])
    dom = await run_chromium("--dump-dom", url)
    section = re.search(r'<section[^>]*id="stuck"[^>]*>.*?</section>', dom, re.S)
    assert section, (url, dom[-3000:])
    assert f'id="stuck-engagements">{len(listed)}<' in section.group(0)
    assert opportunity_id in section.group(0) and "StageName" in section.group(0)
    await stack.api.post(f"/v1/engagements/{opportunity_id}/cancel", json={"reason": "test over"}, headers=SALES)


# ---- afterwards ---------------------------------------------------------------------------------
async def test_afterwards_nothing_is_wedged_and_nothing_is_dated_outside_the_window(
    stack: Stack, target: dict[str, Any]
) -> None:
    failing = [w.id async for w in stack.client.list_workflows("TemporalReportedProblems IS NOT NULL")]
    assert failing == [], failing
    window = OpenWindow.around(date.today(), 12, 0)  # the API's default window
    for record_type in ("invoice", "creditMemo", "journalEntry"):
        for record in await records(stack, "netsuite", record_type):
            day = date.fromisoformat(str(record["tranDate"])[:10])
            window.check_date(day, f"{record_type} {record.get('externalId')}")
    for opportunity_id in TOUCHED:
        started = time.monotonic()
        await view(stack, opportunity_id)
        assert time.monotonic() - started < 1.0, opportunity_id
