"""Batched posting and month-end on the real path: Temporal dev server, the Salesforce
simulator and two NetSuite instances (US01 and DE01 on one, UK01 on its own) as processes,
and the workers as separate `python -m workers.main` processes that the tests kill."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from contracts import search_attributes as sa
from contracts.engagement import EngagementInput
from contracts.ids import engagement_workflow_id
from contracts.posting import PostingConfig, PostingInput
from contracts.queues import TaskQueues
from tests.conftest import TEST_CODEC_ENV, TEST_CONVERTER, wheel_binary
from tests.integration.conftest import ROOT, Simulator, eventually, start_simulator
from tests.integration.month_end_api import month_end_api_settings
from workers.schedules import ensure_schedules
from workers.settings import WorkerSettings
from workflows.engagement import EngagementWorkflow
from workflows.posting import TimeAndExpensePostingWorkflow

pytestmark = pytest.mark.integration

FINANCE_A = {"Authorization": "Bearer fin-a"}
FINANCE_B = {"Authorization": "Bearer fin-b"}
DATA = "/services/data/v60.0"


@dataclass
class Env:
    client: Client
    api: httpx.AsyncClient
    sf: Simulator
    ns_us: Simulator  # US01 and DE01
    ns_uk: Simulator  # UK01
    queues: TaskQueues
    workflow_queue: str
    worker_env: dict[str, str]
    log_dir: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"worker-{len(self.workers)}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "workers.main"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=self.worker_env
        )
        self.workers.append(process)
        return process


@pytest.fixture(scope="module")
def sims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Simulator]]:
    base = tmp_path_factory.mktemp("batch-sims")
    out = {
        "sf": start_simulator("simulators.salesforce", base / "sf.sqlite", base / "sf.log"),
        "ns_us": start_simulator(
            "simulators.netsuite", base / "ns-us.sqlite", base / "ns-us.log", "--instance", "erp-us"
        ),
        "ns_uk": start_simulator(
            "simulators.netsuite", base / "ns-uk.sqlite", base / "ns-uk.log", "--instance", "erp-uk"
        ),
    }
    yield out
    for sim in out.values():
        sim.process.terminate()
        sim.process.wait(timeout=10)


@pytest.fixture(scope="module")
async def env(sims: dict[str, Simulator], tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    temporal = await WorkflowEnvironment.start_local(
        dev_server_existing_path=wheel_binary("temporal"),
        search_attributes=sa.ALL,
        data_converter=TEST_CONVERTER,
        dev_server_log_level="error",
    )
    tag = uuid.uuid4().hex[:6]
    queues = TaskQueues(crm=f"b-crm-{tag}", psa=f"b-psa-{tag}", erp=f"b-erp-{tag}")
    settings = WorkerSettings(
        temporal_address=temporal.client.service_client.config.target_host,
        workflow_task_queue=f"b-wf-{tag}",
        crm_task_queue=queues.crm,
        psa_task_queue=queues.psa,
        erp_task_queue=queues.erp,
    )
    worker_env = {
        **os.environ,
        "D2R_TEMPORAL_ADDRESS": settings.temporal_address,
        "D2R_WORKFLOW_TASK_QUEUE": settings.workflow_task_queue,
        "D2R_CRM_TASK_QUEUE": queues.crm,
        "D2R_PSA_TASK_QUEUE": queues.psa,
        "D2R_ERP_TASK_QUEUE": queues.erp,
        "D2R_SALESFORCE": json.dumps({"url": sims["sf"].url}),
        "D2R_ERP_INSTANCES": json.dumps({"erp-us": {"url": sims["ns_us"].url}, "erp-uk": {"url": sims["ns_uk"].url}}),
        "D2R_ERP_ROUTING": json.dumps({"UK01": "erp-uk"}),
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
            sims["ns_uk"],
            queues,
            settings.workflow_task_queue,
            worker_env,
            tmp_path_factory.mktemp("batch-logs"),
        )
        e.start_worker()
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


# ---- simulator helpers ---------------------------------------------------------------------------


async def sf_call(e: Env, method: str, path: str, **kw: Any) -> Any:
    async with httpx.AsyncClient(base_url=e.sf.url) as http:
        token = (
            await http.post(
                "/services/oauth2/token",
                data={"grant_type": "client_credentials", "client_id": "d2r-dev", "client_secret": "d2r-dev-secret"},
            )
        ).json()
        response = await http.request(method, path, headers={"Authorization": f"Bearer {token['access_token']}"}, **kw)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None


async def create_many(e: Env, sobject: str, rows: list[dict[str, Any]]) -> list[str]:
    ids: list[str] = []
    for start in range(0, len(rows), 200):
        result = await sf_call(
            e,
            "POST",
            f"{DATA}/composite/sobjects",
            json={
                "allOrNone": True,
                "records": [{"attributes": {"type": sobject}, **r} for r in rows[start : start + 200]],
            },
        )
        ids += [r["id"] for r in result]
    return ids


async def soql(e: Env, q: str) -> list[dict[str, Any]]:
    body = await sf_call(e, "GET", f"{DATA}/query", params={"q": q})
    rows: list[dict[str, Any]] = body["records"]
    while not body.get("done", True):
        body = await sf_call(e, "GET", body["nextRecordsUrl"])
        rows += body["records"]
    return rows


async def admin(sim: Simulator, path: str) -> Any:
    async with httpx.AsyncClient(base_url=sim.url) as http:
        response = await http.get(f"/__admin/{path}")
        response.raise_for_status()
        return response.json()


async def ns_records(sim: Simulator, record_type: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await admin(sim, f"records/{record_type}?limit=100000"))["records"]
    return rows


def timecard(
    project: str, resource: str, monday: date, hours: float = 8, role: str | None = None, days: int = 5
) -> dict[str, Any]:
    names = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
    return {
        "pse__Project__c": project,
        "pse__Resource__c": resource,
        "pse__Start_Date__c": monday.isoformat(),
        "pse__End_Date__c": (monday + timedelta(days=6)).isoformat(),
        "pse__Status__c": "Approved",
        "pse__Approved__c": True,
        "pse__Billable__c": True,
        "D2R_Role__c": role,
        **{f"pse__{n}_Hours__c": hours for n in names[:days]},
    }


async def consultants(e: Env) -> dict[str, str]:
    info = await admin(e.sf, "seed-info")
    return {c["name"]: c["id"] for c in info["consultants"]}


# ---- exactly once, with a worker killed mid-run, and two workers sharing the pages ---------------


async def test_posting_is_exactly_once_across_a_killed_worker(env: Env) -> None:
    e = env
    people = await consultants(e)
    projects = await create_many(
        e,
        "pse__Proj__c",
        [
            {
                "Name": f"DE batch project {i}",
                "D2R_Legal_Entity__c": "DE01",
                "CurrencyIsoCode": "EUR",
                "pse__Is_Active__c": True,
            }
            for i in range(16)
        ],
    )
    cards = [
        timecard(
            p,
            people[("Konrad Zuse", "Emmy Noether")[w % 2]],
            date(2026, 10, 5) + timedelta(weeks=w % 3),
            hours=7 + w % 2,
            days=1 + w % 5,
        )
        for p in projects
        for w in range(20)
    ]
    ghost = (
        await create_many(
            e,
            "Contact",
            [
                {
                    # A consultant new to the ERP now gets an employee before their time posts
                    # (master data); this one sits in an entity the ERP has no subsidiary for,
                    # so the employee is refused for good and their card is the poison record.
                    "LastName": "Ghost",
                    "pse__Is_Resource__c": True,
                    "D2R_Home_Legal_Entity__c": "ZZ01",
                    "pse__Resource_Role__c": "Consultant",
                }
            ],
        )
    )[0]
    poison = (await create_many(e, "pse__Timecard_Header__c", [timecard(projects[3], ghost, date(2026, 10, 5))]))[0]
    await create_many(e, "pse__Timecard_Header__c", cards)
    await create_many(
        e,
        "pse__Expense__c",
        [
            {
                "pse__Project__c": projects[0],
                "pse__Resource__c": people["Emmy Noether"],
                "pse__Amount__c": 120.5,
                "pse__Expense_Date__c": "2026-10-07",
                "pse__Status__c": "Approved",
                "pse__Type__c": "Travel",
                "CurrencyIsoCode": "EUR",
            }
        ],
    )
    expected_days = sum(1 + w % 5 for _ in projects for w in range(20))
    # Slow the ERP down so the run is still going when the worker dies.
    async with httpx.AsyncClient(base_url=e.ns_us.url) as http:
        (await http.post("/__admin/faults", json={"latency_ms": 15})).raise_for_status()

    handle = await e.client.start_workflow(
        TimeAndExpensePostingWorkflow.run,
        PostingInput(
            legal_entity="DE01",
            posting_date=date(2026, 10, 31),
            queues=e.queues,
            heartbeat_seconds=5,
            config=PostingConfig(projects_per_page=1),
        ),
        id="posting-DE01-2026-10-31",
        task_queue=e.workflow_queue,
    )

    async def some_pages_done() -> bool:
        return (await handle.query(TimeAndExpensePostingWorkflow.progress)).page >= 3

    await eventually(some_pages_done, within=60)
    e.workers[0].send_signal(signal.SIGKILL)  # mid-run: its page (if any) is retried elsewhere
    e.workers[0].wait()
    e.start_worker()  # ...and a replacement joins
    result = await handle.result()
    async with httpx.AsyncClient(base_url=e.ns_us.url) as http:
        (await http.delete("/__admin/faults")).raise_for_status()

    p = result.progress
    assert p.time_entries == expected_days
    assert p.expenses == 1
    assert p.exceptions_total == 1 and p.exceptions[0].source_id == poison  # the poison record only
    bills = [b for b in await ns_records(e.ns_us, "timeBill") if b.get("externalId", "").startswith("d2r:tb:")]
    mine = [b for b in bills if b.get("custcol_d2r_project_id") in set(projects)]
    assert len(mine) == expected_days  # each entry once
    assert (await admin(e.ns_us, "duplicates"))["count"] == 0
    assert len({b["externalId"] for b in mine}) == expected_days
    posted = await soql(
        e,
        "SELECT Id, D2R_Posted__c FROM pse__Timecard_Header__c WHERE pse__Project__c IN ("
        + ", ".join(f"'{x}'" for x in projects)
        + ")",
    )
    assert {r["Id"] for r in posted if not r["D2R_Posted__c"]} == {poison}
    # Scale-out: pages ran in more than one worker process.
    assert len(p.pages_by_worker) >= 2, p.pages_by_worker

    # A second run finds nothing new and writes nothing.
    again = await e.client.execute_workflow(
        TimeAndExpensePostingWorkflow.run,
        PostingInput(legal_entity="DE01", posting_date=date(2026, 10, 31), queues=e.queues),
        id="posting-DE01-2026-10-31-again",
        task_queue=e.workflow_queue,
    )
    assert again.progress.time_entries == 0 and again.progress.exceptions_total == 1
    assert (
        len([b for b in await ns_records(e.ns_us, "timeBill") if b.get("custcol_d2r_project_id") in set(projects)])
        == expected_days
    )


# ---- faults isolate to the record: a steady 10 % 5xx and 5 % 429 from the ERP -------------------------


async def test_posting_finishes_while_the_erp_misbehaves_and_parks_only_what_keeps_failing(env: Env) -> None:
    """Before, a page failed whenever any of its calls did: at 10 % 5xx a page of 30 calls
    succeeded about 4 % of the time, and the run stalled. Now each call retries on its own
    (Retry-After honoured); the one time bill the ERP keeps throttling is parked as an
    exception, stays unposted in the PSA, and the next run posts it. Nothing twice."""
    e = env
    people = await consultants(e)
    projects = await create_many(
        e,
        "pse__Proj__c",
        [{"Name": f"DE faults project {i}", "D2R_Legal_Entity__c": "DE01", "CurrencyIsoCode": "EUR"} for i in range(6)],
    )
    cards = [
        timecard(p, people[("Konrad Zuse", "Emmy Noether")[w % 2]], date(2026, 9, 7) + timedelta(weeks=w % 3), days=2)
        for p in projects
        for w in range(5)
    ]
    card_ids = await create_many(e, "pse__Timecard_Header__c", cards)
    expenses = await create_many(
        e,
        "pse__Expense__c",
        [
            {
                "pse__Project__c": p,
                "pse__Resource__c": people["Emmy Noether"],
                "pse__Amount__c": 80 + i,
                "pse__Expense_Date__c": "2026-09-09",
                "pse__Status__c": "Approved",
                "pse__Type__c": "Travel",
                "CurrencyIsoCode": "EUR",
            }
            for i, p in enumerate(projects)
        ],
    )
    stubborn = card_ids[7]
    faults = {
        "error_rate": 0.10,
        "throttle_rate": 0.05,
        "retry_after_s": 1,
        "seed": 13,
        # one record the ERP keeps throttling, whatever the retries: it must be parked, not block the page
        "reject": [{"method": "PUT", "path": f"/timeBill/eid:d2r:tb:{stubborn}", "status": 429, "code": "BUSY"}],
    }
    expected_days = len(cards) * 2

    def run(suffix: str) -> Any:
        return e.client.execute_workflow(
            TimeAndExpensePostingWorkflow.run,
            PostingInput(
                legal_entity="DE01",
                posting_date=date(2026, 9, 30),
                cutoff=date(2026, 9, 30),
                queues=e.queues,
                config=PostingConfig(projects_per_page=2, journal_lines=2),
            ),
            id=f"posting-DE01-2026-09-30-{suffix}",
            task_queue=e.workflow_queue,
        )

    async with httpx.AsyncClient(base_url=e.ns_us.url) as http:
        (await http.post("/__admin/faults", json=faults)).raise_for_status()
        try:
            first = await asyncio.wait_for(run("faulty"), timeout=240)
            misbehaved = await http.get("/__admin/faults")
        finally:
            (await http.delete("/__admin/faults")).raise_for_status()
    p = first.progress
    assert p.time_entries == expected_days - 2  # all but the stubborn card's two days
    assert p.expenses == len(expenses)
    assert [(x.source_id, x.code) for x in p.exceptions] == [(stubborn, "ERP_UNAVAILABLE")]
    assert misbehaved.json()["rejected"] != [0]  # the stubborn record was really refused

    second = await run("after")  # faults cleared: the parked record is picked up
    assert second.progress.time_entries == 2 and second.progress.exceptions_total == 0
    bills = [b for b in await ns_records(e.ns_us, "timeBill") if b.get("custcol_d2r_project_id") in set(projects)]
    assert len(bills) == len({b["externalId"] for b in bills}) == expected_days  # each day once
    journals = await ns_records(e.ns_us, "journalEntry")
    items = [line for j in journals for line in (j.get("line") or [])]  # the admin view keeps sublists as lists
    expense_lines = [
        line["custcol_d2r_source_id"]
        for line in items
        if line.get("custcol_d2r_source_id") in set(expenses) and line.get("debit")
    ]
    assert sorted(expense_lines) == sorted(expenses)  # each expense's cost booked once
    assert (await admin(e.ns_us, "duplicates"))["count"] == 0
    rows = await soql(
        e,
        "SELECT Id, D2R_Posted__c FROM pse__Timecard_Header__c WHERE pse__Project__c IN ("
        + ", ".join(f"'{x}'" for x in projects)
        + ")",
    )
    assert all(r["D2R_Posted__c"] for r in rows)


# ---- month-end for two legal entities, one with a consultant transfer ---------------------------------


async def _in_delivery(e: Env, opportunity_id: str) -> dict[str, Any]:
    handle = e.client.get_workflow_handle(engagement_workflow_id(opportunity_id))

    async def ready() -> Any:
        view = await handle.query(EngagementWorkflow.view)
        return view if view.stage == "IN_DELIVERY" else None

    view = await eventually(ready, within=60)
    return dict(view.model_dump())


async def _close(e: Env, entity: str, period: str) -> dict[str, Any]:
    forbidden = await e.api.post(
        "/v1/period-close", json={"legal_entity": entity, "period": period}, headers={"Authorization": "Bearer sales"}
    )
    assert forbidden.status_code == 403  # finance or integration_admin only
    started = await e.api.post("/v1/period-close", json={"legal_entity": entity, "period": period}, headers=FINANCE_A)
    assert started.status_code == 201, started.text
    again = await e.api.post("/v1/period-close", json={"legal_entity": entity, "period": period}, headers=FINANCE_A)
    assert again.status_code == 200  # idempotent: the same close

    async def awaiting() -> Any:
        r = await e.api.get(f"/v1/period-close/{entity}/{period}", headers=FINANCE_A)
        body = r.json()
        return body if body.get("step") == "AWAITING_APPROVAL" else None

    report: dict[str, Any] = await eventually(awaiting, within=120)
    # four eyes: whoever started the close may not approve the lock
    refused = await e.api.post(f"/v1/period-close/{entity}/{period}/approve", json={}, headers=FINANCE_A)
    assert refused.status_code == 409, refused.text
    approved = await e.api.post(
        f"/v1/period-close/{entity}/{period}/approve", json={"comment": "checked"}, headers=FINANCE_B
    )
    assert approved.status_code == 200, approved.text

    async def closed() -> Any:
        body = (await e.api.get(f"/v1/period-close/{entity}/{period}", headers=FINANCE_A)).json()
        return body if body.get("step") == "CLOSED" else None

    final: dict[str, Any] = await eventually(closed, within=60)
    assert final["locked"]
    assert report["posting"] is not None
    return final


async def test_month_end_for_two_entities_with_a_transfer(env: Env) -> None:
    e = env
    if sum(1 for w in e.workers if w.poll() is None) < 1:
        e.start_worker()
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

    # Margaret Hamilton (US01) moves to UK01 on 16 Nov; Alan Turing (UK01) helps on the US project.
    margaret, alan, tim = people["Margaret Hamilton"], people["Alan Turing"], people["Tim Berners-Lee"]
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
            timecard(us["project_id"], alan, date(2026, 11, 9), hours=4, role="Senior Consultant"),
            timecard(uk["project_id"], tim, date(2026, 11, 9), role="Consultant"),
        ],
    )

    us_report = await _close(e, "US01", "2026-11")
    posting = us_report["posting"]["progress"]
    assert posting["time_entries"] == 15 and posting["exceptions_total"] == 0
    assert posting["intercompany_charges"] == 2  # Margaret after her move, and Alan
    # one engagement in delivery, closed; the report is a summary (this stack has no hub for its lines)
    assert (us_report["engagements_total"], us_report["engagements_closed"]) == (1, 1), us_report
    assert us_report["windows"] == 1 and not us_report["lines_in_hub"]
    # The month-end batch read the delivery and wrote the engagement's documents and feedback.
    assert us_report["engagements_batched"] == 1 and us_report["handed_back"] == 0, us_report
    posted = [i for i in await ns_records(e.ns_us, "invoice") if (i.get("externalId") or "").startswith("inv:")]
    assert len(posted) == us_report["totals"]["invoices"] >= 1
    opportunity = await sf_call(e, "GET", f"{DATA}/sobjects/Opportunity/{us_opp}")
    assert opportunity["D2R_Billing_Status__c"] == "Billed"
    assert us_report["engagements_failed"] == 0
    assert us_report["totals"]["billed"]["USD"] != "0"
    assert us_report["reconciliation"]["status"] in ("clean", "skipped")
    # time went to the entity that employed the consultant on the day
    us_bills = {b["externalId"] for b in await ns_records(e.ns_us, "timeBill")}
    uk_bills = {b["externalId"] for b in await ns_records(e.ns_uk, "timeBill")}
    assert any("d2r:tb:" in x and ":2026-11-02" in x for x in us_bills)
    assert any(":2026-11-16" in x for x in uk_bills) and not any(":2026-11-16" in x for x in us_bills)
    # intercompany: UK01 charges US01 (provider books in UK's ERP, receiver in the US one)
    uk_journals = [j for j in await ns_records(e.ns_uk, "journalEntry") if ":ic:UK01:" in (j.get("externalId") or "")]
    us_journals = [j for j in await ns_records(e.ns_us, "journalEntry") if ":ic:US01:" in (j.get("externalId") or "")]
    assert uk_journals and us_journals

    uk_report = await _close(e, "UK01", "2026-11")
    assert uk_report["posting"]["progress"]["time_entries"] == 5
    assert (uk_report["engagements_total"], uk_report["engagements_closed"]) == (1, 1), uk_report
    for sim in (e.ns_us, e.ns_uk):
        period = next(p for p in await ns_records(sim, "accountingPeriod") if p.get("externalId") == "2026-11")
        # locked for the closed entity's subsidiary only (the account's others close on their own)
        assert period.get("custrecord_d2r_locked_subsidiaries") and not period.get("allLocked")
        assert (await admin(sim, "duplicates"))["count"] == 0

    # A late timecard into the locked period becomes an exception, and stays unposted.
    late = (
        await create_many(
            e,
            "pse__Timecard_Header__c",
            [timecard(us["project_id"], people["Hedy Lamarr"], date(2026, 11, 23), role="Senior Consultant")],
        )
    )[0]
    response = await e.api.post(
        "/v1/postings", json={"legal_entity": "US01", "posting_date": "2026-12-01"}, headers=FINANCE_A
    )
    assert response.status_code == 202, response.text
    result = await e.client.get_workflow_handle(response.json()["workflow_id"]).result()
    progress = result["progress"] if isinstance(result, dict) else result.progress
    exceptions = progress["exceptions"] if isinstance(progress, dict) else [x.model_dump() for x in progress.exceptions]
    assert {x["source_id"] for x in exceptions} == {late}
    assert exceptions[0]["code"] == "PERIOD_LOCKED"

    # Re-running a close is harmless: the same close comes back.
    rerun = await e.api.post("/v1/period-close", json={"legal_entity": "US01", "period": "2026-11"}, headers=FINANCE_A)
    assert rerun.status_code == 200 and rerun.json()["step"] == "CLOSED"


async def test_month_end_finishes_while_the_erp_misbehaves(env: Env) -> None:
    """DE01's month-end with its ERP at a steady 10 % 5xx and 5 % 429 (Retry-After 1 s): the
    final posting run, the engagement's documents, the lock: the close still ends CLOSED,
    the engagement closed, every document once."""
    e = env
    if sum(1 for w in e.workers if w.poll() is None) < 1:
        e.start_worker()
    info = await admin(e.sf, "seed-info")
    de_opp = info["opportunities"]["valid"]["de01_retainer"]
    await e.client.start_workflow(
        EngagementWorkflow.run,
        EngagementInput(opportunity_id=de_opp, queues=e.queues),
        id=engagement_workflow_id(de_opp),
        task_queue=e.workflow_queue,
    )
    de = await _in_delivery(e, de_opp)
    assert de["legal_entity"] == "DE01"
    people = await consultants(e)
    await create_many(
        e, "pse__Timecard_Header__c", [timecard(de["project_id"], people["Emmy Noether"], date(2026, 11, 9))]
    )
    faults = {"error_rate": 0.10, "throttle_rate": 0.05, "retry_after_s": 1, "seed": 21}
    async with httpx.AsyncClient(base_url=e.ns_us.url) as http:
        (await http.post("/__admin/faults", json=faults)).raise_for_status()
        try:
            report = await _close(e, "DE01", "2026-11")
        finally:
            (await http.delete("/__admin/faults")).raise_for_status()
    assert report["engagements_failed"] == 0
    assert (report["engagements_total"], report["engagements_closed"]) == (1, 1), report
    # only the exactly-once test's poison card (refused by the ERP) stays out; nothing parked by the faults
    progress = report["posting"]["progress"]
    assert progress["exceptions_total"] <= 1
    assert all(x["code"] != "ERP_UNAVAILABLE" for x in progress["exceptions"]), progress["exceptions"]
    invoices = [i for i in await ns_records(e.ns_us, "invoice") if de_opp in json.dumps(i)]
    assert len(invoices) == len({i["externalId"] for i in invoices}) == report["totals"]["invoices"]
    assert (await admin(e.ns_us, "duplicates"))["count"] == 0


async def test_schedules_are_created_idempotently(env: Env) -> None:
    settings = WorkerSettings(workflow_task_queue=env.workflow_queue)
    first = await ensure_schedules(env.client, settings, ["US01", "UK01"])
    second = await ensure_schedules(env.client, settings, ["US01", "UK01"], posting_hour=2)
    assert (
        first
        == second
        == [
            "d2r-close-monthly-UK01",
            "d2r-close-monthly-US01",
            "d2r-fx-sync-daily",
            "d2r-posting-daily-UK01",
            "d2r-posting-daily-US01",
            "d2r-sync-daily-UK01",
            "d2r-sync-daily-US01",
        ]
    )
    described = await env.client.get_schedule_handle("d2r-posting-daily-US01").describe()
    assert described.schedule.spec.calendars[0].hour[0].start == 2
    for schedule_id in first:
        await env.client.get_schedule_handle(schedule_id).delete()
