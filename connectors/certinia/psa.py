"""PSA on Certinia (pse__ objects in the Salesforce org): projects from service packages."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.certinia.lookups import CertiniaLookups
from connectors.errors import NotFoundError, VendorValidationError
from connectors.psa_lines import LineMapper
from connectors.salesforce.client import SYSTEM, SalesforceClient, soql_quote
from domain.billing import Delivery
from domain.deal import BillingModel, ContractLine, Engagement
from domain.model import ExpenseEntry, Milestone, RateCard, RateCardEntry, Resource, TimeEntry
from domain.money import Money
from domain.system_records import BillingStatus, ProjectChange, ProjectRef

EXT = "D2R_External_Id__c"
LINE = "D2R_Contract_Line_Id__c"
IN_CHUNK = 200  # ids per `IN (...)` clause, to keep SOQL well under its length limit
COMPLETE = ("Complete", "Completed", "Approved")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
TIMECARD_FIELDS = ", ".join(
    [
        "Id",
        "pse__Resource__c",
        "pse__Start_Date__c",
        "pse__End_Date__c",
        "pse__Total_Hours__c",
        "pse__Billable__c",
        "pse__Billed__c",
        "D2R_Role__c",
        LINE,
        "LastModifiedDate",
        *(f"pse__{day}_Hours__c" for day in WEEKDAYS),
    ]
)
EXPENSE_FIELDS = (
    "Id, pse__Resource__c, pse__Expense_Date__c, pse__Amount__c, CurrencyIsoCode, "
    f"pse__Type__c, pse__Billable__c, pse__Billed__c, {LINE}, LastModifiedDate"
)
MILESTONE_FIELDS = (
    "Id, Name, pse__Status__c, pse__Target_Date__c, pse__Actual_Date__c, "
    f"pse__Milestone_Amount__c, D2R_Percent__c, {LINE}, LastModifiedDate"
)
RESOURCE_FIELDS = (
    "Id, Name, pse__Resource_Role__c, D2R_Home_Legal_Entity__c, pse__Default_Cost_Rate__c, CurrencyIsoCode"
)
RATE_FIELDS = (
    "Id, pse__Role__c, pse__Account__c, pse__Region__c, pse__Suggested_Bill_Rate__c, "
    "pse__Average_Cost_Rate__c, pse__Start_Date__c, pse__End_Date__c, CurrencyIsoCode"
)

# Certinia's billing type picklist, from the booked lines' billing models.
_BILLING_TYPE = {
    BillingModel.TIME_AND_MATERIALS: "Time and Materials",
    BillingModel.FIXED_FEE: "Fixed Price",
    BillingModel.MILESTONE: "Fixed Price",
    BillingModel.RETAINER: "Retainer",
}


def milestone_amounts(total: Decimal, percents: list[Decimal]) -> list[Decimal]:
    """Split the milestone-billed value by template percent; the last takes the remainder
    so the milestones always add up to exactly the contracted amount."""
    if not percents:
        return []
    amounts = [(total * p / Decimal(100)) for p in percents[:-1]]
    return [*amounts, total - sum(amounts, Decimal(0))]


def _line_plan(line: ContractLine) -> list[tuple[str, Decimal, date | None]]:
    """The deal's own milestone schedule for a line, as (name, percent, planned date)."""
    total = sum((m.weight for m in line.milestones), Decimal(0))
    return [(m.name, m.weight * 100 / total, m.planned_date) for m in line.milestones] if total else []


