"""The Salesforce simulator's replication and composite resources, in the request and
response shapes of Salesforce's REST API Developer Guide: the Recycle Bin (`queryAll`
and `IsDeleted`), sObject Get Updated / Get Deleted, `/composite` with allOrNone and
references, `/composite/batch`, `/composite/tree`."""

from __future__ import annotations

import datetime as dt

import httpx

from tests.simulators.conftest import SF_V


def _window(minutes_back: int = 5, minutes_ahead: int = 2) -> dict[str, str]:
    now = dt.datetime.now(dt.UTC)
    return {
        "start": (now - dt.timedelta(minutes=minutes_back)).isoformat(timespec="seconds"),
        "end": (now + dt.timedelta(minutes=minutes_ahead)).isoformat(timespec="seconds"),
    }


async def test_deleted_records_are_in_the_recycle_bin_for_query_all_only(sf: httpx.AsyncClient) -> None:
    aid = (await sf.post(f"{SF_V}/sobjects/Account", json={"Name": "Binned Co"})).json()["id"]
    assert (await sf.delete(f"{SF_V}/sobjects/Account/{aid}")).status_code == 204
    q = f"SELECT Id, Name, IsDeleted FROM Account WHERE Id = '{aid}'"
    assert (await sf.get(f"{SF_V}/query", params={"q": q})).json()["totalSize"] == 0
    rows = (await sf.get(f"{SF_V}/queryAll", params={"q": q})).json()["records"]
    assert [(r["Id"], r["Name"], r["IsDeleted"]) for r in rows] == [(aid, "Binned Co", True)]
    live = (await sf.get(f"{SF_V}/query", params={"q": "SELECT Id, IsDeleted FROM Account LIMIT 1"})).json()
    assert live["records"][0]["IsDeleted"] is False
    gone = "SELECT Id FROM Account WHERE IsDeleted = true"
    assert [r["Id"] for r in (await sf.get(f"{SF_V}/queryAll", params={"q": gone})).json()["records"]] == [aid]
    # a reference to a deleted record, and a second delete, say so as Salesforce does
    r = await sf.post(f"{SF_V}/sobjects/Contact", json={"LastName": "X", "AccountId": aid})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "ENTITY_IS_DELETED"
    r = await sf.delete(f"{SF_V}/sobjects/Account/{aid}")
    assert r.status_code == 404 and r.json()[0]["errorCode"] == "ENTITY_IS_DELETED"
    # IsDeleted is the system's to set
    r = await sf.post(f"{SF_V}/sobjects/Account", json={"Name": "Y", "IsDeleted": True})
    assert r.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


async def test_query_all_pages_keep_including_deleted_rows(sf: httpx.AsyncClient) -> None:
    ids = [(await sf.post(f"{SF_V}/sobjects/Product2", json={"Name": f"P{i}"})).json()["id"] for i in range(7)]
    for rid in ids[:6]:
        await sf.delete(f"{SF_V}/sobjects/Product2/{rid}")
    page = (await sf.get(f"{SF_V}/queryAll", params={"q": "SELECT Id FROM Product2 WHERE IsDeleted = true"})).json()
    assert page["totalSize"] == 6 and len(page["records"]) == 5 and not page["done"]  # page size 5
    more = (await sf.get(page["nextRecordsUrl"])).json()
    assert more["done"] and len(more["records"]) == 1
    assert {r["Id"] for r in page["records"] + more["records"]} == set(ids[:6])


async def test_get_updated_and_get_deleted(sf: httpx.AsyncClient) -> None:
    fresh = (await sf.post(f"{SF_V}/sobjects/Account", json={"Name": "Fresh Co"})).json()["id"]
    await sf.patch(f"{SF_V}/sobjects/Account/001Dd0000000002IAA", json={"Industry": "Chemicals"})
    doomed = (await sf.post(f"{SF_V}/sobjects/Account", json={"Name": "Doomed Co"})).json()["id"]
    await sf.delete(f"{SF_V}/sobjects/Account/{doomed}")
    r = await sf.get(f"{SF_V}/sobjects/Account/updated/", params=_window())
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"ids", "latestDateCovered"}
    assert {fresh, "001Dd0000000002IAA"} <= set(body["ids"]) and doomed not in body["ids"]
    assert body["latestDateCovered"].endswith(":00.000+0000")  # whole minutes
    r = await sf.get(f"{SF_V}/sobjects/Account/deleted/", params=_window())
    deleted = r.json()
    assert set(deleted) == {"deletedRecords", "earliestDateAvailable", "latestDateCovered"}
    assert [d["id"] for d in deleted["deletedRecords"]] == [doomed]
    assert deleted["deletedRecords"][0]["deletedDate"].endswith("+0000")
    # a window the next minute only: nothing yet
    assert (await sf.get(f"{SF_V}/sobjects/Account/updated/", params=_window(-1, 3))).json()["ids"] == []


async def test_replication_windows_are_judged(sf: httpx.AsyncClient) -> None:
    now = dt.datetime.now(dt.UTC)
    same_minute = {"start": now.isoformat(), "end": now.isoformat()}
    r = await sf.get(f"{SF_V}/sobjects/Account/updated/", params=same_minute)
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_REPLICATION_DATE"
    old = {"start": (now - dt.timedelta(days=31)).isoformat(), "end": now.isoformat()}
    r = await sf.get(f"{SF_V}/sobjects/Account/updated/", params=old)
    assert r.json()[0]["errorCode"] == "INVALID_REPLICATION_DATE"
    r = await sf.get(
        f"{SF_V}/sobjects/Account/deleted/", params={**old, "start": (now - dt.timedelta(days=16)).isoformat()}
    )
    assert r.json()[0]["errorCode"] == "INVALID_REPLICATION_DATE"
    r = await sf.get(f"{SF_V}/sobjects/Account/updated/", params={"end": now.isoformat()})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "MISSING_ARGUMENT"
    r = await sf.get(f"{SF_V}/sobjects/NoSuch__c/updated/", params=_window())
    assert r.status_code == 404


