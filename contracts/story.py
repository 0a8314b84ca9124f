"""How an engagement reads in the Temporal Web UI: the static summary and details written at
start (from the CRM's opportunity, read at the door), the search attributes every start
sets, however it started (the API's POST or the CRM's Closed Won webhook), and the current
details the running workflow keeps saying (stage and since when, what it waits for, the
latest event).

Summaries and details are payloads, so the codec encrypts them like any other; the Web UI
shows them through the codec server. Search attributes stay free of personal data: ids,
codes and the stage only (customer names live in the summary, never in an attribute).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from temporalio.common import SearchAttributePair, TypedSearchAttributes

from contracts import search_attributes as sa
from contracts.engagement import EngagementView
from domain.approvals import excluded_deciders
from domain.deal import OpportunitySnapshot
from domain.model import Approval
from domain.money import MINOR_UNITS
from domain.stages import Stage

CODE = r"^[A-Z0-9]{2,10}$"


def amount_text(amount: Decimal | None, currency: str | None) -> str:
    """`GBP 120,000.00`: grouped, at the currency's minor unit (a label, not a document)."""
    if amount is None:
        return "no amount"
    places = MINOR_UNITS.get(currency or "", 2)
    return f"{currency or '???'} {amount:,.{places}f}"


def contract_value(snapshot: OpportunitySnapshot) -> Decimal | None:
    if snapshot.amount is not None:
        return snapshot.amount
    totals = [ln.total_price for ln in snapshot.lines if ln.total_price is not None]
    return sum(totals, Decimal(0)) if totals else None


def customer_name(snapshot: OpportunitySnapshot) -> str:
    return (snapshot.accounts[0].name if snapshot.accounts else None) or "unknown customer"


def start_summary(opportunity_id: str, snapshot: OpportunitySnapshot | None) -> str:
    """One line for the workflow list: customer — deal — contract value."""
    if snapshot is None:
        return f"Engagement for opportunity {opportunity_id}"
    deal = snapshot.name or f"opportunity {opportunity_id}"
    return f"{customer_name(snapshot)} — {deal} — {amount_text(contract_value(snapshot), snapshot.currency)}"


def start_details(opportunity_id: str, snapshot: OpportunitySnapshot | None, started_by: str) -> str:
    """The deal as the CRM held it when the engagement started (markdown)."""
    rows = [f"**Opportunity:** {opportunity_id}", f"**Started by:** {started_by}"]
    if snapshot is not None:
        account = snapshot.accounts[0].account_id if snapshot.accounts else "—"
        rows[:0] = [
            f"**Customer:** {customer_name(snapshot)} (account {account})",
            f"**Deal:** {snapshot.name or '—'}" + (f", closed {snapshot.close_date}" if snapshot.close_date else ""),
            f"**Contract value:** {amount_text(contract_value(snapshot), snapshot.currency)}"
            + (f", {snapshot.billing_terms}" if snapshot.billing_terms else ""),
            f"**Legal entity:** {snapshot.legal_entity or '—'}",
            f"**Service package:** {snapshot.service_package or '—'}",
        ]
        lines = "; ".join(
            f"{ln.name or ln.line_id} ({ln.billing_model or 'no billing model'}, "
            f"{amount_text(ln.total_price, snapshot.currency)})"
            for ln in snapshot.lines
        )
        rows.append(f"**Lines ({len(snapshot.lines)}):** {lines or 'none'}")
    return "\n\n".join(rows)


def start_search_attributes(opportunity_id: str, snapshot: OpportunitySnapshot | None) -> TypedSearchAttributes:
    """The attributes every engagement carries from its first moment, so the same filters
    find it whichever door started it. The workflow sets the validated values again once the
    deal is booked (the CRM's legal entity is what scoped readers are checked against until then)."""
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(sa.OPPORTUNITY_ID, opportunity_id),
        SearchAttributePair(sa.STAGE, Stage.VALIDATING.value),
        SearchAttributePair(sa.PENDING_APPROVAL, False),
    ]
    if snapshot is not None:
        if snapshot.accounts:
            pairs.append(SearchAttributePair(sa.CUSTOMER_ID, snapshot.accounts[0].account_id))
        if snapshot.legal_entity:
            pairs.append(SearchAttributePair(sa.LEGAL_ENTITY, snapshot.legal_entity))
    return TypedSearchAttributes(pairs)


def moment(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def current_details(view: EngagementView, doing: str | None = None) -> str:
    """The Web UI's current details (markdown): the stage and since when, what the engagement
    waits for (whose approval, which fix, which period) and since when, what it is doing now,
    the deal in one line, and the latest event of its timeline."""
    since = f" since {moment(view.stage_since)}" if view.stage_since else ""
    rows = [f"**{view.stage.value}**{since}"]
    if view.waiting_for is not None:
        rows.append(f"**Waiting for:** {view.waiting_for.what} — since {moment(view.waiting_for.since)}")
    if doing:
        rows.append(f"**Now:** {doing}")
    deal = [
        f"**Customer:** {view.customer_name}" if view.customer_name else None,
        f"**Deal:** {view.name}" if view.name else None,
        f"**Value:** {amount_text(view.contract_value.amount, view.contract_value.currency)}"
        if view.contract_value
        else None,
        f"**Entity:** {view.legal_entity}" if view.legal_entity else None,
    ]
    if any(deal):
        rows.append(" · ".join(d for d in deal if d))
    if view.timeline:
        last = view.timeline[-1]
        rows.append(f"**Last:** {last.note} ({moment(last.at)})")
    return "\n\n".join(rows)


def approval_wait(approvals: list[Approval], everyone: list[Approval]) -> str:
    """`finance to decide deal 006… (approval deal:006…:0; not sam)`, for each pending approval."""
    return "; ".join(
        f"{' or '.join(a.approver_roles)} to decide {a.subject} "
        f"(approval {a.approval_id}; not {', '.join(excluded_deciders(a, everyone))})"
        for a in approvals
    )
