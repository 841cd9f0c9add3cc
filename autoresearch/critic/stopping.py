"""What every early stopper shares: the decision it hands back, the protocol, the common gate.

A small module of its own so that the strategies (``early_stopping.py``) and the learning-curve
model (``learning_curve.py``) both import it and neither imports the other at module level: the
factory in ``early_stopping`` reaches the curve model only when a config asks for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from autoresearch.config import EarlyStoppingConfig
from autoresearch.critic.curves import Curve, clean_curve


@dataclass(frozen=True, kw_only=True)
class StopDecision:
    """The critic's answer for one trial at one point of its curve."""

    stop: bool
    reason: str
    predicted: float | None = None  # curve model: posterior mean of the final val_bpb
    p_better: float | None = None  # curve model: P(final < incumbent - margin)


@dataclass(frozen=True, kw_only=True)
class StopperContext:
    """What a caller knows beyond the running campaign's own curves; every field is optional.

    * ``noise_std`` — the campaign's noise floor σ of a final val_bpb (baseline repeats). A
      stopper that scales its margin by the noise uses it when given, else measures the noise
      from the finished curves themselves.
    * ``prior_curves`` — finished curves of earlier campaigns on the same search space (and
      budget): extra evidence for the curve model and the noise estimate, never peers for the
      incumbent.
    """

    noise_std: float | None = None
    prior_curves: tuple[Curve, ...] = field(default=())

    def __post_init__(self):
        if self.noise_std is not None and not (math.isfinite(self.noise_std) and self.noise_std >= 0):
            object.__setattr__(self, "noise_std", None)  # an unusable floor is no floor
        curves = tuple(c for c in (clean_curve(c) for c in self.prior_curves) if len(c) >= 2)
        object.__setattr__(self, "prior_curves", curves)


@runtime_checkable
class EarlyStopper(Protocol):
    """What the campaign calls each time a running trial reports a new evaluation."""

    name: str

    def should_stop(
        self,
        trial_id: int,
        partial: list[tuple[float, float]],
        finished: dict[int, list[tuple[float, float]]],
        incumbent: float | None,
    ) -> StopDecision: ...


def gate(cfg: EarlyStoppingConfig, partial: Curve, finished: dict[int, Curve]) -> StopDecision | None:
    """The rules every strategy shares: a "keep running" decision, or None when the strategy may decide."""
    if not partial:
        return StopDecision(stop=False, reason="no evaluation yet")
    progress = partial[-1][0]
    if progress < cfg.min_progress:
        return StopDecision(stop=False, reason=f"progress {progress:.2f} < min_progress {cfg.min_progress:.2f}")
    if progress >= 1.0:
        return StopDecision(stop=False, reason="trial has reached its full budget")
    if len(finished) < cfg.min_curves:
        return StopDecision(stop=False, reason=f"{len(finished)} finished curves < min_curves {cfg.min_curves}")
    return None
