"""Fakes for the posting and period-close activities, registered by activity name."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import cached_property

from pydantic import BaseModel
from temporalio import activity

from contracts.crm import BillingStatusWindowInput, WriteBillingStatusInput
from contracts.engagement import CloseOutbox, OutboxFailure
from contracts.erp import (
    LockPeriodInput,
    LockPeriodResult,
    OpenItemsInput,
    OpenItemsResult,
    PostDocumentsInput,
    PostDocumentsWindowInput,
    ReceivablesWindowInput,
    ReceivablesWindowResult,
    WindowWriteResult,
)
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
)
from contracts.posting import (
    NotifyOverdueInput,
    NotifyOverdueResult,
    PostPageInput,
    PostPageResult,
)
from contracts.psa import DeliveriesResult, FeedbackInput, FeedbackWindowInput, ReadDeliveriesInput
from contracts.reporting import RecordEngagementInput, RecordEngagementsInput
from contracts.window_stage import DELIVERY, OUTBOX, StagedWindow
from domain.billing import Delivery
from domain.bookings import booking_movements
from domain.deal import BillingModel, ContractLine, DealRules, Engagement, RevenueMethod, validate_deal
from domain.model import ExceptionRecord, TimeEntry
from domain.money import Money
from domain.system_records import BillingStatus, OpenItem
from tests.workflows.scenario import reference_opportunity


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

    def __init__(self, pages: int = 3, engagements: int = 25, every_system: bool = False) -> None:
        self.pages = pages
        # True: each outbox also carries CRM and PSA feedback and the hub's facts (the
        # reference deal), as a real close's do, and the window writes all four
        self.every_system = every_system
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
        self.lines: dict[str, EngagementCloseLine] = {}  # what the real activity writes to the hub's report
        self.report_ids: set[str] = set()
        # what each window reports it weighed per engagement (None: measured, as the real activity does)
        self.payload_bytes_per_engagement: int | None = 0
        # JSON bytes of time entries in each project's delivery (a real month's weighs kilobytes)
        self.delivery_bytes = 0
        self.hub_facts = (
            True  # every_system outboxes carry the hub's facts (False: no hub, as a real close without one)
        )
        # the hub's window stage (reporting/close_stage.py): (report id, window, part, key) -> item
        self.stage: dict[tuple[str, int, str, str], BaseModel] = {}

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
            self.report_ids.add(data.report_id)
            requests = dict(data.requests)
            for w, project in data.staged_projects.items():
                assert data.stage is not None
                delivery = self.stage[(data.stage.report_id, data.stage.window, DELIVERY, project)]
                requests[w] = requests[w].model_copy(update={"delivery": delivery})
            assert all(r.delivery is not None for r in requests.values() if r.outbox)
            usd = "USD"
            tally = CloseTally(updates_sent=len(requests), lines_in_hub=True)
            outboxes = []
            for w in sorted(requests):
                ok = not w.endswith("7")
                line = EngagementCloseLine(
                    workflow_id=w,
                    ok=ok,
                    invoices=1,
                    billed=Money(amount=Decimal(100), currency=usd),
                    recognized=Money(amount=Decimal(80), currency=usd),
                    deferred=Money(amount=Decimal(20), currency=usd),
                    unbilled=Money(amount=Decimal(0), currency=usd),
                    error=None if ok else "boom",
                    batched=requests[w].outbox,
                    exceptions=[] if ok else [self._not_closed(w)],
                )
                tally.count(line)
                self.lines[w] = line
                if requests[w].outbox:
                    outboxes.append(self._outbox(w))
            result = CloseWindowResult(outboxes=outboxes, tally=tally)
            if data.stage is not None:
                for o in outboxes:
                    self.stage[(data.stage.report_id, data.stage.window, OUTBOX, o.workflow_id)] = o
                systems = ("erp", "crm", "psa", "hub")
                staged = {s: [o.workflow_id for o in outboxes if getattr(o, s) is not None] for s in systems}
                result = CloseWindowResult(tally=tally, staged={s: ids for s, ids in staged.items() if ids})
            measured = max(len(data.model_dump_json()), len(result.model_dump_json())) // max(len(data.requests), 1)
            tally.payload_bytes_per_engagement = (
                measured if self.payload_bytes_per_engagement is None else self.payload_bytes_per_engagement
            )
            return result

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
            found = {p: self._delivery(p) for p in data.projects}
            if data.stage is None:
                return DeliveriesResult(deliveries=found)
            for project, delivery in found.items():
                self.stage[(data.stage.report_id, data.stage.window, DELIVERY, project)] = delivery
            return DeliveriesResult(staged=sorted(found))

        @activity.defn(name="erp.receivables_window")
        async def receivables(data: ReceivablesWindowInput) -> ReceivablesWindowResult:
            self.reads.append("erp.receivables_window")
            return ReceivablesWindowResult(receipts={o: [] for o in data.customers})

        @activity.defn(name="erp.post_documents_window")
        async def post_documents(data: PostDocumentsWindowInput) -> WindowWriteResult:
            written = sorted([*data.documents, *self._staged(data.stage, data.staged, "erp")])
            self.writes.setdefault("erp", []).extend(written)
            refused = {w: "VendorValidationError: refused" for w in written if w.endswith("03")}
            return WindowWriteResult(refused=refused)

        @activity.defn(name="crm.write_billing_status_window")
        async def crm_window(data: BillingStatusWindowInput) -> WindowWriteResult:
            self.writes.setdefault("crm", []).extend(
                sorted([*data.statuses, *self._staged(data.stage, data.staged, "crm")])
            )
            return WindowWriteResult()

        @activity.defn(name="psa.feedback_window")
        async def psa_window(data: FeedbackWindowInput) -> WindowWriteResult:
            self.writes.setdefault("psa", []).extend(
                sorted([*data.feedback, *self._staged(data.stage, data.staged, "psa")])
            )
            return WindowWriteResult()

        @activity.defn(name="reporting.record_engagements")
        async def hub_window(data: RecordEngagementsInput) -> WindowWriteResult:
            self.writes.setdefault("hub", []).extend(
                sorted([*data.records, *self._staged(data.stage, data.staged, "hub")])
            )
            return WindowWriteResult()

        @activity.defn(name="close.hand_back")
        async def hand_back(data: HandBackInput) -> HandBackResult:
            failures = list(data.failures)
            for w, error in sorted(data.refused.items()):
                assert data.stage is not None
                outbox = self.stage[(data.stage.report_id, data.stage.window, OUTBOX, w)]
                assert isinstance(outbox, CloseOutbox)
                failures.append(OutboxFailure(period=data.period or "", outbox=outbox, error=error))
            self.handed_back += [f.outbox.workflow_id for f in failures]
            for f in failures:
                self.lines[f.outbox.workflow_id].outbox_error = f.error
            return HandBackResult(signalled=len(failures))

        return [
            post_page,
            find,
            close,
            reconcile,
            lock,
            open_items,
            notify_overdue,
            read_deliveries,
            receivables,
            post_documents,
            hand_back,
            crm_window,
            psa_window,
            hub_window,
        ]

    def _staged(self, where: StagedWindow | None, ids: list[str], system: str) -> list[str]:
        """The staged engagements whose outbox holds a write for `system`, as the real writers read them."""
        if where is None:
            return []
        found = [self.stage.get((where.report_id, where.window, OUTBOX, w)) for w in ids]
        return [o.workflow_id for o in found if isinstance(o, CloseOutbox) and getattr(o, system) is not None]

    def _delivery(self, project_id: str) -> Delivery:
        def entry(n: int) -> TimeEntry:
            return TimeEntry(
                entry_id=f"{project_id}-TC{n:04d}",
                resource_id="R1",
                project_id=project_id,
                contract_line_id="L1",
                work_date=date(2026, 11, 2 + n % 20),
                hours=Decimal(8),
                role="Senior Consultant",
                approved_on=date(2026, 11, 27),
            )

        count = -(-self.delivery_bytes // len(entry(0).model_dump_json()))  # rounded up
        return Delivery(time_entries=[entry(n) for n in range(count)])

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

    def _outbox(self, workflow_id: str) -> CloseOutbox:
        if not self.every_system:
            return CloseOutbox(workflow_id=workflow_id, erp=self._documents())
        opportunity = workflow_id.removeprefix("engagement-")
        usd = Money(amount=Decimal(100), currency="USD")
        status = BillingStatus(
            status="Billed", billed=usd, collected=usd, overdue=usd, unbilled_wip=usd, as_of=date(2026, 11, 30)
        )
        return CloseOutbox(
            workflow_id=workflow_id,
            erp=self._documents(),
            crm=WriteBillingStatusInput(opportunity_id=opportunity, status=status),
            psa=FeedbackInput(project_id=f"a0P-{workflow_id[-3:]}", status=status, legal_entity="US01"),
            hub=RecordEngagementInput(
                workflow_id=workflow_id,
                engagement=self._engagement,
                bookings=booking_movements(self._engagement, []),
                project_id=f"a0P-{workflow_id[-3:]}",
                contract_id="SO1",
            )
            if self.hub_facts
            else None,
        )

    @cached_property
    def _engagement(self) -> Engagement:
        found = validate_deal(reference_opportunity(), DealRules(legal_entities={"UK01": "GBP"}))
        assert isinstance(found, Engagement)
        return found

    @staticmethod
    def _not_closed(workflow_id: str) -> ExceptionRecord:
        return ExceptionRecord(
            exception_id=f"exc:close:{workflow_id}",
            code=f"ENGAGEMENT_NOT_CLOSED:{workflow_id}",
            message="boom",
            raised_on=date(2026, 11, 30),
        )

    @staticmethod
    def _documents() -> PostDocumentsInput:
        return PostDocumentsInput(legal_entity="US01", erp_customer_id="C1", sales_order_id="SO1")
