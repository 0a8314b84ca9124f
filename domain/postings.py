"""Canonical records of time & expense posting: what the PSA holds unposted, and the time
bills and summarized journals the ERP receives (with each record's outcome)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, Field

from domain.journals import ChartOfAccounts
from domain.model import ExpenseEntry, JournalEntry, Resource, TimeEntry
from domain.money import Money


class TimeBill(BaseModel):
    external_id: str  # d2r's id for the day entry: a retry upserts the same record
    employee_id: str  # the PSA resource id (the NetSuite employee's externalId)
    legal_entity: str  # the subsidiary that employed the consultant that day
    work_date: date
    hours: str
    billable: bool
    memo: str
    project_id: str
    opportunity_id: str | None = None
    entry_id: str


class PostingLine(BaseModel):
    account: str  # "5000 Project cost"
    debit: str | None = None
    credit: str | None = None
    memo: str
    source_id: str  # the PSA record (timecard / expense) the line comes from
    project_id: str | None = None


class PostingJournal(BaseModel):
    external_id: str
    legal_entity: str
    currency: str
    tran_date: date
    memo: str
    lines: list[PostingLine]


class PostOutcome(BaseModel):
    """What happened to one record: posted, or the error that keeps it out."""

    key: str
    record_id: str | None = None
    error_code: str | None = None
    error: str | None = None


class PostingProject(BaseModel):
    project_id: str
    opportunity_id: str | None = None
    customer_id: str | None = None
    contract_id: str | None = None
    legal_entity: str
    currency: str


class PendingEntries(BaseModel):
    """One chunk of projects and their approved, unposted time and expenses."""

    projects: list[PostingProject]
    time_entries: list[TimeEntry] = Field(default_factory=list)
    expenses: list[ExpenseEntry] = Field(default_factory=list)
    resources: list[Resource] = Field(default_factory=list)
    bill_rates: dict[str, Decimal] = Field(default_factory=dict)  # timecard id -> bill rate
    # records that cannot become entries (no resource, no hours, no amount...): id -> why
    unreadable: dict[str, str] = Field(default_factory=dict)
    # records a posting run page claimed before writing its journals: id -> "<run id>:p<page>"
    claims: dict[str, str] = Field(default_factory=dict)


def _amount(money: Money) -> str:
    return str(money.rounded().amount)


def accrual_lines(
    debit_account: str, amount: Money, memo: str, source_id: str, project_id: str | None, coa: ChartOfAccounts
) -> list[PostingLine]:
    """A cost accrued for a PSA record: the cost account debited, accrued costs credited."""
    return [
        PostingLine(
            account=debit_account, debit=_amount(amount), memo=memo, source_id=source_id, project_id=project_id
        ),
        PostingLine(
            account=coa.accrued_costs, credit=_amount(amount), memo=memo, source_id=source_id, project_id=project_id
        ),
    ]


def time_cost_lines(cost: Money, memo: str, source_id: str, project_id: str, coa: ChartOfAccounts) -> list[PostingLine]:
    """A timecard's cost in its entity's books (cost rate x hours)."""
    return accrual_lines(coa.project_cost, cost, memo, source_id, project_id, coa)


def expense_cost_lines(
    amount: Money, memo: str, source_id: str, project_id: str, coa: ChartOfAccounts
) -> list[PostingLine]:
    """An expense in its project's entity's books and currency."""
    return accrual_lines(coa.project_expenses, amount, memo, source_id, project_id, coa)


def journal_posting_lines(journal: JournalEntry, source_id: str) -> list[PostingLine]:
    """A domain journal entry (e.g. an intercompany charge) as lines of a batch posting journal."""
    return [
        PostingLine(
            account=line.account,
            debit=_amount(line.debit) if line.debit.amount else None,
            credit=_amount(line.credit) if line.credit.amount else None,
            memo=f"{journal.memo} ({journal.journal_entry_id})",
            source_id=source_id,
            project_id=journal.lineage.project_id,
        )
        for line in journal.lines
    ]
