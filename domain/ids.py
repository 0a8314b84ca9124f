"""Deterministic external ids: a retried or replayed write upserts instead of duplicating.

They derive from the workflow id (a business id) and the business step, never the run id.
"""

from __future__ import annotations

import hashlib
import uuid

_NAMESPACE = uuid.UUID("6f0b3c5e-2d1a-4f7e-9a41-d2d2d2d2d2d2")


def external_id(workflow_id: str, step: str) -> str:
    """A readable, length-bounded key, e.g. `d2r:engagement-006...:so`."""
    raw = f"d2r:{workflow_id}:{step}"
    if len(raw) <= 80:
        return raw
    return f"d2r:{hashlib.sha256(raw.encode()).hexdigest()[:40]}"


def idempotency_key(workflow_id: str, step: str) -> str:
    """A UUID form of the same key, for APIs that want a UUID idempotency header."""
    return str(uuid.uuid5(_NAMESPACE, f"{workflow_id}:{step}"))
