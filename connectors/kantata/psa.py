"""PSA on Kantata OX: workspaces from project templates, milestones as stories, role
placeholders as workspace resources, approved time and expenses as delivery, invoices
as the billed marks.

Kantata has no upsert and no idempotency keys: every create first looks for the record
carrying d2r's reference (the `d2r reference` custom field, sent with the create), so a
retried activity after a lost response finds the record instead of making a second.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from connectors.errors import NotFoundError, VendorValidationError
from connectors.kantata.client import (
    SYSTEM,
    KantataClient,
    round_cents,
    to_cents,
)
from connectors.kantata.delivery import Custom, delivery_of, resource_of
from domain.billing import Delivery
from domain.deal import BillingModel, ContractLine, Engagement
from domain.system_records import BillingStatus, ProjectChange, ProjectRef

# d2r's stages -> Kantata workspace status keys (simulators/kantata/schema.py)
STATUS_KEYS = {"Planned": 300, "Not Started": 300, "In Progress": 310, "On Hold": 330, "Completed": 350,
               "Closed": 350, "Cancelled": 360}  # fmt: skip
WORKSPACE, STORY, RESOURCE, TIME, EXPENSE = "Workspace", "Story", "WorkspaceResource", "TimeEntry", "Expense"
FEE_MODELS = (BillingModel.FIXED_FEE, BillingModel.MILESTONE)


def split_cents(total: int, percents: list[Decimal]) -> list[int]:
    """The line's value over the template's milestones in whole cents; the last takes the
    remainder, so they always add up to exactly the contracted amount."""
    if not percents:
        return []
    parts = [round_cents(Decimal(total) * p / Decimal(100), "JPY") for p in percents[:-1]]  # JPY: 0 decimals
    return [*parts, total - sum(parts)]


def line_plan(line: ContractLine, template: list[dict[str, Any]]) -> list[tuple[str, Decimal, date | None]]:
    """(title, percent, due date) per milestone of a fee line: the deal's own schedule from
    the CRM when it has one (weights are percents or amounts), else the template's split."""
    total = sum((m.weight for m in line.milestones), Decimal(0))
    if total:
        return [(m.name, m.weight * 100 / total, m.planned_date) for m in line.milestones]
    return [(str(m["title"]), Decimal(str(m["percent"])), None) for m in template]


