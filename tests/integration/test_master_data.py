"""Master data on the real path: the Salesforce/Certinia, NetSuite (US01) and Dynamics 365
(UK01) simulators as processes, the Temporal dev server, the embedded PostgreSQL hub, the
worker and the API (a real HTTP server, so the CRM's webhooks reach it).

- a consultant created in the PSA mid-month is an ERP employee after the daily consultant
  sweep, and the posting run (the one the close makes) posts their time with no exception;
- an account renamed in the CRM reaches NetSuite and D365 once, through the daily sweep
  (one activity per page of accounts) or the CRM's webhook, and the other path then finds
  it in step and writes nothing;
- a customer edited directly in an ERP becomes one `master_data.conflict` (a second sweep
  counts an occurrence, and never overwrites), resolved through the API both ways;
- PSA projects become the ERP's project dimension (a NetSuite job, a D365 project) and a
  renamed project is renamed there, once;
- a second CRM account with the same tax id and website is a `master_data.duplicate`, and
  provisioning refuses to give it a second ERP customer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from connectors.dynamics import DynamicsClient, DynamicsConfig, DynamicsErp
from connectors.dynamics.client import key
from connectors.netsuite import NetSuiteClient, NetSuiteConfig
from connectors.netsuite.erp import NetSuiteErp
from connectors.salesforce import SalesforceClient, SalesforceConfig
from connectors.salesforce.crm import SalesforceCrm
from contracts.erp import UpsertCustomerInput
from contracts.master_data import (
    ConsultantSyncInput,
    ConsultantSyncResult,
    CustomerSyncInput,
    CustomerSyncResult,
    ProjectSyncInput,
    ProjectSyncResult,
    SweepMark,
    account_change_workflow_id,
)
from contracts.posting import PostingConfig, PostingInput, PostingResult
from contracts.queues import TaskQueues
from domain.deal import Customer, Engagement
from simulators.devkeys import DEV_KEY_ID
from simulators.dynamics import DynamicsSettings
from tests.connectors.conftest import engagement
from tests.integration.conftest import Simulator, eventually, free_port, start_simulator
from tests.integration.month_end_api import month_end_api_settings
from tests.reporting.conftest import TEMPLATE, dsn_for, pg_root, template_dsn  # noqa: F401 - fixtures
from tests.vendor_auth import private_key_pem
from workers.composition import ActivitySet, build_activities
from workers.main import start_workers
from workers.registry import activities_by_role
from workers.settings import VendorEndpoint, WorkerSettings
from workflows.master_data import ConsultantSyncWorkflow, CustomerSyncWorkflow, ProjectSyncWorkflow
from workflows.posting import TimeAndExpensePostingWorkflow

pytestmark = pytest.mark.integration

FINANCE = {"Authorization": "Bearer fin-a"}
TENANT = DynamicsSettings().tenant


@dataclass
class World:
    client: Client
    api: httpx.AsyncClient
    sims: dict[str, Simulator]
    sf: SalesforceClient
    ns: NetSuiteClient
    d365: DynamicsClient
    acts: ActivitySet
    queues: TaskQueues
    workflow_queue: str
    db: asyncpg.Pool
    hooks_on: bool = True

    async def sweep(self, after: datetime, page_size: int = 50) -> tuple[CustomerSyncResult, int]:
        """A customer sweep from `after`, and how many activities its history scheduled."""
        wid = f"master-data-customers-test-{uuid.uuid4().hex[:8]}"
        result: CustomerSyncResult = await self.client.execute_workflow(
            CustomerSyncWorkflow.run,
            CustomerSyncInput(
                after=SweepMark(modified_at=after, record_id=""), page_size=page_size, queues=self.queues
            ),
            id=wid,
            task_queue=self.workflow_queue,
        )
        history = await self.client.get_workflow_handle(wid).fetch_history()
        activities = sum(1 for e in history.events if e.HasField("activity_task_scheduled_event_attributes"))
        return result, activities

    async def webhooks(self, on: bool) -> None:
        """The CRM's webhooks to the API (on) or held in its outbox (off)."""
        self.hooks_on = on
        async with httpx.AsyncClient(base_url=self.sims["salesforce"].url) as http:
            url = f"{str(self.api.base_url).rstrip('/')}/v1/webhooks/salesforce" if on else None
            (await http.post("/__admin/webhooks", json={"url": url})).raise_for_status()
            if on:
                (await http.post("/__admin/webhooks/flush")).raise_for_status()

    async def records(self, sim: str, rtype: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=self.sims[sim].url) as http:
            response = await http.get(f"/__admin/records/{rtype}", params={"limit": 100000})
            response.raise_for_status()
            return list(response.json()["records"])

    async def ns_customer(self, account_id: str) -> dict[str, Any]:
        found = await self.ns.get_by_external_id("customer", f"d2r:customer:{account_id}")
        assert found is not None
        return found

    async def d365_customer(self, account_id: str) -> dict[str, Any]:
        rows = [r for r in await self.records("dynamics", "CustomersV3") if r.get("D2RCrmAccountId") == account_id]
        assert len(rows) == 1, rows
        return rows[0]

    async def new_customer(self, name: str, tax_id: str, website: str | None = None) -> str:
        """A CRM account that is a customer in both ERPs (as provisioning leaves it)."""
        account = await self.sf.create(
            "Account", {"Name": name, "D2R_Tax_Id__c": tax_id, **({"Website": website} if website else {})}
        )
        base = await engagement(SalesforceCrm(self.sf))
        customer = Customer(customer_id=account, name=name, tax_id=tax_id)
        us = base.model_copy(update={"customer": customer})
        uk = base.model_copy(update={"customer": customer, "legal_entity": "UK01", "currency": "GBP"})
        await NetSuiteErp(self.ns).upsert_customer(us, f"d2r:customer:{account}")
        await DynamicsErp(self.d365).upsert_customer(uk, f"d2r:customer:{account}")
        if self.hooks_on:
            # the new account's own event: its run reads the account as it is then, so let it
            # finish before the test changes anything
            created = (await self.sf.get("Account", account))["LastModifiedDate"]
            await eventually(lambda: _result(self, account_change_workflow_id(account, created)), within=60)
        return account

    async def exceptions(self, kind: str, status: str = "all") -> list[dict[str, Any]]:
        response = await self.api.get("/v1/exceptions", params={"kind": kind, "status": status}, headers=FINANCE)
        assert response.status_code == 200, response.text
        return list(response.json()["items"])


