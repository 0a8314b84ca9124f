"""The Kantata connector against the in-process Kantata simulator: projects from
templates, delivery, billed marks, changes, posting pages and extracts; creates made
idempotent by looking up d2r's reference (proven under lost responses); 429 without
Retry-After."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from activities.psa import CreateProjectInput, PsaActivities
from connectors.errors import RateLimitedError, VendorValidationError
from connectors.kantata.psa import split_cents
from domain.deal import MilestonePlan
from domain.system_records import BillingStatus, ProjectChange
from tests.connectors.kantata_env import API, Kantata, de_engagement, eur, kantata
from tests.connectors.test_idempotency import run_lost_then_twice


@pytest.fixture
async def kt(tmp_path: Path) -> AsyncIterator[Kantata]:
    async for made in kantata(tmp_path):
        yield made


def test_milestone_split_never_loses_a_cent() -> None:
    assert split_cents(10_000_001, [Decimal(30), Decimal(40), Decimal(30)]) == [3_000_000, 4_000_000, 3_000_001]
    assert sum(split_cents(99_999, [Decimal("33.3"), Decimal("33.3"), Decimal("33.4")])) == 99_999


async def test_create_project_from_the_service_package_template(kt: Kantata) -> None:
    ref = await kt.psa.create_project(de_engagement(), "engagement-006KT0000000001:project")
    workspace = (
        await kt.raw.get(f"{API}/workspaces/{ref.project_id}", params={"include": "custom_field_values"})
    ).json()
    ws = workspace["workspaces"][ref.project_id]
    assert (ws["currency"], ws["rate_card_id"], ws["change_orders_enabled"]) == (
        "EUR",
        kt.seed["rate_cards"]["EUR"],
        True,
    )
    values = {v["value"] for v in workspace["custom_field_values"].values()}
    assert {"engagement-006KT0000000001:project", "006KT0000000001", "DE01", "001KT0000000001"} <= values
    stories = (await kt.raw.get(f"{API}/stories", params={"workspace_id": ref.project_id, "per_page": 50})).json()
    milestones = [stories["stories"][i] for i in ref.milestone_ids]
    assert [m["title"] for m in milestones] == ["Design sign-off", "UAT complete", "Go-live"]
    # 30 / 40 / 30 % of EUR 100,000.01 in cents, the last taking the remainder
    assert [m["budget_estimate_in_cents"] for m in milestones] == [3_000_000, 4_000_000, 3_000_001]
    assert all(m["story_type"] == "milestone" and m["fixed_fee"] for m in milestones)
    phases = [s["title"] for s in stories["stories"].values() if s["story_type"] == "task"]
    assert phases == ["Discovery", "Design", "Build", "Test", "Go-Live"]
    [placeholder] = ref.resource_request_ids
    resource = (await kt.raw.get(f"{API}/workspace_resources/{placeholder}", params={"include": "role"})).json()
    assert resource["workspace_resources"][placeholder]["estimated_minutes"] == 120 * 60
    assert resource["workspace_resources"][placeholder]["user_id"] is None  # a placeholder, not a person
    assert next(iter(resource["roles"].values()))["name"] == "Senior Consultant"


async def test_a_deal_specific_milestone_schedule_overrides_the_template(kt: Kantata) -> None:
    """The fixed-fee line (EUR 100,000.01) sold with its own schedule from the CRM: 20 / 30 / 50 %
    with planned dates (the template says 30 / 40 / 30). In cents: 2,000,000 / 3,000,000 and the
    remainder 5,000,001, due on the planned dates; then a schedule given as amounts (25,000.00 and
    75,000.01: weights that add up to the price) splits the same way, to the cent."""
    e = de_engagement()
    ff = e.lines[0]
    plan = [
        MilestonePlan(name="Pilot", weight=Decimal(20), planned_date=date(2027, 1, 29)),
        MilestonePlan(name="Rollout", weight=Decimal(30), planned_date=date(2027, 2, 26)),
        MilestonePlan(name="Hypercare", weight=Decimal(50), planned_date=date(2027, 3, 31)),
    ]
    scheduled = e.model_copy(update={"lines": [ff.model_copy(update={"milestones": plan}), *e.lines[1:]]})
    ref = await kt.psa.create_project(scheduled, "engagement-006KT0000000001:project")
    stories = (await kt.raw.get(f"{API}/stories", params={"workspace_id": ref.project_id, "per_page": 50})).json()
    milestones = [stories["stories"][i] for i in ref.milestone_ids]
    assert [(m["title"], m["budget_estimate_in_cents"], m["due_date"]) for m in milestones] == [
        ("Pilot", 2_000_000, "2027-01-29"),
        ("Rollout", 3_000_000, "2027-02-26"),
        ("Hypercare", 5_000_001, "2027-03-31"),
    ]
    by_amount = [
        MilestonePlan(name="Build", weight=Decimal("25000.00")),
        MilestonePlan(name="Run", weight=Decimal("75000.01")),
    ]
    other = de_engagement("006KT0000000002").model_copy(
        update={"lines": [ff.model_copy(update={"milestones": by_amount}), *e.lines[1:]]}
    )
    ref2 = await kt.psa.create_project(other, "engagement-006KT0000000002:project")
    stories = (await kt.raw.get(f"{API}/stories", params={"workspace_id": ref2.project_id, "per_page": 50})).json()
    assert [stories["stories"][i]["budget_estimate_in_cents"] for i in ref2.milestone_ids] == [2_500_000, 7_500_001]
    # read back as delivery, the milestones belong to the line with the schedule's shares and dates
    delivery = await kt.psa.read_delivery(ref.project_id, scheduled.lines, date(2027, 12, 31))
    assert [(m.contract_line_id, m.weight, m.due_date) for m in delivery.milestones] == [
        ("L-FF", Decimal(20), date(2027, 1, 29)),
        ("L-FF", Decimal(30), date(2027, 2, 26)),
        ("L-FF", Decimal(50), date(2027, 3, 31)),
    ]


async def test_create_project_after_a_lost_response_is_one_workspace(kt: Kantata) -> None:
    before = await kt.admin.counts()
    first, second = await run_lost_then_twice(
        kt.admin,
        PsaActivities(kt.router()).create_project,
        CreateProjectInput(engagement=de_engagement(), external_id="engagement-006KT0000000001:project"),
    )
    assert first == second
    after = await kt.admin.counts()
    assert after["workspaces"] - before["workspaces"] == 1
    assert after["stories"] - before.get("stories", 0) == 5 + 3  # template phases + milestones
    assert after["workspace_resources"] - before.get("workspace_resources", 0) == 1
    assert (await kt.admin.duplicates())["count"] == 0


async def test_every_create_survives_a_lost_response(kt: Kantata) -> None:
    """Half of all writes lose their response: the activity is retried until it succeeds
    and Kantata still holds one record per business fact."""
    env = ActivityEnvironment()
    activity = PsaActivities(kt.router()).create_project
    data = CreateProjectInput(engagement=de_engagement(), external_id="engagement-006KT0000000001:project")
    await kt.admin.faults(response_lost_rate=0.5, seed=3)
    attempts = 0
    while True:
        attempts += 1
        try:
            result = await env.run(activity, data)
            break
        except Exception:
            assert attempts < 30
    await kt.admin.clear_faults()
    assert attempts > 1
    assert (await kt.admin.duplicates())["count"] == 0
    assert len(result.milestone_ids) == 3
    assert len(await kt.admin.records("workspaces")) == 2  # the seeded archived one + ours


async def test_429_without_retry_after_backs_off(kt: Kantata) -> None:
    await kt.admin.faults(throttle_burst=3)
    ref = await kt.psa.create_project(de_engagement(), "engagement-x:project")  # three 429s absorbed
    assert ref.project_id
    await kt.admin.faults(throttle_burst=50)
    with pytest.raises(RateLimitedError) as throttled:
        await kt.psa.project_opportunity(ref.project_id)
    assert throttled.value.retry_after is not None and throttled.value.retry_after > 0  # Kantata sent none
    await kt.admin.clear_faults()
    assert await kt.psa.project_opportunity(ref.project_id) == "006KT0000000001"


async def test_unknown_package_is_a_validation_error(kt: Kantata) -> None:
    eng = de_engagement().model_copy(update={"service_package": "NOPE"})
    with pytest.raises(VendorValidationError) as refused:
        await kt.psa.create_project(eng, "engagement-y:project")
    assert refused.value.vendor_code == "UNKNOWN_SERVICE_PACKAGE"


async def test_delivery_billed_marks_and_changes(kt: Kantata) -> None:
    eng = de_engagement()
    ref = await kt.psa.create_project(eng, "engagement-006KT0000000001:project")
    konrad = kt.user("Konrad Zuse")  # Senior Consultant, DE01, EUR 125 cost
    t1 = await kt.log_time(ref.project_id, konrad, "2026-11-03", 90)
    t2 = await kt.log_time(ref.project_id, konrad, "2026-11-04", 480)
    await kt.log_time(ref.project_id, konrad, "2026-11-05", 60, approve=False)  # not approved: not delivery
    await kt.log_time(ref.project_id, konrad, "2026-12-01", 60)  # after the cutoff
    expense = await kt.post(
        "expenses", "expense", {"workspace_id": ref.project_id, "user_id": konrad, "date": "2026-11-04",
                                "amount_in_cents": 12345, "category": "Travel"})  # fmt: skip
    await kt.put("expenses", "expense", expense["id"], {"approved": True})
    await kt.put("stories", "story", ref.milestone_ids[0], {"state": "completed", "completed_at": "2026-11-20"})

    delivery = await kt.psa.read_delivery(ref.project_id, eng.lines, date(2026, 11, 30))
    assert [(e.entry_id, e.hours, e.contract_line_id, e.role) for e in delivery.time_entries] == [
        (t1, Decimal("1.5"), "L-TM", "Senior Consultant"),
        (t2, Decimal(8), "L-TM", "Senior Consultant"),
    ]
    [exp] = delivery.expenses
    assert (exp.amount, exp.contract_line_id) == (eur("123.45"), "L-TM")
    done = [m for m in delivery.milestones if m.completed_on]
    assert [(m.milestone_id, m.completed_on, m.weight) for m in done] == [
        (ref.milestone_ids[0], date(2026, 11, 20), Decimal(30))
    ]
    [res] = delivery.resources
    assert (res.role, res.home_legal_entity, res.cost_rate) == ("Senior Consultant", "DE01", eur("125.00"))
    assert delivery.rate_card is not None
    assert delivery.rate_card.entry("Senior Consultant", date(2026, 11, 3)).bill_rate == Decimal("225.00")

    # billed marks: one invoice, marked exactly once, a repeat changes nothing
    assert await kt.psa.mark_billed([t1, t2], [expense["id"]], True) == 3
    assert await kt.psa.mark_billed([t1, t2], [expense["id"]], True) == 0
    invoices = await kt.admin.records("invoices")
    assert len(invoices) == 1 and invoices[0]["price_in_cents"] == round(570 * 22500 / 60) + 12345
    entries = {r["id"]: r for r in await kt.admin.records("time_entries")}
    assert entries[t1]["is_invoiced"] and entries[t2]["is_invoiced"]
    assert await kt.psa.mark_billed([t2], [], False) == 1
    assert [i["time_entry_ids"] for i in await kt.admin.records("invoices")] == [[t1]]
    assert await kt.psa.mark_billed([t1], [expense["id"]], False) == 2
    assert await kt.admin.records("invoices") == []

    await kt.psa.apply_change(
        ref.project_id,
        ProjectChange(change_id="AM-1", budget=eur("130000"), end_date=date(2027, 4, 30),
                      milestone_amounts={ref.milestone_ids[2]: eur("33000.01")}),
    )  # fmt: skip
    ws = (await kt.raw.get(f"{API}/workspaces/{ref.project_id}")).json()["workspaces"][ref.project_id]
    assert (ws["price_in_cents"], ws["budgeted"], ws["due_date"]) == (13_000_000, True, "2027-04-30")
    story = (await kt.raw.get(f"{API}/stories/{ref.milestone_ids[2]}")).json()["stories"][ref.milestone_ids[2]]
    assert story["budget_estimate_in_cents"] == 3_300_001
    await kt.psa.write_billing_status(
        ref.project_id,
        BillingStatus(status="Billed", billed=eur("3000"), collected=eur("0"), overdue=eur("0"),
                      unbilled_wip=eur("1.50"), as_of=date(2026, 11, 30)),
    )  # fmt: skip
    await kt.psa.write_billing_status(
        ref.project_id,
        BillingStatus(status="Collected", billed=eur("3000"), collected=eur("3000"), overdue=eur("0"),
                      unbilled_wip=eur("0"), as_of=date(2026, 12, 31)),
    )  # fmt: skip
    values = (await kt.raw.get(f"{API}/workspaces/{ref.project_id}", params={"include": "custom_field_values"})).json()
    shown = {v["value"] for v in values["custom_field_values"].values()}
    assert {"Collected", "3000.00", "0.00", "AM-1"} <= shown and "Billed" not in shown
    await kt.psa.set_stage(ref.project_id, "Completed", False)
    ws = (await kt.raw.get(f"{API}/workspaces/{ref.project_id}")).json()["workspaces"][ref.project_id]
    assert ws["status"] == {"key": 350, "message": "Completed"}


async def test_posting_pages_and_extract(kt: Kantata) -> None:
    eng = de_engagement()
    ref = await kt.psa.create_project(eng, "engagement-006KT0000000001:project")
    other = await kt.psa.create_project(
        eng.model_copy(update={"opportunity_id": "006KT0000000002", "legal_entity": "UK01"}), "engagement-2:project"
    )
    konrad, emmy = kt.user("Konrad Zuse"), kt.user("Emmy Noether")
    t1 = await kt.log_time(ref.project_id, konrad, "2026-11-03", 90)
    t2 = await kt.log_time(ref.project_id, emmy, "2026-11-04", 120)
    await kt.log_time(other.project_id, emmy, "2026-11-04", 120)  # another entity's workspace

    [project] = await kt.posting.projects("DE01", "", 10)
    assert (project.project_id, project.opportunity_id, project.customer_id, project.currency) == (
        ref.project_id,
        "006KT0000000001",
        "001KT0000000001",
        "EUR",
    )
    assert await kt.posting.projects("DE01", ref.project_id, 10) == []  # the cursor moves on
    pending = await kt.posting.pending([project], date(2026, 11, 30))
    assert sorted(e.entry_id for e in pending.time_entries) == sorted([t1, t2])
    assert pending.bill_rates == {t1: Decimal("225.00"), t2: Decimal("165.00")}
    # resources are the firm's employees (the ERP's), the same person as in the CRM org
    employees = {u["id"]: u["employee_id"] for u in kt.seed["users"]}
    assert {r.resource_id: r.home_legal_entity for r in pending.resources} == {
        employees[konrad]: "DE01",
        employees[emmy]: "DE01",
    }
    assert {e.resource_id for e in pending.time_entries} == {employees[konrad], employees[emmy]}
    assert await kt.posting.claim([t1, t2], [], "post-DE01-2026-11-30:p1") == 2
    assert await kt.posting.claim([t1, t2], [], "post-DE01-2026-11-30:p1") == 0  # absolute: a retry writes nothing
    again = await kt.posting.pending([project], date(2026, 11, 30))
    assert again.claims == {t1: "post-DE01-2026-11-30:p1", t2: "post-DE01-2026-11-30:p1"}
    assert await kt.posting.mark_posted([t1], []) == 1
    assert [e.entry_id for e in (await kt.posting.pending([project], date(2026, 11, 30))).time_entries] == [t2]

    [extract_project] = await kt.extract.projects("DE01", "", 10)
    [total] = await kt.extract.approved_time([extract_project], date(2026, 11, 1), date(2026, 11, 30))
    # 1.5 h x 225 + 2 h x 165, posted or not
    assert (total.hours, total.time_amount, total.records) == (Decimal("3.5"), Decimal("667.5"), 2)


async def test_remove_project_is_safe_to_repeat(kt: Kantata) -> None:
    ref = await kt.psa.create_project(de_engagement(), "engagement-006KT0000000001:project")
    assert await kt.psa.remove_project("engagement-006KT0000000001:project") is True
    assert await kt.psa.remove_project("engagement-006KT0000000001:project") is False
    assert (await kt.raw.get(f"{API}/workspaces/{ref.project_id}")).status_code == 404
    assert await kt.admin.records("stories") == []
