"""Every committed history must replay on today's workflow code: a non-deterministic
change to a workflow fails here, in CI, before it can break a running engagement."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.conftest import TEST_CONVERTER
from workers.main import workflow_runner
from workers.registry import WORKFLOWS
from workers.settings import WorkflowWorkerLimits

HISTORIES = {p.stem: p.read_text() for p in sorted((Path(__file__).parent / "histories").glob("*.json"))}


def test_histories_are_committed() -> None:
    assert len(HISTORIES) >= 7


# The strict sandbox (as the workflow tests run) and the one the worker ships with.
@pytest.mark.parametrize("sandbox", ["strict", "passthrough"])
@pytest.mark.parametrize("name", sorted(HISTORIES))
async def test_replays(name: str, sandbox: Literal["strict", "passthrough"]) -> None:
    history = WorkflowHistory.from_json(name, HISTORIES[name])
    runner = workflow_runner(WorkflowWorkerLimits(sandbox=sandbox))
    replayer = Replayer(workflows=WORKFLOWS, data_converter=TEST_CONVERTER, workflow_runner=runner)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
