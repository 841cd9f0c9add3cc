"""A Bayesian learning-curve model: predict a running trial's final val_bpb, with uncertainty.

Ax 1.3 ships only an abstract ``ModelBasedEarlyStoppingStrategy``, so this is our own, on
BoTorch/GPyTorch. The model answers one question: a trial that is at val_bpb ``y`` after a
fraction ``p`` of its budget — where will it end? ``CurveStopper`` turns the answer into a stop
decision. How the design was arrived at, with the replays that chose it (what was tried and did
not help), is in docs/MEASUREMENTS.md, "Early stopping".

Model
-----
Every point of every finished curve is a training example: its features are the progress p,
the value y(p) and the slope over the last evaluation interval (how fast the curve is still
falling: two configurations at the same value now can end far apart), and its target is the drop
still to come, ``y(p) - y(1)`` (zero at p = 1). An exact GP (``SingleTaskGP``, learned noise)
maps features to drop, with the kernel ``RBF(p) × (constant + linear(y, slope)) + RBF(p, y,
slope)``: at each progress the drop is about linear in value and slope, with coefficients that
drift smoothly with progress, plus a smooth remainder. For a running trial at its latest
evaluation the posterior predictive (observation noise included: a final val_bpb is itself a
noisy measurement) gives the drop, so

    final ~ y_now - mean_drop + c(p) · sd_drop · T(ν(p)).

Why the drop and not the final value: curves of different configurations share their *shape*
far more than their level. Why not the drop per unit of remaining progress: dividing by 1 - p
turns evaluation noise near the end of a curve into large target noise.

Calibration, c(p) >= 1 and ν(p): maximum-likelihood hyper-parameters fitted to a handful of
curves make the GP overconfident, most of all early in a curve, and most of a campaign runs on
few finished curves (stopped trials never finish). At every hyper-parameter fit the finished
curves are split into (at most) ``calibration_folds`` folds, each fold held out in turn with the
hyper-parameters refitted on the rest, and the held-out examples scored; c(p) is the RMS of
those z-scores near progress p. Refitting matters: a held-out curve that helped choose the
hyper-parameters would judge itself too kindly. As c(p) is a variance scale estimated from ν(p)
held-out curves, the predictive is Student-t with ν(p) degrees of freedom rather than Normal.
With very few curves the calibration itself is a guess; the t's heavy tails and
``CurveStopper``'s refusal to judge a trial outside the finished curves are the guard there.

Cost: the hyper-parameters are refitted (L-BFGS on the marginal likelihood), together with the
calibration, only when the number of finished curves has grown by ``refit_growth`` since the
last fit; otherwise the GP is rebuilt on the new data with the previous hyper-parameters,
feature scaling and calibration (one Cholesky), and a decision with an unchanged set of finished
curves costs a posterior evaluation. ``bench/curve_bank.py`` prints the time per decision.

Threads: the GP's matrices are at most ``max_points`` square, far too small to gain from
intra-op threads, and beside a training subprocess on the same cores extra threads only
contend. So ``update`` and ``predict`` run with one torch thread and restore the previous
setting after; the campaign process runs no other torch work meanwhile (trials are subprocesses).
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
from linear_operator.utils.errors import NotPSDError
from scipy.special import stdtr

from autoresearch.config import EarlyStoppingConfig
from autoresearch.critic.curves import Curve, clean_curve, evaluation_noise, final_value, value_at
from autoresearch.critic.stopping import StopDecision, StopperContext, gate

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

    def __init__(
        self, *, refit_growth: float = 1.25, max_points: int = 160, min_progress: float = 0.0,
        calibration_folds: int = 8,
    ):
        self.refit_growth = refit_growth
        self.calibration_folds = calibration_folds
        self.max_points = max_points
        self.min_progress = min_progress
        self._model = None
        self._scaling: _Scaling | None = None
        self._fitted_on = 0  # number of curves at the last hyper-parameter fit
        self._signature: tuple | None = None
        # (progress, squared LOCO z, curve) per example
        self._calibration: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
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
        if refit and len(curves) >= 2:
            folds = groups % self.calibration_folds
            self._calibration = (x_raw[:, 0], _held_out_z2(self._model, train_x, train_y, folds), groups)
        self._model.eval()
        self._signature = signature

    def predict(self, partial: Curve) -> tuple[float, float]:
        """Predictive mean and scale of the final val_bpb of a curve that has reached ``partial[-1]``.

        The predictive is a Student-t with ``degrees_of_freedom`` at the curve's progress (the
        calibration factor in the scale is estimated from that many held-out curves).
        """
        if self._model is None or self._scaling is None:
            raise RuntimeError("LearningCurveModel.predict before update(): give it finished curves first")
        if len(partial) < 2:
            raise ValueError("LearningCurveModel.predict needs a partial curve with 2+ evaluations")
        s = self._scaling
        progress = partial[-1][0]
        x = self._features(_point_features(partial, len(partial) - 1)[None, :])
        with torch.no_grad(), warnings.catch_warnings(), _one_thread():
            warnings.simplefilter("ignore")
            post = self._model.posterior(x, observation_noise=True)
            drop = float(post.mean.squeeze()) * s.d_std + s.d_mean
            std = math.sqrt(max(float(post.variance.squeeze()), 1e-12)) * s.d_std
        return partial[-1][1] - drop, std * self.calibration(progress, progress - partial[-2][0])

    def calibration(self, progress: float, spacing: float) -> float:
        """Factor (>= 1) on the predictive std at ``progress``, from held-out z-scores.

        Maximum-likelihood hyper-parameters on a few dozen curves make a GP overconfident, and
        more so early in a curve, where the remaining drop varies most. At each hyper-parameter
        fit every fold of finished curves is held out in turn, the hyper-parameters refitted
        without it (``_held_out_z2``), and its examples within half an evaluation interval of
        ``progress`` are scored; the factor is the RMS of their z-scores, never below 1.
        """
        near = self._near(progress, spacing)
        if near is None:
            return 1.0
        return max(1.0, math.sqrt(float(np.mean(self._calibration[1][near]))))

    def degrees_of_freedom(self, progress: float, spacing: float) -> int:
        """How many held-out curves the calibration factor at ``progress`` rests on.

        The factor is a variance scale estimated from that many (nearly independent) curves, so
        the predictive is Student-t with as many degrees of freedom, not Normal: with 3 finished
        curves a final 4 predicted standard deviations below the mean still has a 1.4 % chance,
        where a Normal gives 0.003 %. Most of a campaign runs on a handful of finished curves.
        """
        near = self._near(progress, spacing)
        return max(1, len(np.unique(self._calibration[2][near]))) if near is not None else 1

    def _near(self, progress: float, spacing: float) -> np.ndarray | None:
        if self._calibration is None:
            return None
        p = self._calibration[0]
        near = np.abs(p - progress) <= max(spacing, 1e-3) / 2 + 1e-9
        if near.sum() < 3:
            near = p < 1.0 - 1e-9
        return near if near.any() else None

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


# Bounds on the GP's hyper-parameters, in units of the standardised inputs and targets.
_LENGTHSCALE_MIN, _LENGTHSCALE_MAX = 0.02, 30.0
_VARIANCE_MIN, _VARIANCE_MAX = 1e-4, 20.0


def _kernel():
    """Varying-coefficient linear kernel plus a smooth remainder, on inputs ``(p, y, slope)``.

    ``RBF(p) × (constant + linear(y, slope))``: the drop to come is, at each progress, a linear
    function of the current value and slope whose coefficients drift smoothly with progress, and
    away from the finished curves it extrapolates along that line. An RBF kernel alone (what this
    model used first) falls back to the finished curves' average drop there, so it predicted that
    a poor configuration would fall as far as the good ones had. The added RBF kernel over all
    three inputs takes the curvature the linear part misses.

    Every hyper-parameter is bounded (inputs and targets are standardised, so the bounds are
    wide): fitted to three or four curves without bounds, L-BFGS once drove length scales and
    variances to e^600 and to 0, and the posterior came out non-finite.
    """
    from gpytorch.constraints import Interval
    from gpytorch.kernels import ConstantKernel, LinearKernel, RBFKernel, ScaleKernel

    def rbf(**kw):
        return RBFKernel(lengthscale_constraint=Interval(_LENGTHSCALE_MIN, _LENGTHSCALE_MAX), **kw)

    def scaled(kernel):
        return ScaleKernel(kernel, outputscale_constraint=Interval(_VARIANCE_MIN, _VARIANCE_MAX))

    linear = ConstantKernel(constant_constraint=Interval(_VARIANCE_MIN, _VARIANCE_MAX)) + LinearKernel(
        ard_num_dims=2, active_dims=(1, 2), variance_constraint=Interval(_VARIANCE_MIN, _VARIANCE_MAX)
    )
    varying = scaled(rbf(active_dims=(0,))) * linear
    return varying + scaled(rbf(ard_num_dims=3, active_dims=(0, 1, 2)))


def _held_out_z2(
    model, train_x: torch.Tensor, train_y: torch.Tensor, folds: np.ndarray, *, maxiter: int = 30
) -> np.ndarray:
    """Squared z-score of every example under a GP fitted without its fold of curves.

    Each fold's curves are held out in turn and the hyper-parameters refitted on the rest
    (warm-started from the full fit, at most ``maxiter`` L-BFGS iterations) before the held-out
    examples are scored with the posterior predictive. Conditioning on the rest alone (closed
    form, no refit) is not enough with a handful of curves: the held-out curve helped choose the
    hyper-parameters that then judge it, and the z-scores come out too small.
    """
    state = model.state_dict()
    z2 = np.empty(len(folds))
    for g in np.unique(folds):
        out = torch.as_tensor(folds == g)
        held = _gp(train_x[~out], train_y[~out])
        held.load_state_dict(state)
        _fit(held, maxiter=maxiter, quiet=True)  # a failed refit keeps the full fit's hyper-parameters
        held.eval()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = held.posterior(train_x[out], observation_noise=True)
            resid = train_y[out].squeeze(-1) - post.mean.squeeze(-1)
            z2[out.numpy()] = (resid**2 / torch.clamp(post.variance.squeeze(-1), min=1e-12)).numpy()
    return z2


def _gp(train_x: torch.Tensor, train_y: torch.Tensor):
    from botorch.models import SingleTaskGP

    with warnings.catch_warnings():
        # We scale inputs and targets ourselves (frozen between refits); BoTorch's
        # "data not standardized" warnings are about exactly that choice.
        warnings.simplefilter("ignore")
        return SingleTaskGP(train_x, train_y, covar_module=_kernel(), outcome_transform=None, input_transform=None)


def _fit(model, maxiter: int = 100, *, quiet: bool = False) -> None:
    """One L-BFGS run on the marginal likelihood, bounded in iterations (no random restarts).

    BoTorch retries a fit from resampled hyper-parameters when the optimizer warns; with the
    linear kernel's (harmless) jitter warnings that multiplied a fit's time by up to five, and
    under a busy CPU a decision took seconds. One warm-started run is enough here.
    """
    from botorch.fit import fit_gpytorch_mll
    from gpytorch.mlls import ExactMarginalLogLikelihood

    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit_gpytorch_mll(
                mll, optimizer_kwargs={"options": {"maxiter": maxiter}}, max_attempts=1, warning_handler=lambda w: True
            )
        except Exception as err:  # noqa: BLE001 - a failed fit keeps the warm-start hyper-parameters
            (log.debug if quiet else log.warning)(
                "learning-curve GP fit failed (%s); using its initial hyper-parameters", err
            )


def _values_at(curves: list[Curve], progress: float) -> list[float]:
    """Each curve's val_bpb at ``progress`` (interpolated), for the curves that reach it."""
    return [v for v in (value_at(c, progress) for c in curves) if math.isfinite(v)]


