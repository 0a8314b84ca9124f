"""Master data kept in step: what a downstream record must hold, and what to do when it
holds something else.

Every downstream record d2r keeps in step carries the values both systems agreed on when
d2r last synced it (`agreed`, stored on the record itself). Comparing the owner's value,
the other system's value and that agreement tells who moved:

- both hold the same value: in step (nothing to write, however often it is re-read, so a
  webhook and a sweep that see the same change apply it once);
- the other system still holds the agreed value: the owner changed it, so d2r writes it
  downstream (`push`);
- the other system moved away from the agreed value (edited directly where it is not
  owned), or no agreement was ever recorded and the two differ: a `conflict` for a person,
  never overwritten blindly.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.deal import Customer
from domain.model import Resource

CONFLICT_KIND = "master_data.conflict"
DUPLICATE_KIND = "master_data.duplicate"


class Decision(StrEnum):
    IN_STEP = "in_step"
    PUSH = "push"  # write the owner's value to the other system
    CONFLICT = "conflict"


def decide(
    owner_value: str | None, other_value: str | None, agreed: dict[str, str | None] | None, field: str
) -> Decision:
    if (owner_value or None) == (other_value or None):
        return Decision.IN_STEP
    if agreed is not None and field in agreed and (agreed[field] or None) == (other_value or None):
        return Decision.PUSH
    return Decision.CONFLICT


def customer_fields(customer: Customer) -> dict[str, str | None]:
    """The customer fields d2r keeps in step (domain/ownership.py, [customer])."""
    return {"name": customer.name, "parent_id": customer.parent_id, "tax_id": customer.tax_id}


def agreed_json(values: dict[str, str | None]) -> str:
    """How an agreement is stored on a downstream record (one text field, stable order)."""
    return json.dumps(values, sort_keys=True, separators=(",", ":"))


def parse_agreed(text: object) -> dict[str, str | None] | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None  # hand-edited into something else: no agreement to trust
    if not isinstance(value, dict):
        return None
    return {str(k): (None if v is None else str(v)) for k, v in value.items()}


class CrmAccount(BaseModel):
    """An account as the CRM holds it, with what duplicate detection compares."""

    account_id: str
    name: str
    parent_id: str | None = None
    tax_id: str | None = None
    domain: str | None = None  # the website's host, lower case, without "www."
    modified_at: datetime

    def customer(self) -> Customer:
        return Customer(customer_id=self.account_id, name=self.name, tax_id=self.tax_id, parent_id=self.parent_id)


class CrmAccountPage(BaseModel):
    accounts: list[CrmAccount] = Field(default_factory=list)
    # the sweep's position: the last account's modification time and id (ties broken by id)
    next_after: tuple[datetime, str] | None = None


class ErpCustomer(BaseModel):
    """A customer record of one ERP instance that d2r keeps in step with a CRM account."""

    record_key: str  # the ERP's own key (company-qualified where the ERP has companies)
    account_id: str  # the CRM account it stands for
    values: dict[str, str | None]  # customer_fields() as the ERP holds them
    agreed: dict[str, str | None] | None = None  # what both held at d2r's last sync
    modified_at: datetime | None = None


class FieldConflict(BaseModel):
    """An owned field a non-owner holds differently: one `master_data.conflict` exception."""

    object: str  # "customer"
    key: str  # the owner's id (the CRM account id)
    field: str
    owner_system: str
    owner_value: str | None
    owner_modified_at: datetime | None
    other_system: str
    other_instance: str
    other_record: str
    other_value: str | None
    other_modified_at: datetime | None

    @property
    def dedupe_key(self) -> str:
        # one open conflict per record and field: a sweep that sees it again counts an occurrence
        return f"master-data:{self.object}:{self.other_instance}:{self.other_record}:{self.field}"


def normalized_domain(website: str | None) -> str | None:
    if not website:
        return None
    host = website.strip().lower()
    for prefix in ("https://", "http://"):
        host = host.removeprefix(prefix)
    host = host.split("/", 1)[0].split(":", 1)[0].removeprefix("www.")
    return host or None


def normalized_tax_id(tax_id: str | None) -> str | None:
    if not tax_id:
        return None
    return "".join(ch for ch in tax_id.upper() if ch.isalnum()) or None


# ---- consultants -> ERP employees ------------------------------------------------------------


class Employee(BaseModel):
    """An ERP employee derived from a PSA consultant (ERP employees are never a source)."""

    employee_id: str  # the PSA resource id: the ERP employee's external id
    name: str
    legal_entity: str  # the entity that employs them in this ERP
    role: str
    cost_rate: Decimal | None = None  # per hour, in the entity's currency
    currency: str | None = None

    @property
    def first_name(self) -> str:
        parts = self.name.split(" ", 1)
        return parts[0] if len(parts) > 1 else ""

    @property
    def last_name(self) -> str:
        parts = self.name.split(" ", 1)
        return parts[-1] or self.employee_id


def employees_of(resource: Resource, legal_entities: set[str]) -> list[Employee]:
    """The ERP employees a consultant needs: one in each entity they sit in (home and
    transfers) among `legal_entities`, so their time posts wherever it is booked."""
    out: dict[str, Employee] = {}
    positions = [(resource.home_legal_entity, resource.role, resource.cost_rate)]
    positions += [
        (t.legal_entity, t.role or resource.role, t.cost_rate or resource.cost_rate) for t in resource.transfers
    ]
    for entity, role, cost in positions:
        if entity and entity in legal_entities and entity not in out:
            out[entity] = Employee(
                employee_id=resource.resource_id,
                name=resource.name,
                legal_entity=entity,
                role=role,
                cost_rate=cost.amount if cost is not None else None,
                currency=cost.currency if cost is not None else None,
            )
    return [out[k] for k in sorted(out)]


class ResourcePage(BaseModel):
    resources: list[Resource] = Field(default_factory=list)
    next_after: tuple[datetime, str] | None = None


def employee_in(resource: Resource, legal_entity: str, day: date) -> Employee:
    """The consultant as an employee of `legal_entity`, as they stood on `day`."""
    position = resource.position_on(day)
    cost = position.cost_rate
    return Employee(
        employee_id=resource.resource_id,
        name=resource.name,
        legal_entity=legal_entity,
        role=position.role,
        cost_rate=cost.amount if cost is not None else None,
        currency=cost.currency if cost is not None else None,
    )


class EmployeeOutcome(BaseModel):
    employee_id: str
    legal_entity: str
    record_id: str | None = None
    created: bool = False
    error: str | None = None  # the ERP refused it for good


# ---- projects -> the ERP's project dimension ---------------------------------------------------


class PsaProject(BaseModel):
    """A PSA project as the ERP's project dimension needs it (the PSA owns it)."""

    project_id: str
    name: str
    legal_entity: str
    account_id: str | None = None  # the CRM account (the ERP customer the project sits under)
    active: bool = True
    modified_at: datetime


class ProjectPage(BaseModel):
    projects: list[PsaProject] = Field(default_factory=list)
    next_after: tuple[datetime, str] | None = None


class ProjectOutcome(BaseModel):
    project_id: str
    record_id: str | None = None
    written: bool = False  # created or changed; False: the ERP already held it as it is
    error: str | None = None  # the ERP refused it for good (no customer for it there, say)
