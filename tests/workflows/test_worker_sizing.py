"""The worker process is sized from settings: cache, workflow-task concurrency, pollers and
the sandbox, per queue the rate limits (D2R_*__* environment variables reach the SDK).

The passthrough sandbox the worker ships with is checked here too: a whole engagement runs
to IN_DELIVERY under it, and runs share the one imported workflow module instead of
re-importing it each (the point of passing it through: README, "Figures")."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import workflows.engagement_support as support
from contracts.config import FinanceConfig
from contracts.engagement import EngagementInput
from contracts.queues import TaskQueues
from domain.reference_data import default_legal_entities
from domain.stages import Stage
from tests.workflows.fakes import FakeSystems, good_opportunity
from tests.workflows.test_engagement_workflow import wait_for
from workers.main import PASSTHROUGH_PACKAGES, build_workers, workflow_runner
from workers.settings import (
    KIB_PER_CACHED_ENGAGEMENT,
    WARM_WORKER_MIB,
    QueueLimits,
    WorkerSettings,
    WorkflowWorkerLimits,
)
from workflows.engagement import EngagementWorkflow


def test_sizing_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("D2R_WORKFLOW_LIMITS__MAX_CACHED_WORKFLOWS", "2500")
    monkeypatch.setenv("D2R_WORKFLOW_LIMITS__POLLERS", "3")
    monkeypatch.setenv("D2R_ERP_LIMITS__MAX_PER_SECOND", "7.5")
    monkeypatch.setenv("D2R_ERP_LIMITS__MAX_CONCURRENT", "4")
    settings = WorkerSettings()
    assert settings.workflow_limits.cache_size() == 2500
    assert settings.workflow_limits.pollers == 3
    assert settings.workflow_limits.max_concurrent_tasks == WorkflowWorkerLimits().max_concurrent_tasks
    assert (settings.erp_limits.max_per_second, settings.erp_limits.max_concurrent) == (7.5, 4)
    # the CRM keeps its own default: one vendor's limit never changes another's
    assert settings.crm_limits.max_per_second == 50


def test_the_default_cache_fits_in_the_memory_budget() -> None:
    """What the defaults guarantee: the cache, at the measured cost of a cached engagement,
    stays within 90 % of the 1 GiB budget. The other open engagements (10,000 at the issue's
    target) are not in memory: an evicted one replays its history on its next task."""
    limits = WorkflowWorkerLimits()
    assert limits.memory_mib == 1024
    cached = limits.cache_size()
    assert WARM_WORKER_MIB + cached * KIB_PER_CACHED_ENGAGEMENT / 1024 <= 0.9 * 1024
    assert 5_000 <= cached < 10_000  # most open engagements cached; 10,000 would not fit
    assert limits.sandbox == "passthrough"


def test_the_cache_grows_with_the_budget_or_is_set_outright(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("D2R_WORKFLOW_LIMITS__MEMORY_MIB", "2048")
    bigger = WorkerSettings().workflow_limits.cache_size()
    assert bigger > 2 * WorkflowWorkerLimits().cache_size()  # the warm worker's cost is paid once
    assert WARM_WORKER_MIB + bigger * KIB_PER_CACHED_ENGAGEMENT / 1024 <= 0.9 * 2048
    assert WorkflowWorkerLimits(memory_mib=2048, max_cached_workflows=300).cache_size() == 300


async def test_build_workers_passes_the_sizing_to_the_sdk(env: WorkflowEnvironment) -> None:
    settings = WorkerSettings(
        roles="workflows,erp",
        workflow_task_queue=f"sz-wf-{uuid.uuid4().hex[:6]}",
        erp_task_queue=f"sz-erp-{uuid.uuid4().hex[:6]}",
        workflow_limits=WorkflowWorkerLimits(max_cached_workflows=1234, max_concurrent_tasks=7, pollers=3),
        erp_limits=QueueLimits(max_concurrent=3, max_per_second=9.0, pollers=2),
    )
    by_role: dict[str, list] = {"workflows": [], "erp": [FakeSystems(good_opportunity()).activities()[0]]}
    workflows, erp = build_workers(env.client, settings, by_role)
    wf = workflows.config()
    assert (wf["max_cached_workflows"], wf["max_concurrent_workflow_tasks"]) == (1234, 7)
    assert wf["workflow_task_poller_behavior"].maximum == 3  # type: ignore[union-attr]
    restrictions = wf["workflow_runner"].restrictions  # type: ignore[union-attr]
    assert set(PASSTHROUGH_PACKAGES) <= restrictions.passthrough_modules
    acts = erp.config()
    assert acts["max_task_queue_activities_per_second"] == 9.0
    assert acts["max_concurrent_activities"] == 3
    assert acts["activity_task_poller_behavior"].maximum == 2  # type: ignore[union-attr]


def test_strict_sandbox_on_request() -> None:
    runner = workflow_runner(WorkflowWorkerLimits(sandbox="strict"))
    assert "workflows" not in runner.restrictions.passthrough_modules


@pytest.mark.parametrize(("sandbox", "shared"), [("passthrough", True), ("strict", False), ("none", True)])
async def test_engagements_provision_in_either_sandbox(
    env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch, sandbox: str, shared: bool
) -> None:
    """Passed through, every run executes the workflow module this process imported (a
    wrapper put on its `validate_deal` sees both runs); strict, each run re-imports it."""
    import workflows.engagement as module

    calls: list[str] = []
    original = module.validate_deal

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append("validate")
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "validate_deal", counted)
    shared_configs: list[FinanceConfig] = []
    monkeypatch.setattr(support, "_SHARED_FINANCE", shared_configs)
    fake = FakeSystems(good_opportunity())
    queue = f"pt-{uuid.uuid4()}"
    runner = workflow_runner(WorkflowWorkerLimits(sandbox=sandbox))  # type: ignore[arg-type]
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[EngagementWorkflow],
        activities=fake.activities(),
        workflow_runner=runner,
    ):
        handles = [
            await env.client.start_workflow(
                EngagementWorkflow.run,
                EngagementInput(
                    opportunity_id=fake.opportunity.opportunity_id, queues=TaskQueues(crm=queue, psa=queue, erp=queue)
                ),
                id=f"engagement-pt-{n}-{uuid.uuid4().hex[:6]}",
                task_queue=queue,
            )
            for n in range(2)
        ]
        for handle in handles:
            view = await wait_for(handle, lambda v: v.stage == Stage.IN_DELIVERY)
            assert view.project_id and view.contract_id
    assert len(calls) == (2 if shared else 0)
    # both runs hold the one finance configuration (workflows/engagement.py imports its support
    # module passed through, so under the strict sandbox too)
    assert len(shared_configs) == 1


def test_engagements_share_one_finance_configuration() -> None:
    """Equal content is one object (what every engagement of an entity holds); a different
    configuration is another, and the table stays bounded."""
    us, uk = (FinanceConfig(legal_entity=default_legal_entities()[e]) for e in ("US01", "UK01"))
    first = support.shared_finance(us)
    assert support.shared_finance(us.model_copy(deep=True)) is first
    assert support.shared_finance(uk) is not first
    for n in range(support._SHARED_FINANCE_MAX + 1):
        support.shared_finance(us.model_copy(update={"reporting_currency": f"X{n:02d}"}))
    assert len(support._SHARED_FINANCE) <= support._SHARED_FINANCE_MAX