def now() -> datetime:
    return datetime.now(UTC) - timedelta(seconds=1)


@pytest.fixture(scope="module")
def sims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Simulator]]:
    base = tmp_path_factory.mktemp("md-sims")
    out = {
        "salesforce": start_simulator("simulators.salesforce", base / "sf.sqlite", base / "sf.log"),
        "netsuite": start_simulator("simulators.netsuite", base / "ns.sqlite", base / "ns.log"),
        "dynamics": start_simulator("simulators.dynamics", base / "d365.sqlite", base / "d365.log"),
    }
    yield out
    for sim in out.values():
        sim.process.terminate()
        sim.process.wait(timeout=10)


@pytest.fixture(scope="module")
async def hub_dsn(pg_root: Path, template_dsn: str) -> str:  # noqa: F811 - fixtures
    name = f"md_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn_for(pg_root, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    finally:
        await admin.close()
    return dsn_for(pg_root, name)


@pytest.fixture(scope="module")
async def world(sims: dict[str, Simulator], temporal_env: WorkflowEnvironment, hub_dsn: str) -> AsyncIterator[World]:
    tag = uuid.uuid4().hex[:6]
    queues = TaskQueues(crm=f"md-crm-{tag}", psa=f"md-psa-{tag}", erp=f"md-erp-{tag}", reporting=f"md-rep-{tag}")
    settings = WorkerSettings(
        workflow_task_queue=f"md-wf-{tag}",
        crm_task_queue=queues.crm,
        psa_task_queue=queues.psa,
        erp_task_queue=queues.erp,
        reporting_task_queue=queues.reporting or "",
        salesforce=VendorEndpoint(url=sims["salesforce"].url),
        erp_instances={
            "ns": VendorEndpoint(url=sims["netsuite"].url),
            "d365": VendorEndpoint(url=sims["dynamics"].url, vendor="dynamics", options={"tenant": TENANT}),
        },
        erp_routing={"UK01": "d365"},
        erp_default_instance="ns",
        hub_database_url=hub_dsn,
        deployment_name=f"md-{tag}",
        set_current_version="always",
    )
    client = temporal_env.client
    api_port = free_port()
    async with AsyncExitStack() as exits:
        acts = await build_activities(settings, exits, client)
        await start_workers(client, settings, activities_by_role(acts), exits)
        api_settings = month_end_api_settings(settings.workflow_task_queue, queues, sims["salesforce"].url)
        api_settings = api_settings.model_copy(
            update={"database_url": hub_dsn, "reporting_task_queue": queues.reporting}
        )
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(api_settings, temporal=client), host="127.0.0.1", port=api_port, log_level="warning"
            )
        )
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.05)
        api = await exits.enter_async_context(httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}"))
        sf_client = SalesforceClient(
            SalesforceConfig(base_url=sims["salesforce"].url, client_id="d2r-dev", client_secret="d2r-dev-secret")
        )
        ns_client = NetSuiteClient(
            NetSuiteConfig(
                base_url=sims["netsuite"].url,
                client_id="d2r-dev",
                certificate_id=DEV_KEY_ID,
                private_key=private_key_pem(),
            )
        )
        d365_client = DynamicsClient(
            DynamicsConfig(
                base_url=sims["dynamics"].url, tenant=TENANT, client_id="d2r-dev", client_secret="d2r-dev-secret"
            )
        )
        for c in (sf_client, ns_client, d365_client):
            exits.push_async_callback(c.aclose)
        pool = await asyncpg.create_pool(hub_dsn, min_size=1, max_size=2)
        exits.push_async_callback(pool.close)
        world = World(
            client, api, sims, sf_client, ns_client, d365_client, acts, queues, settings.workflow_task_queue, pool
        )
        await world.webhooks(on=True)
        try:
            yield world
        finally:
            server.should_exit = True
            await serving


