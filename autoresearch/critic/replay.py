"""Offline replay of early-stopping strategies over a bank of recorded learning curves.

Training the same 30+ configurations again for every stopping idea would cost hours; replaying
their recorded curves costs seconds. A replay plays the campaign's part: trials arrive one at a
time (one machine, one trial), each reveals its curve evaluation by evaluation, and after each
evaluation the stopper decides. A stopped trial costs the progress it reached; a completed one
its full budget. Arrival order matters to every strategy (what has finished when a trial is
judged), so each strategy is replayed over several random orders and the figures are averaged.

* compute used = Σ progress reached / Σ full budgets;
* regret = best final val_bpb among the trials that completed − best final val_bpb of all
  (the result with no stopping); compare it with the noise floor σ of the final val_bpb.

A trial's curve is evaluated on a small slice of the validation split (``trainer.eval_bytes``), its
final score and the baseline repeats behind σ on a larger one (``final_eval_bytes``). Regret is
only comparable with σ on the same scale, so a bank that stores each trial's final score
(``CurveBank.finals``) has its regret measured on those; the stopper still sees only the curves,
as in a campaign.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from autoresearch.config import EarlyStoppingConfig
from autoresearch.critic.curves import Curve, clean_curve, final_value
from autoresearch.critic.early_stopping import make_early_stopper
from autoresearch.critic.stopping import EarlyStopper, StopperContext

CURVE_BANK_VERSION = 1


@dataclass(kw_only=True)
class CurveBank:
    """Full learning curves of many configurations, plus baseline repeats for the noise floor.

    Stored as JSON: ``{"version", "curves": {id: [[progress, val_bpb], ...]}, "overrides":
    {id: [hydra override strings]}, "finals": {id: final val_bpb}, "noise": [final val_bpb of
    baseline repeats], "meta": {...}}``. ``finals`` (banks recorded since 2026-12-02) are the
    configurations' scores on the scale of ``noise``; older banks have none.
    """

    curves: dict[str, Curve]
    noise: list[float] = field(default_factory=list)
    overrides: dict[str, list[str]] = field(default_factory=dict)
    finals: dict[str, float] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def complete_finals(self) -> dict[str, float] | None:
        """Every curve's final score, or None where any is missing (regret then falls back to the
        curves' last evaluations)."""
        return self.finals if self.curves and set(self.finals) >= set(self.curves) else None

    @property
    def noise_std(self) -> float:
        return float(np.std(self.noise, ddof=1)) if len(self.noise) >= 2 else math.nan

    def save(self, path: Path) -> None:
        # One line per curve (and per override list): small, and diffs stay readable.
        curves = {k: [[round(p, 6), round(v, 6)] for p, v in c] for k, c in self.curves.items()}
        lines = ["{", f' "version": {CURVE_BANK_VERSION},', f' "meta": {json.dumps(self.meta)},',
                 f' "noise": {json.dumps(self.noise)},', ' "overrides": {']
        lines += [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in self.overrides.items()]
        lines[-1] = lines[-1].rstrip(",") if self.overrides else lines[-1]
        lines += [" },", f' "finals": {json.dumps(self.finals)},', ' "curves": {']
        lines += [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in curves.items()]
        lines[-1] = lines[-1].rstrip(",") if curves else lines[-1]
        lines += [" }", "}"]
        Path(path).write_text("\n".join(lines) + "\n")

    @classmethod
    def load(cls, path: Path) -> "CurveBank":
        path = Path(path)
        data = json.loads(path.read_text())
        if data.get("version") != CURVE_BANK_VERSION:
            raise ValueError(
                f"{path}: curve bank version {data.get('version')!r}, expected {CURVE_BANK_VERSION}; "
                "re-record it with bench/curve_bank.py --record"
            )
        return cls(
            curves={k: clean_curve(c) for k, c in data["curves"].items()},
            noise=[float(v) for v in data.get("noise", [])],
            overrides=data.get("overrides", {}),
            finals={k: float(v) for k, v in data.get("finals", {}).items()},
            meta=data.get("meta", {}),
        )


@dataclass(frozen=True, kw_only=True)
class ReplayRun:
    """One strategy over one arrival order."""

    strategy: str
    compute_used: float  # fraction of the no-stopping compute
    regret: float
    stopped: int
    decisions: int
    decision_seconds_mean: float
    decision_seconds_max: float
    finished: tuple[int, ...] = ()  # the trials that ran to the end, in the order they finished


