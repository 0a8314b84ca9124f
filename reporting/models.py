"""Input models of the reporting hub: dimensions and facts as loaders receive them.

Every fact carries its source system and source record id (the natural key: reloading
the same record upserts it) and the lineage keys. Money is `Decimal` with an ISO
currency; floats are refused. Functional and reporting currency amounts are derived by
the loader from the FX table (the rate and date used are stored on the fact).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _no_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("money and quantities must not be floats; pass a str or Decimal")
    return value


Amount = Annotated[Decimal, BeforeValidator(_no_float)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


REFERENCE_RATES = "reference_data"  # the source of rates read from the reference data file


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ------------------------------------------------------------------ dimensions
class LegalEntityDim(_Model):
    legal_entity: str
    name: str | None = None
    functional_currency: Currency
    geography: str | None = None
    tax_jurisdiction: str | None = None
    erp_instance: str | None = None


class CustomerDim(_Model):
    customer_id: str
    name: str | None = None
    parent_customer_id: str | None = None
    geography: str | None = None
    erp_customer_id: str | None = None
    source_system: str = "crm"


class ProjectDim(_Model):
    project_id: str
    name: str | None = None
    customer_id: str | None = None
    opportunity_id: str | None = None
    contract_id: str | None = None
    legal_entity: str | None = None
    service_offering: str | None = None
    service_line: str | None = None
    geography: str | None = None
    currency: Currency | None = None
    billing_model: str | None = None
    status: str | None = None
    source_system: str = "psa"


class ConsultantDim(_Model):
    consultant_id: str
    name: str | None = None
    home_legal_entity: str | None = None
    service_line: str | None = None
    geography: str | None = None
    capacity_hours_per_day: Amount = Decimal(8)
    active_from: dt.date = dt.date(2015, 1, 1)
    active_to: dt.date | None = None
    source_system: str = "psa"


class ServiceLineDim(_Model):
    service_line: str
    name: str | None = None


class ServiceOfferingDim(_Model):
    service_offering: str
    service_line: str
    name: str | None = None


class GeographyDim(_Model):
    geography: str
    name: str | None = None
    region: str | None = None


class FxRate(_Model):
    """1 unit of `from_currency` buys `rate` units of `to_currency` from `rate_date` on.
    `source_system`: the ERP instance it was synced from (`netsuite:<instance>`, ...) or
    `reference_data` (the configured fallback, which never replaces an ERP's rate)."""

    from_currency: Currency
    to_currency: Currency
    rate_date: dt.date
    rate: Amount
    source_system: str = REFERENCE_RATES
    source_record_id: str | None = None


# ------------------------------------------------------------------ facts
class _Fact(_Model):
    source_system: str
    source_record_id: str
    opportunity_id: str | None = None
    customer_id: str
    project_id: str | None = None
    contract_id: str | None = None
    legal_entity: str
    currency: Currency
    # The date whose FX rate converts the amounts; defaults to the business date.
    fx_date: dt.date | None = None


class BookingFact(_Fact):
    """Append-only: the deal as booked (no amendment), or one change order's difference
    (positive or negative) on one line, dated at its effective date."""

    booking_date: dt.date
    amount: Amount
    contract_line_id: str | None = None
    service_offering: str | None = None
    billing_model: str | None = None
    amendment_id: str | None = None


class TimeFact(_Fact):
    """Approved time. Bill and cost amounts are both in `currency`."""

    project_id: str
    consultant_id: str
    work_date: dt.date
    hours: Amount
    billable: bool
    bill_amount: Amount
    cost_amount: Amount


class TimeBilled(_Model):
    """What d2r billed one time entry at, from one billing event (its rate precedence)."""

    source_record_id: str  # the time entry, as on its TimeFact
    opportunity_id: str | None = None
    project_id: str | None = None
    legal_entity: str
    contract_line_id: str | None = None
    billing_event_id: str
    invoice_id: str | None = None
    event_date: dt.date
    currency: Currency
    hours: Amount
    billed_rate: Amount
    billed_amount: Amount


class ExpenseFact(_Fact):
    project_id: str
    expense_date: dt.date
    amount: Amount
    billable: bool
    consultant_id: str | None = None
    category: str | None = None


class BillingEventFact(_Fact):
    event_date: dt.date
    amount: Amount
    event_type: str | None = None
    status: str | None = None
    invoice_id: str | None = None


class InvoiceFact(_Fact):
    """`source_record_id` is the ERP invoice id (payments and credit memos point to it)."""

    invoice_date: dt.date
    due_date: dt.date
    net_amount: Amount
    tax_amount: Amount
    total_amount: Amount
    invoice_number: str | None = None
    status: str | None = None


class CreditMemoFact(_Fact):
    memo_date: dt.date
    net_amount: Amount
    tax_amount: Amount
    total_amount: Amount
    invoice_id: str | None = None
    reason: str | None = None


class PaymentFact(_Fact):
    payment_date: dt.date
    amount: Amount
    invoice_id: str | None = None


class RevenueFact(_Fact):
    revenue_date: dt.date
    amount: Amount
    contract_line_id: str | None = None
    revenue_method: str | None = None


class CostFact(_Fact):
    """Non-labour cost (labour cost comes from time facts)."""

    cost_date: dt.date
    cost_type: str
    amount: Amount


# ------------------------------------------------------------------ exceptions, recon
class ExceptionRecord(_Model):
    """A failure a person must look at. `dedupe_key` makes re-reporting idempotent."""

    dedupe_key: str
    kind: str
    error_message: str
    error_type: str | None = None
    source: str | None = None
    workflow_id: str | None = None
    run_id: str | None = None
    workflow_link: str | None = None
    opportunity_id: str | None = None
    customer_id: str | None = None
    project_id: str | None = None
    contract_id: str | None = None
    legal_entity: str | None = None
    period: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}$")
    detail: dict[str, Any] = Field(default_factory=dict)


class SourceTotals(_Model):
    """Per project and period totals as the PSA, the ERP or the CRM holds them."""

    source_system: str = Field(pattern=r"^(psa|erp|crm)$")
    legal_entity: str
    project_id: str
    period: str = Field(pattern=r"^\d{4}-\d{2}$")
    hours: Amount | None = None
    time_amount: Amount | None = None
    invoice_total: Amount | None = None
    booking_total: Amount | None = None  # the CRM's closed-won value of the deal behind the project
    currency: Currency | None = None
    record_ids: list[str] = Field(default_factory=list)
