"""The one pipeline that turns re-runs into verdicts; the campaign and the benchmarks share it.

noise floor (baseline repeats) → per-hypothesis comparison (K fresh seeds against the baseline
repeats) → Benjamini–Hochberg across *every* hypothesis assessed so far → verdict.

Call it again with the whole campaign's candidates each time a new one is validated: BH is a
property of the whole family of tests, so earlier verdicts may change as the family grows (a
discovery made among 3 tests can become inconclusive among 30). Pass only *fresh* re-runs as a
candidate's values, never the run that made it look promising: that run was selected for being
good and would bias the effect upward (the winner's curse).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable, Mapping, Sequence

from autoresearch.config import CriticConfig
from autoresearch.critic.stats import (
    Comparison,
    NoiseFloor,
    benjamini_hochberg,
    classify,
    compare,
    noise_floor,
)


# critic.test.kind -> (the statistics' test, whether it pairs runs that share a seed)
_TESTS = {"welch": ("welch", False), "paired-t": ("welch", True), "bootstrap": ("bootstrap", False),
          "paired-bootstrap": ("bootstrap", True)}


@dataclass(frozen=True, kw_only=True)
class Assessment:
    """A hypothesis' verdict with the evidence behind it (what the store and report keep)."""

    hypothesis: Hashable
    verdict: str  # validated | rejected | inconclusive
    comparison: Comparison
    q_value: float  # Benjamini–Hochberg adjusted p-value across the family assessed together
    noise: NoiseFloor

    @property
    def effect(self) -> float:
        return self.comparison.effect

    @property
    def effect_sigmas(self) -> float:
        """Effect in units of the noise floor σ (nan when the baseline never varied)."""
        return self.comparison.effect / self.noise.std if self.noise.std > 0 else math.nan

    def to_dict(self) -> dict:
        c = self.comparison
        return {
            "hypothesis": self.hypothesis,
            "verdict": self.verdict,
            "effect": c.effect,
            "ci_low": c.ci_low,
            "ci_high": c.ci_high,
            "ci_level": c.ci_level,
            "p_value": c.p_value,
            "q_value": self.q_value,
            "test": c.test,
            "n_candidate": c.n_candidate,
            "n_baseline": c.n_baseline,
            "noise_mean": self.noise.mean,
            "noise_std": self.noise.std,
            "noise_n": self.noise.n,
            "reason": c.reason,
        }


def assess(
    candidates: Mapping[Hashable, Sequence[float]],
    baseline: Sequence[float],
    cfg: CriticConfig,
    *,
    paired: bool = False,
    seed: int = 0,
) -> list[Assessment]:
    """Verdicts for every candidate, in the mapping's order.

    ``baseline`` holds the baseline's val_bpb over its seeds; ``candidates[h]`` the val_bpb of
    hypothesis ``h`` re-run with K seeds. ``paired=True`` says that ``candidates[h][i]`` and
    ``baseline[i]`` share a seed; ``cfg.test.kind`` decides whether the test uses it (``paired-t``,
    ``paired-bootstrap``) or not (``welch``, ``bootstrap``), and pairs are formed only when the
    sizes match.
    """
    if cfg.test.kind not in _TESTS:
        raise ValueError(f"critic.test.kind must be one of {sorted(_TESTS)}, got {cfg.test.kind!r}")
    noise = noise_floor(baseline)
    keys = list(candidates)
    test, pair = _TESTS[cfg.test.kind]
    comparisons = [
        compare(candidates[k], baseline, test=test, alpha=cfg.test.alpha, paired=paired and pair, seed=seed + i)
        for i, k in enumerate(keys)
    ]
    adjusted = benjamini_hochberg([c.p_value for c in comparisons], cfg.fdr)
    return [
        Assessment(
            hypothesis=k,
            verdict=classify(c, qv, fdr=cfg.fdr, min_effect=cfg.min_effect, noise_std=noise.std),
            comparison=c,
            q_value=qv,
            noise=noise,
        )
        for k, c, (_, qv) in zip(keys, comparisons, adjusted)
    ]
