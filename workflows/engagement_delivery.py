"""IN_DELIVERY and CLOSING: period closes (billing and revenue runs), payments, overdue invoices,
finance feedback to the CRM and the PSA, and the close-out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from contracts.config import FinanceConfig
    from contracts.crm import Ack, WriteBillingStatusInput, WriteLinksInput, WriteLinksResult
    from contracts.engagement import (
        Amounts,
        CloseOutbox,
        EngagementCloseInput,
        InvoiceSummary,
        OutboxFailure,
        OverdueNotice,
        PaymentNotice,
        PeriodResult,
    )
    from contracts.erp import (
        CloseSalesOrderInput,
        ErpAck,
        PostDocumentsInput,
        PostDocumentsResult,
        ReceiptsInput,
        ReceiptsResult,
    )
    from contracts.period_close import RECEIPTS_LOOKBACK_DAYS
    from contracts.psa import FeedbackInput, FeedbackResult, MarkBilled, PsaAck, ReadDeliveryInput, SetStageInput
    from contracts.reporting import RecordEngagementInput, RecordEngagementResult
    from domain.billing import Delivery, invoice_period, tax_party
    from domain.bookings import booking_movements
    from domain.ids import external_id
    from domain.journals import revenue_journal
    from domain.model import ExceptionRecord, Invoice, JournalEntry, Payment
    from domain.money import Money, sum_money
    from domain.periods import period_end
    from domain.revenue import RevenueRun, recognize_period
    from domain.stages import Stage
    from domain.system_records import BillingStatus
    from workflows.engagement_fx import FxSteps
    from workflows.engagement_provisioning import activity_error_cause


@dataclass
class PeriodRun:
    """One period's billing and revenue run, before the engagement keeps it."""

    invoices: list[Invoice]
    revenue: RevenueRun
    journal: JournalEntry | None
    documents: PostDocumentsInput | None  # None: nothing to post
    marks: MarkBilled
    exceptions: list[ExceptionRecord]


