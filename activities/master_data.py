"""Master-data sync activities: one activity per page of owner records, never per record.

A customers page reads a page of CRM accounts (modified since the sweep's mark, or the
accounts a CRM event named), looks for duplicates among them (same tax id or website
domain), then in every ERP instance reads the customers that stand for them and, field by
field, follows the ownership table (domain/ownership.py) and the agreement stored on each
record (domain/master_data.py): the owner's change is written downstream, an edit made in
the system that does not own the field becomes a `master_data.conflict` exception in the
hub, and what is in step is left alone, so a page re-run (a retry, the sweep after a
webhook) writes nothing twice.

A consultants page reads a page of PSA resources and ensures their ERP employees in the
entities they sit in. Resolving a conflict applies a person's decision and records it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import translating_errors
from activities.heartbeats import heartbeating
from activities.retrying import retrying
from connectors.errors import ConfigurationError
from connectors.ports import CrmAccountsPort, ErpConnection, ErpCustomersPort
from connectors.routing import ErpRouter, PsaRouter
from contracts.master_data import (
    ConflictNote,
    ConsultantPageInput,
    ConsultantPageResult,
    CustomerPageInput,
    CustomerPageResult,
    ProjectPageInput,
    ProjectPageResult,
    ResolveConflictInput,
    ResolveConflictResult,
    SweepMark,
    SyncCounts,
)
from domain.master_data import (
    CONFLICT_KIND,
    DUPLICATE_KIND,
    CrmAccount,
    Decision,
    ErpCustomer,
    FieldConflict,
    PsaProject,
    customer_fields,
    decide,
    employees_of,
    normalized_tax_id,
)
from domain.ownership import Ownership

MAX_NOTES = 50  # conflicts shown per page result; the hub holds every one


class ConflictSink:
    """Where conflicts go: the hub's exceptions (None: no hub, they are only counted)."""

    def __init__(self, hub: Any | None) -> None:
        self._hub = hub

    async def conflict(self, conflict: FieldConflict, run_id: str, legal_entity: str | None) -> int | None:
        if self._hub is None:
            return None
        from reporting.models import ExceptionRecord

        message = (
            f"{conflict.object} {conflict.key}: {conflict.field} is {conflict.owner_value!r} in the "
            f"{conflict.owner_system} (its owner) but {conflict.other_value!r} in {conflict.other_system} "
            f"{conflict.other_instance} record {conflict.other_record}; keep the owner's value or accept the change"
        )
        return int(
            await self._hub.record_exception(
                ExceptionRecord(
                    dedupe_key=conflict.dedupe_key,
                    kind=CONFLICT_KIND,
                    error_message=message[:1000],
                    error_type="MasterDataConflict",
                    source="master_data.customer_sync",
                    workflow_id=run_id,
                    customer_id=conflict.key,
                    legal_entity=legal_entity,
                    detail=conflict.model_dump(mode="json"),
                )
            )
        )

    async def duplicate(self, key: str, accounts: list[CrmAccount], run_id: str) -> int | None:
        if self._hub is None:
            return None
        from reporting.models import ExceptionRecord

        names = ", ".join(f"{a.account_id} ({a.name})" for a in accounts)
        return int(
            await self._hub.record_exception(
                ExceptionRecord(
                    dedupe_key=f"master-data:duplicate:{key}",
                    kind=DUPLICATE_KIND,
                    error_message=f"CRM accounts {names} share {key}: merge them in the CRM"[:1000],
                    error_type="MasterDataDuplicate",
                    source="master_data.customer_sync",
                    workflow_id=run_id,
                    customer_id=accounts[0].account_id,
                    detail={"key": key, "accounts": [a.model_dump(mode="json") for a in accounts]},
                )
            )
        )

    async def get(self, exception_id: int) -> dict[str, Any]:
        if self._hub is None:
            raise ApplicationError("no reporting hub on this worker", type="NoHub", non_retryable=True)
        try:
            found: dict[str, Any] = await self._hub.get_exception(exception_id)
        except LookupError as error:
            raise ApplicationError(f"no exception {exception_id}", type="NotFound", non_retryable=True) from error
        return found

    async def resolved(self, data: ResolveConflictInput, done: ResolveConflictResult) -> None:
        assert self._hub is not None
        await self._hub.resolve_exception(data.exception_id, resolved_by=data.resolved_by, note=data.note)
        await self._hub.record_audit(
            actor=data.resolved_by,
            role=None,
            action="master_data.conflict.resolve",
            target=f"exception/{data.exception_id}",
            detail={**done.model_dump(mode="json"), "note": data.note},
        )


