"""CRM on Salesforce: every CrmPort operation, and the shared client's protocol duties
(paging, token refresh, error classification) against the Salesforce simulator."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from connectors.errors import (
    DuplicateError,
    NotFoundError,
    RateLimitedError,
    RetryableError,
    UnavailableError,
    VendorValidationError,
)
from domain.system_records import BillingStatus, CrmLinks, Notification
from tests.connectors.conftest import OPP_US, Salesforce, make_salesforce, usd


async def test_read_opportunity_follows_pages(tmp_path: Path) -> None:
    sf = await make_salesforce(tmp_path, page_size=1)  # every query is one record per page
    try:
        opp = await sf.crm.read_opportunity(OPP_US)
        assert opp.stage == "Closed Won" and opp.legal_entity == "US01" and opp.currency == "USD"
        assert len(opp.lines) == 2  # two lines, two pages
        assert {line.billing_model for line in opp.lines} == {"fixed_fee", "time_and_materials"}
        assert [a.name for a in opp.accounts] == ["Globex US Inc", "Globex Holdings"]  # child, then parent
    finally:
        await sf.client.aclose()


async def test_query_pages_survive_token_expiry_mid_run(sf: Salesforce) -> None:
    seen = []
    first_token = None
    async for row in sf.client.query("SELECT Id FROM pse__Rate_Card__c ORDER BY Id"):
        seen.append(row["Id"])
        if len(seen) == 1:
            assert sf.client.auth.token is not None
            first_token = sf.client.auth.token.access_token
            await sf.admin.expire_tokens()  # the next page is fetched with a dead session
    assert len(seen) == 16 and len(set(seen)) == 16  # 16 rate cards over 4 pages of 5
    assert sf.client.auth.token is not None and sf.client.auth.token.access_token != first_token


async def test_missing_opportunity_is_not_found(sf: Salesforce) -> None:
    with pytest.raises(NotFoundError) as caught:
        await sf.crm.read_opportunity("006Dd00000000ZZIAA")
    assert not caught.value.retryable


async def test_write_links_and_billing_status(sf: Salesforce) -> None:
    await sf.crm.write_links(OPP_US, CrmLinks(project_id=None, contract_id="C-42", status="In delivery"))
    status = BillingStatus(
        status="Overdue",
        billed=usd("1000.005"),
        collected=usd("250"),
        overdue=usd("750"),
        unbilled_wip=usd("10"),
        as_of=date(2026, 4, 30),
    )
    await sf.crm.write_billing_status(OPP_US, status)
    await sf.crm.write_billing_status(OPP_US, status)  # the same state twice is one state
    await sf.crm.set_contract_value(OPP_US, usd("180000"))
    opp = await sf.client.get("Opportunity", OPP_US)
    assert opp["D2R_Contract_Id__c"] == "C-42" and opp["D2R_Engagement_Status__c"] == "In delivery"
    assert opp["D2R_Billing_Status__c"] == "Overdue"
    assert opp["D2R_Billed_Amount__c"] == 1000.01  # rounded to the cent, half up
    assert opp["D2R_Collected_Amount__c"] == 250 and opp["D2R_Overdue_Amount__c"] == 750
    assert opp["D2R_Billing_As_Of__c"] == "2026-04-30"
    assert opp["D2R_Contract_Value__c"] == 180000
    assert opp["Amount"] == 170000  # the booked amount (sum of the products) stays as history


async def test_notify_upserts_one_task(sf: Salesforce) -> None:
    note = Notification(
        subject="Approve deal", body="Over threshold", audience=["finance", "sales"], priority="High", related_id=OPP_US
    )
    first = await sf.crm.notify("engagement-x:approval-reminder:1", note)
    again = await sf.crm.notify("engagement-x:approval-reminder:1", note)
    assert first == again
    tasks = await sf.admin.records("Task")
    assert len(tasks) == 1
    task = tasks[0]
    assert task["WhatId"] == OPP_US and task["Priority"] == "High" and task["Status"] == "Not Started"
    assert task["Subject"] == "Approve deal" and task["D2R_Audience__c"] == "finance, sales"
    assert (await sf.admin.duplicates())["count"] == 0


async def test_upsert_matching_two_records_is_a_duplicate_error(sf: Salesforce) -> None:
    for _ in range(2):  # someone created two Tasks with one external id (not unique in the org)
        await sf.client.create("Task", {"Subject": "x", "D2R_External_Id__c": "dup-1"})
    with pytest.raises(DuplicateError) as caught:
        await sf.crm.notify("dup-1", Notification(subject="s", body="b", audience=[]))
    assert caught.value.status == 300 and not caught.value.retryable


async def test_validation_error_is_not_retryable(sf: Salesforce) -> None:
    with pytest.raises(VendorValidationError) as caught:
        # an account's id where the project lookup wants a project
        await sf.crm.write_links(OPP_US, CrmLinks(project_id="001Dd0000000002", contract_id=None, status="x"))
    assert caught.value.vendor_code == "FIELD_INTEGRITY_EXCEPTION" and not caught.value.retryable
    with pytest.raises(VendorValidationError) as caught:
        await sf.client.update("Opportunity", OPP_US, {"No_Such_Field__c": 1})
    assert caught.value.vendor_code == "INVALID_FIELD"


async def test_server_errors_and_throttling_are_retryable(sf: Salesforce) -> None:
    await sf.admin.faults(error_rate=1.0)
    with pytest.raises(UnavailableError) as caught:
        await sf.crm.read_opportunity(OPP_US)
    assert caught.value.status == 500 and caught.value.retryable
    await sf.admin.clear_faults()
    assert (await sf.crm.read_opportunity(OPP_US)).opportunity_id == OPP_US  # a session again
    # Salesforce has no 429: the concurrency limit is 503 REQUEST_LIMIT_EXCEEDED with Retry-After.
    await sf.admin.faults(throttle_burst=1, retry_after_s=7)
    with pytest.raises(RetryableError) as throttled:
        await sf.crm.read_opportunity(OPP_US)
    assert throttled.value.vendor_code == "REQUEST_LIMIT_EXCEEDED" and throttled.value.retry_after == 7
    assert not isinstance(throttled.value, RateLimitedError) or throttled.value.status == 429
    assert (await sf.crm.read_opportunity(OPP_US)).opportunity_id == OPP_US  # the burst is over
    await sf.admin.faults(outage_seconds=30)
    with pytest.raises(UnavailableError) as outage:
        await sf.crm.read_opportunity(OPP_US)
    assert outage.value.status == 503 and outage.value.retry_after is not None and outage.value.retry_after > 0


async def test_a_project_of_another_psa_is_linked_as_text(sf: Salesforce) -> None:
    """The CRM stays Salesforce whichever PSA delivers: its project lookup takes only
    Certinia projects, so another PSA's project id (Kantata: a plain number) is kept in
    `D2R_Project_Id__c` and read back from there."""
    await sf.crm.write_links(OPP_US, CrmLinks(project_id="50002", contract_id="C-9", status="Provisioned"))
    [row] = [o for o in await sf.admin.records("Opportunity") if o["Id"] == OPP_US]
    assert (row["pse__Primary_Project__c"], row["D2R_Project_Id__c"]) == (None, "50002")
    assert (await sf.crm.read_opportunity(OPP_US)).project_id == "50002"
