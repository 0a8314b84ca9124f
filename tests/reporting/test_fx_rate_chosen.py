"""One rate rule for the hub and the engagements (migration 0018): `hub_fx_rate_chosen` is what
the loaders convert facts with and what the `fx.rates_on` activity hands an engagement, and
the engagement's fallback (the reference rates, `domain.fx.FxRateTable`) follows the same rule.

Figures: the reference data holds USD→JPY 150 from 1 Jan 2026; the ERP's JPY→USD record of
2 Nov 2026 is 0.0064 (1 USD = 156.25 JPY). A JP01 invoice of JPY 341,000 on 30 Nov reports
as 341,000 x 0.0064 = USD 2,182.40 — not 341,000 / 150 = 2,273.33. USD→JPY on 30 Nov still
takes the direct reference rate 150 (a direct rate beats an inverted one of any date).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal as D

from activities.fx import FxLookupActivities
from activities.reporting import load_reference_data
from contracts.fx import FxRatesInput
from domain.fx import FxLookup, FxRate, FxRateTable, MissingRateError
from domain.money import Money
from domain.reference_data import default_fx_rates, default_legal_entities
from reporting import models as m
from reporting.hub import ReportingHub

NOV_30 = date(2026, 11, 30)


async def _erp_rate(hub: ReportingHub) -> None:
    await load_reference_data(hub, default_legal_entities(), default_fx_rates())
    await hub.record_fx_rates(
        [
            m.FxRate(
                from_currency="JPY",
                to_currency="USD",
                rate_date=date(2026, 11, 2),
                rate=D("0.0064"),
                source_system="netsuite:default",
                source_record_id="cr-77",
            )
        ]
    )


async def test_the_activity_hands_the_engagement_the_rate_the_loaders_convert_at(hub: ReportingHub) -> None:
    await _erp_rate(hub)
    found = await FxLookupActivities(hub).rates_on(
        FxRatesInput(
            conversions=[
                FxLookup(base="JPY", quote="USD", on=NOV_30),
                FxLookup(base="USD", quote="JPY", on=NOV_30),
                FxLookup(base="EUR", quote="JPY", on=NOV_30),  # crossed through USD
                FxLookup(base="JPY", quote="USD", on=date(2025, 12, 31)),  # before any rate
            ]
        )
    )
    chosen = {(r.base, r.quote): r for r in found.rates}
    jpy_usd = chosen["JPY", "USD"]
    assert (jpy_usd.rate, jpy_usd.rate_date, jpy_usd.source, jpy_usd.via) == (
        D("0.0064"),
        date(2026, 11, 2),
        "netsuite:default",
        None,
    )
    assert (chosen["USD", "JPY"].rate, chosen["USD", "JPY"].source) == (D("150"), m.REFERENCE_RATES)
    # EUR→USD 1.08 (reference) x USD→JPY 150 (direct reference) = 162, dated the older leg
    assert (chosen["EUR", "JPY"].rate, chosen["EUR", "JPY"].via) == (D("162"), "USD")
    assert found.missing == [FxLookup(base="JPY", quote="USD", on=date(2025, 12, 31))]

    # The hub's invoice fact converts at the same rate: 341,000 x 0.0064 = 2,182.40.
    await hub.record_invoice(
        m.InvoiceFact(
            source_system="erp",
            source_record_id="inv-jp-1",
            customer_id="ACME",
            legal_entity="JP01",
            currency="JPY",
            invoice_date=NOV_30,
            due_date=NOV_30 + timedelta(days=30),
            net_amount=D("310000"),
            tax_amount=D("31000"),
            total_amount=D("341000"),
        )
    )
    reported = await hub.pool.fetchval(
        "SELECT reporting_total_amount FROM fact_invoice WHERE source_record_id = 'inv-jp-1'"
    )
    table = FxRateTable(chosen=found.rates)
    assert table.convert(Money.of("341000", "JPY"), "USD", NOV_30).rounded() == Money.of("2182.40", "USD")
    assert reported == D("2182.40")


async def test_the_reference_rates_fall_back_by_the_hubs_rule(hub: ReportingHub) -> None:
    """Where the hub has no rate an engagement converts at its reference rates: for random rate
    tables, the domain's rule and the hub's pick the same rate of the same day, or both none."""
    rnd = random.Random(15)
    currencies = ["USD", "EUR", "JPY", "GBP"]
    checked = 0
    for _ in range(25):
        await hub.pool.execute("DELETE FROM fx_rate")
        rates: dict[tuple[str, str, date], FxRate] = {}
        for _ in range(rnd.randint(1, 6)):
            base, quote = rnd.sample(currencies, 2)
            day = date(2026, rnd.randint(1, 12), rnd.randint(1, 28))
            rates[base, quote, day] = FxRate(base=base, quote=quote, as_of=day, rate=D(rnd.randint(5, 20000)) / D(100))
        await hub.record_fx_rates(
            [
                m.FxRate(from_currency=r.base, to_currency=r.quote, rate_date=r.as_of, rate=r.rate)
                for r in rates.values()
            ]
        )
        table = FxRateTable(rates=list(rates.values()), pivot="USD")
        asked = [(b, q, date(2026, rnd.randint(1, 12), 15)) for b in currencies for q in currencies if b != q]
        hub_rates = {
            (r["from_currency"].strip(), r["to_currency"].strip(), r["on_date"]): r
            for r in await hub.chosen_fx_rates(asked)
        }
        for base, quote, on in asked:
            hub_rate = hub_rates.get((base, quote, on))
            try:
                rate, rate_date, via = table.lookup(base, quote, on)
            except MissingRateError:
                assert hub_rate is None, (base, quote, on, hub_rate)
                continue
            assert hub_rate is not None, (base, quote, on, rate)
            # the same rate (Decimal and numeric divide to different lengths; a cross rate has 10 places)
            assert abs(rate - hub_rate["rate"]) <= D("1e-10") + rate * D("1e-16"), (base, quote, on, rate, hub_rate)
            assert (rate_date, via) == (hub_rate["rate_date"], (hub_rate["via"] or "").strip() or None)
            checked += 1
    assert checked > 50


async def test_a_rate_synced_later_does_not_restate_a_loaded_fact(hub: ReportingHub) -> None:
    """JPY 340,000 recorded on 30 Nov at the reference rate (1/150): USD 2,266.67. The ERP's
    rate for 2 Nov (0.0064) is synced afterwards and the same invoice is recorded again (a
    re-run close repeats its writes): it keeps 2,266.67, the figure the engagement showed.
    A corrected amount is a change: it converts at the rate in force now (350,000 x 0.0064)."""
    await load_reference_data(hub, default_legal_entities(), default_fx_rates())

    def invoice(net: str) -> m.InvoiceFact:
        return m.InvoiceFact(
            source_system="erp",
            source_record_id="inv-jp-2",
            customer_id="ACME",
            legal_entity="JP01",
            currency="JPY",
            invoice_date=NOV_30,
            due_date=NOV_30 + timedelta(days=30),
            net_amount=D(net),
            tax_amount=D(0),
            total_amount=D(net),
        )

    async def reported() -> D:
        value = await hub.pool.fetchval(
            "SELECT reporting_total_amount FROM fact_invoice WHERE source_record_id = 'inv-jp-2'"
        )
        return D(value)

    await hub.record_invoice(invoice("340000"))
    assert await reported() == D("2266.67")
    await _erp_rate(hub)
    again = await hub.record_invoice(invoice("340000"))
    assert again.written == 0 and await reported() == D("2266.67")
    await hub.record_invoice(invoice("350000"))
    assert await reported() == D("2240.00")
