"""Activities that talk to Temporal itself, for the month-end and the posting runs: find an
entity's engagements in delivery (visibility, a page at a time), execute a window's
`close_period` updates, hand back what the batch could not write, and signal engagements
about overdue invoices. They make no vendor call: workflows/period_close.py
reads and writes the systems through each system's own activities and queue. A Temporal
workflow cannot execute another workflow's update, hence this activity."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities.fx import FxLookupActivities
from activities.window_stage import Stage, needed
from contracts import messages
from contracts import search_attributes as sa
from contracts.engagement import CloseOutbox, EngagementCloseInput, OutboxFailure, OverdueNotice, PeriodResult
from contracts.fx import FxRatesInput
from contracts.ids import engagement_workflow_id
from contracts.memo import BATCH_MEMO
from contracts.period_close import (
    CloseTally,
    CloseWindowInput,
    CloseWindowResult,
    EngagementCloseLine,
    EngagementList,
    EngagementTarget,
    FindEngagementsInput,
    HandBackInput,
    HandBackResult,
    ReconcileInput,
    ReconcileResult,
    close_exception,
)
from contracts.posting import NotifyOverdueInput, NotifyOverdueResult
from contracts.window_stage import DELIVERY, OUTBOX
from domain.billing import Delivery
from domain.fx import FxLookup
from domain.model import ExceptionRecord
from domain.periods import period_end
from reporting import close_report
from reporting.close_stage import WindowStage

Outbox = CloseOutbox | None  # what the batch writes for an engagement (None: it wrote its own)


class CloseActivities:
    def __init__(self, client: Client, hub: Any | None = None, concurrency: int = 20) -> None:
        self._client = client
        self._hub = hub
        self._stage = WindowStage(hub.pool) if hub is not None else None
        self._gate = asyncio.Semaphore(concurrency)

    async def _signal(self, workflow_id: str, signal: str, arg: object) -> bool:
        """False when no such engagement runs (e.g. a project not booked through d2r)."""
        async with self._gate:
            try:
                await self._client.get_workflow_handle(workflow_id).signal(signal, arg)
                return True
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND:
                    return False
                raise

    @activity.defn(name="close.notify_overdue")
    async def notify_overdue(self, data: NotifyOverdueInput) -> NotifyOverdueResult:
        """The day's collection risk: one `invoices_overdue` signal per engagement."""
        done = await asyncio.gather(
            *(
                self._signal(
                    engagement_workflow_id(o), messages.INVOICES_OVERDUE, OverdueNotice(as_of=data.as_of, invoices=i)
                )
                for o, i in sorted(data.invoices.items())
            )
        )
        return NotifyOverdueResult(engagements_notified=sum(done), not_running=len(done) - sum(done))

    @activity.defn(name="close.find_engagements")
    async def find_engagements(self, data: FindEngagementsInput) -> EngagementList:
        """One page of the entity's engagements in delivery, with their batch memo."""
        if not data.legal_entity.isalnum():
            raise ValueError("legal entity must be alphanumeric")
        query = (
            f"WorkflowType = 'EngagementWorkflow' AND {sa.LEGAL_ENTITY.name} = '{data.legal_entity}' "
            f"AND {sa.STAGE.name} = 'IN_DELIVERY' AND ExecutionStatus = 'Running'"
        )
        token = base64.b64decode(data.page_token) if data.page_token else None
        page = self._client.list_workflows(query, page_size=data.page_size, next_page_token=token)
        await page.fetch_next_page()
        targets = []
        for wf in page.current_page or []:
            memo = await wf.memo_value(BATCH_MEMO, None)
            targets.append(EngagementTarget(workflow_id=wf.id, legal_entity=data.legal_entity, **(memo or {})))
        return EngagementList(
            targets=sorted(targets, key=lambda t: t.workflow_id),
            next_page_token=base64.b64encode(page.next_page_token).decode() if page.next_page_token else None,
        )

    @activity.defn(name="close.close_engagements")
    async def close_engagements(self, data: CloseWindowInput) -> CloseWindowResult:
        """One window's `close_period` updates, concurrently; waits for every result. Each
        engagement's line (and its exceptions) goes to the hub's close report; the workflow
        gets the outboxes to write and a bounded tally. With a stage, the staged engagements'
        delivery comes from it and every outbox goes to it (the result names them)."""
        cutoff = period_end(data.period)
        update_id = f"close:{data.report_id}"  # a retried window is answered, not re-run
        requests, not_closed = await self._with_staged_delivery(data)
        requests = await self._with_hub_rates(data, requests)

        async def one(
            workflow_id: str, request: EngagementCloseInput
        ) -> tuple[EngagementCloseLine, CloseOutbox | None]:
            try:
                async with self._gate:
                    result: PeriodResult = await self._client.get_workflow_handle(workflow_id).execute_update(
                        messages.CLOSE_PERIOD, request, id=update_id, result_type=PeriodResult
                    )
            except (WorkflowUpdateFailedError, RPCError) as error:
                cause = getattr(error, "cause", None) or error
                return EngagementCloseLine(workflow_id=workflow_id, ok=False, error=str(cause)[:500]), None
            finally:
                activity.heartbeat(workflow_id)
            line = EngagementCloseLine(
                workflow_id=workflow_id,
                ok=True,
                invoices=len(result.invoices),
                billed=result.billed,
                recognized=result.recognized,
                deferred=result.deferred,
                unbilled=result.unbilled,
                exceptions=result.exceptions,
                batched=result.outbox is not None,
            )
            return line, result.outbox

        done = await asyncio.gather(*(one(w, r) for w, r in sorted(requests.items())))
        lines = [line for line, _ in done]
        lines += [EngagementCloseLine(workflow_id=w, ok=False, error=e) for w, e in sorted(not_closed.items())]
        tally = CloseTally(updates_sent=len(requests))
        exceptions: list[ExceptionRecord] = []
        for line in lines:
            if not line.ok:  # a person looks at every engagement that did not close
                line.exceptions.append(
                    close_exception(
                        data.legal_entity,
                        data.period,
                        f"ENGAGEMENT_NOT_CLOSED:{line.workflow_id}",
                        f"{line.workflow_id} did not close {data.period}: {line.error}",
                        cutoff,
                    )
                )
            tally.count(line)
            exceptions += line.exceptions
        if self._hub is not None:
            dumps = [line.model_dump(mode="json", exclude={"exceptions"}) for line in lines]
            await close_report.record_lines(
                self._hub.pool, data.report_id, data.legal_entity, data.period, data.window, dumps
            )
            await close_report.record_exceptions(self._hub.pool, data.report_id, exceptions)
            tally.lines_in_hub = True
        outboxes = [o for _, o in done if o is not None]
        result = CloseWindowResult(outboxes=outboxes, tally=tally)
        if data.stage is not None:
            await self._staged().put(data.stage, OUTBOX, {o.workflow_id: o for o in outboxes})
            systems = ("erp", "crm", "psa", "hub")
            staged = {s: [o.workflow_id for o in outboxes if getattr(o, s) is not None] for s in systems}
            result = CloseWindowResult(tally=tally, staged={s: ids for s, ids in staged.items() if ids})
        # what the window's largest payloads weigh per engagement: the next window is sized by it
        heaviest = max(len(data.model_dump_json()), len(result.model_dump_json()))
        tally.payload_bytes_per_engagement = heaviest // max(len(lines), 1)
        return result

    def _staged(self) -> Stage:
        return needed(self._stage)

    async def _with_staged_delivery(
        self, data: CloseWindowInput
    ) -> tuple[dict[str, EngagementCloseInput], dict[str, str]]:
        """The window's requests, the staged engagements' with their project's delivery."""
        if data.stage is None or not data.staged_projects:
            return data.requests, data.not_closed
        found = await self._staged().get(data.stage, DELIVERY, data.staged_projects.values(), Delivery)
        requests, not_closed = dict(data.requests), dict(data.not_closed)
        for workflow_id, project in data.staged_projects.items():
            if workflow_id not in requests:
                continue
            if project in found:
                requests[workflow_id] = requests[workflow_id].model_copy(update={"delivery": found[project]})
            else:
                del requests[workflow_id]
                not_closed[workflow_id] = f"project {project}'s delivery is not in the window's stage"
        return requests, not_closed

    async def _with_hub_rates(
        self, data: CloseWindowInput, requests: dict[str, EngagementCloseInput]
    ) -> dict[str, EngagementCloseInput]:
        """Each delivery with the hub's rates for what a period run converts on its cut-off
        (the entity's functional and the reporting currency both ways, and any currency an
        expense was paid in), looked up once for the window: an engagement asks the hub only
        for a conversion it was not handed (`fx.rates_on`, an Action per engagement)."""
        if self._hub is None or not any(r.delivery is not None for r in requests.values()):
            return requests
        cutoff = period_end(data.period)
        functional = await self._hub.pool.fetchval(
            "SELECT functional_currency FROM dim_legal_entity WHERE legal_entity = $1", data.legal_entity
        )
        currencies = {str(c).strip() for c in (functional, self._hub.reporting_currency) if c}
        for r in requests.values():
            if r.delivery is not None:
                currencies |= {x.amount.currency for x in r.delivery.expenses}
        lookups = [(a, b, cutoff) for a in sorted(currencies) for b in sorted(currencies) if a != b]
        found = await FxLookupActivities(self._hub).rates_on(
            FxRatesInput(conversions=[FxLookup(base=a, quote=b, on=on) for a, b, on in lookups])
        )
        if not found.rates:
            return requests
        out = dict(requests)
        for workflow_id, r in requests.items():
            if r.delivery is None:
                continue
            known = {(c.base, c.quote, c.on) for c in r.delivery.fx.chosen}
            chosen = [*r.delivery.fx.chosen, *(c for c in found.rates if (c.base, c.quote, c.on) not in known)]
            fx = r.delivery.fx.model_copy(update={"chosen": chosen})
            out[workflow_id] = r.model_copy(update={"delivery": r.delivery.model_copy(update={"fx": fx})})
        return out

    @activity.defn(name="close.hand_back")
    async def hand_back(self, data: HandBackInput) -> HandBackResult:
        """Outboxes the batch could not write go back to their engagements (`outbox_failed`);
        their lines in the close report say why. With a stage, the outboxes come from it."""
        failures = list(data.failures)
        if data.stage is not None and data.refused:
            outboxes = await self._staged().get(data.stage, OUTBOX, data.refused, CloseOutbox)
            failures += [
                OutboxFailure(period=data.period or "", outbox=outboxes[w], error=error)
                for w, error in sorted(data.refused.items())
                if w in outboxes
            ]
        done = await asyncio.gather(*(self._signal(f.outbox.workflow_id, messages.OUTBOX_FAILED, f) for f in failures))
        if self._hub is not None:
            refused = {f.outbox.workflow_id: f.error for f in failures}
            await close_report.mark_handed_back(self._hub.pool, data.report_id, refused)
        return HandBackResult(signalled=sum(done))

    @activity.defn(name="close.reconcile")
    async def reconcile(self, data: ReconcileInput) -> ReconcileResult:
        """The hub reconciles the entity's period; the close's entity-level exceptions (the
        final posting run's sample, the differences) go to its report."""
        if self._hub is None:
            return ReconcileResult(status="skipped", detail="no reporting hub is configured on this worker")
        report = await self._hub.reconcile(data.period, data.legal_entity)
        differences = len(report.get("differences") or [])
        result = ReconcileResult(
            status=report["status"],  # "nothing_to_reconcile" when no project was compared
            differences=differences,
            run_id=report.get("run_id"),
            detail=f"{report.get('projects_checked', 0)} projects checked",
        )
        if data.report_id is not None:
            await close_report.record_exceptions(self._hub.pool, data.report_id, data.exceptions)
            if self._stage is not None:  # every window has written what it kept there
                await self._stage.drop(data.report_id)
        return result
