"""The issue's walk-through over the real stack: a finance token minted for UK01 by the dev
issuer sees only UK01 engagements, approves a UK01 change, and is refused on US01."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from connectors.salesforce.client import SalesforceClient, SalesforceConfig
from security.dev_issuer import mint
from tests.integration.conftest import Stack, eventually
from tests.integration.test_compensation_simulators import LINE_FIELDS, OPPORTUNITY_FIELDS, book
from tests.integration.test_engagement_path import SALES, records, seed_info, view_in_stage

pytestmark = pytest.mark.integration


@pytest.fixture
async def sf(stack: Stack) -> AsyncIterator[SalesforceClient]:
    client = SalesforceClient(
        SalesforceConfig(base_url=stack.sims["salesforce"].url, client_id="d2r-dev", client_secret="d2r-dev-secret")
    )
    yield client
    await client.aclose()


def bearer(stack: Stack, role: str, subject: str, entities: list[str]) -> dict[str, str]:
    assert stack.issuer_key is not None, "this stack's API serves no dev issuer"
    token = mint(stack.issuer_key, stack.issuer, subject=subject, roles=[role], entities=entities)
    return {"Authorization": f"Bearer {token}"}


async def request_big_amendment(stack: Stack, opportunity_id: str, view: dict[str, Any]) -> list[str]:
    """+30,000 on the first line: above the finance threshold (25,000 USD, 20,000 GBP), so
    delivery and finance both approve."""
    line = next(
        x for x in await records(stack, "salesforce", "OpportunityLineItem") if x["OpportunityId"] == opportunity_id
    )
    price = Decimal(str(line["TotalPrice"])) + 30_000
    body = {
        "amendment": {
            "amendment_id": f"AM-SCOPE-{opportunity_id[-6:]}",
            "effective_date": dt.date.today().isoformat(),
            "treatment": "prospective",
            "reason": "more scope",
            "changes": [
                {
                    "contract_line_id": line["Id"],
                    "price": {"amount": f"{price:.2f}", "currency": view["currency"]},
                }
            ],
        }
    }
    requested = await stack.api.post(f"/v1/engagements/{opportunity_id}/amendments", json=body, headers=SALES)
    assert requested.status_code == 202, requested.text
    approval_ids: list[str] = requested.json()["approval_ids"]
    assert len(approval_ids) == 2
    return approval_ids


async def copy_of(stack: Stack, sf: SalesforceClient, template: str, name: str) -> str:
    """A fresh Closed Won copy of a seeded deal (its lines too), so amending it disturbs no other test."""
    source = next(o for o in await records(stack, "salesforce", "Opportunity") if o["Id"] == template)
    fields = {k: source.get(k) for k in OPPORTUNITY_FIELDS}
    opportunity_id = await sf.create("Opportunity", {**fields, "Name": name, "StageName": "Negotiation/Review"})
    for line in [
        x for x in await records(stack, "salesforce", "OpportunityLineItem") if x["OpportunityId"] == template
    ]:
        await sf.create(
            "OpportunityLineItem", {**{k: line.get(k) for k in LINE_FIELDS}, "OpportunityId": opportunity_id}
        )
    await book(stack, sf, opportunity_id)
    return opportunity_id


async def test_a_uk01_finance_token_sees_and_approves_only_uk01(stack: Stack, sf: SalesforceClient) -> None:
    valid = (await seed_info(stack))["opportunities"]["valid"]
    uk = await copy_of(stack, sf, valid["uk01_tm"], "Scope case UK01")
    us = await copy_of(stack, sf, valid["us01_fixed_fee_and_tm"], "Scope case US01")
    uk_view = await eventually(lambda: view_in_stage(stack, uk, "IN_DELIVERY"))
    us_view = await eventually(lambda: view_in_stage(stack, us, "IN_DELIVERY"))
    assert (uk_view["legal_entity"], us_view["legal_entity"]) == ("UK01", "US01")

    fiona = bearer(stack, "finance", "fiona-uk", ["UK01"])
    listed = await stack.api.get("/v1/engagements", headers=fiona)
    assert listed.status_code == 200
    assert {row["legal_entity"] for row in listed.json()} == {"UK01"}
    assert f"engagement-{uk}" in {row["workflow_id"] for row in listed.json()}
    assert (await stack.api.get(f"/v1/engagements/{uk}", headers=fiona)).status_code == 200
    refused = await stack.api.get(f"/v1/engagements/{us}", headers=fiona)
    assert refused.status_code == 403 and "US01" in refused.json()["detail"]
    assert (await stack.api.get("/v1/engagements", params={"legal_entity": "US01"}, headers=fiona)).status_code == 403

    # A UK01 change: delivery (another UK01 person) and then fiona approve it.
    delivery_id, finance_id = await request_big_amendment(stack, uk, uk_view)
    dana = bearer(stack, "delivery_ops", "dana-uk", ["UK01"])
    first = await stack.api.post(
        f"/v1/engagements/{uk}/approvals/{delivery_id}", json={"decision": "approve"}, headers=dana
    )
    assert first.status_code == 200, first.text
    second = await stack.api.post(
        f"/v1/engagements/{uk}/approvals/{finance_id}", json={"decision": "approve"}, headers=fiona
    )
    assert second.status_code == 200, second.text
    assert second.json()["decided_by"] == "fiona-uk"

    # A US01 change: fiona is refused before the engagement is even asked.
    _, us_finance_id = await request_big_amendment(stack, us, us_view)
    outside = await stack.api.post(
        f"/v1/engagements/{us}/approvals/{us_finance_id}", json={"decision": "approve"}, headers=fiona
    )
    assert outside.status_code == 403 and "US01" in outside.json()["detail"]
    pending = {
        a["approval_id"]: a["decision"]
        for a in (await stack.api.get(f"/v1/engagements/{us}", headers=SALES)).json()["approvals"]
    }
    assert pending[us_finance_id] == "pending"

    # The auditor, scoped or not, reads everything and changes nothing.
    audrey = bearer(stack, "auditor", "audrey", ["UK01"])
    assert (await stack.api.get(f"/v1/engagements/{us}", headers=audrey)).status_code == 200
    assert (
        await stack.api.post(
            f"/v1/engagements/{us}/approvals/{us_finance_id}", json={"decision": "approve"}, headers=audrey
        )
    ).status_code == 403


async def test_an_expired_or_foreign_token_is_401(stack: Stack) -> None:
    assert stack.issuer_key is not None
    expired = mint(stack.issuer_key, stack.issuer, subject="x", roles=["auditor"], entities=["*"], ttl_seconds=-600)
    response = await stack.api.get("/v1/engagements", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and "expired" in response.json()["detail"].lower()
    foreign = mint(stack.issuer_key, "http://evil.example", subject="x", roles=["auditor"], entities=["*"])
    assert (await stack.api.get("/v1/engagements", headers={"Authorization": f"Bearer {foreign}"})).status_code == 401
