"""Noise-aware statistics: is a candidate's val_bpb really better than the baseline's?

A single lucky seed is the most common false discovery in small-model research, so nothing is
called a discovery from one run. The critic compares K fresh re-runs of a candidate with the
baseline's repeats and controls the false discovery rate across every hypothesis a campaign
tested.

Conventions
-----------
* Lower val_bpb is better. ``effect = mean(baseline) - mean(candidate)``, so a positive effect
  means the candidate is better, in bpb.
* ``p_value`` is **one-sided**, for the alternative "the candidate is better" (effect > 0): we
  only ever want to *keep* improvements, and a one-sided test spends all of alpha on them.
* ``(ci_low, ci_high)`` is a **two-sided interval at level 1 - 2·alpha** (90 % for alpha = 0.05),
  and ``Comparison.ci_level`` says which, so a report can label it truthfully. Its lower end is
  exactly the one-sided (1 - alpha) lower confidence bound, so "the CI excludes 0" and
  "p < alpha" are the same statement and the verdict never contradicts itself; its upper end is
  the one-sided (1 - alpha) upper bound used to reject.
* Welch's t-test (unequal variances, via ``scipy.stats``) is the default; with ``paired=True`` and
  equal sample sizes the runs are paired by seed (candidate seed i against baseline seed i) and a
  paired t-test is used instead (``critic.test.kind`` decides which, in ``assess``). The bootstrap
  alternative resamples (pairs of) runs with ``scipy.stats.bootstrap``: percentile CI of the
  difference of means, and a p-value from resampling both samples shifted to a common mean (the
  null). With 3 runs a bootstrap has only a handful of distinct resamples: prefer the t-test
  unless K is at least ~8.
* Fewer than ``MIN_RUNS`` (3) runs on either side are not evidence: a sample standard deviation
  from two runs can come out anywhere (issue 12: two quickstart seeds once gave σ = 0.0009, and a
  third moved it to 0.11), so such a comparison is computed but carries a ``reason`` and is never
  validated or rejected, only ``inconclusive``.

Decision rule (``classify``)
----------------------------
Given a comparison with at least ``MIN_RUNS`` runs on each side, its Benjamini–Hochberg q-value
across all hypotheses of the campaign, the campaign's FDR level, the smallest effect worth having
(``min_effect``) and the noise floor σ:

* **validated** — q ≤ fdr (BH rejects the null), effect > max(min_effect, 0) and ci_low > 0.
* **rejected** — ci_high < min_effect (even the optimistic end of the CI is too small: with
  min_effect = 0 that means significantly worse), or the candidate is clearly worse: its mean is
  more than one noise σ above the baseline's (effect < -σ).
* **inconclusive** — anything else (always, below ``MIN_RUNS`` runs a side): not enough evidence
  either way; more seeds might settle it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Literal, Sequence

import numpy as np
from scipy import stats as sps

log = logging.getLogger(__name__)

VALIDATED = "validated"
REJECTED = "rejected"
INCONCLUSIVE = "inconclusive"
VERDICTS = (VALIDATED, REJECTED, INCONCLUSIVE)

TestName = Literal["welch", "bootstrap"]

# Below this many runs on either side a comparison is never a verdict (see the module docstring).
MIN_RUNS = 3


@dataclass(frozen=True, kw_only=True)
class NoiseFloor:
    """Spread of the baseline's val_bpb over seeds: what "no change" looks like."""

    mean: float
    std: float  # sample standard deviation (ddof=1)
    n: int


def noise_floor(values: Sequence[float]) -> NoiseFloor:
    """Noise floor from baseline repeats that differ only in their seed (needs at least 2)."""
    x = _finite_array(values, "baseline repeats")
    if x.size < 2:
        raise ValueError(
            f"noise floor needs at least 2 baseline repeats, got {x.size}: set critic.noise_seeds >= 2"
        )
    return NoiseFloor(mean=float(x.mean()), std=float(x.std(ddof=1)), n=int(x.size))


