"""ERP calls per engagement-month and time-posting throughput, NetSuite vs Dynamics 365.

Both connectors run against their simulators in process (httpx.ASGITransport, no sockets),
so the figures count HTTP requests exactly and compare the two connectors' work; they
are not network timings.

    .venv/bin/python bench/bench_erp_calls.py --bills 1000
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from connectors.dynamics import DynamicsClient, DynamicsConfig, DynamicsErp, DynamicsPosting, DynamicsReceivables
from connectors.netsuite.client import NetSuiteClient, NetSuiteConfig
from connectors.netsuite.erp import NetSuiteErp
from connectors.netsuite.posting import NetSuitePosting
from connectors.netsuite.receivables import NetSuiteReceivables
from domain.deal import BillingModel, ContractLine, Customer, Engagement, RevenueMethod
from domain.model import Invoice, InvoiceLine, JournalEntry, JournalLine, Lineage, SourceKind, TaxLine
from domain.money import Money
from domain.postings import TimeBill
from domain.tax import TaxTreatment


class Counting(httpx.AsyncBaseTransport):
    """Counts the requests that reach the server (token calls included)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.count = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        return await self.inner.handle_async_request(request)


def engagement(entity: str, currency: str, n: int) -> Engagement:
    money = Money(amount=Decimal("45000.00"), currency=currency)
    return Engagement(
        opportunity_id=f"006BENCH{n:010d}",
        name=f"Bench deal {n}",
        customer=Customer(customer_id=f"001BENCH{n:010d}", name=f"Bench customer {n}", country="GB"),
        legal_entity=entity,
        currency=currency,
        contract_value=money,
        close_date=date(2026, 10, 1),
        billing_terms="Net30",
        service_package="ADVISORY-TM",
        lines=[
            ContractLine(
                line_id=f"L-{n}",
                name="Consulting",
                billing_model=BillingModel.TIME_AND_MATERIALS,
                revenue_method=RevenueMethod.AS_DELIVERED,
                amount=money,
                role="Consultant",
                hours=Decimal(300),
            )
        ],
    )


def month_documents(eng: Engagement, n: int, rate: str, jurisdiction: str) -> tuple[Invoice, JournalEntry]:
    cur = eng.currency
    net, tax = Money(amount=Decimal("4500.00"), currency=cur), Decimal(rate)
    lineage = Lineage(
        opportunity_id=eng.opportunity_id,
        customer_id=eng.customer.customer_id,
        project_id=f"a0P{n:015d}",
        contract_id="C",
        legal_entity=eng.legal_entity,
    )
    tax_amount = net.times(tax).rounded()
    invoice = Invoice(
        invoice_id=f"INV-bench-{n}-2026-11",
        lineage=lineage,
        customer_id=eng.customer.customer_id,
        currency=cur,
        invoice_date=date(2026, 11, 30),
        due_date=date(2026, 12, 30),
        period="2026-11",
        lines=[
            InvoiceLine(
                invoice_line_id=f"INV-bench-{n}:1",
                contract_line_id=f"L-{n}",
                billing_event_id=f"BE-{n}",
                kind=SourceKind.TIME,
                description="Consultant, 30 h",
                net=net,
                tax=TaxLine(treatment=TaxTreatment.STANDARD, jurisdiction=jurisdiction, rate=tax, amount=tax_amount),
            )
        ],
        net_total=net,
        tax_total=tax_amount,
        total=net + tax_amount,
    )
    zero = Money(amount=Decimal(0), currency=cur)
    journal = JournalEntry(
        journal_entry_id=f"JE-bench-{n}-2026-11",
        lineage=lineage,
        legal_entity=eng.legal_entity,
        entry_date=date(2026, 11, 30),
        period="2026-11",
        currency=cur,
        memo="Revenue 2026-11",
        lines=[
            JournalLine(account="1250 Contract balance", debit=net, credit=zero),
            JournalLine(account="4000 Services revenue", debit=zero, credit=net),
        ],
    )
    return invoice, journal


