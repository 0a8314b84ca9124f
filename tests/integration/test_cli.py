"""The `d2r` command line against the running stack (dev Temporal, simulators as processes,
the API over HTTP): each command is run as an operator runs it, `python -m cli …` in its own
process, with a token minted by `d2r token` from the dev issuer the API serves."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import pytest

from tests.integration.conftest import ROOT, Stack, eventually

pytestmark = pytest.mark.integration

SALES = {"Authorization": "Bearer dev-sales-ops"}
UK_TM = "006Dd0000000002IAA"  # seeded: UK01, GBP, T&M
ENTITY, PERIOD = "JP01", "2026-11"  # no other test closes this month of JP01


async def d2r(stack: Stack, *args: str, token: str | None = None) -> tuple[int, str, str]:
    env = {**os.environ, "D2R_API_URL": str(stack.api.base_url), "COLUMNS": "200"}
    env.pop("D2R_TOKEN", None)
    if token is not None:
        env["D2R_TOKEN"] = token
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def mint(stack: Stack, role: str, subject: str) -> str:
    assert stack.issuer_key is not None
    code, out, err = await d2r(
        stack,
        "token",
        "--role",
        role,
        "--subject",
        subject,
        "--key-file",
        str(stack.issuer_key),
        "--issuer",
        stack.issuer,
    )
    assert code == 0, err
    return out.strip()


async def test_engagement_commands(stack: Stack) -> None:
    started = await stack.api.post("/v1/engagements", json={"opportunity_id": UK_TM}, headers=SALES)
    assert started.status_code in (200, 202), started.text
    auditor = await mint(stack, "auditor", "audrey")
    admin = await mint(stack, "integration_admin", "ian")

    async def in_delivery() -> dict[str, Any] | None:
        code, out, err = await d2r(stack, "engagements", "show", UK_TM, token=auditor)
        assert code == 0, err
        view: dict[str, Any] = json.loads(out)
        return view if view["stage"] == "IN_DELIVERY" else None

    view = await eventually(in_delivery, within=90, interval=1.0)
    assert view["opportunity_id"] == UK_TM and view["legal_entity"] == "UK01"

    code, out, err = await d2r(stack, "engagements", "list", "-e", "UK01", "--json", token=auditor)
    assert code == 0, err
    assert UK_TM in {e["opportunity_id"] for e in json.loads(out)}
    code, out, _ = await d2r(stack, "engagements", "list", "--stage", "IN_DELIVERY", token=auditor)
    assert code == 0 and UK_TM in out and "engagement(s)" in out  # the table

    # The API's refusals reach the operator as one line and a non-zero exit.
    code, _, err = await d2r(stack, "engagements", "retry", UK_TM, token=admin)
    assert code == 1 and "409 Refused by the engagement" in err and "IN_DELIVERY" in err and "no fix" in err
    code, _, err = await d2r(stack, "engagements", "approve", UK_TM, "no-such-approval", token=auditor)
    assert code == 1 and "403" in err  # an auditor decides nothing
    code, _, err = await d2r(stack, "engagements", "list")
    assert code == 2 and "no token" in err

    # Each step of it is one JSON line in the worker's business-event log, apart from worker.log.
    events = [json.loads(line) for line in stack.events_log.read_text().splitlines()]
    mine = [e for e in events if e.get("workflow_id") == f"engagement-{UK_TM}" and e["event"] == "step.completed"]
    steps = [e["step"] for e in mine]
    assert steps[:1] == ["crm.read_opportunity"] and "erp.upsert_customer" in steps, steps
    customer = next(e for e in mine if e["step"] == "erp.upsert_customer")
    assert customer["opportunity_id"] == UK_TM and customer["legal_entity"] == "UK01"
    assert customer["workflow_type"] == "EngagementWorkflow" and customer["ts"].endswith("+00:00")
    # one correlation id for the steps of one run: this stack traces nothing, so it is the run
    assert {e["correlation_id"] for e in mine if e["run_id"] == customer["run_id"]} == {customer["run_id"]}


async def test_stuck_lists_a_deal_that_needs_attention(stack: Stack) -> None:
    """A deal of its own, Closed Won without a legal entity or lines, waits in NEEDS_ATTENTION
    (a seeded one would be started here before the test that expects to start it);
    `d2r stuck` names it, says why and links it."""
    sf = stack.sims["salesforce"].url
    grant = {"grant_type": "client_credentials", "client_id": "d2r-dev", "client_secret": "d2r-dev-secret"}
    crm = {
        "Authorization": "Bearer "
        + (await stack.api.post(f"{sf}/services/oauth2/token", data=grant)).json()["access_token"]
    }
    created = await stack.api.post(
        f"{sf}/services/data/v61.0/sobjects/Opportunity",
        headers=crm,
        json={"Name": "d2r stuck test", "StageName": "Closed Won", "CloseDate": "2026-11-30", "CurrencyIsoCode": "USD"},
    )
    assert created.status_code == 201, created.text
    invalid = created.json()["id"]
    started = await stack.api.post("/v1/engagements", json={"opportunity_id": invalid}, headers=SALES)
    assert started.status_code in (200, 201, 202), started.text
    auditor = await mint(stack, "auditor", "audrey")

    async def listed() -> list[dict[str, Any]] | None:
        code, out, err = await d2r(stack, "stuck", "--json", token=auditor)
        assert code == 0, err
        rows: list[dict[str, Any]] = json.loads(out)
        return [r for r in rows if r.get("opportunity_id") == invalid] or None

    (row,) = await eventually(listed, within=90, interval=1.0)
    assert row["stage"] == "NEEDS_ATTENTION" and "needs attention" in row["problem"]
    assert row["ui_href"].endswith(f"/namespaces/default/workflows/engagement-{invalid}")
    code, out, err = await d2r(stack, "stuck", "--links", "--ui", "http://ui.example", token=auditor)
    assert code == 0, err
    assert invalid in out and "stuck engagement(s)" in out
    assert f"http://ui.example/namespaces/default/workflows/engagement-{invalid}" in out
    assert f"{stack.api.base_url}/v1/engagements/{invalid}" in out


async def test_demo_month_end_shows_its_progress(stack: Stack) -> None:
    """`d2r demo month-end` for one entity (JP01: a milestone deal, so no time to record),
    against the stack's own addresses (JP01 closes here before the next test's later period):
    deals booked, the close step by step, the lock approved by finance after integration admin
    started it, then the controller's checks (this stack has no hub: billed revenue unknown)."""
    assert stack.issuer_key is not None
    code, out, err = await d2r(
        stack,
        "demo",
        "month-end",
        "--period",
        "2026-09",
        "-e",
        "JP01",
        "--crm",
        stack.sims["salesforce"].url,
        "--netsuite",
        stack.sims["netsuite"].url,
        "--key-file",
        str(stack.issuer_key),
        "--issuer",
        stack.issuer,
    )
    assert code == 1, out + err  # without a hub the billed-revenue check cannot pass
    assert "demo month-end 2026-09" in out and "✔ book the deals" in out and "✔ close" in out, out + err
    assert "JP01" in out and "lock approved by dev-finance" in out and "reconciliation:" in out
    assert "the hub does not answer (HTTP 503)" in out and "has differences" in out
    report = (
        await stack.api.get("/v1/period-close/JP01/2026-09", headers={"Authorization": "Bearer dev-auditor"})
    ).json()
    assert report["step"] == "CLOSED" and report["locked"] is True


