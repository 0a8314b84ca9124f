"""The canonical records d2r reads and writes (DESIGN.md §3).

The booked deal itself (Customer, Engagement, ContractLine, OpportunitySnapshot) lives
in `domain.deal`; this module holds everything around it. Every record d2r derives
carries a stable id and the lineage keys, so any figure in the ERP or the hub can be
traced back to the opportunity it came from.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.deal import (
    BillingModel,
    ContractLine,
    Customer,
    Engagement,
    OpportunitySnapshot,
    RevenueMethod,
)
from domain.fx import Converted
from domain.money import CurrencyCode, Money
from domain.periods import Period
from domain.tax import TaxTreatment

# The CRM's opportunity, as d2r reads it.
Opportunity = OpportunitySnapshot

__all__ = [
    "BillingModel",
    "ContractLine",
    "Customer",
    "Engagement",
    "Opportunity",
    "RevenueMethod",
]


def record_id(kind: str, *parts: str | int) -> str:
    """A deterministic id: same inputs, same id, so a replayed step upserts, never duplicates."""
    raw = ":".join(str(p) for p in parts)
    if len(raw) <= 72:
        return f"{kind}:{raw}"
    return f"{kind}:{hashlib.sha256(raw.encode()).hexdigest()[:32]}"


def digest(*parts: str | int) -> str:
    """A short content hash for ids whose natural key is a set of things."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:12]


class Lineage(BaseModel):
    """The keys every derived record carries back to the deal it came from."""

    opportunity_id: str
    customer_id: str
    project_id: str
    contract_id: str
    legal_entity: str


class LegalEntity(BaseModel):
    code: str
    name: str
    functional_currency: CurrencyCode
    tax_jurisdiction: str  # ISO country code
    erp_instance: str  # which ERP instance holds this entity's books


# --- rates and people -------------------------------------------------------------------


class RateCardEntry(BaseModel):
    role: str
    bill_rate: Decimal = Field(ge=0)  # per hour, in the rate card's currency
    cost_rate: Decimal | None = Field(default=None, ge=0)
    effective_from: date
    effective_to: date | None = None  # inclusive; None: until replaced
    # Whose rate this is: one account's, one region's, or (both None) the generic one.
    account_id: str | None = None
    region: str | None = None

    def specificity(self) -> int:
        """An account's own rate beats its region's, which beats the generic one."""
        return 2 * (self.account_id is not None) + (self.region is not None)


class RateCard(BaseModel):
    """The rates a project can use: entries for its account, its region and generic ones.

    `account_id` and `region` say whose project it is; entries scoped to another account or
    region never apply.
    """

    rate_card_id: str
    currency: CurrencyCode
    entries: list[RateCardEntry] = Field(default_factory=list)
    account_id: str | None = None
    region: str | None = None

    def entry(self, role: str, on: date) -> RateCardEntry:
        live = [
            e
            for e in self.entries
            if e.role == role
            and e.effective_from <= on
            and (e.effective_to is None or on <= e.effective_to)
            and e.account_id in (None, self.account_id)
            and e.region in (None, self.region)
        ]
        if not live:
            raise LookupError(f"rate card {self.rate_card_id} has no rate for {role!r} on {on}")
        # The most specific scope wins; within it a later entry supersedes an open-ended one.
        return max(live, key=lambda e: (e.specificity(), e.effective_from))

    def bill_rate(self, role: str, on: date) -> Money:
        return Money(amount=self.entry(role, on).bill_rate, currency=self.currency)


class ResourceTransfer(BaseModel):
    """From `effective_from` the consultant belongs to another entity (and maybe role/cost)."""

    effective_from: date
    legal_entity: str
    cost_rate: Money | None = None
    role: str | None = None


class MissingCostRateError(LookupError):
    """A consultant with no cost rate of their own and none on the rate card for their role."""


class ResourcePosition(BaseModel):
    legal_entity: str
    role: str
    cost_rate: Money | None  # None: the rate card's cost rate for `role` applies


