"""Ports: every call d2r makes to an outside system, one protocol per capability, in
canonical types only (domain/). Nothing above `connectors/` knows which vendor answers.

A vendor package (connectors/<vendor>/) implements the ports of its system and bundles
one instance's implementations in a `CrmConnection`, `PsaConnection` or `ErpConnection`;
connectors/registry.py says which package builds which vendor's bundle (docs/connectors.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

from domain.billing import Delivery
from domain.deal import ContractLine, Engagement, OpportunitySnapshot
from domain.extracts import Bookings, ExtractProject, ProjectTotal
from domain.fx import FxRatePage
from domain.master_data import (
    CrmAccount,
    CrmAccountPage,
    Employee,
    EmployeeOutcome,
    ErpCustomer,
    ProjectOutcome,
    ProjectPage,
    PsaProject,
    ResourcePage,
)
from domain.model import CreditMemo, Invoice, JournalEntry
from domain.money import Money
from domain.postings import PendingEntries, PostingJournal, PostingProject, PostOutcome, TimeBill
from domain.system_records import (
    BillingStatus,
    CrmLinks,
    InvoiceLineage,
    InvoiceStatus,
    Notification,
    OpenItem,
    ProjectChange,
    ProjectRef,
    Receipt,
)

# ---- CRM ------------------------------------------------------------------------------------


class CrmPort(Protocol):
    async def read_opportunity(self, opportunity_id: str) -> OpportunitySnapshot: ...

    async def write_links(self, opportunity_id: str, links: CrmLinks) -> None: ...

    async def write_billing_status(self, opportunity_id: str, status: BillingStatus) -> None: ...

    async def set_contract_value(self, opportunity_id: str, amount: Money) -> None: ...

    async def notify(self, external_id: str, notification: Notification) -> str: ...


class CrmExtractPort(Protocol):
    """The CRM's side of the source sync: closed-won deals of an entity in a period."""

    async def bookings(self, legal_entity: str, start: date, end: date) -> Bookings: ...


class CrmAccountsPort(Protocol):
    """Accounts as master data: the CRM owns their identity and hierarchy (domain/ownership.py)."""

    async def changed_accounts(self, after: tuple[datetime, str] | None, limit: int) -> CrmAccountPage:
        """Accounts modified after `after` (modification time, then id), oldest first."""
        ...

    async def accounts(self, account_ids: Sequence[str]) -> list[CrmAccount]: ...

    async def accounts_like(self, tax_ids: Sequence[str], domains: Sequence[str]) -> list[CrmAccount]:
        """Accounts whose tax id or website domain is one of these (duplicate detection)."""
        ...

    async def write_account(self, account_id: str, values: dict[str, str | None]) -> None:
        """A person accepted a downstream value back into the owner (a resolved conflict)."""
        ...


# ---- PSA ------------------------------------------------------------------------------------


class PsaPort(Protocol):
    async def create_project(self, engagement: Engagement, external_id: str) -> ProjectRef: ...

    async def remove_project(self, external_id: str) -> bool: ...

    async def read_delivery(self, project_id: str, lines: list[ContractLine], cutoff: date) -> Delivery: ...

    async def read_deliveries(self, projects: dict[str, list[ContractLine]], cutoff: date) -> dict[str, Delivery]: ...

    async def write_billing_status(self, project_id: str, status: BillingStatus) -> None: ...

    async def mark_billed(self, time_entry_ids: list[str], expense_ids: list[str], billed: bool) -> int: ...

    async def apply_change(self, project_id: str, change: ProjectChange) -> None: ...

    async def set_stage(self, project_id: str, stage: str, active: bool) -> None: ...

    async def project_opportunity(self, project_id: str) -> str | None: ...


class PsaPostingPort(Protocol):
    """Approved, not yet posted time and expenses, a chunk of an entity's projects at a time."""

    async def projects(self, legal_entity: str, after: str, limit: int) -> list[PostingProject]: ...

    async def pending(self, projects: list[PostingProject], cutoff: date) -> PendingEntries: ...

    async def claim(self, timecard_ids: list[str], expense_ids: list[str], claim: str) -> int:
        """Mark records as taken by a posting page (`claim`) before its journals are written."""
        ...

    async def mark_posted(self, timecard_ids: list[str], expense_ids: list[str]) -> int: ...


