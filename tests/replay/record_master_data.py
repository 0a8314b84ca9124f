"""Re-record the consultant and project sync histories: `python -m tests.replay.record_master_data`.

Like `tests.replay.record`, run it only when a change to ConsultantSyncWorkflow or
ProjectSyncWorkflow is meant to be incompatible with runs in flight (and then version it).
The page activities are faked by name: each sweep reads three pages (two marks, then the end)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.master_data import (
    ConsultantPageInput,
    ConsultantPageResult,
    ConsultantSyncInput,
    ProjectPageInput,
    ProjectPageResult,
    ProjectSyncInput,
    ProjectSyncProgress,
    SweepMark,
    SyncCounts,
)
from contracts.queues import TaskQueues
from tests.conftest import TEST_CONVERTER, wheel_binary
from workflows.master_data import ConsultantSyncWorkflow, ProjectSyncWorkflow

HERE = Path(__file__).parent / "histories"
MARKS = [SweepMark(modified_at=datetime(2026, 11, day, 9, tzinfo=UTC), record_id=f"r{day}") for day in (2, 9)]


def _next(after: SweepMark | None) -> SweepMark | None:
    """Page after `after`: the next mark, or None once both were handed out."""
    position = 0 if after is None else MARKS.index(after) + 1
    return MARKS[position] if position < len(MARKS) else None


@activity.defn(name="master_data.consultant_page")
async def consultant_page(data: ConsultantPageInput) -> ConsultantPageResult:
    return ConsultantPageResult(next_after=_next(data.after), counts=SyncCounts(records=3, created=1, in_step=2))


@activity.defn(name="master_data.project_page")
async def project_page(data: ProjectPageInput) -> ProjectPageResult:
    return ProjectPageResult(
        next_after=_next(data.after), counts=SyncCounts(records=2, written=1, refused=1), refused=["a0P1: no customer"]
    )


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=wheel_binary("temporal-test-server"), data_converter=TEST_CONVERTER
    )
    queue = f"rec-{uuid.uuid4()}"
    queues = TaskQueues(crm=queue, psa=queue, erp=queue)
    runs: list[tuple[str, Any, Any, str]] = [
        ("consultant_sync", ConsultantSyncWorkflow.run, ConsultantSyncInput(queues=queues), "md-consultants-1"),
        (
            "project_sync",
            ProjectSyncWorkflow.run,
            ProjectSyncInput(psa_instance="kantata", after=MARKS[0], page_size=50, queues=queues),
            "md-projects-1",
        ),
        (  # a run continued as new: it carries the progress of the runs before it
            "project_sync_carried",
            ProjectSyncWorkflow.run,
            ProjectSyncInput(
                queues=queues, carried=ProjectSyncProgress(page=4, after=MARKS[0], counts=SyncCounts(records=8))
            ),
            "md-projects-2",
        ),
    ]
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[ConsultantSyncWorkflow, ProjectSyncWorkflow],
        activities=[consultant_page, project_page],
    ):
        for name, run, data, workflow_id in runs:
            handle = await env.client.start_workflow(run, data, id=workflow_id, task_queue=queue)
            print(f"{name}: {await handle.result()}")
            history = await handle.fetch_history()
            (HERE / f"{name}.json").write_text(history.to_json())
            print(f"recorded {name}: {len(history.events)} events")
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