class Resource(BaseModel):
    resource_id: str
    name: str
    role: str
    home_legal_entity: str
    # Per hour, in the home entity's functional currency; None: the consultant has no cost
    # rate of their own, and the rate card's cost rate for their role applies.
    cost_rate: Money | None = None
    transfers: list[ResourceTransfer] = Field(default_factory=list)

    def cost_rate_on(self, day: date, card: RateCard | None = None) -> Money:
        """The cost of one hour on `day`: the consultant's own rate (or their transfer's),
        else the card's cost rate for the role they held that day; never a guess."""
        pos = self.position_on(day)
        if pos.cost_rate is not None:
            return pos.cost_rate
        if card is not None:
            try:
                entry = card.entry(pos.role, day)
            except LookupError:
                entry = None
            if entry is not None and entry.cost_rate is not None:
                return Money(amount=entry.cost_rate, currency=card.currency)
        raise MissingCostRateError(f"no cost rate for {self.resource_id} ({pos.role}) on {day}")

    def position_on(self, day: date) -> ResourcePosition:
        """Where the consultant sat on `day`: transfers apply from their date, in order."""
        pos = ResourcePosition(legal_entity=self.home_legal_entity, role=self.role, cost_rate=self.cost_rate)
        for t in sorted(self.transfers, key=lambda t: t.effective_from):
            if t.effective_from <= day:
                pos = ResourcePosition(
                    legal_entity=t.legal_entity, role=t.role or pos.role, cost_rate=t.cost_rate or pos.cost_rate
                )
        return pos


# --- delivery -----------------------------------------------------------------------------


class Milestone(BaseModel):
    milestone_id: str
    name: str
    contract_line_id: str | None = None  # the line it bills / recognizes, if any
    weight: Decimal = Field(default=Decimal(1), ge=0)  # share of the line's price
    due_date: date | None = None
    completed_on: date | None = None

    def completed_by(self, day: date) -> bool:
        return self.completed_on is not None and self.completed_on <= day


class Phase(BaseModel):
    phase_id: str
    name: str
    milestones: list[Milestone] = Field(default_factory=list)


class Assignment(BaseModel):
    resource_id: str
    role: str
    start: date
    end: date | None = None
    planned_hours: Decimal | None = None


class Project(BaseModel):
    project_id: str
    name: str
    lineage: Lineage
    phases: list[Phase] = Field(default_factory=list)
    assignments: list[Assignment] = Field(default_factory=list)

    @property
    def milestones(self) -> list[Milestone]:
        return [m for phase in self.phases for m in phase.milestones]


class EntryStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"


class TimeEntry(BaseModel):
    entry_id: str
    resource_id: str
    project_id: str
    contract_line_id: str
    work_date: date
    hours: Decimal = Field(gt=0)
    role: str | None = None  # None: the resource's role on the work date
    billable: bool = True
    status: EntryStatus = EntryStatus.APPROVED
    approved_on: date | None = None


class ExpenseEntry(BaseModel):
    entry_id: str
    resource_id: str
    project_id: str
    contract_line_id: str
    incurred_on: date
    amount: Money
    category: str = "travel"
    billable: bool = True
    status: EntryStatus = EntryStatus.APPROVED
    approved_on: date | None = None


# --- billing and receivables -------------------------------------------------------------


class SourceKind(StrEnum):
    TIME = "time"
    EXPENSE = "expense"
    MILESTONE = "milestone"
    RETAINER = "retainer"


class BilledPortion(BaseModel):
    """How much of one source (time entry, expense, milestone, retainer period) an event bills."""

    source_kind: SourceKind
    source_id: str
    quantity: Decimal  # hours for time; 1 for a whole expense, milestone or retainer period
    amount: Money  # unrounded: rounding happens on the invoice line


class BillingEvent(BaseModel):
    billing_event_id: str
    lineage: Lineage
    contract_line_id: str
    billing_model: BillingModel
    kind: SourceKind
    period: Period
    event_date: date
    description: str
    amount: Money  # unrounded sum of the portions
    portions: list[BilledPortion]