async def engagement_month(erp: Any, receivables: Any, eng: Engagement, n: int, rate: str, jurisdiction: str) -> None:
    customer = await erp.upsert_customer(eng, f"d2r:customer:{eng.customer.customer_id}")
    order = await erp.create_sales_order(eng, customer, f"a0P{n:015d}", f"d2r:engagement-{n}:sales-order")
    invoice, journal = month_documents(eng, n, rate, jurisdiction)
    await erp.post_invoice(invoice, customer, order)
    await erp.post_journal(journal)
    await erp.invoice_status(invoice.invoice_id)
    await receivables.receipts(customer, date(2026, 11, 1), date(2026, 11, 30), eng.opportunity_id)


def bills(entity: str, employee: str, count: int) -> list[TimeBill]:
    out = []
    for i in range(count):
        day = date(2026, 11, 2 + i % 25)
        out.append(
            TimeBill(
                external_id=f"d2r:tb:TC-{i}:{day}",
                employee_id=employee,
                legal_entity=entity,
                work_date=day,
                hours="7.5",
                billable=True,
                memo="bench",
                project_id="a0PBENCH",
                entry_id=f"TC-{i}:{day}",
            )
        )
    return out


async def main(count: int) -> None:
    from simulators._settings import SimSettings
    from simulators.devkeys import ensure_dev_keys
    from simulators.dynamics import DynamicsSettings
    from simulators.dynamics import create_app as create_dynamics
    from simulators.netsuite import create_app as create_netsuite

    tmp = Path(tempfile.mkdtemp())
    ns_app = create_netsuite(SimSettings(db=str(tmp / "ns.sqlite"), seed="demo", port=8302))
    d_settings = DynamicsSettings(db=str(tmp / "d365.sqlite"), seed="demo", port=8303)
    d_app = create_dynamics(d_settings)
    ns_t, d_t = Counting(httpx.ASGITransport(app=ns_app)), Counting(httpx.ASGITransport(app=d_app))
    keys = ensure_dev_keys()  # NetSuite M2M: a client assertion signed with the dev certificate's key
    ns_config = NetSuiteConfig(
        base_url="http://ns.test",
        client_id="d2r-dev",
        certificate_id=keys.key_id,
        private_key=keys.private_key.read_text(),
    )
    ns = NetSuiteClient(ns_config, transport=ns_t)
    d365 = DynamicsClient(
        DynamicsConfig(
            base_url="http://127.0.0.1:8303",
            tenant=d_settings.tenant,
            client_id="d2r-dev",
            client_secret="d2r-dev-secret",
        ),
        transport=d_t,
    )
    cases = [
        ("netsuite", NetSuiteErp(ns), NetSuiteReceivables(ns), ns_t, "US01", "USD", "0", "US"),
        ("dynamics", DynamicsErp(d365), DynamicsReceivables(d365), d_t, "UK01", "GBP", "0.20", "GB"),
    ]
    print("| ERP | engagement-month, first (incl. token) | engagement-month, later |")
    print("|---|---|---|")
    for name, erp, receivables, counter, entity, cur, rate, juris in cases:
        before = counter.count
        await engagement_month(erp, receivables, engagement(entity, cur, 1), 1, rate, juris)
        first = counter.count - before
        before = counter.count
        await engagement_month(erp, receivables, engagement(entity, cur, 2), 2, rate, juris)
        print(f"| {name} | {first} | {counter.count - before} |")
    print()
    print(f"| ERP | {count} time bills | requests | bills/s |")
    print("|---|---|---|---|")
    ns_post, d_post = NetSuitePosting(ns, concurrency=8), DynamicsPosting(d365, concurrency=4)
    runs: list[tuple[str, Any, Counting, str, str]] = [
        ("netsuite", ns_post, ns_t, "US01", "003Dd0000000001IAA"),
        ("dynamics", d_post, d_t, "UK01", "003Dd0000000003IAA"),
    ]
    for name, posting, counter, entity, employee in runs:
        before, started = counter.count, time.perf_counter()
        outcomes = await posting.post_time_bills(bills(entity, employee, count))
        took = time.perf_counter() - started
        assert all(o.error_code is None for o in outcomes), [o for o in outcomes if o.error_code][:3]
        print(f"| {name} | {took:.2f} s | {counter.count - before} | {count / took:,.0f} |")
    await ns.aclose()
    await d365.aclose()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--bills", type=int, default=1000)
    asyncio.run(main(p.parse_args().bills))
