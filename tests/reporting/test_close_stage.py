"""A month-end window's facts in the hub (reporting/close_stage.py) and the real window
activities that pass ids instead of them: the PSA's delivery read into the stage, each
engagement's update given its project's delivery from it, the outboxes put there and each
system's writer reading its own part, a refused outbox handed back from it, the close
run's rows dropped (engagements and vendors stubbed, an embedded hub)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from temporalio.testing import ActivityEnvironment

from activities.crm import CrmFeedbackActivities
from activities.period_close import CloseActivities
from activities.psa import PsaDeliveryActivities
from activities.window_stage import write_window
from contracts.crm import BillingStatusWindowInput, WriteBillingStatusInput
from contracts.engagement import CloseOutbox, EngagementCloseInput, PeriodResult
from contracts.erp import PostDocumentsInput
from contracts.period_close import CloseWindowInput, HandBackInput
from contracts.psa import ReadDeliveriesInput
from contracts.window_stage import DELIVERY, OUTBOX, StagedWindow
from domain.billing import Delivery
from domain.model import TimeEntry
from domain.money import Money
from domain.system_records import BillingStatus
from reporting.close_stage import WindowStage
from reporting.hub import ReportingHub

WHERE = StagedWindow(report_id="close-US01-2026-11/run-1", window=3)
USD = Money(amount=Decimal(100), currency="USD")
STATUS = BillingStatus(
    status="Billed", billed=USD, collected=USD, overdue=USD, unbilled_wip=USD, as_of=date(2026, 11, 30)
)


def _delivery(project: str, entries: int) -> Delivery:
    return Delivery(
        time_entries=[
            TimeEntry(
                entry_id=f"{project}-TC{n}",
                resource_id="R1",
                project_id=project,
                contract_line_id="L1",
                work_date=date(2026, 11, 2),
                hours=Decimal(8),
            )
            for n in range(entries)
        ]
    )


def _outbox(workflow_id: str, crm: bool = True) -> CloseOutbox:
    return CloseOutbox(
        workflow_id=workflow_id,
        erp=PostDocumentsInput(legal_entity="US01", erp_customer_id="C1", sales_order_id=f"SO-{workflow_id}"),
        crm=WriteBillingStatusInput(opportunity_id=workflow_id.removeprefix("engagement-"), status=STATUS)
        if crm
        else None,
    )


@dataclass
class _Engagement:
    workflow_id: str
    seen: dict[str, Any]

    async def execute_update(self, name: str, request: EngagementCloseInput, **_: Any) -> PeriodResult:
        self.seen[self.workflow_id] = request
        return PeriodResult(
            period=request.period,
            invoices=[],
            billed=USD,
            recognized=USD,
            deferred=USD,
            unbilled=USD,
            revenue_journal_id=None,
            exceptions=[],
            outbox=_outbox(self.workflow_id, crm=self.workflow_id != "engagement-b"),
        )

    async def signal(self, name: str, arg: object) -> None:
        self.seen[f"signal:{self.workflow_id}"] = arg


@dataclass
class _Temporal:
    seen: dict[str, Any] = field(default_factory=dict)

    def get_workflow_handle(self, workflow_id: str) -> _Engagement:
        return _Engagement(workflow_id, self.seen)


@dataclass
class _Psa:
    async def read_deliveries(self, projects: dict[str, Any], cutoff: date) -> dict[str, Delivery]:
        return {p: _delivery(p, 3) for p in projects if p != "a0P-missing"}


@dataclass
class _Routed:
    psa: _Psa = field(default_factory=_Psa)


@dataclass
class _PsaRouter:
    def for_entity(self, legal_entity: str) -> _Routed:
        return _Routed()


@dataclass
class _Crm:
    written: list[str] = field(default_factory=list)

    async def write_billing_status(self, opportunity_id: str, status: BillingStatus) -> None:
        self.written.append(opportunity_id)


async def test_items_round_trip_by_key_and_part(hub: ReportingHub) -> None:
    """Put twice (a retried activity) leaves one row per key; a key not staged is missing
    from the answer; `field` reads one member of each item; drop takes the run's rows only."""
    stage = WindowStage(hub.pool)
    other = StagedWindow(report_id="close-US01-2026-11/run-2", window=3)
    await stage.put(WHERE, DELIVERY, {"a0P-1": _delivery("a0P-1", 1), "a0P-2": _delivery("a0P-2", 2)})
    assert await stage.put(WHERE, DELIVERY, {"a0P-2": _delivery("a0P-2", 4)}) == 1
    await stage.put(other, OUTBOX, {"engagement-a": _outbox("engagement-a")})
    found = await stage.get(WHERE, DELIVERY, ["a0P-1", "a0P-2", "a0P-3"], Delivery)
    assert {p: len(d.time_entries) for p, d in found.items()} == {"a0P-1": 1, "a0P-2": 4}
    erp = await stage.get(other, OUTBOX, ["engagement-a"], PostDocumentsInput, field="erp")
    assert erp["engagement-a"].sales_order_id == "SO-engagement-a"
    assert await stage.drop(WHERE.report_id) == 2
    assert await stage.get(WHERE, DELIVERY, ["a0P-1"], Delivery) == {}
    assert list(await stage.get(other, OUTBOX, ["engagement-a"], CloseOutbox)) == ["engagement-a"]


