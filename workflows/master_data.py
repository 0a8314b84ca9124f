"""Master-data sync: each object family's owner changes carried downstream, batched like
posting (one activity per page of records, never an Action per record).

- `CustomerSyncWorkflow`: CRM accounts -> every ERP instance that holds the customer.
  A daily sweep (a Schedule) reads the accounts modified since the last run's mark (the
  Schedule's last completion result, as the event poll carries its watermark); a CRM
  webhook starts one run for the accounts it names. Both compare before they write, so a
  change seen by both is applied once.
- `ConsultantSyncWorkflow`: PSA consultants -> ERP employees (created before their first
  time posting; the posting page ensures them too).
- `ProjectSyncWorkflow`: PSA projects -> the ERP's project dimension.
- `ConflictResolutionWorkflow`: a person's decision on a `master_data.conflict`, applied.

The workflows keep the cursor and the counts; conflicts live in the hub's exceptions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from contracts import messages
    from contracts.master_data import (
        MAX_CONFLICTS_KEPT,
        ConsultantPageInput,
        ConsultantPageResult,
        ConsultantSyncInput,
        ConsultantSyncProgress,
        ConsultantSyncResult,
        CustomerPageInput,
        CustomerPageResult,
        CustomerSyncInput,
        CustomerSyncProgress,
        CustomerSyncResult,
        ProjectPageInput,
        ProjectPageResult,
        ProjectSyncInput,
        ProjectSyncProgress,
        ProjectSyncResult,
        ResolveConflictInput,
        ResolveConflictResult,
        SweepMark,
        SyncCounts,
    )
    from contracts.retry import PAGE_ATTEMPTS, VENDOR_ATTEMPTS, retry_policy

PAGE_RETRY = retry_policy(PAGE_ATTEMPTS)
PAGE_TIMEOUT = timedelta(minutes=10)


@workflow.defn(name="CustomerSyncWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class CustomerSyncWorkflow:
    @workflow.init
    def __init__(self, data: CustomerSyncInput) -> None:
        self._p = data.carried or CustomerSyncProgress()

    @workflow.query(name=messages.PROGRESS)
    def progress(self) -> CustomerSyncProgress:
        return self._p

    @workflow.run
    async def run(self, data: CustomerSyncInput) -> CustomerSyncResult:
        p = self._p
        wid = workflow.info().workflow_id
        if data.carried is None:
            p.after = data.after or self._last_mark()
        while not p.done:
            what = f"{len(data.account_ids)} changed accounts" if data.account_ids else f"page {p.page}"
            workflow.set_current_details(
                f"{what}: {p.counts.written} customers written, {p.counts.conflicts} conflicts so far"
            )
            result: CustomerPageResult = await workflow.execute_activity(
                "master_data.customer_page",
                CustomerPageInput(
                    run_id=wid, page=p.page, account_ids=data.account_ids, after=p.after, limit=data.page_size
                ),
                result_type=CustomerPageResult,
                task_queue=data.queues.erp,
                start_to_close_timeout=PAGE_TIMEOUT,
                retry_policy=PAGE_RETRY,
                summary=f"Customers page {p.page}: CRM accounts to the ERPs",
            )
            p.counts.add(result.counts)
            p.conflicts.extend(result.conflicts[: max(MAX_CONFLICTS_KEPT - len(p.conflicts), 0)])
            if data.account_ids or result.next_after is None:
                p.done = True
                break
            p.after = result.next_after
            p.page += 1
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(data.model_copy(update={"carried": p}))
        workflow.set_current_details(
            f"done: {p.counts.records} accounts, {p.counts.written} customers written, "
            f"{p.counts.conflicts} conflicts, {p.counts.duplicates} duplicates"
        )
        return CustomerSyncResult(
            workflow_id=wid, mark=p.after, pages=p.page + 1, counts=p.counts, conflicts=p.conflicts
        )

    @staticmethod
    def _last_mark() -> SweepMark | None:
        """The mark of the Schedule's previous run (None: the first run sweeps everything)."""
        if workflow.has_last_completion_result():
            last = workflow.get_last_completion_result(CustomerSyncResult)
            return last.mark if last is not None else None
        return None


@dataclass(frozen=True)
class _PsaSweep:
    """What the PSA sweeps differ by: the page activity, and how a page and the progress read."""

    activity: str
    page_input: type[ConsultantPageInput] | type[ProjectPageInput]
    page_result: type[ConsultantPageResult] | type[ProjectPageResult]
    last_result: type[ConsultantSyncResult] | type[ProjectSyncResult]
    so_far: Callable[[SyncCounts], str]
    summary: str  # per page: {page}, {psa}


