"""Critic statistics: comparisons, Benjamini–Hochberg, verdicts, and the assess pipeline (A/A included)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from autoresearch.config import CriticConfig, StatTestConfig
from autoresearch.critic import (
    INCONCLUSIVE,
    MIN_RUNS,
    REJECTED,
    VALIDATED,
    Comparison,
    assess,
    benjamini_hochberg,
    classify,
    compare,
    interval_level,
    noise_floor,
)


def test_noise_floor_is_mean_and_sample_std():
    nf = noise_floor([1.50, 1.52, 1.49, 1.51])
    assert nf.n == 4
    assert nf.mean == pytest.approx(1.505)
    assert nf.std == pytest.approx(np.std([1.50, 1.52, 1.49, 1.51], ddof=1))


def test_noise_floor_needs_two_repeats_and_names_the_setting():
    with pytest.raises(ValueError, match="critic.noise_seeds"):
        noise_floor([1.5])


def test_welch_effect_sign_one_sided_p_and_ci_by_hand():
    baseline = [1.60, 1.62, 1.61, 1.63]
    candidate = [1.55, 1.57, 1.56]
    c = compare(candidate, baseline, test="welch", alpha=0.05)
    assert c.test == "welch"
    assert c.effect == pytest.approx(np.mean(baseline) - np.mean(candidate))  # positive: candidate better
    vb, vc = np.var(baseline, ddof=1) / 4, np.var(candidate, ddof=1) / 3
    se = math.sqrt(vb + vc)
    df = (vb + vc) ** 2 / (vb**2 / 3 + vc**2 / 2)
    t = c.effect / se
    assert c.p_value == pytest.approx(sps.t.sf(t, df))  # one-sided: candidate better
    half = sps.t.ppf(0.95, df) * se  # two-sided CI at level 1 - 2·alpha
    assert (c.ci_low, c.ci_high) == (pytest.approx(c.effect - half), pytest.approx(c.effect + half))
    assert (c.n_candidate, c.n_baseline) == (3, 4)


def test_worse_candidate_gets_a_large_one_sided_p():
    c = compare([1.70, 1.71, 1.69], [1.60, 1.61, 1.59], test="welch", alpha=0.05)
    assert c.effect < 0 and c.p_value > 0.95 and c.ci_high < 0


def test_paired_t_uses_seed_pairs_and_falls_back_when_sizes_differ():
    baseline = [1.60, 1.70, 1.65]
    candidate = [1.59, 1.688, 1.641]  # the same seed noise, about 0.01 better each time
    paired = compare(candidate, baseline, test="welch", alpha=0.05, paired=True)
    assert paired.test == "paired-t"
    assert paired.effect == pytest.approx(0.010333, abs=1e-6)
    assert paired.p_value < 0.01 and paired.ci_low > 0
    unpaired = compare(candidate, baseline, test="welch", alpha=0.05)
    assert unpaired.p_value > 0.3  # the seed noise swamps the effect without pairing
    fallback = compare(candidate, baseline + [1.62], test="welch", alpha=0.05, paired=True)
    assert fallback.test == "welch"


def test_identical_runs_are_never_evidence():
    # A pure seed repeat of a deterministic run: zero variance, no t statistic, no discovery.
    c = compare([1.6, 1.6, 1.6], [1.6, 1.6, 1.6], test="welch", alpha=0.05, paired=True)
    assert c.p_value == 1.0 and c.effect == 0.0


def test_bootstrap_ci_and_p_value_follow_the_data():
    rng = np.random.default_rng(0)
    baseline = list(1.60 + 0.01 * rng.normal(size=10))
    better = list(1.55 + 0.01 * rng.normal(size=10))
    c = compare(better, baseline, test="bootstrap", alpha=0.05, seed=1, resamples=4000)
    assert c.test == "bootstrap"
    assert c.ci_low < c.effect < c.ci_high
    assert c.ci_low > 0 and c.p_value < 0.01
    same = compare(list(1.60 + 0.01 * rng.normal(size=10)), baseline, test="bootstrap", alpha=0.05, seed=1)
    assert same.p_value > 0.01
    assert compare(better, baseline, test="bootstrap", alpha=0.05, seed=1, resamples=4000) == c  # seeded


def test_paired_bootstrap_resamples_seeds_not_runs():
    rng = np.random.default_rng(2)
    seed_noise = 0.02 * rng.normal(size=10)  # what a seed does to both configurations
    baseline = list(1.60 + seed_noise + 0.002 * rng.normal(size=10))
    candidate = list(1.595 + seed_noise + 0.002 * rng.normal(size=10))
    paired = compare(candidate, baseline, test="bootstrap", alpha=0.05, paired=True, seed=3)
    assert paired.test == "paired-bootstrap"
    assert paired.ci_low > 0 and paired.p_value < 0.01
    unpaired = compare(candidate, baseline, test="bootstrap", alpha=0.05, seed=3)
    assert unpaired.ci_low < 0 and unpaired.p_value > 0.1  # the seed noise swamps it without pairing


def test_the_interval_reports_its_own_level():
    """The CI is two-sided at 1 - 2·alpha (90 % at alpha = 0.05), and the comparison says so."""
    assert interval_level(0.05) == pytest.approx(0.90)
    baseline, candidate = [1.60, 1.62, 1.61, 1.63], [1.55, 1.57, 1.56]
    for alpha in (0.05, 0.025):
        for test in ("welch", "bootstrap"):
            c = compare(candidate, baseline, test=test, alpha=alpha)
            assert c.ci_level == pytest.approx(1 - 2 * alpha)
        welch = compare(candidate, baseline, test="welch", alpha=alpha)
        ci = sps.ttest_ind(baseline, candidate, equal_var=False).confidence_interval(welch.ci_level)
        assert (welch.ci_low, welch.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    [a] = assess({"h": candidate + [1.56]}, baseline, CriticConfig(test=StatTestConfig(alpha=0.025)))
    assert a.to_dict()["ci_level"] == pytest.approx(0.95)


def test_two_runs_a_side_are_never_a_verdict():
    """A floor and a verdict from two runs are not evidence: inconclusive, with the reason."""
    assert MIN_RUNS == 3
    kw = dict(fdr=0.05, min_effect=0.0, noise_std=0.01)
    better = compare([1.50, 1.501], [1.60, 1.602], test="welch", alpha=0.05)
    assert better.p_value < 0.05 and better.ci_low > 0  # the t-test alone would call it a discovery
    assert "at least 3" in better.reason and not better.enough_runs
    assert classify(better, better.p_value, **kw) == INCONCLUSIVE
    worse = compare([1.70, 1.701], [1.60, 1.602], test="welch", alpha=0.05, paired=True)
    assert classify(worse, 1.0, **kw) == INCONCLUSIVE  # nor rejected on two runs
    three = compare([1.50, 1.501, 1.499], [1.60, 1.602, 1.601], test="welch", alpha=0.05)
    assert three.reason == "" and three.enough_runs
    assert classify(three, three.p_value, **kw) == VALIDATED
    [a] = assess({"h": [1.50, 1.501]}, [1.60, 1.602], CriticConfig(noise_seeds=2, validation_seeds=2), paired=True)
    assert a.verdict == INCONCLUSIVE and "at least 3" in a.to_dict()["reason"]


def test_critic_test_decides_whether_seed_pairs_are_used():
    """The campaign always hands over runs paired by seed; critic.test.kind says whether to use the pairing."""
    baseline, candidate = [1.60, 1.70, 1.65], [1.59, 1.688, 1.641]
    for test, expected in [("welch", "welch"), ("paired-t", "paired-t"), ("bootstrap", "bootstrap"),
                           ("paired-bootstrap", "paired-bootstrap")]:
        [a] = assess({"h": candidate}, baseline, CriticConfig(test=StatTestConfig(kind=test)), paired=True)
        assert a.comparison.test == expected
    with pytest.raises(ValueError, match=r"critic\.test\.kind"):
        assess({"h": candidate}, baseline, CriticConfig(test=StatTestConfig(kind="ttest")), paired=True)
    assert CriticConfig(test=StatTestConfig(kind="paired-t")).problems() == []


def test_benjamini_hochberg_matches_the_step_up_definition():
    rng = np.random.default_rng(4)
    p = rng.uniform(size=40) ** 3
    m, order = p.size, np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    expected = np.empty(m)
    expected[order] = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    out = benjamini_hochberg(p, 0.1)
    assert [q for _, q in out] == pytest.approx(expected.tolist())
    assert [r for r, _ in out] == [q <= 0.1 for q in expected]
    with pytest.raises(ValueError, match="p-values"):
        benjamini_hochberg([0.1, float("nan")], 0.05)


def test_compare_refuses_bad_input_with_a_fix():
    with pytest.raises(ValueError, match="validation_seeds"):
        compare([1.5], [1.5, 1.6], test="welch", alpha=0.05)
    with pytest.raises(ValueError, match="crashed"):
        compare([1.5, float("nan")], [1.5, 1.6], test="welch", alpha=0.05)
    with pytest.raises(ValueError, match=r"critic\.test\.kind"):
        compare([1.5, 1.6], [1.5, 1.6], test="ttest", alpha=0.05)  # type: ignore[arg-type]


def test_benjamini_hochberg_hand_example():
    # Sorted p: 0.005, 0.01, 0.03, 0.04 -> p·m/rank: 0.02, 0.02, 0.04, 0.04 (already monotone).
    out = benjamini_hochberg([0.01, 0.04, 0.03, 0.005], 0.05)
    assert [q for _, q in out] == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert [r for r, _ in out] == [True, True, True, True]
    # Step-up: 0.04 alone would fail 0.05/3, but the largest p passes at rank 3, carrying the rest.
    out = benjamini_hochberg([0.04, 0.045, 0.046], 0.05)
    assert [q for _, q in out] == pytest.approx([0.046, 0.046, 0.046])
    assert all(r for r, _ in out)
    out = benjamini_hochberg([0.01, 0.02, 0.03, 0.5], 0.05)
    assert [r for r, _ in out] == [True, True, True, False]
    assert out[3][1] == pytest.approx(0.5)
    assert benjamini_hochberg([], 0.05) == []


def _cmp(effect: float, low: float, high: float, p: float = 0.01) -> Comparison:
    return Comparison(effect=effect, ci_low=low, ci_high=high, p_value=p, n_candidate=3, n_baseline=3, test="welch")


def test_classify_decision_rule():
    kw = dict(fdr=0.05, min_effect=0.0, noise_std=0.01)
    assert classify(_cmp(0.02, 0.01, 0.03), 0.01, **kw) == VALIDATED
    assert classify(_cmp(0.02, 0.01, 0.03), 0.2, **kw) == INCONCLUSIVE  # BH did not reject
    assert classify(_cmp(0.02, -0.001, 0.04), 0.01, **kw) == INCONCLUSIVE  # CI touches 0
    assert classify(_cmp(0.02, 0.01, 0.03), 0.01, fdr=0.05, min_effect=0.025, noise_std=0.01) == INCONCLUSIVE
    assert classify(_cmp(0.02, 0.01, 0.03), 0.01, fdr=0.05, min_effect=0.05, noise_std=0.01) == REJECTED
    assert classify(_cmp(-0.03, -0.05, -0.01), 1.0, **kw) == REJECTED  # significantly worse
    assert classify(_cmp(-0.015, -0.04, 0.01), 1.0, **kw) == REJECTED  # worse by more than σ
    assert classify(_cmp(-0.005, -0.03, 0.02), 1.0, **kw) == INCONCLUSIVE


def test_assess_aa_hypotheses_do_not_validate():
    """200 A/A hypotheses (only the seed differs) through the campaign's own pipeline."""
    rng = np.random.default_rng(7)
    cfg = CriticConfig()  # defaults: Welch, alpha 0.05, BH at 5 %
    baseline = list(1.6 + 0.01 * rng.normal(size=cfg.noise_seeds))
    candidates = {f"aa{i}": list(1.6 + 0.01 * rng.normal(size=cfg.validation_seeds)) for i in range(200)}
    verdicts = assess(candidates, baseline, cfg)
    validated = sum(a.verdict == VALIDATED for a in verdicts)
    assert validated <= 0.05 * len(verdicts)
    assert [a.hypothesis for a in verdicts] == list(candidates)