class DeliverySteps(FxSteps):
    _pending_marks: list[MarkBilled]

    # ---- period close ------------------------------------------------------------------------
    async def _run_period_close(self, request: EngagementCloseInput, finance: FinanceConfig) -> None:
        """One period, top to bottom: its inputs (handed in by the entity's month-end, else
        read here), the domain's billing and revenue runs, the ERP documents, the books, the
        feedback. Who writes is the request's `outbox`: the month-end batch writes what the
        result hands back; an engagement closing on its own posts here and feeds back next."""
        period = request.period
        if period in self._s.period_results:
            return
        cutoff = period_end(period)
        delivery = await self._period_inputs(request, cutoff)
        # Rates handed in with the delivery (a test's, or ones the hub already chose) stand.
        given = delivery.fx if delivery.fx.rates else finance.fx.model_copy(update={"chosen": delivery.fx.chosen})
        fx = await self._hub_rates(
            given,
            lambda fx: self._bill_and_recognize(period, cutoff, delivery.model_copy(update={"fx": fx}), finance),
            f"closing {period}",
        )
        run = self._bill_and_recognize(period, cutoff, delivery.model_copy(update={"fx": fx}), finance)
        erp_ids = {} if request.outbox else await self._post_documents(period, run)
        self._book(period, run, erp_ids)
        if request.outbox:
            self._hand_to_batch(period, run)
        else:
            self._feedback_due = True

    async def _period_inputs(self, request: EngagementCloseInput, cutoff: date) -> Delivery:
        """The receipts and overdue invoices known at the cut-off, then the period's delivery."""
        view, queues = self._s.view, self._input.queues
        assert view.project_id and view.erp_customer_id and view.legal_entity and self._s.contract
        for notice in request.payments:
            self._record_payment(notice)
        if request.overdue:
            self._inbox_overdue.append(OverdueNotice(as_of=cutoff, invoices=request.overdue))
        if request.delivery is not None:
            return request.delivery
        found: ReceiptsResult = await self._call(
            "erp.receipts",
            ReceiptsInput(
                legal_entity=view.legal_entity,
                erp_customer_id=view.erp_customer_id,
                since=cutoff - timedelta(days=RECEIPTS_LOOKBACK_DAYS),
                through=cutoff,
                opportunity_id=view.opportunity_id,
            ),
            ReceiptsResult,
            queues.erp,
            f"Receipts for the engagement's invoices up to {cutoff}",
        )
        for receipt in found.receipts:
            self._record_payment(
                PaymentNotice(
                    payment_id=receipt.payment_id,
                    invoice_id=receipt.invoice_id,
                    amount=receipt.amount,
                    received_on=receipt.received_on,
                )
            )
        self._set_details(f"Closing {request.period}: reading approved time, expenses and milestones from the PSA")
        delivery: Delivery = await self._call(
            "psa.read_delivery",
            ReadDeliveryInput(
                project_id=view.project_id,
                lines=[t.line for t in self._s.contract.terms.values()],
                cutoff=cutoff,
                legal_entity=view.legal_entity,
            ),
            Delivery,
            queues.psa,
            f"Read {request.period} delivery (time, expenses, milestones) from the PSA",
        )
        return delivery

    def _bill_and_recognize(self, period: str, cutoff: date, delivery: Delivery, finance: FinanceConfig) -> PeriodRun:
        """The domain's billing run then revenue run (pure: nothing is kept until `_book`), at
        the rates in `delivery.fx` (the hub's for the days converted on, `_hub_rates`)."""
        contract, view = self._s.contract, self._s.view
        assert contract is not None and view.erp_customer_id and view.contract_id
        billing, invoices = invoice_period(
            contract,
            period,
            delivery,
            seller=finance.legal_entity,
            buyer=tax_party(contract),
            tax_rules=finance.tax_rules,
            invoice_date=cutoff,
            reporting_currency=finance.reporting_currency,
        )
        revenue = recognize_period(
            billing.state,
            period,
            delivery,
            complete_lines=set(billing.state.terms) if view.delivery_complete else set(),
            entry_date=cutoff,
            functional_currency=finance.legal_entity.functional_currency,
            reporting_currency=finance.reporting_currency,
        )
        journal = (
            revenue_journal(revenue.entries, period, cutoff, finance.chart_of_accounts) if revenue.entries else None
        )
        documents = (
            PostDocumentsInput(
                legal_entity=contract.lineage.legal_entity,
                erp_customer_id=view.erp_customer_id,
                sales_order_id=view.contract_id,
                invoices=invoices,
                journals=[journal] if journal else [],
            )
            if invoices or journal
            else None
        )
        # Only entries billed in full are marked billed in the PSA: an entry a cap cut short
        # keeps its remaining hours billable there too.
        marks = billing.billing_marks(delivery)
        return PeriodRun(
            invoices=invoices,
            revenue=revenue,
            journal=journal,
            documents=documents,
            marks=MarkBilled(
                time_entry_ids=marks.fully_billed_time, expense_ids=marks.fully_billed_expenses, billed=True
            ),
            exceptions=[*billing.exceptions, *revenue.exceptions],
        )

    async def _post_documents(self, period: str, run: PeriodRun) -> dict[str, str]:
        """The period's invoices and revenue journal into the ERP (an engagement closing on its own)."""
        if run.documents is None:
            return {}
        self._set_details(f"Closing {period}: posting {len(run.invoices)} invoice(s) and the revenue journal")
        posted: PostDocumentsResult = await self._call(
            "erp.post_documents",
            run.documents,
            PostDocumentsResult,
            self._input.queues.erp,
            f"Post {period}: {len(run.invoices)} invoice(s), {len(run.revenue.entries)} revenue entries",
        )
        self._s.erp_invoice_ids.update(posted.invoices)
        return posted.invoices

    def _book(self, period: str, run: PeriodRun, erp_ids: dict[str, str]) -> None:
        """Keep the period: the contract's new state, the period's result, the engagement's figures."""
        contract, view = self._s.contract, self._s.view
        assert contract is not None
        self._s.final_run_done = view.delivery_complete
        self._pending_marks.append(run.marks)
        self._s.contract = run.revenue.state
        positions = run.revenue.positions
        zero = Money.zero(contract.currency)
        result = PeriodResult(
            period=period,
            invoices=[
                InvoiceSummary(
                    invoice_id=i.invoice_id,
                    erp_invoice_id=erp_ids.get(i.invoice_id),
                    total=i.total,
                    tax=i.tax_total,
                    due_date=i.due_date,
                )
                for i in run.invoices
            ],
            billed=sum_money((i.net_total for i in run.invoices), contract.currency),
            # Everything the period recognized: this run's entries and those already dated
            # in it (an amendment's cumulative catch-up, a reversal).
            recognized=sum_money(
                (e.amount for e in run.revenue.state.revenue_entries if e.period == period), contract.currency
            ),
            deferred=sum_money((p.deferred for p in positions), contract.currency) if positions else zero,
            unbilled=sum_money((p.unbilled for p in positions), contract.currency) if positions else zero,
            revenue_journal_id=run.journal.journal_entry_id if run.journal else None,
            exceptions=run.exceptions,
        )
        self._s.period_results[period] = result
        view.periods_closed.append(period)
        view.exceptions.extend(result.exceptions)
        self._refresh_amounts()
        self._note(
            f"{period} closed: billed {result.billed}, recognized {result.recognized}, "
            f"deferred {result.deferred}, unbilled {result.unbilled}"
            + (f"; {len(result.exceptions)} exception(s)" if result.exceptions else "")
        )

    def _hand_to_batch(self, period: str, run: PeriodRun) -> None:
        """What the month-end batch writes for this engagement: the ERP documents, the CRM and
        PSA feedback and the hub's new facts (all idempotent), kept to repeat on a re-run."""
        self._flag_overdue()
        crm, psa = self._feedback_inputs()
        self._s.last_outbox = CloseOutbox(
            workflow_id=workflow.info().workflow_id,
            erp=run.documents,
            crm=crm,
            psa=psa,
            hub=self._hub_input() if self._input.queues.reporting else None,
        )
        if self._s.last_outbox.hub is not None:
            self._mark_recorded(self._s.last_outbox.hub)
        self._pending_marks = []
        self._feedback_due = False
        self._note(f"{period}: documents, feedback and hub facts handed to the entity's month-end batch")

    def _with_outbox(self, result: PeriodResult, request: EngagementCloseInput) -> PeriodResult:
        """A batched close's result carries what the batch must write. Asked again (a re-run
        close), the latest period's writes are repeated — all idempotent — with today's status."""
        outbox = self._s.last_outbox
        if outbox is None or self._s.view.periods_closed[-1:] != [request.period]:
            return result
        if outbox.crm is not None and self._s.view.amounts is not None:
            outbox = outbox.model_copy(update={"crm": outbox.crm.model_copy(update={"status": self._billing_status()})})
        return result.model_copy(update={"outbox": outbox})

    async def _write_outbox(self, failure: OutboxFailure) -> None:
        """What the batch could not write, written by the engagement itself."""
        outbox, queues = failure.outbox, self._input.queues
        self._note(
            f"the month-end batch could not write {failure.period}'s documents ({failure.error}); "
            "writing them from the engagement"
        )
        if outbox.erp is not None:
            posted: PostDocumentsResult = await self._call(
                "erp.post_documents",
                outbox.erp,
                PostDocumentsResult,
                queues.erp,
                f"Post {failure.period}: {len(outbox.erp.invoices)} invoice(s) and the revenue journal",
            )
            self._s.erp_invoice_ids.update(posted.invoices)
        if outbox.crm is not None:
            await self._call(
                "crm.write_billing_status",
                outbox.crm,
                Ack,
                queues.crm,
                f"CRM: billing status {outbox.crm.status.status}",
            )
        if outbox.psa is not None:
            await self._call("psa.feedback", outbox.psa, FeedbackResult, queues.psa, "PSA: billing status and marks")
        if outbox.hub is not None and queues.reporting is not None:
            await self._call(
                "reporting.record_engagement",
                outbox.hub,
                RecordEngagementResult,
                queues.reporting,
                f"Hub: {len(outbox.hub.invoices)} invoice(s), {len(outbox.hub.payments)} payment(s)",
            )

    # ---- receivables ---------------------------------------------------------------------------
    def _record_payment(self, notice: PaymentNotice) -> None:
        contract = self._s.contract
        assert contract is not None
        if any(p.payment_id == notice.payment_id for p in self._s.payments):
            return  # a redelivered webhook: the same payment, counted once
        if not any(i.invoice_id == notice.invoice_id for i in contract.invoices):
            self._note(f"payment {notice.payment_id} names unknown invoice {notice.invoice_id}; set aside")
            return
        self._s.payments.append(
            Payment(
                payment_id=notice.payment_id,
                lineage=contract.lineage,
                invoice_id=notice.invoice_id,
                received_on=notice.received_on,
                amount=notice.amount,
            )
        )
        self._note(f"payment {notice.amount} received for invoice {notice.invoice_id}")
        self._refresh_amounts()
        self._feedback_due = True

    def _open_amount(self, invoice: Invoice) -> Money:
        contract = self._s.contract
        assert contract is not None
        credited = sum_money(
            (m.total for m in contract.credit_memos if m.invoice_id == invoice.invoice_id), invoice.currency
        )
        paid = sum_money((p.amount for p in self._s.payments if p.invoice_id == invoice.invoice_id), invoice.currency)
        return invoice.total - credited - paid

    def _unflagged_open(self) -> list[Invoice]:
        contract = self._s.contract
        if contract is None:
            return []
        return [
            i
            for i in contract.invoices
            if i.invoice_id not in self._s.view.overdue_invoices and self._open_amount(i).is_positive()
        ]

    def _overdue_due(self) -> bool:
        """The entity's daily receivables sweep (or the month-end) reported invoices past due."""
        return bool(self._inbox_overdue)

    def _flag_overdue(self) -> None:
        view = self._s.view
        contract = self._s.contract
        if contract is None:
            return
        reported = {o.invoice_id: o for n in self._inbox_overdue for o in n.invoices}
        self._inbox_overdue = []
        for invoice in self._unflagged_open():
            if invoice.invoice_id in reported:
                view.overdue_invoices.append(invoice.invoice_id)
                self._note(
                    f"invoice {invoice.invoice_id} is overdue: {self._open_amount(invoice)} open since "
                    f"{invoice.due_date} (collection risk)"
                )
                self._feedback_due = True
        # Paid (or credited) since it was flagged: no longer a collection risk.
        still = [
            i
            for i in view.overdue_invoices
            if any(inv.invoice_id == i and self._open_amount(inv).is_positive() for inv in contract.invoices)
        ]
        if still != view.overdue_invoices:
            view.overdue_invoices = still
            self._feedback_due = True
        self._refresh_amounts()

    # ---- the figures everyone reads --------------------------------------------------------------
    def _refresh_amounts(self) -> None:
        contract = self._s.contract
        if contract is None:
            return
        cur = contract.currency
        positions = contract.positions()
        self._s.view.lines = positions

        def total(field: str) -> Money:
            return sum_money((getattr(p, field) for p in positions), cur)

        collected = sum_money((p.amount for p in self._s.payments), cur)
        outstanding = sum_money((self._open_amount(i) for i in contract.invoices), cur)
        overdue = sum_money(
            (self._open_amount(i) for i in contract.invoices if i.invoice_id in self._s.view.overdue_invoices), cur
        )
        self._s.view.amounts = Amounts(
            contract_value=sum_money((t.line.amount for t in contract.terms.values()), cur),
            billed=total("billed"),
            credited=total("credited"),
            net_billed=total("net_billed"),
            recognized=total("recognized"),
            deferred=total("deferred"),
            unbilled=total("unbilled"),
            collected=collected,
            outstanding=outstanding,
            overdue=overdue,
        )
        self._s.view.contract_value = self._s.view.amounts.contract_value

    def _billing_status(self) -> BillingStatus:
        amounts = self._s.view.amounts
        assert amounts is not None
        if amounts.overdue.is_positive():
            status = "Overdue"
        elif amounts.net_billed.is_zero():
            status = "Not billed"
        elif amounts.outstanding.is_zero():
            status = "Collected"
        elif amounts.collected.is_positive():
            status = "Partially collected"
        else:
            status = "Billed"
        return BillingStatus(
            status=status,
            billed=amounts.net_billed,
            collected=amounts.collected,
            overdue=amounts.overdue,
            unbilled_wip=amounts.unbilled,
            as_of=workflow.now().date(),
        )

    async def _send_feedback(self) -> None:
        """One CRM and one PSA write for everything since the last feedback (coalesced)."""
        queues = self._input.queues
        crm, psa = self._feedback_inputs()
        status = crm.status
        await self._call(
            "crm.write_billing_status",
            crm,
            Ack,
            queues.crm,
            f"CRM: billing status {status.status}, billed {status.billed}, collected {status.collected}",
        )
        await self._call(
            "psa.feedback",
            psa,
            FeedbackResult,
            queues.psa,
            f"PSA: billing status {status.status}, unbilled WIP {status.unbilled_wip}",
        )
        self._pending_marks = []
        self._feedback_due = False
        await self._record_in_hub()

    def _feedback_inputs(self) -> tuple[WriteBillingStatusInput, FeedbackInput]:
        view = self._s.view
        assert view.project_id
        status = self._billing_status()
        marks = [m for m in self._pending_marks if m.time_entry_ids or m.expense_ids]
        merged = (
            MarkBilled(
                time_entry_ids=[i for m in marks for i in m.time_entry_ids],
                expense_ids=[i for m in marks for i in m.expense_ids],
                billed=True,
            )
            if marks
            else None
        )
        return (
            WriteBillingStatusInput(opportunity_id=view.opportunity_id, status=status),
            FeedbackInput(project_id=view.project_id, status=status, mark=merged, legal_entity=view.legal_entity),
        )

    async def _record_in_hub(self) -> None:
        """The documents not yet in the reporting hub (and the booking, kept current)."""
        queue = self._input.queues.reporting
        data = self._hub_input() if queue is not None else None
        if queue is None or data is None:
            return
        if not (data.invoices or data.credit_memos or data.payments or data.revenue_entries or data.exceptions):
            return  # nothing new for the hub (the booking follows with the next documents)
        await self._call(
            "reporting.record_engagement",
            data,
            RecordEngagementResult,
            queue,
            f"Hub: {len(data.invoices)} invoice(s), {len(data.payments)} payment(s), "
            f"{len(data.revenue_entries)} revenue entries",
        )
        self._mark_recorded(data)

    def _hub_input(self) -> RecordEngagementInput | None:
        """The hub's new facts since the last write."""
        view, contract, engagement = self._s.view, self._s.contract, self._s.engagement
        if contract is None or engagement is None or not (view.project_id and view.contract_id):
            return None
        done = set(self._s.recorded)
        current = engagement.model_copy(
            update={
                "lines": [t.line for t in contract.terms.values()],
                "contract_value": sum_money((t.line.amount for t in contract.terms.values()), contract.currency),
            }
        )
        data = RecordEngagementInput(
            workflow_id=workflow.info().workflow_id,
            engagement=current,
            bookings=booking_movements(engagement, self._s.applied_amendments.values()),
            project_id=view.project_id,
            contract_id=view.contract_id,
            erp_customer_id=view.erp_customer_id,
            invoices=[i for i in contract.invoices if i.invoice_id not in done],
            credit_memos=[c for c in contract.credit_memos if c.credit_memo_id not in done],
            payments=[p for p in self._s.payments if p.payment_id not in done],
            revenue_entries=[r for r in contract.revenue_entries if r.revenue_entry_id not in done],
            exceptions=[x for x in view.exceptions if x.exception_id not in done],
            # what each time entry was billed at (d2r's rate), for the hub's time facts
            billing_events=[
                b.model_copy(update={"portions": contract.portions_of(b.billing_event_id)})
                for b in contract.billing_events
                if b.billing_event_id not in done
            ],
        )
        return data

    def _mark_recorded(self, data: RecordEngagementInput) -> None:
        self._s.recorded.extend(
            [
                *(i.invoice_id for i in data.invoices),
                *(c.credit_memo_id for c in data.credit_memos),
                *(p.payment_id for p in data.payments),
                *(r.revenue_entry_id for r in data.revenue_entries),
                *(x.exception_id for x in data.exceptions),
                *(b.billing_event_id for b in data.billing_events),
            ]
        )

    # ---- close-out --------------------------------------------------------------------------------
    async def _close_out(self) -> None:
        view, queues = self._s.view, self._input.queues
        assert view.project_id and view.legal_entity and self._s.engagement
        while True:
            try:
                await self._call(
                    "psa.set_stage",
                    SetStageInput(
                        project_id=view.project_id, stage="Completed", active=False, legal_entity=view.legal_entity
                    ),
                    PsaAck,
                    queues.psa,
                    "Close the PSA project",
                )
                await self._call(
                    "erp.close_sales_order",
                    CloseSalesOrderInput(legal_entity=view.legal_entity, external_id=self._order_key()),
                    ErpAck,
                    queues.erp,
                    "Close the ERP sales order",
                )
                await self._call(
                    "crm.write_links",
                    WriteLinksInput(
                        opportunity_id=view.opportunity_id,
                        project_id=view.project_id,
                        contract_id=view.contract_id,
                        status="Closed",
                    ),
                    WriteLinksResult,
                    queues.crm,
                    "Final CRM status: Closed",
                )
                self._to(Stage.CLOSED, "project, sales order and opportunity closed")
                await self._incident_passed()
                return
            except ActivityError as error:
                view.failure = activity_error_cause(error)
                if not await self._needs_attention(f"close-out failed: {view.failure}"):
                    return
                self._to(Stage.CLOSING, "retrying the close-out")

    def _order_key(self) -> str:
        return external_id(workflow.info().workflow_id, "sales-order")
