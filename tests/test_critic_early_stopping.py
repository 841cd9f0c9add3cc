"""Early stoppers on synthetic curves: stop a clearly bad curve, keep a good one, respect the gates."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from autoresearch.config import EarlyStoppingConfig
from autoresearch.critic import (
    CurveBank,
    CurveStopper,
    HalvingStopper,
    LearningCurveModel,
    NoStopper,
    PercentileStopper,
    StopperContext,
    clean_curve,
    earlier_campaign,
    evaluation_noise,
    make_early_stopper,
    read_curve,
    replay,
    replay_strategies,
    synthetic_curves,
    value_at,
)

# noise_margin 0: these tests judge the model and the rules; the noise margin has its own test.
CFG = EarlyStoppingConfig(min_progress=0.25, min_curves=3, delta=0.05, percentile=50.0, eta=3.0, noise_margin=0.0)


def shifted(curve, by):
    return [(p, v + by) for p, v in curve]


@pytest.fixture(scope="module")
def bank():
    """Eight finished curves, plus a clearly bad and a clearly good running one."""
    curves = synthetic_curves(10, seed=4)
    finished = dict(enumerate(curves[:8]))
    best = min(c[-1][1] for c in curves[:8])
    worst_start = max(c[3][1] for c in curves[:8])
    bad = [(p, v + (worst_start - curves[8][3][1]) + 0.5) for p, v in curves[8]]  # far above every peer
    good = shifted(curves[9], best - curves[9][-1][1] - 0.1)  # ends 0.1 below the best
    good = [(p, min(v, min(c[i][1] for c in curves[:8]) - 0.05)) for i, (p, v) in enumerate(good)]
    return finished, bad, good


def stoppers():
    return [
        PercentileStopper(CFG),
        PercentileStopper(CFG, backend="numpy"),
        CurveStopper(CFG),
        HalvingStopper(CFG),
    ]


@pytest.mark.parametrize("stopper", stoppers(), ids=["ax-percentile", "numpy-percentile", "curve", "halving"])
def test_stops_a_clearly_bad_curve_and_keeps_a_good_one(stopper, bank):
    finished, bad, good = bank
    incumbent = min(c[-1][1] for c in finished.values())
    # min_progress: evaluations at 0.1 and 0.2 are never judged, however bad
    early = stopper.should_stop(100, bad[:2], finished, incumbent)
    assert not early.stop and "min_progress" in early.reason
    kept = [stopper.should_stop(101, good[:i], finished, incumbent) for i in range(1, 10)]
    assert not any(d.stop for d in kept), [d.reason for d in kept]
    decisions = [stopper.should_stop(100, bad[:i], finished, incumbent) for i in range(3, 10)]
    assert any(d.stop for d in decisions), [d.reason for d in decisions]
    first = next(d for d in decisions if d.stop)
    assert first.reason


def test_curve_stopper_reports_its_prediction(bank):
    finished, bad, good = bank
    stopper = CurveStopper(CFG)
    incumbent = min(c[-1][1] for c in finished.values())
    d_bad = stopper.should_stop(1, bad[:5], finished, incumbent)
    assert d_bad.stop and d_bad.p_better < CFG.delta and d_bad.predicted > incumbent
    # Just behind the best finished curve at every evaluation: judged by the model, and kept.
    envelope = [(p, min(c[i][1] for c in finished.values()) + 0.01) for i, (p, _) in enumerate(good)]
    d_close = stopper.should_stop(2, envelope[:5], finished, incumbent)
    assert not d_close.stop and d_close.p_better > d_bad.p_better and d_close.predicted < d_bad.predicted
    # Ahead of every finished curve: never judged by the model, which would be extrapolating.
    d_good = stopper.should_stop(3, good[:5], finished, incumbent)
    assert not d_good.stop and "leads every finished curve" in d_good.reason and d_good.predicted is None
    # Without an incumbent, the best finished curve plays the part.
    assert stopper.should_stop(1, bad[:5], finished, None).stop


def test_learning_curve_model_is_calibrated_on_held_out_curves():
    curves = synthetic_curves(44, seed=8)
    model = LearningCurveModel(min_progress=0.25)
    model.update(curves[:24])
    for k in (3, 5):  # predicting from progress 0.4 and 0.6
        z = []
        for c in curves[24:]:
            mean, std = model.predict(c[: k + 1])
            z.append((c[-1][1] - mean) / std)
        rms = math.sqrt(sum(v * v for v in z) / len(z))
        assert 0.5 < rms < 1.6, (k, rms)
    assert model.calibration(0.4, 0.1) >= 1.0


def test_learning_curve_model_lower_tail_is_honest_with_few_curves():
    """With ten finished curves the Student-t predictive's tails hold on held-out curves.

    The lower tail is the one that costs: a final below the predicted 5 % quantile is a trial
    that ends better than the model thought possible, the kind a stopper wrongly stops.
    """
    from scipy.special import stdtr

    curves = synthetic_curves(40, seed=8)
    model = LearningCurveModel(min_progress=0.2)
    model.update(curves[:10])
    u = []
    for c in curves[10:]:
        for k in (1, 2, 3):  # progress 0.2, 0.3, 0.4
            mean, scale = model.predict(c[: k + 1])
            dof = model.degrees_of_freedom(c[k][0], 0.1)
            assert dof == 10  # one held-out score per finished curve near each progress
            u.append(float(stdtr(dof, (c[-1][1] - mean) / scale)))
    below = sum(v < 0.05 for v in u) / len(u)
    central = sum(0.05 <= v <= 0.95 for v in u) / len(u)
    assert below <= 0.06, below
    assert central >= 0.75, central


def test_curve_stopper_uses_a_student_t_with_few_curves(bank):
    """Three finished curves: P(better) comes from a t with 3 degrees of freedom, not a Normal."""
    from scipy.special import ndtr, stdtr

    finished, bad, _ = bank
    three = dict(list(finished.items())[:3])
    incumbent = min(c[-1][1] for c in three.values())
    d = CurveStopper(CFG).should_stop(7, bad[:5], three, incumbent)
    assert "(t, 3 dof)" in d.reason
    std = float(d.reason.split("± ")[1].split()[0])
    z = (incumbent - CFG.margin - d.predicted) / std
    assert d.p_better == pytest.approx(float(stdtr(3, z)), rel=1e-3)  # the reason rounds mean and std
    assert d.p_better > float(ndtr(z))  # a worse-than-incumbent prediction keeps more chance under a t


@pytest.mark.parametrize("strategy", ["percentile", "curve", "halving"])
def test_no_stopping_before_min_curves_have_finished(strategy, bank):
    finished, bad, _ = bank
    stopper = make_early_stopper(EarlyStoppingConfig(kind=strategy, min_curves=3))
    few = dict(list(finished.items())[:2])
    d = stopper.should_stop(50, bad[:6], few, None)
    assert not d.stop and "min_curves" in d.reason


def test_make_early_stopper_kinds_and_none_never_stops(bank):
    finished, bad, _ = bank
    kinds = {s: type(make_early_stopper(EarlyStoppingConfig(kind=s))) for s in ("none", "percentile", "curve", "halving")}
    assert kinds == {"none": NoStopper, "percentile": PercentileStopper, "curve": CurveStopper, "halving": HalvingStopper}
    assert not NoStopper().should_stop(1, bad[:9], finished, 0.0).stop
    with pytest.raises(ValueError, match="critic.early_stopping.kind"):
        make_early_stopper(EarlyStoppingConfig(kind="oracle"))


def test_ax_and_numpy_percentile_agree(bank):
    """The numpy fallback implements Ax's rule: same decisions on the same curves."""
    finished, bad, good = bank
    curves = synthetic_curves(6, seed=9)
    ax_stopper, np_stopper = PercentileStopper(CFG), PercentileStopper(CFG, backend="numpy")
    for trial_id, curve in [(200, bad), (201, good)] + list(enumerate(curves, start=300)):
        for i in range(3, 10):
            a = ax_stopper.should_stop(trial_id, curve[:i], finished, None)
            b = np_stopper.should_stop(trial_id, curve[:i], finished, None)
            assert a.stop == b.stop, (trial_id, i, a.reason, b.reason)
            if a.stop:
                break
    assert ax_stopper.backend == "ax"


