"""Month-end for a firm on two ERPs, on the real path (Temporal dev server, simulators and
`python -m workers.main` as processes): US01 books in NetSuite, UK01 in Dynamics 365 by
routing configuration. A consultant who moves from US01 to UK01 mid-month books her later
time in D365; the intercompany charge lands on both sides; each entity's close posts its
documents in its own ERP and locks its own period (NetSuite for the US subsidiary, the D365
ledger period of UK01 on hold)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from contracts import search_attributes as sa
from contracts.engagement import EngagementInput
from contracts.ids import engagement_workflow_id
from contracts.queues import TaskQueues
from simulators.dynamics import DynamicsSettings
from tests.conftest import TEST_CODEC_ENV, TEST_CONVERTER, wheel_binary
from tests.integration.conftest import Simulator, start_simulator
from tests.integration.month_end_api import month_end_api_settings
from tests.integration.test_posting_close import (
    DATA,
    Env,
    _close,
    _in_delivery,
    admin,
    consultants,
    create_many,
    ns_records,
    sf_call,
    timecard,
)
from workers.settings import WorkerSettings
from workflows.engagement import EngagementWorkflow

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def two_erp_sims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Simulator]]:
    base = tmp_path_factory.mktemp("two-erp-sims")
    out = {
        "sf": start_simulator("simulators.salesforce", base / "sf.sqlite", base / "sf.log"),
        "ns_us": start_simulator("simulators.netsuite", base / "ns-us.sqlite", base / "ns-us.log"),
        "d365": start_simulator("simulators.dynamics", base / "d365.sqlite", base / "d365.log"),
    }
    yield out
    for sim in out.values():
        sim.process.terminate()
        sim.process.wait(timeout=10)


@pytest.fixture(scope="module")
async def two_erp_env(
    two_erp_sims: dict[str, Simulator], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Env]:
    sims = two_erp_sims
    temporal = await WorkflowEnvironment.start_local(
        dev_server_existing_path=wheel_binary("temporal"),
        search_attributes=sa.ALL,
        data_converter=TEST_CONVERTER,
        dev_server_log_level="error",
    )
    tag = uuid.uuid4().hex[:6]
    queues = TaskQueues(crm=f"t-crm-{tag}", psa=f"t-psa-{tag}", erp=f"t-erp-{tag}")
    settings = WorkerSettings(
        temporal_address=temporal.client.service_client.config.target_host,
        workflow_task_queue=f"t-wf-{tag}",
        crm_task_queue=queues.crm,
        psa_task_queue=queues.psa,
        erp_task_queue=queues.erp,
    )
    instances = {
        "erp-us": {"url": sims["ns_us"].url},
        "d365": {"url": sims["d365"].url, "vendor": "dynamics", "options": {"tenant": DynamicsSettings().tenant}},
    }
    worker_env = {
        **os.environ,
        "D2R_TEMPORAL_ADDRESS": settings.temporal_address,
        "D2R_WORKFLOW_TASK_QUEUE": settings.workflow_task_queue,
        "D2R_CRM_TASK_QUEUE": queues.crm,
        "D2R_PSA_TASK_QUEUE": queues.psa,
        "D2R_ERP_TASK_QUEUE": queues.erp,
        "D2R_SALESFORCE": json.dumps({"url": sims["sf"].url}),
        "D2R_ERP_INSTANCES": json.dumps(instances),
        "D2R_ERP_ROUTING": json.dumps({"UK01": "d365"}),
        "D2R_ERP_DEFAULT_INSTANCE": "erp-us",
        "D2R_ERP_LIMITS": json.dumps({"max_concurrent": 8}),
        "D2R_OTEL_EXPORTER": "none",
        **TEST_CODEC_ENV,
    }
    api_settings = month_end_api_settings(settings.workflow_task_queue, queues, sims["sf"].url)
    app = create_app(api_settings, temporal=temporal.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as api:
        e = Env(
            temporal.client,
            api,
            sims["sf"],
            sims["ns_us"],
            sims["d365"],
            queues,
            settings.workflow_task_queue,
            worker_env,
            tmp_path_factory.mktemp("two-erp-logs"),
        )
        e.start_worker()
        try:
            yield e
        finally:
            for process in e.workers:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in e.workers:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
    await temporal.shutdown()


async def d365_records(sim: Simulator, entity_set: str) -> list[dict[str, Any]]:
    return await ns_records(sim, entity_set)  # the admin surface is the same on every simulator


async def test_month_end_with_uk01_on_d365_and_us01_on_netsuite(two_erp_env: Env) -> None:
    e = two_erp_env
    d365 = e.ns_uk
    info = await admin(e.sf, "seed-info")
    us_opp = info["opportunities"]["valid"]["us01_fixed_fee_and_tm"]
    uk_opp = info["valid_closed_won"][1]
    people = await consultants(e)
    for opp in (us_opp, uk_opp):
        await e.client.start_workflow(
            EngagementWorkflow.run,
            EngagementInput(opportunity_id=opp, queues=e.queues),
            id=engagement_workflow_id(opp),
            task_queue=e.workflow_queue,
        )
    us = await _in_delivery(e, us_opp)
    uk = await _in_delivery(e, uk_opp)
    assert us["legal_entity"] == "US01" and uk["legal_entity"] == "UK01"
    # provisioning wrote the UK01 customer and sales order in D365, the US01 ones in NetSuite
    [uk_order] = [o for o in await d365_records(d365, "SalesOrderHeadersV2") if o["D2ROpportunityId"] == uk_opp]
    assert uk_order["dataAreaId"] == "uk01" and uk_order["CurrencyCode"] == "GBP"
    assert [o for o in await ns_records(e.ns_us, "salesOrder") if o.get("custbody_d2r_opportunity_id") == uk_opp] == []

    # Margaret Hamilton (US01) moves to UK01 on 16 Nov; Tim Berners-Lee (UK01) works on the UK project.
    margaret, tim = people["Margaret Hamilton"], people["Tim Berners-Lee"]
    await sf_call(
        e,
        "PATCH",
        f"{DATA}/sobjects/Contact/{margaret}",
        json={
            "D2R_Transfers__c": json.dumps(
                [{"effective_from": "2026-11-16", "legal_entity": "UK01", "cost_rate": 110, "currency": "GBP"}]
            )
        },
    )
    await create_many(
        e,
        "pse__Timecard_Header__c",
        [
            timecard(us["project_id"], margaret, date(2026, 11, 2), role="Senior Consultant"),
            timecard(us["project_id"], margaret, date(2026, 11, 16), role="Senior Consultant"),
            timecard(uk["project_id"], tim, date(2026, 11, 9), role="Consultant"),
        ],
    )

    us_report = await _close(e, "US01", "2026-11")
    assert us_report["posting"]["progress"]["exceptions_total"] == 0, us_report["posting"]
    assert us_report["engagements_closed"] == us_report["engagements_total"] >= 1, us_report
    # Margaret's time after her move is booked in D365 (UK01 employed her), before it in NetSuite
    hours = await d365_records(d365, "ProjectHourJournalLines")
    assert {h["TransDate"][:10] for h in hours if h["D2RProjectId"] == us["project_id"]} == {
        f"2026-11-{d}" for d in range(16, 21)
    }
    assert all(h["dataAreaId"] == "uk01" for h in hours)
    assert any(":2026-11-02" in (b.get("externalId") or "") for b in await ns_records(e.ns_us, "timeBill"))
    # the intercompany charge: UK01 charges US01, each side in its own ERP
    uk_ic = [j for j in await d365_records(d365, "LedgerJournalHeaders") if ":ic:UK01:" in j["D2RReference"]]
    us_ic = [j for j in await ns_records(e.ns_us, "journalEntry") if ":ic:US01:" in (j.get("externalId") or "")]
    assert uk_ic and us_ic and all(j["IsPosted"] == "Yes" for j in uk_ic)

    uk_report = await _close(e, "UK01", "2026-11")
    assert uk_report["posting"]["progress"]["time_entries"] == 5
    assert (uk_report["engagements_total"], uk_report["engagements_closed"]) == (1, 1), uk_report
    # UK01's documents are D365 free-text invoices with VAT, under the engagement
    invoices = [i for i in await d365_records(d365, "FreeTextInvoiceHeaders") if i["D2ROpportunityId"] == uk_opp]
    assert invoices and all(i["IsPosted"] == "Yes" and i["InvoiceId"].startswith("CIV-") for i in invoices)
    assert all(i["TotalTaxAmount"] != "0" for i in invoices)
    # each entity's close locked its own period, in its own ERP
    [period] = [
        p
        for p in await d365_records(d365, "LedgerFiscalPeriods")
        if p["LedgerName"] == "UK01" and p["YearName"] == "2026" and p["PeriodName"] == "Period 11"
    ]
    assert period["PeriodStatus"] == "OnHold"
    assert [
        p["PeriodStatus"]
        for p in await d365_records(d365, "LedgerFiscalPeriods")
        if p["LedgerName"] == "IE01" and p["PeriodName"] == "Period 11" and p["YearName"] == "2026"
    ] == ["Open"]
    ns_period = next(p for p in await ns_records(e.ns_us, "accountingPeriod") if p.get("externalId") == "2026-11")
    assert ns_period.get("custrecord_d2r_locked_subsidiaries") and not ns_period.get("allLocked")
    for sim in (e.ns_us, d365):
        assert (await admin(sim, "duplicates"))["count"] == 0

    # A late UK timecard into the locked period is refused by D365 and becomes an exception.
    late = (
        await create_many(
            e, "pse__Timecard_Header__c", [timecard(uk["project_id"], tim, date(2026, 11, 23), role="Consultant")]
        )
    )[0]
    response = await e.api.post(
        "/v1/postings",
        json={"legal_entity": "UK01", "posting_date": "2026-12-01"},
        headers={"Authorization": "Bearer fin-a"},
    )
    assert response.status_code == 202, response.text
    result = await e.client.get_workflow_handle(response.json()["workflow_id"]).result()
    progress = result["progress"] if isinstance(result, dict) else result.progress
    exceptions = progress["exceptions"] if isinstance(progress, dict) else [x.model_dump() for x in progress.exceptions]
    assert {x["source_id"] for x in exceptions} == {late}
    assert exceptions[0]["code"] == "PERIOD_NOT_OPEN"
