"""The NetSuite simulator refuses what NetSuite refuses and merges sublists the way it
does; each case cites the help page it follows (docs/simulators.md lists them)."""

from __future__ import annotations

from urllib.parse import quote

import httpx

REC = "/services/rest/record/v1"


async def order(ns: httpx.AsyncClient, ext: str = "so-strict", lines: int = 2) -> str:
    r = await ns.put(
        f"{REC}/salesOrder/eid:{ext}",
        json={
            "entity": {"id": await customer(ns)},
            "item": {
                "items": [
                    {"item": {"externalId": "CONS-TM"}, "quantity": 1, "rate": 100 * (n + 1)} for n in range(lines)
                ]
            },
        },
    )
    assert r.status_code == 204, r.text
    return r.headers["location"].rsplit("/", 1)[-1]


async def customer(ns: httpx.AsyncClient, ext: str = "c-strict") -> str:
    r = await ns.put(
        f"{REC}/customer/eid:{ext}", json={"companyName": "Strict Co", "subsidiary": {"externalId": "US01"}}
    )
    assert r.status_code == 204, r.text
    return r.headers["location"].rsplit("/", 1)[-1]


async def lines(ns: httpx.AsyncClient, so: str) -> list[dict[str, object]]:
    body = (await ns.get(f"{REC}/salesOrder/{so}", params={"expandSubResources": "true"})).json()
    items: list[dict[str, object]] = body["item"]["items"]
    return items


async def test_patch_adds_lines_unless_replace_names_the_sublist(ns: httpx.AsyncClient) -> None:
    """ "Updating a Sublist": unkeyed lines are added; "Replacing a Sublist": ?replace=item
    removes the lines the request does not carry; a line with its `line` key is updated."""
    so = await order(ns)
    new = {"item": {"items": [{"item": {"externalId": "IMPL-FF"}, "quantity": 1, "rate": 50}]}}
    assert (await ns.patch(f"{REC}/salesOrder/{so}", json=new)).status_code == 204
    assert [x["rate"] for x in await lines(ns, so)] == [100, 200, 50]
    assert [x["line"] for x in await lines(ns, so)] == [1, 2, 3]
    keyed = {"item": {"items": [{"line": 2, "rate": 250}]}}
    assert (await ns.patch(f"{REC}/salesOrder/{so}", json=keyed)).status_code == 204
    assert [x["rate"] for x in await lines(ns, so)] == [100, 250, 50]
    assert (await ns.patch(f"{REC}/salesOrder/{so}", params={"replace": "item"}, json=new)).status_code == 204
    after = await lines(ns, so)
    assert [x["rate"] for x in after] == [50]
    total = (await ns.get(f"{REC}/salesOrder/{so}")).json()["total"]
    assert total == 50
    bad = await ns.patch(f"{REC}/salesOrder/{so}", params={"replace": "nosuch"}, json=new)
    assert bad.status_code == 400 and bad.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_PARAMETER"


async def test_upsert_of_an_existing_order_merges_lines_too(ns: httpx.AsyncClient) -> None:
    await order(ns, "so-twice", lines=1)
    so = await order(ns, "so-twice", lines=1)  # the same PUT again, without replace
    assert len(await lines(ns, so)) == 2
    r = await ns.put(
        f"{REC}/salesOrder/eid:so-twice",
        params={"replace": "item"},
        json={"item": {"items": [{"item": {"externalId": "CONS-TM"}, "quantity": 1, "rate": 100}]}},
    )
    assert r.status_code == 204 and len(await lines(ns, so)) == 1


async def test_sales_order_lines_need_an_item(ns: httpx.AsyncClient) -> None:
    r = await ns.post(
        f"{REC}/salesOrder",
        json={"entity": {"id": await customer(ns)}, "item": {"items": [{"quantity": 1, "rate": 10}]}},
    )
    assert r.status_code == 400
    detail = r.json()["o:errorDetails"][0]
    assert detail["o:errorCode"] == "USER_ERROR" and detail["o:errorPath"] == "item.items[0].item"


async def test_status_is_read_only_and_closing_the_lines_closes_the_order(ns: httpx.AsyncClient) -> None:
    so = await order(ns)
    r = await ns.patch(f"{REC}/salesOrder/{so}", json={"status": "Closed"})
    assert r.status_code == 400 and r.json()["o:errorDetails"][0]["o:errorPath"] == "status"
    assert (await ns.get(f"{REC}/salesOrder/{so}")).json()["status"]["refName"] == "Pending Billing"
    close = {"item": {"items": [{"line": x["line"], "isClosed": True} for x in await lines(ns, so)]}}
    assert (await ns.patch(f"{REC}/salesOrder/{so}", json=close)).status_code == 204
    assert (await ns.get(f"{REC}/salesOrder/{so}")).json()["status"]["refName"] == "Closed"
    billed = await ns.post(f"{REC}/salesOrder/{so}/!transform/invoice", json={})
    assert billed.status_code == 400  # a closed order bills nothing


