"""Fakes for the source sync activities, registered by activity name (workflow tests and the
replay recorder)."""

from __future__ import annotations

from decimal import Decimal

from temporalio import activity

from contracts.source_sync import (
    SyncCommitInput,
    SyncCommitResult,
    SyncCrmInput,
    SyncCrmResult,
    SyncErpEntityInput,
    SyncErpResult,
    SyncErpTimePageInput,
    SyncPsaPageInput,
    SyncPsaPageResult,
    SyncReconcileInput,
    SyncReconcileResult,
)


class FakeSync:
    """`projects` PSA projects in Id order; every project has 8 PSA hours and 8 ERP hours."""

    def __init__(self, projects: int = 5, hub: bool = True) -> None:
        self.project_ids = [f"a0P{i:03d}" for i in range(projects)]
        self.hub = hub
        self.psa_calls: list[SyncPsaPageInput] = []
        self.erp_pages: list[SyncErpTimePageInput] = []
        self.entity_calls: list[SyncErpEntityInput] = []
        self.commits: list[SyncCommitInput] = []
        self.reconciled: list[SyncReconcileInput] = []
        self.crm_calls: list[SyncCrmInput] = []

    def activities(self) -> list[object]:
        @activity.defn(name="sync.psa_page")
        async def psa_page(data: SyncPsaPageInput) -> SyncPsaPageResult:
            self.psa_calls.append(data)
            if not self.hub:
                return SyncPsaPageResult(skipped=True)
            page = [p for p in self.project_ids if p > data.after_project][: data.projects_per_page]
            return SyncPsaPageResult(
                project_ids=page,
                next_project=page[-1] if len(page) == data.projects_per_page else None,
                projects_with_time=len(page),
                hours=Decimal(8) * len(page),
                time_amount=Decimal(1600) * len(page),
                records=len(page),
            )

        @activity.defn(name="sync.erp_time_page")
        async def erp_time_page(data: SyncErpTimePageInput) -> SyncErpResult:
            self.erp_pages.append(data)
            return SyncErpResult(
                projects=len(data.project_ids), hours=Decimal(8) * len(data.project_ids), records=len(data.project_ids)
            )

        @activity.defn(name="sync.erp_entity")
        async def erp_entity(data: SyncErpEntityInput) -> SyncErpResult:
            self.entity_calls.append(data)
            if not self.hub:
                return SyncErpResult(skipped=True)
            return SyncErpResult(projects=2, journals=1, invoices=2, invoice_totals={"USD": Decimal("2200.50")})

        @activity.defn(name="sync.commit")
        async def commit(data: SyncCommitInput) -> SyncCommitResult:
            self.commits.append(data)
            return SyncCommitResult(projects={"psa": len(self.project_ids), "erp": len(self.project_ids)})

        @activity.defn(name="sync.reconcile")
        async def reconcile(data: SyncReconcileInput) -> SyncReconcileResult:
            self.reconciled.append(data)
            return SyncReconcileResult(status="clean", run_id=7, projects_checked=len(self.project_ids))

        @activity.defn(name="sync.crm_bookings")
        async def crm_bookings(data: SyncCrmInput) -> SyncCrmResult:
            self.crm_calls.append(data)
            return SyncCrmResult(projects=1, booking_totals={"USD": Decimal("192000")}, unlinked=["006X"])

        return [psa_page, erp_time_page, erp_entity, commit, reconcile, crm_bookings]
