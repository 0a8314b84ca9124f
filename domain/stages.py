"""The engagement's life stages and the only transitions allowed between them."""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    VALIDATING = "VALIDATING"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    PROVISIONING = "PROVISIONING"
    IN_DELIVERY = "IN_DELIVERY"
    CLOSING = "CLOSING"
    CLOSED = "CLOSED"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"
    CANCELLED = "CANCELLED"


TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.VALIDATING: frozenset({Stage.AWAITING_APPROVAL, Stage.PROVISIONING, Stage.NEEDS_ATTENTION, Stage.CANCELLED}),
    Stage.AWAITING_APPROVAL: frozenset({Stage.PROVISIONING, Stage.NEEDS_ATTENTION, Stage.CANCELLED}),
    Stage.PROVISIONING: frozenset({Stage.IN_DELIVERY, Stage.NEEDS_ATTENTION}),
    # A person may cancel in delivery too: d2r stops there; what was issued stays issued.
    Stage.IN_DELIVERY: frozenset({Stage.CLOSING, Stage.NEEDS_ATTENTION, Stage.CANCELLED}),
    Stage.CLOSING: frozenset({Stage.CLOSED, Stage.NEEDS_ATTENTION}),
    Stage.CLOSED: frozenset(),
    # A person fixes the cause, then the engagement resumes where it stopped or is cancelled.
    Stage.NEEDS_ATTENTION: frozenset(
        {Stage.VALIDATING, Stage.PROVISIONING, Stage.IN_DELIVERY, Stage.CLOSING, Stage.CANCELLED}
    ),
    Stage.CANCELLED: frozenset(),
}


class IllegalTransitionError(ValueError):
    pass


def transition(current: Stage, target: Stage) -> Stage:
    if target not in TRANSITIONS[current]:
        raise IllegalTransitionError(f"{current} -> {target} is not an allowed transition")
    return target
