"""Month-end says what it checked: a reconciliation that compared no project is "nothing to
reconcile", never "clean" — in the hub, over HTTP and on the dashboard's data."""

from __future__ import annotations

import httpx

from reporting.hub import ReportingHub, recon_status
from tests.reporting import dataset
from tests.reporting.conftest import make_app
from tests.reporting.test_reconciliation_exceptions_audit import clean_totals

FIN = {"Authorization": "Bearer dev-finance"}


def test_the_status_claims_clean_only_when_something_was_compared() -> None:
    assert recon_status(0, 0) == "nothing_to_reconcile"
    assert recon_status(3, 0) == "clean"
    assert recon_status(3, 1) == "differences"


async def test_an_entity_with_nothing_to_check_is_not_reported_clean(hub: ReportingHub) -> None:
    """US1 in 2026-01 has 2 projects with time and invoices (dataset.py): clean. UK1 in
    2026-03 has no fact and no source total: 0 projects checked -> nothing to reconcile
    (the defect: DE01/JP01 said "clean" with 0 projects checked)."""
    await dataset.load(hub)
    await hub.record_source_totals(clean_totals())
    us = await hub.reconcile("2026-01", "US1")
    assert (us["projects_checked"], us["status"]) == (2, "clean")
    uk = await hub.reconcile("2026-03", "UK1")
    assert (uk["projects_checked"], uk["differences"], uk["status"]) == (0, [], "nothing_to_reconcile")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=make_app(hub)), base_url="http://t") as api:
        r = await api.get("/v1/reconciliation", headers=FIN)
        assert r.status_code == 200, r.text
        runs = {(x["legal_entity"], x["period"]): (x["projects_checked"], x["status"]) for x in r.json()["runs"]}
        assert runs == {("US1", "2026-01"): (2, "clean"), ("UK1", "2026-03"): (0, "nothing_to_reconcile")}
        page = (await api.get("/dashboard")).text
        assert "nothing to reconcile" in page  # the dashboard labels such runs, in grey


async def test_a_revenue_run_error_reaches_v1_exceptions(hub: ReportingHub) -> None:
    """A cost-to-cost line with no estimate and 300 h of cost: the revenue run raises the
    error-severity revenue_not_computable; recorded through the real reporting activity it
    is an open exception at /v1/exceptions (what the dashboard lists), linked to the
    engagement, and recording it again counts an occurrence, not a second row."""
    from datetime import date
    from decimal import Decimal

    from activities.reporting import ReportingActivities
    from contracts.reporting import RecordEngagementInput
    from domain.billing import Delivery
    from domain.bookings import booking_movements
    from domain.contract import open_contract
    from domain.deal import DealRules, Engagement, validate_deal
    from domain.fx import FxRateTable
    from domain.model import LegalEntity, Resource, TimeEntry
    from domain.money import Money
    from domain.revenue import recognize_period
    from tests.workflows.fakes import good_opportunity

    eng = validate_deal(good_opportunity(), DealRules(legal_entities={"US01": "USD"}))
    assert isinstance(eng, Engagement)
    state = open_contract(eng, project_id="PRJ-X", contract_id="SO-X")
    ff = eng.lines[0].line_id
    delivery = Delivery(
        time_entries=[
            TimeEntry(
                entry_id="E1",
                resource_id="R1",
                project_id="PRJ-X",
                contract_line_id=ff,
                work_date=date(2026, 11, 10),
                hours=Decimal(300),
            )
        ],
        resources=[
            Resource(
                resource_id="R1", name="Ada", role="Architect", home_legal_entity="US01", cost_rate=Money.of(100, "USD")
            )
        ],
    )
    run = recognize_period(state, "2026-11", delivery)
    assert [(x.code, x.severity.value) for x in run.exceptions] == [("revenue_not_computable", "error")]
    entity = LegalEntity(
        code="US01", name="d2r Inc", functional_currency="USD", tax_jurisdiction="US", erp_instance="us"
    )
    acts = ReportingActivities(hub, {"US01": entity}, FxRateTable())
    data = RecordEngagementInput(
        workflow_id="engagement-006X",
        engagement=eng,
        bookings=booking_movements(eng, []),
        project_id="PRJ-X",
        contract_id="SO-X",
        exceptions=run.exceptions,
    )
    assert (await acts.record_engagement(data)).written["exceptions"] == 1
    await acts.record_engagement(data)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=make_app(hub)), base_url="http://t") as api:
        r = await api.get("/v1/exceptions", headers=FIN, params={"kind": "revenue_not_computable"})
        assert r.status_code == 200, r.text
        body = r.json()
        rows = body if isinstance(body, list) else body.get("exceptions", body.get("items"))
        assert len(rows) == 1, body
        (row,) = rows
        assert (row["status"], row["error_type"], row["project_id"], row["period"]) == (
            "open",
            "error",
            "PRJ-X",
            "2026-11",
        )
        assert row["workflow_id"] == "engagement-006X" and row["occurrences"] == 2
        assert "has no estimate" in row["error_message"]


async def test_the_close_reconcile_step_reports_nothing_to_reconcile(hub: ReportingHub) -> None:
    """The period close's own reconcile activity (real hub): JP1 with nothing in 2026-11
    is "nothing_to_reconcile" with 0 projects checked, which needs no lock override."""
    from activities.period_close import CloseActivities
    from contracts.period_close import ReconcileInput

    acts = CloseActivities(client=None, hub=hub)  # type: ignore[arg-type]  # reconcile needs no Temporal client
    result = await acts.reconcile(ReconcileInput(legal_entity="JP1", period="2026-11"))
    assert (result.status, result.differences, result.detail) == ("nothing_to_reconcile", 0, "0 projects checked")
