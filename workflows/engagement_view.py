"""What the `view` query adds to the stored view: the booked lines and the invoices with the
ids people name in amendments and credit memos. Computed when asked (pure; no state of its
own), so the carried state does not hold the contract's documents twice."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.engagement import (
        ChangeStatus,
        ContractLineRef,
        EngagementState,
        EngagementView,
        InvoiceLineRef,
        InvoiceRef,
        PeriodRevenue,
    )
    from domain.contract import ContractState
    from domain.credit_memos import CreditMemoError, apply_credit_memo
    from domain.deal import ContractLine
    from domain.fx import Converted
    from domain.money import Money, sum_money


def with_pending_memos(state: EngagementState) -> ContractState | None:
    """The contract as it will be once the credit memos awaiting approval are issued: a new
    memo must fit what they leave (one that would fail on its own takes nothing)."""
    contract = state.contract
    if contract is None:
        return None
    for record in state.view.changes:
        pending = state.credit_memo_requests.get(record.change_id)
        if record.status is ChangeStatus.AWAITING_APPROVAL and pending is not None:
            try:
                contract = apply_credit_memo(contract, pending.request).state
            except CreditMemoError:
                continue
    return contract


def credited_on(contract: ContractState, invoice_line_id: str, currency: str) -> Money:
    return sum_money(
        (cl.net for cm in contract.credit_memos for cl in cm.lines if cl.invoice_line_id == invoice_line_id), currency
    )


def contract_lines(state: EngagementState) -> list[ContractLineRef]:
    lines: list[ContractLine] = []
    if state.contract is not None:
        lines = [t.line for t in state.contract.terms.values() if t.active]
    elif state.engagement is not None:
        lines = list(state.engagement.lines)
    return [
        ContractLineRef(
            line_id=ln.line_id, name=ln.name, billing_model=ln.billing_model.value, role=ln.role, amount=ln.amount
        )
        for ln in lines
    ]


def invoices(state: EngagementState) -> list[InvoiceRef]:
    """Each invoice with its lines, in the currency's minor unit as a person reads them (a memo
    keyed as "100" shows "100.00")."""
    contract = state.contract
    if contract is None:
        return []
    after_pending = with_pending_memos(state) or contract
    found = []
    for invoice in contract.invoices:
        cur = invoice.currency
        credited = sum_money((m.total for m in contract.credit_memos if m.invoice_id == invoice.invoice_id), cur)
        paid = sum_money((p.amount for p in state.payments if p.invoice_id == invoice.invoice_id), cur)
        found.append(
            InvoiceRef(
                invoice_id=invoice.invoice_id,
                erp_invoice_id=state.erp_invoice_ids.get(invoice.invoice_id),
                period=invoice.period,
                invoice_date=invoice.invoice_date,
                due_date=invoice.due_date,
                total=invoice.total.rounded(),
                open=(invoice.total - credited - paid).rounded(),
                lines=[
                    InvoiceLineRef(
                        invoice_line_id=line.invoice_line_id,
                        contract_line_id=line.contract_line_id,
                        description=line.description,
                        net=line.net.rounded(),
                        credited=credited_on(contract, line.invoice_line_id, cur).rounded(),
                        creditable=max(
                            line.net - credited_on(after_pending, line.invoice_line_id, cur), Money.zero(cur)
                        ).rounded(),
                    )
                    for line in invoice.lines
                ],
                functional=_rounded(invoice.functional),
                reporting=_rounded(invoice.reporting),
            )
        )
    return found


def _rounded(converted: Converted | None) -> Money | None:
    return converted.rounded() if converted is not None else None


def revenue(state: EngagementState) -> list[PeriodRevenue]:
    contract = state.contract
    if contract is None:
        return []
    by_period: dict[str, PeriodRevenue] = {}
    for entry in contract.revenue_entries:
        row = by_period.setdefault(
            entry.period, PeriodRevenue(period=entry.period, amount=Money.zero(contract.currency))
        )
        row.amount = row.amount + entry.amount
        for side in ("functional", "reporting"):
            converted: Converted | None = getattr(entry, side)
            if converted is not None:
                so_far: Money | None = getattr(row, side)
                add = converted.rounded()
                setattr(row, side, add if so_far is None else so_far + add)
    return [by_period[p].model_copy(update={"amount": by_period[p].amount.rounded()}) for p in sorted(by_period)]


def readable(state: EngagementState) -> EngagementView:
    """The stored view with the lines and invoices a person names in the next request."""
    return state.view.model_copy(
        update={"contract_lines": contract_lines(state), "invoices": invoices(state), "revenue": revenue(state)}
    )
