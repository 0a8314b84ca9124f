"""The demo firm in Kantata: roles, consultants as users, a rate card per currency,
the service packages as project templates, and the custom fields d2r writes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..demo_data import BILL_RATES, CONSULTANTS, LEGAL_ENTITIES, ROLES, SERVICE_PACKAGES
from ..salesforce.app import sf_id

if TYPE_CHECKING:
    from .app import KantataSimulator

# (name, subject type): what d2r keeps on Kantata records. The reference is what makes
# creates idempotent: the connector looks it up before every POST.
CUSTOM_FIELDS: list[tuple[str, str]] = [
    ("d2r reference", "Workspace"),
    ("d2r reference", "Story"),
    ("d2r reference", "WorkspaceResource"),
    ("d2r reference", "Invoice"),
    ("d2r opportunity", "Workspace"),
    ("d2r customer", "Workspace"),
    ("d2r contract", "Workspace"),
    ("d2r legal entity", "Workspace"),
    ("d2r billing status", "Workspace"),
    ("d2r unbilled wip", "Workspace"),
    ("d2r billed amount", "Workspace"),
    ("d2r last change", "Workspace"),
    ("d2r contract line", "Story"),
    ("d2r percent", "Story"),
    ("d2r contract line", "TimeEntry"),
    ("d2r contract line", "Expense"),
    ("d2r posting claim", "TimeEntry"),
    ("d2r posting claim", "Expense"),
    ("d2r posted", "TimeEntry"),
    ("d2r posted", "Expense"),
    ("home legal entity", "User"),
    ("d2r employee", "User"),  # the firm's employee id: the ERP's employee for the person
]


def ensure_seeded(sim: KantataSimulator) -> dict[str, Any]:
    if sim.store.is_empty() and sim.settings.seed not in ("none", ""):
        return seed(sim, sim.settings.seed)
    raw = sim.store.get_meta("seed_info")
    return json.loads(raw) if raw else {"seed": "none"}


def seed(sim: KantataSimulator, kind: str) -> dict[str, Any]:
    if kind in ("none", ""):
        info: dict[str, Any] = {"seed": "none"}
    elif kind in ("demo", "bench"):  # no bench-sized Kantata tenant: the demo firm either way
        info = seed_demo(sim)
    else:
        raise ValueError(f"unknown seed {kind!r} (demo | none)")
    with sim.store.tx():
        sim.store.set_meta("seed_info", json.dumps(info))
    sim.seed_info_cached = info
    return info


def seed_demo(sim: KantataSimulator) -> dict[str, Any]:
    with sim.store.tx():
        fields = {
            (name, subject): sim.insert(
                "custom_fields", {"name": name, "subject_type": subject, "value_type": "string"}
            )["id"]
            for name, subject in CUSTOM_FIELDS
        }
        roles = {name: sim.insert("roles", {"name": name})["id"] for name in ROLES}
        users = []
        for index, (first, last, role, home, cost) in enumerate(CONSULTANTS, 1):
            currency = LEGAL_ENTITIES[home][0]
            minor = 1 if currency == "JPY" else 100  # cents are the currency's minor unit
            user = sim.insert(
                "users",
                {
                    "full_name": f"{first} {last}",
                    "email_address": f"{first.lower()}.{last.lower()}@northwind.example",
                    "headline": role,
                    "role_id": roles[role],
                    "cost_rate_in_cents": round(cost * minor),
                    "cost_rate_currency": currency,
                },
            )
            sim.insert(
                "custom_field_values",
                {
                    "subject_type": "User",
                    "subject_id": user["id"],
                    "custom_field_id": fields[("home legal entity", "User")],
                    "value": home,
                },
            )
            # the same person as the CRM org's Contact, whose id the ERP's employee carries
            sim.insert(
                "custom_field_values",
                {
                    "subject_type": "User",
                    "subject_id": user["id"],
                    "custom_field_id": fields[("d2r employee", "User")],
                    "value": sf_id("003", index),
                },
            )
            users.append(
                {"id": user["id"], "name": user["full_name"], "role": role, "home_legal_entity": home,
                 "employee_id": sf_id("003", index)}
            )  # fmt: skip
        cards = {}
        for currency, rates in BILL_RATES.items():
            minor = 1 if currency == "JPY" else 100
            card = sim.insert("rate_cards", {"title": f"Standard {currency}", "currency": currency})
            cards[currency] = card["id"]
            for role, rate in rates.items():
                sim.insert(
                    "rate_card_roles",
                    {"rate_card_id": card["id"], "role_id": roles[role], "rate_in_cents": rate * minor},
                )
        templates = {}
        for sp in SERVICE_PACKAGES:
            t = sim.insert(
                "project_templates",
                {
                    "title": sp["Name"],
                    "description": sp["D2R_Description__c"],
                    "phases": sp["D2R_Phases__c"],
                    "milestones": [{"title": m["name"], "percent": m["percent"]} for m in sp["D2R_Milestones__c"]],
                    "roles": sp["D2R_Roles__c"],
                    "default_billing_model": sp["D2R_Default_Billing_Model__c"],
                },
            )
            templates[sp["Name"]] = t["id"]
        # an archived workspace: hidden by default filters (its show route 404s)
        archived = sim.insert(
            "workspaces",
            {
                "title": "Legacy migration (archived)",
                "description": "",
                "currency": "EUR",
                "price_in_cents": None,
                "budgeted": False,
                "rate_card_id": cards["EUR"],
                "change_orders_enabled": False,
                "start_date": "2025-01-06",
                "due_date": "2025-06-30",
                "status_key": 350,
                "status": {"key": 350, "message": "Completed"},
                "project_template_id": None,
                "archived": True,
            },
            event=False,
        )
    return {
        "seed": "demo",
        "custom_fields": {f"{subject}.{name}": fid for (name, subject), fid in fields.items()},
        "roles": roles,
        "users": users,
        "rate_cards": cards,
        "project_templates": templates,
        "archived_workspace": archived["id"],
    }
