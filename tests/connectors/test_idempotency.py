"""The same activity run twice, and again after a lost response (the write committed, the
client saw a 504), leaves exactly one record in the simulator."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.crm import CrmFeedbackActivities
from activities.erp import ErpActivities, ErpBillingActivities
from activities.psa import PsaActivities
from connectors.certinia import psa_connection
from connectors.netsuite import erp_connection
from connectors.routing import ErpRouter, PsaRouter
from contracts.crm import NotifyInput
from contracts.erp import PostDocumentsInput, UpsertCustomerInput
from contracts.psa import CreateProjectInput
from domain.system_records import Notification
from tests.connectors.conftest import OPP_US, NetSuite, Salesforce, engagement, invoice, journal


async def run_lost_then_twice(admin: Any, activity: Any, arg: Any) -> tuple[Any, Any]:
    """First attempt: the vendor commits but the response is lost; then two clean runs."""
    env = ActivityEnvironment()
    await admin.faults(response_lost_rate=1.0, seed=1)
    with pytest.raises(ApplicationError) as lost:
        await env.run(activity, arg)
    assert lost.value.type == "Unavailable" and not lost.value.non_retryable  # Temporal retries it
    await admin.clear_faults()
    return await env.run(activity, arg), await env.run(activity, arg)


async def test_create_project_after_a_lost_response_is_one_project(sf: Salesforce) -> None:
    eng = await engagement(sf.crm)
    before = await sf.admin.counts()
    first, second = await run_lost_then_twice(
        sf.admin,
        PsaActivities(PsaRouter({"default": psa_connection(sf.client)}, {}, "default", system="psa")).create_project,
        CreateProjectInput(engagement=eng, external_id="engagement-1:project"),
    )
    assert first == second
    after = await sf.admin.counts()
    assert after["pse__Proj__c"] - before.get("pse__Proj__c", 0) == 1
    assert after["pse__Milestone__c"] - before.get("pse__Milestone__c", 0) == 3
    assert after["pse__Resource_Request__c"] - before.get("pse__Resource_Request__c", 0) == 1
    assert (await sf.admin.duplicates())["count"] == 0


async def test_notify_after_a_lost_response_is_one_task(sf: Salesforce) -> None:
    data = NotifyInput(
        external_id="engagement-1:reminder:approval:1",
        notification=Notification(
            subject="Reminder", body="Waiting for approval", audience=["finance"], related_id=OPP_US
        ),
    )
    first, second = await run_lost_then_twice(sf.admin, CrmFeedbackActivities(sf.crm).notify, data)
    assert first.detail == second.detail
    assert len(await sf.admin.records("Task")) == 1


async def test_erp_customer_and_documents_after_a_lost_response_are_posted_once(sf: Salesforce, ns: NetSuite) -> None:
    router = ErpRouter({"default": erp_connection(ns.client)}, {}, default="default")
    eng = await engagement(sf.crm)
    customer, again = await run_lost_then_twice(
        ns.admin,
        ErpActivities(router).upsert_customer,
        UpsertCustomerInput(engagement=eng, external_id="engagement-1:customer"),
    )
    assert customer == again
    order = await ns.erp.create_sales_order(eng, customer.erp_customer_id, "a0P1", "engagement-1:sales-order")
    docs = PostDocumentsInput(
        legal_entity="US01",
        erp_customer_id=customer.erp_customer_id,
        sales_order_id=order,
        invoices=[invoice()],
        journals=[journal()],
    )
    first, second = await run_lost_then_twice(ns.admin, ErpBillingActivities(router).post_documents, docs)
    assert first == second
    counts = await ns.admin.counts()
    assert counts["invoice"] == 1 and counts["journalEntry"] == 1
    assert len([c for c in await ns.admin.records("customer") if c.get("externalId") == "engagement-1:customer"]) == 1
    assert (await ns.admin.duplicates())["count"] == 0


async def test_connector_errors_become_typed_application_errors(ns: NetSuite) -> None:
    router = ErpRouter({"default": erp_connection(ns.client)}, {}, default="default")
    env = ActivityEnvironment()
    await ns.admin.faults(throttle_burst=5, retry_after_s=4)
    with pytest.raises(ApplicationError) as throttled:
        await env.run(
            ErpBillingActivities(router).post_documents,
            PostDocumentsInput(legal_entity="US01", erp_customer_id="1", sales_order_id="2", journals=[journal()]),
        )
    assert throttled.value.type == "RateLimited" and not throttled.value.non_retryable
    assert throttled.value.next_retry_delay is not None and throttled.value.next_retry_delay.total_seconds() == 4
    await ns.admin.clear_faults()
    with pytest.raises(ApplicationError) as routed:
        await env.run(
            ErpBillingActivities(ErpRouter({}, {}, None)).post_documents,
            PostDocumentsInput(legal_entity="XX01", erp_customer_id="1", sales_order_id="2"),
        )
    assert routed.value.type == "ConfigurationError" and routed.value.non_retryable