class CertiniaPsa:
    def __init__(self, client: SalesforceClient) -> None:
        self._sf = client
        self._lookups = CertiniaLookups(client)

    async def _template(self, package: str) -> dict[str, Any]:
        rows = await self._sf.query_all(
            "SELECT Id, Name, D2R_Phases__c, D2R_Milestones__c, D2R_Practice__c FROM D2R_Service_Package__c "
            f"WHERE Name = {soql_quote(package)}"
        )
        if not rows:
            raise VendorValidationError(
                f"service package {package!r} has no template in the PSA",
                system=SYSTEM,
                vendor_code="UNKNOWN_SERVICE_PACKAGE",
            )
        return rows[0]

    async def _organisation(self, engagement: Engagement, template: dict[str, Any]) -> dict[str, str]:
        """The project's Region (the deal's delivery region) and Practice (the service
        package's), which must exist when named, and Group (the legal entity's, when the
        org has one), as the lookups' record ids."""
        named = {"region": engagement.delivery_region, "practice": template.get("D2R_Practice__c")}
        ids = {kind: await self._lookups.id_of(kind, code) for kind, code in named.items()}
        for kind, code in named.items():
            if code and ids[kind] is None:
                raise VendorValidationError(
                    f"{kind} {code!r} is no pse__{kind.title()}__c record in the PSA",
                    system=SYSTEM,
                    vendor_code=f"UNKNOWN_{kind.upper()}",
                )
        ids["group"] = await self._lookups.id_of("group", engagement.legal_entity)
        fields = {"region": "pse__Region__c", "practice": "pse__Practice__c", "group": "pse__Group__c"}
        return {fields[kind]: rid for kind, rid in ids.items() if rid is not None}

    async def create_project(self, engagement: Engagement, external_id: str) -> ProjectRef:
        template = await self._template(engagement.service_package)
        models = engagement.billing_models
        project_id, _ = await self._sf.upsert(
            "pse__Proj__c",
            EXT,
            external_id,
            {
                "Name": engagement.name[:80],
                "pse__Account__c": engagement.customer.customer_id,
                "pse__Opportunity__c": engagement.opportunity_id,
                "pse__Project_Type__c": "Customer Project",
                "pse__Stage__c": "Planned",
                "pse__Is_Active__c": True,
                "pse__Is_Billable__c": True,
                "pse__Billing_Type__c": _BILLING_TYPE[models[0]] if len(models) == 1 else "Mixed",
                **await self._organisation(engagement, template),
                "pse__Start_Date__c": (engagement.contract_start or engagement.close_date).isoformat(),
                "pse__End_Date__c": engagement.contract_end.isoformat() if engagement.contract_end else None,
                "CurrencyIsoCode": engagement.currency,
                "D2R_Legal_Entity__c": engagement.legal_entity,
            },
        )

        # Each fixed-fee / milestone line gets its own milestones, weighted by the template's
        # percents, so billing and revenue can follow each line on its own.
        template_milestones = json.loads(template.get("D2R_Milestones__c") or "[]")
        percents = [Decimal(str(m["percent"])) for m in template_milestones]
        fee_lines = [
            line for line in engagement.lines if line.billing_model in (BillingModel.FIXED_FEE, BillingModel.MILESTONE)
        ]
        milestone_ids = []
        for line in fee_lines:
            plan = _line_plan(line) or [
                (str(m["name"]), p, None) for m, p in zip(template_milestones, percents, strict=True)
            ]
            amounts = milestone_amounts(line.amount.amount, [p for _, p, _ in plan])
            for index, ((title, percent, planned), amount) in enumerate(zip(plan, amounts, strict=True)):
                name = title if len(fee_lines) == 1 else f"{title} - {line.name}"
                milestone_id, _ = await self._sf.upsert(
                    "pse__Milestone__c",
                    EXT,
                    f"{external_id}:ms:{line.line_id}:{index}",
                    {
                        "Name": name[:80],
                        "pse__Project__c": project_id,
                        "pse__Milestone_Amount__c": str(amount),
                        "D2R_Percent__c": str(percent),
                        "pse__Target_Date__c": planned.isoformat() if planned else None,
                        "pse__Status__c": "Planned",
                        "pse__Approved__c": False,
                        "CurrencyIsoCode": line.amount.currency,
                        LINE: line.line_id,
                    },
                )
                milestone_ids.append(milestone_id)

        request_ids = []
        for line in engagement.lines:
            if line.billing_model is BillingModel.TIME_AND_MATERIALS and line.role:
                request_id, _ = await self._sf.upsert(
                    "pse__Resource_Request__c",
                    EXT,
                    f"{external_id}:rr:{line.line_id}",
                    {
                        "pse__Project__c": project_id,
                        "pse__Resource_Role__c": line.role,
                        "pse__SOW_Hours__c": str(line.hours) if line.hours is not None else None,
                        "pse__Status__c": "Draft",
                    },
                )
                request_ids.append(request_id)
        return ProjectRef(project_id=project_id, milestone_ids=milestone_ids, resource_request_ids=request_ids)

    async def remove_project(self, external_id: str) -> bool:
        """Undo `create_project`: children first, then the project. Safe to repeat."""
        projects = await self._sf.query_all(f"SELECT Id FROM pse__Proj__c WHERE {EXT} = {soql_quote(external_id)}")
        if not projects:
            return False
        for project in projects:
            for child in ("pse__Milestone__c", "pse__Resource_Request__c"):
                rows = await self._sf.query_all(
                    f"SELECT Id FROM {child} WHERE pse__Project__c = {soql_quote(project['Id'])}"
                )
                for row in rows:
                    await self._sf.delete(child, row["Id"])
            await self._sf.delete("pse__Proj__c", project["Id"])
        return True

    # --- delivery ---------------------------------------------------------------------

    async def read_delivery(self, project_id: str, lines: list[ContractLine], cutoff: date) -> Delivery:
        """Everything approved up to `cutoff`, whatever its billed flag: the domain's
        append-only ledger decides what is left to bill (the PSA flag is feedback only)."""
        found = await self.read_deliveries({project_id: lines}, cutoff)
        if project_id not in found:
            raise NotFoundError(
                f"project {project_id} does not exist in the PSA", system=SYSTEM, status=404, vendor_code="NOT_FOUND"
            )
        return found[project_id]

    async def read_deliveries(self, projects: dict[str, list[ContractLine]], cutoff: date) -> dict[str, Delivery]:
        """`read_delivery` for many projects at once (a month-end window): a handful of SOQL
        queries with `IN` chunks instead of six per project. Projects the PSA does not hold
        are left out of the result."""
        ids = sorted(projects)
        day = cutoff.isoformat()
        rows = await self._in_query("pse__Proj__c", "Id, CurrencyIsoCode, pse__Account__c, pse__Region__c", ids)
        found = {r["Id"]: r for r in rows}
        ids = [i for i in ids if i in found]
        timecards = await self._in_projects(
            TIMECARD_FIELDS,
            "pse__Timecard_Header__c",
            ids,
            f"pse__Status__c = 'Approved' AND pse__Start_Date__c <= {day}",
        )
        expenses = await self._in_projects(
            EXPENSE_FIELDS, "pse__Expense__c", ids, f"pse__Status__c = 'Approved' AND pse__Expense_Date__c <= {day}"
        )
        milestones = await self._in_projects(MILESTONE_FIELDS, "pse__Milestone__c", ids, None)
        resource_ids = sorted({r["pse__Resource__c"] for r in (*timecards, *expenses) if r.get("pse__Resource__c")})
        resources = [_resource(row) for row in await self._in_query("Contact", RESOURCE_FIELDS, resource_ids)]
        cards: dict[str, list[dict[str, Any]]] = {}
        out: dict[str, Delivery] = {}
        for project_id in ids:
            project = found[project_id]
            currency = project.get("CurrencyIsoCode")
            if currency and currency not in cards:
                cards[currency] = await self._rate_rows(currency)
            out[project_id] = self._delivery(
                project,
                projects[project_id],
                cutoff,
                [r for r in timecards if r.get("pse__Project__c") == project_id],
                [r for r in expenses if r.get("pse__Project__c") == project_id],
                [r for r in milestones if r.get("pse__Project__c") == project_id],
                resources,
                cards.get(currency or "", []),
            )
        return out

    async def _in_projects(
        self, fields: str, sobject: str, project_ids: list[str], where: str | None
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for start in range(0, len(project_ids), IN_CHUNK):
            chunk = ", ".join(soql_quote(i) for i in project_ids[start : start + IN_CHUNK])
            rows.extend(
                await self._sf.query_all(
                    f"SELECT {fields}, pse__Project__c FROM {sobject} WHERE pse__Project__c IN ({chunk})"
                    + (f" AND {where}" if where else "")
                    + " ORDER BY Id"
                )
            )
        return rows

    def _delivery(
        self,
        project: dict[str, Any],
        lines: list[ContractLine],
        cutoff: date,
        timecards: list[dict[str, Any]],
        expenses: list[dict[str, Any]],
        milestones: list[dict[str, Any]],
        all_resources: list[Resource],
        rate_rows: list[dict[str, Any]],
    ) -> Delivery:
        project_id = project["Id"]
        used = {r["pse__Resource__c"] for r in (*timecards, *expenses) if r.get("pse__Resource__c")}
        resources = [r for r in all_resources if r.resource_id in used]
        roles = {r.resource_id: r.role for r in resources}
        mapper = LineMapper(lines)

        time_entries = []
        for card in timecards:
            role = card.get("D2R_Role__c")
            line_id = mapper.for_time(card.get(LINE), role or roles.get(card.get("pse__Resource__c", "")))
            if line_id is None:
                continue
            for work_date, hours in _timecard_days(card):
                if work_date <= cutoff and hours > 0:
                    time_entries.append(
                        TimeEntry(
                            entry_id=f"{card['Id']}:{work_date.isoformat()}",
                            resource_id=card["pse__Resource__c"],
                            project_id=project_id,
                            contract_line_id=line_id,
                            work_date=work_date,
                            hours=hours,
                            role=role,
                            billable=bool(card.get("pse__Billable__c")),
                            approved_on=_date(card.get("LastModifiedDate")),
                        )
                    )

        expense_entries = []
        for row in expenses:
            line_id = mapper.for_expense(row.get(LINE))
            amount = _decimal(row.get("pse__Amount__c"))
            if line_id is None or amount is None:
                continue
            expense_entries.append(
                ExpenseEntry(
                    entry_id=row["Id"],
                    resource_id=row["pse__Resource__c"],
                    project_id=project_id,
                    contract_line_id=line_id,
                    incurred_on=date.fromisoformat(row["pse__Expense_Date__c"]),
                    amount=Money(amount=amount, currency=row.get("CurrencyIsoCode") or project["CurrencyIsoCode"]),
                    category=(row.get("pse__Type__c") or "other").lower(),
                    billable=bool(row.get("pse__Billable__c")),
                    approved_on=_date(row.get("LastModifiedDate")),
                )
            )

        delivered_milestones = []
        for row in milestones:
            line_id = mapper.for_milestone(row.get(LINE))
            if line_id is None:
                continue
            completed = None
            if row.get("pse__Status__c") in COMPLETE:
                completed = _date(row.get("pse__Actual_Date__c")) or _date(row.get("LastModifiedDate"))
            weight = _decimal(row.get("D2R_Percent__c"))
            if weight is None:
                weight = _decimal(row.get("pse__Milestone_Amount__c")) or Decimal(0)
            delivered_milestones.append(
                Milestone(
                    milestone_id=row["Id"],
                    name=row.get("Name") or row["Id"],
                    contract_line_id=line_id,
                    weight=weight,
                    due_date=_date(row.get("pse__Target_Date__c")),
                    completed_on=completed,
                )
            )

        return Delivery(
            time_entries=time_entries,
            expenses=expense_entries,
            milestones=delivered_milestones,
            resources=resources,
            rate_card=_rate_card(project, rate_rows),
        )

    async def _in_query(self, sobject: str, fields: str, ids: list[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for start in range(0, len(ids), IN_CHUNK):
            chunk = ", ".join(soql_quote(i) for i in ids[start : start + IN_CHUNK])
            rows.extend(await self._sf.query_all(f"SELECT {fields} FROM {sobject} WHERE Id IN ({chunk})"))
        return rows

    async def _rate_rows(self, currency: str) -> list[dict[str, Any]]:
        return await self._sf.query_all(
            f"SELECT {RATE_FIELDS} FROM pse__Rate_Card__c WHERE CurrencyIsoCode = {soql_quote(currency)} "
            "ORDER BY pse__Role__c, pse__Start_Date__c, Id"
        )

    # --- feedback and changes ---------------------------------------------------------------

    async def write_billing_status(self, project_id: str, status: BillingStatus) -> None:
        await self._sf.update(
            "pse__Proj__c",
            project_id,
            {
                "D2R_Billing_Status__c": status.status[:255],
                "D2R_Unbilled_WIP__c": str(status.unbilled_wip.rounded().amount),
                "pse__Billings__c": str(status.billed.rounded().amount),
            },
        )

    async def mark_billed(self, time_entry_ids: list[str], expense_ids: list[str], billed: bool) -> int:
        """Set `pse__Billed__c` on the timecards and expenses behind the entries, 200 per
        sObject Collections call. Day entries (`<timecard id>:<date>`) share their timecard."""
        timecards = sorted({entry.split(":", 1)[0] for entry in time_entry_ids})
        expenses = sorted(set(expense_ids))
        updated = await self._sf.update_many(
            "pse__Timecard_Header__c", [{"Id": i, "pse__Billed__c": billed} for i in timecards]
        )
        updated += await self._sf.update_many(
            "pse__Expense__c", [{"Id": i, "pse__Billed__c": billed} for i in expenses]
        )
        return updated

    async def apply_change(self, project_id: str, change: ProjectChange) -> None:
        """An amendment's effect on the project. Absolute values, so re-applying is harmless
        and applying the `before` values undoes it."""
        fields: dict[str, Any] = {"D2R_Last_Change_Id__c": change.change_id[:255]}
        if change.budget is not None:
            fields["D2R_Budget__c"] = str(change.budget.rounded().amount)
        if change.end_date is not None:
            fields["pse__End_Date__c"] = change.end_date.isoformat()
        await self._sf.update("pse__Proj__c", project_id, fields)
        if change.milestone_amounts:
            await self._sf.update_many(
                "pse__Milestone__c",
                [
                    {"Id": milestone_id, "pse__Milestone_Amount__c": str(amount.amount)}
                    for milestone_id, amount in sorted(change.milestone_amounts.items())
                ],
                missing_ok=False,
            )

    async def set_stage(self, project_id: str, stage: str, active: bool) -> None:
        await self._sf.update(
            "pse__Proj__c",
            project_id,
            {
                "pse__Stage__c": stage,
                "pse__Is_Active__c": active,
                # An inactive project takes no more time or expenses.
                "pse__Closed_for_Time_Entry__c": not active,
                "pse__Closed_for_Expense_Entry__c": not active,
            },
        )

    async def project_opportunity(self, project_id: str) -> str | None:
        rows = await self._sf.query_all(
            f"SELECT Id, pse__Opportunity__c FROM pse__Proj__c WHERE Id = {soql_quote(project_id)}"
        )
        return str(rows[0]["pse__Opportunity__c"]) if rows and rows[0].get("pse__Opportunity__c") else None


def _rate_card(project: dict[str, Any], rows: list[dict[str, Any]]) -> RateCard | None:
    """The project's rates from the cards in its currency: an account's own card beats its
    region's, which beats the generic one."""
    currency = project.get("CurrencyIsoCode")
    if not currency:
        return None
    account, region = project.get("pse__Account__c"), project.get("pse__Region__c")

    def specificity(row: dict[str, Any]) -> int:
        return 2 * (bool(account) and row.get("pse__Account__c") == account) + (
            bool(region) and row.get("pse__Region__c") == region
        )

    usable = [
        r
        for r in rows
        if r.get("pse__Suggested_Bill_Rate__c") is not None
        and (not r.get("pse__Account__c") or r.get("pse__Account__c") == account)
    ]
    best: dict[str, int] = {}
    for row in usable:
        best[row["pse__Role__c"]] = max(best.get(row["pse__Role__c"], 0), specificity(row))
    entries = [
        RateCardEntry(
            role=row["pse__Role__c"],
            bill_rate=Decimal(str(row["pse__Suggested_Bill_Rate__c"])),
            cost_rate=_decimal(row.get("pse__Average_Cost_Rate__c")),
            effective_from=_date(row.get("pse__Start_Date__c")) or date.min,
            effective_to=_date(row.get("pse__End_Date__c")),
        )
        for row in usable
        if specificity(row) == best[row["pse__Role__c"]]
    ]
    return RateCard(rate_card_id=f"{project['Id']}:{currency}", currency=currency, entries=entries)


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _date(value: Any) -> date | None:
    if not value:
        return None
    text = str(value)
    if len(text) == 10:
        return date.fromisoformat(text)
    return datetime.fromisoformat(text.replace("+0000", "+00:00").replace("Z", "+00:00")).date()


def _timecard_days(card: dict[str, Any]) -> Iterable[tuple[date, Decimal]]:
    """A timecard header covers one week with a field per weekday; a card with only a
    total books it on its start date."""
    start = date.fromisoformat(card["pse__Start_Date__c"])
    end = date.fromisoformat(card.get("pse__End_Date__c") or card["pse__Start_Date__c"])
    daily = {day: card.get(f"pse__{day}_Hours__c") for day in WEEKDAYS}
    if all(v is None for v in daily.values()):
        total = _decimal(card.get("pse__Total_Hours__c"))
        return [(start, total)] if total else []
    days = []
    current = start
    while current <= end and current < start + timedelta(days=7):
        hours = daily[WEEKDAYS[current.weekday()]]
        if hours:
            days.append((current, Decimal(str(hours))))
        current += timedelta(days=1)
    return days


def _resource(row: dict[str, Any]) -> Resource:
    # No cost rate of their own: None, so the rate card's cost rate for the role applies
    # (a zero here would make their hours free in cost-to-cost revenue).
    cost = _decimal(row.get("pse__Default_Cost_Rate__c"))
    return Resource(
        resource_id=row["Id"],
        name=row.get("Name") or row["Id"],
        role=row.get("pse__Resource_Role__c") or "Consultant",
        home_legal_entity=row.get("D2R_Home_Legal_Entity__c") or "",
        cost_rate=Money(amount=cost, currency=row.get("CurrencyIsoCode") or "USD") if cost is not None else None,
    )
