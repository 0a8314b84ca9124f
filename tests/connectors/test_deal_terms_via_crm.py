"""Contract terms sold on the opportunity line, read from the CRM (custom fields on
OpportunityLineItem) and carried into the PSA project, against the Salesforce simulator."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from domain.contract import open_contract
from domain.deal import BillingModel, validate_deal
from domain.money import Money
from tests.connectors.conftest import OPP_JP, OPP_US, RULES, Salesforce, engagement


async def line_id(sf: Salesforce, opportunity_id: str, model: str) -> str:
    rows = await sf.client.query_all(
        f"SELECT Id FROM OpportunityLineItem WHERE OpportunityId = '{opportunity_id}' "
        f"AND D2R_Billing_Model__c = '{model}'"
    )
    return str(rows[0]["Id"])


async def test_estimate_and_cap_come_from_the_line(sf: Salesforce) -> None:
    """The seeded US deal: FF 120,000 gets an estimate at completion of 80,000 and the T&M
    line (200 h x 250) a not-to-exceed of 45,000; the contract opens with both."""
    ff = await line_id(sf, OPP_US, "fixed_fee")
    tm = await line_id(sf, OPP_US, "time_and_materials")
    await sf.client.update("OpportunityLineItem", ff, {"D2R_Estimate_At_Completion__c": 80000})
    await sf.client.update("OpportunityLineItem", tm, {"D2R_Not_To_Exceed__c": 45000})
    eng = await engagement(sf.crm)
    state = open_contract(eng, project_id="P", contract_id="K")
    assert state.terms[ff].estimate_at_completion == Money.of(80000, "USD")
    assert state.terms[tm].not_to_exceed == Money.of(45000, "USD")
    assert state.terms[tm].line.bill_rate == Money.of(250, "USD")


async def test_a_deal_specific_milestone_schedule_reaches_the_psa(sf: Salesforce) -> None:
    """The seeded JP deal's milestone line, 30,000,000 JPY, sold with its own schedule of
    20 / 30 / 50 % (the template says 30 / 40 / 30): the PSA milestones are 6,000,000 /
    9,000,000 / 15,000,000 JPY with the planned dates, adding up to the line exactly."""
    ms = await line_id(sf, OPP_JP, "milestone")
    plan = [
        {"name": "Pilot", "percent": 20, "planned_date": "2027-01-29"},
        {"name": "Rollout", "percent": 30, "planned_date": "2027-03-31"},
        {"name": "Hypercare", "percent": 50, "planned_date": "2027-05-31"},
    ]
    await sf.client.update("OpportunityLineItem", ms, {"D2R_Milestone_Schedule__c": json.dumps(plan)})
    eng = await engagement(sf.crm, OPP_JP)
    (line,) = [ln for ln in eng.lines if ln.billing_model is BillingModel.MILESTONE]
    assert [(m.name, m.weight, m.planned_date) for m in line.milestones] == [
        ("Pilot", Decimal(20), date(2027, 1, 29)),
        ("Rollout", Decimal(30), date(2027, 3, 31)),
        ("Hypercare", Decimal(50), date(2027, 5, 31)),
    ]
    ref = await sf.psa.create_project(eng, "engagement-jp:project")
    rows = [await sf.client.get("pse__Milestone__c", m) for m in ref.milestone_ids]
    assert [(r["Name"], Decimal(str(r["pse__Milestone_Amount__c"])), r["pse__Target_Date__c"]) for r in rows] == [
        ("Pilot", Decimal(6_000_000), "2027-01-29"),
        ("Rollout", Decimal(9_000_000), "2027-03-31"),
        ("Hypercare", Decimal(15_000_000), "2027-05-31"),
    ]


async def test_an_unreadable_schedule_is_a_field_error_not_the_template(sf: Salesforce) -> None:
    ms = await line_id(sf, OPP_JP, "milestone")
    await sf.client.update("OpportunityLineItem", ms, {"D2R_Milestone_Schedule__c": "20% then 80%"})
    result = validate_deal(await sf.crm.read_opportunity(OPP_JP), RULES)
    assert isinstance(result, list)
    assert [e.field for e in result] == ["OpportunityLineItems[0].D2R_Milestone_Schedule__c"]


async def test_a_consultant_with_no_cost_rate_costs_the_cards_role_rate(sf: Salesforce) -> None:
    """Hedy (Consultant, US01) has her cost rate removed in the PSA: she comes back with
    none (not 0), and her hour costs the US rate card's Consultant cost, 180 x 0.55 = 99."""
    from tests.connectors.test_certinia_psa import consultant, line_of, timecard

    eng = await engagement(sf.crm)
    ref = await sf.psa.create_project(eng, "engagement-cost:project")
    hedy = await consultant(sf, "Hedy")
    await sf.client.update("Contact", hedy, {"pse__Default_Cost_Rate__c": None})
    ff = line_of(eng, BillingModel.FIXED_FEE)
    await timecard(
        sf, ref.project_id, hedy, "2026-03-02", "2026-03-08", pse__Monday_Hours__c=8, D2R_Contract_Line_Id__c=ff
    )
    delivery = await sf.psa.read_delivery(ref.project_id, eng.lines, date(2026, 3, 31))
    (resource,) = [r for r in delivery.resources if r.resource_id == hedy]
    assert resource.cost_rate is None
    assert resource.cost_rate_on(date(2026, 3, 2), delivery.rate_card) == Money.of("99", "USD")