def _leads_finished(partial: Curve, curves: list[Curve]) -> str | None:
    """Why the trial is ahead of every finished curve at its progress, or None.

    The model learns only from finished curves, and under early stopping those are a biased
    sample: the trials that looked good early. Ahead of every one of them the model has seen
    nothing like the trial and would extrapolate: measured on a ``bench/curve_bank.py`` bank, a
    model fitted to five poor finished curves predicted their flat finals for every later trial and
    stopped the best one (worst regret 0.376). No allowance for noise here: measured, one saved
    under a point and cost regret.
    """
    p1, v1 = partial[-1]
    values = _values_at(curves, p1)
    if values and v1 < min(values):
        return f"leads every finished curve at progress {p1:.2f} ({v1:.4f} < {min(values):.4f})"
    return None


def _falls_faster_than_finished(partial: Curve, curves: list[Curve], *, slope_slack: float = 0.0) -> str | None:
    """Why the trial falls faster than every finished curve over its last interval, or None.

    There too the model would extrapolate: a low-learning-rate configuration — the first bank's
    best, high early and steep late — looked median at progress 0.2 and was stopped at 0.2 or 0.3
    in 9 of 20 orders (mean regret 0.019, over the noise floor σ 0.016) while it was still falling
    faster than anything that had finished. Such a trial is judged by ``_best_case_final`` instead.

    Evaluation noise can make a trial look steepest late in a curve, where all slopes are small.
    So the slope must beat the steepest finished one by ``slope_slack`` — the caller passes
    ``slope_noise``·√2·σ/Δp, σ the evaluation noise measured on the finished curves, the noise of
    a difference of two evaluations over Δp. On the tuning banks (docs/MEASUREMENTS.md, "Early
    stopping") ``slope_noise`` 1 saved 0.1-2.6 points more at the same regret; 2 put the first
    bank's regret over its noise floor.
    """
    (p0, v0), (p1, v1) = partial[-2], partial[-1]
    slopes = [(a - b) / (p1 - p0) for a, b in ((value_at(c, p1), value_at(c, p0)) for c in curves)
              if math.isfinite(a - b)]
    slope = (v1 - v0) / (p1 - p0)
    if slopes and slope < min(slopes) - slope_slack:
        return (f"falls faster than every finished curve at progress {p1:.2f} "
                f"({slope:.3f} < {min(slopes):.3f} - {slope_slack:.3f} bpb per unit of progress)")
    return None


