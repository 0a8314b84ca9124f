"""Receivables: what each invoice still owes, payments against it, and what is overdue.

An invoice's open balance is its total (tax included) less the credit memos against it
and the payments received; overdue means open past the due date, judged on a date the
caller passes in (never "today" read from a clock).
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from domain.contract import ContractState
from domain.model import Invoice, Payment, record_id
from domain.money import Money, sum_money


class PaymentError(ValueError):
    pass


class InvoiceStatus(BaseModel):
    invoice_id: str
    total: Money
    credited: Money
    paid: Money
    open: Money
    due_date: date
    overdue: bool
    days_overdue: int


def _invoice(state: ContractState, invoice_id: str) -> Invoice:
    for inv in state.invoices:
        if inv.invoice_id == invoice_id:
            return inv
    raise PaymentError(f"unknown invoice {invoice_id}")


def invoice_status(state: ContractState, invoice_id: str, on: date) -> InvoiceStatus:
    inv = _invoice(state, invoice_id)
    credited = sum_money((m.total for m in state.credit_memos if m.invoice_id == invoice_id), inv.currency)
    paid = sum_money((p.amount for p in state.payments if p.invoice_id == invoice_id), inv.currency)
    open_ = inv.total - credited - paid
    overdue = open_.is_positive() and on > inv.due_date
    return InvoiceStatus(
        invoice_id=invoice_id,
        total=inv.total,
        credited=credited,
        paid=paid,
        open=open_,
        due_date=inv.due_date,
        overdue=overdue,
        days_overdue=(on - inv.due_date).days if overdue else 0,
    )


def record_payment(
    state: ContractState, *, payment_ref: str, invoice_id: str, amount: Money, received_on: date
) -> tuple[ContractState, Payment]:
    """Apply a payment to one invoice. The ERP's payment reference makes a retry harmless."""
    payment_id = record_id("pay", state.lineage.contract_id, payment_ref)
    for existing in state.payments:
        if existing.payment_id == payment_id:
            return state, existing
    status = invoice_status(state, invoice_id, received_on)
    if amount.currency != status.total.currency:
        raise PaymentError("a payment is applied in the invoice's currency")
    if not amount.is_positive() or amount > status.open:
        raise PaymentError(f"payment {amount} does not fit the open {status.open}")
    payment = Payment(
        payment_id=payment_id, lineage=state.lineage, invoice_id=invoice_id, received_on=received_on, amount=amount
    )
    return state.model_copy(update={"payments": [*state.payments, payment]}), payment


def receivables_summary(state: ContractState, on: date) -> dict[str, Money]:
    """Billed, credited, collected, open and overdue totals (tax included) for one contract."""
    statuses = [invoice_status(state, inv.invoice_id, on) for inv in state.invoices]
    cur = state.currency
    return {
        "billed": sum_money((s.total for s in statuses), cur),
        "credited": sum_money((s.credited for s in statuses), cur),
        "collected": sum_money((s.paid for s in statuses), cur),
        "open": sum_money((s.open for s in statuses), cur),
        "overdue": sum_money((s.open for s in statuses if s.overdue), cur),
    }
