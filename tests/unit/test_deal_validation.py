"""Strict deal validation: every problem at once, named by the CRM field to fix."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.deal import DealRules, Engagement, RevenueMethod, validate_deal
from domain.money import Money
from domain.stages import IllegalTransitionError, Stage, transition
from tests.workflows.fakes import good_opportunity

RULES = DealRules(legal_entities={"US01": "USD", "JP01": "JPY"})


def test_good_deal_becomes_an_engagement() -> None:
    result = validate_deal(good_opportunity(), RULES)
    assert isinstance(result, Engagement)
    assert result.contract_value == Money.of("150000", "USD")
    assert result.customer.hierarchy == ["001000000000001AAA", "001000000000000AAA"]
    assert [line.revenue_method for line in result.lines] == [RevenueMethod.COST_TO_COST, RevenueMethod.AS_DELIVERED]


def test_every_error_is_reported_at_once() -> None:
    opp = good_opportunity().model_copy(
        update={"stage": "Negotiation/Review", "legal_entity": None, "lines": [], "billing_terms": None}
    )
    result = validate_deal(opp, RULES)
    assert isinstance(result, list)
    assert {e.field for e in result} == {
        "StageName",
        "D2R_Legal_Entity__c",
        "OpportunityLineItems",
        "D2R_Billing_Terms__c",
    }


def test_unknown_entity_bad_line_and_amount_mismatch() -> None:
    opp = good_opportunity()
    bad_lines = [
        opp.lines[0].model_copy(update={"billing_model": "barter"}),
        opp.lines[1].model_copy(update={"role": None}),
    ]
    result = validate_deal(opp.model_copy(update={"legal_entity": "XX99", "lines": bad_lines}), RULES)
    assert isinstance(result, list)
    codes = {(e.field, e.code) for e in result}
    assert ("D2R_Legal_Entity__c", "unknown") in codes
    assert ("OpportunityLineItems[0].D2R_Billing_Model__c", "invalid") in codes
    assert ("OpportunityLineItems[1].D2R_Role__c", "required") in codes


def test_amount_must_equal_the_lines() -> None:
    result = validate_deal(good_opportunity().model_copy(update={"amount": Decimal("149000")}), RULES)
    assert isinstance(result, list)
    assert [e.code for e in result] == ["mismatch"]


def test_unknown_currency_is_refused() -> None:
    result = validate_deal(good_opportunity().model_copy(update={"currency": "XYZ"}), RULES)
    assert isinstance(result, list)
    assert [e.field for e in result] == ["CurrencyIsoCode"]


def test_transition_table_refuses_skipping_provisioning() -> None:
    assert transition(Stage.VALIDATING, Stage.PROVISIONING) is Stage.PROVISIONING
    with pytest.raises(IllegalTransitionError):
        transition(Stage.VALIDATING, Stage.IN_DELIVERY)