def test_halving_rungs_and_ranking():
    stopper = HalvingStopper(EarlyStoppingConfig(min_progress=0.1, eta=3.0, min_curves=3))
    assert stopper.rungs == pytest.approx([1 / 9, 1 / 3])
    flat = lambda level: [(p / 10, level + 1.0 - p / 10) for p in range(1, 11)]  # noqa: E731
    finished = {i: flat(1.0 + 0.1 * i) for i in range(5)}
    # Six trials at the first rung (itself included): the top ceil(6/3) = 2 continue.
    assert not stopper.should_stop(10, flat(0.95)[:2], finished, None).stop  # rank 1 of 6
    # Seven now (levels 0.95, 1.0, ..., 1.4 and 1.25): 1.25 ranks 5th, outside the top 3.
    d = stopper.should_stop(11, flat(1.25)[:2], finished, None)
    assert d.stop and "rank 5 of 7" in d.reason and "keeps top 3" in d.reason
    # Trial 12 at level 1.05 ranks 3rd of 8: within ceil(8/3) = 3, it continues.
    assert not stopper.should_stop(12, flat(1.05)[:2], finished, None).stop


def test_read_curve_skips_torn_lines_and_train_rows(tmp_path):
    path = tmp_path / "curve.jsonl"
    rows = [
        {"step": 10, "progress": 0.1, "train_loss": 3.0},
        {"step": 20, "progress": 0.2, "val_bpb": 3.5},
        {"step": 30, "progress": 0.4, "val_bpb": 3.1, "sharpness": 2.0},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + '\n{"step": 40, "progress": 0.6, "val_')
    assert read_curve(path) == [(0.2, 3.5), (0.4, 3.1)]
    assert value_at([(0.2, 3.5), (0.4, 3.1)], 0.3) == pytest.approx(3.3)
    assert math.isnan(value_at([(0.2, 3.5), (0.4, 3.1)], 0.5))


