"""Amendments (change orders) and credit memos: each asks for approval, then runs as a
saga across PSA, ERP and CRM; a step that fails for good undoes the earlier ones."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.config import FinanceConfig
    from contracts.crm import Ack, SetContractValueInput
    from contracts.engagement import AmendmentInput, ChangeKind, ChangeRecord, ChangeStatus, CreditMemoInput
    from contracts.erp import (
        ErpAck,
        PostDocumentsInput,
        PostDocumentsResult,
        ReverseJournalInput,
        UpdateSalesOrderInput,
        VoidCreditMemoInput,
    )
    from contracts.psa import ApplyChangeInput, FeedbackInput, FeedbackResult, MarkBilled, PsaAck, ReadDeliveryInput
    from domain.amendments import AmendmentError, apply_amendment
    from domain.approvals import amendment_approver_roles
    from domain.billing import Delivery
    from domain.contract import ContractState
    from domain.credit_memos import CreditMemoError, apply_credit_memo
    from domain.ids import external_id
    from domain.journals import revenue_journal
    from domain.model import Approval, ApprovalDecision, SourceKind
    from domain.money import Money, sum_money
    from domain.periods import period_of
    from domain.schedules import milestone_amounts
    from domain.stages import Stage
    from domain.system_records import ProjectChange
    from workflows.engagement_fx import FxSteps
    from workflows.engagement_view import with_pending_memos
    from workflows.failures import BUSINESS_FAILURES, STEP_FAILURES, failure_reason
    from workflows.refusals import conflict, invalid_request
    from workflows.saga import Saga


def contract_value(state: ContractState) -> Money:
    return sum_money((t.line.amount for t in state.terms.values()), state.currency)


class ChangeSteps(FxSteps):
    def _refresh_pending(self) -> None:
        raise NotImplementedError  # the workflow class implements it

    def _refresh_amounts(self) -> None:
        raise NotImplementedError  # the delivery mixin implements it

    # ---- requests (update handlers and validators) ----------------------------------------------
    def _check_change_allowed(self, field: str, change_id: str) -> None:
        if self._s.view.stage != Stage.IN_DELIVERY or self._s.contract is None or self._finance is None:
            raise conflict("stage", f"changes are accepted only in delivery; the engagement is {self._s.view.stage}")
        if ":" in change_id:  # approval ids are `<change id>:<n>`: four eyes reads the change from them
            raise invalid_request(field, f"{change_id!r}: a change id has no ':'")
        if any(c.change_id == change_id for c in self._s.view.changes):
            raise conflict(field, f"change {change_id} was already requested")

    def _check_amendment(self, request: AmendmentInput) -> None:
        """Refuse, before any approval opens, what `apply_amendment` would refuse after it:
        unknown or twice-changed lines, added lines that exist, prices in another currency,
        removing a line that was billed or recognized. (What needs the PSA's delivery to
        judge is judged when the approved amendment applies.)"""
        amendment = request.amendment
        self._check_change_allowed("amendment.amendment_id", amendment.amendment_id)
        contract = self._s.contract
        assert contract is not None
        seen: set[str] = set()
        for n, change in enumerate(amendment.changes):
            at = f"amendment.changes.{n}"
            line_id = change.contract_line_id
            if line_id in seen:
                raise invalid_request(f"{at}.contract_line_id", f"line {line_id} is changed twice in one amendment")
            seen.add(line_id)
            if change.replace is not None:
                raise invalid_request(f"{at}.replace", "replace is d2r's own (compensation); change fields instead")
            if change.add is not None:
                if line_id in contract.terms:
                    raise invalid_request(f"{at}.contract_line_id", f"line {line_id} already exists")
                if change.add.line.line_id != line_id:
                    raise invalid_request(f"{at}.add.line.line_id", "an added line's id must match contract_line_id")
            elif line_id not in contract.terms:
                known = ", ".join(sorted(contract.terms))
                raise invalid_request(f"{at}.contract_line_id", f"unknown contract line {line_id}; lines: {known}")
            billed = any(r.contract_line_id == line_id for r in contract.ledger)
            if change.remove and (billed or not contract.recognized(line_id).is_zero()):
                raise invalid_request(f"{at}.remove", f"line {line_id} has billing or revenue; lower its price instead")
            amounts = {
                "price": change.price,
                "estimate_at_completion": change.estimate_at_completion,
                "not_to_exceed": change.not_to_exceed,
                "add.line.amount": change.add.line.amount if change.add is not None else None,
            }
            for name, money in amounts.items():
                if money is not None and money.currency != contract.currency:
                    raise invalid_request(
                        f"{at}.{name}.currency", f"amounts are in the contract currency {contract.currency}"
                    )

    def _check_credit_memo(self, request: CreditMemoInput) -> None:
        """Refuse, before any approval opens, a memo that would fail once approved: unknown
        invoice or line, another currency, more than the line has left once the memos
        already awaiting approval are counted, or any other rule of `apply_credit_memo`."""
        memo = request.request
        self._check_change_allowed("credit_memo.credit_memo_id", memo.credit_memo_id)
        contract = self._s.contract
        assert contract is not None
        invoice = next((i for i in contract.invoices if i.invoice_id == memo.invoice_id), None)
        if invoice is None:
            raise invalid_request("credit_memo.invoice_id", f"unknown invoice {memo.invoice_id}")
        # The memos waiting for approval are issued first: this one must fit what they leave.
        state = with_pending_memos(self._s) or contract
        lines = {line.invoice_line_id: line for line in invoice.lines}
        for n, line in enumerate(memo.lines):
            at = f"credit_memo.lines.{n}"
            invoice_line = lines.get(line.invoice_line_id)
            if invoice_line is None:
                known = ", ".join(sorted(lines))
                raise invalid_request(
                    f"{at}.invoice_line_id",
                    f"invoice {invoice.invoice_id} has no line {line.invoice_line_id}; lines: {known}",
                )
            credited = sum_money(
                (cl.net for cm in state.credit_memos for cl in cm.lines if cl.invoice_line_id == line.invoice_line_id),
                invoice.currency,
            )
            left = invoice_line.net - credited
            waiting = " (counting memos awaiting approval)" if state is not contract else ""
            if not left.is_positive():
                raise invalid_request(f"{at}.amount", f"line {line.invoice_line_id} has nothing left{waiting}")
            if line.amount is None:
                continue
            if line.amount.currency != invoice.currency:
                raise invalid_request(f"{at}.amount.currency", f"credits are in currency {invoice.currency}")
            if line.amount > left:
                raise invalid_request(
                    f"{at}.amount.amount",
                    f"{line.amount} exceeds the {left} of line {line.invoice_line_id} not yet credited{waiting}",
                )
        try:
            apply_credit_memo(state, memo)
        except CreditMemoError as refused:
            raise invalid_request("credit_memo", str(refused)) from refused

    def _open_change_approvals(
        self, change_id: str, subject: str, requested_by: str, role_groups: list[list[str]]
    ) -> list[str]:
        ids = []
        for n, roles in enumerate(role_groups):
            approval = Approval(
                approval_id=f"{change_id}:{n}",
                subject=f"{subject} ({'/'.join(roles)})",
                requested_by=requested_by,
                requested_at=workflow.now(),
                approver_roles=roles,
            )
            self._s.view.approvals.append(approval)
            ids.append(approval.approval_id)
        self._refresh_pending()
        self._wait_for_approvals()
        return ids

    def _register_amendment(self, request: AmendmentInput) -> ChangeRecord:
        assert self._s.contract is not None and self._finance is not None
        amendment = request.amendment
        terms = self._s.contract.terms
        delta = sum_money(
            (
                c.price - terms[c.contract_line_id].line.amount
                for c in amendment.changes
                if c.price is not None and c.contract_line_id in terms
            ),
            self._s.contract.currency,
        )
        delta += sum_money((c.add.line.amount for c in amendment.changes if c.add is not None), delta.currency)
        subject = f"amendment {amendment.amendment_id} ({delta} to the contract value)"
        approvals = self._open_change_approvals(
            amendment.amendment_id,
            subject,
            request.requested_by,
            amendment_approver_roles(delta, self._finance.approvals),
        )
        record = ChangeRecord(
            change_id=amendment.amendment_id,
            kind=ChangeKind.AMENDMENT,
            status=ChangeStatus.AWAITING_APPROVAL,
            requested_by=request.requested_by,
            approval_ids=approvals,
            summary=f"{amendment.treatment.value}: {amendment.reason}",
        )
        self._s.amendment_requests[amendment.amendment_id] = request
        self._s.view.changes.append(record)
        self._note(f"{subject} requested by {request.requested_by}")
        return record

    def _register_credit_memo(self, request: CreditMemoInput) -> ChangeRecord:
        assert self._finance is not None
        memo = request.request
        subject = f"credit memo {memo.credit_memo_id} on invoice {memo.invoice_id}"
        approvals = self._open_change_approvals(
            memo.credit_memo_id, subject, request.requested_by, [self._finance.approvals.credit_memo_approver_roles]
        )
        record = ChangeRecord(
            change_id=memo.credit_memo_id,
            kind=ChangeKind.CREDIT_MEMO,
            status=ChangeStatus.AWAITING_APPROVAL,
            requested_by=request.requested_by,
            approval_ids=approvals,
            summary=memo.reason,
        )
        self._s.credit_memo_requests[memo.credit_memo_id] = request
        self._s.view.changes.append(record)
        self._note(f"{subject} requested by {request.requested_by}: {memo.reason}")
        return record

    # ---- decided changes ----------------------------------------------------------------------
    def _decisions(self, record: ChangeRecord) -> list[ApprovalDecision]:
        by_id = {a.approval_id: a.decision for a in self._s.view.approvals}
        return [by_id[i] for i in record.approval_ids]

    def _changes_ready(self) -> bool:
        return any(
            c.status is ChangeStatus.AWAITING_APPROVAL
            and (
                ApprovalDecision.REJECTED in self._decisions(c)
                or all(d is ApprovalDecision.APPROVED for d in self._decisions(c))
            )
            for c in self._s.view.changes
        )

    async def _apply_decided_changes(self, finance: FinanceConfig) -> None:
        for record in self._s.view.changes:
            if record.status is not ChangeStatus.AWAITING_APPROVAL:
                continue
            decisions = self._decisions(record)
            if ApprovalDecision.REJECTED in decisions:
                record.status = ChangeStatus.REJECTED
                self._note(f"{record.kind.value} {record.change_id} rejected; nothing was changed")
            elif all(d is ApprovalDecision.APPROVED for d in decisions):
                try:
                    if record.kind is ChangeKind.AMENDMENT:
                        await self._amend(record)
                    else:
                        await self._credit(record)
                except BUSINESS_FAILURES as error:
                    # A rule broke before anything was written: the change fails, the engagement goes on.
                    self._fail(record, failure_reason(error))
                self._refresh_amounts()
                self._feedback_due = True

    def _fail(self, record: ChangeRecord, detail: str) -> None:
        record.status = ChangeStatus.FAILED
        record.detail = detail
        self._note(f"{record.kind.value} {record.change_id} failed and was undone: {detail}")

    async def _amend(self, record: ChangeRecord) -> None:
        contract, view, queues = self._s.contract, self._s.view, self._input.queues
        assert contract is not None and view.project_id and view.legal_entity
        amendment = self._s.amendment_requests[record.change_id].amendment
        wid = workflow.info().workflow_id
        saga = Saga()
        try:
            delivery: Delivery = await self._call(
                "psa.read_delivery",
                ReadDeliveryInput(
                    project_id=view.project_id,
                    lines=[t.line for t in contract.terms.values()],
                    cutoff=amendment.effective_date,
                    legal_entity=view.legal_entity,
                ),
                Delivery,
                queues.psa,
                f"Read delivery to date for amendment {amendment.amendment_id}",
            )
            if not delivery.fx.rates and self._finance is not None:
                fallback = self._finance.fx.model_copy(update={"chosen": delivery.fx.chosen})
                delivery = delivery.model_copy(update={"fx": fallback})
            try:
                fx = await self._hub_rates(
                    delivery.fx,
                    lambda fx: apply_amendment(contract, amendment, delivery.model_copy(update={"fx": fx})),
                    f"amendment {amendment.amendment_id}",
                )
                delivery = delivery.model_copy(update={"fx": fx})
                result = apply_amendment(contract, amendment, delivery)
            except (AmendmentError, LookupError) as refused:
                self._fail(record, str(refused))
                return
            new_state = result.state
            old_value, new_value = contract_value(contract), contract_value(new_state)
            old_lines = [t.line for t in contract.terms.values()]
            new_lines = [t.line for t in new_state.terms.values()]

            saga.on_failure_undo(
                "restore the PSA budget",
                lambda: self._call(
                    "psa.apply_change",
                    ApplyChangeInput(
                        project_id=view.project_id or "",
                        change=ProjectChange(
                            change_id=f"{amendment.amendment_id}:undo",
                            budget=old_value,
                            end_date=contract.contract_end,
                            milestone_amounts=milestone_amounts(contract, delivery.milestones),
                        ),
                        legal_entity=view.legal_entity,
                    ),
                    PsaAck,
                    queues.psa,
                    f"Undo amendment {amendment.amendment_id} in the PSA",
                ),
            )
            await self._call(
                "psa.apply_change",
                ApplyChangeInput(
                    project_id=view.project_id,
                    change=ProjectChange(
                        change_id=amendment.amendment_id,
                        budget=new_value,
                        end_date=new_state.contract_end,
                        milestone_amounts=milestone_amounts(new_state, delivery.milestones),
                    ),
                    legal_entity=view.legal_entity,
                ),
                PsaAck,
                queues.psa,
                f"Amendment {amendment.amendment_id}: PSA budget {new_value}",
            )

            order_key = external_id(wid, "sales-order")
            saga.on_failure_undo(
                "restore the sales order lines",
                lambda: self._call(
                    "erp.update_sales_order",
                    UpdateSalesOrderInput(legal_entity=view.legal_entity or "", external_id=order_key, lines=old_lines),
                    ErpAck,
                    queues.erp,
                    f"Undo amendment {amendment.amendment_id} on the sales order",
                ),
            )
            await self._call(
                "erp.update_sales_order",
                UpdateSalesOrderInput(legal_entity=view.legal_entity, external_id=order_key, lines=new_lines),
                ErpAck,
                queues.erp,
                f"Amendment {amendment.amendment_id}: sales order lines",
            )

            if result.applied.revenue_entries and view.erp_customer_id and view.contract_id:
                journal = revenue_journal(
                    result.applied.revenue_entries,
                    period_of(amendment.effective_date),
                    amendment.effective_date,
                    self._finance.chart_of_accounts if self._finance is not None else None,
                )
                saga.on_failure_undo(
                    "reverse the catch-up journal",
                    lambda: self._call(
                        "erp.reverse_journal",
                        ReverseJournalInput(
                            legal_entity=view.legal_entity or "", journal_entry_id=journal.journal_entry_id
                        ),
                        ErpAck,
                        queues.erp,
                        f"Undo the catch-up of amendment {amendment.amendment_id}",
                    ),
                )
                await self._call(
                    "erp.post_documents",
                    PostDocumentsInput(
                        legal_entity=view.legal_entity,
                        erp_customer_id=view.erp_customer_id,
                        sales_order_id=view.contract_id,
                        journals=[journal],
                    ),
                    PostDocumentsResult,
                    queues.erp,
                    f"Amendment {amendment.amendment_id}: catch-up revenue",
                )

            saga.on_failure_undo(
                "restore the CRM contract value",
                lambda: self._call(
                    "crm.set_contract_value",
                    SetContractValueInput(
                        opportunity_id=view.opportunity_id,
                        amount=old_value,
                        reason=f"undo amendment {amendment.amendment_id}",
                    ),
                    Ack,
                    queues.crm,
                    f"Undo amendment {amendment.amendment_id} in the CRM",
                ),
            )
            await self._call(
                "crm.set_contract_value",
                SetContractValueInput(
                    opportunity_id=view.opportunity_id, amount=new_value, reason=amendment.amendment_id
                ),
                Ack,
                queues.crm,
                f"Amendment {amendment.amendment_id}: CRM contract value {new_value}",
            )
        except STEP_FAILURES as error:
            failed = await saga.compensate()
            self._fail(record, failure_reason(error) + (f"; undo failures: {failed}" if failed else ""))
            return
        self._s.contract = new_state
        self._s.applied_amendments[amendment.amendment_id] = result.applied
        self._describe_for_batches()
        record.status = ChangeStatus.APPLIED
        self._note(
            f"amendment {amendment.amendment_id} applied: contract value {old_value} -> {new_value}"
            + (
                f", catch-up {sum_money((e.amount for e in result.applied.revenue_entries), new_value.currency)}"
                if result.applied.revenue_entries
                else ""
            )
        )

    async def _credit(self, record: ChangeRecord) -> None:
        contract, view, queues = self._s.contract, self._s.view, self._input.queues
        assert contract is not None and view.project_id and view.legal_entity
        assert view.erp_customer_id and view.contract_id
        request = self._s.credit_memo_requests[record.change_id].request
        try:
            result = apply_credit_memo(contract, request)
        except CreditMemoError as refused:
            self._fail(record, str(refused))
            return
        memo = result.memo
        erp_invoice_id = self._s.erp_invoice_ids.get(request.invoice_id)
        # None: posted by a month-end batch, found by its externalId when the memo posts.
        saga = Saga()
        try:
            saga.on_failure_undo(
                "void the ERP credit memo",
                lambda: self._call(
                    "erp.void_credit_memo",
                    VoidCreditMemoInput(legal_entity=view.legal_entity or "", credit_memo_id=memo.credit_memo_id),
                    ErpAck,
                    queues.erp,
                    f"Undo: void credit memo {request.credit_memo_id}",
                ),
            )
            posted: PostDocumentsResult = await self._call(
                "erp.post_documents",
                PostDocumentsInput(
                    legal_entity=view.legal_entity,
                    erp_customer_id=view.erp_customer_id,
                    sales_order_id=view.contract_id,
                    credit_memos=[memo],
                    erp_invoice_ids={request.invoice_id: erp_invoice_id} if erp_invoice_id else {},
                ),
                PostDocumentsResult,
                queues.erp,
                f"Credit memo {request.credit_memo_id}: {memo.total}",
            )
            time_ids = [r.source_id for r in result.released if r.source_kind is SourceKind.TIME]
            expense_ids = [r.source_id for r in result.released if r.source_kind is SourceKind.EXPENSE]
            if time_ids or expense_ids:
                saga.on_failure_undo(
                    "mark the released entries billed again",
                    lambda: self._call(
                        "psa.feedback",
                        FeedbackInput(
                            project_id=view.project_id or "",
                            mark=MarkBilled(time_entry_ids=time_ids, expense_ids=expense_ids, billed=True),
                            legal_entity=view.legal_entity,
                        ),
                        FeedbackResult,
                        queues.psa,
                        "Undo: entries billed again",
                    ),
                )
                await self._call(
                    "psa.feedback",
                    FeedbackInput(
                        project_id=view.project_id,
                        mark=MarkBilled(time_entry_ids=time_ids, expense_ids=expense_ids, billed=False),
                        legal_entity=view.legal_entity,
                    ),
                    FeedbackResult,
                    queues.psa,
                    f"Release {len(time_ids) + len(expense_ids)} entries for re-billing",
                )
        except STEP_FAILURES as error:
            failed = await saga.compensate()
            self._fail(record, failure_reason(error) + (f"; undo failures: {failed}" if failed else ""))
            return
        self._s.contract = result.state
        record.status = ChangeStatus.APPLIED
        record.erp_document_id = posted.credit_memos.get(memo.credit_memo_id)
        self._note(f"credit memo {request.credit_memo_id} issued: {memo.total} on invoice {request.invoice_id}")
