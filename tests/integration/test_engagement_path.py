"""The thin real path end to end: API -> Temporal dev server -> worker -> simulators."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from contracts import search_attributes as sa
from tests.integration.conftest import Stack, eventually
from workflows.engagement import EngagementWorkflow

pytestmark = pytest.mark.integration

SALES = {"Authorization": "Bearer dev-sales-ops"}
AUDITOR = {"Authorization": "Bearer dev-auditor"}


async def seed_info(stack: Stack) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.sims["salesforce"].url) as http:
        response = await http.get("/__admin/seed-info")
        response.raise_for_status()
        info: dict[str, Any] = response.json()
        return info


async def records(stack: Stack, system: str, record_type: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=stack.sims[system].url) as http:
        response = await http.get(f"/__admin/records/{record_type}")
        response.raise_for_status()
        body = response.json()
        rows: list[dict[str, Any]] = body["records"] if isinstance(body, dict) else body
        return rows


async def view_in_stage(stack: Stack, opportunity_id: str, stage: str) -> dict[str, Any] | None:
    response = await stack.api.get(f"/v1/engagements/{opportunity_id}", headers=AUDITOR)
    if response.status_code != 200:
        return None
    view: dict[str, Any] = response.json()
    return view if view["stage"] == stage else None


async def test_closed_won_deal_is_provisioned_end_to_end(stack: Stack) -> None:
    info = await seed_info(stack)
    opportunity_id = info["opportunities"]["valid"]["us01_fixed_fee_and_tm"]

    first = await stack.api.post("/v1/engagements", json={"opportunity_id": opportunity_id}, headers=SALES)
    assert first.status_code == 202, first.text  # started; the view is read at Location, later
    assert first.headers["location"] == f"/v1/engagements/{opportunity_id}"
    assert first.json() == {
        "workflow_id": f"engagement-{opportunity_id}",
        "opportunity_id": opportunity_id,
        "created": True,
        "href": f"/v1/engagements/{opportunity_id}",
    }

    # The Web UI's summary and details come from the CRM's opportunity, read at the door.
    crm = next(o for o in await records(stack, "salesforce", "Opportunity") if o["Id"] == opportunity_id)
    described = await stack.client.get_workflow_handle(f"engagement-{opportunity_id}").describe()
    summary = await described.static_summary()
    assert summary is not None and crm["Name"] in summary and crm["CurrencyIsoCode"] in summary, summary
    details = await described.static_details()
    assert details is not None and "**Customer:**" in details and "**Started by:** dev-sales-ops (API)" in details
    assert described.typed_search_attributes.get(sa.OPPORTUNITY_ID) == opportunity_id

    view = await eventually(lambda: view_in_stage(stack, opportunity_id, "IN_DELIVERY"))
    assert view["opportunity_id"] == opportunity_id
    assert view["workflow_id"] == f"engagement-{opportunity_id}"
    for key in ("customer_id", "erp_customer_id", "project_id", "contract_id", "legal_entity", "currency"):
        assert view[key], key
    assert view["errors"] == []

    # Settled in delivery, it is read from the view it published (no query, no worker), and
    # that is what its query answers.
    async def published() -> httpx.Response | None:
        response = await stack.api.get(f"/v1/engagements/{opportunity_id}", headers=AUDITOR)
        return response if response.headers["x-d2r-view-source"] == "published" else None

    read = await eventually(published)
    queried = await stack.client.get_workflow_handle(f"engagement-{opportunity_id}").query(EngagementWorkflow.view)
    assert read.json()["timeline"] == queried.model_dump(mode="json")["timeline"]
    assert read.json()["contract_id"] == queried.contract_id == view["contract_id"]

    # The repeated POST returns the same engagement and never starts a second workflow.
    again = await stack.api.post("/v1/engagements", json={"opportunity_id": opportunity_id}, headers=SALES)
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.headers["location"] == f"/v1/engagements/{opportunity_id}"
    runs = [wf async for wf in stack.client.list_workflows(f"WorkflowId = 'engagement-{opportunity_id}'")]
    assert len(runs) == 1

    # The PSA holds exactly one project for the opportunity, the ERP one sales order,
    # and the CRM opportunity carries the project and contract links.
    projects = [
        p for p in await records(stack, "salesforce", "pse__Proj__c") if p.get("pse__Opportunity__c") == opportunity_id
    ]
    assert [p["Id"] for p in projects] == [view["project_id"]]
    orders = [
        o
        for o in await records(stack, "netsuite", "salesOrder")
        if o.get("custbody_d2r_opportunity_id") == opportunity_id
    ]
    assert [str(o["id"]) for o in orders] == [view["contract_id"]]
    opportunity = next(o for o in await records(stack, "salesforce", "Opportunity") if o["Id"] == opportunity_id)
    assert opportunity["pse__Primary_Project__c"] == view["project_id"]
    assert opportunity["D2R_Contract_Id__c"] == view["contract_id"]

    # Findable by business keys through visibility, as in the Web UI.
    async def listed() -> list[Any]:
        query = f"D2RStage = 'IN_DELIVERY' AND D2ROpportunityId = '{opportunity_id}'"
        return [wf async for wf in stack.client.list_workflows(query)]

    assert len(await eventually(listed)) == 1
    listing = await stack.api.get("/v1/engagements", params={"stage": "IN_DELIVERY"}, headers=AUDITOR)
    assert any(row["opportunity_id"] == opportunity_id for row in listing.json())
    waiting = await stack.api.get("/v1/engagements", params={"waiting_for": "period_close"}, headers=AUDITOR)
    [row] = [r for r in waiting.json() if r["opportunity_id"] == opportunity_id]
    assert row["href"] == f"/v1/engagements/{opportunity_id}" and row["pending_approval"] is False
    approvals = await stack.api.get("/v1/engagements", params={"waiting_for": "approval"}, headers=AUDITOR)
    assert opportunity_id not in {r["opportunity_id"] for r in approvals.json()}


@pytest.mark.parametrize("flaw", ["missing_legal_entity", "no_line_items", "not_closed_won"])
async def test_invalid_deal_needs_attention_and_creates_nothing(stack: Stack, flaw: str) -> None:
    info = await seed_info(stack)
    opportunity_id = info["opportunities"]["invalid"][flaw]
    projects_before = len(await records(stack, "salesforce", "pse__Proj__c"))
    orders_before = len(await records(stack, "netsuite", "salesOrder"))

    response = await stack.api.post("/v1/engagements", json={"opportunity_id": opportunity_id}, headers=SALES)
    assert response.status_code == 202
    view = await eventually(lambda: view_in_stage(stack, opportunity_id, "NEEDS_ATTENTION"))
    expected_field = {
        "missing_legal_entity": "D2R_Legal_Entity__c",
        "no_line_items": "OpportunityLineItems",
        "not_closed_won": "StageName",
    }[flaw]
    assert expected_field in {e["field"] for e in view["errors"]}
    assert view["project_id"] is None and view["contract_id"] is None
    assert len(await records(stack, "salesforce", "pse__Proj__c")) == projects_before
    assert len(await records(stack, "netsuite", "salesOrder")) == orders_before


async def test_unknown_engagement_is_404_problem(stack: Stack) -> None:
    response = await stack.api.get("/v1/engagements/006ZZZZZZZZZZZZZZZ", headers=AUDITOR)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_engagement_list_pages(stack: Stack) -> None:
    info = await seed_info(stack)
    # The flawed deals (the tests above started them; they create nothing anywhere).
    for opportunity_id in list(info["opportunities"]["invalid"].values())[:3]:
        started = await stack.api.post("/v1/engagements", json={"opportunity_id": opportunity_id}, headers=SALES)
        assert started.status_code in (200, 202), started.text

    async def visible() -> bool:
        return len([wf async for wf in stack.client.list_workflows("WorkflowType = 'EngagementWorkflow'")]) >= 3

    await eventually(visible)
    seen: list[str] = []
    url: str | None = "/v1/engagements?limit=2"
    while url is not None and len(seen) < 100:
        page = await stack.api.get(url, headers=AUDITOR)
        assert page.status_code == 200, page.text
        assert len(page.json()) <= 2
        seen += [row["workflow_id"] for row in page.json()]
        link = page.links.get("next")
        url = link["url"] if link else None
    assert len(seen) >= 3 and len(seen) == len(set(seen))  # every engagement once, two per page
    bad = await stack.api.get("/v1/engagements", params={"page_token": "%%%"}, headers=AUDITOR)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "page_token"
