"""The Dynamics 365 Finance simulator in process: identity-platform tokens, OData queries,
composite keys, ETags, `$batch` change sets (and their rollback), posting with period
status, throttling and a lost response."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators.dynamics import DynamicsSettings, create_app
from simulators.dynamics.batch import SubResponse, parse_response

BASE = "http://127.0.0.1:8303"
TENANT = DynamicsSettings().tenant
TOKEN_PATH = f"/{TENANT}/oauth2/v2.0/token"
CREDS = {
    "grant_type": "client_credentials",
    "client_id": "d2r-dev",
    "client_secret": "d2r-dev-secret",
    "scope": f"{BASE}/.default",
}
UK = "dataAreaId='uk01'"


@pytest.fixture
async def d365(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(DynamicsSettings(db=str(tmp_path / "d365.sqlite"), seed="demo", port=8303))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        r = await c.post(TOKEN_PATH, data=CREDS)
        assert r.status_code == 200, r.text
        c.headers["authorization"] = "Bearer " + r.json()["access_token"]
        c.app = app  # type: ignore[attr-defined]
        yield c
    app.store.close()


def customer(account: str, company: str = "uk01", **kw: Any) -> dict[str, Any]:
    return {
        "dataAreaId": company,
        "CustomerAccount": account,
        "OrganizationName": f"Org {account}",
        "CustomerGroupId": "30",
        "SalesCurrencyCode": "GBP",
        **kw,
    }


def batch_body(items: list[list[tuple[str, str, Any]] | tuple[str, str, Any]]) -> tuple[bytes, str]:
    """A multipart/mixed $batch: a list is a change set, a tuple a single request."""
    boundary = f"batch_{uuid.uuid4()}"
    out: list[str] = []

    def part(method: str, url: str, body: Any, content_id: int | None) -> str:
        head = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        if content_id is not None:
            head += f"Content-ID: {content_id}\r\n"
        req = f"{method} {url} HTTP/1.1\r\nAccept: application/json\r\n"
        if body is not None:
            return head + "\r\n" + req + "Content-Type: application/json\r\n\r\n" + json.dumps(body) + "\r\n"
        return head + "\r\n" + req + "\r\n"

    n = 0
    for item in items:
        out.append(f"--{boundary}\r\n")
        if isinstance(item, list):
            cs = f"changeset_{uuid.uuid4()}"
            out.append(f"Content-Type: multipart/mixed; boundary={cs}\r\n\r\n")
            for method, url, body in item:
                n += 1
                out.append(f"--{cs}\r\n" + part(method, url, body, n))
            out.append(f"--{cs}--\r\n")
        else:
            out.append(part(*item, None))
    out.append(f"--{boundary}--\r\n")
    return "".join(out).encode(), f"multipart/mixed; boundary={boundary}"


async def send_batch(c: httpx.AsyncClient, items: Any) -> list[SubResponse | list[SubResponse]]:
    body, ctype = batch_body(items)
    r = await c.post("/data/$batch", content=body, headers={"Content-Type": ctype})
    assert r.status_code == 200, r.text
    return parse_response(r.content, r.headers["content-type"])


# ---- tokens -------------------------------------------------------------------------------


async def test_token_endpoint_speaks_the_identity_platform(d365: httpx.AsyncClient) -> None:
    bad_scope = await d365.post(TOKEN_PATH, data={**CREDS, "scope": BASE})
    assert bad_scope.status_code == 400
    assert bad_scope.json()["error"] == "invalid_scope" and bad_scope.json()["error_codes"] == [1002012]
    wrong_resource = await d365.post(TOKEN_PATH, data={**CREDS, "scope": "https://other.example/.default"})
    assert wrong_resource.json()["error"] == "invalid_resource"
    bad_secret = await d365.post(TOKEN_PATH, data={**CREDS, "client_secret": "nope"})
    assert bad_secret.status_code == 401 and "AADSTS7000215" in bad_secret.json()["error_description"]
    bad_tenant = await d365.post("/not-a-tenant/oauth2/v2.0/token", data=CREDS)
    assert bad_tenant.status_code == 400 and bad_tenant.json()["error_codes"] == [90002]
    ok = (await d365.post(TOKEN_PATH, data=CREDS)).json()
    assert ok["token_type"] == "Bearer" and ok["expires_in"] == 7200
    claims = json.loads(_b64(ok["access_token"].split(".")[1]))
    assert claims["aud"] == BASE and claims["tid"] == TENANT


def _b64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def test_expired_token_is_refused_with_www_authenticate(d365: httpx.AsyncClient) -> None:
    assert (await d365.get("/data/CustomersV3")).status_code == 200
    await d365.post("/__admin/tokens/expire")
    r = await d365.get("/data/CustomersV3")
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    no_token = await d365.get("/data/CustomersV3", headers={"authorization": ""})
    assert no_token.status_code == 401


# ---- queries ------------------------------------------------------------------------------


async def test_company_scope_and_cross_company(d365: httpx.AsyncClient) -> None:
    # the API user's default company is uk01: without cross-company only its rows come back
    own = (await d365.get("/data/CustomersV3")).json()["value"]
    assert {c["dataAreaId"] for c in own} == {"uk01"}
    everyone = (await d365.get("/data/CustomersV3", params={"cross-company": "true"})).json()["value"]
    assert {c["dataAreaId"] for c in everyone} == {"uk01", "ie01"}
    irish = await d365.get("/data/CustomersV3", params={"cross-company": "true", "$filter": "dataAreaId eq 'ie01'"})
    assert [c["OrganizationName"] for c in irish.json()["value"]] == ["Dublin Data DAC"]
    # a key names its company, so a keyed read needs no cross-company
    one = await d365.get("/data/CustomersV3(dataAreaId='ie01',CustomerAccount='C000001')")
    assert one.status_code == 200 and one.json()["OrganizationName"] == "Dublin Data DAC"


async def test_filter_select_orderby_top_count(d365: httpx.AsyncClient) -> None:
    for i, (name, limit) in enumerate([("Alpha", "100"), ("Beta", "250.50"), ("Gamma", "900"), ("O'Brien", "0")]):
        r = await d365.post("/data/CustomersV3", json=customer(f"T{i}", OrganizationName=name, CreditLimit=limit))
        assert r.status_code == 201, r.text

    async def names(flt: str, **extra: str) -> list[str]:
        r = await d365.get("/data/CustomersV3", params={"$filter": flt, "$orderby": "OrganizationName", **extra})
        assert r.status_code == 200, r.text
        return [c["OrganizationName"] for c in r.json()["value"]]

    assert await names("CreditLimit gt 100 and CreditLimit le 900") == ["Beta", "Gamma"]
    assert await names("CreditLimit ge 100 and (OrganizationName eq 'alpha' or OrganizationName eq 'GAMMA')") == [
        "Alpha",
        "Gamma",
    ]
    assert await names("OrganizationName eq 'O''Brien'") == ["O'Brien"]
    assert await names("OrganizationName ne 'Beta' and CustomerAccount ge 'T0' and CustomerAccount lt 'T3'") == [
        "Alpha",
        "Gamma",
    ]
    assert await names("not (CreditLimit lt 250) and startswith(CustomerAccount,'T')") == ["Beta", "Gamma"]
    assert await names("OrganizationName eq '*amm*'") == ["Gamma"]  # D365's wildcard
    assert await names(
        "CustomerType eq Microsoft.Dynamics.DataEntities.CustVendorType'Organization' and "
        "contains(OrganizationName,'ph')"
    ) == ["Alpha"]
    r = await d365.get(
        "/data/CustomersV3",
        params={
            "$filter": "startswith(CustomerAccount,'T')",
            "$select": "CustomerAccount,CreditLimit",
            "$orderby": "CreditLimit desc",
            "$top": "2",
            "$count": "true",
        },
    )
    body = r.json()
    assert body["@odata.count"] == 4
    assert body["value"] == [
        {"@odata.etag": body["value"][0]["@odata.etag"], "CustomerAccount": "T2", "CreditLimit": 900},
        {"@odata.etag": body["value"][1]["@odata.etag"], "CustomerAccount": "T1", "CreditLimit": 250.5},
    ]
    assert body["@odata.context"].endswith("#CustomersV3(CustomerAccount,CreditLimit)")
    # decimals as strings when the client asks for IEEE754 compatibility
    exact = await d365.get(
        "/data/CustomersV3(dataAreaId='uk01',CustomerAccount='T1')",
        headers={"Accept": "application/json;IEEE754Compatible=true"},
    )
    assert exact.json()["CreditLimit"] == "250.5"
    count = await d365.get("/data/CustomersV3/$count", params={"$filter": "CreditLimit gt 0"})
    assert count.text == "3"


async def test_dates_and_paging(d365: httpx.AsyncClient) -> None:
    r = await d365.get(
        "/data/LedgerFiscalPeriods",
        params={"$filter": "LedgerName eq 'UK01' and StartDate ge 2026-01-01 and EndDate le 2026-12-31T23:59:59Z"},
        headers={"Prefer": "odata.maxpagesize=5"},
    )
    page = r.json()
    got = [p["PeriodName"] for p in page["value"]]
    while "@odata.nextLink" in page:
        page = (await d365.get(page["@odata.nextLink"])).json()
        got += [p["PeriodName"] for p in page["value"]]
    assert got == [f"Period {m}" for m in range(1, 13)]
    assert r.json()["value"][0]["StartDate"] == "2026-01-01T12:00:00Z"  # D365 dates are noon UTC


async def test_odata_errors(d365: httpx.AsyncClient) -> None:
    unknown = await d365.get("/data/CustomersV3", params={"$filter": "Nope eq 'x'"})
    assert unknown.status_code == 400 and "Could not find a property named 'Nope'" in unknown.json()["error"]["message"]
    assert set(unknown.json()["error"]) >= {"code", "message"}
    syntax = await d365.get("/data/CustomersV3", params={"$filter": "CreditLimit gt"})
    assert syntax.status_code == 400
    missing = await d365.get(f"/data/CustomersV3({UK},CustomerAccount='NOPE')")
    assert missing.status_code == 404 and "Resource not found for the segment 'CustomersV3'" in missing.text
    bad_key = await d365.get("/data/CustomersV3('C000001')")
    assert bad_key.status_code == 400
    no_set = await d365.get("/data/CustomersV9")
    assert no_set.status_code == 404
    bad_field = await d365.post("/data/CustomersV3", json={**customer("X1"), "ExternalId": "e"})
    assert bad_field.status_code == 400 and "does not exist on type" in bad_field.json()["error"]["message"]
    required = await d365.post("/data/CustomersV3", json={"OrganizationName": "x", "SalesCurrencyCode": "GBP"})
    inner = required.json()["error"]["innererror"]
    assert required.status_code == 400 and "Field 'CustomerGroupId' must be filled in" in inner["message"]


# ---- keys, duplicates, ETags --------------------------------------------------------------


async def test_composite_keys_duplicates_and_number_sequences(d365: httpx.AsyncClient) -> None:
    first = await d365.post("/data/CustomersV3", json=customer("CUST-0001"))
    assert first.status_code == 201
    assert first.headers["location"] == f"{BASE}/data/CustomersV3({UK},CustomerAccount='CUST-0001')"
    # no upsert by external id: a second create with the same key is refused, the record stays one
    again = await d365.post("/data/CustomersV3", json=customer("cust-0001"))
    assert again.status_code == 400
    assert "The record already exists" in again.json()["error"]["innererror"]["message"]
    # keys ignore case, as in D365
    assert (await d365.get(f"/data/CustomersV3({UK},CustomerAccount='cust-0001')")).status_code == 200
    # the same account in another company is another record
    assert (await d365.post("/data/CustomersV3", json=customer("CUST-0001", "ie01"))).status_code == 201
    numbered = await d365.post(
        "/data/CustomersV3", json={k: v for k, v in customer("x").items() if k != "CustomerAccount"}
    )
    assert numbered.json()["CustomerAccount"] == "C000002"  # the seed holds C000001


async def test_etag_if_match(d365: httpx.AsyncClient) -> None:
    created = await d365.post("/data/CustomersV3", json=customer("E1"))
    tag = created.headers["etag"]
    url = f"/data/CustomersV3({UK},CustomerAccount='E1')"
    ok = await d365.patch(url, json={"OrganizationName": "Renamed"}, headers={"If-Match": tag})
    assert ok.status_code == 204 and ok.headers["etag"] != tag
    stale = await d365.patch(url, json={"OrganizationName": "Lost update"}, headers={"If-Match": tag})
    assert stale.status_code == 412
    assert (await d365.get(url)).json()["OrganizationName"] == "Renamed"
    assert (await d365.delete(url, headers={"If-Match": tag})).status_code == 412
    assert (await d365.patch(url, json={"CustomerAccount": "E2"})).status_code == 400  # keys don't change
    assert (await d365.delete(url, headers={"If-Match": "*"})).status_code == 204


# ---- $batch -------------------------------------------------------------------------------


async def test_batch_changeset_commits_together(d365: httpx.AsyncClient) -> None:
    order = {
        "dataAreaId": "uk01",
        "SalesOrderNumber": "D2R-SO-1",
        "OrderingCustomerAccountNumber": "C000001",
        "D2RReference": "engagement-1",
    }
    lines = [
        {
            "dataAreaId": "uk01",
            "SalesOrderNumber": "D2R-SO-1",
            "ItemNumber": "CONS-TM",
            "OrderedSalesQuantity": 300,
            "SalesPrice": "150.00",
            "LineDescription": "T&M",
        },
        {
            "dataAreaId": "uk01",
            "SalesOrderNumber": "D2R-SO-1",
            "ItemNumber": "IMPL-FF",
            "OrderedSalesQuantity": 1,
            "SalesPrice": "1000.005",
        },
    ]
    results = await send_batch(
        d365,
        [
            [("POST", "SalesOrderHeadersV2", order), *[("POST", "SalesOrderLines", line) for line in lines]],
            ("GET", f"/data/SalesOrderHeadersV2({UK},SalesOrderNumber='D2R-SO-1')", None),
        ],
    )
    changeset, read = results
    assert isinstance(changeset, list) and [r.status for r in changeset] == [201, 201, 201]
    assert [r.content_id for r in changeset] == ["1", "2", "3"]
    assert isinstance(read, SubResponse) and read.status == 200
    header = json.loads(read.body)
    assert header["OrderTotalAmount"] == 46000.01  # 300 x 150 + 1000.005 rounded to pence
    assert header["CurrencyCode"] == "GBP"  # from the customer


async def test_batch_changeset_rolls_back_on_failure(d365: httpx.AsyncClient) -> None:
    before = (await d365.get("/__admin/counts")).json()
    results = await send_batch(
        d365,
        [
            [
                ("POST", "CustomersV3", customer("RB-1")),
                ("POST", "SalesOrderHeadersV2", {"dataAreaId": "uk01", "OrderingCustomerAccountNumber": "RB-1"}),
                (
                    "POST",
                    "SalesOrderLines",
                    {
                        "dataAreaId": "uk01",
                        "SalesOrderNumber": "NO-SUCH-ORDER",
                        "ItemNumber": "CONS-TM",
                        "OrderedSalesQuantity": 1,
                    },
                ),
            ],
            ("GET", f"/data/CustomersV3({UK},CustomerAccount='RB-1')", None),
        ],
    )
    failed, read = results
    # the failed change set answers with the failing request alone
    assert isinstance(failed, SubResponse) and failed.status == 400 and failed.content_id == "3"
    assert "NO-SUCH-ORDER" in json.loads(failed.body)["error"]["innererror"]["message"]
    assert isinstance(read, SubResponse) and read.status == 404  # the customer was rolled back
    assert (await d365.get("/__admin/counts")).json() == before


async def test_batch_content_id_reference(d365: httpx.AsyncClient) -> None:
    results = await send_batch(
        d365, [[("POST", "CustomersV3", customer("CID-1")), ("PATCH", "$1", {"OrganizationName": "Via $1"})]]
    )
    assert isinstance(results[0], list) and [r.status for r in results[0]] == [201, 204]
    got = await d365.get(f"/data/CustomersV3({UK},CustomerAccount='CID-1')")
    assert got.json()["OrganizationName"] == "Via $1"


# ---- posting, periods, receivables -----------------------------------------------------------


async def post_invoice(
    d365: httpx.AsyncClient, number: str, lines: list[tuple[str, str]], date: str = "2026-11-30", **header: Any
) -> list[SubResponse | list[SubResponse]]:
    head = {
        "dataAreaId": "uk01",
        "FreeTextNumber": number,
        "CustomerAccount": "C000001",
        "InvoiceDate": date,
        "DueDate": "2026-12-30",
        **header,
    }
    key = f"/data/FreeTextInvoiceHeaders({UK},FreeTextNumber='{number}')"
    return await send_batch(
        d365,
        [
            [
                ("POST", "FreeTextInvoiceHeaders", head),
                *[
                    (
                        "POST",
                        "FreeTextInvoiceLines",
                        {
                            "dataAreaId": "uk01",
                            "FreeTextNumber": number,
                            "MainAccountDisplayValue": account,
                            "TransactionCurrencyAmount": amount,
                            "SalesTaxGroup": "GBS20",
                        },
                    )
                    for account, amount in lines
                ],
                ("POST", f"{key}/Microsoft.Dynamics.DataEntities.post", None),
            ]
        ],
    )


async def test_free_text_invoice_posts_tax_receivable_and_ledger(d365: httpx.AsyncClient) -> None:
    [cs] = await post_invoice(d365, "FTI-A", [("4000", "1000.00"), ("4100", "333.33")], D2RReference="inv-1")
    assert isinstance(cs, list) and cs[-1].status == 200, cs
    invoice_id = json.loads(cs[-1].body)["value"]
    assert invoice_id == "CIV-000001"
    header = (await d365.get(f"/data/FreeTextInvoiceHeaders({UK},FreeTextNumber='FTI-A')")).json()
    # tax per line, rounded half up: 200.00 + 66.666 -> 66.67
    assert (header["IsPosted"], header["TotalTaxAmount"], header["TotalInvoiceAmount"]) == ("Yes", 266.67, 1600)
    trans = (await d365.get("/data/CustomerTransactions", params={"$filter": f"Invoice eq '{invoice_id}'"})).json()
    assert [(t["AmountCur"], t["RemainingAmountCur"], t["D2RReference"]) for t in trans["value"]] == [
        (1600, 1600, "inv-1")
    ]
    entries = (
        await d365.get(
            "/data/GeneralJournalAccountEntries", headers={"Accept": "application/json;IEEE754Compatible=true"}
        )
    ).json()["value"]
    by_account = {e["MainAccount"]: e["TransactionCurrencyAmount"] for e in entries}
    assert by_account == {"1200": "1600", "4000": "-1000", "4100": "-333.33", "2200": "-266.67"}
    # a posted invoice is final
    again = await d365.post(
        f"/data/FreeTextInvoiceHeaders({UK},FreeTextNumber='FTI-A')/Microsoft.Dynamics.DataEntities.post"
    )
    assert again.status_code == 400 and "already been posted" in again.text
    edit = await d365.patch(
        f"/data/FreeTextInvoiceHeaders({UK},FreeTextNumber='FTI-A')", json={"DueDate": "2027-01-01"}
    )
    assert edit.status_code == 400


async def test_period_on_hold_refuses_posting_and_rolls_back(d365: httpx.AsyncClient) -> None:
    period = "/data/LedgerFiscalPeriods(LedgerName='UK01',Calendar='Fiscal',YearName='2026',PeriodName='Period 11')"
    assert (await d365.patch(period, json={"PeriodStatus": "OnHold"})).status_code == 204
    [failed] = await post_invoice(d365, "FTI-LOCKED", [("4000", "10.00")])
    assert isinstance(failed, SubResponse) and failed.status == 400
    assert "is not open" in json.loads(failed.body)["error"]["innererror"]["message"]
    assert (await d365.get(f"/data/FreeTextInvoiceHeaders({UK},FreeTextNumber='FTI-LOCKED')")).status_code == 404
    [ok] = await post_invoice(d365, "FTI-DEC", [("4000", "10.00")], date="2026-12-01")  # December is open
    assert isinstance(ok, list) and ok[-1].status == 200
    assert (await d365.patch(period, json={"PeriodStatus": "PermanentlyClosed"})).status_code == 204
    assert (await d365.patch(period, json={"PeriodStatus": "Open"})).status_code == 400


async def test_payment_and_credit_note_settle_the_invoice(d365: httpx.AsyncClient) -> None:
    [cs] = await post_invoice(d365, "FTI-P", [("4000", "1000.00")])  # 1,200.00 with VAT
    assert isinstance(cs, list)
    invoice_id = json.loads(cs[-1].body)["value"]
    [credit] = await post_invoice(d365, "FTI-CN", [("4000", "-100.00")], D2RSettleInvoiceId=invoice_id)
    assert isinstance(credit, list) and json.loads(credit[-1].body)["value"] == "CCN-000001"
    pay = await send_batch(
        d365,
        [
            [
                (
                    "POST",
                    "CustomerPaymentJournalHeaders",
                    {"dataAreaId": "uk01", "JournalBatchNumber": "PAY-1", "JournalName": "CustPay"},
                ),
                (
                    "POST",
                    "CustomerPaymentJournalLines",
                    {
                        "dataAreaId": "uk01",
                        "JournalBatchNumber": "PAY-1",
                        "TransactionDate": "2026-12-05",
                        "AccountDisplayValue": "C000001",
                        "CreditAmount": "500.00",
                        "CurrencyCode": "GBP",
                        "MarkedInvoice": invoice_id,
                        "PaymentReference": "BACS 42",
                    },
                ),
                (
                    "POST",
                    f"/data/CustomerPaymentJournalHeaders({UK},JournalBatchNumber='PAY-1')/"
                    "Microsoft.Dynamics.DataEntities.post",
                    None,
                ),
            ]
        ],
    )
    assert isinstance(pay[0], list) and pay[0][-1].status == 200
    [invoice] = (await d365.get("/data/CustomerTransactions", params={"$filter": f"Invoice eq '{invoice_id}'"})).json()[
        "value"
    ]
    assert (invoice["AmountCur"], invoice["SettleAmountCur"], invoice["RemainingAmountCur"]) == (1200, 620, 580)
    settlements = (await d365.get("/data/CustomerSettlements", params={"$orderby": "SettlementId"})).json()["value"]
    assert [(s["OffsetTransactionType"], s["SettledAmountCur"]) for s in settlements] == [
        ("CreditNote", 120),
        ("Payment", 500),
    ]


async def test_journal_must_balance(d365: httpx.AsyncClient) -> None:
    header = {"dataAreaId": "uk01", "JournalBatchNumber": "GJ-1", "JournalName": "GenJrn", "D2RReference": "rev-1"}
    line = {"dataAreaId": "uk01", "JournalBatchNumber": "GJ-1", "TransDate": "2026-11-30", "CurrencyCode": "GBP"}
    post = (
        "POST",
        f"/data/LedgerJournalHeaders({UK},JournalBatchNumber='GJ-1')/Microsoft.Dynamics.DataEntities.post",
        None,
    )
    [unbalanced] = await send_batch(
        d365,
        [
            [
                ("POST", "LedgerJournalHeaders", header),
                ("POST", "LedgerJournalLines", {**line, "AccountDisplayValue": "1250", "DebitAmount": "100"}),
                ("POST", "LedgerJournalLines", {**line, "AccountDisplayValue": "4000", "CreditAmount": "99.99"}),
                post,
            ]
        ],
    )
    assert isinstance(unbalanced, SubResponse) and "do not balance" in unbalanced.body.decode()
    [ok] = await send_batch(
        d365,
        [
            [
                ("POST", "LedgerJournalHeaders", header),
                ("POST", "LedgerJournalLines", {**line, "AccountDisplayValue": "1250", "DebitAmount": "100"}),
                ("POST", "LedgerJournalLines", {**line, "AccountDisplayValue": "4000", "CreditAmount": "100"}),
                post,
            ]
        ],
    )
    assert isinstance(ok, list) and ok[-1].status == 200
    lines = (await d365.get("/data/LedgerJournalLines", params={"$filter": "JournalBatchNumber eq 'GJ-1'"})).json()
    assert [ln["LineNumber"] for ln in lines["value"]] == [1, 2] and lines["value"][0]["Voucher"].startswith("GLV")


# ---- faults -------------------------------------------------------------------------------


async def test_throttling_answers_429_with_retry_after(d365: httpx.AsyncClient) -> None:
    await d365.post("/__admin/faults", json={"throttle_burst": 2, "retry_after_s": 7})
    first = await d365.get("/data/CustomersV3")
    assert first.status_code == 429 and first.headers["retry-after"] == "7"
    assert "throttled" in first.json()["error"]["message"]
    assert (await d365.get("/data/CustomersV3")).status_code == 429
    assert (await d365.get("/data/CustomersV3")).status_code == 200


async def test_lost_response_commits_the_write(d365: httpx.AsyncClient) -> None:
    await d365.post("/__admin/faults", json={"response_lost_rate": 1.0})
    lost = await d365.post("/data/CustomersV3", json=customer("LOST-1"))
    assert lost.status_code == 504  # in process; the real server drops the connection
    await d365.delete("/__admin/faults")
    # the caller never heard back, but the customer exists: a retry must read before it creates
    assert (await d365.get(f"/data/CustomersV3({UK},CustomerAccount='LOST-1')")).status_code == 200
    assert (await d365.post("/data/CustomersV3", json=customer("LOST-1"))).status_code == 400
    records = (await d365.get("/__admin/records/CustomersV3")).json()["records"]
    assert sum(1 for r in records if r["CustomerAccount"] == "LOST-1") == 1


async def test_reject_rule_refuses_for_good(d365: httpx.AsyncClient) -> None:
    await d365.post(
        "/__admin/faults",
        json={"reject": [{"method": "POST", "path": "SalesOrderHeadersV2", "message": "Customer on credit hold"}]},
    )
    r = await d365.post("/data/SalesOrderHeadersV2", json={"OrderingCustomerAccountNumber": "C000001"})
    assert r.status_code == 400 and r.json()["error"]["innererror"]["message"] == "Customer on credit hold"
    assert (await d365.get("/__admin/faults")).json()["rejected"] == [1]
    assert (await d365.get("/data/SalesOrderHeadersV2")).json()["value"] == []


async def test_hour_transactions_need_a_worker_and_an_open_period(d365: httpx.AsyncClient) -> None:
    line = {
        "dataAreaId": "uk01",
        "TransId": "HRS-1",
        "Worker": "000001",
        "TransDate": "2026-11-02",
        "Hours": "7.5",
        "IsBillable": "Yes",
        "D2RProjectId": "a0P-1",
    }
    assert (await d365.post("/data/ProjectHourJournalLines", json=line)).status_code == 201
    assert (await d365.post("/data/ProjectHourJournalLines", json=line)).status_code == 400  # the key is taken
    nobody = await d365.post("/data/ProjectHourJournalLines", json={**line, "TransId": "HRS-2", "Worker": "999"})
    assert nobody.status_code == 400 and "Worker" in nobody.json()["error"]["innererror"]["message"]
    period = "/data/LedgerFiscalPeriods(LedgerName='UK01',Calendar='Fiscal',YearName='2026',PeriodName='Period 11')"
    await d365.patch(period, json={"PeriodStatus": "Closed"})
    closed = await d365.post("/data/ProjectHourJournalLines", json={**line, "TransId": "HRS-3"})
    assert closed.status_code == 400 and "is not open" in closed.json()["error"]["innererror"]["message"]
