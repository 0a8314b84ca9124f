"""PSA on Certinia (pse__ objects in the Salesforce org): projects from service packages."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from connectors.errors import VendorValidationError
from connectors.ports import ProjectRef
from connectors.salesforce import SYSTEM, SalesforceClient, soql_quote
from domain.deal import BillingModel, Engagement

EXT = "D2R_External_Id__c"

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


class CertiniaPsa:
    def __init__(self, client: SalesforceClient) -> None:
        self._sf = client

    async def _template(self, package: str) -> dict[str, Any]:
        rows = await self._sf.query_all(
            "SELECT Id, Name, D2R_Phases__c, D2R_Milestones__c FROM D2R_Service_Package__c "
            f"WHERE Name = {soql_quote(package)}")
        if not rows:
            raise VendorValidationError(f"service package {package!r} has no template in the PSA",
                                        system=SYSTEM, vendor_code="UNKNOWN_SERVICE_PACKAGE")
        return rows[0]

    async def create_project(self, engagement: Engagement, external_id: str) -> ProjectRef:
        template = await self._template(engagement.service_package)
        models = engagement.billing_models
        project_id, _ = await self._sf.upsert("pse__Proj__c", EXT, external_id, {
            "Name": engagement.name[:80],
            "pse__Account__c": engagement.customer.customer_id,
            "pse__Opportunity__c": engagement.opportunity_id,
            "pse__Project_Type__c": "Customer Project",
            "pse__Stage__c": "Planned",
            "pse__Is_Active__c": True,
            "pse__Is_Billable__c": True,
            "pse__Billing_Type__c": _BILLING_TYPE[models[0]] if len(models) == 1 else "Mixed",
            "pse__Region__c": engagement.delivery_region,
            "pse__Start_Date__c": (engagement.contract_start or engagement.close_date).isoformat(),
            "pse__End_Date__c": engagement.contract_end.isoformat() if engagement.contract_end else None,
            "CurrencyIsoCode": engagement.currency,
            "D2R_Legal_Entity__c": engagement.legal_entity,
        })

        milestones = json.loads(template.get("D2R_Milestones__c") or "[]")
        fixed = sum((line.amount.amount for line in engagement.lines
                     if line.billing_model in (BillingModel.FIXED_FEE, BillingModel.MILESTONE)),
                    Decimal(0))
        amounts = milestone_amounts(fixed, [Decimal(str(m["percent"])) for m in milestones])
        milestone_ids = []
        for index, (milestone, amount) in enumerate(zip(milestones, amounts, strict=True)):
            milestone_id, _ = await self._sf.upsert("pse__Milestone__c", EXT, f"{external_id}:ms{index}", {
                "Name": milestone["name"], "pse__Project__c": project_id,
                "pse__Milestone_Amount__c": str(amount), "pse__Status__c": "Planned",
                "pse__Approved__c": False,
            })
            milestone_ids.append(milestone_id)

        request_ids = []
        for line in engagement.lines:
            if line.billing_model is BillingModel.TIME_AND_MATERIALS and line.role:
                request_id, _ = await self._sf.upsert(
                    "pse__Resource_Request__c", EXT, f"{external_id}:rr:{line.line_id}", {
                        "pse__Project__c": project_id, "pse__Resource_Role__c": line.role,
                        "pse__SOW_Hours__c": str(line.hours) if line.hours is not None else None,
                        "pse__Status__c": "Draft",
                    })
                request_ids.append(request_id)
        return ProjectRef(project_id=project_id, milestone_ids=milestone_ids,
                          resource_request_ids=request_ids)

    async def remove_project(self, external_id: str) -> bool:
        """Undo `create_project`: children first, then the project. Safe to repeat."""
        projects = await self._sf.query_all(
            f"SELECT Id FROM pse__Proj__c WHERE {EXT} = {soql_quote(external_id)}")
        if not projects:
            return False
        for project in projects:
            for child in ("pse__Milestone__c", "pse__Resource_Request__c"):
                rows = await self._sf.query_all(
                    f"SELECT Id FROM {child} WHERE pse__Project__c = {soql_quote(project['Id'])}")
                for row in rows:
                    await self._sf.delete(child, row["Id"])
            await self._sf.delete("pse__Proj__c", project["Id"])
        return True
