"""The engagement's documents recorded in the hub: the reference year's figures come out
of the KPI queries exactly, and recording the same documents again writes nothing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from activities.reporting import HubExceptionActivities, ReportingActivities, load_reference_data
from contracts.reporting import (
    RaiseExceptionInput,
    RecordEngagementInput,
    ResolveExceptionInput,
    RetryingExceptionInput,
)
from domain.billing import invoice_period, tax_party
from domain.bookings import booking_movements
from domain.contract import open_contract
from domain.deal import DealRules, Engagement, validate_deal
from domain.model import Payment
from domain.periods import period_end
from domain.reference_data import default_fx_rates, default_legal_entities
from domain.revenue import recognize_period
from domain.tax import TaxRate, TaxRules
from reporting.hub import ReportingHub
from reporting.kpis import KpiQuery
from tests.workflows import scenario

ZERO_VAT = TaxRules(rates=[TaxRate(jurisdiction="GB", rate=Decimal(0), effective_from=date(2020, 1, 1))])


async def test_recorded_engagement_feeds_the_kpis_and_is_idempotent(hub: ReportingHub) -> None:
    engagement = validate_deal(scenario.reference_opportunity(), DealRules(legal_entities={"UK01": "GBP"}))
    assert isinstance(engagement, Engagement)
    entities = default_legal_entities()
    state = open_contract(engagement, project_id="PRJ-REF", contract_id="SO-REF")
    delivery = scenario.reference_delivery().model_copy(update={"fx": default_fx_rates()})
    delivery = delivery.model_copy(
        update={"time_entries": [e.model_copy(update={"project_id": "PRJ-REF"}) for e in delivery.time_entries]}
    )
    invoices, revenue = [], []
    for period in ["2027-01", "2027-02", "2027-03"]:
        run, issued = invoice_period(
            state,
            period,
            delivery,
            seller=entities["UK01"],
            buyer=tax_party(state),
            tax_rules=ZERO_VAT,
            invoice_date=period_end(period),
        )
        rev = recognize_period(run.state, period, delivery)
        state = rev.state
        invoices += issued
        revenue += rev.entries
    paid = Payment(
        payment_id="PAY-1",
        lineage=state.lineage,
        invoice_id=invoices[0].invoice_id,
        received_on=period_end("2027-02"),
        amount=invoices[0].total,
    )
    activities = ReportingActivities(hub, entities, default_fx_rates())
    data = RecordEngagementInput(
        workflow_id="engagement-x",
        engagement=engagement,
        bookings=booking_movements(engagement, []),
        project_id="PRJ-REF",
        contract_id="SO-REF",
        invoices=invoices,
        payments=[paid],
        revenue_entries=revenue,
    )
    first = await activities.record_engagement(data)
    # keys: the opportunity, its 2 accounts, the project, the sales order, 3 invoices, the payment
    assert first.written == {"bookings": 2, "invoices": 3, "payments": 1, "revenue": 4, "keys": 9}
    again = await activities.record_engagement(data)
    assert again.written == {"bookings": 0, "invoices": 0, "payments": 0, "revenue": 0, "keys": 0}

    # Bookings 192,000 GBP; Jan-Mar revenue 6,000 + 6,000 + 42,000 = 54,000 GBP (no tax
    # configured here, so invoices are net); one 6,000 payment.
    q = KpiQuery(group_by="legal_entity", currency="functional", period_from="2026-01", period_to="2027-12")
    bookings = (await hub.kpi("bookings", q)).rows
    assert [Decimal(str(r["value"])) for r in bookings] == [Decimal("192000")]
    revenue_rows = (await hub.kpi("revenue", q)).rows
    assert [Decimal(str(r["value"])) for r in revenue_rows] == [Decimal("54000")]
    collections = (await hub.kpi("collections", q)).rows
    assert [Decimal(str(r["value"])) for r in collections] == [Decimal("6000")]


async def test_a_waiting_workflow_is_one_exception_per_incident_linked_and_resolved(hub: ReportingHub) -> None:
    activities = HubExceptionActivities(hub, "http://ui.test:8233")
    incident = RaiseExceptionInput(
        workflow_id="engagement-006X",
        incident=1,
        kind="engagement.needs_attention",
        message="the deal is invalid (D2R_Legal_Entity__c)",
        error_type="InvalidDeal",
        stage="NEEDS_ATTENTION",
        opportunity_id="006X",
        detail={"D2R_Legal_Entity__c": "missing"},
    )
    first = await activities.raise_exception(incident)
    again = await activities.raise_exception(incident)  # a retried activity: the same incident
    assert first.exception_id == again.exception_id
    [row] = await hub.list_exceptions()
    assert row["workflow_id"] == "engagement-006X" and row["status"] == "open"
    assert row["workflow_link"] == "http://ui.test:8233/namespaces/default/workflows/engagement-006X"
    # A person retries while the deal is still invalid: `retrying`, then the same row open again.
    retrying = await activities.exception_retrying(
        RetryingExceptionInput(workflow_id="engagement-006X", incident=1, kind="engagement.needs_attention")
    )
    assert retrying.exception_id == first.exception_id
    assert (await hub.get_exception(first.exception_id))["status"] == "retrying"
    reopened = await activities.raise_exception(incident)
    [row] = await hub.list_exceptions(status=None)
    assert reopened.exception_id == first.exception_id and (row["status"], row["occurrences"]) == ("open", 3)
    resolved = await activities.resolve_exception(
        ResolveExceptionInput(
            workflow_id="engagement-006X",
            incident=1,
            kind="engagement.needs_attention",
            resolved_by="d2r",
            note="the retried step passed",
        )
    )
    assert resolved.exception_id == first.exception_id
    assert (await hub.get_exception(first.exception_id))["status"] == "resolved"
    # Resolving again (a retried activity) changes nothing and finds nothing open.
    assert (
        await activities.resolve_exception(
            ResolveExceptionInput(
                workflow_id="engagement-006X",
                incident=1,
                kind="engagement.needs_attention",
                resolved_by="d2r",
                note="again",
            )
        )
    ).exception_id == 0


async def test_reference_data_lets_time_facts_load_before_any_engagement(hub: ReportingHub) -> None:
    await load_reference_data(hub, default_legal_entities(), default_fx_rates())
    await load_reference_data(hub, default_legal_entities(), default_fx_rates())  # idempotent
    from reporting import models as m

    result = await hub.record_time_facts(
        [
            m.TimeFact(
                source_system="psa",
                source_record_id="TC-1:2026-10-12",
                customer_id="001X",
                project_id="PRJ-X",
                legal_entity="US01",
                currency="USD",
                consultant_id="003X",
                work_date=date(2026, 10, 12),
                hours=Decimal("8"),
                billable=True,
                bill_amount=Decimal("2000"),
                cost_amount=Decimal("1120"),
            )
        ]
    )
    assert result.written == 1
