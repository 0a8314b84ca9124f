"""Fakes for the posting and period-close activities, registered by activity name."""

from __future__ import annotations

from decimal import Decimal

from temporalio import activity

from contracts.erp import LockPeriodInput, LockPeriodResult
from contracts.period_close import (
    CloseWindowInput,
    CloseWindowResult,
    EngagementCloseLine,
    EngagementList,
    FindEngagementsInput,
    ReconcileInput,
    ReconcileResult,
)
from contracts.posting import (
    NotifyEngagementsInput,
    NotifyEngagementsResult,
    PostPageInput,
    PostPageResult,
    ProjectTotals,
    SweepOverdueInput,
    SweepOverdueResult,
)
from domain.model import ExceptionRecord
from domain.money import Money


class FakeBatch:
    def __init__(self, pages: int = 3, engagements: int = 25) -> None:
        self.pages = pages
        self.engagement_ids = [f"engagement-006{i:015d}" for i in range(engagements)]
        self.page_calls: list[PostPageInput] = []
        self.notified: list[NotifyEngagementsInput] = []
        self.windows: list[list[str]] = []
        self.locked: list[LockPeriodInput] = []
        self.swept: list[SweepOverdueInput] = []
        self.reconcile_differences = 0  # > 0: the close's reconciliation finds that many

    def activities(self) -> list[object]:
        @activity.defn(name="posting.post_page")
        async def post_page(data: PostPageInput) -> PostPageResult:
            self.page_calls.append(data)
            n = data.page
            exceptions = (
                [
                    ExceptionRecord(
                        exception_id=f"exc:posting:a0T{n}",
                        code="USER_ERROR",
                        message="poison",
                        source_id=f"a0T{n}",
                        raised_on=data.posting_date,
                    )
                ]
                if n == 1
                else []
            )
            return PostPageResult(
                next_project=f"a0P{n:03d}" if n + 1 < self.pages else None,
                projects=50,
                time_entries=100,
                expenses=2,
                hours=Decimal(800),
                erp_records=101,
                exceptions=exceptions,
                exceptions_total=len(exceptions),
                worker=f"w{n % 2}",
                totals=[
                    ProjectTotals(
                        project_id="a0P-shared",
                        opportunity_id="006A",
                        time_entries=100,
                        hours=Decimal(800),
                        expenses=2,
                        expense_amounts={"USD": Decimal(50)},
                    )
                ],
            )

        @activity.defn(name="posting.notify_engagements")
        async def notify(data: NotifyEngagementsInput) -> NotifyEngagementsResult:
            self.notified.append(data)
            return NotifyEngagementsResult(notified=len(data.totals), not_running=0)

        @activity.defn(name="close.find_engagements")
        async def find(data: FindEngagementsInput) -> EngagementList:
            return EngagementList(workflow_ids=self.engagement_ids)

        @activity.defn(name="close.close_engagements")
        async def close(data: CloseWindowInput) -> CloseWindowResult:
            self.windows.append(data.workflow_ids)
            usd = "USD"
            return CloseWindowResult(
                lines=[
                    EngagementCloseLine(
                        workflow_id=w,
                        ok=not w.endswith("7"),
                        invoices=1,
                        billed=Money(amount=Decimal(100), currency=usd),
                        recognized=Money(amount=Decimal(80), currency=usd),
                        deferred=Money(amount=Decimal(20), currency=usd),
                        unbilled=Money(amount=Decimal(0), currency=usd),
                        error=None if not w.endswith("7") else "boom",
                    )
                    for w in data.workflow_ids
                ]
            )

        @activity.defn(name="close.reconcile")
        async def reconcile(data: ReconcileInput) -> ReconcileResult:
            if self.reconcile_differences:
                return ReconcileResult(status="differences", differences=self.reconcile_differences, run_id=1)
            return ReconcileResult(status="clean", run_id=1)

        @activity.defn(name="erp.lock_period")
        async def lock(data: LockPeriodInput) -> LockPeriodResult:
            self.locked.append(data)
            return LockPeriodResult(locked_now=len(self.locked) == 1)

        @activity.defn(name="receivables.sweep_overdue")
        async def sweep(data: SweepOverdueInput) -> SweepOverdueResult:
            self.swept.append(data)
            return SweepOverdueResult(invoices=1, engagements_notified=1)

        return [post_page, notify, find, close, reconcile, lock, sweep]
