"""A month-end window's writers read their part of the window's outboxes from the hub
(contracts/window_stage.py) when the window passed ids instead of the items."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Protocol, TypeVar

from pydantic import BaseModel
from temporalio.exceptions import ApplicationError

from activities.errors import refusals
from contracts.window_stage import OUTBOX, StagedWindow

M = TypeVar("M", bound=BaseModel)


class Stage(Protocol):
    """reporting/close_stage.py's WindowStage, as the activities use it."""

    async def put(self, where: StagedWindow, part: str, items: Mapping[str, BaseModel]) -> int: ...

    async def get(
        self, where: StagedWindow, part: str, keys: Iterable[str], model: type[M], field: str | None = None
    ) -> dict[str, M]: ...


def needed(stage: Stage | None) -> Stage:
    """The hub this worker was given; a window that staged its facts cannot run without it."""
    if stage is None:
        raise ApplicationError(
            "this worker has no reporting hub, where the month-end window keeps its facts",
            type="NoReportingHub",
            non_retryable=True,
        )
    return stage


async def write_window(
    given: Mapping[str, M],
    stage: Stage | None,
    where: StagedWindow | None,
    staged: list[str],
    system: str,
    model: type[M],
    write: Callable[[M], Awaitable[object]],
    concurrency: int = 8,
) -> dict[str, str]:
    """A window's writes for one system: the items given, and the `system` part of each
    staged engagement's outbox. Returns the refused (an outbox missing from the stage too)."""
    items = dict(given)
    missing: dict[str, str] = {}
    if where is not None and staged:
        found = await needed(stage).get(where, OUTBOX, staged, model, field=system)
        items.update(found)
        missing = {w: f"no {system} write of {w} in the window's stage" for w in staged if w not in found}
    return {**missing, **await refusals(items, write, concurrency)}
