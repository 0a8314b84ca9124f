"""The Kantata OX object types the simulator serves: fields, defaults, validation.

Each type is stored as JSON in the shared `records` table under its plural API key
(`workspaces`, `stories`, ...). Money is always an integer number of cents, as in the
real API; a float or a string where cents are expected is a 422.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class Invalid(Exception):
    """A 422 in Kantata's error shape: `{"errors": [{"type": "validation", ...}]}`."""

    def __init__(self, message: str, field_name: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field_name


@dataclass(frozen=True)
class F:
    kind: str  # str | int | cents | bool | date | currency | ref | refs | enum | json
    required: bool = False
    default: Any = None
    ref: str | None = None  # the plural type a `ref` / `refs` points at
    choices: tuple[str, ...] = ()
    read_only: bool = False


@dataclass(frozen=True)
class ObjectType:
    key: str  # plural API key, also the record type in the store
    singular: str  # the request-body key for one object ("workspace")
    subject: str  # the subject type in events and custom fields ("Workspace")
    fields: dict[str, F]
    includes: dict[str, tuple[str, str, bool]] = field(default_factory=dict)  # name -> (type, fk, many)
    archivable: bool = False
    writable: bool = True
    events: bool = True


STORY_TYPES = ("task", "milestone", "deliverable", "issue")
STORY_STATES = ("not started", "started", "needs feedback", "completed", "blocked")
# Workspace status: Kantata shows a status key + message; these are the ones d2r uses.
WORKSPACE_STATUS = {300: "Not Started", 310: "In Progress", 330: "On Hold", 350: "Completed", 360: "Cancelled"}

TYPES: dict[str, ObjectType] = {
    t.key: t
    for t in (
        ObjectType(
            "workspaces",
            "workspace",
            "Workspace",
            {
                "title": F("str", required=True),
                "description": F("str", default=""),
                "currency": F("currency", required=True),
                "price_in_cents": F("cents"),  # the budget
                "budgeted": F("bool", default=False, read_only=True),
                "rate_card_id": F("ref", ref="rate_cards"),
                "change_orders_enabled": F("bool", default=False),
                "start_date": F("date"),
                "due_date": F("date"),
                "status_key": F("int", default=300),
                "project_template_id": F("ref", ref="project_templates"),
                "archived": F("bool", default=False),
            },
            includes={
                "rate_card": ("rate_cards", "rate_card_id", False),
                "stories": ("stories", "workspace_id", True),
                "workspace_resources": ("workspace_resources", "workspace_id", True),
                "custom_field_values": ("custom_field_values", "subject_id", True),
            },
            archivable=True,
        ),
        ObjectType(
            "stories",
            "story",
            "Story",
            {
                "workspace_id": F("ref", required=True, ref="workspaces"),
                "title": F("str", required=True),
                "story_type": F("enum", default="task", choices=STORY_TYPES),
                "parent_id": F("ref", ref="stories"),
                "state": F("enum", default="not started", choices=STORY_STATES),
                "billable": F("bool", default=True),
                "fixed_fee": F("bool", default=False),
                "budget_estimate_in_cents": F("cents"),
                "start_date": F("date"),
                "due_date": F("date"),
                "completed_at": F("date"),  # set when the state becomes completed
                "percentage_complete": F("int", default=0),
                "archived": F("bool", default=False),
            },
            includes={
                "workspace": ("workspaces", "workspace_id", False),
                "parent": ("stories", "parent_id", False),
                "custom_field_values": ("custom_field_values", "subject_id", True),
            },
            archivable=True,
        ),
        ObjectType(
            "time_entries",
            "time_entry",
            "TimeEntry",
            {
                "workspace_id": F("ref", required=True, ref="workspaces"),
                "story_id": F("ref", ref="stories"),
                "user_id": F("ref", required=True, ref="users"),
                "role_id": F("ref", ref="roles"),
                "date_performed": F("date", required=True),
                "time_in_minutes": F("int", required=True),
                "billable": F("bool", default=True),
                "rate_in_cents": F("cents"),  # default: the workspace rate card for the role
                "notes": F("str", default=""),
                "approved": F("bool", default=False),
                "is_invoiced": F("bool", default=False, read_only=True),
                "invoice_id": F("ref", ref="invoices", read_only=True),
            },
            includes={
                "user": ("users", "user_id", False),
                "story": ("stories", "story_id", False),
                "workspace": ("workspaces", "workspace_id", False),
                "invoice": ("invoices", "invoice_id", False),
                "custom_field_values": ("custom_field_values", "subject_id", True),
            },
        ),
        ObjectType(
            "expenses",
            "expense",
            "Expense",
            {
                "workspace_id": F("ref", required=True, ref="workspaces"),
                "user_id": F("ref", required=True, ref="users"),
                "date": F("date", required=True),
                "amount_in_cents": F("cents", required=True),
                "currency": F("currency"),  # default: the workspace currency
                "category": F("str", default="Travel"),
                "notes": F("str", default=""),
                "billable": F("bool", default=True),
                "approved": F("bool", default=False),
                "is_invoiced": F("bool", default=False, read_only=True),
                "invoice_id": F("ref", ref="invoices", read_only=True),
            },
            includes={
                "user": ("users", "user_id", False),
                "workspace": ("workspaces", "workspace_id", False),
                "invoice": ("invoices", "invoice_id", False),
                "custom_field_values": ("custom_field_values", "subject_id", True),
            },
        ),
        ObjectType(
            "invoices",
            "invoice",
            "Invoice",
            {
                "workspace_id": F("ref", required=True, ref="workspaces"),
                "invoice_date": F("date", required=True),
                "due_date": F("date"),
                "time_entry_ids": F("refs", default=[], ref="time_entries"),
                "expense_ids": F("refs", default=[], ref="expenses"),
                "currency": F("currency", read_only=True),
                "price_in_cents": F("cents", read_only=True),
                "status": F("enum", default="draft", choices=("draft", "submitted", "paid", "void")),
            },
            includes={
                "workspace": ("workspaces", "workspace_id", False),
                "time_entries": ("time_entries", "invoice_id", True),
                "expenses": ("expenses", "invoice_id", True),
                "custom_field_values": ("custom_field_values", "subject_id", True),
            },
        ),
        ObjectType(
            "workspace_resources",
            "workspace_resource",
            "WorkspaceResource",
            {
                "workspace_id": F("ref", required=True, ref="workspaces"),
                "role_id": F("ref", required=True, ref="roles"),
                "user_id": F("ref", ref="users"),  # none = an unnamed placeholder
                "estimated_minutes": F("int"),
                "status": F("enum", default="Draft", choices=("Draft", "Soft booked", "Hard booked")),
            },
            includes={
                "workspace": ("workspaces", "workspace_id", False),
                "role": ("roles", "role_id", False),
                "user": ("users", "user_id", False),
                "custom_field_values": ("custom_field_values", "subject_id", True),
            },
        ),
        ObjectType(
            "users",
            "user",
            "User",
            {
                "full_name": F("str", required=True),
                "email_address": F("str", required=True),
                "headline": F("str", default=""),
                "role_id": F("ref", ref="roles"),
                "cost_rate_in_cents": F("cents"),
                "cost_rate_currency": F("currency"),
            },
            includes={
                "role": ("roles", "role_id", False),
                "custom_field_values": ("custom_field_values", "subject_id", True),
            },
            writable=False,
            events=False,
        ),
        ObjectType("roles", "role", "Role", {"name": F("str", required=True)}, writable=False, events=False),
        ObjectType(
            "rate_cards",
            "rate_card",
            "RateCard",
            {"title": F("str", required=True), "currency": F("currency", required=True)},
            includes={"rate_card_roles": ("rate_card_roles", "rate_card_id", True)},
            writable=False,
            events=False,
        ),
        ObjectType(
            "rate_card_roles",
            "rate_card_role",
            "RateCardRole",
            {
                "rate_card_id": F("ref", required=True, ref="rate_cards"),
                "role_id": F("ref", required=True, ref="roles"),
                "rate_in_cents": F("cents", required=True),
            },
            includes={"role": ("roles", "role_id", False)},
            writable=False,
            events=False,
        ),
        ObjectType(
            "project_templates",
            "project_template",
            "ProjectTemplate",
            {
                "title": F("str", required=True),
                "description": F("str", default=""),
                "phases": F("json", default=[]),
                "milestones": F("json", default=[]),  # [{"title", "percent"}]
                "roles": F("json", default=[]),
                "default_billing_model": F("str", default=""),
            },
            writable=False,
            events=False,
        ),
        ObjectType(
            "custom_fields",
            "custom_field",
            "CustomField",
            {
                "name": F("str", required=True),
                "subject_type": F("str", required=True),
                "value_type": F("str", default="string"),
            },
            writable=False,
            events=False,
        ),
        ObjectType(
            "custom_field_values",
            "custom_field_value",
            "CustomFieldValue",
            {
                "subject_type": F("str", required=True),
                "subject_id": F("str", required=True),
                "custom_field_id": F("ref", required=True, ref="custom_fields"),
                "value": F("str", required=True),
            },
            events=False,
        ),
    )
}


def _coerce(name: str, spec: F, value: Any) -> Any:
    if value is None:
        if spec.required:
            raise Invalid(f"{name} can't be blank", name)
        return None
    kind = spec.kind
    if kind == "str":
        if not isinstance(value, str):
            raise Invalid(f"{name} must be a string", name)
        return value
    if kind in ("int", "cents"):
        if isinstance(value, bool) or not isinstance(value, int):
            unit = "an integer number of cents" if kind == "cents" else "an integer"
            raise Invalid(f"{name} must be {unit}", name)
        if kind == "cents" and value < 0:
            raise Invalid(f"{name} must be greater than or equal to 0", name)
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise Invalid(f"{name} must be true or false", name)
        return value
    if kind == "date":
        if not isinstance(value, str) or not _DATE.match(value):
            raise Invalid(f"{name} must be a date (YYYY-MM-DD)", name)
        try:
            dt.date.fromisoformat(value)
        except ValueError as e:
            raise Invalid(f"{name} is not a valid date", name) from e
        return value
    if kind == "currency":
        if not isinstance(value, str) or not _CURRENCY.match(value):
            raise Invalid(f"{name} must be an ISO 4217 currency code", name)
        return value
    if kind == "ref":
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise Invalid(f"{name} must be an id", name)
        return str(value)
    if kind == "refs":
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, (str, int)) for v in value):
            raise Invalid(f"{name} must be a list of ids", name)
        return [str(v) for v in value]
    if kind == "enum":
        if value not in spec.choices:
            raise Invalid(f"{name} must be one of: {', '.join(spec.choices)}", name)
        return value
    return value  # json


def validate(otype: ObjectType, body: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
    """The record after applying `body` (a create when `existing` is None)."""
    unknown = sorted(set(body) - set(otype.fields) - {"custom_field_values"})
    if unknown:
        raise Invalid(f"unknown attribute(s): {', '.join(unknown)}", unknown[0])
    out: dict[str, Any] = dict(existing) if existing else {}
    for name, spec in otype.fields.items():
        if name in body:
            if spec.read_only:
                raise Invalid(f"{name} is read-only", name)
            out[name] = _coerce(name, spec, body[name])
        elif existing is None:
            if spec.required:
                raise Invalid(f"{name} can't be blank", name)
            out[name] = list(spec.default) if isinstance(spec.default, list) else spec.default
    return out