# ---- consultants ---------------------------------------------------------------------------


async def test_a_consultant_created_mid_month_is_an_employee_before_the_close_posts_their_time(world: World) -> None:
    before = now()
    person = await world.sf.create(
        "Contact",
        {
            "FirstName": "Dorothy",
            "LastName": "Vaughan",
            "pse__Is_Resource__c": True,
            "pse__Is_Resource_Active__c": True,
            "pse__Resource_Role__c": "Consultant",
            "D2R_Home_Legal_Entity__c": "US01",
            "pse__Default_Cost_Rate__c": 95,
            "CurrencyIsoCode": "USD",
        },
    )
    project = await world.sf.create(
        "pse__Proj__c", {"Name": "Master data: new hire", "D2R_Legal_Entity__c": "US01", "CurrencyIsoCode": "USD"}
    )
    await world.sf.create(
        "pse__Timecard_Header__c",
        {
            "pse__Project__c": project,
            "pse__Resource__c": person,
            "pse__Start_Date__c": "2026-11-16",
            "pse__End_Date__c": "2026-11-22",
            "pse__Wednesday_Hours__c": 7.5,
            "pse__Status__c": "Approved",
            "pse__Billable__c": True,
            "pse__Bill_Rate__c": 180,
        },
    )
    # the daily consultant sweep (the Schedule runs it before the posting run)
    swept: ConsultantSyncResult = await world.client.execute_workflow(
        ConsultantSyncWorkflow.run,
        ConsultantSyncInput(after=SweepMark(modified_at=before, record_id=""), queues=world.queues),
        id=f"master-data-consultants-test-{uuid.uuid4().hex[:8]}",
        task_queue=world.workflow_queue,
    )
    assert swept.counts.records == 1 and swept.counts.created == 1 and swept.counts.refused == 0
    employees = [e for e in await world.records("netsuite", "employee") if e.get("externalId") == person]
    assert len(employees) == 1 and employees[0]["lastName"] == "Vaughan"
    # the month-end's final posting run: their time posts, nothing is refused
    posted: PostingResult = await world.client.execute_workflow(
        TimeAndExpensePostingWorkflow.run,
        PostingInput(
            legal_entity="US01",
            posting_date=date(2026, 11, 30),
            queues=world.queues,
            sweep_overdue=False,
            config=PostingConfig(time_mode="time_bill"),
        ),
        id=f"posting-US01-2026-11-30-md-{uuid.uuid4().hex[:6]}",
        task_queue=world.workflow_queue,
    )
    assert posted.progress.exceptions_total == 0, posted.progress.exceptions
    bills = [b for b in await world.records("netsuite", "timeBill") if b.get("custcol_d2r_project_id") == project]
    assert len(bills) == 1 and bills[0]["employee"]["id"] == employees[0]["id"]
    # swept again: the employee exists, nobody is hired twice
    again: ConsultantSyncResult = await world.client.execute_workflow(
        ConsultantSyncWorkflow.run,
        ConsultantSyncInput(after=SweepMark(modified_at=before, record_id=""), queues=world.queues),
        id=f"master-data-consultants-test-{uuid.uuid4().hex[:8]}",
        task_queue=world.workflow_queue,
    )
    assert (again.counts.created, again.counts.in_step) == (0, 1)
    assert len([e for e in await world.records("netsuite", "employee") if e.get("externalId") == person]) == 1


