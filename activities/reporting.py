"""Reporting activities: an engagement's business events, written to the hub as they happen.

Every fact carries its natural key (source system + record id), so recording the same
document twice changes nothing; amounts are Decimals with their currency.
"""

from __future__ import annotations

from decimal import Decimal

from temporalio import activity

from activities.window_stage import write_window
from contracts.erp import WindowWriteResult
from contracts.reporting import (
    ExceptionRef,
    RaiseExceptionInput,
    RecordEngagementInput,
    RecordEngagementResult,
    RecordEngagementsInput,
    ResolveExceptionInput,
    RetryingExceptionInput,
)
from domain.fx import FxRateTable
from domain.ids import external_id
from domain.model import LegalEntity, SourceKind
from domain.periods import period_of
from reporting import models as m
from reporting.close_stage import WindowStage
from reporting.hub import ReportingHub
from reporting.keymap import KeyRecord


async def load_reference_data(hub: ReportingHub, entities: dict[str, LegalEntity], fx: FxRateTable) -> None:
    """Legal entities and FX rates the loaders need before any fact arrives (idempotent):
    a posting page may write time facts before the first engagement records anything."""
    await hub.upsert_dimensions(
        [
            m.LegalEntityDim(
                legal_entity=e.code,
                name=e.name,
                functional_currency=e.functional_currency,
                tax_jurisdiction=e.tax_jurisdiction,
                erp_instance=e.erp_instance,
            )
            for e in entities.values()
        ]
    )
    if fx.rates:
        await hub.upsert_dimensions(
            [m.FxRate(from_currency=r.base, to_currency=r.quote, rate_date=r.as_of, rate=r.rate) for r in fx.rates]
        )


def time_billed(data: RecordEngagementInput) -> list[m.TimeBilled]:
    """Each time entry a billing event charged, at the rate d2r billed it (amount / hours)."""
    invoice_of = {line.billing_event_id: i.invoice_id for i in data.invoices for line in i.lines}
    return [
        m.TimeBilled(
            source_record_id=p.source_id,
            opportunity_id=data.engagement.opportunity_id,
            project_id=data.project_id,
            legal_entity=data.engagement.legal_entity,
            contract_line_id=event.contract_line_id,
            billing_event_id=event.billing_event_id,
            invoice_id=invoice_of.get(event.billing_event_id),
            event_date=event.event_date,
            currency=p.amount.currency,
            hours=p.quantity,
            billed_rate=(p.amount.amount / p.quantity).quantize(Decimal("0.0001")) if p.quantity else Decimal(0),
            billed_amount=p.amount.amount,
        )
        for event in data.billing_events
        for p in event.portions
        if p.source_kind is SourceKind.TIME
    ]


def engagement_keys(
    data: RecordEngagementInput, erp_instance: str = "", psa_instance: str = "", source: str = "reporting"
) -> list[KeyRecord]:
    """The cross-system ids one engagement hub write holds: the deal and its accounts (CRM),
    the project (PSA), the customer, sales order, invoices, credit memos and payments (ERP),
    each under the key its writers share (reporting/keymap.py)."""
    e, wid = data.engagement, data.workflow_id
    deal = {"opportunity_id": e.opportunity_id, "legal_entity": e.legal_entity, "workflow_id": wid, "source": source}
    crm = {"system": "crm", **deal}
    erp = {"system": "erp", "instance": erp_instance, "project_id": data.project_id, **deal}
    keys = [
        KeyRecord(record_type="opportunity", record_id=e.opportunity_id, related=(e.customer.customer_id,), **crm),
        *[
            KeyRecord(record_type="account", record_id=a, **{**crm, "opportunity_id": None, "workflow_id": None})
            for a in e.customer.hierarchy or [e.customer.customer_id]
        ],
        KeyRecord(
            system="psa",
            instance=psa_instance,
            record_type="project",
            record_id=data.project_id,
            external_id=external_id(wid, "project"),
            record_key=data.project_id,
            project_id=data.project_id,
            **deal,
        ),
        KeyRecord(
            record_type="sales_order", record_id=data.contract_id, external_id=external_id(wid, "sales-order"), **erp
        ),
    ]
    if data.erp_customer_id:  # shared by every deal of the account: no deal of its own
        keys.append(
            KeyRecord(
                record_type="customer",
                record_id=data.erp_customer_id,
                external_id=f"d2r:customer:{e.customer.customer_id}",
                related=(e.customer.customer_id,),
                **{**erp, "opportunity_id": None, "project_id": None, "workflow_id": None},
            )
        )
    for i in data.invoices:
        keys.append(KeyRecord(record_type="invoice", external_id=i.invoice_id, related=(data.contract_id,), **erp))
    for c in data.credit_memos:
        keys.append(KeyRecord(record_type="credit_memo", external_id=c.credit_memo_id, related=(c.invoice_id,), **erp))
    for p in data.payments:
        keys.append(KeyRecord(record_type="payment", record_id=p.payment_id, related=(p.invoice_id,), **erp))
    return keys