async def test_month_end_from_the_command_line(stack: Stack) -> None:
    """Started by one finance person, watched to the lock approval, approved by another (four
    eyes by person), then the report; the watch ends at AWAITING_APPROVAL with the steps shown."""
    fiona = await mint(stack, "finance", "fiona")
    frank = await mint(stack, "finance", "frank")
    code, out, err = await d2r(stack, "close", "start", ENTITY, PERIOD, "--watch", token=fiona)
    assert code == 0, err
    assert "AWAITING_APPROVAL" in out and "✔ POSTING" in out and "reconciliation" in out

    code, out, err = await d2r(stack, "close", "status", ENTITY, PERIOD, "--json", token=fiona)
    assert code == 0, err
    report = json.loads(out)
    assert report["step"] == "AWAITING_APPROVAL" and report["approval"]["decision"] == "pending"

    code, _, err = await d2r(stack, "close", "approve", ENTITY, PERIOD, token=fiona)
    assert code == 1 and "409" in err  # whoever started the close may not approve its lock
    code, out, err = await d2r(stack, "close", "approve", ENTITY, PERIOD, "-m", "checked", token=frank)
    assert code == 0, err

    async def closed() -> dict[str, Any] | None:
        code, out, err = await d2r(stack, "close", "status", ENTITY, PERIOD, "--json", token=fiona)
        assert code == 0, err
        body: dict[str, Any] = json.loads(out)
        return body if body["step"] == "CLOSED" else None

    final = await eventually(closed, within=90, interval=1.0)
    assert final["locked"] is True
    code, out, err = await d2r(stack, "close", "report", ENTITY, PERIOD, token=fiona)
    assert code == 0, err
    assert f"{ENTITY} {PERIOD} — CLOSED" in out and "locked" in out and "engagements" in out
