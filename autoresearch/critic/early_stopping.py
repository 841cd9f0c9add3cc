"""Early stopping: should a running trial be stopped, given its partial learning curve?

Every strategy answers the same question through one protocol, so the campaign polls a trial's
``curve.jsonl`` and asks ``should_stop`` without knowing which strategy the config chose:

* ``none`` — never stops (the reference for compute used and regret);
* ``percentile`` — Ax's ``PercentileEarlyStoppingStrategy`` through ``Client.should_stop_trial_early``:
  stop when the trial is worse than the given percentile of the trials seen at the same progress;
* ``curve`` — a Bayesian learning-curve model (GP on BoTorch/GPyTorch, ``learning_curve.py``):
  stop when P(final val_bpb < incumbent - margin - noise_margin·σ) < delta, σ the noise measured
  on the finished curves (or the caller's noise floor). The model never judges a trial that lies
  outside the finished curves: one ahead of all of them runs on, one falling faster than all of
  them (by more than their measured evaluation noise allows) is stopped only when even the best
  remaining drop those curves showed cannot bring it to the target;
* ``halving`` — asynchronous successive halving: at rungs of progress eta^-k keep the top 1/eta
  of the trials seen there.

Contract (all strategies)
-------------------------
* Curves are ``[(progress, val_bpb), ...]`` with progress in [0, 1]; ``partial`` is the running
  trial's curve so far, ``finished`` maps trial ids of *completed* trials to their full curves,
  ``incumbent`` is the best final val_bpb so far (None: the strategy takes the best finished one).
* No trial is stopped before ``min_progress`` of its budget, nor before ``min_curves`` trials
  have finished.
* A stopper is stateful: it remembers the partial curves it was shown (peers for the percentile
  and halving rules) and a stop decision is final — the caller stops the trial and records it as
  ``early_stopped`` with its partial curve; the stopper only hands back a ``StopDecision``.
* One stopper per campaign (or per replay): it is not shared between threads.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from autoresearch.config import EarlyStoppingConfig
from autoresearch.critic.curves import Curve, clean_curve, value_at
from autoresearch.critic.stopping import EarlyStopper, StopDecision, StopperContext, gate

log = logging.getLogger(__name__)

# Ax progressions are integers: progress in [0, 1] is sent as thousandths of the budget.
AX_PROGRESSION_SCALE = 1000


def make_early_stopper(cfg: EarlyStoppingConfig, context: StopperContext | None = None) -> EarlyStopper:
    """The stopper ``critic.early_stopping.kind`` names; ``context`` is what the caller knows
    beyond the campaign's own curves (its noise floor, earlier campaigns' curves on the same space)."""
    if cfg.kind == "none":
        return NoStopper()
    if cfg.kind == "percentile":
        return PercentileStopper(cfg)
    if cfg.kind == "curve":
        from autoresearch.critic.learning_curve import CurveStopper  # torch/botorch only when used

        return CurveStopper(cfg, context=context)
    if cfg.kind == "halving":
        return HalvingStopper(cfg)
    raise ValueError(
        f"critic.early_stopping.kind: unknown kind {cfg.kind!r}; "
        "use one of none, percentile, curve, halving"
    )


class NoStopper:
    """Never stops: every trial runs its full budget."""

    name = "none"

    def should_stop(self, trial_id, partial, finished, incumbent) -> StopDecision:
        return StopDecision(stop=False, reason="early stopping is off")


class HalvingStopper:
    """Asynchronous successive halving (ASHA-style) over progress rungs eta^-k.

    A trial crossing rung r for the first time is compared with every trial seen at r so far
    (finished curves and earlier partial curves): it continues if it ranks within the top
    ceil(n / eta) of those n trials, itself included. Rungs below ``min_progress`` are skipped,
    so with the defaults (eta = 3, min_progress = 0.25) the only rung is 1/3.
    """

    name = "halving"

    def __init__(self, cfg: EarlyStoppingConfig):
        self.cfg = cfg
        self.rungs: list[float] = []
        k = 1
        while (r := cfg.eta**-k) >= max(cfg.min_progress, 1e-3):
            self.rungs.append(r)
            k += 1
        self.rungs.sort()
        if not self.rungs:
            log.warning(
                "halving: no rung eta^-k lies in [min_progress=%s, 1) for eta=%s; nothing will be stopped",
                cfg.min_progress, cfg.eta,
            )
        self._at_rung: dict[float, dict[int, float]] = {r: {} for r in self.rungs}

    def should_stop(self, trial_id, partial, finished, incumbent) -> StopDecision:
        partial = clean_curve(partial)
        finished = {k: clean_curve(v) for k, v in finished.items() if k != trial_id}
        if (keep := gate(self.cfg, partial, finished)) is not None:
            return keep
        for curve_id, curve in finished.items():  # finished curves are peers at every rung
            for r in self.rungs:
                v = value_at(curve, r)
                if math.isfinite(v):
                    self._at_rung[r][curve_id] = v
        progress = partial[-1][0]
        for r in self.rungs:
            if progress < r or trial_id in self._at_rung[r]:
                continue
            v = value_at(partial, r)
            if not math.isfinite(v):  # first evaluation came after the rung
                v = partial[0][1]
            peers = [w for t, w in self._at_rung[r].items() if t != trial_id]
            self._at_rung[r][trial_id] = v
            n = len(peers) + 1
            keep_n = math.ceil(n / self.cfg.eta)
            rank = 1 + sum(w < v for w in peers)
            if rank > keep_n:
                return StopDecision(
                    stop=True,
                    reason=f"halving: rank {rank} of {n} at rung {r:.3f} (keeps top {keep_n}), val_bpb {v:.4f}",
                )
        return StopDecision(stop=False, reason="halving: within the top 1/eta at every rung passed")


class PercentileStopper:
    """Ax's ``PercentileEarlyStoppingStrategy``, asked through ``Client.should_stop_trial_early``.

    The stopper keeps its own Ax ``Client`` that mirrors the trials it hears about: one integer
    parameter ``trial_id`` (the search itself happens elsewhere; Ax only needs an arm per
    trial), objective ``-val_bpb``, progress sent as integer thousandths of the budget. Finished
    trials are completed in the mirror, trials it stops are marked EARLY_STOPPED there, so Ax's
    peers are exactly the curves seen. Ax compares the trial's value at its latest progression
    with the given percentile of every trial that has data there (itself included), after
    interpolating all curves onto common progressions.

    If Ax cannot be imported or raises while deciding, the stopper logs it once and switches to
    ``backend="numpy"``: the same rule (interpolate peers at the trial's progress, compare with
    the (100 - percentile)-th value quantile) written in numpy. ``backend="numpy"`` selects it
    directly.
    """

    name = "percentile"

    def __init__(self, cfg: EarlyStoppingConfig, *, backend: str = "ax"):
        if backend not in ("ax", "numpy"):
            raise ValueError(f"percentile backend must be 'ax' or 'numpy', got {backend!r}")
        self.cfg = cfg
        self.backend = backend
        self._client = None
        self._ax_index: dict[int, int] = {}
        self._last_progression: dict[int, int] = {}
        self._completed: set[int] = set()
        self._stopped: set[int] = set()
        self._partials: dict[int, Curve] = {}  # every curve seen, for the numpy rule

    # ------------------------------------------------------------------ public
    def should_stop(self, trial_id, partial, finished, incumbent) -> StopDecision:
        partial = clean_curve(partial)
        finished = {k: clean_curve(v) for k, v in finished.items() if k != trial_id}
        for k, v in finished.items():
            self._partials[k] = v
        if partial:
            self._partials[trial_id] = partial
        if self.backend == "ax":
            try:
                return self._ax_decision(trial_id, partial, finished)
            except Exception as err:  # noqa: BLE001 - any Ax failure: fall back, loudly
                log.warning(
                    "percentile: Ax early stopping failed (%s: %s); using the numpy implementation "
                    "of the same rule from now on", type(err).__name__, err,
                )
                self.backend = "numpy"
        return self._numpy_decision(trial_id, partial, finished)

    # ------------------------------------------------------------------ Ax
    def _client_or_create(self):
        if self._client is None:
            from ax import Client, RangeParameterConfig
            from ax.early_stopping.strategies.percentile import PercentileEarlyStoppingStrategy

            client = Client(random_seed=0)
            client.configure_experiment(
                parameters=[RangeParameterConfig(name="trial_id", parameter_type="int", bounds=(0, 2**31 - 1))],
                name="critic_early_stopping",
            )
            client.configure_optimization(objective="-val_bpb")
            client.set_early_stopping_strategy(
                PercentileEarlyStoppingStrategy(
                    percentile_threshold=self.cfg.percentile,
                    min_progression=self.cfg.min_progress * AX_PROGRESSION_SCALE,
                    min_curves=self.cfg.min_curves,
                )
            )
            self._client = client
        return self._client

    def _mirror(self, trial_id: int, curve: Curve) -> int:
        client = self._client_or_create()
        if trial_id not in self._ax_index:
            self._ax_index[trial_id] = client.attach_trial({"trial_id": int(trial_id)})
        index = self._ax_index[trial_id]
        last = self._last_progression.get(trial_id, -1)
        for p, v in curve:
            prog = int(round(p * AX_PROGRESSION_SCALE))
            if prog > last:
                client.attach_data(index, {"val_bpb": float(v)}, progression=prog)
                last = prog
        self._last_progression[trial_id] = last
        return index

    def _ax_decision(self, trial_id: int, partial: Curve, finished: dict[int, Curve]) -> StopDecision:
        client = self._client_or_create()
        for k, curve in finished.items():
            if k not in self._completed and k not in self._stopped and curve:
                client.complete_trial(self._mirror(k, curve))
                self._completed.add(k)
        if (keep := gate(self.cfg, partial, finished)) is not None:
            if partial:
                self._mirror(trial_id, partial)  # still a peer for later decisions
            return keep
        index = self._mirror(trial_id, partial)
        if client.should_stop_trial_early(index):
            client.mark_trial_early_stopped(index)
            self._stopped.add(trial_id)
            return StopDecision(
                stop=True,
                reason=f"ax percentile: worse than the {self.cfg.percentile:g}th percentile of peers "
                f"at progress {partial[-1][0]:.2f}",
            )
        return StopDecision(stop=False, reason=f"ax percentile: within the {self.cfg.percentile:g}th percentile")

    # ------------------------------------------------------------------ numpy fallback
    def _numpy_decision(self, trial_id: int, partial: Curve, finished: dict[int, Curve]) -> StopDecision:
        if (keep := gate(self.cfg, partial, finished)) is not None:
            return keep
        progress, value = partial[-1]
        values = [value_at(c, progress) for c in self._partials.values()]
        values = [v for v in values if math.isfinite(v)]  # the trial itself is among them, as in Ax
        if len(values) < self.cfg.min_curves:
            return StopDecision(stop=False, reason=f"numpy percentile: only {len(values)} curves reach {progress:.2f}")
        threshold = float(np.quantile(values, 1.0 - self.cfg.percentile / 100.0))
        if value > threshold:
            return StopDecision(
                stop=True,
                reason=f"numpy percentile: val_bpb {value:.4f} worse than the {self.cfg.percentile:g}th "
                f"percentile {threshold:.4f} at progress {progress:.2f}",
            )
        return StopDecision(stop=False, reason=f"numpy percentile: val_bpb {value:.4f} <= {threshold:.4f}")

