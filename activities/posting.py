"""Time & expense posting activities: one activity per page of projects, never per record.

A page reads a chunk of the entity's projects and every approved, unposted timecard and
expense in them from the PSA, posts them to the right entities' ERPs (time bills by
externalId, or summarized journals whose lines name their PSA record), posts the
intercompany charges for consultants who sat in another entity on the day worked, writes
the time facts to the reporting hub when one is configured, and only then marks the
records posted in the PSA. A retried page is harmless: time bills upsert by the entry's
id, and a batch journal that already exists is read back and never written twice.
A record the ERP refuses for good becomes an exception; the rest of the page proceeds.

Faults isolate to the record, not the page: each vendor call retries on its own
(`activities/retrying.py`, honouring Retry-After), and a record whose ERP write still
fails after that is parked (`ERP_UNAVAILABLE`): it stays unposted and unmarked in the
PSA, so the next run posts it, while the rest of the page is posted now. Only a read the
page cannot go on without (the PSA's records, an existing journal's contents) fails the
page, which Temporal then retries.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Protocol

from temporalio import activity

from activities.errors import translating_errors
from activities.heartbeats import heartbeating
from activities.retrying import retrying
from connectors.errors import RetryableError
from connectors.ports import ErpEmployeesPort, ErpPostingPort, PsaConnection
from connectors.routing import ErpRouter, PsaRouter
from contracts.erp import LockPeriodInput, LockPeriodResult
from contracts.posting import PostPageInput, PostPageResult
from domain.fx import FxRateTable
from domain.intercompany import TransferPricing, intercompany_charges
from domain.journals import ChartOfAccounts, intercompany_journals
from domain.master_data import Employee, employee_in
from domain.model import ExceptionRecord, Lineage, Resource, TimeEntry, record_id
from domain.money import Money
from domain.periods import period_of
from domain.postings import (
    PendingEntries,
    PostingJournal,
    PostingLine,
    PostingProject,
    PostOutcome,
    TimeBill,
    expense_cost_lines,
    journal_posting_lines,
    time_cost_lines,
)


class TimeFactSink(Protocol):
    async def write(self, facts: Sequence[dict[str, object]], consultants: Sequence[dict[str, object]] = ()) -> int: ...


class HubTimeFacts:
    """Writes posted time as hub facts through `ReportingHub.record_time_facts` (COPY)."""

    def __init__(self, hub: object) -> None:
        self._hub = hub

    async def write(self, facts: Sequence[dict[str, object]], consultants: Sequence[dict[str, object]] = ()) -> int:
        from reporting.models import ConsultantDim, TimeFact

        # The consultant dimension comes with their time: utilization needs who they are and
        # where they sit (capacity is the dimension's default working day).
        if consultants:
            await self._hub.upsert_dimensions([ConsultantDim(**c) for c in consultants])  # type: ignore[attr-defined]
        result = await self._hub.record_time_facts([TimeFact(**f) for f in facts])  # type: ignore[attr-defined]
        return int(result.written)

    async def record_journals(self, journals: Sequence[tuple[str, str, str, str | None, list[str]]]) -> int:
        """The page's posted batch journals into the key map: (instance, entity, external id,
        ERP id, projects), each related to the projects whose lines it carries."""
        from reporting.keymap import KeyRecord

        wid = activity.info().workflow_id if activity.in_activity() else None
        return int(
            await self._hub.record_keys(  # type: ignore[attr-defined]
                [
                    KeyRecord(
                        system="erp",
                        instance=instance,
                        record_type="journal",
                        external_id=ext,
                        record_id=erp_id,
                        legal_entity=entity,
                        related=tuple(projects),
                        source="posting.post_page",
                        workflow_id=wid,
                    )
                    for instance, entity, ext, erp_id, projects in journals
                ]
            )
        )


UNAVAILABLE = "ERP_UNAVAILABLE"  # parked: the ERP kept failing transiently; a later run posts it


class _Page:
    """The bookkeeping of one page: what was posted, what failed and why."""

    def __init__(self, data: PostPageInput, pending: PendingEntries) -> None:
        self.data = data
        self.pending = pending
        self.projects = {p.project_id: p for p in pending.projects}
        self.resources = {r.resource_id: r for r in pending.resources}
        self.failed: dict[str, ExceptionRecord] = {}  # PSA record id -> why it stays unposted
        self.erp_records = 0
        # posted batch journals (ERP instance, entity, external id, ERP id, projects), for the key map
        self.journals: list[tuple[str, str, str, str | None, list[str]]] = []

    def fail(self, source_id: str, project_id: str | None, code: str, message: str) -> None:
        if source_id in self.failed:
            return
        project = self.projects.get(project_id or "")
        self.failed[source_id] = ExceptionRecord(
            exception_id=record_id("exc", "posting", source_id, code),
            code=code,
            message=message[:500],
            source_id=source_id,
            raised_on=self.data.posting_date,
            lineage=_lineage(project) if project else None,
        )


def _lineage(project: PostingProject) -> Lineage:
    return Lineage(
        opportunity_id=project.opportunity_id or "",
        customer_id=project.customer_id or "",
        project_id=project.project_id,
        contract_id=project.contract_id or "",
        legal_entity=project.legal_entity,
    )


def _card(entry: TimeEntry) -> str:
    return entry.entry_id.split(":", 1)[0]


class PostingActivities:
    def __init__(
        self,
        psa: PsaRouter,
        erp: ErpRouter,
        currencies: dict[str, str],
        fx: FxRateTable,
        pricing: TransferPricing | None = None,
        hub: TimeFactSink | None = None,
        coa: ChartOfAccounts | None = None,
    ) -> None:
        self._coa = coa or ChartOfAccounts()
        self._psas = psa
        self._erps = erp
        self._currencies = currencies
        self._fx = fx
        self._pricing = pricing or TransferPricing()
        self._hub = hub

    def _psa(self, legal_entity: str) -> PsaConnection:
        return self._psas.for_entity(legal_entity)

    def _erp(self, legal_entity: str) -> ErpPostingPort:
        return self._erps.for_entity(legal_entity).posting

    def _currency(self, legal_entity: str) -> str:
        return self._currencies.get(legal_entity, "USD")

    def _in(self, money: Money, currency: str, on: date) -> Money:
        return money if money.currency == currency else self._fx.convert(money, currency, on).rounded()

    @activity.defn(name="posting.post_page")
    @translating_errors
    async def post_page(self, data: PostPageInput) -> PostPageResult:
        async with heartbeating(2.0):
            return await self._post_page(data)

    async def _post_page(self, data: PostPageInput) -> PostPageResult:
        psa = self._psa(data.legal_entity).posting
        projects = await retrying(
            lambda: psa.projects(data.legal_entity, data.after_project, data.config.projects_per_page)
        )
        if not projects:
            return PostPageResult(next_project=None, projects=0, worker=_worker())
        pending = await retrying(lambda: psa.pending(projects, data.cutoff))
        page = _Page(data, pending)
        for source, why in sorted(pending.unreadable.items()):
            page.fail(source, None, "UNREADABLE_RECORD", why)
        entries = [e for e in pending.time_entries if _card(e) not in page.failed]
        for entry in entries:
            if entry.resource_id not in page.resources:
                page.fail(_card(entry), entry.project_id, "UNKNOWN_RESOURCE", f"no resource {entry.resource_id}")
        entries = [e for e in entries if _card(e) not in page.failed]

        journals: dict[tuple[str, str, str], dict[str, list[PostingLine]]] = defaultdict(lambda: defaultdict(list))
        if data.config.time_mode == "time_bill":
            await self._time_bills(page, entries)
        else:
            self._time_lines(page, entries, journals)
        charges = self._intercompany(page, entries, journals)
        self._expense_lines(page, journals)
        await self._post_journals(page, journals)

        posted_entries = [e for e in entries if _card(e) not in page.failed]
        posted_expenses = [x for x in pending.expenses if x.entry_id not in page.failed]
        hub_rows = None
        if self._hub is not None:
            try:
                hub_rows = await self._write_hub(page, posted_entries)
            except (ValueError, LookupError) as error:
                # The hub is derived data: a missing dimension or FX rate must not hold the
                # ledger back. Reconciliation will show the gap until the facts are reloaded.
                hub_rows = 0
                page.fail(
                    f"hub:{data.legal_entity}:{data.run_id}:p{data.page}",
                    None,
                    "HUB_LOAD_FAILED",
                    f"time facts of page {data.page} were not written to the hub: {error}",
                )
        await retrying(
            lambda: psa.mark_posted(sorted({_card(e) for e in posted_entries}), [x.entry_id for x in posted_expenses])
        )

        failures = sorted(page.failed.values(), key=lambda x: x.exception_id)
        return PostPageResult(
            next_project=projects[-1].project_id if len(projects) == data.config.projects_per_page else None,
            projects=len(projects),
            time_entries=len(posted_entries),
            expenses=len(posted_expenses),
            hours=sum((e.hours for e in posted_entries), Decimal(0)),
            erp_records=page.erp_records,
            intercompany_charges=charges,
            exceptions=failures[: data.config.max_exceptions],
            exceptions_total=len(failures),
            hub_rows=hub_rows,
            worker=_worker(),
        )

    # ---- time ---------------------------------------------------------------------------
    async def _ensure_employees(self, page: _Page, entries: list[TimeEntry]) -> list[TimeEntry]:
        """Every consultant on the page is an employee of the ERP their time bills go to
        before any bill is written (master data, docs/operations.md): a consultant created
        in the PSA mid-month posts like any other. One the ERP refuses for good fails
        their entries as records, not the page; the entries left to post are returned."""
        wanted: dict[int, tuple[ErpEmployeesPort, dict[str, Employee]]] = {}
        for entry in entries:
            resource = page.resources[entry.resource_id]
            provider = resource.position_on(entry.work_date).legal_entity or page.data.legal_entity
            port = self._erps.for_entity(provider).employees
            if port is not None:
                people = wanted.setdefault(id(port), (port, {}))[1]
                people.setdefault(resource.resource_id, employee_in(resource, provider, entry.work_date))
        refused: dict[str, str] = {}
        for port, people in wanted.values():
            batch = [people[k] for k in sorted(people)]
            # awaited inside the loop: the lambda never outlives this iteration's port and batch
            for outcome in await retrying(lambda: port.ensure_employees(batch)):  # noqa: B023
                if outcome.error is not None:
                    refused[outcome.employee_id] = outcome.error
        for entry in entries:
            if entry.resource_id in refused:
                page.fail(
                    _card(entry),
                    entry.project_id,
                    "EMPLOYEE_NOT_CREATED",
                    f"the ERP refused employee {entry.resource_id}: {refused[entry.resource_id]}",
                )
        return [e for e in entries if _card(e) not in page.failed]

    async def _time_bills(self, page: _Page, entries: list[TimeEntry]) -> None:
        entries = await self._ensure_employees(page, entries)
        by_erp: dict[int, tuple[ErpPostingPort, list[TimeBill]]] = {}
        for entry in entries:
            resource = page.resources[entry.resource_id]
            provider = resource.position_on(entry.work_date).legal_entity or page.data.legal_entity
            project = page.projects[entry.project_id]
            bill = TimeBill(
                external_id=f"d2r:tb:{entry.entry_id}",
                employee_id=entry.resource_id,
                legal_entity=provider,
                work_date=entry.work_date,
                hours=str(entry.hours),
                billable=entry.billable,
                memo=f"{resource.name} on project {project.project_id}",
                project_id=project.project_id,
                opportunity_id=project.opportunity_id,
                entry_id=entry.entry_id,
            )
            erp = self._erp(provider)
            by_erp.setdefault(id(erp), (erp, []))[1].append(bill)
        entry_of = {f"d2r:tb:{e.entry_id}": e for e in entries}

        async def one(erp: ErpPostingPort, bill: TimeBill) -> list[PostOutcome]:
            # One bill per call, retried on its own: a transient failure costs that bill a
            # retry, never the page; one that keeps failing is parked for the next run.
            try:
                return await retrying(lambda: erp.post_time_bills([bill]))
            except RetryableError as error:
                return [PostOutcome(key=bill.external_id, error_code=UNAVAILABLE, error=str(error))]

        outcomes = await asyncio.gather(*(one(erp, bill) for erp, bills in by_erp.values() for bill in bills))
        for outcome in (o for found in outcomes for o in found):
            self._record(page, outcome, [entry_of[outcome.key]])

    def _record(self, page: _Page, outcome: PostOutcome, entries: list[TimeEntry]) -> None:
        if outcome.error_code is None:
            page.erp_records += 1
            return
        for entry in entries:
            page.fail(
                _card(entry),
                entry.project_id,
                outcome.error_code,
                f"the ERP refused time entry {entry.entry_id}: {outcome.error}",
            )

    def _time_lines(
        self, page: _Page, entries: list[TimeEntry], journals: dict[tuple[str, str, str], dict[str, list[PostingLine]]]
    ) -> None:
        for entry in entries:
            position = page.resources[entry.resource_id].position_on(entry.work_date)
            provider = position.legal_entity or page.data.legal_entity
            cost = page.resources[entry.resource_id].cost_rate_on(entry.work_date).times(entry.hours).rounded()
            memo = f"time {entry.entry_id} {entry.hours}h"
            journals[(provider, "time", cost.currency)][_card(entry)] += time_cost_lines(
                cost, memo, _card(entry), entry.project_id, self._coa
            )

    # ---- intercompany -------------------------------------------------------------------------
    def _intercompany(
        self, page: _Page, entries: list[TimeEntry], journals: dict[tuple[str, str, str], dict[str, list[PostingLine]]]
    ) -> int:
        """A charge per timecard whose consultant sat in another entity on the days worked:
        the provider books IC receivable / revenue, the project's entity cost / IC payable."""
        by_card: dict[str, list[TimeEntry]] = defaultdict(list)
        for entry in entries:
            by_card[_card(entry)].append(entry)
        resources: list[Resource] = list(page.resources.values())
        count = 0
        for card, card_entries in sorted(by_card.items()):
            project = page.projects[card_entries[0].project_id]
            receiver = project.legal_entity
            resource = page.resources[card_entries[0].resource_id]
            if all(resource.position_on(e.work_date).legal_entity in (receiver, "") for e in card_entries):
                continue
            try:
                for period in sorted({period_of(e.work_date) for e in card_entries}):
                    for charge in intercompany_charges(
                        _lineage(project),
                        period,
                        card_entries,
                        resources,
                        self._pricing,
                        receiver_currency=self._currency(receiver),
                        fx=self._fx,
                    ):
                        provider_je, receiver_je = intercompany_journals(
                            charge, self._currency(receiver), self._fx, self._coa
                        )
                        for je in (provider_je, receiver_je):
                            journals[(je.legal_entity, "ic", je.currency)][card] += journal_posting_lines(je, card)
                        count += 1
            except (LookupError, ValueError) as error:
                page.fail(card, project.project_id, "INTERCOMPANY_CHARGE_FAILED", str(error))
        return count

    # ---- expenses ------------------------------------------------------------------------------
    def _expense_lines(self, page: _Page, journals: dict[tuple[str, str, str], dict[str, list[PostingLine]]]) -> None:
        for expense in page.pending.expenses:
            if expense.entry_id in page.failed:
                continue
            project = page.projects[expense.project_id]
            currency = self._currency(project.legal_entity)
            try:
                amount = self._in(expense.amount, currency, expense.incurred_on)
            except (LookupError, ValueError) as error:
                page.fail(expense.entry_id, project.project_id, "NO_FX_RATE", str(error))
                continue
            memo = f"expense {expense.entry_id} {expense.category} {expense.amount.amount} {expense.amount.currency}"
            journals[(project.legal_entity, "exp", currency)][expense.entry_id] += expense_cost_lines(
                amount, memo, expense.entry_id, project.project_id, self._coa
            )

    # ---- batch journals, written once -----------------------------------------------------------------
    async def _post_journals(
        self, page: _Page, journals: dict[tuple[str, str, str], dict[str, list[PostingLine]]]
    ) -> None:
        data = page.data
        size = data.config.journal_lines
        own = f"{data.run_id}:p{data.page}"
        # Time before intercompany: a timecard whose time was refused stays unposted, and
        # must not have its charge booked now and again by the run that posts it later.
        order = {"time": 0, "exp": 1, "ic": 2}
        groups = sorted(journals.items(), key=lambda i: (order[i[0][1]], i[0]))
        covered: dict[tuple[str, str, str], set[str]] = {}
        next_index: dict[tuple[str, str, str], int] = {}  # this page's next journal number per group
        for (entity, kind, currency), by_source in groups:
            # What this page wrote before a retry, and what an earlier run's page that claimed
            # these records wrote before it died (the records still say which page that was).
            erp = self._erp(entity)
            done: set[str] = set()
            for claim in [own, *sorted({c for s in by_source if (c := page.pending.claims.get(s)) and c != own})]:
                k = 0
                while True:
                    sources = await self._journal_sources(erp, f"{claim}:{kind}:{entity}:{currency}:{k}")
                    if sources is None:
                        break
                    done.update(sources)
                    k += 1
                    if claim == own:
                        page.erp_records += 1
                if claim == own:
                    next_index[(entity, kind, currency)] = k
            covered[(entity, kind, currency)] = done
        unclaimed = {
            s
            for key, by_source in groups
            for s in by_source
            if s not in covered[key] and s not in page.failed and page.pending.claims.get(s) != own
        }
        if unclaimed:
            cards = {_card(e) for e in page.pending.time_entries}
            psa = self._psa(data.legal_entity).posting
            await retrying(lambda: psa.claim(sorted(unclaimed & cards), sorted(unclaimed - cards), own))
        for (entity, kind, currency), by_source in groups:
            erp = self._erp(entity)
            prefix = f"{own}:{kind}:{entity}:{currency}"
            k = next_index[(entity, kind, currency)]
            todo = [s for s in sorted(by_source) if s not in covered[(entity, kind, currency)] and s not in page.failed]
            batches = [todo[i : i + size] for i in range(0, len(todo), size)]
            while batches:
                batch = batches.pop(0)
                journal = PostingJournal(
                    external_id=f"{prefix}:{k}",
                    legal_entity=entity,
                    currency=currency,
                    tran_date=data.posting_date,
                    memo=f"d2r {kind} posting {data.run_id} page {data.page}",
                    lines=[line for source in batch for line in by_source[source]],
                )
                outcome = await self._post_journal(erp, journal)
                if outcome is None:
                    # The ERP kept failing and the journal is not there: park its records
                    # (unposted, claimed by this page: a later run posts them under its number).
                    for source in batch:
                        page.fail(
                            source,
                            by_source[source][0].project_id,
                            UNAVAILABLE,
                            f"the ERP kept failing; the {kind} posting of {source} waits for the next run",
                        )
                    continue
                if outcome.error_code is None:
                    # Numbers only advance over journals that exist, so reading a claim's
                    # journals back (0, 1, 2... until one is missing) finds every one.
                    k += 1
                    page.erp_records += 1
                    projects = sorted({ln.project_id for ln in journal.lines if ln.project_id})
                    instance = self._erps.instance_name(entity)
                    page.journals.append((instance, entity, journal.external_id, outcome.record_id, projects))
                elif len(batch) > 1:
                    # Isolate the poison record: post the batch's records one by one.
                    batches = [[s] for s in batch] + batches
                else:
                    project = by_source[batch[0]][0].project_id
                    page.fail(
                        batch[0],
                        project,
                        outcome.error_code,
                        f"the ERP refused the {kind} posting of {batch[0]}: {outcome.error}",
                    )

    @staticmethod
    async def _journal_sources(erp: ErpPostingPort, external_id: str) -> list[str] | None:
        return await retrying(lambda: erp.journal_sources(external_id))

    async def _post_journal(self, erp: ErpPostingPort, journal: PostingJournal) -> PostOutcome | None:
        """The journal's outcome; None when the ERP kept failing and the journal does not
        exist. If the ERP cannot even say whether it exists, the page fails (and retries)."""
        try:
            return await retrying(lambda: erp.post_journal(journal))
        except RetryableError:
            # The last attempt's response may have been lost after the write: look before parking.
            if await self._journal_sources(erp, journal.external_id) is not None:
                return PostOutcome(key=journal.external_id, record_id=journal.external_id)
            return None

    # ---- hub ---------------------------------------------------------------------------------------------
    async def _write_hub(self, page: _Page, entries: list[TimeEntry]) -> int:
        assert self._hub is not None
        facts: list[dict[str, object]] = []
        for entry in entries:
            project = page.projects[entry.project_id]
            rate = page.pending.bill_rates.get(_card(entry), Decimal(0))
            cost = page.resources[entry.resource_id].cost_rate_on(entry.work_date).times(entry.hours).rounded()
            facts.append(
                {
                    "source_system": self._psa(page.data.legal_entity).system,
                    "source_record_id": entry.entry_id,
                    "opportunity_id": project.opportunity_id,
                    "customer_id": project.customer_id or "",
                    "project_id": project.project_id,
                    "contract_id": project.contract_id,
                    "legal_entity": project.legal_entity,
                    "currency": cost.currency,
                    "consultant_id": entry.resource_id,
                    "work_date": entry.work_date,
                    "hours": entry.hours,
                    "billable": entry.billable,
                    "bill_amount": rate * entry.hours,
                    "cost_amount": cost.amount,
                }
            )
        latest: dict[str, date] = {}
        for entry in entries:
            latest[entry.resource_id] = max(latest.get(entry.resource_id, entry.work_date), entry.work_date)
        consultants: list[dict[str, object]] = [
            {
                "consultant_id": rid,
                "name": page.resources[rid].name,
                "home_legal_entity": page.resources[rid].position_on(day).legal_entity,
            }
            for rid, day in sorted(latest.items())
        ]
        written = await self._hub.write(facts, consultants) if facts else 0
        record_journals = getattr(self._hub, "record_journals", None)
        if page.journals and record_journals is not None:
            await record_journals(page.journals)
        return written


def _worker() -> str:
    """Which process ran the page (the scale-out test reads it)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class PeriodLockActivities:
    def __init__(self, erp: ErpRouter) -> None:
        self._erp = erp

    @activity.defn(name="erp.lock_period")
    @translating_errors
    async def lock_period(self, data: LockPeriodInput) -> LockPeriodResult:
        lock = self._erp.for_entity(data.legal_entity).period_lock
        return LockPeriodResult(locked_now=await lock.lock_period(data.period, data.legal_entity))
