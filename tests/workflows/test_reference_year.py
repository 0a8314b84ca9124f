"""The reference 12-month engagement on the time-skipping server, every figure checked
against hand computation (see tests/workflows/scenario.py for the story)."""

from __future__ import annotations

import uuid

from temporalio.testing import WorkflowEnvironment

from contracts.engagement import ChangeStatus
from domain.money import Money
from domain.stages import Stage
from tests.workflows import scenario
from tests.workflows.scenario import gbp


async def test_reference_year_bills_recognizes_collects_and_closes(own_env: WorkflowEnvironment) -> None:
    run = await scenario.run_reference_year(own_env, f"006REF{uuid.uuid4().hex[:12].upper()}", with_hub=True)
    fake, results, final = run.fake, run.results, run.final

    # January: 40 h x 150.00 = 6,000.00 billed and recognized; 20 % VAT on the invoice.
    jan = results["2027-01"]
    assert jan.billed == gbp("6000.00") and jan.recognized == gbp("6000.00")
    assert [i.total for i in jan.invoices] == [gbp("7200.00")]
    # March: M1 (30 % of 120,000.00 = 36,000.00) + T&M 6,000.00, both recognized.
    mar = results["2027-03"]
    assert mar.billed == gbp("42000.00") and mar.recognized == gbp("42000.00")
    # June: T&M 6,000.00 less May's 1,000.00 concession, plus the amendment's cumulative
    # catch-up of 9,000.00 dated 2027-06-15 (30 % of the 30,000.00 increase): everything
    # June recognized is 14,000.00, as the ERP's June journals hold.
    jun = results["2027-06"]
    assert jun.billed == gbp("6000.00") and jun.recognized == gbp("14000.00")
    assert any(t.note.startswith("2027-06 closed") and "recognized 14000.00 GBP" in t.note for t in final.timeline)
    # July: M2 bills 40/70 of the 114,000.00 left after the amendment = 65,142.86;
    # revenue reaches 70 % of 150,000.00 = 105,000.00 (45,000.00 recognized by the catch-up).
    jul = results["2027-07"]
    assert jul.billed == gbp("71142.86")
    assert jul.recognized == gbp("66000.00")
    assert jul.unbilled == gbp("3857.14")
    # November: M3 takes the exact rest, 48,857.14; the milestone line is fully billed.
    assert results["2027-11"].billed == gbp("54857.14")

    amounts = final.amounts
    assert amounts is not None
    assert final.stage == Stage.CLOSED
    assert amounts.contract_value == gbp("222000")  # 150,000 + 72,000
    assert amounts.net_billed == gbp("221000.00")  # 150,000 + 12 x 6,000 - 1,000
    assert amounts.recognized == gbp("221000.00")
    assert amounts.deferred.is_zero() and amounts.unbilled.is_zero()
    # Gross: 222,000.00 + VAT 44,400.00 (per-line rounding: 13,028.57 + 9,771.43 on M2/M3)
    # less the 1,200.00 credit memo.
    assert amounts.collected == gbp("265200.00")
    assert amounts.outstanding.is_zero() and amounts.overdue.is_zero()
    assert final.periods_closed == [*scenario.PERIODS, "2028-01"]  # January brings December's receipt

    # The amendment and the credit memo were approved by other people than their requester.
    changes = {c.change_id: c for c in final.changes}
    assert changes["AM-1"].status is ChangeStatus.APPLIED and changes["CM-1"].status is ChangeStatus.APPLIED
    deciders = {a.approval_id: a.decided_by for a in final.approvals}
    assert deciders == {"AM-1:0": "pm-jane", "AM-1:1": "cfo-omar", "CM-1:0": "controller-kim"}
    # The catch-up of 9,000.00 (30 % of the 30,000.00 increase) was journaled in the ERP.
    catch_up = [
        line
        for j in fake.journals.values()
        for line in j.lines
        if line.memo == "L1 catch_up" and line.account.startswith("4000")
    ]
    assert [line.credit for line in catch_up] == [gbp("9000.00")]
    assert fake.crm_contract_value == gbp("222000")
    # The PSA's milestones follow the amendment: M1 keeps the 36,000.00 it billed; the
    # 114,000.00 left goes to M2 / M3 by 40:30 = 65,142.86 / 48,857.14 (sum 150,000.00).
    assert fake.psa_milestone_amounts == {"M1": gbp("36000.00"), "M2": gbp("65142.86"), "M3": gbp("48857.14")}
    assert len(fake.credit_memos) == 1 and next(iter(fake.credit_memos.values())).total == gbp("1200.00")
    # The late August invoice was flagged overdue, reported to the CRM, then cleared.
    assert any("overdue" in t.note for t in final.timeline)
    assert fake.crm_status is not None and fake.crm_status.status == "Collected"
    assert fake.project_stage == "Completed" and fake.order_closed
    # Each time entry is marked billed in the PSA exactly once overall.
    assert fake.billed_entries == {f"TC-{p}" for p in scenario.PERIODS}
    assert sum(len(r.invoices) for r in results.values()) == 12
    assert Money.zero("GBP") == amounts.overdue
    # The hub was told about every document exactly once (invoices, the credit memo,
    # payments, revenue entries), as they happened.
    assert len(fake.hub) == len(set(fake.hub))
    assert sum(1 for d in fake.hub if d.startswith("inv:")) == 12
    assert sum(1 for d in fake.hub if d.startswith("cm:")) == 1
    assert sum(1 for d in fake.hub if d.startswith("PAY")) == 12
