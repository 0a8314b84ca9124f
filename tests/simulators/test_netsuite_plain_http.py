"""Every kind of call d2r makes to NetSuite, made with plain httpx as NetSuite's help
writes them (SuiteTalk REST Web Services: "Working with Records", "Upsert Operation",
"Updating a Sublist" / "Replacing a Sublist", "Expanding Sublists", "Transforming
Records", "Executing SuiteQL Queries Through REST Web Services"), signed with token-based
auth by oauthlib, against the simulator; none of d2r's own client code takes part.

The `netsuite` PyPI client (0.12) would be the natural third party here, but it pins
httpx<0.28 and d2r runs on httpx 0.28, so the two cannot share an environment.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.simulators.test_netsuite_tba import BASE, signed

REC = f"{BASE}/services/rest/record/v1"
SUITEQL = f"{BASE}/services/rest/query/v1/suiteql"
# (client method, record type) of every call in connectors/netsuite, and the test below that makes it
COVERED = {
    ("upsert", "customer"), ("upsert", "salesOrder"), ("get_by_external_id", "salesOrder"),
    ("patch", "salesOrder"), ("upsert", "invoice"), ("get_by_external_id", "creditMemo"),
    ("patch", "creditMemo"), ("transform", "invoice"), ("delete", "creditMemo"), ("upsert", "journalEntry"),
    ("get_by_external_id", "journalEntry"), ("get_by_external_id", "invoice"), ("get", "invoice"),
    ("upsert", "timeBill"), ("get_by_external_id", "accountingPeriod"), ("patch", "accountingPeriod"),
    ("get", "accountingPeriod"), ("get", "customerPayment"), ("get", "currency"), ("suiteql", ""),
    # master data (test_master_data_records_as_the_docs_write_them)
    ("get_by_external_id", "customer"), ("get", "customer"), ("patch", "customer"),
    ("get_by_external_id", "employee"), ("upsert", "employee"), ("get_by_external_id", "job"), ("upsert", "job"),
}  # fmt: skip


class Http:
    """httpx with each request signed (TBA), the way the docs' examples send them."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def __call__(self, method: str, url: str, **kw: Any) -> httpx.Response:
        request = self.client.build_request(method, url, **kw)
        request.headers.update(signed(str(request.url), method))
        return await self.client.send(request)


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[Http]:
    from simulators._settings import SimSettings
    from simulators.netsuite import create_app

    app = create_app(SimSettings(db=str(tmp_path / "ns.sqlite"), seed="demo", port=8302))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        yield Http(client)
    app.store.close()


def created_id(r: httpx.Response) -> str:
    assert r.status_code == 204 and not r.content, r.text  # 204 No Content + Location
    return r.headers["Location"].rsplit("/", 1)[-1]


def test_this_file_makes_every_call_the_connector_makes() -> None:
    calls = set()
    call = re.compile(r"self\._ns\.(\w+)\(\s*\"(\w+)\"")
    for path in (Path(__file__).resolve().parents[2] / "connectors" / "netsuite").glob("*.py"):
        text = path.read_text()
        calls |= set(call.findall(text))
        if "self._ns.suiteql(" in text:
            calls.add(("suiteql", ""))
    assert calls <= COVERED, calls - COVERED


async def test_documents_as_the_docs_write_them(http: Http) -> None:
    json = {"Content-Type": "application/json"}
    customer = created_id(
        await http(
            "PUT",
            f"{REC}/customer/eid:CRM-001",
            headers=json,
            json={"companyName": "Docs Co", "subsidiary": {"externalId": "US01"}, "isPerson": False},
        )
    )
    line = {"item": {"externalId": "CONS-TM"}, "quantity": 1, "rate": 100}
    order = created_id(
        await http(
            "PUT",
            f"{REC}/salesOrder/eid:SO-1",
            json={"entity": {"id": customer}, "item": {"items": [line, {**line, "rate": 200}]}},
        )
    )
    # sublists come back only when asked for
    r = await http("GET", f"{REC}/salesOrder/eid:SO-1", params={"expandSubResources": "true"})
    assert r.json()["id"] == order and r.json()["item"]["totalResults"] == 2
    # PATCH adds lines unless ?replace= names the sublist
    assert (await http("PATCH", f"{REC}/salesOrder/{order}", params={"replace": "item"},
                       json={"item": {"items": [{**line, "rate": 300}]}})).status_code == 204  # fmt: skip
    items = (await http("GET", f"{REC}/salesOrder/{order}?expandSubResources=true")).json()["item"]["items"]
    assert [i["rate"] for i in items] == [300]
    invoice = created_id(
        await http(
            "PUT",
            f"{REC}/invoice/eid:INV-1",
            json={
                "entity": {"id": customer},
                "tranDate": "2026-11-30",
                "dueDate": "2026-12-30",
                "item": {"items": [{**line, "description": "Consulting"}]},
            },
        )
    )
    assert (await http("GET", f"{REC}/invoice/{invoice}")).json()["externalId"] == "INV-1"
    memo = created_id(await http("POST", f"{REC}/invoice/{invoice}/!transform/creditMemo", json={"externalId": "CM-1"}))
    assert (await http("PATCH", f"{REC}/creditMemo/{memo}", json={"memo": "price concession"})).status_code == 204
    assert (await http("GET", f"{REC}/creditMemo/eid:CM-1")).json()["createdFrom"]["id"] == invoice
    assert (await http("DELETE", f"{REC}/creditMemo/{memo}")).status_code == 204
    assert (await http("GET", f"{REC}/creditMemo/eid:CM-1")).status_code == 404
    payment = created_id(
        await http(
            "POST",
            f"{REC}/customerPayment",
            json={
                "customer": {"id": customer},
                "tranDate": "2026-12-05",
                "apply": {"items": [{"doc": {"id": invoice}, "amount": 100, "apply": True}]},
            },
        )
    )
    body = (await http("GET", f"{REC}/customerPayment/{payment}?expandSubResources=true")).json()
    assert body["apply"]["items"][0]["doc"]["id"] == invoice
    assert (await http("GET", f"{REC}/currency/{body['currency']['id']}")).json()["symbol"] == "USD"


