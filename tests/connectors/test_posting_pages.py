"""A posting page against the in-process simulators: batch journals with per-record
lineage, a retried page after a crash between the ERP write and the PSA mark writes
nothing twice, poison records become exceptions, time facts go to the hub sink."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from activities.posting import PostingActivities
from connectors.certinia import psa_connection
from connectors.netsuite import erp_connection
from connectors.routing import ErpRouter, PsaRouter
from contracts.posting import PostingConfig, PostPageInput
from domain.reference_data import default_fx_rates
from tests.connectors.conftest import NetSuite, Salesforce

CURRENCIES = {"US01": "USD", "UK01": "GBP", "DE01": "EUR", "JP01": "JPY"}


class Sink:
    def __init__(self) -> None:
        self.facts: list[dict[str, object]] = []

    async def write(self, facts: Sequence[dict[str, object]], consultants: Sequence[dict[str, object]] = ()) -> int:
        self.facts += facts
        return len(facts)


async def _setup(sf: Salesforce) -> tuple[str, list[str], list[str]]:
    people = {
        r["Name"]: r["Id"]
        for r in await sf.client.query_all("SELECT Id, Name FROM Contact WHERE pse__Is_Resource__c = true")
    }
    project = await sf.client.create(
        "pse__Proj__c", {"Name": "DE journal project", "D2R_Legal_Entity__c": "DE01", "CurrencyIsoCode": "EUR"}
    )
    cards = [
        await sf.client.create(
            "pse__Timecard_Header__c",
            {
                "pse__Project__c": project,
                "pse__Resource__c": people[name],
                "pse__Start_Date__c": "2026-10-05",
                "pse__End_Date__c": "2026-10-11",
                "pse__Monday_Hours__c": 8,
                "pse__Tuesday_Hours__c": 4,
                "pse__Status__c": "Approved",
                "pse__Billable__c": True,
                "pse__Bill_Rate__c": 200,
            },
        )
        for name in ("Konrad Zuse", "Emmy Noether", "Konrad Zuse")
    ]
    expenses = [
        await sf.client.create(
            "pse__Expense__c",
            {
                "pse__Project__c": project,
                "pse__Resource__c": people["Emmy Noether"],
                "pse__Amount__c": amount,
                "CurrencyIsoCode": currency,
                "pse__Expense_Date__c": "2026-10-06",
                "pse__Status__c": "Approved",
                "pse__Type__c": "Travel",
            },
        )
        for amount, currency in ((100, "EUR"), (108, "USD"), (50, "CHF"))
    ]
    return project, cards, expenses


def _lines(journal: dict[str, object]) -> list[dict[str, object]]:
    stored = journal["line"]
    return list(stored if isinstance(stored, list) else stored["items"])  # type: ignore[index]


def _acts(sf: Salesforce, ns: NetSuite, sink: Sink) -> PostingActivities:
    return PostingActivities(
        PsaRouter({"default": psa_connection(sf.client)}, {}, "default", system="psa"),
        ErpRouter({"default": erp_connection(ns.client)}, {}, "default"),
        CURRENCIES,
        default_fx_rates(),
        hub=sink,
    )


def _page(run_id: str = "posting-DE01-2026-10-31") -> PostPageInput:
    return PostPageInput(
        run_id=run_id,
        page=0,
        legal_entity="DE01",
        cutoff=date(2026, 10, 31),
        posting_date=date(2026, 10, 31),
        config=PostingConfig(time_mode="journal", journal_lines=2),
    )


async def test_journal_batches_are_written_once_and_poison_is_set_aside(sf: Salesforce, ns: NetSuite) -> None:
    project, cards, expenses = await _setup(sf)
    sink = Sink()
    acts = _acts(sf, ns, sink)
    result = await acts._post_page(_page())
    assert (result.time_entries, result.expenses) == (6, 2)
    assert [(x.code, x.source_id) for x in result.exceptions] == [("NO_FX_RATE", expenses[2])]
    assert result.hours == Decimal(36)  # the page's counts only: per-project figures are the hub's time facts
    journals = [
        j
        for j in await ns.admin.records("journalEntry")
        if str(j.get("externalId", "")).startswith("posting-DE01-2026-10-31:p0:")
    ]
    # 3 timecards in batches of 2 -> 2 time journals; 2 expenses -> 1 journal
    assert sorted(j["externalId"] for j in journals) == [
        "posting-DE01-2026-10-31:p0:exp:DE01:EUR:0",
        "posting-DE01-2026-10-31:p0:time:DE01:EUR:0",
        "posting-DE01-2026-10-31:p0:time:DE01:EUR:1",
    ]
    for j in journals:
        lines = _lines(j)
        assert sum(Decimal(str(x.get("debit") or 0)) for x in lines) == sum(
            Decimal(str(x.get("credit") or 0)) for x in lines
        )
        assert all(x["custcol_d2r_source_id"] in {*cards, *expenses} for x in lines)
    expense_journal = next(j for j in journals if ":exp:" in j["externalId"])
    # 108 USD at 1.08 USD/EUR books 100 EUR
    assert sorted(Decimal(str(x["debit"])) for x in _lines(expense_journal) if x.get("debit")) == [
        Decimal(100),
        Decimal(100),
    ]
    assert len(sink.facts) == 6 and {f["legal_entity"] for f in sink.facts} == {"DE01"}
    posted = {
        r["Id"]: r["D2R_Posted__c"]
        for r in await sf.client.query_all(
            f"SELECT Id, D2R_Posted__c FROM pse__Expense__c WHERE pse__Project__c = '{project}'"
        )
    }
    assert posted == {expenses[0]: True, expenses[1]: True, expenses[2]: False}

    # The worker died after the ERP write and before the PSA mark: the page runs again.
    await sf.client.update_many("pse__Timecard_Header__c", [{"Id": c, "D2R_Posted__c": False} for c in cards])
    again = await acts._post_page(_page())
    assert again.time_entries == 6 and again.expenses == 0
    after = [
        j
        for j in await ns.admin.records("journalEntry")
        if str(j.get("externalId", "")).startswith("posting-DE01-2026-10-31:p0:")
    ]
    assert len(after) == 3  # found, not written again
    assert (await ns.admin.duplicates())["count"] == 0
    assert all(
        r["D2R_Posted__c"]
        for r in await sf.client.query_all(
            f"SELECT Id, D2R_Posted__c FROM pse__Timecard_Header__c WHERE pse__Project__c = '{project}'"
        )
    )

    # A later run finds only the poison record.
    later = await acts._post_page(_page("posting-DE01-2026-11-01"))
    assert (later.time_entries, later.expenses, later.exceptions_total) == (0, 0, 1)


async def test_a_later_run_finds_journals_an_earlier_run_wrote_before_it_died(sf: Salesforce, ns: NetSuite) -> None:
    """Run A wrote its journals and died before marking the records posted (and never came
    back); run B, under another id, finds A's journals through the records' claims and posts
    nothing twice."""
    project, cards, expenses = await _setup(sf)
    acts = _acts(sf, ns, Sink())
    await acts._post_page(_page("posting-DE01-2026-10-31"))
    first = await _lines_per_source(ns)
    assert set(first) == {*cards, *expenses[:2]}
    await sf.client.update_many("pse__Timecard_Header__c", [{"Id": c, "D2R_Posted__c": False} for c in cards])
    await sf.client.update_many("pse__Expense__c", [{"Id": x, "D2R_Posted__c": False} for x in expenses[:2]])
    claims = {
        r["D2R_Posting_Claim__c"]
        for r in await sf.client.query_all(
            f"SELECT D2R_Posting_Claim__c FROM pse__Timecard_Header__c WHERE pse__Project__c = '{project}'"
        )
    }
    assert claims == {"posting-DE01-2026-10-31:p0"}

    later = await acts._post_page(_page("posting-DE01-2026-11-01"))
    assert (later.time_entries, later.expenses) == (6, 2)  # marked posted now
    journals = await ns.admin.records("journalEntry")
    assert not [j for j in journals if str(j.get("externalId", "")).startswith("posting-DE01-2026-11-01:")]
    assert await _lines_per_source(ns) == first  # every record's lines once, as run A wrote them
    assert all(
        r["D2R_Posted__c"]
        for r in await sf.client.query_all(
            f"SELECT Id, D2R_Posted__c FROM pse__Timecard_Header__c WHERE pse__Project__c = '{project}'"
        )
    )


async def _lines_per_source(ns: NetSuite) -> dict[str, int]:
    count: dict[str, int] = {}
    for journal in await ns.admin.records("journalEntry"):
        for line in _lines(journal):
            source = str(line.get("custcol_d2r_source_id"))
            count[source] = count.get(source, 0) + 1
    return count
