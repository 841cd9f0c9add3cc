"""Sharpness: a Hutchinson estimate of the loss Hessian's trace, and a monitor that acts on it.

Why: a model that starts memorising its training data moves into sharp minima; the trace of the
Hessian (the sum of its curvatures) rises well before the validation loss says so on a short
budget. The trainer estimates the trace every ``trainer.sharpness.every`` steps and, when it
crosses a threshold or climbs too fast, raises weight decay and dropout for the rest of the run.

Hutchinson: for Rademacher vectors v (entries ±1), E[vᵀ H v] = tr(H). Each probe costs one
Hessian-vector product — a second backward pass through the gradient's graph — so an estimate
with k probes costs about one forward, one backward with ``create_graph=True`` and k double
backwards on the sharpness batch. ``python -m autoresearch.train._sharpness_cost`` measures it
against a training step.

Callers, CPU and CUDA alike: PyTorch's fused attention kernels (flash / memory-efficient SDPA)
have no double backward, so run the forward that produces ``loss`` inside ``hvp_forward()``,
which selects the plain (math) attention kernel.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import asdict, dataclass
from typing import Iterator

import torch

from autoresearch.config import SharpnessConfig

log = logging.getLogger(__name__)


@contextlib.contextmanager
def hvp_forward() -> Iterator[None]:
    """Context for the forward pass whose loss goes to ``hutchinson_trace``: math attention only."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):
        yield


def hutchinson_trace(
    loss: torch.Tensor,
    params: list[torch.nn.Parameter],
    probes: int,
    generator: torch.Generator,
) -> float:
    """Estimate tr(∇²loss) over ``params`` with ``probes`` Rademacher Hessian-vector products.

    ``loss`` must be a scalar still attached to its graph; its graph is consumed. ``generator``
    makes the probes reproducible (it may live on the CPU while the parameters are on a GPU).
    Parameters that do not influence the loss contribute nothing.
    """
    if probes < 1:
        raise ValueError(f"trainer.sharpness.probes must be >= 1, got {probes}")
    if loss.dim() != 0:
        raise ValueError(f"hutchinson_trace needs a scalar loss, got shape {tuple(loss.shape)}")
    params = [p for p in params if p.requires_grad]
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    pairs = [(p, g) for p, g in zip(params, grads) if g is not None and g.requires_grad]
    if not pairs:
        return 0.0  # the loss is linear in (or independent of) every parameter: zero curvature
    used, grads = [p for p, _ in pairs], [g for _, g in pairs]
    total = 0.0
    for i in range(probes):
        vs = [_rademacher(p, generator) for p in used]
        try:
            hvs = torch.autograd.grad(grads, used, grad_outputs=vs, retain_graph=i < probes - 1, allow_unused=True)
        except RuntimeError as err:
            if "derivative for" in str(err) and "attention" in str(err):
                raise RuntimeError(
                    f"{err}. A fused attention kernel has no double backward: compute the loss for "
                    "hutchinson_trace inside autoresearch.critic.hvp_forward()"
                ) from err
            raise
        total += float(sum((hv * v).sum() for hv, v in zip(hvs, vs) if hv is not None))
    return total / probes


def _rademacher(p: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    v = torch.randint(0, 2, p.shape, generator=generator, device=generator.device, dtype=torch.int8)
    return (v.to(device=p.device, dtype=p.dtype) * 2 - 1)


@dataclass(frozen=True, kw_only=True)
class Intervention:
    """More regularisation, decided at ``step``: the trainer adds the deltas for the rest of the run."""

    step: int
    trace: float
    reason: str
    weight_decay_delta: float
    dropout_delta: float

    def to_dict(self) -> dict:
        return asdict(self)


class SharpnessMonitor:
    """Turns a series of trace estimates into at most ``max_interventions`` interventions.

    Triggers (either suffices, each off when its setting is 0):

    * ``threshold`` — the trace exceeds it;
    * ``max_rise`` — the trace rose by more than this fraction since the previous estimate
      (0.5 = +50 %), measured only from a positive previous estimate.

    The monitor only decides; the trainer applies the deltas and records the intervention
    with the trial. Non-finite estimates are logged and skipped.
    """

    def __init__(self, cfg: SharpnessConfig):
        self.cfg = cfg
        self.history: list[tuple[int, float]] = []
        self.interventions: list[Intervention] = []

    def update(self, step: int, trace: float) -> Intervention | None:
        trace = float(trace)
        if not math.isfinite(trace):
            log.warning("sharpness estimate at step %d is %s; skipped", step, trace)
            return None
        previous = self.history[-1][1] if self.history else None
        self.history.append((step, trace))
        if len(self.interventions) >= self.cfg.max_interventions:
            return None
        reasons = []
        if self.cfg.threshold > 0 and trace > self.cfg.threshold:
            reasons.append(f"trace {trace:.4g} > threshold {self.cfg.threshold:.4g}")
        if self.cfg.max_rise > 0 and previous is not None and previous > 0:
            rise = (trace - previous) / previous
            if rise > self.cfg.max_rise:
                reasons.append(f"trace rose {100 * rise:.0f} % since the last estimate ({previous:.4g} -> {trace:.4g}), "
                               f"more than max_rise {100 * self.cfg.max_rise:.0f} %")
        if not reasons:
            return None
        intervention = Intervention(
            step=int(step),
            trace=trace,
            reason="; ".join(reasons),
            weight_decay_delta=self.cfg.weight_decay_step,
            dropout_delta=self.cfg.dropout_step,
        )
        self.interventions.append(intervention)
        log.info("sharpness intervention %d/%d at step %d: %s", len(self.interventions),
                 self.cfg.max_interventions, step, intervention.reason)
        return intervention
