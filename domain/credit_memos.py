"""Credit memos: full or partial, per invoice line, always with a reason.

A credit is one of two things, and the memo must say which:
- a price concession: the customer pays less for the same work, so the transaction price
  (and the revenue that follows it) drops, and the work stays billed;
- a billing correction: the invoice was wrong; where the memo names sources (time
  entries, expenses, milestones, retainer periods) they are released on the billed
  ledger and the next billing run bills them again, correctly.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from domain.contract import ContractState, LedgerRow
from domain.model import CreditMemo, CreditMemoLine, Invoice, InvoiceLine, record_id
from domain.money import Money, sum_money


class CreditMemoError(ValueError):
    """The memo cannot be issued as asked (a business error: a person must change it)."""


class CreditLineRequest(BaseModel):
    invoice_line_id: str
    amount: Money | None = None  # None: whatever of the line is not yet credited
    price_concession: bool = True
    # Sources to release for re-billing (billing corrections only). None with a correction:
    # every source the line billed when the whole line is credited, none otherwise.
    rebill_source_ids: list[str] | None = None


class CreditMemoRequest(BaseModel):
    credit_memo_id: str  # a business id from the request, so a retry does not credit twice
    invoice_id: str
    memo_date: date
    reason: str = Field(min_length=1)
    lines: list[CreditLineRequest] = Field(min_length=1)


class CreditMemoResult(BaseModel):
    state: ContractState
    memo: CreditMemo
    released: list[LedgerRow]


def _credited_so_far(state: ContractState, invoice_line_id: str) -> tuple[Money, Money] | None:
    nets = [cl.net for cm in state.credit_memos for cl in cm.lines if cl.invoice_line_id == invoice_line_id]
    taxes = [cl.tax for cm in state.credit_memos for cl in cm.lines if cl.invoice_line_id == invoice_line_id]
    if not nets:
        return None
    return sum_money(nets, nets[0].currency), sum_money(taxes, taxes[0].currency)


def _find_line(invoice: Invoice, invoice_line_id: str) -> InvoiceLine:
    for line in invoice.lines:
        if line.invoice_line_id == invoice_line_id:
            return line
    raise CreditMemoError(f"invoice {invoice.invoice_id} has no line {invoice_line_id}")


def apply_credit_memo(state: ContractState, request: CreditMemoRequest) -> CreditMemoResult:
    memo_id = record_id("cm", state.lineage.contract_id, request.credit_memo_id)
    if any(cm.credit_memo_id == memo_id for cm in state.credit_memos):
        raise CreditMemoError(f"credit memo {request.credit_memo_id} was already issued")
    invoice = next((i for i in state.invoices if i.invoice_id == request.invoice_id), None)
    if invoice is None:
        raise CreditMemoError(f"unknown invoice {request.invoice_id}")
    events = {e.billing_event_id: e for e in state.billing_events}
    ledger = list(state.ledger)
    released: list[LedgerRow] = []
    lines: list[CreditMemoLine] = []
    seen: set[str] = set()
    for n, req in enumerate(request.lines, start=1):
        if req.invoice_line_id in seen:
            raise CreditMemoError(f"line {req.invoice_line_id} appears twice in one memo")
        seen.add(req.invoice_line_id)
        inv_line = _find_line(invoice, req.invoice_line_id)
        before = _credited_so_far(state, req.invoice_line_id)
        net_before, tax_before = before or (Money.zero(invoice.currency), Money.zero(invoice.currency))
        open_net = inv_line.net - net_before
        open_tax = inv_line.tax.amount - tax_before
        event = events[inv_line.billing_event_id]
        rebill = req.rebill_source_ids
        if req.price_concession and rebill:
            raise CreditMemoError("a price concession keeps the work billed; it cannot release it")
        portions = {p.source_id: p for p in state.portions_of(event.billing_event_id)}
        if rebill is not None:
            unknown = set(rebill) - set(portions)
            if unknown:
                raise CreditMemoError(f"line {req.invoice_line_id} did not bill {sorted(unknown)}")
        amount = req.amount
        if amount is None:
            if rebill:
                amount = sum_money((portions[s].amount for s in rebill), invoice.currency).rounded()
            else:
                amount = open_net
        if amount.currency != invoice.currency:
            raise CreditMemoError("a credit is in the invoice's currency")
        if not amount.is_whole() or not amount.is_positive():
            raise CreditMemoError(f"credit amount {amount} must be positive whole minor units")
        if amount > open_net:
            raise CreditMemoError(f"line {req.invoice_line_id}: {amount} exceeds the {open_net} not yet credited")
        if rebill is None and not req.price_concession and amount == open_net:
            rebill = list(portions)
        # The last credit on a line takes exactly the tax left, so a line credited in parts
        # never credits a cent more or less tax than it charged.
        if amount == open_net:
            tax = open_tax
        else:
            tax = min(amount.times(inv_line.tax.rate).rounded(), open_tax)
        if rebill:
            if before is not None:
                # An earlier credit already gave part of this line back; releasing its
                # sources now would bill the customer for that part a second time.
                raise CreditMemoError(
                    f"line {req.invoice_line_id} was already credited; its sources can no "
                    "longer be released for re-billing"
                )
            releasing = sum_money((portions[s].amount for s in rebill), invoice.currency)
            if amount < releasing.rounded():
                raise CreditMemoError(
                    f"line {req.invoice_line_id}: a correction must credit at least the "
                    f"{releasing.rounded()} it releases for re-billing"
                )
        for source_id in rebill or []:
            portion = portions[source_id]
            tag = f"{memo_id}|{event.billing_event_id}"
            if any(r.source_id == source_id and _released_from(r, event.billing_event_id) for r in ledger):
                continue  # an earlier memo already released it from this invoice line
            row = LedgerRow(
                seq=len(ledger),
                source_kind=portion.source_kind,
                source_id=source_id,
                contract_line_id=event.contract_line_id,
                quantity=-portion.quantity,
                amount=-portion.amount,
                document_id=tag,
                recorded_on=request.memo_date,
            )
            ledger.append(row)
            released.append(row)
        lines.append(
            CreditMemoLine(
                credit_memo_line_id=f"{memo_id}:{n}",
                invoice_line_id=req.invoice_line_id,
                contract_line_id=inv_line.contract_line_id,
                kind=inv_line.kind,
                net=amount,
                tax=tax,
                price_concession=req.price_concession,
                rebill_source_ids=list(rebill or []),
            )
        )
    net_total = sum_money((cl.net for cl in lines), invoice.currency)
    tax_total = sum_money((cl.tax for cl in lines), invoice.currency)
    memo = CreditMemo(
        credit_memo_id=memo_id,
        lineage=state.lineage,
        invoice_id=invoice.invoice_id,
        memo_date=request.memo_date,
        reason=request.reason,
        lines=lines,
        net_total=net_total,
        tax_total=tax_total,
        total=net_total + tax_total,
    )
    new_state = state.model_copy(update={"ledger": ledger, "credit_memos": [*state.credit_memos, memo]})
    return CreditMemoResult(state=new_state, memo=memo, released=released)


def _released_from(row: LedgerRow, billing_event_id: str) -> bool:
    return row.document_id.endswith(f"|{billing_event_id}")