def interval_level(alpha: float) -> float:
    """The two-sided level of the CI reported at per-test level ``alpha``: 1 - 2·alpha."""
    return 1.0 - 2.0 * alpha


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """Effect of a candidate against the baseline (positive = candidate better, in bpb)."""

    effect: float
    ci_low: float  # two-sided interval at level ci_level (see module docstring)
    ci_high: float
    p_value: float  # one-sided, alternative: candidate better
    n_candidate: int
    n_baseline: int
    test: str  # welch | paired-t | bootstrap | paired-bootstrap
    ci_level: float = math.nan  # two-sided level of (ci_low, ci_high): interval_level(alpha); nan if unknown
    reason: str = ""  # why this comparison cannot give a verdict (too few runs); "" when it can

    @property
    def enough_runs(self) -> bool:
        """Whether both sides have the ``MIN_RUNS`` runs a verdict needs."""
        return min(self.n_candidate, self.n_baseline) >= MIN_RUNS


def compare(
    candidate: Sequence[float],
    baseline: Sequence[float],
    *,
    test: TestName = "welch",
    alpha: float = 0.05,
    paired: bool = False,
    seed: int = 0,
    resamples: int = 10_000,
) -> Comparison:
    """Compare a candidate's val_bpb values with the baseline's (see the module docstring).

    ``paired`` pairs ``candidate[i]`` with ``baseline[i]`` (same seed); it needs equal sizes and
    falls back to the unpaired test, with a log line, when they differ. ``seed`` and
    ``resamples`` only matter for the bootstrap.
    """
    c = _finite_array(candidate, "candidate values")
    b = _finite_array(baseline, "baseline values")
    if c.size < 2 or b.size < 2:
        raise ValueError(
            f"a comparison needs at least 2 candidate and 2 baseline values, got {c.size} and {b.size}: "
            "raise critic.validation_seeds / critic.noise_seeds"
        )
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
    if paired and c.size != b.size:
        log.info("paired comparison needs equal sizes (%d vs %d): using the unpaired test", c.size, b.size)
        paired = False
    if test == "welch":
        result = _t_test(c, b, alpha=alpha, paired=paired)
    elif test == "bootstrap":
        result = _bootstrap(c, b, alpha=alpha, paired=paired, seed=seed, resamples=resamples)
    else:
        raise ValueError(f"critic.test.kind must be 'welch' or 'bootstrap', got {test!r}")
    if not result.enough_runs:
        reason = (f"{c.size} candidate and {b.size} baseline runs: a verdict needs at least {MIN_RUNS} on each "
                  "side (raise critic.validation_seeds / critic.noise_seeds)")
        log.info("comparison left inconclusive: %s", reason)
        result = replace(result, reason=reason)
    return result


def _finite_array(values: Sequence[float], what: str) -> np.ndarray:
    x = np.asarray(list(values), dtype=float)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} contain NaN or inf ({x.tolist()}): drop crashed or diverged runs first")
    return x


def _t_test(c: np.ndarray, b: np.ndarray, *, alpha: float, paired: bool) -> Comparison:
    effect = float(b.mean() - c.mean())
    if paired:
        diff = b - c
        if np.ptp(diff) == 0.0:
            return _degenerate(effect, c, b, "paired-t", alpha)
        result = sps.ttest_rel(b, c)
        name = "paired-t"
    else:
        if np.ptp(c) == 0.0 and np.ptp(b) == 0.0:
            return _degenerate(effect, c, b, "welch", alpha)
        result = sps.ttest_ind(b, c, equal_var=False)
        name = "welch"
    ci = result.confidence_interval(confidence_level=interval_level(alpha))
    p_one_sided = sps.t.sf(result.statistic, result.df)  # alternative: b > c, the candidate is better
    return Comparison(
        effect=effect,
        ci_low=float(ci.low),
        ci_high=float(ci.high),
        p_value=float(p_one_sided),
        n_candidate=int(c.size),
        n_baseline=int(b.size),
        test=name,
        ci_level=interval_level(alpha),
    )


