"""SuiteQL over the Records Catalog, as NetSuite's query service answers it.

Request and envelope as NetSuite's help documents them ("Executing SuiteQL Queries Through
REST Web Services": POST /services/rest/query/v1/suiteql?limit=&offset= with `Prefer:
transient` and `{"q": ...}`; `links`, `count`, `hasMore`, `items`, `offset`, `totalResults`).
Refusals as real accounts word them (quoted by public NetSuite clients): "Invalid search
query. Detailed unprocessed description follows. Search error occurred: Unknown identifier
'subsidiary'. Available identifiers are: {transaction=transaction}." with
`o:errorQueryParam: q`, and "... Invalid search type: x." for an unknown table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from simulators._settings import SimSettings
from tests.simulators.test_netsuite import REC, customer, rid
from tests.vendor_auth import netsuite_token_form

Q = "/services/rest/query/v1/suiteql"
PREFIX = "Invalid search query. Detailed unprocessed description follows. "


async def query(ns: httpx.AsyncClient, q: str, **params: int) -> httpx.Response:
    return await ns.post(Q, params=params, json={"q": q}, headers={"Prefer": "transient"})


async def rows(ns: httpx.AsyncClient, q: str) -> list[dict[str, Any]]:
    r = await query(ns, q)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def refused(r: httpx.Response) -> str:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["status"] == 400 and body["title"] == "Bad Request"
    (detail,) = body["o:errorDetails"]
    assert detail["o:errorCode"] == "INVALID_PARAMETER" and detail["o:errorQueryParam"] == "q"
    text: str = detail["detail"]
    return text


async def invoice(ns: httpx.AsyncClient, cid: str, **extra: Any) -> str:
    """An invoice of 2 lines (1000 + 500) and 200 tax, due 30 Nov 2026."""
    body = {
        "entity": {"id": cid},
        "tranDate": "2026-11-03",
        "dueDate": "2026-11-30",
        "item": {
            "items": [
                {"item": {"externalId": "IMPL-FF"}, "quantity": 1, "rate": 1000, "tax1Amt": 200},
                {"item": {"externalId": "IMPL-FF"}, "quantity": 5, "rate": 100, "custcol_d2r_contract_line_id": "P-1"},
            ]
        },
        "custbody_d2r_opportunity_id": "006OPP",
        **extra,
    }
    return rid(await ns.post(f"{REC}/invoice", json=body))


async def test_made_up_columns_are_refused_with_netsuites_words(ns: httpx.AsyncClient) -> None:
    # what the issue found the old simulator accepting: none of them is a transaction column
    for column in ("customer", "subsidiary", "amountremaining", "total"):
        detail = refused(await query(ns, f"SELECT id, {column} FROM transaction"))
        assert detail == (
            f"{PREFIX}Search error occurred: Unknown identifier '{column}'. "
            "Available identifiers are: {transaction=transaction}."
        )
    detail = refused(
        await query(
            ns,
            "SELECT t.id FROM transaction t INNER JOIN transactionline tl ON tl.transaction = t.id WHERE tl.nope = 1",
        )
    )
    assert "Unknown identifier 'tl.nope'" in detail and "{t=transaction, tl=transactionline}" in detail
    assert refused(await query(ns, "SELECT id FROM invoices")) == f"{PREFIX}Invalid search type: invoices."
    assert refused(await query(ns, "SELECT id FROM customer WHERE balance > 0")).endswith(
        "Unknown identifier 'balance'. Available identifiers are: {customer=customer}."
    )


async def test_invoice_header_lines_and_gl_impact(ns: httpx.AsyncClient) -> None:
    cid = await customer(ns)
    inv = await invoice(ns, cid)
    (head,) = await rows(
        ns,
        "SELECT id, type, tranid, trandate, duedate, entity, currency, foreigntotal, foreignamountunpaid, "
        f"foreignamountpaid, status, custbody_d2r_opportunity_id, BUILTIN.DF(status) AS statusname FROM transaction "
        f"WHERE id = {inv}",
    )
    assert head["type"] == "CustInvc" and head["entity"] == cid and head["currency"] == "1"
    assert head["trandate"] == "11/3/2026" and head["duedate"] == "11/30/2026"  # the account's M/D/YYYY
    assert head["foreigntotal"] == 1700 and head["foreignamountunpaid"] == 1700 and head["foreignamountpaid"] == 0
    assert head["status"] == "A" and head["statusname"] == "Invoice : Open"
    # the subsidiary is on the lines; item lines are credits (negative), line 0 the main line
    lines = await rows(
        ns,
        "SELECT tl.id, tl.mainline, tl.taxline, tl.subsidiary, tl.foreignamount, tl.quantity, tl.rate, "
        "tl.custcol_d2r_contract_line_id, BUILTIN.DF(tl.subsidiary) AS subname FROM transactionline tl "
        f"WHERE tl.transaction = {inv} ORDER BY tl.id",
    )
    assert [(x["id"], x["mainline"], x["taxline"], x["foreignamount"]) for x in lines] == [
        ("0", "T", "F", 1700),
        ("1", "F", "F", -1000),
        ("2", "F", "F", -500),
        ("3", "F", "T", -200),
    ]
    assert {x["subsidiary"] for x in lines} == {"1"} and lines[0]["subname"] == "Northwind Consulting Inc."
    assert lines[2]["quantity"] == -5 and lines[2]["rate"] == 100 and lines[2]["custcol_d2r_contract_line_id"] == "P-1"
    # GL impact: receivable debit = revenue + tax credits, joined to the lines
    gl = await rows(
        ns,
        "SELECT tal.transactionline, BUILTIN.DF(tal.account) AS account, tal.debit, tal.credit, tal.posting "
        "FROM transactionaccountingline tal INNER JOIN transactionline tl "
        "ON tl.transaction = tal.transaction AND tl.id = tal.transactionline "
        f"WHERE tal.transaction = {inv} ORDER BY tal.transactionline",
    )
    assert [(x["account"], x.get("debit"), x.get("credit")) for x in gl] == [
        ("Accounts Receivable", 1700, None),
        ("Services Revenue", None, 1000),
        ("Services Revenue", None, 500),
        ("Output Tax Payable", None, 200),
    ]
    assert {x["posting"] for x in gl} == {"T"}
    # a partial payment: foreignamountunpaid is what is still open, in the invoice's currency
    await ns.post(
        f"{REC}/customerPayment",
        json={
            "customer": {"id": cid},
            "tranDate": "2026-12-01",
            "payment": 300,
            "apply": {"items": [{"doc": {"id": inv}, "amount": 300, "apply": True}]},
        },
    )
    (open_item,) = await rows(
        ns,
        "SELECT t.id, t.foreignamountunpaid, t.foreignamountpaid FROM transaction t "
        "INNER JOIN transactionline tl ON tl.transaction = t.id AND tl.mainline = 'T' "
        "WHERE t.type = 'CustInvc' AND tl.subsidiary = 1 AND t.foreignamountunpaid > 0 "
        "AND t.duedate <= TO_DATE('2026-11-30', 'YYYY-MM-DD')",
    )
    assert open_item["foreignamountunpaid"] == 1400 and open_item["foreignamountpaid"] == 300
    (payment,) = await rows(
        ns, f"SELECT id, entity, trandate FROM transaction WHERE type = 'CustPymt' AND entity = {cid}"
    )
    assert payment["trandate"] == "12/1/2026"


async def test_dates_go_in_through_to_date_or_the_account_format(ns: httpx.AsyncClient) -> None:
    iso = "SELECT id FROM accountingperiod WHERE startdate >= '2027-01-01'"
    assert "not a valid date in the account's date format (M/D/YYYY)" in refused(await query(ns, iso))
    bare = await rows(ns, "SELECT id FROM accountingperiod WHERE startdate >= '1/1/2027' AND isquarter = 'F'")
    literal = await rows(ns, "SELECT id FROM accountingperiod WHERE startdate >= TO_DATE('2027-01-01', 'YYYY-MM-DD')")
    oracle = await rows(
        ns,
        "SELECT id FROM accountingperiod WHERE startdate BETWEEN "
        "TO_DATE('01/01/2027', 'MM/DD/YYYY') AND TO_DATE('31-Dec-2027', 'DD-Mon-YYYY')",
    )
    assert len(bare) == len(literal) == len(oracle) == 12
    assert "does not match the format" in refused(
        await query(ns, "SELECT id FROM accountingperiod WHERE startdate >= TO_DATE('2027/01/01', 'YYYY-MM-DD')")
    )


async def test_an_account_with_another_date_format(tmp_path: Path) -> None:
    from simulators.netsuite import create_app

    app = create_app(
        SimSettings(db=str(tmp_path / "ns.sqlite"), seed="demo", port=8302, netsuite_date_format="DD.MM.YYYY")
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ns.test") as ns:
        token = await ns.post("/services/rest/auth/oauth2/v1/token", data=netsuite_token_form("http://ns.test"))
        ns.headers["authorization"] = "Bearer " + token.json()["access_token"]
        (period,) = await rows(
            ns, "SELECT periodname, startdate, enddate FROM accountingperiod WHERE startdate = '01.02.2026'"
        )
        assert period == {"links": [], "periodname": "Feb 2026", "startdate": "01.02.2026", "enddate": "28.02.2026"}
    app.store.close()


async def test_paging_a_join_keeps_the_envelope(ns: httpx.AsyncClient) -> None:
    cid = await customer(ns)
    for _ in range(3):
        await invoice(ns, cid)
    q = (
        "SELECT t.id, tl.id AS line FROM transaction t INNER JOIN transactionline tl ON tl.transaction = t.id "
        "WHERE t.type = 'CustInvc' AND tl.mainline = 'F' ORDER BY t.id, tl.id"
    )
    seen: list[tuple[str, str]] = []
    offset = 0
    while True:
        page = (await query(ns, q, limit=4, offset=offset)).json()
        assert page["totalResults"] == 9 and page["count"] == len(page["items"]) and page["offset"] == offset
        assert {link["rel"] for link in page["links"]} >= {"self", "first", "last"}
        seen += [(x["id"], x["line"]) for x in page["items"]]
        if not page["hasMore"]:
            break
        assert any(link["rel"] == "next" for link in page["links"])
        offset += page["count"]
    assert len(seen) == len(set(seen)) == 9
    (count,) = await rows(ns, "SELECT COUNT(*) AS n FROM transactionline WHERE taxline = 'T'")
    assert count["n"] == 3
    r = await query(ns, "SELECT id FROM transaction", limit=1001)
    assert r.status_code == 400