async def test_composite_references_and_all_or_none(sf: httpx.AsyncClient) -> None:
    body = {
        "allOrNone": True,
        "compositeRequest": [
            {"method": "POST", "url": f"{SF_V}/sobjects/Account", "referenceId": "acct", "body": {"Name": "Comp Co"}},
            {
                "method": "POST",
                "url": f"{SF_V}/sobjects/Contact",
                "referenceId": "who",
                "body": {"LastName": "Lee", "AccountId": "@{acct.id}"},
            },
            {"method": "GET", "url": f"{SF_V}/sobjects/Contact/@{{who.id}}?fields=AccountId", "referenceId": "read"},
        ],
    }
    r = await sf.post(f"{SF_V}/composite", json=body)
    assert r.status_code == 200, r.text
    res = r.json()["compositeResponse"]
    assert [x["httpStatusCode"] for x in res] == [201, 201, 200]
    assert res[0]["httpHeaders"]["Location"].endswith(res[0]["body"]["id"])
    assert res[2]["body"]["AccountId"] == res[0]["body"]["id"]
    # one bad subrequest rolls back the whole request
    body["compositeRequest"][1]["body"] = {"LastName": "Lee", "AccountId": "@{acct.id}", "NoSuch__c": 1}
    body["compositeRequest"][0]["body"] = {"Name": "Rolled Back Co"}
    res = (await sf.post(f"{SF_V}/composite", json=body)).json()["compositeResponse"]
    assert [x["httpStatusCode"] for x in res] == [400, 400, 400]
    assert res[1]["body"][0]["errorCode"] == "INVALID_FIELD"
    assert res[0]["body"][0]["errorCode"] == res[2]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    q = "SELECT Id FROM Account WHERE Name = 'Rolled Back Co'"
    assert (await sf.get(f"{SF_V}/queryAll", params={"q": q})).json()["totalSize"] == 0
    # without allOrNone the good one stays; the one that depends on the failure is halted
    body["allOrNone"] = False
    body["compositeRequest"][0]["body"] = {"Name": "Kept Co"}
    res = (await sf.post(f"{SF_V}/composite", json=body)).json()["compositeResponse"]
    assert [x["httpStatusCode"] for x in res] == [201, 400, 400]
    assert res[2]["body"][0]["errorCode"] == "PROCESSING_HALTED" and "who" in res[2]["body"][0]["message"]
    q = "SELECT Id FROM Account WHERE Name = 'Kept Co'"
    assert (await sf.get(f"{SF_V}/query", params={"q": q})).json()["totalSize"] == 1


async def test_composite_batch_and_halt_on_error(sf: httpx.AsyncClient) -> None:
    v = SF_V.removeprefix("/services/data/")
    body = {
        "haltOnError": True,
        "batchRequests": [
            {"method": "PATCH", "url": f"{v}/sobjects/Account/001Dd0000000002IAA", "richInput": {"Industry": "Mining"}},
            {"method": "GET", "url": f"{v}/sobjects/Account/001Dd0000000002IAA?fields=Industry"},
            {"method": "PATCH", "url": f"{v}/sobjects/Account/001Dd0000000002IAA", "richInput": {"Bad__c": 1}},
            {"method": "GET", "url": f"{v}/query?q=SELECT+Id+FROM+Account+LIMIT+1"},
        ],
    }
    out = (await sf.post(f"{SF_V}/composite/batch", json=body)).json()
    assert out["hasErrors"] is True
    assert [x["statusCode"] for x in out["results"]] == [204, 200, 400, 412]
    assert out["results"][1]["result"]["Industry"] == "Mining"
    assert out["results"][3]["result"][0]["errorCode"] == "BATCH_PROCESSING_HALTED"


async def test_composite_tree_inserts_all_or_nothing(sf: httpx.AsyncClient) -> None:
    body = {
        "records": [
            {
                "attributes": {"type": "Account", "referenceId": "ref1"},
                "Name": "Tree Co",
                "Contacts": {
                    "records": [{"attributes": {"type": "Contact", "referenceId": "ref2"}, "LastName": "Oak"}]
                },
            }
        ]
    }
    r = await sf.post(f"{SF_V}/composite/tree/Account", json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["hasErrors"] is False and [x["referenceId"] for x in out["results"]] == ["ref1", "ref2"]
    contact = (await sf.get(f"{SF_V}/sobjects/Contact/{out['results'][1]['id']}")).json()
    assert contact["AccountId"] == out["results"][0]["id"]
    body["records"][0]["Name"] = "Half Tree Co"
    body["records"][0]["Contacts"]["records"][0].pop("LastName")  # required
    r = await sf.post(f"{SF_V}/composite/tree/Account", json=body)
    assert r.status_code == 400
    bad = r.json()
    assert bad["hasErrors"] is True and bad["results"][0]["referenceId"] == "ref2"
    assert bad["results"][0]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    q = "SELECT Id FROM Account WHERE Name = 'Half Tree Co'"
    assert (await sf.get(f"{SF_V}/query", params={"q": q})).json()["totalSize"] == 0
