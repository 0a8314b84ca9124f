"""Temporal Schedules for the batched flows: a daily sync of the ERPs' FX rates, a daily time & expense posting run, a
monthly close and a daily source sync (PSA and ERP totals into the hub) per legal entity,
a poll a minute of each system that sends no webhooks, and the daily master-data sweeps.
`ensure_schedules` creates or updates them, so calling it
on every start of the dev launcher (or a deploy) is harmless."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from contracts.feeds import EventPollInput, event_poll_schedule_id, event_poll_workflow_id
from contracts.fx import FX_SYNC_SCHEDULE, FX_SYNC_SCHEDULED_ID, FxSyncInput
from contracts.ids import scheduled_run_id
from contracts.master_data import (
    ConsultantSyncInput,
    CustomerSyncInput,
    ProjectSyncInput,
    consultant_sync_schedule_id,
    customer_sync_schedule_id,
    project_sync_schedule_id,
)
from contracts.period_close import PeriodCloseRequest
from contracts.posting import PostingInput
from contracts.queues import TaskQueues
from contracts.source_sync import SourceSyncInput
from workers.settings import TemporalSettings
from workflows.event_poll import EventPollWorkflow
from workflows.fx_sync import FxSyncWorkflow
from workflows.master_data import ConsultantSyncWorkflow, CustomerSyncWorkflow, ProjectSyncWorkflow
from workflows.period_close import PeriodCloseWorkflow
from workflows.posting import TimeAndExpensePostingWorkflow
from workflows.source_sync import SourceSyncWorkflow


def _schedules(
    settings: TemporalSettings,
    legal_entities: Iterable[str],
    posting_hour: int,
    close_day: int,
    time_zone: str,
    event_sources: Iterable[str] = (),
    master_data_psas: Iterable[str] = (),
) -> dict[str, Schedule]:
    # With a hub (worker settings), the month-end writes the engagements' hub facts on its queue.
    hub = getattr(settings, "hub_database_url", None)
    queues = TaskQueues(
        crm=settings.crm_task_queue,
        psa=settings.psa_task_queue,
        erp=settings.erp_task_queue,
        reporting=getattr(settings, "reporting_task_queue", None) if hub else None,
    )
    out: dict[str, Schedule] = {}
    # The ERPs' currency rates, daily, an hour before the posting run converts anything.
    out[FX_SYNC_SCHEDULE] = Schedule(
        action=ScheduleActionStartWorkflow(
            FxSyncWorkflow.run,
            FxSyncInput(queues=queues),
            id=FX_SYNC_SCHEDULED_ID,
            task_queue=settings.workflow_task_queue,
        ),
        spec=ScheduleSpec(
            calendars=[ScheduleCalendarSpec(hour=[ScheduleRange((posting_hour - 1) % 24)])], time_zone_name=time_zone
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    for entity in sorted(legal_entities):
        # Scheduled workflow ids get the fire time appended: posting-US01-2026-11-25T01:00:00Z.
        out[f"d2r-posting-daily-{entity}"] = Schedule(
            action=ScheduleActionStartWorkflow(
                TimeAndExpensePostingWorkflow.run,
                PostingInput(legal_entity=entity, queues=queues),
                id=scheduled_run_id("posting", entity),
                task_queue=settings.workflow_task_queue,
            ),
            spec=ScheduleSpec(
                calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(posting_hour)])], time_zone_name=time_zone
            ),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        )
        # The monthly run has no period: it works out last month and starts
        # close-<entity>-<period> (the business id the API uses too), so the two never race.
        out[f"d2r-close-monthly-{entity}"] = Schedule(
            action=ScheduleActionStartWorkflow(
                PeriodCloseWorkflow.run,
                PeriodCloseRequest(legal_entity=entity, queues=queues),
                id=scheduled_run_id("close", entity),
                task_queue=settings.workflow_task_queue,
            ),
            spec=ScheduleSpec(
                calendars=[
                    ScheduleCalendarSpec(
                        day_of_month=[ScheduleRange(close_day)], hour=[ScheduleRange(posting_hour + 1)]
                    )
                ],
                time_zone_name=time_zone,
            ),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        )
        # Daily, after the posting run: the current and the previous month's PSA and ERP
        # totals into the hub (children sync-<entity>-<period>), for reconciliation.
        out[f"d2r-sync-daily-{entity}"] = Schedule(
            action=ScheduleActionStartWorkflow(
                SourceSyncWorkflow.run,
                SourceSyncInput(legal_entity=entity, queues=queues),
                id=scheduled_run_id("sync", entity),
                task_queue=settings.workflow_task_queue,
            ),
            spec=ScheduleSpec(
                calendars=[ScheduleCalendarSpec(hour=[ScheduleRange((posting_hour + 2) % 24)])],
                time_zone_name=time_zone,
            ),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        )
    for source in sorted(event_sources):
        # Systems without webhooks: a poll a minute; each run carries the last run's watermark.
        out[event_poll_schedule_id(source)] = Schedule(
            action=ScheduleActionStartWorkflow(
                EventPollWorkflow.run,
                EventPollInput(source=source, queues=queues),
                id=event_poll_workflow_id(source),
                task_queue=settings.workflow_task_queue,
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(minutes=1))]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        )
    if master_data_psas:
        out.update(_master_data(settings, queues, master_data_psas, (posting_hour - 1) % 24, time_zone))
    return out


def _master_data(
    settings: TemporalSettings, queues: TaskQueues, psa_instances: Iterable[str], hour: int, time_zone: str
) -> dict[str, Schedule]:
    """Daily sweeps an hour before the posting run, so the night's postings find the
    day's new consultants and customer changes in the ERPs. Each run starts after the
    mark its previous run returned (the Schedule's last completion result)."""
    daily = ScheduleSpec(calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(hour)])], time_zone_name=time_zone)
    skip = SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP)
    out = {
        customer_sync_schedule_id(): Schedule(
            action=ScheduleActionStartWorkflow(
                CustomerSyncWorkflow.run,
                CustomerSyncInput(queues=queues),
                id="master-data-customers",
                task_queue=settings.workflow_task_queue,
            ),
            spec=daily,
            policy=skip,
        )
    }
    for psa in sorted(psa_instances):
        out[consultant_sync_schedule_id(psa)] = Schedule(
            action=ScheduleActionStartWorkflow(
                ConsultantSyncWorkflow.run,
                ConsultantSyncInput(psa_instance=psa, queues=queues),
                id=f"master-data-consultants-{psa}",
                task_queue=settings.workflow_task_queue,
            ),
            spec=daily,
            policy=skip,
        )
        out[project_sync_schedule_id(psa)] = Schedule(
            action=ScheduleActionStartWorkflow(
                ProjectSyncWorkflow.run,
                ProjectSyncInput(psa_instance=psa, queues=queues),
                id=f"master-data-projects-{psa}",
                task_queue=settings.workflow_task_queue,
            ),
            spec=daily,
            policy=skip,
        )
    return out


async def ensure_schedules(
    client: Client,
    settings: TemporalSettings,
    legal_entities: Iterable[str],
    *,
    posting_hour: int = 1,
    close_day: int = 1,
    time_zone: str = "UTC",
    event_sources: Iterable[str] = (),
    master_data_psas: Iterable[str] = (),
) -> list[str]:
    """Create the d2r Schedules, or bring existing ones up to date. Returns their ids.
    `master_data_psas`: the PSA instances whose consultants are swept into ERP employees
    (the customer sweep comes with them)."""
    wanted = _schedules(settings, legal_entities, posting_hour, close_day, time_zone, event_sources, master_data_psas)
    for schedule_id, schedule in wanted.items():
        try:
            await client.create_schedule(schedule_id, schedule)
        except ScheduleAlreadyRunningError:

            def replace(_: ScheduleUpdateInput, new: Schedule = schedule) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=new)

            await client.get_schedule_handle(schedule_id).update(replace)
    return sorted(wanted)