class PsaResourcesPort(Protocol):
    """Consultants as master data: the PSA owns them; ERP employees derive from them."""

    async def changed_resources(self, after: tuple[datetime, str] | None, limit: int) -> ResourcePage:
        """Resources modified after `after` (modification time, then id), oldest first."""
        ...


class PsaProjectsPort(Protocol):
    """Projects as master data: the PSA owns them; the ERP's project dimension derives from them."""

    async def changed_projects(self, after: tuple[datetime, str] | None, limit: int) -> ProjectPage: ...


class PsaExtractPort(Protocol):
    """The PSA's side of the source sync: an entity's projects and their approved time."""

    async def projects(self, legal_entity: str, after: str, limit: int) -> list[ExtractProject]: ...

    async def approved_time(self, projects: list[ExtractProject], start: date, end: date) -> list[ProjectTotal]: ...


# ---- ERP ------------------------------------------------------------------------------------


class ErpPort(Protocol):
    """Master data (customers), sales orders and the engagement's documents."""

    async def upsert_customer(self, engagement: Engagement, external_id: str) -> str: ...

    async def create_sales_order(
        self, engagement: Engagement, customer_id: str, project_id: str, external_id: str
    ) -> str: ...

    async def cancel_sales_order(self, external_id: str) -> bool: ...

    async def update_sales_order_lines(self, external_id: str, lines: list[ContractLine]) -> None: ...

    async def close_sales_order(self, external_id: str) -> None: ...

    async def post_invoice(self, invoice: Invoice, customer_id: str, sales_order_id: str) -> str: ...

    async def post_credit_memo(self, memo: CreditMemo, customer_id: str, erp_invoice_id: str) -> str: ...

    async def void_credit_memo(self, credit_memo_id: str) -> bool: ...

    async def post_journal(self, journal: JournalEntry) -> str: ...

    async def reverse_journal(self, journal_entry_id: str) -> bool: ...

    async def invoice_status(self, invoice_id: str) -> InvoiceStatus | None: ...

    async def invoice_lineage(self, erp_invoice_id: str) -> InvoiceLineage | None: ...


class ReceivablesPort(Protocol):
    """Money in: receipts against d2r's invoices, and invoices open past their due date."""

    async def receipts(
        self, customer_id: str, since: date, through: date, opportunity_id: str | None = None
    ) -> list[Receipt]: ...

    async def open_items_due(
        self, legal_entity: str, due_from: date, due_to: date, opportunity_ids: Sequence[str] | None = None
    ) -> list[OpenItem] | None:
        """d2r invoices of the entity due in the range with money still open (of these
        opportunities only, when given); None when this ERP does not hold the entity."""
        ...


class ErpPostingPort(Protocol):
    """Time & expense posting: time bills and summarized journals, each record's outcome
    reported (a refusal isolates the record, not the page)."""

    async def post_time_bills(self, bills: Sequence[TimeBill]) -> list[PostOutcome]: ...

    async def post_journal(self, journal: PostingJournal) -> PostOutcome: ...

    async def journal_sources(self, external_id: str) -> list[str] | None:
        """The PSA records a batch journal already holds (None: no such journal)."""
        ...


class ErpEmployeesPort(Protocol):
    """ERP employees derived from the PSA's consultants (master data, docs/operations.md)."""

    async def ensure_employees(self, employees: Sequence[Employee]) -> list[EmployeeOutcome]:
        """Create the employees this ERP does not hold yet (read before create, keyed by
        the PSA resource id); those it holds are left as they are. Safe to repeat."""
        ...


class ErpCustomersPort(Protocol):
    """The ERP's customers that stand for CRM accounts, with what d2r last agreed on each."""

    async def customers(self, account_ids: Sequence[str]) -> list[ErpCustomer]:
        """This instance's customers of these accounts (one per company that holds one)."""
        ...

    async def write_customer(
        self, record_key: str, values: dict[str, str | None], agreed: dict[str, str | None]
    ) -> None:
        """Write these field values and the new agreement (only what changed). Safe to repeat."""
        ...

    async def customers_with_tax_id(self, tax_id: str) -> list[ErpCustomer]:
        """Customers of this instance holding the tax id (normalized), whoever they stand for."""
        ...