def test_replay_accounts_compute_and_regret():
    curves = synthetic_curves(14, seed=2)
    order = list(range(14))
    none = replay(curves, NoStopper(), order)
    assert none.compute_used == pytest.approx(1.0) and none.regret == 0.0 and none.stopped == 0
    halving = replay(curves, HalvingStopper(CFG), order)
    assert halving.stopped > 0 and halving.compute_used < 1.0 and halving.regret >= 0.0
    rows = replay_strategies(curves[:10], CFG, strategies=["none", "halving"], shuffles=2, noise_std=0.01)
    assert [r.strategy for r in rows] == ["none", "halving"]
    assert rows[0].compute_saved == pytest.approx(0.0) and rows[0].within_noise
    assert rows[1].compute_saved > 0.1 and rows[1].runs == 2

    class Recording:  # the curve stopper, with each trial's last decision noted
        name = "curve"

        def __init__(self):
            self.inner, self.reached = CurveStopper(CFG), {}

        def should_stop(self, trial_id, partial, finished, incumbent):
            decision = self.inner.should_stop(trial_id, partial, finished, incumbent)
            # a stopped trial costs the progress it reached; one never stopped, its full budget
            self.reached[trial_id] = partial[-1][0] if decision.stop else 1.0
            return decision

    recording = Recording()
    curve = replay(curves[:10], recording, order[:10])
    assert curve.stopped == sum(r < 1.0 for r in recording.reached.values()) > 0
    assert curve.compute_used == pytest.approx(sum(recording.reached.values()) / 10) and curve.compute_used < 0.9
    kept = [t for t, r in recording.reached.items() if r == 1.0]
    assert curve.regret == pytest.approx(min(curves[t][-1][1] for t in kept) - min(c[-1][1] for c in curves[:10]))

    # Final scores on another scale (a larger evaluation slice): the same decisions, regret measured on them.
    finals = [c[-1][1] + 0.01 * i for i, c in enumerate(curves[:10])]
    rescored = replay(curves[:10], CurveStopper(CFG), order[:10], finals)
    assert rescored.compute_used == pytest.approx(curve.compute_used)
    assert rescored.regret == pytest.approx(min(finals[t] for t in kept) - min(finals))
    with pytest.raises(ValueError, match="3 final scores for 10 curves"):
        replay(curves[:10], NoStopper(), order[:10], finals[:3])
    assert sorted(curve.finished) == sorted(kept) and list(none.finished) == order


