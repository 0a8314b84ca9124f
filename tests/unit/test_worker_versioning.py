"""Every workflow a worker registers declares how it moves between worker versions.

Versioned workers refuse to start with one that does not (the SDK checks at start-up); this
says so before any server is involved, and pins down which behaviour each one has: the
engagement lives for months and is pinned (it moves at continue-as-new), a month-end and its
windows are pinned (a close waits days for its approval and finishes on its own build),
everything else is short and auto-upgrades. docs/operations.md, "Rolling out a new worker version".
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import VersioningBehavior

from workers.registry import WORKFLOWS

PINNED = {"EngagementWorkflow", "PeriodCloseWorkflow", "PeriodCloseWindowWorkflow"}


def test_every_registered_workflow_declares_its_versioning_behaviour() -> None:
    behaviours = {
        workflow._Definition.must_from_class(cls).name: workflow._Definition.must_from_class(cls).versioning_behavior
        for cls in WORKFLOWS
    }
    undeclared = sorted(name for name, b in behaviours.items() if b is VersioningBehavior.UNSPECIFIED)
    assert not undeclared, f"add versioning_behavior= to @workflow.defn of {undeclared}"
    assert {name for name, b in behaviours.items() if b is VersioningBehavior.PINNED} == PINNED
    assert {b for name, b in behaviours.items() if name not in PINNED} <= {VersioningBehavior.AUTO_UPGRADE}