# ---- customers: the sweep and the webhook -----------------------------------------------------


async def test_a_renamed_account_reaches_both_erps_once_by_sweep_then_the_webhook_finds_it_in_step(
    world: World,
) -> None:
    await world.webhooks(on=False)  # the account's events wait in the CRM's outbox
    account = await world.new_customer("Hooli", "US-HOOLI-1")
    before = now()
    await world.sf.update("Account", account, {"Name": "Hooli XYZ"})
    result, activities = await world.sweep(before, page_size=1)
    # every account modified since `before` (this one at least), one activity per page of one
    assert result.counts.records >= 1 and activities == result.pages == result.counts.records + 1
    assert (result.counts.written, result.counts.conflicts) == (2, 0)  # one account: its NetSuite and D365 records
    ns = await world.ns_customer(account)
    d365 = await world.d365_customer(account)
    assert ns["companyName"] == d365["OrganizationName"] == "Hooli XYZ"
    stamp = ns["lastModifiedDate"]
    # the held webhook now arrives: its run finds both ERPs in step and writes nothing
    modified = (await world.sf.get("Account", account))["LastModifiedDate"]
    await world.webhooks(on=True)
    hooked = await eventually(lambda: _result(world, account_change_workflow_id(account, modified)), within=60)
    assert (hooked.counts.records, hooked.counts.written, hooked.counts.in_step) == (1, 0, 2)
    assert (await world.ns_customer(account))["lastModifiedDate"] == stamp


async def test_a_renamed_account_reaches_both_erps_by_webhook_and_the_sweep_writes_nothing(world: World) -> None:
    account = await world.new_customer("Pied Piper", "US-PIPER-1")
    before = now()
    await world.sf.update("Account", account, {"Name": "Pied Piper Inc"})
    modified = (await world.sf.get("Account", account))["LastModifiedDate"]
    hooked = await eventually(lambda: _result(world, account_change_workflow_id(account, modified)), within=60)
    assert (hooked.counts.written, hooked.counts.downstream) == (2, 2)
    assert (await world.ns_customer(account))["companyName"] == "Pied Piper Inc"
    assert (await world.d365_customer(account))["OrganizationName"] == "Pied Piper Inc"
    stamp = (await world.ns_customer(account))["lastModifiedDate"]
    result, _ = await world.sweep(before)
    assert result.counts.written == 0 and result.counts.conflicts == 0
    assert (await world.ns_customer(account))["lastModifiedDate"] == stamp


async def _result(world: World, workflow_id: str) -> CustomerSyncResult | None:
    try:
        handle = world.client.get_workflow_handle_for(CustomerSyncWorkflow.run, workflow_id)
        return await handle.result()
    except Exception:  # not started yet (the webhook is on its way)
        return None