def test_an_earlier_campaign_leaves_only_its_finished_curves():
    """The store's prior for a second campaign: the curves that finished when the bank ran once as a
    campaign through the curve stopper, never the curves of trials it stopped."""
    curves = synthetic_curves(12, seed=5)
    bank = CurveBank(curves={f"c{i}": c for i, c in enumerate(curves)})
    left = earlier_campaign(bank, CFG, seed=3)
    order = np.random.default_rng(3).permutation(12).tolist()
    played = replay(curves, CurveStopper(CFG), order)
    assert played.stopped > 0 and len(left) == len(played.finished) == 12 - played.stopped
    assert left == [clean_curve(curves[i]) for i in played.finished]


def test_curve_bank_round_trip(tmp_path):
    bank = CurveBank(curves={"a": [(0.5, 2.0), (1.0, 1.5)]}, noise=[1.5, 1.52], overrides={"a": ["optim.lr=0.01"]},
                     finals={"a": 1.49}, meta={"campaign": "quickstart"})
    bank.save(tmp_path / "bank.json")
    assert CurveBank.load(tmp_path / "bank.json") == bank and bank.complete_finals == {"a": 1.49}
    older = CurveBank(curves=bank.curves, noise=bank.noise)  # recorded before final scores were stored
    assert older.complete_finals is None
    assert bank.noise_std == pytest.approx(0.0141421, rel=1e-4)
    (tmp_path / "old.json").write_text(json.dumps({"version": 0, "curves": {}}))
    with pytest.raises(ValueError, match="--record"):
        CurveBank.load(tmp_path / "old.json")


def test_learning_curve_model_stays_finite_on_three_recorded_curves():
    """Three curves of the second shipped bank once drove the unbounded GP's hyper-parameters to
    e^±600 and its posterior to NaN (replay order 3 of ``--seed 3``); bounded, it stays finite."""
    bank = CurveBank.load(Path(__file__).resolve().parents[1] / "bench" / "curve_bank_seed1.json")
    model = LearningCurveModel(min_progress=0.2)
    model.update([bank.curves[k] for k in ("config034", "config031", "config030")])
    for i in range(2, 10):
        mean, std = model.predict(bank.curves["config027"][:i])
        assert math.isfinite(mean) and math.isfinite(std) and std > 0


def test_curve_stopper_keeps_the_trial_when_its_model_fails(bank, monkeypatch, caplog):
    finished, bad, _ = bank
    stopper = CurveStopper(CFG)
    incumbent = min(c[-1][1] for c in finished.values())
    failing = stopper.model

    def broken(partial):
        raise torch.linalg.LinAlgError("linalg.svd: input contained non-finite values")

    monkeypatch.setattr(failing, "predict", broken)
    decision = stopper.should_stop(1, bad[:5], finished, incumbent)
    assert not decision.stop and "model failed" in decision.reason
    assert "refitting from scratch" in caplog.text
    assert stopper.model is not failing  # a fresh model, not the broken one warm-started
    assert stopper.should_stop(1, bad[:6], finished, incumbent).stop


def test_curve_stopper_does_not_stop_a_leader_after_a_few_poor_curves():
    """Replayed on the second shipped bank (order 3 of ``--seed 3``), five poor configurations
    finished first; fitted to them the model predicted their flat final for every later trial and
    stopped the bank's best (final 2.954, predicted 3.37) at progress 0.2. It leads there."""
    bank = CurveBank.load(Path(__file__).resolve().parents[1] / "bench" / "curve_bank_seed1.json")
    finished = {i: bank.curves[k] for i, k in enumerate(("config034", "config031", "config030", "config027", "config015"))}
    incumbent = min(c[-1][1] for c in finished.values())
    decision = CurveStopper(EarlyStoppingConfig()).should_stop(99, bank.curves["config023"][:2], finished, incumbent)
    assert not decision.stop and "leads" in decision.reason