@dataclass(frozen=True, kw_only=True)
class ReplaySummary:
    """One strategy over all arrival orders."""

    strategy: str
    compute_used: float  # mean over orders
    regret_mean: float
    regret_max: float
    stopped_mean: float
    decision_seconds_mean: float
    decision_seconds_max: float
    noise_std: float
    runs: int

    @property
    def compute_saved(self) -> float:
        return 1.0 - self.compute_used

    @property
    def within_noise(self) -> bool:
        return math.isfinite(self.noise_std) and self.regret_mean <= self.noise_std


def replay(curves: Sequence[Curve], stopper: EarlyStopper, order: Sequence[int],
           finals: Sequence[float] | None = None) -> ReplayRun:
    """Play the trials in ``order`` (indices into ``curves``) one after another through ``stopper``.

    ``finals`` (one per curve) are what regret is measured on; without them, each curve's last point.
    """
    curves = [clean_curve(c) for c in curves]
    scores = list(finals) if finals is not None else [final_value(c) for c in curves]
    if len(scores) != len(curves):
        raise ValueError(f"{len(scores)} final scores for {len(curves)} curves")
    finished: dict[int, Curve] = {}
    incumbent: float | None = None
    used = total = 0.0
    stopped = 0
    timings: list[float] = []
    for trial_id in order:
        curve = curves[trial_id]
        total += curve[-1][0]
        reached = curve[-1][0]
        for i in range(1, len(curve)):  # after every evaluation but the last, which completes it
            t0 = time.perf_counter()
            decision = stopper.should_stop(trial_id, curve[:i], finished, incumbent)
            timings.append(time.perf_counter() - t0)
            if decision.stop:
                reached = curve[i - 1][0]
                stopped += 1
                break
        used += reached
        if reached >= curve[-1][0]:
            finished[trial_id] = curve
            final = final_value(curve)
            incumbent = final if incumbent is None else min(incumbent, final)
    best_all = min(scores)
    best_found = min((scores[t] for t in finished), default=math.inf)
    return ReplayRun(
        strategy=getattr(stopper, "name", type(stopper).__name__),
        compute_used=used / total,
        regret=best_found - best_all,
        stopped=stopped,
        decisions=len(timings),
        decision_seconds_mean=float(np.mean(timings)) if timings else 0.0,
        decision_seconds_max=float(np.max(timings)) if timings else 0.0,
        finished=tuple(finished),
    )


def earlier_campaign(bank: CurveBank, cfg: EarlyStoppingConfig, *, seed: int = 0) -> list[Curve]:
    """The curves an earlier campaign on ``bank``'s space leaves in the KnowledgeStore: the bank played
    once, in a random order, through the curve stopper ``cfg`` configures, keeping the curves that
    finished. A stopped trial leaves no finished curve, so a store never holds a whole bank; replaying
    with a whole bank as prior would lend a campaign evidence it cannot have."""
    curves = list(bank.curves.values())
    order = np.random.default_rng(seed).permutation(len(curves)).tolist()
    run = replay(curves, make_early_stopper(replace(cfg, kind="curve")), order)
    return [clean_curve(curves[i]) for i in run.finished]


def replay_strategies(
    curves: Sequence[Curve],
    cfg: EarlyStoppingConfig,
    *,
    strategies: Sequence[str] = ("none", "percentile", "curve", "halving"),
    shuffles: int = 5,
    seed: int = 0,
    noise_std: float = math.nan,
    context: StopperContext | None = None,
    finals: Sequence[float] | None = None,
    make: Callable[[EarlyStoppingConfig, StopperContext | None], EarlyStopper] = make_early_stopper,
) -> list[ReplaySummary]:
    """Each strategy over the same ``shuffles`` random arrival orders, with a fresh stopper per order.

    ``noise_std`` is the bank's noise floor the regret is judged against; ``context`` is what the
    stoppers are told (a campaign knows only its own few baseline repeats, not the bank's floor);
    ``finals``, one per curve, put regret on the scale of ``noise_std`` (see the module's docstring).
    """
    rng = np.random.default_rng(seed)
    orders = [rng.permutation(len(curves)).tolist() for _ in range(shuffles)]
    summaries = []
    for name in strategies:
        strategy_cfg = replace(cfg, kind=name)
        runs = [replay(curves, make(strategy_cfg, context), order, finals) for order in orders]
        summaries.append(
            ReplaySummary(
                strategy=name,
                compute_used=float(np.mean([r.compute_used for r in runs])),
                regret_mean=float(np.mean([r.regret for r in runs])),
                regret_max=float(np.max([r.regret for r in runs])),
                stopped_mean=float(np.mean([r.stopped for r in runs])),
                decision_seconds_mean=float(np.mean([r.decision_seconds_mean for r in runs])),
                decision_seconds_max=float(np.max([r.decision_seconds_max for r in runs])),
                noise_std=noise_std,
                runs=len(runs),
            )
        )
    return summaries
