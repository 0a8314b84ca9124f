"""In-memory stand-ins for the CRM, PSA and ERP activities, registered by activity name.

They record every call, so tests can assert what was (and was not) written downstream.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from temporalio import activity
from temporalio.exceptions import ApplicationError

from contracts.config import DealRulesInput, FinanceConfig, FinanceConfigInput
from contracts.crm import (
    Ack,
    NotifyInput,
    ReadOpportunityInput,
    SetContractValueInput,
    WriteBillingStatusInput,
    WriteLinksInput,
    WriteLinksResult,
)
from contracts.engagement import CloseOutbox, PaymentNotice
from contracts.erp import (
    CancelSalesOrderInput,
    CancelSalesOrderResult,
    CloseSalesOrderInput,
    CreateSalesOrderInput,
    CreateSalesOrderResult,
    ErpAck,
    InvoiceStatusInput,
    PostDocumentsInput,
    PostDocumentsResult,
    ReceiptsInput,
    ReceiptsResult,
    ReverseJournalInput,
    UpdateSalesOrderInput,
    UpsertCustomerInput,
    UpsertCustomerResult,
    VoidCreditMemoInput,
)
from contracts.fx import FxRatesInput, FxRatesResult
from contracts.psa import (
    ApplyChangeInput,
    CreateProjectInput,
    FeedbackInput,
    FeedbackResult,
    PsaAck,
    ReadDeliveryInput,
    RemoveProjectInput,
    RemoveProjectResult,
    SetStageInput,
)
from contracts.reporting import (
    ExceptionRef,
    RaiseExceptionInput,
    RecordEngagementInput,
    RecordEngagementResult,
    ResolveExceptionInput,
    RetryingExceptionInput,
)
from domain.billing import Delivery
from domain.deal import AccountNode, DealRules, OpportunityLineSnapshot, OpportunitySnapshot
from domain.fx import ChosenRate, FxLookup, FxRateTable, MissingRateError
from domain.model import CreditMemo, Invoice, JournalEntry
from domain.money import Money, sum_money
from domain.reference_data import default_fx_rates, default_legal_entities
from domain.system_records import BillingStatus, InvoiceStatus, Notification, ProjectRef, Receipt


def good_opportunity(opportunity_id: str = "006000000000000AAA") -> OpportunitySnapshot:
    return OpportunitySnapshot(
        opportunity_id=opportunity_id,
        name="Acme ERP rollout",
        stage="Closed Won",
        amount=Decimal("150000.00"),
        currency="USD",
        close_date="2026-11-02",
        legal_entity="US01",
        billing_terms="Net 30",
        service_package="IMPL-STD",
        delivery_region="NA",
        accounts=[
            AccountNode(account_id="001000000000001AAA", name="Acme Corp US", parent_id="001000000000000AAA"),
            AccountNode(account_id="001000000000000AAA", name="Acme Holdings"),
        ],
        lines=[
            OpportunityLineSnapshot(
                line_id="00k000000000001AAA",
                name="Implementation",
                total_price=Decimal("100000"),
                billing_model="fixed_fee",
                revenue_method="cost_to_cost",
            ),
            OpportunityLineSnapshot(
                line_id="00k000000000002AAA",
                name="Advisory",
                total_price=Decimal("50000"),
                billing_model="time_and_materials",
                role="Senior Consultant",
                hours=Decimal("200"),
            ),
        ],
    )


class FakeSystems:
    def __init__(self, opportunity: OpportunitySnapshot) -> None:
        self.opportunity = opportunity
        self.calls: Counter[str] = Counter()
        self.fail_step: str | None = None  # activity name that fails for good
        self.fail_times: int | None = None  # fail only the first N calls (None: every call)
        self.projects: set[str] = set()
        self.orders: dict[str, bool] = {}  # external id -> open
        self.links: dict[str, WriteLinksInput] = {}
        # Delivery facts the PSA holds; tests replace it as the months go by.
        self.delivery = Delivery()
        self.invoices: dict[str, Invoice] = {}
        self.credit_memos: dict[str, CreditMemo] = {}  # open (not voided) ones
        self.journals: dict[str, JournalEntry] = {}  # posted, not reversed
        self.crm_status: BillingStatus | None = None
        self.psa_status: BillingStatus | None = None
        self.billed_entries: set[str] = set()
        self.psa_budget: Money | None = None
        self.order_lines: list = []
        self.crm_contract_value: Money | None = None
        self.notifications: list[Notification] = []
        self.project_stage: str | None = None
        self.order_closed = False
        self.hub: list[str] = []  # every document id the hub was asked to record, in order
        self.hub_business_exceptions: list[tuple[str, str]] = []  # (code, severity) sent to the hub
        self.psa_milestone_amounts: dict[str, Money] = {}  # the last amendment's PSA milestone amounts
        self.hub_exceptions: dict[int, RaiseExceptionInput] = {}  # incident -> what was raised
        self.hub_resolved: list[int] = []
        self.hub_retrying: list[int] = []  # incidents a person resumed (retry or revalidate)
        # Receipts the ERP holds (cash applied to d2r invoices), as the month-end batch reads them.
        self.erp_payments: list[PaymentNotice] = []
        self.reported_overdue: set[str] = set()
        # The hub's FX rates (the ERPs' synced ones); tests put ERP rates here that differ
        # from the reference file to see which the engagement converts at.
        self.hub_rates = FxRateTable(rates=list(default_fx_rates().rates), pivot="USD")
        self.rates_asked: list[FxLookup] = []

    def _maybe_fail(self, name: str) -> None:
        self.calls[name] += 1
        if self.fail_step == name and (self.fail_times is None or self.calls[name] <= self.fail_times):
            raise ApplicationError(f"{name} refused", type="VendorValidationError", non_retryable=True)

    def activities(self) -> list:
        fake = self

        @activity.defn(name="config.deal_rules")
        async def deal_rules(data: DealRulesInput) -> DealRules:
            return DealRules(legal_entities={"US01": "USD", "UK01": "GBP", "JP01": "JPY"})

        @activity.defn(name="crm.read_opportunity")
        async def read_opportunity(data: ReadOpportunityInput) -> OpportunitySnapshot:
            fake._maybe_fail("crm.read_opportunity")
            return fake.opportunity

        @activity.defn(name="crm.write_links")
        async def write_links(data: WriteLinksInput) -> WriteLinksResult:
            fake._maybe_fail("crm.write_links" if data.project_id else "crm.clear_links")
            fake.links[data.opportunity_id] = data
            return WriteLinksResult(opportunity_id=data.opportunity_id, status=data.status)

        @activity.defn(name="erp.upsert_customer")
        async def upsert_customer(data: UpsertCustomerInput) -> UpsertCustomerResult:
            fake._maybe_fail("erp.upsert_customer")
            return UpsertCustomerResult(erp_customer_id="C-" + data.engagement.customer.customer_id[-4:])

        @activity.defn(name="psa.create_project")
        async def create_project(data: CreateProjectInput) -> ProjectRef:
            fake._maybe_fail("psa.create_project")
            fake.projects.add(data.external_id)
            return ProjectRef(project_id="a0P" + data.external_id[-6:])

        @activity.defn(name="psa.remove_project")
        async def remove_project(data: RemoveProjectInput) -> RemoveProjectResult:
            fake.calls["psa.remove_project"] += 1
            existed = data.external_id in fake.projects
            fake.projects.discard(data.external_id)
            return RemoveProjectResult(removed=existed)

        @activity.defn(name="erp.create_sales_order")
        async def create_sales_order(data: CreateSalesOrderInput) -> CreateSalesOrderResult:
            fake._maybe_fail("erp.create_sales_order")
            fake.orders[data.external_id] = True
            return CreateSalesOrderResult(sales_order_id="SO-1")

        @activity.defn(name="erp.cancel_sales_order")
        async def cancel_sales_order(data: CancelSalesOrderInput) -> CancelSalesOrderResult:
            fake.calls["erp.cancel_sales_order"] += 1
            was_open = fake.orders.get(data.external_id, False)
            if data.external_id in fake.orders:
                fake.orders[data.external_id] = False
            return CancelSalesOrderResult(cancelled=was_open)

        @activity.defn(name="config.finance")
        async def finance(data: FinanceConfigInput) -> FinanceConfig:
            return FinanceConfig(legal_entity=default_legal_entities()[data.legal_entity])

        @activity.defn(name="psa.read_delivery")
        async def read_delivery(data: ReadDeliveryInput) -> Delivery:
            fake._maybe_fail("psa.read_delivery")
            # The PSA holds entries under the project it created for this engagement.
            d = fake.delivery
            return d.model_copy(
                update={
                    "time_entries": [e.model_copy(update={"project_id": data.project_id}) for e in d.time_entries],
                    "expenses": [e.model_copy(update={"project_id": data.project_id}) for e in d.expenses],
                }
            )

        @activity.defn(name="erp.post_documents")
        async def post_documents(data: PostDocumentsInput) -> PostDocumentsResult:
            fake._maybe_fail("erp.post_documents.memo" if data.credit_memos else "erp.post_documents")
            for invoice in data.invoices:
                fake.invoices[invoice.invoice_id] = invoice
            for memo in data.credit_memos:
                fake.credit_memos[memo.credit_memo_id] = memo
            for journal in data.journals:
                fake.journals[journal.journal_entry_id] = journal
            return PostDocumentsResult(
                invoices={i.invoice_id: f"INV-{len(fake.invoices)}" for i in data.invoices},
                credit_memos={m.credit_memo_id: f"CM-{len(fake.credit_memos)}" for m in data.credit_memos},
                journals={j.journal_entry_id: f"JE-{len(fake.journals)}" for j in data.journals},
            )

        @activity.defn(name="erp.void_credit_memo")
        async def void_credit_memo(data: VoidCreditMemoInput) -> ErpAck:
            fake.calls["erp.void_credit_memo"] += 1
            return ErpAck(done=fake.credit_memos.pop(data.credit_memo_id, None) is not None)

        @activity.defn(name="erp.reverse_journal")
        async def reverse_journal(data: ReverseJournalInput) -> ErpAck:
            fake.calls["erp.reverse_journal"] += 1
            return ErpAck(done=fake.journals.pop(data.journal_entry_id, None) is not None)

        @activity.defn(name="erp.update_sales_order")
        async def update_sales_order(data: UpdateSalesOrderInput) -> ErpAck:
            fake._maybe_fail("erp.update_sales_order")
            fake.order_lines = data.lines
            return ErpAck()

        @activity.defn(name="erp.close_sales_order")
        async def close_sales_order(data: CloseSalesOrderInput) -> ErpAck:
            fake._maybe_fail("erp.close_sales_order")
            fake.order_closed = True
            return ErpAck()

        @activity.defn(name="crm.write_billing_status")
        async def write_billing_status(data: WriteBillingStatusInput) -> Ack:
            fake._maybe_fail("crm.write_billing_status")
            fake.crm_status = data.status
            return Ack()

        @activity.defn(name="crm.set_contract_value")
        async def set_contract_value(data: SetContractValueInput) -> Ack:
            fake._maybe_fail("crm.set_contract_value" if not data.reason.startswith("undo") else "crm.undo")
            fake.crm_contract_value = data.amount
            return Ack()

        @activity.defn(name="crm.notify")
        async def notify(data: NotifyInput) -> Ack:
            fake.calls["crm.notify"] += 1
            fake.notifications.append(data.notification)
            return Ack()

        @activity.defn(name="psa.feedback")
        async def feedback(data: FeedbackInput) -> FeedbackResult:
            fake._maybe_fail("psa.feedback.release" if data.mark and not data.mark.billed else "psa.feedback")
            if data.status is not None:
                fake.psa_status = data.status
            ids = [*data.mark.time_entry_ids, *data.mark.expense_ids] if data.mark else []
            for entry in ids:
                if data.mark and data.mark.billed:
                    fake.billed_entries.add(entry)
                else:
                    fake.billed_entries.discard(entry)
            return FeedbackResult(entries_updated=len(ids))

        @activity.defn(name="psa.apply_change")
        async def apply_change(data: ApplyChangeInput) -> PsaAck:
            fake._maybe_fail("psa.apply_change" if not data.change.change_id.endswith(":undo") else "psa.undo")
            fake.psa_budget = data.change.budget
            fake.psa_milestone_amounts = dict(data.change.milestone_amounts)
            return PsaAck()

        @activity.defn(name="psa.set_stage")
        async def set_stage(data: SetStageInput) -> PsaAck:
            fake._maybe_fail("psa.set_stage")
            fake.project_stage = data.stage
            return PsaAck()

        @activity.defn(name="erp.invoice_status")
        async def invoice_status(data: InvoiceStatusInput) -> InvoiceStatus | None:
            fake.calls["erp.invoice_status"] += 1
            invoice = fake.invoices.get(data.invoice_id)
            if invoice is None:
                return None
            paid = sum_money((p.amount for p in fake.erp_payments if p.invoice_id == data.invoice_id), invoice.currency)
            credited = sum_money(
                (m.total for m in fake.credit_memos.values() if m.invoice_id == data.invoice_id), invoice.currency
            )
            remaining = invoice.total - paid - credited
            return InvoiceStatus(
                invoice_id=data.invoice_id,
                erp_invoice_id=f"ERP-{data.invoice_id}",
                status="Paid In Full" if not remaining.is_positive() else "Open",
                amount_paid=paid,
                amount_remaining=remaining,
            )

        @activity.defn(name="erp.receipts")
        async def receipts(data: ReceiptsInput) -> ReceiptsResult:
            fake.calls["erp.receipts"] += 1
            return ReceiptsResult(
                receipts=[
                    Receipt(
                        payment_id=p.payment_id,
                        invoice_id=p.invoice_id,
                        erp_invoice_id=f"ERP-{p.invoice_id}",
                        amount=p.amount,
                        received_on=p.received_on,
                    )
                    for p in fake.erp_payments
                    if data.since <= p.received_on <= data.through
                ]
            )

        @activity.defn(name="reporting.record_engagement")
        async def record_engagement(data: RecordEngagementInput) -> RecordEngagementResult:
            fake.hub += [
                *(i.invoice_id for i in data.invoices),
                *(c.credit_memo_id for c in data.credit_memos),
                *(p.payment_id for p in data.payments),
                *(r.revenue_entry_id for r in data.revenue_entries),
            ]
            fake.hub_business_exceptions += [(x.code, x.severity.value) for x in data.exceptions]
            return RecordEngagementResult(written={"invoices": len(data.invoices)})

        @activity.defn(name="fx.rates_on")
        async def rates_on(data: FxRatesInput) -> FxRatesResult:
            fake._maybe_fail("fx.rates_on")
            fake.rates_asked += data.conversions
            found = FxRatesResult()
            for c in data.conversions:
                try:
                    rate, rate_date, via = fake.hub_rates.lookup(c.base, c.quote, c.on)
                except MissingRateError:
                    found.missing.append(c)
                    continue
                found.rates.append(
                    ChosenRate(**c.model_dump(), rate=rate, rate_date=rate_date, via=via, source="netsuite:fake")
                )
            return found

        @activity.defn(name="reporting.raise_exception")
        async def raise_exception(data: RaiseExceptionInput) -> ExceptionRef:
            fake.hub_exceptions[data.incident] = data
            return ExceptionRef(exception_id=data.incident)

        @activity.defn(name="reporting.exception_retrying")
        async def exception_retrying(data: RetryingExceptionInput) -> ExceptionRef:
            fake.hub_retrying.append(data.incident)
            return ExceptionRef(exception_id=data.incident)

        @activity.defn(name="reporting.resolve_exception")
        async def resolve_exception(data: ResolveExceptionInput) -> ExceptionRef:
            fake.hub_resolved.append(data.incident)
            return ExceptionRef(exception_id=data.incident)

        return [
            rates_on,
            raise_exception,
            exception_retrying,
            resolve_exception,
            record_engagement,
            deal_rules,
            read_opportunity,
            write_links,
            upsert_customer,
            create_project,
            remove_project,
            create_sales_order,
            cancel_sales_order,
            finance,
            read_delivery,
            post_documents,
            void_credit_memo,
            reverse_journal,
            update_sales_order,
            close_sales_order,
            write_billing_status,
            set_contract_value,
            notify,
            feedback,
            apply_change,
            set_stage,
            invoice_status,
            receipts,
        ]

    def psa_delivery(self, project_id: str) -> Delivery:
        """What a bulk PSA read returns for the project (the fake PSA holds one project)."""
        d = self.delivery
        return d.model_copy(
            update={
                "time_entries": [e.model_copy(update={"project_id": project_id}) for e in d.time_entries],
                "expenses": [e.model_copy(update={"project_id": project_id}) for e in d.expenses],
            }
        )

    async def write_outbox(self, outbox: CloseOutbox) -> None:
        """What the month-end batch does with an engagement's outbox, against these fakes."""
        acts = {getattr(a, "__temporal_activity_definition").name: a for a in self.activities()}
        if outbox.erp is not None:
            await acts["erp.post_documents"](outbox.erp)
        if outbox.crm is not None:
            await acts["crm.write_billing_status"](outbox.crm)
        if outbox.psa is not None:
            await acts["psa.feedback"](outbox.psa)
        if outbox.hub is not None:
            await acts["reporting.record_engagement"](outbox.hub)