class TaxLine(BaseModel):
    treatment: TaxTreatment
    jurisdiction: str
    rate: Decimal
    amount: Money
    note: str | None = None


class InvoiceLine(BaseModel):
    invoice_line_id: str
    contract_line_id: str
    billing_event_id: str
    kind: SourceKind
    description: str
    net: Money  # rounded: this is where the billing event becomes a document
    tax: TaxLine

    @property
    def gross(self) -> Money:
        return self.net + self.tax.amount


class Invoice(BaseModel):
    invoice_id: str
    lineage: Lineage
    customer_id: str
    currency: CurrencyCode
    invoice_date: date
    due_date: date
    period: Period
    lines: list[InvoiceLine]
    net_total: Money
    tax_total: Money
    total: Money
    functional: Converted | None = None  # total in the legal entity's functional currency
    reporting: Converted | None = None  # total in the group's reporting currency


class CreditMemoLine(BaseModel):
    credit_memo_line_id: str
    invoice_line_id: str
    contract_line_id: str
    kind: SourceKind
    net: Money  # positive: the amount credited
    tax: Money
    price_concession: bool  # True: the transaction price drops; False: a billing correction
    rebill_source_ids: list[str] = Field(default_factory=list)  # sources released for re-billing


class CreditMemo(BaseModel):
    credit_memo_id: str
    lineage: Lineage
    invoice_id: str
    memo_date: date
    reason: str
    lines: list[CreditMemoLine]
    net_total: Money
    tax_total: Money
    total: Money


class Payment(BaseModel):
    payment_id: str
    lineage: Lineage
    invoice_id: str
    received_on: date
    amount: Money
    functional: Converted | None = None


# --- revenue and the ledger ---------------------------------------------------------------


class RevenueEntryKind(StrEnum):
    RECOGNITION = "recognition"
    CATCH_UP = "catch_up"  # cumulative effect of a contract modification
    REVERSAL = "reversal"  # compensation of an earlier entry


class RevenueEntry(BaseModel):
    revenue_entry_id: str
    lineage: Lineage
    contract_line_id: str
    period: Period
    entry_date: date
    method: RevenueMethod
    kind: RevenueEntryKind = RevenueEntryKind.RECOGNITION
    amount: Money  # rounded: it is posted as a journal
    cumulative: Money  # recognized on the line after this entry
    basis: str = ""  # how the figure was reached, in words an auditor can redo
    functional: Converted | None = None  # in the legal entity's functional currency
    reporting: Converted | None = None  # in the group's reporting currency


class JournalLine(BaseModel):
    account: str
    debit: Money
    credit: Money
    memo: str = ""


class JournalEntry(BaseModel):
    journal_entry_id: str
    lineage: Lineage
    legal_entity: str
    entry_date: date
    period: Period
    currency: CurrencyCode
    memo: str
    lines: list[JournalLine]

    def is_balanced(self) -> bool:
        debit = sum((line.debit.amount for line in self.lines), Decimal(0))
        credit = sum((line.credit.amount for line in self.lines), Decimal(0))
        return debit == credit


# --- people and problems --------------------------------------------------------------------


class ApprovalDecision(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"  # another approval of the same change was rejected: nothing left to decide


class Approval(BaseModel):
    approval_id: str
    subject: str  # what is being approved, e.g. "deal", "amendment:AM-1", "credit_memo:CM-1"
    requested_by: str
    requested_at: datetime
    approver_roles: list[str]
    decision: ApprovalDecision = ApprovalDecision.PENDING
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None


class Severity(StrEnum):
    WARNING = "warning"
    ERROR = "error"


class ExceptionRecord(BaseModel):
    """A business problem a person must look at (named so it does not shadow `Exception`)."""

    exception_id: str
    lineage: Lineage | None = None
    code: str
    message: str
    severity: Severity = Severity.ERROR
    source_id: str | None = None  # the entry, invoice or line concerned
    raised_on: date