def test_assess_aa_rate_over_many_independent_campaigns():
    """Across 200 one-hypothesis campaigns (fresh baseline each), A/A validates at most ~alpha."""
    rng = np.random.default_rng(11)
    cfg = CriticConfig()
    hits = 0
    for _ in range(200):
        baseline = list(1.6 + 0.01 * rng.normal(size=cfg.noise_seeds))
        hits += assess({"aa": list(1.6 + 0.01 * rng.normal(size=cfg.validation_seeds))}, baseline, cfg)[0].verdict == VALIDATED
    assert hits <= 10  # 5 % of 200


def test_assess_planted_three_sigma_effect_validates():
    rng = np.random.default_rng(3)
    cfg = CriticConfig(noise_seeds=5, validation_seeds=5)
    sigma = 0.01
    hits = 0
    for trial in range(100):
        baseline = list(1.6 + sigma * rng.normal(size=5))
        out = assess({"planted": list(1.6 - 3 * sigma + sigma * rng.normal(size=5))}, baseline, cfg)[0]
        hits += out.verdict == VALIDATED
        if trial == 0:
            assert out.effect_sigmas > 0 and out.noise.n == 5
            assert out.to_dict()["verdict"] == out.verdict
    assert hits >= 85


def test_assess_keeps_bh_across_the_family():
    """A discovery that stands alone can lose its validation among many null tests."""
    rng = np.random.default_rng(5)
    cfg = CriticConfig()
    baseline = [1.600, 1.610, 1.605]
    borderline = [1.590, 1.592, 1.594]
    alone = assess({"h": borderline}, baseline, cfg)[0]
    family = {"h": borderline, **{f"aa{i}": list(1.605 + 0.005 * rng.normal(size=3)) for i in range(40)}}
    among = assess(family, baseline, cfg)[0]
    assert alone.comparison == among.comparison
    assert alone.verdict == VALIDATED
    assert among.verdict == INCONCLUSIVE and among.q_value > cfg.fdr
