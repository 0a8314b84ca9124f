"""PSA on Certinia: every PsaPort operation against the Salesforce simulator's pse__ objects."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from connectors.errors import NotFoundError, VendorValidationError
from domain.deal import BillingModel, Engagement
from domain.system_records import BillingStatus, ProjectChange
from tests.connectors.conftest import OPP_JP, Salesforce, engagement, usd

CUTOFF = date(2026, 3, 31)


async def consultant(sf: Salesforce, first: str) -> str:
    rows = await sf.client.query_all(f"SELECT Id FROM Contact WHERE FirstName = '{first}'")
    return str(rows[0]["Id"])


def line_of(eng: Engagement, model: BillingModel) -> str:
    return next(line.line_id for line in eng.lines if line.billing_model is model)


async def timecard(
    sf: Salesforce, project: str, resource: str, start: str, end: str, status: str = "Approved", **fields: Any
) -> str:
    return await sf.client.create(
        "pse__Timecard_Header__c",
        {
            "pse__Project__c": project,
            "pse__Resource__c": resource,
            "pse__Start_Date__c": start,
            "pse__End_Date__c": end,
            "pse__Status__c": status,
            "pse__Billable__c": True,
            **fields,
        },
    )


async def test_create_project_gives_each_fee_line_its_milestones_idempotently(sf: Salesforce) -> None:
    eng = await engagement(sf.crm)
    first = await sf.psa.create_project(eng, "engagement-1:project")
    again = await sf.psa.create_project(eng, "engagement-1:project")
    assert again == first
    assert len(first.milestone_ids) == 3 and len(first.resource_request_ids) == 1
    milestones = [m for m in await sf.admin.records("pse__Milestone__c") if m["pse__Project__c"] == first.project_id]
    assert len(milestones) == 3
    fee_line = line_of(eng, BillingModel.FIXED_FEE)
    assert {m["D2R_Contract_Line_Id__c"] for m in milestones} == {fee_line}
    assert sorted(m["D2R_Percent__c"] for m in milestones) == [30, 30, 40]
    assert sum(Decimal(str(m["pse__Milestone_Amount__c"])) for m in milestones) == Decimal(120000)
    assert (await sf.admin.duplicates())["count"] == 0
    assert await sf.psa.remove_project("engagement-1:project") is True
    assert await sf.psa.remove_project("engagement-1:project") is False  # undo twice is one undo
    assert not [m for m in await sf.admin.records("pse__Milestone__c") if m["pse__Project__c"] == first.project_id]


async def test_milestone_line_in_yen_splits_without_losing_a_yen(sf: Salesforce) -> None:
    eng = await engagement(sf.crm, OPP_JP)
    ref = await sf.psa.create_project(eng, "engagement-3:project")
    rows = [await sf.client.get("pse__Milestone__c", m) for m in ref.milestone_ids]
    assert sum(Decimal(str(r["pse__Milestone_Amount__c"])) for r in rows) == Decimal(30_000_000)
    assert {r["CurrencyIsoCode"] for r in rows} == {"JPY"}


async def test_read_delivery_maps_time_expenses_milestones_resources_and_rates(sf: Salesforce) -> None:
    eng = await engagement(sf.crm)
    ref = await sf.psa.create_project(eng, "engagement-1:project")
    project = ref.project_id
    tm, ff = line_of(eng, BillingModel.TIME_AND_MATERIALS), line_of(eng, BillingModel.FIXED_FEE)
    senior, junior = await consultant(sf, "Margaret"), await consultant(sf, "Hedy")
    # Senior Consultant time, no line id: the T&M line for that role.
    by_role = await timecard(
        sf,
        project,
        senior,
        "2026-03-02",
        "2026-03-08",
        pse__Monday_Hours__c=8,
        pse__Tuesday_Hours__c=6.5,
        pse__Billed__c=True,
    )
    # Explicitly booked to the fixed fee, non-billable.
    explicit = await timecard(
        sf,
        project,
        junior,
        "2026-03-02",
        "2026-03-08",
        pse__Friday_Hours__c=4,
        pse__Billable__c=False,
        D2R_Contract_Line_Id__c=ff,
    )
    # A week across the cutoff: only the days up to it count.
    across = await timecard(
        sf,
        project,
        senior,
        "2026-03-30",
        "2026-04-05",
        pse__Monday_Hours__c=2,
        pse__Tuesday_Hours__c=3,
        pse__Wednesday_Hours__c=5,
    )
    await timecard(sf, project, senior, "2026-03-09", "2026-03-15", status="Submitted", pse__Monday_Hours__c=8)
    await timecard(sf, project, senior, "2026-04-06", "2026-04-12", pse__Monday_Hours__c=8)
    expense = await sf.client.create(
        "pse__Expense__c",
        {
            "pse__Project__c": project,
            "pse__Resource__c": senior,
            "pse__Expense_Date__c": "2026-03-05",
            "pse__Amount__c": "412.35",
            "pse__Type__c": "Airfare",
            "pse__Status__c": "Approved",
            "pse__Billable__c": True,
            "CurrencyIsoCode": "USD",
        },
    )
    await sf.client.create(
        "pse__Expense__c",
        {
            "pse__Project__c": project,
            "pse__Resource__c": senior,
            "pse__Expense_Date__c": "2026-03-06",
            "pse__Amount__c": 99,
            "pse__Status__c": "Draft",
        },
    )
    done = ref.milestone_ids[0]
    await sf.client.update(
        "pse__Milestone__c", done, {"pse__Status__c": "Complete", "pse__Actual_Date__c": "2026-03-20"}
    )

    delivery = await sf.psa.read_delivery(project, eng.lines, CUTOFF)

    entries = {e.entry_id: e for e in delivery.time_entries}
    assert set(entries) == {
        f"{by_role}:2026-03-02",
        f"{by_role}:2026-03-03",
        f"{explicit}:2026-03-06",
        f"{across}:2026-03-30",
        f"{across}:2026-03-31",
    }
    assert entries[f"{by_role}:2026-03-03"].hours == Decimal("6.5")
    assert entries[f"{by_role}:2026-03-02"].contract_line_id == tm  # read whatever the billed flag
    assert entries[f"{explicit}:2026-03-06"].contract_line_id == ff
    assert entries[f"{explicit}:2026-03-06"].billable is False
    assert all(e.project_id == project for e in entries.values())
    [exp] = delivery.expenses
    assert exp.entry_id == expense and exp.contract_line_id == tm and exp.amount == usd("412.35")
    assert exp.category == "airfare"
    milestones = {m.milestone_id: m for m in delivery.milestones}
    assert set(milestones) == set(ref.milestone_ids)
    assert milestones[done].completed_on == date(2026, 3, 20) and milestones[done].contract_line_id == ff
    assert sum(1 for m in milestones.values() if m.completed_on is None) == 2
    assert sorted(m.weight for m in milestones.values()) == [30, 30, 40]
    resources = {r.resource_id: r for r in delivery.resources}
    assert set(resources) == {senior, junior}
    assert resources[senior].role == "Senior Consultant" and resources[senior].home_legal_entity == "US01"
    assert resources[senior].cost_rate == usd("140")
    assert delivery.rate_card is not None and delivery.rate_card.currency == "USD"
    assert delivery.rate_card.bill_rate("Senior Consultant", CUTOFF).currency == "USD"
    assert {e.role for e in delivery.rate_card.entries} >= {"Senior Consultant", "Consultant"}

    # The month-end batch reads many projects at once: the same delivery per project, each
    # project's records only, unknown projects left out.
    other = (await sf.psa.create_project(eng, "engagement-2:project")).project_id
    await timecard(sf, other, junior, "2026-03-02", "2026-03-08", pse__Monday_Hours__c=3)
    both = await sf.psa.read_deliveries({project: eng.lines, other: eng.lines, "a0PDd0000000ZZZIAA": eng.lines}, CUTOFF)
    assert set(both) == {project, other}
    assert both[project] == delivery
    assert [(e.hours, e.resource_id) for e in both[other].time_entries] == [(Decimal(3), junior)]
    assert [r.resource_id for r in both[other].resources] == [junior]


async def test_read_delivery_pages_through_hundreds_and_marks_billed_in_collections(sf: Salesforce) -> None:
    eng = await engagement(sf.crm)
    project = (await sf.psa.create_project(eng, "engagement-1:project")).project_id
    senior = await consultant(sf, "Margaret")
    ids: list[str] = []
    for batch in range(3):  # 450 approved timecards, loaded 150 per sObject Collections call
        records = [
            {
                "attributes": {"type": "pse__Timecard_Header__c"},
                "pse__Project__c": project,
                "pse__Resource__c": senior,
                "pse__Start_Date__c": "2026-03-02",
                "pse__End_Date__c": "2026-03-08",
                "pse__Monday_Hours__c": 1,
                "pse__Status__c": "Approved",
                "pse__Billable__c": True,
            }
            for _ in range(150)
        ]
        response = await sf.admin.http.post(
            "/services/data/v61.0/composite/sobjects",
            json={"allOrNone": True, "records": records},
            headers={"Authorization": f"Bearer {await token(sf)}"},
        )
        assert response.status_code == 200, response.text
        ids += [r["id"] for r in response.json()]
        assert batch >= 0
    delivery = await sf.psa.read_delivery(project, eng.lines, CUTOFF)  # 90 pages of 5
    assert len(delivery.time_entries) == 450
    entry_ids = [e.entry_id for e in delivery.time_entries]
    calls_before = sf.admin.app.api_usage
    assert await sf.psa.mark_billed(entry_ids, [], True) == 450
    assert sf.admin.app.api_usage - calls_before == 3  # 200 + 200 + 50 records
    cards = {c["Id"]: c for c in await sf.admin.records("pse__Timecard_Header__c")}
    assert all(cards[i]["pse__Billed__c"] for i in ids)
    assert await sf.psa.mark_billed(entry_ids[:10], [], False) == 10  # release again (a re-bill)
    cards = {c["Id"]: c for c in await sf.admin.records("pse__Timecard_Header__c")}
    assert sum(1 for i in ids if not cards[i]["pse__Billed__c"]) == 10


async def token(sf: Salesforce) -> str:
    await sf.client.query_all("SELECT Id FROM Account LIMIT 1")
    assert sf.client.auth.token is not None
    return sf.client.auth.token.access_token


async def test_mark_billed_skips_deleted_entries(sf: Salesforce) -> None:
    eng = await engagement(sf.crm)
    project = (await sf.psa.create_project(eng, "engagement-1:project")).project_id
    senior = await consultant(sf, "Margaret")
    keep = await timecard(sf, project, senior, "2026-03-02", "2026-03-08", pse__Monday_Hours__c=1)
    gone = await timecard(sf, project, senior, "2026-03-02", "2026-03-08", pse__Monday_Hours__c=1)
    await sf.client.delete("pse__Timecard_Header__c", gone)
    assert await sf.psa.mark_billed([f"{keep}:2026-03-02", f"{gone}:2026-03-02"], [], True) == 1


async def test_feedback_change_and_stage(sf: Salesforce) -> None:
    eng = await engagement(sf.crm)
    ref = await sf.psa.create_project(eng, "engagement-1:project")
    project = ref.project_id
    await sf.psa.write_billing_status(
        project,
        BillingStatus(
            status="Partially collected",
            billed=usd("5000"),
            collected=usd("2000"),
            overdue=usd("0"),
            unbilled_wip=usd("1234.565"),
            as_of=CUTOFF,
        ),
    )
    change = ProjectChange(
        change_id="AM-1",
        budget=usd("200000"),
        end_date=date(2026, 12, 31),
        milestone_amounts={ref.milestone_ids[1]: usd("60000")},
    )
    await sf.psa.apply_change(project, change)
    await sf.psa.apply_change(project, change)  # absolute values: applying twice is one state
    await sf.psa.set_stage(project, "Completed", False)
    row = await sf.client.get("pse__Proj__c", project)
    assert row["D2R_Billing_Status__c"] == "Partially collected" and row["D2R_Unbilled_WIP__c"] == 1234.57
    assert row["pse__Billings__c"] == 5000
    assert row["D2R_Budget__c"] == 200000 and row["pse__End_Date__c"] == "2026-12-31"
    assert row["D2R_Last_Change_Id__c"] == "AM-1"
    assert row["pse__Stage__c"] == "Completed" and row["pse__Is_Active__c"] is False
    assert row["pse__Closed_for_Time_Entry__c"] is True
    assert (await sf.client.get("pse__Milestone__c", ref.milestone_ids[1]))["pse__Milestone_Amount__c"] == 60000
    with pytest.raises(VendorValidationError):  # a milestone that is not there cannot take the amount
        await sf.psa.apply_change(
            project, ProjectChange(change_id="AM-2", milestone_amounts={"a0MDd0000000ZZZIAA": usd("1")})
        )


async def test_unknown_project_and_package(sf: Salesforce) -> None:
    eng = await engagement(sf.crm)
    with pytest.raises(NotFoundError):
        await sf.psa.read_delivery("a0PDd0000000ZZZIAA", eng.lines, CUTOFF)
    with pytest.raises(VendorValidationError) as caught:
        await sf.psa.create_project(eng.model_copy(update={"service_package": "NOPE"}), "engagement-z:project")
    assert caught.value.vendor_code == "UNKNOWN_SERVICE_PACKAGE"


async def test_project_region_and_group_are_lookups_to_certinia_records(sf: Salesforce) -> None:
    """The opportunity's delivery region, the service package's practice and the legal
    entity become the ids of the pse__Region__c, pse__Practice__c and pse__Grp__c records
    of that Name; the org refuses a code."""
    eng = await engagement(sf.crm)  # US01, delivery region "Americas"
    ref = await sf.psa.create_project(eng, "engagement-1:project")
    project = await sf.client.get("pse__Proj__c", ref.project_id)
    regions = await sf.client.query_all("SELECT Id, Name FROM pse__Region__c")
    groups = await sf.client.query_all("SELECT Id, Name FROM pse__Grp__c")
    assert project["pse__Region__c"] == next(r["Id"] for r in regions if r["Name"] == "Americas")
    assert project["pse__Group__c"] == next(g["Id"] for g in groups if g["Name"] == "US01")
    practices = await sf.client.query_all("SELECT Id, Name FROM pse__Practice__c")
    # IMPL-STD is the Implementation practice's package (its D2R_Practice__c)
    assert project["pse__Practice__c"] == next(p["Id"] for p in practices if p["Name"] == "Implementation")
    rows = await sf.client.query_all(f"SELECT pse__Region__r.Name FROM pse__Proj__c WHERE Id = '{ref.project_id}'")
    assert rows[0]["pse__Region__r"]["Name"] == "Americas"
    # what Salesforce answers the text d2r used to write
    with pytest.raises(VendorValidationError) as refused:
        await sf.client.update("pse__Proj__c", ref.project_id, {"pse__Region__c": "Americas"})
    assert refused.value.vendor_code == "MALFORMED_ID"
    with pytest.raises(VendorValidationError) as wrong_object:
        await sf.client.update("pse__Proj__c", ref.project_id, {"pse__Region__c": project["pse__Group__c"]})
    assert wrong_object.value.vendor_code == "FIELD_INTEGRITY_EXCEPTION"


async def test_an_unknown_delivery_region_is_refused_before_any_write(sf: Salesforce) -> None:
    eng = (await engagement(sf.crm)).model_copy(update={"delivery_region": "Atlantis"})
    with pytest.raises(VendorValidationError) as refused:
        await sf.psa.create_project(eng, "engagement-9:project")
    assert refused.value.vendor_code == "UNKNOWN_REGION" and not refused.value.retryable
    assert not await sf.client.query_all(
        "SELECT Id FROM pse__Proj__c WHERE D2R_External_Id__c = 'engagement-9:project'"
    )


async def test_lookups_are_read_once_and_rate_cards_match_by_region_id(
    sf: Salesforce, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng = await engagement(sf.crm)
    await sf.psa.create_project(eng, "engagement-1:project")
    soql: list[str] = []
    real = sf.client.query_all

    async def spy(q: str) -> list[dict[str, Any]]:
        soql.append(q)
        return await real(q)

    monkeypatch.setattr(sf.client, "query_all", spy)
    ref = await sf.psa.create_project(eng, "engagement-1b:project")
    lookups = ("pse__Region__c", "pse__Practice__c", "pse__Grp__c")
    assert not [q for q in soql if q.split(" FROM ")[-1].split()[0] in lookups]  # read once, then cached
    monkeypatch.setattr(sf.client, "query_all", real)
    emea = (await sf.client.query_all("SELECT Id FROM pse__Region__c WHERE Name = 'EMEA'"))[0]["Id"]
    await sf.client.create(
        "pse__Rate_Card__c",
        {"pse__Role__c": "Senior Consultant", "pse__Region__c": emea, "pse__Suggested_Bill_Rate__c": 999,
         "pse__Start_Date__c": "2026-01-01", "CurrencyIsoCode": "USD"},
    )  # fmt: skip
    delivery = await sf.psa.read_delivery(ref.project_id, eng.lines, CUTOFF)
    assert delivery.rate_card is not None
    senior = [e.bill_rate for e in delivery.rate_card.entries if e.role == "Senior Consultant"]
    assert senior == [Decimal(250)]  # the project's region (Americas) card, not EMEA's: matched by id