def test_curve_stopper_does_not_stop_a_trial_falling_faster_than_every_finished_curve():
    """The first shipped bank's best configuration (final 2.980, a low learning rate: high early,
    steep late) after five middling ones finished: the model, which has seen no curve fall like it,
    predicted 3.168 ± 0.031 and stopped it at progress 0.2 and 0.3. It falls fastest there."""
    bank = CurveBank.load(Path(__file__).resolve().parents[1] / "bench" / "curve_bank.json")
    names = ("config019", "config010", "config015", "config033", "config003")
    finished = {i: bank.curves[k] for i, k in enumerate(names)}
    incumbent = min(c[-1][1] for c in finished.values())
    stopper = CurveStopper(EarlyStoppingConfig())
    for n in (2, 3):
        decision = stopper.should_stop(99, bank.curves["config034"][:n], finished, incumbent)
        assert not decision.stop and "falls faster than every finished curve" in decision.reason
    # The same value at 0.3, reached at the pace of the slowest finished curve, is the model's to judge: stopped.
    first, (p2, _), (p3, v3) = bank.curves["config034"][:3]
    smallest_drop = max(c[2][1] - c[1][1] for c in finished.values())  # from progress 0.2 to 0.3
    gentle = [first, (p2, v3 - smallest_drop), (p3, v3)]
    decision = stopper.should_stop(99, gentle, finished, incumbent)
    assert decision.stop and decision.predicted is not None


def test_a_trial_falling_fastest_is_stopped_only_when_even_the_best_drop_seen_leaves_it_behind():
    """Falling faster than every finished curve keeps a trial from the model, not from a bound: the
    finished curves show how much of a curve's descent rate was still to come as drop, and a trial
    that would end above the target even with the largest such ratio, at its own (noise-steepened)
    descent, cannot win. The bank's best (config034) is kept at 0.2 and 0.3; the same curve a
    whole bpb higher falls just as fast and is stopped, by the bound and not by the model."""
    bank = CurveBank.load(Path(__file__).resolve().parents[1] / "bench" / "curve_bank.json")
    names = ("config019", "config010", "config015", "config033", "config003")
    finished = {i: bank.curves[k] for i, k in enumerate(names)}
    incumbent = min(c[-1][1] for c in finished.values())
    best = bank.curves["config034"]
    for n in (2, 3):
        kept = CurveStopper(EarlyStoppingConfig()).should_stop(99, best[:n], finished, incumbent)
        assert not kept.stop and "falls faster than every finished curve" in kept.reason
        behind = [(p, v + 1.0) for p, v in best[:n]]
        stopped = CurveStopper(EarlyStoppingConfig()).should_stop(99, behind, finished, incumbent)
        assert stopped.stop and stopped.predicted is None
        assert "falls faster than every finished curve" in stopped.reason and "best remaining drop" in stopped.reason


def test_the_best_case_bound_uses_the_largest_ratio_of_drop_to_come_over_descent():
    """``_best_case_final`` on hand-made curves: two finished curves fell 0.5 and 0.2 per unit of
    progress at 0.2 → 0.3 and had 0.3 and 0.4 still to drop, ratios 0.6 and 2.0; a trial at 4.0
    falling 1.0 per unit (+ slack 0.1) may end as low as 4.0 − 2.0 × 1.1 = 1.8. A finished
    curve's descent counts as at least the slack: with slack 0.5 the second's ratio is 0.4 / 0.5."""
    from autoresearch.critic.learning_curve import _best_case_final

    finished = [[(0.2, 3.05), (0.3, 3.0), (1.0, 2.7)], [(0.2, 3.02), (0.3, 3.0), (1.0, 2.6)]]
    trial = [(0.2, 4.1), (0.3, 4.0)]
    assert _best_case_final(trial, finished, slope_slack=0.1) == pytest.approx(1.8)
    assert _best_case_final(trial, finished, slope_slack=0.5) == pytest.approx(4.0 - 0.8 * 1.5)
    assert _best_case_final(trial, finished) == pytest.approx(2.0)


def test_critic_imports_form_no_cycle():
    """Issue 15: the stoppers and the learning-curve model share ``critic/stopping.py`` and neither
    imports the other back (function-level imports count: they are edges too)."""
    import ast
    import graphlib

    package = Path(__file__).resolve().parents[1] / "autoresearch" / "critic"
    edges = {}
    for path in package.glob("*.py"):
        module = f"autoresearch.critic.{path.stem}"
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("autoresearch.critic."):
                targets.add(node.module)
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("autoresearch.critic.")}
        edges[module] = targets - {module}
    tuple(graphlib.TopologicalSorter(edges).static_order())  # raises CycleError on a cycle


