"""Which contract line a delivery record belongs to, the same rules for every PSA."""

from __future__ import annotations

from typing import Any

from domain.deal import BillingModel, ContractLine


class LineMapper:
    """Which contract line a PSA record belongs to: the line the record names itself
    (Certinia's `D2R_Contract_Line_Id__c`, Kantata's `d2r contract line`) when it is one of
    the engagement's, else a fallback by billing model and role."""

    def __init__(self, lines: list[ContractLine]) -> None:
        self._ids = {line.line_id for line in lines}
        self._tm = [line for line in lines if line.billing_model is BillingModel.TIME_AND_MATERIALS]
        self._fee = {
            line.line_id for line in lines if line.billing_model in (BillingModel.FIXED_FEE, BillingModel.MILESTONE)
        }

    def _own(self, value: Any) -> str | None:
        return value if isinstance(value, str) and value in self._ids else None

    def for_time(self, own: Any, role: str | None) -> str | None:
        if self._own(own):
            return str(own)
        matching = [line for line in self._tm if role is not None and line.role == role]
        if len(matching) == 1:
            return matching[0].line_id
        if matching:
            return None  # two T&M lines for one role: only the record itself can say
        if len(self._tm) == 1 and not self._fee:
            return self._tm[0].line_id
        # Time that no T&M line bills is effort on the fixed fee (cost-to-cost measures it).
        return next(iter(self._fee)) if len(self._fee) == 1 else None

    def for_expense(self, own: Any) -> str | None:
        if self._own(own):
            return str(own)
        return self._tm[0].line_id if self._tm else None

    def for_milestone(self, own: Any) -> str | None:
        if self._own(own):
            return str(own)
        # A template milestone from before per-line milestones: only unambiguous with one fee line.
        return next(iter(self._fee)) if len(self._fee) == 1 else None
