"""A Bayesian learning-curve model: predict a running trial's final val_bpb, with uncertainty.

Ax 1.3 ships only an abstract ``ModelBasedEarlyStoppingStrategy``, so this is our own, on
BoTorch/GPyTorch. The model answers one question: a trial that is at val_bpb ``y`` after a
fraction ``p`` of its budget — where will it end?

Model
-----
Every point of every finished curve is a training example: its features are the progress p,
the value y(p) and the slope over the last evaluation interval (how fast the curve is still
falling: two configurations at the same value now can end far apart), and its target is the drop
still to come, ``y(p) - y(1)`` (zero at p = 1). An exact GP (``SingleTaskGP``: RBF kernel with
one length scale per feature, learned noise) maps features to drop. For a running trial at its
latest evaluation the posterior predictive (observation noise included: a final val_bpb is
itself a noisy measurement) gives the drop, so

    final ~ Normal(y_now - mean_drop, c(p) · sd_drop).

c(p) >= 1 calibrates: maximum-likelihood hyper-parameters fitted to a few dozen curves make the
GP overconfident, most of all early in a curve. Holding each finished curve out in turn (closed
form, no refits) gives honest z-scores of its examples; c(p) is their RMS near progress p. On the
recorded curve bank this brought the held-out z-scores' spread at p = 0.4 from 1.33 to 0.90.

Why the drop and not the final value: curves of different configurations share their *shape*
far more than their level. Far outside the finished curves (a much worse trial), the GP falls
back to its prior — the average drop, with the prior's wide variance — so the prediction stays
"about as bad as it is now", the conservative answer.

Cost: the hyper-parameters are refitted (L-BFGS on the marginal likelihood) only when the number
of finished curves has grown by ``refit_growth`` since the last fit; otherwise the GP is rebuilt
on the new data with the previous hyper-parameters and feature scaling (one Cholesky). A decision
with an unchanged set of finished curves reuses the model and costs a posterior evaluation.
``bench/curve_bank.py`` prints the measured time per decision.

Threads: the GP's matrices are at most ``max_points`` square, far too small to gain from
intra-op threads, and beside a training subprocess on the same cores extra threads only
contend (measured on 2 busy cores: a 50-curve fit took 0.3-0.5 s on one thread, 2-10 s on two).
So ``update`` and ``predict`` run with one torch thread and restore the previous setting after;
the campaign process runs no other torch work meanwhile (trials are subprocesses).
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from autoresearch.config import EarlyStoppingConfig
from autoresearch.critic.curves import Curve, clean_curve, final_value
from autoresearch.critic.early_stopping import StopDecision, gate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Scaling:
    """Feature/target scaling frozen at hyper-parameter fit time (so the length scales keep meaning)."""

    y_mean: float
    y_std: float
    s_mean: float
    s_std: float
    d_mean: float
    d_std: float


class LearningCurveModel:
    """GP from ``(progress, val_bpb, slope)`` to the drop still to come; see the module docstring."""

    def __init__(self, *, refit_growth: float = 1.25, max_points: int = 160, min_progress: float = 0.0):
        self.refit_growth = refit_growth
        self.max_points = max_points
        self.min_progress = min_progress
        self._model = None
        self._scaling: _Scaling | None = None
        self._fitted_on = 0  # number of curves at the last hyper-parameter fit
        self._signature: tuple | None = None
        self._calibration: tuple[np.ndarray, np.ndarray] | None = None  # (progress, squared LOCO z) per example
        self.fits = 0  # hyper-parameter fits so far (for the benchmark's cost report)

    def update(self, curves: list[Curve]) -> None:
        """Condition on these finished curves (refitting hyper-parameters only when due)."""
        with _one_thread():
            self._update(curves)

    def _update(self, curves: list[Curve]) -> None:
        curves = [c for c in curves if len(c) >= 2]
        signature = tuple((len(c), c[-1]) for c in curves)
        if signature == self._signature:
            return
        if not curves:
            raise ValueError("learning-curve model needs at least one finished curve with 2+ evaluations")
        x_raw, drop, groups = _examples(curves, min_progress=self.min_progress, max_points=self.max_points)
        refit = self._model is None or len(curves) >= self.refit_growth * self._fitted_on
        if refit:
            self._scaling = _Scaling(
                y_mean=float(x_raw[:, 1].mean()),
                y_std=float(x_raw[:, 1].std()) or 1.0,
                s_mean=float(x_raw[:, 2].mean()),
                s_std=float(x_raw[:, 2].std()) or 1.0,
                d_mean=float(drop.mean()),
                d_std=float(drop.std()) or 1.0,
            )
        train_x, train_y = self._features(x_raw), self._targets(drop)
        previous = self._model
        self._model = _gp(train_x, train_y)
        if previous is not None:  # warm start a refit; keep the hyper-parameters otherwise
            self._model.load_state_dict(previous.state_dict())
        if refit:
            _fit(self._model)
            self._fitted_on = len(curves)
            self.fits += 1
        self._calibration = (x_raw[:, 0], _loco_z2(self._model, train_x, train_y, groups))
        self._model.eval()
        self._signature = signature

    def predict(self, partial: Curve) -> tuple[float, float]:
        """Posterior predictive mean and std of the final val_bpb of a curve that has reached ``partial[-1]``."""
        if self._model is None or self._scaling is None:
            raise RuntimeError("LearningCurveModel.predict before update(): give it finished curves first")
        if len(partial) < 2:
            raise ValueError("LearningCurveModel.predict needs a partial curve with 2+ evaluations")
        s = self._scaling
        x = self._features(_point_features(partial, len(partial) - 1)[None, :])
        with torch.no_grad(), warnings.catch_warnings(), _one_thread():
            warnings.simplefilter("ignore")
            post = self._model.posterior(x, observation_noise=True)
            mean = float(post.mean.squeeze()) * s.d_std + s.d_mean
            std = math.sqrt(max(float(post.variance.squeeze()), 1e-12)) * s.d_std
        return partial[-1][1] - mean, std * self.calibration(partial[-1][0], partial[-1][0] - partial[-2][0])

    def calibration(self, progress: float, spacing: float) -> float:
        """Factor (>= 1) on the predictive std at ``progress``, from leave-one-curve-out z-scores.

        Maximum-likelihood hyper-parameters on a few dozen curves make a GP overconfident, and
        more so early in a curve, where the remaining drop varies most. Each finished curve is
        held out in turn (in closed form, from the full GP's inverse covariance) and its examples
        within half an evaluation interval of ``progress`` are scored; the factor is the RMS of
        their z-scores, never below 1.
        """
        if self._calibration is None:
            return 1.0
        p, z2 = self._calibration
        near = np.abs(p - progress) <= max(spacing, 1e-3) / 2 + 1e-9
        if near.sum() < 3:
            near = p < 1.0 - 1e-9
        return max(1.0, math.sqrt(float(np.mean(z2[near])))) if near.any() else 1.0

    def _features(self, x_raw: np.ndarray) -> torch.Tensor:
        s = self._scaling
        x = np.column_stack(
            [x_raw[:, 0], (x_raw[:, 1] - s.y_mean) / s.y_std, (x_raw[:, 2] - s.s_mean) / s.s_std]
        )
        return torch.as_tensor(x, dtype=torch.float64)

    def _targets(self, drop: np.ndarray) -> torch.Tensor:
        s = self._scaling
        return torch.as_tensor(((drop - s.d_mean) / s.d_std)[:, None], dtype=torch.float64)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One torch intra-op thread for the duration (see the module docstring), then the previous count."""
    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _point_features(curve: Curve, i: int) -> np.ndarray:
    """``(p, y, slope)`` at evaluation ``i`` (i >= 1): slope over the last evaluation interval."""
    (p0, v0), (p1, v1) = curve[i - 1], curve[i]
    return np.array([p1, v1, (v1 - v0) / max(p1 - p0, 1e-6)])


def _examples(
    curves: list[Curve], *, min_progress: float, max_points: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training examples ``(p, y(p), slope) -> y(p) - y(1)``, at most ``max_points``, and each one's curve index.

    Decisions happen only at progress >= min_progress, so earlier points (the noisiest, steepest
    part of a curve) are left out, one evaluation interval of slack aside. Past ``max_points``
    (an exact GP costs O(n^3) per likelihood evaluation) the examples are thinned evenly and
    deterministically, always keeping each curve's final point, which pins the drop to 0 at p = 1.
    """
    finals, rest = [], []
    for k, c in enumerate(curves):
        final = final_value(c)
        spacing = 1.0 / len(c)
        finals.append((*_point_features(c, len(c) - 1), 0.0, k))
        rest += [
            (*_point_features(c, i), c[i][1] - final, k)
            for i in range(1, len(c) - 1)
            if c[i][0] >= min_progress - spacing
        ]
    budget = max(max_points - len(finals), 0)
    if len(rest) > budget:
        keep = np.linspace(0, len(rest) - 1, budget).round().astype(int) if budget else []
        rest = [rest[i] for i in keep]
    rows = np.asarray(finals + rest, dtype=float)
    return rows[:, :3], rows[:, 3], rows[:, 4].astype(int)


def _loco_z2(model, train_x: torch.Tensor, train_y: torch.Tensor, groups: np.ndarray) -> np.ndarray:
    """Squared leave-one-curve-out z-score of every example, in closed form.

    With K the GP's covariance of the observations (noise included) and a = K^-1 (y - m), holding
    out block B (one curve's examples) leaves residuals [K^-1]_BB^-1 a_B with covariance
    [K^-1]_BB^-1: no refit per curve, one n x n inverse and a small solve per curve.
    """
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.train()  # prior mode: model(x) is the GP prior at the training inputs
        mvn = model.likelihood(model(train_x))
        k = mvn.covariance_matrix.to_dense() if hasattr(mvn.covariance_matrix, "to_dense") else mvn.covariance_matrix
        k_inv = torch.linalg.inv(k)
        alpha = k_inv @ (train_y.squeeze(-1) - mvn.mean)
    z2 = np.empty(len(groups))
    for g in np.unique(groups):
        idx = torch.as_tensor(np.flatnonzero(groups == g))
        block = k_inv[idx][:, idx]
        cov = torch.linalg.inv(block)
        resid = cov @ alpha[idx]
        z2[idx.numpy()] = (resid**2 / torch.clamp(torch.diagonal(cov), min=1e-12)).numpy()
    return z2


def _gp(train_x: torch.Tensor, train_y: torch.Tensor):
    from botorch.models import SingleTaskGP

    with warnings.catch_warnings():
        # We scale inputs and targets ourselves (frozen between refits); BoTorch's
        # "data not standardized" warnings are about exactly that choice.
        warnings.simplefilter("ignore")
        return SingleTaskGP(train_x, train_y, outcome_transform=None, input_transform=None)


def _fit(model) -> None:
    from botorch.fit import fit_gpytorch_mll
    from gpytorch.mlls import ExactMarginalLogLikelihood

    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": 50}})
        except Exception as err:  # noqa: BLE001 - a failed fit keeps the prior-initialised GP
            log.warning("learning-curve GP fit failed (%s); using its initial hyper-parameters", err)


class CurveStopper:
    """Stop when the learning-curve model gives the trial little chance of beating the incumbent.

    ``P(final < incumbent - margin) < delta`` under the model's Normal predictive, after
    ``min_progress`` and once ``min_curves`` trials have finished. Without an incumbent, the best
    finished final val_bpb is used.
    """

    name = "curve"

    def __init__(self, cfg: EarlyStoppingConfig, *, refit_growth: float = 1.25):
        self.cfg = cfg
        self.model = LearningCurveModel(refit_growth=refit_growth, min_progress=cfg.min_progress)

    def should_stop(self, trial_id, partial, finished, incumbent) -> StopDecision:
        partial = clean_curve(partial)
        finished = {k: clean_curve(v) for k, v in finished.items() if k != trial_id}
        if (keep := gate(self.cfg, partial, finished)) is not None:
            return keep
        curves = [c for c in finished.values() if len(c) >= 2]
        if len(curves) < max(self.cfg.min_curves, 1):
            return StopDecision(stop=False, reason=f"only {len(curves)} finished curves with 2+ evaluations")
        if incumbent is None or not math.isfinite(incumbent):
            incumbent = min(final_value(c) for c in curves)
        self.model.update(curves)
        if len(partial) < 2:
            return StopDecision(stop=False, reason="curve: needs two evaluations to read a slope")
        progress = partial[-1][0]
        mean, std = self.model.predict(partial)
        target = incumbent - self.cfg.margin
        p_better = 0.5 * math.erfc(-(target - mean) / (std * math.sqrt(2.0)))
        stop = p_better < self.cfg.delta
        verb = "stop" if stop else "keep"
        return StopDecision(
            stop=stop,
            reason=f"curve: predicted final {mean:.4f} ± {std:.4f}, P(< {target:.4f}) = {p_better:.3f} "
            f"({verb}: delta {self.cfg.delta:g}) at progress {progress:.2f}",
            predicted=mean,
            p_better=p_better,
        )