# ---- conflicts ---------------------------------------------------------------------------------


async def test_an_erp_side_edit_is_one_conflict_resolved_by_keeping_the_owners_value(world: World) -> None:
    account = await world.new_customer("Vandelay Industries", "US-VANDELAY-1")
    ns = await world.ns_customer(account)
    await world.ns.patch("customer", str(ns["id"]), {"companyName": "Vandelay Imports"})  # edited in NetSuite
    before = now() - timedelta(minutes=5)
    first, _ = await world.sweep(before)
    await world.sweep(before)
    assert [c.field for c in first.conflicts if c.key == account] == ["name"]
    conflicts = [x for x in await world.exceptions("master_data.conflict") if x["customer_id"] == account]
    assert len(conflicts) == 1 and conflicts[0]["occurrences"] == 2  # one conflict, seen by both sweeps
    detail = conflicts[0]["detail"]
    assert (detail["field"], detail["owner_system"], detail["owner_value"]) == ("name", "crm", "Vandelay Industries")
    assert (detail["other_system"], detail["other_value"]) == ("netsuite", "Vandelay Imports")
    assert detail["owner_modified_at"] and detail["other_modified_at"]
    assert (await world.ns_customer(account))["companyName"] == "Vandelay Imports"  # never overwritten blindly
    response = await world.api.post(
        f"/v1/master-data/conflicts/{conflicts[0]['id']}/resolve",
        json={"keep": "owner", "note": "the CRM's name is the legal name"},
        headers=FINANCE,
    )
    assert response.status_code == 200, response.text
    assert response.json()["value"] == "Vandelay Industries"
    assert (await world.ns_customer(account))["companyName"] == "Vandelay Industries"
    resolved = (await world.api.get(f"/v1/exceptions/{conflicts[0]['id']}", headers=FINANCE)).json()
    assert (resolved["status"], resolved["resolved_by"]) == ("resolved", "fiona")
    audit = await world.db.fetch(
        "SELECT actor, detail FROM audit_log WHERE action = 'master_data.conflict.resolve' AND target = $1",
        f"exception/{conflicts[0]['id']}",
    )
    assert len(audit) == 1 and audit[0]["actor"] == "fiona"
    again = await world.api.post(
        f"/v1/master-data/conflicts/{conflicts[0]['id']}/resolve", json={"keep": "other"}, headers=FINANCE
    )
    assert again.status_code == 409
    after, _ = await world.sweep(before)
    assert not [c for c in after.conflicts if c.key == account]


async def test_an_erp_side_edit_accepted_back_into_the_crm_reaches_the_other_erp(world: World) -> None:
    account = await world.new_customer("Soylent Corp", "US-SOYLENT-1")
    d365 = await world.d365_customer(account)
    # edited in D365 by its finance team
    await world.d365.patch(
        "CustomersV3",
        key(dataAreaId=d365["dataAreaId"], CustomerAccount=d365["CustomerAccount"]),
        {"OrganizationName": "Soylent Corporation"},
    )
    before = now() - timedelta(minutes=5)
    await world.sweep(before)
    [conflict] = [x for x in await world.exceptions("master_data.conflict", "open") if x["customer_id"] == account]
    assert conflict["detail"]["other_system"] == "dynamics" and conflict["legal_entity"] == "UK01"
    response = await world.api.post(
        f"/v1/master-data/conflicts/{conflict['id']}/resolve", json={"keep": "other"}, headers=FINANCE
    )
    assert response.status_code == 200, response.text
    assert response.json()["written_to"] == f"crm:{account}"
    assert (await world.sf.get("Account", account))["Name"] == "Soylent Corporation"  # accepted into the owner
    # the CRM changed, so the next sweep (or its webhook) carries it to NetSuite too
    await eventually(lambda: _ns_name_is(world, account, "Soylent Corporation"), within=60)
    result, _ = await world.sweep(before)
    assert not [c for c in result.conflicts if c.key == account]


async def _ns_name_is(world: World, account: str, name: str) -> bool:
    return (await world.ns_customer(account))["companyName"] == name


