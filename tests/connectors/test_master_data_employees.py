"""Consultants created in the PSA mid-month become ERP employees before their time posts.

First the failure the issue reports, reproduced: a consultant added in Certinia has time
approved, and without master data the NetSuite time bill is refused with `Invalid Field
Value … employee` (one exception per entry). Then the posting page ensures the page's
employees first: the same time posts with no exception, the employee exists once in the
ERP's subsidiary of their home entity, and a rerun creates nothing more. On D365 the
consultant becomes a Worker (shared by the companies) that the hour journal finds."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from activities.posting import PostingActivities
from connectors.certinia import psa_connection
from connectors.dynamics import erp_connection as d365_connection
from connectors.dynamics.workers import DynamicsWorkers
from connectors.netsuite import erp_connection
from connectors.routing import ErpRouter, PsaRouter
from contracts.posting import PostingConfig, PostPageInput
from domain.master_data import Employee
from domain.reference_data import default_fx_rates
from tests.connectors.conftest import NetSuite, Salesforce
from tests.connectors.test_dynamics_erp import make_d365

CURRENCIES = {"US01": "USD", "UK01": "GBP", "DE01": "EUR", "JP01": "JPY"}


async def new_consultant_with_time(sf: Salesforce, entity: str = "US01", currency: str = "USD") -> tuple[str, str]:
    """A consultant hired on 16 November (created in the PSA only) and their approved week."""
    person = await sf.client.create(
        "Contact",
        {
            "FirstName": "Katherine",
            "LastName": "Johnson",
            "pse__Is_Resource__c": True,
            "pse__Is_Resource_Active__c": True,
            "pse__Resource_Role__c": "Senior Consultant",
            "D2R_Home_Legal_Entity__c": entity,
            "pse__Default_Cost_Rate__c": 120,
            "CurrencyIsoCode": currency,
        },
    )
    project = await sf.client.create(
        "pse__Proj__c",
        {"Name": f"{entity} new-hire project", "D2R_Legal_Entity__c": entity, "CurrencyIsoCode": currency},
    )
    await sf.client.create(
        "pse__Timecard_Header__c",
        {
            "pse__Project__c": project,
            "pse__Resource__c": person,
            "pse__Start_Date__c": "2026-11-16",
            "pse__End_Date__c": "2026-11-22",
            "pse__Monday_Hours__c": 8,
            "pse__Tuesday_Hours__c": 6,
            "pse__Status__c": "Approved",
            "pse__Billable__c": True,
            "pse__Bill_Rate__c": 250,
        },
    )
    return person, project


def _acts(sf: Salesforce, erp: Any) -> PostingActivities:
    return PostingActivities(
        PsaRouter({"default": psa_connection(sf.client)}, {}, "default", system="psa"),
        ErpRouter({"default": erp}, {}, "default"),
        CURRENCIES,
        default_fx_rates(),
    )


def _page(entity: str = "US01", run: str = "posting-US01-2026-11-30") -> PostPageInput:
    return PostPageInput(
        run_id=run,
        page=0,
        legal_entity=entity,
        cutoff=date(2026, 11, 30),
        posting_date=date(2026, 11, 30),
        config=PostingConfig(time_mode="time_bill"),
    )


async def test_a_consultant_new_in_the_psa_fails_posting_without_master_data(sf: Salesforce, ns: NetSuite) -> None:
    """The reproduction: no employee in the ERP, so every entry of theirs is refused."""
    person, _ = await new_consultant_with_time(sf)
    without = dataclasses.replace(erp_connection(ns.client), employees=None)
    result = await _acts(sf, without)._post_page(_page())
    assert result.time_entries == 0
    # the message the issue quotes (one exception per timecard: its entries stay unposted together)
    assert [x.code for x in result.exceptions] == ["USER_ERROR"]
    assert f"Invalid Field Value {person} for the following field: employee" in result.exceptions[0].message
    assert not [e for e in await ns.admin.records("employee") if e.get("externalId") == person]


async def test_the_posting_page_makes_the_employee_first_and_posts_their_time(sf: Salesforce, ns: NetSuite) -> None:
    person, project = await new_consultant_with_time(sf)
    acts = _acts(sf, erp_connection(ns.client))
    result = await acts._post_page(_page())
    # Monday 8 h + Tuesday 6 h: two entries, 14 hours, no exception
    assert (result.time_entries, result.hours, result.exceptions_total) == (2, Decimal(14), 0)
    employees = [e for e in await ns.admin.records("employee") if e.get("externalId") == person]
    assert len(employees) == 1
    assert employees[0]["subsidiary"]["refName"] and employees[0]["lastName"] == "Johnson"
    bills = [b for b in await ns.admin.records("timeBill") if b.get("custcol_d2r_project_id") == project]
    assert len(bills) == 2 and {b["employee"]["id"] for b in bills} == {employees[0]["id"]}
    # A rerun (a fresh process: nothing cached) neither re-posts nor re-hires.
    again = await _acts(sf, erp_connection(ns.client))._post_page(_page(run="posting-US01-2026-11-30-again"))
    assert (again.time_entries, again.exceptions_total) == (0, 0)
    assert len([e for e in await ns.admin.records("employee") if e.get("externalId") == person]) == 1


async def test_on_d365_the_consultant_becomes_one_worker_the_hour_journal_finds(sf: Salesforce, tmp_path: Path) -> None:
    d365 = await make_d365(tmp_path)
    try:
        person, _ = await new_consultant_with_time(sf, "UK01", "GBP")
        result = await _acts(sf, d365_connection(d365.client))._post_page(_page("UK01", "posting-UK01-2026-11-30"))
        assert (result.time_entries, result.exceptions_total) == (2, 0), result.exceptions
        workers = [w for w in await d365.admin.records("Employees") if w.get("D2RReference") == person]
        assert len(workers) == 1 and workers[0]["EmploymentLegalEntityId"] == "UK01"
        # Ensured again from a fresh process (nothing cached): found by reference, not re-hired.
        outcomes = await DynamicsWorkers(d365.client).ensure_employees(
            [Employee(employee_id=person, name="Katherine Johnson", legal_entity="UK01", role="Senior Consultant")]
        )
        assert [(o.created, o.record_id) for o in outcomes] == [(False, workers[0]["PersonnelNumber"])]
        assert len([w for w in await d365.admin.records("Employees") if w.get("D2RReference") == person]) == 1
    finally:
        await d365.client.aclose()
        await d365.admin.aclose()