CONSULTANTS = _PsaSweep(
    "master_data.consultant_page",
    ConsultantPageInput,
    ConsultantPageResult,
    ConsultantSyncResult,
    lambda counts: f"{counts.created} employees created",
    "Consultants page {page} of PSA {psa}: ERP employees",
)
PROJECTS = _PsaSweep(
    "master_data.project_page",
    ProjectPageInput,
    ProjectPageResult,
    ProjectSyncResult,
    lambda counts: f"{counts.written} ERP projects written",
    "Projects page {page} of PSA {psa}: the ERP project dimension",
)


async def _sweep(
    sweep: _PsaSweep,
    data: ConsultantSyncInput | ProjectSyncInput,
    p: ConsultantSyncProgress | ProjectSyncProgress,
) -> None:
    """Page through the PSA from the mark (the input's, else the Schedule's previous run's; a
    continued run carries its own), one activity per page, continuing as new when Temporal
    suggests it; `p` holds the progress."""
    if data.carried is None:
        p.after = data.after
        if p.after is None and workflow.has_last_completion_result():
            last = workflow.get_last_completion_result(sweep.last_result)
            p.after = last.mark if last is not None else None
    while not p.done:
        workflow.set_current_details(f"page {p.page}: {sweep.so_far(p.counts)} so far")
        result = await workflow.execute_activity(
            sweep.activity,
            sweep.page_input(psa_instance=data.psa_instance, after=p.after, limit=data.page_size),
            result_type=sweep.page_result,
            task_queue=data.queues.erp,
            start_to_close_timeout=PAGE_TIMEOUT,
            retry_policy=PAGE_RETRY,
            summary=sweep.summary.format(page=p.page, psa=data.psa_instance),
        )
        p.counts.add(result.counts)
        if result.next_after is None:
            p.done = True
            break
        p.after = result.next_after
        p.page += 1
        if workflow.info().is_continue_as_new_suggested():
            workflow.continue_as_new(data.model_copy(update={"carried": p}))


@workflow.defn(name="ConsultantSyncWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class ConsultantSyncWorkflow:
    @workflow.init
    def __init__(self, data: ConsultantSyncInput) -> None:
        self._p = data.carried or ConsultantSyncProgress()

    @workflow.query(name=messages.PROGRESS)
    def progress(self) -> ConsultantSyncProgress:
        return self._p

    @workflow.run
    async def run(self, data: ConsultantSyncInput) -> ConsultantSyncResult:
        p = self._p
        await _sweep(CONSULTANTS, data, p)
        workflow.set_current_details(
            f"done: {p.counts.records} consultants, {p.counts.created} employees created, {p.counts.refused} refused"
        )
        return ConsultantSyncResult(
            workflow_id=workflow.info().workflow_id,
            psa_instance=data.psa_instance,
            mark=p.after,
            pages=p.page + 1,
            counts=p.counts,
        )


@workflow.defn(name="ProjectSyncWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class ProjectSyncWorkflow:
    """PSA projects -> the ERP's project dimension (NetSuite jobs, D365 projects), page by page."""

    @workflow.init
    def __init__(self, data: ProjectSyncInput) -> None:
        self._p = data.carried or ProjectSyncProgress()

    @workflow.query(name=messages.PROGRESS)
    def progress(self) -> ProjectSyncProgress:
        return self._p

    @workflow.run
    async def run(self, data: ProjectSyncInput) -> ProjectSyncResult:
        p = self._p
        await _sweep(PROJECTS, data, p)
        workflow.set_current_details(
            f"done: {p.counts.records} projects, {p.counts.written} ERP projects written, {p.counts.refused} refused"
        )
        return ProjectSyncResult(
            workflow_id=workflow.info().workflow_id,
            psa_instance=data.psa_instance,
            mark=p.after,
            pages=p.page + 1,
            counts=p.counts,
        )


@workflow.defn(name="ConflictResolutionWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class ConflictResolutionWorkflow:
    """One per conflict (`master-data-resolve-<exception id>`): a second request for the same
    conflict finds the first instead of writing twice."""

    @workflow.run
    async def run(self, data: ResolveConflictInput) -> ResolveConflictResult:
        workflow.set_current_details(f"exception {data.exception_id}: keep the {data.keep}'s value")
        result: ResolveConflictResult = await workflow.execute_activity(
            "master_data.resolve_conflict",
            data,
            result_type=ResolveConflictResult,
            task_queue=data.queues.erp,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=retry_policy(VENDOR_ATTEMPTS),
            summary=f"Resolve master-data conflict {data.exception_id}: keep the {data.keep}'s value",
        )
        workflow.set_current_details(f"done: {result.field} = {result.value!r} written to {result.written_to}")
        return result
