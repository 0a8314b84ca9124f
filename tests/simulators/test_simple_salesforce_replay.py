"""Every call d2r's Salesforce and Certinia connectors make, replayed by a third-party
client: the connectors run a deal's life (read the deal, build the project, write the
links and billing status back, notify, post and extract time, bill, amend, close, undo)
against the simulator while every request they send is recorded; then simple-salesforce
1.12 sends the same requests, in order, to a fresh simulator process over https, and
each must succeed as it did, creating the same records. Queries are replayed with
`query_all`, which follows `nextRecordsUrl` itself (query locators differ per run)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import trustme
from simple_salesforce import Salesforce

from connectors.certinia.extract import CertiniaExtract
from connectors.certinia.posting import CertiniaPosting
from connectors.certinia.psa import CertiniaPsa
from connectors.salesforce.bookings import SalesforceBookingsExtract
from connectors.salesforce.client import SalesforceClient, SalesforceConfig
from connectors.salesforce.crm import SalesforceCrm
from domain.deal import DealRules, Engagement, validate_deal
from domain.money import Money
from domain.system_records import BillingStatus, CrmLinks, Notification, ProjectChange
from simulators._settings import SimSettings
from tests.simulators.procs import free_port, start, stop
from tests.simulators.test_simple_salesforce import LoginHost

VERSION = "61.0"
DATA = f"/services/data/v{VERSION}/"
OPP_US = "006Dd0000000001IAA"
RULES = DealRules(legal_entities={"US01": "USD", "UK01": "GBP", "DE01": "EUR", "JP01": "JPY"})


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, str]
    body: Any
    status: int
    result: Any


class Recorder(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.calls: list[Call] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        if request.url.path.startswith("/services/data/"):
            body = json.loads(request.content) if request.content else None
            result = json.loads(content) if content else None
            self.calls.append(
                Call(request.method, request.url.path, dict(request.url.params), body, response.status_code, result)
            )
        return httpx.Response(response.status_code, headers=response.headers, content=content)


def usd(amount: str) -> Money:
    return Money.model_validate({"amount": amount, "currency": "USD"})


async def record_a_deals_life(tmp: Path) -> list[Call]:
    from simulators.salesforce import create_app

    app = create_app(SimSettings(db=str(tmp / "recorded.sqlite"), seed="demo", port=8301, page_size=5))
    recorder = Recorder(httpx.ASGITransport(app=app))
    sf = SalesforceClient(
        SalesforceConfig(base_url="http://sf.test", client_id="d2r-dev", client_secret="d2r-dev-secret"),
        transport=recorder,
    )
    crm, psa = SalesforceCrm(sf), CertiniaPsa(sf)
    posting, extract, bookings = CertiniaPosting(sf), CertiniaExtract(sf), SalesforceBookingsExtract(sf)
    try:
        deal = validate_deal(await crm.read_opportunity(OPP_US), RULES)
        assert isinstance(deal, Engagement)
        ref = await psa.create_project(deal, "engagement-006Dd0000000001IAA:project")
        project = ref.project_id
        await crm.write_links(OPP_US, CrmLinks(project_id=project, contract_id="SO-1", status="In delivery"))
        await crm.notify(
            "engagement-006Dd0000000001IAA:approval:1",
            Notification(subject="Approve", body="over threshold", audience=["finance"], related_id=OPP_US),
        )
        # a consultant's approved week (what the PSA's users do), then d2r's month-end reads
        consultant = (await sf.query_all("SELECT Id FROM Contact WHERE FirstName = 'Margaret'"))[0]["Id"]
        timecard = await sf.create(
            "pse__Timecard_Header__c",
            {"pse__Project__c": project, "pse__Resource__c": consultant, "pse__Start_Date__c": "2026-12-07",
             "pse__End_Date__c": "2026-12-13", "pse__Monday_Hours__c": 8, "pse__Status__c": "Approved",
             "pse__Billable__c": True},
        )  # fmt: skip
        projects = await posting.projects("US01", "", 100)
        pending = await posting.pending(projects, date(2026, 12, 31))
        assert timecard in {t.entry_id.split(":")[0] for t in pending.time_entries}
        await posting.claim([timecard], [], "posting-US01-2026-12-31:page-1")
        await posting.mark_posted([timecard], [])
        found = await extract.projects("US01", "", 100)
        await extract.approved_time(found, date(2026, 12, 1), date(2026, 12, 31))
        await bookings.bookings("US01", date(2026, 12, 1), date(2026, 12, 31))
        delivery = await psa.read_delivery(project, deal.lines, date(2026, 12, 31))
        await psa.mark_billed([e.entry_id for e in delivery.time_entries], [], True)
        status = BillingStatus(
            status="Billed", billed=usd("2000"), collected=usd("0"), overdue=usd("0"), unbilled_wip=usd("0"),
            as_of=date(2026, 12, 31),
        )  # fmt: skip
        await psa.write_billing_status(project, status)
        await crm.write_billing_status(OPP_US, status)
        await crm.set_contract_value(OPP_US, usd("180000"))
        await psa.apply_change(
            project,
            ProjectChange(
                change_id="AM-1", budget=usd("200000"), milestone_amounts={ref.milestone_ids[0]: usd("40000")}
            ),
        )
        await psa.set_stage(project, "Completed", False)
        assert await psa.project_opportunity(project) == OPP_US
        assert await psa.remove_project("engagement-006Dd0000000001IAA:project")
    finally:
        await sf.aclose()
        app.store.close()
    return recorder.calls


def _kind(method: str, resource: str) -> str:
    """`PATCH sobjects/pse__Proj__c/<ext field>/<value>`: the call's shape, without the ids."""
    parts = resource.split("/")
    if parts[0] == "sobjects":
        tail = {2: "", 3: "/<id>", 4: "/<ext field>/<value>"}[len(parts)]
        return f"{method} sobjects/{parts[1]}{tail}"
    return f"{method} {resource}"