# ---- duplicates --------------------------------------------------------------------------------


async def test_a_second_account_for_the_same_customer_is_a_duplicate_and_gets_no_second_erp_customer(
    world: World,
) -> None:
    first = await world.new_customer("Massive Dynamic", "US-MASSIVE-1", "https://www.massivedynamic.example")
    before = now()
    second = await world.sf.create(
        "Account",
        {"Name": "Massive Dynamic Inc.", "D2R_Tax_Id__c": "US-MASSIVE-1", "Website": "massivedynamic.example"},
    )
    result, _ = await world.sweep(before)
    assert {c.kind for c in result.conflicts if first in c.key and second in c.key} == {"master_data.duplicate"}
    duplicates = [x for x in await world.exceptions("master_data.duplicate") if x["customer_id"] in (first, second)]
    assert {x["detail"]["key"] for x in duplicates} == {"tax id USMASSIVE1", "domain massivedynamic.example"}
    # provisioning a deal of the second account is refused before an ERP customer is written
    base: Engagement = await engagement(SalesforceCrm(world.sf))
    deal = base.model_copy(
        update={"customer": Customer(customer_id=second, name="Massive Dynamic Inc.", tax_id="US-MASSIVE-1")}
    )
    with pytest.raises(ApplicationError) as refused:
        await world.acts.erp.upsert_customer(UpsertCustomerInput(engagement=deal, external_id=f"d2r:customer:{second}"))
    assert refused.value.type == "master_data.duplicate" and refused.value.non_retryable
    assert await world.ns.get_by_external_id("customer", f"d2r:customer:{second}") is None


# ---- projects ----------------------------------------------------------------------------------


async def test_psa_projects_become_the_erp_project_dimension_and_a_rename_follows_once(world: World) -> None:
    account = await world.new_customer("Wayne Enterprises", "US-WAYNE-1")
    before = now()
    us = await world.sf.create(
        "pse__Proj__c",
        {
            "Name": "Wayne: US rollout",
            "pse__Account__c": account,
            "D2R_Legal_Entity__c": "US01",
            "CurrencyIsoCode": "USD",
        },
    )
    uk = await world.sf.create(
        "pse__Proj__c",
        {
            "Name": "Wayne: UK rollout",
            "pse__Account__c": account,
            "D2R_Legal_Entity__c": "UK01",
            "CurrencyIsoCode": "GBP",
        },
    )

    async def sweep() -> ProjectSyncResult:
        result: ProjectSyncResult = await world.client.execute_workflow(
            ProjectSyncWorkflow.run,
            ProjectSyncInput(after=SweepMark(modified_at=before, record_id=""), page_size=1, queues=world.queues),
            id=f"master-data-projects-test-{uuid.uuid4().hex[:8]}",
            task_queue=world.workflow_queue,
        )
        return result

    first = await sweep()
    assert (first.counts.records, first.counts.written, first.counts.refused) == (2, 2, 0)
    assert first.pages == 3  # pages of one project, and the empty page that ends the sweep
    job = await world.ns.get_by_external_id("job", f"d2r:project:{us}")
    assert job is not None and job["companyName"] == "Wayne: US rollout"
    assert job["parent"]["id"] == str((await world.ns_customer(account))["id"])
    [project] = [p for p in await world.records("dynamics", "Projects") if p.get("D2RReference") == f"d2r:project:{uk}"]
    assert (project["dataAreaId"], project["ProjectName"]) == ("uk01", "Wayne: UK rollout")
    assert project["CustomerAccount"] == (await world.d365_customer(account))["CustomerAccount"]

    await world.sf.update("pse__Proj__c", uk, {"Name": "Wayne: UK and Ireland rollout"})
    second = await sweep()
    assert (second.counts.written, second.counts.in_step) == (1, 1)
    [project] = [p for p in await world.records("dynamics", "Projects") if p.get("D2RReference") == f"d2r:project:{uk}"]
    assert project["ProjectName"] == "Wayne: UK and Ireland rollout"
    third = await sweep()
    assert (third.counts.written, third.counts.in_step) == (0, 2)
