"""TimeAndExpensePostingWorkflow — id `posting-<legal entity>-<date>`: one run per legal
entity and day (a Temporal Schedule, an API call, or a period close's final run).

The workflow only keeps the cursor and the totals: every page (a chunk of projects with
all their approved, unposted time and expenses) is one activity, so the history stays a
few events per page whatever the volume. Engagements are not signalled per run (an
Action each, every posting day): their period close reads the posted time from the PSA.
"""

from __future__ import annotations

from datetime import date, timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from contracts import messages
    from contracts.engagement import OverdueInvoice
    from contracts.erp import OpenItemsInput, OpenItemsResult
    from contracts.posting import (
        NotifyOverdueInput,
        NotifyOverdueResult,
        PostingInput,
        PostingProgress,
        PostingResult,
        PostPageInput,
        PostPageResult,
    )
    from contracts.retry import PAGE_ATTEMPTS, retry_policy

PAGE_RETRY = retry_policy(PAGE_ATTEMPTS)
MAX_EXCEPTIONS_KEPT = 500


@workflow.defn(name="TimeAndExpensePostingWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class TimeAndExpensePostingWorkflow:
    @workflow.init
    def __init__(self, data: PostingInput) -> None:
        self._p = data.carried or PostingProgress()

    @workflow.query(name=messages.PROGRESS)
    def progress(self) -> PostingProgress:
        return self._p

    @workflow.run
    async def run(self, data: PostingInput) -> PostingResult:
        p = self._p
        wid = workflow.info().workflow_id
        p.posting_date = p.posting_date or data.posting_date or workflow.now().date()
        p.cutoff = p.cutoff or data.cutoff or p.posting_date
        while not p.done:
            workflow.set_current_details(
                f"page {p.page}: {p.time_entries} time entries, {p.expenses} expenses "
                f"posted so far, {p.exceptions_total} exceptions"
            )
            result: PostPageResult = await workflow.execute_activity(
                "posting.post_page",
                PostPageInput(
                    run_id=wid,
                    page=p.page,
                    legal_entity=data.legal_entity,
                    cutoff=p.cutoff,
                    posting_date=p.posting_date,
                    after_project=p.after_project,
                    config=data.config,
                ),
                result_type=PostPageResult,
                task_queue=data.queues.erp,
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(seconds=data.heartbeat_seconds),
                retry_policy=PAGE_RETRY,
                summary=f"Post page {p.page} of {data.legal_entity} (projects after {p.after_project or 'start'})",
            )
            self._merge(result)
            if result.next_project is None:
                p.done = True
                break
            p.after_project = result.next_project
            p.page += 1
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(data.model_copy(update={"carried": p}))
        # The day's collection risk rides on the daily run: invoices that fell due yesterday
        # and are still open in the ERP reach their engagements (one signal each).
        if data.sweep_overdue:
            await self._sweep_overdue(data, p.posting_date)
        workflow.set_current_details(
            f"done: {p.time_entries} time entries ({p.hours} h), {p.expenses} expenses, "
            f"{p.intercompany_charges} intercompany charges, "
            f"{p.exceptions_total} exceptions"
        )
        return PostingResult(workflow_id=wid, legal_entity=data.legal_entity, progress=p)

    async def _sweep_overdue(self, data: PostingInput, as_of: date) -> None:
        """Invoices that fell due yesterday and are still open (ERP), then one
        `invoices_overdue` signal per engagement (Temporal, beside the workflows)."""
        due: OpenItemsResult = await workflow.execute_activity(
            "erp.open_items_due",
            OpenItemsInput(
                legal_entity=data.legal_entity, due_from=as_of - timedelta(days=1), due_to=as_of - timedelta(days=1)
            ),
            result_type=OpenItemsResult,
            task_queue=data.queues.erp,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=PAGE_RETRY,
            summary=f"Invoices of {data.legal_entity} that fell due and are still open",
        )
        self._p.overdue_invoices = len(due.items)
        if not due.items:
            return
        by_opportunity: dict[str, list[OverdueInvoice]] = {}
        for item in due.items:
            by_opportunity.setdefault(item.opportunity_id, []).append(
                OverdueInvoice(
                    invoice_id=item.invoice_id, due_date=item.due_date, amount_remaining=item.amount_remaining
                )
            )
        await workflow.execute_activity(
            "close.notify_overdue",
            NotifyOverdueInput(as_of=as_of, invoices=by_opportunity),
            result_type=NotifyOverdueResult,
            task_queue=workflow.info().task_queue,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=PAGE_RETRY,
            summary=f"Tell {len(by_opportunity)} engagements of their overdue invoices",
        )

    def _merge(self, r: PostPageResult) -> None:
        p = self._p
        p.projects += r.projects
        p.time_entries += r.time_entries
        p.expenses += r.expenses
        p.hours += r.hours
        p.erp_records += r.erp_records
        p.intercompany_charges += r.intercompany_charges
        p.exceptions_total += r.exceptions_total
        room = MAX_EXCEPTIONS_KEPT - len(p.exceptions)
        p.exceptions.extend(r.exceptions[: max(room, 0)])
        if r.worker:
            p.pages_by_worker[r.worker] = p.pages_by_worker.get(r.worker, 0) + 1
        if r.hub_rows is not None:
            p.hub_rows = (p.hub_rows or 0) + r.hub_rows