def _degenerate(effect: float, c: np.ndarray, b: np.ndarray, name: str, alpha: float) -> Comparison:
    # Zero variance (e.g. fully deterministic runs): a t statistic is undefined. Report the
    # difference as exact but claim no evidence, so such a result can never be validated.
    log.warning("%s: all differences are identical (zero variance); reporting p = 1", name)
    return Comparison(
        effect=effect, ci_low=effect, ci_high=effect, p_value=1.0,
        n_candidate=int(c.size), n_baseline=int(b.size), test=name, ci_level=interval_level(alpha),
    )


def _bootstrap(
    c: np.ndarray, b: np.ndarray, *, alpha: float, paired: bool, seed: int, resamples: int
) -> Comparison:
    """Percentile CI of mean(b) - mean(c) and a p-value from the same resampling under the null.

    ``scipy.stats.bootstrap`` resamples runs (or, paired, seeds: one index for both samples). The
    null distribution is the bootstrap distribution of the same statistic after each sample is
    shifted so that the two means agree (paired: the differences re-centred on zero), which keeps
    each sample's own spread; p = (1 + #{null >= effect}) / (resamples + 1).
    """
    rng = np.random.default_rng(seed)
    effect = float(b.mean() - c.mean())
    c, b = _inflate(c), _inflate(b)
    if paired:
        d = b - c
        data, null_data = (d,), (d - d.mean(),)
        statistic = _mean
        name = "paired-bootstrap"
    else:
        pooled = np.concatenate([c, b]).mean()
        data = (b, c)
        null_data = (b - b.mean() + pooled, c - c.mean() + pooled)  # both at the pooled mean: the null
        statistic = _mean_difference
        name = "bootstrap"
    level = interval_level(alpha)
    kw = dict(n_resamples=resamples, confidence_level=level, method="percentile", vectorized=True, rng=rng)
    ci = sps.bootstrap(data, statistic, **kw).confidence_interval
    null = sps.bootstrap(null_data, statistic, **kw).bootstrap_distribution
    p = (1.0 + np.count_nonzero(null >= effect)) / (resamples + 1.0)
    return Comparison(
        effect=effect,
        ci_low=float(ci.low),
        ci_high=float(ci.high),
        p_value=float(p),
        n_candidate=int(c.size),
        n_baseline=int(b.size),
        test=name,
        ci_level=level,
    )


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return x.mean(axis=axis)


def _mean_difference(b: np.ndarray, c: np.ndarray, axis: int = -1) -> np.ndarray:
    return b.mean(axis=axis) - c.mean(axis=axis)


def _inflate(x: np.ndarray) -> np.ndarray:
    """Deviations widened by sqrt(n / (n - 1)): resampling n values underestimates the variance of
    their mean by (n - 1) / n, which makes a plain bootstrap optimistic at the K of a campaign."""
    return x.mean() + (x - x.mean()) * math.sqrt(x.size / (x.size - 1))


def benjamini_hochberg(p_values: Sequence[float], q: float) -> list[tuple[bool, float]]:
    """Benjamini–Hochberg step-up at FDR level ``q``: ``(rejected, q_value)`` per p-value, in order.

    The q-value (``scipy.stats.false_discovery_control``, method ``bh``) of a hypothesis is the
    smallest FDR level at which it would be rejected (``min_{j >= i} p_(j) · m / j`` over the sorted
    p-values, capped at 1), so ``rejected == (q_value <= q)``.
    """
    p = np.asarray(list(p_values), dtype=float)
    if p.size == 0:
        return []
    if np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    qv = sps.false_discovery_control(p, method="bh")
    return [(bool(v <= q), float(v)) for v in qv]


def classify(
    comparison: Comparison,
    q_value: float,
    *,
    fdr: float,
    min_effect: float,
    noise_std: float,
) -> str:
    """``validated``, ``rejected`` or ``inconclusive`` by the rule in the module docstring."""
    c = comparison
    if not c.enough_runs:
        return INCONCLUSIVE  # too few runs to be evidence either way (Comparison.reason says so)
    if q_value <= fdr and c.effect > max(min_effect, 0.0) and c.ci_low > 0.0:
        return VALIDATED
    clearly_worse = math.isfinite(noise_std) and c.effect < -noise_std
    if c.ci_high < min_effect or clearly_worse:
        return REJECTED
    return INCONCLUSIVE
