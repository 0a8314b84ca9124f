from datetime import date
from decimal import Decimal

import pytest

from domain.fx import FxRate, FxRateTable, MissingRateError
from domain.money import Money
from domain.tax import TaxParty, TaxRate, TaxRules, TaxTreatment, determine_tax, line_tax

FX = FxRateTable(
    pivot="EUR",
    rates=[
        FxRate(base="EUR", quote="USD", rate=Decimal("1.0800"), as_of=date(2026, 1, 1)),
        FxRate(base="EUR", quote="USD", rate=Decimal("1.1000"), as_of=date(2026, 2, 1)),
        FxRate(base="GBP", quote="EUR", rate=Decimal("1.2000"), as_of=date(2026, 1, 1)),
        FxRate(base="EUR", quote="JPY", rate=Decimal("160"), as_of=date(2026, 1, 1)),
    ],
)


def test_conversion_uses_the_rate_in_force_and_records_it():
    c = FX.convert(Money.of("1000.00", "EUR"), "USD", date(2026, 1, 31))
    assert c.converted == Money.of("1080.00", "USD")
    assert (c.rate, c.rate_date, c.converted_on) == (Decimal("1.0800"), date(2026, 1, 1), date(2026, 1, 31))
    later = FX.convert(Money.of("1000.00", "EUR"), "USD", date(2026, 2, 15))
    assert later.converted.amount == Decimal("1100.000000")


def test_inverse_and_cross_rates():
    back = FX.convert(Money.of("1200.00", "EUR"), "GBP", date(2026, 1, 10))
    assert back.rounded() == Money.of("1000.00", "GBP")
    # GBP -> JPY through the EUR pivot: 1.2 x 160 = 192 JPY per GBP.
    cross = FX.convert(Money.of("100.00", "GBP"), "JPY", date(2026, 1, 10))
    assert cross.via == "EUR" and cross.rate == Decimal("192.0000")
    assert cross.rounded() == Money.of(19200, "JPY")


def test_missing_rate_is_an_error_not_a_guess():
    with pytest.raises(MissingRateError):
        FX.convert(Money.of(1, "EUR"), "USD", date(2025, 12, 31))


RULES = TaxRules(
    rates=[
        TaxRate(jurisdiction="GB", rate=Decimal("0.20"), effective_from=date(2011, 1, 4)),
        TaxRate(jurisdiction="DE", rate=Decimal("0.19"), effective_from=date(2007, 1, 1)),
        TaxRate(
            jurisdiction="JP",
            rate=Decimal("0.10"),
            effective_from=date(2019, 10, 1),
            name="consumption tax",
            rounding="ROUND_DOWN",
        ),
    ],
    exempt_services={"DE": ["training-public"]},
)
ON = date(2026, 3, 31)


def test_domestic_vat():
    d = determine_tax(RULES, "GB", TaxParty(customer_id="c", country="GB", tax_id="GB1"), ON)
    assert d.treatment is TaxTreatment.STANDARD and d.rate == Decimal("0.20")
    assert line_tax(Money.of("1234.56", "GBP"), d) == Money.of("246.91", "GBP")  # 246.912


def test_cross_border_b2b_inside_the_eu_is_reverse_charged():
    d = determine_tax(RULES, "DE", TaxParty(customer_id="c", country="FR", tax_id="FR1"), ON)
    assert d.treatment is TaxTreatment.REVERSE_CHARGE and d.rate == 0
    assert d.note and "Reverse charge" in d.note


def test_b2c_inside_the_eu_pays_the_seller_vat():
    d = determine_tax(RULES, "DE", TaxParty(customer_id="c", country="FR"), ON)
    assert d.treatment is TaxTreatment.STANDARD and d.rate == Decimal("0.19")


def test_export_of_services_is_out_of_scope():
    d = determine_tax(RULES, "GB", TaxParty(customer_id="c", country="US", tax_id="EIN"), ON)
    assert d.treatment is TaxTreatment.OUT_OF_SCOPE and d.rate == 0


def test_configured_exempt_services_and_customers():
    buyer = TaxParty(customer_id="c", country="DE", tax_id="DE1")
    assert determine_tax(RULES, "DE", buyer, ON, "training-public").treatment is TaxTreatment.EXEMPT
    exempt_buyer = buyer.model_copy(update={"exempt": True})
    assert determine_tax(RULES, "DE", exempt_buyer, ON).treatment is TaxTreatment.EXEMPT


def test_jurisdiction_rounding_rule_applies_per_line():
    d = determine_tax(RULES, "JP", TaxParty(customer_id="c", country="JP"), ON)
    assert line_tax(Money.of(12345, "JPY"), d) == Money.of(1234, "JPY")  # 1234.5 rounded down