class KantataPsa:
    def __init__(self, client: KantataClient) -> None:
        self._k = client
        self._roles: dict[str, str] | None = None  # role name -> id

    async def _role_ids(self) -> dict[str, str]:
        if self._roles is None:
            self._roles = {r["name"]: str(r["id"]) for r in (await self._k.listing("roles")).records}
        return self._roles

    async def _template(self, package: str) -> dict[str, Any]:
        rows = (await self._k.listing("project_templates", {"title": package})).records
        if not rows:
            raise VendorValidationError(
                f"service package {package!r} has no project template in Kantata",
                system=SYSTEM,
                vendor_code="UNKNOWN_SERVICE_PACKAGE",
            )
        return rows[0]

    async def _find_or_create(self, key: str, singular: str, subject: str, reference: str, body: dict[str, Any]) -> str:
        """Read before create: Kantata would duplicate a retried POST."""
        found = await self._k.find_by_reference(subject, reference)
        if found is not None:
            return found
        custom = [await self._k.custom_value("d2r reference", subject, reference), *body.pop("custom_field_values", [])]
        return str((await self._k.create(key, singular, {**body, "custom_field_values": custom}))["id"])

    async def create_project(self, engagement: Engagement, external_id: str) -> ProjectRef:
        template = await self._template(engagement.service_package)
        cards = (await self._k.listing("rate_cards", {"currency": engagement.currency})).records
        k = self._k
        workspace_id = await self._find_or_create(
            "workspaces",
            "workspace",
            WORKSPACE,
            external_id,
            {
                "title": engagement.name[:255],
                "description": f"{engagement.service_package} for {engagement.customer.name}",
                "currency": engagement.currency,
                "rate_card_id": cards[0]["id"] if cards else None,
                "change_orders_enabled": True,
                "start_date": (engagement.contract_start or engagement.close_date).isoformat(),
                "due_date": engagement.contract_end.isoformat() if engagement.contract_end else None,
                "project_template_id": template["id"],
                "status_key": STATUS_KEYS["Planned"],
                "custom_field_values": [
                    await k.custom_value("d2r opportunity", WORKSPACE, engagement.opportunity_id),
                    await k.custom_value("d2r customer", WORKSPACE, engagement.customer.customer_id),
                    await k.custom_value("d2r legal entity", WORKSPACE, engagement.legal_entity),
                ],
            },
        )

        # Each fixed-fee / milestone line gets its own milestones: the deal's schedule, or the
        # template's percents.
        template_milestones = template.get("milestones") or []
        fee_lines = [line for line in engagement.lines if line.billing_model in FEE_MODELS]
        milestone_ids = []
        for line in fee_lines:
            plan = line_plan(line, template_milestones)
            amounts = split_cents(to_cents(line.amount), [percent for _, percent, _ in plan])
            for index, ((name, percent, due), cents) in enumerate(zip(plan, amounts, strict=True)):
                title = name if len(fee_lines) == 1 else f"{name} - {line.name}"
                milestone_ids.append(
                    await self._find_or_create(
                        "stories",
                        "story",
                        STORY,
                        f"{external_id}:ms:{line.line_id}:{index}",
                        {
                            "workspace_id": workspace_id,
                            "title": title[:255],
                            "story_type": "milestone",
                            "billable": True,
                            "fixed_fee": True,
                            "budget_estimate_in_cents": cents,
                            "due_date": due.isoformat() if due else None,
                            "custom_field_values": [
                                await k.custom_value("d2r contract line", STORY, line.line_id),
                                await k.custom_value("d2r percent", STORY, str(percent)),
                            ],
                        },
                    )
                )

        roles = await self._role_ids()
        request_ids = []
        for line in engagement.lines:
            if line.billing_model is BillingModel.TIME_AND_MATERIALS and line.role:
                if line.role not in roles:
                    raise VendorValidationError(
                        f"role {line.role!r} does not exist in Kantata", system=SYSTEM, vendor_code="UNKNOWN_ROLE"
                    )
                request_ids.append(
                    await self._find_or_create(
                        "workspace_resources",
                        "workspace_resource",
                        RESOURCE,
                        f"{external_id}:rr:{line.line_id}",
                        {
                            "workspace_id": workspace_id,
                            "role_id": roles[line.role],
                            "estimated_minutes": int(line.hours * 60) if line.hours is not None else None,
                            "status": "Draft",
                        },
                    )
                )
        return ProjectRef(project_id=workspace_id, milestone_ids=milestone_ids, resource_request_ids=request_ids)

    async def remove_project(self, external_id: str) -> bool:
        """Undo `create_project`: stories and placeholders, then the workspace. Safe to
        repeat. A workspace that already took time or expenses can't be deleted in Kantata:
        it is archived and its reference retired, so a new provisioning starts afresh."""
        k = self._k
        ids = await k.find_by_value("d2r reference", WORKSPACE, external_id)
        if not ids:
            return False
        for workspace_id in ids:
            if await k.listing("time_entries", {"workspace_id": workspace_id, "per_page": 1}, limit=1) or (
                await k.listing("expenses", {"workspace_id": workspace_id, "per_page": 1}, limit=1)
            ):
                retired = await k.custom_value("d2r reference", WORKSPACE, f"{external_id}#removed")
                await k.update(
                    "workspaces", "workspace", workspace_id, {"archived": True, "custom_field_values": [retired]}
                )
                continue
            stories = await k.listing("stories", {"workspace_id": workspace_id, "include_archived": "true"})
            resources = await k.listing("workspace_resources", {"workspace_id": workspace_id})
            for row in stories.records:
                await k.delete("stories", str(row["id"]))
            for row in resources.records:
                await k.delete("workspace_resources", str(row["id"]))
            await k.delete("workspaces", workspace_id)
        return True

    # --- delivery ---------------------------------------------------------------------

    async def read_delivery(self, project_id: str, lines: list[ContractLine], cutoff: date) -> Delivery:
        found = await self.read_deliveries({project_id: lines}, cutoff)
        if project_id not in found:
            raise NotFoundError(
                f"workspace {project_id} does not exist in Kantata", system=SYSTEM, status=404, vendor_code="NOT_FOUND"
            )
        return found[project_id]

    async def read_deliveries(self, projects: dict[str, list[ContractLine]], cutoff: date) -> dict[str, Delivery]:
        """Everything approved up to `cutoff`, whatever its invoiced flag (the domain's
        billed ledger decides what is left to bill), for many workspaces in a few listings."""
        k = self._k
        ids = sorted(projects)
        if not ids:
            return {}
        spaces = await k.list_ids("workspaces", "only", ids, {"include_archived": "true"}, include="rate_card")
        found = {str(w["id"]): w for w in spaces.records}
        ids = [i for i in ids if i in found]
        until = f"2000-01-01:{cutoff.isoformat()}"
        time = await k.list_ids(
            "time_entries", "workspace_id", ids, {"approved": "true", "date_performed_between": until},
            include="custom_field_values",
        )  # fmt: skip
        expenses = await k.list_ids(
            "expenses", "workspace_id", ids, {"approved": "true", "date_between": until}, include="custom_field_values"
        )
        milestones = await k.list_ids(
            "stories", "workspace_id", ids, {"story_type": "milestone"}, include="custom_field_values"
        )
        user_ids = sorted({str(r["user_id"]) for r in (*time.records, *expenses.records) if r.get("user_id")})
        users = await k.list_ids("users", "only", user_ids, include="role,custom_field_values")
        custom = Custom((time, expenses, milestones, users), await self._field_ids())
        resources = {str(u["id"]): resource_of(u, users, custom) for u in users.records}
        card_ids = sorted({str(w["rate_card_id"]) for w in found.values() if w.get("rate_card_id")})
        card_roles = await k.list_ids("rate_card_roles", "rate_card_id", card_ids, include="role")
        names = await self._role_names()
        out: dict[str, Delivery] = {}
        for project_id in ids:
            out[project_id] = delivery_of(
                found[project_id],
                projects[project_id],
                cutoff,
                [r for r in time.records if str(r["workspace_id"]) == project_id],
                [r for r in expenses.records if str(r["workspace_id"]) == project_id],
                [r for r in milestones.records if str(r["workspace_id"]) == project_id],
                custom,
                resources,
                [r for r in card_roles.records if str(r["rate_card_id"]) == str(found[project_id].get("rate_card_id"))],
                names,
            )
        return out

    async def _field_ids(self) -> dict[tuple[str, str], str]:
        wanted = [("d2r contract line", TIME), ("d2r contract line", EXPENSE), ("d2r contract line", STORY),
                  ("d2r percent", STORY), ("home legal entity", "User"), ("d2r employee", "User")]  # fmt: skip
        return {w: await self._k.field_id(*w) for w in wanted}

    async def _role_names(self) -> dict[str, str]:
        return {rid: name for name, rid in (await self._role_ids()).items()}

    # --- feedback and changes ---------------------------------------------------------------

    async def write_billing_status(self, project_id: str, status: BillingStatus) -> None:
        k = self._k
        await k.update(
            "workspaces",
            "workspace",
            project_id,
            {
                "custom_field_values": [
                    await k.custom_value("d2r billing status", WORKSPACE, status.status[:255]),
                    await k.custom_value("d2r unbilled wip", WORKSPACE, str(status.unbilled_wip.rounded().amount)),
                    await k.custom_value("d2r billed amount", WORKSPACE, str(status.billed.rounded().amount)),
                ]
            },
        )

    async def mark_billed(self, time_entry_ids: list[str], expense_ids: list[str], billed: bool) -> int:
        """Billed = on a Kantata invoice. Marking puts the approved, billable, not yet
        invoiced entries of each workspace on one invoice; unmarking takes them off their
        invoices (an emptied invoice is deleted). Entries already in the wanted state, or
        deleted meanwhile, are skipped, so a retry after a lost response changes nothing."""
        k = self._k
        rows = [
            *[("time_entries", r) for r in (await k.list_ids("time_entries", "only", time_entry_ids)).records],
            *[("expenses", r) for r in (await k.list_ids("expenses", "only", expense_ids)).records],
        ]
        changed = 0
        if billed:
            by_space: dict[str, dict[str, list[str]]] = {}
            for key, row in rows:
                if row.get("is_invoiced") or not row.get("approved") or not row.get("billable"):
                    continue
                ids = by_space.setdefault(str(row["workspace_id"]), {"time_entries": [], "expenses": []})
                ids[key].append(str(row["id"]))
            for workspace_id, ids in sorted(by_space.items()):
                await k.create(
                    "invoices",
                    "invoice",
                    {
                        "workspace_id": workspace_id,
                        "invoice_date": datetime.now(UTC).date().isoformat(),
                        "time_entry_ids": ids["time_entries"],
                        "expense_ids": ids["expenses"],
                    },
                )
                changed += len(ids["time_entries"]) + len(ids["expenses"])
            return changed
        release: dict[str, dict[str, set[str]]] = {}
        for key, row in rows:
            if row.get("is_invoiced") and row.get("invoice_id"):
                release.setdefault(str(row["invoice_id"]), {"time_entries": set(), "expenses": set()})[key].add(
                    str(row["id"])
                )
        for invoice_id, held in sorted(release.items()):
            invoice = await k.get("invoices", invoice_id)
            if invoice is None:
                continue
            keep_time = [i for i in invoice["time_entry_ids"] if i not in held["time_entries"]]
            keep_expenses = [i for i in invoice["expense_ids"] if i not in held["expenses"]]
            if keep_time or keep_expenses:
                await k.update(
                    "invoices", "invoice", invoice_id, {"time_entry_ids": keep_time, "expense_ids": keep_expenses}
                )
            else:
                await k.delete("invoices", invoice_id)
            changed += len(held["time_entries"]) + len(held["expenses"])
        return changed

    async def apply_change(self, project_id: str, change: ProjectChange) -> None:
        """An amendment's effect on the workspace. Absolute values, so re-applying is
        harmless and applying the `before` values undoes it."""
        k = self._k
        body: dict[str, Any] = {
            "custom_field_values": [await k.custom_value("d2r last change", WORKSPACE, change.change_id[:255])]
        }
        if change.budget is not None:
            body["price_in_cents"] = to_cents(change.budget.rounded())
        if change.end_date is not None:
            body["due_date"] = change.end_date.isoformat()
        await k.update("workspaces", "workspace", project_id, body)
        for story_id, amount in sorted(change.milestone_amounts.items()):
            await k.update("stories", "story", story_id, {"budget_estimate_in_cents": to_cents(amount.rounded())})

    async def set_stage(self, project_id: str, stage: str, active: bool) -> None:
        key = STATUS_KEYS.get(stage, STATUS_KEYS["In Progress"] if active else STATUS_KEYS["Completed"])
        await self._k.update("workspaces", "workspace", project_id, {"status_key": key})

    async def project_opportunity(self, project_id: str) -> str | None:
        values = await self._k.values_of("d2r opportunity", WORKSPACE, [project_id])
        row = values.get(project_id)
        return str(row["value"]) if row and row.get("value") else None