async def test_master_data_records_as_the_docs_write_them(http: Http) -> None:
    """An employee and a customer's fields kept in step, and a job (project) under the customer."""
    employee = created_id(
        await http(
            "PUT",
            f"{REC}/employee/eid:003MD",
            json={"firstName": "Dorothy", "lastName": "Vaughan", "subsidiary": {"externalId": "US01"}},
        )
    )
    assert (await http("GET", f"{REC}/employee/eid:003MD")).json()["id"] == employee
    customer = created_id(
        await http(
            "PUT",
            f"{REC}/customer/eid:d2r:customer:001MD",
            json={"companyName": "MD Co", "subsidiary": {"externalId": "US01"}},
        )
    )
    assert (await http("GET", f"{REC}/customer/eid:d2r:customer:001MD")).json()["id"] == customer
    patched = await http("PATCH", f"{REC}/customer/{customer}", json={"companyName": "MD Company"})
    assert patched.status_code == 204, patched.text
    assert (await http("GET", f"{REC}/customer/{customer}")).json()["companyName"] == "MD Company"
    job = created_id(
        await http(
            "PUT",
            f"{REC}/job/eid:d2r:project:a0PMD",
            json={"companyName": "MD project", "parent": {"id": customer}, "subsidiary": {"externalId": "US01"}},
        )
    )
    assert (await http("GET", f"{REC}/job/eid:d2r:project:a0PMD")).json()["id"] == job


async def test_posting_and_the_period_lock(http: Http) -> None:
    accounts = {"debit": {"externalId": "5000"}, "credit": {"externalId": "1210"}}
    journal = created_id(
        await http(
            "PUT",
            f"{REC}/journalEntry/eid:posting-US01-2026-11-30:p1:time:US01:USD:1",
            json={
                "subsidiary": {"externalId": "US01"},
                "currency": {"refName": "USD"},
                "tranDate": "2026-11-30",
                "approved": True,
                "line": {
                    "items": [
                        {"account": accounts["debit"], "debit": 500, "custcol_d2r_source_id": "TC-1"},
                        {"account": accounts["credit"], "credit": 500, "custcol_d2r_source_id": "TC-1"},
                    ]
                },
            },
        )
    )
    r = await http("GET", f"{REC}/journalEntry/eid:posting-US01-2026-11-30:p1:time:US01:USD:1?expandSubResources=true")
    assert r.json()["id"] == journal and len(r.json()["line"]["items"]) == 2
    employee = (await http("POST", SUITEQL, headers={"Prefer": "transient"},
                           json={"q": "SELECT externalid FROM employee ORDER BY id"})).json()["items"][0]  # fmt: skip
    bill = await http(
        "PUT",
        f"{REC}/timeBill/eid:TC-1:2026-11-30",
        json={
            "employee": {"externalId": employee["externalid"]},
            "subsidiary": {"externalId": "US01"},
            "tranDate": "2026-11-30",
            "hours": 7.5,
            "custcol_d2r_entry_id": "TC-1:2026-11-30",
        },
    )
    created_id(bill)
    period = (await http("GET", f"{REC}/accountingPeriod/eid:2026-11")).json()
    assert (await http("PATCH", f"{REC}/accountingPeriod/{period['id']}", json={"allLocked": True})).status_code == 204
    assert (await http("GET", f"{REC}/accountingPeriod/{period['id']}")).json()["allLocked"] is True


async def test_suiteql_paged_by_its_links(http: Http) -> None:
    q = {"q": "SELECT id, periodname, startdate FROM accountingperiod WHERE isquarter = 'F' ORDER BY startdate"}
    url: str | None = f"{SUITEQL}?limit=10"
    names: list[str] = []
    while url:
        page = (await http("POST", url, headers={"Prefer": "transient"}, json=q)).json()
        names += [row["periodname"] for row in page["items"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert names[0] == "Jan 2025" and names[-1] == "Dec 2027" and len(names) == 36
