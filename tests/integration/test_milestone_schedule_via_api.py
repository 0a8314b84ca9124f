"""A deal-specific milestone schedule on the CRM line overrides the service package's template,
through the whole system: the opportunity line's `D2R_Milestone_Schedule__c`, the engagement
started over the API, the PSA project the workers provision (issue 15, item 6).

Figures (hand-computed): a JP01 milestone line of JPY 3,000,000 sold with its own schedule of
20 / 30 / 50 % (the IMPL-STD template says otherwise): the PSA milestones are 600,000 /
900,000 / 1,500,000 JPY on the planned dates, adding up to the line exactly.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from connectors.salesforce import SalesforceClient
from tests.integration.conftest import Stack
from tests.integration.test_compensation_simulators import (
    OPPORTUNITY_FIELDS,
    book,
    reach,
    sf,  # noqa: F401  (the fixture)
)
from tests.integration.test_engagement_path import records, seed_info

pytestmark = pytest.mark.integration

PLAN = [
    {"name": "Pilot", "percent": 20, "planned_date": "2027-01-29"},
    {"name": "Rollout", "percent": 30, "planned_date": "2027-03-31"},
    {"name": "Hypercare", "percent": 50, "planned_date": "2027-05-31"},
]


async def test_the_lines_own_schedule_becomes_the_psa_milestones(
    stack: Stack,
    sf: SalesforceClient,  # noqa: F811
) -> None:
    info = await seed_info(stack)
    template = info["opportunities"]["valid"]["jp01_milestone"]
    source = next(o for o in await records(stack, "salesforce", "Opportunity") if o["Id"] == template)
    opportunity_id = await sf.create(
        "Opportunity",
        {
            **{k: source.get(k) for k in OPPORTUNITY_FIELDS},
            "Name": "Own milestone schedule",
            "StageName": "Negotiation/Review",
        },
    )
    await sf.create(
        "OpportunityLineItem",
        {
            "OpportunityId": opportunity_id,
            "Product2Id": info["products"]["MS-DEL"],
            "Quantity": 1,
            "UnitPrice": 3000000,
            "D2R_Billing_Model__c": "milestone",
            "D2R_Revenue_Method__c": "milestone",
            "D2R_Milestone_Schedule__c": json.dumps(PLAN),
        },
    )
    await book(stack, sf, opportunity_id)
    engagement: dict[str, Any] = await reach(stack, opportunity_id, "IN_DELIVERY", within=60)
    rows = sorted(
        (
            (m["Name"], Decimal(str(m["pse__Milestone_Amount__c"])), m["pse__Target_Date__c"])
            for m in await records(stack, "salesforce", "pse__Milestone__c")
            if m.get("pse__Project__c") == engagement["project_id"]
        ),
        key=lambda r: r[2],
    )
    assert rows == [
        ("Pilot", Decimal(600_000), "2027-01-29"),
        ("Rollout", Decimal(900_000), "2027-03-31"),
        ("Hypercare", Decimal(1_500_000), "2027-05-31"),
    ]
