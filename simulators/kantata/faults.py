"""Fault injection for the Kantata simulator, driven by the shared `FaultConfig`.

Kantata's own edges: a 429 carries no `Retry-After`, a request that runs past the
request timeout is answered 504 without its work done, and a lost response means the
write committed but the client never heard (a retried POST then duplicates).
"""

from __future__ import annotations

import random
import time
from typing import Any

from .._settings import FaultConfig


class Faults:
    def __init__(self, cfg: FaultConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.throttle_left = cfg.throttle_burst
        self.rejected = [0] * len(cfg.reject)
        if cfg.outage_seconds and not cfg.outage_until:
            self.cfg = cfg.model_copy(update={"outage_until": time.time() + cfg.outage_seconds, "outage_seconds": 0})

    def update(self, patch: dict[str, Any], replace: bool = False) -> None:
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

    def chance(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    def throttled(self) -> bool:
        if self.throttle_left > 0:
            self.throttle_left -= 1
            return True
        return self.chance(self.cfg.throttle_rate)

    def outage(self) -> bool:
        return bool(self.cfg.outage_until) and self.cfg.outage_until > time.time()

    def rejection(self, method: str, path: str, body: bytes) -> tuple[int, str] | None:
        for index, rule in enumerate(self.cfg.reject):
            if rule.matches(method, path, body):
                self.rejected[index] += 1
                return rule.status, rule.message
        return None

    def view(self) -> dict[str, Any]:
        d = self.cfg.model_dump()
        d["throttle_left"] = self.throttle_left
        d["outage_active"] = self.outage()
        d["rejected"] = list(self.rejected)
        return d
