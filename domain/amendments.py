"""Amendments (change orders): new prices, scope, estimates or lines, mid-contract.

ASC 606 / IFRS 15 modifications are accounted one of two ways, and the amendment says
which:
- cumulative catch-up: the line is re-measured as if the new terms had always applied;
  the difference to date is recognized at once (a CATCH_UP revenue entry);
- prospective: what was earned under the old terms stays; the rest of the new price is
  spread over the rest of the work (the line remembers where it stood: `ProspectiveBase`).

Every applied amendment records the terms before and after, so its inverse is derived,
not hand-written: compensating a failed amendment saga restores the old terms exactly
and reverses its catch-up entries.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.billing import Delivery
from domain.contract import ContractState, LineTerms, ProspectiveBase
from domain.deal import BillingModel, RevenueMethod
from domain.model import RevenueEntry, RevenueEntryKind, SourceKind, digest, record_id
from domain.money import Money
from domain.periods import period_of
from domain.revenue import MissingEstimateError, fee_target, line_target, progress_measure, reversal_of
from domain.schedules import Schedule, billing_schedule, revenue_schedule


class AmendmentError(ValueError):
    """The amendment cannot apply as asked (a business error a person must resolve)."""


class AmendmentTreatment(StrEnum):
    PROSPECTIVE = "prospective"
    CUMULATIVE_CATCH_UP = "cumulative_catch_up"


class LineChange(BaseModel):
    """One line's change. Leave a field None to keep it as it is."""

    contract_line_id: str
    price: Money | None = None
    estimate_at_completion: Money | None = None
    not_to_exceed: Money | None = None
    service_end: date | None = None
    scope: str | None = None  # the scope change in words; becomes the line's name
    add: LineTerms | None = None  # a new line
    remove: bool = False  # drop a line nothing was billed or recognized on
    replace: LineTerms | None = None  # set the terms exactly (what inverses use)


class Amendment(BaseModel):
    amendment_id: str
    effective_date: date
    treatment: AmendmentTreatment
    reason: str
    changes: list[LineChange] = Field(min_length=1)


class LineEffect(BaseModel):
    contract_line_id: str
    price_before: Money | None
    price_after: Money | None
    left_to_bill_before: Money | None  # None for open-ended T&M
    left_to_bill_after: Money | None
    revenue_target_before: Money
    revenue_target_after: Money  # at the effective date; the difference is the catch-up


class AppliedAmendment(BaseModel):
    amendment: Amendment
    before: dict[str, LineTerms | None]
    after: dict[str, LineTerms | None]
    effects: list[LineEffect]
    revenue_entries: list[RevenueEntry]
    # The whole contract's schedules either side of the change, for the approver and the
    # ERP's sales order / revenue arrangement update.
    billing_before: Schedule
    billing_after: Schedule
    revenue_before: Schedule
    revenue_after: Schedule

    def inverse(self, amendment_id: str | None = None, effective_date: date | None = None) -> Amendment:
        """The amendment that puts every line back as it was."""
        changes = []
        for line_id, old in self.before.items():
            if old is None:
                changes.append(LineChange(contract_line_id=line_id, remove=True))
            elif self.after.get(line_id) is None:
                changes.append(LineChange(contract_line_id=line_id, add=old))
            else:
                changes.append(LineChange(contract_line_id=line_id, replace=old))
        return Amendment(
            amendment_id=amendment_id or f"{self.amendment.amendment_id}-inverse",
            effective_date=effective_date or self.amendment.effective_date,
            treatment=self.amendment.treatment,
            reason=f"reverses amendment {self.amendment.amendment_id}",
            changes=changes,
        )


class AmendmentResult(BaseModel):
    state: ContractState
    applied: AppliedAmendment