@pytest.fixture(scope="module")
def replay_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Salesforce]:
    tmp = tmp_path_factory.mktemp("sf-replay")
    ca = trustme.CA()
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(tmp / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    port = free_port()
    pem = str(tmp / "server.pem")
    proc = start("simulators.salesforce", port, tmp / "replayed.sqlite", "--seed", "demo", "--page-size", "5",
                 "--tls-cert", pem, "--tls-key", pem)  # fmt: skip
    session = requests.Session()
    session.mount("https://", LoginHost(f"https://127.0.0.1:{port}", str(tmp / "ca.pem")))
    try:
        yield Salesforce(
            consumer_key="d2r-dev", consumer_secret="d2r-dev-secret", domain="d2r-dev.my", session=session,
            version=VERSION,
        )  # fmt: skip
    finally:
        session.close()
        stop(proc)


async def test_simple_salesforce_replays_every_call_d2r_makes(replay_target: Salesforce, tmp_path: Path) -> None:
    calls = await record_a_deals_life(tmp_path)
    kinds: set[str] = set()
    queried: set[str] = set()
    for call in calls:
        assert call.status < 300, (call.method, call.path, call.result)
        resource = call.path.removeprefix(DATA)
        if resource.startswith("query/"):
            continue  # a next page: query_all below follows them
        if resource == "query":
            kinds.add("query")
            queried.add(call.params["q"].split(" FROM ")[1].split()[0])
            every = replay_target.query_all(call.params["q"])
            assert every["totalSize"] == call.result["totalSize"], call.params["q"]
            continue
        kinds.add(_kind(call.method, resource))
        result = replay_target.restful(resource, method=call.method, json=call.body, params=call.params or None)
        if isinstance(call.result, dict) and "id" in call.result:
            assert result is not None and result["id"] == call.result["id"], resource  # the same records
        elif isinstance(call.result, list):
            assert [r.get("success") for r in result or []] == [r.get("success") for r in call.result], resource
    # the kinds of call the connectors make (and the one setup call, the consultant's timecard)
    assert kinds == {
        "query",
        "POST sobjects/pse__Timecard_Header__c",
        "PATCH sobjects/Opportunity/<id>",
        "PATCH sobjects/pse__Proj__c/<id>",
        "PATCH sobjects/pse__Proj__c/<ext field>/<value>",
        "PATCH sobjects/pse__Milestone__c/<ext field>/<value>",
        "PATCH sobjects/pse__Resource_Request__c/<ext field>/<value>",
        "PATCH sobjects/Task/<ext field>/<value>",
        "PATCH composite/sobjects",
        "DELETE sobjects/pse__Milestone__c/<id>",
        "DELETE sobjects/pse__Resource_Request__c/<id>",
        "DELETE sobjects/pse__Proj__c/<id>",
    }, sorted(kinds)
    assert queried == {
        "Opportunity", "OpportunityLineItem", "Account", "Contact", "D2R_Service_Package__c", "pse__Region__c",
        "pse__Practice__c", "pse__Grp__c", "pse__Proj__c", "pse__Milestone__c", "pse__Resource_Request__c",
        "pse__Timecard_Header__c", "pse__Expense__c", "pse__Rate_Card__c",
    }, sorted(queried)  # fmt: skip
