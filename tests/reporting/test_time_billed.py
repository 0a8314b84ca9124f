"""The hub's time facts show the rate d2r billed at beside the PSA's, so the hub agrees with
the ERP invoice: the reference deal's T&M line bills Alan's 40 h of January at d2r's rate
precedence (no rate on the line: the account's card, GBP 150/h = GBP 6,000.00), while his
timecard in the PSA carries GBP 180/h (GBP 7,200.00 on the time fact, as posting values it)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from activities.reporting import ReportingActivities, load_reference_data
from contracts.reporting import RecordEngagementInput
from domain.billing import invoice_period, tax_party
from domain.contract import open_contract
from domain.deal import DealRules, Engagement, validate_deal
from domain.model import SourceKind
from domain.periods import period_end
from domain.reference_data import default_fx_rates, default_legal_entities
from domain.tax import TaxRate, TaxRules
from reporting import models as m
from reporting.hub import ReportingHub
from tests.workflows import scenario

ZERO_VAT = TaxRules(rates=[TaxRate(jurisdiction="GB", rate=Decimal(0), effective_from=date(2020, 1, 1))])


async def test_time_facts_show_the_rate_d2r_billed_and_the_psas(hub: ReportingHub) -> None:
    engagement = validate_deal(scenario.reference_opportunity(), DealRules(legal_entities={"UK01": "GBP"}))
    assert isinstance(engagement, Engagement)
    entities = default_legal_entities()
    await load_reference_data(hub, entities, default_fx_rates())
    state = open_contract(engagement, project_id="PRJ-REF", contract_id="SO-REF")
    delivery = scenario.reference_delivery().model_copy(update={"fx": default_fx_rates()})
    delivery = delivery.model_copy(
        update={"time_entries": [e.model_copy(update={"project_id": "PRJ-REF"}) for e in delivery.time_entries]}
    )
    run, issued = invoice_period(
        state,
        "2027-01",
        delivery,
        seller=entities["UK01"],
        buyer=tax_party(state),
        tax_rules=ZERO_VAT,
        invoice_date=period_end("2027-01"),
    )
    # posting wrote January's time fact at the PSA's rate, before the close billed it
    await hub.record_time_facts(
        [
            m.TimeFact(
                source_system="certinia",
                source_record_id="TC-2027-01",
                opportunity_id=engagement.opportunity_id,
                customer_id=engagement.customer.customer_id,
                project_id="PRJ-REF",
                contract_id="SO-REF",
                legal_entity="UK01",
                currency="GBP",
                consultant_id="R-ALAN",
                work_date=date(2027, 1, 15),
                hours=Decimal(40),
                billable=True,
                bill_amount=Decimal("7200.00"),
                cost_amount=Decimal("4400.00"),
            )
        ]
    )
    data = RecordEngagementInput(
        workflow_id="engagement-ref",
        engagement=engagement,
        project_id="PRJ-REF",
        contract_id="SO-REF",
        invoices=issued,
        # as the engagement hands them over: each event with the portions its ledger rows hold
        billing_events=[
            b.model_copy(update={"portions": run.state.portions_of(b.billing_event_id)})
            for b in run.state.billing_events
        ],
    )
    reporting = ReportingActivities(hub, entities, default_fx_rates())
    first = await reporting.record_engagement(data)
    assert first.written["time_billed"] == 1
    assert (await reporting.record_engagement(data)).written["time_billed"] == 0  # a repeat writes nothing

    row = await hub.pool.fetchrow("SELECT * FROM v_time_billed WHERE source_record_id = 'TC-2027-01'")
    assert (row["psa_bill_rate"], row["psa_bill_amount"]) == (Decimal("180.0000"), Decimal("7200.0000"))
    assert (row["billed_rate"], row["billed_amount"], row["billed_currency"]) == (
        Decimal("150.0000"),
        Decimal("6000.0000"),
        "GBP",
    )
    # the hub's billed time agrees with the invoice's time line, to the penny
    [invoice] = issued
    time_net = sum((ln.net.amount for ln in invoice.lines if ln.kind is SourceKind.TIME), Decimal(0))
    assert row["billed_amount"] == time_net == Decimal("6000.00")
    assert row["invoice_ids"] == [invoice.invoice_id]
