"""CRM on Salesforce: the vendor <-> canonical mapping for accounts and opportunities."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from typing import Any

from connectors.errors import NotFoundError
from connectors.salesforce.client import SYSTEM, SalesforceClient, soql_quote
from domain.deal import AccountNode, MilestonePlanSnapshot, OpportunityLineSnapshot, OpportunitySnapshot
from domain.money import Money
from domain.system_records import BillingStatus, CrmLinks, Notification

OPPORTUNITY_FIELDS = (
    "Id, Name, StageName, Amount, CurrencyIsoCode, CloseDate, AccountId, "
    "D2R_Legal_Entity__c, D2R_Billing_Terms__c, D2R_Delivery_Region__c, D2R_Service_Package__c, "
    "D2R_Contract_Start__c, D2R_Contract_End__c, pse__Primary_Project__c, D2R_Project_Id__c"
)
LINE_FIELDS = (
    "Id, Name, Quantity, UnitPrice, TotalPrice, Product2.ProductCode, Product2.Name, "
    "D2R_Billing_Model__c, D2R_Revenue_Method__c, D2R_Role__c, D2R_Hours__c, "
    "D2R_Estimate_At_Completion__c, D2R_Not_To_Exceed__c, D2R_Milestone_Schedule__c"
)
ACCOUNT_FIELDS = "Id, Name, ParentId, BillingCountry, D2R_Tax_Id__c"
EXT = "D2R_External_Id__c"
MAX_HIERARCHY_DEPTH = 10  # Salesforce itself caps account hierarchies far below this
_RECORD_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")


def org_record_id(value: str | None) -> str | None:
    """The id when it can be a record of this org (a Certinia project), else None: the
    project lookup only takes those, another PSA's project id is kept as text."""
    return value if value and _RECORD_ID.match(value) and not value.isdigit() else None


def _decimal(value: Any) -> Decimal | None:
    # Salesforce JSON carries numbers as JSON numbers; str() first keeps them exact.
    return None if value is None else Decimal(str(value))


