from __future__ import annotations

import httpx

REC = "/services/rest/record/v1"


def rid(r: httpx.Response) -> str:
    assert r.status_code == 204, r.text
    return r.headers["location"].rsplit("/", 1)[-1]


async def customer(ns: httpx.AsyncClient, ext: str = "cust-1", le: str = "US01") -> str:
    return rid(
        await ns.put(
            f"{REC}/customer/eid:{ext}",
            json={
                "companyName": "Globex US Inc",
                "isPerson": False,
                "subsidiary": {"externalId": le},
                "currency": {"refName": "USD"},
                "custentity_d2r_crm_account_id": "001Dd0000000002IAA",
            },
        )
    )


async def test_bad_bearer_token_is_invalid_login(ns: httpx.AsyncClient) -> None:
    r = await ns.get(f"{REC}/subsidiary/1", headers={"authorization": "Bearer nope"})
    assert r.status_code == 401
    assert r.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"


async def test_upsert_create_get_patch(ns: httpx.AsyncClient) -> None:
    cid = await customer(ns)
    assert await customer(ns) == cid  # same external id -> same record
    r = await ns.get(f"{REC}/customer/eid:cust-1")
    body = r.json()
    assert body["id"] == cid and body["externalId"] == "cust-1"
    assert body["subsidiary"]["id"] == "1" and body["currency"]["refName"] == "USD"
    assert body["links"][0]["rel"] == "self"
    r = await ns.patch(f"{REC}/customer/{cid}", json={"email": "ap@globex.example"})
    assert r.status_code == 204
    assert (await ns.get(f"{REC}/customer/{cid}")).json()["email"] == "ap@globex.example"
    # errors
    r = await ns.post(f"{REC}/customer", json={"companyName": "X", "subsidiary": {"id": "1"}, "bogusField": 1})
    assert r.status_code == 400
    det = r.json()["o:errorDetails"][0]
    assert det["o:errorCode"] == "INVALID_CONTENT" and det["o:errorPath"] == "bogusField"
    r = await ns.post(f"{REC}/customer", json={"companyName": "X", "subsidiary": {"externalId": "XX99"}})
    assert r.status_code == 400 and r.json()["o:errorDetails"][0]["o:errorCode"] == "USER_ERROR"
    r = await ns.get(f"{REC}/customer/99999")
    assert r.status_code == 404
    assert r.json()["o:errorDetails"][0]["o:errorCode"] == "NONEXISTENT_ID"
    r = await ns.post(f"{REC}/customer", json={"companyName": "Y", "subsidiary": {"id": "1"}, "externalId": "cust-1"})
    assert r.status_code == 400
    assert r.json()["o:errorDetails"][0]["o:errorCode"] == "DUPLICATE_EXTERNAL_ID"


