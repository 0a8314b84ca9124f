"""One engagement's commercial state: current terms per contract line and every money
document issued against it (append-only).

Workflows keep a `ContractState` and pass it to the pure rules (`bill_period`,
`recognize_period`, `apply_amendment`, `apply_credit_memo`), each of which returns a new
state plus the documents it produced. Every balance (billed, credited, recognized,
deferred, unbilled) is derived from the documents, never stored beside them, so the
figures cannot drift apart.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from pydantic import BaseModel, Field

from domain.deal import BillingModel, ContractLine, Customer, Engagement
from domain.model import (
    BilledPortion,
    BillingEvent,
    CreditMemo,
    Invoice,
    Lineage,
    Payment,
    RevenueEntry,
    SourceKind,
)
from domain.money import CurrencyCode, Money, sum_money


class ProspectiveBase(BaseModel):
    """Where a line stood when a prospective modification took effect.

    Revenue after it spreads the remaining price over the remaining progress only, so
    what was already recognized is never restated.
    """

    amendment_id: str
    recognized: Money
    measure: Decimal  # progress measure at the modification: cost, milestone weight or periods


class LineTerms(BaseModel):
    line: ContractLine  # `amount` is the current price after amendments
    estimate_at_completion: Money | None = None  # cost-to-cost lines: total expected cost
    not_to_exceed: Money | None = None  # T&M cap; hours beyond it wait for a change order
    expense_markup: Decimal = Decimal(0)  # 0.10 bills expenses at cost + 10 %
    service_start: date | None = None  # retainer / ratable service period
    service_end: date | None = None
    service_code: str | None = None  # for tax exemptions configured per service
    base: ProspectiveBase | None = None
    active: bool = True


class LedgerRow(BaseModel):
    """One append-only line of the billed ledger.

    A positive quantity bills part of a source (time entry, expense, milestone, retainer
    period); a negative one releases it for re-billing after a credit memo. What is left to
    bill of a source is always its size minus the sum of its rows.
    """

    seq: int
    source_kind: SourceKind
    source_id: str
    contract_line_id: str
    quantity: Decimal
    amount: Money
    document_id: str  # the billing event or credit memo that wrote the row
    recorded_on: date


class ContractState(BaseModel):
    lineage: Lineage
    customer: Customer
    currency: CurrencyCode
    billing_terms: str = "Net 30"
    contract_start: date | None = None
    contract_end: date | None = None
    terms: dict[str, LineTerms]
    ledger: list[LedgerRow] = Field(default_factory=list)
    billing_events: list[BillingEvent] = Field(default_factory=list)
    invoices: list[Invoice] = Field(default_factory=list)
    credit_memos: list[CreditMemo] = Field(default_factory=list)
    revenue_entries: list[RevenueEntry] = Field(default_factory=list)
    payments: list[Payment] = Field(default_factory=list)
    amendment_ids: list[str] = Field(default_factory=list)
    reverted_amendment_ids: list[str] = Field(default_factory=list)

    # --- derived figures ---------------------------------------------------------------

    def zero(self) -> Money:
        return Money.zero(self.currency)

    def billed_quantity(self, source_id: str) -> Decimal:
        return sum((r.quantity for r in self.ledger if r.source_id == source_id), Decimal(0))

    def portions_of(self, billing_event_id: str) -> list[BilledPortion]:
        """What one billing event billed, read back from the ledger rows it wrote."""
        return [
            BilledPortion(source_kind=r.source_kind, source_id=r.source_id, quantity=r.quantity, amount=r.amount)
            for r in self.ledger
            if r.document_id == billing_event_id
        ]

    def billed_quantities(self) -> dict[str, Decimal]:
        """The ledger folded per source, once, for runs that look up many sources."""
        out: dict[str, Decimal] = {}
        for r in self.ledger:
            out[r.source_id] = out.get(r.source_id, Decimal(0)) + r.quantity
        return out

    def ledger_amount(self, line_id: str, kind: SourceKind) -> Money:
        return sum_money(
            (r.amount for r in self.ledger if r.contract_line_id == line_id and r.source_kind is kind), self.currency
        )

    def billed(self, line_id: str, kinds: set[SourceKind] | None = None) -> Money:
        return sum_money(
            (
                il.net
                for inv in self.invoices
                for il in inv.lines
                if il.contract_line_id == line_id and (kinds is None or il.kind in kinds)
            ),
            self.currency,
        )

    def credited(self, line_id: str, kinds: set[SourceKind] | None = None, concession: bool | None = None) -> Money:
        return sum_money(
            (
                cl.net
                for cm in self.credit_memos
                for cl in cm.lines
                if cl.contract_line_id == line_id
                and (kinds is None or cl.kind in kinds)
                and (concession is None or cl.price_concession == concession)
            ),
            self.currency,
        )

    def net_billed(self, line_id: str, kinds: set[SourceKind] | None = None) -> Money:
        return self.billed(line_id, kinds) - self.credited(line_id, kinds)

    def recognized(self, line_id: str) -> Money:
        return sum_money((e.amount for e in self.revenue_entries if e.contract_line_id == line_id), self.currency)

    def fee_concessions(self, line_id: str) -> Money:
        """Price concessions on the fee (not on re-billed expenses): they cut the price."""
        return self.credited(line_id, FEE_KINDS, concession=True)

    def transaction_price(self, line_id: str) -> Money:
        """What the customer owes for the line as things stand (ASC 606 step 3).

        Fixed fee, milestone, retainer: the current price less concessions, plus re-billed
        expenses. Time and materials: what has been billed, net of credits (the
        consideration is variable and becomes known as it is billed).
        """
        terms = self.terms[line_id]
        expenses = self.net_billed(line_id, {SourceKind.EXPENSE})
        if terms.line.billing_model is BillingModel.TIME_AND_MATERIALS:
            return self.net_billed(line_id, {SourceKind.TIME}) + expenses
        return terms.line.amount - self.fee_concessions(line_id) + expenses

    def position(self, line_id: str) -> LinePosition:
        billed, credited = self.billed(line_id), self.credited(line_id)
        net = billed - credited
        recognized = self.recognized(line_id)
        return LinePosition(
            contract_line_id=line_id,
            contract_price=self.terms[line_id].line.amount,
            transaction_price=self.transaction_price(line_id),
            billed=billed,
            credited=credited,
            net_billed=net,
            recognized=recognized,
            deferred=(net - recognized).positive_part(),
            unbilled=(recognized - net).positive_part(),
        )

    def positions(self) -> list[LinePosition]:
        return [self.position(line_id) for line_id in self.terms]


FEE_KINDS = {SourceKind.TIME, SourceKind.MILESTONE, SourceKind.RETAINER}


class LinePosition(BaseModel):
    """Per contract line: deferred revenue and unbilled receivable are never both positive."""

    contract_line_id: str
    contract_price: Money
    transaction_price: Money
    billed: Money
    credited: Money
    net_billed: Money
    recognized: Money
    deferred: Money  # billed - recognized, when positive (contract liability)
    unbilled: Money  # recognized - billed, when positive (contract asset)


def open_contract(
    engagement: Engagement,
    *,
    project_id: str,
    contract_id: str,
    line_terms: dict[str, LineTerms] | None = None,
) -> ContractState:
    """The state at booking: one `LineTerms` per contract line. Terms not given here come
    from the deal's line (its estimate at completion, its not-to-exceed cap)."""
    given = line_terms or {}
    terms = {}
    for line in engagement.lines:
        t = given.get(line.line_id) or LineTerms(
            line=line, estimate_at_completion=line.estimate_at_completion, not_to_exceed=line.not_to_exceed
        )
        terms[line.line_id] = t.model_copy(update={"line": line})
    return ContractState(
        lineage=Lineage(
            opportunity_id=engagement.opportunity_id,
            customer_id=engagement.customer.customer_id,
            project_id=project_id,
            contract_id=contract_id,
            legal_entity=engagement.legal_entity,
        ),
        customer=engagement.customer,
        currency=engagement.currency,
        billing_terms=engagement.billing_terms,
        contract_start=engagement.contract_start,
        contract_end=engagement.contract_end,
        terms=terms,
    )


def payment_terms_days(billing_terms: str) -> int:
    """'Net 30' -> 30; anything unreadable falls back to 30, the common default."""
    match = re.search(r"(\d+)", billing_terms)
    return int(match.group(1)) if match else 30