async def test_a_staged_window_passes_ids_and_each_writer_reads_its_part(hub: ReportingHub) -> None:
    """Three engagements: a's and b's projects are in the PSA, c's is not. The PSA read puts
    two deliveries in the stage and names them; the updates' activity gives a and b their
    project's delivery (3 entries each) and reports c not closed; the result carries no
    outbox, only which engagements have a write for each system (b has no CRM write). The
    CRM writer reads a's status from the stage; the ERP part reads both (a refusal for b);
    b's outbox is handed back from the stage; the run's rows are dropped."""
    stage = WindowStage(hub.pool)
    env = ActivityEnvironment()
    psa = PsaDeliveryActivities(_PsaRouter(), stage=stage)  # type: ignore[arg-type]
    read = await env.run(
        psa.read_deliveries,
        ReadDeliveriesInput(
            legal_entity="US01",
            projects={"a0P-a": [], "a0P-b": [], "a0P-missing": []},
            cutoff=date(2026, 11, 30),
            stage=WHERE,
        ),
    )
    assert read.deliveries == {} and read.staged == ["a0P-a", "a0P-b"]

    temporal = _Temporal()
    close = CloseActivities(temporal, hub)  # type: ignore[arg-type]
    requests = {w: EngagementCloseInput(period="2026-11", outbox=True) for w in ("engagement-a", "engagement-b")}
    result = await env.run(
        close.close_engagements,
        CloseWindowInput(
            report_id=WHERE.report_id,
            legal_entity="US01",
            period="2026-11",
            window=WHERE.window,
            requests=requests,
            not_closed={"engagement-c": "project a0P-missing is not in the PSA"},
            stage=WHERE,
            staged_projects={"engagement-a": "a0P-a", "engagement-b": "a0P-b"},
        ),
    )
    assert [len(temporal.seen[w].delivery.time_entries) for w in ("engagement-a", "engagement-b")] == [3, 3]
    assert result.outboxes == [] and result.staged == {"erp": ["engagement-a", "engagement-b"], "crm": ["engagement-a"]}
    assert (result.tally.closed, result.tally.failed, result.tally.updates_sent) == (2, 1, 2)

    crm = _Crm()
    writer = CrmFeedbackActivities(crm, stage=stage)  # type: ignore[arg-type]
    written = await env.run(
        writer.write_billing_status_window,
        BillingStatusWindowInput(stage=WHERE, staged=result.staged["crm"]),
    )
    assert written.refused == {} and crm.written == ["a"]

    posted: list[str] = []

    async def post(documents: PostDocumentsInput) -> None:
        posted.append(documents.sales_order_id)

    refused = await write_window(
        {}, stage, WHERE, [*result.staged["erp"], "engagement-x"], "erp", PostDocumentsInput, post
    )
    assert posted == ["SO-engagement-a", "SO-engagement-b"]
    assert refused == {"engagement-x": "no erp write of engagement-x in the window's stage"}

    handed = await env.run(
        close.hand_back,
        HandBackInput(
            report_id=WHERE.report_id,
            stage=WHERE,
            period="2026-11",
            refused={"engagement-b": "VendorValidationError: refused"},
        ),
    )
    assert handed.signalled == 1
    failure = temporal.seen["signal:engagement-b"]
    assert failure.outbox.erp.sales_order_id == "SO-engagement-b" and failure.error.startswith("VendorValidation")
    assert await stage.drop(WHERE.report_id) == 4  # two deliveries, two outboxes


async def test_each_delivery_gets_the_hubs_rates_for_its_cut_off(hub: ReportingHub) -> None:
    """JP01's functional currency is JPY and the hub reports in USD: every delivery of the
    window is handed the hub's JPY->USD and USD->JPY of 30 Nov (the ERP's 0.0064 and the
    reference data's 150), looked up once, so no engagement asks the hub itself; a rate it
    was handed already stays."""
    from activities.reporting import load_reference_data
    from domain.fx import ChosenRate
    from domain.reference_data import default_fx_rates, default_legal_entities
    from reporting import models as m

    await load_reference_data(hub, default_legal_entities(), default_fx_rates())
    await hub.record_fx_rates(
        [
            m.FxRate(
                from_currency="JPY",
                to_currency="USD",
                rate_date=date(2026, 11, 2),
                rate=Decimal("0.0064"),
                source_system="netsuite:default",
                source_record_id="cr-77",
            )
        ]
    )
    mine = ChosenRate(
        base="EUR", quote="JPY", on=date(2026, 11, 30), rate=Decimal(160), rate_date=date(2026, 11, 30), source="test"
    )
    given = _delivery("a0P-b", 1)
    given.fx = given.fx.model_copy(update={"chosen": [mine]})
    temporal = _Temporal()
    close = CloseActivities(temporal, hub)  # type: ignore[arg-type]
    requests = {
        "engagement-a": EngagementCloseInput(period="2026-11", outbox=True, delivery=_delivery("a0P-a", 1)),
        "engagement-b": EngagementCloseInput(period="2026-11", outbox=True, delivery=given),
        "engagement-c": EngagementCloseInput(period="2026-11"),  # closes on its own: nothing handed in
    }
    await ActivityEnvironment().run(
        close.close_engagements,
        CloseWindowInput(report_id=WHERE.report_id, legal_entity="JP01", period="2026-11", window=1, requests=requests),
    )
    a = {(c.base, c.quote): c.rate for c in temporal.seen["engagement-a"].delivery.fx.chosen}
    assert a == {("JPY", "USD"): Decimal("0.0064"), ("USD", "JPY"): Decimal(150)}
    b = {(c.base, c.quote) for c in temporal.seen["engagement-b"].delivery.fx.chosen}
    assert b == {("EUR", "JPY"), ("JPY", "USD"), ("USD", "JPY")}
    assert temporal.seen["engagement-c"].delivery is None
