"""The month-end report in the hub, read page by page through the API, and the close's
approve (without a body) and cancel calls: a real close on the time-skipping server (window
activities faked by name), the real window activity writing its lines to an embedded hub
(engagements stubbed), the real API router and auth."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.period_close import CloseActivities
from api import period_close
from api.auth import Authenticator, Principal, TokenTable
from api.settings import DEV_TOKENS, ApiSettings
from contracts.engagement import CloseOutbox, EngagementCloseInput, OutboxFailure, PeriodResult
from contracts.period_close import CloseStep, CloseWindowInput, HandBackInput, PeriodCloseReport, PeriodCloseRequest
from domain.money import Money
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
ADMIN = {"Authorization": "Bearer dev-integration-admin"}
AUDITOR = {"Authorization": "Bearer dev-auditor"}
FRANK = {"Authorization": "Bearer frank-token"}
FIN = frozenset({"finance"})
URL = "/v1/period-close/US01/2026-11"


class _Engagement:
    """An engagement's `close_period` answer (by name), or its refusal."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id

    async def execute_update(self, name: str, request: EngagementCloseInput, **_: Any) -> PeriodResult:
        if self.workflow_id.endswith("bad"):
            raise WorkflowUpdateFailedError(RuntimeError("the engagement is NEEDS_ATTENTION, not in delivery"))
        usd = lambda n: Money(amount=Decimal(n), currency="USD")  # noqa: E731
        return PeriodResult(
            period=request.period,
            invoices=[],
            billed=usd(100),
            recognized=usd(80),
            deferred=usd(20),
            unbilled=usd(0),
            revenue_journal_id=None,
            exceptions=[],
            outbox=CloseOutbox(workflow_id=self.workflow_id) if request.outbox else None,
        )

    async def signal(self, name: str, arg: object) -> None:
        return None


@dataclass
class _Temporal:
    def get_workflow_handle(self, workflow_id: str) -> _Engagement:
        return _Engagement(workflow_id)


@pytest.fixture
async def close(hub: ReportingHub) -> AsyncIterator[tuple[WorkflowEnvironment, WorkflowHandle[Any, Any], FakeBatch]]:
    env = await _start()
    fake = FakeBatch(pages=1, engagements=2)
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
                    legal_entity="US01", period="2026-11", requested_by="dev-finance", queues=_queues(queue)
                ),
                id="close-US01-2026-11",
                task_queue=queue,
            )
            await _awaiting(handle)
            yield env, handle, fake
    finally:
        await env.shutdown()


async def _awaiting(handle: WorkflowHandle[Any, Any]) -> PeriodCloseReport:
    for _ in range(200):
        report: PeriodCloseReport = await handle.query(PeriodCloseWorkflow.report)
        if report.step == CloseStep.AWAITING_APPROVAL:
            return report
        await asyncio.sleep(0.05)
    raise AssertionError(f"the close is still {report.step}")