class ErpProjectsPort(Protocol):
    """The ERP's project dimension (NetSuite jobs, D365 projects), written from the PSA's projects."""

    async def upsert_projects(self, projects: Sequence[PsaProject]) -> list[ProjectOutcome]:
        """Create or bring up to date (read before write; only what differs). Safe to repeat."""
        ...


class PeriodLockPort(Protocol):
    async def lock_period(self, period: str, legal_entity: str) -> bool:
        """Lock the entity's accounting period; False when it was locked already."""
        ...


class FxRatesPort(Protocol):
    """The ERP's dated currency-rate records (the books' own rates), a page at a time in a
    stable order: 1 unit of `base` buys `rate` units of `quote` from `as_of` on."""

    @property
    def source(self) -> str:
        """`<vendor>:<instance>`: what the hub's rates name as their source."""
        ...

    async def rates(self, since: date, cursor: str | None, limit: int) -> FxRatePage: ...


class ErpExtractPort(Protocol):
    """The ERP's side of the source sync."""

    async def time_bills(self, project_ids: list[str], start: date, end: date) -> list[ProjectTotal]: ...

    async def time_journal_lines(self, run_prefix: str, start: date, end: date) -> tuple[int, list[ProjectTotal]]: ...

    async def invoices(self, legal_entity: str, start: date, end: date) -> list[ProjectTotal]: ...


# ---- pulled events -------------------------------------------------------------------
# A system that sends no webhooks (Kantata's subscribed events) is polled, and its changes
# come back as the event types the webhooks carry. `FeedEvent.event_id` names the business
# fact, not the vendor's event, so a fact reported twice is one inbound event.


class FeedEvent(BaseModel):
    source: str  # the system it came from, as in the webhook path
    event_id: str  # "<source>:<subject>:<fact>": the same fact always has the same id
    type: str  # "milestone.completed" | "timecard.approved" | "expense.approved"
    subject: str  # "<subject type>:<id>": what changed
    changed_at: datetime  # when it changed in the source (not when the event was made)
    data: dict[str, Any] = Field(default_factory=dict)


class FeedPage(BaseModel):
    events: list[FeedEvent] = Field(default_factory=list)
    watermark: datetime | None = None  # the newest event creation time seen
    raw_events: int = 0  # vendor events read (repeats included)
    subjects: int = 0  # distinct subjects among them


class EventFeed(Protocol):
    async def poll(self, created_after: datetime | None) -> FeedPage: ...


# ---- one instance of a system, as its vendor package builds it ---------------------------------


@dataclass(frozen=True)
class CrmConnection:
    system: str  # the vendor's name, as records written downstream name their source
    crm: CrmPort
    extract: CrmExtractPort
    accounts: CrmAccountsPort | None = None  # None: accounts are not kept in step from this CRM


@dataclass(frozen=True)
class PsaConnection:
    system: str
    psa: PsaPort
    posting: PsaPostingPort
    extract: PsaExtractPort
    events: EventFeed | None = None  # a PSA that sends no webhooks is polled
    resources: PsaResourcesPort | None = None  # None: consultants reach the ERP only through posting
    projects: PsaProjectsPort | None = None  # None: no project dimension is written from this PSA


@dataclass(frozen=True)
class ErpConnection:
    system: str
    erp: ErpPort
    receivables: ReceivablesPort
    posting: ErpPostingPort
    period_lock: PeriodLockPort
    extract: ErpExtractPort
    fx: FxRatesPort | None = None  # an ERP that keeps no currency-rate records has none
    employees: ErpEmployeesPort | None = None  # None: this ERP's employees are not d2r's to create
    customers: ErpCustomersPort | None = None  # None: customers are not kept in step in this ERP
    projects: ErpProjectsPort | None = None  # None: this ERP keeps no project dimension from the PSA