def _best_case_final(partial: Curve, curves: list[Curve], *, slope_slack: float = 0.0) -> float:
    """The lowest final val_bpb a trial falling faster than every finished curve can still reach.

    No model, only what the finished curves showed: for each, the drop still to come from the
    trial's progress, per unit of its descent rate there; the trial gets the largest such ratio
    any finished curve had, applied to its own descent rate made steeper by ``slope_slack`` (the
    slope's evaluation noise). A trial so far behind that even this cannot bring it to the target
    cannot win, however fast it falls now. A finished curve's descent counts as at least that
    noise: a descent measured within noise of zero gives no rate to divide by (a curve with no
    floor there would make every bound −∞ late in a campaign, where all descents are small).
    """
    (p0, v0), (p1, v1) = partial[-2], partial[-1]
    spacing = p1 - p0
    descent = max((v0 - v1) / spacing + slope_slack, 0.0)
    ratio = 0.0
    for curve in curves:
        before, now, final = value_at(curve, p0), value_at(curve, p1), final_value(curve)
        if math.isfinite(before) and math.isfinite(now):
            its_descent = max((before - now) / spacing, slope_slack, 1e-9)
            ratio = max(ratio, max(now - final, 0.0) / its_descent)
    return v1 - ratio * descent


def _behind_median(partial: Curve, curves: list[Curve]) -> bool:
    """Is the trial worse than the median of the finished curves at its progress?

    The percentile rule's question; here it only loosens the model's threshold (``delta_behind``).
    """
    p1, v1 = partial[-1]
    values = _values_at(curves, p1)
    return len(values) >= 2 and v1 > float(np.median(values))