def _mark(after: tuple[datetime, str] | None) -> SweepMark | None:
    return SweepMark(modified_at=after[0], record_id=after[1]) if after is not None else None


def _entity_of(record_key: str) -> str | None:
    """The legal entity a company-qualified ERP key names (`uk01:C-…`), else None."""
    company, sep, _ = record_key.partition(":")
    return company.upper() if sep else None


class MasterDataActivities:
    def __init__(
        self,
        crm: CrmAccountsPort | None,
        erps: ErpRouter,
        psas: PsaRouter,
        ownership: Ownership,
        hub: Any | None = None,
        legal_entities: set[str] | None = None,
    ) -> None:
        self._crm = crm
        self._erps = erps
        self._psas = psas
        self._ownership = ownership
        self._sink = ConflictSink(hub)
        self._entities = legal_entities or set()

    # ---- customers ---------------------------------------------------------------------------
    @activity.defn(name="master_data.customer_page")
    @translating_errors
    async def customer_page(self, data: CustomerPageInput) -> CustomerPageResult:
        async with heartbeating(2.0):
            return await self._customer_page(data)

    async def _customer_page(self, data: CustomerPageInput) -> CustomerPageResult:
        crm = self._crm
        if crm is None:
            return CustomerPageResult(next_after=None, counts=SyncCounts())
        if data.account_ids:
            accounts = await retrying(lambda: crm.accounts(data.account_ids))
            after = None
        else:
            page = await retrying(lambda: crm.changed_accounts(_tuple(data.after), data.limit))
            accounts, after = page.accounts, page.next_after
        counts = SyncCounts(records=len(accounts))
        notes: list[ConflictNote] = []
        if accounts:
            await self._duplicates(crm, accounts, data.run_id, counts, notes)
            by_id = {a.account_id: a for a in accounts}
            for name, connection in self._erps.named():
                await self._customers_of(crm, name, connection, by_id, data.run_id, counts, notes)
        return CustomerPageResult(next_after=_mark(after), counts=counts, conflicts=notes[:MAX_NOTES])

    async def _customers_of(
        self,
        crm: CrmAccountsPort,
        instance: str,
        connection: ErpConnection,
        accounts: dict[str, CrmAccount],
        run_id: str,
        counts: SyncCounts,
        notes: list[ConflictNote],
    ) -> None:
        port = connection.customers
        if port is None:
            return
        held = await retrying(lambda: port.customers(sorted(accounts)))
        for customer in held:
            account = accounts.get(customer.account_id)
            if account is None:
                continue
            counts.downstream += 1
            await self._one_customer(crm, port, connection.system, instance, account, customer, run_id, counts, notes)

    async def _one_customer(
        self,
        crm: CrmAccountsPort,
        port: ErpCustomersPort,
        system: str,
        instance: str,
        account: CrmAccount,
        customer: ErpCustomer,
        run_id: str,
        counts: SyncCounts,
        notes: list[ConflictNote],
    ) -> None:
        crm_values = customer_fields(account.customer())
        agreed = dict(customer.agreed or {})
        to_erp: dict[str, str | None] = {}
        to_crm: dict[str, str | None] = {}
        conflicts: list[FieldConflict] = []
        for field, crm_value in crm_values.items():
            erp_value = customer.values.get(field)
            crm_owns = self._ownership.owner("customer", field) == "crm"
            owner_value, other_value = (crm_value, erp_value) if crm_owns else (erp_value, crm_value)
            decision = decide(owner_value, other_value, customer.agreed, field)
            if decision is Decision.CONFLICT:
                conflicts.append(
                    FieldConflict(
                        object="customer",
                        key=account.account_id,
                        field=field,
                        owner_system="crm" if crm_owns else f"erp:{instance}",
                        owner_value=owner_value,
                        owner_modified_at=account.modified_at if crm_owns else customer.modified_at,
                        other_system=system if crm_owns else "crm",
                        other_instance=instance,
                        other_record=customer.record_key,
                        other_value=other_value,
                        other_modified_at=customer.modified_at if crm_owns else account.modified_at,
                    )
                )
                continue
            if decision is Decision.PUSH:
                (to_erp if crm_owns else to_crm)[field] = owner_value
            agreed[field] = owner_value
        if to_crm:
            await retrying(lambda: crm.write_account(account.account_id, to_crm))
        if to_erp or agreed != (customer.agreed or {}):
            await retrying(lambda: port.write_customer(customer.record_key, to_erp, agreed))
        if to_erp or to_crm:
            counts.written += 1
        elif not conflicts:
            counts.in_step += 1
        for conflict in conflicts:
            exception_id = await self._sink.conflict(conflict, run_id, _entity_of(customer.record_key))
            counts.conflicts += 1
            notes.append(
                ConflictNote(
                    kind=CONFLICT_KIND,
                    key=conflict.key,
                    field=conflict.field,
                    message=f"{conflict.other_system} {conflict.other_record}: {conflict.other_value!r} "
                    f"against the owner's {conflict.owner_value!r}",
                    exception_id=exception_id,
                )
            )

    async def _duplicates(
        self,
        crm: CrmAccountsPort,
        accounts: list[CrmAccount],
        run_id: str,
        counts: SyncCounts,
        notes: list[ConflictNote],
    ) -> None:
        """Another account with the same tax id or website domain as one on this page: a
        `master_data.duplicate` to merge in the CRM (provisioning refuses a second ERP customer)."""
        tax_ids = sorted({a.tax_id for a in accounts if a.tax_id})
        domains = sorted({a.domain for a in accounts if a.domain})
        if not tax_ids and not domains:
            return
        similar = await retrying(lambda: crm.accounts_like(tax_ids, domains))
        groups: dict[str, dict[str, CrmAccount]] = defaultdict(dict)
        for account in [*accounts, *similar]:
            if (tax := normalized_tax_id(account.tax_id)) is not None:
                groups[f"tax id {tax}"][account.account_id] = account
            if account.domain:
                groups[f"domain {account.domain}"][account.account_id] = account
        for key, members in sorted(groups.items()):
            if len(members) < 2:
                continue
            same = [members[k] for k in sorted(members)]
            exception_id = await self._sink.duplicate(key, same, run_id)
            counts.duplicates += 1
            notes.append(
                ConflictNote(
                    kind=DUPLICATE_KIND,
                    key=",".join(a.account_id for a in same),
                    field=key.split(" ", 1)[0] if not key.startswith("tax") else "tax_id",
                    message=f"{len(same)} CRM accounts share {key}",
                    exception_id=exception_id,
                )
            )

    # ---- consultants -------------------------------------------------------------------------
    @activity.defn(name="master_data.consultant_page")
    @translating_errors
    async def consultant_page(self, data: ConsultantPageInput) -> ConsultantPageResult:
        async with heartbeating(2.0):
            return await self._consultant_page(data)

    async def _consultant_page(self, data: ConsultantPageInput) -> ConsultantPageResult:
        port = self._psas.instance(data.psa_instance).resources
        if port is None:
            return ConsultantPageResult(next_after=None, counts=SyncCounts())
        page = await retrying(lambda: port.changed_resources(_tuple(data.after), data.limit))
        counts = SyncCounts(records=len(page.resources))
        by_erp: dict[str, tuple[ErpConnection, list[Any]]] = {}
        for resource in page.resources:
            for employee in employees_of(resource, self._entities):
                name = self._erps.instance_name(employee.legal_entity)
                connection = self._erps.instance(name)
                if connection.employees is not None:
                    by_erp.setdefault(name, (connection, []))[1].append(employee)
        for _name, (connection, employees) in sorted(by_erp.items()):
            port_e = connection.employees
            assert port_e is not None
            for outcome in await retrying(lambda: port_e.ensure_employees(employees)):  # noqa: B023 - awaited here
                counts.downstream += 1
                counts.created += int(outcome.created)
                counts.refused += int(outcome.error is not None)
                counts.in_step += int(not outcome.created and outcome.error is None)
        return ConsultantPageResult(next_after=_mark(page.next_after), counts=counts)

    # ---- projects ----------------------------------------------------------------------------
    @activity.defn(name="master_data.project_page")
    @translating_errors
    async def project_page(self, data: ProjectPageInput) -> ProjectPageResult:
        async with heartbeating(2.0):
            return await self._project_page(data)

    async def _project_page(self, data: ProjectPageInput) -> ProjectPageResult:
        """The ERP's project dimension is derived from the PSA: written where it differs, in
        the ERP of each project's legal entity; one the ERP refuses is reported, not raised."""
        port = self._psas.instance(data.psa_instance).projects
        if port is None:
            return ProjectPageResult(next_after=None, counts=SyncCounts())
        page = await retrying(lambda: port.changed_projects(_tuple(data.after), data.limit))
        counts = SyncCounts(records=len(page.projects))
        refused: list[str] = []
        by_erp: dict[str, tuple[ErpConnection, list[PsaProject]]] = {}
        for project in page.projects:
            try:
                name = self._erps.instance_name(project.legal_entity)
            except ConfigurationError as error:
                refused.append(f"{project.project_id}: {error}")
                continue
            by_erp.setdefault(name, (self._erps.instance(name), []))[1].append(project)
        for _name, (connection, projects) in sorted(by_erp.items()):
            erp_port = connection.projects
            if erp_port is None:
                continue
            for outcome in await retrying(lambda: erp_port.upsert_projects(projects)):  # noqa: B023 - awaited here
                counts.downstream += 1
                if outcome.error is not None:
                    refused.append(f"{outcome.project_id}: {outcome.error}")
                elif outcome.written:
                    counts.written += 1
                else:
                    counts.in_step += 1
        counts.refused = len(refused)
        return ProjectPageResult(next_after=_mark(page.next_after), counts=counts, refused=refused[:MAX_NOTES])

    # ---- a person's decision -----------------------------------------------------------------
    @activity.defn(name="master_data.resolve_conflict")
    @translating_errors
    async def resolve_conflict(self, data: ResolveConflictInput) -> ResolveConflictResult:
        exception = await self._sink.get(data.exception_id)
        if exception.get("kind") != CONFLICT_KIND:
            raise ApplicationError(
                f"exception {data.exception_id} is not a {CONFLICT_KIND}", type="NotAConflict", non_retryable=True
            )
        conflict = FieldConflict.model_validate(exception["detail"])
        crm = self._crm
        connection = self._erps.instance(conflict.other_instance)
        port = connection.customers
        if crm is None or port is None:
            raise ApplicationError("customers are not kept in step here", type="NotConfigured", non_retryable=True)
        [account] = await retrying(lambda: crm.accounts([conflict.key]))
        held = await retrying(lambda: port.customers([conflict.key]))
        customer = next((c for c in held if c.record_key == conflict.other_record), None)
        if customer is None:
            raise ApplicationError(f"ERP record {conflict.other_record} is gone", type="NotFound", non_retryable=True)
        crm_value = customer_fields(account.customer())[conflict.field]
        erp_value = customer.values.get(conflict.field)
        crm_owns = not conflict.owner_system.startswith("erp")
        owner_value, other_value = (crm_value, erp_value) if crm_owns else (erp_value, crm_value)
        value = owner_value if data.keep == "owner" else other_value
        agreed = {**(customer.agreed or {}), conflict.field: value}
        # the value goes to whichever side does not hold it; the ERP record learns the agreement either way
        to_crm = crm_value != value
        if to_crm:
            await retrying(lambda: crm.write_account(conflict.key, {conflict.field: value}))
        erp_changes = {conflict.field: value} if erp_value != value else {}
        await retrying(lambda: port.write_customer(customer.record_key, erp_changes, agreed))
        where = (
            f"crm:{conflict.key}" if to_crm else f"{connection.system}:{conflict.other_instance}:{customer.record_key}"
        )
        done = ResolveConflictResult(
            exception_id=data.exception_id, field=conflict.field, kept=data.keep, value=value, written_to=where
        )
        await self._sink.resolved(data, done)
        return done


def _tuple(mark: SweepMark | None) -> tuple[datetime, str] | None:
    return (mark.modified_at, mark.record_id) if mark is not None else None
