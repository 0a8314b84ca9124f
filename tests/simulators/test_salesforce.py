from __future__ import annotations

import httpx

from tests.simulators.conftest import SF_V

OPP1 = "006Dd0000000001IAA"


async def test_token_errors_and_limit_header(sf: httpx.AsyncClient) -> None:
    r = await sf.post(
        "/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "d2r-dev", "client_secret": "nope"},
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_client"
    r = await sf.get(f"{SF_V}/sobjects/Opportunity/{OPP1}", headers={"authorization": "Bearer bad"})
    assert r.status_code == 401
    assert r.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    r = await sf.get(f"{SF_V}/sobjects/Opportunity/{OPP1}")
    assert r.status_code == 200
    assert r.headers["sforce-limit-info"].startswith("api-usage=")
    body = r.json()
    assert body["attributes"] == {"type": "Opportunity", "url": f"{SF_V}/sobjects/Opportunity/{OPP1}"}
    assert body["StageName"] == "Closed Won" and body["IsWon"] is True
    assert body["D2R_Legal_Entity__c"] == "US01" and body["Amount"] == 170000


async def test_token_expiry(sf: httpx.AsyncClient) -> None:
    r = await sf.post("/__admin/faults", json={"token_ttl": 0})
    assert r.status_code == 200
    r = await sf.post(
        "/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "d2r-dev", "client_secret": "d2r-dev-secret"},
    )
    tok = r.json()["access_token"]
    r = await sf.get(f"{SF_V}/sobjects/Account/001Dd0000000001IAA", headers={"authorization": f"Bearer {tok}"})
    assert r.status_code == 401 and r.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    # early expiry of every issued token
    await sf.delete("/__admin/faults")
    assert (await sf.get(f"{SF_V}/limits")).status_code == 200
    await sf.post("/__admin/faults", json={"expire_tokens": True})
    r = await sf.get(f"{SF_V}/limits")
    assert r.status_code == 401


async def test_crud_and_errors(sf: httpx.AsyncClient) -> None:
    r = await sf.post(f"{SF_V}/sobjects/Account", json={"Name": "New Co", "BillingCountry": "US"})
    assert r.status_code == 201
    body = r.json()
    assert body["success"] is True and body["errors"] == [] and body["id"].startswith("001")
    aid = body["id"]
    assert len(aid) == 18
    r = await sf.patch(f"{SF_V}/sobjects/Account/{aid}", json={"Industry": "Retail"})
    assert r.status_code == 204
    r = await sf.get(f"{SF_V}/sobjects/Account/{aid}?fields=Name,Industry")
    assert r.json()["Industry"] == "Retail" and r.json()["Name"] == "New Co"
    r = await sf.post(f"{SF_V}/sobjects/Account", json={"Name": "X", "Bogus__c": 1})
    assert r.status_code == 400
    assert r.json()[0]["errorCode"] == "INVALID_FIELD" and r.json()[0]["fields"] == ["Bogus__c"]
    r = await sf.post(f"{SF_V}/sobjects/Account", json={"Industry": "X"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    r = await sf.post(f"{SF_V}/sobjects/Account", json={"Id": aid, "Name": "X"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_FIELD"
    r = await sf.post(
        f"{SF_V}/sobjects/Opportunity", json={"Name": "x", "StageName": "Won-ish", "CloseDate": "2026-01-01"}
    )
    assert r.json()[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    r = await sf.patch(f"{SF_V}/sobjects/Opportunity/{OPP1}", json={"IsWon": False})
    assert r.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    r = await sf.post(f"{SF_V}/sobjects/Contact", json={"LastName": "X", "AccountId": OPP1})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    r = await sf.delete(f"{SF_V}/sobjects/Account/{aid}")
    assert r.status_code == 204
    r = await sf.get(f"{SF_V}/sobjects/Account/{aid}")  # in the Recycle Bin now
    assert r.status_code == 404 and r.json()[0]["errorCode"] == "ENTITY_IS_DELETED"
    r = await sf.get(f"{SF_V}/sobjects/Account/001Dd00000000ZZIAA")
    assert r.status_code == 404 and r.json()[0]["errorCode"] == "NOT_FOUND"
    r = await sf.get(f"{SF_V}/sobjects/NoSuch__c/{aid}")
    assert r.status_code == 404


async def test_upsert_201_204_300(sf: httpx.AsyncClient) -> None:
    url = f"{SF_V}/sobjects/pse__Proj__c/D2R_External_Id__c/engagement-{OPP1}-project"
    body = {"Name": "Globex ERP", "pse__Opportunity__c": OPP1, "pse__Is_Active__c": True, "D2R_Legal_Entity__c": "US01"}
    r = await sf.patch(url, json=body)
    assert r.status_code == 201
    assert r.json()["created"] is True and r.json()["success"] is True
    pid = r.json()["id"]
    assert pid.startswith("a0P")
    r = await sf.patch(url, json={**body, "pse__Stage__c": "Planned"})
    assert r.status_code == 204
    r = await sf.get(f"{SF_V}/sobjects/pse__Proj__c/{pid}")
    assert r.json()["pse__Stage__c"] == "Planned"
    counts = (await sf.get("/__admin/counts")).json()
    assert counts["pse__Proj__c"] == 1
    # the package makes the project's external id unique: a second record cannot take it
    r = await sf.post(
        f"{SF_V}/sobjects/pse__Proj__c", json={"Name": "dup", "D2R_External_Id__c": f"engagement-{OPP1}-project"}
    )
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "DUPLICATE_VALUE"
    assert pid in r.json()[0]["message"]
    # an activity's external id cannot be unique: two Tasks may share one -> 300
    task = {"Subject": "dup", "D2R_External_Id__c": "task-1"}
    for _ in range(2):
        assert (await sf.post(f"{SF_V}/sobjects/Task", json=task)).status_code == 201
    r = await sf.patch(f"{SF_V}/sobjects/Task/D2R_External_Id__c/task-1", json={"Subject": "again"})
    assert r.status_code == 300
    assert len(r.json()) == 2
    dups = (await sf.get("/__admin/duplicates")).json()
    assert dups["count"] >= 1
    assert "Task.D2R_External_Id__c" in dups["duplicates"]
    # relationship reference by external id
    r = await sf.post(
        f"{SF_V}/sobjects/pse__Milestone__c", json={"Name": "M1", "pse__Project__r": {"D2R_External_Id__c": "nope"}}
    )
    assert r.status_code == 400
    r = await sf.patch(f"{SF_V}/sobjects/pse__Milestone__c/NotAnExt__c/x", json={"Name": "M"})
    assert r.status_code == 404


async def test_soql_relationships_and_paging(sf: httpx.AsyncClient) -> None:
    q = (
        "SELECT Id, Name, Amount, Account.Name, Account.Parent.Name, Account.ParentId "
        "FROM Opportunity WHERE StageName = 'Closed Won' AND D2R_Legal_Entity__c != null "
        "ORDER BY CloseDate"
    )
    r = await sf.get(f"{SF_V}/query", params={"q": q})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["totalSize"] == 5 and body["done"] is True
    first = body["records"][0]
    assert first["Id"] == OPP1
    assert first["attributes"]["type"] == "Opportunity"
    assert first["Account"]["Name"] == "Globex US Inc"
    assert first["Account"]["attributes"]["type"] == "Account"
    assert first["Account"]["Parent"]["Name"] == "Globex Holdings"
    # filter on a parent field, IN, OR, parentheses, LIKE
    q = (
        "SELECT Id, Quantity, Opportunity.StageName FROM OpportunityLineItem "
        "WHERE Opportunity.StageName IN ('Closed Won', 'Negotiation/Review') "
        "AND (D2R_Billing_Model__c = 'time_and_materials' OR Name LIKE '%Rollout%')"
    )
    r = await sf.get(f"{SF_V}/query", params={"q": q})
    recs = r.json()["records"]
    assert r.json()["totalSize"] == 4
    assert {x["Opportunity"]["StageName"] for x in recs} == {"Closed Won", "Negotiation/Review"}
    # pagination: page size 5 in this fixture
    r = await sf.get(f"{SF_V}/query", params={"q": "SELECT Id FROM Contact ORDER BY LastName DESC"})
    body = r.json()
    assert body["totalSize"] == 13 and body["done"] is False and len(body["records"]) == 5
    seen = [x["Id"] for x in body["records"]]
    while not body["done"]:
        assert body["nextRecordsUrl"].startswith(f"{SF_V}/query/01g")
        body = (await sf.get(body["nextRecordsUrl"])).json()
        seen += [x["Id"] for x in body["records"]]
    assert len(seen) == 13 == len(set(seen))
    r = await sf.get(f"{SF_V}/query", params={"q": "SELECT Id FROM Contact LIMIT 7"})
    body = r.json()
    assert body["totalSize"] == 7 and len(body["records"]) == 5 and body["done"] is False
    body = (await sf.get(body["nextRecordsUrl"])).json()
    assert body["totalSize"] == 7 and len(body["records"]) == 2 and body["done"] is True
    r = await sf.get(f"{SF_V}/query", params={"q": "SELECT COUNT() FROM Opportunity"})
    assert r.json()["totalSize"] == 11
    r = await sf.get(f"{SF_V}/query", params={"q": "SELECT Id FROM Account LIMIT 2 OFFSET 1"})
    assert r.json()["totalSize"] == 2
    r = await sf.get(f"{SF_V}/query", params={"q": "SELEC Id FROM Account"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "MALFORMED_QUERY"
    r = await sf.get(f"{SF_V}/query", params={"q": "SELECT Nope__c FROM Account"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_FIELD"
    r = await sf.get(
        f"{SF_V}/query", params={"q": "SELECT Id FROM Opportunity WHERE CloseDate >= 2026-11-18 AND IsWon = true"}
    )
    assert r.json()["totalSize"] == 5


async def test_seed_info_and_invalid_opps(sf: httpx.AsyncClient) -> None:
    info = (await sf.get("/__admin/seed-info")).json()
    inv = info["opportunities"]["invalid"]
    r = await sf.get(f"{SF_V}/sobjects/Opportunity/{inv['missing_legal_entity']}")
    assert r.json()["D2R_Legal_Entity__c"] is None and r.json()["StageName"] == "Closed Won"
    r = await sf.get(
        f"{SF_V}/query",
        params={"q": f"SELECT Id FROM OpportunityLineItem WHERE OpportunityId = '{inv['no_line_items']}'"},
    )
    assert r.json()["totalSize"] == 0
    r = await sf.get(f"{SF_V}/sobjects/Opportunity/{inv['not_closed_won']}")
    assert r.json()["StageName"] == "Negotiation/Review"


async def test_soql_child_subquery(sf: httpx.AsyncClient) -> None:
    q = (
        "SELECT Id, Name, (SELECT Id, Quantity, UnitPrice, D2R_Billing_Model__c, Product2.ProductCode "
        "FROM OpportunityLineItems ORDER BY UnitPrice DESC) FROM Opportunity "
        "WHERE Id IN ('006Dd0000000001IAA', '006Dd0000000005IAA') ORDER BY Name"
    )
    r = await sf.get(f"{SF_V}/query", params={"q": q})
    assert r.status_code == 200, r.text
    recs = {x["Id"]: x for x in r.json()["records"]}
    lines = recs[OPP1]["OpportunityLineItems"]
    assert lines["totalSize"] == 2 and lines["done"] is True
    assert [x["D2R_Billing_Model__c"] for x in lines["records"]] == ["fixed_fee", "time_and_materials"]
    assert lines["records"][0]["Product2"]["ProductCode"] == "IMPL-FF"
    assert lines["records"][0]["attributes"]["type"] == "OpportunityLineItem"
    assert recs["006Dd0000000005IAA"]["OpportunityLineItems"] is None  # no lines
    r = await sf.get(f"{SF_V}/query", params={"q": "SELECT Id, (SELECT Id FROM Nope) FROM Account"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_TYPE"


async def test_delete_cascades_master_detail(sf: httpx.AsyncClient) -> None:
    r = await sf.post(f"{SF_V}/sobjects/pse__Proj__c", json={"Name": "P"})
    pid = r.json()["id"]
    for i in range(3):
        r = await sf.post(f"{SF_V}/sobjects/pse__Milestone__c", json={"Name": f"M{i}", "pse__Project__c": pid})
        assert r.status_code == 201
    assert (await sf.delete(f"{SF_V}/sobjects/pse__Proj__c/{pid}")).status_code == 204
    counts = (await sf.get("/__admin/counts")).json()
    assert "pse__Milestone__c" not in counts and "pse__Proj__c" not in counts
    assert (await sf.delete(f"{SF_V}/sobjects/Opportunity/{OPP1}")).status_code == 204
    assert (await sf.get("/__admin/counts")).json()["OpportunityLineItem"] == 9


async def test_upsert_external_id_with_slash(sf: httpx.AsyncClient) -> None:
    from urllib.parse import quote

    ext = f"engagement-{OPP1}/project"
    url = f"{SF_V}/sobjects/pse__Proj__c/D2R_External_Id__c/{quote(ext, safe='')}"
    r = await sf.patch(url, json={"Name": "Slash"})
    assert r.status_code == 201
    r = await sf.get(url)
    assert r.status_code == 200 and r.json()["D2R_External_Id__c"] == ext


async def test_sobject_collections(sf: httpx.AsyncClient) -> None:
    r = await sf.post(
        f"{SF_V}/composite/sobjects",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Account"}, "Name": "C1"},
                {"attributes": {"type": "Account"}, "Bogus__c": 1},
                {"attributes": {"type": "Product2"}, "Name": "P1"},
            ],
        },
    )
    res = r.json()
    assert r.status_code == 200 and [x["success"] for x in res] == [True, False, True]
    assert res[1]["errors"][0]["statusCode"] == "INVALID_FIELD"
    ids = [res[0]["id"], res[2]["id"]]
    r = await sf.post(
        f"{SF_V}/composite/sobjects",
        json={
            "allOrNone": True,
            "records": [{"attributes": {"type": "Account"}, "Name": "C2"}, {"attributes": {"type": "Account"}}],
        },
    )
    assert [x["success"] for x in r.json()] == [False, False]
    q = await sf.get(f"{SF_V}/query", params={"q": "SELECT COUNT() FROM Account WHERE Name = 'C2'"})
    assert q.json()["totalSize"] == 0  # rolled back
    r = await sf.patch(
        f"{SF_V}/composite/sobjects",
        json={
            "records": [
                {"attributes": {"type": "Account"}, "id": ids[0], "Industry": "Batch"},
                {"attributes": {"type": "Product2"}, "id": ids[1], "IsActive": True},
            ]
        },
    )
    assert [x["success"] for x in r.json()] == [True, True]
    acc = (await sf.get(f"{SF_V}/sobjects/Account/{ids[0]}")).json()
    assert acc["Industry"] == "Batch"
