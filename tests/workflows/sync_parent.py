"""A parent that runs SourceSyncWorkflow as a child the way the period close does, right
before its reconciliation (kept apart from the tests: the sandbox re-imports this module)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from contracts.ids import sync_workflow_id
from contracts.source_sync import SourceSyncInput, SourceSyncResult
from workflows.source_sync import SourceSyncWorkflow


@workflow.defn(name="SyncAsChildTestParent")
class SyncAsChildParent:
    @workflow.run
    async def run(self, data: SourceSyncInput) -> SourceSyncResult:
        assert data.period is not None
        return await workflow.execute_child_workflow(
            SourceSyncWorkflow.run,
            data,
            id=sync_workflow_id(data.legal_entity, data.period, "close") + "-" + workflow.info().workflow_id,
            execution_timeout=timedelta(hours=1),
        )
