"""A saga: compensations registered before each step runs, undone in reverse on failure."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import workflow

Compensation = Callable[[], Awaitable[object]]


class Saga:
    def __init__(self) -> None:
        self._steps: list[tuple[str, Compensation]] = []

    def on_failure_undo(self, description: str, compensation: Compensation) -> None:
        """Register before the step runs: a step whose response was lost may still have
        happened, so its (idempotent) undo must run too."""
        self._steps.append((description, compensation))

    async def compensate(self) -> list[str]:
        """Undo every registered step, newest first; returns the undos that failed."""
        failed: list[str] = []
        for description, compensation in reversed(self._steps):
            try:
                await compensation()
            except Exception as error:  # a failed undo must not stop the others
                workflow.logger.error("compensation failed: %s: %s", description, error)
                failed.append(f"{description}: {error}")
        self._steps.clear()
        return failed
