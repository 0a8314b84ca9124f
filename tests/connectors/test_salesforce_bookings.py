"""The CRM's bookings for the hub's reconciliation, read from the Salesforce simulator."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from connectors.salesforce.bookings import SalesforceBookingsExtract
from domain.system_records import CrmLinks
from tests.connectors.conftest import OPP_US, Salesforce, engagement, usd


async def test_closed_won_deals_per_project_at_their_current_value(sf: Salesforce) -> None:
    opp = (await sf.client.query_all(f"SELECT Id, CloseDate, Amount FROM Opportunity WHERE Id = '{OPP_US}'"))[0]
    closed = date.fromisoformat(opp["CloseDate"])
    first = closed.replace(day=1)
    month = (first, (first + timedelta(days=32)).replace(day=1) - timedelta(days=1))
    extract = SalesforceBookingsExtract(sf.client)

    before = await extract.bookings("US01", month[0], month[1])
    assert OPP_US in before.unlinked  # closed won, but no project yet: not a booking d2r made

    project = (await sf.psa.create_project(await engagement(sf.crm), "engagement-1:project")).project_id
    await sf.crm.write_links(OPP_US, CrmLinks(project_id=project, contract_id="SO-9", status="In Delivery"))
    linked = await extract.bookings("US01", month[0], month[1])
    assert [(t.project_id, t.booking_total, t.record_ids) for t in linked.totals] == [
        (project, Decimal(str(opp["Amount"])), [OPP_US])
    ]
    # an amendment moved the contract value: the CRM's current value is the booking
    await sf.crm.set_contract_value(OPP_US, usd("222000"))
    amended = await extract.bookings("US01", month[0], month[1])
    assert amended.totals[0].booking_total == Decimal("222000")
    assert (await extract.bookings("UK01", month[0], month[1])).totals == []
