from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.money import MINOR_UNITS, Money, allocate, sum_money


def test_existing_api_still_works():
    a = Money.of("10.005", "USD")
    assert a.rounded() == Money.of("10.01", "USD")
    assert (a + Money.of(1, "USD")).amount == Decimal("11.005")
    assert (a - Money.of(1, "USD")).amount == Decimal("9.005")
    assert Money.zero("JPY").is_zero()
    assert a.times(2).amount == Decimal("20.010")


def test_rounding_per_currency_minor_unit():
    assert Money.of("1234.5", "JPY").rounded() == Money.of(1235, "JPY")
    assert Money.of("1.0005", "KWD").rounded() == Money.of("1.001", "KWD")
    assert Money.of("2.345", "GBP").rounded() == Money.of("2.35", "GBP")


def test_allocation_by_largest_remainder():
    # 100.00 over three equal lines: 33.34 / 33.33 / 33.33, ties go to the first line.
    shares = allocate(Money.of("100.00", "USD"), [1, 1, 1])
    assert [s.amount for s in shares] == [Decimal("33.34"), Decimal("33.33"), Decimal("33.33")]
    # 1,000 JPY over 3:3:1: exact 428.57 / 428.57 / 142.86.
    # floors 428, 428, 142 (sum 998); remainders .57, .57, .86 -> +1 to the third, then first.
    shares = allocate(Money.of(1000, "JPY"), [3, 3, 1])
    assert [s.amount for s in shares] == [Decimal(429), Decimal(428), Decimal(143)]


def test_allocation_of_a_negative_amount_mirrors_the_positive():
    shares = allocate(Money.of("-0.05", "EUR"), [1, 1])
    assert [s.amount for s in shares] == [Decimal("-0.03"), Decimal("-0.02")]


def test_allocation_refuses_fractions_of_a_minor_unit():
    with pytest.raises(ValueError):
        allocate(Money.of("1.005", "USD"), [1, 1])


def test_mixing_currencies_is_refused():
    with pytest.raises(ValueError):
        Money.of(1, "USD") + Money.of(1, "EUR")
    with pytest.raises(ValueError):
        _ = Money.of(1, "USD") < Money.of(1, "EUR")


def test_money_round_trips_through_json():
    m = Money.of("12.34", "GBP")
    assert Money.model_validate_json(m.model_dump_json()) == m


currencies = st.sampled_from(sorted(MINOR_UNITS))


@settings(max_examples=200, deadline=None)
@given(
    currency=currencies,
    units=st.integers(-(10**9), 10**9),
    weights=st.lists(st.integers(0, 10_000), min_size=1, max_size=12).filter(any),
)
def test_allocations_sum_exactly(currency, units, weights):
    total = Money(amount=Decimal(units).scaleb(-MINOR_UNITS[currency]), currency=currency)
    shares = allocate(total, weights)
    assert sum_money(shares, currency) == total
    assert all(s.is_whole() for s in shares)
    # Largest remainder: no share is more than one minor unit away from its exact part.
    q = Decimal(1).scaleb(-MINOR_UNITS[currency])
    for share, w in zip(shares, weights, strict=True):
        exact = total.amount * Decimal(w) / Decimal(sum(weights))
        assert abs(share.amount - exact) < q
