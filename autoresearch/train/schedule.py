"""Learning-rate schedules and budgets, both expressed in *budget progress* (0 → 1).

Driving the schedule by progress rather than by step count is what lets one schedule serve a
seconds, steps, tokens or FLOPs budget alike: the run always warms up, holds and decays over
exactly the budget it was given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autoresearch.config import BudgetConfig, OptimConfig


def lr_multiplier(progress: float, cfg: OptimConfig) -> float:
    """Multiplier on the peak lr at ``progress`` ∈ [0, 1]."""
    p = min(max(progress, 0.0), 1.0)
    floor = cfg.min_lr_ratio
    if cfg.warmup_fraction > 0 and p < cfg.warmup_fraction:
        return (p + 1e-3) / (cfg.warmup_fraction + 1e-3)  # never exactly zero: step 0 must move
    if cfg.schedule == "constant":
        return 1.0
    span = max(1.0 - cfg.warmup_fraction, 1e-9)
    t = (p - cfg.warmup_fraction) / span  # progress after warm-up, 0 → 1
    if cfg.schedule == "cosine":
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
    if cfg.schedule == "linear":
        return floor + (1 - floor) * (1 - t)
    # wsd: warm-up, stable plateau, then a linear cool-down over the last `cooldown_fraction` of the budget
    decay_start = 1.0 - cfg.cooldown_fraction
    if p < decay_start or cfg.cooldown_fraction == 0:
        return 1.0
    return floor + (1 - floor) * (1.0 - (p - decay_start) / cfg.cooldown_fraction)


@dataclass
class Budget:
    """Tracks consumption of one budget kind; ``progress`` is the fraction used."""

    cfg: BudgetConfig
    flops_per_token: float

    def progress(self, *, seconds: float, steps: int, tokens: int) -> float:
        used = {
            "seconds": seconds,
            "steps": float(steps),
            "tokens": float(tokens),
            "flops": tokens * self.flops_per_token,
        }[self.cfg.kind]
        return used / self.cfg.value

    @property
    def deterministic(self) -> bool:
        """Whether the amount of training is independent of machine speed."""
        return self.cfg.kind != "seconds"