async def test_sales_order_transform_payment_and_suiteql(ns: httpx.AsyncClient) -> None:
    cid = await customer(ns)
    so = rid(
        await ns.put(
            f"{REC}/salesOrder/eid:so-1",
            json={
                "entity": {"id": cid},
                "subsidiary": {"externalId": "US01"},
                "currency": {"refName": "USD"},
                "tranDate": "2026-11-16",
                "custbody_d2r_opportunity_id": "006Dd0000000001IAA",
                "item": {
                    "items": [
                        {
                            "item": {"externalId": "IMPL-FF"},
                            "quantity": 1,
                            "rate": "120000.00",
                            "description": "fixed fee",
                        },
                        {
                            "item": {"externalId": "CONS-TM"},
                            "description": "T&M",
                            "quantity": 200,
                            "rate": 250,
                            "custcol_d2r_contract_line_id": "L2",
                        },
                    ]
                },
            },
        )
    )
    body = (await ns.get(f"{REC}/salesOrder/{so}", params={"expandSubResources": "true"})).json()
    assert body["total"] == 170000 and body["tranId"].startswith("SO")
    assert body["item"]["items"][1]["amount"] == 50000
    assert body["postingPeriod"]["refName"] == "Nov 2026"
    inv = rid(
        await ns.post(
            f"{REC}/salesOrder/{so}/!transform/invoice", json={"tranDate": "2026-11-30", "externalId": "inv-1"}
        )
    )
    inv_body = (await ns.get(f"{REC}/invoice/{inv}")).json()
    assert inv_body["createdFrom"]["id"] == so and inv_body["total"] == 170000
    assert inv_body["custbody_d2r_opportunity_id"] == "006Dd0000000001IAA"
    assert inv_body["status"]["refName"] == "Open"
    assert (await ns.get(f"{REC}/salesOrder/{so}")).json()["status"]["refName"] == "Billed"
    pay = rid(
        await ns.post(
            f"{REC}/customerPayment",
            json={
                "customer": {"id": cid},
                "tranDate": "2026-12-10",
                "payment": 170000,
                "apply": {"items": [{"doc": {"id": inv}, "amount": 170000, "apply": True}]},
            },
        )
    )
    assert pay
    inv_body = (await ns.get(f"{REC}/invoice/{inv}")).json()
    assert inv_body["status"]["refName"] == "Paid In Full" and inv_body["amountRemaining"] == 0
    # SuiteQL
    r = await ns.post(
        "/services/rest/query/v1/suiteql",
        json={
            "q": "SELECT id, type, tranid, foreigntotal, entity, custbody_d2r_opportunity_id "
            "FROM transaction WHERE type IN ('SalesOrd', 'CustInvc') AND entity = "
            f"{cid} ORDER BY id"
        },
    )
    assert r.status_code == 200, r.text
    rows = r.json()["items"]
    assert [x["type"] for x in rows] == ["SalesOrd", "CustInvc"]
    assert rows[0]["foreigntotal"] == 170000 and rows[0]["entity"] == cid
    assert rows[1]["custbody_d2r_opportunity_id"] == "006Dd0000000001IAA"
    # paging
    seen = []
    offset = 0
    while True:
        r = await ns.post(
            f"/services/rest/query/v1/suiteql?limit=10&offset={offset}",
            json={
                "q": "SELECT id, periodname, closed FROM accountingperiod "
                "WHERE startdate >= TO_DATE('2026-01-01', 'YYYY-MM-DD') ORDER BY startdate"
            },
        )
        page = r.json()
        assert page["totalResults"] == 24 and page["count"] == len(page["items"])
        seen += [x["periodname"] for x in page["items"]]
        if not page["hasMore"]:
            break
        assert any(link["rel"] == "next" for link in page["links"])
        offset += page["count"]
    assert len(seen) == 24 and seen[0] == "Jan 2026" and seen[-1] == "Dec 2027"
    r = await ns.post(
        "/services/rest/query/v1/suiteql",
        json={
            "q": "SELECT COUNT(*) AS n FROM accountingperiod WHERE startdate >= "
            "TO_DATE('2027-01-01', 'YYYY-MM-DD') AND closed = 'F'"
        },
    )
    assert r.json()["items"][0]["n"] == 12
    r = await ns.post("/services/rest/query/v1/suiteql", json={"q": "SELECT nope FROM customer"})
    assert r.status_code == 400
    # collection paging
    r = await ns.get(f"{REC}/accountingPeriod?limit=5&offset=5")
    page = r.json()
    assert page["count"] == 5 and page["offset"] == 5 and page["hasMore"] is True
    assert page["totalResults"] == 36 and set(page["items"][0]) == {"id", "links"}