def _api(hub: ReportingHub, client: Client, settings: ApiSettings | None = None) -> httpx.AsyncClient:
    """The dev tokens, and frank: a second finance person (four eyes is by person)."""
    app = make_app(hub)
    if settings is not None:
        app.state.settings = settings
    grants = {t: Principal(s, r) for t, (s, r) in DEV_TOKENS.items()}
    app.state.authenticator = Authenticator(None, TokenTable({**grants, "frank-token": Principal("frank", FIN)}))
    app.state.temporal = client
    app.include_router(period_close.router)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_the_report_pages_from_the_hub(hub: ReportingHub, close: Any) -> None:
    """The window activity writes 5 lines (3 closed, 1 refused by its engagement, 1 whose
    project the PSA lacks) and their 2 ENGAGEMENT_NOT_CLOSED exceptions under the close's
    report id; a hand-back marks one line. Pages of 2: 2 + 2 + 1 lines, each page's cursor
    leads to the next, the last has none; a forged cursor and one of another run are 400."""
    env, handle, _ = close
    report = await _awaiting(handle)
    acts = CloseActivities(_Temporal(), hub)  # type: ignore[arg-type]
    requests = {
        w: EngagementCloseInput(period="2026-11", outbox=True) for w in ("engagement-a", "engagement-b", "engagement-c")
    }
    requests["engagement-d-bad"] = EngagementCloseInput(period="2026-11")
    data = CloseWindowInput(
        report_id=report.report_id,
        legal_entity="US01",
        period="2026-11",
        window=1,
        requests=requests,
        not_closed={"engagement-e": "project a0P-e is not in the PSA"},
    )
    result = await ActivityEnvironment().run(acts.close_engagements, data)
    tally = result.tally
    assert (tally.engagements, tally.closed, tally.failed, tally.updates_sent) == (5, 3, 2, 4)
    assert tally.lines_in_hub and tally.exceptions_total == 2 and len(result.outboxes) == 3
    assert tally.totals.billed == {"USD": Decimal(300)}
    assert tally.payload_bytes_per_engagement > 0
    failure = OutboxFailure(period="2026-11", outbox=result.outboxes[1], error="VendorValidationError: refused")
    handed = await ActivityEnvironment().run(
        acts.hand_back, HandBackInput(report_id=report.report_id, failures=[failure])
    )
    assert handed.signalled == 1

    async with _api(hub, env.client) as api:
        seen: list[dict[str, Any]] = []
        cursor = None
        pages = 0
        while True:
            r = await api.get(
                f"{URL}/engagements", headers=AUDITOR, params={"limit": 2, **({"cursor": cursor} if cursor else {})}
            )
            assert r.status_code == 200, r.text
            page = r.json()
            assert page["report_id"] == report.report_id
            seen += page["items"]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 3 and [x["workflow_id"] for x in seen] == [
            "engagement-a",
            "engagement-b",
            "engagement-c",
            "engagement-d-bad",
            "engagement-e",
        ]
        lines = {x["workflow_id"]: x for x in seen}
        assert lines["engagement-a"]["ok"] and lines["engagement-a"]["billed"] == {"amount": "100", "currency": "USD"}
        assert lines["engagement-b"]["outbox_error"] == "VendorValidationError: refused"
        assert not lines["engagement-d-bad"]["ok"] and "NEEDS_ATTENTION" in lines["engagement-d-bad"]["error"]
        assert lines["engagement-e"]["error"] == "project a0P-e is not in the PSA"

        r = await api.get(f"{URL}/exceptions", headers=AUDITOR, params={"limit": 500})
        assert r.status_code == 200 and r.json()["next_cursor"] is None
        assert sorted(x["code"] for x in r.json()["items"]) == [
            "ENGAGEMENT_NOT_CLOSED:engagement-d-bad",
            "ENGAGEMENT_NOT_CLOSED:engagement-e",
        ]

        forged = await api.get(f"{URL}/engagements", headers=AUDITOR, params={"cursor": "not-a-cursor"})
        assert forged.status_code == 400 and forged.headers["content-type"].startswith("application/problem+json")
        assert forged.json()["errors"][0]["field"] == "cursor"
        other_run = period_close._cursor("close-US01-2026-11/another-run", "engagement-a")
        stale = await api.get(f"{URL}/engagements", headers=AUDITOR, params={"cursor": other_run})
        assert stale.status_code == 400 and "another run" in stale.json()["detail"]
        too_many = await api.get(f"{URL}/engagements", headers=AUDITOR, params={"limit": 501})
        assert too_many.status_code == 422


async def test_a_close_started_by_finance_is_approved_by_another_person_without_a_body(
    hub: ReportingHub, close: Any
) -> None:
    """dev-finance started it: dev-finance approving is four-eyes refused (409); another
    finance person approving with no body at all gets 200 and the period locks."""
    env, handle, fake = close
    async with _api(hub, env.client) as api:
        refused = await api.post(f"{URL}/approve", headers=FINANCE)
        assert refused.status_code == 409, refused.text
        assert "four eyes" in refused.json()["detail"]
        approved = await api.post(f"{URL}/approve", headers=FRANK)
        assert approved.status_code == 200, approved.text
    final = await handle.result()
    assert final.step == CloseStep.CLOSED and final.locked and final.approval is not None
    assert final.approval.decided_by == "frank" and len(fake.locked) == 1