class ReportingActivities:
    def __init__(
        self,
        hub: ReportingHub,
        entities: dict[str, LegalEntity],
        fx: FxRateTable,
        erp_instances: dict[str, str] | None = None,
        psa_instances: dict[str, str] | None = None,
    ) -> None:
        self._hub = hub
        self._entities = entities
        self._fx = fx
        # legal entity -> the ERP / PSA instance serving it (the key map names the instance)
        self._erp_instances = erp_instances or {}
        self._psa_instances = psa_instances or {}

    @activity.defn(name="reporting.record_engagements")
    async def record_engagements(self, data: RecordEngagementsInput) -> WindowWriteResult:
        """A month-end window's hub facts, each engagement's on its own."""
        stage = WindowStage(self._hub.pool)
        refused = await write_window(
            data.records, stage, data.stage, data.staged, "hub", RecordEngagementInput, self.record_engagement
        )
        return WindowWriteResult(refused=refused)

    @activity.defn(name="reporting.record_engagement")
    async def record_engagement(self, data: RecordEngagementInput) -> RecordEngagementResult:
        e = data.engagement
        entity = self._entities.get(e.legal_entity)
        keys = {
            "opportunity_id": e.opportunity_id,
            "customer_id": e.customer.customer_id,
            "project_id": data.project_id,
            "contract_id": data.contract_id,
            "legal_entity": e.legal_entity,
        }
        dims: list[m.BaseModel] = [
            m.LegalEntityDim(
                legal_entity=e.legal_entity,
                name=entity.name if entity else None,
                functional_currency=entity.functional_currency if entity else e.currency,
                tax_jurisdiction=entity.tax_jurisdiction if entity else None,
                erp_instance=entity.erp_instance if entity else None,
            ),
            *[
                m.FxRate(from_currency=r.base, to_currency=r.quote, rate_date=r.as_of, rate=r.rate)
                for r in self._fx.rates
            ],
        ]
        # The hierarchy root first, so a child's parent exists when it is written.
        parents = list(reversed(e.customer.hierarchy))
        for n, account_id in enumerate(parents):
            dims.append(
                m.CustomerDim(
                    customer_id=account_id,
                    parent_customer_id=parents[n - 1] if n else None,
                    name=e.customer.name if account_id == e.customer.customer_id else None,
                    erp_customer_id=data.erp_customer_id if account_id == e.customer.customer_id else None,
                )
            )
        models = sorted({line.billing_model.value for line in e.lines})
        dims.append(
            m.ProjectDim(
                project_id=data.project_id,
                name=e.name,
                customer_id=e.customer.customer_id,
                opportunity_id=e.opportunity_id,
                contract_id=data.contract_id,
                legal_entity=e.legal_entity,
                service_offering=e.service_package,
                geography=e.delivery_region,
                currency=e.currency,
                billing_model=models[0] if len(models) == 1 else "mixed",
                status="active",
            )
        )
        for kind in (m.LegalEntityDim, m.FxRate, m.CustomerDim, m.ProjectDim):  # one model per call, in order
            rows = [d for d in dims if isinstance(d, kind)]
            if rows:
                await self._hub.upsert_dimensions(rows)
        written = {}
        bookings = [
            m.BookingFact(
                source_system="crm",
                source_record_id=b.booking_id,
                currency=b.amount.currency,
                booking_date=b.booking_date,
                amount=b.amount.amount,
                contract_line_id=b.contract_line_id,
                service_offering=e.service_package,
                billing_model=b.billing_model.value,
                amendment_id=b.amendment_id,
                **keys,
            )
            for b in data.bookings
        ]
        written["bookings"] = (await self._hub.record_booking(*bookings)).written if bookings else 0
        if data.invoices:
            written["invoices"] = (
                await self._hub.record_invoice(
                    *[
                        m.InvoiceFact(
                            source_system="erp",
                            source_record_id=i.invoice_id,
                            currency=i.currency,
                            invoice_date=i.invoice_date,
                            due_date=i.due_date,
                            net_amount=i.net_total.amount,
                            tax_amount=i.tax_total.amount,
                            total_amount=i.total.amount,
                            status="open",
                            **keys,
                        )
                        for i in data.invoices
                    ]
                )
            ).written
        if data.credit_memos:
            written["credit_memos"] = (
                await self._hub.record_credit_memo(
                    *[
                        m.CreditMemoFact(
                            source_system="erp",
                            source_record_id=c.credit_memo_id,
                            currency=c.total.currency,
                            memo_date=c.memo_date,
                            net_amount=c.net_total.amount,
                            tax_amount=c.tax_total.amount,
                            total_amount=c.total.amount,
                            invoice_id=c.invoice_id,
                            reason=c.reason,
                            **keys,
                        )
                        for c in data.credit_memos
                    ]
                )
            ).written
        if data.payments:
            written["payments"] = (
                await self._hub.record_payment(
                    *[
                        m.PaymentFact(
                            source_system="erp",
                            source_record_id=p.payment_id,
                            currency=p.amount.currency,
                            payment_date=p.received_on,
                            amount=p.amount.amount,
                            invoice_id=p.invoice_id,
                            **keys,
                        )
                        for p in data.payments
                    ]
                )
            ).written
        if data.revenue_entries:
            written["revenue"] = (
                await self._hub.record_revenue(
                    [
                        m.RevenueFact(
                            source_system="erp",
                            source_record_id=r.revenue_entry_id,
                            currency=r.amount.currency,
                            revenue_date=r.entry_date,
                            amount=r.amount.amount,
                            contract_line_id=r.contract_line_id,
                            revenue_method=r.method.value,
                            **keys,
                        )
                        for r in data.revenue_entries
                    ]
                )
            ).written
        billed = time_billed(data)
        if billed:
            written["time_billed"] = await self._hub.record_time_billed(billed)
        for x in data.exceptions:
            # One hub row per business exception (its id is deterministic): re-recording it
            # counts an occurrence instead of adding a row.
            await self._hub.record_exception(
                m.ExceptionRecord(
                    dedupe_key=f"{data.workflow_id}:{x.exception_id}",
                    kind=x.code,
                    error_type=x.severity.value,
                    error_message=x.message,
                    source="engagement.period_close",
                    workflow_id=data.workflow_id,
                    period=period_of(x.raised_on),
                    detail={"severity": x.severity.value, "source_id": x.source_id, "raised_on": str(x.raised_on)},
                    **keys,
                )
            )
        if data.exceptions:
            written["exceptions"] = len(data.exceptions)
        written["keys"] = await self._hub.record_keys(
            engagement_keys(
                data,
                self._erp_instances.get(e.legal_entity, ""),
                self._psa_instances.get(e.legal_entity, ""),
                source="reporting.record_engagement",
            )
        )
        return RecordEngagementResult(written=written)