async def test_a_referenced_record_cannot_be_deleted(ns: httpx.AsyncClient) -> None:
    await order(ns)
    cid = await customer(ns)
    r = await ns.delete(f"{REC}/customer/{cid}")
    assert r.status_code == 400
    assert "dependent records" in r.json()["o:errorDetails"][0]["detail"]
    alone = await customer(ns, "c-alone")
    assert (await ns.delete(f"{REC}/customer/{alone}")).status_code == 204


async def test_sublists_are_links_unless_expanded(ns: httpx.AsyncClient) -> None:
    so = await order(ns)
    plain = (await ns.get(f"{REC}/salesOrder/{so}")).json()["item"]
    assert set(plain) == {"links"} and plain["links"][0]["href"].endswith(f"/salesOrder/{so}/item")
    assert len(await lines(ns, so)) == 2


async def test_collection_q_filter(ns: httpx.AsyncClient) -> None:
    """ "Record Collection Filtering": conditions, AND / OR, parentheses, typed operators."""
    await customer(ns, "c-q1")
    await ns.put(f"{REC}/customer/eid:c-q2", json={"companyName": "Other Inc", "subsidiary": {"externalId": "UK01"}})

    async def ids(q: str) -> int:
        r = await ns.get(f"{REC}/customer", params={"q": q})
        assert r.status_code == 200, r.text
        return int(r.json()["totalResults"])

    everyone = (await ns.get(f"{REC}/customer")).json()["totalResults"]
    assert await ids('companyName IS "Strict Co"') == 1
    assert await ids('companyName START_WITH "strict"') == 1
    assert await ids('companyName IS "Strict Co" OR companyName IS "Other Inc"') == 2
    assert await ids('(companyName CONTAIN "co" OR companyName CONTAIN "inc") AND externalId IS "c-q2"') == 1
    assert await ids('companyName IS_NOT "Strict Co"') == everyone - 1
    bad = await ns.get(f"{REC}/customer", params={"q": 'nosuchfield IS "x"'})
    assert bad.status_code == 400 and bad.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_PARAMETER"
    assert quote("x")


async def test_custom_fields_exist_only_where_the_sdf_project_defines_them(ns: httpx.AsyncClient) -> None:
    cid = await customer(ns)
    order = {"entity": {"id": cid}, "item": {"items": [{"item": {"externalId": "IMPL-FF"}, "rate": 10}]}}
    r = await ns.post(f"{REC}/salesOrder", json={**order, "custbody_d2r_made_up": "x"})
    assert r.status_code == 400
    detail = r.json()["o:errorDetails"][0]
    assert detail["o:errorCode"] == "INVALID_CONTENT" and detail["o:errorPath"] == "custbody_d2r_made_up"
    assert "vendor/netsuite/src/Objects" in detail["detail"]
    # a journal-line field is not an order-line field; a checkbox takes a boolean
    line = {"item": {"externalId": "IMPL-FF"}, "rate": 10, "custcol_d2r_source_id": "s"}
    r = await ns.post(f"{REC}/salesOrder", json={**order, "item": {"items": [line]}})
    assert (
        r.status_code == 400 and r.json()["o:errorDetails"][0]["o:errorPath"] == "item.items[0].custcol_d2r_source_id"
    )
    r = await ns.post(f"{REC}/salesOrder", json={**order, "custbody_d2r_cancelled": "yes"})
    assert r.status_code == 400
    assert (await ns.post(f"{REC}/salesOrder", json={**order, "custbody_d2r_cancelled": False})).status_code == 204


async def test_invoice_and_credit_lines_need_an_item_too(ns: httpx.AsyncClient) -> None:
    """ "Please enter value(s) for: Item": every item line of a sales transaction names one."""
    body = {"entity": {"id": await customer(ns)}, "item": {"items": [{"description": "no item", "rate": 5}]}}
    for rtype in ("invoice", "creditMemo"):
        r = await ns.post(f"{REC}/{rtype}", json=body)
        assert r.status_code == 400, r.text
        detail = r.json()["o:errorDetails"][0]
        assert detail["o:errorCode"] == "USER_ERROR" and detail["o:errorPath"] == "item.items[0].item"
