"""Journal entries for the documents d2r issues: balanced, rounded, one currency each.

Invoices and revenue meet in one contract-balance account: revenue debits it, billing
credits it, so its balance is unbilled receivable (debit) or deferred revenue (credit) —
the same figure `ContractState.position` reports, by construction.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict

from domain.fx import FxRateTable
from domain.intercompany import IntercompanyCharge
from domain.model import CreditMemo, Invoice, JournalEntry, JournalLine, RevenueEntry, record_id
from domain.money import Money


class ChartOfAccounts(BaseModel):
    """d2r's one chart of accounts: every journal line d2r writes names one of these (the
    ERP connector maps the leading number to the ERP's account)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt account in a firm's file is an error

    receivables: str = "1200 Accounts receivable"
    contract_balance: str = "1250 Contract balance (unbilled / deferred)"
    tax_payable: str = "2200 Output tax payable"
    revenue: str = "4000 Services revenue"
    ic_receivable: str = "1300 Intercompany receivable"
    ic_payable: str = "2300 Intercompany payable"
    ic_revenue: str = "4900 Intercompany revenue"
    accrued_costs: str = "2400 Accrued payroll and expenses"
    project_cost: str = "5000 Project cost"  # consultants' time, own or charged by another entity
    project_expenses: str = "5100 Project expenses"


def _line(account: str, amount: Money, memo: str = "") -> JournalLine:
    """A debit for a positive amount, a credit for a negative one."""
    zero = Money.zero(amount.currency)
    if amount.is_negative():
        return JournalLine(account=account, debit=zero, credit=-amount, memo=memo)
    return JournalLine(account=account, debit=amount, credit=zero, memo=memo)


def invoice_journal(invoice: Invoice, coa: ChartOfAccounts | None = None) -> JournalEntry:
    coa = coa or ChartOfAccounts()
    return JournalEntry(
        journal_entry_id=record_id("je", invoice.invoice_id),
        lineage=invoice.lineage,
        legal_entity=invoice.lineage.legal_entity,
        entry_date=invoice.invoice_date,
        period=invoice.period,
        currency=invoice.currency,
        memo=f"invoice {invoice.invoice_id}",
        lines=[
            _line(coa.receivables, invoice.total),
            _line(coa.contract_balance, -invoice.net_total),
            _line(coa.tax_payable, -invoice.tax_total),
        ],
    )


def credit_memo_journal(memo: CreditMemo, period: str, coa: ChartOfAccounts | None = None) -> JournalEntry:
    coa = coa or ChartOfAccounts()
    return JournalEntry(
        journal_entry_id=record_id("je", memo.credit_memo_id),
        lineage=memo.lineage,
        legal_entity=memo.lineage.legal_entity,
        entry_date=memo.memo_date,
        period=period,
        currency=memo.total.currency,
        memo=f"credit memo {memo.credit_memo_id}: {memo.reason}",
        lines=[
            _line(coa.receivables, -memo.total),
            _line(coa.contract_balance, memo.net_total),
            _line(coa.tax_payable, memo.tax_total),
        ],
    )


def revenue_journal(
    entries: list[RevenueEntry], period: str, on: date, coa: ChartOfAccounts | None = None
) -> JournalEntry:
    """One entry per engagement and period: a line pair per revenue entry."""
    if not entries:
        raise ValueError("no revenue entries to journal")
    coa = coa or ChartOfAccounts()
    lines: list[JournalLine] = []
    for e in entries:
        memo = f"{e.contract_line_id} {e.kind.value}"
        lines += [_line(coa.contract_balance, e.amount, memo), _line(coa.revenue, -e.amount, memo)]
    first = entries[0]
    return JournalEntry(
        journal_entry_id=record_id(
            "je", "rev", first.lineage.contract_id, period, *(e.revenue_entry_id for e in entries)
        ),
        lineage=first.lineage,
        legal_entity=first.lineage.legal_entity,
        entry_date=on,
        period=period,
        currency=first.amount.currency,
        memo=f"revenue {period}",
        lines=lines,
    )


def intercompany_journals(
    charge: IntercompanyCharge,
    receiver_currency: str,
    fx: FxRateTable | None = None,
    coa: ChartOfAccounts | None = None,
) -> tuple[JournalEntry, JournalEntry]:
    """(provider's entry, receiver's entry); the receiver books in its own currency."""
    coa = coa or ChartOfAccounts()
    amount = charge.amount
    if receiver_currency == amount.currency:
        received = amount
    elif charge.receiver_amount is not None and charge.receiver_amount.converted.currency == receiver_currency:
        received = charge.receiver_amount.rounded()
    elif fx is not None:
        received = fx.convert(amount, receiver_currency, charge.charge_date).rounded()
    else:
        raise ValueError("an FX table is needed to book the charge in the receiver's currency")
    provider = JournalEntry(
        journal_entry_id=record_id("je", charge.charge_id, "provider"),
        lineage=charge.lineage,
        legal_entity=charge.provider_entity,
        entry_date=charge.charge_date,
        period=charge.period,
        currency=amount.currency,
        memo=f"intercompany charge to {charge.receiver_entity}",
        lines=[_line(coa.ic_receivable, amount), _line(coa.ic_revenue, -amount)],
    )
    receiver = JournalEntry(
        journal_entry_id=record_id("je", charge.charge_id, "receiver"),
        lineage=charge.lineage,
        legal_entity=charge.receiver_entity,
        entry_date=charge.charge_date,
        period=charge.period,
        currency=received.currency,
        memo=f"intercompany charge from {charge.provider_entity}",
        lines=[_line(coa.project_cost, received), _line(coa.ic_payable, -received)],
    )
    return provider, receiver
