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
