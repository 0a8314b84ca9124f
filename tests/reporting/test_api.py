"""The reporting router over HTTP, with the real bearer-token auth (dev tokens)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api.problems import ProblemError
from reporting import models as m
from reporting.hub import ReportingHub
from tests.reporting import dataset
from tests.reporting.conftest import make_app
from tests.reporting.test_reconciliation_exceptions_audit import clean_totals


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


FIN = bearer("dev-finance")


@pytest.fixture
async def client(hub: ReportingHub) -> AsyncIterator[httpx.AsyncClient]:
    await dataset.load(hub)
    app = make_app(hub)
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        c.app = app  # type: ignore[attr-defined]
        yield c


async def test_kpi_endpoint_with_filters_returns_decimal_strings(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/v1/reports/bookings", headers=FIN, params={"group_by": "legal_entity", "currency": "functional"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["unit"] == "money" and body["currency_basis"] == "functional"
    assert body["rows"] == [
        {"key": "UK1", "currency": "GBP", "value": "8000"},
        {"key": "US1", "currency": "USD", "value": "15000"},
    ]
    r = await client.get(
        "/v1/reports/backlog",
        headers=bearer("dev-sales-ops"),
        params={"group_by": "project", "as_of": "2026-02-28", "customer_id": "ACME"},
    )
    assert [(x["key"], x["value"]) for x in r.json()["rows"]] == [("P1", "7600"), ("P2", "6940")]
    r = await client.get(
        "/v1/reports/utilization",
        headers=bearer("dev-delivery-ops"),
        params={"period": "2026-01", "group_by": "consultant"},
    )
    assert [(x["key"], x["value"]) for x in r.json()["rows"]] == [("C1", "0.0682"), ("C2", "0.0455")]


async def test_kpi_errors_are_problem_json(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/reports/bookings")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    r = await client.get("/v1/reports/bookings", headers=bearer("dev-integration-admin"))
    assert r.status_code == 403
    r = await client.get("/v1/reports/nope", headers=FIN)
    assert r.status_code == 404 and r.json()["title"] == "Unknown KPI"
    r = await client.get("/v1/reports/utilization", headers=FIN, params={"group_by": "project"})
    assert r.status_code == 422 and "consultant measure" in r.json()["detail"]
    r = await client.get("/v1/reports/bookings", headers=FIN, params={"period": "2026-13"})
    assert r.status_code == 422


async def test_reconciliation_endpoints(client: httpx.AsyncClient, hub: ReportingHub) -> None:
    totals = clean_totals()
    totals[0] = totals[0].model_copy(update={"time_amount": totals[0].time_amount + 1})
    await hub.record_source_totals(totals)
    r = await client.post("/v1/reconciliation/run", headers=FIN, json={"period": "2026-01", "legal_entity": "US1"})
    assert r.status_code == 200 and r.json()["status"] == "differences"
    r = await client.get(
        "/v1/reconciliation", headers=bearer("dev-auditor"), params={"period": "2026-01", "legal_entity": "US1"}
    )
    runs = r.json()["runs"]
    assert [(x["status"], x["differences"]) for x in runs] == [("differences", 1)]
    d = runs[0]["difference_details"][0]
    assert (d["project_id"], d["metric"], d["psa_value"], d["erp_value"], d["hub_value"]) == (
        "P1",
        "time_amount",
        "2401",
        "2400",
        "2400",
    )
    r = await client.get("/v1/reconciliation", headers=bearer("dev-sales-ops"))
    assert r.status_code == 403


async def _open_exception(hub: ReportingHub, **kw: Any) -> int:
    return await hub.record_exception(
        m.ExceptionRecord(
            dedupe_key="engagement-O1:erp_customer",
            kind="provisioning",
            error_message="subsidiary missing",
            workflow_id="engagement-O1",
            **kw,
        )
    )


async def test_exceptions_resolve_and_retry_are_audited(client: httpx.AsyncClient, hub: ReportingHub) -> None:
    exc_id = await _open_exception(hub)
    r = await client.get("/v1/exceptions", headers=bearer("dev-delivery-ops"))
    assert [x["id"] for x in r.json()["items"]] == [exc_id]

    # retry without a Temporal client wired: 503 problem, nothing changes
    r = await client.post(f"/v1/exceptions/{exc_id}/retry", headers=FIN)
    assert r.status_code == 503 and "retry is unavailable" in r.json()["detail"]
    assert r.headers["content-type"].startswith("application/problem+json")

    calls: list[dict[str, Any]] = []

    async def retrier(exception: dict[str, Any], by: str) -> None:
        calls.append({**exception, "by": by})

    client.app.state.exception_retrier = retrier  # type: ignore[attr-defined]
    r = await client.post(f"/v1/exceptions/{exc_id}/retry", headers=bearer("dev-integration-admin"))
    assert r.status_code == 202 and r.json()["status"] == "retrying"
    assert [(c["workflow_id"], c["by"]) for c in calls] == [("engagement-O1", "dev-integration-admin")]

    r = await client.post(f"/v1/exceptions/{exc_id}/resolve", headers=bearer("dev-auditor"))
    assert r.status_code == 403
    r = await client.post(f"/v1/exceptions/{exc_id}/resolve", headers=FIN, json={"note": "customer fixed in CRM"})
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["resolved_by"]) == ("resolved", "dev-finance")
    r = await client.post("/v1/exceptions/424242/resolve", headers=FIN)
    assert r.status_code == 404

    r = await client.get("/v1/audit", headers=bearer("dev-auditor"))
    assert r.status_code == 200
    items = r.json()["items"]
    assert [(a["actor"], a["role"], a["action"], a["target"], a["source_ip"]) for a in items] == [
        ("dev-finance", "finance", "exception.resolve", f"exception/{exc_id}", "10.1.2.3"),
        ("dev-integration-admin", "integration_admin", "exception.retry", f"exception/{exc_id}", "10.1.2.3"),
    ]
    assert items[0]["detail"]["note"] == "customer fixed in CRM"
    assert (await client.get("/v1/audit", headers=bearer("dev-sales-ops"))).status_code == 403


async def test_a_retry_that_cannot_be_asked_for_leaves_the_exception_as_it_was(
    client: httpx.AsyncClient, hub: ReportingHub
) -> None:
    """The exception is marked `retrying` before the workflow is signalled (so a workflow that
    reopens it at once is not overwritten); a signal that fails puts the mark back."""
    exc_id = await _open_exception(hub)

    async def refused(exception: dict[str, Any], by: str) -> None:
        assert (await hub.get_exception(exception["id"]))["status"] == "retrying"
        raise ProblemError(409, "Nothing to retry", "the workflow has ended")

    client.app.state.exception_retrier = refused  # type: ignore[attr-defined]
    r = await client.post(f"/v1/exceptions/{exc_id}/retry", headers=FIN)
    assert r.status_code == 409 and "the workflow has ended" in r.json()["detail"]
    assert (await hub.get_exception(exc_id))["status"] == "open"


async def test_dashboard_page_is_public_and_self_contained(client: httpx.AsyncClient) -> None:
    r = await client.get("/dashboard")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "http://" not in r.text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in r.text  # nothing from a CDN: the machine is offline
    for panel in ("trend", "utilization", "aging", "exceptions", "recon"):
        assert f'id="{panel}"' in r.text