def left_to_bill(state: ContractState, terms: LineTerms) -> Money | None:
    line_id = terms.line.line_id
    model = terms.line.billing_model
    if model is BillingModel.TIME_AND_MATERIALS:
        if terms.not_to_exceed is None:
            return None
        return terms.not_to_exceed - state.ledger_amount(line_id, SourceKind.TIME)
    kind = SourceKind.RETAINER if model is BillingModel.RETAINER else SourceKind.MILESTONE
    return terms.line.amount - state.ledger_amount(line_id, kind)


def _changed(state: ContractState, change: LineChange, amendment: Amendment, delivery: Delivery) -> LineTerms | None:
    line_id = change.contract_line_id
    current = state.terms.get(line_id)
    if change.add is not None:
        if current is not None:
            raise AmendmentError(f"line {line_id} already exists")
        if change.add.line.line_id != line_id:
            raise AmendmentError("an added line's id must match the change's line id")
        return change.add
    if current is None:
        raise AmendmentError(f"unknown contract line {line_id}")
    if change.remove:
        if (
            state.billed(line_id).is_positive()
            or not state.recognized(line_id).is_zero()
            or any(r.contract_line_id == line_id for r in state.ledger)
        ):
            raise AmendmentError(f"line {line_id} has billing or revenue; reduce its price instead")
        return None
    if change.replace is not None:
        return change.replace
    line = current.line
    updates: dict[str, object] = {}
    if change.price is not None:
        if change.price.currency != state.currency:
            raise AmendmentError("an amended price is in the contract currency")
        line = line.model_copy(update={"amount": change.price})
    if change.scope:
        line = line.model_copy(update={"name": change.scope})
    updates["line"] = line
    for field in ("estimate_at_completion", "not_to_exceed", "service_end"):
        value = getattr(change, field)
        if value is not None:
            updates[field] = value
    new = current.model_copy(update=updates)
    if (
        amendment.treatment is AmendmentTreatment.PROSPECTIVE
        and line.billing_model is not BillingModel.TIME_AND_MATERIALS
        and line.revenue_method is not RevenueMethod.AS_DELIVERED
    ):
        # Freeze what the old terms earned up to the modification; the rest of the new
        # price follows the rest of the work.
        period = period_of(amendment.effective_date)
        try:
            earned = fee_target(state, line_id, current, period, delivery, as_of=amendment.effective_date).rounded()
        except MissingEstimateError:
            # Cost-to-cost terms without an estimate earned nothing yet (their revenue run
            # waits for one); the amendment that supplies it starts from what was recognized.
            earned = state.recognized(line_id)
        measure, _ = progress_measure(state, line_id, new, period, delivery, amendment.effective_date)
        new = new.model_copy(
            update={"base": ProspectiveBase(amendment_id=amendment.amendment_id, recognized=earned, measure=measure)}
        )
    return new


def _target(state: ContractState, line_id: str, period: str, delivery: Delivery, terms: LineTerms, on: date) -> Money:
    """The line's cumulative revenue target; cost-to-cost terms without an estimate have
    none yet, and stand at what was recognized (nothing to catch up against)."""
    try:
        return line_target(state, line_id, period, delivery, terms=terms, as_of=on)
    except MissingEstimateError:
        return state.recognized(line_id)