@pytest.mark.parametrize("noise", [0.005, 0.01, 0.03])
def test_evaluation_noise_recovers_the_noise_of_synthetic_curves(noise):
    assert evaluation_noise(synthetic_curves(30, seed=1, noise=noise)) == pytest.approx(noise, rel=0.3)
    assert math.isnan(evaluation_noise([[(0.5, 3.0), (1.0, 2.9)]]))  # no interior point late in a curve


def test_curve_stopper_margin_is_in_units_of_the_noise(bank):
    """The same trial and finished curves at two noise scales: with ``noise_margin`` the margin is
    ``noise_margin·σ``, σ measured on the finished curves (or the caller's noise floor), so the
    decision does not depend on the units of val_bpb; a fixed margin in bpb would."""
    finished, _, good = bank
    envelope = [(p, min(c[i][1] for c in finished.values()) + 0.01) for i, (p, _) in enumerate(good)]

    def rescaled(curve, k):
        return [(p, 3.0 + k * (v - 3.0)) for p, v in curve]

    cfg = EarlyStoppingConfig(min_curves=3, delta=0.25, noise_margin=1.0)
    decisions = []
    for k in (1.0, 10.0):
        scaled = {i: rescaled(c, k) for i, c in finished.items()}
        incumbent = min(c[-1][1] for c in scaled.values())
        d = CurveStopper(cfg).should_stop(99, rescaled(envelope, k)[:6], scaled, incumbent)
        sigma = float(d.reason.split("noise σ ")[1].split(")")[0])
        assert sigma == pytest.approx(k * evaluation_noise(finished.values()), abs=1e-4)  # the reason rounds
        decisions.append(d)
    assert decisions[0].p_better == pytest.approx(decisions[1].p_better, abs=0.02)
    assert decisions[0].stop == decisions[1].stop
    # Without the noise margin the trial has a better chance to beat the incumbent; a floor given
    # by the caller replaces the measured σ.
    incumbent = min(c[-1][1] for c in finished.values())
    plain_cfg = EarlyStoppingConfig(min_curves=3, delta=0.25, noise_margin=0.0)
    plain = CurveStopper(plain_cfg).should_stop(99, envelope[:6], finished, incumbent)
    assert plain.p_better > decisions[0].p_better
    floor = CurveStopper(cfg, context=StopperContext(noise_std=0.05)).should_stop(99, envelope[:6], finished, incumbent)
    assert "noise σ 0.0500" in floor.reason and floor.p_better < decisions[0].p_better


def test_curve_stopper_learns_from_earlier_campaigns_curves(bank):
    """Two poor finished curves alone: a trial ahead of both is never judged. Given earlier
    campaigns' curves on the same space, the same trial is judged against them (and the incumbent
    is still the campaign's own)."""
    finished, bad, _ = bank
    ranked = sorted(finished.values(), key=lambda c: c[-1][1])
    own = {0: ranked[-1], 1: ranked[-2]}
    trial = [(p, v - 0.02) for p, v in ranked[-3]][:5]  # ahead of both poor curves, behind the rest
    incumbent = min(c[-1][1] for c in own.values())
    cfg = EarlyStoppingConfig(min_curves=2)
    alone = CurveStopper(cfg).should_stop(9, trial, own, incumbent)
    assert not alone.stop and "leads every finished curve" in alone.reason
    earlier = StopperContext(prior_curves=tuple(ranked[:-2]))
    informed = CurveStopper(cfg, context=earlier).should_stop(9, trial, own, incumbent)
    assert informed.predicted is not None and "leads" not in informed.reason


