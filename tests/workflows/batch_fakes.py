"""Fakes for the posting and period-close activities, registered by activity name."""

from __future__ import annotations

from decimal import Decimal

from temporalio import activity

from contracts.engagement import CloseOutbox
from contracts.erp import (
    LockPeriodInput,
    LockPeriodResult,
    OpenItemsInput,
    OpenItemsResult,
    PostDocumentsInput,
    PostDocumentsWindowInput,
    ReceiptsWindowInput,
    ReceiptsWindowResult,
    WindowWriteResult,
)
from contracts.period_close import (
    ClosedEngagement,
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
)
from contracts.posting import (
    NotifyOverdueInput,
    NotifyOverdueResult,
    PostPageInput,
    PostPageResult,
    ProjectTotals,
)
from contracts.psa import DeliveriesResult, ReadDeliveriesInput
from domain.billing import Delivery
from domain.deal import BillingModel, ContractLine, RevenueMethod
from domain.model import ExceptionRecord
from domain.money import Money
from domain.system_records import OpenItem


def _line() -> ContractLine:
    return ContractLine(
        line_id="L1",
        name="Fixed fee",
        billing_model=BillingModel.FIXED_FEE,
        revenue_method=RevenueMethod.MILESTONE,
        amount=Money(amount=Decimal(1000), currency="USD"),
    )


class FakeBatch:
    """`batched` engagements (every third) carry the batch memo: the window reads their
    delivery and receivables in bulk and writes what their close hands back; the ERP
    refuses the documents of ...03, which goes back to its engagement."""

    def __init__(self, pages: int = 3, engagements: int = 25) -> None:
        self.pages = pages
        self.engagement_ids = [f"engagement-006{i:015d}" for i in range(engagements)]
        self.batched = {w for i, w in enumerate(self.engagement_ids) if i % 3 == 0}
        self.reads: list[str] = []  # activities of the window reads, in order
        self.writes: dict[str, list[str]] = {}  # write activity -> workflow ids written
        self.handed_back: list[str] = []
        self.page_calls: list[PostPageInput] = []
        self.windows: list[list[str]] = []
        self.locked: list[LockPeriodInput] = []
        self.reconcile_differences = 0  # > 0: the close's reconciliation finds that many
        self.swept: list[OpenItemsInput] = []
        self.overdue_notices: list[NotifyOverdueInput] = []

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

        @activity.defn(name="close.find_engagements")
        async def find(data: FindEngagementsInput) -> EngagementList:
            start = int(data.page_token or 0)
            end = start + data.page_size
            return EngagementList(
                targets=[self._target(w) for w in self.engagement_ids[start:end]],
                next_page_token=str(end) if end < len(self.engagement_ids) else None,
            )

        @activity.defn(name="close.close_engagements")
        async def close(data: CloseWindowInput) -> CloseWindowResult:
            self.windows.append(sorted(data.requests))
            usd = "USD"
            return CloseWindowResult(
                closed=[
                    ClosedEngagement(
                        outbox=CloseOutbox(workflow_id=w, erp=self._documents()) if data.requests[w].outbox else None,
                        line=EngagementCloseLine(
                            workflow_id=w,
                            ok=not w.endswith("7"),
                            invoices=1,
                            billed=Money(amount=Decimal(100), currency=usd),
                            recognized=Money(amount=Decimal(80), currency=usd),
                            deferred=Money(amount=Decimal(20), currency=usd),
                            unbilled=Money(amount=Decimal(0), currency=usd),
                            error=None if not w.endswith("7") else "boom",
                            batched=data.requests[w].outbox,
                        ),
                    )
                    for w in sorted(data.requests)
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

        @activity.defn(name="erp.open_items_due")
        async def open_items(data: OpenItemsInput) -> OpenItemsResult:
            if data.opportunity_ids is not None:
                self.reads.append("erp.open_items_due")
                return OpenItemsResult()
            self.swept.append(data)
            item = OpenItem(
                invoice_id="INV-1",
                erp_invoice_id="101",
                opportunity_id="006A",
                due_date=data.due_to,
                amount_remaining=Money(amount=Decimal(500), currency="USD"),
            )
            return OpenItemsResult(items=[item])

        @activity.defn(name="close.notify_overdue")
        async def notify_overdue(data: NotifyOverdueInput) -> NotifyOverdueResult:
            self.overdue_notices.append(data)
            return NotifyOverdueResult(engagements_notified=len(data.invoices))

        @activity.defn(name="psa.read_deliveries")
        async def read_deliveries(data: ReadDeliveriesInput) -> DeliveriesResult:
            self.reads.append("psa.read_deliveries")
            return DeliveriesResult(deliveries={p: Delivery() for p in data.projects})

        @activity.defn(name="erp.receipts_window")
        async def receipts(data: ReceiptsWindowInput) -> ReceiptsWindowResult:
            self.reads.append("erp.receipts_window")
            return ReceiptsWindowResult(receipts={o: [] for o in data.customers})

        @activity.defn(name="erp.post_documents_window")
        async def post_documents(data: PostDocumentsWindowInput) -> WindowWriteResult:
            self.writes.setdefault("erp", []).extend(sorted(data.documents))
            refused = {w: "VendorValidationError: refused" for w in data.documents if w.endswith("03")}
            return WindowWriteResult(refused=refused)

        @activity.defn(name="close.hand_back")
        async def hand_back(data: HandBackInput) -> HandBackResult:
            self.handed_back += [f.outbox.workflow_id for f in data.failures]
            return HandBackResult(signalled=len(data.failures))

        return [
            post_page,
            find,
            close,
            reconcile,
            lock,
            open_items,
            notify_overdue,
            read_deliveries,
            receipts,
            post_documents,
            hand_back,
        ]

    def _target(self, workflow_id: str) -> EngagementTarget:
        if workflow_id not in self.batched:
            return EngagementTarget(workflow_id=workflow_id)
        return EngagementTarget(
            workflow_id=workflow_id,
            legal_entity="US01",
            project_id=f"a0P-{workflow_id[-3:]}",
            erp_customer_id="C1",
            lines=[_line()],
        )

    @staticmethod
    def _documents() -> PostDocumentsInput:
        return PostDocumentsInput(legal_entity="US01", erp_customer_id="C1", sales_order_id="SO1")