async def test_cancelling_a_close(hub: ReportingHub, close: Any) -> None:
    """Who may cancel: finance (the requester too) and the integration admin; an auditor is
    403. dev-finance, who started it, cancels it while it waits for approval: CANCELLED, the
    approval withdrawn (not pending), nothing locked, no timer left; a second cancel is 409."""
    env, handle, fake = close
    async with _api(hub, env.client) as api:
        forbidden = await api.post(f"{URL}/cancel", headers=AUDITOR)
        assert forbidden.status_code == 403
        r = await api.post(f"{URL}/cancel", headers=FINANCE, json={"reason": "wrong cut-off"})
        assert r.status_code == 200, r.text
        final = await handle.result()
        again = await api.post(f"{URL}/cancel", headers=ADMIN)
        assert again.status_code in (404, 409), again.text
    assert final.step == CloseStep.CANCELLED and final.cancelled_by == "dev-finance" and not final.locked
    assert final.approval is not None and final.approval.decision.value == "rejected"
    assert not fake.locked
    assert (await handle.describe()).raw_description.pending_activities == []
    assert any("wrong cut-off" in t for t in final.timeline)


async def test_a_rejected_lock_leaves_nothing_pending(hub: ReportingHub, close: Any) -> None:
    """frank (finance) rejects: the approval is decided (rejected, by frank), the close ends
    REJECTED, and its history holds no timer that is still running."""
    env, handle, fake = close
    async with _api(hub, env.client) as api:
        r = await api.post(f"{URL}/approve", headers=FRANK, json={"decision": "reject"})
        assert r.status_code == 200, r.text
    final = await handle.result()
    assert final.step == CloseStep.REJECTED and not final.locked and not fake.locked
    assert final.approval is not None and final.approval.decision.value == "rejected"
    assert final.approval.decided_by == "frank"
    started = fired = 0
    async for e in handle.fetch_history_events():
        started += e.HasField("timer_started_event_attributes")
        fired += e.HasField("timer_fired_event_attributes") or e.HasField("timer_canceled_event_attributes")
    assert started == fired


def _settings(queue: str) -> ApiSettings:
    """The API's settings with every queue on the test worker's (no hub queue: by value)."""
    return ApiSettings(
        workflow_task_queue=queue, crm_task_queue=queue, psa_task_queue=queue, erp_task_queue=queue, database_url=None
    )


@pytest.mark.parametrize("ending", ["cancel", "reject"])
async def test_a_close_that_ended_unlocked_is_started_again(hub: ReportingHub, close: Any, ending: str) -> None:
    """A close cancelled before its lock, or whose lock was rejected, did not close the
    period: a POST starts a new run (201, a new run id) that reaches approval again, and a
    POST while it runs reads it (200, the same run). A locked close stands: a POST reads it."""
    env, handle, fake = close
    queue = (await handle.describe()).task_queue
    async with _api(hub, env.client, _settings(queue)) as api:
        if ending == "cancel":
            r = await api.post(f"{URL}/cancel", headers=FINANCE, json={"reason": "wrong cut-off"})
        else:
            r = await api.post(f"{URL}/approve", headers=FRANK, json={"decision": "reject"})
        assert r.status_code == 200, r.text
        ended = await handle.result()
        assert ended.step in (CloseStep.CANCELLED, CloseStep.REJECTED)
        body = {"legal_entity": "US01", "period": "2026-11"}
        again = await api.post("/v1/period-close", headers=FINANCE, json=body)
        assert again.status_code == 201, again.text
        rerun = env.client.get_workflow_handle_for(PeriodCloseWorkflow.run, "close-US01-2026-11")
        rerun_id = (await rerun.describe()).run_id
        assert rerun_id != handle.result_run_id
        assert (await _awaiting(rerun)).step == CloseStep.AWAITING_APPROVAL
        reading = await api.post("/v1/period-close", headers=FINANCE, json=body)
        assert reading.status_code == 200 and (await rerun.describe()).run_id == rerun_id
        approved = await api.post(f"{URL}/approve", headers=FRANK)
        assert approved.status_code == 200, approved.text
        assert (await rerun.result()).step == CloseStep.CLOSED and len(fake.locked) == 1
        locked = await api.post("/v1/period-close", headers=FINANCE, json=body)
        assert locked.status_code == 200 and (await rerun.describe()).run_id == rerun_id
