"""Live fault state of one simulator: the FaultConfig in force, its seeded RNG, the
throttle burst left, requests in flight and per-rule `reject` counts."""

from __future__ import annotations

import random
import time
from typing import Any
from urllib.parse import unquote

from ._settings import FaultConfig, RejectRule

# The error code a `reject` fault answers with when the rule names none: each vendor's
# usual validation failure (a 400 the connectors treat as non-retryable).
REJECT_CODES = {"salesforce": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "netsuite": "USER_ERROR"}


class FaultState:
    def __init__(self, cfg: FaultConfig) -> None:
        self.start_cfg = cfg
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.throttle_left = cfg.throttle_burst
        self.inflight = 0
        self.rejected = [0] * len(cfg.reject)  # calls refused so far, per `reject` rule
        if cfg.outage_seconds and not cfg.outage_until:
            self.cfg = cfg.model_copy(update={"outage_until": time.time() + cfg.outage_seconds})

    def update(self, patch: dict[str, Any], replace: bool = False) -> FaultConfig:
        base = {} if replace else self.cfg.model_dump()
        base.update(patch)
        base.pop("expire_tokens", None)
        cfg = FaultConfig.model_validate(base)
        if "outage_seconds" in patch:
            secs = float(patch["outage_seconds"] or 0)
            cfg = cfg.model_copy(update={"outage_until": time.time() + secs if secs else 0, "outage_seconds": 0})
        if "seed" in patch or replace:
            self.rng = random.Random(cfg.seed)
        if "throttle_burst" in patch or replace:
            self.throttle_left = cfg.throttle_burst
        if "reject" in patch or replace:
            self.rejected = [0] * len(cfg.reject)
        self.cfg = cfg
        return cfg

    def chance(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    def view(self) -> dict[str, Any]:
        d = self.cfg.model_dump()
        d["throttle_left"] = self.throttle_left
        d["inflight"] = self.inflight
        d["outage_active"] = self.cfg.outage_until > time.time()
        d["rejected"] = list(self.rejected)
        return d

    def rejection(self, method: str, raw_path: str, body: bytes) -> RejectRule | None:
        """The first `reject` rule the request matches (counted), if any. Rules see the
        percent-decoded path, so `eid:d2r:engagement-...` matches however a client encodes it."""
        if not self.cfg.reject:
            return None
        path = unquote(raw_path)
        for index, rule in enumerate(self.cfg.reject):
            if rule.matches(method, path, body):
                self.rejected[index] += 1
                return rule
        return None
