"""Locking over reconciliation differences through the API: refused without a reason,
accepted with one, and the reason lands in the append-only audit log (real workflow on the
time-skipping server, real API router and auth, embedded hub)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from temporalio.worker import Worker

from api import period_close
from contracts.period_close import CloseStep, PeriodCloseRequest
from reporting.hub import ReportingHub
from tests.reporting.conftest import make_app
from tests.workflows.batch_fakes import FakeBatch
from tests.workflows.conftest import _start
from tests.workflows.sync_fakes import FakeSync
from tests.workflows.test_posting_and_close import _queues
from workflows.period_close import PeriodCloseWorkflow
from workflows.period_close_window import PeriodCloseWindowWorkflow
from workflows.posting import TimeAndExpensePostingWorkflow
from workflows.source_sync import SourceSyncWorkflow

FINANCE = {"Authorization": "Bearer dev-finance"}
AUDITOR = {"Authorization": "Bearer dev-auditor"}


async def test_lock_over_differences_needs_and_audits_a_reason(hub: ReportingHub) -> None:
    """The close of US01 2026-11 finds 2 reconciliation differences. dev-finance approving
    with no reason: 409, nothing locked. With "timing: invoice posted on the 1st": 200,
    locked, and the audit row holds the reason and the 2 differences overridden."""
    env = await _start()
    fake = FakeBatch(pages=1, engagements=2)
    fake.reconcile_differences = 2
    queue = f"t-{uuid.uuid4()}"
    try:
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[
                PeriodCloseWorkflow,
                PeriodCloseWindowWorkflow,
                TimeAndExpensePostingWorkflow,
                SourceSyncWorkflow,
            ],
            activities=[*fake.activities(), *FakeSync(projects=1).activities()],
        ):
            handle = await env.client.start_workflow(
                PeriodCloseWorkflow.run,
                PeriodCloseRequest(
                    legal_entity="US01", period="2026-11", requested_by="dev-integration-admin", queues=_queues(queue)
                ),
                id="close-US01-2026-11",
                task_queue=queue,
            )
            for _ in range(200):
                if (await handle.query(PeriodCloseWorkflow.report)).step == CloseStep.AWAITING_APPROVAL:
                    break
                await asyncio.sleep(0.05)
            app = make_app(hub)
            app.state.temporal = env.client
            app.include_router(period_close.router)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
                url = "/v1/period-close/US01/2026-11/approve"
                refused = await api.post(url, json={"decision": "approve"}, headers=FINANCE)
                assert refused.status_code == 409, refused.text
                assert "2 difference(s)" in refused.text and not fake.locked
                reason = "timing: invoice posted on the 1st"
                ok = await api.post(url, json={"decision": "approve", "override_reason": reason}, headers=FINANCE)
                assert ok.status_code == 200, ok.text
                report = await handle.result()
                assert report.locked and len(fake.locked) == 1
                audit = (await api.get("/v1/audit", headers=AUDITOR, params={"action": "period_close.approve"})).json()
                rows = audit if isinstance(audit, list) else audit.get("entries", audit.get("rows", audit.get("items")))
                assert len(rows) == 1, audit
                assert rows[0]["actor"] == "dev-finance"
                assert rows[0]["detail"]["override_reason"] == reason
                assert rows[0]["detail"]["differences_overridden"] == 2
    finally:
        await env.shutdown()
