"""A small hand-computed dataset (the expected KPI values are worked out in test_kpis.py).

Reporting currency USD. GBP->USD is 1.25 from 2026-01-01 and 1.30 from 2026-02-01.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from reporting import models as m
from reporting.hub import ReportingHub

LEGAL_ENTITIES = [
    m.LegalEntityDim(legal_entity="US1", name="d2r Inc", functional_currency="USD", geography="US"),
    m.LegalEntityDim(legal_entity="UK1", name="d2r Ltd", functional_currency="GBP", geography="GB"),
]
CUSTOMERS = [
    m.CustomerDim(customer_id="ACME", name="Acme Group", geography="US"),
    m.CustomerDim(customer_id="ACME-EU", name="Acme Europe", parent_customer_id="ACME", geography="GB"),
    m.CustomerDim(customer_id="GLOBEX", name="Globex", geography="US"),
]
PROJECTS = [
    m.ProjectDim(
        project_id="P1",
        customer_id="ACME",
        opportunity_id="O1",
        contract_id="K1",
        legal_entity="US1",
        service_line="consulting",
        geography="US",
        currency="USD",
        billing_model="time_and_materials",
    ),
    m.ProjectDim(
        project_id="P2",
        customer_id="ACME-EU",
        opportunity_id="O2",
        contract_id="K2",
        legal_entity="UK1",
        service_line="cloud",
        geography="GB",
        currency="GBP",
        billing_model="time_and_materials",
    ),
    m.ProjectDim(
        project_id="P3",
        customer_id="GLOBEX",
        opportunity_id="O3",
        contract_id="K3",
        legal_entity="US1",
        service_line="cloud",
        geography="US",
        currency="USD",
        billing_model="fixed_fee",
    ),
]
CONSULTANTS = [
    m.ConsultantDim(consultant_id="C1", home_legal_entity="US1", service_line="consulting", geography="US"),
    m.ConsultantDim(consultant_id="C2", home_legal_entity="UK1", service_line="cloud", geography="GB"),
]
FX = [
    m.FxRate(from_currency="GBP", to_currency="USD", rate_date=date(2026, 1, 1), rate=D("1.25")),
    m.FxRate(from_currency="GBP", to_currency="USD", rate_date=date(2026, 2, 1), rate=D("1.30")),
]

LINEAGE = {
    "P1": dict(
        opportunity_id="O1", customer_id="ACME", project_id="P1", contract_id="K1", legal_entity="US1", currency="USD"
    ),
    "P2": dict(
        opportunity_id="O2",
        customer_id="ACME-EU",
        project_id="P2",
        contract_id="K2",
        legal_entity="UK1",
        currency="GBP",
    ),
    "P3": dict(
        opportunity_id="O3", customer_id="GLOBEX", project_id="P3", contract_id="K3", legal_entity="US1", currency="USD"
    ),
}


def bookings() -> list[m.BookingFact]:
    return [
        m.BookingFact(
            source_system="crm",
            source_record_id="B1",
            booking_date=date(2026, 1, 5),
            amount=D("10000"),
            **LINEAGE["P1"],
        ),
        m.BookingFact(
            source_system="crm",
            source_record_id="B2",
            booking_date=date(2026, 1, 10),
            amount=D("8000"),
            **LINEAGE["P2"],
        ),
        m.BookingFact(
            source_system="crm", source_record_id="B3", booking_date=date(2026, 2, 3), amount=D("5000"), **LINEAGE["P3"]
        ),
    ]


def time_facts() -> list[m.TimeFact]:
    def t(rid: str, proj: str, cons: str, day: date, hours: str, billable: bool, bill: str, cost: str) -> m.TimeFact:
        return m.TimeFact(
            source_system="psa",
            source_record_id=rid,
            consultant_id=cons,
            work_date=day,
            hours=D(hours),
            billable=billable,
            bill_amount=D(bill),
            cost_amount=D(cost),
            **LINEAGE[proj],
        )

    return [
        t("T1", "P1", "C1", date(2026, 1, 6), "8", True, "1600", "800"),
        t("T2", "P1", "C1", date(2026, 1, 7), "4", True, "800", "400"),
        t("T3", "P3", "C1", date(2026, 1, 8), "4", False, "0", "400"),
        t("T4", "P2", "C2", date(2026, 1, 6), "8", True, "1200", "600"),
        t("T5", "P2", "C2", date(2026, 2, 10), "8", True, "1200", "600"),
    ]


def revenue() -> list[m.RevenueFact]:
    def r(rid: str, proj: str, day: date, amount: str) -> m.RevenueFact:
        return m.RevenueFact(
            source_system="erp", source_record_id=rid, revenue_date=day, amount=D(amount), **LINEAGE[proj]
        )

    return [
        r("R1", "P1", date(2026, 1, 31), "2400"),
        r("R2", "P2", date(2026, 1, 31), "1200"),
        r("R3", "P2", date(2026, 2, 28), "1200"),
        r("R4", "P3", date(2026, 2, 28), "1000"),
    ]


def invoices() -> list[m.InvoiceFact]:
    def i(rid: str, proj: str, day: date, due: date, net: str, tax: str) -> m.InvoiceFact:
        return m.InvoiceFact(
            source_system="erp",
            source_record_id=rid,
            invoice_date=day,
            due_date=due,
            net_amount=D(net),
            tax_amount=D(tax),
            total_amount=D(net) + D(tax),
            **LINEAGE[proj],
        )

    return [
        i("I1", "P1", date(2026, 1, 31), date(2026, 3, 2), "2000", "200"),
        i("I2", "P2", date(2026, 2, 5), date(2026, 3, 7), "3000", "600"),
        i("I3", "P3", date(2026, 1, 15), date(2026, 2, 14), "1000", "0"),
    ]


async def load(hub: ReportingHub) -> None:
    await hub.upsert_dimensions(LEGAL_ENTITIES)
    await hub.upsert_dimensions(CUSTOMERS)
    await hub.upsert_dimensions(PROJECTS)
    await hub.upsert_dimensions(CONSULTANTS)
    await hub.upsert_dimensions(FX)
    await hub.record_booking(*bookings())
    await hub.record_time_facts(time_facts())
    await hub.record_revenue(revenue())
    await hub.record_invoice(*invoices())
    await hub.record_credit_memo(
        m.CreditMemoFact(
            source_system="erp",
            source_record_id="CM1",
            memo_date=date(2026, 2, 10),
            invoice_id="I1",
            net_amount=D("100"),
            tax_amount=D("10"),
            total_amount=D("110"),
            **LINEAGE["P1"],
        )
    )
    await hub.record_payment(
        m.PaymentFact(
            source_system="erp",
            source_record_id="PAY1",
            payment_date=date(2026, 2, 20),
            invoice_id="I1",
            amount=D("1000"),
            **LINEAGE["P1"],
        ),
        m.PaymentFact(
            source_system="erp",
            source_record_id="PAY2",
            payment_date=date(2026, 2, 10),
            invoice_id="I3",
            amount=D("1000"),
            **LINEAGE["P3"],
        ),
    )
    await hub.record_costs(
        [
            m.CostFact(
                source_system="erp",
                source_record_id="X1",
                cost_date=date(2026, 2, 15),
                cost_type="subcontractor",
                amount=D("300"),
                **LINEAGE["P3"],
            )
        ]
    )
    await hub.record_expenses(
        [
            m.ExpenseFact(
                source_system="psa",
                source_record_id="E1",
                expense_date=date(2026, 1, 20),
                amount=D("200"),
                billable=True,
                consultant_id="C1",
                **LINEAGE["P1"],
            )
        ]
    )