def apply_amendment(state: ContractState, amendment: Amendment, delivery: Delivery) -> AmendmentResult:
    """New terms, the catch-up revenue they cause, and the effect on what is left to bill."""
    if amendment.amendment_id in state.amendment_ids:
        raise AmendmentError(f"amendment {amendment.amendment_id} is already applied")
    period = period_of(amendment.effective_date)
    on = amendment.effective_date
    terms = dict(state.terms)
    before: dict[str, LineTerms | None] = {}
    after: dict[str, LineTerms | None] = {}
    for change in amendment.changes:
        line_id = change.contract_line_id
        if line_id in before:
            raise AmendmentError(f"line {line_id} is changed twice in one amendment")
        before[line_id] = state.terms.get(line_id)
        after[line_id] = _changed(state, change, amendment, delivery)
    new_state = state.model_copy(
        update={
            "terms": {
                **{k: v for k, v in terms.items() if not (k in after and after[k] is None)},
                **{k: v for k, v in after.items() if v is not None},
            }
        }
    )
    effects: list[LineEffect] = []
    entries: list[RevenueEntry] = []
    recognized_entries = list(state.revenue_entries)
    for line_id in before:
        old, new = before[line_id], after[line_id]
        zero = state.zero()
        target_before = _target(state, line_id, period, delivery, old, on) if old else zero
        target_after = _target(new_state, line_id, period, delivery, new, on) if new else zero
        effects.append(
            LineEffect(
                contract_line_id=line_id,
                price_before=old.line.amount if old else None,
                price_after=new.line.amount if new else None,
                left_to_bill_before=left_to_bill(state, old) if old else None,
                left_to_bill_after=left_to_bill(new_state, new) if new else None,
                revenue_target_before=target_before,
                revenue_target_after=target_after,
            )
        )
        catch_up = target_after - target_before
        # An added line is a new obligation, not a re-measured one: the period run
        # recognizes it from its start, so there is nothing to catch up.
        if old is not None and new is not None and not catch_up.is_zero():
            entry = RevenueEntry(
                revenue_entry_id=record_id(
                    "rev",
                    state.lineage.opportunity_id,
                    period,
                    line_id,
                    amendment.amendment_id,
                    digest(len(recognized_entries)),
                ),
                lineage=state.lineage,
                contract_line_id=line_id,
                period=period,
                entry_date=on,
                method=new.line.revenue_method,
                kind=RevenueEntryKind.CATCH_UP,
                amount=catch_up,
                cumulative=new_state.recognized(line_id) + catch_up,
                basis=(
                    f"cumulative catch-up of amendment {amendment.amendment_id}: revenue "
                    f"to date re-measured at {target_after} instead of {target_before}"
                ),
            )
            entries.append(entry)
            recognized_entries.append(entry)
    new_state = new_state.model_copy(
        update={"revenue_entries": recognized_entries, "amendment_ids": [*state.amendment_ids, amendment.amendment_id]}
    )
    applied = AppliedAmendment(
        amendment=amendment,
        before=before,
        after=after,
        effects=effects,
        revenue_entries=entries,
        billing_before=billing_schedule(state, delivery),
        billing_after=billing_schedule(new_state, delivery),
        revenue_before=revenue_schedule(state, delivery),
        revenue_after=revenue_schedule(new_state, delivery),
    )
    return AmendmentResult(state=new_state, applied=applied)


class Compensation(BaseModel):
    state: ContractState
    reversals: list[RevenueEntry]


def compensate_amendment(state: ContractState, applied: AppliedAmendment, on: date) -> Compensation:
    """Undo an applied amendment: old terms back, its catch-up entries reversed exactly."""
    amendment_id = applied.amendment.amendment_id
    if amendment_id not in state.amendment_ids:
        raise AmendmentError(f"amendment {amendment_id} is not applied")
    terms = dict(state.terms)
    for line_id, old in applied.before.items():
        if old is None:
            if any(r.contract_line_id == line_id for r in state.ledger) or not state.recognized(line_id).is_zero():
                raise AmendmentError(f"added line {line_id} has billing or revenue since")
            terms.pop(line_id, None)
        else:
            terms[line_id] = old
    reversals: list[RevenueEntry] = []
    working = state
    for entry in applied.revenue_entries:
        reversal = reversal_of(entry, working, on)
        reversals.append(reversal)
        working = working.model_copy(update={"revenue_entries": [*working.revenue_entries, reversal]})
    new_state = working.model_copy(
        update={
            "terms": terms,
            "amendment_ids": [a for a in state.amendment_ids if a != amendment_id],
            "reverted_amendment_ids": [*state.reverted_amendment_ids, amendment_id],
        }
    )
    return Compensation(state=new_state, reversals=reversals)