class CurveStopper:
    """Stop when the learning-curve model gives the trial little chance of beating the incumbent.

    ``P(final < incumbent - margin - noise_margin·σ) < delta`` under the model's Student-t
    predictive (``delta_behind`` for a trial already worse than the median of the finished curves
    at its progress), after ``min_progress`` and once ``min_curves`` trials have finished. Without an
    incumbent, the best finished final val_bpb is used. σ is the campaign's noise floor when the
    caller gives one (``StopperContext.noise_std``), else the evaluation noise measured on the
    finished curves (``evaluation_noise``): the margin is in the campaign's own units, so the rule
    carries from one space, model or budget to another. Outside the finished curves at its
    progress the model would be extrapolating, so it does not judge: a trial ahead of all of
    them runs on (``_leads_finished``); one falling faster than all of them by more than
    ``slope_noise`` standard deviations of a slope's evaluation noise
    (``_falls_faster_than_finished``) is stopped only if even the best remaining drop the
    finished curves showed for such a descent leaves it above the target (``_best_case_final``).
    Curves of earlier campaigns on the same space (``StopperContext.prior_curves``) join the
    finished ones as evidence for the model, the noise and those rules, but never set the
    incumbent.
    """

    name = "curve"

    def __init__(self, cfg: EarlyStoppingConfig, *, context: StopperContext | None = None, refit_growth: float = 1.25):
        self.cfg = cfg
        self.context = context or StopperContext()
        self.refit_growth = refit_growth
        self.model = self._new_model()
        self._noise: tuple[int, float] | None = None  # (number of curves, σ measured on them)

    def _new_model(self) -> LearningCurveModel:
        return LearningCurveModel(refit_growth=self.refit_growth, min_progress=self.cfg.min_progress)

    def noise_std(self, curves: list[Curve]) -> float:
        """σ for the noise margin: the caller's noise floor, else measured on ``curves`` (0 when unmeasurable)."""
        if self.context.noise_std is not None:
            return self.context.noise_std
        return self.evaluation_noise(curves)

    def evaluation_noise(self, curves: list[Curve]) -> float:
        """Noise of one evaluation, measured on ``curves`` (0 when unmeasurable); cached per curve count."""
        if self._noise is None or self._noise[0] != len(curves):
            sigma = evaluation_noise(curves)
            self._noise = (len(curves), sigma if math.isfinite(sigma) else 0.0)
        return self._noise[1]

    def should_stop(self, trial_id, partial, finished, incumbent) -> StopDecision:
        partial = clean_curve(partial)
        finished = {k: clean_curve(v) for k, v in finished.items() if k != trial_id}
        if (keep := gate(self.cfg, partial, finished)) is not None:
            return keep
        own = [c for c in finished.values() if len(c) >= 2]
        if len(own) < max(self.cfg.min_curves, 1):
            return StopDecision(stop=False, reason=f"only {len(own)} finished curves with 2+ evaluations")
        if incumbent is None or not math.isfinite(incumbent):
            incumbent = min(final_value(c) for c in own)
        if len(partial) < 2:
            return StopDecision(stop=False, reason="curve: needs two evaluations to read a slope")
        curves = own + list(self.context.prior_curves)
        spacing = partial[-1][0] - partial[-2][0]
        evaluation = self.evaluation_noise(curves)
        # A slope over one interval Δp carries the noise of two evaluations, √2·σ/Δp.
        slope_slack = self.cfg.slope_noise * math.sqrt(2.0) * evaluation / max(spacing, 1e-6)
        sigma = self.noise_std(curves) if self.cfg.noise_margin else 0.0
        target = incumbent - self.cfg.margin - self.cfg.noise_margin * sigma
        if (leads := _leads_finished(partial, curves)) is not None:
            return StopDecision(stop=False, reason=f"curve: {leads}; not judged by extrapolation")
        if (steeper := _falls_faster_than_finished(partial, curves, slope_slack=slope_slack)) is not None:
            best_case = _best_case_final(partial, curves, slope_slack=slope_slack)
            if best_case > target:
                return StopDecision(
                    stop=True,
                    reason=f"curve: {steeper}, but even at the best remaining drop the finished curves "
                    f"showed it ends at {best_case:.4f} > {target:.4f}",
                )
            return StopDecision(stop=False, reason=f"curve: {steeper}; not judged by extrapolation")
        progress = partial[-1][0]
        try:
            self.model.update(curves)
            mean, std = self.model.predict(partial)
            if not (math.isfinite(mean) and math.isfinite(std)):
                raise FloatingPointError(f"posterior {mean} ± {std}")
        except (torch.linalg.LinAlgError, NotPSDError, FloatingPointError) as err:
            # A numerical failure of the critic must not end the campaign or stop a trial; the
            # next decision fits a fresh model instead of warm-starting from this one.
            log.warning("curve: learning-curve model failed (%s: %s); keeping trial %s running and refitting "
                        "from scratch next time", type(err).__name__, err, trial_id)
            self.model = self._new_model()
            return StopDecision(stop=False, reason=f"curve: model failed ({type(err).__name__}); kept running")
        dof = self.model.degrees_of_freedom(progress, progress - partial[-2][0])
        p_better = float(stdtr(dof, (target - mean) / std))
        behind = self.cfg.delta_behind > self.cfg.delta and _behind_median(partial, curves)
        delta, which = (self.cfg.delta_behind, "delta_behind, behind the finished curves' median") if behind \
            else (self.cfg.delta, "delta")
        stop = p_better < delta
        verb = "stop" if stop else "keep"
        return StopDecision(
            stop=stop,
            reason=f"curve: predicted final {mean:.4f} ± {std:.4f} (t, {dof} dof), P(< {target:.4f}) = {p_better:.3f} "
            f"({verb}: {which} {delta:g}, noise σ {sigma:.4f}) at progress {progress:.2f}",
            predicted=mean,
            p_better=p_better,
        )
