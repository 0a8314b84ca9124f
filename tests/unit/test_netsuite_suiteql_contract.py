"""The SuiteQL d2r sends and the rows it reads, against NetSuite's documented shapes: the
query service's envelope (`items`, `hasMore`, `totalResults`...), the Records Catalog's
columns (`transaction.entity`, `foreignamountunpaid`, the subsidiary on the main line of
`transactionline`), TO_DATE for dates going out and the account's date format for dates
coming back. Served by an httpx.MockTransport: the real HTTP exchange, no patched internals."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connectors.netsuite.client import NetSuiteClient, NetSuiteConfig
from connectors.netsuite.dates import parse_date
from connectors.netsuite.extract import NetSuiteExtract
from connectors.netsuite.receivables import NetSuiteReceivables
from tests.vendor_auth import private_key_pem


def envelope(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"links": [], "count": len(items), "hasMore": False, "items": items, "offset": 0, "totalResults": len(items)}


class Recorder:
    """Answers each SuiteQL query with the first canned rows whose key the query contains."""

    def __init__(self, answers: dict[str, list[dict[str, Any]]]) -> None:
        self.answers = answers
        self.queries: list[str] = []

    def client(self, date_format: str) -> NetSuiteClient:
        def route(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/oauth2/v1/token"):
                return httpx.Response(200, json={"access_token": "eyJ", "token_type": "bearer", "expires_in": 3600})
            assert request.url.path == "/services/rest/query/v1/suiteql"
            assert request.headers["prefer"] == "transient"
            q = json.loads(request.content)["q"]
            self.queries.append(q)
            rows = next((v for k, v in self.answers.items() if k in q), [])
            return httpx.Response(200, json=envelope(rows))

        config = NetSuiteConfig(
            base_url="https://ns.test",
            client_id="c",
            certificate_id="k",
            private_key=private_key_pem(),
            date_format=date_format,
        )
        return NetSuiteClient(config, transport=httpx.MockTransport(route))


@pytest.mark.parametrize(
    ("text", "fmt", "day"),
    [
        ("4/30/2026", "M/D/YYYY", date(2026, 4, 30)),
        ("30/04/2026", "DD/MM/YYYY", date(2026, 4, 30)),
        ("30.4.2026", "D.M.YYYY", date(2026, 4, 30)),
        ("2026-04-30", "YYYY-MM-DD", date(2026, 4, 30)),
        ("30-Apr-2026", "DD-Mon-YYYY", date(2026, 4, 30)),
    ],
)
def test_dates_in_the_accounts_format(text: str, fmt: str, day: date) -> None:
    assert parse_date(text, fmt) == day


def test_a_date_in_another_format_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError):
        parse_date("2026-04-30", "M/D/YYYY")


async def test_overdue_invoices_read_the_open_amount_in_the_accounts_date_format() -> None:
    ns = Recorder(
        {
            "FROM subsidiary": [{"links": [], "id": "3"}],
            "foreignamountunpaid": [
                {
                    "links": [],
                    "id": "812",
                    "externalid": "INV-1",
                    "duedate": "30/04/2026",
                    "foreignamountunpaid": 300.5,
                    "currency": "2",
                    "custbody_d2r_opportunity_id": "006A",
                },
            ],
        }
    )
    client = ns.client("DD/MM/YYYY")
    client_get = {"symbol": "GBP"}

    async def currency(record_type: str, record_id: str) -> dict[str, Any]:
        assert (record_type, record_id) == ("currency", "2")
        return client_get

    client.get = currency  # type: ignore[method-assign]
    items = await NetSuiteReceivables(client).open_items_due("UK01", date(2026, 4, 1), date(2026, 4, 30))
    assert items is not None
    (item,) = items
    assert item.due_date == date(2026, 4, 30) and item.amount_remaining.amount == Decimal("300.50")
    assert item.amount_remaining.currency == "GBP" and item.erp_invoice_id == "812"
    q = ns.queries[-1]
    assert "t.foreignamountunpaid > 0" in q and "amountremaining" not in q.replace("foreignamountunpaid", "")
    assert "tl.mainline = 'T'" in q and "tl.subsidiary = 3" in q
    assert "t.duedate >= TO_DATE('2026-04-01', 'YYYY-MM-DD')" in q
    await client.aclose()


async def test_receipts_find_payments_by_entity_and_reconciliation_joins_the_gl() -> None:
    ns = Recorder({"FROM subsidiary": [{"links": [], "id": "1"}]})
    client = ns.client("M/D/YYYY")
    assert await NetSuiteReceivables(client).receipts("77", date(2026, 4, 1), date(2026, 4, 30)) == []
    assert "type = 'CustPymt' AND entity = 77" in ns.queries[-1] and "customer" not in ns.queries[-1]
    extract = NetSuiteExtract(client)
    assert await extract.time_journal_lines("posting-US01-", date(2026, 4, 1), date(2026, 4, 30)) == (0, [])
    q = ns.queries[-1]
    assert "INNER JOIN transactionaccountingline tal ON tal.transaction = tl.transaction" in q
    assert "tal.transactionline = tl.id" in q and "t.trandate >= TO_DATE('2026-04-01', 'YYYY-MM-DD')" in q
    assert await extract.invoices("US01", date(2026, 4, 1), date(2026, 4, 30)) == []
    assert "tl.subsidiary = 1" in ns.queries[-1] and "t.foreigntotal" in ns.queries[-1]
    await client.aclose()