def _dedupe_key(workflow_id: str, kind: str, incident: int) -> str:
    return f"{workflow_id}:{kind}:{incident}"


class HubExceptionActivities:
    def __init__(
        self, hub: ReportingHub, ui_base_url: str = "http://127.0.0.1:8233", namespace: str = "default"
    ) -> None:
        self._hub = hub
        self._ui = ui_base_url.rstrip("/")
        self._namespace = namespace

    @activity.defn(name="reporting.raise_exception")
    async def raise_exception(self, data: RaiseExceptionInput) -> ExceptionRef:
        # A retried activity re-reports the same incident: the dedupe key keeps it one row.
        return ExceptionRef(
            exception_id=await self._hub.record_exception(
                m.ExceptionRecord(
                    dedupe_key=_dedupe_key(data.workflow_id, data.kind, data.incident),
                    kind=data.kind,
                    error_message=data.message,
                    error_type=data.error_type,
                    source=data.stage,
                    workflow_id=data.workflow_id,
                    workflow_link=f"{self._ui}/namespaces/{self._namespace}/workflows/{data.workflow_id}",
                    opportunity_id=data.opportunity_id,
                    customer_id=data.customer_id,
                    project_id=data.project_id,
                    contract_id=data.contract_id,
                    legal_entity=data.legal_entity,
                    detail=dict(data.detail),
                )
            )
        )

    @activity.defn(name="reporting.exception_retrying")
    async def exception_retrying(self, data: RetryingExceptionInput) -> ExceptionRef:
        retrying = await self._hub.mark_exception_retrying_by_key(
            _dedupe_key(data.workflow_id, data.kind, data.incident)
        )
        return ExceptionRef(exception_id=retrying or 0)

    @activity.defn(name="reporting.resolve_exception")
    async def resolve_exception(self, data: ResolveExceptionInput) -> ExceptionRef:
        resolved = await self._hub.resolve_exception_by_key(
            _dedupe_key(data.workflow_id, data.kind, data.incident), resolved_by=data.resolved_by, note=data.note
        )
        return ExceptionRef(exception_id=resolved or 0)
