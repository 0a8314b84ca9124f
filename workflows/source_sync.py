"""SourceSyncWorkflow — id `sync-<legal entity>-<period>`: the curated PSA and ERP totals of one
legal entity and month, written to the reporting hub so that its reconciliation compares real
PSA actuals, ERP postings and hub facts.

A page is a chunk of the entity's projects (Id order, a stable cursor): the PSA page
(PSA queue) stages the approved time of its projects, the ERP page (ERP queue) the time
bills of the same projects in every ERP instance; the entity's posting journals and
invoices are one more ERP extract. Pages stage under the run's key, and the last step
commits the stage as the complete extract (replace semantics), so running the sync again
changes nothing when the systems have not changed. The history holds a few events per page
and only counts, whatever the volume.

Without a period (the daily Schedule), the run syncs the current and the previous month,
each as a child `sync-<entity>-<period>`. The period close calls it as a child right
before reconciling (see `SourceSyncInput`).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from temporalio import workflow
from temporalio.common import VersioningBehavior, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from contracts import messages
    from contracts.ids import sync_workflow_id
    from contracts.retry import PAGE_ATTEMPTS, retry_policy
    from contracts.source_sync import (
        SourceSyncInput,
        SourceSyncResult,
        SyncCommitInput,
        SyncCommitResult,
        SyncCrmInput,
        SyncCrmResult,
        SyncErpEntityInput,
        SyncErpResult,
        SyncErpTimePageInput,
        SyncProgress,
        SyncPsaPageInput,
        SyncPsaPageResult,
        SyncReconcileInput,
        SyncReconcileResult,
    )
    from domain.periods import period_of, period_start

RETRY = retry_policy(PAGE_ATTEMPTS)


def previous_period(period: str) -> str:
    return period_of(period_start(period) - timedelta(days=1))


@workflow.defn(name="SourceSyncWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class SourceSyncWorkflow:
    @workflow.init
    def __init__(self, data: SourceSyncInput) -> None:
        self._p = data.carried or SyncProgress()

    @workflow.query(name=messages.PROGRESS)
    def progress(self) -> SyncProgress:
        return self._p

    @workflow.run
    async def run(self, data: SourceSyncInput) -> SourceSyncResult:
        if data.period is None:
            return await self._scheduled(data)
        period = data.period
        p = self._p
        info = workflow.info()
        p.sync_key = p.sync_key or f"{info.workflow_id}:{info.run_id}"
        result = SourceSyncResult(
            workflow_id=info.workflow_id, legal_entity=data.legal_entity, period=period, progress=p
        )
        base = {"sync_key": p.sync_key, "legal_entity": data.legal_entity, "period": period}
        # The entity-wide ERP extract (journals, invoices) runs beside the pages.
        entity = None
        if p.erp_entity is None:
            entity = workflow.start_activity(
                "sync.erp_entity",
                SyncErpEntityInput(**base),
                result_type=SyncErpResult,
                task_queue=data.queues.erp,
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(minutes=2),
                retry_policy=RETRY,
                summary=f"ERP journals and invoices of {data.legal_entity} {period}",
            )
        erp_page = None
        while not p.psa_done:
            workflow.set_current_details(
                f"page {p.page}: {p.projects} projects, {p.psa_hours} PSA hours, "
                f"{p.erp_time_bill_hours} ERP time-bill hours so far"
            )
            page: SyncPsaPageResult = await workflow.execute_activity(
                "sync.psa_page",
                SyncPsaPageInput(
                    **base, page=p.page, after_project=p.after_project, projects_per_page=data.projects_per_page
                ),
                result_type=SyncPsaPageResult,
                task_queue=data.queues.psa,
                start_to_close_timeout=timedelta(minutes=10),
                retry_policy=RETRY,
                summary=f"PSA page {p.page} of {data.legal_entity} {period}",
            )
            if page.skipped:
                if entity is not None:
                    await entity
                result.status = "skipped"
                result.notes.append("no reporting hub is configured on the workers")
                return result
            if erp_page is not None:
                self._merge_erp(await erp_page)
                erp_page = None
            p.projects += len(page.project_ids)
            p.psa_projects_with_time += page.projects_with_time
            p.psa_hours += page.hours
            p.psa_time_amount += page.time_amount
            p.psa_records += page.records
            if page.project_ids:
                # the ERP page of these projects runs while the PSA reads the next page
                erp_page = workflow.start_activity(
                    "sync.erp_time_page",
                    SyncErpTimePageInput(**base, page=p.page, project_ids=page.project_ids),
                    result_type=SyncErpResult,
                    task_queue=data.queues.erp,
                    start_to_close_timeout=timedelta(minutes=10),
                    retry_policy=RETRY,
                    summary=f"ERP time bills of page {p.page} of {data.legal_entity} {period}",
                )
            if page.next_project is None:
                p.psa_done = True
            else:
                p.after_project = page.next_project
            p.page += 1
            if not p.psa_done and workflow.info().is_continue_as_new_suggested():
                if erp_page is not None:
                    self._merge_erp(await erp_page)
                if entity is not None:
                    p.erp_entity = await entity
                workflow.continue_as_new(data.model_copy(update={"carried": p}))
        if erp_page is not None:
            self._merge_erp(await erp_page)
        if entity is not None:
            p.erp_entity = await entity
        result.crm = await workflow.execute_activity(
            "sync.crm_bookings",
            SyncCrmInput(**base),
            result_type=SyncCrmResult,
            task_queue=data.queues.crm,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RETRY,
            summary=f"CRM bookings (closed won) of {data.legal_entity} {period}",
        )
        if result.crm.unlinked:
            result.notes.append(
                f"{len(result.crm.unlinked)} closed-won deal(s) without a project (never "
                f"provisioned; their engagements say why): {', '.join(result.crm.unlinked[:10])}"
            )
        commit: SyncCommitResult = await workflow.execute_activity(
            "sync.commit",
            SyncCommitInput(**base),
            result_type=SyncCommitResult,
            task_queue=info.task_queue,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RETRY,
            summary=f"Replace the hub's PSA and ERP totals of {data.legal_entity} {period}",
        )
        result.committed = commit.projects
        if commit.skipped:
            result.status = "skipped"
            result.notes.append("no reporting hub is configured on the workflow worker")
        elif data.reconcile:
            result.reconciliation = await workflow.execute_activity(
                "sync.reconcile",
                SyncReconcileInput(legal_entity=data.legal_entity, period=period),
                result_type=SyncReconcileResult,
                task_queue=info.task_queue,
                start_to_close_timeout=timedelta(minutes=10),
                retry_policy=RETRY,
                summary=f"Reconcile {data.legal_entity} {period}",
            )
        workflow.set_current_details(
            f"{result.status}: {p.projects} projects; PSA {p.psa_hours} h ({p.psa_records} day entries); ERP "
            f"{p.erp_time_bill_hours + (p.erp_entity.hours if p.erp_entity else Decimal(0))} h, "
            f"{p.erp_entity.invoices if p.erp_entity else 0} invoices"
            + (f"; reconciliation {result.reconciliation.status}" if result.reconciliation else "")
        )
        return result

    def _merge_erp(self, r: SyncErpResult) -> None:
        self._p.erp_time_bill_hours += r.hours
        self._p.erp_time_bills += r.records

    async def _scheduled(self, data: SourceSyncInput) -> SourceSyncResult:
        """The Schedule's run: the current and the previous month, each under its business id."""
        info = workflow.info()
        result = SourceSyncResult(workflow_id=info.workflow_id, legal_entity=data.legal_entity, status="scheduled")
        current = period_of(workflow.now().date())
        for period in (previous_period(current), current):
            child_id = sync_workflow_id(data.legal_entity, period)
            try:
                child: SourceSyncResult = await workflow.execute_child_workflow(
                    SourceSyncWorkflow.run,
                    data.model_copy(update={"period": period}),
                    id=child_id,
                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                    static_summary=f"Sync {data.legal_entity} {period}",
                )
                result.periods.append(child)
            except WorkflowAlreadyStartedError:
                result.notes.append(f"{child_id} is running already; left alone")
        workflow.set_current_details("; ".join([f"{c.period}: {c.status}" for c in result.periods] + result.notes))
        return result