def test_a_trial_behind_the_median_is_stopped_at_the_looser_delta_behind():
    """From a replay of the seed-10 quickstart-space bank (order 1 of ``--seed 1``): two curves have
    finished and a third trial, at progress 0.3, is behind their median. The model gives it P = 0.36 of
    beating the incumbent: kept at ``delta`` 0.25, stopped at ``delta_behind`` 0.5."""
    bank = CurveBank.load(Path(__file__).resolve().parents[1] / "bench" / "curve_bank_quickstart_seed10.json")
    finished = {0: bank.curves["config021"], 1: bank.curves["config016"]}
    incumbent = min(c[-1][1] for c in finished.values())
    trial = bank.curves["config007"][:3]
    assert trial[-1][1] > sum(value_at(c, trial[-1][0]) for c in finished.values()) / 2  # the median of two
    off = CurveStopper(EarlyStoppingConfig()).should_stop(9, trial, finished, incumbent)  # off by default
    assert not off.stop and 0.25 <= off.p_better < 0.5 and "keep: delta 0.25" in off.reason
    on = CurveStopper(EarlyStoppingConfig(delta_behind=0.5)).should_stop(9, trial, finished, incumbent)
    assert on.stop and on.p_better == pytest.approx(off.p_better, abs=1e-6)
    assert "delta_behind, behind the finished curves' median 0.5" in on.reason
    problems = {p.key: p.message for p in EarlyStoppingConfig(delta_behind=0.1).problems()}
    assert "between delta (0.25) and 1" in problems["critic.early_stopping.delta_behind"]
    assert not EarlyStoppingConfig(delta_behind=0).problems()


@pytest.mark.parametrize("space", ["quickstart", "rope_ablation", "lr_schedule", "arch_basics"])
def test_replay_on_the_recorded_bank_of_each_shipped_space(space):
    """Every shipped space has a held-out bank (sampling seed 7, ``bench/curve_bank.py --record``);
    each replays through the shipped curve stopper (here on its first 10 curves, one order)."""
    bank = CurveBank.load(Path(__file__).resolve().parents[1] / "bench" / f"curve_bank_{space}_seed7.json")
    assert bank.meta["search_space"] == space and bank.meta["seed"] == 7
    # Complete banks (bench/curve_bank.py --record --resume): 24-30 curves, 13 baseline repeats.
    assert bank.meta["budget"]["kind"] == "steps" and len(bank.noise) >= 13 and len(bank.curves) >= 24
    curves = list(bank.curves.values())[:10]
    rows = replay_strategies(curves, EarlyStoppingConfig(), strategies=["halving", "curve"], shuffles=1,
                             noise_std=bank.noise_std)
    for row in rows:
        assert 0.0 < row.compute_used <= 1.0 and 0.0 <= row.regret_mean < math.inf
    assert rows[0].stopped_mean > 0  # halving always drops someone among 10
    assert rows[1].decision_seconds_mean > 0


def test_slope_rule_allows_for_the_measured_evaluation_noise(bank):
    """"Falls faster than every finished curve" must not fire on noise: with ``slope_noise`` k a
    trial's slope has to beat the steepest finished one by k·√2·σ/Δp (σ the evaluation noise
    measured on the finished curves, √2 because a slope over Δp differs two noisy evaluations).
    Inside that allowance the model judges the trial; beyond it the trial is still not judged. The
    allowance is in units of the measured noise, so rescaling val_bpb leaves every decision as it was."""
    finished, _, _ = bank
    ranked = sorted(finished.values(), key=lambda c: c[-1][1])
    middle = ranked[len(ranked) // 2]
    i = 6  # decide at the 7th evaluation, late in the curve where slopes are small
    (p0, v0), (p1, _) = middle[i - 1], middle[i]
    steepest = min((c[i][1] - c[i - 1][1]) / (p1 - p0) for c in finished.values())
    slack = math.sqrt(2.0) * evaluation_noise(finished.values()) / (p1 - p0)

    def trial(excess):  # the middle curve up to p0, then steeper than every finished curve by `excess`
        return middle[:i] + [(p1, v0 + (steepest - excess) * (p1 - p0))]

    def rescaled(curve, k):
        return [(p, 3.0 + k * (v - 3.0)) for p, v in curve]

    for k in (1.0, 10.0):
        peers = {n: rescaled(c, k) for n, c in finished.items()}
        incumbent = min(c[-1][1] for c in peers.values())
        strict = CurveStopper(EarlyStoppingConfig(min_curves=3, slope_noise=0.0))
        allowing = CurveStopper(EarlyStoppingConfig(min_curves=3, slope_noise=1.0))
        within, beyond = rescaled(trial(0.5 * slack), k), rescaled(trial(2.0 * slack), k)
        assert "falls faster than every finished curve" in strict.should_stop(99, within, peers, incumbent).reason
        judged = allowing.should_stop(99, within, peers, incumbent)
        assert judged.predicted is not None and "falls faster" not in judged.reason
        assert "falls faster than every finished curve" in allowing.should_stop(99, beyond, peers, incumbent).reason