def _date(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None


def _account(record: dict[str, Any]) -> AccountNode:
    return AccountNode(
        account_id=record["Id"],
        name=record.get("Name"),
        parent_id=record.get("ParentId"),
        country=record.get("BillingCountry"),
        tax_id=record.get("D2R_Tax_Id__c"),
    )


def _line(record: dict[str, Any]) -> OpportunityLineSnapshot:
    product = record.get("Product2") or {}
    return OpportunityLineSnapshot(
        line_id=record["Id"],
        name=record.get("Name") or product.get("Name"),
        product_code=product.get("ProductCode"),
        quantity=_decimal(record.get("Quantity")),
        unit_price=_decimal(record.get("UnitPrice")),
        total_price=_decimal(record.get("TotalPrice")),
        billing_model=record.get("D2R_Billing_Model__c"),
        revenue_method=record.get("D2R_Revenue_Method__c"),
        role=record.get("D2R_Role__c"),
        hours=_decimal(record.get("D2R_Hours__c")),
        estimate_at_completion=_decimal(record.get("D2R_Estimate_At_Completion__c")),
        not_to_exceed=_decimal(record.get("D2R_Not_To_Exceed__c")),
        milestone_schedule=_schedule(record.get("D2R_Milestone_Schedule__c")),
    )


def _schedule(text: Any) -> list[MilestonePlanSnapshot]:
    """The line's own milestone schedule: a long-text JSON list of {name, percent | amount,
    planned_date}. Unreadable text becomes one empty entry, which validation names as the
    field to fix, rather than silently falling back to the template."""
    if not text:
        return []
    try:
        rows = json.loads(text)
        return [
            MilestonePlanSnapshot(
                name=row.get("name"),
                percent=_decimal(row.get("percent")),
                amount=_decimal(row.get("amount")),
                planned_date=_date(row.get("planned_date")),
            )
            for row in rows
        ]
    except (ValueError, TypeError, AttributeError, ArithmeticError):
        return [MilestonePlanSnapshot()]


class SalesforceCrm:
    def __init__(self, client: SalesforceClient) -> None:
        self._sf = client

    async def read_opportunity(self, opportunity_id: str) -> OpportunitySnapshot:
        rows = await self._sf.query_all(
            f"SELECT {OPPORTUNITY_FIELDS} FROM Opportunity WHERE Id = {soql_quote(opportunity_id)}"
        )
        if not rows:
            raise NotFoundError(
                f"opportunity {opportunity_id} does not exist", system=SYSTEM, status=404, vendor_code="NOT_FOUND"
            )
        opp = rows[0]
        lines = await self._sf.query_all(
            f"SELECT {LINE_FIELDS} FROM OpportunityLineItem "
            f"WHERE OpportunityId = {soql_quote(opportunity_id)} ORDER BY Id"
        )
        accounts = await self._account_hierarchy(opp.get("AccountId"))
        return OpportunitySnapshot(
            opportunity_id=opp["Id"],
            name=opp.get("Name"),
            stage=opp.get("StageName"),
            amount=_decimal(opp.get("Amount")),
            currency=opp.get("CurrencyIsoCode"),
            close_date=_date(opp.get("CloseDate")),
            legal_entity=opp.get("D2R_Legal_Entity__c"),
            billing_terms=opp.get("D2R_Billing_Terms__c"),
            delivery_region=opp.get("D2R_Delivery_Region__c"),
            service_package=opp.get("D2R_Service_Package__c"),
            contract_start=_date(opp.get("D2R_Contract_Start__c")),
            contract_end=_date(opp.get("D2R_Contract_End__c")),
            project_id=opp.get("pse__Primary_Project__c") or opp.get("D2R_Project_Id__c"),
            accounts=accounts,
            lines=[_line(line) for line in lines],
        )

    async def _account_hierarchy(self, account_id: str | None) -> list[AccountNode]:
        chain: list[AccountNode] = []
        seen: set[str] = set()
        while account_id and account_id not in seen and len(chain) < MAX_HIERARCHY_DEPTH:
            seen.add(account_id)
            rows = await self._sf.query_all(f"SELECT {ACCOUNT_FIELDS} FROM Account WHERE Id = {soql_quote(account_id)}")
            if not rows:
                break
            node = _account(rows[0])
            chain.append(node)
            account_id = node.parent_id
        return chain

    async def write_links(self, opportunity_id: str, links: CrmLinks) -> None:
        await self._sf.update(
            "Opportunity",
            opportunity_id,
            {
                "pse__Primary_Project__c": org_record_id(links.project_id),
                "D2R_Project_Id__c": links.project_id,
                "D2R_Contract_Id__c": links.contract_id,
                "D2R_Engagement_Status__c": links.status,
            },
        )

    async def write_billing_status(self, opportunity_id: str, status: BillingStatus) -> None:
        """Finance feedback on the opportunity. A plain field update: writing the same
        status twice is one state. The engagement lifecycle status (`write_links`) is
        left alone; the billing status has its own field."""
        await self._sf.update(
            "Opportunity",
            opportunity_id,
            {
                "D2R_Billing_Status__c": status.status[:255],
                "D2R_Billed_Amount__c": _number(status.billed),
                "D2R_Collected_Amount__c": _number(status.collected),
                "D2R_Overdue_Amount__c": _number(status.overdue),
                "D2R_Billing_As_Of__c": status.as_of.isoformat(),
            },
        )

    async def set_contract_value(self, opportunity_id: str, amount: Money) -> None:
        """The contract value after an amendment (or its undo). Written to its own field:
        Salesforce computes `Amount` from the products when the opportunity has line items,
        and the booked amount stays as history."""
        await self._sf.update(
            "Opportunity",
            opportunity_id,
            {
                "D2R_Contract_Value__c": _number(amount),
            },
        )

    async def notify(self, external_id: str, notification: Notification) -> str:
        """A Task on the opportunity, upserted by external id: a retried reminder is one Task."""
        fields: dict[str, Any] = {
            "Subject": notification.subject[:255],
            "Description": notification.body[:32000],
            "Priority": "High" if notification.priority.lower() == "high" else "Normal",
            "Status": "Not Started",
            "Type": "d2r",
            "D2R_Audience__c": ", ".join(notification.audience)[:255],
        }
        if notification.related_id:
            fields["WhatId"] = notification.related_id
        task_id, _ = await self._sf.upsert("Task", EXT, external_id, fields)
        return task_id


def _number(money: Money) -> str:
    # Salesforce currency fields take numbers; a numeric string keeps the Decimal exact.
    return str(money.rounded().amount)
