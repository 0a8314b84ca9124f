"""FxSyncWorkflow — `fx-sync-<day>` (the daily Schedule's runs: `fx-sync-scheduled-…`): every
ERP instance's dated currency-rate records into the reporting hub, one activity per page.

A page (ERP queue) reads a page of one instance's rate records through its FX port and
stores them in the hub in the same activity, so the history holds a cursor and counts per
page, never the rates. Storing is an upsert on (pair, day): a repeated page, a retried one
or a second run the same day changes nothing. The run continues as new when its history
grows long.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from contracts import messages
    from contracts.fx import FxSyncInput, FxSyncPageInput, FxSyncPageResult, FxSyncProgress, FxSyncResult
    from contracts.retry import PAGE_ATTEMPTS, retry_policy

RETRY = retry_policy(PAGE_ATTEMPTS)


@workflow.defn(name="FxSyncWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class FxSyncWorkflow:
    @workflow.init
    def __init__(self, data: FxSyncInput) -> None:
        self._p = data.carried or FxSyncProgress()

    @workflow.query(name=messages.PROGRESS)
    def progress(self) -> FxSyncProgress:
        return self._p

    @workflow.run
    async def run(self, data: FxSyncInput) -> FxSyncResult:
        p = self._p
        while True:
            workflow.set_current_details(
                f"page {p.pages + 1} of {p.cursor.instance or 'the first ERP instance'}: "
                f"{p.read} rate records read, {p.stored} stored so far"
            )
            page: FxSyncPageResult = await workflow.execute_activity(
                "fx.sync_page",
                FxSyncPageInput(cursor=p.cursor, since=data.since, page_size=data.page_size),
                result_type=FxSyncPageResult,
                task_queue=data.queues.erp,
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=RETRY,
                summary=f"FX rates page {p.pages + 1} ({p.cursor.instance or 'first instance'})",
            )
            p.pages += 1
            p.read += page.read
            p.stored += page.stored
            if page.instance and page.instance not in p.instances:
                p.instances.append(page.instance)
            if page.skipped:
                p.notes.append(page.skipped)
            if page.next is None:
                break
            p.cursor = page.next
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(data.model_copy(update={"carried": p}))
        workflow.set_current_details(
            f"done: {p.read} rate records of {', '.join(p.instances) or 'no instance'} read, {p.stored} stored"
            + (f"; {'; '.join(p.notes)}" if p.notes else "")
        )
        return FxSyncResult(workflow_id=workflow.info().workflow_id, progress=p)