async def test_locked_period_refuses_postings(ns: httpx.AsyncClient) -> None:
    cid = await customer(ns)
    r = await ns.post(
        "/services/rest/query/v1/suiteql", json={"q": "SELECT id FROM accountingperiod WHERE periodname = 'Oct 2026'"}
    )
    pid = r.json()["items"][0]["id"]
    r = await ns.patch(f"{REC}/accountingPeriod/{pid}", json={"arLocked": True})
    assert r.status_code == 204
    inv = {
        "entity": {"id": cid},
        "tranDate": "2026-10-15",
        "item": {"items": [{"item": {"externalId": "CONS-TM"}, "description": "x", "quantity": 1, "rate": 10}]},
    }
    r = await ns.post(f"{REC}/invoice", json=inv)
    assert r.status_code == 400
    assert r.json()["o:errorDetails"][0]["o:errorCode"] == "PERIOD_LOCKED"
    # a journal entry is only refused once the whole period is locked
    je = {
        "subsidiary": {"externalId": "US01"},
        "tranDate": "2026-10-31",
        "line": {
            "items": [
                {"account": {"externalId": "1210"}, "debit": 100},
                {"account": {"externalId": "4000"}, "credit": 100},
            ]
        },
    }
    assert (await ns.post(f"{REC}/journalEntry", json=je)).status_code == 204
    await ns.patch(f"{REC}/accountingPeriod/{pid}", json={"aLLocked": True})
    r = await ns.post(f"{REC}/journalEntry", json=je)
    assert r.json()["o:errorDetails"][0]["o:errorCode"] == "PERIOD_LOCKED"
    # unbalanced journal
    bad = {**je, "tranDate": "2026-11-30", "line": {"items": [{"account": {"externalId": "1210"}, "debit": 100}]}}
    r = await ns.post(f"{REC}/journalEntry", json=bad)
    assert r.status_code == 400 and r.json()["o:errorDetails"][0]["o:errorCode"] == "USER_ERROR"
    # the next period is open
    assert (await ns.post(f"{REC}/invoice", json={**inv, "tranDate": "2026-11-01"})).status_code == 204
    # time bill in the locked period
    r = await ns.post(
        f"{REC}/timeBill",
        json={
            "employee": {"externalId": "003Dd0000000001IAA"},
            "customer": {"id": cid},
            "tranDate": "2026-10-05",
            "hours": 8,
        },
    )
    assert r.json()["o:errorDetails"][0]["o:errorCode"] == "PERIOD_LOCKED"


async def test_async_request_with_idempotency_key(ns: httpx.AsyncClient) -> None:
    hdrs = {"prefer": "respond-async", "x-netsuite-idempotency-key": "7f1c-uuid-1"}
    body = {"companyName": "Async Co", "subsidiary": {"externalId": "US01"}}
    r = await ns.post(f"{REC}/customer", json=body, headers=hdrs)
    assert r.status_code == 202 and r.headers["preference-applied"] == "respond-async"
    job_url = r.headers["location"]
    assert "/services/rest/async/v1/job/" in job_url
    path = httpx.URL(job_url).path
    job = (await ns.get(path)).json()
    assert job["completed"] is True and job["progress"] == "succeeded"
    result = await ns.get(f"{path}/task/{job['id']}/result")
    assert result.status_code == 204
    cid = result.headers["location"].rsplit("/", 1)[-1]
    assert (await ns.get(f"{REC}/customer/{cid}")).json()["companyName"] == "Async Co"
    again = await ns.post(f"{REC}/customer", json=body, headers=hdrs)
    assert again.status_code == 400
    assert again.json()["o:errorDetails"][0]["o:errorCode"] == "IDEMPOTENCY_ERROR"
    assert again.headers["location"] == job_url
    counts = (await ns.get("/__admin/counts")).json()
    assert counts["customer"] == 1
    # a failing async request: the job fails and the result holds the error
    r = await ns.post(
        f"{REC}/customer", json={"bogus": 1}, headers={"prefer": "respond-async", "x-netsuite-idempotency-key": "k2"}
    )
    path = httpx.URL(r.headers["location"]).path
    assert (await ns.get(path)).json()["progress"] == "failed"
    res = await ns.get(f"{path}/task/1/result")
    assert res.status_code == 400
    assert res.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_CONTENT"


async def test_external_ids_with_slashes_and_colons(ns: httpx.AsyncClient) -> None:
    from urllib.parse import quote

    ext = "engagement-006Dd0000000001IAA/customer:US01"
    url = f"{REC}/customer/eid:{quote(ext, safe='')}"
    r = await ns.put(url, json={"companyName": "Slash Co", "subsidiary": {"externalId": "US01"}})
    assert r.status_code == 204
    body = (await ns.get(url)).json()
    assert body["externalId"] == ext and body["companyName"] == "Slash Co"
