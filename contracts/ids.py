"""Workflow ids are business ids (DESIGN §8): each is built here, by one function."""

from __future__ import annotations

from datetime import date

ENGAGEMENT_PREFIX = "engagement-"


def engagement_workflow_id(opportunity_id: str) -> str:
    """`engagement-<opportunity id>`: one EngagementWorkflow per booked deal."""
    return f"{ENGAGEMENT_PREFIX}{opportunity_id}"


def opportunity_of(workflow_id: str) -> str:
    """The opportunity id an engagement's workflow id carries."""
    return workflow_id.removeprefix(ENGAGEMENT_PREFIX)


def posting_workflow_id(legal_entity: str, day: date | str) -> str:
    return f"{posting_run_prefix(legal_entity)}{day}"


def posting_run_prefix(legal_entity: str) -> str:
    """What every posting run of the entity starts with (its journals' external ids do too)."""
    return f"posting-{legal_entity}-"


def scheduled_run_id(kind: str, legal_entity: str) -> str:
    """The id prefix of a Schedule's runs (Temporal appends the fire time):
    `posting-<entity>`, `close-<entity>-scheduled`, `sync-<entity>-scheduled`. A scheduled
    close or sync starts the period's own run under its business id."""
    return f"posting-{legal_entity}" if kind == "posting" else f"{kind}-{legal_entity}-scheduled"


def close_workflow_id(legal_entity: str, period: str) -> str:
    return f"close-{legal_entity}-{period}"


def close_window_workflow_id(legal_entity: str, period: str, number: int) -> str:
    """`close-<entity>-<period>-w<n>`: the n-th window (a child workflow) of the period's close."""
    return f"{close_workflow_id(legal_entity, period)}-w{number:04d}"


def sync_workflow_id(legal_entity: str, period: str, suffix: str | None = None) -> str:
    """`sync-<entity>-<period>`; callers that must not collide with the Schedule's run of the
    same period (the close) add a suffix: `sync-<entity>-<period>-close`."""
    return f"sync-{legal_entity}-{period}" + (f"-{suffix}" if suffix else "")
